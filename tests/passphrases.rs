//! The repository's key and the seal are two secrets (issue 11, findings 11 and 7): the product
//! page's lines on a gateway that has been used, an export sealed with one passphrase while the
//! repository's key is another, the in-home key file, and custom cron jobs that seal their archives.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const A: &str = "repository-key-A";
const B: &str = "export-seal-B";

/// A demo gateway that has been used: records changed in two tenants after it was made (the demo
/// brings its own Production config override and jobs).
fn used_home(t: &Path) -> (Sophon, PathBuf) {
    let home = t.join("home");
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    let c = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let changed = c
        .execute(
            "UPDATE memory_entries SET content = content || ' (edited)' WHERE id IN \
             (SELECT min(id) FROM memory_entries GROUP BY tenant_id)",
            [],
        )
        .unwrap();
    assert!(changed >= 2, "records changed in two tenants");
    (sophon, home)
}

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    p
}

/// `sophon ARGS` with `SOPHON_HOME` set and no passphrase variable, run in `cwd`.
fn run_in(sophon: &Sophon, home: &Path, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = sophon.cmd();
    c.env_remove("SOPHON_BACKUP_PASSPHRASE").env("SOPHON_HOME", home).current_dir(cwd).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn expect(out: Output, code: i32, what: &str) -> (String, String) {
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "{what}\nstdout: {o}\nstderr: {e}");
    (o, e)
}

fn is_zip(p: &Path) -> bool {
    std::fs::read(p).unwrap().starts_with(b"PK\x03\x04")
}

#[test]
fn the_pages_lines_work_on_a_used_gateway_with_no_passphrase_set_up() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home) = used_home(t.path());
    let cwd = t.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();

    // The page's first line, with nothing set up: it works and says what that means.
    let (_, err) = expect(run_in(&sophon, &home, &cwd, &[], &["backup", "create", "--out", "backup.zip"]), 0, "line 1");
    assert!(is_zip(&cwd.join("backup.zip")));
    let notice: Vec<&str> = err.lines().filter(|l| l.starts_with("note: no backup passphrase")).collect();
    assert_eq!(notice.len(), 1, "{err}");
    assert!(notice[0].contains("the archive is not encrypted"), "{err}");
    assert!(notice[0].contains("secret value(s) redacted (in ") && notice[0].contains("config"), "{err}");
    assert!(notice[0].contains("2FA secrets of") && notice[0].contains("left out"), "{err}");

    // The repository was made under a random key the home keeps, readable by its owner only.
    let key = home.join("backups/repository.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(key_text.trim().len(), 64, "{key_text}");
    assert!(err.contains("repository.key"), "{err}");

    // The same in --json, and a second run opens the repository with that key file.
    let (out, _) =
        expect(run_in(&sophon, &home, &cwd, &[], &["backup", "create", "--out", "again.zip", "--json"]), 0, "json");
    let v: Value = serde_json::from_str(&out).unwrap();
    let p = &v["gateway"]["protection"];
    assert_eq!(p["passphrase"], Value::Null, "{v}");
    assert_eq!(p["two_factor"], "left out", "{v}");
    assert_eq!(p["archive_encrypted"], false, "{v}");
    assert!(p["users_to_reenrol"].as_u64().unwrap() > 0, "{v}");
    assert!(p["redacted"].as_u64().unwrap() > 0, "{v}");

    // The page's third line: the seal is this file's passphrase, the repository keeps its own key.
    let pass_file = file(t.path(), ".backup-pass", B);
    let (out, err) = expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[],
            &[
                "backup",
                "create",
                "--encrypt",
                "--passphrase-file",
                s(&pass_file),
                "--out",
                "secure-backup.zip",
                "--json",
            ],
        ),
        0,
        "line 3",
    );
    assert!(!err.contains("note: no backup passphrase"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gateway"]["protection"]["two_factor"], "sealed", "{v}");
    assert_eq!(v["gateway"]["protection"]["archive_encrypted"], true, "{v}");
    let secure = cwd.join("secure-backup.zip");
    assert!(!is_zip(&secure), "sealed");
    expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[],
            &["backup", "verify", "--in", s(&secure), "--passphrase-file", s(&pass_file)],
        ),
        0,
        "verify with B",
    );

    // The key file is a secret of the home: no snapshot holds it (nor its text).
    let restored = t.path().join("restored");
    let mut c = sophon.cmd();
    c.env_remove("SOPHON_BACKUP_PASSPHRASE").env_remove("SOPHON_HOME");
    expect(
        c.args([
            "backup",
            "restore",
            "--repo",
            s(&home.join("backups/repository")),
            "--repo-passphrase-file",
            s(&key),
            "--snapshot",
            "latest",
            "--target",
            s(&restored),
        ])
        .output()
        .unwrap(),
        0,
        "restore the snapshot's files",
    );
    for f in files_below(&restored) {
        assert_ne!(f.file_name().unwrap(), "repository.key", "{}", f.display());
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(64).any(|w| w == key_text.trim().as_bytes()), "{} holds the key", f.display());
    }
    assert!(restored.join("config").exists(), "the restored snapshot has the home's config");
}

