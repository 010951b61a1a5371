//! The dashboard in a real browser: `sophon serve` on a demo home with two snapshots, driven by
//! `tests/browser/dashboard.mjs` (playwright-core) in Debian's Chromium. Screenshots of each page
//! go to `target/screenshots/`. `scripts/test` installs Chromium and `playwright-core` (no browser
//! is downloaded) and sets SOPHON_REQUIRE_BROWSER=1, so there a missing browser fails the test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(sophon: &Sophon, home: &Path) -> (Server, String) {
    let mut child = sophon
        .std_cmd()
        .args(["serve", "--home", s(home), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.strip_prefix("dashboard: ").unwrap().split(' ').next().unwrap().trim_end_matches('/').to_string();
    (Server(child), url)
}

/// The size of the document that makes a create of everything take a while.
const BIG_DOCUMENT: usize = 128 << 20;

/// One more document of `size` random bytes in the home's first tenant.
fn add_big_document(home: &Path, size: usize) {
    let id = "doc_big_browser";
    let data = pseudo_random(size, 7);
    write(&home.join(format!("documents/files/{id}.bin")), &data);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let tenant: String = db.query_row("SELECT id FROM tenants ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data));
    db.execute(
        "INSERT INTO documents (id, tenant_id, filename, ext, mime, size, sha256, extracted_text, created_at)
         VALUES (?1, ?2, 'big.bin', 'bin', 'application/octet-stream', ?3, ?4, '', '2026-01-01T00:00:00Z')",
        rusqlite::params![id, tenant, size as i64, sha],
    )
    .unwrap();
}

/// The browser and the test's node modules, or why they are missing.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!("{} not found (Debian package chromium)", chromium.display()));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Err("tests/browser/node_modules missing: run `npm ci --prefix tests/browser`".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node not found".into());
    }
    Ok((chromium, dir))
}

#[test]
fn the_dashboard_in_chromium() {
    let (chromium, dir) = match browser() {
        Ok(b) => b,
        Err(why) if std::env::var_os("SOPHON_REQUIRE_BROWSER").is_some() => panic!("browser tests: {why}"),
        Err(why) => {
            eprintln!("skipping the browser tests: {why}");
            return;
        }
    };
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init: Value = serde_json::from_str(&sophon.ok(&[
        "gateway",
        "init",
        "--home",
        s(&home),
        "--demo",
        "--scale",
        "small",
        "--json",
    ]))
    .unwrap();
    let sign_ins = init["demo"]["sign_ins"].as_array().unwrap();
    let user = |i: usize| json!({ "email": sign_ins[i]["email"], "password": sign_ins[i]["password"], "tenant": sign_ins[i]["tenant"] });
    let users = json!({ "owner": user(0), "viewer": user(1), "admin": user(2) });
    let tenant = sign_ins[2]["tenant"].as_str().unwrap();
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", tenant, "-q"]);
    // A large document after those snapshots: a create of everything then takes long enough for its
    // progress to be watched in the page and for Cancel to arrive while it runs.
    add_big_document(&home, BIG_DOCUMENT);

    let (_server, url) = serve(&sophon, &home);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    let out = Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .env("SOPHON_URL", &url)
        .env("SOPHON_USERS", users.to_string())
        .env("SOPHON_SHOTS", &shots)
        .env("SOPHON_HOME", &home)
        .env("SOPHON_WORK", t.path())
        // For the checks beside the UI: `sophon backup verify --in` of the archives the page made.
        .env("SOPHON_BIN", assert_cmd::cargo::cargo_bin("sophon"))
        .env("SOPHON_CACHE_DIR", &sophon.cache)
        .env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
        .env("TZ", "UTC")
        .env("CHROMIUM", &chromium)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser scenarios failed:\n{stdout}");
    let ran = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(ran >= 23, "only {ran} scenarios ran:\n{stdout}");
    for shot in [
        "backups",
        "verify",
        "backups-phone",
        "sign-in-error",
        "create-estimate",
        "create-done",
        "create-progress",
        "create-cancelled",
        "browse",
        "browse-file",
        "restore-preview",
        "restore-replace-confirm",
        "restore-result",
        "schedules-add",
        "schedules",
        "retention-preview",
        "phone-create",
        "phone-restore",
        "phone-schedules",
    ] {
        let png = shots.join(format!("{shot}.png"));
        assert!(std::fs::metadata(&png).map(|m| m.len() > 1000).unwrap_or(false), "{} missing", png.display());
    }
}
