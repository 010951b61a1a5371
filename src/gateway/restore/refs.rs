//! The references between records (foreign keys): a backup row is added only when every record it
//! refers to will be in the home; otherwise it is quarantined with its parent.

use std::collections::HashMap;

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::plan::{to_sql, RowAction};

/// A reference from a table's column to another record (the tenant reference is left out: the
/// plan creates every tenant it writes into).
pub(super) struct ForeignKey {
    pub from: String,
    pub parent: String,
    pub to: String,
}

pub(super) fn foreign_keys(conn: &Connection, table: &str) -> rusqlite::Result<Vec<ForeignKey>> {
    let mut st = conn.prepare(&format!("PRAGMA foreign_key_list({table})"))?;
    let rows = st.query_map([], |r| {
        let to: Option<String> = r.get(4)?;
        Ok(ForeignKey { parent: r.get(2)?, from: r.get(3)?, to: to.unwrap_or_else(|| "id".into()) })
    })?;
    let all: Vec<ForeignKey> = rows.collect::<rusqlite::Result<_>>()?;
    Ok(all.into_iter().filter(|f| f.parent != "tenants").collect())
}

/// A JSON value as the text a key or reference compares by.
pub(super) fn key_text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// Whether every record `row` refers to will be there after the restore: added or left unchanged
/// by it, or present in the home and not wiped. A row whose parent is quarantined goes with it
/// (the backup's runs of a job replaced under the same name), and so does one whose parent is
/// nowhere (a category restored without the one it refers to): never a foreign-key failure.
pub(super) fn parents_stay(
    conn: &Connection,
    fks: &[ForeignKey],
    row: &Map<String, Value>,
    decided: &HashMap<&'static str, HashMap<String, RowAction>>,
    wiped: &dyn Fn(&str, &str) -> bool,
) -> rusqlite::Result<bool> {
    for fk in fks {
        let Some(v) = row.get(&fk.from).filter(|v| !v.is_null()) else { continue };
        let id = key_text(v);
        match decided.get(fk.parent.as_str()).and_then(|d| d.get(&id)) {
            Some(RowAction::Quarantine) => return Ok(false),
            Some(RowAction::Add | RowAction::Unchanged) => continue,
            None => {}
        }
        let sql = format!("SELECT tenant_id FROM {} WHERE {} = ?1", fk.parent, fk.to);
        let mut st = conn.prepare_cached(&sql)?;
        let tenants: Vec<String> = st.query_map([to_sql(v)], |r| r.get(0))?.collect::<Result<_, _>>()?;
        if !tenants.iter().any(|t| !wiped(&fk.parent, t)) {
            return Ok(false);
        }
    }
    Ok(true)
}
