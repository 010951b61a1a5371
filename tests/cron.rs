//! The scheduler: cron expressions (incl. DST and Vixie's day-of-month/day-of-week OR), jobs and
//! their history through the CLI, missed runs, failures, overlap, the v1 → v2 schema upgrade, and a
//! simulated month of nightly backups with retention.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, TimeZone, Utc};
use common::*;
use serde_json::Value;
use sophon::cron::{Daemon, DaemonOptions, Event, EventKind, Runner, Schedule, SimulatedClock};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn next_in<Tz: TimeZone>(expr: &str, tz: &Tz, after: &str) -> String {
    let after = utc(after).with_timezone(tz);
    let next = Schedule::parse(expr).unwrap().next_after(&after).unwrap();
    next.with_timezone(&Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn next_occurrence_table_in_utc() {
    let cases = [
        // (expression, after, expected next)
        ("0 3 * * *", "2025-01-31T03:00:00Z", "2025-02-01T03:00:00Z"),
        ("*/10 9-17 * * MON-FRI", "2025-10-03T17:55:00Z", "2025-10-06T09:00:00Z"), // Friday evening → Monday
        ("0 12 1,15 * *", "2025-02-15T12:00:00Z", "2025-03-01T12:00:00Z"),
        // Vixie: both day fields restricted → the 13th OR any Friday.
        ("0 0 13 * FRI", "2025-06-01T00:00:00Z", "2025-06-06T00:00:00Z"),
        ("0 0 13 * FRI", "2025-06-06T00:00:00Z", "2025-06-13T00:00:00Z"),
        ("0 0 13 * FRI", "2025-06-13T00:00:00Z", "2025-06-20T00:00:00Z"),
        // One of them `*` → only the other counts.
        ("0 0 13 * *", "2025-06-01T00:00:00Z", "2025-06-13T00:00:00Z"),
        ("0 0 * * FRI", "2025-06-06T00:00:00Z", "2025-06-13T00:00:00Z"),
        ("0 0 31 * *", "2025-04-01T00:00:00Z", "2025-05-31T00:00:00Z"),
        ("0 0 29 FEB *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("15 10 * jan,DEC sun", "2025-01-27T00:00:00Z", "2025-12-07T10:15:00Z"),
        ("0 0 * * 5-7", "2025-10-01T00:00:00Z", "2025-10-03T00:00:00Z"), // Friday to Sunday
        ("0 0 * * 0,7", "2025-10-01T00:00:00Z", "2025-10-05T00:00:00Z"),
        ("@hourly", "2025-10-01T00:00:00Z", "2025-10-01T01:00:00Z"),
    ];
    for (expr, after, want) in cases {
        assert_eq!(next_in(expr, &Utc, after), want, "{expr} after {after}");
    }
}

#[test]
fn dst_gaps_run_after_the_gap_and_overlaps_run_once() {
    let ny = chrono_tz::America::New_York;
    // 2025-03-09: 02:00 EST → 03:00 EDT. 02:30 does not exist: it runs at 03:00 EDT (07:00Z).
    assert_eq!(next_in("30 2 * * *", &ny, "2025-03-08T12:00:00Z"), "2025-03-09T07:00:00Z");
    assert_eq!(next_in("30 2 * * *", &ny, "2025-03-09T07:00:00Z"), "2025-03-10T06:30:00Z");
    // Several skipped times collapse into one run at the end of the gap.
    assert_eq!(next_in("*/20 2 * * *", &ny, "2025-03-09T06:59:00Z"), "2025-03-09T07:00:00Z");
    assert_eq!(next_in("*/20 2 * * *", &ny, "2025-03-09T07:00:00Z"), "2025-03-10T06:00:00Z");
    // 2025-11-02: 02:00 EDT → 01:00 EST. 01:30 happens twice: it runs at the first (05:30Z) only.
    assert_eq!(next_in("30 1 * * *", &ny, "2025-11-01T12:00:00Z"), "2025-11-02T05:30:00Z");
    assert_eq!(next_in("30 1 * * *", &ny, "2025-11-02T05:30:00Z"), "2025-11-03T06:30:00Z");
    // The repeated hour does not fire again, even for a frequent job.
    assert_eq!(next_in("*/30 * * * *", &ny, "2025-11-02T05:30:00Z"), "2025-11-02T07:00:00Z");
    // A nightly 03:00 job is not affected: local 03:00 every day, 24 or 23/25 hours apart.
    assert_eq!(next_in("0 3 * * *", &ny, "2025-03-08T08:00:00Z"), "2025-03-09T07:00:00Z");
    assert_eq!(next_in("0 3 * * *", &ny, "2025-11-01T07:00:00Z"), "2025-11-02T08:00:00Z");
    let berlin = chrono_tz::Europe::Berlin;
    // 2025-03-30: 02:00 CET → 03:00 CEST.
    assert_eq!(next_in("0 2 * * *", &berlin, "2025-03-29T12:00:00Z"), "2025-03-30T01:00:00Z");
    // 2025-10-26: 03:00 CEST → 02:00 CET; 02:15 runs once, at its first instance (00:15Z).
    assert_eq!(next_in("15 2 * * *", &berlin, "2025-10-25T12:00:00Z"), "2025-10-26T00:15:00Z");
    assert_eq!(next_in("15 2 * * *", &berlin, "2025-10-26T00:15:00Z"), "2025-10-27T01:15:00Z");
}

#[test]
fn invalid_expressions_name_the_field() {
    for (expr, want) in [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "found 6"),
        ("0 25 * * *", "hour field \"25\": 25 is out of range 0-23"),
        ("0 0 32 * *", "day-of-month field"),
        ("0 0 * 0 *", "month field"),
        ("0 0 * * MONDAY", "day-of-week field"),
        ("0-70/5 * * * *", "minute field"),
        ("0 0 31 2,4 *", "never matches"),
    ] {
        let e = Schedule::parse(expr).unwrap_err().to_string();
        assert!(e.contains(want), "{expr}: {e}");
    }
}

/// A plain home whose default nightly job is removed, for tests of other jobs.
fn home_without_jobs() -> (tempfile::TempDir, Sophon, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
    (t, sophon, home)
}

/// A plain home (with its default `nightly-backup` job) in `work/home`.
fn plain_home(sophon: &Sophon, work: &Path) -> PathBuf {
    let home = work.join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    home
}

fn db(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("gateway.db")).unwrap()
}

/// The runs of a job, oldest first: (started_at, status, summary).
fn runs(home: &Path, job: &str) -> Vec<(String, String, String)> {
    let c = db(home);
    let mut st = c
        .prepare(
            "SELECT r.started_at, r.status, r.summary FROM cron_runs r JOIN cron_jobs j ON j.id = r.job_id
             WHERE j.name = ?1 ORDER BY r.started_at",
        )
        .unwrap();
    st.query_map([job], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn set_created(home: &Path, job: &str, at: &str) {
    db(home).execute("UPDATE cron_jobs SET created_at = ?2 WHERE name = ?1", [job, at]).unwrap();
}

fn list_json(sophon: &Sophon, home: &Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&sophon.ok(&["cron", "list", "--home", s(home), "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn add_list_rm_and_run_due_through_the_cli() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());

    // gateway init made the default job: a backup with retention at 03:00 for the default tenant.
    let jobs = list_json(&sophon, &home);
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (&jobs[0]["name"], &jobs[0]["tenant"], &jobs[0]["schedule"], &jobs[0]["action"]),
        (&Value::from("nightly-backup"), &Value::from("default"), &Value::from("0 3 * * *"), &Value::from("backup"))
    );
    assert_eq!(jobs[0]["retention"], true);
    assert_eq!(jobs[0]["backup_args"], serde_json::json!([]));

    let out = sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "hello",
        "--schedule",
        "*/15 * * * *",
        "--action",
        "custom",
        "--command",
        "echo hello from $SOPHON_HOME",
        "--json",
    ]);
    let added: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(added["action"], "custom");
    let out = sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "offsite",
        "--schedule",
        "30 4 * * SUN",
        "--action",
        "backup",
        "--repo",
        "rel-repo",
        "--dest",
        "s3://bucket/{date}.zip",
        "--encrypt",
        "--tag",
        "weekly",
        "--no-retention",
        "--json",
        "--",
        "--cache-dir",
        "rel-cache",
        "--passphrase-file=rel-pass",
    ]);
    let offsite: Value = serde_json::from_str(&out).unwrap();
    let args: Vec<String> = serde_json::from_value(offsite["backup_args"].clone()).unwrap();
    let abs = |p: &str| std::path::absolute(p).unwrap().to_str().unwrap().to_string();
    let pass = format!("--passphrase-file={}", abs("rel-pass"));
    assert_eq!(
        args,
        [
            "--repo",
            &abs("rel-repo"),
            "--dest",
            "s3://bucket/{date}.zip",
            "--encrypt",
            "--tag",
            "weekly",
            "--cache-dir",
            &abs("rel-cache"),
            &pass
        ],
        "paths after -- are made absolute too"
    );
    assert_eq!(offsite["retention"], false);
    let command: Vec<String> = serde_json::from_str(offsite["command"].as_str().unwrap()).unwrap();
    assert_eq!(command.last().map(String::as_str), Some("--no-retention"), "stored as a JSON array of arguments");

    // Usage errors: exit code 2, naming what is wrong.
    let out = sophon.run(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "x",
        "--schedule",
        "0 3 * * 8",
        "--action",
        "custom",
        "--command",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("day-of-week field \"8\""), "{out:?}");
    for bad in [
        vec!["--name", "hello", "--schedule", "* * * * *", "--action", "custom", "--command", "true"], // duplicate
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "custom", "--command", "true", "--tenant", "nope"],
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "backup", "--", "--not-an-option"],
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "backup", "--", "--time", "2025-01-01T00:00:00Z"],
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "custom"],
        // A scheduled run's standard output is not a place for an archive.
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "backup", "--out", "-"],
        vec!["--name", "y", "--schedule", "* * * * *", "--action", "backup", "--", "--out=-"],
    ] {
        let mut a = vec!["cron", "add", "--home", s(&home)];
        a.extend(bad.iter().copied());
        sophon.expect(2, &a);
    }

    let text = sophon.ok(&["cron", "list", "--home", s(&home)]);
    for want in ["nightly-backup", "hello", "offsite", "*/15 * * * *", "never"] {
        assert!(text.contains(want), "{text}");
    }

    // run-due at a fixed time: every job created before it is due once.
    for j in ["nightly-backup", "hello", "offsite"] {
        set_created(&home, j, "2030-01-01T00:00:00Z");
    }
    db(&home).execute("UPDATE cron_jobs SET enabled = 0 WHERE name = 'offsite'", []).unwrap();
    // Five minutes late: the runs start at 03:05 and stand for 03:00.
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:05:00Z", "--json"]);
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let finished: Vec<&Value> = events.iter().filter(|e| e["event"] == "finished").collect();
    assert_eq!(finished.len(), 2, "{out}");
    assert!(finished.iter().all(|e| e["status"] == "ok"), "{out}");
    assert_eq!(events.last().unwrap()["tally"]["ok"], 2);
    let hello = runs(&home, "hello");
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].0, "2030-01-02T03:05:00Z");
    assert!(hello[0].2.contains("hello from"), "{hello:?}");
    let nightly = runs(&home, "nightly-backup");
    assert_eq!((nightly[0].1.as_str(), nightly[0].0.as_str()), ("ok", "2030-01-02T03:05:00Z"));
    assert!(nightly[0].2.contains("snapshot") && nightly[0].2.contains("retention"), "{nightly:?}");
    assert!(nightly[0].2.contains("scheduled for 2030-01-02T03:00:00Z"), "{nightly:?}");
    // The snapshot carries the time it was taken, not the occurrence it catches up on.
    let repo = home.join("backups/repository");
    let list: Value = serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert!(list[0]["time"].as_str().unwrap().starts_with("2030-01-02T03:05:00"), "{list}");

    let jobs = list_json(&sophon, &home);
    let hello = jobs.iter().find(|j| j["name"] == "hello").unwrap();
    assert_eq!(hello["last_run"]["status"], "ok");
    // `cron list` schedules at the real now, for which a run in 2030 lies years ahead: it is ignored
    // (as a bogus time would be), so the next run is the next quarter hour from now.
    let next = utc(hello["next_run"].as_str().unwrap());
    assert!(next > Utc::now() && next - Utc::now() <= chrono::Duration::minutes(15), "{hello}");
    // Nothing more is due at the same instant.
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:05:00Z"]);
    assert!(out.contains("no job is due"), "{out}");

    // rm removes the job and its history; an unknown job is a usage error.
    let out = sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "hello", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs_removed"], 1);
    assert!(runs(&home, "hello").is_empty());
    assert_eq!(list_json(&sophon, &home).len(), 2);
    sophon.expect(2, &["cron", "rm", "--home", s(&home), "--name", "hello"]);
    let c = db(&home);
    let orphans: i64 = c
        .query_row("SELECT count(*) FROM cron_runs WHERE job_id NOT IN (SELECT id FROM cron_jobs)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0);
}

