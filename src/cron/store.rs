//! Jobs and runs in `gateway.db`, and claiming a run.
//!
//! A run is claimed by inserting its `cron_runs` row with `status = 'running'`, `finished_at` NULL
//! and the claiming process's `pid` and `host`, in a `BEGIN IMMEDIATE` transaction that first checks
//! that the job is still due and that no live claim exists. SQLite serialises those transactions
//! across processes, so two runs of one job never overlap, whether they come from one daemon, two
//! daemons or a daemon and `sophon cron run-due`. A claim whose process is gone (same host, no such
//! pid) or that is older than the stale limit is closed as `failed` and may be taken over.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{CronError, CronResult, Schedule, DEFAULT_JOB, DEFAULT_TENANT};
use crate::gateway::GatewayError;

/// Marks a backup job without retention in its stored arguments (format-spec/gateway.md §3.4).
pub const NO_RETENTION: &str = "--no-retention";

/// A row of `cron_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub schedule: String,
    /// `backup`, `custom`, or the gateway's own `agent` / `workflow`.
    pub action: String,
    pub command: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// What a job does, decoded from `action` and `command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `sophon backup create` with these arguments, then (with `retention`) `backup forget --prune`.
    Backup { args: Vec<String>, retention: bool },
    /// `sh -c command`.
    Custom { command: String },
    /// `agent` or `workflow`: run by the gateway itself, never by this scheduler.
    Gateway { kind: String },
}

impl Job {
    /// Decode the action; a backup job's `command` must be a JSON array of strings.
    pub fn action(&self) -> CronResult<Action> {
        match self.action.as_str() {
            "backup" => {
                let args: Vec<String> = serde_json::from_str(&self.command).map_err(|e| CronError::BadJob {
                    name: self.name.clone(),
                    reason: format!("a backup job's command must be a JSON array of arguments: {e}"),
                })?;
                let retention = !args.iter().any(|a| a == NO_RETENTION);
                Ok(Action::Backup { args: args.into_iter().filter(|a| a != NO_RETENTION).collect(), retention })
            }
            "custom" => Ok(Action::Custom { command: self.command.clone() }),
            kind => Ok(Action::Gateway { kind: kind.to_string() }),
        }
    }

    /// The parsed schedule.
    pub fn schedule(&self) -> CronResult<Schedule> {
        Ok(Schedule::parse(&self.schedule)?)
    }

    /// Whether this scheduler runs the job (enabled, and an action it knows).
    pub fn runs_here(&self) -> bool {
        self.enabled && matches!(self.action.as_str(), "backup" | "custom")
    }
}

/// A row of `cron_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub job_id: String,
    pub tenant_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `ok`, `failed`, `timeout`, `skipped`, or `running` while claimed.
    pub status: String,
    pub summary: String,
    pub pid: Option<i64>,
    pub host: Option<String>,
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant_id: String,
    pub name: String,
    pub schedule: String,
    pub action: Action,
    pub enabled: bool,
}

/// Who claims a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    pub pid: u32,
    pub host: String,
}

impl Claimant {
    pub fn this_process() -> Self {
        let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into());
        Claimant { pid: std::process::id(), host }
    }
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The run is ours: its row is in the database with status `running`.
    Claimed(Claim),
    /// Nothing to do: the job's next occurrence is later (another process may just have run it).
    NotDue { next: Option<DateTime<Utc>> },
    /// Due, but a live claim of another run exists.
    Busy(Run),
}

/// A claimed run.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job: Job,
    /// The run's key (with the job id): the time it started, whole seconds.
    pub started_at: DateTime<Utc>,
    /// The occurrence the run stands for: the latest one due (a run catching up on several missed
    /// occurrences stands for the last of them).
    pub scheduled: DateTime<Utc>,
}

fn sql_err(conn: &Connection, e: rusqlite::Error) -> CronError {
    CronError::Gateway(GatewayError::sql(Path::new(conn.path().unwrap_or("gateway.db")), e))
}

/// RFC 3339 UTC with whole seconds, as every time in `gateway.db`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

const JOB_COLUMNS: &str = "id, tenant_id, name, schedule, action, command, enabled, created_at";
const RUN_COLUMNS: &str = "job_id, tenant_id, started_at, finished_at, status, summary, pid, host";

