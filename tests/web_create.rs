//! The dashboard's Settings → Backup → Create through the real binary on a demo home: the form's
//! options, the estimate, creates in zip and tar.gz, encrypted or not, to a download (streamed,
//! opened with Python's `zipfile`/`tarfile`, a sealed one verified with its passphrase), to a local
//! path and to the test S3 server; live progress, cancel (no file, no new snapshot, no lock); the
//! refusals (no session, no CSRF token, a viewer, a tenant's admin outside its tenant, bad input
//! naming its field); and the passphrase in no response, no server output and no audit row.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::web::{demo_users, Reply, Server, User};
use common::*;
use serde_json::{json, Value};

/// The passphrase typed into the form: it must never come back.
const TYPED: &str = "Typed-Dashboard-Passphrase-7391";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The home's own repository (a first create makes it).
fn repo_of(home: &Path) -> PathBuf {
    home.join("backups/repository")
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

/// Start a create; the job's last view once it has ended.
fn create(server: &Server, user: &User, body: Value, replies: &mut Vec<Reply>) -> Value {
    let started = user.post(server, "/api/backups", &body);
    assert_eq!(started.status, 202, "{}", started.body);
    let job = started.json()["id"].as_str().unwrap().to_string();
    replies.push(started);
    let last = server.wait(&job, user);
    let view = user.get(server, &format!("/api/jobs/{job}"));
    replies.push(view);
    last
}

fn succeeded(v: &Value) -> &Value {
    assert_eq!(v["state"], json!("succeeded"), "{v}");
    &v["result"]
}

/// Follow a download link; the archive saved as `to`.
fn download(server: &Server, user: &User, url: &str, to: &Path) -> Reply {
    let r = user.get(server, url);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.cut, "the download ended whole");
    std::fs::write(to, &r.bytes).unwrap();
    r
}