#[test]
fn an_export_sealed_with_b_restores_with_b_alone_and_b_does_not_open_the_repository() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home) = used_home(t.path());
    let cwd = t.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let a_file = file(t.path(), "a-pass", A);
    let b_file = file(t.path(), ".backup-pass", B);
    // An earlier run made the repository with the variable's passphrase A (a manual snapshot).
    expect(
        run_in(&sophon, &home, &cwd, &[("SOPHON_BACKUP_PASSPHRASE", A)], &["backup", "create", "--tag", "manual"]),
        0,
        "first run",
    );
    assert!(!home.join("backups/repository.key").exists(), "a passphrase was set up: no key file");

    // The page's line with another passphrase in the file: the export is sealed with B.
    expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[("SOPHON_BACKUP_PASSPHRASE", A)],
            &["backup", "create", "--encrypt", "--passphrase-file", s(&b_file), "--out", "secure-backup.zip"],
        ),
        0,
        "sealed with B, repository A",
    );
    let secure = cwd.join("secure-backup.zip");

    // Whoever gets the export and B restores it, 2FA secrets included, with nothing else.
    let fresh = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let (out, _) = expect(
        run_in(
            &sophon,
            &fresh,
            &cwd,
            &[],
            &[
                "backup",
                "restore",
                "--in",
                s(&secure),
                "--passphrase-file",
                s(&b_file),
                "--mode",
                "replace",
                "--yes",
                "--json",
            ],
        ),
        0,
        "restore with B alone",
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["users_to_reenrol"], serde_json::json!([]), "{report}");
    let sealed_with_a =
        run_in(&sophon, &fresh, &cwd, &[], &["backup", "verify", "--in", s(&secure), "--passphrase-file", s(&a_file)]);
    assert_ne!(sealed_with_a.status.code(), Some(0), "A does not open the export");

    // B does not open the repository; A does.
    let repo = home.join("backups/repository");
    let (_, err) = expect(
        run_in(&sophon, &home, &cwd, &[], &["backup", "list", "--repo", s(&repo), "--passphrase-file", s(&b_file)]),
        1,
        "B on the repository",
    );
    assert!(err.contains("wrong passphrase") && err.contains("--repo-passphrase-file"), "{err}");
    let (_, err) = expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[],
            &["backup", "list", "--repo", s(&repo), "--repo-passphrase-file", s(&b_file)],
        ),
        1,
        "B as the repository's key",
    );
    assert!(err.contains("wrong passphrase"), "{err}");
    expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[],
            &["backup", "list", "--repo", s(&repo), "--repo-passphrase-file", s(&a_file)],
        ),
        0,
        "A on the repository",
    );

    // With the two variables, each is its own secret: the seal is B, never the repository's A.
    let env = [("SOPHON_REPOSITORY_PASSPHRASE", A), ("SOPHON_BACKUP_PASSPHRASE", B)];
    expect(
        run_in(&sophon, &home, &cwd, &env, &["backup", "create", "--encrypt", "--out", "second.zip"]),
        0,
        "two variables",
    );
    let second = cwd.join("second.zip");
    expect(
        run_in(&sophon, &home, &cwd, &[], &["backup", "verify", "--in", s(&second), "--passphrase-file", s(&b_file)]),
        0,
        "sealed with B",
    );
    // Only the repository's key: --encrypt has nothing to seal with, and no snapshot is left.
    let before = std::fs::read_dir(repo.join("snapshots")).unwrap().count();
    let (_, err) = expect(
        run_in(
            &sophon,
            &home,
            &cwd,
            &[("SOPHON_REPOSITORY_PASSPHRASE", A)],
            &["backup", "create", "--encrypt", "--out", "x.zip"],
        ),
        1,
        "no seal",
    );
    assert!(err.contains("no passphrase to seal with"), "{err}");
    assert_eq!(std::fs::read_dir(repo.join("snapshots")).unwrap().count(), before);
}

