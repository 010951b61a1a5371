//! Jobs and runs in `gateway.db`, and claiming a run.
//!
//! A run is claimed by inserting its `cron_runs` row with `status = 'running'`, `finished_at` NULL
//! and the claiming process's `pid` and `host`, in a `BEGIN IMMEDIATE` transaction that first checks
//! that the job is still due and that no live claim exists. SQLite serialises those transactions
//! across processes, so two runs of one job never overlap, whether they come from one daemon, two
//! daemons or a daemon and `sophon cron run-due`. A claim is dead when its process is gone (same
//! host: no such pid, a pid now used by another process, or our own pid outside our runs in flight);
//! a claim from another host, whose pids mean nothing here, is dead once older than the stale limit.
//! Dead claims are closed as `failed` and may be taken over.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{CronError, CronResult, Schedule, DEFAULT_JOB, DEFAULT_TENANT};
use crate::gateway::GatewayError;
use crate::liveness::{process_start, Liveness, ProcessRef};

mod due;
pub use due::*;

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
    /// The process's start time (clock ticks after boot, field 22 of `/proc/PID/stat`), when known:
    /// stored with the host so that a reused pid is not mistaken for the claim's process.
    pub start: Option<u64>,
}

impl Claimant {
    pub fn this_process() -> Self {
        let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into());
        let pid = std::process::id();
        Claimant { pid, host, start: process_start(pid) }
    }

    /// The `host` column of this claimant's claims: `HOST` or `HOST#START` (a host name has no `#`).
    pub fn host_column(&self) -> String {
        match self.start {
            Some(t) => format!("{}#{t}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Split a `host` column into the host name and the claiming process's start time, if recorded.
pub fn split_host(column: &str) -> (&str, Option<u64>) {
    match column.rsplit_once('#') {
        Some((host, t)) => match t.parse() {
            Ok(t) => (host, Some(t)),
            Err(_) => (column, None),
        },
        None => (column, None),
    }
}

/// The runs this process has claimed and not yet finished, by (job id, started_at): a claim that
/// carries our own pid but is not among them was left by an earlier process that had our pid (a
/// container's daemon is pid 1 after every restart).
static HELD: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);

fn held(job_id: &str, started_at: DateTime<Utc>) -> bool {
    let g = HELD.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref().is_some_and(|h| h.contains(&(job_id.to_string(), ts(started_at))))
}

fn hold(job_id: &str, started_at: DateTime<Utc>, on: bool) {
    let mut g = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let h = g.get_or_insert_with(HashSet::new);
    let key = (job_id.to_string(), ts(started_at));
    if on {
        h.insert(key);
    } else {
        h.remove(&key);
    }
}

/// Forget a claim of this process without recording its end (when [`finish`] cannot be reached):
/// the row then looks dead to this process too, and is closed as abandoned by the next claim.
pub fn release(claim: &Claim) {
    hold(&claim.job.id, claim.started_at, false);
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

pub(super) fn sql_err(conn: &Connection, e: rusqlite::Error) -> CronError {
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

pub(super) const JOB_COLUMNS: &str = "id, tenant_id, name, schedule, action, command, enabled, created_at";
const RUN_COLUMNS: &str = "job_id, tenant_id, started_at, finished_at, status, summary, pid, host";

pub(super) fn job_row(r: &Row) -> rusqlite::Result<Job> {
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

pub(super) fn tenant_exists(conn: &Connection, tenant: &str) -> CronResult<bool> {
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

/// The job with id `id`, of any tenant.
pub fn find_job_by_id(conn: &Connection, id: &str) -> CronResult<Option<Job>> {
    conn.query_row(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = ?1"), [id], job_row)
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

/// Deal with times after `now` in the job's rows before scheduling it: a `created_at` in the future
/// is set to `now` (stored: a clamp recomputed at every look would follow the clock and the job
/// would never fall due), and runs beyond [`FUTURE_LIMIT`] are ignored (see [`last_start`]).
/// Returns a warning for each, for the scheduler's output.
pub fn settle_future(conn: &Connection, job: &Job, now: DateTime<Utc>) -> CronResult<Vec<String>> {
    let mut warnings = Vec::new();
    let now = Utc.timestamp_opt(now.timestamp(), 0).single().unwrap_or(now);
    if job.created_at > now {
        conn.execute(
            "UPDATE cron_jobs SET created_at = ?2 WHERE id = ?1 AND created_at > ?2",
            params![job.id, ts(now)],
        )
        .map_err(|e| sql_err(conn, e))?;
        warnings.push(format!(
            "created_at {} is in the future (has the clock gone back?): taken as {}",
            ts(job.created_at),
            ts(now)
        ));
    }
    if let Some(t) = last_start(conn, &job.id, now)?.ignored {
        warnings.push(format!(
            "a run started at {} is more than {} h in the future (has the clock gone back?): ignored when \
             scheduling",
            ts(t),
            FUTURE_LIMIT.num_hours()
        ));
    }
    Ok(warnings)
}

/// Whether a `running` claim is dead. On this host: its process is gone, or its pid now belongs to
/// another process (a different start time, or our own pid outside our runs in flight); a live
/// process is never declared dead by age, however long the run takes. From another host (whose
/// pids mean nothing here), or where liveness cannot be told: once it started more than
/// `stale_after` before `now`.
pub fn is_stale(run: &Run, now: DateTime<Utc>, me: &Claimant, stale_after: chrono::Duration) -> bool {
    let too_old = now - run.started_at > stale_after;
    let (Some(pid), Some(column)) = (run.pid, run.host.as_deref()) else {
        // A claim without an owner (written by another tool) is trusted until the limit.
        return too_old;
    };
    let (host, start) = split_host(column);
    if host != me.host {
        return too_old;
    }
    if pid == i64::from(me.pid) && (start.is_none() || start == me.start) {
        return !held(&run.job_id, run.started_at);
    }
    match process_alive(pid, start) {
        Some(alive) => !alive,
        None => too_old,
    }
}

/// Whether process `pid` exists and, when `start` is given, started then; `None` where this host
/// cannot tell. The claim keeps no pid table: the host name check above stands for it.
fn process_alive(pid: i64, start: Option<u64>) -> Option<bool> {
    let Ok(pid) = u32::try_from(pid) else {
        // No process has such a pid; a claim naming one is as dead as a missing pid.
        return Some(false);
    };
    match (ProcessRef { pid, start, space: None }).liveness() {
        Liveness::Alive => Some(true),
        Liveness::Dead => Some(false),
        Liveness::Unknown => None,
    }
}

/// Close the job's dead `running` claims as `failed` (inside the caller's transaction) and return
/// the live one, if any.
fn close_stale(
    tx: &Transaction<'_>,
    job: &Job,
    now: DateTime<Utc>,
    me: &Claimant,
    stale_after: chrono::Duration,
) -> CronResult<Option<Run>> {
    let conn: &Connection = tx;
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
            let why = match (r.pid, r.host.as_deref().map(split_host)) {
                (Some(p), Some((h, _))) if h == me.host => format!("the run's process (pid {p} on {h}) is gone"),
                (Some(p), Some((h, _))) => {
                    format!("the run (pid {p} on {h}) started more than {} h ago", stale_after.num_hours())
                }
                _ => format!("the run (an unknown process) started more than {} h ago", stale_after.num_hours()),
            };
            tx.execute(
                "UPDATE cron_runs SET status = 'failed', finished_at = ?3, summary = ?4
                 WHERE job_id = ?1 AND started_at = ?2 AND status = 'running'",
                params![r.job_id, ts(r.started_at), ts(now), format!("abandoned: {why}")],
            )
            .map_err(|e| sql_err(conn, e))?;
        } else {
            live = Some(r);
        }
    }
    Ok(live)
}

/// Insert the `running` row of a claim at `now` and commit; the claim is held before the row is
/// visible, so that no other thread of this process sees our pid on it and takes it for a leftover.
fn insert_claim(
    conn: &Connection,
    tx: Transaction<'_>,
    job: &Job,
    now: DateTime<Utc>,
    scheduled: DateTime<Utc>,
    summary: &str,
    me: &Claimant,
) -> CronResult<Claim> {
    hold(&job.id, now, true);
    let inserted = tx
        .execute(
            &format!("INSERT INTO cron_runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, NULL, 'running', ?4, ?5, ?6)"),
            params![job.id, job.tenant_id, ts(now), summary, me.pid, me.host_column()],
        )
        .and_then(|_| tx.commit());
    if let Err(e) = inserted {
        hold(&job.id, now, false);
        return Err(sql_err(conn, e));
    }
    Ok(Claim { job: job.clone(), started_at: now, scheduled })
}

/// Claim a run of `job` at `now` whether or not it is due: a run asked for by hand (the
/// dashboard's "run now"), recorded like any other, `summary` saying so until it ends. Dead claims
/// are closed first, as by [`claim`]; a live one makes it [`ClaimOutcome::Busy`], so a run by hand
/// never overlaps a scheduled one. The run counts as the job's last: its next occurrence is the
/// first after `now`. `agent` and `workflow` jobs are refused (the gateway runs them).
pub fn claim_now(
    conn: &Connection,
    job: &Job,
    now: DateTime<Utc>,
    me: &Claimant,
    stale_after: chrono::Duration,
    summary: &str,
) -> CronResult<ClaimOutcome> {
    if let Action::Gateway { kind } = job.action()? {
        return Err(CronError::BadJob {
            name: job.name.clone(),
            reason: format!("{kind} jobs are run by the gateway, not by sophon"),
        });
    }
    let now = Utc.timestamp_opt(now.timestamp(), 0).single().unwrap_or(now);
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    if let Some(live) = close_stale(&tx, job, now, me, stale_after)? {
        tx.commit().map_err(|e| sql_err(conn, e))?;
        return Ok(ClaimOutcome::Busy(live));
    }
    let taken: Option<String> = tx
        .query_row(
            "SELECT status FROM cron_runs WHERE job_id = ?1 AND started_at = ?2",
            params![job.id, ts(now)],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sql_err(conn, e))?;
    if let Some(status) = taken {
        // A run of this second exists (runs are keyed by whole seconds): this one would be the same row.
        let reason = format!("a run started at {} already exists ({status}); try again in a second", ts(now));
        return Err(CronError::BadJob { name: job.name.clone(), reason });
    }
    Ok(ClaimOutcome::Claimed(insert_claim(conn, tx, job, now, now, summary, me)?))
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
    let live = close_stale(&tx, job, now, me, stale_after)?;
    // Runs too far in the future are ignored (see `last_start`). A run at or after `now` makes the
    // next occurrence later than `now`, so this run's key (job, now) is never taken twice.
    let last = last_start(&tx, &job.id, now)?;
    let next = next_due(job, &schedule, last.counted, now, tz);
    let outcome = match next.filter(|d| *d <= now) {
        None => Some(ClaimOutcome::NotDue { next }),
        Some(_) => live.map(ClaimOutcome::Busy),
    };
    if let Some(outcome) = outcome {
        // Commit, not roll back: the stale claims closed above stay closed.
        tx.commit().map_err(|e| sql_err(conn, e))?;
        return Ok(outcome);
    }
    let due = next.unwrap_or(now);
    let reference = reference(job, last.counted, now);
    let scheduled =
        schedule.latest_in(&reference.with_timezone(tz), &now.with_timezone(tz)).map_or(due, |t| t.with_timezone(&Utc));
    let summary = format!("scheduled for {}", ts(scheduled));
    Ok(ClaimOutcome::Claimed(insert_claim(conn, tx, job, now, scheduled, &summary, me)?))
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
    release(claim);
    let n = conn
        .execute(
            "UPDATE cron_runs SET status = ?3, finished_at = ?4, summary = ?5
             WHERE job_id = ?1 AND started_at = ?2 AND status = 'running'",
            params![claim.job.id, ts(claim.started_at), status, ts(finished_at), summary],
        )
        .map_err(|e| sql_err(conn, e))?;
    Ok(n == 1)
}

/// Fail with [`CronError::Running`] while a live claim of `job` exists (inside the caller's
/// transaction, so that no run can start between the check and the change).
pub(super) fn refuse_if_running(tx: &Connection, job: &Job, now: DateTime<Utc>) -> CronResult<()> {
    let me = Claimant::this_process();
    for r in runs(tx, &job.id)? {
        if r.status == "running" && !is_stale(&r, now, &me, chrono::Duration::hours(24)) {
            let claim = format!(
                "pid {} on {}, since {}",
                r.pid.map_or("?".into(), |p| p.to_string()),
                r.host.as_deref().map_or("?", |h| split_host(h).0),
                ts(r.started_at)
            );
            return Err(CronError::Running { tenant: job.tenant_id.clone(), name: job.name.clone(), claim });
        }
    }
    Ok(())
}

/// Remove a job and its run history (the history's rows reference the job). Refused while a live
/// claim exists. Returns the number of runs removed.
pub fn remove_job(conn: &Connection, job: &Job, now: DateTime<Utc>) -> CronResult<usize> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    refuse_if_running(&tx, job, now)?;
    let n = tx.execute("DELETE FROM cron_runs WHERE job_id = ?1", [&job.id]).map_err(|e| sql_err(conn, e))?;
    tx.execute("DELETE FROM cron_jobs WHERE id = ?1", [&job.id]).map_err(|e| sql_err(conn, e))?;
    tx.commit().map_err(|e| sql_err(conn, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests;