fn custom_job(sophon: &Sophon, home: &Path, name: &str, schedule: &str, command: &str) {
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(home),
        "--name",
        name,
        "--schedule",
        schedule,
        "--action",
        "custom",
        "--command",
        command,
    ]);
}

#[test]
fn a_missed_run_runs_once() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(&sophon, &home, "nightly", "0 3 * * *", "echo ran");
    set_created(&home, "nightly", "2030-01-01T00:00:00Z");
    // Four nights were missed: one run catches up, standing for the latest of them.
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-05T10:00:00Z", "--json"]);
    let started: Vec<Value> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|e| e["event"] == "started").collect();
    assert_eq!(started.len(), 1, "{out}");
    assert_eq!(started[0]["scheduled"], "2030-01-05T03:00:00Z");
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-05T23:00:00Z"]);
    assert_eq!(runs(&home, "nightly").len(), 1);
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-06T03:00:00Z"]);
    assert_eq!(runs(&home, "nightly").len(), 2);

    // The same through the daemon: started after three missed nights, it runs the job once.
    custom_job(&sophon, &home, "catch-up", "0 3 * * *", "true");
    set_created(&home, "catch-up", "2030-01-01T00:00:00Z");
    db(&home).execute("UPDATE cron_jobs SET enabled = 0 WHERE name = 'nightly'", []).unwrap();
    let (events, _) = simulate(&sophon, &home, "2030-01-04T12:00:00Z", "2030-01-04T13:00:00Z");
    let started: Vec<&Event> = events.iter().filter(|e| e.event == EventKind::Started).collect();
    assert_eq!(started.len(), 1, "{events:?}");
    assert_eq!(started[0].scheduled, Some(utc("2030-01-04T03:00:00Z")));
    assert_eq!(runs(&home, "catch-up").len(), 1);
}

