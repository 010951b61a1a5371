//! Issue 11's acceptance case for retention: a month of nightly jobs of every tenant of a used demo
//! gateway, with the default lifecycle as a Production override changes it, run through
//! `cron run-due` with an injected clock beside a manual and a category-only snapshot. Every job
//! succeeds, each job's retention keeps exactly what the merged lifecycle says of that job's own
//! snapshots, and the manual and category-only snapshots are still there at the end.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::Value;

use common::Sophon;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The binary with the Production environment (the default), whatever the machine sets.
fn sophon_ok(sophon: &Sophon, args: &[&str]) -> String {
    let out = sophon
        .cmd()
        .env_remove("ASPNETCORE_ENVIRONMENT")
        .env_remove("DOTNET_ENVIRONMENT")
        .env_remove("SOPHON_HOME")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "sophon {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The merged lifecycle (base: 7 daily, 4 weekly, 12 monthly; Production: 5 daily, 7 yearly),
/// computed independently of the retention code: the newest snapshot of each of the N newest
/// periods that have one.
fn expected_kept(times: &[DateTime<Utc>]) -> BTreeSet<DateTime<Utc>> {
    let mut newest_first = times.to_vec();
    newest_first.sort_by(|a, b| b.cmp(a));
    let mut keep = BTreeSet::new();
    let mut bucket = |key: &dyn Fn(&DateTime<Utc>) -> (i32, u32), n: usize| {
        let mut seen = HashSet::new();
        for t in &newest_first {
            if seen.len() == n && !seen.contains(&key(t)) {
                break;
            }
            if seen.insert(key(t)) {
                keep.insert(*t);
            }
        }
    };
    bucket(&|t| (t.year(), t.ordinal()), 5);
    bucket(&|t| (t.iso_week().year(), t.iso_week().week()), 4);
    bucket(&|t| (t.year(), t.month()), 12);
    bucket(&|t| (t.year(), 0), 7);
    keep
}

#[test]
fn a_month_of_every_tenant_s_nightly_jobs_keeps_manual_and_category_only_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let sophon = Sophon::new(t.path());
    let home = t.path().join("home");
    sophon_ok(&sophon, &["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    let repo = home.join("backups/repository");
    // Cheap key derivation; the jobs find the repository where the gateway's backups go.
    sophon.init(&repo);

    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let tenants: Vec<String> = {
        let mut st = db.prepare("SELECT id FROM tenants ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert!(tenants.len() >= 3, "{tenants:?}");
    // Only the backup jobs run here: the demo's other jobs are the gateway's (agent, workflow) or
    // custom commands this test is not about (issue 11 finding 10 is fixed elsewhere).
    db.execute("UPDATE cron_jobs SET enabled = (name = 'nightly-backup')", []).unwrap();
    db.execute("UPDATE cron_jobs SET created_at = '2029-12-31T12:00:00Z'", []).unwrap();
    let jobs: i64 =
        db.query_row("SELECT count(*) FROM cron_jobs WHERE enabled AND action = 'backup'", [], |r| r.get(0)).unwrap();
    assert_eq!(jobs as usize, tenants.len(), "one nightly-backup job per tenant");

    // A Production override of one lifecycle key: the others stay the base file's.
    let production = home.join("config/appsettings.Production.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&production).unwrap()).unwrap();
    v["Sophon"]["Backups"]["Default"]["Lifecycle"] = serde_json::json!({ "KeepDaily": 5, "KeepYearly": 7 });
    std::fs::write(&production, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    // Taken by hand before the month: a full snapshot and a category-only one.
    sophon_ok(&sophon, &["backup", "create", "--home", s(&home), "--time", "2030-01-01T01:00:00Z", "--quiet"]);
    sophon_ok(
        &sophon,
        &[
            "backup",
            "create",
            "--home",
            s(&home),
            "--categories",
            "memory,workflows",
            "--time",
            "2030-01-01T02:00:00Z",
            "--quiet",
        ],
    );

    let mut nights = Vec::new();
    for day in 1..=31 {
        let now = Utc.with_ymd_and_hms(2030, 1, day, 3, 0, 0).unwrap();
        nights.push(now);
        if day == 10 || day == 20 {
            // Used: records change in two tenants between the nights.
            for tenant in &tenants[1..3] {
                db.execute(
                    "UPDATE agents SET name = name || ' v' || ?2 WHERE tenant_id = ?1",
                    rusqlite::params![tenant, day],
                )
                .unwrap();
            }
        }
        let now_s = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let out = sophon_ok(&sophon, &["cron", "run-due", "--home", s(&home), "--now", &now_s, "--json"]);
        let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let finished: Vec<&Value> = events.iter().filter(|e| e["event"] == "finished").collect();
        assert_eq!(finished.len(), tenants.len(), "night {day}: {out}");
        assert!(finished.iter().all(|e| e["status"] == "ok"), "night {day}: {out}");
    }

    let list: Value =
        serde_json::from_str(&sophon_ok(&sophon, &["backup", "list", "--repo", s(&repo), "--json"])).unwrap();
    let snaps = list.as_array().unwrap();
    // The manual and the category-only snapshots are still there.
    let by_hand: Vec<(&str, &str)> = snaps
        .iter()
        .filter(|v| v["tags"].as_array().unwrap().is_empty())
        .map(|v| (v["time"].as_str().unwrap(), v["paths"][0].as_str().unwrap()))
        .collect();
    assert_eq!(by_hand.len(), 2, "{by_hand:?}");
    assert!(by_hand[0].0.starts_with("2030-01-01T01:00:00") && !by_hand[0].1.contains("?categories="), "{by_hand:?}");
    assert!(by_hand[1].0.starts_with("2030-01-01T02:00:00"), "{by_hand:?}");
    assert!(by_hand[1].1.ends_with("?categories=memory,workflows"), "{by_hand:?}");

    // Each job kept what the merged lifecycle keeps of its own 31 nights.
    let mut by_job: BTreeMap<String, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
    for v in snaps {
        let Some(tag) = v["tags"].as_array().unwrap().iter().find_map(|t| t.as_str()?.strip_prefix("cron:")) else {
            continue;
        };
        let time = DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap().with_timezone(&Utc);
        by_job.entry(tag.to_string()).or_default().insert(time);
    }
    let want = expected_kept(&nights);
    // Spelled out: Jan 27–31 (daily; 31 also monthly and yearly), 13, 20, 27 (weekly).
    assert_eq!(want.iter().map(|t| t.day()).collect::<Vec<_>>(), [13, 20, 27, 28, 29, 30, 31]);
    let want_jobs: BTreeSet<String> = tenants.iter().map(|t| format!("{t}/nightly-backup")).collect();
    assert_eq!(by_job.keys().cloned().collect::<BTreeSet<_>>(), want_jobs);
    for (job, kept) in &by_job {
        assert_eq!(kept, &want, "{job}");
    }
}
