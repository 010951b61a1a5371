//! The dashboard's browse and restore through the real binary on a demo home (issue 13): a
//! snapshot's tree, a file viewed and downloaded (the bytes `backup restore --target` writes), a
//! folder as a zip Python opens; a restore previewed then confirmed (the preview's counts are the
//! restore's), replace confirmed by typing, one restore at a time, a home changed after the
//! preview refused, an uploaded archive restored and a non-archive refused without a trace; and
//! who may do what: a tenant's admin guessing another tenant's snapshot ids, a viewer, no CSRF.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::web::{demo_users, Demo, Reply, Server};
use common::*;
use serde_json::{json, Value};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A signed-in user: the cookie and the CSRF token.
struct User<'a> {
    server: &'a Server,
    cookie: String,
    csrf: String,
}

impl<'a> User<'a> {
    fn sign_in(server: &'a Server, who: &Demo) -> User<'a> {
        let r = server.sign_in(&who.email, &who.password);
        assert_eq!(r.status, 200, "{}", r.body);
        User { server, cookie: r.cookie(), csrf: r.json()["csrf"].as_str().unwrap().to_string() }
    }

    fn get(&self, path: &str) -> Reply {
        self.server.get(path, Some(&self.cookie))
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        self.server.request("POST", path, &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)], Some(body))
    }

    /// A POST with the session but without its CSRF token.
    fn post_without_token(&self, path: &str, body: &Value) -> Reply {
        self.server.request("POST", path, &[("Cookie", &self.cookie)], Some(body))
    }

    fn upload(&self, name: &str, kind: &str, data: &[u8]) -> Reply {
        let path = format!("/api/uploads?name={name}");
        self.server.send("POST", &path, &[("Cookie", &self.cookie), ("X-CSRF-Token", &self.csrf)], Some((kind, data)))
    }

    /// Follow a job until it ends; its last view.
    fn wait(&self, job: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            let v = self.get(&format!("/api/jobs/{job}")).json();
            if v["state"] != json!("running") {
                return v;
            }
            assert!(Instant::now() < until, "job {job} still running: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn demo(t: &Path) -> (Sophon, std::path::PathBuf, (Demo, Demo, Demo), String) {
    let sophon = Sophon::new(t);
    let home = t.join("home");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let admin_tenant =
        serde_json::from_str::<Value>(&init).unwrap()["demo"]["sign_ins"][2]["tenant"].as_str().unwrap().to_string();
    (sophon, home, demo_users(&init), admin_tenant)
}

fn snapshot_ids(owner: &User<'_>) -> Vec<Value> {
    let r = owner.get("/api/snapshots");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["snapshots"].as_array().unwrap().clone()
}

/// The id of the snapshot whose scope label ends with `suffix` (`""`: the whole gateway's).
fn id_of(snaps: &[Value], tenant: Option<&str>) -> String {
    let found = snaps.iter().find(|s| s["tenant"].as_str() == tenant).unwrap_or_else(|| panic!("{snaps:?}"));
    found["id"].as_str().unwrap().to_string()
}

fn files_named(entries: &Value) -> BTreeMap<String, Value> {
    entries.as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap().to_string(), e.clone())).collect()
}