#[test]
fn a_failing_job_is_recorded_and_retried_at_the_next_occurrence() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(
        &sophon,
        &home,
        "flaky",
        "0 * * * *",
        "echo starting; for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3",
    );
    set_created(&home, "flaky", "2030-01-01T00:00:00Z");
    let out = sophon.run(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T01:00:00Z"]);
    assert_eq!(out.status.code(), Some(1), "a failed run fails run-due");
    let r = runs(&home, "flaky");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, "failed");
    assert!(r[0].2.starts_with("exit status 3: line3"), "the exit status and the last lines of stderr: {:?}", r[0].2);
    assert!(r[0].2.ends_with("line7"), "{:?}", r[0].2);
    // No retry before the next occurrence…
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T01:59:00Z"]);
    assert_eq!(runs(&home, "flaky").len(), 1);
    // …and a retry at it.
    sophon.expect(1, &["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T02:00:00Z"]);
    let r = runs(&home, "flaky");
    assert_eq!(r.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["2030-01-01T01:00:00Z", "2030-01-01T02:00:00Z"]);
}

#[test]
fn two_concurrent_run_due_run_a_slow_job_once() {
    let (t, sophon, home) = home_without_jobs();
    let marker = t.path().join("ran");
    custom_job(&sophon, &home, "slow", "0 3 * * *", &format!("echo $$ >> {}; sleep 2", s(&marker)));
    set_created(&home, "slow", "2030-01-01T00:00:00Z");
    // A second apart, both after the occurrence: each run would get its own key, so only the
    // claim (a live run of the job, or a run at or after this instant) keeps the second one out.
    let spawn = |now: &str| {
        sophon
            .std_cmd()
            .args(["cron", "run-due", "--home", s(&home), "--now", now])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("2030-01-01T03:00:00Z"), spawn("2030-01-01T03:00:01Z"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 1, "exactly one ran");
    assert_eq!(runs(&home, "slow").len(), 1);

    // A later occurrence while a run still holds its claim (a live process) is refused as busy.
    let c = db(&home);
    let job: String = c.query_row("SELECT id FROM cron_jobs WHERE name = 'slow'", [], |r| r.get(0)).unwrap();
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    c.execute(
        "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary, pid, host)
         VALUES (?1, 'default', '2030-01-03T02:59:00Z', NULL, 'running', 'x', ?2, ?3)",
        rusqlite::params![job, std::process::id(), host],
    )
    .unwrap();
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-03T03:00:00Z"]);
    assert!(out.contains("busy") && out.contains("still in progress"), "{out}");
    // Once that process is gone (a pid that does not exist), the claim is stale and taken over.
    c.execute("UPDATE cron_runs SET pid = 999999999 WHERE status = 'running'", []).unwrap();
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-03T03:00:00Z"]);
    let r = runs(&home, "slow");
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!((r[1].1.as_str(), r[2].1.as_str()), ("failed", "ok"));
    assert!(r[1].2.contains("abandoned"), "{r:?}");
}

/// The v1 DDL of the two tables the upgrade rebuilds.
const V1_CRON: &str = "
CREATE TABLE cron_jobs (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    schedule    TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('agent', 'workflow', 'custom')),
    command     TEXT NOT NULL,
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE cron_runs (
    job_id       TEXT NOT NULL REFERENCES cron_jobs(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'timeout', 'skipped')),
    summary      TEXT NOT NULL,
    PRIMARY KEY (job_id, started_at)
);
CREATE INDEX cron_jobs_tenant ON cron_jobs (tenant_id);
CREATE INDEX cron_runs_tenant ON cron_runs (tenant_id, started_at);
";

