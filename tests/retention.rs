//! Retention gives exactly the kept sets restic 0.14's `forget` gives for the same policies, over
//! generated histories (hourly for two years, irregular gaps, tags). The expected sets were made
//! once with restic itself by `scripts/gen-retention-vectors` and are checked in under
//! tests/data/retention/. Groups (host, source with its categories, job) keep a job's retention
//! away from snapshots taken by hand and from category-only ones.

mod common;

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
        snaps.push(mk(300 + day as u64, "a", "gateway:/srv/home?categories=memory,workflows", day));
        let mut by_job = mk(400 + day as u64, "a", "gateway:/srv/home", day);
        by_job.1.tags = vec!["cron:default/nightly-backup".into()];
        snaps.push(by_job);
    }
    let groups = plan_groups(&Policy { daily: 2, ..Policy::default() }, snaps);
    assert_eq!(groups.len(), 5);
    let described: Vec<String> = groups.iter().map(|g| g.key.describe()).collect();
    assert!(
        described.contains(
            &"host a, gateway /srv/home, all tenants, categories memory,workflows, no job (taken by hand)".to_string()
        ),
        "{described:#?}"
    );
    assert!(
        described.contains(
            &"host a, gateway /srv/home, all tenants, all categories, job default/nightly-backup".to_string()
        ),
        "{described:#?}"
    );
    for g in &groups {
        let kept: Vec<&str> = g.snapshots.iter().filter(|s| s.keep).map(|s| &s.time[..10]).collect();
        assert_eq!(kept, ["2026-03-04", "2026-03-05"], "{:?}", g.key);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn list(sophon: &common::Sophon, repo: &Path) -> Vec<Value> {
    let out = sophon.ok(&["backup", "list", "--repo", s(repo), "--json"]);
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

/// Issue 11, finding 1: the nightly job's retention removed a category-only snapshot and a manual
/// one, which shared its group. Here both sit among six weeks of the job's nightly snapshots and
/// are old enough that, in one group with them, the lifecycle (7 daily, 4 weekly, 12 monthly)
/// would remove them; the job's run through `cron run-due` keeps them, and thins its own.
#[test]
fn a_job_s_retention_keeps_manual_and_category_only_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let sophon = common::Sophon::new(t.path());
    let home = t.path().join("home");
    sophon.ok(&["gateway", "init", "--home", s(&home)]);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let tenant: String =
        db.query_row("SELECT tenant_id FROM cron_jobs WHERE name = 'nightly-backup'", [], |r| r.get(0)).unwrap();
    let repo = home.join("backups/repository");
    sophon.init(&repo);
    let tag = format!("cron:{tenant}/nightly-backup");

    // Nightly snapshots as the job takes them (its tag), 2030-01-01 … 2030-02-09 at 03:00.
    let nights: Vec<String> = (0..40)
        .map(|d| (chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap() + chrono::Duration::days(d)).to_string())
        .collect();
    for (i, day) in nights.iter().enumerate() {
        let time = format!("{day}T03:00:00Z");
        sophon.ok(&["backup", "create", "--home", s(&home), "--tag", &tag, "--time", &time, "--quiet"]);
        if i == 20 {
            // Used: the home's data changes between the backups (a job added).
            sophon.ok(&[
                "cron",
                "add",
                "--home",
                s(&home),
                "--name",
                "vacuum",
                "--schedule",
                "0 5 * * *",
                "--action",
                "custom",
                "--command",
                "true",
            ]);
        }
        if i == 3 {
            // Day 4 (a Friday): a manual full snapshot and a category-only one, later that day.
            sophon.ok(&["backup", "create", "--home", s(&home), "--time", "2030-01-04T10:00:00Z", "--quiet"]);
            sophon.ok(&[
                "backup",
                "create",
                "--home",
                s(&home),
                "--categories",
                "workflows,memory",
                "--time",
                "2030-01-04T11:00:00Z",
                "--quiet",
            ]);
        }
    }
    let before = list(&sophon, &repo);
    assert_eq!(before.len(), 42);
    let category_only = before.iter().find(|v| v["time"].as_str().unwrap().starts_with("2030-01-04T11")).unwrap();
    let label = category_only["paths"][0].as_str().unwrap();
    assert!(label.ends_with("?categories=memory,workflows"), "{label}");

    // The dry run spells out each group's key, in text and in JSON.
    let text = sophon.ok(&["backup", "forget", "--home", s(&home), "--dry-run"]);
    assert!(
        text.contains("all tenants, categories memory,workflows, no job (taken by hand): keep 1, remove 0"),
        "{text}"
    );
    assert!(text.contains(&format!("all tenants, all categories, job {tenant}/nightly-backup: keep")), "{text}");
    assert!(text.contains("all tenants, all categories, no job (taken by hand): keep 1, remove 0"), "{text}");
    let v: Value =
        serde_json::from_str(&sophon.ok(&["backup", "forget", "--home", s(&home), "--dry-run", "--json"])).unwrap();
    let keys: Vec<&Value> = v["groups"].as_array().unwrap().iter().map(|g| &g["key"]).collect();
    assert_eq!(keys.len(), 3, "{v}");
    let cat = keys.iter().find(|k| k["categories"] == "memory,workflows").unwrap();
    assert_eq!(
        (&cat["kind"], &cat["tenant"], &cat["job"]),
        (&Value::from("gateway"), &Value::from("all"), &Value::Null)
    );
    assert!(keys.iter().any(|k| k["job"] == format!("{tenant}/nightly-backup").as_str()), "{v}");

    // The job's own run: its snapshot carries its tag, its retention thins only its snapshots.
    db.execute("UPDATE cron_jobs SET created_at = '2030-01-01T00:00:00Z' WHERE name = 'nightly-backup'", []).unwrap();
    sophon.ok(&["cron", "run-due", "--home", s(&home), "--now", "2030-02-10T03:00:00Z"]);
    let after = list(&sophon, &repo);
    let times = |tagged: bool| -> Vec<String> {
        after
            .iter()
            .filter(|v| v["tags"].as_array().unwrap().iter().any(|t| t == tag.as_str()) == tagged)
            .map(|v| v["time"].as_str().unwrap()[..13].to_string())
            .collect()
    };
    assert_eq!(times(false), ["2030-01-04T10", "2030-01-04T11"], "the manual and category-only snapshots stay");
    // 41 nights (Jan 1 – Feb 10): 7 daily (Feb 4–10), weekly: Feb 10 (Sun), Feb 3, Jan 27, Jan 20;
    // monthly: Feb 10 and Jan 31.
    let kept: Vec<String> = times(true).iter().map(|t| t[..10].to_string()).collect();
    assert_eq!(
        kept,
        [
            "2030-01-20",
            "2030-01-27",
            "2030-01-31",
            "2030-02-03",
            "2030-02-04",
            "2030-02-05",
            "2030-02-06",
            "2030-02-07",
            "2030-02-08",
            "2030-02-09",
            "2030-02-10",
        ]
    );
}
