//! `sophon serve`: schedules, retention and the history chart's stats, through the real binary on a
//! demo home. What the dashboard does must be what the CLI sees: jobs added, changed and removed
//! over HTTP show in `sophon cron list --json`; a retention preview is the plan of
//! `sophon backup forget --dry-run --json`, and a saved lifecycle is what `backup forget` then
//! applies. Roles, CSRF and tenant scope are tried on every state-changing endpoint.

mod common;

use std::collections::BTreeSet;
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

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A signed-in user: its cookie and CSRF token.
struct User {
    cookie: String,
    csrf: String,
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
        let addr = first.strip_prefix("dashboard: http://").unwrap().split('/').next().unwrap().to_string();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, port }
    }

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
        let status = head.lines().next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        Reply { status, body: body.to_string() }
    }

    fn sign_in(&self, email: &str, password: &str) -> User {
        let body = json!({ "email": email, "password": password });
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let b = body.to_string();
        let req = format!(
            "POST /api/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        );
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{raw}");
        let cookie = head
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let csrf = serde_json::from_str::<Value>(body).unwrap()["csrf"].as_str().unwrap().to_string();
        User { cookie, csrf }
    }

    fn get(&self, u: &User, path: &str) -> Reply {
        self.request("GET", path, &[("Cookie", &u.cookie)], None)
    }

    /// A state-changing request with the user's cookie and CSRF token.
    fn send(&self, u: &User, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.request(method, path, &[("Cookie", &u.cookie), ("X-CSRF-Token", &u.csrf)], body)
    }

    /// Follow a background job's events to its end; its last view.
    fn finish(&self, u: &User, job: &str) -> Value {
        let events = self.get(u, &format!("/api/jobs/{job}/events"));
        let last = events.body.lines().filter_map(|l| l.strip_prefix("data:")).next_back().expect("an event");
        serde_json::from_str(last.trim()).unwrap()
    }
}

/// The demo's users: the default tenant's owner, its viewer, the second tenant's admin, and that tenant.
fn demo(init_json: &str) -> ([(String, String); 3], String) {
    let v: Value = serde_json::from_str(init_json).unwrap();
    let users = v["demo"]["sign_ins"].as_array().unwrap();
    let pick = |i: usize| {
        (users[i]["email"].as_str().unwrap().to_string(), users[i]["password"].as_str().unwrap().to_string())
    };
    assert_eq!(users[2]["roles"], json!(["admin"]));
    ([pick(0), pick(1), pick(2)], users[2]["tenant"].as_str().unwrap().to_string())
}

