//! Archives on the command line: `backup export`, `backup create --out`, and the options both take.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use sophon::export::destination::split_archive_url;
use sophon::export::{self, output, seal::Kdf, ExportOptions, ExportSummary, Format};
use sophon::{Session, SnapshotId};

use super::output::{bytes, json, line};
use super::{exit, RepoArgs, UsageError};

/// How to render an archive.
#[derive(Args, Debug, Clone, Default)]
pub struct ArchiveOutArgs {
    /// Render the snapshot to this archive (`-` for standard output). Written under a temporary
    /// name and renamed when complete.
    #[arg(long, value_name = "FILE", conflicts_with = "dest")]
    pub out: Option<PathBuf>,
    /// Upload the archive to this URL while it is rendered (`s3://BUCKET/KEY.zip`,
    /// `azblob://CONTAINER/NAME.zip`, `sftp://USER@HOST:PORT/PATH.zip`, or a path). `{date}`,
    /// `{time}`, `{tenant}` and `{snapshot}` in it are expanded when the export runs.
    #[arg(long, value_name = "URL")]
    pub dest: Option<String>,
    /// zip or tar.gz (tgz). Without it the name's extension decides (.zip, .tar.gz or .tgz; another
    /// extension is refused); standard output gets a zip.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Seal the archive with the backup passphrase (--passphrase-file or SOPHON_BACKUP_PASSPHRASE).
    #[arg(long)]
    pub encrypt: bool,
    /// Key derivation for --encrypt: argon2id (default) or pbkdf2 (PBKDF2-HMAC-SHA256, 600,000 iterations).
    #[arg(long, value_enum, requires = "encrypt")]
    pub kdf: Option<KdfArg>,
    /// Only what changed since the last export of the same scope in the --out or --dest folder (with --since-last).
    #[arg(long, requires = "since_last")]
    pub incremental: bool,
    /// The export an incremental one follows is the newest of the same scope beside --out or --dest.
    #[arg(long, requires = "incremental")]
    pub since_last: bool,
    /// Deflate level, 1 (fastest) to 9 (smallest).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: Option<u32>,
    /// Replace a file or object already at --out or --dest. Without it an existing one is an
    /// error naming it, and nothing is written (`backup create` checks before the backup).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Zip,
    #[value(name = "tar.gz", alias = "tgz")]
    TarGz,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Zip => Format::Zip,
            FormatArg::TarGz => Format::TarGz,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfArg {
    Argon2id,
    Pbkdf2,
}

impl From<KdfArg> for Kdf {
    fn from(k: KdfArg) -> Self {
        match k {
            KdfArg::Argon2id => Kdf::default_argon2id(),
            KdfArg::Pbkdf2 => Kdf::pbkdf2_default(),
        }
    }
}

impl ArchiveOutArgs {
    /// What `backup create` checks before taking the backup: the archive's format, and (without
    /// --overwrite, or with --incremental) that its name is free, so a refused archive leaves no
    /// snapshot behind.
    /// `tenant` expands `{tenant}` in --dest.
    pub fn check_before_backup(&self, tenant: Option<&str>) -> anyhow::Result<Option<Format>> {
        let format = self.archive_format()?;
        let planned = output::PlannedArchive {
            out: self.out.as_deref(),
            dest: self.dest.as_deref(),
            tenant,
            overwrite: self.overwrite,
            incremental: self.incremental,
        };
        output::refuse_existing(&planned, chrono::Local::now())?;
        Ok(format)
    }

