//! Reading a gateway home into the product page's backup layout (a [`VirtualDir`]): the records of
//! `gateway.db` read inside one read transaction (so the backup is a state that existed at one
//! instant), the category files beside them, every secret redacted, 2FA secrets sealed under the
//! backup passphrase or left out, then `metadata.json` and `manifest.json`.
//!
//! Documents' raw files are not read here: they go into the tree as real files, so the backup reads
//! them once, in parallel, and reuses unchanged ones from the parent snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use super::category::{Category, NestedFile, TableFile, NESTED_FILES, SECRET_FIELDS, TABLE_FILES};
use super::layout::is_json_column;
use super::redact::{redact_file_text, redact_json, redact_mcp_config, REDACTED};
use super::rowjson::{query_json, ColumnRule};
use super::spool::Spool;
use super::{open_home, GatewayError, GatewayResult, DB_FILE, LICENSE_FILE};
use crate::archive::{VirtualDir, VirtualEntry};

/// Generated files from this size on are spooled to disk rather than kept in memory.
const SPOOL_FROM_BYTES: usize = 1 << 20;

/// Kept under this path for the callers that know it from here.
pub use super::layout::LAYOUT_VERSION;

#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// Categories to include; empty means all.
    pub categories: Vec<Category>,
    /// Only this tenant's records (gateway-wide files are still included); `None` is every tenant.
    pub tenant: Option<String>,
    pub include_license: bool,
    /// Audit rows at or after / before these RFC 3339 times.
    pub audit_since: Option<String>,
    pub audit_until: Option<String>,
    /// Seals `users/2fa-secrets.json.enc`; without it 2FA secrets are left out.
    pub passphrase: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Where the big generated files wait for the backup (default: `spool/` in the cache folder,
    /// on disk, unlike a temporary folder that may live in memory).
    pub spool_dir: Option<PathBuf>,
}

/// The backup tree and what the operator must know about it.
#[derive(Debug)]
pub struct Dump {
    pub root: VirtualDir,
    /// Holds the tree's spooled files; they are removed when the dump is dropped.
    pub spool: Spool,
    pub categories: Vec<Category>,
    /// Every redacted location, `file#/json/pointer`.
    pub redacted: Vec<String>,
    /// Users whose 2FA secret was left out (no passphrase): they must re-enrol after a restore.
    pub reenrol: Vec<String>,
    pub records: BTreeMap<String, u64>,
    pub tier: String,
}

struct Builder {
    root: VirtualDir,
    spool: Spool,
    mtime_ns: i64,
    redacted: Vec<String>,
    /// path → (size, sha256) for the manifest.
    manifest: BTreeMap<String, (u64, String)>,
}

