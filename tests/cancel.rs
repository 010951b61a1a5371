//! Cancelling through the library (`archive::Progress::cancel`, set by the caller): a backup, a
//! gateway backup and an export stopped part-way end with `Error::Cancelled` and leave nothing
//! behind: no snapshot, none of the run's packs, no archive or temporary file, no spool file, no
//! lock; the repository verifies clean (no warning either) and the next backup works.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::s;
use common::*;
use sophon::archive::{self, BackupOptions, Progress};
use sophon::backend::fault::{Fault, FaultyBackend};
use sophon::check::{self, CheckOptions};
use sophon::export::{output, ExportOptions, Format};
use sophon::{Error, Repository, Session};

fn session(repo: &Path, cache: &Path) -> Session {
    let backend = sophon::backend::open_url(s(repo), false).unwrap();
    let opened = Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf())).unwrap();
    Session::shared(Arc::new(opened), "test").unwrap()
}

/// A session whose store sets `progress.cancel` just before the `n`-th write under `prefix` (a
/// pack, an index segment), as a dashboard's cancel button would at that moment: a point of the
/// run reached exactly, however loaded the machine (a watching thread may not run until the
/// backup has ended).
fn session_cancelling_at(repo: &Path, cache: &Path, prefix: &str, n: u64, progress: &Arc<Progress>) -> Session {
    let raw = sophon::backend::open_url(s(repo), false).unwrap();
    let p = Arc::clone(progress);
    let cancel = move || p.cancel.store(true, Ordering::Relaxed);
    let faulty = FaultyBackend::new(raw, Fault::Transient(0.0), 1).before_write(prefix, n, cancel);
    let opened = Repository::open(Arc::new(faulty), PASSPHRASE.as_bytes(), Some(cache.to_path_buf())).unwrap();
    Session::shared(Arc::new(opened), "test").unwrap()
}

/// The names of the objects in one folder of the repository.
fn objects(repo: &Path, folder: &str) -> Vec<PathBuf> {
    let dir = repo.join(folder);
    if !dir.exists() {
        return Vec::new();
    }
    let mut v = files_below(&dir);
    v.sort();
    v
}

/// Set `progress.cancel` once `bytes_done` reaches `at`, from another thread, as a dashboard's
/// cancel button does. Returns whether it had to (false: the work ended first).
fn cancel_at(progress: &Arc<Progress>, at: u64) -> std::thread::JoinHandle<bool> {
    let p = Arc::clone(progress);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if p.bytes_done.load(Ordering::Relaxed) >= at {
                p.cancel.store(true, Ordering::Relaxed);
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    })
}

fn assert_clean(repo: &Path, cache: &Path) {
    let session = session(repo, cache);
    let report = check::check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {}).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.warnings.is_empty(), "nothing left for a prune: {:?}", report.warnings);
    drop(session);
    assert!(objects(repo, "locks").is_empty(), "no lock left");
}

#[test]
fn a_backup_and_an_export_cancelled_part_way_leave_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, cache) = (t.path().join("src"), t.path().join("repo"), t.path().join("cache"));
    sample_tree(&src, 64, 1);
    let sophon = Sophon::new(t.path());
    // 1 MiB packs: many of them are uploaded before the cancel, and must all go again.
    sophon.init_small_packs(&repo);
    let first = sophon.backup_json(&repo, &src)["snapshot"].as_str().unwrap().to_string();
    let (snapshots, packs, index) = (objects(&repo, "snapshots"), objects(&repo, "data"), objects(&repo, "index"));

    for i in 0..4 {
        write(&src.join(format!("big/{i}.bin")), &pseudo_random(24 << 20, 10 + i));
    }
    let progress = Arc::new(Progress::default());
    let s1 = session_cancelling_at(&repo, &cache, "data/", 40, &progress);
    let outcome = archive::backup(&s1, &BackupOptions::new(vec![src.clone()]), Arc::clone(&progress));
    assert!(progress.cancelled(), "the backup ended before its 40th pack");
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    drop(s1);
    assert_eq!(objects(&repo, "snapshots"), snapshots, "no snapshot");
    assert_eq!(objects(&repo, "data"), packs, "the cancelled run's packs are deleted");
    assert_eq!(objects(&repo, "index"), index, "no index segment");
    assert_clean(&repo, &cache);

    // The repository goes on: the same backup, not cancelled, is saved.
    let second = sophon.backup_json(&repo, &src)["snapshot"].as_str().unwrap().to_string();
    assert_ne!(second, first);

    // An export to a file and one to a destination folder, each cancelled part-way.
    let out_dir = t.path().join("exports");
    std::fs::create_dir(&out_dir).unwrap();
    let s2 = session(&repo, &cache);
    let id = s2.resolve_snapshot(&second).unwrap();
    let snapshot = s2.load_snapshot(&id).unwrap();
    let targets = [
        output::ArchiveTarget::File(out_dir.join("cancelled.zip")),
        output::ArchiveTarget::Destination(format!("{}/cancelled-{{snapshot}}.tar.gz", s(&out_dir))),
    ];
    for (target, format) in targets.iter().zip([Format::Zip, Format::TarGz]) {
        let progress = Arc::new(Progress::default());
        let mut opts = ExportOptions::new(format);
        opts.progress = Some(Arc::clone(&progress));
        let placed = target.place(&snapshot, &id, chrono::Local::now()).unwrap();
        let watcher = cancel_at(&progress, 30 << 20);
        let written = placed.export(&s2, &id, &opts, &cache);
        assert!(watcher.join().unwrap(), "the export ended before it could be cancelled");
        assert!(matches!(written, Err(Error::Cancelled)), "{target:?}: {:?}", written.map(|s| s.bytes_out));
        let left: Vec<_> = files_below(&out_dir).into_iter().filter(|p| !p.starts_with(out_dir.join(".tmp"))).collect();
        assert!(left.is_empty(), "{target:?}: no archive, no temporary file: {left:?}");
        let tmp = out_dir.join(".tmp");
        assert!(!tmp.exists() || files_below(&tmp).is_empty(), "{target:?}: no upload left half-written");
    }
    // A cancel set before the export starts stops it at once.
    let progress = Arc::new(Progress::default());
    progress.cancel.store(true, Ordering::Relaxed);
    let mut opts = ExportOptions::new(Format::Zip);
    opts.progress = Some(progress);
    let mut sink = Vec::new();
    assert!(matches!(sophon::export::export_snapshot(&s2, &id, &mut sink, &opts), Err(Error::Cancelled)));
    assert!(sink.is_empty());
    drop(s2);
    assert_clean(&repo, &cache);
    assert_eq!(objects(&repo, "snapshots").len(), 2);
}