    /// The format of the archive asked for (`None`: no archive). A name whose extension announces
    /// no format is refused rather than silently given one (`--out backup.tar` used to become a
    /// zip); `-` (standard output) has no name and is a zip unless --format says otherwise.
    pub fn archive_format(&self) -> Result<Option<Format>, UsageError> {
        if let Some(f) = self.format {
            return Ok(Some(f.into()));
        }
        let (flag, name) = match (&self.out, &self.dest) {
            (Some(out), _) if out.as_os_str() == "-" => return Ok(Some(Format::Zip)),
            (Some(out), _) => ("--out", out.to_string_lossy().into_owned()),
            (None, Some(dest)) => ("--dest", dest.clone()),
            (None, None) => return Ok(None),
        };
        Format::from_archive_name(&name).map(Some).ok_or_else(|| {
            UsageError(format!(
                "{flag} {name}: an archive's name ends with one of {} (or give --format zip or --format tar.gz)",
                Format::extensions_list()
            ))
        })
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The snapshot: an id (or a unique prefix of at least 4 hex digits), `latest` (refused while
    /// any snapshot cannot be read) or `latest-readable` (the newest snapshot that can be read).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
    #[command(flatten)]
    pub archive: ArchiveOutArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn export_cmd(a: ExportArgs) -> anyhow::Result<u8> {
    if a.archive.out.is_none() && a.archive.dest.is_none() {
        return Err(UsageError("backup export needs --out FILE (or - for standard output) or --dest URL".into()).into());
    }
    a.archive.archive_format()?;
    let session = Session::shared(a.repo.open()?, "export")?;
    let id = session.resolve_snapshot(&a.snapshot)?;
    let summary = write_archive(&session, &id, &a.archive, &a.repo, a.json)?;
    report(&summary, summary_target(&a.archive, &summary).as_deref(), a.json)?;
    Ok(exit::OK)
}

pub fn report(s: &ExportSummary, out: Option<&Path>, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(&serde_json::json!({ "export": s }));
    }
    let to = out.map(|p| p.display().to_string()).unwrap_or_default();
    if to == "-" {
        eprintln!("{}", describe(s));
    } else {
        line(format!("{} -> {to}", describe(s)))?;
    }
    Ok(())
}

fn describe(s: &ExportSummary) -> String {
    let follows = s
        .follows
        .as_ref()
        .map(|f| {
            let base = s.follows_archive.as_deref().map(|a| format!(" in {a}")).unwrap_or_default();
            format!(", follows {f}{base}, {} deleted", s.deleted)
        })
        .unwrap_or_default();
    format!(
        "export {} of snapshot {}: {} {}, {} files, {} of content, {} written{follows}",
        s.export_id,
        &s.snapshot[..8.min(s.snapshot.len())],
        if s.sealed { "sealed" } else { "plain" },
        s.format.name(),
        s.files,
        bytes(s.bytes_in),
        bytes(s.bytes_out),
    )
}

/// Where the archive went, for the report.
pub fn summary_target(args: &ArchiveOutArgs, s: &ExportSummary) -> Option<PathBuf> {
    match (&args.out, &s.destination) {
        (Some(out), _) => Some(out.clone()),
        (None, Some(dest)) => Some(PathBuf::from(dest)),
        _ => None,
    }
}

/// `name` is checked by [`ArchiveOutArgs::archive_format`] before any work starts; only `-` and
/// names with --format reach the default.
fn format_of(args: &ArchiveOutArgs, name: &str) -> Format {
    args.format.map(Format::from).or_else(|| Format::from_archive_name(name)).unwrap_or(Format::Zip)
}

/// Render snapshot `id` as `args` ask; a file appears under its name only once complete. Where it
/// goes is resolved and written by `sophon::export::output` (the dashboard writes archives the same way).
pub fn write_archive(
    session: &Session,
    id: &SnapshotId,
    args: &ArchiveOutArgs,
    repo_args: &RepoArgs,
    quiet: bool,
) -> anyhow::Result<ExportSummary> {
    let progress = std::sync::Arc::new(sophon::archive::Progress::default());
    let _display = super::progress::ProgressDisplay::start(std::sync::Arc::clone(&progress), "export", quiet);
    let mut opts = ExportOptions::new(Format::Zip);
    opts.overwrite = args.overwrite;
    opts.progress = Some(progress);
    if let Some(level) = args.level {
        opts.level = level;
    }
    if args.encrypt {
        let kdf = args.kdf.map_or_else(Kdf::default_argon2id, Kdf::from);
        opts.seal = Some((repo_args.passphrase()?, kdf));
    }
    let target = match (&args.dest, &args.out) {
        (Some(dest), _) => {
            // Templates never add or remove the name: checked before anything is opened.
            if split_archive_url(dest).is_none() {
                return Err(UsageError(format!(
                    "--dest {dest}: give the archive's full name, e.g. s3://bucket/backup.zip"
                ))
                .into());
            }
            output::ArchiveTarget::Destination(dest.clone())
        }
        (None, Some(out)) if out.as_os_str() == "-" => {
            if args.incremental {
                return Err(UsageError(
                    "--incremental needs --out FILE: the earlier exports are looked for beside it".into(),
                )
                .into());
            }
            opts.format = format_of(args, "-");
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let s = export::export_snapshot(session, id, &mut w, &opts)?;
            w.flush().context("writing to standard output")?;
            return Ok(s);
        }
        (None, Some(out)) => {
            if out.file_name().is_none() {
                return Err(UsageError(format!("--out {}: not a file name", out.display())).into());
            }
            output::ArchiveTarget::File(out.clone())
        }
        (None, None) => return Err(UsageError("no --out or --dest given".into()).into()),
    };
    let snapshot = session.load_snapshot(id)?;
    let placed = target.place(&snapshot, id, chrono::Local::now())?;
    opts.format = format_of(args, &placed.name());
    let cache_dir = repo_args.cache_dir();
    if args.incremental {
        let pass = repo_args.passphrase().ok();
        opts.previous = Some(placed.previous(session, id, &cache_dir, pass.as_ref().map(|p| p.as_slice()))?);
    }
    let written = placed.export(session, id, &opts, &cache_dir);
    match placed {
        output::PlacedArchive::Store(store) => {
            written.with_context(|| format!("uploading {} (nothing was left under that name)", store.url()))
        }
        output::PlacedArchive::File(_) => Ok(written?),
    }
}
