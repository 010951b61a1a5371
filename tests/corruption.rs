//! Corruption: one flipped byte in a pack (data or trees), an index segment or a snapshot is reported
//! by `verify --read-data`, naming the object and the snapshot that uses it; a snapshot that does not
//! use it still restores.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use sophon::{BlobType, PackId, Repository};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn names(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

#[test]
fn a_flipped_byte_is_found_named_and_contained() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, repo) = (t.path().join("a"), t.path().join("b"), t.path().join("repo"));
    sample_tree(&a, 1024, 10);
    sample_tree(&b, 1024, 20);
    // Otherwise B's empty folder would share A's empty tree blob (dedup) and so use A's objects.
    write(&b.join("empty-dir/not-empty"), b"b only");
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);

    let before = names(&repo);
    let snap_a = sophon.backup_json(&repo, &a)["snapshot"].as_str().unwrap().to_string();
    let after_a = names(&repo);
    sophon.backup_json(&repo, &b);
    let of_a: Vec<PathBuf> = after_a.difference(&before).filter(|p| !p.starts_with("locks")).cloned().collect();

    // Classify what backup A wrote: data packs, the tree pack, its index segment, its snapshot.
    let backend = sophon::backend::open_url(s(&repo), false).unwrap();
    let opened = Repository::open(backend, PASSPHRASE.as_bytes(), None).unwrap();
    let mut data_pack = None;
    let mut tree_pack = None;
    for p in of_a.iter().filter(|p| p.starts_with("data")) {
        let id: PackId = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let entries = opened.index().pack_entries(&id).unwrap();
        if entries.iter().any(|e| e.blob_type == BlobType::Tree) {
            tree_pack = Some(p.clone());
        } else if entries.len() > 1 {
            data_pack = Some(p.clone());
        }
    }
    let index_seg = of_a.iter().find(|p| p.starts_with("index")).cloned().unwrap();
    let snapshot = of_a.iter().find(|p| p.starts_with("snapshots")).cloned().unwrap();
    assert_eq!(snapshot.file_name().unwrap().to_str().unwrap(), snap_a);
    let cases = [
        ("pack", data_pack.expect("a data pack of A")),
        ("pack", tree_pack.expect("the tree pack of A")),
        ("index segment", index_seg),
        ("snapshot", snapshot),
    ];

    for (i, (kind, object)) in cases.iter().enumerate() {
        let work = t.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let damaged = work.join("repo");
        copy_dir(&repo, &damaged);
        flip_middle_byte(&damaged.join(object));
        let fresh = Sophon::new(&work);
        let id = object.file_name().unwrap().to_str().unwrap();

        let out = fresh.run(&["backup", "verify", "--repo", s(&damaged), "--read-data"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{kind} {id}: verify must exit 3\n{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("{kind} {id}")))
            .unwrap_or_else(|| panic!("verify does not name {kind} {id}:\n{stdout}"));
        if *kind == "pack" {
            assert!(line.contains(&snap_a[..8]), "the damaged pack's user is named: {line}");
        }
        assert!(
            !stdout.contains("snapshot(s) ")
                || !stdout.lines().any(|l| l.contains("used by") && !l.contains(&snap_a[..8])),
            "only snapshot A may be reported as affected:\n{stdout}"
        );

        // B does not use the damaged object and still restores, even with a cache rebuilt from scratch.
        let target = work.join("restored-b");
        let list: serde_json::Value =
            serde_json::from_str(&fresh.ok(&["backup", "list", "--repo", s(&damaged), "--json"])).unwrap();
        let snap_b = list.as_array().unwrap().iter().find(|v| v["paths"][0].as_str().unwrap().ends_with("/b")).unwrap()
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
        fresh.ok(&["backup", "restore", "--repo", s(&damaged), "--snapshot", &snap_b, "--target", s(&target)]);
        assert_same_tree(&b, &target.join("b"));

        // A snapshot that does use a damaged pack fails to restore loudly, never silently.
        if *kind == "pack" {
            let out = fresh.run(&[
                "backup",
                "restore",
                "--repo",
                s(&damaged),
                "--snapshot",
                &snap_a,
                "--target",
                s(&work.join("restored-a")),
            ]);
            assert_eq!(out.status.code(), Some(1), "restoring from a damaged pack must fail");
        }
    }
}
