//! Building a restore's plan: what the backup holds, compared with the home, decided row by row and
//! file by file before anything is written. The executor follows the plan; the dry run executes
//! the very same plan against a scratch copy of the database, so the two cannot disagree.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value};

use std::io::Write;

use super::compare::same_record;
use super::parts::Spool;
use super::refs::{foreign_keys, key_text, parents_stay};
use super::{BackupSource, Mode, RestoreOptions};
use crate::gateway::category::{Category, NestedFile, NESTED_FILES, TABLE_FILES};
use crate::gateway::layout::{self, TABLE_ORDER};
use crate::gateway::{GatewayError, GatewayResult, DB_FILE};

/// What happens to one record of the backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowAction {
    /// Absent from the home: inserted.
    Add,
    /// Present and equal (a redacted value equals whatever is present): nothing to do.
    Unchanged,
    /// Present and different, clashing with a present record on a unique column (a job replaced
    /// under the same name), or naming a parent record that is quarantined or nowhere: the present
    /// one is kept and the backup's goes to the quarantine folder.
    Quarantine,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RowPlan {
    /// The primary-key values, in key order.
    pub key: Vec<String>,
    pub action: RowAction,
    /// The row as it is inserted or quarantined (only the table's columns).
    pub row: Map<String, Value>,
}

#[derive(Debug)]
pub struct TablePlan {
    pub table: &'static str,
    pub category: Category,
    /// The category's first table: its rows are the category's records.
    pub primary: bool,
    /// Replace: the present records of the wiped tenants that are deleted first.
    pub to_wipe: u64,
    /// The table's references to other records: (column, parent table), tenants left out.
    pub parents: Vec<(String, String)>,
    /// The planned rows, in the backup's order, kept on disk (one JSON line each).
    pub rows: RowSpool,
}

/// A table's planned rows, one JSON line each in the restore's spool: a table of any size is
/// planned and executed one row at a time.
#[derive(Debug)]
pub struct RowSpool {
    file: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    pub len: u64,
}

impl RowSpool {
    fn create(spool: &Spool, table: &str) -> GatewayResult<RowSpool> {
        let file = spool.file(&format!("rows-{table}"));
        let f = std::fs::File::create(&file).map_err(|e| GatewayError::io(&file, e))?;
        Ok(RowSpool { file, out: Some(std::io::BufWriter::with_capacity(1 << 16, f)), len: 0 })
    }

    fn push(&mut self, row: &RowPlan) -> GatewayResult<()> {
        let out = self.out.as_mut().ok_or_else(|| invalid("restore plan: rows added after planning"))?;
        serde_json::to_writer(&mut *out, row).map_err(invalid)?;
        out.write_all(b"\n").map_err(|e| GatewayError::io(&self.file, e))?;
        self.len += 1;
        Ok(())
    }

    fn close(&mut self) -> GatewayResult<()> {
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| GatewayError::io(&self.file, e))?;
        }
        Ok(())
    }

    /// Every planned row, in order, one at a time.
    pub fn for_each(&self, each: &mut dyn FnMut(RowPlan) -> GatewayResult<()>) -> GatewayResult<()> {
        let f = std::fs::File::open(&self.file).map_err(|e| GatewayError::io(&self.file, e))?;
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        let mut line = String::new();
        loop {
            line.clear();
            if std::io::BufRead::read_line(&mut r, &mut line).map_err(|e| GatewayError::io(&self.file, e))? == 0 {
                return Ok(());
            }
            each(serde_json::from_str(&line).map_err(|e| invalid(format!("restore plan: {e}")))?)?;
        }
    }
}

/// What happens to one file beside the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Write,
    Unchanged,
    Quarantine,
}

#[derive(Clone, Debug)]
pub enum FileData {
    /// The backup's file at this path, copied as it is (documents: never held in memory).
    Backup(String),
    /// Content made by the restore (a tenant's daily log, a JSON file with its secrets put back).
    Bytes(Vec<u8>),
    /// The same, kept in the restore's spool (this file) rather than in memory.
    Spooled(std::path::PathBuf),
}

