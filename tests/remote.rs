//! Repositories on real S3 (moto), Azure Blob (Azurite) and SFTP (sshd) servers on 127.0.0.1:
//! `repo init` → backup → `verify --read-data` → restore, for a folder and for a gateway.
//! The servers come from `scripts/test-servers` (see tests/backend_conformance.rs for the variables).

mod common;

use common::gateway::*;
use common::web::{demo_users, Server};
use common::*;

fn remote(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            Some(format!("{}/remote-{}-{nanos}", url.trim_end_matches('/'), std::process::id()))
        }
        _ => {
            assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "{var} is not set");
            eprintln!("skipped: {var} is not set (scripts/test-servers start DIR; source DIR/env)");
            None
        }
    }
}

fn round_trip(var: &str) {
    let Some(url) = remote(var) else { return };
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let src = t.path().join("src");
    sample_tree(&src, 3 * 1024, 21);
    write(&src.join("big.bin"), &pseudo_random(12 << 20, 4));
    sophon.init_url(&url);
    sophon.ok(&["backup", "create", "--repo", &url, "--path", s(&src), "-q"]);
    // A second backup reuses everything (the local cache answers, nothing is uploaded again).
    let v: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "create", "--repo", &url, "--path", s(&src), "--json"])).unwrap();
    assert_eq!(v["summary"]["bytes_added"], 0, "{v}");
    let out = sophon.ok(&["backup", "verify", "--repo", &url, "--read-data"]);
    assert!(out.contains("no damage found"), "{out}");
    let target = t.path().join("out");
    sophon.ok(&["backup", "restore", "--repo", &url, "--snapshot", "latest", "--target", s(&target)]);
    assert_same_tree(&src, &target.join("src"));
    // An export read from the remote repository (spans of packs, not one request per chunk).
    let zip = t.path().join("from-remote.zip");
    sophon.ok(&["backup", "export", "latest", "--repo", &url, "--out", s(&zip)]);
    assert!(sophon.ok(&["backup", "verify", "--in", s(&zip)]).contains("no damage found"));
    let unpacked = t.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let ok = std::process::Command::new("unzip").args(["-q", s(&zip), "-d", s(&unpacked)]).status().unwrap();
    assert!(ok.success());
    let rel = |root: &std::path::Path| -> Vec<(String, String)> {
        hash_tree(root).into_iter().map(|(p, h)| (p[root.display().to_string().len()..].to_string(), h)).collect()
    };
    assert_eq!(rel(&src), rel(&unpacked.join("backup/src")));

    // Forget and prune on the store: the forgotten snapshot's own data goes, the kept one verifies.
    std::fs::remove_file(src.join("big.bin")).unwrap();
    write(&src.join("other.bin"), &pseudo_random(3 << 20, 5));
    sophon.ok(&["backup", "create", "--repo", &url, "--path", s(&src), "-q"]);
    let v: serde_json::Value = serde_json::from_str(&sophon.ok(&[
        "backup",
        "forget",
        "--repo",
        &url,
        "--keep-last",
        "1",
        "--prune",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["removed"], 2, "{v}");
    assert!(v["prune"]["outcome"]["bytes_deleted"].as_u64().unwrap() >= 12 << 20, "{v}");
    assert!(sophon.ok(&["backup", "verify", "--repo", &url, "--read-data"]).contains("no damage found"));
    let target = t.path().join("after-prune");
    sophon.ok(&["backup", "restore", "--repo", &url, "--snapshot", "latest", "--target", s(&target)]);
    assert_same_tree(&src, &target.join("src"));

    // A gateway, into the same store, restored into a fresh gateway.
    let home = t.path().join("gw");
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    let gw_url = format!("{url}-gateway");
    sophon.init_url(&gw_url);
    sophon.ok(&["backup", "create", "--home", s(&home), "--repo", &gw_url, "-q"]);
    let fresh = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    sophon.ok(&[
        "backup",
        "restore",
        "--repo",
        &gw_url,
        "--snapshot",
        "latest",
        "--home",
        s(&fresh),
        "--mode",
        "replace",
        "--yes",
    ]);
    let counts = |h: &std::path::Path| {
        let mut c = record_counts(&stats(&sophon, h));
        c.remove("license");
        c
    };
    assert_eq!(counts(&home), counts(&fresh));

    // A sealed export streamed to the store (templates expanded), verified and restored from there.
    let export_to = |name: &str, more: &[&str]| {
        let dest = format!("{url}-exports/{name}");
        let args = ["backup", "create", "--home", s(&home), "--dest", &dest, "--encrypt", "--json"];
        sophon.cmd().args(args).args(more).output().unwrap()
    };
    let exported = |out: std::process::Output| -> serde_json::Value {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = exported(export_to("{date}-{tenant}.zip", &[]));
    let uploaded = v["export"]["destination"].as_str().unwrap().to_string();
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    assert_eq!(uploaded, format!("{url}-exports/{today}-all.zip"));
    assert!(sophon.ok(&["backup", "verify", "--in", &uploaded]).contains("no damage found"));
    let again = t.path().join("again");
    sophon.ok(&["gateway", "init", "--home", s(&again)]);
    sophon.ok(&["backup", "restore", "--in", &uploaded, "--home", s(&again), "--mode", "replace", "--yes"]);
    assert_eq!(counts(&home), counts(&again));

    // Archive retention at the store: a newer export of the same scope, then keep the last one.
    let second = format!("{url}-exports/second.zip");
    let v = exported(export_to("second.zip", &[]));
    let second_id = v["export"]["export_id"].as_str().unwrap().to_string();
    // What it uploaded is remembered, so neither retention nor the next incremental downloads it.
    let remembered: Vec<String> = std::fs::read_dir(t.path().join("cache/archive-metadata"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(remembered.iter().any(|c| c.contains("\"second.zip\"") && c.contains(&second_id)), "{remembered:?}");
    let second_files = v["export"]["files"].as_u64().unwrap();
    let v: serde_json::Value = serde_json::from_str(&sophon.ok(&[
        "backup",
        "forget",
        "--dest",
        &format!("{url}-exports"),
        "--keep-last",
        "1",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["removed"], 1, "{v}");
    assert!(v["unreadable"].as_array().unwrap().is_empty(), "{v}");
    let kept: Vec<&str> = v["archives"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["keep"] == true)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["second.zip"]);
    assert!(sophon.ok(&["backup", "verify", "--in", &second]).contains("no damage found"));
    let gone = sophon.run(&["backup", "verify", "--in", &uploaded]);
    assert_ne!(gone.status.code(), Some(0), "the older export was removed");

    // An incremental export to the store follows the newest export of its scope there, and
    // restoring from the incremental's URL brings down the chain and applies it.
    rusqlite::Connection::open(home.join("gateway.db"))
        .unwrap()
        .execute_batch(
            "INSERT INTO memory_entries (id, tenant_id, agent_id, kind, content, created_at)
               SELECT 'remote-incr-' || id, tenant_id, agent_id, 'fact', 'learned later', created_at
               FROM memory_entries LIMIT 30;",
        )
        .unwrap();
    let incremental = ["--incremental", "--since-last"];
    let v = exported(export_to("third.zip", &incremental));
    assert_eq!(v["export"]["follows"], second_id.as_str(), "{v}");
    assert!(v["export"]["files"].as_u64().unwrap() < second_files / 2, "only what changed: {v}");
    let third = format!("{url}-exports/third.zip");
    let restored = t.path().join("from-chain");
    sophon.ok(&["gateway", "init", "--home", s(&restored)]);
    sophon.ok(&["backup", "restore", "--in", &third, "--home", s(&restored), "--mode", "replace", "--yes"]);
    assert_eq!(counts(&home), counts(&restored));
    // Writing over a link of the chain (the newest, or the full export) is refused; the chain stays.
    for link in ["third.zip", "second.zip"] {
        let out = export_to(link, &incremental);
        assert_ne!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stderr).contains("never replaces an archive"), "{out:?}");
    }
    assert!(sophon.ok(&["backup", "verify", "--in", &third]).contains("2 archive(s)"));
}

#[test]
fn s3_round_trip() {
    round_trip("SOPHON_TEST_S3_URL");
}

#[test]
fn azure_blob_round_trip() {
    round_trip("SOPHON_TEST_AZBLOB_URL");
}

#[test]
fn sftp_round_trip() {
    round_trip("SOPHON_TEST_SFTP_URL");
}

/// The ssh control masters of `XDG_STATE_HOME=state` (their socket lives under it), as pids.
fn ssh_masters_under(state: &std::path::Path) -> Vec<String> {
    let out =
        std::process::Command::new("pgrep").args(["-f", &format!("ssh .*-S {}/", state.display())]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

/// OpenDAL starts each SFTP connection as an ssh control master with `ControlPersist=yes`: every
/// command (one that succeeds and one that fails after connecting) must end its masters on exit.
#[test]
fn sftp_commands_leave_no_ssh_master_running() {
    let Some(url) = remote("SOPHON_TEST_SFTP_URL") else { return };
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let sophon = Sophon::new(t.path());
    let src = t.path().join("src");
    sample_tree(&src, 64 * 1024, 3);
    let run = |args: &[&str]| sophon.cmd().env("XDG_STATE_HOME", &state).args(args).output().unwrap();
    let runs = [
        run(&["repo", "init", "--repo", &url, "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]),
        run(&["backup", "create", "--repo", &url, "--path", s(&src), "-q"]),
        run(&["backup", "list", "--repo", &url]),
        // Fails after it has connected: no such snapshot.
        run(&["backup", "restore", "--repo", &url, "--snapshot", "ffffffff", "--target", s(&t.path().join("out"))]),
    ];
    let codes: Vec<Option<i32>> = runs.iter().map(|o| o.status.code()).collect();
    assert_eq!(&codes[..3], &[Some(0); 3], "{runs:?}");
    assert_ne!(codes[3], Some(0), "{runs:?}");
    let left = ssh_masters_under(&state);
    for pid in &left {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert!(left.is_empty(), "ssh control masters still running after the commands exited: {left:?}");
}

/// The dashboard holds its SFTP connection while it runs; stopped by its service manager (SIGTERM)
/// it exits 0 and its ssh master goes with it.
#[test]
fn the_dashboard_stopped_by_sigterm_ends_its_sftp_master() {
    let Some(url) = remote("SOPHON_TEST_SFTP_URL") else { return };
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let sophon = Sophon::new(t.path());
    let home = t.path().join("gw");
    let init = sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small", "--json"]);
    let settings = home.join("config/appsettings.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap();
    v["Sophon"]["Backups"]["Default"]["Repository"] = serde_json::json!(url);
    std::fs::write(&settings, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    sophon.init_url(&url);
    sophon.ok(&["backup", "create", "--home", s(&home), "-q"]);

    let mut server = Server::start_with(&sophon, &home, &[("XDG_STATE_HOME", s(&state))]);
    let (owner, _, _) = demo_users(&init);
    let user = server.user(&owner.email, &owner.password);
    let listed = user.get(&server, "/api/snapshots");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(!ssh_masters_under(&state).is_empty(), "the dashboard read the SFTP repository through an ssh master");
    let term = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let exit = server.child.wait().unwrap();
    let left = ssh_masters_under(&state);
    for pid in &left {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert_eq!(exit.code(), Some(0), "{}", server.stop());
    assert!(left.is_empty(), "ssh control masters still running after the dashboard stopped: {left:?}");
}
