//! Restoring gateway backups into a gateway that has been used (issue 11): a job replaced under its
//! name, a skill reinstalled, records changed in two tenants, secrets pasted into a command and an
//! agent's notes. Every restore the product page promises finishes, and its report is true.

mod common;

use std::path::{Path, PathBuf};

use common::gateway::*;
use common::*;
use serde_json::Value;

/// A demo gateway, a repository, and a backup of the demo as it was first (`before`).
struct Used {
    sophon: Sophon,
    home: PathBuf,
    repo: PathBuf,
    /// The id of acme's `memory-compaction` job before it was replaced.
    old_job: String,
    /// The id of the skill reinstalled under the same name.
    old_skill: String,
}

fn db(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("gateway.db")).unwrap()
}

fn one(home: &Path, sql: &str) -> String {
    db(home).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn count(home: &Path, sql: &str) -> i64 {
    db(home).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The references of a home's records that name no record.
fn dangling(home: &Path) -> usize {
    let conn = db(home);
    let mut st = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let rows = st.query_map([], |_| Ok(())).unwrap();
    rows.count()
}

/// The demo, backed up, then used: acme's `memory-compaction` job replaced by name through the CLI
/// (`cron rm` + `cron add`), a skill of globex reinstalled under its name (a new id, its agents
/// linked again), users of acme and tasks of globex edited, a cron command and an agent's notes
/// holding an API key.
fn used(t: &Path) -> Used {
    let (home, repo) = (t.join("home"), t.join("repo"));
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init(&repo);
    sophon.ok(&["backup", "create", "--home", s(&home), "--repo", s(&repo), "--tag", "before"]);

    let old_job = one(&home, "SELECT id FROM cron_jobs WHERE tenant_id = 'acme' AND name = 'memory-compaction'");
    assert!(count(&home, &format!("SELECT COUNT(*) FROM cron_runs WHERE job_id = '{old_job}'")) > 0);
    sophon.ok(&["cron", "rm", "--home", s(&home), "--tenant", "acme", "--name", "memory-compaction"]);
    sophon.ok(&[
        "cron",
        "add",
        "--home",
        s(&home),
        "--tenant",
        "acme",
        "--name",
        "memory-compaction",
        "--schedule",
        "45 2 * * *",
        "--action",
        "custom",
        "--command",
        "curl -H 'Authorization: Bearer sk-proj-abcdefghijklmnopqrstuvwxyz012345' https://compact.example",
    ]);
    let old_skill = one(
        &home,
        "SELECT id FROM skills WHERE tenant_id = 'globex' AND id IN (SELECT skill_id FROM agent_skills) ORDER BY id LIMIT 1",
    );
    db(&home)
        .execute_batch(&format!(
            "CREATE TEMP TABLE s AS SELECT * FROM skills WHERE id = '{old_skill}';
             CREATE TEMP TABLE a AS SELECT * FROM agent_skills WHERE skill_id = '{old_skill}';
             DELETE FROM agent_skills WHERE skill_id = '{old_skill}';
             DELETE FROM skills WHERE id = '{old_skill}';
             UPDATE s SET id = id || '-reinstalled', version = '9.9.9';
             UPDATE a SET skill_id = skill_id || '-reinstalled';
             INSERT INTO skills SELECT * FROM s;
             INSERT INTO agent_skills SELECT * FROM a;
             UPDATE users SET display_name = display_name || ' (edited)'
               WHERE id IN (SELECT id FROM users WHERE tenant_id = 'acme' ORDER BY id LIMIT 2);
             UPDATE tasks SET title = 'changed'
               WHERE id IN (SELECT id FROM tasks WHERE tenant_id = 'globex' ORDER BY id LIMIT 3);"
        ))
        .unwrap();
    let agent =
        std::fs::read_dir(home.join("agents")).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    let notes = agent.join("NOTES.md");
    std::fs::write(&notes, "# Notes\nThe billing API key is sk-proj-abcdefghijklmnopqrstuvwxyz012345 for now.\n")
        .unwrap();
    Used { sophon, home, repo, old_job, old_skill }
}

fn restore_json(sophon: &Sophon, repo: &Path, snapshot: &str, home: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["backup", "restore", "--repo", s(repo), "--snapshot", snapshot, "--home", s(home), "--json"];
    args.extend_from_slice(extra);
    let out = sophon.ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn table<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tables"].as_array().unwrap().iter().find(|t| t["table"] == name).unwrap_or_else(|| panic!("{name}"))
}

fn total(report: &Value, what: &str) -> u64 {
    report["categories"].as_array().unwrap().iter().map(|c| c[what].as_u64().unwrap()).sum()
}

fn snapshot_tagged(sophon: &Sophon, repo: &Path, tag: &str) -> String {
    let list: Value = serde_json::from_str(&sophon.ok(&["backup", "list", "--repo", s(repo), "--json"])).unwrap();
    let snap = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == tag)))
        .unwrap();
    snap["id"].as_str().unwrap().to_string()
}