impl Builder {
    fn bytes(&mut self, path: &str, data: Vec<u8>) -> GatewayResult<()> {
        // The tree stays in memory until the backup has read it all: big files wait on disk.
        if data.len() >= SPOOL_FROM_BYTES {
            return self.spooled(path, |out| {
                out.write_all(&data).map_err(|e| GatewayError::Invalid(format!("{path}: writing: {e}")))?;
                Ok(Vec::new())
            });
        }
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data));
        self.manifest.insert(path.to_string(), (data.len() as u64, digest));
        let entry = VirtualEntry::Bytes { data: Arc::new(data), mode: 0o600, mtime_ns: self.mtime_ns };
        self.root.insert(path, entry).map_err(|e| GatewayError::Invalid(e.to_string()))
    }

    /// A JSON document, scanned for secrets first.
    fn json(&mut self, path: &str, mut value: Value) -> GatewayResult<()> {
        redact_json(&mut value, path, &mut self.redacted);
        let mut data = serde_json::to_vec_pretty(&value).map_err(|e| GatewayError::Invalid(e.to_string()))?;
        data.push(b'\n');
        self.bytes(path, data)
    }

    /// JSON Lines, each line scanned for secrets. Rows are independent, so chunks of them are
    /// redacted and serialized on every core (the order of lines is kept).
    fn jsonl(&mut self, path: &str, mut rows: Vec<Value>) -> GatewayResult<()> {
        use rayon::prelude::*;
        const ROWS_PER_TASK: usize = 2048;
        let parts: Vec<GatewayResult<(Vec<u8>, Vec<String>)>> = rows
            .par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut redactor = super::redact::Redactor::default();
                let (mut data, mut redacted) = (Vec::new(), Vec::new());
                for (i, row) in chunk.iter_mut().enumerate() {
                    let line = c * ROWS_PER_TASK + i + 1;
                    redactor.redact_json(row, &format!("{path}:{line}"), &mut redacted);
                    serde_json::to_writer(&mut data, row).map_err(|e| GatewayError::Invalid(e.to_string()))?;
                    data.push(b'\n');
                }
                Ok((data, redacted))
            })
            .collect();
        let mut data = Vec::new();
        for part in parts {
            let (d, r) = part?;
            data.extend_from_slice(&d);
            self.redacted.extend(r);
        }
        self.bytes(path, data)
    }

    /// A big file, written by `write` to the spool rather than held in memory.
    fn spooled(
        &mut self,
        path: &str,
        write: impl FnOnce(&mut dyn Write) -> GatewayResult<Vec<String>>,
    ) -> GatewayResult<()> {
        let mut f = self.spool.file()?;
        let redacted = write(&mut f)?;
        let (real, size, sha256) = f.finish()?;
        self.redacted.extend(redacted);
        self.manifest.insert(path.to_string(), (size, sha256));
        let entry = VirtualEntry::Spooled { path: real, size, mode: 0o600, mtime_ns: self.mtime_ns };
        self.root.insert(path, entry).map_err(|e| GatewayError::Invalid(e.to_string()))
    }

    /// A text file, its secret spans replaced (a PEM block spans lines, so the text is scanned whole);
    /// each line where a secret started is reported.
    fn text(&mut self, path: &str, text: &str) -> GatewayResult<()> {
        match redact_file_text(text) {
            Some((out, lines)) => {
                self.redacted.extend(lines.into_iter().map(|l| format!("{path}:{l}")));
                self.bytes(path, out.into_bytes())
            }
            None => self.bytes(path, text.as_bytes().to_vec()),
        }
    }

    /// A real file of the home, read at backup time; `size` and `sha256` as the database records them.
    fn file(&mut self, path: &str, real: PathBuf, size: u64, sha256: String) -> GatewayResult<()> {
        self.manifest.insert(path.to_string(), (size, sha256));
        self.root.insert(path, VirtualEntry::File(real)).map_err(|e| GatewayError::Invalid(e.to_string()))
    }
}

fn sql_err(home: &Path) -> impl Fn(rusqlite::Error) -> GatewayError + '_ {
    move |e| GatewayError::Sqlite { path: home.join(DB_FILE), source: e }
}