#[test]
fn a_v1_home_is_upgraded_in_place_and_keeps_its_rows() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    // Turn it into a v1 home: the v1 tables with the demo's v1-shaped rows.
    let c = db(&home);
    c.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE jobs_keep AS SELECT * FROM cron_jobs WHERE action != 'backup';
         CREATE TABLE runs_keep AS SELECT job_id, tenant_id, started_at, finished_at, status, summary FROM cron_runs
             WHERE job_id IN (SELECT id FROM jobs_keep);
         DROP TABLE cron_runs; DROP TABLE cron_jobs;
         {V1_CRON}
         INSERT INTO cron_jobs SELECT * FROM jobs_keep;
         INSERT INTO cron_runs SELECT * FROM runs_keep;
         DROP TABLE jobs_keep; DROP TABLE runs_keep;
         PRAGMA user_version = 1;"
    ))
    .unwrap();
    let before = gateway::records(&home);
    let jobs_before: i64 = c.query_row("SELECT count(*) FROM cron_jobs", [], |r| r.get(0)).unwrap();
    let runs_before: i64 = c.query_row("SELECT count(*) FROM cron_runs", [], |r| r.get(0)).unwrap();
    assert!(jobs_before > 5 && runs_before > 100);
    drop(c);

    // A dry-run restore reads a v1 home as it is; `cron list` upgrades it.
    assert_eq!(list_json(&sophon, &home).len() as i64, jobs_before);
    let c = db(&home);
    let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 2);
    let after = gateway::records(&home);
    for (key, row) in &before {
        let got = after.get(key).unwrap_or_else(|| panic!("{key:?} lost"));
        for (col, v) in row {
            assert_eq!(got.get(col), Some(v), "{key:?}.{col}");
        }
    }
    assert_eq!(after.len(), before.len());
    let fk: i64 = c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
    // The widened CHECKs: a backup job and a running claim can be written now.
    drop(c);
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "v2-backup",
        "--schedule",
        "0 3 * * *",
        "--action",
        "backup",
    ]);
    custom_job(&sophon, &home, "v2-custom", "0 3 * * *", "true");
    set_created(&home, "v2-custom", "2030-01-01T00:00:00Z");
    let c = db(&home);
    c.execute("UPDATE cron_jobs SET enabled = 0 WHERE name != 'v2-custom'", []).unwrap();
    drop(c);
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T03:00:00Z"]);
    assert_eq!(runs(&home, "v2-custom")[0].1, "ok");
    // Every other path still works on the upgraded home.
    sophon.ok(&["gateway", "stats", "--home", s(&home), "--json"]);
}

