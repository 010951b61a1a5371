//! Issue 11, finding 2: an archive already at `--out` or `--dest` is never replaced without
//! `--overwrite`. `backup create` refuses before the backup (no snapshot is left behind), `backup
//! export` before it writes; the error names the file or object and exits 1. On a used gateway,
//! for a local file, a local folder destination and an S3 object (the test server).

mod common;

use std::path::{Path, PathBuf};

use common::gateway::s;
use common::Sophon;

/// A gateway that has been used: initialised, its default job replaced, data added.
fn used_home(sophon: &Sophon, t: &Path) -> PathBuf {
    let home = t.join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    sophon.init(&home.join("backups/repository"));
    sophon.ok(&["cron", "rm", "--home", s(&home), "--name", "nightly-backup"]);
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--name",
        "nightly-backup",
        "--schedule",
        "30 2 * * *",
        "--action",
        "backup",
    ]);
    home
}

fn snapshots(sophon: &Sophon, home: &Path) -> usize {
    let out = sophon.ok(&["backup", "list", "--repo", s(&home.join("backups/repository")), "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len()
}

/// Exit 1, the message naming `name` and the way to replace it.
fn refused(out: &std::process::Output, name: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(err.contains(name) && err.contains("already exists") && err.contains("--overwrite"), "{err}");
}

#[test]
fn an_existing_file_is_never_replaced_without_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = used_home(&sophon, t.path());
    let zip = t.path().join("out/backup.zip");
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&zip), "--quiet"]);
    let first = std::fs::read(&zip).unwrap();
    assert_eq!(snapshots(&sophon, &home), 1);

    // Run twice: refused before the backup, the first archive intact, no second snapshot.
    refused(&sophon.run(&["backup", "create", "--home", s(&home), "--out", s(&zip), "--quiet"]), s(&zip));
    assert_eq!(snapshots(&sophon, &home), 1, "no snapshot-less surprise: the backup was not taken");
    assert_eq!(std::fs::read(&zip).unwrap(), first);
    // `backup export` as well, and a dangling symbolic link is a name taken too.
    let repo = home.join("backups/repository");
    refused(&sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&zip)]), s(&zip));
    let link = t.path().join("out/link.zip");
    std::os::unix::fs::symlink(t.path().join("nowhere"), &link).unwrap();
    refused(&sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&link)]), s(&link));
    assert_eq!(std::fs::read(&zip).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(t.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "no partial file left: {names:?}");

    // With --overwrite the archive is replaced.
    sophon.ok(&["backup", "create", "--home", s(&home), "--out", s(&zip), "--overwrite", "--quiet"]);
    assert_eq!(snapshots(&sophon, &home), 2);
    assert_ne!(std::fs::read(&zip).unwrap(), first);

    // A --dest folder with a date in the name, run twice on one day.
    let dest = format!("{}/{{date}}.zip", t.path().join("exports").display());
    std::fs::create_dir(t.path().join("exports")).unwrap();
    sophon.ok(&["backup", "create", "--home", s(&home), "--dest", &dest, "--quiet"]);
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let dated = t.path().join(format!("exports/{today}.zip"));
    refused(&sophon.run(&["backup", "create", "--home", s(&home), "--dest", &dest, "--quiet"]), s(&dated));
    assert_eq!(snapshots(&sophon, &home), 3);
}

#[test]
fn an_existing_s3_object_is_never_replaced_without_overwrite() {
    let url = match std::env::var("SOPHON_TEST_S3_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
            eprintln!("skipped: SOPHON_TEST_S3_URL is not set (scripts/test-servers start DIR; source DIR/env)");
            return;
        }
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let folder = format!("{}/overwrite-{}-{nanos}", url.trim_end_matches('/'), std::process::id());
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = used_home(&sophon, t.path());
    // The product page's line: a date in the name, run twice on one day.
    let dest = format!("{folder}/{{date}}.zip");
    let out = sophon.ok(&["backup", "create", "--home", s(&home), "--dest", &dest, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uploaded = v["export"]["destination"].as_str().unwrap().to_string();
    let first_id = v["export"]["export_id"].as_str().unwrap().to_string();

    refused(&sophon.run(&["backup", "create", "--home", s(&home), "--dest", &dest, "--quiet"]), &uploaded);
    assert_eq!(snapshots(&sophon, &home), 1, "refused before the backup");
    let repo = home.join("backups/repository");
    refused(&sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--dest", &uploaded]), &uploaded);
    // The first archive is still the one there.
    let verify: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "verify", "--in", &uploaded, "--json"])).unwrap();
    assert_eq!(verify["clean"], true, "{verify}");
    assert_eq!(verify["archives"][0]["export"], first_id.as_str(), "{verify}");

    let out =
        sophon.ok(&["backup", "export", "latest", "--repo", s(&repo), "--dest", &uploaded, "--overwrite", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let second_id = v["export"]["export_id"].as_str().unwrap();
    assert_ne!(second_id, first_id);
    let verify: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "verify", "--in", &uploaded, "--json"])).unwrap();
    assert_eq!(verify["archives"][0]["export"], second_id, "{verify}");
}
