//! Archives on the command line: `backup export`, `backup create --out`, and the options both take.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use sophon::export::{self, seal::Kdf, ExportOptions, ExportSummary, Format};
use sophon::{Repository, SnapshotId};

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
    /// zip or tar.gz (default: from the --out extension, else zip).
    #[arg(long, value_parser = ["zip", "tar.gz", "tgz"])]
    pub format: Option<String>,
    /// Seal the archive with the backup passphrase (--passphrase-file or SOPHON_BACKUP_PASSPHRASE).
    #[arg(long)]
    pub encrypt: bool,
    /// Key derivation for --encrypt: argon2id (default) or pbkdf2 (PBKDF2-HMAC-SHA256, 600,000 iterations).
    #[arg(long, value_parser = ["argon2id", "pbkdf2"], requires = "encrypt")]
    pub kdf: Option<String>,
    /// Only what changed since the last export of the same scope in the --out or --dest folder (with --since-last).
    #[arg(long, requires = "since_last")]
    pub incremental: bool,
    /// The export an incremental one follows is the newest of the same scope beside --out or --dest.
    #[arg(long, requires = "incremental")]
    pub since_last: bool,
    /// Deflate level, 1 (fastest) to 9 (smallest).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: Option<u32>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The snapshot: an id (or a unique prefix of at least 4 hex digits), or `latest`.
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
    let repo = a.repo.open()?;
    let id = repo.resolve_snapshot(&a.snapshot)?;
    let summary = write_archive(&repo, &id, &a.archive, &a.repo)?;
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
        line(format!("{} -> {to}", describe(s)));
    }
    Ok(())
}

fn describe(s: &ExportSummary) -> String {
    let follows = s.follows.as_ref().map(|f| format!(", follows {f}, {} deleted", s.deleted)).unwrap_or_default();
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

fn format_of(args: &ArchiveOutArgs, name: &str) -> Format {
    match args.format.as_deref() {
        Some("zip") => Format::Zip,
        Some(_) => Format::TarGz,
        None => {
            let n = name.to_lowercase();
            if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
                Format::TarGz
            } else {
                Format::Zip
            }
        }
    }
}

/// `{date}` (YYYY-MM-DD), `{time}` (HHMMSS), both in the server's time zone, `{tenant}` (the
/// backup's tenant, or `all`) and `{snapshot}` (the short id), expanded now: a cron job's command
/// line keeps the braces and gets a fresh name on every run.
pub fn expand_destination(dest: &str, repo: &Repository, id: &SnapshotId) -> anyhow::Result<String> {
    let now = chrono::Local::now();
    let snapshot = repo.load_snapshot(id)?;
    let scope = sophon::source::SnapshotScope::from_paths(&snapshot.paths);
    let tenant = scope.tenant().unwrap_or("all");
    Ok(dest
        .replace("{date}", &now.format("%Y-%m-%d").to_string())
        .replace("{time}", &now.format("%H%M%S").to_string())
        .replace("{tenant}", tenant)
        .replace("{snapshot}", &id.short()))
}

/// Buffers the archive into parts for a streamed upload.
struct Upload {
    w: Option<Box<dyn sophon::backend::ObjectWriter>>,
    buf: Vec<u8>,
}