#[derive(Clone, Debug)]
pub struct FilePlan {
    pub category: Category,
    /// The file's path in the home.
    pub home_path: String,
    pub bytes: u64,
    pub action: FileAction,
    pub data: FileData,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct NewTenant {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub created_at: String,
}

/// Everything a restore will do, decided before it does any of it.
#[derive(Debug)]
pub struct Plan {
    pub restore_id: String,
    pub mode: Mode,
    pub scope: Vec<Category>,
    /// The tenants the restored records belong to.
    pub tenants: Vec<String>,
    pub tenants_to_create: Vec<NewTenant>,
    /// Replace only: the tenants whose records of the categories in scope are deleted first.
    pub tenants_to_wipe: Vec<String>,
    /// Tables in insertion order.
    pub tables: Vec<TablePlan>,
    pub files: Vec<FilePlan>,
    pub users_to_reenrol: Vec<String>,
    /// The backup seals its users' 2FA secrets and no passphrase was given to open them.
    pub two_factor_sealed: bool,
    /// Where the planned rows are kept (removed when the plan is dropped).
    pub(super) _spool: Spool,
}

impl Plan {
    /// The quarantine folder, relative to the home.
    pub fn quarantine(&self) -> String {
        format!("quarantine/{}", self.restore_id)
    }

    pub fn row_quarantine_path(&self, t: &TablePlan, r: &RowPlan) -> String {
        row_quarantine_path(&self.quarantine(), t, r)
    }

