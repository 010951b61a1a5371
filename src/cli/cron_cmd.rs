//! `sophon cron …`: scheduled jobs of a gateway home (format-spec/gateway.md §3.4).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Local, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use sophon::cron::edit::{self, JobChanges, Replaced};
use sophon::cron::store::{self, Action, Job, NewJob};
use sophon::cron::template;
use sophon::cron::{self, CronError, DaemonOptions, Event, FixedClock, Runner, Schedule, SystemClock};
use sophon::gateway::open_home;

use super::backup_cmd::parse_time;
use super::export_cmd::FormatArg;
use super::gateway_cmd::HomeArg;
use super::output::{json, line};
use super::{exit, UsageError};

// Parsed once per process: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum CronCommand {
    /// Add a job: a backup (`--action backup` with backup options) or a shell command.
    Add(AddArgs),
    /// Change a job's schedule, command or enabled flag (its run history is kept).
    Edit(EditArgs),
    /// List the jobs with their next and last runs.
    List(ListArgs),
    /// Remove a job and its run history.
    Rm(RmArgs),
    /// Run every job that is due once, then exit (exit code 1 when a run failed).
    RunDue(RunDueArgs),
    /// Run jobs as they fall due until stopped (SIGTERM, SIGINT).
    Daemon(DaemonArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionArg {
    /// `sophon backup create` with the options given here, then `backup forget --prune`.
    Backup,
    /// `sh -c COMMAND`.
    Custom,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// The job's name, unique within its tenant.
    #[arg(long)]
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), in the server's
    /// local time zone, e.g. "0 3 * * *".
    #[arg(long, value_name = "EXPR")]
    pub schedule: String,
    /// The tenant the job belongs to (default: `default`, else the first tenant).
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
    #[arg(long, value_enum)]
    pub action: ActionArg,
    /// The shell command of a custom job (run with `sh -c`, SOPHON_HOME set).
    #[arg(long, value_name = "CMD", required_if_eq("action", "custom"))]
    pub command: Option<String>,
    /// Add the job disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Replace the tenant's job of that name, if there is one (it keeps its id and run history).
    #[arg(long)]
    pub replace: bool,
    /// A backup job without retention (by default each backup is followed by
    /// `backup forget --prune` with the gateway's lifecycle policy).
    #[arg(long)]
    pub no_retention: bool,
    /// Backup: the repository URL.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// Backup: the repository passphrase file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Backup: also export an archive to this URL ({date}, {time}, {tenant}, {snapshot} expanded).
    #[arg(long, value_name = "URL")]
    pub dest: Option<String>,
    /// Backup: also export an archive to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<String>,
    /// Backup: the archive format (zip or tar.gz).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Backup: seal the archive with the passphrase.
    #[arg(long)]
    pub encrypt: bool,
    /// Backup: gateway categories, comma-separated.
    #[arg(long, value_name = "a,b")]
    pub categories: Option<String>,
    /// Backup: a tag for each snapshot; repeat for several.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Backup: any other `backup create` options, after `--`.
    #[arg(last = true, value_name = "BACKUP OPTIONS")]
    pub backup_args: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// The job's name.
    #[arg(long)]
    pub name: String,
    /// The job's tenant (default: the default tenant).
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
    /// A new five-field cron expression.
    #[arg(long, value_name = "EXPR")]
    pub schedule: Option<String>,
    /// A new shell command (custom jobs; a backup job's options are changed with `cron add --replace`).
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// Enable the job.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Disable the job (it stays listed, with its history).
    #[arg(long)]
    pub disable: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub home: HomeArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    pub home: HomeArg,
    #[arg(long)]
    pub name: String,
    /// The job's tenant (default: the default tenant).
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunDueArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// Act as if it were this time (RFC 3339): runs are due and recorded at it.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub home: HomeArg,
    /// Re-read the jobs at least this often (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub rescan: u32,
    /// Stop once this time (RFC 3339) is reached, after the runs in progress end.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: CronCommand) -> anyhow::Result<u8> {
    match cmd {
        CronCommand::Add(a) => add(a),
        CronCommand::Edit(a) => edit(a),
        CronCommand::List(a) => list(a),
        CronCommand::Rm(a) => rm(a),
        CronCommand::RunDue(a) => run_due(a),
        CronCommand::Daemon(a) => daemon(a),
    }
}

