//! The job store against a real SQLite home: claims, stale runs, due times.

use super::*;
use crate::gateway::create_home;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

fn run(pid: i64, host: &str, started: &str) -> Run {
    Run {
        job_id: "j".into(),
        tenant_id: "t".into(),
        started_at: utc(started),
        finished_at: None,
        status: "running".into(),
        summary: String::new(),
        pid: Some(pid),
        host: Some(host.into()),
    }
}

/// A home with the default job (created 2030-01-01, `0 3 * * *`).
fn home() -> (tempfile::TempDir, Connection, Job) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_home(&dir.path().join("home")).expect("home");
    let job = ensure_default_job(&conn, "0 3 * * *", utc("2030-01-01T00:00:00Z")).expect("job");
    (dir, conn, job)
}

#[test]
fn a_live_claim_on_this_host_is_never_stale_by_age() {
    let me = Claimant::this_process();
    let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = i64::from(child.id());
    let now = utc("2030-01-03T03:00:00Z");
    let day = chrono::Duration::hours(24);
    // Two days old, but its process is alive here: a long run, not a dead one.
    assert!(!is_stale(&run(pid, &me.host, "2030-01-01T03:00:00Z"), now, &me, day));
    let start = process_start(child.id()).expect("start time");
    let with_start = format!("{}#{start}", me.host);
    assert!(!is_stale(&run(pid, &with_start, "2030-01-01T03:00:00Z"), now, &me, day));
    // The same pid with another start time is another process: the claim's is gone.
    let reused = format!("{}#{}", me.host, start + 1);
    assert!(is_stale(&run(pid, &reused, "2030-01-03T02:00:00Z"), now, &me, day));
    // Another host's claim: only its age tells.
    assert!(!is_stale(&run(pid, "elsewhere", "2030-01-02T04:00:00Z"), now, &me, day));
    assert!(is_stale(&run(pid, "elsewhere", "2030-01-01T03:00:00Z"), now, &me, day));
    let _ = child.kill();
    let _ = child.wait();
    assert!(is_stale(&run(pid, &me.host, "2030-01-03T02:00:00Z"), now, &me, day), "its process is gone");
}

#[test]
fn our_own_pid_is_alive_only_for_our_runs_in_flight() {
    let (_dir, conn, job) = home();
    let me = Claimant::this_process();
    let day = chrono::Duration::hours(24);
    // A claim with our pid that this process never made: left by an earlier process with our
    // pid (a container's daemon restarted as pid 1).
    let mut r = run(i64::from(me.pid), &me.host, "2030-01-02T03:00:00Z");
    r.job_id = job.id.clone();
    assert!(is_stale(&r, utc("2030-01-02T04:00:00Z"), &me, day));
    // Our own claim, while the run is in flight, is alive; after `finish`, no longer.
    let ClaimOutcome::Claimed(c) = claim(&conn, &job, &Utc, utc("2030-01-02T03:00:00Z"), &me, day).expect("claim")
    else {
        panic!("not claimed")
    };
    let row = runs(&conn, &job.id).expect("runs").pop().expect("row");
    assert_eq!(row.host, Some(me.host_column()));
    assert!(!is_stale(&row, utc("2030-01-05T04:00:00Z"), &me, day), "held, and never stale by age");
    assert!(finish(&conn, &c, "ok", "done", utc("2030-01-02T03:01:00Z")).expect("finish"));
    assert!(is_stale(&row, utc("2030-01-02T03:02:00Z"), &me, day));
}

#[test]
fn stale_claims_closed_by_a_claim_that_finds_nothing_due_stay_closed() {
    let (_dir, conn, job) = home();
    let me = Claimant::this_process();
    conn.execute(
        "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary, pid, host)
         VALUES (?1, ?2, '2030-01-03T03:00:00Z', NULL, 'running', 'x', 999999999, ?3)",
        params![job.id, job.tenant_id, me.host],
    )
    .expect("insert");
    let got = claim(&conn, &job, &Utc, utc("2030-01-03T04:00:00Z"), &me, chrono::Duration::hours(24));
    assert!(matches!(got, Ok(ClaimOutcome::NotDue { .. })), "{got:?}");
    let r = runs(&conn, &job.id).expect("runs");
    assert_eq!(r[0].status, "failed", "{r:?}");
    assert!(r[0].summary.contains("abandoned"), "{r:?}");
}

/// A finished run written as another host (or an older version) would have written it.
fn record_run(conn: &Connection, job: &Job, started: &str, finished: &str) {
    conn.execute(
        "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary)
         VALUES (?1, ?2, ?3, ?4, 'ok', 'x')",
        params![job.id, job.tenant_id, started, finished],
    )
    .expect("insert");
}

