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
    ]);
    let offsite: Value = serde_json::from_str(&out).unwrap();
    let args: Vec<String> = serde_json::from_value(offsite["backup_args"].clone()).unwrap();
    let repo = std::path::absolute("rel-repo").unwrap();
    assert_eq!(args, ["--repo", s(&repo), "--dest", "s3://bucket/{date}.zip", "--encrypt", "--tag", "weekly"]);
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
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:00:00Z", "--json"]);
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let finished: Vec<&Value> = events.iter().filter(|e| e["event"] == "finished").collect();
    assert_eq!(finished.len(), 2, "{out}");
    assert!(finished.iter().all(|e| e["status"] == "ok"), "{out}");
    assert_eq!(events.last().unwrap()["tally"]["ok"], 2);
    let hello = runs(&home, "hello");
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].0, "2030-01-02T03:00:00Z");
    assert!(hello[0].2.contains("hello from"), "{hello:?}");
    let nightly = runs(&home, "nightly-backup");
    assert_eq!((nightly[0].1.as_str(), nightly[0].0.as_str()), ("ok", "2030-01-02T03:00:00Z"));
    assert!(nightly[0].2.contains("snapshot") && nightly[0].2.contains("retention"), "{nightly:?}");
    // The snapshot carries the scheduled time.
    let repo = home.join("backups/repository");
    let list: Value = serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    assert!(list[0]["time"].as_str().unwrap().starts_with("2030-01-02T03:00:00"), "{list}");

    let jobs = list_json(&sophon, &home);
    let hello = jobs.iter().find(|j| j["name"] == "hello").unwrap();
    assert_eq!(hello["last_run"]["status"], "ok");
    assert_eq!(hello["next_run"], "2030-01-02T03:15:00Z");
    // Nothing more is due at the same instant.
    let out = sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:00:00Z"]);
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
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
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
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
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
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
    let marker = t.path().join("ran");
    custom_job(&sophon, &home, "slow", "0 3 * * *", &format!("echo $$ >> {}; sleep 2", s(&marker)));
    set_created(&home, "slow", "2030-01-01T00:00:00Z");
    let spawn = || {
        sophon
            .std_cmd()
            .args(["cron", "run-due", "--home", s(&home), "--now", "2030-01-01T03:00:00Z"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
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
    if !unzip.is_ok_and(|s| s.success()) {
        eprintln!("skipping the v1 archive part: no unzip");
        return;
    }
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

#[test]
fn the_daemon_stops_on_sigterm_and_records_the_abandoned_run() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = plain_home(&sophon, t.path());
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
    custom_job(&sophon, &home, "long", "0 3 * * *", "sleep 60");
    // Created long ago: the missed run starts as soon as the daemon does.
    set_created(&home, "long", "2020-01-01T00:00:00Z");
    let child = sophon
        .std_cmd()
        .args(["cron", "daemon", "--home", s(&home), "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while runs(&home, "long").first().map(|r| r.1.as_str()) != Some("running") {
        assert!(std::time::Instant::now() < deadline, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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