/// Finding 3: the older backup's job (and reinstalled skill) clash by name with the ones now in the
/// home; they are quarantined together with the runs (and agent links) that refer to them, the
/// restore finishes, and the dry run says the same.
#[test]
fn additive_restore_after_a_job_and_a_skill_were_replaced_by_name_quarantines_them_with_their_children() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    let before = snapshot_tagged(&u.sophon, &u.repo, "before");
    let records_before = records(&u.home);

    let dry = restore_json(&u.sophon, &u.repo, &before, &u.home, &["--dry-run"]);
    assert_eq!(records_before, records(&u.home), "the dry run changes nothing");
    let done = restore_json(&u.sophon, &u.repo, &before, &u.home, &[]);
    for r in [&dry, &done] {
        assert_eq!(table(r, "cron_jobs")["quarantined"], 1, "{r}");
        assert!(table(r, "cron_runs")["quarantined"].as_u64().unwrap() > 0, "the old job's runs go with it: {r}");
        assert_eq!(table(r, "cron_runs")["added"], 0, "{r}");
        assert_eq!(table(r, "skills")["quarantined"], 1, "{r}");
        assert!(table(r, "agent_skills")["quarantined"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(table(r, "users")["quarantined"], 2, "{r}");
        assert_eq!(table(r, "tasks")["quarantined"], 3, "{r}");
    }
    assert_eq!(dry["tables"], done["tables"], "the dry run and the restore agree");

    // The home keeps its new job and skill; the old ones are in the quarantine with their children.
    let new_job = one(&u.home, "SELECT id FROM cron_jobs WHERE tenant_id = 'acme' AND name = 'memory-compaction'");
    assert_ne!(new_job, u.old_job);
    assert_eq!(count(&u.home, &format!("SELECT COUNT(*) FROM cron_runs WHERE job_id = '{}'", u.old_job)), 0);
    assert_eq!(count(&u.home, &format!("SELECT COUNT(*) FROM skills WHERE id = '{}'", u.old_skill)), 0);
    let q = PathBuf::from(done["quarantine"].as_str().unwrap());
    assert!(q.join("cron/cron_jobs").join(format!("{}.json", u.old_job)).is_file());
    let runs = std::fs::read_dir(q.join("cron/cron_runs")).unwrap().count() as u64;
    assert_eq!(runs, table(&done, "cron_runs")["quarantined"].as_u64().unwrap());
    assert!(q.join("skills/skills").join(format!("{}.json", u.old_skill)).is_file());
    assert_eq!(dangling(&u.home), 0, "no dangling reference");
}

/// Finding 3, the other way round: the used home's backup restored into a fresh demo, whose job of
/// that name has the old id: the backup's job and its runs are quarantined, the restore finishes.
#[test]
fn the_used_homes_backup_restores_into_a_fresh_demo() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    // The new job has run once.
    db(&u.home)
        .execute_batch(
            "INSERT INTO cron_runs (job_id, tenant_id, started_at, finished_at, status, summary)
               SELECT id, tenant_id, '2030-01-01T02:45:00Z', '2030-01-01T02:45:01Z', 'ok', 'compacted'
               FROM cron_jobs WHERE tenant_id = 'acme' AND name = 'memory-compaction'",
        )
        .unwrap();
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&u.repo), "--tag", "after"]);
    let demo = t.path().join("demo");
    u.sophon.ok(&["gateway", "init", "--home", s(&demo), "--demo", "--scale", "small"]);
    let done = restore_json(&u.sophon, &u.repo, "latest", &demo, &[]);
    assert_eq!(table(&done, "cron_jobs")["quarantined"], 1, "{done}");
    assert_eq!(table(&done, "skills")["quarantined"], 1, "{done}");
    assert!(table(&done, "cron_runs")["quarantined"].as_u64().unwrap() >= 1, "the new job's run goes with it: {done}");
    assert_eq!(dangling(&demo), 0, "no dangling reference");
}

