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

/// The packs of `repo` that hold data blobs only, by path below the repository (`data/ab/abcd…`),
/// in name order.
fn data_packs(repo: &Path) -> Vec<PathBuf> {
    let backend = sophon::backend::open_url(s(repo), false).unwrap();
    let opened = Repository::open(backend, PASSPHRASE.as_bytes(), None).unwrap();
    let mut out: Vec<PathBuf> = names(repo)
        .into_iter()
        .filter(|p| p.starts_with("data"))
        .filter(|p| {
            let id: PackId = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
            let entries = opened.index().pack_entries(&id).unwrap();
            !entries.is_empty() && entries.iter().all(|e| e.blob_type == BlobType::Data)
        })
        .collect();
    out.sort();
    out
}

fn cut_to_half(file: &Path) -> u64 {
    let size = std::fs::metadata(file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.set_len(size / 2).unwrap();
    size / 2
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What every message about a pack that cannot give its data says to do.
fn assert_pack_advice(err: &str) {
    assert!(err.contains("`sophon backup verify --read-data`"), "verify is suggested: {err}");
    assert!(err.contains("`sophon repo repair-index`"), "repair-index is suggested: {err}");
    assert!(!err.contains("panicked") && !err.contains("range exceeds"), "no panic, no store jargon: {err}");
}

#[test]
fn a_pack_cut_short_or_missing_is_named_with_its_path_the_file_and_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sample_tree(&src, 1024, 3);
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);
    sophon.backup_json(&repo, &src);
    let pack = data_packs(&repo).into_iter().next().expect("a data pack");
    let id = pack.file_name().unwrap().to_str().unwrap().to_string();

    // Cut short: restore, export and verify name the pack; restore and export the file too.
    let damaged = t.path().join("cut");
    copy_dir(&repo, &damaged);
    let kept = cut_to_half(&damaged.join(&pack));
    let named = format!("pack {} in {} is cut short: expected at least ", pack.display(), s(&damaged));
    let target = t.path().join("restored");
    let out = sophon.run(&["backup", "restore", "--repo", s(&damaged), "--snapshot", "latest", "--target", s(&target)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&named) && err.contains(&format!("found {kept}.")), "the pack and its sizes: {err}");
    // The file that needed the lost bytes, as the snapshot names it.
    let file = err.split(" of file ").nth(1).and_then(|r| r.split(" ends there").next()).expect("a file is named");
    assert!(src.parent().unwrap().join(file).is_file(), "{file} is a file of the source: {err}");
    assert_pack_advice(&err);

    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&damaged), "--out", s(&t.path().join("x.zip"))]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&named) && err.contains(" of file "), "{err}");
    assert_pack_advice(&err);

    let out = sophon.run(&["backup", "verify", "--repo", s(&damaged), "--read-data"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("damaged: pack {id}: ")));

    // Missing altogether.
    let gone = t.path().join("gone");
    copy_dir(&repo, &gone);
    std::fs::remove_file(gone.join(&pack)).unwrap();
    let named = format!("pack {} is missing from {}, though the index lists it (blob ", pack.display(), s(&gone));
    let out = sophon.run(&[
        "backup",
        "restore",
        "--repo",
        s(&gone),
        "--snapshot",
        "latest",
        "--target",
        s(&t.path().join("restored-2")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&named) && err.contains(" of file "), "{err}");
    assert_pack_advice(&err);
    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&gone), "--out", s(&t.path().join("y.zip"))]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&named), "{err}");
    assert_pack_advice(&err);
}

#[test]
fn a_gateway_restore_from_a_pack_cut_short_names_the_pack() {
    let t = tempfile::tempdir().unwrap();
    let (home, repo, fresh) = (t.path().join("home"), t.path().join("repo"), t.path().join("fresh"));
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init_small_packs(&repo);
    sophon.ok(&["backup", "create", "--repo", s(&repo), "--home", s(&home), "--quiet"]);
    let pack = data_packs(&repo).into_iter().next().expect("a data pack");
    let kept = cut_to_half(&repo.join(&pack));
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let out =
        sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--home", s(&fresh), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pack {} in {} is cut short: expected at least ", pack.display(), s(&repo)))
            && err.contains(&format!("found {kept}.")),
        "{err}"
    );
    assert!(err.contains(" of file "), "the backup's file is named: {err}");
    assert_pack_advice(&err);
}

