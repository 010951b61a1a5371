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