#[test]
fn v1_backups_restore_into_v2_homes_and_v2_backups_restore() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let src = plain_home(&sophon, t.path());
    custom_job(&sophon, &src, "hello", "0 3 * * *", "echo hi");
    set_created(&src, "hello", "2030-01-01T00:00:00Z");
    sophon.ok(&["cron", "run-due", "--home", s(&src), "--now", "2030-01-01T03:00:00Z"]);
    let zip = t.path().join("b.zip");
    sophon.ok(&["backup", "create", "--home", s(&src), "--out", s(&zip), "--categories", "cron"]);

    // A v2 backup into a v2 home.
    let dst = t.path().join("dst");
    sophon.ok(&["gateway", "init", "--home", s(&dst)]);
    sophon.ok(&["backup", "restore", "--in", s(&zip), "--home", s(&dst), "--mode", "replace", "--yes"]);
    let r = runs(&dst, "hello");
    assert_eq!(r.len(), 1);
    assert!(r.iter().all(|r| r.1 == "ok"), "{r:?}");

    // A backup as a v1 home wrote it (no pid/host, schema version 1 in its metadata) into a v2 home.
    let tree = t.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let unzip = std::process::Command::new("unzip").args(["-q", s(&zip), "-d", s(&tree)]).status();
    // No silent pass: this part is the v1 compatibility check.
    assert!(unzip.as_ref().is_ok_and(|s| s.success()), "unzip (needed to build a v1 archive): {unzip:?}");
    let root = tree.join("backup");
    let meta_path = root.join("metadata.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["gateway_schema_version"] = 1.into();
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    let jobs_path = root.join("cron/jobs.json");
    let mut jobs: Value = serde_json::from_slice(&std::fs::read(&jobs_path).unwrap()).unwrap();
    let text = serde_json::to_string(&jobs).unwrap();
    assert!(text.contains("\"pid\""), "v2 rows carry the claim columns");
    for job in jobs.as_array_mut().into_iter().flatten() {
        for run in job["runs"].as_array_mut().into_iter().flatten() {
            let m = run.as_object_mut().unwrap();
            m.remove("pid");
            m.remove("host");
        }
    }
    std::fs::write(&jobs_path, serde_json::to_vec_pretty(&jobs).unwrap()).unwrap();
    // The manifest must match the edited files.
    let manifest_path = root.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        let data = std::fs::read(root.join(f["path"].as_str().unwrap())).unwrap();
        f["size"] = data.len().into();
        f["sha256"] = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data)).into();
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    // Archives of that time had no SHA256SUMS (issue 11 added it).
    std::fs::remove_file(root.join("SHA256SUMS")).unwrap();
    let v1_zip = t.path().join("v1.zip");
    let zipped = std::process::Command::new("zip").current_dir(&tree).args(["-qr", s(&v1_zip), "backup"]).status();
    assert!(zipped.unwrap().success());
    let dst2 = t.path().join("dst2");
    sophon.ok(&["gateway", "init", "--home", s(&dst2)]);
    sophon.ok(&["backup", "restore", "--in", s(&v1_zip), "--home", s(&dst2), "--mode", "replace", "--yes"]);
    let c = db(&dst2);
    let (n, pids): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(pid) FROM cron_runs r JOIN cron_jobs j ON j.id = r.job_id WHERE j.name = 'hello'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, pids), (1, 0), "the v1 rows come in with no claim columns");
}

/// Run the daemon over a simulated clock from `start` to `until`; returns its events.
fn simulate(sophon: &Sophon, home: &Path, start: &str, until: &str) -> (Vec<Event>, sophon::cron::Tally) {
    let clock = SimulatedClock::new(utc(start));
    let runner = Runner {
        sophon: assert_cmd::cargo::cargo_bin("sophon"),
        home: home.to_path_buf(),
        env: vec![
            ("SOPHON_BACKUP_PASSPHRASE".into(), PASSPHRASE.into()),
            ("SOPHON_CACHE_DIR".into(), sophon.cache.clone().into()),
        ],
    };
    let daemon = Daemon {
        home: home.to_path_buf(),
        runner,
        tz: Utc,
        clock: &clock,
        opts: DaemonOptions { rescan: chrono::Duration::hours(6), until: Some(utc(until)), ..Default::default() },
        stop: Arc::new(AtomicBool::new(false)),
    };
    let events = Mutex::new(Vec::new());
    let tally = daemon.run(&|e: &Event| events.lock().unwrap().push(e.clone())).unwrap();
    (events.into_inner().unwrap(), tally)
}

/// The lifecycle rule, computed independently of the retention code: the newest snapshot of each
/// of the 7 newest days, of each of the 4 newest ISO weeks and of each of the 12 newest months.
fn expected_kept(times: &[DateTime<Utc>]) -> BTreeSet<DateTime<Utc>> {
    let mut newest_first = times.to_vec();
    newest_first.sort_by(|a, b| b.cmp(a));
    let mut keep = BTreeSet::new();
    let mut bucket = |key: &dyn Fn(&DateTime<Utc>) -> (i32, u32), n: usize| {
        let mut seen = HashSet::new();
        for t in &newest_first {
            if seen.len() == n && !seen.contains(&key(t)) {
                break;
            }
            if seen.insert(key(t)) {
                keep.insert(*t);
            }
        }
    };
    bucket(&|t| (t.year(), t.ordinal()), 7);
    bucket(&|t| (t.iso_week().year(), t.iso_week().week()), 4);
    bucket(&|t| (t.year(), t.month()), 12);
    keep
}

