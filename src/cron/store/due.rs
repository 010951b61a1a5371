//! When a job is due: its last start as scheduling counts it, the next run, and the overview of
//! every job with both (what `cron list` and the dashboard show).

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::*;

/// How far in the future a run's `started_at` may lie and still count as the job's last run. A
/// little ahead is a clock stepped back a bit or another host's skew: that run stands for the
/// occurrences up to it, and counting it avoids running them twice. Further ahead (a database
/// restored from a host whose clock was wrong) the run is ignored, with a warning, rather than
/// stopping the job until that time.
pub const FUTURE_LIMIT: chrono::Duration = chrono::Duration::hours(24);

/// The job's last run as far as scheduling goes, at `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastStart {
    /// The latest `started_at` not more than [`FUTURE_LIMIT`] after `now`.
    pub counted: Option<DateTime<Utc>>,
    /// The latest `started_at` beyond that limit, which is ignored.
    pub ignored: Option<DateTime<Utc>>,
}

/// The job's [`LastStart`] at `now`.
pub fn last_start(conn: &Connection, job_id: &str, now: DateTime<Utc>) -> CronResult<LastStart> {
    let limit = ts(now + FUTURE_LIMIT);
    let (counted, ignored): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT max(CASE WHEN started_at <= ?2 THEN started_at END),
                    max(CASE WHEN started_at > ?2 THEN started_at END)
             FROM cron_runs WHERE job_id = ?1",
            params![job_id, limit],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| sql_err(conn, e))?;
    let parse = |s: Option<String>| s.as_deref().map(parse_ts).transpose().map_err(|e| sql_err(conn, e));
    Ok(LastStart { counted: parse(counted)?, ignored: parse(ignored)? })
}

/// The instant the job's next occurrence is searched from: its last counted run's start, or its
/// creation. A `created_at` after `now` (a clock stepped back, a database from a fast-clock host)
/// is taken as `now`, so the job runs at its next occurrence instead of waiting for that time;
/// [`settle_future`] stores that clamp so that it does not move on with the clock.
pub fn reference(job: &Job, last_start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let created = job.created_at.min(now);
    last_start.map_or(created, |l| l.max(created))
}

/// When the job is next due after its last counted run (or its creation), in `tz`.
pub fn next_due<Tz: TimeZone>(
    job: &Job,
    schedule: &Schedule,
    last_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Option<DateTime<Utc>> {
    let reference = reference(job, last_start, now);
    schedule.next_after(&reference.with_timezone(tz)).map(|t| t.with_timezone(&Utc))
}

/// When an enabled job with a valid schedule next falls due at `now` (its occurrence after its last
/// counted run, [`next_due`], in `tz`); `None` for a disabled job or an invalid schedule. A time at
/// or before `now` means the job is due: the scheduler's next look runs it.
pub fn next_run<Tz: TimeZone>(
    conn: &Connection,
    job: &Job,
    now: DateTime<Utc>,
    tz: &Tz,
) -> CronResult<Option<DateTime<Utc>>> {
    match job.schedule() {
        Ok(s) if job.enabled => {
            let counted = last_start(conn, &job.id, now)?.counted;
            Ok(next_due(job, &s, counted, now, tz))
        }
        _ => Ok(None),
    }
}

/// A job with when it next runs and how it last ran, as `cron list` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    pub job: Job,
    /// [`next_run`].
    pub next_run: Option<DateTime<Utc>>,
    /// The latest run (by start), whatever its status.
    pub last_run: Option<Run>,
}

/// [`JobStatus`] of one job at `now`.
pub fn status<Tz: TimeZone>(conn: &Connection, job: Job, now: DateTime<Utc>, tz: &Tz) -> CronResult<JobStatus> {
    let last_run = last_run(conn, &job.id)?;
    let next_run = next_run(conn, &job, now, tz)?;
    Ok(JobStatus { job, next_run, last_run })
}

/// Every job ([`list_jobs`]'s order) with its [`JobStatus`] at `now`.
pub fn overview<Tz: TimeZone>(conn: &Connection, now: DateTime<Utc>, tz: &Tz) -> CronResult<Vec<JobStatus>> {
    list_jobs(conn)?.into_iter().map(|job| status(conn, job, now, tz)).collect()
}
