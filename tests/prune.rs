//! Forget and prune on a repository: space comes back, nothing used is ever lost, and the
//! two-phase delete protects clients that were running (format-spec/prune.md).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::gateway::{hash_tree, s};

/// File contents by path relative to `dir`.
fn contents(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let prefix = format!("{}/", dir.display());
    hash_tree(dir).into_iter().map(|(k, v)| (k.strip_prefix(&prefix).unwrap_or(&k).to_string(), v)).collect()
}
use common::*;

/// Day `day` of a churning corpus: files change at different rates, some disappear and return.
fn churn_state(dir: &Path, day: u64) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..48u64 {
        if (i + day).is_multiple_of(11) {
            continue;
        }
        let period = 1 + i % 7;
        let version = (day + i) / period;
        let size = 48 * 1024 + (i * 37 % 9) as usize * 40 * 1024;
        let name = if i % 3 == 0 { format!("sub/f{i}.bin") } else { format!("f{i}.bin") };
        write(&dir.join(name), &pseudo_random(size, i * 100_000 + version));
    }
}

/// A 1 MiB-pack repository with four daily backups of `src` (changing by `step` a day), all but
/// the last forgotten: prune has packs to delete and to repack.
fn four_days_then_keep_the_last(sophon: &Sophon, src: &Path, repo: &Path, step: u64) {
    sophon.init_small_packs(repo);
    for day in 1..=4 {
        churn_state(src, day * step);
        backup_at(sophon, repo, src, day);
    }
    sophon.ok(&["backup", "forget", "--repo", s(repo), "--keep-last", "1", "-q"]);
}

fn backup_at(sophon: &Sophon, repo: &Path, src: &Path, day: u64) {
    let time = format!("2026-06-{day:02}T03:00:00Z");
    sophon.ok(&["backup", "create", "--repo", s(repo), "--path", s(src), "--time", &time, "-q"]);
}

fn snapshots(sophon: &Sophon, repo: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(repo), "--json"])).unwrap();
    v.as_array().cloned().or_else(|| v["snapshots"].as_array().cloned()).unwrap()
}

#[test]
fn prune_after_forgetting_27_of_30_dailies_leaves_a_repository_no_bigger_than_a_fresh_one() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo, fresh) = (t.path().join("src"), t.path().join("repo"), t.path().join("fresh"));
    sophon.init_small_packs(&repo);
    for day in 1..=30 {
        churn_state(&src, day);
        backup_at(&sophon, &repo, &src, day);
    }
    let before = dir_size(&repo);
    let out: serde_json::Value = serde_json::from_str(&sophon.ok(&[
        "backup",
        "forget",
        "--repo",
        s(&repo),
        "--keep-daily",
        "3",
        "--prune",
        "--json",
    ]))
    .unwrap();
    assert_eq!(out["removed"], 27, "{out}");
    assert_eq!(out["kept"], 3);
    assert!(out["prune"]["outcome"]["packs_deleted"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["prune"]["outcome"]["packs_deferred"], 0, "nothing else ran, so nothing waits: {out}");

    sophon.init_small_packs(&fresh);
    for day in 28..=30 {
        churn_state(&src, day);
        backup_at(&sophon, &fresh, &src, day);
    }
    let (pruned, fresh_size) = (dir_size(&repo), dir_size(&fresh));
    eprintln!("30 dailies: {before} B; after forget 27 + prune: {pruned} B; fresh with the 3 kept: {fresh_size} B");
    assert!(
        pruned as f64 <= 1.1 * fresh_size as f64,
        "pruned repository {pruned} B is more than 1.1x a fresh one {fresh_size} B"
    );
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);

    // Every kept snapshot restores to the day it was taken.
    let snaps = snapshots(&sophon, &repo);
    assert_eq!(snaps.len(), 3);
    for (i, snap) in snaps.iter().enumerate() {
        let day = 28 + i as u64;
        churn_state(&src, day);
        let target = t.path().join(format!("restored-{day}"));
        let id = snap["id"].as_str().unwrap();
        sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", id, "--target", s(&target), "-q"]);
        assert_eq!(contents(&target.join("src")), contents(&src), "day {day}");
    }

    // A second prune finds nothing to do.
    let again: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "prune", "--repo", s(&repo), "--json"])).unwrap();
    assert_eq!(again["outcome"]["packs_deleted"], 0, "{again}");
    assert_eq!(again["outcome"]["packs_written"], 0, "{again}");
}