/// The runs of job `name`: (status, summary).
fn runs(home: &Path, name: &str) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let mut st = c
        .prepare(
            "SELECT r.status, coalesce(r.summary, '') FROM cron_runs r JOIN cron_jobs j ON j.id = r.job_id \
             WHERE j.name = ?1 ORDER BY r.started_at",
        )
        .unwrap();
    st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Only the jobs this test adds run: the demo's own jobs are other findings' business.
fn clear_jobs(home: &Path) {
    let c = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    c.execute_batch("DELETE FROM cron_runs; DELETE FROM cron_jobs;").unwrap();
}

fn add_custom(sophon: &Sophon, home: &Path, name: &str, command: &str) {
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(home),
        "--name",
        name,
        "--schedule",
        "0 3 * * *",
        "--action",
        "custom",
        "--command",
        command,
    ]);
}

/// The page's scheduled recipe: `sophon backup create --dest …/{date}.zip --encrypt` as a custom job.
fn nightly_command(out: &Path) -> String {
    let bin = assert_cmd::cargo::cargo_bin("sophon");
    format!("{} backup create --dest {}/nightly-{{date}}.zip --encrypt", bin.display(), out.display())
}

#[test]
fn a_custom_job_seals_with_the_configured_passphrase_file() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home) = used_home(t.path());
    clear_jobs(&home);
    let out = t.path().join("archives");
    // The gateway's backup passphrase as the config names it, in the Production override.
    let secrets = home.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let pass = file(&secrets, "backup-pass", B);
    let prod = home.join("config/appsettings.Production.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&prod).unwrap()).unwrap();
    cfg["Sophon"]["Backups"]["Default"]["PassphraseFile"] = Value::from("secrets/backup-pass");
    std::fs::write(&prod, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    add_custom(&sophon, &home, "nightly-backup", &nightly_command(&out));
    add_custom(&sophon, &home, "show-env", &format!("env > {}", t.path().join("env.txt").display()));

    let cwd = t.path();
    expect(
        run_in(&sophon, &home, cwd, &[], &["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:00:00Z"]),
        0,
        "run-due",
    );
    let r = runs(&home, "nightly-backup");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, "ok", "{r:?}");
    let archive = out.join("nightly-2030-01-02.zip");
    let archive = if archive.exists() {
        archive
    } else {
        // {date} is the day the export runs.
        std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path()
    };
    assert!(!is_zip(&archive), "the archive is sealed");
    expect(
        run_in(&sophon, &home, cwd, &[], &["backup", "verify", "--in", s(&archive), "--passphrase-file", s(&pass)]),
        0,
        "opens with the configured passphrase",
    );
    let env = std::fs::read_to_string(t.path().join("env.txt")).unwrap();
    assert!(!env.contains(B), "no secret in a custom command's environment");
}

#[test]
fn a_custom_job_gets_the_schedulers_passphrase_as_a_file_never_as_a_value() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home) = used_home(t.path());
    clear_jobs(&home);
    let out = t.path().join("archives");
    add_custom(&sophon, &home, "nightly-backup", &nightly_command(&out));
    let env_file = t.path().join("env.txt");
    add_custom(
        &sophon,
        &home,
        "show-env",
        &format!("env > {0}; cat \"$SOPHON_BACKUP_PASSPHRASE_FILE\" > {0}.pass", env_file.display()),
    );

    let cwd = t.path();
    expect(
        run_in(
            &sophon,
            &home,
            cwd,
            &[("SOPHON_BACKUP_PASSPHRASE", B)],
            &["cron", "run-due", "--home", s(&home), "--now", "2030-01-02T03:00:00Z"],
        ),
        0,
        "run-due",
    );
    let r = runs(&home, "nightly-backup");
    assert_eq!(r[0].0, "ok", "{r:?}");
    let archive = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    assert!(!is_zip(&archive), "the archive is sealed");
    let pass = file(t.path(), "b", B);
    expect(
        run_in(&sophon, &home, cwd, &[], &["backup", "verify", "--in", s(&archive), "--passphrase-file", s(&pass)]),
        0,
        "opens with the scheduler's passphrase",
    );
    // The command saw a path, not the value; the file is gone once the run ended.
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(!env.contains(B), "{env}");
    let path = env.lines().find_map(|l| l.strip_prefix("SOPHON_BACKUP_PASSPHRASE_FILE=")).expect("a path is given");
    assert!(!Path::new(path).exists(), "{path} is removed after the run");
    assert_eq!(std::fs::read_to_string(format!("{}.pass", env_file.display())).unwrap().trim(), B);
}
