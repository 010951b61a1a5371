//! `GET /api/exports`: the archives at the config's destination for scheduled backups (the demo
//! says `local`: the home's `backups/archives/`), each user seeing those of its scope only.

mod common;

use std::path::Path;

use common::web::{demo_users, Server};
use common::*;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> =
        v["exports"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap().into()).collect();
    n.sort();
    n
}

#[test]
fn exports_at_the_configured_destination_within_each_users_scope() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, viewer, admin) = demo_users(&init);
    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);

    // Nothing exported yet: an empty list, not an error.
    let empty = o.get(&server, "/api/exports");
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(names(&empty.json()).is_empty());

    let archives = home.join("backups/archives");
    std::fs::create_dir_all(&archives).unwrap();
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&archives.join("whole.zip")), "-q"]);
    sophon.ok(&[
        "backup",
        "create",
        "--home",
        s(&home),
        "--tenant",
        &admin.tenant,
        "--out",
        s(&archives.join("tenant.tar.gz")),
        "-q",
    ]);

    let all = o.get(&server, "/api/exports").json();
    assert_eq!(names(&all), ["tenant.tar.gz", "whole.zip"], "{all}");
    assert!(all["destination"].as_str().unwrap().ends_with("backups/archives"), "{all}");
    let whole = all["exports"].as_array().unwrap().iter().find(|x| x["name"] == "whole.zip").unwrap();
    assert_eq!(whole["format"], "zip");
    assert!(whole["snapshot"].as_str().unwrap().len() == 64 && whole["size"].as_u64().unwrap() > 0, "{whole}");
    assert!(whole["tenant"].is_null());

    let a = server.user(&admin.email, &admin.password);
    let theirs = a.get(&server, "/api/exports").json();
    assert_eq!(names(&theirs), ["tenant.tar.gz"], "a tenant's admin sees its tenant's archives only: {theirs}");
    let v = server.user(&viewer.email, &viewer.password);
    let none = v.get(&server, "/api/exports").json();
    assert!(names(&none).is_empty(), "the viewer's tenant has no archive: {none}");
    assert_eq!(server.get("/api/exports", None).status, 401);

    // `Destination: archive`: the repository is the archive; nothing listed, and said so.
    let cfg = home.join("config/appsettings.json");
    let text =
        std::fs::read_to_string(&cfg).unwrap().replace("\"Destination\": \"local\"", "\"Destination\": \"archive\"");
    assert!(text.contains("\"Destination\": \"archive\""));
    std::fs::write(&cfg, text).unwrap();
    let archive = o.get(&server, "/api/exports").json();
    assert_eq!(archive["destination"], "archive");
    assert!(names(&archive).is_empty() && archive["note"].as_str().unwrap().contains("repository"), "{archive}");
}

/// The dashboard's create to Azure Blob (Azurite): with the server's credentials the archive is
/// written and verifies; with a key the store refuses, the job fails saying what failed and that
/// the snapshot was kept, and nothing is left under the archive's name.
#[test]
fn a_create_to_azure_blob_and_a_store_that_refuses_the_credentials() {
    let Some(base) = std::env::var("SOPHON_TEST_AZBLOB_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_AZBLOB_URL is not set");
        eprintln!("skipped: SOPHON_TEST_AZBLOB_URL is not set (scripts/test-servers start DIR; source DIR/env)");
        return;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let folder = format!("{}/web-{}-{nanos}", base.trim_end_matches('/'), std::process::id());
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, _, _) = demo_users(&init);
    let body = |name: &str| serde_json::json!({ "format": "zip", "destination": { "kind": "azblob", "url": format!("{folder}/{name}") } });

    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);
    let started = o.post(&server, "/api/backups", &body("good.zip"));
    assert_eq!(started.status, 202, "{}", started.body);
    let done = server.wait(started.json()["id"].as_str().unwrap(), &o);
    assert_eq!(done["state"], "succeeded", "{done}");
    let out = sophon.ok(&["backup", "verify", "--in", &format!("{folder}/good.zip")]);
    assert!(out.contains("no damage found") || out.contains("ok"), "{out}");
    drop(server);

    // The same store with a key it does not accept (a valid base64 key of the wrong bytes).
    let server =
        Server::start_with(&sophon, &home, &[("AZURE_STORAGE_KEY", "d3JvbmcgYWNjb3VudCBrZXkgZm9yIGF6dXJpdGU=")]);
    let o = server.user(&owner.email, &owner.password);
    let before = o.get(&server, "/api/snapshots").json()["snapshots"].as_array().unwrap().len();
    let started = o.post(&server, "/api/backups", &body("refused.zip"));
    // Refused at once (the store is checked before the backup) or by the job once it uploads.
    if started.status == 202 {
        let done = server.wait(started.json()["id"].as_str().unwrap(), &o);
        assert_eq!(done["state"], "failed", "{done}");
        let e = done["error"].as_str().unwrap();
        assert!(!e.contains('\n') && e.len() < 600, "one short line: {e}");
        assert!(e.contains("kept") || e.contains("refused") || e.contains("403") || e.contains("uthenticat"), "{e}");
    } else {
        assert!(matches!(started.status, 400 | 502 | 503), "{} {}", started.status, started.body);
        let after = o.get(&server, "/api/snapshots").json()["snapshots"].as_array().unwrap().len();
        assert_eq!(after, before, "a refused create takes no snapshot");
    }
    drop(server);
    let listed = sophon.run(&["backup", "verify", "--in", &format!("{folder}/refused.zip")]);
    assert!(!listed.status.success(), "nothing was written under the refused name");
}
