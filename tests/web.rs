//! `sophon serve`: the dashboard's first increment through the real binary on a demo home with a
//! repository: health and metrics, sign-in (good, wrong, unknown, no role, rate limit), cookies and
//! CSRF, the snapshot list in each user's scope, and the audit log (no password anywhere).

mod common;

use std::path::Path;

use common::web::{demo_users, Server};
use common::*;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn dashboard_sign_in_snapshots_metrics_and_audit() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let (owner, viewer, admin) = demo_users(&init);
    let passwords = [&owner.password, &viewer.password, &admin.password];
    let admin_tenant: String = {
        let v: Value = serde_json::from_str(&init).unwrap();
        v["demo"]["sign_ins"][2]["tenant"].as_str().unwrap().into()
    };

    // A user with a role that gives no dashboard access, its password a bcrypt hash.
    let member_password = "member-pass-1";
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute(
        "INSERT INTO users VALUES ('usr_member', ?1, 'member@example.com', 'M', ?2, '[\"member\"]', NULL, '2026-01-01T00:00:00Z')",
        rusqlite::params![admin_tenant, bcrypt::hash(member_password, 4).unwrap()],
    )
    .unwrap();

    // One whole-gateway backup and one of the admin's tenant.
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", &admin_tenant, "-q"]);

    let server = Server::start(&sophon, &home);
    let mut replies = Vec::new();

    let health = server.get("/healthz", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({ "status": "ok" }));

    let metrics = server.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    for name in [
        "sophon_snapshots_total 2",
        "sophon_cron_job_last_success_timestamp_seconds{tenant=",
        "sophon_cron_job_last_duration_seconds{tenant=",
        "sophon_cron_job_failures_total{tenant=",
        "job=\"nightly-backup\"",
    ] {
        assert!(metrics.body.contains(name), "{name} missing:\n{}", metrics.body);
    }

    let page = server.get("/", None);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<label for=\"password\">")
            && !page.body.contains("http://")
            && !page.body.contains("https://")
    );
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'self'"));
    for src in page.body.split("src=\"").skip(1).map(|r| &r[..r.find('"').unwrap()]) {
        assert!(src.starts_with("/assets/"), "{src}: every script comes from the binary");
        let asset = server.get(src, None);
        assert_eq!(asset.status, 200, "{src}");
        assert!(asset.header("content-type").unwrap().starts_with("text/javascript"), "{src}");
        assert!(!asset.body.contains("http://") && !asset.body.contains("https://"), "{src} names no other host");
    }
    assert_eq!(server.get("/assets/style.css", None).status, 200);
    assert_eq!(server.get("/assets/../Cargo.toml", None).status, 404);

    // Not signed in.
    assert_eq!(server.get("/api/session", None).status, 401);
    assert_eq!(server.get("/api/snapshots", None).status, 401);

    // The owner of the default tenant: gateway-wide, sees both snapshots.
    let good = server.sign_in(&owner.email, &owner.password);
    assert_eq!(good.status, 200, "{}", good.body);
    let set_cookie = good.header("set-cookie").unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set_cookie.contains(flag), "{flag} not in {set_cookie}");
    }
    let id = set_cookie.strip_prefix("sophon_session=").unwrap().split(';').next().unwrap();
    assert_eq!(id.len(), 64, "32 random bytes in hex");
    let session = good.json();
    assert_eq!(session["email"], json!(owner.email));
    assert_eq!(session["scope"], json!("gateway"));
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let cookie = good.cookie();
    let again = server.get("/api/session", Some(&cookie));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["user"], session["user"]);
    let all = server.get("/api/snapshots", Some(&cookie));
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json()["snapshots"].as_array().unwrap().len(), 2, "{}", all.body);
    replies.extend([good, again, all]);

    // Wrong password and unknown user: the same 401.
    let wrong = server.sign_in(&owner.email, "not-the-password");
    let unknown = server.sign_in("nobody@example.com", "whatever");
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.header("set-cookie").is_none());

    // The viewer reads the list (its scope is its tenant: no tenant backup of it exists).
    let v = server.sign_in(&viewer.email, &viewer.password);
    assert_eq!(v.status, 200, "{}", v.body);
    let list = server.get("/api/snapshots", Some(&v.cookie()));
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.json()["snapshots"].is_array());
    let v = v.clone();
    replies.extend([v.clone(), list]);

    // The other tenant's admin sees only its tenant's snapshot.
    let a = server.sign_in(&admin.email, &admin.password);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["scope"], json!(admin_tenant));
    let list = server.get("/api/snapshots", Some(&a.cookie()));
    let snaps = list.json()["snapshots"].as_array().unwrap().clone();
    assert_eq!(snaps.len(), 1, "{}", list.body);
    assert_eq!(snaps[0]["tenant"], json!(admin_tenant));
    assert!(snaps[0]["scope"].as_str().unwrap().ends_with(&format!("?tenant={admin_tenant}")));
    replies.extend([a.clone(), list]);

    // A role with no dashboard access (bcrypt hash): 403.
    let member = server.sign_in("member@example.com", member_password);
    assert_eq!(member.status, 403, "{}", member.body);

    // Verify runs as a background job; its events stream ends with the outcome; a viewer may not start one.
    let with =
        |c: &str, t: &str| vec![("Cookie".to_string(), c.to_string()), ("X-CSRF-Token".to_string(), t.to_string())];
    let h = with(&cookie, &csrf);
    let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let started = server.request("POST", "/api/verify", &h, Some(&json!({ "read_data_percent": 100 })));
    assert_eq!(started.status, 202, "{}", started.body);
    let job = started.json()["id"].as_str().unwrap().to_string();
    let events = server.get(&format!("/api/jobs/{job}/events"), Some(&cookie));
    assert!(events.header("content-type").unwrap().starts_with("text/event-stream"), "{}", events.raw);
    let last: Value = serde_json::from_str(
        events.body.lines().filter_map(|l| l.strip_prefix("data:")).next_back().expect("at least one event").trim(),
    )
    .unwrap();
    assert_eq!(last["state"], json!("succeeded"), "{last}");
    assert_eq!(last["result"]["clean"], json!(true), "{last}");
    assert_eq!(last["result"]["snapshots"], json!(2), "{last}");
    assert!(last["result"]["packs_read"].as_u64().unwrap() > 0, "{last}");
    let jobs = server.get("/api/jobs", Some(&cookie)).json();
    assert_eq!(jobs["jobs"][0]["id"], json!(job));
    let bad = server.request("POST", "/api/verify", &h, Some(&json!({ "read_data_percent": 0 })));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let no_token = server.request("POST", "/api/verify", &[("Cookie", &cookie)], Some(&json!({})));
    assert_eq!(no_token.status, 403);
    let vs = v.json();
    let vh = with(&v.cookie(), vs["csrf"].as_str().unwrap());
    let vh: Vec<(&str, &str)> = vh.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(server.request("POST", "/api/verify", &vh, Some(&json!({}))).status, 403, "a viewer may not verify");
    // The tenant's admin does not see the owner's job.
    assert_eq!(server.get(&format!("/api/jobs/{job}"), Some(&a.cookie())).status, 404);

    // Sign-out needs the CSRF token.
    let no_token = server.request("DELETE", "/api/session", &[("Cookie", &cookie)], None);
    assert_eq!(no_token.status, 403);
    let bad_token = server.request("DELETE", "/api/session", &[("Cookie", &cookie), ("X-CSRF-Token", "0")], None);
    assert_eq!(bad_token.status, 403);
    assert_eq!(server.get("/api/session", Some(&cookie)).status, 200, "still signed in");
    let out = server.request("DELETE", "/api/session", &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)], None);
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(server.get("/api/session", Some(&cookie)).status, 401);
    assert_eq!(server.get("/api/snapshots", Some(&cookie)).status, 401);
    replies.extend([wrong, unknown, member, no_token, bad_token, out]);
    drop(server);

    // A fresh server (its rate limit state is new): five failures for one email, then 429 even
    // with the right password.
    let server = Server::start(&sophon, &home);
    for _ in 0..5 {
        assert_eq!(server.sign_in(&admin.email, "guess").status, 401);
    }
    let limited = server.sign_in(&admin.email, &admin.password);
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    replies.push(limited);
    drop(server);

    // No response carried a password.
    for r in &replies {
        for p in passwords.iter().map(|p| p.as_str()).chain([member_password, "not-the-password", "guess"]) {
            assert!(!r.raw.contains(p), "a response contains a password: {}", r.raw);
        }
    }

    // The audit log has the sign-ins, failures and sign-out, and no password.
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT actor, action, detail FROM audit_log WHERE action LIKE 'dashboard.%' ORDER BY at, rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let has = |actor: &str, action: &str| rows.iter().any(|(a, b, _)| a == actor && b == action);
    assert!(has(&owner.email, "dashboard.sign_in"), "{rows:?}");
    assert!(has(&owner.email, "dashboard.sign_in_failed"), "{rows:?}");
    assert!(has("nobody@example.com", "dashboard.sign_in_failed"), "{rows:?}");
    assert!(has(&viewer.email, "dashboard.sign_in"), "{rows:?}");
    assert!(has(&owner.email, "dashboard.sign_out"), "{rows:?}");
    assert!(has("member@example.com", "dashboard.sign_in_refused"), "{rows:?}");
    let dump: String = db
        .query_row("SELECT group_concat(actor || action || target || detail, '|') FROM audit_log", [], |r| r.get(0))
        .unwrap();
    for p in passwords.iter().map(|p| p.as_str()).chain([member_password, "not-the-password", "guess"]) {
        assert!(!dump.contains(p), "the audit log contains a password");
    }
}