const UPLOAD_PART: usize = 8 << 20;

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= UPLOAD_PART {
            self.push()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Upload {
    fn push(&mut self) -> std::io::Result<()> {
        let Some(w) = self.w.as_mut() else { return Err(std::io::Error::other("the upload was closed")) };
        w.write(&self.buf).map_err(std::io::Error::other)?;
        self.buf.clear();
        Ok(())
    }
}

/// Render snapshot `id` and upload it to `dest` as it is rendered.
fn upload_archive(
    repo: &Repository,
    id: &SnapshotId,
    dest: &str,
    opts: &mut ExportOptions,
    args: &ArchiveOutArgs,
    repo_args: &RepoArgs,
) -> anyhow::Result<ExportSummary> {
    let url = expand_destination(dest, repo, id)?;
    let (store, name) = url
        .rsplit_once('/')
        .filter(|(store, name)| !name.is_empty() && !store.ends_with(':') && !store.ends_with("//"))
        .ok_or_else(|| {
            UsageError(format!("--dest {url}: give the archive's full name, e.g. s3://bucket/backup.zip"))
        })?;
    opts.format = format_of(args, name);
    let backend = sophon::backend::open_url(store, true)?;
    if args.incremental {
        if backend.stat(name)?.is_some() {
            anyhow::bail!(
                "--dest {url}: {} (for example with {{date}} and {{time}})",
                super::archive_in::NEVER_REPLACES
            );
        }
        // The export it follows is the newest of the same scope in the same folder.
        let place = match backend.is_remote() {
            true => super::destination::Place::Store(backend.clone()),
            false => super::destination::Place::open(store)?,
        };
        opts.previous = Some(super::archive_in::previous_at(repo, id, &place, store, repo_args)?);
    }
    let writer = backend.writer(name)?;
    let mut up = Upload { w: Some(writer), buf: Vec::with_capacity(UPLOAD_PART) };
    let result = export::export_snapshot(repo, id, &mut up, opts).map_err(anyhow::Error::from).and_then(|s| {
        up.push()?;
        let w = up.w.take().ok_or_else(|| anyhow::anyhow!("the upload was closed"))?;
        w.finish()?;
        Ok(s)
    });
    match result {
        Ok(mut s) => {
            if backend.is_remote() {
                super::destination::remember(repo_args, store, name, s.bytes_out, s.metadata.clone());
            }
            s.destination = Some(url);
            Ok(s)
        }
        Err(e) => {
            if let Some(w) = up.w.take() {
                w.abort();
            }
            Err(e.context(format!("uploading {url} (nothing was left under that name)")))
        }
    }
}

/// Render snapshot `id` as `args` ask; a file appears under its name only once complete.
pub fn write_archive(
    repo: &Arc<Repository>,
    id: &SnapshotId,
    args: &ArchiveOutArgs,
    repo_args: &RepoArgs,
) -> anyhow::Result<ExportSummary> {
    let _lock = repo.lock(sophon::repo::LockMode::Shared, "export")?;
    repo.sync_index(&mut |_| {})?;
    let name = args.out.as_deref().map(|p| p.to_string_lossy().into_owned()).or(args.dest.clone()).unwrap_or_default();
    let mut opts = ExportOptions::new(format_of(args, &name));
    if let Some(level) = args.level {
        opts.level = level;
    }
    if args.encrypt {
        let kdf = match args.kdf.as_deref() {
            Some("pbkdf2") => Kdf::pbkdf2_default(),
            _ => Kdf::default_argon2id(),
        };
        opts.seal = Some((repo_args.passphrase()?, kdf));
    }
    if let Some(dest) = &args.dest {
        return upload_archive(repo, id, dest, &mut opts, args, repo_args);
    }
    let out = args.out.clone().ok_or_else(|| UsageError("no --out or --dest given".into()))?;
    if args.incremental {
        opts.previous = Some(super::archive_in::previous_export(repo, id, &out, repo_args)?);
    }
    if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let s = export::export_snapshot(repo, id, &mut w, &opts)?;
        w.flush().context("writing to standard output")?;
        return Ok(s);
    }
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().ok_or_else(|| UsageError(format!("--out {}: not a file name", out.display())))?;
    let partial = dir.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> anyhow::Result<ExportSummary> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let f = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let s = export::export_snapshot(repo, id, &mut w, &opts)?;
        let f = w.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", partial.display()))?;
        f.sync_all().with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &out)
            .with_context(|| format!("renaming the finished archive to {}", out.display()))?;
        Ok(s)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