fn job_row(r: &Row) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        schedule: r.get(3)?,
        action: r.get(4)?,
        command: r.get(5)?,
        enabled: r.get::<_, i64>(6)? != 0,
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
    })
}

fn run_row(r: &Row) -> rusqlite::Result<Run> {
    Ok(Run {
        job_id: r.get(0)?,
        tenant_id: r.get(1)?,
        started_at: parse_ts(&r.get::<_, String>(2)?)?,
        finished_at: r.get::<_, Option<String>>(3)?.as_deref().map(parse_ts).transpose()?,
        status: r.get(4)?,
        summary: r.get(5)?,
        pid: r.get(6)?,
        host: r.get(7)?,
    })
}

/// The tenant a job belongs to when none is named: `default` if it exists, else the first tenant
/// created (lowest rowid).
pub fn default_tenant(conn: &Connection) -> CronResult<Option<String>> {
    conn.query_row("SELECT id FROM tenants ORDER BY id = ?1 DESC, rowid LIMIT 1", [DEFAULT_TENANT], |r| r.get(0))
        .optional()
        .map_err(|e| sql_err(conn, e))
}

fn tenant_exists(conn: &Connection, tenant: &str) -> CronResult<bool> {
    conn.query_row("SELECT 1 FROM tenants WHERE id = ?1", [tenant], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(|e| sql_err(conn, e))
}

/// `tenant`, checked, or the default tenant.
pub fn resolve_tenant(conn: &Connection, tenant: Option<&str>) -> CronResult<String> {
    match tenant {
        Some(t) if tenant_exists(conn, t)? => Ok(t.to_string()),
        Some(t) => Err(CronError::UnknownTenant(t.to_string())),
        None => default_tenant(conn)?.ok_or(CronError::NoTenant),
    }
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Ids need to be unique, not secret: the clock's nanoseconds will do.
        b = Utc::now().timestamp_nanos_opt().unwrap_or(0).to_le_bytes();
    }
    format!("cron_{}", hex::encode(b))
}

/// The `action` and `command` columns of an action.
pub fn encode_action(a: &Action) -> (String, String) {
    match a {
        Action::Backup { args, retention } => {
            let mut all = args.clone();
            if !retention {
                all.push(NO_RETENTION.to_string());
            }
            ("backup".into(), serde_json::Value::from(all).to_string())
        }
        Action::Custom { command } => ("custom".into(), command.clone()),
        Action::Gateway { kind } => (kind.clone(), String::new()),
    }
}

/// Add a job. The schedule is checked; the name must be new for the tenant.
pub fn add_job(conn: &Connection, job: &NewJob, now: DateTime<Utc>) -> CronResult<Job> {
    Schedule::parse(&job.schedule)?;
    if !tenant_exists(conn, &job.tenant_id)? {
        return Err(CronError::UnknownTenant(job.tenant_id.clone()));
    }
    if find_job(conn, &job.tenant_id, &job.name)?.is_some() {
        return Err(CronError::Duplicate { tenant: job.tenant_id.clone(), name: job.name.clone() });
    }
    let (action, command) = encode_action(&job.action);
    let row = Job {
        id: new_id(),
        tenant_id: job.tenant_id.clone(),
        name: job.name.clone(),
        schedule: Schedule::parse(&job.schedule)?.as_str().to_string(),
        action,
        command,
        enabled: job.enabled,
        created_at: Utc.timestamp_opt(now.timestamp(), 0).single().unwrap_or(now),
    };
    conn.execute(
        &format!("INSERT INTO cron_jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            row.id,
            row.tenant_id,
            row.name,
            row.schedule,
            row.action,
            row.command,
            row.enabled,
            ts(row.created_at)
        ],
    )
    .map_err(|e| sql_err(conn, e))?;
    Ok(row)
}

