//! Executing a restore's plan inside one database transaction, and the report it produces. The same
//! code runs for the real restore (the home's database, files staged) and for the dry run (a
//! scratch copy of the database, nothing staged), so whatever the real run would meet, from a
//! clashing record to a foreign key, the dry run meets too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rusqlite::{params_from_iter, Transaction};

use super::compare::has_redacted;
use super::plan::{invalid, row_quarantine_path, to_sql, FileAction, FileData, Plan, RowAction};
use super::refs::key_text;
use super::{BackupSource, CategoryPlan, Mode, RestoreReport, TableCounts};
use crate::gateway::category::Category;
use crate::gateway::journal::Stager;
use crate::gateway::layout::TABLE_ORDER;
use crate::gateway::{GatewayError, GatewayResult, RefusedRow, DB_FILE};

/// What execution did: the wiped tenants left with no record, which are removed; each table's
/// rows by what happened to them (category, whether its rows are the category's records, counts);
/// the added records whose secrets were redacted.
pub(super) struct Executed {
    pub tenants_removed: Vec<String>,
    tables: Vec<(Category, bool, TableCounts)>,
    redacted: Redacted,
    /// The first quarantined records, `table/key`.
    conflicts: Vec<String>,
}

/// Carry out `plan` in `tx`. A row the database refuses with a UNIQUE constraint the plan could not
/// foresee (two rows of the backup clashing with each other) is quarantined, with the rows that
/// refer to it, and the plan updated to say so; any other refusal fails the restore, naming the
/// table and row.
pub(super) fn execute(
    tx: &Transaction<'_>,
    home: &Path,
    src: &dyn BackupSource,
    plan: &mut Plan,
    stager: &mut Stager<'_>,
    dry_run: bool,
) -> GatewayResult<Executed> {
    let db = home.join(DB_FILE);
    let sqlerr = |e: rusqlite::Error| GatewayError::sql(&db, e);
    let would = if dry_run { "dry run: the restore would fail: " } else { "" };

    for t in &plan.tenants_to_create {
        tx.execute(
            "INSERT INTO tenants (id, name, tier, created_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![t.id, t.name, t.tier, t.created_at],
        )
        .map_err(|e| refused(home, "tenants", &t.id, dry_run, e))?;
    }

    let mut tenants_removed = Vec::new();
    if plan.mode == Mode::Replace && !plan.tenants_to_wipe.is_empty() {
        let marks = plan.tenants_to_wipe.iter().map(|_| "?").collect::<Vec<_>>().join(", ");
        // Children first: the plan's tables are in insertion order.
        for tp in plan.tables.iter_mut().rev() {
            let table = tp.table;
            tp.to_wipe = tx
                .execute(
                    &format!("DELETE FROM {table} WHERE tenant_id IN ({marks})"),
                    params_from_iter(plan.tenants_to_wipe.iter()),
                )
                .map_err(|e| {
                    invalid(format!(
                        "{would}replace: clearing {table} in {} failed ({e}); restore the categories that depend on it too",
                        home.display()
                    ))
                })? as u64;
        }
        // A home tenant the backup does not have, left with nothing, goes too.
        for t in plan.tenants_to_wipe.iter().filter(|t| !plan.tenants.contains(t)) {
            let mut empty = true;
            for (table, _) in TABLE_ORDER.iter() {
                let q = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1");
                if tx.query_row(&q, [t], |r| r.get::<_, i64>(0)).map_err(sqlerr)? > 0 {
                    empty = false;
                    break;
                }
            }
            // A row elsewhere that still names it (a foreign key) keeps it: not an error.
            if empty && tx.execute("DELETE FROM tenants WHERE id = ?1", [t]).is_ok() {
                tenants_removed.push(t.clone());
            }
        }
    }

    // The planned rows are read back one at a time and counted as they are executed: a row the
    // database refuses with a UNIQUE constraint is quarantined, and so is what refers to it.
    let quarantine = plan.quarantine();
    let mut tables = Vec::new();
    let mut redacted = Redacted::default();
    let mut conflicts = Vec::new();
    // Records the plan meant to add and execution quarantined: whatever refers to them follows.
    let mut late: HashMap<&'static str, HashSet<String>> = HashMap::new();
    for tp in &plan.tables {
        let table = tp.table;
        let mut counts = TableCounts {
            table: table.to_string(),
            category: tp.category.id().into(),
            wiped: tp.to_wipe,
            ..Default::default()
        };
        tp.rows.for_each(&mut |mut row| {
            let qpath = row_quarantine_path(&quarantine, tp, &row);
            let orphaned = tp.parents.iter().any(|(col, parent)| {
                row.row
                    .get(col)
                    .is_some_and(|v| late.get(parent.as_str()).is_some_and(|ids| ids.contains(&key_text(v))))
            });
            if row.action == RowAction::Add && orphaned {
                row.action = RowAction::Quarantine;
                if let Some(id) = row.row.get("id") {
                    late.entry(table).or_default().insert(key_text(id));
                }
            }
            match row.action {
                RowAction::Unchanged => {}
                RowAction::Quarantine => {
                    stager.put(&qpath, &serde_json::to_vec_pretty(&row.row).map_err(invalid)?)?;
                }
                RowAction::Add => {
                    let names: Vec<&str> = row.row.keys().map(String::as_str).collect();
                    let sql = format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.join(", "),
                        (1..=names.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
                    );
                    let args: Vec<rusqlite::types::Value> = row.row.values().map(to_sql).collect();
                    let mut st = tx.prepare_cached(&sql).map_err(sqlerr)?;
                    match st.execute(params_from_iter(args)) {
                        Ok(_) => {}
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                        {
                            row.action = RowAction::Quarantine;
                            if let Some(id) = row.row.get("id") {
                                late.entry(table).or_default().insert(key_text(id));
                            }
                            stager.put(&qpath, &serde_json::to_vec_pretty(&row.row).map_err(invalid)?)?;
                        }
                        Err(e) => return Err(refused(home, table, &row.key.join("/"), dry_run, e)),
                    }
                }
            }
            match row.action {
                RowAction::Add => {
                    counts.added += 1;
                    if has_redacted(&row.row) {
                        redacted.note(table, row.key.join("/"));
                    }
                }
                RowAction::Unchanged => counts.unchanged += 1,
                RowAction::Quarantine => {
                    counts.quarantined += 1;
                    if conflicts.len() < super::CONFLICTS_LISTED {
                        conflicts.push(format!("{table}/{}", row.key.join("/")));
                    }
                }
            }
            Ok(())
        })?;
        tables.push((tp.category, tp.primary, counts));
    }

    for f in &plan.files {
        let rel = match f.action {
            FileAction::Unchanged => continue,
            FileAction::Write => f.home_path.clone(),
            FileAction::Quarantine => plan.file_quarantine_path(f),
        };
        match &f.data {
            FileData::Bytes(b) => stager.put(&rel, b)?,
            FileData::Spooled(from) => stager
                .copy(&rel, |dest| std::fs::copy(from, dest).map(|_| ()).map_err(|e| GatewayError::io(dest, e)))?,
            FileData::Backup(path) => stager
                .copy(&rel, |dest| src.copy_to(path, dest).map_err(|e| invalid(format!("backup file {path}: {e}"))))?,
        }
    }
    Ok(Executed { tenants_removed, tables, redacted, conflicts })
}

