//! Gateway backups: the product page's layout, and no secret leaving in plain form — checked by
//! planting distinct canaries in every category that holds secrets and in config keys of our own
//! invention, then decrypting every blob of the repository and reading every restored file.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

const CANARY: &str = "CANARY";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn plant_canaries(home: &Path) {
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute_batch(
        "UPDATE webhooks SET signing_secret = 'CANARY-webhook-' || id;
         UPDATE connections SET auth_token = 'CANARY-conn-auth-' || id, refresh_token = 'CANARY-conn-refresh-' || id;
         UPDATE channels SET config = json_set(config, '$.bot_token', 'CANARY-channel-' || id);
         UPDATE nodes SET pairing_secret = 'CANARY-node-' || id;
         UPDATE users SET totp_secret = 'CANARY-totp-' || id WHERE totp_secret IS NOT NULL;
         UPDATE agents SET config = json_set(config, '$.model.api_key', 'CANARY-agent-' || id);
         UPDATE cron_jobs SET command = command || ' -H \"Authorization: Bearer CANARY-cron-' || id || '\"';
         UPDATE audit_log SET detail = json_set(detail, '$.client_secret', 'CANARY-audit-' || id)
             WHERE id IN (SELECT id FROM audit_log LIMIT 5);
         UPDATE memory_entries SET content = content || ' my key is sk-CANARYmemory' || substr(id, 1, 12)
             WHERE id IN (SELECT id FROM memory_entries LIMIT 5);",
    )
    .unwrap();
    let n: i64 = db.query_row("SELECT COUNT(*) FROM users WHERE totp_secret LIKE 'CANARY%'", [], |r| r.get(0)).unwrap();
    assert!(n > 0, "the demo gateway enrols some users in 2FA");

    edit_json(&home.join("config/appsettings.json"), |v| {
        v["MyVendor"] = json!({
            "ClientSecretValue": "CANARY-cfg-1",
            "Nested": { "DbConnection": "Server=db;User Id=sa;Password=CANARY-cfg-2;" },
            "Callback": "https://user:CANARY-cfg-3@pay.example.com/hook",
        });
    });
    edit_json(&home.join("config/appsettings.Production.json"), |v| {
        v["CustomThing"] = json!({ "apiKey": "CANARY-cfg-4", "Retries": 3 });
    });
    edit_json(&home.join("config/mcp.json"), |v| {
        let servers = v["mcpServers"].as_object_mut().unwrap();
        servers.insert("canary".into(), json!({ "command": "npx", "env": { "WHATEVER": "CANARY-mcp-1" } }));
    });
    let agent_dir = std::fs::read_dir(home.join("agents")).unwrap().next().unwrap().unwrap().path();
    edit_json(&agent_dir.join("config.json"), |v| v["model"]["api_key"] = json!("CANARY-agent-file"));
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_canary_secret_reaches_the_repository_or_the_restored_folder() {
    let t = tempfile::tempdir().unwrap();
    let (home, repo, target) = (t.path().join("home"), t.path().join("repo"), t.path().join("restored"));
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    plant_canaries(&home);
    sophon.init(&repo);
    let out = sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo), "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["gateway"]["redacted"].as_u64().unwrap() > 30);

    // Every blob of every pack, decrypted and decompressed.
    let backend = sophon::backend::open_url(s(&repo), false).unwrap();
    let opened = sophon::Repository::open(backend, PASSPHRASE.as_bytes(), None).unwrap();
    let mut blobs = 0;
    for pack in files_below(&repo.join("data")) {
        let bytes = std::fs::read(&pack).unwrap();
        assert!(!contains(&bytes, CANARY), "{} holds a canary in the clear", pack.display());
        let entries = sophon::pack::parse_pack(&opened.keys().seal, None, &bytes).unwrap();
        for e in entries {
            let sealed = bytes[e.offset as usize..(e.offset + e.sealed_len) as usize].to_vec();
            let plain = sophon::pack::open_blob(&opened.keys().seal, &e, sealed, &|| "blob".into()).unwrap();
            assert!(!contains(&plain, CANARY), "blob {} holds a canary: {}", e.id, String::from_utf8_lossy(&plain));
            blobs += 1;
        }
    }
    assert!(blobs > 100);
    for f in files_below(&repo) {
        assert!(!contains(&std::fs::read(&f).unwrap(), CANARY), "{}", f.display());
    }

    // The folder written by --target: the backup layout, no canary anywhere.
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target)]);
    for f in files_below(&target) {
        let data = std::fs::read(&f).unwrap();
        assert!(!contains(&data, CANARY), "{} holds a canary: {}", f.display(), String::from_utf8_lossy(&data));
    }
    for p in [
        "metadata.json",
        "manifest.json",
        "users/users.json",
        "users/2fa-secrets.json.enc",
        "workflows",
        "memory/entries.jsonl",
        "memory/daily-logs",
        "documents/index.json",
        "documents/files",
        "cron/jobs.json",
        "webhooks/webhooks.json",
        "connections/connections.json",
        "channels/channels.json",
        "skills/installed.json",
        "mcp/mcp.json",
        "nodes/nodes.json",
        "discussions/discussions.json",
        "insights/insights.json",
        "tasks/tasks.json",
        "approvals/approvals.json",
        "audit/entries.jsonl",
        "config/appsettings.backup.json",
    ] {
        assert!(target.join(p).exists(), "{p} is part of the backup layout");
    }
    // Non-secret values around the canaries survive.
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(target.join("config/appsettings.Production.backup.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["CustomThing"]["Retries"], 3);
    assert_eq!(cfg["CustomThing"]["apiKey"], sophon::gateway::redact::REDACTED);

    // 2FA secrets are not lost: they are sealed under the backup passphrase.
    let sealed = std::fs::read(target.join("users/2fa-secrets.json.enc")).unwrap();
    let plain = sophon::gateway::sealed::open(&sealed, PASSPHRASE.as_bytes(), "2fa").unwrap();
    assert!(contains(&plain, "CANARY-totp-"));
    assert!(sophon::gateway::sealed::open(&sealed, b"wrong", "2fa").is_err());

    // The manifest lists every other file with its size and SHA-256.
    let manifest: Value = serde_json::from_slice(&std::fs::read(target.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), files_below(&target).len() - 1);
    for f in listed {
        let data = std::fs::read(target.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"].as_u64().unwrap(), data.len() as u64, "{}", f["path"]);
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, &data)),
            "{}",
            f["path"]
        );
    }
}