/// Finding 5: a fresh backup of a used gateway restored straight back into it changes nothing and
/// says so: every record unchanged (redacted values, nested in JSON or cut out of a command or a
/// note, are not differences), nothing added, nothing quarantined.
#[test]
fn a_fresh_backup_restored_into_its_own_gateway_is_all_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&u.repo), "--tag", "after"]);
    // The database file itself is written by any restore's (empty) transaction: its records count.
    let files = |home: &Path| {
        let mut t = hash_tree(home);
        t.retain(|p, _| !p.contains("gateway.db"));
        t
    };
    let (files_before, records_before) = (files(&u.home), records(&u.home));
    let done = restore_json(&u.sophon, &u.repo, "latest", &u.home, &[]);
    assert_eq!(total(&done, "quarantined"), 0, "{done}");
    assert_eq!(total(&done, "added"), 0, "{done}");
    assert!(total(&done, "unchanged") > 10_000, "{done}");
    assert!(done["quarantine"].is_null(), "{done}");
    for c in done["categories"].as_array().unwrap() {
        assert_eq!(c["quarantined"], 0, "{c}");
    }
    assert_eq!(records_before, records(&u.home), "no record was written");
    assert!(files_before == files(&u.home), "no file was written");
    assert!(!u.home.join("quarantine").exists());

    // The text report says added / unchanged / quarantined, never "Restored: users: 42".
    let out = u.sophon.ok(&["backup", "restore", "--repo", s(&u.repo), "--snapshot", "latest", "--home", s(&u.home)]);
    assert!(out.contains("0 added,") && out.contains("unchanged, 0 quarantined"), "{out}");
    assert!(out.contains("  users: 42 records: 0 added, 42 unchanged, 0 quarantined"), "{out}");
    assert!(out.contains("  agents: 5 records"), "{out}");
    assert!(out.contains("    cron_runs: 0 added,"), "per table: {out}");
    assert!(!out.contains("Quarantine"), "{out}");
}