/// The default job of a new home: `nightly-backup`, a backup with retention on `schedule`, owned by
/// the default tenant (a `default` tenant is created when the home has none). Returns the job,
/// which is left as it is when it exists already.
pub fn ensure_default_job(conn: &Connection, schedule: &str, now: DateTime<Utc>) -> CronResult<Job> {
    let tenant = match default_tenant(conn)? {
        Some(t) => t,
        None => {
            conn.execute(
                "INSERT INTO tenants (id, name, tier, created_at) VALUES (?1, 'Default', 'community', ?2)",
                params![DEFAULT_TENANT, ts(now)],
            )
            .map_err(|e| sql_err(conn, e))?;
            DEFAULT_TENANT.to_string()
        }
    };
    if let Some(job) = find_job(conn, &tenant, DEFAULT_JOB)? {
        return Ok(job);
    }
    let job = NewJob {
        tenant_id: tenant,
        name: DEFAULT_JOB.into(),
        schedule: schedule.into(),
        action: Action::Backup { args: Vec::new(), retention: true },
        enabled: true,
    };
    add_job(conn, &job, now)
}

/// Every job, by tenant and name.
pub fn list_jobs(conn: &Connection) -> CronResult<Vec<Job>> {
    let mut st = conn
        .prepare(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs ORDER BY tenant_id, name"))
        .map_err(|e| sql_err(conn, e))?;
    let rows = st.query_map([], job_row).map_err(|e| sql_err(conn, e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| sql_err(conn, e))
}

pub fn find_job(conn: &Connection, tenant: &str, name: &str) -> CronResult<Option<Job>> {
    conn.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE tenant_id = ?1 AND name = ?2"),
        [tenant, name],
        job_row,
    )
    .optional()
    .map_err(|e| sql_err(conn, e))
}

/// The job's runs, oldest first.
pub fn runs(conn: &Connection, job_id: &str) -> CronResult<Vec<Run>> {
    let mut st = conn
        .prepare(&format!("SELECT {RUN_COLUMNS} FROM cron_runs WHERE job_id = ?1 ORDER BY started_at"))
        .map_err(|e| sql_err(conn, e))?;
    let rows = st.query_map([job_id], run_row).map_err(|e| sql_err(conn, e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| sql_err(conn, e))
}

pub fn last_run(conn: &Connection, job_id: &str) -> CronResult<Option<Run>> {
    conn.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM cron_runs WHERE job_id = ?1 ORDER BY started_at DESC LIMIT 1"),
        [job_id],
        run_row,
    )
    .optional()
    .map_err(|e| sql_err(conn, e))
}

/// When the job is next due after its last run (or its creation), in `tz`.
pub fn next_due<Tz: TimeZone>(
    job: &Job,
    schedule: &Schedule,
    last_start: Option<DateTime<Utc>>,
    tz: &Tz,
) -> Option<DateTime<Utc>> {
    let reference = last_start.map_or(job.created_at, |l| l.max(job.created_at));
    schedule.next_after(&reference.with_timezone(tz)).map(|t| t.with_timezone(&Utc))
}

/// Whether a `running` claim is dead: its process is gone (same host only: another host's pids
/// mean nothing here), or it started more than `stale_after` before `now`.
pub fn is_stale(run: &Run, now: DateTime<Utc>, me: &Claimant, stale_after: chrono::Duration) -> bool {
    if now - run.started_at > stale_after {
        return true;
    }
    match (run.pid, run.host.as_deref()) {
        (Some(pid), Some(host)) if host == me.host => !process_alive(pid),
        // A claim without an owner (written by another tool) is trusted until the limit.
        _ => false,
    }
}

fn process_alive(pid: i64) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true; // no way to tell without /proc: rely on the age limit
    }
    proc.join(pid.to_string()).exists()
}