/// Added records whose secrets were redacted, by what must be done about them.
#[derive(Default)]
pub(super) struct Redacted {
    connections: Vec<String>,
    nodes: Vec<String>,
    webhooks: Vec<String>,
    channels: Vec<String>,
}

impl Redacted {
    fn note(&mut self, table: &str, id: String) {
        match table {
            "connections" => self.connections.push(id),
            "nodes" => self.nodes.push(id),
            "webhooks" => self.webhooks.push(id),
            "channels" => self.channels.push(id),
            _ => {}
        }
    }
}

fn refused(home: &Path, table: &str, row: &str, dry_run: bool, error: rusqlite::Error) -> GatewayError {
    GatewayError::RestoreRefused(Box::new(RefusedRow {
        home: home.to_path_buf(),
        table: table.to_string(),
        row: row.to_string(),
        dry_run,
        error,
    }))
}

/// The report of an executed plan: its counts are the plan's, after execution.
pub(super) fn report(home: &Path, plan: &Plan, executed: Executed, dry_run: bool) -> RestoreReport {
    let mut report = RestoreReport {
        restore_id: plan.restore_id.clone(),
        dry_run,
        mode: if plan.mode == Mode::Replace { "replace".into() } else { "additive".into() },
        users_to_reenrol: plan.users_to_reenrol.clone(),
        two_factor_sealed: plan.two_factor_sealed,
        tenants_to_create: plan.tenants_to_create.iter().map(|t| t.id.clone()).collect(),
        tenants_to_wipe: plan.tenants_to_wipe.clone(),
        tenants_removed: executed.tenants_removed,
        ..Default::default()
    };
    let mut cats: BTreeMap<Category, CategoryPlan> =
        plan.scope.iter().map(|c| (*c, CategoryPlan { category: c.id().into(), ..Default::default() })).collect();
    for (category, primary, counts) in executed.tables {
        let c = cats.entry(category).or_default();
        if primary {
            c.records += counts.added + counts.unchanged + counts.quarantined;
        }
        c.added += counts.added;
        c.unchanged += counts.unchanged;
        c.quarantined += counts.quarantined;
        report.tables.push(counts);
    }
    report.connections_to_reauthenticate = executed.redacted.connections;
    report.nodes_to_repair = executed.redacted.nodes;
    report.webhooks_with_redacted_secrets = executed.redacted.webhooks;
    report.channels_with_redacted_secrets = executed.redacted.channels;
    report.conflicts = executed.conflicts;
    for f in &plan.files {
        let c = cats.entry(f.category).or_default();
        c.files += 1;
        c.bytes += f.bytes;
        match f.action {
            FileAction::Write => c.added += 1,
            FileAction::Unchanged => c.unchanged += 1,
            FileAction::Quarantine => {
                c.quarantined += 1;
                if report.conflicts.len() < super::CONFLICTS_LISTED {
                    report.conflicts.push(format!("file {}", f.home_path));
                }
            }
        }
    }
    report.categories = cats.into_values().collect();
    report.total_bytes = report.categories.iter().map(|c| c.bytes).sum();
    if report.categories.iter().any(|c| c.quarantined > 0) {
        report.quarantine = Some(home.join(plan.quarantine()).to_string_lossy().into_owned());
    }
    report
}