/// Usage mistakes (a bad expression, an unknown tenant or job) exit with code 2.
fn cron_err(e: CronError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Options of `backup create` whose value is a local path (or a URL, left as it is).
const PATH_OPTIONS: [&str; 5] = ["--repo", "--passphrase-file", "--cache-dir", "--dest", "--out"];

/// Local paths become absolute: the job runs later, from another working directory.
fn absolute_location(s: &str) -> anyhow::Result<String> {
    if s == "-" || s.contains("://") || s.starts_with("memory:") {
        return Ok(s.to_string());
    }
    let p = std::path::absolute(s).with_context(|| format!("resolving {s}"))?;
    Ok(p.to_string_lossy().into_owned())
}

/// `backup create`'s own parser, to check a backup job's options when it is added.
#[derive(Parser, Debug)]
#[command(name = "backup create", no_binary_name = true)]
struct CreateProbe {
    #[command(flatten)]
    args: super::backup_cmd::CreateArgs,
}

fn backup_args(a: &AddArgs) -> anyhow::Result<Vec<String>> {
    // Paths are made absolute below, with those given after `--`.
    let mut args = Vec::new();
    if let Some(r) = &a.repo {
        args.extend(["--repo".to_string(), r.clone()]);
    }
    if let Some(f) = &a.passphrase_file {
        args.extend(["--passphrase-file".to_string(), f.to_string_lossy().into_owned()]);
    }
    if let Some(d) = &a.dest {
        args.extend(["--dest".to_string(), d.clone()]);
    }
    if let Some(o) = &a.out {
        args.extend(["--out".to_string(), o.clone()]);
    }
    if let Some(f) = a.format {
        args.extend(["--format".to_string(), sophon::export::Format::from(f).name().to_string()]);
    }
    if a.encrypt {
        args.push("--encrypt".into());
    }
    if let Some(c) = &a.categories {
        args.extend(["--categories".to_string(), c.clone()]);
    }
    for t in &a.tags {
        args.extend(["--tag".to_string(), t.clone()]);
    }
    for extra in &a.backup_args {
        let flag = extra.split('=').next().unwrap_or_default();
        if ["--home", "--time"].contains(&flag) {
            return Err(UsageError(format!("{flag} is set by the scheduler, not stored in the job")).into());
        }
    }
    args.extend(a.backup_args.iter().cloned());
    // Path options after `--` too: `--opt VALUE` and `--opt=VALUE`.
    let mut i = 0;
    while i < args.len() {
        let (flag, value, at) = match args[i].split_once('=') {
            Some((f, v)) if PATH_OPTIONS.contains(&f) => (f.to_string(), v.to_string(), None),
            _ if PATH_OPTIONS.contains(&args[i].as_str()) && i + 1 < args.len() => {
                (args[i].clone(), args[i + 1].clone(), Some(i + 1))
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if flag == "--out" && value == "-" {
            // Standard output of a scheduled run is a pipe that is read for the summary and dropped.
            let msg = "--out -: a scheduled backup cannot write its archive to standard output; give a file or --dest";
            return Err(UsageError(msg.into()).into());
        }
        let abs = absolute_location(&value)?;
        match at {
            Some(j) => {
                args[j] = abs;
                i = j + 1;
            }
            None => {
                args[i] = format!("{flag}={abs}");
                i += 1;
            }
        }
    }
    match CreateProbe::try_parse_from(&args) {
        Ok(probe) => {
            // Checked now, not at the first run: a scheduled run would fail every night.
            probe.args.archive.archive_format().map_err(|e| UsageError(format!("backup options {args:?}: {e}")))?;
        }
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid backup options").trim_start_matches("error: ");
            return Err(UsageError(format!("backup options {args:?}: {first}")).into());
        }
    }
    Ok(args)
}

fn add(a: AddArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    Schedule::parse(&a.schedule).map_err(|e| cron_err(e.into()))?;
    let has_backup_opts = a.repo.is_some()
        || a.passphrase_file.is_some()
        || a.dest.is_some()
        || a.out.is_some()
        || a.format.is_some()
        || a.encrypt
        || a.categories.is_some()
        || !a.tags.is_empty()
        || !a.backup_args.is_empty()
        || a.no_retention;
    let action = match a.action {
        ActionArg::Backup if a.command.is_some() => {
            return Err(UsageError("--command is for --action custom; a backup job takes backup options".into()).into())
        }
        ActionArg::Backup => Action::Backup { args: backup_args(&a)?, retention: !a.no_retention },
        ActionArg::Custom if has_backup_opts => {
            return Err(UsageError("backup options are for --action backup".into()).into())
        }
        ActionArg::Custom => {
            let command = a.command.clone().unwrap_or_default();
            if command.trim().is_empty() {
                return Err(UsageError("--command is empty".into()).into());
            }
            Action::Custom { command }
        }
    };
    warn_frozen_dates(&action);
    let conn = open_home(home)?;
    let tenant = store::resolve_tenant(&conn, a.tenant.as_deref()).map_err(cron_err)?;
    let new =
        NewJob { tenant_id: tenant, name: a.name.clone(), schedule: a.schedule.clone(), action, enabled: !a.disabled };
    let (job, verb) = if a.replace {
        match edit::replace_job(&conn, &new, Utc::now()).map_err(cron_err)? {
            (job, Replaced::Added) => (job, "added"),
            (job, Replaced::Replaced) => (job, "replaced"),
        }
    } else {
        (store::add_job(&conn, &new, Utc::now()).map_err(cron_err)?, "added")
    };
    let counted = store::last_start(&conn, &job.id, Utc::now()).map_err(cron_err)?.counted;
    let next = job.schedule().ok().and_then(|s| store::next_due(&job, &s, counted, Utc::now(), &Local));
    if a.json {
        let mut v = job_json(&job, next, None);
        v["replaced"] = serde_json::Value::Bool(verb == "replaced");
        json(&v)?;
    } else {
        line(format!(
            "{verb} job {}/{} ({}, {}); next run {}",
            job.tenant_id,
            job.name,
            job.schedule,
            job.action,
            next.map_or("never".into(), local)
        ))?;
    }
    Ok(exit::OK)
}

/// A date the shell froze into the job's command (`$(date …)` expanded when the job was added).
fn warn_frozen_dates(action: &Action) {
    let text = match action {
        Action::Custom { command } => command.clone(),
        Action::Backup { args, .. } => args.join(" "),
        Action::Gateway { .. } => return,
    };
    if let Some(w) = template::frozen_date_warning(&text) {
        eprintln!("warning: {w}");
    }
}

fn edit(a: EditArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let changes = JobChanges {
        schedule: a.schedule.clone(),
        command: a.command.clone(),
        enabled: if a.enable {
            Some(true)
        } else if a.disable {
            Some(false)
        } else {
            None
        },
    };
    if let Some(c) = &changes.command {
        warn_frozen_dates(&Action::Custom { command: c.clone() });
    }
    let conn = open_home(home)?;
    let tenant = store::resolve_tenant(&conn, a.tenant.as_deref()).map_err(cron_err)?;
    let job = edit::edit_job(&conn, &tenant, &a.name, &changes, Utc::now()).map_err(cron_err)?;
    let next = store::next_run(&conn, &job, Utc::now(), &Local).map_err(cron_err)?;
    if a.json {
        json(&job_json(&job, next, None))?;
    } else {
        line(format!(
            "changed job {}/{} ({}, {}, {}); next run {}",
            job.tenant_id,
            job.name,
            job.schedule,
            job.action,
            if job.enabled { "enabled" } else { "disabled" },
            next.map_or("never".into(), local)
        ))?;
    }
    Ok(exit::OK)
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M %:z").to_string()
}

fn job_json(job: &Job, next: Option<DateTime<Utc>>, last: Option<&store::Run>) -> serde_json::Value {
    let (args, retention) = match job.action() {
        Ok(Action::Backup { args, retention }) => (Some(args), Some(retention)),
        _ => (None, None),
    };
    serde_json::json!({
        "id": job.id,
        "tenant": job.tenant_id,
        "name": job.name,
        "schedule": job.schedule,
        "action": job.action,
        "command": job.command,
        "backup_args": args,
        "retention": retention,
        "enabled": job.enabled,
        "runs_here": job.runs_here(),
        "created_at": job.created_at,
        "next_run": next,
        "last_run": last,
    })
}

fn list(a: ListArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let conn = open_home(home)?;
    let rows: Vec<_> = store::overview(&conn, Utc::now(), &Local)
        .map_err(cron_err)?
        .into_iter()
        .map(|s| (s.job, s.next_run, s.last_run))
        .collect();
    if a.json {
        let v: Vec<_> = rows.iter().map(|(j, n, l)| job_json(j, *n, l.as_ref())).collect();
        json(&v)?;
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        line("no jobs")?;
        return Ok(exit::OK);
    }
    let header = ["tenant", "name", "schedule", "action", "enabled", "next run", "last run"];
    let mut table: Vec<[String; 7]> = vec![header.map(str::to_string)];
    for (job, next, last) in &rows {
        let next = match (job.schedule(), next) {
            (Err(_), _) => "invalid schedule".to_string(),
            (_, Some(n)) if job.runs_here() => local(*n),
            (_, Some(n)) => format!("{} (gateway)", local(*n)),
            (_, None) => "-".to_string(),
        };
        let last = last.as_ref().map_or("never".to_string(), |r| format!("{} {}", local(r.started_at), r.status));
        let enabled = if job.enabled { "yes" } else { "no" };
        table.push([
            job.tenant_id.clone(),
            job.name.clone(),
            job.schedule.clone(),
            job.action.clone(),
            enabled.to_string(),
            next,
            last,
        ]);
    }
    for row in columns(&table) {
        line(row)?;
    }
    Ok(exit::OK)
}

/// The rows of a table with each column as wide as its widest cell (names and schedules have no
/// fixed length), the last column unpadded.
fn columns<const N: usize>(table: &[[String; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    table
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect::<Vec<_>>();
            cells.join(" ").trim_end().to_string()
        })
        .collect()
}

fn rm(a: RmArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let conn = open_home(home)?;
    let tenant = store::resolve_tenant(&conn, a.tenant.as_deref()).map_err(cron_err)?;
    let job = store::find_job(&conn, &tenant, &a.name)?
        .ok_or_else(|| cron_err(CronError::NotFound { tenant: tenant.clone(), name: a.name.clone() }))?;
    let runs = store::remove_job(&conn, &job, Utc::now()).map_err(cron_err)?;
    if a.json {
        json(&serde_json::json!({ "removed": job_json(&job, None, None), "runs_removed": runs }))?;
    } else {
        line(format!("removed job {}/{} and its {runs} recorded run(s)", job.tenant_id, job.name))?;
    }
    Ok(exit::OK)
}

fn runner(home: &Path) -> anyhow::Result<Runner> {
    let sophon = std::env::current_exe().context("finding the sophon binary")?;
    let home = std::path::absolute(home).with_context(|| format!("resolving {}", home.display()))?;
    Ok(Runner { sophon, home, env: Vec::new() })
}

fn printer(as_json: bool) -> impl Fn(&Event) + Sync {
    // The scheduler keeps running when its reader goes away: the runs it records in the database
    // matter, not the printed events, and the jobs in flight finish and release their claims.
    move |e: &Event| {
        let _ = if as_json { line(serde_json::to_string(e).unwrap_or_default()) } else { line(e.line()) };
    }
}

fn run_due(a: RunDueArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    let runner = runner(home)?;
    let stop = stop_on_signals()?;
    let opts = DaemonOptions::default();
    let print = printer(a.json);
    let tally = match a.now {
        Some(t) => {
            let clock = FixedClock(t);
            cron::run_due(home, &runner, &Local, &clock, &opts, &stop, &print)?
        }
        None => cron::run_due(home, &runner, &Local, &SystemClock, &opts, &stop, &print)?,
    };
    if a.json {
        line(serde_json::to_string(&serde_json::json!({ "event": "done", "tally": tally }))?)?;
    } else if tally.ok + tally.failed + tally.busy == 0 {
        line("no job is due")?;
    } else {
        line(format!("{} ok, {} failed, {} busy", tally.ok, tally.failed, tally.busy))?;
    }
    Ok(if tally.failed > 0 { exit::FAILURE } else { exit::OK })
}

/// A flag set by SIGTERM or SIGINT: the scheduler then abandons its runs cleanly. A second signal
/// exits at once (128 + the signal), for when a clean stop takes too long; the runs it leaves
/// `running` are closed as abandoned by the next scheduler (their process is gone).
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registered first, so that it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, stop.clone())
            .map_err(|e| anyhow!("installing a signal handler: {e}"))?;
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| anyhow!("installing a signal handler: {e}"))?;
    }
    Ok(stop)
}

fn daemon(a: DaemonArgs) -> anyhow::Result<u8> {
    let home = a.home.get()?;
    // Fail now, not at the first wake-up, on a missing or foreign home.
    drop(open_home(home)?);
    let until = a.until;
    let d = cron::Daemon {
        home: home.clone(),
        runner: runner(home)?,
        tz: Local,
        clock: &SystemClock,
        opts: DaemonOptions { rescan: chrono::Duration::seconds(i64::from(a.rescan)), until, ..Default::default() },
        stop: stop_on_signals()?,
    };
    let print = printer(a.json);
    if !a.json {
        line(format!(
            "{} scheduler started for {} (pid {})",
            store::ts(Utc::now()),
            home.display(),
            std::process::id()
        ))?;
    }
    let tally = d.run(&print)?;
    if a.json {
        line(serde_json::to_string(&serde_json::json!({ "event": "stopped", "tally": tally }))?)?;
    } else {
        line(format!("{} scheduler stopped: {} ok, {} failed", store::ts(Utc::now()), tally.ok, tally.failed))?;
    }
    Ok(exit::OK)
}