fn python(code: &str, file: &Path) -> String {
    let out = Command::new("python3").args(["-c", code, s(file)]).output().expect("python3");
    assert!(
        out.status.success(),
        "python3 on {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The members of a zip, after Python's zipfile read every one and checked its CRC.
fn zip_names(file: &Path) -> String {
    python(
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint('\\n'.join(z.namelist()))",
        file,
    )
}

/// The members of a tar.gz, every one read by Python's tarfile.
fn tar_names(file: &Path) -> String {
    python(
        "import sys, tarfile\nt = tarfile.open(sys.argv[1], 'r:gz')\nfor m in t:\n    f = t.extractfile(m)\n    f and f.read()\n    print(m.name)",
        file,
    )
}

/// `backup verify --in` of an archive, sealed with `passphrase`.
fn verify_in(sophon: &Sophon, archive: &str, passphrase: &str) -> std::process::Output {
    sophon
        .cmd()
        .env("SOPHON_BACKUP_PASSPHRASE", passphrase)
        .args(["backup", "verify", "--in", archive])
        .output()
        .unwrap()
}

fn s3_base() -> Option<String> {
    match std::env::var("SOPHON_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ => {
            assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
            eprintln!(
                "skipped the S3 create: SOPHON_TEST_S3_URL is not set (scripts/test-servers start DIR; source DIR/env)"
            );
            None
        }
    }
}

/// Every audit row's text, and the rows of `action`.
fn audit(home: &Path, action: &str) -> (String, Vec<Value>) {
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let all: String = db
        .query_row("SELECT group_concat(actor || action || target || detail, '|') FROM audit_log", [], |r| r.get(0))
        .unwrap();
    let rows = db
        .prepare("SELECT detail FROM audit_log WHERE action = ?1 ORDER BY at, rowid")
        .unwrap()
        .query_map([action], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
        .collect();
    (all, rows)
}

#[test]
fn create_estimate_download_local_path_and_s3() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, _viewer, admin) = demo_users(&init);
    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);
    let mut replies = Vec::new();

    // What the form offers a gateway-wide user: every category, every tenant.
    let options = o.get(&server, "/api/backups/options");
    assert_eq!(options.status, 200, "{}", options.body);
    let options = options.json();
    assert_eq!(options["categories"].as_array().unwrap().len(), 19, "{options}");
    assert!(options["tenants"].as_array().unwrap().iter().any(|t| t["id"] == json!(admin.tenant)), "{options}");
    assert_eq!(options["formats"], json!(["zip", "tar.gz"]));

    // The estimate before any repository: everything is new.
    let first = o.post(&server, "/api/backups/estimate", &json!({}));
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(first["repository"], json!(false), "{first}");
    assert!(first["files"].as_u64().unwrap() > 10 && first["records_total"].as_u64().unwrap() > 10, "{first}");
    assert_eq!(first["bytes_new"], first["bytes"], "{first}");
    assert!(!repo_of(&home).exists(), "an estimate writes nothing");

    // Everything as a zip, to download: the first create makes the repository.
    let v = create(&server, &o, json!({ "format": "zip", "destination": { "kind": "download" } }), &mut replies);
    let r = succeeded(&v).clone();
    assert!(r["repository_created"].is_string(), "{r}");
    assert_eq!(
        v["what"],
        json!({ "categories": [], "tenant": null, "format": "zip", "encrypt": false,
        "destination": { "kind": "download" } })
    );
    let url = r["download"]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/api/downloads/") && url.len() == "/api/downloads/".len() + 64, "{url}");
    let zip = t.path().join("all.zip");
    let d = download(&server, &o, &url, &zip);
    assert_eq!(d.header("content-type"), Some("application/zip"));
    let disposition = d.header("content-disposition").unwrap();
    let name = r["download"]["name"].as_str().unwrap();
    assert_eq!(disposition, format!("attachment; filename=\"{name}\""));
    assert!(name.starts_with(&format!("sophon-gateway-{}-", r["short_id"].as_str().unwrap())), "{name}");
    assert!(name.ends_with(".zip"), "{name}");
    let names = zip_names(&zip);
    for want in
        ["backup/metadata.json", "backup/manifest.json", "backup/users/users.json", "backup/documents/index.json"]
    {
        assert!(names.lines().any(|n| n == want), "{want} not in {names}");
    }
    assert_eq!(o.get(&server, &url).status, 404, "a download link works once");

    // The estimate now: the snapshot just taken is the parent, and almost nothing is new.
    let again = o.post(&server, "/api/backups/estimate", &json!({})).json();
    assert_eq!(again["repository"], json!(true), "{again}");
    assert_eq!(again["parent"]["id"], r["snapshot"], "{again}");
    assert!(again["files_unchanged"].as_u64().unwrap() > 0, "{again}");
    assert!(again["bytes_new"].as_u64().unwrap() < again["bytes"].as_u64().unwrap() / 10, "{again}");

    // Two categories of the second tenant, as a tar.gz.
    let body = json!({ "categories": ["users", "agents"], "tenant": admin.tenant, "format": "tar.gz",
        "destination": { "kind": "download" } });
    let r = succeeded(&create(&server, &o, body, &mut replies)).clone();
    assert!(r["scope"].as_str().unwrap().contains(&format!("tenant={}", admin.tenant)), "{r}");
    let tgz = t.path().join("tenant.tar.gz");
    let d = download(&server, &o, r["download"]["url"].as_str().unwrap(), &tgz);
    assert_eq!(d.header("content-type"), Some("application/gzip"));
    assert!(d.header("content-disposition").unwrap().contains(&format!("sophon-{}-", admin.tenant)));
    let names = tar_names(&tgz);
    assert!(names.lines().any(|n| n == "backup/users/users.json"), "{names}");
    assert!(!names.lines().any(|n| n.starts_with("backup/memory/")), "only the categories asked for: {names}");

    // Encrypted with a typed passphrase: the download is sealed; it opens with that passphrase only.
    let body = json!({ "format": "zip", "encrypt": true, "passphrase": TYPED, "passphrase_confirm": TYPED,
        "destination": { "kind": "download" } });
    let v = create(&server, &o, body, &mut replies);
    let r = succeeded(&v).clone();
    assert_eq!(r["protection"]["passphrase"], json!("the passphrase typed for this backup"), "{r}");
    assert_eq!(r["protection"]["archive_encrypted"], json!(true), "{r}");
    assert_eq!(r["download"]["sealed"], json!(true), "{r}");
    let sealed = t.path().join("sealed.zip");
    let d = download(&server, &o, r["download"]["url"].as_str().unwrap(), &sealed);
    assert_eq!(d.header("content-type"), Some("application/octet-stream"));
    assert_eq!(python("import sys, zipfile\nprint(zipfile.is_zipfile(sys.argv[1]))", &sealed).trim(), "False");
    let ok = verify_in(&sophon, s(&sealed), TYPED);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("no damage found"));
    assert!(!verify_in(&sophon, s(&sealed), PASSPHRASE).status.success(), "another passphrase does not open it");

    // To a local path, tar.gz, encrypted; the name is then taken.
    let exports = t.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let out = exports.join("gateway.tar.gz");
    let local = |overwrite: bool| {
        json!({ "format": "tar.gz", "encrypt": true, "passphrase": TYPED, "passphrase_confirm": TYPED,
            "destination": { "kind": "local", "path": out, "overwrite": overwrite } })
    };
    let r = succeeded(&create(&server, &o, local(false), &mut replies)).clone();
    assert_eq!(r["archive"], json!(s(&out)), "{r}");
    assert_eq!(r["export"]["format"], json!("tar.gz"), "{r}");
    assert_eq!(count(&exports), 1, "the archive alone, no temporary file");
    assert!(verify_in(&sophon, s(&out), TYPED).status.success());
    let taken = o.post(&server, "/api/backups", &local(false));
    assert_eq!(taken.status, 400, "{}", taken.body);
    assert_eq!(taken.json()["field"], json!("destination.path"), "{}", taken.body);
    assert!(taken.json()["error"].as_str().unwrap().contains("already exists"), "{}", taken.body);
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    succeeded(&create(&server, &o, local(true), &mut replies));
    assert_ne!(std::fs::metadata(&out).unwrap().modified().unwrap(), before, "replaced with overwrite");
    replies.push(taken);

    // To the S3 test server, the name's {snapshot} filled in.
    if let Some(base) = s3_base() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let url = format!("{base}/web-create-{}-{nanos}/gateway-{{snapshot}}.zip", std::process::id());
        let r = succeeded(&create(&server, &o, json!({ "destination": { "kind": "s3", "url": url } }), &mut replies))
            .clone();
        let archive = r["archive"].as_str().unwrap();
        assert_eq!(archive, url.replace("{snapshot}", r["short_id"].as_str().unwrap()), "{r}");
        let checked = verify_in(&sophon, archive, PASSPHRASE);
        assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
        // The same name again is refused before anything starts, naming the URL field.
        let again = o.post(&server, "/api/backups", &json!({ "destination": { "kind": "s3", "url": archive } }));
        assert_eq!((again.status, again.json()["field"].clone()), (400, json!("destination.url")), "{}", again.body);
    }

    // Any snapshot of the list, downloaded as a tar.gz.
    let list = o.get(&server, "/api/snapshots").json();
    let oldest = list["snapshots"][0]["id"].as_str().unwrap().to_string();
    let offered = o.post(&server, "/api/downloads", &json!({ "snapshot": oldest, "format": "tar.gz" }));
    assert_eq!(offered.status, 200, "{}", offered.body);
    let listed = t.path().join("listed.tar.gz");
    download(&server, &o, offered.json()["url"].as_str().unwrap(), &listed);
    assert!(tar_names(&listed).lines().any(|n| n == "backup/metadata.json"));
    replies.push(offered);

    // The jobs list shows every create, and what each was asked, never the passphrase.
    let jobs = o.get(&server, "/api/jobs");
    let creates = jobs.json()["jobs"].as_array().unwrap().iter().filter(|j| j["kind"] == "create").count();
    assert!(creates >= 5, "{}", jobs.body);
    replies.push(jobs);

    let output = server.stop();
    for r in &replies {
        assert!(!r.raw.contains(TYPED), "a response carries the passphrase: {}", r.raw);
    }
    assert!(!output.contains(TYPED), "the server printed the passphrase: {output}");
    let (all, rows) = audit(&home, "dashboard.create");
    assert!(!all.contains(TYPED), "the audit log holds the passphrase");
    assert!(rows.iter().filter(|r| r["outcome"] == "succeeded").count() >= 5, "{rows:?}");
    assert!(rows.iter().any(|r| r["what"]["encrypt"] == json!(true)), "{rows:?}");
    let (_, downloads) = audit(&home, "dashboard.download");
    assert!(downloads.iter().filter(|r| r["outcome"] == "succeeded").count() >= 4, "{downloads:?}");
    assert!(downloads.iter().any(|r| r["sealed"] == json!(true)), "{downloads:?}");
}

