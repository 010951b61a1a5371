//! The gateway's settings through the real binary (format-spec/gateway.md §4.1): the environment's
//! file merges into `appsettings.json` key by key, a malformed file stops every command that reads
//! it before anything is written or removed, and restore finds the repository `backup create` uses.

mod common;

use std::path::Path;

use assert_cmd::Command;
use serde_json::{json, Value};

use common::Sophon;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The binary with no environment chosen by the machine: the settings are Production's.
fn cmd(sophon: &Sophon) -> Command {
    let mut c = sophon.cmd();
    c.env_remove("ASPNETCORE_ENVIRONMENT").env_remove("DOTNET_ENVIRONMENT").env_remove("SOPHON_HOME");
    c
}

fn run(sophon: &Sophon, args: &[&str]) -> std::process::Output {
    cmd(sophon).args(args).output().unwrap()
}

fn expect(sophon: &Sophon, code: i32, args: &[&str]) -> std::process::Output {
    let out = run(sophon, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "sophon {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The snapshot times of a repository, oldest first.
fn snapshot_times(sophon: &Sophon, repo: &Path) -> Vec<String> {
    let list = json_of(&expect(sophon, 0, &["backup", "list", "--repo", s(repo), "--json"]));
    list.as_array().unwrap().iter().map(|v| v["time"].as_str().unwrap()[..10].to_string()).collect()
}

/// Twelve folder snapshots in `repo`: 2024-03-01, 2025-06-15 and 2026-01-01 … 2026-01-10.
const DAYS: [&str; 12] = [
    "2024-03-01",
    "2025-06-15",
    "2026-01-01",
    "2026-01-02",
    "2026-01-03",
    "2026-01-04",
    "2026-01-05",
    "2026-01-06",
    "2026-01-07",
    "2026-01-08",
    "2026-01-09",
    "2026-01-10",
];

fn twelve_snapshots(sophon: &Sophon, work: &Path, repo: &Path) {
    sophon.init(repo);
    let data = work.join("data");
    common::write(&data.join("notes.txt"), b"the same notes every day\n");
    for day in DAYS {
        let time = format!("{day}T12:00:00Z");
        expect(sophon, 0, &["backup", "create", "--repo", s(repo), "--path", s(&data), "--time", &time, "--quiet"]);
    }
}

fn demo_home(sophon: &Sophon, work: &Path) -> std::path::PathBuf {
    let home = work.join("home");
    expect(sophon, 0, &["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    home
}

#[test]
fn a_production_file_overriding_one_lifecycle_key_keeps_the_others() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    // The demo's files as shipped: the base sets daily/weekly/monthly, Production adds only yearly.
    let production: Value =
        serde_json::from_slice(&std::fs::read(home.join("config/appsettings.Production.json")).unwrap()).unwrap();
    assert_eq!(production["Sophon"]["Backups"]["Default"], json!({ "Lifecycle": { "KeepYearly": 7 } }));
    let repo = t.path().join("repo");
    twelve_snapshots(&sophon, t.path(), &repo);

    let out = expect(&sophon, 0, &["backup", "forget", "--home", s(&home), "--repo", s(&repo), "--dry-run", "--json"]);
    let v = json_of(&out);
    let p = &v["policy"];
    assert_eq!(
        (&p["daily"], &p["weekly"], &p["monthly"], &p["yearly"], &p["last"]),
        (&json!(7), &json!(4), &json!(12), &json!(7), &json!(0)),
        "{v}"
    );
    assert!(v["policy_from"].as_str().unwrap().contains("Sophon:Backups:Default:Lifecycle"), "{v}");
    assert_eq!(snapshot_times(&sophon, &repo).len(), 12, "a dry run removes nothing");

    // The real forget keeps what that policy keeps: Jan 4–10 (daily; Jan 10 and 4 also weekly),
    // 2025-06-15 and 2024-03-01 (weekly, monthly, yearly). "Keep 7 yearly" alone would keep 3.
    expect(&sophon, 0, &["backup", "forget", "--home", s(&home), "--repo", s(&repo), "--json"]);
    let kept = snapshot_times(&sophon, &repo);
    let want: Vec<&str> =
        DAYS.iter().copied().filter(|d| !["2026-01-01", "2026-01-02", "2026-01-03"].contains(d)).collect();
    assert_eq!(kept, want);
}

#[test]
fn the_environment_variable_chooses_the_override_file() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    let repo = t.path().join("repo");
    sophon.init(&repo);
    let policy = |vars: &[(&str, &str)]| {
        let mut c = cmd(&sophon);
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c
            .args(["backup", "forget", "--home", s(&home), "--repo", s(&repo), "--dry-run", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        json_of(&out)["policy"]["yearly"].clone()
    };
    assert_eq!(policy(&[]), json!(7), "Production by default");
    // The demo's Development file has no Backups section: only the base file's policy applies.
    assert_eq!(policy(&[("DOTNET_ENVIRONMENT", "Development")]), json!(0));
    assert_eq!(policy(&[("ASPNETCORE_ENVIRONMENT", "Development"), ("DOTNET_ENVIRONMENT", "Production")]), json!(0));
    assert_eq!(policy(&[("ASPNETCORE_ENVIRONMENT", "Staging")]), json!(0), "a missing file adds nothing");
}

#[test]
fn a_malformed_config_fails_create_forget_and_the_nightly_job_before_any_change() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = demo_home(&sophon, t.path());
    let repo = t.path().join("repo");
    twelve_snapshots(&sophon, t.path(), &repo);
    // A stray token on the line that sets KeepYearly.
    let file = home.join("config/appsettings.Production.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l.contains("\"KeepYearly\"")).unwrap() + 1;
    std::fs::write(&file, text.replace("\"KeepYearly\": 7", "\"KeepYearly\": 7 7")).unwrap();
    let names_it = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}, line {line},", file.display())),
            "the error names the file and line {line}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    };

    for args in [
        vec!["backup", "create", "--home", s(&home), "--repo", s(&repo)],
        vec!["backup", "create", "--home", s(&home)],
        vec!["backup", "forget", "--home", s(&home), "--repo", s(&repo)],
        vec!["backup", "forget", "--home", s(&home), "--repo", s(&repo), "--prune"],
        vec!["backup", "forget", "--home", s(&home)],
        vec!["backup", "prune", "--home", s(&home)],
        vec!["backup", "restore", "--snapshot", "latest", "--home", s(&home), "--dry-run"],
    ] {
        names_it(&expect(&sophon, 1, &args));
    }
    assert_eq!(snapshot_times(&sophon, &repo).len(), 12, "nothing backed up, nothing removed");
    assert!(!home.join("backups").exists(), "no default repository was created");

    // The nightly job fails with that error recorded, and backs up nothing.
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z' WHERE name = 'nightly-backup'", []).unwrap();
    db.execute("UPDATE cron_jobs SET enabled = 0 WHERE name <> 'nightly-backup' AND action = 'backup'", []).unwrap();
    run(&sophon, &["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:05:00Z"]);
    let (status, summary): (String, String) = db
        .query_row(
            "SELECT r.status, r.summary FROM cron_runs r JOIN cron_jobs j ON j.id = r.job_id
             WHERE j.name = 'nightly-backup' AND r.started_at = '2030-01-02T03:05:00Z'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "failed", "{summary}");
    assert!(summary.contains(&format!("appsettings.Production.json, line {line},")), "{summary}");
    assert!(!home.join("backups").exists());

    // Flags that make the config unnecessary still work: a restore from a named repository is how a
    // broken config gets replaced.
    expect(&sophon, 0, &["backup", "forget", "--home", s(&home), "--repo", s(&repo), "--keep-last", "20"]);
}

#[test]
fn restore_without_repo_uses_the_configured_repository() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    expect(&sophon, 0, &["gateway", "init", "--home", s(&home)]);
    let repo = t.path().join("elsewhere/repo");
    sophon.init(&repo);
    let settings = home.join("config/appsettings.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap();
    v["Sophon"]["Backups"]["Default"]["Repository"] = json!(s(&repo));
    std::fs::write(&settings, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    expect(&sophon, 0, &["backup", "create", "--home", s(&home), "--quiet"]);
    assert_eq!(snapshot_times(&sophon, &repo).len(), 1);
    let out = expect(&sophon, 0, &["backup", "restore", "--snapshot", "latest", "--home", s(&home), "--dry-run"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Would restore:"), "{out:?}");
    // forget and prune find it the same way.
    let v = json_of(&expect(&sophon, 0, &["backup", "forget", "--home", s(&home), "--dry-run", "--json"]));
    assert_eq!(v["kept"], json!(1), "{v}");
    assert!(!home.join("backups").exists(), "HOME/backups/repository was never created");
}

#[test]
fn a_config_file_with_comments_is_redacted_and_one_that_does_not_parse_stops_the_backup() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    expect(&sophon, 0, &["gateway", "init", "--home", s(&home)]);
    let repo = t.path().join("repo");
    sophon.init(&repo);
    // Comments are valid in the gateway's config; the signing key is found by its key name only.
    std::fs::write(
        home.join("config/appsettings.Staging.json"),
        "{\n  // rotated yearly\n  \"Sophon\": { \"Auth\": { \"Jwt\": { \"SigningKey\": \"CANARYSIGNINGKEY\", } } }\n}\n",
    )
    .unwrap();
    let zip = t.path().join("out.zip");
    expect(&sophon, 0, &["backup", "create", "--home", s(&home), "--repo", s(&repo), "--out", s(&zip), "--quiet"]);
    let out = t.path().join("unzipped");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    archive.extract(&out).unwrap();
    let carried = std::fs::read_to_string(out.join("backup/config/appsettings.Staging.backup.json")).unwrap();
    let v: Value = serde_json::from_str(&carried).unwrap();
    assert!(v["Sophon"]["Auth"]["Jwt"]["SigningKey"].is_string(), "carried as JSON, key by key: {carried}");
    assert!(!carried.contains("CANARYSIGNINGKEY"), "{carried}");

    // Another environment's file that is not JSON at all cannot be redacted: the backup stops.
    std::fs::write(home.join("config/appsettings.Staging.json"), "{\n  \"Jwt\": { \"SigningKey\": CANARY }\n}\n")
        .unwrap();
    let out = expect(&sophon, 1, &["backup", "create", "--home", s(&home), "--repo", s(&repo), "--quiet"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("appsettings.Staging.json, line 2,"), "{out:?}");
    assert_eq!(snapshot_times(&sophon, &repo).len(), 1);
}