#[test]
fn a_gateway_backup_cancelled_during_its_dump_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (home, repo, cache) = (t.path().join("home"), t.path().join("repo"), t.path().join("cache"));
    let sophon = Sophon::new(t.path());
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init_small_packs(&repo);
    let spool = t.path().join("spool");
    let dump_opts = sophon::gateway::dump::DumpOptions { spool_dir: Some(spool.clone()), ..Default::default() };
    let opts = BackupOptions::new(vec![]);

    // Cancelled before it starts: the dump stops at its first check.
    let s1 = session(&repo, &cache);
    let progress = Arc::new(Progress::default());
    progress.cancel.store(true, Ordering::Relaxed);
    let outcome = sophon::gateway::backup::backup(&s1, &home, &dump_opts, &opts, progress);
    assert!(matches!(outcome, Err(Error::Cancelled)), "{:?}", outcome.map(|o| o.0.snapshot_id));

    drop(s1);
    // Cancelled as its first pack is written (the documents are read while the tables are dumped,
    // so the dump may still be running) and as its third.
    for at in [1, 3] {
        let progress = Arc::new(Progress::default());
        let s1 = session_cancelling_at(&repo, &cache, "data/", at, &progress);
        let outcome = sophon::gateway::backup::backup(&s1, &home, &dump_opts, &opts, Arc::clone(&progress));
        assert!(progress.cancelled(), "the backup wrote fewer than {at} packs");
        assert!(matches!(outcome, Err(Error::Cancelled)), "{:?}", outcome.map(|o| o.0.snapshot_id));
    }
    assert!(objects(&repo, "snapshots").is_empty(), "no snapshot");
    assert!(objects(&repo, "data").is_empty(), "no pack");
    assert!(!spool.exists() || files_below(&spool).is_empty(), "no spooled file left");
    assert_clean(&repo, &cache);

    // Not cancelled: the totals are known once the dump has ended, and the backup is saved.
    let s2 = session(&repo, &cache);
    let progress = Arc::new(Progress::default());
    let (outcome, _) = sophon::gateway::backup::backup(&s2, &home, &dump_opts, &opts, Arc::clone(&progress)).unwrap();
    assert!(progress.scan_finished.load(Ordering::Relaxed));
    assert_eq!(progress.files_total.load(Ordering::Relaxed), outcome.snapshot.summary.files);
    assert_eq!(progress.bytes_total.load(Ordering::Relaxed), outcome.snapshot.summary.bytes);

    // The estimate of the same backup again: nothing new (the documents are unchanged, the dump's
    // generated files deduplicate against the snapshot just taken).
    let (estimate, _) = sophon::gateway::backup::estimate(Some(&s2), &home, &dump_opts, &opts).unwrap();
    assert_eq!(estimate.parent, Some(outcome.snapshot_id));
    assert_eq!(estimate.files, outcome.snapshot.summary.files);
    assert!(estimate.files_unchanged > 0, "{estimate:?}");
    assert!(estimate.bytes_new < estimate.bytes / 10, "{estimate:?}");
    // A new document is new data, counted byte for byte.
    let doc = std::fs::read_dir(home.join("documents/files")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&doc).unwrap();
    bytes.extend_from_slice(&pseudo_random(3 << 20, 77));
    std::fs::write(&doc, &bytes).unwrap();
    let (after, _) = sophon::gateway::backup::estimate(Some(&s2), &home, &dump_opts, &opts).unwrap();
    assert!(after.bytes_new >= 3 << 20, "{after:?}");
    assert_eq!(after.files_unchanged + 1, estimate.files_unchanged, "{after:?}");
}

#[test]
fn a_cancel_that_comes_as_the_last_index_segment_is_stored_is_too_late_and_the_snapshot_is_saved() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, cache) = (t.path().join("src"), t.path().join("repo"), t.path().join("cache"));
    sample_tree(&src, 16, 2);
    Sophon::new(t.path()).init_small_packs(&repo);
    let progress = Arc::new(Progress::default());
    let s1 = session_cancelling_at(&repo, &cache, "index/", 1, &progress);
    let outcome = archive::backup(&s1, &BackupOptions::new(vec![src.clone()]), Arc::clone(&progress));
    assert!(progress.cancelled());
    // Had it ended as cancelled, its packs (listed by the segment, so never deleted) would wait
    // for a prune with no snapshot using them.
    let outcome = outcome.expect("a cancel after the last chance to stop is too late");
    assert_eq!(outcome.index_segments.len(), 1);
    drop(s1);
    assert_eq!(objects(&repo, "snapshots").len(), 1);
    assert_clean(&repo, &cache);
}
