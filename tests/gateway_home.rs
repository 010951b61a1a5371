//! The gateway's data home through the real binary: `sophon gateway init [--demo]` and
//! `sophon gateway stats` (format-spec/gateway.md).

mod common;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// The backup categories of the product page, in its order.
const CATEGORIES: [&str; 19] = [
    "users",
    "agents",
    "workflows",
    "memory",
    "documents",
    "cron",
    "webhooks",
    "connections",
    "channels",
    "skills",
    "mcp",
    "nodes",
    "discussions",
    "insights",
    "tasks",
    "approvals",
    "audit",
    "license",
    "config",
];

fn sophon() -> Command {
    let mut c = Command::cargo_bin("sophon").unwrap();
    c.env_remove("SOPHON_HOME");
    c
}

fn run(args: &[&str]) -> Output {
    sophon().args(args).output().unwrap()
}

fn expect(code: i32, args: &[&str]) -> Output {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "sophon {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn demo(home: &Path, seed: u64) -> Value {
    json_of(&expect(
        0,
        &["gateway", "init", "--home", s(home), "--demo", "--scale", "small", "--seed", &seed.to_string(), "--json"],
    ))
}

/// A canonical digest of every record of `gateway.db`: each table (the FTS index excepted, it is
/// derived) in name order, its rows ordered by every column, each value tagged with its type.
fn records_digest(home: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(home.join("gateway.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'documents_fts%' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert!(tables.len() >= 20, "{tables:?}");
    let mut h = blake3::Hasher::new();
    for t in &tables {
        let n: usize = conn.prepare(&format!("SELECT * FROM {t} LIMIT 0")).unwrap().column_count();
        let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t} ORDER BY {}", order.join(", "))).unwrap();
        h.update(format!("table {t} {n}\n").as_bytes());
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                use rusqlite::types::ValueRef;
                match row.get_ref(i).unwrap() {
                    ValueRef::Null => h.update(b"N"),
                    ValueRef::Integer(v) => h.update(b"I").update(&v.to_le_bytes()),
                    ValueRef::Real(v) => h.update(b"R").update(&v.to_le_bytes()),
                    ValueRef::Text(v) => h.update(b"T").update(&(v.len() as u64).to_le_bytes()).update(v),
                    ValueRef::Blob(v) => h.update(b"B").update(&(v.len() as u64).to_le_bytes()).update(v),
                };
            }
            h.update(b"\n");
        }
    }
    h.finalize().to_hex().to_string()
}