fn open_repo(sophon: &Sophon, repo: &Path) -> Arc<sophon::Repository> {
    let backend = sophon::backend::open_url(s(repo), false).unwrap();
    Arc::new(sophon::Repository::open(backend, PASSPHRASE.as_bytes(), Some(sophon.cache.clone())).unwrap())
}

fn packs(repo: &Path) -> Vec<String> {
    files_below(&repo.join("data")).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn prune_waits_for_running_clients_and_brings_back_packs_a_late_snapshot_uses() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sophon.init_small_packs(&repo);
    for day in 1..=3 {
        churn_state(&src, day * 10);
        backup_at(&sophon, &repo, &src, day);
    }
    let lib = open_repo(&sophon, &repo);
    let (listed, _) = lib.list_snapshots().unwrap();
    let first = listed[0].1.clone();

    // A client holds a lock (a backup that read the index before the forget).
    let running = sophon::Session::shared(Arc::clone(&lib), "backup").unwrap();
    sophon.ok(&["backup", "forget", "--repo", s(&repo), "--keep-last", "1", "-q"]);
    let packs_before = packs(&repo);
    let out: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "prune", "--repo", s(&repo), "--json"])).unwrap();
    let deferred = out["outcome"]["packs_deferred"].as_u64().unwrap();
    assert!(deferred > 0, "{out}");
    assert_eq!(out["outcome"]["packs_deleted"], 0, "nothing may go while a client that could use it runs: {out}");
    assert_eq!(packs(&repo).len(), packs_before.len() + out["outcome"]["packs_written"].as_u64().unwrap() as usize);
    assert_eq!(files_below(&repo.join("prune")).len(), 1, "the condemned packs are recorded");
    // The repository stays consistent meanwhile (condemned packs are listed as condemned).
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);

    // That client now writes a snapshot using data the prune condemned (what a backup that
    // deduplicated against the old index does), and finishes. The snapshot verifies at once: the
    // condemned packs are still readable through the index.
    let late = lib.save_snapshot(&first).unwrap();
    drop(running);
    let report = sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
    assert!(report.contains("no damage found") && report.contains("condemned by a prune"), "{report}");

    // The next prune sees the client gone, marks the late snapshot, and re-indexes what it uses
    // instead of deleting it; the rest of the condemned packs go.
    let out: serde_json::Value =
        serde_json::from_str(&sophon.ok(&["backup", "prune", "--repo", s(&repo), "--json"])).unwrap();
    assert!(!out["plan"]["resurrect"].as_array().unwrap().is_empty(), "{out}");
    assert!(out["outcome"]["packs_deleted"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(files_below(&repo.join("prune")).len(), 0);
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
    let target = t.path().join("restored");
    sophon.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", &late.to_hex(), "--target", s(&target), "-q"]);
    churn_state(&src, 10);
    assert_eq!(contents(&target.join("src")), contents(&src));
}

#[test]
fn prune_dry_run_changes_nothing_and_a_second_prune_is_refused_while_one_runs() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    four_days_then_keep_the_last(&sophon, &src, &repo, 3);
    let before = files_below(&repo);
    let plan = sophon.ok(&["backup", "prune", "--repo", s(&repo), "--dry-run"]);
    assert!(plan.contains("delete") && plan.contains("repack") && plan.contains("keep"), "{plan}");
    assert_eq!(files_below(&repo), before, "a dry run writes and deletes nothing");

    let lib = open_repo(&sophon, &repo);
    let held = sophon::Session::prune(Arc::clone(&lib)).unwrap();
    let out = sophon.run(&["backup", "prune", "--repo", s(&repo)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("prune lock"), "{}", String::from_utf8_lossy(&out.stderr));
    // Backups still run beside a prune.
    churn_state(&src, 99);
    backup_at(&sophon, &repo, &src, 5);
    drop(held);
    sophon.ok(&["backup", "prune", "--repo", s(&repo)]);
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
}

#[test]
fn forget_bad_policies_are_usage_errors() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let repo = t.path().join("repo");
    sophon.init(&repo);
    for args in [vec!["--keep-within", "3w"], vec!["--keep-daily", "0"], vec!["--keep-daily", "x"]] {
        let mut full = vec!["backup", "forget", "--repo", s(&repo)];
        full.extend(args.iter().copied());
        sophon.expect(2, &full);
    }
    sophon.expect(2, &["backup", "prune", "--repo", s(&repo), "--max-unused", "120"]);
    sophon.expect(2, &["backup", "prune", "--repo", s(&repo), "--max-repack", "12Q"]);
}

