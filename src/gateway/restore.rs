//! Restoring a gateway backup into a gateway home: additively (present and equal: skip; absent:
//! add; present and different: keep the present one and quarantine the backup's), or by replacing
//! the tenant-scoped data of the categories in scope; selectively (`only`), into another tenant, or
//! as a dry run that writes nothing.
//!
//! Atomicity: every record change happens in one SQLite transaction. Files are first staged under
//! `HOME/.sophon-restore/<id>/`; the transaction also records them in `sophon_restore_journal`, and
//! after it commits they are moved into place and the journal cleared. A crash before the commit
//! leaves the gateway untouched (the stage is discarded by [`recover`]); a crash after it is rolled
//! forward by [`recover`], which every later restore runs first.

pub use crate::source::BackupSource;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{params_from_iter, Connection, OpenFlags, Transaction};
use serde_json::{Map, Value};

use super::category::{Category, NestedFile, TableFile, NESTED_FILES, TABLE_FILES};
use super::redact::REDACTED;
use super::{open_home, GatewayError, GatewayResult, DB_FILE, LICENSE_FILE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Additive,
    Replace,
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub mode: Mode,
    /// Categories to restore; empty means all in the backup.
    pub only: Vec<Category>,
    pub into_tenant: Option<String>,
    pub dry_run: bool,
    /// Opens `users/2fa-secrets.json.enc`.
    pub passphrase: Option<zeroize::Zeroizing<Vec<u8>>>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CategoryPlan {
    pub category: String,
    pub records: u64,
    pub added: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    pub restore_id: String,
    pub dry_run: bool,
    pub mode: String,
    pub categories: Vec<CategoryPlan>,
    pub total_bytes: u64,
    pub quarantine: Option<String>,
    pub connections_to_reauthenticate: Vec<String>,
    pub nodes_to_repair: Vec<String>,
    pub webhooks_with_redacted_secrets: Vec<String>,
    pub channels_with_redacted_secrets: Vec<String>,
    pub users_to_reenrol: Vec<String>,
}

/// Tables in insertion order (parents first); deletion runs in reverse.
const TABLE_ORDER: &[(&str, Category)] = &[
    ("users", Category::Users),
    ("agents", Category::Agents),
    ("workflows", Category::Workflows),
    ("workflow_versions", Category::Workflows),
    ("memory_entries", Category::Memory),
    ("documents", Category::Documents),
    ("cron_jobs", Category::Cron),
    ("cron_runs", Category::Cron),
    ("webhooks", Category::Webhooks),
    ("connections", Category::Connections),
    ("channels", Category::Channels),
    ("skills", Category::Skills),
    ("agent_skills", Category::Skills),
    ("nodes", Category::Nodes),
    ("discussions", Category::Discussions),
    ("discussion_messages", Category::Discussions),
    ("insights", Category::Insights),
    ("tasks", Category::Tasks),
    ("task_events", Category::Tasks),
    ("approvals", Category::Approvals),
    ("audit_log", Category::Audit),
];

const JSON_COLUMNS: &[&str] = &["roles", "tool_allowlist", "config", "definition", "events", "detail"];

fn invalid(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

fn from_crate(e: crate::Error) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

fn json_file(src: &dyn BackupSource, path: &str) -> GatewayResult<Option<Value>> {
    match src.read(path).map_err(from_crate)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| invalid(format!("backup file {path}: {e}"))),
    }
}

fn jsonl_file(src: &dyn BackupSource, path: &str) -> GatewayResult<Vec<Value>> {
    let Some(b) = src.read(path).map_err(from_crate)? else { return Ok(Vec::new()) };
    String::from_utf8_lossy(&b)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| invalid(format!("backup file {path}: {e}"))))
        .collect()
}

