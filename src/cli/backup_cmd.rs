//! `sophon backup …`: create, list, restore and verify snapshots.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use sophon::archive::{self, BackupOptions, ParentChoice, Progress};
use sophon::check::{self, CheckOptions};
use sophon::restore::{self, RestoreOptions};

use super::output::{bytes, json, line};
use super::progress::ProgressDisplay;
use super::{exit, RepoArgs};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a snapshot of one or more folders.
    Create(CreateArgs),
    /// List snapshots, oldest first.
    List(ListArgs),
    /// Restore a snapshot into a folder.
    Restore(RestoreArgs),
    /// Check the repository; with --read-data also read and authenticate the stored data.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A folder (or file) to back up; repeat for several.
    #[arg(long = "path", value_name = "DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// A tag to attach to the snapshot; repeat for several.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Record this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIMESTAMP")]
    pub time: Option<String>,
    /// Read every file even when the parent snapshot says it is unchanged.
    #[arg(long)]
    pub force: bool,
    /// zstd level for this backup (default: the repository's).
    #[arg(long)]
    pub compression: Option<i32>,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A snapshot id (or a unique prefix of at least 4 hex digits), or `latest`.
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: String,
    /// Folder to restore into; must be empty or absent.
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Also read the data: all of it, or the given percentage of packs (e.g. --read-data=10).
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100", require_equals = true)]
    pub read_data: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: BackupCommand) -> anyhow::Result<u8> {
    match cmd {
        BackupCommand::Create(a) => create(a),
        BackupCommand::List(a) => list(a),
        BackupCommand::Restore(a) => restore_cmd(a),
        BackupCommand::Verify(a) => verify(a),
    }
}

fn create(a: CreateArgs) -> anyhow::Result<u8> {
    let repo = a.repo.open()?;
    let mut opts = BackupOptions::new(a.paths.clone());
    opts.tags = a.tags.clone();
    opts.compression = a.compression;
    if a.force {
        opts.parent = ParentChoice::None;
    }
    if let Some(t) = &a.time {
        let t =
            chrono::DateTime::parse_from_rfc3339(t).with_context(|| format!("--time {t:?} is not an RFC 3339 time"))?;
        opts.time = Some(t.with_timezone(&chrono::Utc));
    }
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(Arc::clone(&progress), "backup", a.quiet || a.json);
    let outcome = archive::backup(&repo, &opts, progress)?;
    drop(display);
    let s = &outcome.snapshot;
    for e in &s.errors {
        eprintln!("warning: {}: {}", e.path, e.error);
    }
    if a.json {
        json(&serde_json::json!({
            "snapshot": outcome.snapshot_id,
            "parent": outcome.parent,
            "partial": s.partial,
            "errors": s.errors,
            "summary": s.summary,
            "seconds": outcome.seconds,
        }))?;
    } else {
        let m = &s.summary;
        line(format!(
            "snapshot {} saved{}: {} files ({} new, {} changed, {} unchanged), {} dirs, {} processed, {} added ({} stored) in {:.2}s",
            outcome.snapshot_id.short(),
            if s.partial { " (PARTIAL: some files could not be read)" } else { "" },
            m.files,
            m.files_new,
            m.files_changed,
            m.files_unmodified,
            m.dirs,
            bytes(m.bytes),
            bytes(m.bytes_added),
            bytes(m.bytes_stored),
            outcome.seconds
        ));
    }
    Ok(if s.partial { exit::PARTIAL } else { exit::OK })
}

fn list(a: ListArgs) -> anyhow::Result<u8> {
    let repo = a.repo.open()?;
    let (snaps, bad) = repo.list_snapshots()?;
    for (id, e) in &bad {
        eprintln!("warning: snapshot {id} cannot be read: {e}");
    }
    if a.json {
        let v: Vec<_> = snaps
            .iter()
            .map(|(id, s)| {
                serde_json::json!({ "id": id, "time": s.time, "paths": s.paths, "hostname": s.hostname,
                    "tags": s.tags, "parent": s.parent, "partial": s.partial, "tree": s.tree, "summary": s.summary })
            })
            .collect();
        json(&v)?;
    } else {
        line(format!("{:<8}  {:<25}  {:<12}  {:>10}  paths", "id", "time", "host", "size"));
        for (id, s) in &snaps {
            let time = s.time().format("%Y-%m-%d %H:%M:%S %z").to_string();
            line(format!(
                "{:<8}  {:<25}  {:<12}  {:>10}  {}{}",
                id.short(),
                time,
                s.hostname,
                bytes(s.summary.bytes),
                s.paths.join(", "),
                if s.partial { "  (partial)" } else { "" }
            ));
        }
        line(format!("{} snapshot(s)", snaps.len()));
    }
    Ok(exit::OK)
}

fn restore_cmd(a: RestoreArgs) -> anyhow::Result<u8> {
    let repo = a.repo.open()?;
    let id = repo.resolve_snapshot(&a.snapshot)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2) * 2;
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(Arc::clone(&progress), "restore", a.quiet || a.json);
    let out = restore::restore(&repo, &id, &RestoreOptions { target: a.target.clone(), threads }, progress)?;
    drop(display);
    if a.json {
        json(&out)?;
    } else {
        line(format!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} in {:.2}s",
            id.short(),
            a.target.display(),
            out.files,
            out.dirs,
            out.symlinks,
            bytes(out.bytes),
            out.seconds
        ));
    }
    Ok(exit::OK)
}

fn verify(a: VerifyArgs) -> anyhow::Result<u8> {
    let percent = match a.read_data.as_deref() {
        None => None,
        Some(p) => {
            let v: f64 =
                p.trim_end_matches('%').parse().with_context(|| format!("--read-data={p}: not a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                anyhow::bail!("--read-data={p}: give a percentage in (0, 100]");
            }
            Some(v)
        }
    };
    let repo = a.repo.open()?;
    let quiet = a.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = check::check(&repo, &CheckOptions { read_data_percent: percent }, &mut |msg| {
        if !quiet {
            eprint!("\r\x1b[K{msg}");
        }
    })?;
    if !quiet {
        eprint!("\r\x1b[K");
    }
    if a.json {
        json(&report)?;
    } else {
        for w in &report.warnings {
            line(format!("warning: {w}"));
        }
        for f in &report.findings {
            let used = if f.snapshots.is_empty() {
                String::new()
            } else {
                format!(" (used by snapshot(s) {})", f.snapshots.iter().map(|s| &s[..8]).collect::<Vec<_>>().join(", "))
            };
            line(format!("damaged: {}: {}{used}", f.object, f.problem));
        }
        line(format!(
            "{}: {} snapshot(s), {} tree(s), {} pack(s){}",
            if report.is_clean() { "no damage found" } else { "DAMAGE FOUND" },
            report.snapshots,
            report.trees,
            report.packs,
            if percent.is_some() {
                format!(
                    "; read {} pack(s), {} blob(s), {}",
                    report.packs_read,
                    report.blobs_read,
                    bytes(report.bytes_read)
                )
            } else {
                String::new()
            }
        ));
    }
    Ok(if report.is_clean() { exit::OK } else { exit::DAMAGE })
}
