//! Archives on the command line: `backup export`, `backup create --out`, and the options both take.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// zip or tar.gz (default: from the --out extension, else zip).
    #[arg(long, value_parser = ["zip", "tar.gz", "tgz"])]
    pub format: Option<String>,
    /// Seal the archive with the backup passphrase (--passphrase-file or SOPHON_BACKUP_PASSPHRASE).
    #[arg(long)]
    pub encrypt: bool,
    /// Key derivation for --encrypt: argon2id (default) or pbkdf2 (PBKDF2-HMAC-SHA256, 600,000 iterations).
    #[arg(long, value_parser = ["argon2id", "pbkdf2"], requires = "encrypt")]
    pub kdf: Option<String>,
    /// Only what changed since the last export of the same scope in the --out folder (with --since-last).
    #[arg(long, requires = "since_last")]
    pub incremental: bool,
    /// The export an incremental one follows is the newest of the same scope beside --out.
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
    if a.archive.out.is_none() {
        return Err(UsageError("backup export needs --out FILE (or --out - for standard output)".into()).into());
    }
    let repo = a.repo.open()?;
    let id = repo.resolve_snapshot(&a.snapshot)?;
    let summary = write_archive(&repo, &id, &a.archive, &a.repo)?;
    report(&summary, a.archive.out.as_deref(), a.json)?;
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

fn format_of(args: &ArchiveOutArgs) -> Format {
    match args.format.as_deref() {
        Some("zip") => Format::Zip,
        Some(_) => Format::TarGz,
        None => {
            let name = args.out.as_deref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_lowercase());
            match name {
                Some(n) if n.ends_with(".tar.gz") || n.ends_with(".tgz") => Format::TarGz,
                _ => Format::Zip,
            }
        }
    }
}

/// Render snapshot `id` as `args` ask; a file appears under its name only once complete.
pub fn write_archive(
    repo: &Repository,
    id: &SnapshotId,
    args: &ArchiveOutArgs,
    repo_args: &RepoArgs,
) -> anyhow::Result<ExportSummary> {
    let out = args.out.clone().ok_or_else(|| UsageError("no --out given".into()))?;
    let mut opts = ExportOptions::new(format_of(args));
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
