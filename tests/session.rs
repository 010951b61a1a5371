//! Sessions through the library API: restores and exports in this process, each in its own
//! `Session`, while another process forgets and prunes the same repository. The session's lock is
//! the only thing that keeps the prune from deleting what they read, so nothing may go missing.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::gateway::s;
use common::*;
use sophon::archive::{backup, BackupOptions, Progress};
use sophon::export::reader::ExportArchive;
use sophon::export::{export_snapshot, ExportOptions, Format};
use sophon::repo::LockMode;
use sophon::restore::{restore, RestoreOptions};
use sophon::{Repository, Session};

/// Day `day` of a small corpus in which files change at different rates, so each backup leaves
/// packs that later prunes delete or repack.
fn churn(dir: &Path, day: u64) {
    let _ = std::fs::remove_dir_all(dir);
    for i in 0..24u64 {
        let version = (day + i) / (1 + i % 4);
        let name = if i % 3 == 0 { format!("sub/f{i}.bin") } else { format!("f{i}.bin") };
        write(&dir.join(name), &pseudo_random(24 * 1024 + (i as usize % 5) * 16 * 1024, i * 1000 + version));
    }
}

fn open(repo: &Path, cache: &Path) -> Arc<Repository> {
    let backend = sophon::backend::open_url(s(repo), false).unwrap();
    Arc::new(Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf())).unwrap())
}

/// Restore and export the latest snapshot in one session; the restore must equal `src` and the
/// archive must verify clean.
fn read_latest(repo: &Arc<Repository>, src: &Path, work: &Path, n: &mut u32) {
    let session = Session::shared(Arc::clone(repo), "test-reader").unwrap();
    let id = session.resolve_snapshot("latest").unwrap();
    *n += 1;
    let target = work.join(format!("restored-{n}"));
    let opts = RestoreOptions { target: target.clone(), threads: 3 };
    restore(&session, &id, &opts, Arc::new(Progress::default())).unwrap_or_else(|e| panic!("restore {n}: {e}"));
    assert_same_tree(src, &target.join("src"));
    std::fs::remove_dir_all(&target).unwrap();

    let mut zip = Vec::new();
    let summary = export_snapshot(&session, &id, &mut zip, &ExportOptions::new(Format::Zip))
        .unwrap_or_else(|e| panic!("export {n}: {e}"));
    assert_eq!(summary.bytes_out, zip.len() as u64);
    let archive = ExportArchive::open_bytes(Path::new("latest.zip"), zip, None, &work.join(format!("staging-{n}")))
        .unwrap_or_else(|e| panic!("export {n} does not open: {e}"));
    assert_eq!(archive.verify().unwrap(), Vec::<String>::new(), "export {n}");
}

#[test]
fn restores_and_exports_beside_a_prune_in_another_process_lose_nothing() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo_dir) = (t.path().join("src"), t.path().join("repo"));
    sophon.init_small_packs(&repo_dir);
    let repo = open(&repo_dir, &t.path().join("lib-cache"));
    let mut reads = 0;
    for day in 1..=6u64 {
        churn(&src, day);
        let session = Session::shared(Arc::clone(&repo), "test-backup").unwrap();
        let mut opts = BackupOptions::new(vec![src.clone()]);
        opts.time = Some(chrono::Utc::now() + chrono::Duration::days(day as i64));
        backup(&session, &opts, Arc::new(Progress::default())).unwrap();
        drop(session);
        if day < 3 {
            continue;
        }
        let mut prune = sophon
            .std_cmd()
            .args(["backup", "forget", "--repo", s(&repo_dir), "--keep-last", "2", "--prune", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read at least once, and on until the prune is over, so reads overlap each of its steps.
        loop {
            read_latest(&repo, &src, t.path(), &mut reads);
            if prune.try_wait().unwrap().is_some() {
                break;
            }
        }
        let out = prune.wait_with_output().unwrap();
        assert!(out.status.success(), "forget --prune: {}", String::from_utf8_lossy(&out.stderr));
        // A prune session of its own, once the other process is done, finishes what it deferred.
        if day == 5 {
            let session = Session::prune(Arc::clone(&repo)).unwrap();
            let plan = sophon::prune::plan(&session, &Default::default(), &mut |_| {}).unwrap();
            sophon::prune::execute(&session, &plan, &mut |_| {}).unwrap();
        }
    }
    assert!(reads >= 4);
    let snaps: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(&repo_dir), "--json"])).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "forget kept the last two");
    let v = sophon.ok(&["backup", "verify", "--repo", s(&repo_dir), "--read-data"]);
    assert!(v.contains("no damage found"), "{v}");
    read_latest(&repo, &src, t.path(), &mut reads);
    assert!(std::fs::read_dir(repo_dir.join("locks")).unwrap().next().is_none(), "every session's lock is gone");
}

#[test]
fn operations_refuse_a_session_weaker_than_they_need() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let repo_dir = t.path().join("repo");
    sophon.init(&repo_dir);
    let repo = open(&repo_dir, &t.path().join("lib-cache"));
    let shared = Session::shared(Arc::clone(&repo), "test").unwrap();
    assert_eq!(shared.mode(), LockMode::Shared);
    let err = sophon::prune::plan(&shared, &Default::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, sophon::Error::WrongSession { needed: "prune", held: "shared", .. }), "{err}");
    assert!(err.to_string().contains(s(&repo_dir)), "the error names the repository: {err}");
    // While the shared session lives, the repository's lock says so; a prune may run beside it.
    assert_eq!(repo.live_locks(None).unwrap().len(), 1);
    let prune = Session::prune(Arc::clone(&repo)).unwrap();
    let plan = sophon::prune::plan(&prune, &Default::default(), &mut |_| {}).unwrap();
    sophon::prune::execute(&prune, &plan, &mut |_| {}).unwrap();
    // But not beside another prune.
    assert!(matches!(Session::prune(Arc::clone(&repo)), Err(sophon::Error::Locked { .. })));
    drop((shared, prune));
    assert!(repo.live_locks(None).unwrap().is_empty());
}