#[test]
fn categories_and_default_repository() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    // No --repo: the gateway's own repository inside the home is created and used.
    let out = sophon.ok(&["backup", "create", "--home", s(&home), "--categories", "memory,workflows,cron", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gateway"]["categories"], json!(["workflows", "memory", "cron"]));
    assert_eq!(v["gateway"]["records"]["memory"], 8471);
    let repo = home.join("backups/repository");
    assert!(repo.join("config").exists());
    let target = t.path().join("out");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target)]);
    assert!(target.join("memory/entries.jsonl").exists());
    assert!(target.join("cron/jobs.json").exists());
    assert!(!target.join("users").exists(), "users were not asked for");
    let entries = std::fs::read_to_string(target.join("memory/entries.jsonl")).unwrap();
    assert_eq!(entries.lines().count(), 8471);

    // An unknown category is a usage error with the known ones listed.
    let bad = sophon.run(&["backup", "create", "--home", s(&home), "--categories", "memory,bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown category"));
}

#[test]
fn a_backup_during_writes_holds_whole_transactions_only() {
    let t = tempfile::tempdir().unwrap();
    let (home, repo, target) = (t.path().join("home"), t.path().join("repo"), t.path().join("restored"));
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init(&repo);

    // A writer commits (memory entry, audit row) pairs as fast as it can until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db_path, stop) = (home.join("gateway.db"), stop.clone());
        std::thread::spawn(move || {
            let mut db = rusqlite::Connection::open(db_path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let (tenant, agent): (String, String) =
                db.query_row("SELECT tenant_id, id FROM agents LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tx = db.transaction().unwrap();
                tx.execute(
                    "INSERT INTO memory_entries (id, tenant_id, agent_id, kind, content, created_at)
                     VALUES (?1, ?2, ?3, 'fact', 'written during the backup', '2025-10-01T00:00:00Z')",
                    rusqlite::params![format!("pit-mem-{n}"), tenant, agent],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO audit_log (id, tenant_id, at, actor, action, target, detail)
                     VALUES (?1, ?2, '2025-10-01T00:00:00Z', 'writer', 'memory.add', ?3, '{}')",
                    rusqlite::params![format!("pit-audit-{n}"), tenant, format!("pit-mem-{n}")],
                )
                .unwrap();
                tx.commit().unwrap();
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo)]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();

    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target)]);
    let ids = |file: &str, prefix: &str| -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(target.join(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .filter(|id| id.starts_with(prefix))
            .map(|id| id.rsplit('-').next().unwrap().to_string())
            .collect()
    };
    let mem = ids("memory/entries.jsonl", "pit-mem-");
    let audit = ids("audit/entries.jsonl", "pit-audit-");
    assert!(
        !mem.is_empty() && (mem.len() as u64) < written,
        "the backup fell inside the writes: {} of {written}",
        mem.len()
    );
    let half: Vec<&String> = mem.symmetric_difference(&audit).take(5).collect();
    assert!(half.is_empty(), "transactions half present in the backup (first few): {half:?}");
}

#[test]
fn an_incremental_gateway_backup_reuses_documents_and_leaves_no_spool_behind() {
    let t = tempfile::tempdir().unwrap();
    let (home, repo) = (t.path().join("home"), t.path().join("repo"));
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init(&repo);
    let backup = || -> Value {
        serde_json::from_str(&sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo), "--json"]))
            .unwrap()
    };
    let spools = || -> Vec<String> {
        match std::fs::read_dir(sophon.cache.join("spool")) {
            Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        }
    };
    let first = backup();
    let documents = first["gateway"]["records"]["documents"].as_u64().unwrap();
    assert_eq!(spools(), Vec::<String>::new(), "the spool goes with the backup");

    // A spool of a process that no longer runs (a killed backup) is cleared by the next backup.
    let abandoned = sophon.cache.join("spool/spool-4294967295-1");
    std::fs::create_dir_all(&abandoned).unwrap();
    std::fs::write(abandoned.join("000001"), b"left behind").unwrap();
    let second = backup();
    assert_eq!(spools(), Vec::<String>::new());
    // The documents were queued while the database was dumped, and still compared with the parent.
    assert!(
        second["summary"]["files_unmodified"].as_u64().unwrap() >= documents,
        "unchanged documents are reused: {}",
        second["summary"]
    );
    assert_eq!(second["summary"]["files"], first["summary"]["files"]);
}
