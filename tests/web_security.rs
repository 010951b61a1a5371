//! The dashboard's refusals, swept over every route the router declares (read from
//! `src/web/mod.rs`, so a new route cannot be added without being classified here):
//! - every state-changing request refuses without a session (401) and without its CSRF token (403),
//!   and for a viewer (403) unless it only previews;
//! - a tenant's admin guessing the ids of the default tenant's snapshots, jobs, schedules,
//!   downloads, uploads and restore plans gets nothing (404 or 403) from any endpoint that takes one;
//! - a passphrase typed into a create, a download and a restore preview appears in no response,
//!   nothing the server printed, and no audit row.

mod common;

use std::path::Path;

use common::web::{demo_users, Reply, Server, User};
use common::*;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// (method, path) of every route in the router, read from its source.
fn routes() -> Vec<(String, String)> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/mod.rs")).unwrap();
    let mut out = Vec::new();
    for line in src.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
        let path = line[".route(\"".len()..].split('"').next().unwrap().to_string();
        for method in ["get", "post", "put", "delete", "patch"] {
            if line.contains(&format!("{method}(")) || line.contains(&format!(".{method}(")) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(out.len() >= 30, "the router's routes were not found: {out:?}");
    out
}

/// State-changing requests a viewer may make: they change nothing of the gateway's.
const VIEWER_MAY: &[(&str, &str)] =
    &[("DELETE", "/api/session"), ("POST", "/api/schedules/preview"), ("POST", "/api/retention/preview")];

fn call(server: &Server, user: Option<&User>, token: bool, method: &str, path: &str, body: &Value) -> Reply {
    let mut headers = Vec::new();
    if let Some(u) = user {
        headers.push(("Cookie", u.cookie.as_str()));
        if token {
            headers.push(("X-CSRF-Token", u.csrf.as_str()));
        }
    }
    let body = (method != "GET" && method != "DELETE").then_some(body);
    server.request(method, path, &headers, body)
}