/// Backups and forget+prune run side by side for 60 rounds, and some of either are killed with
/// SIGKILL part-way. At the end every snapshot left restores to exactly what it backed up, and the
/// repository verifies. Backups and prunes use different cache folders, as two machines would.
#[test]
// Both children are reaped in the polling loop (`try_wait` until they exit, or `kill` + `wait`),
// which the lint cannot follow.
#[allow(clippy::zombie_processes)]
fn backups_and_prunes_side_by_side_with_sigkills_lose_nothing() {
    use std::collections::BTreeMap;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let t = tempfile::tempdir().unwrap();
    let backups = Sophon::new(&t.path().join("backup-host"));
    let pruner = Sophon::new(&t.path().join("prune-host"));
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    backups.init_small_packs(&repo);
    let mut expected: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut killed_backups, mut killed_prunes) = (0, 0);
    const ROUNDS: u64 = 60;
    for round in 0..ROUNDS {
        churn_state(&src, round * 3);
        let tag = format!("round-{round}");
        expected.insert(tag.clone(), contents(&src));
        let time = format!("2026-01-{:02}T{:02}:00:00Z", 1 + round / 24, round % 24);
        let mut backup = backups
            .std_cmd()
            .args(["backup", "create", "--repo", s(&repo), "--path", s(&src), "--tag", &tag, "--time", &time, "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut prune = pruner
            .std_cmd()
            .args(["backup", "forget", "--repo", s(&repo), "--keep-last", "4", "--prune", "-q", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Which to kill this round, and when (0-600 ms in: anywhere from start-up to the end).
        let plan = next(4);
        let kill_backup = plan == 1 || plan == 3;
        let kill_prune = plan == 2 || plan == 3;
        let at = Duration::from_millis(next(600));
        let start = Instant::now();
        let (mut b_done, mut p_done) = (None, None);
        while b_done.is_none() || p_done.is_none() {
            if b_done.is_none() {
                if kill_backup && start.elapsed() >= at {
                    let _ = backup.kill();
                    b_done = Some(backup.wait().unwrap());
                    killed_backups += 1;
                } else {
                    b_done = backup.try_wait().unwrap();
                }
            }
            if p_done.is_none() {
                if kill_prune && start.elapsed() >= at {
                    let _ = prune.kill();
                    p_done = Some(prune.wait().unwrap());
                    killed_prunes += 1;
                } else {
                    p_done = prune.try_wait().unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let stderr = |c: &mut std::process::Child| {
            let mut s = String::new();
            use std::io::Read;
            c.stderr.take().map(|mut e| e.read_to_string(&mut s));
            s
        };
        let (b, p) = (b_done.unwrap(), p_done.unwrap());
        if !kill_backup {
            assert!(b.success(), "round {round}: backup failed: {}", stderr(&mut backup));
        }
        if !kill_prune {
            assert!(p.success(), "round {round}: forget --prune failed: {}", stderr(&mut prune));
        }
    }
    assert!(killed_backups >= 5 && killed_prunes >= 5, "{killed_backups} backups, {killed_prunes} prunes killed");

    // Clean up after the killed ones, then check everything that is left.
    pruner.ok(&["backup", "prune", "--repo", s(&repo), "-q"]);
    pruner.ok(&["backup", "prune", "--repo", s(&repo), "-q"]);
    backups.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
    let snaps = snapshots(&backups, &repo);
    assert!(snaps.len() >= 4, "{} snapshots left", snaps.len());
    for snap in &snaps {
        let tag = snap["tags"][0].as_str().unwrap().to_string();
        let id = snap["id"].as_str().unwrap();
        let target = t.path().join("restore").join(&tag);
        backups.ok(&["backup", "restore", "--repo", s(&repo), "--snapshot", id, "--target", s(&target), "-q"]);
        assert_eq!(contents(&target.join("src")), expected[&tag], "snapshot {id} ({tag})");
    }
    assert!(files_below(&repo.join("prune")).is_empty(), "nothing left waiting once no client runs");
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp").args(["-a", s(from), s(to)]).status().unwrap();
    assert!(ok.success());
}

/// A prune that fails at any one of its storage calls (a crash at that step, as far as the
/// repository can tell) leaves a repository that verifies, restores, and that the next prune
/// finishes cleanly.
#[test]
fn a_prune_cut_at_any_step_leaves_a_repository_the_next_prune_finishes() {
    use sophon::backend::fault::{Fault, FaultyBackend};
    use sophon::backend::Backend;
    use sophon::prune::{self, PruneOptions};

    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, base) = (t.path().join("src"), t.path().join("base"));
    four_days_then_keep_the_last(&sophon, &src, &base, 5);
    let expected = contents(&src);

    let run = |dir: &Path, cache: &Path, fault: Fault| -> (sophon::Result<prune::PruneOutcome>, u64) {
        let raw = sophon::backend::open_url(s(dir), false).unwrap();
        let faulty = Arc::new(FaultyBackend::new(raw, fault, 1));
        let backend: Arc<dyn Backend> = faulty.clone();
        let result = sophon::Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf()))
            .map(Arc::new)
            .and_then(|repo| {
                let session = sophon::Session::prune(repo)?;
                let plan = prune::plan(&session, &PruneOptions::default(), &mut |_| {})?;
                prune::execute(&session, &plan, &mut |_| {})
            });
        (result, faulty.calls())
    };
    // How many calls a whole prune makes.
    let whole = t.path().join("whole");
    copy_dir(&base, &whole);
    let base_plan = sophon.ok(&["backup", "prune", "--repo", s(&whole), "--dry-run"]);
    let (outcome, calls) = run(&whole, &t.path().join("cache-whole"), Fault::PermanentAfter(u64::MAX));
    let outcome = outcome.unwrap();
    assert!(outcome.packs_deleted > 0 && outcome.packs_written > 0, "{outcome:?}");

    let step = (calls / 20).max(1);
    eprintln!("a whole prune makes {calls} storage calls");
    let cuts: std::collections::BTreeSet<u64> =
        (0..calls).step_by(step as usize).chain(calls.saturating_sub(6)..calls).collect();
    for cut in cuts {
        let dir = t.path().join(format!("cut-{cut}"));
        copy_dir(&base, &dir);
        let (result, _) = run(&dir, &t.path().join(format!("cache-{cut}")), Fault::PermanentAfter(cut));
        // (The last calls release the lock, whose failure a finished prune ignores.)
        assert!(result.is_err() || cut + 3 >= calls, "a prune cut after {cut} of {calls} calls should fail");
        // The cut prune could not remove its lock; a crashed one's is ignored as its process is
        // dead. This one's process (the test) lives on, so its lock is removed as a crash would.
        for l in files_below(&dir.join("locks")) {
            std::fs::remove_file(l).unwrap();
        }
        // What the operator then sees and does: the repository verifies, and a prune finishes the job.
        sophon.ok(&["backup", "verify", "--repo", s(&dir)]);
        let before = sophon.ok(&["backup", "prune", "--repo", s(&dir), "--dry-run"]);
        sophon.ok(&["backup", "prune", "--repo", s(&dir), "-q"]);
        let report = sophon.ok(&["backup", "verify", "--repo", s(&dir), "--read-data", "--json"]);
        assert!(!report.contains("not in any index segment"), "cut {cut}: packs left behind: {report}");
        assert!(files_below(&dir.join("prune")).is_empty(), "cut {cut}: a record was left behind");
        let (size, uncut) = (dir_size(&dir.join("data")), dir_size(&whole.join("data")));
        let dry = base_plan.clone() + &before + &sophon.ok(&["backup", "prune", "--repo", s(&dir), "--dry-run"]);
        assert!(
            size as f64 <= 1.05 * uncut as f64,
            "cut {cut}: {size} B of packs, an uncut prune leaves {uncut} B\n{dry}"
        );
        let target = t.path().join(format!("restored-{cut}"));
        sophon.ok(&["backup", "restore", "--repo", s(&dir), "--snapshot", "latest", "--target", s(&target), "-q"]);
        assert_eq!(contents(&target.join("src")), expected, "cut {cut}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&target).unwrap();
    }
}

/// The snapshots the clients beside a prune wrote, or what went wrong for them.
type ClientResults = Arc<std::sync::Mutex<Vec<Result<(String, sophon::SnapshotId), String>>>>;

/// Back up `src` (named `src`, so its trees match the forgotten day's) in `session`, then end it.
fn client_backup(session: sophon::Session, src: &Path, who: &str, results: &ClientResults) {
    let opts = sophon::archive::BackupOptions::new(vec![src.to_path_buf()]);
    let out = sophon::archive::backup(&session, &opts, Arc::new(sophon::archive::Progress::default()));
    drop(session);
    let entry = out.map(|o| (who.to_string(), o.snapshot_id)).map_err(|e| format!("{who}: {e}"));
    results.lock().unwrap().push(entry);
}

fn open_at(url: &str, cache: &Path) -> sophon::Result<sophon::Session> {
    let backend = sophon::backend::open_url(url, false)?;
    let repo = sophon::Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf()))?;
    sophon::Session::shared(Arc::new(repo), "backup")
}

/// Run a whole prune on `url` through a counting backend that runs `work` before call `step`;
/// returns how many calls it made.
fn prune_with(url: &str, cache: &Path, step: u64, work: Box<dyn FnOnce() + Send>) -> u64 {
    use sophon::backend::fault::{Fault, FaultyBackend};
    use sophon::backend::Backend;
    use sophon::prune::{self, PruneOptions};
    let raw = sophon::backend::open_url(url, false).unwrap();
    let faulty = Arc::new(FaultyBackend::new(raw, Fault::PermanentAfter(u64::MAX), 1).before_call(step, work));
    let backend: Arc<dyn Backend> = faulty.clone();
    let repo = sophon::Repository::open(backend, PASSPHRASE.as_bytes(), Some(cache.to_path_buf())).unwrap();
    let session = sophon::Session::prune(Arc::new(repo)).unwrap();
    let plan = prune::plan(&session, &PruneOptions::default(), &mut |_| {}).unwrap();
    assert!(!plan.delete.is_empty() && !plan.repack.is_empty(), "the prune has packs to delete and to repack");
    prune::execute(&session, &plan, &mut |_| {}).unwrap();
    drop(session);
    faulty.calls()
}

/// A prune runs on a copy of a repository in which three of four days were forgotten, while
/// backups of the first (forgotten) day's data write their snapshots at call `step` of the
/// prune: one that locked and read the index before the prune started (so it deduplicates
/// against the packs the prune condemns) and one that starts at that moment. Whatever the step,
/// every snapshot must verify and restore right after the prune, and after the next one.
fn backups_beside_a_prune_at_every_step(url_for: &dyn Fn(u64) -> String, seed: &dyn Fn(&Path, &str)) {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, base) = (t.path().join("src"), t.path().join("base"));
    four_days_then_keep_the_last(&sophon, &src, &base, 5);
    let client_src = t.path().join("client").join("src");
    churn_state(&client_src, 5);
    let expected = contents(&client_src);
    let calls = {
        let url = url_for(0);
        seed(&base, &url);
        prune_with(&url, &t.path().join("cache-count"), 0, Box::new(|| {}))
    };
    eprintln!("a whole prune makes {calls} storage calls");
    for step in 1..=calls {
        let url = url_for(step);
        seed(&base, &url);
        let results: ClientResults = Arc::default();
        // The early client locks and reads the index now, before the prune starts.
        let early = open_at(&url, &t.path().join(format!("cache-early-{step}"))).unwrap();
        let work = {
            let (results, client_src, url) = (Arc::clone(&results), client_src.clone(), url.clone());
            let late_cache = t.path().join(format!("cache-late-{step}"));
            Box::new(move || {
                client_backup(early, &client_src, "early", &results);
                match open_at(&url, &late_cache) {
                    Ok(session) => client_backup(session, &client_src, "late", &results),
                    Err(e) => results.lock().unwrap().push(Err(format!("late: {e}"))),
                }
            })
        };
        let made = prune_with(&url, &t.path().join(format!("cache-prune-{step}")), step, work);
        let written: Vec<(String, sophon::SnapshotId)> =
            results.lock().unwrap().drain(..).collect::<Result<_, _>>().unwrap_or_else(|e| panic!("step {step}: {e}"));
        // A prune that marked the clients' snapshots has less to do: fewer calls than `step`.
        if made < step {
            continue;
        }
        assert_eq!(written.len(), 2, "step {step}");
        for round in ["right after the prune", "after the next prune"] {
            let report = sophon.run(&["backup", "verify", "--repo", &url, "--read-data"]);
            let out = String::from_utf8_lossy(&report.stdout);
            assert!(
                report.status.success() && out.contains("no damage found"),
                "step {step} of {calls}, {round}: {out}{}",
                String::from_utf8_lossy(&report.stderr)
            );
            for (who, id) in &written {
                let target = t.path().join(format!("restored-{step}-{who}"));
                sophon.ok(&[
                    "backup",
                    "restore",
                    "--repo",
                    &url,
                    "--snapshot",
                    &id.to_hex(),
                    "--target",
                    s(&target),
                    "-q",
                ]);
                assert_eq!(contents(&target.join("src")), expected, "step {step}, {who}'s snapshot, {round}");
                std::fs::remove_dir_all(&target).unwrap();
            }
            sophon.ok(&["backup", "prune", "--repo", &url, "-q"]);
        }
    }
}

#[test]
fn backups_writing_their_snapshots_at_any_step_of_a_prune_stay_indexed_on_a_local_repository() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    backups_beside_a_prune_at_every_step(&|step| s(&root.join(format!("step-{step}"))).to_string(), &|base, url| {
        copy_dir(base, Path::new(url))
    });
}

