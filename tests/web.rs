//! `sophon serve`: the dashboard's first increment through the real binary on a demo home with a
//! repository: health and metrics, sign-in (good, wrong, unknown, no role, rate limit), cookies and
//! CSRF, the snapshot list in each user's scope, and the audit log (no password anywhere).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};

use common::*;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running `sophon serve`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(sophon: &Sophon, home: &Path) -> Server {
        let mut child = sophon
            .std_cmd()
            .args(["serve", "--home", s(home), "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let mut server = Server { child, port: 0 };
        assert!(first.ends_with("/ (plain HTTP: put it behind your TLS proxy)\n"), "{first:?}");
        let addr = first.strip_prefix("dashboard: http://").unwrap().split('/').next().unwrap();
        server.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        server
    }

    /// One HTTP/1.1 request; returns (status, headers in lower case, body).
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        Reply { status, headers, body: body.to_string(), raw }
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        match cookie {
            Some(c) => self.request("GET", path, &[("Cookie", c)], None),
            None => self.request("GET", path, &[], None),
        }
    }

    fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.request("POST", "/api/session", &[], Some(&json!({ "email": email, "password": password })))
    }
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    raw: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// `sophon_session=…` from Set-Cookie, as a Cookie header value.
    fn cookie(&self) -> String {
        self.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
    }
}

struct Demo {
    email: String,
    password: String,
}

fn demo_users(init_json: &str) -> (Demo, Demo, Demo) {
    let v: Value = serde_json::from_str(init_json).unwrap();
    let users = v["demo"]["sign_ins"].as_array().unwrap();
    let pick = |i: usize| Demo {
        email: users[i]["email"].as_str().unwrap().into(),
        password: users[i]["password"].as_str().unwrap().into(),
    };
    assert_eq!(users[0]["roles"], json!(["owner", "admin"]));
    assert_eq!(users[1]["roles"], json!(["viewer"]));
    assert_eq!(users[2]["roles"], json!(["admin"]));
    assert_ne!(users[2]["tenant"], users[0]["tenant"]);
    (pick(0), pick(1), pick(2))
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