/// A digest of every file of the home but the database: relative paths and contents.
fn files_digest(home: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with("gateway.db") {
                files.push(p.strip_prefix(home).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes()).update(b"\0");
        h.update(blake3::hash(&std::fs::read(home.join(&f)).unwrap()).as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn stats(home: &Path) -> Value {
    json_of(&expect(0, &["gateway", "stats", "--home", s(home), "--json"]))
}

#[test]
fn small_demo_has_the_product_pages_counts_and_fills_every_category() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let init = demo(&home, 1);
    assert_eq!(init["demo"]["rows"]["users"], 42);

    let st = stats(&home);
    let cats = &st["categories"];
    assert_eq!(cats["users"]["records"], 42);
    assert_eq!(cats["agents"]["records"], 5);
    assert_eq!(cats["workflows"]["records"], 12);
    assert_eq!(cats["memory"]["records"], 8471);
    assert_eq!(cats["documents"]["records"], 189);
    assert_eq!(cats["documents"]["files"], 189);
    assert_eq!(cats.as_object().unwrap().len(), CATEGORIES.len());
    for c in CATEGORIES {
        assert!(cats[c]["records"].as_u64().unwrap() > 0, "category {c} is empty: {}", cats[c]);
        assert!(cats[c]["bytes"].as_u64().unwrap() > 0, "category {c} has no bytes: {}", cats[c]);
    }
    // History is there: workflow versions, cron runs, an audit log of thousands of rows, ~30 days of logs.
    assert!(cats["workflows"]["rows"].as_u64().unwrap() >= 12 * 3, "{}", cats["workflows"]);
    assert!(cats["cron"]["rows"].as_u64().unwrap() >= 100, "{}", cats["cron"]);
    assert!(cats["audit"]["records"].as_u64().unwrap() >= 2000);
    assert!(cats["memory"]["files"].as_u64().unwrap() >= 3 * 28);
    let doc_bytes = init["demo"]["document_bytes"].as_u64().unwrap();
    assert!(doc_bytes > 2 << 20 && doc_bytes < 40 << 20, "{doc_bytes}");
    assert!(st["unassigned"].as_object().unwrap().is_empty(), "{}", st["unassigned"]);

    let tenants = st["tenants"].as_array().unwrap();
    assert!(tenants.len() >= 3);
    for tenant in tenants {
        for (c, count) in tenant["categories"].as_object().unwrap() {
            assert!(count["records"].as_u64().unwrap() > 0, "tenant {} has no {c}", tenant["id"]);
        }
    }
    // The per-tenant figures add up to the totals of the tenant-scoped categories.
    for c in ["users", "memory", "documents", "audit"] {
        let sum: u64 = tenants.iter().map(|t| t["categories"][c]["records"].as_u64().unwrap()).sum();
        assert_eq!(Some(sum), cats[c]["records"].as_u64(), "{c}");
    }

    // The readable table names every category and every tenant.
    let text = String::from_utf8(expect(0, &["gateway", "stats", "--home", s(&home)]).stdout).unwrap();
    for c in CATEGORIES {
        assert!(text.contains(c), "{c} missing from:\n{text}");
    }
    assert!(text.contains("8,471"), "{text}");
    for tenant in tenants {
        assert!(text.contains(tenant["id"].as_str().unwrap()), "{text}");
    }
}

#[test]
fn demo_plants_recognisable_secrets_and_a_backup_config() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    demo(&home, 3);
    let conn = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM webhooks WHERE signing_secret NOT LIKE 'whsec_%'"), 0);
    assert_eq!(count("SELECT count(*) FROM nodes WHERE pairing_secret NOT LIKE 'snp_%'"), 0);
    assert_eq!(count("SELECT count(*) FROM connections WHERE auth_token IS NULL"), 0);
    assert!(count("SELECT count(*) FROM channels WHERE config LIKE '%xoxb-%'") >= 3);
    assert!(count("SELECT count(*) FROM users WHERE totp_secret IS NOT NULL") > 0);
    assert_eq!(count("SELECT count(*) FROM users WHERE password_hash NOT LIKE '$%'"), 0);
    assert!(count("SELECT count(*) FROM agents WHERE config LIKE '%\"api_key\":\"sk-%'") > 0);
    assert!(count("SELECT count(*) FROM cron_jobs WHERE name = 'nightly-backup'") >= 3);
    // The FTS index answers and can be rebuilt from documents.extracted_text.
    let hits = count("SELECT count(*) FROM documents_fts WHERE documents_fts MATCH 'invoice'");
    assert!(hits > 0);
    conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('rebuild')", []).unwrap();
    assert_eq!(count("SELECT count(*) FROM documents_fts WHERE documents_fts MATCH 'invoice'"), hits);

    let read = |rel: &str| std::fs::read_to_string(home.join(rel)).unwrap();
    let mcp = read("config/mcp.json");
    assert!(mcp.contains("ghp_") && mcp.contains("AKIA") && mcp.contains("xoxb-"), "{mcp}");
    assert!(read("config/mcp-server.json").contains("sk-sophon-"));
    let settings: Value = serde_json::from_str(&read("config/appsettings.json")).unwrap();
    assert!(settings["ConnectionStrings"]["Analytics"].as_str().unwrap().contains("Password="));
    let lifecycle = &settings["Sophon"]["Backups"]["Default"]["Lifecycle"];
    assert_eq!(
        (lifecycle["KeepDaily"].as_u64(), lifecycle["KeepWeekly"].as_u64(), lifecycle["KeepMonthly"].as_u64()),
        (Some(7), Some(4), Some(12))
    );
    assert!(read("config/appsettings.Production.json").contains("Password="));
    assert!(read("license.key").starts_with("SPHN1."));
    let agent_dir = std::fs::read_dir(home.join("agents")).unwrap().next().unwrap().unwrap().path();
    for f in ["SOUL.md", "BOOT.md", "HEARTBEAT.md", "TOOLS.md", "AGENTS.md", "config.json"] {
        assert!(agent_dir.join(f).is_file(), "{} has no {f}", agent_dir.display());
    }
}

#[test]
fn same_seed_gives_the_same_gateway_and_another_seed_a_different_one() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    demo(&a, 7);
    demo(&b, 7);
    demo(&c, 8);
    assert_eq!(records_digest(&a), records_digest(&b));
    assert_eq!(files_digest(&a), files_digest(&b));
    assert_ne!(records_digest(&a), records_digest(&c));
    assert_ne!(files_digest(&a), files_digest(&c));
    // Same counts whatever the seed.
    let (sa, sc) = (stats(&a), stats(&c));
    for cat in ["users", "agents", "workflows", "memory", "documents"] {
        assert_eq!(sa["categories"][cat]["records"], sc["categories"][cat]["records"], "{cat}");
    }
}