/// Finding 4: `--into-tenant` of a backup of several tenants is refused as a usage error naming
/// `--tenant`, into a fresh home and into the source home, and nothing changes; a one-tenant
/// backup restored into its own tenant of the source home is all unchanged.
#[test]
fn into_tenant_of_a_backup_of_several_tenants_is_refused_and_of_one_tenant_is_unchanged_at_home() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&u.repo), "--tag", "after"]);
    let fresh = t.path().join("fresh");
    u.sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    for home in [&fresh, &u.home] {
        let before = hash_tree(home);
        for dry in [true, false] {
            let mut args = vec![
                "backup",
                "restore",
                "--repo",
                s(&u.repo),
                "--snapshot",
                "latest",
                "--home",
                s(home),
                "--into-tenant",
                "acme",
            ];
            if dry {
                args.push("--dry-run");
            }
            let out = u.sophon.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains("--tenant") && err.contains("3 tenants"), "{err}");
            assert!(!err.contains("FOREIGN KEY"), "{err}");
        }
        assert_eq!(before, hash_tree(home), "a refused restore changes nothing");
    }

    let acme_repo = t.path().join("repo-acme");
    u.sophon.init(&acme_repo);
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&acme_repo), "--tenant", "acme"]);
    let done = restore_json(&u.sophon, &acme_repo, "latest", &u.home, &["--into-tenant", "acme"]);
    assert_eq!(total(&done, "quarantined"), 0, "acme's own data is unchanged, not conflicts: {done}");
    assert_eq!(total(&done, "added"), 0, "{done}");
}

/// Finding 12: an archive restored without the passphrase says first that its 2FA secrets need it
/// and how to give it; a chain whose sealed link cannot be opened is "passphrase needed", not damage.
#[test]
fn a_restore_without_the_passphrase_says_2fa_needs_it_and_verify_says_passphrase_needed() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let full = out.join("full.zip");
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&u.repo), "--out", s(&full), "--encrypt"]);
    db(&u.home).execute("UPDATE tasks SET title = 'later' WHERE tenant_id = 'acme'", []).unwrap();
    let inc = out.join("inc.zip");
    u.sophon.ok(&[
        "backup",
        "create",
        "--home",
        s(&u.home),
        "--repo",
        s(&u.repo),
        "--out",
        s(&inc),
        "--incremental",
        "--since-last",
    ]);
    let plain = t.path().join("plain.zip");
    u.sophon.ok(&["backup", "create", "--home", s(&u.home), "--repo", s(&u.repo), "--out", s(&plain)]);

    let fresh = t.path().join("fresh");
    u.sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let run = |args: &[&str]| u.sophon.cmd().env_remove("SOPHON_BACKUP_PASSPHRASE").args(args).output().unwrap();
    let restored = run(&["backup", "restore", "--in", s(&plain), "--home", s(&fresh), "--only", "users"]);
    let text = String::from_utf8_lossy(&restored.stdout);
    assert_eq!(restored.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&restored.stderr));
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("2FA:") && first.contains("passphrase") && first.contains("--passphrase-file"), "{text}");
    assert!(first.contains("24 user(s)"), "{text}");

    let verified = run(&["backup", "verify", "--in", s(&inc)]);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&verified.stdout), String::from_utf8_lossy(&verified.stderr).into_owned());
    assert_eq!(verified.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("passphrase needed") && stderr.contains("full.zip"), "{stderr}");
    assert!(!stdout.contains("DAMAGE"), "{stdout}");
    // With the passphrase the chain is clean.
    let ok = u.sophon.ok(&["backup", "verify", "--in", s(&inc)]);
    assert!(ok.contains("no damage found: 2 archive(s)"), "{ok}");
}

/// Finding 17: "chats", the product page's name, is the discussions category, for backup and
/// restore alike.
#[test]
fn chats_is_the_discussions_category() {
    let t = tempfile::tempdir().unwrap();
    let u = used(t.path());
    let backed = u.sophon.ok(&[
        "backup",
        "create",
        "--home",
        s(&u.home),
        "--repo",
        s(&u.repo),
        "--categories",
        "chats,agents",
        "--tag",
        "chats",
    ]);
    assert!(backed.contains("discussions 36"), "{backed}");
    let fresh = t.path().join("fresh");
    u.sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let done = restore_json(&u.sophon, &u.repo, "latest", &fresh, &["--only", "agents,chats"]);
    assert_eq!(table(&done, "discussions")["added"], 36, "{done}");
    assert_eq!(
        count(&fresh, "SELECT COUNT(*) FROM discussion_messages"),
        count(&u.home, "SELECT COUNT(*) FROM discussion_messages")
    );
}
