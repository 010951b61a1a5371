//! Restoring gateway backups: round trip into a fresh gateway, and the restore modes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::gateway::*;
use common::*;

const REDACTED: &str = sophon::gateway::redact::REDACTED;

/// A demo gateway and a repository with one backup of it.
fn setup(t: &Path, extra: &[&str]) -> (Sophon, std::path::PathBuf, std::path::PathBuf) {
    let (home, repo) = (t.join("source"), t.join("repo"));
    let sophon = Sophon::new(t);
    sophon.ok(&["gateway", "init", "--home", s(&home), "--demo", "--scale", "small"]);
    sophon.init(&repo);
    let mut args = vec!["backup", "create", "--home", s(&home), "--repo", s(&repo), "--include-license"];
    args.extend_from_slice(extra);
    sophon.ok(&args);
    (sophon, home, repo)
}

fn restore(sophon: &Sophon, repo: &Path, home: &Path, extra: &[&str]) -> String {
    let mut args = vec!["backup", "restore", "--repo", s(repo), "--snapshot", "latest", "--home", s(home)];
    args.extend_from_slice(extra);
    sophon.ok(&args)
}

#[test]
fn round_trip_into_a_fresh_gateway_equals_the_source_but_for_redacted_fields() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source, repo) = setup(t.path(), &[]);
    let fresh = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    let out = restore(&sophon, &repo, &fresh, &["--mode", "replace", "--yes"]);
    assert!(out.contains("connections to re-authenticate"), "{out}");
    assert!(out.contains("Sophon Nodes to re-pair"), "{out}");

    assert_eq!(record_counts(&stats(&sophon, &source)), record_counts(&stats(&sophon, &fresh)));
    let (a, b) = (records(&source), records(&fresh));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same records");
    let mut redacted = 0;
    for (key, row) in &a {
        for (col, v) in row {
            let w = &b[key][col];
            if v != w {
                assert!(w.contains(REDACTED), "{key:?}.{col}: {v} became {w}, which is not a redaction");
                redacted += 1;
            }
        }
    }
    assert!(redacted > 20, "webhook, connection, channel and node secrets are marked for re-configuration");
    // 2FA secrets come back (sealed with the passphrase), and so do the documents' bytes.
    let totp = |h: &Path| -> i64 {
        rusqlite::Connection::open(h.join("gateway.db"))
            .unwrap()
            .query_row("SELECT COUNT(totp_secret) FROM users", [], |r| r.get(0))
            .unwrap()
    };
    assert!(totp(&source) > 0);
    assert_eq!(totp(&source), totp(&fresh));
    for e in std::fs::read_dir(source.join("documents/files")).unwrap() {
        let e = e.unwrap();
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(fresh.join("documents/files").join(e.file_name())).unwrap()
        );
    }
    // The full-text index is rebuilt.
    let fts = |h: &Path| -> i64 {
        rusqlite::Connection::open(h.join("gateway.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM documents_fts WHERE documents_fts MATCH 'the'", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(fts(&source), fts(&fresh));
}

#[test]
fn additive_restore_quarantines_exactly_the_changed_records() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, repo) = setup(t.path(), &[]);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let changed: Vec<String> = db
        .prepare("SELECT id FROM users ORDER BY id LIMIT 3")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &changed {
        db.execute("UPDATE users SET display_name = display_name || ' (edited)' WHERE id = ?1", [id]).unwrap();
    }
    let gone: String = db.query_row("SELECT id FROM memory_entries ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    db.execute("DELETE FROM memory_entries WHERE id = ?1", [&gone]).unwrap();
    drop(db);

    let others = |r: &BTreeMap<(String, String), BTreeMap<String, String>>| {
        r.iter()
            .filter(|((t, _), _)| t != "users" && t != "memory_entries")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    let untouched_before = others(&records(&home));
    let files_before: Vec<_> = std::fs::read_dir(home.join("agents")).unwrap().map(|e| e.unwrap().path()).collect();
    let out = restore(&sophon, &repo, &home, &["--only", "users,memory"]);
    assert_eq!(others(&records(&home)), untouched_before, "--only touches no other category");
    let files_after: Vec<_> = std::fs::read_dir(home.join("agents")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files_before, files_after);
    assert!(out.contains("users: 42 records: 0 added, 39 unchanged, 3 quarantined"), "{out}");
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let edited: i64 =
        db.query_row("SELECT COUNT(*) FROM users WHERE display_name LIKE '% (edited)'", [], |r| r.get(0)).unwrap();
    assert_eq!(edited, 3, "the present versions are kept");
    let back: i64 = db.query_row("SELECT COUNT(*) FROM memory_entries WHERE id = ?1", [&gone], |r| r.get(0)).unwrap();
    assert_eq!(back, 1, "an absent record is added");
    let quarantine = std::fs::read_dir(home.join("quarantine")).unwrap().next().unwrap().unwrap().path();
    let mut q: Vec<String> = std::fs::read_dir(quarantine.join("users/users"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap().trim_end_matches(".json").to_string())
        .collect();
    q.sort();
    assert_eq!(q, changed, "exactly the changed records are quarantined");
    assert!(!quarantine.join("memory").exists());
}

#[test]
fn replace_restores_one_tenant_and_leaves_the_others() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, repo) = setup(t.path(), &["--tenant", "acme"]);
    let before = records(&home);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute("UPDATE tasks SET title = 'changed' WHERE tenant_id = 'acme'", []).unwrap();
    db.execute("UPDATE tasks SET title = 'changed too' WHERE tenant_id = 'globex'", []).unwrap();
    db.execute("DELETE FROM insights WHERE tenant_id = 'acme'", []).unwrap();
    drop(db);

    // Not at a terminal and no --yes: refused as a usage error (issue 11, finding 16), nothing changed.
    let refused = sophon.run(&[
        "backup",
        "restore",
        "--repo",
        s(&repo),
        "--snapshot",
        "latest",
        "--home",
        s(&home),
        "--mode",
        "replace",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));

    restore(&sophon, &repo, &home, &["--mode", "replace", "--yes", "--only", "tasks,insights"]);
    let after = records(&home);
    for ((table, id), row) in &before {
        if table != "tasks" && table != "task_events" && table != "insights" {
            continue;
        }
        let tenant = &row["tenant_id"];
        if tenant.contains("acme") {
            assert_eq!(after.get(&(table.clone(), id.clone())), Some(row), "acme's {table} {id} is the backup's again");
        }
    }
    let globex_changed = after
        .iter()
        .filter(|((t, _), r)| t == "tasks" && r["tenant_id"].contains("globex") && r["title"].contains("changed too"))
        .count();
    assert!(globex_changed > 0, "globex is untouched by a restore of acme");
}

#[test]
fn into_tenant_rehomes_every_record() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, _home, repo) = setup(t.path(), &["--tenant", "globex"]);
    let fresh = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&fresh)]);
    restore(&sophon, &repo, &fresh, &["--into-tenant", "newco", "--only", "users,agents,memory,workflows"]);
    let db = rusqlite::Connection::open(fresh.join("gateway.db")).unwrap();
    for table in ["users", "agents", "memory_entries", "workflows", "workflow_versions"] {
        let (all, newco): (i64, i64) = db
            .query_row(&format!("SELECT COUNT(*), SUM(tenant_id = 'newco') FROM {table}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(all > 0, "{table} restored");
        assert_eq!(all, newco, "every {table} row is in tenant newco");
    }
    let tenants: i64 = db.query_row("SELECT COUNT(*) FROM tenants WHERE id = 'newco'", [], |r| r.get(0)).unwrap();
    assert_eq!(tenants, 1);
}

#[test]
fn dry_run_prints_the_plan_and_changes_no_byte() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, repo) = setup(t.path(), &[]);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute("UPDATE users SET display_name = 'x' WHERE id IN (SELECT id FROM users LIMIT 3)", []).unwrap();
    drop(db);
    let target = t.path().join("fresh");
    sophon.ok(&["gateway", "init", "--home", s(&target)]);
    for home in [&home, &target] {
        let before = hash_tree(home);
        let out = restore(&sophon, &repo, home, &["--dry-run"]);
        assert!(out.starts_with("Would restore: "), "{out}");
        assert!(out.contains("memory: 8,471 records"), "{out}");
        assert!(out.contains("documents: 189 records, 189 files"), "{out}");
        assert!(out.contains("Total size:"), "{out}");
        assert_eq!(before, hash_tree(home), "a dry run changes no byte of {}", home.display());
    }
    let out = restore(&sophon, &repo, &home, &["--dry-run"]);
    assert!(out.contains("users: 42 records: 0 added, 39 unchanged, 3 quarantined"), "{out}");
}