    pub fn file_quarantine_path(&self, f: &FilePlan) -> String {
        format!("{}/{}/{}", self.quarantine(), f.category.id(), f.home_path)
    }
}

pub(super) fn row_quarantine_path(quarantine: &str, t: &TablePlan, r: &RowPlan) -> String {
    format!("{quarantine}/{}/{}/{}.json", t.category.id(), t.table, r.key.join("_"))
}

pub(super) fn invalid(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

pub(super) fn from_crate(e: crate::Error) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

pub(super) fn json_file(src: &dyn BackupSource, path: &str) -> GatewayResult<Option<Value>> {
    super::parts::json_part(src, path)
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

/// What the backup's users need: who must re-enrol in 2FA, and whether that is because its sealed
/// 2FA secrets were not opened (no passphrase given).
#[derive(Default)]
struct TwoFactor {
    reenrol: Vec<String>,
    sealed_unopened: bool,
}

/// The backup's sealed 2FA secrets, opened with the passphrase when there is one.
fn two_factor_secrets(
    src: &dyn BackupSource,
    passphrase: Option<&[u8]>,
    two_factor: &mut TwoFactor,
) -> GatewayResult<HashMap<String, Value>> {
    Ok(match (super::parts::read_part(src, "users/2fa-secrets.json.enc")?, passphrase) {
        (Some(sealed), Some(p)) => {
            let plain = crate::gateway::sealed::open(&sealed, p, "users/2fa-secrets.json.enc").map_err(from_crate)?;
            serde_json::from_slice(&plain).map_err(invalid)?
        }
        (Some(_), None) => {
            two_factor.sealed_unopened = true;
            HashMap::new()
        }
        (None, _) => HashMap::new(),
    })
}

/// The rows of the array part `file` (at `key` of its top-level object, or the top-level array),
/// one at a time, through the spool: a big part is never parsed whole.
pub(super) fn rows_of(
    src: &dyn BackupSource,
    spool: &Spool,
    file: &str,
    key: Option<&str>,
    each: &mut dyn FnMut(Value) -> GatewayResult<()>,
) -> GatewayResult<()> {
    match super::parts::spool_part(src, file, spool)? {
        Some(part) => part.each(key, each),
        None => Ok(()),
    }
}

/// The rows of the JSON-lines part `file`, one at a time.
pub(super) fn lines_of(
    src: &dyn BackupSource,
    spool: &Spool,
    file: &str,
    each: &mut dyn FnMut(Value) -> GatewayResult<()>,
) -> GatewayResult<()> {
    match super::parts::spool_part(src, file, spool)? {
        Some(part) => part.each_line(each),
        None => Ok(()),
    }
}

/// The backup's rows of `table`, one at a time, as its part of the layout holds them (gateway.md
/// §9): nested children come out of their parents with the parent's id under `key`.
fn each_backup_row(
    src: &dyn BackupSource,
    spool: &Spool,
    table: &str,
    each: &mut dyn FnMut(Value) -> GatewayResult<()>,
) -> GatewayResult<()> {
    if let Some(n) = NESTED_FILES.iter().find(|n| n.parent == table || n.child == table) {
        let &NestedFile { parent, field, key, file, .. } = n;
        return rows_of(src, spool, file, None, &mut |mut row| {
            if table == parent {
                if let Some(m) = row.as_object_mut() {
                    m.remove(field);
                }
                return each(row);
            }
            for child in unnest(std::slice::from_mut(&mut row), field, key) {
                each(child)?;
            }
            Ok(())
        });
    }
    if let Some(t) = TABLE_FILES.iter().find(|t| t.table == table) {
        return rows_of(src, spool, t.file, None, each);
    }
    match table {
        "users" => rows_of(src, spool, "users/users.json", Some("users"), each),
        "agents" => rows_of(src, spool, "agents/agents.json", None, each),
        "workflows" | "workflow_versions" => {
            // One small file per workflow, its version history in it.
            for p in src.paths().into_iter().filter(|p| p.starts_with("workflows/") && p.ends_with(".json")) {
                let Some(mut wf) = json_file(src, &p)? else { continue };
                let versions = unnest(std::slice::from_mut(&mut wf), "versions", "workflow_id");
                if table == "workflows" {
                    each(wf)?;
                } else {
                    for v in versions {
                        each(v)?;
                    }
                }
            }
            Ok(())
        }
        "memory_entries" => lines_of(src, spool, "memory/entries.jsonl", each),
        "documents" => rows_of(src, spool, "documents/index.json", Some("documents"), each),
        "audit_log" => lines_of(src, spool, "audit/entries.jsonl", each),
        _ => Ok(()),
    }
}

/// The primary-key columns and all columns of a table.
fn table_columns(conn: &Connection, table: &str, db: &Path) -> GatewayResult<(Vec<String>, Vec<String>)> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})")).map_err(|e| GatewayError::sql(db, e))?;
    let mut cols = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    let mut q = st.query([]).map_err(|e| GatewayError::sql(db, e))?;
    while let Some(r) = q.next().map_err(|e| GatewayError::sql(db, e))? {
        let name: String = r.get(1).map_err(|e| GatewayError::sql(db, e))?;
        let k: i64 = r.get(5).map_err(|e| GatewayError::sql(db, e))?;
        if k > 0 {
            pk.push((k, name.clone()));
        }
        cols.push(name);
    }
    pk.sort();
    Ok((pk.into_iter().map(|p| p.1).collect(), cols))
}

/// The column sets of a table's UNIQUE constraints other than its primary key.
fn unique_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let mut indexes: Vec<String> = Vec::new();
    {
        let mut st = conn.prepare(&format!("PRAGMA index_list({table})"))?;
        let mut q = st.query([])?;
        while let Some(r) = q.next()? {
            let (name, unique, origin, partial): (String, i64, String, i64) =
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            if unique == 1 && origin != "pk" && partial == 0 {
                indexes.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for name in indexes {
        let mut st = conn.prepare(&format!("PRAGMA index_info(\"{}\")", name.replace('"', "\"\"")))?;
        let cols: Vec<Option<String>> = st.query_map([], |r| r.get(2))?.collect::<rusqlite::Result<_>>()?;
        // An index on an expression cannot be checked by column values: execution still catches it.
        if let Some(cols) = cols.into_iter().collect::<Option<Vec<String>>>() {
            out.push(cols);
        }
    }
    Ok(out)
}

pub(super) fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(*b as i64),
        Value::Number(n) => n.as_i64().map(S::Integer).unwrap_or_else(|| S::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => S::Text(s.clone()),
        // JSON columns (and anything else structured) are stored as their JSON text.
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
            if layout::is_json_column(column) {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            } else {
                Value::String(s)
            }
        }
        R::Blob(b) => Value::String(hex::encode(b)),
    }
}

