//! `sophon backup …`: create, list, restore and verify snapshots.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use sophon::archive::{self, BackupOptions, ParentChoice, Progress};
use sophon::check::{self, CheckOptions};
use sophon::gateway::{keys, Settings};
use sophon::restore::{self, RestoreOptions};
use sophon::units::Percent;
use sophon::Session;

use super::output::{bytes, json, line};
use super::progress::ProgressDisplay;
use super::{exit, RepoArgs};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Back up the gateway at --home (SOPHON_HOME), or folders given with --path; optionally export
    /// the snapshot as an archive (--out, --dest).
    Create(CreateArgs),
    /// List snapshots, oldest first.
    List(ListArgs),
    /// Restore a backup (a snapshot or an exported archive) into the gateway at --home, or a
    /// folder snapshot into --target.
    Restore(RestoreArgs),
    /// Check the repository (with --read-data also read and authenticate the stored data), or an
    /// exported archive with --in.
    Verify(VerifyArgs),
    /// Render a snapshot (of the gateway or of folders) as a zip or tar.gz archive (optionally sealed).
    Export(super::export_cmd::ExportArgs),
    /// Remove snapshots (or, with --dest, export archives) that a retention policy does not keep.
    Forget(super::forget_cmd::ForgetArgs),
    /// Delete data no snapshot uses; repack mostly-unused and small packs.
    Prune(super::forget_cmd::PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A folder (or file) to back up; repeat for several. Without it, the gateway at --home is backed up.
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// The gateway's data home (when no --path is given).
    #[arg(long, env = "SOPHON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Gateway categories to include, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    pub categories: Vec<String>,
    /// Only this tenant's records.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Include the license key (default: the config's Sophon:Backups:Default:IncludeLicense, else no).
    #[arg(long)]
    pub include_license: bool,
    /// Audit log rows at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub audit_since: Option<String>,
    /// Audit log rows before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub audit_until: Option<String>,
    /// A tag to attach to the snapshot; repeat for several.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Record this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_time)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Read every file even when the parent snapshot says it is unchanged.
    #[arg(long)]
    pub force: bool,
    /// zstd level for this backup (default: the repository's).
    #[arg(long)]
    pub compression: Option<i32>,
    #[command(flatten)]
    pub archive: super::export_cmd::ArchiveOutArgs,
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
#[command(group(clap::ArgGroup::new("source").required(true).args(["snapshot", "input"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A snapshot id (or a unique prefix of at least 4 hex digits), `latest` (refused while any
    /// snapshot cannot be read, as it may be the newest) or `latest-readable` (the newest snapshot
    /// that can be read; the unreadable ones are named on stderr).
    #[arg(long, value_name = "ID|latest|latest-readable")]
    pub snapshot: Option<String>,
    /// An exported archive (zip, tar.gz, sealed or not); the newest of an incremental chain
    /// brings in the others from its folder.
    #[arg(long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Folder to write the snapshot's files into; must be empty or absent.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["home", "mode", "only", "into_tenant", "dry_run", "input"])]
    pub target: Option<PathBuf>,
    /// Restore a gateway backup into the gateway at this home (default when no --target: SOPHON_HOME).
    #[arg(long, env = "SOPHON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// additive (default: keep what is present, quarantine what differs) or replace (wipe the
    /// tenant-scoped data of the categories in scope first).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Only these categories, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    pub only: Vec<String>,
    /// Re-home every restored record into this tenant.
    #[arg(long, value_name = "TENANT")]
    pub into_tenant: Option<String>,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for the typed confirmation that --mode replace needs.
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, short)]
    pub quiet: bool,
}

/// How a gateway restore treats what the home already holds.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Additive,
    Replace,
}

impl From<ModeArg> for sophon::gateway::restore::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Additive => Self::Additive,
            ModeArg::Replace => Self::Replace,
        }
    }
}

/// An RFC 3339 time, as every time option takes it.
pub(super) fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e})"))
}

