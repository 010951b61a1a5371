//! The product page (`tests/data/product-page.txt`, a copy of the page this project implements), run
//! as written on a gateway that has been used: a job replaced by name, records changed in two
//! tenants, a manual and a category-only snapshot, a Production config override. Every command line
//! of the page runs through `sh -c`, with `sophon` on PATH and only what a user sets: `SOPHON_HOME`,
//! a passphrase (a file in `~`, or `SOPHON_BACKUP_PASSPHRASE` where the page says so), and the S3
//! test server's endpoint and keys. Each line's outcome is asserted.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Every command line of the page, in the page's order, exactly as written there.
const PAGE_LINES: [&str; 15] = [
    "sophon backup create --out backup.zip",
    "sophon backup create --categories memory,workflows,cron --out ops-backup.zip",
    "sophon backup create --encrypt --passphrase-file ~/.backup-pass --out secure-backup.zip",
    "sophon backup create --dest s3://sophon-backups/$(date +%Y-%m-%d).zip",
    CRON_RECIPE,
    "sophon backup restore --in backup.zip",
    "sophon backup restore --in backup.zip --mode replace",
    "sophon backup restore --in backup.zip --only memory,workflows",
    "sophon backup restore --in backup.zip --into-tenant acme",
    "sophon backup restore --in backup.zip --dry-run",
    "sophon backup create --out migrate.zip --encrypt",
    "sophon backup restore --in migrate.zip --mode replace",
    "sophon backup create --incremental --since-last --out incr.zip",
    "sophon backup verify --in backup.zip",
    // The page's Encryption section: the passphrase for automated backups.
    "SOPHON_BACKUP_PASSPHRASE",
];

const CRON_RECIPE: &str = "sophon cron add \\\n--name nightly-backup \\\n--schedule \"0 3 * * *\" \\\n--action custom --command \"sophon backup create --dest s3://sophon-backups/$(date +%Y-%m-%d).zip --encrypt\"";

const PAGE: &str = include_str!("data/product-page.txt");
const USER_PASSPHRASE: &str = "correct horse battery staple";
const AUTOMATION_PASSPHRASE: &str = "a passphrase from the secret manager";

#[test]
fn every_command_line_of_the_page_is_run_here() {
    for line in PAGE_LINES {
        assert!(PAGE.contains(line), "not on the page as written: {line}");
    }
    // Each line of the page that starts a command is one of ours.
    let starts: Vec<&str> = PAGE.lines().filter(|l| l.starts_with("sophon ")).collect();
    for l in &starts {
        assert!(
            PAGE_LINES.iter().any(|p| l.starts_with(p.lines().next().unwrap())),
            "a command of the page that this test does not run: {l}"
        );
    }
    assert_eq!(starts.len(), PAGE_LINES.len() - 1, "{starts:#?}");
}

/// A user's shell: a working folder, a `~` with the passphrase file, `sophon` on PATH.
struct Shell {
    work: PathBuf,
    user_home: PathBuf,
    bin: PathBuf,
    gateway: PathBuf,
    s3: bool,
}

impl Shell {
    fn new(root: &Path, gateway: &Path) -> Self {
        let (work, user_home, bin) = (root.join("work"), root.join("user"), root.join("bin"));
        for d in [&work, &user_home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(user_home.join(".backup-pass"), format!("{USER_PASSPHRASE}\n")).unwrap();
        std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("sophon"), bin.join("sophon")).unwrap();
        let s3 = std::env::var_os("SOPHON_TEST_S3_ENDPOINT").is_some();
        if !s3 {
            assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_ENDPOINT is not set");
        }
        Shell { work, user_home, bin, gateway: gateway.to_path_buf(), s3 }
    }