fn array(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

/// Split nested children out of parent rows: `parent[field]` → rows with `key` = parent id.
fn unnest(parents: &mut [Value], field: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for p in parents.iter_mut() {
        let id = p.get("id").cloned().unwrap_or(Value::Null);
        if let Some(Value::Array(children)) = p.as_object_mut().and_then(|m| m.remove(field)) {
            for mut c in children {
                if let Some(m) = c.as_object_mut() {
                    m.insert(key.to_string(), id.clone());
                }
                out.push(c);
            }
        }
    }
    out
}

/// Rows by table name.
type Tables = BTreeMap<&'static str, Vec<Value>>;

/// The backup's records by table, its tenant rows, and the users who must re-enrol in 2FA.
fn backup_rows(
    src: &dyn BackupSource,
    wants: &dyn Fn(Category) -> bool,
    passphrase: Option<&[u8]>,
) -> GatewayResult<(Tables, Vec<Value>, Vec<String>)> {
    let mut t: Tables = BTreeMap::new();
    let mut tenants = Vec::new();
    let mut reenrol = Vec::new();
    if let Some(u) = json_file(src, "users/users.json")? {
        tenants = array(u.get("tenants").cloned());
        if wants(Category::Users) {
            let secrets: HashMap<String, Value> =
                match (src.read("users/2fa-secrets.json.enc").map_err(from_crate)?, passphrase) {
                    (Some(sealed), Some(p)) => {
                        let plain =
                            super::sealed::open(&sealed, p, "users/2fa-secrets.json.enc").map_err(from_crate)?;
                        serde_json::from_slice(&plain).map_err(invalid)?
                    }
                    _ => HashMap::new(),
                };
            let mut users = array(u.get("users").cloned());
            for user in &mut users {
                let Some(m) = user.as_object_mut() else { continue };
                let enrolled = m.remove("totp_enrolled").and_then(|v| v.as_bool()).unwrap_or(false);
                let id = m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let secret = secrets.get(&id).cloned();
                if enrolled && secret.is_none() {
                    reenrol.push(id);
                }
                m.insert("totp_secret".into(), secret.unwrap_or(Value::Null));
            }
            t.insert("users", users);
        }
    }
    if wants(Category::Agents) {
        t.insert("agents", array(json_file(src, "agents/agents.json")?));
    }
    if wants(Category::Workflows) {
        let mut wfs: Vec<Value> = Vec::new();
        for p in src.paths().into_iter().filter(|p| p.starts_with("workflows/") && p.ends_with(".json")) {
            wfs.extend(json_file(src, &p)?);
        }
        t.insert("workflow_versions", unnest(&mut wfs, "versions", "workflow_id"));
        t.insert("workflows", wfs);
    }
    if wants(Category::Memory) {
        t.insert("memory_entries", jsonl_file(src, "memory/entries.jsonl")?);
    }
    if wants(Category::Documents) {
        let idx = json_file(src, "documents/index.json")?.unwrap_or(Value::Null);
        t.insert("documents", array(idx.get("documents").cloned()));
    }
    for &NestedFile { category: cat, parent, child, key, field, file } in NESTED_FILES {
        if wants(cat) {
            let mut parents = array(json_file(src, file)?);
            t.insert(child, unnest(&mut parents, field, key));
            t.insert(parent, parents);
        }
    }
    for &TableFile { category: cat, table, file } in TABLE_FILES {
        if wants(cat) {
            t.insert(table, array(json_file(src, file)?));
        }
    }
    if wants(Category::Audit) {
        t.insert("audit_log", jsonl_file(src, "audit/entries.jsonl")?);
    }
    Ok((t, tenants, reenrol))
}

/// The primary-key columns and all columns of a table.
fn table_columns(conn: &Connection, table: &str, home: &Path) -> GatewayResult<(Vec<String>, Vec<String>)> {
    let db = home.join(DB_FILE);
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})")).map_err(|e| GatewayError::sql(&db, e))?;
    let mut cols = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    let mut q = st.query([]).map_err(|e| GatewayError::sql(&db, e))?;
    while let Some(r) = q.next().map_err(|e| GatewayError::sql(&db, e))? {
        let name: String = r.get(1).map_err(|e| GatewayError::sql(&db, e))?;
        let k: i64 = r.get(5).map_err(|e| GatewayError::sql(&db, e))?;
        if k > 0 {
            pk.push((k, name.clone()));
        }
        cols.push(name);
    }
    pk.sort();
    Ok((pk.into_iter().map(|p| p.1).collect(), cols))
}