#[test]
fn every_route_refuses_what_it_must_and_no_passphrase_leaks() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, viewer, admin) = demo_users(&init);
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", &admin.tenant, "-q"]);
    let server = Server::start(&sophon, &home);
    let o = server.user(&owner.email, &owner.password);
    let v = server.user(&viewer.email, &viewer.password);
    let a = server.user(&admin.email, &admin.password);
    let mut replies: Vec<Reply> = Vec::new();

    // The owner's objects, whose ids the tenant's admin will guess.
    let snaps = o.get(&server, "/api/snapshots").json()["snapshots"].as_array().unwrap().clone();
    let whole = snaps.iter().find(|s| s["tenant"].is_null()).unwrap()["id"].as_str().unwrap().to_string();
    let schedules = o.get(&server, "/api/schedules").json();
    let schedule = schedules["schedules"]
        .as_array()
        .or_else(|| schedules["jobs"].as_array())
        .unwrap()
        .iter()
        .find(|j| j["tenant"] != json!(admin.tenant))
        .expect("a job of the default tenant")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = "correct horse battery staple 42";
    let create = o.post(
        &server,
        "/api/backups",
        &json!({ "format": "zip", "encrypt": true, "passphrase": secret, "passphrase_confirm": secret,
                 "destination": { "kind": "download" } }),
    );
    assert_eq!(create.status, 202, "{}", create.body);
    let job = create.json()["id"].as_str().unwrap().to_string();
    let done = server.wait(&job, &o);
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    let offered = o.post(&server, "/api/downloads", &json!({ "snapshot": whole, "format": "zip", "encrypt": true, "passphrase": secret, "passphrase_confirm": secret }));
    assert_eq!(offered.status, 200, "{}", offered.body);
    let token = offered.json()["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&t.path().join("up.zip")), "-q"]);
    let bytes = std::fs::read(t.path().join("up.zip")).unwrap();
    let up = server.send(
        "POST",
        "/api/uploads?name=up.zip",
        &[("Cookie", &o.cookie), ("X-CSRF-Token", &o.csrf)],
        Some(("application/zip", &bytes)),
    );
    assert_eq!(up.status, 201, "{}", up.body);
    let upload = up.json()["id"].as_str().unwrap().to_string();
    // The snapshot the create just took is sealed with the typed passphrase.
    let after = o.get(&server, "/api/snapshots").json()["snapshots"].as_array().unwrap().clone();
    let sealed = after.iter().find(|s| !snaps.contains(s)).expect("the create's snapshot")["id"].clone();
    let plan =
        o.post(&server, "/api/restores/plan", &json!({ "source": { "snapshot": sealed }, "passphrase": secret }));
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan_token = plan.json()["plan"].as_str().unwrap().to_string();
    replies.extend([create, offered, up, plan]);

    // 1. Every state-changing route: no session, no token, a viewer.
    let fill = |p: &str| p.replace("{id}", &whole).replace("{token}", &token).replace("{name}", "app.js");
    let mut swept = 0;
    for (method, path) in routes() {
        if method == "GET" || (method.as_str(), path.as_str()) == ("POST", "/api/session") {
            continue;
        }
        let p = fill(&path);
        let body = json!({});
        let r = call(&server, None, false, &method, &p, &body);
        assert_eq!(r.status, 401, "{method} {path} without a session: {}", r.body);
        let r = call(&server, Some(&o), false, &method, &p, &body);
        assert_eq!(r.status, 403, "{method} {path} without the CSRF token: {}", r.body);
        if !VIEWER_MAY.contains(&(method.as_str(), path.as_str())) {
            let r = call(&server, Some(&v), true, &method, &p, &body);
            assert_eq!(r.status, 403, "{method} {path} as a viewer: {}", r.body);
        }
        swept += 1;
    }
    assert!(swept >= 18, "only {swept} state-changing routes swept");
    // A token of another session is no token.
    let r =
        server.request("POST", "/api/verify", &[("Cookie", &o.cookie), ("X-CSRF-Token", &a.csrf)], Some(&json!({})));
    assert_eq!(r.status, 403);

    // 2. The tenant's admin guessing the owner's ids: every endpoint that takes one.
    let prefix = &whole[..8];
    let guesses: Vec<(&str, String, Value)> = vec![
        ("GET", format!("/api/snapshots/{whole}/tree"), json!(null)),
        ("GET", format!("/api/snapshots/{prefix}/tree"), json!(null)),
        ("GET", format!("/api/snapshots/{whole}/file?path=metadata.json"), json!(null)),
        ("GET", format!("/api/snapshots/{prefix}/zip"), json!(null)),
        ("GET", format!("/api/jobs/{job}"), json!(null)),
        ("GET", format!("/api/jobs/{job}/events"), json!(null)),
        ("POST", format!("/api/jobs/{job}/cancel"), json!({})),
        ("GET", format!("/api/downloads/{token}"), json!(null)),
        ("POST", "/api/downloads".into(), json!({ "snapshot": whole, "format": "zip" })),
        ("POST", "/api/downloads".into(), json!({ "snapshot": prefix, "format": "zip" })),
        ("POST", "/api/restores/plan".into(), json!({ "source": { "snapshot": whole } })),
        ("POST", "/api/restores/plan".into(), json!({ "source": { "upload": upload } })),
        ("POST", "/api/restores".into(), json!({ "plan": plan_token })),
        ("GET", format!("/api/schedules/{schedule}/runs"), json!(null)),
        ("PUT", format!("/api/schedules/{schedule}"), json!({ "schedule": "0 1 * * *" })),
        ("POST", format!("/api/schedules/{schedule}/pause"), json!({})),
        ("POST", format!("/api/schedules/{schedule}/resume"), json!({})),
        ("POST", format!("/api/schedules/{schedule}/run"), json!({})),
        ("DELETE", format!("/api/schedules/{schedule}"), json!(null)),
    ];
    for (method, path, body) in &guesses {
        let r = call(&server, Some(&a), true, method, path, body);
        assert!(matches!(r.status, 403 | 404), "{method} {path} by another tenant's admin: {} {}", r.status, r.body);
        // Echoing the id guessed is no leak; what the object is or holds would be.
        assert!(
            !r.body.contains("gateway:") && !r.body.contains("\"time\""),
            "{method} {path} described it: {}",
            r.body
        );
        replies.push(r);
    }
    // The lists do not name them either.
    for path in ["/api/snapshots", "/api/jobs", "/api/schedules", "/api/stats"] {
        let r = a.get(&server, path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.contains(&whole) && !r.body.contains(&job) && !r.body.contains(&schedule),
            "{path}: {}",
            r.body
        );
        replies.push(r);
    }
    // And the owner's objects are all still there.
    assert_eq!(o.get(&server, &format!("/api/schedules/{schedule}/runs")).status, 200);
    assert_eq!(o.get(&server, &format!("/api/jobs/{job}")).status, 200);

    // 3. The passphrase: in no response, nothing the server printed, no audit row.
    let printed = server.stop();
    for r in &replies {
        assert!(!r.raw.contains(secret), "a response holds the passphrase: {}", r.raw);
    }
    assert!(!printed.contains(secret), "the server printed the passphrase");
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let audit: String = db
        .query_row("SELECT group_concat(actor || action || target || detail, '|') FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(audit.contains("dashboard.create") || audit.contains("dashboard."), "actions are audited");
    assert!(!audit.contains(secret), "the audit log holds the passphrase");
}