#[test]
fn browse_view_download_and_zip_within_the_user_s_scope() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, (owner, viewer, admin), admin_tenant) = demo(t.path());
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", "acme", "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", &admin_tenant, "-q"]);
    let server = Server::start(&sophon, &home);
    let o = User::sign_in(&server, &owner);
    let snaps = snapshot_ids(&o);
    let whole = id_of(&snaps, None);
    let acme = id_of(&snaps, Some("acme"));
    let theirs = id_of(&snaps, Some(&admin_tenant));

    // What the CLI writes for the whole gateway's snapshot.
    let out = t.path().join("out");
    let repo = home.join("backups/repository");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", &whole, "--target", s(&out), "-q"]);

    // The root and a folder, as the export lays them out.
    let root = o.get(&format!("/api/snapshots/{whole}/tree"));
    assert_eq!(root.status, 200, "{}", root.body);
    let root = root.json();
    assert_eq!(
        (root["root"].as_str(), root["layout"].as_str(), root["path"].as_str()),
        (Some("backup"), Some("gateway"), Some(""))
    );
    let names = files_named(&root["entries"]);
    assert_eq!(names["documents"]["kind"], json!("dir"));
    assert_eq!(names["metadata.json"]["kind"], json!("file"));
    let on_disk: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), on_disk.len(), "{names:?} vs {on_disk:?}");
    let agents = o.get(&format!("/api/snapshots/{whole}/tree?path=agents/")).json();
    let agents = files_named(&agents["entries"]);
    let agents_json = std::fs::read(out.join("agents/agents.json")).unwrap();
    assert_eq!(agents["agents.json"]["size"], json!(agents_json.len()));
    assert!(agents["agents.json"]["mtime"].as_str().unwrap().ends_with('Z'));

    // View a text file: the bytes the CLI restored; download it: the same, as an attachment.
    let view = o.get(&format!("/api/snapshots/{whole}/file?path=agents/agents.json"));
    assert_eq!(view.status, 200, "{}", view.body);
    assert!(view.header("content-type").unwrap().starts_with("text/plain"), "{:?}", view.headers);
    assert_eq!(view.bytes, agents_json);
    // A binary document, downloaded; viewed it is refused as not text.
    let doc = std::fs::read_dir(out.join("documents/files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".docx"))
        .unwrap();
    let doc_path = format!("documents/files/{doc}");
    let down = o.get(&format!("/api/snapshots/{whole}/file?path={doc_path}&download=1"));
    assert_eq!(down.status, 200);
    assert_eq!(down.bytes, std::fs::read(out.join(&doc_path)).unwrap(), "download equals the CLI's restore");
    assert!(down.header("content-disposition").unwrap().starts_with("attachment; filename=\""), "{:?}", down.headers);
    assert_eq!(o.get(&format!("/api/snapshots/{whole}/file?path={doc_path}")).status, 415);
    // A file over the view cap: 413 with a message that says to download it.
    let big = o.get(&format!("/api/snapshots/{whole}/file?path=memory/entries.jsonl"));
    assert_eq!(big.status, 413, "{}", big.body);
    assert!(big.json()["error"].as_str().unwrap().contains("download it instead"), "{}", big.body);
    let big_down = o.get(&format!("/api/snapshots/{whole}/file?path=memory/entries.jsonl&download=1"));
    assert_eq!(big_down.bytes, std::fs::read(out.join("memory/entries.jsonl")).unwrap());

    // A folder as a zip, streamed: Python's zipfile opens it and finds the CLI's bytes.
    let z = o.get(&format!("/api/snapshots/{whole}/zip?path=documents"));
    assert_eq!(z.status, 200, "{}", z.body);
    assert_eq!(z.header("content-type"), Some("application/zip"));
    assert!(z.complete(), "the stream ended with its last chunk");
    let zip_file = t.path().join("documents.zip");
    std::fs::write(&zip_file, &z.bytes).unwrap();
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import zipfile, hashlib, json, sys\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None\n\
             print(json.dumps({n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if not n.endswith('/')}))",
            s(&zip_file),
        ])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let in_zip: BTreeMap<String, String> = serde_json::from_slice(&py.stdout).unwrap();
    let expected: BTreeMap<String, String> = files_below(&out.join("documents"))
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&out).unwrap().to_str().unwrap().to_string();
            let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &std::fs::read(&p).unwrap()));
            (format!("backup/{rel}"), sha)
        })
        .collect();
    assert_eq!(in_zip, expected);

    // Paths that climb or start at the root: 400, on every browse endpoint.
    for what in ["tree", "file", "zip"] {
        for bad in ["../etc", "/etc/passwd", "agents/../../x", "a//b"] {
            let r = o.get(&format!("/api/snapshots/{whole}/{what}?path={bad}"));
            assert_eq!(r.status, 400, "{what} {bad}: {}", r.body);
        }
        assert_eq!(o.get(&format!("/api/snapshots/{whole}/{what}?path=nothing-here")).status, 404, "{what}");
        assert_eq!(server.get(&format!("/api/snapshots/{whole}/{what}"), None).status, 401, "{what}");
    }

    // The viewer reads its own tenant's snapshot, and may view and download in it.
    let v = User::sign_in(&server, &viewer);
    assert_eq!(v.get(&format!("/api/snapshots/{acme}/tree")).status, 200);
    assert_eq!(v.get(&format!("/api/snapshots/{acme}/file?path=agents/agents.json")).status, 200);
    assert_eq!(v.get(&format!("/api/snapshots/{acme}/zip?path=agents")).status, 200);
    assert_eq!(v.get(&format!("/api/snapshots/{whole}/tree")).status, 404, "the whole gateway is not the viewer's");

    // The other tenant's admin: its own snapshot, by full id and by short id; every other one is
    // not found, whatever names it.
    let a = User::sign_in(&server, &admin);
    assert_eq!(a.get(&format!("/api/snapshots/{theirs}/tree")).status, 200);
    assert_eq!(a.get(&format!("/api/snapshots/{}/tree", &theirs[..8])).status, 200);
    for other in [&whole, &acme] {
        for id in [other.as_str(), &other[..8], &other[..12], &other[..4]] {
            for what in ["tree", "file?path=agents/agents.json", "zip"] {
                let r = a.get(&format!("/api/snapshots/{id}/{what}"));
                assert_eq!(r.status, 404, "{id} {what}: {}", r.body);
                assert!(!r.body.contains("agents"), "{}", r.body);
            }
            let plan = a.post("/api/restores/plan", &json!({ "source": { "snapshot": id } }));
            assert_eq!(plan.status, 404, "{id}: {}", plan.body);
        }
    }

    // Downloads are in the audit log: who, which snapshot and path.
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let n: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dashboard.download' AND actor = ?1 AND detail LIKE ?2",
            rusqlite::params![owner.email, format!("%{doc_path}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Every file (not folder) below the upload folder.
fn uploads_left(cache: &Path) -> Vec<std::path::PathBuf> {
    let dir = cache.join("uploads");
    if !dir.exists() {
        return Vec::new();
    }
    files_below(&dir)
}

fn counts(report: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = |k: &str| c[k].as_u64().unwrap();
            (c["category"].as_str().unwrap().to_string(), n("records"), n("added"), n("unchanged"), n("quarantined"))
        })
        .collect()
}