fn to_sql(v: &Value, column: &str) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(*b as i64),
        Value::Number(n) => n.as_i64().map(S::Integer).unwrap_or_else(|| S::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => S::Text(s.clone()),
        other if JSON_COLUMNS.contains(&column) => S::Text(other.to_string()),
        other => S::Text(other.to_string()),
    }
}

fn from_sql(v: rusqlite::types::ValueRef<'_>, column: &str) -> Value {
    use rusqlite::types::ValueRef as R;
    match v {
        R::Null => Value::Null,
        R::Integer(n) => Value::from(n),
        R::Real(f) => Value::from(f),
        R::Text(t) => {
            let s = String::from_utf8_lossy(t).into_owned();
            if JSON_COLUMNS.contains(&column) {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            } else {
                Value::String(s)
            }
        }
        R::Blob(b) => Value::String(hex::encode(b)),
    }
}

/// Equal, treating a redacted backup value as equal to whatever is present.
fn same_record(backup: &Map<String, Value>, present: &Map<String, Value>) -> bool {
    backup.iter().all(|(k, v)| v.as_str() == Some(REDACTED) || present.get(k).is_some_and(|p| p == v))
}

fn existing(
    tx: &Transaction<'_>,
    table: &str,
    pk: &[String],
    row: &Map<String, Value>,
    cols: &[String],
) -> rusqlite::Result<Option<Map<String, Value>>> {
    let cond: Vec<String> = pk.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    let sql = format!("SELECT {} FROM {table} WHERE {}", cols.join(", "), cond.join(" AND "));
    let args: Vec<rusqlite::types::Value> = pk.iter().map(|c| to_sql(row.get(c).unwrap_or(&Value::Null), c)).collect();
    let mut st = tx.prepare_cached(&sql)?;
    let mut q = st.query(params_from_iter(args))?;
    let Some(r) = q.next()? else { return Ok(None) };
    let mut m = Map::new();
    for (i, c) in cols.iter().enumerate() {
        m.insert(c.clone(), from_sql(r.get_ref(i)?, c));
    }
    Ok(Some(m))
}

/// A dry run must not change a byte of the home: open read-only, and when no WAL file exists (no
/// writer is active) as `immutable`, so SQLite creates no `-wal`/`-shm` files either.
fn open_read_only(home: &Path) -> GatewayResult<Connection> {
    let db = home.join(DB_FILE);
    if !db.is_file() {
        return Err(GatewayError::NotAHome(home.to_path_buf()));
    }
    let wal = home.join(format!("{DB_FILE}-wal")).exists();
    let escaped = db.to_string_lossy().replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    let uri = format!("file:{escaped}?mode=ro{}", if wal { "" } else { "&immutable=1" });
    let conn = Connection::open_with_flags(&uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI)
        .map_err(|e| GatewayError::sql(&db, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| GatewayError::sql(&db, e))?;
    let found: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| GatewayError::sql(&db, e))?;
    // A dry run writes nothing, so it cannot upgrade an older home: it reads it as it is (the
    // upgrade only widens CHECKs and adds nullable columns, which the plan does not depend on).
    if !(i64::from(super::MIN_SCHEMA_VERSION)..=i64::from(super::SCHEMA_VERSION)).contains(&found) {
        return Err(GatewayError::UnsupportedSchema { path: db, found, supported: super::SCHEMA_VERSION });
    }
    Ok(conn)
}

/// Finish an interrupted restore: roll a committed one forward, discard an uncommitted stage.
pub fn recover(home: &Path) -> GatewayResult<()> {
    let stage_root = home.join(".sophon-restore");
    if !stage_root.exists() {
        return Ok(());
    }
    let conn = open_home(home)?;
    let db = home.join(DB_FILE);
    conn.execute_batch(JOURNAL_DDL).map_err(|e| GatewayError::sql(&db, e))?;
    let mut pending: Vec<(String, String)> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT restore_id, rel_path FROM sophon_restore_journal")
            .map_err(|e| GatewayError::sql(&db, e))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| GatewayError::sql(&db, e))?;
        for r in rows {
            pending.push(r.map_err(|e| GatewayError::sql(&db, e))?);
        }
    }
    move_into_place(home, &pending)?;
    conn.execute("DELETE FROM sophon_restore_journal", []).map_err(|e| GatewayError::sql(&db, e))?;
    std::fs::remove_dir_all(&stage_root).map_err(|e| GatewayError::io(&stage_root, e))?;
    Ok(())
}