#[test]
fn times_in_the_future_do_not_stop_the_schedule() {
    let (_dir, conn, mut job) = home();
    let me = Claimant::this_process();
    let day = chrono::Duration::hours(24);
    // Created "in 2031" (a database from a fast-clock host): taken as now, and stored so.
    conn.execute("UPDATE cron_jobs SET created_at = '2031-01-01T00:00:00Z' WHERE id = ?1", [&job.id]).expect("update");
    job.created_at = utc("2031-01-01T00:00:00Z");
    let w = settle_future(&conn, &job, utc("2030-01-05T10:00:00Z")).expect("settle");
    assert!(w.len() == 1 && w[0].contains("in the future"), "{w:?}");
    let job = find_job(&conn, &job.tenant_id, &job.name).expect("find").expect("job");
    assert_eq!(job.created_at, utc("2030-01-05T10:00:00Z"));
    let got = claim(&conn, &job, &Utc, utc("2030-01-06T03:00:00Z"), &me, day).expect("claim");
    let ClaimOutcome::Claimed(c) = got else { panic!("not claimed: {got:?}") };
    finish(&conn, &c, "ok", "done", utc("2030-01-06T03:00:10Z")).expect("finish");
    // A run recorded a year ahead is ignored (with a warning); one a little ahead counts.
    record_run(&conn, &job, "2031-06-01T03:00:00Z", "2031-06-01T03:01:00Z");
    let w = settle_future(&conn, &job, utc("2030-01-07T03:00:00Z")).expect("settle");
    assert!(w.len() == 1 && w[0].contains("2031-06-01T03:00:00Z"), "{w:?}");
    let got = claim(&conn, &job, &Utc, utc("2030-01-07T03:00:00Z"), &me, day).expect("claim");
    let ClaimOutcome::Claimed(c) = got else { panic!("not claimed: {got:?}") };
    finish(&conn, &c, "ok", "done", utc("2030-01-07T03:00:10Z")).expect("finish");
    record_run(&conn, &job, "2030-01-08T03:00:05Z", "2030-01-08T03:01:00Z");
    let got = claim(&conn, &job, &Utc, utc("2030-01-08T03:00:00Z"), &me, day).expect("claim");
    assert!(matches!(got, ClaimOutcome::NotDue { .. }), "a run 5 s ahead stands for 03:00: {got:?}");
}

#[test]
fn a_run_by_hand_is_claimed_at_once_never_beside_a_live_run_and_counts_as_the_last() {
    let (_dir, conn, job) = home();
    let me = Claimant::this_process();
    let day = chrono::Duration::hours(24);
    let now = utc("2030-01-01T01:00:00Z");
    // Not due (next at 03:00), claimed anyway.
    assert_eq!(next_run(&conn, &job, now, &Utc).expect("next"), Some(utc("2030-01-01T03:00:00Z")));
    let claim = match claim_now(&conn, &job, now, &me, day, "run now by a@b").expect("claim") {
        ClaimOutcome::Claimed(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!((claim.started_at, claim.scheduled), (now, now));
    let r = last_run(&conn, &job.id).expect("last").expect("a row");
    assert_eq!((r.status.as_str(), r.summary.as_str()), ("running", "run now by a@b"));
    // A second one while it runs: busy; the same second after it ended: refused, not a clash.
    let later = now + chrono::Duration::seconds(5);
    assert!(matches!(claim_now(&conn, &job, later, &me, day, "again"), Ok(ClaimOutcome::Busy(_))));
    assert!(finish(&conn, &claim, "ok", "done", later).expect("finish"));
    assert!(matches!(claim_now(&conn, &job, now, &me, day, "again"), Err(CronError::BadJob { .. })));
    // The run counts: the job's next occurrence is the first after it (today's 03:00 still comes).
    assert_eq!(next_run(&conn, &job, later, &Utc).expect("next"), Some(utc("2030-01-01T03:00:00Z")));
    let all = overview(&conn, later, &Utc).expect("overview");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].last_run.as_ref().map(|r| r.status.as_str()), Some("ok"));
    assert_eq!(find_job_by_id(&conn, &job.id).expect("find"), Some(job.clone()));
    // Disabled: no next run. A gateway job cannot be run by hand.
    conn.execute("UPDATE cron_jobs SET enabled = 0 WHERE id = ?1", [&job.id]).expect("disable");
    let off = find_job_by_id(&conn, &job.id).expect("find").expect("job");
    assert_eq!(next_run(&conn, &off, later, &Utc).expect("next"), None);
    let agent = Job { action: "agent".into(), ..job };
    assert!(matches!(claim_now(&conn, &agent, later, &me, day, "x"), Err(CronError::BadJob { .. })));
}