    fn command(&self, line: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).current_dir(&self.work).env_clear();
        c.env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display()))
            .env("HOME", &self.user_home)
            .env("SOPHON_HOME", &self.gateway)
            .env("TZ", "UTC");
        for var in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            if let Some(v) = std::env::var_os(var) {
                c.env(var, v);
            }
        }
        c
    }

    fn run(&self, line: &str, env: &[(&str, &str)]) -> Output {
        let mut c = self.command(line);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Run `line` and require exit `code`; returns (stdout, stderr).
    fn expect(&self, code: i32, line: &str, env: &[(&str, &str)]) -> (String, String) {
        let out = self.run(line, env);
        let (so, se) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "{line}\nstdout: {so}\nstderr: {se}");
        for bad in ["panicked", "FOREIGN KEY", "os error 2): No such file"] {
            assert!(!se.contains(bad) && !so.contains(bad), "{line}: {bad}\nstdout: {so}\nstderr: {se}");
        }
        (so, se)
    }

    fn ok(&self, line: &str, env: &[(&str, &str)]) -> (String, String) {
        self.expect(0, line, env)
    }

    fn sophon(&self, args: &str) -> String {
        self.ok(&format!("sophon {args}"), &[]).0
    }
}

/// Counts of records per category (`gateway stats`).
fn counts(sh: &Shell, home: &Path) -> BTreeMap<String, u64> {
    let v: Value =
        serde_json::from_str(&sh.sophon(&format!("gateway stats --home {} --json", home.display()))).unwrap();
    v["categories"].as_object().unwrap().iter().map(|(k, c)| (k.clone(), c["records"].as_u64().unwrap())).collect()
}

fn sql(home: &Path, statements: &str) {
    let conn = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    conn.execute_batch(statements).unwrap();
}

fn count(home: &Path, query: &str) -> i64 {
    let conn = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    conn.query_row(query, [], |r| r.get(0)).unwrap()
}

/// The archive opens in Python's zipfile, every member's CRC checks, and it holds the page's layout.
fn python_zip_names(path: &Path) -> Vec<String> {
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nbad = z.testzip()\nassert bad is None, bad\nprint('\\n'.join(z.namelist()))";
    let out = Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// A demo gateway that has been used: a job replaced by name, records changed in two tenants, a
/// Production override of the backup settings, then a manual and a category-only snapshot.
fn used_gateway(sh: &Shell) {
    let g = &sh.gateway;
    sh.sophon(&format!("gateway init --home {} --demo --scale small", g.display()));
    sh.sophon("cron rm --name invoice-inbox --tenant globex");
    sh.sophon("cron add --name invoice-inbox --tenant globex --schedule '0 9 * * 1-5' --action custom --command 'echo inbox checked'");
    sql(
        g,
        "UPDATE memory_entries SET content = content || ' (corrected)'
           WHERE id IN (SELECT id FROM memory_entries WHERE tenant_id = 'acme' ORDER BY id LIMIT 25);
         UPDATE agents SET name = name || ' v2'
           WHERE id IN (SELECT id FROM agents WHERE tenant_id = 'globex' ORDER BY id LIMIT 1);",
    );
    let production = g.join("config/appsettings.Production.json");
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&production).unwrap()).unwrap();
    p["Sophon"]["Backups"] = serde_json::json!({ "Default": { "Lifecycle": { "KeepDaily": 3 } } });
    std::fs::write(&production, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    sh.sophon("backup create");
    sh.sophon("backup create --categories memory,workflows");
}

