//! Backups of a virtual tree (generated files beside real files, as a gateway backup is made).

mod common;

use std::sync::Arc;

use sophon::archive::{backup_virtual, BackupOptions, Progress, VirtualDir, VirtualEntry};
use sophon::crypto::Argon2Params;
use sophon::restore::{restore, RestoreOptions};
use sophon::{InitOptions, Repository, Session};

#[test]
fn virtual_tree_round_trips_and_reuses_unchanged_real_files() {
    let t = tempfile::tempdir().unwrap();
    let doc = t.path().join("doc.pdf");
    common::write(&doc, &common::pseudo_random(300_000, 9));
    let opts =
        InitOptions { argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }, ..Default::default() };
    let backend = sophon::backend::open_url(t.path().join("repo").to_str().unwrap(), true).unwrap();
    let repo = Arc::new(Repository::init(backend, b"pw", &opts, None).unwrap());
    let session = Session::shared(Arc::clone(&repo), "test").unwrap();

    let mtime = 1_700_000_000_000_000_000i64;
    let mut root = VirtualDir::new(0o755, mtime);
    let users = Arc::new(br#"[{"id":"u1"}]"#.to_vec());
    root.insert("users/users.json", VirtualEntry::Bytes { data: users.clone(), mode: 0o600, mtime_ns: mtime }).unwrap();
    root.insert("documents/files/d1.pdf", VirtualEntry::File(doc.clone())).unwrap();
    root.insert("metadata.json", VirtualEntry::Bytes { data: Arc::new(b"{}".to_vec()), mode: 0o644, mtime_ns: mtime })
        .unwrap();
    assert!(root.insert("users/users.json/x", VirtualEntry::Dir(VirtualDir::default())).is_err());
    assert!(root.insert("../escape", VirtualEntry::Dir(VirtualDir::default())).is_err());

    let bo = BackupOptions::new(vec![]);
    let first = backup_virtual(&session, "gateway:/test", &root, &bo, Arc::new(Progress::default())).unwrap();
    assert_eq!(first.snapshot.summary.files, 3);
    assert_eq!(first.snapshot.paths, vec!["gateway:/test".to_string()]);

    let out = t.path().join("out");
    restore(
        &session,
        &first.snapshot_id,
        &RestoreOptions { target: out.clone(), threads: 2 },
        Arc::new(Progress::default()),
    )
    .unwrap();
    assert_eq!(std::fs::read(out.join("users/users.json")).unwrap(), *users);
    assert_eq!(std::fs::read(out.join("documents/files/d1.pdf")).unwrap(), std::fs::read(&doc).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(out.join("users/users.json")).unwrap().permissions().mode() & 0o777, 0o600);

    let second = backup_virtual(&session, "gateway:/test", &root, &bo, Arc::new(Progress::default())).unwrap();
    assert_eq!(second.parent, Some(first.snapshot_id));
    assert_eq!(second.snapshot.summary.files_unmodified, 1, "the unchanged document is reused");
    assert_eq!(second.snapshot.tree, first.snapshot.tree, "same content, same tree");
}
