//! Records and bytes per category and per tenant of a gateway home.
//!
//! A category's *records* are the rows of its primary table (for the file-only categories: the
//! files — config files, MCP config files, the license key); its *rows* are the rows of all of its
//! tables (history and links included); *files* and *bytes* count the files that belong to it.
//! A row's bytes are the sum of its values' lengths (text and blobs in bytes, numbers as text), so
//! the figure does not depend on how SQLite lays out pages. Everything is read inside one read
//! transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::category::Category;
use super::schema::{open_home, SCHEMA_VERSION};
use super::{GatewayError, GatewayResult, DB_FILE, LICENSE_FILE};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub records: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, o: &Count) {
        self.records += o.records;
        self.rows += o.rows;
        self.files += o.files;
        self.bytes += o.bytes;
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.rows == 0 && self.files == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantStats {
    pub id: String,
    pub name: String,
    pub tier: String,
    /// Every tenant-scoped category, in the product page's order.
    pub categories: BTreeMap<Category, Count>,
    pub total: Count,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStats {
    pub home: PathBuf,
    pub schema_version: u32,
    /// Every category, over all tenants, plus the gateway-wide files.
    pub categories: BTreeMap<Category, Count>,
    pub tenants: Vec<TenantStats>,
    /// Rows and files that name a tenant (or agent, or document) that does not exist, per category
    /// (only categories that have any). Included in `categories` and `total`.
    pub unassigned: BTreeMap<Category, Count>,
    pub total: Count,
    /// The size of `gateway.db` and its write-ahead log on disk.
    pub database_bytes: u64,
}

/// Count a gateway home. Refuses what [`open_home`] refuses.
pub fn stats(home: &Path) -> GatewayResult<GatewayStats> {
    let conn = open_home(home)?;
    let db = home.join(DB_FILE);
    let sql = |e| GatewayError::sql(&db, e);
    let tx = conn.unchecked_transaction().map_err(sql)?;

    let mut tenants: Vec<TenantStats> = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id, name, tier FROM tenants ORDER BY id").map_err(sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(sql)?;
        for row in rows {
            let (id, name, tier) = row.map_err(sql)?;
            let categories =
                Category::ALL.iter().filter(|c| !c.is_gateway_wide()).map(|c| (*c, Count::default())).collect();
            tenants.push(TenantStats { id, name, tier, categories, total: Count::default() });
        }
    }
    let index: HashMap<String, usize> = tenants.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
    let mut unassigned: BTreeMap<Category, Count> = BTreeMap::new();
    let mut categories: BTreeMap<Category, Count> = Category::ALL.iter().map(|c| (*c, Count::default())).collect();

    // Rows, per table, grouped by tenant.
    for cat in Category::ALL {
        for (i, table) in cat.tables().iter().enumerate() {
            for (tenant, n, bytes) in table_counts(&tx, &db, table)? {
                let c = Count { records: if i == 0 { n } else { 0 }, rows: n, files: 0, bytes };
                add(&mut tenants, &index, &mut unassigned, &tenant, cat, &c);
            }
        }
    }

    // Files of tenant-scoped categories: agents' folders, daily logs, documents.
    let owners = |q: &str| -> GatewayResult<HashMap<String, String>> {
        let mut stmt = tx.prepare(q).map_err(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    };
    let agent_owner = owners("SELECT id, tenant_id FROM agents")?;
    let doc_owner = owners("SELECT id, tenant_id FROM documents")?;
    for (name, files, bytes) in subdirs(&home.join("agents"))? {
        let tenant = agent_owner.get(&name).map(String::as_str).unwrap_or("");
        add(
            &mut tenants,
            &index,
            &mut unassigned,
            tenant,
            Category::Agents,
            &Count { files, bytes, ..Count::default() },
        );
    }
    for (name, files, bytes) in subdirs(&home.join("memory/daily-logs"))? {
        add(
            &mut tenants,
            &index,
            &mut unassigned,
            &name,
            Category::Memory,
            &Count { files, bytes, ..Count::default() },
        );
    }
    for (name, files, bytes) in subdirs(&home.join("documents/files"))? {
        let id = name.split('.').next().unwrap_or("");
        let tenant = doc_owner.get(id).map(String::as_str).unwrap_or("");
        add(
            &mut tenants,
            &index,
            &mut unassigned,
            tenant,
            Category::Documents,
            &Count { files, bytes, ..Count::default() },
        );
    }

    // Gateway-wide files.
    let config = home.join("config");
    for (name, files, bytes) in subdirs(&config)? {
        let cat = if name == "mcp.json" || name == "mcp-server.json" {
            Some(Category::Mcp)
        } else if name == "appsettings.json" || (name.starts_with("appsettings.") && name.ends_with(".json")) {
            Some(Category::Config)
        } else {
            None
        };
        if let Some(c) = cat.and_then(|cat| categories.get_mut(&cat)) {
            c.add(&Count { records: files, rows: 0, files, bytes });
        }
    }
    let (files, bytes) = tree_size(&home.join(LICENSE_FILE))?;
    if let Some(c) = categories.get_mut(&Category::License) {
        c.add(&Count { records: files, rows: 0, files, bytes });
    }
    drop(tx);

    for t in &mut tenants {
        for (cat, c) in &t.categories {
            t.total.add(c);
            if let Some(total) = categories.get_mut(cat) {
                total.add(c);
            }
        }
    }
    for (cat, c) in &unassigned {
        if let Some(total) = categories.get_mut(cat) {
            total.add(c);
        }
    }
    let mut total = Count::default();
    for c in categories.values() {
        total.add(c);
    }
    let database_bytes =
        [DB_FILE, "gateway.db-wal"].iter().map(|f| std::fs::metadata(home.join(f)).map(|m| m.len()).unwrap_or(0)).sum();
    Ok(GatewayStats {
        home: home.to_path_buf(),
        schema_version: SCHEMA_VERSION,
        categories,
        tenants,
        unassigned,
        total,
        database_bytes,
    })
}

fn add(
    tenants: &mut [TenantStats],
    index: &HashMap<String, usize>,
    unassigned: &mut BTreeMap<Category, Count>,
    tenant: &str,
    cat: Category,
    c: &Count,
) {
    match index.get(tenant).and_then(|&i| tenants.get_mut(i)).and_then(|t| t.categories.get_mut(&cat)) {
        Some(slot) => slot.add(c),
        None => unassigned.entry(cat).or_default().add(c),
    }
}

/// (tenant_id, rows, bytes) of one table.
fn table_counts(conn: &Connection, db: &Path, table: &str) -> GatewayResult<Vec<(String, u64, u64)>> {
    let sql = |e| GatewayError::sql(db, e);
    let columns: Vec<String> = {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).map_err(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(1)).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    if columns.is_empty() {
        return Err(GatewayError::Invalid(format!("gateway database {}: table {table} is missing", db.display())));
    }
    let bytes: Vec<String> =
        columns.iter().map(|c| format!("coalesce(length(CAST(\"{}\" AS BLOB)), 0)", c.replace('"', "\"\""))).collect();
    let q = format!(
        "SELECT coalesce(tenant_id, ''), count(*), coalesce(sum({}), 0) FROM \"{table}\" GROUP BY tenant_id",
        bytes.join(" + ")
    );
    let mut stmt = conn.prepare(&q).map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// (name, files, bytes) of each entry of `dir`, a folder counted recursively; nothing if `dir` is
/// absent.
fn subdirs(dir: &Path) -> GatewayResult<Vec<(String, u64, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GatewayError::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|err| GatewayError::io(dir, err))?;
        let (files, bytes) = tree_size(&e.path())?;
        out.push((e.file_name().to_string_lossy().into_owned(), files, bytes));
    }
    out.sort();
    Ok(out)
}

/// Regular files and their bytes below `path` (or `path` itself); symlinks are not followed.
fn tree_size(path: &Path) -> GatewayResult<(u64, u64)> {
    let mut stack = vec![path.to_path_buf()];
    let (mut files, mut bytes) = (0, 0);
    while let Some(p) = stack.pop() {
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(GatewayError::io(&p, e)),
        };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).map_err(|e| GatewayError::io(&p, e))? {
                stack.push(e.map_err(|e| GatewayError::io(&p, e))?.path());
            }
        } else if m.is_file() {
            files += 1;
            bytes += m.len();
        }
    }
    Ok((files, bytes))
}