#[test]
fn the_pages_backup_and_restore_lines_on_a_used_gateway() {
    let t = tempfile::tempdir().unwrap();
    let sh = Shell::new(t.path(), &t.path().join("gateway"));
    used_gateway(&sh);
    let g = sh.gateway.clone();
    let before = counts(&sh, &g);

    // The first line works with no passphrase set up at all, and says what that means.
    let (_, err) = sh.ok(PAGE_LINES[0], &[]);
    assert!(err.to_lowercase().contains("passphrase"), "{err}");
    let names = python_zip_names(&sh.work.join("backup.zip"));
    for f in ["backup/metadata.json", "backup/manifest.json", "backup/users/users.json", "backup/cron/jobs.json"] {
        assert!(names.iter().any(|n| n == f), "{f} missing: {names:?}");
    }
    assert!(!names.iter().any(|n| n.ends_with("2fa-secrets.json.enc")), "no passphrase, no sealed 2FA block");

    sh.ok(PAGE_LINES[1], &[]);
    let ops = python_zip_names(&sh.work.join("ops-backup.zip"));
    assert!(ops.iter().any(|n| n.starts_with("backup/cron/")), "{ops:?}");
    assert!(!ops.iter().any(|n| n.starts_with("backup/users/")), "{ops:?}");

    sh.ok(PAGE_LINES[2], &[]);
    let (out, err) = sh.expect(1, "sophon backup verify --in secure-backup.zip", &[]);
    assert!(err.contains("passphrase is needed") && !out.contains("DAMAGE"), "{out}{err}");
    sh.ok("sophon backup verify --in secure-backup.zip --passphrase-file ~/.backup-pass", &[]);

    sh.ok(PAGE_LINES[13], &[]);

    let (dry, _) = sh.ok(PAGE_LINES[9], &[]);
    // A fresh backup of this very gateway: nothing to add, nothing quarantined, nobody loses 2FA.
    assert!(
        dry.starts_with("Would restore: 0 added, ") && dry.lines().next().unwrap().contains(" 0 quarantined"),
        "{dry}"
    );
    assert!(!dry.contains("re-enrol"), "{dry}");
    for line in [
        "users: 42 records: 0 added, 42 unchanged, 0 quarantined",
        "agents: 5 records",
        "workflows: 12 records",
        "memory: 8,471 records",
        "documents: 189 records, 189 files",
        "cron: 10 records: 0 added, ",
        "config: 3 file(s): 0 added, 3 unchanged, 0 quarantined",
        "Total size:",
    ] {
        assert!(dry.contains(line), "{line} missing:\n{dry}");
    }
    assert_eq!(counts(&sh, &g), before, "a dry run changes nothing");

    // Straight back into its own gateway: nothing to add, nothing in conflict.
    let (out, _) = sh.ok(PAGE_LINES[5], &[]);
    assert!(out.starts_with("Restored: 0 added, ") && out.lines().next().unwrap().contains(" 0 quarantined"), "{out}");
    assert_eq!(counts(&sh, &g), before);
    assert_quarantine_empty(&g);

    sh.ok(PAGE_LINES[7], &[]);
    assert_eq!(counts(&sh, &g), before);

    // A backup of several tenants into one: refused naming --tenant, or merged; never a constraint error.
    let out = sh.run(PAGE_LINES[8], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(2) => assert!(err.contains("--tenant"), "{err}"),
        other => panic!("--into-tenant: exit {other:?}: {err}"),
    }

    // Records change, then an incremental that names its base.
    sql(&g, "UPDATE memory_entries SET content = content || ' (again)' WHERE id IN (SELECT id FROM memory_entries WHERE tenant_id = 'initech' ORDER BY id LIMIT 5);");
    let (out, err) = sh.ok(PAGE_LINES[12], &[]);
    let text = format!("{out}{err}");
    assert!(text.contains(" in backup.zip"), "the base archive is named: {text}");
    python_zip_names(&sh.work.join("incr.zip"));
    sh.ok("sophon backup verify --in incr.zip --passphrase-file ~/.backup-pass", &[]);

    // Replace asks to be confirmed twice; without a terminal that is a usage error naming --yes.
    let (_, err) = sh.expect(2, PAGE_LINES[6], &[]);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(counts(&sh, &g), before);
    sh.ok(&format!("{} --yes", PAGE_LINES[6]), &[]);
    let after = counts(&sh, &g);
    for c in ["users", "agents", "workflows", "memory", "documents", "cron", "skills", "channels"] {
        assert_eq!(after[c], before[c], "{c} after a replace restore of a full backup");
    }
}

fn assert_quarantine_empty(home: &Path) {
    let q = home.join("quarantine");
    if q.exists() {
        let n = common::files_below(&q).len();
        assert_eq!(n, 0, "quarantine holds {n} files");
    }
}

