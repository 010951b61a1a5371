//! Export destinations through the library, without the command line: a file appears only once
//! complete, an incremental follows the newest export of its scope beside it and never replaces
//! an archive, a folder store lists what it holds with typed metadata, and a chain read back
//! holds the newest files with the deleted ones gone.

use std::sync::Arc;

use sophon::archive::{backup, BackupOptions, Progress};
use sophon::chunk::ChunkerParams;
use sophon::crypto::Argon2Params;
use sophon::export::chain::Chain;
use sophon::export::destination::Place;
use sophon::export::output::{export_to_file, StoreDestination};
use sophon::export::previous::previous_beside;
use sophon::export::{ExportOptions, Format};
use sophon::format::layout::Layout;
use sophon::source::BackupSource;
use sophon::{InitOptions, Repository, Session};

/// A fresh repository, open in a shared session as backups and exports take it.
fn cheap_repo(dir: &std::path::Path) -> Session {
    let backend = sophon::backend::open_url(dir.to_str().unwrap(), true).unwrap();
    let opts = InitOptions {
        chunker: ChunkerParams { min_size: 256, avg_size: 1024, max_size: 8192, normalization: 1 },
        pack_size: 1024 * 1024,
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..InitOptions::default()
    };
    Session::shared(Arc::new(Repository::init(backend, b"pw", &opts, None).unwrap()), "test").unwrap()
}

#[test]
fn a_chain_of_folder_exports_written_and_read_through_the_library() {
    let t = tempfile::tempdir().unwrap();
    let (src, cache, out) = (t.path().join("src"), t.path().join("cache"), t.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("keep.txt"), b"kept").unwrap();
    std::fs::write(src.join("gone.txt"), b"to be deleted").unwrap();
    let repo = cheap_repo(&t.path().join("repo"));
    let first = backup(&repo, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())).unwrap();

    // No earlier export: an incremental has nothing to follow.
    let full = out.join("full.zip");
    let e = previous_beside(&repo, &first.snapshot_id, &full, &cache, None).unwrap_err();
    assert!(e.to_string().contains("no earlier export of"), "{e}");

    let opts = ExportOptions::new(Format::Zip);
    let s = export_to_file(&repo, &first.snapshot_id, &full, &opts).unwrap();
    assert_eq!(s.metadata.layout(), Layout::Files);
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["full.zip"], "no partial file is left beside it");

    std::fs::remove_file(src.join("gone.txt")).unwrap();
    std::fs::write(src.join("new.txt"), b"added").unwrap();
    let second = backup(&repo, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())).unwrap();
    // An incremental never replaces an archive, the one it would follow included.
    let e = previous_beside(&repo, &second.snapshot_id, &full, &cache, None).unwrap_err();
    assert!(e.to_string().contains("never replaces an archive"), "{e}");

    let inc = out.join("inc.tar.gz");
    let mut opts = ExportOptions::new(Format::TarGz);
    let previous = previous_beside(&repo, &second.snapshot_id, &inc, &cache, None).unwrap();
    assert_eq!((previous.export_id.as_str(), previous.sequence), (s.export_id.as_str(), 0));
    opts.previous = Some(previous);
    let s2 = export_to_file(&repo, &second.snapshot_id, &inc, &opts).unwrap();
    assert_eq!(s2.follows.as_deref(), Some(s.export_id.as_str()));

    // The folder lists both with their typed metadata.
    let place = Place::open(out.to_str().unwrap()).unwrap();
    let (listed, unreadable) = place.archives(out.to_str().unwrap(), &cache, None).unwrap();
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let follows: Vec<(String, Option<String>)> =
        listed.iter().map(|l| (l.name.clone(), l.metadata.follows().map(str::to_string))).collect();
    assert_eq!(follows, [("full.zip".into(), None), ("inc.tar.gz".into(), Some(s.export_id.clone()))]);

    // Read back as one source: the newest files, the deleted one gone, every archive clean.
    let (chain, findings) = Chain::open_checked(&inc, None, &cache.join("spool")).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    let root = src.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(chain.read(&format!("{root}/keep.txt")).unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(chain.read(&format!("{root}/new.txt")).unwrap().as_deref(), Some(&b"added"[..]));
    assert_eq!(chain.read(&format!("{root}/gone.txt")).unwrap(), None);

    // A store destination that is a local folder: the next incremental follows the newest there.
    let store = StoreDestination::open(out.to_str().unwrap(), "inc2.zip").unwrap();
    let mut opts = ExportOptions::new(Format::Zip);
    opts.previous = Some(store.previous(&repo, &second.snapshot_id, &cache, None).unwrap());
    let s3 = store.export(&repo, &second.snapshot_id, &opts, &cache).unwrap();
    assert_eq!(s3.follows.as_deref(), Some(s2.export_id.as_str()));
    assert_eq!(s3.destination, Some(format!("{}/inc2.zip", out.display())));
    let e = store.previous(&repo, &second.snapshot_id, &cache, None).unwrap_err();
    assert!(e.to_string().contains("never replaces an archive"), "{e}");
}