const JOURNAL_DDL: &str =
    "CREATE TABLE IF NOT EXISTS sophon_restore_journal (restore_id TEXT NOT NULL, rel_path TEXT NOT NULL, PRIMARY KEY (restore_id, rel_path))";

fn move_into_place(home: &Path, staged: &[(String, String)]) -> GatewayResult<()> {
    for (id, rel) in staged {
        let from = home.join(".sophon-restore").join(id).join(rel);
        let to = home.join(rel);
        if !from.exists() {
            continue; // moved before a crash
        }
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).map_err(|e| GatewayError::io(d, e))?;
        }
        std::fs::rename(&from, &to).map_err(|e| GatewayError::io(&to, e))?;
    }
    Ok(())
}

/// A scheduled run still `running` when the backup was taken (a nightly backup job is in its own
/// backup) ended unknown: restored as `failed`, without the claim's pid and host, which would
/// otherwise block the job (a pid that happens to be alive, another host's claim for 24 hours).
fn settle_running_claim(row: &mut Map<String, Value>) {
    if row.get("status").and_then(Value::as_str) != Some("running") {
        return;
    }
    row.insert("status".into(), Value::from("failed"));
    row.insert("summary".into(), Value::from("in progress when the backup was taken"));
    for claim in ["pid", "host"] {
        if row.contains_key(claim) {
            row.insert(claim.into(), Value::Null);
        }
    }
}

fn has_redacted(row: &Map<String, Value>) -> bool {
    row.values().any(|v| v.as_str() == Some(REDACTED) || (v.is_object() && v.to_string().contains(REDACTED)))
}

/// Put back, from the present file, every value the backup redacted (same JSON pointer).
fn unredact_from(backup: &mut Value, present: &Value) {
    match backup {
        Value::String(s) if s == REDACTED && !present.is_null() => *backup = present.clone(),
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                unredact_from(v, present.get(k).unwrap_or(&Value::Null));
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                unredact_from(v, present.get(i).unwrap_or(&Value::Null));
            }
        }
        _ => {}
    }
}

struct Stager<'a> {
    home: &'a Path,
    id: String,
    dry_run: bool,
    staged: Vec<String>,
}

impl Stager<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.home.join(".sophon-restore").join(&self.id).join(rel)
    }

    fn put(&mut self, rel: &str, data: &[u8]) -> GatewayResult<()> {
        if self.dry_run {
            return Ok(());
        }
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| GatewayError::io(d, e))?;
        }
        std::fs::write(&p, data).map_err(|e| GatewayError::io(&p, e))?;
        self.staged.push(rel.to_string());
        Ok(())
    }
}