/// `--read-data=0` would read nothing while the report says the data was read.
fn read_data_share(s: &str) -> Result<Percent, String> {
    match s.parse::<Percent>() {
        Ok(p) if p.is_zero() => Err(format!("{s:?}: give a percentage above 0 (up to 100)")),
        Ok(p) => Ok(p),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Verify an exported archive instead of a repository: manifest, checksums, metadata,
    /// version, and (sealed) the passphrase and every segment.
    #[arg(long = "in", value_name = "FILE", conflicts_with = "read_data")]
    pub input: Option<PathBuf>,
    /// Also read the data: all of it, or the given percentage of packs (e.g. --read-data=10).
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100", require_equals = true,
        value_parser = read_data_share)]
    pub read_data: Option<Percent>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: BackupCommand) -> anyhow::Result<u8> {
    match cmd {
        BackupCommand::Create(a) => create(a),
        BackupCommand::List(a) => list(a),
        BackupCommand::Restore(a) => restore_cmd(a),
        BackupCommand::Verify(VerifyArgs { input: Some(input), repo, json, .. }) => {
            super::archive_in::verify_in(&input, &repo, json)
        }
        BackupCommand::Verify(a) => verify(a),
        BackupCommand::Export(a) => super::export_cmd::export_cmd(a),
        BackupCommand::Forget(a) => super::forget_cmd::forget(a),
        BackupCommand::Prune(a) => super::forget_cmd::prune_cmd(a),
    }
}

/// The repository of a gateway backup: --repo / SOPHON_REPOSITORY, else the settings' repository,
/// created on first use under the key `gateway::keys` chooses.
fn gateway_repository(args: &RepoArgs, settings: &Settings) -> anyhow::Result<Arc<sophon::Repository>> {
    if args.repo.is_some() {
        return args.open();
    }
    let url = settings.repository_url();
    let home =
        keys::open_home_repository(settings, &args.given(), Some(args.cache_dir()), &sophon::InitOptions::default())
            .with_context(|| format!("the gateway's repository {url}"))?;
    if home.created {
        eprintln!("created repository {} at {url}, key: {}", home.repo.config().id.short(), home.key);
        if let keys::Source::KeyFile(f) = &home.key {
            eprintln!(
                "note: {} (mode 0600) is the repository's key: a secret of this home that no backup contains; \
                 keep a copy elsewhere to read the repository without the home",
                f.display()
            );
        }
    }
    Ok(Arc::new(home.repo))
}

/// The pipeline options both kinds of backup take from the command line.
fn backup_options(a: &CreateArgs, paths: Vec<PathBuf>) -> anyhow::Result<BackupOptions> {
    let mut opts = BackupOptions::new(paths);
    opts.tags = a.tags.clone();
    opts.compression = a.compression;
    if a.force {
        opts.parent = ParentChoice::None;
    }
    opts.time = a.time;
    opts.count_ahead = !(a.quiet || a.json);
    Ok(opts)
}

fn create(a: CreateArgs) -> anyhow::Result<u8> {
    // Before the backup: a refused archive name must leave no snapshot behind.
    a.archive.check_before_backup(a.tenant.as_deref())?;
    if a.paths.is_empty() {
        return create_gateway(a);
    }
    if a.archive.encrypt {
        // Before the backup too: --encrypt without a seal must leave no snapshot behind.
        a.repo.passphrase()?;
    }
    let session = Session::shared(a.repo.open()?, "backup")?;
    let opts = backup_options(&a, a.paths.clone())?;
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(Arc::clone(&progress), "backup", a.quiet || a.json);
    let outcome = archive::backup(&session, &opts, progress)?;
    drop(display);
    let export = export_after(&a, &a.repo, &session, &outcome)?;
    report_backup(&a, &outcome, None, export.as_ref())
}