/// Rows of a query as JSON objects, JSON columns parsed.
fn rows(conn: &Connection, home: &Path, sql: &str, params: &[&dyn rusqlite::ToSql]) -> GatewayResult<Vec<Value>> {
    let err = sql_err(home);
    let mut st = conn.prepare(sql).map_err(&err)?;
    let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
    let mut q = st.query(params).map_err(&err)?;
    let mut out = Vec::new();
    while let Some(r) = q.next().map_err(&err)? {
        let mut m = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match r.get_ref(i).map_err(&err)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => json!(n),
                ValueRef::Real(f) => json!(f),
                ValueRef::Text(t) => {
                    let s = String::from_utf8_lossy(t).into_owned();
                    if is_json_column(name) {
                        serde_json::from_str(&s).unwrap_or(Value::String(s))
                    } else {
                        Value::String(s)
                    }
                }
                ValueRef::Blob(b) => Value::String(hex::encode(b)),
            };
            m.insert(name.clone(), v);
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// JSON Lines end with a newline after the last row.
fn end_lines(out: &mut dyn Write, rows: u64, file: &str) -> GatewayResult<()> {
    if rows > 0 {
        out.write_all(b"\n").map_err(|e| GatewayError::Invalid(format!("{file}: writing: {e}")))?;
    }
    Ok(())
}

/// JSON columns written as JSON, every other column scanned.
fn json_or_scan(column: &str) -> ColumnRule {
    if is_json_column(column) {
        ColumnRule::Json
    } else {
        ColumnRule::Scan
    }
}

/// Replace the whole-column secrets of `table` (the per-category rules of `format-spec/gateway.md`).
fn redact_columns(table: &str, rows: &mut [Value], file: &str, redacted: &mut Vec<String>) {
    for f in SECRET_FIELDS {
        let Some((t, col)) = f.location.split_once('.') else { continue };
        // Password hashes are part of a backup by design (the product page); 2FA is sealed apart.
        if t != table || !f.json_path.is_empty() || col == "password_hash" || col == "totp_secret" {
            continue;
        }
        for (i, row) in rows.iter_mut().enumerate() {
            if let Some(v) = row.get_mut(col) {
                if !v.is_null() && v.as_str() != Some(REDACTED) {
                    *v = Value::String(REDACTED.into());
                    redacted.push(format!("{file}#/{i}/{col}"));
                }
            }
        }
    }
}

/// Group child rows by a key column, removing that column from each child.
fn group(children: Vec<Value>, key: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for mut c in children {
        let k = c.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(m) = c.as_object_mut() {
            m.remove(key);
        }
        out.entry(k).or_default().push(c);
    }
    out
}

fn read_text(path: &Path) -> GatewayResult<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GatewayError::io(path, e)),
    }
}

/// Read the gateway at `home` into its backup tree.
pub fn dump(home: &Path, opts: &DumpOptions) -> GatewayResult<Dump> {
    dump_announcing(home, opts, &mut |_, _| {}, &AtomicBool::new(false))
}

/// [`dump`], telling `announce` about every real file of the tree (its path in the tree and on
/// disk) as soon as it is known, before the rest of the tree is ready, so that a backup can read
/// the documents while the database is still being dumped. Once `cancel` is set it stops between
/// files and within the big tables, ending with [`GatewayError::Cancelled`]; its spooled files
/// are removed with it.
pub fn dump_announcing(
    home: &Path,
    opts: &DumpOptions,
    announce: &mut dyn FnMut(&str, PathBuf),
    cancel: &AtomicBool,
) -> GatewayResult<Dump> {
    match dump_until(home, opts, announce, cancel) {
        // Whatever failed while stopping (a write refused by the cancel) is the cancel.
        Err(_) if cancel.load(Ordering::Relaxed) => Err(GatewayError::Cancelled),
        other => other,
    }
}

/// A writer that refuses to go on once `cancel` is set: the big tables stop mid-table.
struct Stoppable<'a> {
    inner: &'a mut dyn Write,
    cancel: &'a AtomicBool,
}