#[test]
fn create_and_download_refusals_and_tenant_scope() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, viewer, admin) = demo_users(&init);
    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);
    let v = server.user(&viewer.email, &viewer.password);
    let a = server.user(&admin.email, &admin.password);
    let mut replies = Vec::new();

    // A whole-gateway snapshot of the owner's, which the tenant's admin must not reach.
    let whole = succeeded(&create(&server, &o, json!({ "destination": { "kind": "download" } }), &mut replies)).clone();
    let whole_id = whole["snapshot"].as_str().unwrap().to_string();
    let snapshots = repo_of(&home).join("snapshots");
    let made = count(&snapshots);

    // Every state-changing endpoint: no session 401, no CSRF token 403, a viewer 403.
    let good = json!({ "destination": { "kind": "download" } });
    let posts = [
        ("/api/backups", good.clone()),
        ("/api/backups/estimate", json!({})),
        ("/api/downloads", json!({ "snapshot": whole_id })),
    ];
    for (path, body) in &posts {
        assert_eq!(server.request("POST", path, &[], Some(body)).status, 401, "{path} without a session");
        let no_token = server.request("POST", path, &[("Cookie", &o.cookie)], Some(body));
        assert_eq!(no_token.status, 403, "{path} without the CSRF token");
        let wrong = server.request("POST", path, &[("Cookie", &o.cookie), ("X-CSRF-Token", &a.csrf)], Some(body));
        assert_eq!(wrong.status, 403, "{path} with another session's token");
        let viewer = v.post(&server, path, body);
        assert_eq!(viewer.status, 403, "{path} for a viewer: {}", viewer.body);
    }
    for path in ["/api/backups/options", "/api/downloads/00"] {
        assert_eq!(server.get(path, None).status, 401, "{path} without a session");
    }

    // Bad input: 400 naming the field, before anything starts.
    let local = |path: &str| json!({ "destination": { "kind": "local", "path": path } });
    let existing = t.path().join("taken.zip");
    std::fs::write(&existing, b"not mine").unwrap();
    let bad: Vec<(Value, &str)> = vec![
        (json!({ "categories": ["users", "nope"], "destination": { "kind": "download" } }), "categories"),
        (json!({ "tenant": "ten_nobody", "destination": { "kind": "download" } }), "tenant"),
        (json!({ "format": "rar", "destination": { "kind": "download" } }), "format"),
        (json!({ "encrypt": true, "destination": { "kind": "download" } }), "passphrase"),
        (json!({ "encrypt": true, "passphrase": TYPED, "destination": { "kind": "download" } }), "passphrase_confirm"),
        (
            json!({ "encrypt": true, "passphrase": TYPED, "passphrase_confirm": format!("{TYPED}x"),
                "destination": { "kind": "download" } }),
            "passphrase_confirm",
        ),
        (json!({ "destination": { "kind": "ftp" } }), "destination.kind"),
        (local("relative/backup.zip"), "destination.path"),
        (local(""), "destination.path"),
        (local(s(&t.path().join("missing/backup.zip"))), "destination.path"),
        (local(s(&t.path().join("backup.tar"))), "destination.path"),
        (local(s(&existing)), "destination.path"),
        (json!({ "destination": { "kind": "s3", "url": "http://bucket/backup.zip" } }), "destination.url"),
        (json!({ "destination": { "kind": "s3", "url": "s3://bucket/" } }), "destination.url"),
        (
            json!({ "destination": { "kind": "sftp", "url": "sftp://nobody@127.0.0.1:1/x/backup.zip" } }),
            "destination.url",
        ),
        (json!({ "destination": { "kind": "download" }, "colour": "blue" }), "body"),
        (json!({ "format": "zip" }), "body"),
    ];
    for (body, field) in &bad {
        let r = o.post(&server, "/api/backups", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["field"], json!(field), "{body}: {}", r.body);
        assert!(r.json()["error"].as_str().unwrap().starts_with(&format!("{field}: ")), "{}", r.body);
        replies.push(r);
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"not mine", "an existing file is never replaced without overwrite");
    let bad_estimate = o.post(&server, "/api/backups/estimate", &json!({ "categories": ["nope"] }));
    assert_eq!((bad_estimate.status, bad_estimate.json()["field"].clone()), (400, json!("categories")));
    let bad_download = o.post(&server, "/api/downloads", &json!({ "snapshot": whole_id, "format": "7z" }));
    assert_eq!((bad_download.status, bad_download.json()["field"].clone()), (400, json!("format")));
    let unsealed =
        o.post(&server, "/api/downloads", &json!({ "snapshot": whole_id, "encrypt": true, "passphrase": TYPED }));
    assert_eq!((unsealed.status, unsealed.json()["field"].clone()), (400, json!("passphrase_confirm")));
    replies.extend([bad_estimate, bad_download, unsealed]);
    assert_eq!(count(&snapshots), made, "no refused request made a snapshot");

    // The tenant's admin: its own tenant only, without the gateway-wide categories.
    let options = a.get(&server, "/api/backups/options").json();
    assert_eq!(options["scope"], json!(admin.tenant));
    assert_eq!(options["tenants"].as_array().unwrap().len(), 1, "{options}");
    assert!(options["categories"].as_array().unwrap().iter().all(|c| c["gateway_wide"] == json!(false)), "{options}");
    let other =
        a.post(&server, "/api/backups", &json!({ "tenant": owner.tenant, "destination": { "kind": "download" } }));
    assert_eq!((other.status, other.json()["field"].clone()), (403, json!("tenant")), "{}", other.body);
    let config =
        a.post(&server, "/api/backups", &json!({ "categories": ["config"], "destination": { "kind": "download" } }));
    assert_eq!((config.status, config.json()["field"].clone()), (403, json!("categories")), "{}", config.body);
    let estimate = a.post(&server, "/api/backups/estimate", &json!({ "tenant": owner.tenant }));
    assert_eq!(estimate.status, 403, "{}", estimate.body);
    replies.extend([other, config, estimate]);
    let own = a.post(&server, "/api/backups/estimate", &json!({})).json();
    assert_eq!(own["tenant"], json!(admin.tenant), "{own}");
    assert!(!own["categories"].as_array().unwrap().contains(&json!("config")), "{own}");

    let mine = succeeded(&create(&server, &a, json!({ "destination": { "kind": "download" } }), &mut replies)).clone();
    assert!(mine["scope"].as_str().unwrap().ends_with(&format!("tenant={}", admin.tenant)), "{mine}");
    let url = mine["download"]["url"].as_str().unwrap().to_string();
    // The link is the admin's session's: the owner's session cannot follow it (and does not use it up).
    assert_eq!(o.get(&server, &url).status, 404);
    let zip = t.path().join("tenant.zip");
    download(&server, &a, &url, &zip);
    let names = zip_names(&zip);
    assert!(!names.lines().any(|n| n.starts_with("backup/config/") || n.starts_with("backup/mcp/")), "{names}");
    // Another tenant's snapshots, by id, prefix or a guessed id: as unknown as no snapshot at all.
    for guess in [whole_id.clone(), whole_id[..8].to_string(), "0123456789abcdef".repeat(4), "zz".into()] {
        let r = a.post(&server, "/api/downloads", &json!({ "snapshot": guess }));
        assert_eq!(r.status, 404, "{guess}: {}", r.body);
        replies.push(r);
    }
    let own_id = mine["snapshot"].as_str().unwrap();
    let offered = a.post(&server, "/api/downloads", &json!({ "snapshot": own_id, "format": "tar.gz" }));
    assert_eq!(offered.status, 200, "{}", offered.body);
    // The owner does not see the admin's jobs, nor the admin the owner's.
    let admin_jobs = a.get(&server, "/api/jobs").json();
    assert!(admin_jobs["jobs"].as_array().unwrap().iter().all(|j| j["user"] == json!(admin.email)), "{admin_jobs}");

    let output = server.stop();
    for r in &replies {
        assert!(!r.raw.contains(TYPED), "a response carries the passphrase: {}", r.raw);
    }
    assert!(!output.contains(TYPED), "{output}");
    let (all, _) = audit(&home, "dashboard.create");
    assert!(!all.contains(TYPED), "the audit log holds the passphrase");
}