/// `backup create --out`: render the snapshot just taken.
fn export_after(
    a: &CreateArgs,
    repo: &RepoArgs,
    session: &Session,
    outcome: &archive::BackupOutcome,
) -> anyhow::Result<Option<sophon::export::ExportSummary>> {
    if a.archive.out.is_none() && a.archive.dest.is_none() {
        return Ok(None);
    }
    let s = super::export_cmd::write_archive(session, &outcome.snapshot_id, &a.archive, repo, a.quiet || a.json)
        .map_err(|cause| {
            let id = outcome.snapshot_id.short();
            let target = match (&a.archive.out, &a.archive.dest) {
                (Some(out), _) => format!("--out {}", out.display()),
                (None, dest) => format!("--dest {}", dest.as_deref().unwrap_or_default()),
            };
            let repo = session.repo().backend().location();
            let message = format!(
                "{}; snapshot {id} was kept: `sophon backup export {id} --repo {repo} {target}` retries the export",
                super::edge::error_text(&cause)
            );
            anyhow::Error::new(super::edge::Kept { message, cause })
        })?;
    Ok(Some(s))
}

fn create_gateway(a: CreateArgs) -> anyhow::Result<u8> {
    use sophon::gateway::dump::DumpOptions;
    let home = a.home.clone().ok_or_else(|| {
        super::UsageError("nothing to back up: give --path DIR, or --home DIR (or SOPHON_HOME) for a gateway".into())
    })?;
    if !home.join(sophon::gateway::DB_FILE).exists() {
        anyhow::bail!("{} is not a gateway home (no {})", home.display(), sophon::gateway::DB_FILE);
    }
    let categories = a
        .categories
        .iter()
        .map(|c| {
            c.trim()
                .parse::<sophon::gateway::Category>()
                .map_err(|e| super::UsageError(format!("--categories: {e}")).into())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = Settings::load(&home)?;
    // The config's PassphraseFile is this gateway's backup passphrase, --repo or not.
    let mut repo = a.repo.clone();
    repo.settings = Some(settings.clone());
    // Before the backup: --encrypt without a seal must leave no snapshot behind.
    let seal = keys::backup_seal(&repo.given(), repo.settings.as_ref(), None, a.archive.encrypt)?;
    let session = Session::shared(gateway_repository(&repo, &settings)?, "backup")?;
    let dump_opts = DumpOptions {
        categories,
        tenant: a.tenant.clone(),
        include_license: a.include_license || settings.include_license(),
        audit_since: a.audit_since.clone(),
        audit_until: a.audit_until.clone(),
        passphrase: seal.as_ref().map(|p| p.value.clone()),
        spool_dir: Some(repo.cache_dir().join("spool")),
    };
    let opts = backup_options(&a, vec![])?;
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(Arc::clone(&progress), "backup", a.quiet || a.json);
    let (outcome, d) = sophon::gateway::backup::backup(&session, &home, &dump_opts, &opts, progress)?;
    drop(display);
    let export = export_after(&a, &repo, &session, &outcome)?;
    let protection = keys::Protection::of(&d, seal.as_ref(), export.as_ref().map(|e| e.sealed));
    if let Some(notice) = protection.notice() {
        eprintln!("{notice}");
    }
    report_backup(&a, &outcome, Some((&d, &protection)), export.as_ref())
}

fn report_backup(
    a: &CreateArgs,
    outcome: &archive::BackupOutcome,
    gateway: Option<(&sophon::gateway::dump::Dump, &keys::Protection)>,
    export: Option<&sophon::export::ExportSummary>,
) -> anyhow::Result<u8> {
    let s = &outcome.snapshot;
    for e in &s.errors {
        eprintln!("warning: {}: {}", e.path, e.error);
    }
    if a.json {
        let mut v = serde_json::json!({
            "snapshot": outcome.snapshot_id,
            "parent": outcome.parent,
            "partial": s.partial,
            "errors": s.errors,
            "summary": s.summary,
            "seconds": outcome.seconds,
        });
        if let Some((d, p)) = gateway {
            v["gateway"] = serde_json::json!({
                "categories": d.categories.iter().map(|c| c.id()).collect::<Vec<_>>(),
                "records": d.records,
                "redacted": d.redacted.len(),
                "users_to_reenrol": d.reenrol,
                "protection": p,
            });
        }
        if let Some(e) = export {
            v["export"] = serde_json::json!(e);
        }
        if a.archive.out.as_deref() == Some(std::path::Path::new("-")) {
            // Standard output carries the archive.
            eprintln!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            json(&v)?;
        }
    } else if a.archive.out.as_deref() == Some(std::path::Path::new("-")) {
        eprintln!("snapshot {} saved; archive written to standard output", outcome.snapshot_id.short());
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
        ))?;
        if let Some((d, p)) = gateway {
            let counts: Vec<String> = d.records.iter().map(|(k, v)| format!("{k} {v}")).collect();
            line(format!("gateway records: {}", counts.join(", ")))?;
            let two_factor = match (p.two_factor, &p.passphrase) {
                ("sealed", Some(source)) => format!("sealed with the passphrase of {source}"),
                ("left out", _) => format!("left out for {} user(s) (no passphrase)", p.users_to_reenrol),
                (other, _) => other.to_string(),
            };
            line(format!("{} secret value(s) redacted; 2FA secrets: {two_factor}", d.redacted.len()))?;
        }
        if let Some(e) = export {
            super::export_cmd::report(e, super::export_cmd::summary_target(&a.archive, e).as_deref(), false)?;
        }
    }
    Ok(if s.partial { exit::PARTIAL } else { exit::OK })
}