/// Claim the job's due run at `now` (see the module doc). Stale claims are closed as `failed`
/// first. The new row's `started_at` is `now` in whole seconds.
pub fn claim<Tz: TimeZone>(
    conn: &Connection,
    job: &Job,
    tz: &Tz,
    now: DateTime<Utc>,
    me: &Claimant,
    stale_after: chrono::Duration,
) -> CronResult<ClaimOutcome> {
    let schedule = job.schedule()?;
    let now = Utc.timestamp_opt(now.timestamp(), 0).single().unwrap_or(now);
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    let running: Vec<Run> = {
        let mut st = tx
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM cron_runs WHERE job_id = ?1 AND status = 'running'"))
            .map_err(|e| sql_err(conn, e))?;
        let rows = st.query_map([&job.id], run_row).map_err(|e| sql_err(conn, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| sql_err(conn, e))?
    };
    let mut live = None;
    for r in running {
        if is_stale(&r, now, me, stale_after) {
            let who = match (r.pid, &r.host) {
                (Some(p), Some(h)) => format!("pid {p} on {h}"),
                _ => "an unknown process".to_string(),
            };
            tx.execute(
                "UPDATE cron_runs SET status = 'failed', finished_at = ?3, summary = ?4
                 WHERE job_id = ?1 AND started_at = ?2 AND status = 'running'",
                params![r.job_id, ts(r.started_at), ts(now), format!("abandoned: the run's process ({who}) is gone")],
            )
            .map_err(|e| sql_err(conn, e))?;
        } else {
            live = Some(r);
        }
    }
    let last_start: Option<String> = tx
        .query_row("SELECT max(started_at) FROM cron_runs WHERE job_id = ?1", [&job.id], |r| r.get(0))
        .map_err(|e| sql_err(conn, e))?;
    let last_start = last_start.as_deref().map(parse_ts).transpose().map_err(|e| sql_err(conn, e))?;
    let next = next_due(job, &schedule, last_start, tz);
    let Some(due) = next.filter(|d| *d <= now) else {
        return Ok(ClaimOutcome::NotDue { next });
    };
    if let Some(r) = live {
        return Ok(ClaimOutcome::Busy(r));
    }
    if last_start.is_some_and(|l| l >= now) {
        return Ok(ClaimOutcome::NotDue { next });
    }
    let reference = last_start.map_or(job.created_at, |l| l.max(job.created_at));
    let scheduled =
        schedule.latest_in(&reference.with_timezone(tz), &now.with_timezone(tz)).map_or(due, |t| t.with_timezone(&Utc));
    tx.execute(
        &format!("INSERT INTO cron_runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, NULL, 'running', ?4, ?5, ?6)"),
        params![job.id, job.tenant_id, ts(now), format!("scheduled for {}", ts(scheduled)), me.pid, me.host],
    )
    .map_err(|e| sql_err(conn, e))?;
    tx.commit().map_err(|e| sql_err(conn, e))?;
    Ok(ClaimOutcome::Claimed(Claim { job: job.clone(), started_at: now, scheduled }))
}

/// Record the end of a claimed run. Returns false when the claim was no longer ours (taken over as
/// stale, or the job removed), in which case nothing is written.
pub fn finish(
    conn: &Connection,
    claim: &Claim,
    status: &str,
    summary: &str,
    finished_at: DateTime<Utc>,
) -> CronResult<bool> {
    let n = conn
        .execute(
            "UPDATE cron_runs SET status = ?3, finished_at = ?4, summary = ?5
             WHERE job_id = ?1 AND started_at = ?2 AND status = 'running'",
            params![claim.job.id, ts(claim.started_at), status, ts(finished_at), summary],
        )
        .map_err(|e| sql_err(conn, e))?;
    Ok(n == 1)
}

/// Remove a job and its run history (the history's rows reference the job). Refused while a live
/// claim exists. Returns the number of runs removed.
pub fn remove_job(conn: &Connection, job: &Job, now: DateTime<Utc>) -> CronResult<usize> {
    let me = Claimant::this_process();
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    for r in runs(&tx, &job.id)? {
        if r.status == "running" && !is_stale(&r, now, &me, chrono::Duration::hours(24)) {
            let claim = format!(
                "pid {} on {}, since {}",
                r.pid.map_or("?".into(), |p| p.to_string()),
                r.host.as_deref().unwrap_or("?"),
                ts(r.started_at)
            );
            return Err(CronError::Running { tenant: job.tenant_id.clone(), name: job.name.clone(), claim });
        }
    }
    let n = tx.execute("DELETE FROM cron_runs WHERE job_id = ?1", [&job.id]).map_err(|e| sql_err(conn, e))?;
    tx.execute("DELETE FROM cron_jobs WHERE id = ?1", [&job.id]).map_err(|e| sql_err(conn, e))?;
    tx.commit().map_err(|e| sql_err(conn, e))?;
    Ok(n)
}