/// The same on the S3 test server (scripts/test-servers), where every step is a network call.
#[test]
fn backups_writing_their_snapshots_at_any_step_of_a_prune_stay_indexed_on_s3() {
    let Some(bucket) = std::env::var("SOPHON_TEST_S3_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
        eprintln!("skipped: SOPHON_TEST_S3_URL is not set (scripts/test-servers start DIR; source DIR/env)");
        return;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let prefix = format!("{}/beside-prune-{}-{nanos}", bucket.trim_end_matches('/'), std::process::id());
    backups_beside_a_prune_at_every_step(&|step| format!("{prefix}/step-{step}"), &|base, url| {
        let store = sophon::backend::open_url(url, true).unwrap();
        for file in files_below(base) {
            let name = file.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if !name.split('/').any(|part| part.starts_with('.')) {
                store.write(&name, std::fs::read(&file).unwrap().into()).unwrap();
            }
        }
    });
}

/// Every backup adds an index segment; a prune with nothing else to do rewrites the index once it
/// holds 64 segments more than its packs need (format-spec/prune.md §3 step 4), and not before.
#[test]
fn a_prune_with_nothing_to_delete_consolidates_an_index_of_many_segments() {
    use sophon::prune::{self, PruneOptions, INDEX_SEGMENTS_WORTH_CONSOLIDATING};
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sophon.init_small_packs(&repo);
    let url = s(&repo).to_string();
    // The many small packs would be merged (a repack, which rewrites the index anyway): the
    // consolidation alone is what is tested, as an operator who limits repacking gets it.
    let no_repack = PruneOptions { max_repack_bytes: Some(0), ..PruneOptions::default() };
    let segments = || if repo.join("index").exists() { files_below(&repo.join("index")).len() } else { 0 };
    let prune_plan = || {
        let session = sophon::Session::prune(open_repo(&sophon, &repo)).unwrap();
        prune::plan(&session, &no_repack, &mut |_| {}).unwrap()
    };
    let backup = |n: usize| {
        write(&src.join("changing.txt"), format!("backup {n}").as_bytes());
        let session = open_at(&url, &sophon.cache).unwrap();
        let opts = sophon::archive::BackupOptions::new(vec![src.clone()]);
        sophon::archive::backup(&session, &opts, Arc::new(sophon::archive::Progress::default())).unwrap();
    };
    write(&src.join("stable.bin"), &pseudo_random(256 * 1024, 5));
    let mut n = 0;
    while segments() < INDEX_SEGMENTS_WORTH_CONSOLIDATING {
        backup(n);
        n += 1;
    }
    // One short of the threshold (the packs need one segment): nothing to do.
    let plan = prune_plan();
    assert_eq!(plan.index_segments as usize, INDEX_SEGMENTS_WORTH_CONSOLIDATING);
    assert!(plan.is_empty() && !plan.consolidate_index, "{plan:?}");
    backup(n);
    let dry = sophon.ok(&["backup", "prune", "--repo", &url, "--max-repack", "0", "--dry-run"]);
    assert!(dry.contains("segment(s) rewritten as few"), "{dry}");
    let plan = prune_plan();
    assert!(plan.consolidate_index && plan.delete.is_empty() && plan.repack.is_empty(), "{plan:?}");
    let before = sophon.ok(&["backup", "list", "--repo", &url, "--json"]);
    // Another client, whose cache now holds every segment the prune replaces.
    let stale = Sophon::new(&t.path().join("other-client"));
    assert_eq!(stale.ok(&["backup", "list", "--repo", &url, "--json"]), before);

    sophon.ok(&["backup", "prune", "--repo", &url, "--max-repack", "0", "-q"]);
    assert_eq!(segments(), 1, "every segment rewritten as one");
    assert!(prune_plan().is_empty(), "a second prune has nothing to do");
    assert_eq!(sophon.ok(&["backup", "list", "--repo", &url, "--json"]), before);
    let verify = sophon.ok(&["backup", "verify", "--repo", &url, "--read-data"]);
    assert!(verify.contains("no damage found"), "{verify}");
    // A client whose cache still holds the old segments syncs to the new one and restores.
    let target = t.path().join("restored");
    stale.ok(&["backup", "restore", "--repo", &url, "--snapshot", "latest", "--target", s(&target), "-q"]);
    assert_eq!(std::fs::read(target.join("src/changing.txt")).unwrap(), format!("backup {n}").as_bytes());
}

#[test]
fn a_dry_run_of_merging_packs_of_tiny_blobs_frees_what_the_real_prune_frees() {
    // Twelve backups of 300 new files of a few bytes each: twelve small packs, each mostly header
    // (46 bytes an entry beside blobs of about 40). A merge rewrites those headers; they are not
    // space it frees.
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    sophon.init(&repo);
    for day in 0..12u64 {
        for i in 0..300u64 {
            common::write(&src.join(format!("d{day}/f{i}")), format!("{day}-{i}").as_bytes());
        }
        backup_at(&sophon, &repo, &src, day + 1);
    }
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_str(&sophon.ok(args)).unwrap() };
    let plan = json(&["backup", "prune", "--repo", s(&repo), "--dry-run", "--json"]);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let plan = if plan.get("plan").is_some() { plan["plan"].clone() } else { plan };
    assert!(plan["repack"].as_array().map_or(0, |a| a.len()) >= 12, "the small packs are merged: {plan}");
    let to_free = n(&plan, "bytes_to_delete") + n(&plan, "bytes_to_repack") - n(&plan, "bytes_repacked");
    let before = common::dir_size(&repo.join("data"));
    sophon.ok(&["backup", "prune", "--repo", s(&repo)]);
    let freed = before - common::dir_size(&repo.join("data"));
    // What differs is each pack's own framing (prefix, header seal, trailer): under 100 bytes a pack.
    let packs = 24;
    assert!(to_free.abs_diff(freed) <= 100 * packs, "the dry run said {to_free} bytes would be freed; {freed} were");
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
}