fn list(a: ListArgs) -> anyhow::Result<u8> {
    let session = Session::shared(a.repo.open()?, "list")?;
    let (snaps, bad) = session.list_snapshots()?;
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
        line(format!("{:<8}  {:<25}  {:<12}  {:>10}  paths", "id", "time", "host", "size"))?;
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
            ))?;
        }
        line(format!("{} snapshot(s)", snaps.len()))?;
    }
    Ok(exit::OK)
}

fn restore_cmd(a: RestoreArgs) -> anyhow::Result<u8> {
    if let Some(input) = &a.input {
        let home = restore_home(&a)?;
        let opened = match super::archive_in::open_for_restore(input, &a.repo, &home)? {
            Ok(opened) => opened,
            Err(code) => return Ok(code),
        };
        return restore_into_gateway(&a, &home, &opened.chain, a.repo.passphrase().ok());
    }
    let Some(target) = a.target.clone() else {
        return restore_gateway(a);
    };
    let session = Session::shared(a.repo.open()?, "restore")?;
    let id = resolve(&session, a.snapshot.as_deref())?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2) * 2;
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(Arc::clone(&progress), "restore", a.quiet || a.json);
    let out = restore::restore(&session, &id, &RestoreOptions { target: target.clone(), threads }, progress)?;
    drop(display);
    if a.json {
        json(&out)?;
    } else {
        line(format!(
            "restored snapshot {} to {}: {} files, {} dirs, {} symlinks, {} in {:.2}s",
            id.short(),
            target.display(),
            out.files,
            out.dirs,
            out.symlinks,
            bytes(out.bytes),
            out.seconds
        ))?;
    }
    Ok(exit::OK)
}

/// The snapshot `spec` names (default `latest`), saying on stderr which unreadable snapshots
/// `latest-readable` passed over.
fn resolve(session: &Session, spec: Option<&str>) -> anyhow::Result<sophon::id::SnapshotId> {
    let (id, skipped) = session.resolve_snapshot_noting(spec.unwrap_or(sophon::repo::LATEST))?;
    for (_, e) in &skipped {
        // `e` names the snapshot.
        eprintln!("warning: passed over for {} (the newest readable snapshot): {e}", id.short());
    }
    Ok(id)
}

/// The gateway home a restore goes to.
pub(super) fn restore_home(a: &RestoreArgs) -> anyhow::Result<PathBuf> {
    a.home.clone().ok_or_else(|| {
        super::UsageError(
            "restore where? give --target DIR for files, or --home DIR (or SOPHON_HOME) for a gateway".into(),
        )
        .into()
    })
}

