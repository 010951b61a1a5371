//! A fleet in one repository (issue 14, item 1): eight clients, each with its own folder and its
//! own cache, back up into one S3 repository on the test server night after night (injected
//! times), all at once, while a ninth forgets and prunes and a tenth restores last night's
//! snapshots. After every night `verify --read-data` is clean; at the end every snapshot left
//! restores to what its client had that night, and the index stays small: each prune that
//! changes anything consolidates the segments the night's backups added.
//!
//! Runs against `SOPHON_TEST_S3_URL` (scripts/test-servers); a local folder stands in when no
//! server is set up and `SOPHON_REQUIRE_SERVERS` is not set.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use common::gateway::{hash_tree, s};
use common::*;

const CLIENTS: u64 = 8;
const NIGHTS: u64 = 6;
/// What the ninth client's nightly `forget` keeps of each client's snapshots.
const KEEP_DAILY: usize = 3;

/// File contents by path relative to `dir`.
fn contents(dir: &Path) -> BTreeMap<String, String> {
    let prefix = format!("{}/", dir.display());
    hash_tree(dir).into_iter().map(|(k, v)| (k.strip_prefix(&prefix).unwrap_or(&k).to_string(), v)).collect()
}

/// Client `c`'s folder on night `night`: files every client shares (the fleet deduplicates
/// them), its own files changing at different rates, and a log per night of which the last
/// three are kept.
fn night_tree(dir: &Path, c: u64, night: u64) {
    let _ = std::fs::remove_dir_all(dir);
    for i in 0..6u64 {
        write(&dir.join(format!("shared/lib{i}.bin")), &pseudo_random(96 * 1024, 7_000 + i + night / 3));
    }
    for i in 0..12u64 {
        let version = (night + i) / (1 + i % 4);
        let name = if i % 2 == 0 { format!("data/d{i}.bin") } else { format!("conf/c{i}.txt") };
        let body = if i % 2 == 0 {
            pseudo_random(512 * 1024 + (i as usize) * 4096, c * 1_000_000 + i * 1_000 + version)
        } else {
            text(2048 + (i as usize) * 64, c * 1_000_000 + i * 1_000 + version)
        };
        write(&dir.join(name), &body);
    }
    for n in night.saturating_sub(2)..=night {
        write(&dir.join(format!("logs/night-{n}.log")), &text(8 * 1024, c * 1_000 + n));
    }
}

