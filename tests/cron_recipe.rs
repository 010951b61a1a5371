//! The product page's scheduled-backup recipe on homes that have been used (issue 11, findings 6,
//! 8, 9, 10, 18): the page's own `cron add` line, `{date}` at run time, the demo's jobs due at the
//! same minute, a prune lock held by another process, the config's `Destination`, `Format` and
//! `Encrypt`, and the `cron list` table.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use common::*;
use sophon::cron::{Daemon, DaemonOptions, Event, EventKind, Runner, SimulatedClock};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn db(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("gateway.db")).unwrap()
}

/// (id, action, command) of the tenant's job `name`.
fn job(home: &Path, tenant: &str, name: &str) -> (String, String, String) {
    db(home)
        .query_row(
            "SELECT id, action, command FROM cron_jobs WHERE tenant_id = ?1 AND name = ?2",
            [tenant, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn run_count(home: &Path, job_id: &str) -> i64 {
    db(home).query_row("SELECT count(*) FROM cron_runs WHERE job_id = ?1", [job_id], |r| r.get(0)).unwrap()
}

/// Runs whose job does not exist: there must never be any.
fn dangling_runs(home: &Path) -> i64 {
    db(home)
        .query_row("SELECT count(*) FROM cron_runs WHERE job_id NOT IN (SELECT id FROM cron_jobs)", [], |r| r.get(0))
        .unwrap()
}

/// The (status, summary) of every run of the jobs named `name`, by tenant then start.
fn runs_of(home: &Path, name: &str) -> Vec<(String, String, String)> {
    let c = db(home);
    let mut st = c
        .prepare(
            "SELECT j.tenant_id, r.status, r.summary FROM cron_runs r JOIN cron_jobs j ON j.id = r.job_id
             WHERE j.name = ?1 ORDER BY j.tenant_id, r.started_at",
        )
        .unwrap();
    st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

fn demo_home(sophon: &Sophon, work: &Path) -> PathBuf {
    let home = work.join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    home
}

/// The page's line as the shell hands it over: `$(date +%Y-%m-%d)` already expanded.
fn page_line(home: &Path, replace: bool) -> Vec<String> {
    let today = chrono::Local::now().format("%Y-%m-%d");
    let mut a: Vec<String> = ["cron", "add", "--home", s(home)].map(String::from).to_vec();
    if replace {
        a.push("--replace".into());
    }
    a.extend(
        [
            "--name",
            "nightly-backup",
            "--schedule",
            "0 3 * * *",
            "--action",
            "custom",
            "--command",
            &format!("sophon backup create --dest s3://sophon-backups/{today}.zip --encrypt"),
        ]
        .map(String::from),
    );
    a
}

fn run_strs(sophon: &Sophon, args: &[String]) -> std::process::Output {
    sophon.cmd().args(args).output().unwrap()
}

/// Finding 6 and 8: the page's line on a fresh home and on a demo home.
#[test]
fn the_pages_cron_line_says_how_to_replace_and_replace_keeps_the_jobs_history() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let fresh = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let demo = demo_home(&sophon, t.path());
    // The fresh home's job has run once, so that it has a history to keep.
    db(&fresh).execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z'", []).unwrap();
    sophon.ok(&["cron", "run-due", "--home", s(&fresh), "--now", "2030-01-01T03:00:30Z"]);

    for (home, tenant) in [(&fresh, "default"), (&demo, "acme")] {
        let (id, action, _) = job(home, tenant, "nightly-backup");
        assert_eq!(action, "backup");
        let history = run_count(home, &id);
        assert!(history >= 1, "{}", home.display());

        let out = run_strs(&sophon, &page_line(home, false));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("already has a job named \"nightly-backup\""), "{err}");
        assert!(err.contains("--replace") && err.contains("sophon cron edit --name nightly-backup"), "{err}");
        // The shell froze today's date into the command: the warning points to {date}.
        assert!(err.contains("warning:") && err.contains("{date}"), "{err}");

        let out = run_strs(&sophon, &page_line(home, true));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("replaced job"));
        let (id2, action, command) = job(home, tenant, "nightly-backup");
        assert_eq!((id2.as_str(), action.as_str()), (id.as_str(), "custom"), "the job keeps its id");
        assert!(command.starts_with("sophon backup create --dest s3://sophon-backups/"), "{command}");
        assert_eq!(run_count(home, &id), history, "its run history stays with it");
        assert_eq!(dangling_runs(home), 0);

        // `cron edit` fixes the command and the schedule; no warning for a {date} template.
        let out = sophon
            .cmd()
            .args(["cron", "edit", "--home", s(home), "--name", "nightly-backup", "--schedule", "30 2 * * *"])
            .args(["--command", "sophon backup create --dest s3://sophon-backups/{date}.zip --encrypt"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
        let (id3, _, command) = job(home, tenant, "nightly-backup");
        assert_eq!(id3, id);
        assert_eq!(command, "sophon backup create --dest s3://sophon-backups/{date}.zip --encrypt");
        let list = sophon.ok(&["cron", "list", "--home", s(home), "--json"]);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let row = list.as_array().unwrap().iter().find(|j| j["id"] == id.as_str()).unwrap().clone();
        assert_eq!(row["schedule"], "30 2 * * *");
        sophon.ok(&["cron", "edit", "--home", s(home), "--name", "nightly-backup", "--disable"]);
        assert_eq!(
            db(home).query_row("SELECT enabled FROM cron_jobs WHERE id = ?1", [&id], |r| r.get::<_, i64>(0)).unwrap(),
            0
        );
        // Nothing to change is a usage error.
        let e = sophon.expect(2, &["cron", "edit", "--home", s(home), "--name", "nightly-backup", "--tenant", tenant]);
        assert!(e.is_empty());
    }
}

/// Finding 8: `{date}` in a custom command is the run's date (by the scheduler's clock), so three
/// nights write three archives.
#[test]
fn date_templates_in_a_custom_command_name_each_nights_archive() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    let out_dir = t.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // The passphrase from a file: a custom command does not get the scheduler's variable.
    let pass = t.path().join("pass");
    std::fs::write(&pass, PASSPHRASE).unwrap();
    let command = format!(
        "sophon backup create --passphrase-file {} --categories cron --out {}/{{date}}.zip",
        s(&pass),
        s(&out_dir)
    );
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "export",
        "--schedule",
        "0 3 * * *",
        "--action",
        "custom",
        "--command",
        &command,
    ]);
    db(&home).execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z'", []).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("sophon");
    let path = format!("{}:{}", s(bin.parent().unwrap()), std::env::var("PATH").unwrap_or_default());
    for night in ["2030-01-01", "2030-01-02", "2030-01-03"] {
        let out = sophon
            .cmd()
            .env("PATH", &path)
            .args(["cron", "run-due", "--home", s(&home), "--now", &format!("{night}T03:00:30Z")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let names: BTreeSet<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let want: BTreeSet<String> = ["2030-01-01.zip", "2030-01-02.zip", "2030-01-03.zip"].map(String::from).into();
    assert_eq!(names, want);
}

/// Findings 9 and 10: on a demo home, every job due at 03:00 succeeds, although another process
/// holds the repository's prune lock when they run (they wait for it).
#[test]
fn the_demos_jobs_due_at_the_same_minute_all_succeed_beside_a_held_prune_lock() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    // The demo's clock stands at 2025-10-01T00:00Z: the nightly backups and the memory compaction
    // of every tenant are due by 03:00.
    let out = sophon.run(&["cron", "run-due", "--home", s(&home), "--now", "2025-10-01T03:00:30Z"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("3 ok, 0 failed"), "{text}");
    assert!(!text.contains("memory-compaction"), "the gateway's own job is not run by sophon: {text}");

    // Night two, while this process holds the prune lock of the home's repository for 3 s.
    let backend = sophon::backend::open_url(s(&home.join("backups/repository")), false).unwrap();
    let repo = Arc::new(sophon::Repository::open(backend, PASSPHRASE.as_bytes(), Some(sophon.cache.clone())).unwrap());
    let held = sophon::Session::prune(Arc::clone(&repo)).unwrap();
    let child = sophon
        .std_cmd()
        .args(["cron", "run-due", "--home", s(&home), "--now", "2025-10-02T03:00:30Z"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    drop(held);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("3 ok, 0 failed"), "{text}");
    let runs = runs_of(&home, "nightly-backup");
    let tonight: Vec<_> =
        runs.iter().filter(|(_, st, sum)| st == "ok" && sum.contains("2025-10-02T03:00:00Z")).collect();
    assert_eq!(tonight.len(), 3, "{runs:?}");
}

/// Finding 9 in the daemon: the tenants' nightly backups share the home's repository and run one
/// after another, all ok.
#[test]
fn the_daemon_runs_the_backups_of_one_repository_one_after_another() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    let clock = SimulatedClock::new(utc("2025-10-01T02:59:00Z"));
    let runner = Runner {
        sophon: assert_cmd::cargo::cargo_bin("sophon"),
        home: home.clone(),
        env: vec![
            ("SOPHON_BACKUP_PASSPHRASE".into(), PASSPHRASE.into()),
            ("SOPHON_CACHE_DIR".into(), sophon.cache.clone().into()),
        ],
    };
    let daemon = Daemon {
        home: home.clone(),
        runner,
        tz: Utc,
        clock: &clock,
        opts: DaemonOptions { until: Some(utc("2025-10-01T03:30:00Z")), ..Default::default() },
        stop: Arc::new(AtomicBool::new(false)),
    };
    let events = Mutex::new(Vec::new());
    let tally = daemon.run(&|e: &Event| events.lock().unwrap().push(e.clone())).unwrap();
    let events = events.into_inner().unwrap();
    let backups: Vec<&Event> = events.iter().filter(|e| e.job == "nightly-backup").collect();
    let lines: Vec<String> = backups.iter().map(|e| e.line()).collect();
    assert_eq!((tally.ok, tally.failed), (3, 0), "{lines:#?}");
    // Started, finished, started, finished, …: never two in flight.
    let kinds: Vec<bool> = backups.iter().map(|e| e.event == EventKind::Started).collect();
    assert_eq!(kinds, [true, false].repeat(3), "{lines:#?}");
}

fn set_backup_defaults(home: &Path, json: &str) {
    let v = format!(r#"{{ "Sophon": {{ "Backups": {{ "Default": {json} }} }} }}"#);
    std::fs::write(home.join("config/appsettings.Production.json"), v).unwrap();
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Finding 18: `Destination`, `Format` and `Encrypt` decide what a scheduled backup writes, and a
/// value sophon cannot honour fails the job naming the key.
#[test]
fn the_configs_destination_format_and_encrypt_are_honoured_or_refused() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    db(&home).execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z'", []).unwrap();
    let archives = home.join("backups/archives/all");
    let night = |n: u32| format!("2030-01-{n:02}T03:00:30Z");
    let last = |home: &Path| runs_of(home, "nightly-backup").pop().unwrap();

    // A job of its own choosing (categories) does not take the defaults.
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "ops",
        "--schedule",
        "0 3 * * *",
        "--action",
        "backup",
        "--categories",
        "cron",
    ]);
    db(&home).execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z'", []).unwrap();
    // `local`, tar.gz, not sealed: the snapshot and an archive in the home's archives folder.
    set_backup_defaults(&home, r#"{ "Destination": "local", "Format": "tar.gz", "Encrypt": false }"#);
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", &night(1)]);
    let (_, status, summary) = last(&home);
    assert_eq!(status, "ok", "{summary}");
    assert_eq!(runs_of(&home, "ops")[0].1, "ok");
    let files = files_in(&archives);
    assert_eq!(files.len(), 1, "{files:?} ({summary})");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("2030-01-01-") && name.ends_with(".tar.gz"), "{name}");
    assert_eq!(&std::fs::read(&files[0]).unwrap()[..2], b"\x1f\x8b", "gzip");

    // `archive`: the repository only.
    set_backup_defaults(&home, r#"{ "Destination": "archive", "Format": "zip" }"#);
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", &night(2)]);
    assert_eq!(last(&home).1, "ok");
    assert_eq!(files_in(&archives).len(), 1, "nothing exported");

    // A destination URL: the archives go there (a folder per scope); `Encrypt` seals them.
    let elsewhere = t.path().join("elsewhere");
    set_backup_defaults(
        &home,
        &format!(r#"{{ "Destination": "{}", "Format": "zip", "Encrypt": true }}"#, s(&elsewhere)),
    );
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", &night(3)]);
    let files = files_in(&elsewhere.join("all"));
    assert_eq!(files.len(), 1, "{files:?} ({:?})", last(&home));
    assert_eq!(&std::fs::read(&files[0]).unwrap()[..8], b"SOPHSEAL", "sealed");

    // Encrypt without any passphrase: the job fails saying so, having backed up nothing.
    let repo = home.join("backups/repository");
    let snapshots_before = sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"]);
    let out = sophon
        .cmd()
        .env_remove("SOPHON_BACKUP_PASSPHRASE")
        .args(["cron", "run-due", "--home", s(&home), "--now", &night(4)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (_, status, summary) = last(&home);
    assert_eq!(status, "failed");
    assert!(summary.contains("Sophon:Backups:Default:Encrypt") && summary.contains("passphrase"), "{summary}");
    assert_eq!(sophon.ok(&["backup", "list", "--repo", s(&repo), "--json"]), snapshots_before);

    // Values sophon cannot honour: refused, naming the key and the file.
    for (json, key) in [
        (r#"{ "Destination": "ftp://old-nas/backups" }"#, "Sophon:Backups:Default:Destination"),
        (r#"{ "Destination": "local", "Format": "rar" }"#, "Sophon:Backups:Default:Format"),
    ] {
        set_backup_defaults(&home, json);
        let n = if key.ends_with("Destination") { 5 } else { 6 };
        let out = sophon.run(&["cron", "run-due", "--home", s(&home), "--now", &night(n)]);
        assert_eq!(out.status.code(), Some(1));
        let (_, status, summary) = last(&home);
        assert_eq!(status, "failed");
        assert!(summary.contains(key) && summary.contains("appsettings.Production.json"), "{summary}");
    }
}

/// Finding 16 (part): `cron list` keeps its columns in line with long names and schedules.
#[test]
fn cron_list_columns_stay_in_line() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--tenant",
        "globex",
        "--name",
        "quarterly-compliance-export-for-auditors",
        "--schedule",
        "*/10 9-17 1-7 JAN,APR,JUL,OCT MON-FRI",
        "--action",
        "custom",
        "--command",
        "true",
    ]);
    let out = sophon.ok(&["cron", "list", "--home", s(&home)]);
    let lines: Vec<&str> = out.lines().collect();
    for col in ["schedule", "action", "enabled", "next run", "last run"] {
        let at = lines[0].find(col).unwrap();
        for l in &lines[1..] {
            let before = l.chars().nth(at - 1).unwrap();
            let here = l.chars().nth(at).unwrap();
            assert!(before == ' ' && here != ' ', "column {col:?} at {at} out of line in\n{out}");
        }
    }
}

/// Finding 9 across processes: two schedulers of one home (a system cron starting `run-due` while
/// the previous one still runs) take the tenants' jobs side by side, and all succeed.
#[test]
fn two_schedulers_of_one_home_take_turns_at_its_repository() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    let spawn = || {
        sophon
            .std_cmd()
            .args(["cron", "run-due", "--home", s(&home), "--now", "2025-10-01T03:00:30Z"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let text: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).collect();
    for o in &outs {
        assert_eq!(o.status.code(), Some(0), "{text:#?}");
    }
    let runs = runs_of(&home, "nightly-backup");
    let tonight: Vec<_> = runs.iter().filter(|(_, _, sum)| sum.contains("2025-10-01T03:00:00Z")).collect();
    assert_eq!(tonight.len(), 3, "each job ran once: {tonight:#?}");
    assert!(tonight.iter().all(|(_, st, _)| st == "ok"), "{tonight:#?}");
}
