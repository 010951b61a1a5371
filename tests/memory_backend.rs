//! The `memory://` backend runs the whole engine: init, backup, reopen, restore, verify.

mod common;

use std::sync::Arc;

use sophon::archive::{backup, BackupOptions, Progress};
use sophon::backend::open_url;
use sophon::check::{check, CheckOptions};
use sophon::crypto::Argon2Params;
use sophon::restore::{restore, RestoreOptions};
use sophon::{InitOptions, Repository, Session};

#[test]
fn memory_backend_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    common::sample_tree(&src, 64, 4);
    let opts =
        InitOptions { argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }, ..Default::default() };
    let repo = Arc::new(Repository::init(open_url("memory://round-trip", true).unwrap(), b"pw", &opts, None).unwrap());
    let snap = backup(
        &Session::shared(Arc::clone(&repo), "test").unwrap(),
        &BackupOptions::new(vec![src.clone()]),
        Arc::new(Progress::default()),
    )
    .unwrap();
    drop(repo);

    // Reopening the same URL in the same process finds what was written; a wrong passphrase does not.
    assert!(Repository::open(open_url("memory://round-trip", false).unwrap(), b"nope", None).is_err());
    let repo = Repository::open(open_url("memory://round-trip", false).unwrap(), b"pw", None).unwrap();
    let session = Session::shared(Arc::new(repo), "test").unwrap();
    let target = t.path().join("out");
    restore(
        &session,
        &snap.snapshot_id,
        &RestoreOptions { target: target.clone(), threads: 2 },
        Arc::new(Progress::default()),
    )
    .unwrap();
    common::assert_same_tree(&src, &target.join("src"));
    let report = check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {}).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.packs_read >= 1);

    // Another name is another, empty store.
    assert!(Repository::open(open_url("memory://elsewhere", false).unwrap(), b"pw", None).is_err());
}