fn spawn(sophon: &Sophon, args: &[&str]) -> Child {
    sophon.std_cmd().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Wait for `child` and require success; returns stdout.
fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn snapshots(sophon: &Sophon, repo: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", repo, "--json"])).unwrap();
    v.as_array().cloned().or_else(|| v["snapshots"].as_array().cloned()).unwrap()
}

/// The tags a fleet snapshot carries: `client-C` and `night-N`.
fn client_and_night(snap: &serde_json::Value) -> (u64, u64) {
    let tags: Vec<&str> = snap["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let num = |prefix: &str| {
        tags.iter()
            .find_map(|t| t.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{tags:?}"))
    };
    (num("client-"), num("night-"))
}

/// How many index segments the repository holds, as its store lists them.
fn index_segments(repo: &str) -> u64 {
    let store = sophon::backend::open_url(repo, false).unwrap();
    let mut n = 0;
    store
        .list("index", &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

fn repository_url(t: &Path) -> String {
    match std::env::var("SOPHON_TEST_S3_URL").ok().filter(|u| !u.is_empty()) {
        Some(bucket) => {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            format!("{}/fleet-{}-{nanos}", bucket.trim_end_matches('/'), std::process::id())
        }
        None => {
            assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
            eprintln!("SOPHON_TEST_S3_URL is not set: the fleet shares a local folder instead");
            s(&t.join("repo")).to_string()
        }
    }
}

#[test]
fn eight_clients_a_pruner_and_a_restorer_share_one_repository_night_after_night() {
    let t = tempfile::tempdir().unwrap();
    let repo = repository_url(t.path());
    let host = |name: &str| Sophon::new(&t.path().join(name));
    let clients: Vec<(Sophon, PathBuf)> =
        (0..CLIENTS).map(|c| (host(&format!("client-{c}")), t.path().join(format!("client-{c}/src")))).collect();
    let (pruner, restorer) = (host("pruner"), host("restorer"));
    clients[0].0.init_url(&repo);

    // What each client had on each night, to compare every restore with.
    let mut expected: BTreeMap<(u64, u64), BTreeMap<String, String>> = BTreeMap::new();
    let mut segments_per_night = Vec::new();
    for night in 0..NIGHTS {
        let time = format!("2026-03-{:02}T02:{:02}:00Z", 1 + night, 0);
        for (c, (_, src)) in clients.iter().enumerate() {
            night_tree(src, c as u64, night);
            expected.insert((c as u64, night), contents(src));
        }
        // Everyone at once: the forget and prune, eight backups and restores of last night's. The
        // backups start a little later each night, so they meet the prune at different steps.
        let keep = KEEP_DAILY.to_string();
        let prune = spawn(&pruner, &["backup", "forget", "--repo", &repo, "--keep-daily", &keep, "--prune", "--json"]);
        std::thread::sleep(std::time::Duration::from_millis(150 * night));
        let backups: Vec<Child> = clients
            .iter()
            .enumerate()
            .map(|(c, (sophon, src))| {
                let (client, night) = (format!("client-{c}"), format!("night-{night}"));
                let args = ["--tag", &client, "--tag", &night, "--time", &time, "-q"];
                spawn(sophon, &[&["backup", "create", "--repo", &repo, "--path", s(src)][..], &args].concat())
            })
            .collect();
        let last_night: Vec<serde_json::Value> = if night == 0 {
            Vec::new()
        } else {
            snapshots(&restorer, &repo).into_iter().filter(|snap| client_and_night(snap).1 == night - 1).collect()
        };
        if night > 0 {
            assert_eq!(last_night.len(), CLIENTS as usize, "night {night}: every client's snapshot of last night");
        }
        for snap in &last_night {
            let (c, n) = client_and_night(snap);
            let target = t.path().join(format!("restore-{c}-{n}"));
            let id = snap["id"].as_str().unwrap();
            restorer.ok(&["backup", "restore", "--repo", &repo, "--snapshot", id, "--target", s(&target), "-q"]);
            assert_eq!(contents(&target.join("src")), expected[&(c, n)], "night {night}: client {c}'s snapshot {id}");
            std::fs::remove_dir_all(&target).unwrap();
        }
        for (c, b) in backups.into_iter().enumerate() {
            finish(b, &format!("night {night}: client {c}'s backup"));
        }
        let pruned: serde_json::Value =
            serde_json::from_str(&finish(prune, &format!("night {night}: forget --prune"))).unwrap();
        let plan = &pruned["prune"]["plan"];
        eprintln!(
            "night {night}: the prune saw {} snapshot(s) and {} segment(s); {}",
            plan["snapshots"], plan["index_segments"], pruned["prune"]["outcome"]
        );

        let verify = pruner.ok(&["backup", "verify", "--repo", &repo, "--read-data"]);
        assert!(verify.contains("no damage found"), "night {night}: {verify}");
        segments_per_night.push(index_segments(&repo));
    }
    eprintln!("index segments after each night: {segments_per_night:?}");

    // Every snapshot left restores to what its client had that night; the forget kept the last
    // KEEP_DAILY nights of each client (tonight's prune ran beside tonight's backups, which it
    // may or may not have seen: one more night may be left).
    pruner.ok(&["backup", "forget", "--repo", &repo, "--keep-daily", &KEEP_DAILY.to_string(), "--prune", "-q"]);
    let left = snapshots(&restorer, &repo);
    let mut per_client: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for snap in &left {
        let (c, n) = client_and_night(snap);
        per_client.entry(c).or_default().push(n);
        let target = t.path().join(format!("final-{c}-{n}"));
        let id = snap["id"].as_str().unwrap();
        restorer.ok(&["backup", "restore", "--repo", &repo, "--snapshot", id, "--target", s(&target), "-q"]);
        assert_eq!(contents(&target.join("src")), expected[&(c, n)], "client {c}, night {n}: snapshot {id}");
        std::fs::remove_dir_all(&target).unwrap();
    }
    let want: Vec<u64> = (NIGHTS - KEEP_DAILY as u64..NIGHTS).collect();
    for c in 0..CLIENTS {
        let mut nights = per_client.remove(&c).unwrap_or_default();
        nights.sort();
        assert_eq!(nights, want, "client {c}: the last {KEEP_DAILY} nights are kept, the older forgotten");
    }
    assert!(per_client.is_empty(), "no other snapshots: {per_client:?}");

    // The index does not grow night after night: each prune that removes anything rewrites it.
    let last = *segments_per_night.last().unwrap();
    assert!(last <= CLIENTS + 2, "index segments after each night: {segments_per_night:?}");
    let verify = pruner.ok(&["backup", "verify", "--repo", &repo, "--read-data"]);
    assert!(verify.contains("no damage found"), "{verify}");
    // Every client's next backup still works from its own (now stale) cache.
    for (c, (sophon, src)) in clients.iter().enumerate() {
        let (client, night) = (format!("client-{c}"), format!("night-{NIGHTS}"));
        sophon.ok(&["backup", "create", "--repo", &repo, "--path", s(src), "--tag", &client, "--tag", &night, "-q"]);
    }
}