#[test]
fn the_migration_pattern_moves_a_used_gateway_with_its_2fa() {
    let t = tempfile::tempdir().unwrap();
    let sh = Shell::new(t.path(), &t.path().join("source"));
    used_gateway(&sh);
    let pass = [("SOPHON_BACKUP_PASSPHRASE", AUTOMATION_PASSPHRASE)];
    let source = counts(&sh, &sh.gateway);
    let totp = count(&sh.gateway, "SELECT count(*) FROM users WHERE totp_secret IS NOT NULL");
    assert!(totp > 0);

    sh.ok(PAGE_LINES[10], &pass);

    // Destination: a fresh install with its admin registered.
    let dest = t.path().join("destination");
    sh.sophon(&format!("gateway init --home {}", dest.display()));
    let tenant: String = rusqlite::Connection::open(dest.join("gateway.db"))
        .unwrap()
        .query_row("SELECT id FROM tenants ORDER BY id LIMIT 1", [], |r| r.get(0))
        .unwrap();
    sql(
        &dest,
        &format!(
            "INSERT INTO users VALUES ('usr_admin', '{tenant}', 'admin@new.example.com', 'Admin', '$argon2id$v=19$x', '[\"admin\"]', NULL, '2026-12-01T00:00:00Z');"
        ),
    );
    let at_dest = Shell { gateway: dest.clone(), ..sh };
    at_dest.expect(2, PAGE_LINES[11], &pass);
    at_dest.ok(&format!("{} --yes", PAGE_LINES[11]), &pass);
    let moved = counts(&at_dest, &dest);
    for c in ["users", "agents", "workflows", "memory", "documents", "cron", "webhooks", "skills", "channels"] {
        assert_eq!(moved[c], source[c], "{c} moved");
    }
    assert_eq!(count(&dest, "SELECT count(*) FROM users WHERE totp_secret IS NOT NULL"), totp, "2FA moved");
}

/// One signed request to the page's bucket on the S3 test server (curl signs it with the test
/// server's keys), to make the bucket, check an object or remove one so that a rerun starts clean.
fn s3(method: &str, key: &str) -> bool {
    let endpoint = std::env::var("SOPHON_TEST_S3_ENDPOINT").unwrap();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "testing".into());
    let user = format!("{}:{}", var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
    let mut c = Command::new("curl");
    c.args(["-fsS", "-o", "/dev/null", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", &user]);
    match method {
        "HEAD" => c.arg("-I"),
        m => c.args(["-X", m]),
    };
    c.arg(format!("{endpoint}/sophon-backups{key}")).stderr(std::process::Stdio::null()).status().unwrap().success()
}

#[test]
fn the_pages_s3_line_and_scheduled_recipe_on_three_nights() {
    let t = tempfile::tempdir().unwrap();
    let sh = Shell::new(t.path(), &t.path().join("gateway"));
    if !sh.s3 {
        eprintln!("skipped: SOPHON_TEST_S3_ENDPOINT is not set");
        return;
    }
    s3("PUT", "");
    let nights = ["2031-03-04", "2031-03-05", "2031-03-06"];
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for day in nights.iter().chain([&today.as_str()]) {
        s3("DELETE", &format!("/{day}.zip"));
    }
    used_gateway(&sh);
    let pass = [("SOPHON_BACKUP_PASSPHRASE", AUTOMATION_PASSPHRASE)];

    // Run twice on one day: the second never replaces the first.
    sh.ok(PAGE_LINES[3], &[]);
    assert!(s3("HEAD", &format!("/{today}.zip")));
    let (_, err) = sh.expect(1, PAGE_LINES[3], &[]);
    assert!(err.contains(&format!("{today}.zip")) && err.contains("--overwrite"), "{err}");

    // The recipe as written: the name is taken by the job `gateway init` made; the message says how.
    let (_, err) = sh.expect(2, CRON_RECIPE, &pass);
    assert!(err.contains("--replace") && err.contains("cron edit"), "{err}");
    // With --replace: the shell expanded today's date when the job was added; the warning says so.
    let (_, err) = sh.ok(&format!("{CRON_RECIPE} --replace"), &pass);
    assert!(err.contains(&today) && err.contains("{date}"), "{err}");
    // The operator follows the warning.
    let templated = CRON_RECIPE.replace("$(date +%Y-%m-%d)", "{date}");
    let (_, err) = sh.ok(&format!("{templated} --replace"), &pass);
    assert!(!err.contains("{date}"), "no warning for the template: {err}");

    for night in nights {
        let (out, err) = sh.ok(&format!("sophon cron run-due --now {night}T03:00:30Z --json"), &pass);
        for line in out.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            assert_ne!(e["status"], "failed", "{night}: {line}\n{err}");
        }
    }
    for night in nights {
        let url = format!("s3://sophon-backups/{night}.zip");
        sh.ok(&format!("sophon backup verify --in {url}"), &pass);
        let (out, err) = sh.expect(1, &format!("sophon backup verify --in {url}"), &[]);
        assert!(err.contains("passphrase is needed") && !out.contains("DAMAGE"), "sealed: {out}{err}");
    }
}