#[test]
fn a_restore_killed_at_any_moment_leaves_the_gateway_untouched_or_fully_restored() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, _source, repo) = setup(t.path(), &[]);
    // The reference: a restore that ran to the end.
    let reference = t.path().join("reference");
    sophon.ok(&["gateway", "init", "--home", s(&reference)]);
    let started = std::time::Instant::now();
    restore(&sophon, &repo, &reference, &["--mode", "replace", "--yes"]);
    let full = started.elapsed();
    let restored = records(&reference);
    let file_list = |h: &Path| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![h.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(h).unwrap().display().to_string();
                if rel.starts_with("gateway.db") || rel.starts_with("quarantine") {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    };
    let reference_files = file_list(&reference);

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let delays = pseudo_random(8 * 12, seed);
    let (mut untouched, mut complete) = (0, 0);
    for round in 0..12 {
        let home = t.path().join(format!("victim-{round}"));
        sophon.ok(&["gateway", "init", "--home", s(&home)]);
        let empty = records(&home);
        let empty_files = file_list(&home);
        let frac = u64::from_le_bytes(delays[round * 8..round * 8 + 8].try_into().unwrap()) % 1000;
        let mut child = sophon
            .std_cmd()
            .args([
                "backup",
                "restore",
                "--repo",
                s(&repo),
                "--snapshot",
                "latest",
                "--home",
                s(&home),
                "--mode",
                "replace",
                "--yes",
                "-q",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Start-up (key derivation) takes the first fifth; spread the kills over the work itself.
        std::thread::sleep(full.mul_f64(0.2 + 0.9 * frac as f64 / 1000.0));
        let _ = child.kill();
        let _ = child.wait();
        sophon.ok(&["gateway", "recover", "--home", s(&home)]);
        let now = records(&home);
        let files = file_list(&home);
        if now == empty && files == empty_files {
            untouched += 1;
        } else {
            assert_eq!(now.len(), restored.len(), "round {round} (seed {seed}): records half restored");
            assert!(now == restored, "round {round} (seed {seed}): records differ from a complete restore");
            assert_eq!(files, reference_files, "round {round} (seed {seed}): files half restored");
            complete += 1;
        }
        assert!(!home.join(".sophon-restore").exists(), "no stage is left behind");
    }
    eprintln!("killed restores: {untouched} untouched, {complete} complete (seed {seed})");
}

/// A copy of a home (no process has it open, so copying its files copies a consistent database).
fn copy_home(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_home(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Change a home after its backup: records changed, added and removed in two tenants (acme and
/// globex), an agent file and a document changed.
fn modify(home: &Path) {
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    db.execute_batch(
        "UPDATE users SET display_name = display_name || ' (edited)'
           WHERE id IN (SELECT id FROM users WHERE tenant_id = 'acme' ORDER BY id LIMIT 2);
         DELETE FROM memory_entries WHERE id = (SELECT id FROM memory_entries WHERE tenant_id = 'acme' ORDER BY id LIMIT 1);
         INSERT INTO memory_entries (id, tenant_id, agent_id, kind, content, created_at)
           SELECT 'after-' || id, tenant_id, agent_id, kind, 'learned after the backup', created_at
           FROM memory_entries WHERE tenant_id = 'acme' ORDER BY id LIMIT 3;
         UPDATE tasks SET title = 'changed' WHERE id = (SELECT id FROM tasks WHERE tenant_id = 'globex' ORDER BY id LIMIT 1);
         DELETE FROM insights WHERE id = (SELECT id FROM insights WHERE tenant_id = 'globex' ORDER BY id LIMIT 1);",
    )
    .unwrap();
    drop(db);
    let agent =
        std::fs::read_dir(home.join("agents")).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    let file = std::fs::read_dir(&agent).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_file()).unwrap();
    let mut text = std::fs::read(&file).unwrap();
    text.extend_from_slice(b"\nedited after the backup\n");
    std::fs::write(&file, text).unwrap();
    let doc = std::fs::read_dir(home.join("documents/files")).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&doc).unwrap();
    bytes[0] ^= 0xff; // same size, other content
    std::fs::write(&doc, bytes).unwrap();
}

/// A restore's `--json` report without what differs between two runs by design.
fn counts(report: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let m = v.as_object_mut().unwrap();
    for volatile in ["restore_id", "dry_run", "quarantine"] {
        m.remove(volatile);
    }
    v
}

#[test]
fn the_dry_run_counts_are_the_executed_restore_counts() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, source, repo) = setup(t.path(), &[]);
    // A one-tenant backup for --into-tenant.
    let globex_repo = t.path().join("repo-globex");
    sophon.init(&globex_repo);
    sophon.ok(&["backup", "create", "--home", s(&source), "--repo", s(&globex_repo), "--tenant", "globex"]);
    let modified = t.path().join("modified");
    copy_home(&source, &modified);
    modify(&modified);

    let cases: [(&str, &Path, &[&str]); 4] = [
        ("additive", &repo, &[]),
        ("replace", &repo, &["--mode", "replace", "--yes"]),
        ("only", &repo, &["--only", "users,memory,agents,documents,tasks"]),
        ("into-tenant", &globex_repo, &["--into-tenant", "newco", "--only", "users,agents,memory,workflows"]),
    ];
    for (name, repo, extra) in cases {
        for fresh in [true, false] {
            let home = t.path().join(format!("{name}-{}", if fresh { "fresh" } else { "modified" }));
            if fresh {
                sophon.ok(&["gateway", "init", "--home", s(&home)]);
            } else {
                copy_home(&modified, &home);
            }
            let before = hash_tree(&home);
            let mut dry = extra.to_vec();
            dry.extend(["--dry-run", "--json"]);
            let planned = counts(&restore(&sophon, repo, &home, &dry));
            assert_eq!(before, hash_tree(&home), "{name}: the dry run changed {}", home.display());
            let mut real = extra.to_vec();
            real.push("--json");
            let done = counts(&restore(&sophon, repo, &home, &real));
            assert_eq!(
                planned,
                done,
                "{name} into a {} home: the dry run and the restore disagree",
                if fresh { "fresh" } else { "modified" }
            );
            let conflicts: u64 =
                done["categories"].as_array().unwrap().iter().map(|c| c["quarantined"].as_u64().unwrap()).sum();
            if name == "replace" {
                let wiped: u64 = done["tables"].as_array().unwrap().iter().map(|t| t["wiped"].as_u64().unwrap()).sum();
                assert!(
                    wiped > 0,
                    "replace deletes the present records first (a fresh home's nightly job too): {done}"
                );
            }
            if !fresh && name != "into-tenant" && name != "replace" {
                assert!(conflicts >= 4, "{name}: the edited users, agent file and document conflict: {done}");
            }
        }
    }
}

/// A restore the database refuses (here a trigger of the home that refuses new memory entries): the
/// dry run must say so, as the restore does, and neither changes anything.
#[test]
fn a_dry_run_of_a_restore_that_would_fail_fails_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (sophon, home, repo) = setup(t.path(), &[]);
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let entry: String = db.query_row("SELECT id FROM memory_entries ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    db.execute_batch(&format!(
        "DELETE FROM memory_entries WHERE id = '{entry}';
         CREATE TRIGGER no_new_memory BEFORE INSERT ON memory_entries BEGIN SELECT RAISE(ABORT, 'memory is frozen'); END;"
    ))
    .unwrap();
    drop(db);
    let before = hash_tree(&home);
    let records_before = records(&home);

    let args = ["backup", "restore", "--repo", s(&repo), "--snapshot", "latest", "--home", s(&home)];
    // The dry run's scratch copy of the database goes to the temporary folder, and away again.
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let dry = sophon.cmd().env("TMPDIR", &tmp).args([&args[..], &["--dry-run"]].concat()).output().unwrap();
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(1), "the dry run fails: {stderr}\n{}", String::from_utf8_lossy(&dry.stdout));
    assert!(stderr.contains("would fail") && stderr.contains("memory_entries") && stderr.contains(&entry), "{stderr}");
    assert!(stderr.contains("memory is frozen"), "{stderr}");
    assert_eq!(before, hash_tree(&home), "a failing dry run changes no byte of the home");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the scratch copy is removed");

    // The restore itself fails the same way, and leaves the records as they were.
    let real = sophon.run(&args);
    let real_err = String::from_utf8_lossy(&real.stderr);
    assert_eq!(real.status.code(), Some(1), "{real_err}");
    assert!(real_err.contains("memory_entries") && real_err.contains("memory is frozen"), "{real_err}");
    assert!(!real_err.contains("would fail"), "{real_err}");
    assert_eq!(records_before, records(&home), "a failed restore changes no record");
    assert!(!home.join(".sophon-restore").exists(), "the stage of a failed restore is gone");
}