/// Restore `src` into the gateway at `home`.
pub fn restore(home: &Path, src: &dyn BackupSource, opts: &RestoreOptions) -> GatewayResult<RestoreReport> {
    let meta =
        json_file(src, "metadata.json")?.ok_or_else(|| invalid("not a gateway backup: it has no metadata.json"))?;
    let layout = meta["layout_version"].as_u64().unwrap_or(0);
    if layout != super::dump::LAYOUT_VERSION as u64 {
        return Err(invalid(format!(
            "backup layout version {layout} is not supported (this build reads {}); upgrade sophon",
            super::dump::LAYOUT_VERSION
        )));
    }
    let in_backup: Vec<Category> =
        meta["categories"].as_array().into_iter().flatten().filter_map(|c| c.as_str()?.parse().ok()).collect();
    for c in &opts.only {
        if !in_backup.contains(c) {
            return Err(invalid(format!("--only {c}: the backup does not hold that category")));
        }
    }
    let scope: Vec<Category> = if opts.only.is_empty() { in_backup } else { opts.only.clone() };
    let wants = |c: Category| scope.contains(&c);
    if !opts.dry_run {
        recover(home)?;
    }
    let db = home.join(DB_FILE);
    let mut conn = if opts.dry_run { open_read_only(home)? } else { open_home(home)? };
    let sqlerr = |e: rusqlite::Error| GatewayError::sql(&db, e);

    let (mut tables, tenant_rows, reenrol) = backup_rows(src, &wants, opts.passphrase.as_ref().map(|p| p.as_slice()))?;
    if let Some(t) = &opts.into_tenant {
        for rows in tables.values_mut() {
            for r in rows.iter_mut() {
                if let Some(m) = r.as_object_mut() {
                    m.insert("tenant_id".into(), Value::String(t.clone()));
                }
            }
        }
    }
    let scope_tenants: Vec<String> = match &opts.into_tenant {
        Some(t) => vec![t.clone()],
        None => {
            meta["tenants"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect()
        }
    };
    let now = chrono::Utc::now();
    let restore_id = format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        u32::from_le_bytes(crate::crypto::random_array().map_err(from_crate)?)
    );
    let mut report = RestoreReport {
        restore_id: restore_id.clone(),
        dry_run: opts.dry_run,
        mode: if opts.mode == Mode::Replace { "replace".into() } else { "additive".into() },
        users_to_reenrol: reenrol,
        ..Default::default()
    };
    let mut plans: BTreeMap<Category, CategoryPlan> =
        scope.iter().map(|c| (*c, CategoryPlan { category: c.id().into(), ..Default::default() })).collect();
    let mut stager = Stager { home, id: restore_id.clone(), dry_run: opts.dry_run, staged: Vec::new() };
    let quarantine_rel = format!("quarantine/{restore_id}");

    let tx = conn
        .transaction_with_behavior(if opts.dry_run {
            rusqlite::TransactionBehavior::Deferred
        } else {
            rusqlite::TransactionBehavior::Immediate
        })
        .map_err(sqlerr)?;

    // Tenants the restore writes into must exist.
    for t in &scope_tenants {
        let present: bool =
            tx.query_row("SELECT COUNT(*) FROM tenants WHERE id = ?1", [t], |r| r.get::<_, i64>(0)).map_err(sqlerr)?
                > 0;
        if !present && !opts.dry_run {
            // The backup's own tenant row when it has one (restored whole); for --into-tenant, a new
            // tenant named after its id with the backup's tier.
            let from_backup = tenant_rows.iter().find(|r| r["id"].as_str() == Some(t));
            let name = from_backup.and_then(|r| r["name"].as_str()).unwrap_or(t).to_string();
            let created = from_backup
                .and_then(|r| r["created_at"].as_str().map(str::to_string))
                .unwrap_or_else(|| now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let tier = from_backup
                .and_then(|r| r["tier"].as_str())
                .or(meta["tier"].as_str())
                .unwrap_or("community")
                .to_string();
            tx.execute(
                "INSERT INTO tenants (id, name, tier, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![t, name, tier, created],
            )
            .map_err(sqlerr)?;
        }
    }

    // Replacing with a backup of the whole gateway makes the home hold what the backup holds: the
    // categories in scope are cleared for every tenant of the home, not only the backup's (a fresh
    // home's placeholder tenant and its default nightly job would otherwise stay beside the
    // migrated ones and back the gateway up twice a night).
    let mut wipe_tenants = scope_tenants.clone();
    if opts.into_tenant.is_none() && meta["tenant_scope"].as_str() == Some("all") {
        let mut st = tx.prepare("SELECT id FROM tenants").map_err(sqlerr)?;
        let home_tenants = st.query_map([], |r| r.get::<_, String>(0)).map_err(sqlerr)?;
        for t in home_tenants {
            let t = t.map_err(sqlerr)?;
            if !wipe_tenants.contains(&t) {
                wipe_tenants.push(t);
            }
        }
    }
    if opts.mode == Mode::Replace && !wipe_tenants.is_empty() && !opts.dry_run {
        let marks = wipe_tenants.iter().map(|_| "?").collect::<Vec<_>>().join(", ");
        for (table, cat) in TABLE_ORDER.iter().rev() {
            if wants(*cat) {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE tenant_id IN ({marks})"),
                    params_from_iter(wipe_tenants.iter()),
                )
                .map_err(|e| {
                    invalid(format!(
                        "replace: clearing {table} failed ({e}); restore the categories that depend on it too"
                    ))
                })?;
            }
        }
        // A home tenant the backup does not have, left with nothing, goes too.
        for t in wipe_tenants.iter().filter(|t| !scope_tenants.contains(t)) {
            let mut empty = true;
            for (table, _) in TABLE_ORDER.iter() {
                let q = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1");
                if tx.query_row(&q, [t], |r| r.get::<_, i64>(0)).map_err(sqlerr)? > 0 {
                    empty = false;
                    break;
                }
            }
            if empty {
                // A row elsewhere that still names it (a foreign key) keeps it: not an error.
                let _ = tx.execute("DELETE FROM tenants WHERE id = ?1", [t]);
            }
        }
    }

    let mut primary_seen = std::collections::HashSet::new();
    for (table, cat) in TABLE_ORDER {
        let Some(rows) = tables.remove(table) else { continue };
        let (pk, cols) = table_columns(&tx, table, home)?;
        let primary = primary_seen.insert(*cat);
        let plan = plans.entry(*cat).or_default();
        for row in rows {
            let Value::Object(mut m) = row else { continue };
            m.retain(|k, _| cols.contains(k));
            if *table == "cron_runs" {
                settle_running_claim(&mut m);
            }
            if primary {
                plan.records += 1;
            }
            let key: Vec<String> = pk
                .iter()
                .map(|c| m.get(c).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default())
                .collect();
            // A dry run of a replace sees the tenant's rows as already wiped.
            let present = if opts.dry_run && opts.mode == Mode::Replace {
                None
            } else {
                existing(&tx, table, &pk, &m, &cols).map_err(sqlerr)?
            };
            match present {
                None if opts.dry_run => plan.added += 1,
                Some(present) if same_record(&m, &present) => plan.unchanged += 1,
                Some(_) => {
                    plan.conflicts += 1;
                    let rel = format!("{quarantine_rel}/{}/{table}/{}.json", cat.id(), key.join("_"));
                    stager.put(&rel, &serde_json::to_vec_pretty(&Value::Object(m)).map_err(invalid)?)?;
                }
                None => {
                    let names: Vec<&String> = m.keys().collect();
                    let sql = format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                        (1..=names.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
                    );
                    let args: Vec<rusqlite::types::Value> = m.iter().map(|(k, v)| to_sql(v, k)).collect();
                    match tx.execute(&sql, params_from_iter(args)) {
                        Ok(_) => plan.added += 1,
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                        {
                            plan.conflicts += 1;
                            let rel = format!("{quarantine_rel}/{}/{table}/{}.json", cat.id(), key.join("_"));
                            stager
                                .put(&rel, &serde_json::to_vec_pretty(&Value::Object(m.clone())).map_err(invalid)?)?;
                        }
                        Err(e) => return Err(invalid(format!("restoring {table} row {}: {e}", key.join("/")))),
                    }
                    if has_redacted(&m) {
                        let id = key.join("/");
                        match *table {
                            "connections" => report.connections_to_reauthenticate.push(id),
                            "nodes" => report.nodes_to_repair.push(id),
                            "webhooks" => report.webhooks_with_redacted_secrets.push(id),
                            "channels" => report.channels_with_redacted_secrets.push(id),
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    // Files beside the database.
    let mut files: Vec<(Category, String, String)> = Vec::new(); // (category, backup path, home path)
    for p in src.paths() {
        let target = if let Some(rest) = p.strip_prefix("agents/").filter(|r| r.contains('/')) {
            Some((Category::Agents, format!("agents/{rest}")))
        } else if p.starts_with("documents/files/") {
            Some((Category::Documents, p.clone()))
        } else if let Some(name) = p.strip_prefix("mcp/") {
            Some((Category::Mcp, format!("config/{name}")))
        } else if let Some(name) = p.strip_prefix("config/").and_then(|n| n.strip_suffix(".backup.json")) {
            Some((Category::Config, format!("config/{name}.json")))
        } else if p == "license/license.key" {
            Some((Category::License, LICENSE_FILE.to_string()))
        } else {
            None
        };
        if let Some((cat, rel)) = target {
            if wants(cat) {
                files.push((cat, p, rel));
            }
        }
    }
    for (cat, path, rel) in files {
        let plan = plans.entry(cat).or_default();
        plan.files += 1;
        let size = src.size(&path).unwrap_or(0);
        plan.bytes += size;
        let present_path = home.join(&rel);
        let present = std::fs::read(&present_path).ok();
        let data =
            if cat == Category::Documents && present.as_ref().map(|p| p.len() as u64) == Some(size) && opts.dry_run {
                None // a dry run does not read documents: same size counts as unchanged
            } else {
                src.read(&path).map_err(from_crate)?
            };
        let mut data = match data {
            Some(d) => d,
            None => {
                plan.unchanged += 1;
                continue;
            }
        };
        if rel.ends_with(".json") && matches!(cat, Category::Mcp | Category::Config | Category::Agents) {
            if let (Ok(mut v), Some(p)) = (serde_json::from_slice::<Value>(&data), present.as_ref()) {
                if let Ok(pv) = serde_json::from_slice::<Value>(p) {
                    unredact_from(&mut v, &pv);
                    data = serde_json::to_vec_pretty(&v).map_err(invalid)?;
                    data.push(b'\n');
                }
            }
        }
        match present {
            Some(p) if p == data => plan.unchanged += 1,
            Some(_) if opts.mode == Mode::Additive => {
                plan.conflicts += 1;
                stager.put(&format!("{quarantine_rel}/{}/{rel}", cat.id()), &data)?;
            }
            _ => {
                plan.added += 1;
                stager.put(&rel, &data)?;
            }
        }
    }
    // Daily logs: one backup file a day, split back per tenant.
    if wants(Category::Memory) {
        for p in src.paths().into_iter().filter(|p| p.starts_with("memory/daily-logs/")) {
            let day = p.trim_start_matches("memory/daily-logs/").to_string();
            let mut per_tenant: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for mut line in jsonl_file(src, &p)? {
                let tenant = match &opts.into_tenant {
                    Some(t) => t.clone(),
                    None => line["tenant_id"].as_str().unwrap_or("default").to_string(),
                };
                if let Some(m) = line.as_object_mut() {
                    m.remove("tenant_id");
                }
                let out = per_tenant.entry(tenant).or_default();
                serde_json::to_writer(&mut *out, &line).map_err(invalid)?;
                out.push(b'\n');
            }
            let plan = plans.entry(Category::Memory).or_default();
            for (tenant, data) in per_tenant {
                let rel = format!("memory/daily-logs/{tenant}/{day}");
                plan.files += 1;
                plan.bytes += data.len() as u64;
                match std::fs::read(home.join(&rel)).ok() {
                    Some(present) if present == data => {}
                    Some(_) if opts.mode == Mode::Additive => {
                        plan.conflicts += 1;
                        stager.put(&format!("{quarantine_rel}/memory/{rel}"), &data)?;
                    }
                    _ => stager.put(&rel, &data)?,
                }
            }
        }
    }

    report.categories = plans.into_values().collect();
    report.total_bytes = report.categories.iter().map(|c| c.bytes).sum();
    if report.categories.iter().any(|c| c.conflicts > 0) {
        report.quarantine = Some(home.join(&quarantine_rel).to_string_lossy().into_owned());
    }
    if opts.dry_run {
        tx.rollback().map_err(sqlerr)?;
        return Ok(report);
    }
    tx.execute_batch(JOURNAL_DDL).map_err(sqlerr)?;
    for rel in &stager.staged {
        tx.execute(
            "INSERT INTO sophon_restore_journal (restore_id, rel_path) VALUES (?1, ?2)",
            rusqlite::params![restore_id, rel],
        )
        .map_err(sqlerr)?;
    }
    tx.commit().map_err(sqlerr)?;
    // Committed: from here on the restore is rolled forward, even after a crash.
    let staged: Vec<(String, String)> = stager.staged.iter().map(|r| (restore_id.clone(), r.clone())).collect();
    move_into_place(home, &staged)?;
    conn.execute("DELETE FROM sophon_restore_journal WHERE restore_id = ?1", [&restore_id]).map_err(sqlerr)?;
    let stage = home.join(".sophon-restore");
    let _ = std::fs::remove_dir_all(stage.join(&restore_id));
    let _ = std::fs::remove_dir(&stage);
    Ok(report)
}