#[test]
fn a_plan_whose_marks_were_replaced_by_a_later_plan_is_refused_and_deletes_nothing() {
    use sophon::prune::{self, PruneOptions};
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    four_days_then_keep_the_last(&sophon, &src, &repo, 3);
    // The session's own lock comes and goes; everything else must stay as it was.
    let stored =
        || -> Vec<_> { files_below(&repo).into_iter().filter(|p| !p.starts_with(repo.join("locks"))).collect() };
    let before = stored();
    let session = sophon::Session::prune(open_repo(&sophon, &repo)).unwrap();
    let first = prune::plan(&session, &PruneOptions::default(), &mut |_| {}).unwrap();
    assert!(!first.repack.is_empty(), "the plan repacks");
    // The used blobs of a plan are marked in the index cache; a second plan marks them afresh.
    let second = prune::plan(&session, &PruneOptions::default(), &mut |_| {}).unwrap();
    let err = prune::execute(&session, &first, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("marks") && err.contains("nothing was deleted"), "{err}");
    assert_eq!(stored(), before, "the refused plan wrote and deleted nothing");
    prune::execute(&session, &second, &mut |_| {}).unwrap();
    drop(session);
    sophon.ok(&["backup", "verify", "--repo", s(&repo), "--read-data"]);
}