/// The "done when": a month of nights through the daemon with a simulated clock, each
/// backup followed by retention, the history recorded.
#[test]
fn a_simulated_month_of_nightly_backups_with_retention() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    set_created(&home, "nightly-backup", "2025-01-01T00:00:00Z");
    let started = std::time::Instant::now();
    let (events, tally) = simulate(&sophon, &home, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z");
    eprintln!("31 nights in {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(tally.ok, 31, "{events:#?}");
    assert_eq!(tally.failed, 0, "{events:#?}");

    let nights: Vec<DateTime<Utc>> = (1..=31).map(|d| Utc.with_ymd_and_hms(2025, 1, d, 3, 0, 0).unwrap()).collect();
    let history = runs(&home, "nightly-backup");
    assert_eq!(history.iter().map(|r| utc(&r.0)).collect::<Vec<_>>(), nights);
    assert!(history.iter().all(|r| r.1 == "ok" && r.2.contains("retention")), "{history:?}");
    let c = db(&home);
    let unfinished: i64 =
        c.query_row("SELECT count(*) FROM cron_runs WHERE finished_at IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(unfinished, 0);

    let repo = home.join("backups/repository");
    let list: Value = serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    let kept: BTreeSet<DateTime<Utc>> =
        list.as_array().unwrap().iter().map(|s| utc(s["time"].as_str().unwrap())).collect();
    let want = expected_kept(&nights);
    assert_eq!(kept, want);
    // Spelled out for the reader: Jan 25–31 (daily), 12, 19, 26 (weekly; 31 also), 31 (monthly).
    let days: Vec<u32> = want.iter().map(|t| t.day()).collect();
    assert_eq!(days, [12, 19, 25, 26, 27, 28, 29, 30, 31]);
}

/// `cron daemon --json` as a child process, once `started` says its run has begun (20 s at most).
fn daemon_once(sophon: &Sophon, home: &Path, started: impl Fn() -> bool) -> std::process::Child {
    let child = sophon
        .std_cmd()
        .args(["cron", "daemon", "--home", s(home), "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !started() {
        assert!(std::time::Instant::now() < deadline, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

#[test]
fn the_daemon_stops_on_sigterm_and_records_the_abandoned_run() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(&sophon, &home, "long", "0 3 * * *", "sleep 60");
    // Created long ago: the missed run starts as soon as the daemon does.
    set_created(&home, "long", "2020-01-01T00:00:00Z");
    let child = daemon_once(&sophon, &home, || runs(&home, "long").first().map(|r| r.1.as_str()) == Some("running"));
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed().as_secs() < 10, "the daemon did not wait for the 60 s job");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().filter(|e| e["event"] == "started").count(), 1, "{lines:?}");
    assert_eq!(lines.last().unwrap()["event"], "stopped");
    let r = runs(&home, "long");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, "failed");
    assert!(r[0].2.contains("abandoned"), "{r:?}");
}

/// Days an expression matches, by an independent reading of Vixie cron (`cron.c`:
/// `(DOM_STAR || DOW_STAR) ? dom && dow : dom || dow`, where a field is "star" when its text starts
/// with `*`), for the numeric forms `*`, `*/n`, `a`, `a-b`, `a-b/n` and lists.
fn oracle_day(dom_field: &str, dow_field: &str, d: chrono::NaiveDate) -> bool {
    fn field_has(text: &str, lo: u32, hi: u32, v: u32) -> bool {
        text.split(',').any(|item| {
            let (range, step) = item.split_once('/').map_or((item, 1), |(r, n)| (r, n.parse().unwrap()));
            let (a, b) = match range {
                "*" => (lo, hi),
                r => match r.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None if item.contains('/') => (r.parse().unwrap(), hi),
                    None => (r.parse().unwrap(), r.parse().unwrap()),
                },
            };
            (a..=b).step_by(step as usize).any(|x: u32| x == v || (hi == 7 && x == 7 && v == 0))
        })
    }
    let dom = field_has(dom_field, 1, 31, d.day());
    let dow = field_has(dow_field, 0, 7, d.weekday().num_days_from_sunday());
    if dom_field.starts_with('*') || dow_field.starts_with('*') {
        dom && dow
    } else {
        dom || dow
    }
}

#[test]
fn step_day_fields_match_as_vixie_cron_does() {
    let exprs = [
        ("*/2", "1-5"), // the example: odd-numbered weekdays only
        ("*/3", "1"),
        ("1,15", "*/2"),
        ("*/5", "*/3"),
        ("10-20/2", "*"),
        ("*/2", "*"),
        ("*", "*/2"),
        ("13", "5"),
        ("*/7", "0,6"),
        ("1-7", "1"), // not `*`: "the first seven days OR Mondays"
    ];
    for (dom, dow) in exprs {
        let expr = format!("0 0 {dom} * {dow}");
        let schedule = Schedule::parse(&expr).unwrap();
        let mut at = utc("2025-01-01T00:00:00Z");
        let mut day = at.date_naive();
        let end = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        while day < end {
            let next = schedule.next_after(&at).unwrap();
            // Every day between is rejected by the oracle, the day found is accepted.
            day = day.succ_opt().unwrap();
            while day < next.date_naive() {
                assert!(!oracle_day(dom, dow, day), "{expr}: {day} matches (Vixie) but was skipped");
                day = day.succ_opt().unwrap();
            }
            assert!(oracle_day(dom, dow, next.date_naive()), "{expr}: {next} does not match (Vixie)");
            at = next;
            day = at.date_naive();
        }
    }
    // Spelled out: after Friday 5 September 2025, `0 3 */2 * 1-5` next runs on Tuesday the 9th.
    assert_eq!(next_in("0 3 */2 * 1-5", &Utc, "2025-09-05T03:00:00Z"), "2025-09-09T03:00:00Z");
}

#[test]
fn spring_forward_and_fall_back_in_new_york_through_run_due() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(&sophon, &home, "two-thirty", "30 2 * * *", "true");
    custom_job(&sophon, &home, "one-thirty", "30 1 * * *", "true");
    let run_due = |now: &str| {
        // The helper's TZ=UTC, overridden: schedules are in the server's zone.
        let mut c = sophon.cmd();
        c.env("TZ", "America/New_York").args(["cron", "run-due", "--home", s(&home), "--now", now, "--json"]);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["event"] == "started")
            .map(|e| (e["job"].as_str().unwrap().to_string(), e["scheduled"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    let started = |job: &str, at: &str| vec![(job.to_string(), at.to_string())];

    // 2025-03-09: 02:00 EST → 03:00 EDT; 02:30 does not exist and runs at 03:00 EDT (07:00Z).
    set_created(&home, "two-thirty", "2025-03-08T12:00:00Z");
    db(&home).execute("UPDATE cron_jobs SET enabled = 0 WHERE name = 'one-thirty'", []).unwrap();
    assert_eq!(run_due("2025-03-09T06:59:00Z"), vec![], "01:59 EST");
    assert_eq!(run_due("2025-03-09T07:00:00Z"), started("two-thirty", "2025-03-09T07:00:00Z"));
    assert_eq!(run_due("2025-03-09T07:30:00Z"), vec![], "03:30 EDT: ran once");
    assert_eq!(run_due("2025-03-10T06:30:00Z"), started("two-thirty", "2025-03-10T06:30:00Z"), "02:30 EDT");

    // 2025-11-02: 02:00 EDT → 01:00 EST; 01:30 happens twice and runs at the first only.
    set_created(&home, "two-thirty", "2025-11-01T12:00:00Z");
    set_created(&home, "one-thirty", "2025-11-01T12:00:00Z");
    db(&home).execute("DELETE FROM cron_runs", []).unwrap();
    db(&home).execute("UPDATE cron_jobs SET enabled = 1", []).unwrap();
    assert_eq!(run_due("2025-11-02T05:30:00Z"), started("one-thirty", "2025-11-02T05:30:00Z"), "01:30 EDT");
    assert_eq!(run_due("2025-11-02T06:30:00Z"), vec![], "01:30 EST: not again");
    assert_eq!(run_due("2025-11-02T07:30:00Z"), started("two-thirty", "2025-11-02T07:30:00Z"), "02:30 EST");
    assert_eq!(run_due("2025-11-02T09:00:00Z"), vec![]);
    assert_eq!((runs(&home, "one-thirty").len(), runs(&home, "two-thirty").len()), (1, 1));
}

#[test]
fn a_job_created_in_the_future_runs_at_its_next_occurrence_with_a_warning() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(&sophon, &home, "nightly", "0 3 * * *", "true");
    // As if the database came from a host whose clock was a year ahead.
    set_created(&home, "nightly", "2031-01-01T00:00:00Z");
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-05T10:00:00Z"]);
    assert!(out.contains("warning") && out.contains("in the future"), "{out}");
    assert!(runs(&home, "nightly").is_empty());
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-06T03:00:00Z"]);
    let r = runs(&home, "nightly");
    assert_eq!(r.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["2030-01-06T03:00:00Z"]);
}

#[test]
fn custom_jobs_get_no_passphrase_and_do_not_wait_for_their_background_processes() {
    let (t, sophon, home) = home_without_jobs();
    let pid_file = t.path().join("bg.pid");
    custom_job(
        &sophon,
        &home,
        "env",
        "0 3 * * *",
        "echo \"[${SOPHON_BACKUP_PASSPHRASE:-none}|${SOPHON_REPOSITORY:-none}|${SOPHON_CRON_JOB}]\"",
    );
    // The background `sleep` inherits the job's output pipes and keeps them open after `sh` exits.
    custom_job(&sophon, &home, "bg", "0 3 * * *", &format!("sleep 30 & echo $! > {}; echo left", s(&pid_file)));
    for j in ["env", "bg"] {
        set_created(&home, j, "2030-01-01T00:00:00Z");
    }
    let started = std::time::Instant::now();
    let out = sophon
        .cmd()
        .env("SOPHON_REPOSITORY", t.path().join("repo"))
        .args(["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T03:00:00Z"])
        .output()
        .unwrap();
    let took = started.elapsed();
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = std::process::Command::new("kill").args(["-KILL", pid.trim()]).status();
    }
    assert!(out.status.success(), "{out:?}");
    assert!(took < std::time::Duration::from_secs(20), "run-due waited for the background sleep: {took:?}");
    assert_eq!(runs(&home, "env")[0].2, "[none|none|env]");
    assert_eq!((runs(&home, "bg")[0].1.as_str(), runs(&home, "bg")[0].2.as_str()), ("ok", "left"));
}

#[test]
fn a_running_row_in_a_backup_is_restored_as_failed() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let src = plain_home(&sophon, t.path());
    // The nightly job backing up the home while its own run is `running`.
    let c = db(&src);
    let job: String = c.query_row("SELECT id FROM cron_jobs WHERE name = 'nightly-backup'", [], |r| r.get(0)).unwrap();
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    c.execute(
        "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary, pid, host)
         VALUES (?1, 'default', '2030-01-02T03:00:00Z', NULL, 'running', 'scheduled for 2030-01-02T03:00:00Z', 1, ?2)",
        rusqlite::params![job, host],
    )
    .unwrap();
    drop(c);
    let zip = t.path().join("b.zip");
    sophon.ok(&["backup", "create", "--home", s(&src), "--out", s(&zip), "--categories", "cron"]);
    let dst = t.path().join("dst");
    sophon.ok(&["gateway", "init", "--home", s(&dst)]);
    sophon.ok(&["backup", "restore", "--in", s(&zip), "--home", s(&dst), "--mode", "replace", "--yes"]);
    let row: (String, Option<String>, String, Option<i64>, Option<String>) = db(&dst)
        .query_row(
            "SELECT r.status, r.finished_at, r.summary, r.pid, r.host FROM cron_runs r JOIN cron_jobs j
             ON j.id = r.job_id WHERE j.name = 'nightly-backup'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(row, ("failed".into(), None, "in progress when the backup was taken".into(), None, None));
    // The job is not blocked: it runs at its next occurrence.
    let out = sophon.ok(&["cron", "run-due", "--home", s(&dst), "--now", "2030-01-03T03:00:00Z", "--json"]);
    assert!(out.contains("\"started\""), "{out}");
}

#[test]
fn archives_at_a_backup_jobs_destination_get_retention_too() {
    let (t, sophon, home) = home_without_jobs();
    let exports = t.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let add = |name: &str, dest: &str| {
        sophon.ok(&[
            "cron",
            "add",
            "--home",
            s(&home),
            "--name",
            name,
            "--schedule",
            "0 3 * * *",
            "--action",
            "backup",
            "--dest",
            dest,
            "--categories",
            "cron",
        ]);
        set_created(&home, name, "2030-01-01T00:00:00Z");
    };
    add("flat", &format!("{}/n-{{snapshot}}.zip", s(&exports)));
    add("dated", &format!("{}/{{date}}/n-{{snapshot}}.zip", s(&exports)));
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T03:00:00Z"]);
    let flat = runs(&home, "flat");
    assert_eq!(flat[0].1, "ok", "{flat:?}");
    assert!(flat[0].2.contains("; archives: "), "{flat:?}");
    let dated = runs(&home, "dated");
    assert_eq!(dated[0].1, "ok", "{dated:?}");
    assert!(dated[0].2.contains("archives: not thinned"), "{dated:?}");
}

/// Run the daemon in this process on the wall clock until `secs` from now; returns its events.
fn daemon_for(home: &Path, secs: i64) -> Vec<Event> {
    let runner = Runner { sophon: assert_cmd::cargo::cargo_bin("sophon"), home: home.to_path_buf(), env: vec![] };
    let daemon = Daemon {
        home: home.to_path_buf(),
        runner,
        tz: Utc,
        clock: &sophon::cron::SystemClock,
        opts: DaemonOptions { until: Some(Utc::now() + chrono::Duration::seconds(secs)), ..Default::default() },
        stop: Arc::new(AtomicBool::new(false)),
    };
    let events = Mutex::new(Vec::new());
    daemon.run(&|e: &Event| events.lock().unwrap().push(e.clone())).unwrap();
    events.into_inner().unwrap()
}

#[test]
fn a_job_whose_run_cannot_be_recorded_is_retried_at_the_rescan_not_in_a_loop() {
    let (_t, sophon, home) = home_without_jobs();
    custom_job(&sophon, &home, "due", "0 3 * * *", "true");
    set_created(&home, "due", "2020-01-01T00:00:00Z");
    // Every claim fails, as on a read-only gateway.db (root can write a read-only file: a trigger).
    db(&home)
        .execute_batch("CREATE TRIGGER no_runs BEFORE INSERT ON cron_runs BEGIN SELECT RAISE(ABORT, 'read-only'); END;")
        .unwrap();
    let events = daemon_for(&home, 2);
    let errors = events.iter().filter(|e| e.event == EventKind::Error).count();
    assert_eq!(errors, 1, "one attempt per rescan (60 s): {}", events.len());
}

#[test]
fn a_second_sigterm_stops_the_daemon_at_once() {
    let (t, sophon, home) = home_without_jobs();
    let pid_file = t.path().join("job.pid");
    // A job that ignores SIGTERM: a clean stop waits the 5 s grace for it.
    custom_job(&sophon, &home, "stubborn", "0 3 * * *", &format!("trap '' TERM; echo $$ > {}; sleep 60", s(&pid_file)));
    set_created(&home, "stubborn", "2020-01-01T00:00:00Z");
    let child = daemon_once(&sophon, &home, || {
        pid_file.exists() && !std::fs::read_to_string(&pid_file).unwrap().trim().is_empty()
    });
    let term = || std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let started = std::time::Instant::now();
    assert!(term().success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(term().success());
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let pgid = std::fs::read_to_string(&pid_file).unwrap();
    let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", pgid.trim())]).status();
    assert!(took < std::time::Duration::from_secs(3), "waited {took:?} after the second SIGTERM");
    assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
}
