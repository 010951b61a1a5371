//! Retention gives exactly the kept sets restic 0.14's `forget` gives for the same policies, over
//! generated histories (hourly for two years, irregular gaps, tags). The expected sets were made
//! once with restic itself by `scripts/gen-retention-vectors` and are checked in under
//! tests/data/retention/.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use sophon::forget::plan_groups;
use sophon::format::snapshot::{Snapshot, SnapshotSummary, VERSION};
use sophon::retention::{Policy, Within};
use sophon::{BlobId, SnapshotId};

fn policy_of(v: &Value) -> Policy {
    let n = |k: &str| v[k].as_u64().unwrap() as u32;
    let within = v["within"].as_str().filter(|w| !w.is_empty()).map(|w| w.parse::<Within>().unwrap());
    let tags = v["tags"]
        .as_array()
        .map(|lists| {
            lists
                .iter()
                .map(|l| l.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .collect()
        })
        .unwrap_or_default();
    Policy {
        last: n("last"),
        hourly: n("hourly"),
        daily: n("daily"),
        weekly: n("weekly"),
        monthly: n("monthly"),
        yearly: n("yearly"),
        within,
        tags,
    }
}

/// The history as snapshots of one group (one host, one source), with ids that do not follow time
/// order, so nothing can pass by relying on the listing order.
fn snapshots_of(history: &Value) -> Vec<(SnapshotId, Snapshot)> {
    history["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let id = SnapshotId(*blake3::hash(&(i as u64).to_le_bytes()).as_bytes());
            let snap = Snapshot {
                version: VERSION,
                time: s["time"].as_str().unwrap().to_string(),
                tree: BlobId([0; 32]),
                paths: vec!["/data".into()],
                hostname: "host".into(),
                username: "user".into(),
                tags: s["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect(),
                parent: None,
                partial: false,
                errors: vec![],
                summary: SnapshotSummary::default(),
            };
            (id, snap)
        })
        .collect()
}

fn check_file(path: &Path) -> usize {
    let history: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(history["restic_version"], "0.14.0");
    let snaps = snapshots_of(&history);
    let index_of: BTreeMap<String, usize> = snaps.iter().enumerate().map(|(i, (_, s))| (s.time.clone(), i)).collect();
    let cases = history["cases"].as_array().unwrap();
    for case in cases {
        let policy = policy_of(&case["policy"]);
        let groups = plan_groups(&policy, snaps.clone());
        assert_eq!(groups.len(), 1);
        let mut kept = Vec::new();
        let mut reasons = BTreeMap::new();
        for s in groups[0].snapshots.iter().filter(|s| s.keep) {
            let i = index_of[&s.time];
            kept.push(i);
            reasons.insert(i.to_string(), s.reasons.clone());
        }
        kept.sort();
        let expected: Vec<usize> =
            case["kept"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let args = case["restic_args"].to_string();
        assert_eq!(kept.len(), expected.len(), "{}: {args}: number kept", path.display());
        assert_eq!(kept, expected, "{}: {args}: kept set", path.display());
        let expected_reasons: BTreeMap<String, Vec<String>> = serde_json::from_value(case["reasons"].clone()).unwrap();
        assert_eq!(reasons, expected_reasons, "{}: {args}: reasons", path.display());
    }
    cases.len()
}

#[test]
fn kept_sets_match_restic_0_14_forget() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/retention");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut cases = 0;
    for f in &files {
        cases += check_file(f);
    }
    assert!(files.len() >= 3 && cases >= 50, "{} files, {cases} cases", files.len());
}

#[test]
fn groups_are_per_host_and_source_and_each_gets_the_whole_policy() {
    let mk = |i: u64, host: &str, path: &str, day: u32| {
        let id = SnapshotId(*blake3::hash(&i.to_le_bytes()).as_bytes());
        let s = Snapshot {
            version: VERSION,
            time: format!("2026-03-{day:02}T03:00:00Z"),
            tree: BlobId([0; 32]),
            paths: vec![path.into()],
            hostname: host.into(),
            username: String::new(),
            tags: vec![],
            parent: None,
            partial: false,
            errors: vec![],
            summary: SnapshotSummary::default(),
        };
        (id, s)
    };
    let mut snaps = Vec::new();
    for day in 1..=5 {
        snaps.push(mk(day as u64, "a", "gateway:/srv/home", day));
        snaps.push(mk(100 + day as u64, "a", "gateway:/srv/home?tenant=acme", day));
        snaps.push(mk(200 + day as u64, "b", "gateway:/srv/home", day));
    }
    let groups = plan_groups(&Policy { daily: 2, ..Policy::default() }, snaps);
    assert_eq!(groups.len(), 3);
    for g in &groups {
        let kept: Vec<&str> = g.snapshots.iter().filter(|s| s.keep).map(|s| &s.time[..10]).collect();
        assert_eq!(kept, ["2026-03-04", "2026-03-05"], "{:?}", g.key);
    }
}