#[test]
fn restore_previewed_then_confirmed_uploads_and_refusals() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, (owner, viewer, admin), admin_tenant) = demo(t.path());
    let archive = t.path().join("x.zip");
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&archive), "-q"]);
    sophon.ok(&["backup", "create", "--home", s(&home), "--tenant", &admin_tenant, "-q"]);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    // Since the backup: ten memory entries gone (added back), one agent renamed (a conflict).
    db.execute(
        "DELETE FROM memory_entries WHERE rowid IN (SELECT rowid FROM memory_entries ORDER BY rowid LIMIT 10)",
        [],
    )
    .unwrap();
    let renamed: String =
        db.query_row("SELECT id FROM agents WHERE tenant_id = 'acme' ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    db.execute("UPDATE agents SET name = name || ' (renamed)' WHERE id = ?1", [&renamed]).unwrap();

    let server = Server::start(&sophon, &home);
    let o = User::sign_in(&server, &owner);
    let snaps = snapshot_ids(&o);
    let whole = id_of(&snaps, None);
    let theirs = id_of(&snaps, Some(&admin_tenant));

    // The preview: the "Would restore:" block, the conflicts, a token.
    let plan = o.post("/api/restores/plan", &json!({ "source": { "snapshot": whole }, "mode": "additive" }));
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan = plan.json();
    let shown = &plan["report"];
    assert!(shown["text"][0].as_str().unwrap().starts_with("Would restore: "), "{shown}");
    assert!(shown["text"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().starts_with("  memory: ")), "{shown}");
    assert_eq!(shown["conflicts"], json!([format!("agents/{renamed}")]), "{shown}");
    let memory = counts(shown).into_iter().find(|c| c.0 == "memory").unwrap();
    assert_eq!(memory.2, 10, "ten entries would be added back: {memory:?}");
    assert_eq!(plan["confirm_with"], Value::Null, "additive needs no typed confirmation");
    assert_eq!(
        db.query_row("SELECT COUNT(*) FROM memory_entries", [], |r| r.get::<_, i64>(0)).unwrap(),
        8461,
        "the preview wrote nothing"
    );

    // Confirmed: the restore's report has the preview's counts.
    let started = o.post("/api/restores", &json!({ "plan": plan["plan"] }));
    assert_eq!(started.status, 202, "{}", started.body);
    let done = o.wait(started.json()["id"].as_str().unwrap());
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    let report = &done["result"]["report"];
    assert_eq!(counts(report), counts(shown));
    assert_eq!(report["conflicts"], shown["conflicts"]);
    assert!(report["text"][0].as_str().unwrap().starts_with("Restored: "), "{report}");
    assert!(report["needs_action"].is_array());
    assert_eq!(db.query_row("SELECT COUNT(*) FROM memory_entries", [], |r| r.get::<_, i64>(0)).unwrap(), 8471);
    // A token is used once.
    assert_eq!(o.post("/api/restores", &json!({ "plan": plan["plan"] })).status, 404);

    // The home changed between the preview and the confirmation: refused, nothing written.
    let plan = o.post("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).json();
    db.execute(
        "DELETE FROM memory_entries WHERE rowid IN (SELECT rowid FROM memory_entries ORDER BY rowid LIMIT 3)",
        [],
    )
    .unwrap();
    let started = o.post("/api/restores", &json!({ "plan": plan["plan"] }));
    assert_eq!(started.status, 202, "{}", started.body);
    let failed = o.wait(started.json()["id"].as_str().unwrap());
    assert_eq!(failed["state"], json!("failed"), "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("the home changed since the restore was previewed"), "{failed}");
    assert_eq!(db.query_row("SELECT COUNT(*) FROM memory_entries", [], |r| r.get::<_, i64>(0)).unwrap(), 8468);

    // Two restores at once: one runs, the other is refused naming who runs the first.
    let p1 = o.post("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).json();
    let p2 = o.post("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).json();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let user = &o;
        let handles: Vec<_> = [&p1, &p2]
            .into_iter()
            .map(|p| scope.spawn(move || user.post("/api/restores", &json!({ "plan": p["plan"] }))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, vec![202, 409], "{:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
    let busy = replies.iter().find(|r| r.status == 409).unwrap();
    assert!(busy.json()["error"].as_str().unwrap().contains(&owner.email), "{}", busy.body);
    let ran = replies.iter().find(|r| r.status == 202).unwrap();
    let done = o.wait(ran.json()["id"].as_str().unwrap());
    assert_eq!(done["state"], json!("succeeded"), "{done}");

    // Replace needs the typed confirmation: none or a wrong one is refused, nothing runs.
    let a = User::sign_in(&server, &admin);
    let plan = a.post("/api/restores/plan", &json!({ "source": { "snapshot": theirs }, "mode": "replace" }));
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan = plan.json();
    assert_eq!(plan["confirm_with"], json!(admin_tenant), "a tenant's admin confirms with its tenant");
    assert_eq!(plan["into_tenant"], json!(admin_tenant));
    assert!(!plan["only"].as_array().unwrap().iter().any(|c| c == "config" || c == "license" || c == "mcp"), "{plan}");
    for confirm in [None, Some("replace"), Some("acme")] {
        let r = a.post("/api/restores", &json!({ "plan": plan["plan"], "confirm": confirm }));
        assert_eq!(r.status, 400, "{confirm:?}: {}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains(&format!("type {admin_tenant:?}")), "{}", r.body);
    }
    // Another user cannot use the admin's token.
    assert_eq!(o.post("/api/restores", &json!({ "plan": plan["plan"], "confirm": admin_tenant })).status, 404);
    let r = a.post("/api/restores", &json!({ "plan": plan["plan"], "confirm": admin_tenant }));
    assert_eq!(r.status, 202, "{}", r.body);
    let done = a.wait(r.json()["id"].as_str().unwrap());
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    // A tenant's admin restores into its tenant only, and never the gateway's own files.
    let r = a.post("/api/restores/plan", &json!({ "source": { "snapshot": theirs }, "into_tenant": "acme" }));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = a.post("/api/restores/plan", &json!({ "source": { "snapshot": theirs }, "only": ["config"] }));
    assert_eq!(r.status, 403, "{}", r.body);

    // An uploaded archive made by `backup create --out` restores; the upload is gone after.
    let bytes = std::fs::read(&archive).unwrap();
    let up = o.upload("x.zip", "application/zip", &bytes);
    assert_eq!(up.status, 201, "{}", up.body);
    let up = up.json();
    assert_eq!((up["checked"].clone(), up["bytes"].clone()), (json!(true), json!(bytes.len())), "{up}");
    assert!(up["backup"]["categories"].as_array().unwrap().contains(&json!("memory")), "{up}");
    let files = uploads_left(&sophon.cache);
    assert_eq!(files.len(), 1, "{files:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the upload is private");
    }
    // Not the admin's upload.
    assert_eq!(a.post("/api/restores/plan", &json!({ "source": { "upload": up["id"] } })).status, 404);
    db.execute(
        "DELETE FROM memory_entries WHERE rowid IN (SELECT rowid FROM memory_entries ORDER BY rowid LIMIT 5)",
        [],
    )
    .unwrap();
    let plan = o.post("/api/restores/plan", &json!({ "source": { "upload": up["id"] }, "only": ["memory"] }));
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan = plan.json();
    let memory = counts(&plan["report"]).into_iter().find(|c| c.0 == "memory").unwrap();
    assert_eq!(memory.2, 5, "the five entries deleted since: {memory:?}");
    let r = o.post("/api/restores", &json!({ "plan": plan["plan"] }));
    assert_eq!(r.status, 202, "{}", r.body);
    let done = o.wait(r.json()["id"].as_str().unwrap());
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    assert_eq!(counts(&done["result"]["report"]), counts(&plan["report"]));
    assert_eq!(db.query_row("SELECT COUNT(*) FROM memory_entries", [], |r| r.get::<_, i64>(0)).unwrap(), 8471);
    assert!(uploads_left(&sophon.cache).is_empty(), "{:?}", uploads_left(&sophon.cache));
    assert_eq!(o.post("/api/restores/plan", &json!({ "source": { "upload": up["id"] } })).status, 404);

    // Not an archive: 400 with a clear message, and nothing left in the upload folder.
    let junk = o.upload("notes.zip", "application/zip", b"these are my notes, not an archive\n");
    assert_eq!(junk.status, 400, "{}", junk.body);
    let message = junk.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("not a Sophon export archive"), "{message}");
    assert!(!message.contains(s(&sophon.cache)), "no server path in the message: {message}");
    assert!(uploads_left(&sophon.cache).is_empty(), "{:?}", uploads_left(&sophon.cache));
    // A truncated archive: refused too.
    let cut = o.upload("cut.zip", "application/zip", &bytes[..bytes.len() / 2]);
    assert_eq!(cut.status, 400, "{}", cut.body);
    assert!(uploads_left(&sophon.cache).is_empty());

    // A sealed archive: opened with the server's passphrase at upload; a passphrase given with a
    // preview is never echoed back nor written to the audit log.
    let sealed = t.path().join("sealed.zip");
    sophon.ok(&[
        "backup",
        "export",
        &whole,
        "--repo",
        s(&home.join("backups/repository")),
        "--out",
        s(&sealed),
        "--encrypt",
    ]);
    let up = o.upload("sealed.zip", "application/octet-stream", &std::fs::read(&sealed).unwrap());
    assert_eq!(up.status, 201, "{}", up.body);
    let up = up.json();
    assert_eq!((up["sealed"].clone(), up["checked"].clone()), (json!(true), json!(true)), "{up}");
    let plan = o.post(
        "/api/restores/plan",
        &json!({ "source": { "upload": up["id"] }, "only": ["users"], "passphrase": PASSPHRASE }),
    );
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert!(!plan.raw.contains(PASSPHRASE));
    assert_eq!(plan.json()["report"]["two_factor_sealed"], json!(false), "the 2FA secrets were opened");

    // Past the upload cap: 413, and nothing kept.
    let small = Server::start_args(&sophon, &home, &["--max-upload", "1K"]);
    let o2 = User::sign_in(&small, &owner);
    let r = o2.upload("x.zip", "application/zip", &bytes);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("--max-upload"), "{}", r.body);
    drop(small);
    let left: Vec<_> = uploads_left(&sophon.cache)
        .into_iter()
        .filter(|p| {
            !p.starts_with(sophon.cache.join("uploads").join(format!(
                "upload-{}-{}",
                server.child.id(),
                up["id"].as_str().unwrap()
            )))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A viewer may not preview, restore or upload; no CSRF token: 403 for everyone.
    let v = User::sign_in(&server, &viewer);
    assert_eq!(v.post("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).status, 403);
    assert_eq!(v.post("/api/restores", &json!({ "plan": "0" })).status, 403);
    assert_eq!(v.upload("x.zip", "application/zip", &bytes).status, 403);
    let plan = o.post("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).json();
    assert_eq!(o.post_without_token("/api/restores/plan", &json!({ "source": { "snapshot": whole } })).status, 403);
    assert_eq!(o.post_without_token("/api/restores", &json!({ "plan": plan["plan"] })).status, 403);
    let no_token = server.send("POST", "/api/uploads", &[("Cookie", &o.cookie)], Some(("application/zip", &bytes)));
    assert_eq!(no_token.status, 403);
    assert_eq!(uploads_left(&sophon.cache).len(), 1, "only the sealed upload");
    // Bad requests: a clear 400.
    for bad in [
        json!({ "source": { "snapshot": whole }, "mode": "merge" }),
        json!({ "source": { "snapshot": whole }, "only": ["nonsense"] }),
        json!({ "source": { "somewhere": "x" } }),
    ] {
        let r = o.post("/api/restores/plan", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }

    // Each restore is in the audit log with its outcome.
    let outcomes: Vec<String> = db
        .prepare("SELECT detail FROM audit_log WHERE action = 'dashboard.restore' ORDER BY at, rowid")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| serde_json::from_str::<Value>(&d.unwrap()).unwrap()["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "succeeded").count(), 4, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "failed").count(), 1, "{outcomes:?}");
    let dump: String =
        db.query_row("SELECT group_concat(action || target || detail, '|') FROM audit_log", [], |r| r.get(0)).unwrap();
    assert!(!dump.contains(PASSPHRASE), "the audit log holds no passphrase");
}
