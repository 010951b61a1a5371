//! Building a restore's plan: what the backup holds, compared with the home, decided row by row and
//! file by file before anything is written. The executor follows the plan; the dry run executes
//! the very same plan against a scratch copy of the database, so the two cannot disagree.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{params_from_iter, Connection};
use serde_json::{Map, Value};

use super::compare::{same_but_redacted, same_record};
use super::refs::{foreign_keys, key_text, parents_stay};
use super::{BackupSource, Mode, RestoreOptions};
use crate::gateway::category::{Category, NestedFile, TableFile, NESTED_FILES, TABLE_FILES};
use crate::gateway::layout::{self, DAILY_LOGS, TABLE_ORDER};
use crate::gateway::{GatewayError, GatewayResult, DB_FILE};

/// What happens to one record of the backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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

#[derive(Clone, Debug)]
pub struct RowPlan {
    /// The primary-key values, in key order.
    pub key: Vec<String>,
    pub action: RowAction,
    /// The row as it is inserted or quarantined (only the table's columns).
    pub row: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct TablePlan {
    pub table: &'static str,
    pub category: Category,
    /// The category's first table: its rows are the category's records.
    pub primary: bool,
    /// Replace: the present records of the wiped tenants that are deleted first.
    pub to_wipe: u64,
    /// The table's references to other records: (column, parent table), tenants left out.
    pub parents: Vec<(String, String)>,
    pub rows: Vec<RowPlan>,
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
#[derive(Clone, Debug)]
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
}

impl Plan {
    /// The quarantine folder, relative to the home.
    pub fn quarantine(&self) -> String {
        format!("quarantine/{}", self.restore_id)
    }

    pub fn row_quarantine_path(&self, t: &TablePlan, r: &RowPlan) -> String {
        format!("{}/{}/{}/{}.json", self.quarantine(), t.category.id(), t.table, r.key.join("_"))
    }