fn cron_list(sophon: &Sophon, home: &Path) -> Vec<Value> {
    let out = sophon.ok(&["cron", "list", "--home", s(home), "--json"]);
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[test]
fn schedules_round_trip_through_the_cli_with_roles_csrf_and_tenant_scope() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let ([owner, viewer, admin], admin_tenant) = demo(&init);
    let server = Server::start(&sophon, &home);
    let o = server.sign_in(&owner.0, &owner.1);
    let v = server.sign_in(&viewer.0, &viewer.1);
    let a = server.sign_in(&admin.0, &admin.1);

    // The list: every job of the home for the gateway-wide owner, with the CLI's next run times.
    assert_eq!(server.request("GET", "/api/schedules", &[], None).status, 401);
    let list = server.get(&o, "/api/schedules");
    assert_eq!(list.status, 200, "{}", list.body);
    let jobs = list.json()["schedules"].as_array().unwrap().clone();
    let cli = cron_list(&sophon, &home);
    assert_eq!(jobs.len(), cli.len());
    for c in &cli {
        let j = jobs.iter().find(|j| j["id"] == c["id"]).unwrap_or_else(|| panic!("{} missing", c["id"]));
        assert_eq!((&j["tenant"], &j["name"], &j["schedule"]), (&c["tenant"], &c["name"], &c["schedule"]));
        match (&c["next_run"], &j["next_run"]) {
            (Value::Null, Value::Null) => {}
            (want, got) => assert_eq!(time(want), time(got), "{}", j["name"]),
        }
        assert_eq!(j["status"], c["last_run"]["status"].as_str().map_or(json!("never"), |s| json!(s)));
    }
    let nightly = jobs.iter().filter(|j| j["name"] == "nightly-backup").collect::<Vec<_>>();
    assert!(!nightly.is_empty());
    for j in &nightly {
        assert!(j["next_run"].is_string(), "{j}");
        assert!(j["last_run"]["started_at"].is_string() && j["last_run"]["duration_seconds"].is_number(), "{j}");
    }

    // The preview: five ascending times; a bad expression gets the library's message, as `cron add`.
    let p = server.send(&v, "POST", "/api/schedules/preview", Some(&json!({ "expression": "*/15 9-17 * * MON-FRI" })));
    assert_eq!(p.status, 200, "{}", p.body);
    let times: Vec<_> = p.json()["times"].as_array().unwrap().iter().map(time).collect();
    assert_eq!(times.len(), 5);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(times[0] > chrono::Utc::now());
    let out = sophon.run(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "x",
        "--schedule",
        "0 25 * * *",
        "--action",
        "custom",
        "--command",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let cli_err = String::from_utf8_lossy(&out.stderr).into_owned();
    let bad = server.send(&o, "POST", "/api/schedules/preview", Some(&json!({ "expression": "0 25 * * *" })));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let msg = bad.json()["error"].as_str().unwrap().to_string();
    assert!(cli_err.contains(&msg), "{msg:?} not in {cli_err:?}");

    // Add: a bad expression is 400 naming the field; a good one shows in `cron list`.
    let bad = server.send(
        &o,
        "POST",
        "/api/schedules",
        Some(&json!({ "name": "hello", "schedule": "61 * * * *", "action": "custom", "command": "echo hi" })),
    );
    assert_eq!((bad.status, bad.json()["field"].clone()), (400, json!("schedule")), "{}", bad.body);
    let add =
        json!({ "name": "hello", "schedule": "0 5 * * *", "action": "custom", "command": "echo hello from {date}" });
    let added = server.send(&o, "POST", "/api/schedules", Some(&add));
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.json()["id"].as_str().unwrap().to_string();
    assert!(added.json()["next_run"].is_string());
    let find = |name: &str| cron_list(&sophon, &home).into_iter().find(|j| j["name"] == name);
    let row = find("hello").expect("in cron list");
    assert_eq!(
        (row["id"].as_str(), row["schedule"].as_str(), row["enabled"].as_bool()),
        (Some(id.as_str()), Some("0 5 * * *"), Some(true))
    );
    assert_eq!(row["command"], json!("echo hello from {date}"));
    // The same name again: 409, saying how to replace or edit.
    let clash = server.send(&o, "POST", "/api/schedules", Some(&add));
    assert_eq!(clash.status, 409, "{}", clash.body);
    let m = clash.json()["error"].as_str().unwrap().to_string();
    assert!(m.contains("already has a job named") && m.contains("replace") && m.contains("edit"), "{m}");

    // Edit, pause, resume: each visible to the CLI.
    let edited = server.send(&o, "PUT", &format!("/api/schedules/{id}"), Some(&json!({ "schedule": "30 6 * * 1" })));
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(find("hello").unwrap()["schedule"], json!("30 6 * * 1"));
    let paused = server.send(&o, "POST", &format!("/api/schedules/{id}/pause"), None);
    assert_eq!((paused.status, paused.json()["paused"].clone()), (200, json!(true)), "{}", paused.body);
    assert_eq!(find("hello").unwrap()["enabled"], json!(false));
    assert!(paused.json()["next_run"].is_null());
    let resumed = server.send(&o, "POST", &format!("/api/schedules/{id}/resume"), None);
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(find("hello").unwrap()["enabled"], json!(true));
    let bad = server.send(&o, "PUT", &format!("/api/schedules/{id}"), Some(&json!({ "schedule": "* * *" })));
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Run now: a background job that ends ok, recorded in the job's history as the CLI sees it.
    let started = server.send(&o, "POST", &format!("/api/schedules/{id}/run"), None);
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.json()["kind"], json!("schedule-run"));
    let end = server.finish(&o, started.json()["id"].as_str().unwrap());
    assert_eq!(end["state"], json!("succeeded"), "{end}");
    assert!(end["result"]["summary"].as_str().unwrap().starts_with("hello from 20"), "{end}");
    let runs = server.get(&o, &format!("/api/schedules/{id}/runs"));
    assert_eq!(runs.status, 200, "{}", runs.body);
    assert_eq!(runs.json()["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs.json()["runs"][0]["status"], json!("ok"));
    assert_eq!(find("hello").unwrap()["last_run"]["status"], json!("ok"));
    // Cancelled, a run stops and is recorded as abandoned; while it runs, a second is refused.
    let sleepy = json!({ "name": "sleepy", "schedule": "0 0 1 1 *", "action": "custom", "command": "sleep 30" });
    let sleepy = server.send(&o, "POST", "/api/schedules", Some(&sleepy)).json()["id"].as_str().unwrap().to_string();
    let started = server.send(&o, "POST", &format!("/api/schedules/{sleepy}/run"), None);
    assert_eq!(started.status, 202, "{}", started.body);
    let job = started.json()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.get(&o, &format!("/api/schedules/{sleepy}/runs")).json()["runs"].as_array().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(server.send(&o, "POST", &format!("/api/schedules/{sleepy}/run"), None).status, 409);
    let began = std::time::Instant::now();
    assert_eq!(server.send(&o, "POST", &format!("/api/jobs/{job}/cancel"), None).status, 200);
    assert_eq!(server.finish(&o, &job)["state"], json!("cancelled"));
    assert!(began.elapsed() < std::time::Duration::from_secs(20), "the command was stopped, not waited for");
    let run = &server.get(&o, &format!("/api/schedules/{sleepy}/runs")).json()["runs"][0];
    assert_eq!(run["status"], json!("failed"), "{run}");
    assert!(run["summary"].as_str().unwrap().starts_with("abandoned"), "{run}");

    // An agent job is the gateway's to run.
    let agent = jobs.iter().find(|j| j["action"] == "agent").unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(server.send(&o, "POST", &format!("/api/schedules/{agent}/run"), None).status, 409);

    // A viewer reads but changes nothing: 403 on every state-changing endpoint.
    let vlist = server.get(&v, "/api/schedules");
    assert_eq!(vlist.status, 200);
    let viewer_tenant = server.get(&v, "/api/session").json()["tenant"].as_str().unwrap().to_string();
    assert!(vlist.json()["schedules"].as_array().unwrap().iter().all(|j| j["tenant"] == json!(viewer_tenant)));
    assert_eq!(server.get(&v, &format!("/api/schedules/{id}/runs")).status, 200);
    let changes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/api/schedules".into(), Some(add.clone())),
        ("PUT", format!("/api/schedules/{id}"), Some(json!({ "schedule": "0 1 * * *" }))),
        ("POST", format!("/api/schedules/{id}/pause"), None),
        ("POST", format!("/api/schedules/{id}/resume"), None),
        ("POST", format!("/api/schedules/{id}/run"), None),
        ("DELETE", format!("/api/schedules/{id}"), None),
        ("PUT", "/api/retention".into(), Some(json!({ "lifecycle": { "KeepLast": 3 } }))),
    ];
    for (method, path, body) in &changes {
        let r = server.send(&v, method, path, body.as_ref());
        assert_eq!(r.status, 403, "viewer {method} {path}: {}", r.body);
        // Without the CSRF token (the owner's cookie only): 403 too; without a session: 401.
        let r = server.request(method, path, &[("Cookie", &o.cookie)], body.as_ref());
        assert_eq!(r.status, 403, "no CSRF {method} {path}: {}", r.body);
        assert_eq!(server.request(method, path, &[], body.as_ref()).status, 401, "{method} {path}");
    }
    assert!(find("hello").is_some(), "nothing the viewer tried took effect");

    // The other tenant's admin: its tenant's jobs only; another tenant's job is not there (404).
    let alist = server.get(&a, "/api/schedules").json();
    let mine = alist["schedules"].as_array().unwrap();
    assert!(!mine.is_empty() && mine.iter().all(|j| j["tenant"] == json!(admin_tenant)), "{alist}");
    for (method, path, body) in &changes[1..6] {
        let r = server.send(&a, method, path, body.as_ref());
        assert_eq!(r.status, 404, "admin {method} {path}: {}", r.body);
    }
    assert_eq!(server.get(&a, &format!("/api/schedules/{id}/runs")).status, 404);
    let other = server.send(
        &a,
        "POST",
        "/api/schedules",
        Some(&json!({ "name": "x", "tenant": "acme", "schedule": "0 1 * * *", "action": "backup" })),
    );
    assert_eq!(other.status, 403, "{}", other.body);
    let custom = server.send(
        &a,
        "POST",
        "/api/schedules",
        Some(&json!({ "name": "x", "schedule": "0 1 * * *", "action": "custom", "command": "id" })),
    );
    assert_eq!((custom.status, custom.json()["field"].clone()), (403, json!("command")), "{}", custom.body);
    // A backup job it adds is its tenant's and backs up its tenant only.
    let b = server.send(
        &a,
        "POST",
        "/api/schedules",
        Some(&json!({ "name": "hourly-users", "schedule": "0 * * * *", "action": "backup",
                       "backup": { "categories": ["users"], "tags": ["hourly"] } })),
    );
    assert_eq!(b.status, 201, "{}", b.body);
    let row = find("hourly-users").unwrap();
    assert_eq!(row["tenant"], json!(admin_tenant));
    assert_eq!(row["backup_args"], json!(["--tenant", admin_tenant, "--categories", "users", "--tag", "hourly"]));
    assert_eq!(row["retention"], json!(true));
    assert_eq!(server.get(&o, &format!("/api/schedules/{}/runs", row["id"].as_str().unwrap())).status, 200);

    // Remove: gone from the CLI's list, then 404.
    let removed = server.send(&o, "DELETE", &format!("/api/schedules/{id}"), None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["runs_removed"], json!(1));
    assert!(find("hello").is_none());
    assert_eq!(server.send(&o, "DELETE", &format!("/api/schedules/{id}"), None).status, 404);

    // Every change and refusal is in the audit log.
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let actions: Vec<(String, String, String)> = db
        .prepare(
            "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'dashboard.schedule%' ORDER BY at, rowid",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for action in
        ["schedule_add", "schedule_edit", "schedule_pause", "schedule_resume", "schedule_remove", "schedule-run"]
    {
        let ok = actions
            .iter()
            .any(|(who, a, d)| who == &owner.0 && a == &format!("dashboard.{action}") && d.contains("\"outcome\":\""));
        assert!(ok, "no audit row for {action}: {actions:?}");
    }
    assert!(actions
        .iter()
        .any(|(who, a, d)| who == &viewer.0 && a == "dashboard.schedule_remove" && d.contains("refused (403)")));
}

/// The snapshot ids a forget plan keeps and removes, from its `groups`.
fn verdicts(groups: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut keep, mut remove) = (BTreeSet::new(), BTreeSet::new());
    for g in groups.as_array().unwrap() {
        for s in g["snapshots"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            if s["keep"].as_bool().unwrap() {
                keep.insert(id);
            } else {
                remove.insert(id);
            }
        }
    }
    (keep, remove)
}

#[test]
fn retention_preview_is_the_forget_plan_and_saving_writes_what_forget_then_applies() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let ([owner, viewer, admin], admin_tenant) = demo(&init);
    // A history over days and months: whole-gateway backups and the second tenant's.
    for at in ["2025-01-05T03:00:00Z", "2025-02-01T03:00:00Z", "2025-02-02T03:00:00Z", "2025-02-02T15:00:00Z"] {
        sophon.ok(&["backup", "create", "--home", s(&home), "--time", at, "-q"]);
    }
    for at in ["2025-01-10T03:00:00Z", "2025-02-02T04:00:00Z"] {
        sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", &admin_tenant, "--time", at, "-q"]);
    }
    let server = Server::start(&sophon, &home);
    let o = server.sign_in(&owner.0, &owner.1);
    let v = server.sign_in(&viewer.0, &viewer.1);
    let a = server.sign_in(&admin.0, &admin.1);

    // The lifecycle in effect: the base file's counts and the environment's yearly one.
    let r = server.get(&v, "/api/retention");
    assert_eq!(r.status, 200, "{}", r.body);
    let cur = r.json();
    assert_eq!(cur["describe"], json!("keep 7 daily, keep 4 weekly, keep 12 monthly, keep 7 yearly"));
    assert_eq!(cur["sources"]["KeepDaily"], json!("config/appsettings.json"));
    assert_eq!(cur["sources"]["KeepYearly"], json!("config/appsettings.Production.json"));
    assert_eq!(cur["file"], json!("config/appsettings.Production.json"));
    assert_eq!(
        (cur["may_save"].clone(), server.get(&o, "/api/retention").json()["may_save"].clone()),
        (json!(false), json!(true))
    );

    // The preview is `backup forget --dry-run`'s plan for the same policy.
    for (lifecycle, flags) in [
        (json!({ "KeepLast": 2 }), vec!["--keep-last", "2"]),
        (json!({ "KeepDaily": 1, "KeepMonthly": "1" }), vec!["--keep-daily", "1", "--keep-monthly", "1"]),
    ] {
        let p = server.send(&o, "POST", "/api/retention/preview", Some(&json!({ "lifecycle": lifecycle })));
        assert_eq!(p.status, 200, "{}", p.body);
        let mut args = vec!["backup", "forget", "--home", s(&home), "--dry-run", "--json"];
        args.extend(flags);
        let cli: Value = serde_json::from_str(&sophon.ok(&args)).unwrap();
        let (keep, remove) = verdicts(&p.json()["groups"]);
        assert_eq!((keep.clone(), remove.clone()), verdicts(&cli["groups"]), "{lifecycle}");
        assert_eq!(keep.len() + remove.len(), 6);
        assert!(!remove.is_empty(), "{lifecycle}: the history has something to remove");
        assert_eq!(p.json()["groups"], cli["groups"], "the same groups, reasons and all");
    }
    // A viewer previews too (its tenant has no backup here); a tenant's admin its tenant's groups only.
    let p = server.send(&v, "POST", "/api/retention/preview", Some(&json!({ "lifecycle": { "KeepLast": 1 } })));
    assert_eq!((p.status, p.json()["groups"].clone()), (200, json!([])), "{}", p.body);
    let p = server.send(&a, "POST", "/api/retention/preview", Some(&json!({ "lifecycle": { "KeepLast": 1 } })));
    assert_eq!(p.status, 200, "{}", p.body);
    let groups = p.json()["groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["key"]["tenant"], json!(admin_tenant));
    // Bad values: 400 naming the key.
    for (bad, key) in [
        (json!({ "KeepDaily": -1 }), "KeepDaily"),
        (json!({ "KeepWeekly": 1.5 }), "KeepWeekly"),
        (json!({ "KeepWithin": "3x" }), "KeepWithin"),
        (json!({ "Daily": 7 }), "Daily"),
    ] {
        for (method, path) in [("POST", "/api/retention/preview"), ("PUT", "/api/retention")] {
            let r = server.send(&o, method, path, Some(&json!({ "lifecycle": bad })));
            assert_eq!(r.status, 400, "{method} {bad}: {}", r.body);
            assert_eq!(r.json()["field"], json!(key), "{}", r.body);
            assert!(
                r.json()["error"].as_str().unwrap().contains(&format!("Sophon:Backups:Default:Lifecycle:{key}")),
                "{}",
                r.body
            );
        }
    }
    let empty = server.send(&o, "PUT", "/api/retention", Some(&json!({ "lifecycle": { "KeepDaily": 0 } })));
    assert_eq!(empty.status, 400, "{}", empty.body);

    // Only a gateway-wide owner saves; the admin of a tenant is refused like the viewer.
    let want = json!({ "KeepDaily": 2, "KeepMonthly": 1 });
    assert_eq!(server.send(&a, "PUT", "/api/retention", Some(&json!({ "lifecycle": want }))).status, 403);
    assert_eq!(server.send(&v, "PUT", "/api/retention", Some(&json!({ "lifecycle": want }))).status, 403);
    let before = std::fs::read_to_string(home.join("config/appsettings.Production.json")).unwrap();
    let preview = server.send(&o, "POST", "/api/retention/preview", Some(&json!({ "lifecycle": want })));
    let token = preview.json()["plan"].as_str().unwrap().to_string();
    let stale =
        server.send(&o, "PUT", "/api/retention", Some(&json!({ "lifecycle": want, "confirm_plan": "0".repeat(32) })));
    assert_eq!(stale.status, 409, "{}", stale.body);
    let saved = server.send(&o, "PUT", "/api/retention", Some(&json!({ "lifecycle": want, "confirm_plan": token })));
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.json()["saved"]["file"], json!("config/appsettings.Production.json"));
    assert_eq!(saved.json()["retention"]["describe"], json!("keep 2 daily, keep 1 monthly"));

    // The file: the lifecycle replaced, every other line as it was.
    let after = std::fs::read_to_string(home.join("config/appsettings.Production.json")).unwrap();
    let changed: Vec<&str> = after.lines().filter(|l| !before.lines().any(|b| b == *l)).collect();
    assert!(changed.iter().all(|l| l.trim_start().starts_with("\"Keep")), "{changed:?}");
    let gone: Vec<&str> = before.lines().filter(|l| !after.lines().any(|b| b == *l)).collect();
    assert_eq!(gone, vec!["          \"KeepYearly\": 7"], "only the old lifecycle line went");
    // No forget ran: every snapshot is still there.
    let snaps = server.get(&o, "/api/snapshots").json()["snapshots"].as_array().unwrap().len();
    assert_eq!(snaps, 6);
    // `backup forget` without flags now applies the saved lifecycle, and its plan is the preview's.
    let cli: Value =
        serde_json::from_str(&sophon.ok(&["backup", "forget", "--home", s(&home), "--dry-run", "--json"])).unwrap();
    assert!(
        cli["policy_from"].as_str().unwrap().contains("Sophon:Backups:Default:Lifecycle"),
        "{}",
        cli["policy_from"]
    );
    assert_eq!(
        (cli["policy"]["daily"].clone(), cli["policy"]["monthly"].clone(), cli["policy"]["yearly"].clone()),
        (json!(2), json!(1), json!(0))
    );
    assert_eq!(verdicts(&cli["groups"]), verdicts(&preview.json()["groups"]));
    let audit: i64 = rusqlite::Connection::open(home.join("gateway.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'dashboard.retention_save' AND detail LIKE '%\"outcome\":\"ok\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 1);

    // The history chart's points are the snapshots of /api/snapshots, in scope.
    for u in [&o, &a, &v] {
        let snaps = server.get(u, "/api/snapshots").json()["snapshots"].as_array().unwrap().clone();
        let stats = server.get(u, "/api/stats");
        assert_eq!(stats.status, 200, "{}", stats.body);
        let points = stats.json()["points"].as_array().unwrap().clone();
        assert_eq!(points.len(), snaps.len());
        let mut stored = 0;
        for (p, s) in points.iter().zip(&snaps) {
            assert_eq!((&p["id"], &p["time"]), (&s["id"], &s["time"]));
            assert_eq!(p["bytes"], s["summary"]["bytes"]);
            assert_eq!(p["bytes_added"], s["summary"]["bytes_added"]);
            stored += s["summary"]["bytes_stored"].as_u64().unwrap();
            assert_eq!(p["stored_total"], json!(stored));
            assert!(p["dedup_ratio"].as_f64().unwrap() >= 1.0, "{p}");
        }
    }
    let all = server.get(&o, "/api/stats").json();
    assert!(all["repository_bytes"].as_u64().unwrap() > 0, "{all}");
    assert!(
        server.get(&a, "/api/stats").json().get("repository_bytes").is_none(),
        "a tenant sees its own figures only"
    );
    assert_eq!(server.request("GET", "/api/stats", &[], None).status, 401);
}