fn restore_gateway(a: RestoreArgs) -> anyhow::Result<u8> {
    let home = restore_home(&a)?;
    // Without --repo, the repository `backup create` uses: the settings are read only then, so a
    // broken config can still be restored over from a named repository.
    let repo = if a.repo.repo.is_some() { a.repo.open()? } else { a.repo.with_home(&Settings::load(&home)?).open()? };
    let session = Session::shared(repo, "restore")?;
    let id = resolve(&session, a.snapshot.as_deref())?;
    let snap = session.load_snapshot(&id)?;
    if !sophon::source::SnapshotScope::from_paths(&snap.paths).is_gateway() {
        anyhow::bail!("snapshot {} is a folder backup, not a gateway backup: restore it with --target DIR", id.short());
    }
    let files = restore::SnapshotFiles::open(&session, &id)?;
    restore_into_gateway(&a, &home, &files, a.repo.seal()?.map(|p| p.value))
}

/// Restore a gateway backup from `src` (a snapshot or an archive) into `home`, as `a` asks.
pub(super) fn restore_into_gateway(
    a: &RestoreArgs,
    home: &std::path::Path,
    src: &dyn sophon::gateway::restore::BackupSource,
    passphrase: Option<zeroize::Zeroizing<Vec<u8>>>,
) -> anyhow::Result<u8> {
    use sophon::gateway::restore::{restore as gateway_restore, Mode, RestoreOptions as GatewayRestore};
    let only = a
        .only
        .iter()
        .map(|c| {
            c.trim().parse::<sophon::gateway::Category>().map_err(|e| super::UsageError(format!("--only: {e}")).into())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mode = a.mode.map_or(Mode::Additive, Mode::from);
    if mode == Mode::Replace && !a.dry_run && !a.yes {
        let scope = a.into_tenant.clone().unwrap_or_else(|| "all tenants in the backup".into());
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let why =
                format!("--mode replace wipes the data of {scope} first: confirm with --yes when not at a terminal");
            return Err(super::UsageError(why).into());
        }
        let expected = sophon::gateway::restore::replace_confirmation(a.into_tenant.as_deref()).to_string();
        eprint!("--mode replace wipes the existing data of {scope} for the categories restored. Type {expected:?} to go on: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != expected {
            anyhow::bail!("not confirmed; nothing changed");
        }
    }
    let opts = GatewayRestore { mode, only, into_tenant: a.into_tenant.clone(), dry_run: a.dry_run, passphrase };
    let report = gateway_restore(home, src, &opts).map_err(|e| -> anyhow::Error {
        match e {
            sophon::gateway::GatewayError::Usage(m) => super::UsageError(m).into(),
            e => e.into(),
        }
    })?;
    if a.json {
        json(&report)?;
        return Ok(exit::OK);
    }
    print_restore_report(&report, home)?;
    Ok(exit::OK)
}

/// A gateway restore's report: what needs the passphrase first, then per category and per table
/// what was added, left unchanged (a redacted value counts as equal) and quarantined.
fn print_restore_report(
    report: &sophon::gateway::restore::RestoreReport,
    home: &std::path::Path,
) -> anyhow::Result<()> {
    let hint = "Restore with --passphrase-file FILE (or SOPHON_BACKUP_PASSPHRASE) to keep it.";
    for l in report.lines(home, hint) {
        line(l)?;
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> anyhow::Result<u8> {
    let percent = a.read_data.map(Percent::get);
    let session = Session::shared(a.repo.open()?, "check")?;
    let quiet = a.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = check::check(&session, &CheckOptions { read_data_percent: percent }, &mut |msg| {
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
            line(format!("warning: {w}"))?;
        }
        for f in &report.findings {
            let used = if f.snapshots.is_empty() {
                String::new()
            } else {
                format!(" (used by snapshot(s) {})", f.snapshots.iter().map(|s| &s[..8]).collect::<Vec<_>>().join(", "))
            };
            line(format!("damaged: {}: {}{used}", f.object, f.problem))?;
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
        ))?;
    }
    Ok(if report.is_clean() { exit::OK } else { exit::DAMAGE })
}
