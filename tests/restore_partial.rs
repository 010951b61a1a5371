//! A restore never exposes or leaves behind what it has not finished (issue 12, finding 3): files
//! are created readable by their owner only (or stricter, as the snapshot says) and appear under
//! their names only when complete; a restore that fails part-way removes what it started and names
//! the files it did not restore.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sophon::format::tree::NodeKind;
use sophon::{BlobId, Repository, SnapshotId};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every regular file below `dir`, by path relative to it.
fn regular_files(dir: &Path) -> BTreeMap<PathBuf, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.insert(e.path().strip_prefix(dir).unwrap().to_path_buf(), e.path());
            }
        }
    }
    out
}

/// The chunk ids of the file at `path` (names below the snapshot's root) in snapshot `snap`.
fn content_of(repo: &Repository, snap: &SnapshotId, path: &[&str]) -> Vec<BlobId> {
    let mut tree = repo.load_snapshot(snap).unwrap().tree;
    for (i, name) in path.iter().enumerate() {
        let node = repo
            .load_tree(&tree)
            .unwrap()
            .nodes
            .into_iter()
            .find(|n| n.name.as_deref() == Some(*name))
            .unwrap_or_else(|| panic!("{name} not in the snapshot"));
        if i + 1 == path.len() {
            assert_eq!(node.kind, NodeKind::File);
            return node.content;
        }
        tree = node.subtree.unwrap();
    }
    unreachable!("empty path")
}

#[test]
fn a_failed_restore_leaves_only_complete_files_and_names_what_it_did_not_restore() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, target) = (t.path().join("src"), t.path().join("repo"), t.path().join("target"));
    // More small files than one restore batch holds (768), so some are finished before the failure…
    for i in 0..800 {
        write(&src.join(format!("a/f{i:04}.txt")), format!("small file {i}\n").as_bytes());
    }
    // …and a private file, restored after them, whose last chunk will be damaged.
    let secret = src.join("z/secret.bin");
    write(&secret, &pseudo_random(3 << 20, 7));
    chmod(&secret, 0o600);
    let sophon = Sophon::new(t.path());
    sophon.init_small_packs(&repo);
    let snap = sophon.backup_json(&repo, &src)["snapshot"].as_str().unwrap().to_string();

    // Damage the middle of the secret's last chunk in its pack, so that chunk fails to authenticate.
    {
        let backend = sophon::backend::open_url(s(&repo), false).unwrap();
        let opened = Repository::open(backend, PASSPHRASE.as_bytes(), Some(t.path().join("lib-cache"))).unwrap();
        let id: SnapshotId = snap.parse().unwrap();
        let last = *content_of(&opened, &id, &["src", "z", "secret.bin"]).last().unwrap();
        let loc = opened.lookup_blob(&last).unwrap();
        let pack = repo.join(sophon::pack::pack_path(&loc.pack));
        let mut bytes = std::fs::read(&pack).unwrap();
        bytes[loc.entry.offset as usize + loc.entry.sealed_len as usize / 2] ^= 0x01;
        std::fs::write(&pack, bytes).unwrap();
    }

    let out = sophon.run(&["backup", "restore", "--repo", s(&repo), "--snapshot", &snap, "--target", s(&target)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a restore from a damaged pack fails\n{stderr}");

    // Every file left under any name is the source's file, whole, with its mode: nothing
    // zero-filled, half-written or readable by others that should not be.
    let left = regular_files(&target.join("src"));
    for (rel, path) in &left {
        let name = rel.to_string_lossy();
        assert!(!name.contains(".partial"), "an unfinished temporary file was left: {name}");
        let original = src.join(rel);
        assert!(original.exists(), "{name} is not a file of the snapshot");
        assert!(std::fs::read(path).unwrap() == std::fs::read(&original).unwrap(), "{name} is not complete");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(path), mode(&original), "{name} has the wrong mode");
    }
    assert!(!target.join("src/z/secret.bin").exists(), "the file that could not be restored is not there");
    // What finished before the failure is kept (the first batch of small files).
    assert!(left.len() >= 700, "files restored before the failure were kept: {} left", left.len());
    assert!(stderr.contains("did not finish"), "the restore says it is incomplete:\n{stderr}");
    let named = stderr.split("Not restored: ").nth(1).and_then(|rest| rest.split(". ").next()).unwrap_or_default();
    assert!(named.contains("src/z/secret.bin"), "the file that was not restored is named:\n{stderr}");
}

#[test]
fn a_file_is_never_readable_by_others_while_it_is_written() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, target) = (t.path().join("src"), t.path().join("repo"), t.path().join("target"));
    // Big enough that its contents take a while to write, so the watcher below sees it unfinished.
    let private = src.join("private.bin");
    write(&private, &pseudo_random(48 << 20, 3));
    chmod(&private, 0o600);
    let owner_read_only = src.join("owner-read-only.bin");
    write(&owner_read_only, &pseudo_random(8 << 20, 4));
    chmod(&owner_read_only, 0o400);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    sophon.backup_json(&repo, &src);

    // With a umask that lets others read new files (the usual one), so a file created with the
    // default mode would show it.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$@\"")
        .arg("sh")
        .arg(assert_cmd::cargo::cargo_bin("sophon"))
        .args(["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--target", s(&target), "-q"])
        .env("SOPHON_BACKUP_PASSPHRASE", PASSPHRASE)
        .env("SOPHON_CACHE_DIR", &sophon.cache)
        .env_remove("SOPHON_REPOSITORY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen_unfinished = 0usize;
    let mut exposed = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        for path in regular_files(&target).values() {
            let Ok(meta) = std::fs::symlink_metadata(path) else { continue };
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                exposed.push(format!("{} {mode:o}", path.display()));
            }
            // A file still being written (the watcher did see one in the act).
            if path.to_string_lossy().contains(".partial") {
                seen_unfinished += 1;
            }
        }
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    exposed.dedup();
    assert!(exposed.is_empty(), "files others could read while being written: {:?}", &exposed[..exposed.len().min(6)]);
    assert!(seen_unfinished > 0, "the watcher never saw a file being written; make the file bigger");

    // Once restored, each file has the snapshot's mode and contents.
    assert_same_tree(&src, &target.join("src"));
}