fn existing(
    conn: &Connection,
    table: &str,
    pk: &[String],
    row: &Map<String, Value>,
    cols: &[String],
) -> rusqlite::Result<Option<Map<String, Value>>> {
    let cond: Vec<String> = pk.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    let sql = format!("SELECT {} FROM {table} WHERE {}", cols.join(", "), cond.join(" AND "));
    let args: Vec<rusqlite::types::Value> = pk.iter().map(|c| to_sql(row.get(c).unwrap_or(&Value::Null))).collect();
    let mut st = conn.prepare_cached(&sql)?;
    let mut q = st.query(params_from_iter(args))?;
    let Some(r) = q.next()? else { return Ok(None) };
    let mut m = Map::new();
    for (i, c) in cols.iter().enumerate() {
        m.insert(c.clone(), from_sql(r.get_ref(i)?, c));
    }
    Ok(Some(m))
}

/// Whether `row` would clash on a unique column set with a record that stays in the home.
fn clashes(
    conn: &Connection,
    table: &str,
    uniques: &[Vec<String>],
    row: &Map<String, Value>,
    wiped: &dyn Fn(&str) -> bool,
) -> rusqlite::Result<bool> {
    for cols in uniques {
        let args: Vec<rusqlite::types::Value> =
            cols.iter().map(|c| to_sql(row.get(c).unwrap_or(&Value::Null))).collect();
        // NULLs never clash in SQLite's unique indexes.
        if args.iter().any(|a| matches!(a, rusqlite::types::Value::Null)) {
            continue;
        }
        let cond: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
        let sql = format!("SELECT tenant_id FROM {table} WHERE {}", cond.join(" AND "));
        let mut st = conn.prepare_cached(&sql)?;
        let tenants: Vec<String> = st.query_map(params_from_iter(args), |r| r.get(0))?.collect::<Result<_, _>>()?;
        if tenants.iter().any(|t| !wiped(t)) {
            return Ok(true);
        }
    }
    Ok(false)
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

/// What the backup asks for and where, decided before planning.
pub(super) struct Scope<'a> {
    pub meta: &'a Value,
    pub categories: Vec<Category>,
    pub restore_id: String,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Plan the restore of `src` into the home at `home`, whose database `conn` is (the home's own or
/// a scratch copy of it, opened in the transaction the plan will be executed in). The backup's
/// rows are read one at a time and the planned rows kept in the plan's spool, so a plan's memory
/// does not grow with the gateway.
pub(super) fn build(
    conn: &Connection,
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    scope: Scope<'_>,
) -> GatewayResult<Plan> {
    let db = home.join(DB_FILE);
    let sqlerr = |e: rusqlite::Error| GatewayError::sql(&db, e);
    let meta = scope.meta;
    let wants = |c: Category| scope.categories.contains(&c);
    let spool = Spool::new()?;
    let mut two_factor = TwoFactor::default();
    let secrets = if wants(Category::Users) {
        two_factor_secrets(src, opts.passphrase.as_ref().map(|p| p.as_slice()), &mut two_factor)?
    } else {
        HashMap::new()
    };
    let mut tenant_rows = Vec::new();
    rows_of(src, &spool, "users/users.json", Some("tenants"), &mut |t| {
        tenant_rows.push(t);
        Ok(())
    })?;
    let tenants: Vec<String> = match &opts.into_tenant {
        Some(t) => vec![t.clone()],
        None => {
            meta["tenants"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect()
        }
    };
    let home_tenants: Vec<String> = {
        let mut st = conn.prepare("SELECT id FROM tenants ORDER BY rowid").map_err(sqlerr)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(sqlerr)?;
        rows.collect::<Result<_, _>>().map_err(sqlerr)?
    };

    // Tenants the restore writes into must exist: the backup's own tenant row when it has one
    // (restored whole); for --into-tenant, a new tenant named after its id with the backup's tier.
    let mut tenants_to_create = Vec::new();
    for t in tenants.iter().filter(|t| !home_tenants.contains(t)) {
        let from_backup = tenant_rows.iter().find(|r| r["id"].as_str() == Some(t));
        tenants_to_create.push(NewTenant {
            id: t.clone(),
            name: from_backup.and_then(|r| r["name"].as_str()).unwrap_or(t).to_string(),
            tier: from_backup.and_then(|r| r["tier"].as_str()).or(meta["tier"].as_str()).unwrap_or("community").into(),
            created_at: from_backup
                .and_then(|r| r["created_at"].as_str().map(str::to_string))
                .unwrap_or_else(|| scope.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        });
    }
    drop(tenant_rows);

    // Replacing with a backup of the whole gateway makes the home hold what the backup holds: the
    // categories in scope are cleared for every tenant of the home, not only the backup's (a fresh
    // home's placeholder tenant and its default nightly job would otherwise stay beside the
    // migrated ones and back the gateway up twice a night).
    let mut tenants_to_wipe = Vec::new();
    if opts.mode == Mode::Replace {
        tenants_to_wipe = tenants.clone();
        if opts.into_tenant.is_none() && meta["tenant_scope"].as_str() == Some("all") {
            for t in &home_tenants {
                if !tenants_to_wipe.contains(t) {
                    tenants_to_wipe.push(t.clone());
                }
            }
        }
    }
    let wiped = |t: &str| tenants_to_wipe.iter().any(|w| w == t);
    // A parent record is deleted by a replace only when its own table is in scope.
    let parent_wiped =
        |table: &str, t: &str| wiped(t) && TABLE_ORDER.iter().any(|(name, cat)| *name == table && wants(*cat));

    // Decisions are remembered for the records other rows refer to (and users, for 2FA) only: a
    // big table of leaves (memory entries, audit) is not held.
    let mut remembered: HashSet<String> = HashSet::from(["users".to_string()]);
    for (table, _) in TABLE_ORDER {
        remembered.extend(foreign_keys(conn, table).map_err(sqlerr)?.into_iter().map(|f| f.parent));
    }

    // The document files the backup's rows name: a file no row names is refused (§9.1).
    let mut named_documents: HashSet<String> = HashSet::new();
    let mut planned = Vec::new();
    let mut primary_seen = std::collections::HashSet::new();
    // What this restore decided for each record by id, table by table (parents come first).
    let mut decided: HashMap<&'static str, HashMap<String, RowAction>> = HashMap::new();
    for (table, cat) in TABLE_ORDER {
        if !wants(*cat) {
            continue;
        }
        let (pk, cols) = table_columns(conn, table, &db)?;
        let uniques = unique_columns(conn, table).map_err(sqlerr)?;
        let fks = foreign_keys(conn, table).map_err(sqlerr)?;
        let to_wipe = if tenants_to_wipe.is_empty() {
            0
        } else {
            let marks = tenants_to_wipe.iter().map(|_| "?").collect::<Vec<_>>().join(", ");
            let q = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id IN ({marks})");
            conn.query_row(&q, params_from_iter(tenants_to_wipe.iter()), |r| r.get::<_, i64>(0))
                .map_err(sqlerr)?
                .unsigned_abs()
        };
        let primary = primary_seen.insert(*cat);
        let parents = fks.iter().map(|f| (f.from.clone(), f.parent.clone())).collect();
        let mut rows = RowSpool::create(&spool, table)?;
        let remember = remembered.contains(*table);
        each_backup_row(src, &spool, table, &mut |row| {
            let Value::Object(mut m) = row else { return Ok(()) };
            if let Some(t) = &opts.into_tenant {
                m.insert("tenant_id".into(), Value::String(t.clone()));
            }
            // A user whose 2FA secret was left out of the backup (no passphrase) keeps the live
            // one: the missing secret is no difference.
            let mut secret_unknown = false;
            if *table == "users" {
                let enrolled = m.remove("totp_enrolled").and_then(|v| v.as_bool()).unwrap_or(false);
                let id = m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let secret = secrets.get(&id).cloned();
                if enrolled && secret.is_none() {
                    two_factor.reenrol.push(id);
                    secret_unknown = true;
                }
                m.insert("totp_secret".into(), secret.unwrap_or(Value::Null));
            }
            if *table == "documents" {
                if let (Some(id), Some(ext)) =
                    (m.get("id").and_then(Value::as_str), m.get("ext").and_then(Value::as_str))
                {
                    named_documents.insert(layout::document_path(id, ext));
                }
            }
            m.retain(|k, _| cols.contains(k));
            if *table == "cron_runs" {
                settle_running_claim(&mut m);
            }
            let key: Vec<String> = pk
                .iter()
                .map(|c| m.get(c).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default())
                .collect();
            // A record of a tenant being wiped is gone by the time the row is inserted.
            let present = existing(conn, table, &pk, &m, &cols)
                .map_err(sqlerr)?
                .filter(|p| !p.get("tenant_id").and_then(Value::as_str).is_some_and(wiped));
            let compared = if secret_unknown {
                let mut c = m.clone();
                c.remove("totp_secret");
                std::borrow::Cow::Owned(c)
            } else {
                std::borrow::Cow::Borrowed(&m)
            };
            let action = match present {
                Some(present) if same_record(&compared, &present) => RowAction::Unchanged,
                Some(_) => RowAction::Quarantine,
                None if clashes(conn, table, &uniques, &m, &wiped).map_err(sqlerr)? => RowAction::Quarantine,
                None if !parents_stay(conn, &fks, &m, &decided, &parent_wiped).map_err(sqlerr)? => {
                    RowAction::Quarantine
                }
                None => RowAction::Add,
            };
            drop(compared);
            if let Some(id) = m.get("id").filter(|_| remember) {
                decided.entry(table).or_default().insert(key_text(id), action);
            }
            rows.push(&RowPlan { key, action, row: m })
        })?;
        rows.close()?;
        planned.push(TablePlan { table, category: *cat, primary, to_wipe, parents, rows });
    }

    // Only a user the restore writes loses 2FA; one left as it is keeps the live secret.
    let written = |id: &String| decided.get("users").and_then(|d| d.get(id)).is_none_or(|a| *a == RowAction::Add);
    let users_to_reenrol: Vec<String> = two_factor.reenrol.iter().filter(|id| written(id)).cloned().collect();
    let files = super::files::plan_files(home, src, opts, &wants, &named_documents, &spool)?;
    Ok(Plan {
        restore_id: scope.restore_id,
        mode: opts.mode,
        scope: scope.categories.clone(),
        tenants,
        tenants_to_create,
        tenants_to_wipe,
        tables: planned,
        files,
        users_to_reenrol,
        two_factor_sealed: two_factor.sealed_unopened,
        _spool: spool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_unique_clash_is_foreseen_unless_the_clashing_record_is_wiped() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT, UNIQUE (tenant_id, name));
             INSERT INTO jobs VALUES ('new-id', 'acme', 'nightly');",
        )
        .unwrap();
        let uniques = unique_columns(&conn, "jobs").unwrap();
        assert_eq!(uniques, vec![vec!["tenant_id".to_string(), "name".to_string()]], "the primary key is not listed");
        let old = row(serde_json::json!({"id": "old-id", "tenant_id": "acme", "name": "nightly"}));
        assert!(clashes(&conn, "jobs", &uniques, &old, &|_| false).unwrap());
        assert!(!clashes(&conn, "jobs", &uniques, &old, &|t| t == "acme").unwrap(), "a wiped record does not clash");
        let other = row(serde_json::json!({"id": "old-id", "tenant_id": "globex", "name": "nightly"}));
        assert!(!clashes(&conn, "jobs", &uniques, &other, &|_| false).unwrap());
        let unnamed = row(serde_json::json!({"id": "x", "tenant_id": "acme", "name": null}));
        assert!(!clashes(&conn, "jobs", &uniques, &unnamed, &|_| false).unwrap(), "NULLs never clash");
    }
}