/// A demo home with one more document of `size` random bytes (a create that takes a while); what
/// `gateway init --json` printed.
fn home_with_a_big_document(sophon: &Sophon, home: &Path, size: usize) -> String {
    let init = sophon.ok(&["gateway", "init", "--home", s(home), "--demo", "--scale", "small", "--json"]);
    let id = "doc_big_progress";
    let data = pseudo_random(size, 99);
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
    init
}

/// Start a create (`body`) and cancel it once `when` holds for one of its events; the job's end.
fn cancel_when(server: &Server, user: &User, body: Value, when: impl Fn(&Value) -> bool) -> Value {
    let started = user.post(server, "/api/backups", &body);
    assert_eq!(started.status, 202, "{}", started.body);
    let job = started.json()["id"].as_str().unwrap().to_string();
    let seen = server.follow(&job, user, |ev| !when(ev));
    let last = seen.last().unwrap();
    assert_eq!(last["state"], json!("running"), "the create ended before it could be cancelled: {last}");
    let cancel = user.post(server, &format!("/api/jobs/{job}/cancel"), &json!({}));
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    server.wait(&job, user)
}

#[test]
fn progress_arrives_during_a_large_create_and_cancel_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = home_with_a_big_document(&sophon, &home, 256 << 20);
    let (owner, _, _) = demo_users(&init);
    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);
    let exports = t.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let repo = repo_of(&home);

    // Cancelled while backing up: no archive, no snapshot, none of its packs, no lock.
    let one = exports.join("one.zip");
    let body = json!({ "destination": { "kind": "local", "path": one } });
    let end =
        cancel_when(&server, &o, body, |ev| ev["step"] == "backing up" || ev["bytes_done"].as_u64() > Some(8 << 20));
    assert_eq!(end["state"], json!("cancelled"), "{end}");
    assert_eq!(end["step"], json!("cancelled"));
    assert_eq!(count(&exports), 0, "no archive, no temporary file");
    assert_eq!(count(&repo.join("snapshots")), 0, "no snapshot");
    assert_eq!(count(&repo.join("locks")), 0, "no lock");
    // A cancel before the first pack leaves no data/ folder at all.
    let packs = if repo.join("data").exists() { common::files_below(&repo.join("data")).len() } else { 0 };
    assert!(count(&repo.join("index")) == 0 && packs == 0, "the cancelled run's packs are deleted: {packs}");

    // A whole create, followed live: several progress events with growing counters and the steps.
    let two = exports.join("two.zip");
    let started = o.post(&server, "/api/backups", &json!({ "destination": { "kind": "local", "path": two } }));
    assert_eq!(started.status, 202, "{}", started.body);
    let job = started.json()["id"].as_str().unwrap().to_string();
    let events = server.follow(&job, &o, |_| true);
    let last = events.last().unwrap();
    assert_eq!(last["state"], json!("succeeded"), "{last}");
    let running: Vec<&Value> = events.iter().filter(|e| e["state"] == "running").collect();
    assert!(running.len() >= 3, "progress pushed while it runs: {} event(s)", running.len());
    let steps: Vec<&str> = running.iter().filter_map(|e| e["step"].as_str()).collect();
    assert!(steps.contains(&"backing up") && steps.contains(&"writing the archive"), "{steps:?}");
    let moving = running.iter().filter(|e| e["bytes_done"].as_u64().unwrap() > 0).count();
    assert!(moving >= 2, "{running:?}");
    assert!(running.iter().any(|e| e["bytes_total"].as_u64().unwrap() >= 256 << 20), "totals are known: {running:?}");
    assert!(running.iter().any(|e| e["bytes_per_second"].as_u64().unwrap() > 0), "{running:?}");
    assert!(two.is_file());
    assert!(verify_in(&sophon, s(&two), PASSPHRASE).status.success());
    let snapshots = count(&repo.join("snapshots"));
    assert_eq!(snapshots, 1);

    // Its download streams: the server's peak memory does not grow with the archive.
    let id = last["result"]["snapshot"].as_str().unwrap();
    let offered = o.post(&server, "/api/downloads", &json!({ "snapshot": id, "format": "zip" })).json();
    let before = server.peak_memory();
    let streamed = t.path().join("streamed.zip");
    let d = download(&server, &o, offered["url"].as_str().unwrap(), &streamed);
    let grown = server.peak_memory().saturating_sub(before);
    assert!(d.bytes.len() > 256 << 20, "{}", d.bytes.len());
    assert!(grown < 64 << 20, "peak memory grew by {} MiB for a {} MiB download", grown >> 20, d.bytes.len() >> 20);
    assert!(zip_names(&streamed).lines().any(|n| n == "backup/documents/files/doc_big_progress.bin"));
    drop(d);
    std::fs::remove_file(&streamed).unwrap();

    // Cancelled while writing the archive: the snapshot it had taken is removed again.
    let three = exports.join("three.zip");
    // Sealed: the key derivation before the first byte gives the cancel time to arrive.
    let body = json!({ "encrypt": true, "passphrase": TYPED, "passphrase_confirm": TYPED,
        "destination": { "kind": "local", "path": three } });
    let end = cancel_when(&server, &o, body, |ev| ev["step"] == "writing the archive");
    assert_eq!(end["state"], json!("cancelled"), "{end}");
    assert!(!three.exists());
    assert_eq!(
        count(&exports),
        1,
        "only the finished archive: {:?}",
        std::fs::read_dir(&exports).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(count(&repo.join("snapshots")), snapshots, "no new snapshot");
    assert_eq!(count(&repo.join("locks")), 0, "no lock");
    let check = sophon.run(&["backup", "verify", "--repo", s(&repo)]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    assert!(!server.stop().contains(TYPED));
    let (all, rows) = audit(&home, "dashboard.create");
    assert!(!all.contains(TYPED), "the audit log holds the passphrase");
    let outcomes: Vec<&str> = rows.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["cancelled", "succeeded", "cancelled"], "{rows:?}");
}
