//! The library's side of issue 12, finding 2: `latest` is refused with a typed error naming every
//! unreadable snapshot, and `latest-readable` says which ones it passed over.

mod common;

use common::gateway::s;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sophon::{Error, Repository, Session};

/// A repository with an older and a newer snapshot: (work, repo, older id, newer id).
fn two_snapshots() -> (tempfile::TempDir, PathBuf, String, String) {
    let t = tempfile::tempdir().unwrap();
    let (a, b, repo) = (t.path().join("a"), t.path().join("b"), t.path().join("repo"));
    sample_tree(&a, 16, 1);
    sample_tree(&b, 16, 2);
    let sophon = Sophon::new(t.path());
    sophon.init(&repo);
    let id_a = sophon.backup_json(&repo, &a)["snapshot"].as_str().unwrap().to_string();
    let id_b = sophon.backup_json(&repo, &b)["snapshot"].as_str().unwrap().to_string();
    (t, repo, id_a, id_b)
}

fn session(repo: &Path, cache: &Path) -> Session {
    let backend = sophon::backend::open_url(s(repo), false).unwrap();
    let opened = Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf())).unwrap();
    Session::shared(Arc::new(opened), "test").unwrap()
}

#[test]
fn the_library_refuses_latest_while_any_snapshot_is_unreadable() {
    let (t, repo, id_a, id_b) = two_snapshots();
    let cache = t.path().join("lib-cache");

    flip_middle_byte(&repo.join("snapshots").join(&id_b));
    let session = session(&repo, &cache);
    match session.resolve_snapshot("latest") {
        Err(Error::LatestUnreadable { unreadable, .. }) => {
            let ids: Vec<String> = unreadable.iter().map(|(id, _)| id.to_hex()).collect();
            assert_eq!(ids, vec![id_b.clone()]);
        }
        other => panic!("latest must be refused, got {other:?}"),
    }
    let (id, skipped) = session.resolve_snapshot_noting("latest-readable").unwrap();
    assert_eq!(id.to_hex(), id_a);
    assert_eq!(skipped.iter().map(|(id, _)| id.to_hex()).collect::<Vec<_>>(), vec![id_b.clone()]);
    drop(session);

    // An unreadable snapshot's time is unknown, so an older one blocks `latest` all the same.
    std::fs::remove_file(repo.join("snapshots").join(&id_b)).unwrap();
    flip_middle_byte(&repo.join("snapshots").join(&id_a));
    let session = self::session(&repo, &cache);
    assert!(matches!(session.resolve_snapshot("latest"), Err(Error::LatestUnreadable { .. })));
    // With nothing readable left, `latest-readable` says so instead of picking something.
    match session.resolve_snapshot("latest-readable") {
        Err(Error::NotFound(msg)) => assert!(msg.contains(&id_a), "{msg}"),
        other => panic!("no readable snapshot, got {other:?}"),
    }
}
