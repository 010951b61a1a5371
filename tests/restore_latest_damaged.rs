//! `latest` never skips a snapshot it cannot read without saying so (issue 12, finding 2): with a
//! damaged snapshot in the repository, `latest` is refused (exit 3, naming it) and only
//! `latest-readable` restores the newest snapshot that can be read.

mod common;

use common::gateway::s;
use common::*;
use std::path::Path;

fn is_empty_or_absent(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => rd.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// A repository with an older snapshot of `a` and a newer one of `b`: (work, a, b, repo, id a, id b).
fn two_snapshots() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, std::path::PathBuf, String, String) {
    let t = tempfile::tempdir().unwrap();
    let (a, b, repo) = (t.path().join("a"), t.path().join("b"), t.path().join("repo"));
    sample_tree(&a, 64, 1);
    sample_tree(&b, 64, 2);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    let id_a = sophon.backup_json(&repo, &a)["snapshot"].as_str().unwrap().to_string();
    let id_b = sophon.backup_json(&repo, &b)["snapshot"].as_str().unwrap().to_string();
    (t, a, b, repo, id_a, id_b)
}

#[test]
fn latest_is_refused_naming_a_damaged_newest_snapshot_and_latest_readable_restores_the_one_before() {
    let (t, a, b, repo, id_a, id_b) = two_snapshots();
    let sophon = Sophon::new(t.path());
    // Before the damage `latest` is the newer snapshot.
    let target = t.path().join("before");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target)]);
    assert_same_tree(&b, &target.join("b"));

    flip_middle_byte(&repo.join("snapshots").join(&id_b));

    // `latest` refuses, names the damaged snapshot and the way to ask for the newest readable one,
    // and writes nothing.
    let target = t.path().join("latest");
    let out = sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "latest with a damaged newest snapshot must exit 3\n{stderr}");
    assert!(stderr.contains(&id_b), "the damaged snapshot is named:\n{stderr}");
    assert!(stderr.contains("--snapshot latest-readable"), "the way to the newest readable one is given:\n{stderr}");
    assert!(is_empty_or_absent(&target), "nothing is restored when latest is refused");

    // The same rule for an export of `latest`.
    let zip = t.path().join("latest.zip");
    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&zip)]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id_b));
    assert!(!zip.exists());

    // Asked for explicitly, the newest readable snapshot is restored, and what was passed over is said.
    let target = t.path().join("readable");
    let out =
        sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest-readable", "--target", s(&target)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&id_b) && stderr.contains("passed over"), "the skipped snapshot is named:\n{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id_a[..8]));
    assert_same_tree(&a, &target.join("a"));
}