/// Packs of tiny blobs hold hundreds of thousands of entries each: the index segments a prune (or
/// repair) writes close at `ENTRIES_PER_INDEX_SEGMENT` entries as well as at 1,024 packs. One
/// segment of every pack a prune of 10M such blobs repacked was 460 MB: over the 256 MiB a reader
/// accepts, so the index it wrote could not be read back.
#[test]
fn index_segments_a_prune_writes_are_bounded_in_entries_as_well_as_in_packs() {
    use sophon::compress::Compression;
    use sophon::format::index::IndexedPack;
    use sophon::format::pack::PackEntry;
    use sophon::repo::ENTRIES_PER_INDEX_SEGMENT;
    use sophon::{BlobId, BlobType, PackId};

    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let repo_dir = t.path().join("repo");
    sophon.init(&repo_dir);
    let repo = open_repo(&sophon, &repo_dir);
    // Three such packs are one entry over the bound: two go in a segment.
    let per_pack = ENTRIES_PER_INDEX_SEGMENT / 3 + 1;
    let packs: Vec<IndexedPack> = (0..7u8)
        .map(|p| IndexedPack {
            id: PackId([p; 32]),
            entries: (0..per_pack as u32)
                .map(|i| {
                    let mut id = [p; 32];
                    id[..4].copy_from_slice(&i.to_le_bytes());
                    PackEntry {
                        blob_type: BlobType::Data,
                        compression: Compression::None,
                        id: BlobId(id),
                        offset: 8 + 40 * i,
                        sealed_len: 40,
                        raw_len: 12,
                    }
                })
                .collect(),
        })
        .collect();
    let mut all = packs.clone().into_iter().map(|p| Ok::<_, sophon::Error>((p, false)));
    let written = repo.replace_index(&mut all, &[]).unwrap();
    let segments: Vec<_> = written.iter().map(|id| repo.load_index_segment(id).unwrap()).collect();
    let shape: Vec<usize> = segments.iter().map(|s| s.packs.len()).collect();
    assert_eq!(shape, [2, 2, 2, 1]);
    for s in &segments {
        assert!(s.packs.iter().map(|p| p.entries.len()).sum::<usize>() <= ENTRIES_PER_INDEX_SEGMENT);
    }
    let listed: Vec<PackId> = segments.iter().flat_map(|s| s.packs.iter().map(|p| p.id)).collect();
    assert_eq!(listed, packs.iter().map(|p| p.id).collect::<Vec<_>>());
    assert_eq!(segments[0].packs[1].entries, packs[1].entries);
}