#[test]
fn init_refuses_a_non_empty_folder() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    common::write(&home.join("keep.txt"), b"precious");
    for args in [vec!["gateway", "init", "--home", s(&home)], vec!["gateway", "init", "--home", s(&home), "--demo"]] {
        let out = expect(1, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not empty"), "{err}");
    }
    assert_eq!(std::fs::read(home.join("keep.txt")).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 1);

    // A home that exists is not empty either.
    let other = t.path().join("other");
    expect(0, &["gateway", "init", "--home", s(&other)]);
    expect(1, &["gateway", "init", "--home", s(&other), "--demo"]);
}

#[test]
fn stats_needs_an_existing_home() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let out = expect(1, &["gateway", "stats", "--home", s(&missing)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist") && err.contains(s(&missing)), "{err}");

    let out = expect(1, &["gateway", "stats"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOPHON_HOME"));

    // A folder without gateway.db is not a home.
    let out = expect(1, &["gateway", "stats", "--home", s(t.path())]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a gateway home"));
}

#[test]
fn unknown_schema_version_is_refused_and_named() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    expect(0, &["gateway", "init", "--home", s(&home)]);
    let conn = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let out = expect(1, &["gateway", "stats", "--home", s(&home)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 99") && err.contains("version 2"), "{err}");
}

#[test]
fn empty_home_from_sophon_home_has_the_schema_and_a_default_config() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let out = sophon().env("SOPHON_HOME", &home).args(["gateway", "init", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let conn = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!((version, mode.as_str()), (2, "wal"));
    drop(conn);
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("config/appsettings.json")).unwrap()).unwrap();
    assert_eq!(settings["Sophon"]["Backups"]["Default"]["Lifecycle"]["KeepDaily"], 7);

    let out = sophon().env("SOPHON_HOME", &home).args(["gateway", "stats", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let st = json_of(&out);
    // Nothing but the default tenant and the scheduled `nightly-backup` job that owns it.
    assert_eq!(st["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(st["tenants"][0]["id"], "default");
    assert_eq!(st["total"]["rows"], 1);
    assert_eq!(st["categories"]["cron"]["records"], 1);
    assert_eq!(st["categories"]["config"]["records"], 1);
}

#[test]
fn demo_options_need_demo() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    expect(2, &["gateway", "init", "--home", s(&home), "--scale", "small"]);
    expect(2, &["gateway", "init", "--home", s(&home), "--demo", "--scale", "huge"]);
    assert!(!home.exists());
}
