//! Changing an existing job: `cron add --replace` (a new definition under the same name) and
//! `cron edit` (its schedule, command or enabled flag). The job keeps its id either way: the rows of
//! `cron_runs` reference it, so the run history stays attached to the job and nothing is left
//! pointing at a job that is gone (format-spec/gateway.md §3.4).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::store::{add_job, encode_action, find_job, refuse_if_running, sql_err, tenant_exists, Action, Job, NewJob};
use super::{CronError, CronResult, Schedule};

/// What `cron edit` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct JobChanges {
    pub schedule: Option<String>,
    /// The shell command of a custom job (or the text of a gateway job).
    pub command: Option<String>,
    pub enabled: Option<bool>,
}

impl JobChanges {
    pub fn is_empty(&self) -> bool {
        self.schedule.is_none() && self.command.is_none() && self.enabled.is_none()
    }
}

/// Whether [`replace_job`] added a job or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Added,
    /// The job of that name now has the new definition, under its old id and with its history.
    Replaced,
}

/// Add `job`, or give the tenant's job of that name `job`'s schedule, action and enabled flag.
/// Refused while a run of the old job is in progress (its process would finish under a definition
/// that no longer exists).
pub fn replace_job(conn: &Connection, job: &NewJob, now: DateTime<Utc>) -> CronResult<(Job, Replaced)> {
    let schedule = Schedule::parse(&job.schedule)?.as_str().to_string();
    if !tenant_exists(conn, &job.tenant_id)? {
        return Err(CronError::UnknownTenant(job.tenant_id.clone()));
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    let Some(old) = find_job(&tx, &job.tenant_id, &job.name)? else {
        let added = add_job(&tx, job, now)?;
        tx.commit().map_err(|e| sql_err(conn, e))?;
        return Ok((added, Replaced::Added));
    };
    refuse_if_running(&tx, &old, now)?;
    let (action, command) = encode_action(&job.action);
    tx.execute(
        "UPDATE cron_jobs SET schedule = ?2, action = ?3, command = ?4, enabled = ?5 WHERE id = ?1",
        params![old.id, schedule, action, command, job.enabled],
    )
    .map_err(|e| sql_err(conn, e))?;
    tx.commit().map_err(|e| sql_err(conn, e))?;
    Ok((Job { schedule, action, command, enabled: job.enabled, ..old }, Replaced::Replaced))
}

/// Change `changes` of the tenant's job `name`. A backup job's command is its `backup create`
/// arguments, which `cron add --replace` sets (with the same checks as `cron add`): `command` is
/// refused for it.
pub fn edit_job(
    conn: &Connection,
    tenant: &str,
    name: &str,
    changes: &JobChanges,
    now: DateTime<Utc>,
) -> CronResult<Job> {
    let bad = |reason: &str| CronError::BadJob { name: name.to_string(), reason: reason.to_string() };
    if changes.is_empty() {
        return Err(bad("nothing to change: give --schedule, --command, --enable or --disable"));
    }
    let schedule = match &changes.schedule {
        Some(s) => Some(Schedule::parse(s)?.as_str().to_string()),
        None => None,
    };
    if changes.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(bad("the command is empty"));
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|e| sql_err(conn, e))?;
    let job = find_job(&tx, tenant, name)?
        .ok_or_else(|| CronError::NotFound { tenant: tenant.to_string(), name: name.to_string() })?;
    if changes.command.is_some() && matches!(job.action()?, Action::Backup { .. }) {
        return Err(bad(
            "a backup job's command is its backup options: give them to `sophon cron add --replace --action backup`",
        ));
    }
    refuse_if_running(&tx, &job, now)?;
    let job = Job {
        schedule: schedule.unwrap_or(job.schedule),
        command: changes.command.clone().unwrap_or(job.command),
        enabled: changes.enabled.unwrap_or(job.enabled),
        ..job
    };
    tx.execute(
        "UPDATE cron_jobs SET schedule = ?2, command = ?3, enabled = ?4 WHERE id = ?1",
        params![job.id, job.schedule, job.command, job.enabled],
    )
    .map_err(|e| sql_err(conn, e))?;
    tx.commit().map_err(|e| sql_err(conn, e))?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::store::{ensure_default_job, runs};
    use crate::gateway::create_home;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn replacing_a_job_keeps_its_id_and_history_and_edit_changes_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = create_home(&dir.path().join("home")).expect("home");
        let job = ensure_default_job(&conn, "0 3 * * *", utc("2030-01-01T00:00:00Z")).expect("job");
        conn.execute(
            "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary)
             VALUES (?1, ?2, '2030-01-02T03:00:00Z', '2030-01-02T03:01:00Z', 'ok', 'snapshot saved')",
            params![job.id, job.tenant_id],
        )
        .expect("run");
        let new = NewJob {
            tenant_id: job.tenant_id.clone(),
            name: job.name.clone(),
            schedule: "30 2 * * *".into(),
            action: Action::Custom { command: "echo hi".into() },
            enabled: true,
        };
        let (replaced, how) = replace_job(&conn, &new, utc("2030-01-03T00:00:00Z")).expect("replace");
        assert_eq!(how, Replaced::Replaced);
        assert_eq!((replaced.id.as_str(), replaced.action.as_str()), (job.id.as_str(), "custom"));
        assert_eq!(find_job(&conn, &job.tenant_id, &job.name).expect("find"), Some(replaced.clone()));
        assert_eq!(runs(&conn, &job.id).expect("runs").len(), 1, "the history stays with the job");

        let changes = JobChanges { schedule: Some("0 4 * * *".into()), enabled: Some(false), ..Default::default() };
        let edited = edit_job(&conn, &job.tenant_id, &job.name, &changes, utc("2030-01-03T00:00:00Z")).expect("edit");
        assert_eq!(
            (edited.schedule.as_str(), edited.enabled, edited.command.as_str()),
            ("0 4 * * *", false, "echo hi")
        );
        let missing = edit_job(&conn, &job.tenant_id, "nope", &changes, utc("2030-01-03T00:00:00Z"));
        assert!(matches!(missing, Err(CronError::NotFound { .. })), "{missing:?}");
    }
}