    pub fn file_quarantine_path(&self, f: &FilePlan) -> String {
        format!("{}/{}/{}", self.quarantine(), f.category.id(), f.home_path)
    }
}

pub(super) fn invalid(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

pub(super) fn from_crate(e: crate::Error) -> GatewayError {
    GatewayError::Invalid(e.to_string())
}

pub(super) fn json_file(src: &dyn BackupSource, path: &str) -> GatewayResult<Option<Value>> {
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

/// What the backup's users need: who must re-enrol in 2FA, and whether that is because its sealed
/// 2FA secrets were not opened (no passphrase given).
#[derive(Default)]
struct TwoFactor {
    reenrol: Vec<String>,
    sealed_unopened: bool,
}

/// The backup's records by table, its tenant rows, and what its users' 2FA needs.
fn backup_rows(
    src: &dyn BackupSource,
    wants: &dyn Fn(Category) -> bool,
    passphrase: Option<&[u8]>,
) -> GatewayResult<(Tables, Vec<Value>, TwoFactor)> {
    let mut t: Tables = BTreeMap::new();
    let mut tenants = Vec::new();
    let mut two_factor = TwoFactor::default();
    if let Some(u) = json_file(src, "users/users.json")? {
        tenants = array(u.get("tenants").cloned());
        if wants(Category::Users) {
            let secrets: HashMap<String, Value> =
                match (src.read("users/2fa-secrets.json.enc").map_err(from_crate)?, passphrase) {
                    (Some(sealed), Some(p)) => {
                        let plain = crate::gateway::sealed::open(&sealed, p, "users/2fa-secrets.json.enc")
                            .map_err(from_crate)?;
                        serde_json::from_slice(&plain).map_err(invalid)?
                    }
                    (Some(_), None) => {
                        two_factor.sealed_unopened = true;
                        HashMap::new()
                    }
                    (None, _) => HashMap::new(),
                };
            let mut users = array(u.get("users").cloned());
            for user in &mut users {
                let Some(m) = user.as_object_mut() else { continue };
                let enrolled = m.remove("totp_enrolled").and_then(|v| v.as_bool()).unwrap_or(false);
                let id = m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let secret = secrets.get(&id).cloned();
                if enrolled && secret.is_none() {
                    two_factor.reenrol.push(id);
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
    Ok((t, tenants, two_factor))
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
/// a scratch copy of it, opened in the transaction the plan will be executed in).
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
    let (mut tables, tenant_rows, two_factor) =
        backup_rows(src, &wants, opts.passphrase.as_ref().map(|p| p.as_slice()))?;
    if let Some(t) = &opts.into_tenant {
        for rows in tables.values_mut() {
            for r in rows.iter_mut() {
                if let Some(m) = r.as_object_mut() {
                    m.insert("tenant_id".into(), Value::String(t.clone()));
                }
            }
        }
    }
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

    let mut planned = Vec::new();
    let mut primary_seen = std::collections::HashSet::new();
    // What this restore decided for each record by id, table by table (parents come first).
    let mut decided: HashMap<&'static str, HashMap<String, RowAction>> = HashMap::new();
    for (table, cat) in TABLE_ORDER {
        if !wants(*cat) {
            continue;
        }
        let rows = tables.remove(table).unwrap_or_default();
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
        let mut tp = TablePlan { table, category: *cat, primary, to_wipe, parents, rows: Vec::new() };
        for row in rows {
            let Value::Object(mut m) = row else { continue };
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
            // A user whose 2FA secret was left out of the backup (no passphrase) keeps the live
            // one: the missing secret is no difference.
            let secret_unknown = *table == "users"
                && m.get("id").and_then(Value::as_str).is_some_and(|id| two_factor.reenrol.iter().any(|r| r == id));
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
            if let Some(id) = m.get("id") {
                decided.entry(table).or_default().insert(key_text(id), action);
            }
            tp.rows.push(RowPlan { key, action, row: m });
        }
        planned.push(tp);
    }

    // Only a user the restore writes loses 2FA; one left as it is keeps the live secret.
    let written = |id: &String| decided.get("users").and_then(|d| d.get(id)).is_none_or(|a| *a == RowAction::Add);
    let users_to_reenrol: Vec<String> = two_factor.reenrol.iter().filter(|id| written(id)).cloned().collect();
    let files = plan_files(home, src, opts, &wants)?;
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
    })
}

fn read_present(path: &Path) -> GatewayResult<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GatewayError::io(path, e)),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// The files beside the database and the per-tenant daily logs.
fn plan_files(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    wants: &dyn Fn(Category) -> bool,
) -> GatewayResult<Vec<FilePlan>> {
    let additive = opts.mode == Mode::Additive;
    let decide = |same: bool, present: bool| match (same, present) {
        (true, _) => FileAction::Unchanged,
        (false, true) if additive => FileAction::Quarantine,
        _ => FileAction::Write,
    };
    // Documents are compared by the SHA-256 the manifest records, so planning reads a backup's
    // document only when the hashes differ (the manifest has the database's hash, which a file
    // changed behind the gateway's back no longer matches: the bytes decide).
    let manifest: HashMap<String, String> = json_file(src, "manifest.json")?
        .and_then(|m| m.get("files").cloned())
        .map(|f| array(Some(f)))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| Some((f["path"].as_str()?.to_string(), f["sha256"].as_str()?.to_string())))
        .collect();
    let mut out = Vec::new();
    for p in src.paths() {
        let Some((cat, rel)) = layout::home_path(&p) else { continue };
        if !wants(cat) {
            continue;
        }
        let size = src.size(&p).unwrap_or(0);
        let present_path = home.join(&rel);
        if cat == Category::Documents {
            let present_len = std::fs::metadata(&present_path).ok().filter(|m| m.is_file()).map(|m| m.len());
            let same = match (present_len, manifest.get(&p)) {
                (Some(n), _) if n != size => false,
                (Some(_), known) => match read_present(&present_path)? {
                    Some(b) if known.is_some_and(|sha| *sha == sha256_hex(&b)) => true,
                    Some(b) => src.read(&p).map_err(from_crate)?.is_some_and(|d| d == b),
                    None => false,
                },
                (None, _) => false,
            };
            let action = decide(same, present_len.is_some());
            out.push(FilePlan { category: cat, home_path: rel, bytes: size, action, data: FileData::Backup(p) });
            continue;
        }
        let present = read_present(&present_path)?;
        let Some(mut data) = src.read(&p).map_err(from_crate)? else { continue };
        // A settings file is the same when its values are: the home's file may be laid out by hand.
        let mut same_values = false;
        if super::config_merge::is_settings_file(cat, &rel) {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&data) {
                let pv = present.as_ref().and_then(|p| serde_json::from_slice::<Value>(p).ok());
                super::config_merge::merge(&mut v, pv.as_ref());
                same_values = pv.as_ref() == Some(&v);
                data = serde_json::to_vec_pretty(&v).map_err(invalid)?;
                data.push(b'\n');
            }
        }
        let same = same_values
            || present.as_ref().is_some_and(|p| *p == data || (cat != Category::Config && same_but_redacted(&data, p)));
        let action = decide(same, present.is_some());
        out.push(FilePlan { category: cat, home_path: rel, bytes: size, action, data: FileData::Bytes(data) });
    }
    // Daily logs: one backup file a day, split back per tenant.
    if wants(Category::Memory) {
        for p in src.paths().into_iter().filter(|p| p.starts_with(DAILY_LOGS)) {
            let day = p.trim_start_matches(DAILY_LOGS).to_string();
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
            for (tenant, data) in per_tenant {
                let rel = layout::daily_log_home_path(&tenant, &day);
                let present = read_present(&home.join(&rel))?;
                let action = decide(present.as_ref() == Some(&data), present.is_some());
                out.push(FilePlan {
                    category: Category::Memory,
                    home_path: rel,
                    bytes: data.len() as u64,
                    action,
                    data: FileData::Bytes(data),
                });
            }
        }
    }
    Ok(out)
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
