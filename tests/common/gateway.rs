//! Gateway helpers for the integration tests: the records of a home, its stats, a hash of every file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::Sophon;

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every row of every record table, keyed by table and primary key, values as text.
pub fn records(home: &Path) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let db = rusqlite::Connection::open(home.join("gateway.db")).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'documents_fts%' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'sophon_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let pk: Vec<String> = db
            .prepare(&format!("PRAGMA table_info({t})"))
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, i64>(5)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(k, _)| *k > 0)
            .map(|(_, n)| n)
            .collect();
        let mut st = db.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let cols: Vec<String> = st.column_names().map(str::to_string).collect();
        let mut q = st.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let mut row = BTreeMap::new();
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i).unwrap();
                row.insert(c.clone(), format!("{v:?}"));
            }
            let key = pk.iter().map(|c| row[c].clone()).collect::<Vec<_>>().join("|");
            out.insert((t.clone(), key), row);
        }
    }
    out
}

pub fn stats(sophon: &Sophon, home: &Path) -> Value {
    serde_json::from_str(&sophon.ok(&["gateway", "stats", "--home", s(home), "--json"])).unwrap()
}

pub fn record_counts(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["categories"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| (k.clone(), (c["records"].as_u64().unwrap(), c["rows"].as_u64().unwrap())))
        .collect()
}

/// SHA-256 of every file below `dir`, by path: equal before and after means no byte changed.
pub fn hash_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                let b = if ft.is_symlink() {
                    let target = std::fs::read_link(e.path()).unwrap();
                    format!("symlink to {}", target.display()).into_bytes()
                } else {
                    std::fs::read(e.path()).unwrap()
                };
                out.insert(
                    e.path().display().to_string(),
                    hex::encode(ring::digest::digest(&ring::digest::SHA256, &b)),
                );
            }
        }
    }
    out
}