/// A repository with two snapshots, each backup writing its own index segment; returns the first
/// segment's id. The second snapshot uses data (and folders) of the first.
fn two_segments(sophon: &Sophon, src: &Path, repo: &Path) -> String {
    sample_tree(src, 64, 5);
    sophon.init(repo);
    sophon.backup_json(repo, src);
    let first = names(&repo.join("index")).into_iter().next().unwrap().to_str().unwrap().to_string();
    write(&src.join("later/new.txt"), b"written after the first backup");
    sophon.backup_json(repo, src);
    assert_eq!(names(&repo.join("index")).len(), 2);
    first
}

#[test]
fn an_unchanged_file_whose_blobs_left_the_index_is_read_again_not_reused() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    let sophon = Sophon::new(t.path());
    let segment = two_segments(&sophon, &src, &repo);
    // The folder's unchanged files are checked against the index in one batch: every file whose
    // data only the lost segment listed must be read again, and the snapshot must be whole.
    std::fs::remove_file(repo.join("index").join(&segment)).unwrap();
    let third = sophon.backup_json(&repo, &src);
    let summary = &third["summary"];
    assert_eq!(summary["files"], 8, "{summary}");
    // The empty file (no data) and the one the second backup wrote (its own segment) are reused.
    assert_eq!(summary["files_unmodified"], 2, "{summary}");
    // The others are read: as changed where the parent's folder could still be loaded, as new
    // where that folder too was listed only by the lost segment.
    let read = summary["files_changed"].as_u64().unwrap() + summary["files_new"].as_u64().unwrap();
    assert_eq!(read, 6, "{summary}");
    assert!(summary["blobs_added"].as_u64().unwrap() > 0, "{summary}");
    // Sound, with a warning only for the packs the lost segment listed (a prune's to remove).
    let verify = sophon.expect(3, &["backup", "verify", "--repo", s(&repo), "--read-data"]);
    assert!(verify.contains("2 pack(s) are not in any index segment"), "{verify}");
    let out = t.path().join("out");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&out)]);
    assert_same_tree(&src, &out.join("src"));
}

#[test]
fn a_blob_whose_index_segment_is_gone_names_the_segment_and_repair_index() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    let sophon = Sophon::new(t.path());
    let segment = two_segments(&sophon, &src, &repo);
    std::fs::remove_file(repo.join("index").join(&segment)).unwrap();
    let folder = format!("{}/index/", s(&repo));
    let advice = "Run `sophon repo repair-index` to rebuild the index from the packs";

    // This computer's cache held the segment, so it knows which one listed the blob.
    let restore = |sophon: &Sophon, to: &str| {
        sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", to])
    };
    let out = restore(&sophon, s(&t.path().join("r1")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let named = format!("index segment {segment} listed it, but that segment is gone from {folder}");
    assert!(err.contains(&named) && err.contains(advice), "{err}");
    assert!(err.contains("of folder ") || err.contains("of the snapshot's top folder"), "the user is named: {err}");
    assert!(err.contains(&format!("is not in the index of {}", s(&repo))), "{err}");
    let out = sophon.run(&["backup", "export", "latest", "--repo", s(&repo), "--out", s(&t.path().join("x.zip"))]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&named) && err.contains(advice), "{err}");

    // A cache that never saw the segment names the index folder and what it holds.
    let other = Sophon::new(&t.path().join("elsewhere"));
    let out = restore(&other, s(&t.path().join("r2")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("none of the 1 index segment(s) in {folder} lists it")), "{err}");
    assert!(err.contains(advice), "{err}");

    // The advice works.
    sophon.ok(&["repo", "repair-index", "--repo", s(&repo)]);
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&t.path().join("r3"))]);
    assert_same_tree(&src, &t.path().join("r3").join("src"));
}

#[test]
fn a_damaged_index_segment_is_named_when_a_blob_it_may_list_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    let sophon = Sophon::new(t.path());
    let segment = two_segments(&sophon, &src, &repo);
    flip_middle_byte(&repo.join("index").join(&segment));
    // A cache that never read it: the sync skips the damaged segment, the restore names it.
    let other = Sophon::new(&t.path().join("elsewhere"));
    let out = other.run(&[
        "backup",
        "restore",
        "--repo",
        s(&repo),
        "--snapshot",
        "latest",
        "--target",
        s(&t.path().join("r")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let named = format!("index segment {segment} in {}/index/ cannot be read (damaged) and may list it", s(&repo));
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("`sophon repo repair-index`"), "{err}");
}