impl Write for Stoppable<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn dump_until(
    home: &Path,
    opts: &DumpOptions,
    announce: &mut dyn FnMut(&str, PathBuf),
    cancel: &AtomicBool,
) -> GatewayResult<Dump> {
    let stop = || if cancel.load(Ordering::Relaxed) { Err(GatewayError::Cancelled) } else { Ok(()) };
    // Never back up a half-finished restore.
    super::journal::recover(home)?;
    let mut conn = open_home(home)?;
    let err = sql_err(home);
    let categories: Vec<Category> =
        if opts.categories.is_empty() { Category::ALL.to_vec() } else { opts.categories.clone() };
    let wants = |c: Category| categories.contains(&c);
    let now = chrono::Utc::now();
    let spool_root = opts.spool_dir.clone().unwrap_or_else(|| crate::repo::default_cache_dir().join("spool"));
    let mut b = Builder {
        root: VirtualDir::new(0o700, now.timestamp_nanos_opt().unwrap_or(0)),
        spool: Spool::create(&spool_root)?,
        mtime_ns: now.timestamp_nanos_opt().unwrap_or(0),
        redacted: Vec::new(),
        manifest: BTreeMap::new(),
    };
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    let mut reenrol = Vec::new();

    // One read transaction: every query below sees the same instant, whatever writers do meanwhile.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred).map_err(&err)?;
    let tenant_filter = opts.tenant.clone().unwrap_or_default();
    let scoped = |table: &str, extra: &str| -> String {
        format!("SELECT * FROM {table} WHERE (?1 = '' OR tenant_id = ?1){extra}")
    };
    let tenants = rows(&tx, home, "SELECT * FROM tenants WHERE (?1 = '' OR id = ?1) ORDER BY id", &[&tenant_filter])?;
    if let Some(t) = &opts.tenant {
        if tenants.is_empty() {
            return Err(GatewayError::Invalid(format!("tenant {t:?} does not exist in {}", home.display())));
        }
    }
    let tier = tenants
        .iter()
        .filter_map(|t| t.get("tier").and_then(Value::as_str))
        .max_by_key(|t| match *t {
            "enterprise" => 2,
            "pro" => 1,
            _ => 0,
        })
        .unwrap_or("community")
        .to_string();
    let q = |sql: &str| rows(&tx, home, sql, &[&tenant_filter]);

    // The documents' raw files first: they are most of a gateway's bytes, and the backup can read
    // them while the rest is dumped.
    if wants(Category::Documents) {
        let sql = "SELECT id, ext, size, sha256 FROM documents WHERE (?1 = '' OR tenant_id = ?1) ORDER BY id";
        let files = rows(&tx, home, sql, &[&tenant_filter])?;
        records.insert("documents".into(), files.len() as u64);
        for d in &files {
            let (id, ext) = (d["id"].as_str().unwrap_or_default(), d["ext"].as_str().unwrap_or_default());
            let name = format!("{id}.{ext}");
            let size = d["size"].as_u64().unwrap_or(0);
            let sha = d["sha256"].as_str().unwrap_or_default().to_string();
            let (virtual_path, real) = (format!("documents/files/{name}"), home.join("documents/files").join(&name));
            stop()?;
            announce(&virtual_path, real.clone());
            b.file(&virtual_path, real, size, sha)?;
        }
    }

    stop()?;
    if wants(Category::Users) {
        let mut users = q(&scoped("users", " ORDER BY id"))?;
        let mut secrets = BTreeMap::new();
        for u in &mut users {
            let id = u.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let secret = u.as_object_mut().and_then(|m| m.remove("totp_secret")).filter(|v| !v.is_null());
            if let Some(s) = secret {
                u["totp_enrolled"] = json!(true);
                secrets.insert(id, s);
            } else {
                u["totp_enrolled"] = json!(false);
            }
        }
        records.insert("users".into(), users.len() as u64);
        b.json("users/users.json", json!({ "tenants": tenants, "users": users }))?;
        if !secrets.is_empty() {
            match &opts.passphrase {
                Some(pass) => {
                    let plain = serde_json::to_vec(&secrets).map_err(|e| GatewayError::Invalid(e.to_string()))?;
                    let sealed = super::sealed::seal(&plain, pass).map_err(|e| GatewayError::Invalid(e.to_string()))?;
                    b.bytes("users/2fa-secrets.json.enc", sealed)?;
                }
                None => reenrol.extend(secrets.into_keys()),
            }
        }
    }

    stop()?;
    if wants(Category::Agents) {
        let mut agents = q(&scoped("agents", " ORDER BY id"))?;
        redact_columns("agents", &mut agents, "agents/agents.json", &mut b.redacted);
        for a in &agents {
            let id = a.get("id").and_then(Value::as_str).unwrap_or_default();
            let dir = home.join("agents").join(id);
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> = rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
            names.sort();
            for name in names {
                let p = dir.join(&name);
                let Some(text) = read_text(&p)? else { continue };
                let rel = format!("agents/{id}/{name}");
                if name.ends_with(".json") {
                    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    b.json(&rel, v)?;
                } else {
                    b.text(&rel, &text)?;
                }
            }
        }
        records.insert("agents".into(), agents.len() as u64);
        b.json("agents/agents.json", Value::Array(agents))?;
    }

    stop()?;
    if wants(Category::Workflows) {
        let workflows = q(&scoped("workflows", " ORDER BY id"))?;
        let mut versions = group(q(&scoped("workflow_versions", " ORDER BY workflow_id, version"))?, "workflow_id");
        records.insert("workflows".into(), workflows.len() as u64);
        for mut w in workflows {
            let id = w.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            w["versions"] = Value::Array(versions.remove(&id).unwrap_or_default());
            b.json(&format!("workflows/{id}.json"), w)?;
        }
    }

    // The big tables go straight from SQLite to JSON. Insertion order (rowid) needs no sort and
    // puts new rows at the end, where they cost the next backup the fewest new chunks.
    let big = |sql: &str,
               params: &[&dyn rusqlite::ToSql],
               file: &str,
               sep: &[u8],
               rule: &dyn Fn(&str) -> ColumnRule,
               out: &mut dyn Write| {
        stop()?;
        query_json(&tx, sql, params, file, sep, rule, sql_err(home), &mut Stoppable { inner: out, cancel })
    };
    if wants(Category::Memory) {
        let file = "memory/entries.jsonl";
        let sql = scoped("memory_entries", " ORDER BY rowid");
        b.spooled(file, |out| {
            let w = big(&sql, &[&tenant_filter], file, b"\n", &json_or_scan, out)?;
            end_lines(out, w.rows, file)?;
            records.insert("memory".into(), w.rows);
            Ok(w.redacted)
        })?;
        // Daily logs: one file per day across tenants, each line tagged with its tenant.
        let logs = home.join("memory/daily-logs");
        let mut days: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for t in &tenants {
            let tid = t.get("id").and_then(Value::as_str).unwrap_or_default();
            let Ok(rd) = std::fs::read_dir(logs.join(tid)) else { continue };
            let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let Some(day) = f.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
                let Some(text) = read_text(&f)? else { continue };
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let mut v: Value = serde_json::from_str(line).unwrap_or_else(|_| json!({ "text": line }));
                    if let Some(m) = v.as_object_mut() {
                        m.insert("tenant_id".into(), json!(tid));
                    }
                    days.entry(day.clone()).or_default().push(v);
                }
            }
        }
        for (day, lines) in days {
            b.jsonl(&format!("memory/daily-logs/{day}"), lines)?;
        }
    }

    if wants(Category::Documents) {
        let file = "documents/index.json";
        let hints = json!({
            "table": "documents_fts",
            "content": "documents.extracted_text",
            "rebuild": "INSERT INTO documents_fts(documents_fts) VALUES ('rebuild')",
        });
        let sql = scoped("documents", " ORDER BY id");
        // The extracted text is the text of the raw file, which the backup carries byte for byte.
        let rule = |c: &str| if c == "extracted_text" { ColumnRule::Verbatim } else { ColumnRule::Scan };
        b.spooled(file, |out| {
            let io = |e| GatewayError::Invalid(format!("{file}: writing: {e}"));
            out.write_all(b"{\n  \"documents\": [\n    ").map_err(io)?;
            let w = big(&sql, &[&tenant_filter], file, b",\n    ", &rule, out)?;
            write!(out, "\n  ],\n  \"fts_rebuild\": {hints}\n}}\n").map_err(io)?;
            Ok(w.redacted)
        })?;
    }

    stop()?;
    for &TableFile { category: cat, table, file } in TABLE_FILES {
        if wants(cat) {
            let mut r = q(&scoped(table, " ORDER BY id"))?;
            redact_columns(table, &mut r, file, &mut b.redacted);
            records.insert(cat.id().into(), r.len() as u64);
            b.json(file, Value::Array(r))?;
        }
    }

    stop()?;
    for &NestedFile { category: cat, parent, child, key, field, file } in NESTED_FILES {
        if wants(cat) {
            let parents = q(&scoped(parent, " ORDER BY id"))?;
            let order = if child == "agent_skills" { " ORDER BY skill_id, agent_id" } else { " ORDER BY rowid" };
            let mut children = group(q(&scoped(child, order))?, key);
            records.insert(cat.id().into(), parents.len() as u64);
            let out: Vec<Value> = parents
                .into_iter()
                .map(|mut p| {
                    let id = p.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    p[field] = Value::Array(children.remove(&id).unwrap_or_default());
                    p
                })
                .collect();
            b.json(file, Value::Array(out))?;
        }
    }

    if wants(Category::Audit) {
        let since = opts.audit_since.clone().unwrap_or_default();
        let until = opts.audit_until.clone().unwrap_or_default();
        let file = "audit/entries.jsonl";
        let sql = "SELECT * FROM audit_log WHERE (?1 = '' OR tenant_id = ?1) AND (?2 = '' OR at >= ?2)
                   AND (?3 = '' OR at < ?3) ORDER BY rowid";
        b.spooled(file, |out| {
            let w = big(sql, &[&tenant_filter, &since, &until], file, b"\n", &json_or_scan, out)?;
            end_lines(out, w.rows, file)?;
            records.insert("audit".into(), w.rows);
            Ok(w.redacted)
        })?;
    }
    tx.finish().map_err(&err)?;

    stop()?;
    // Gateway-wide files.
    if wants(Category::Mcp) {
        for name in ["mcp.json", "mcp-server.json"] {
            if let Some(text) = read_text(&home.join("config").join(name))? {
                let path = format!("mcp/{name}");
                // `AWS_REGION` or a token's name and scopes are no secret, `--token VALUE` in `args` is one.
                let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                redact_mcp_config(&mut v, &path, &mut b.redacted);
                b.json(&path, v)?;
            }
        }
    }
    if wants(Category::License) && opts.include_license {
        if let Some(text) = read_text(&home.join(LICENSE_FILE))? {
            b.bytes("license/license.key", text.into_bytes())?;
        }
    }
    if wants(Category::Config) {
        let dir = home.join("config");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.sort();
        for name in names.iter().filter(|n| n.starts_with("appsettings") && n.ends_with(".json")) {
            let Some(text) = read_text(&dir.join(name))? else { continue };
            // Parsed as the gateway parses it (comments allowed): a file carried as one string would
            // escape the key-based redaction, so one that does not parse stops the backup.
            let v = super::settings::parse_json(&dir.join(name), &text)?;
            let out = format!("config/{}.backup.json", name.trim_end_matches(".json"));
            b.json(&out, v)?;
        }
    }

    let metadata = json!({
        "layout_version": LAYOUT_VERSION,
        "sophon_version": env!("CARGO_PKG_VERSION"),
        "gateway_schema_version": super::SCHEMA_VERSION,
        "tier": tier,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "tenant_scope": opts.tenant.clone().map(Value::String).unwrap_or(json!("all")),
        "tenants": tenants.iter().filter_map(|t| t.get("id").cloned()).collect::<Vec<_>>(),
        "categories": categories.iter().map(|c| c.id()).collect::<Vec<_>>(),
        "records": records,
        "license_included": opts.include_license && wants(Category::License),
        "audit_range": { "since": opts.audit_since, "until": opts.audit_until },
        "two_factor": if reenrol.is_empty() { "sealed or none" } else { "left out: no passphrase" },
        "users_to_reenrol": reenrol,
        "redacted_marker": REDACTED,
        "redacted": b.redacted.len(),
    });
    b.json("metadata.json", metadata)?;
    let files: Vec<Value> =
        b.manifest.iter().map(|(p, (size, sha))| json!({ "path": p, "size": size, "sha256": sha })).collect();
    let manifest =
        serde_json::to_vec_pretty(&json!({ "files": files })).map_err(|e| GatewayError::Invalid(e.to_string()))?;
    b.bytes("manifest.json", manifest)?;
    b.manifest.remove("manifest.json");

    let categories_seen: BTreeSet<Category> = categories.iter().copied().collect();
    Ok(Dump {
        root: b.root,
        spool: b.spool,
        categories: categories_seen.into_iter().collect(),
        redacted: b.redacted,
        reenrol,
        records,
        tier,
    })
}
