//! Restoring a gateway backup into a gateway home: additively (present and equal: skip; absent:
//! add; present and different: keep the present one and quarantine the backup's), or by replacing
//! the tenant-scoped data of the categories in scope; selectively (`only`), into another tenant, or
//! as a dry run that writes nothing.
//!
//! A restore is planned, then executed from the plan ([`plan`], `execute`): every record and file
//! is decided first, and execution follows the decisions. A dry run executes the same plan against
//! a scratch copy of the database outside the home and discards it, so it reports what the real
//! run would do, including a restore the database would refuse.
//!
//! Atomicity: every record change happens in one SQLite transaction; files are staged and recorded
//! in the restore journal ([`crate::gateway::journal`]) in that transaction, and moved into place
//! after it commits.

mod compare;
mod config_merge;
mod execute;
mod files;
mod parts;
pub mod plan;
mod refs;
mod report;

pub use crate::source::BackupSource;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::category::Category;
use super::journal::Stager;
use super::layout::LAYOUT_VERSION;
use super::{open_home, GatewayError, GatewayResult, DB_FILE};
use plan::{invalid, json_file, Plan, Scope};

/// Finish an interrupted restore (kept here too: callers know it as `restore::recover`).
pub use super::journal::recover;
pub use report::replace_confirmation;

/// How many conflicts (records and files quarantined) a report names; the counts cover them all.
pub const CONFLICTS_LISTED: usize = 200;

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

/// A category's counts: records (its first table's rows), then rows and files together by what
/// happens to them (`added`: inserted or written; `unchanged`: present and equal, a redacted value
/// counting as equal; `quarantined`: the present one kept, the backup's put in the quarantine).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CategoryPlan {
    pub category: String,
    pub records: u64,
    pub added: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A table's rows by what happens to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableCounts {
    pub table: String,
    pub category: String,
    /// Replace: present records deleted first.
    pub wiped: u64,
    pub added: u64,
    pub unchanged: u64,
    pub quarantined: u64,
}

/// What a restore did, or (a dry run) would do: the counts of its executed plan.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    pub restore_id: String,
    pub dry_run: bool,
    pub mode: String,
    pub categories: Vec<CategoryPlan>,
    pub tables: Vec<TableCounts>,
    pub tenants_to_create: Vec<String>,
    /// Replace: the tenants whose records of the categories in scope were deleted first.
    pub tenants_to_wipe: Vec<String>,
    /// Wiped home tenants the backup does not have, left with no record and removed.
    pub tenants_removed: Vec<String>,
    pub total_bytes: u64,
    pub quarantine: Option<String>,
    pub connections_to_reauthenticate: Vec<String>,
    pub nodes_to_repair: Vec<String>,
    pub webhooks_with_redacted_secrets: Vec<String>,
    pub channels_with_redacted_secrets: Vec<String>,
    pub users_to_reenrol: Vec<String>,
    /// The backup seals its users' 2FA secrets and the restore was given no passphrase to open
    /// them: `users_to_reenrol` lists who loses 2FA, and a restore with the passphrase keeps it.
    pub two_factor_sealed: bool,
    /// Redacted settings (`file#/json/pointer`, live value kept or left out) to check or enter again.
    pub settings_to_enter: Vec<String>,
    /// The first [`CONFLICTS_LISTED`] records (`table/key`) and files (`file PATH`) quarantined, in
    /// plan order. Not in the CLI's `--json` (which stays as it was); the dashboard lists them.
    #[serde(skip)]
    pub conflicts: Vec<String>,
}

/// What a gateway backup holds, from its `metadata.json`: to offer its categories before a restore
/// and to check whom it concerns.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupInfo {
    pub categories: Vec<Category>,
    pub tenants: Vec<String>,
    /// `all` for a backup of the whole gateway, else the tenant it was made of.
    pub tenant_scope: String,
}

/// Read what `src` holds (its metadata, within its cap); an error when it is not a gateway backup
/// of a layout this build reads.
pub fn describe(src: &dyn BackupSource) -> GatewayResult<BackupInfo> {
    let meta =
        json_file(src, "metadata.json")?.ok_or_else(|| invalid("not a gateway backup: it has no metadata.json"))?;
    check_layout(&meta)?;
    Ok(BackupInfo {
        categories: meta["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str()?.parse().ok())
            .collect(),
        tenants: meta["tenants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        tenant_scope: meta["tenant_scope"].as_str().unwrap_or("all").to_string(),
    })
}

fn check_layout(meta: &serde_json::Value) -> GatewayResult<()> {
    let layout = meta["layout_version"].as_u64().unwrap_or(0);
    if layout != u64::from(LAYOUT_VERSION) {
        return Err(invalid(format!(
            "backup layout version {layout} is not supported (this build reads {LAYOUT_VERSION}); upgrade sophon"
        )));
    }
    Ok(())
}

/// Restore `src` into the gateway at `home` (with `dry_run`: rehearse it and write nothing).
pub fn restore(home: &Path, src: &dyn BackupSource, opts: &RestoreOptions) -> GatewayResult<RestoreReport> {
    restore_checked(home, src, opts, None)
}

/// Restore `src` as a dry run showed it (`shown`, its report), for a front end that shows the plan
/// and asks before it executes (the dashboard). The home may have changed since the dry run, so the
/// restore is planned again inside its write transaction, executed there, and committed only when
/// its report equals `shown` (the same counts, tenants, conflicts and needs-action lists; see
/// `report::differences`). Otherwise the transaction is rolled back, the staged files are
/// discarded, and [`GatewayError::PlanChanged`] names each difference: nothing was written.
pub fn restore_as_shown(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    shown: &RestoreReport,
) -> GatewayResult<RestoreReport> {
    let opts = RestoreOptions { dry_run: false, ..opts.clone() };
    restore_checked(home, src, &opts, Some(shown))
}

fn restore_checked(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    shown: Option<&RestoreReport>,
) -> GatewayResult<RestoreReport> {
    let meta =
        json_file(src, "metadata.json")?.ok_or_else(|| invalid("not a gateway backup: it has no metadata.json"))?;
    check_layout(&meta)?;
    refuse_into_tenant_of_several(&meta, opts)?;
    let in_backup: Vec<Category> =
        meta["categories"].as_array().into_iter().flatten().filter_map(|c| c.as_str()?.parse().ok()).collect();
    for c in &opts.only {
        if !in_backup.contains(c) {
            return Err(invalid(format!("--only {c}: the backup does not hold that category")));
        }
    }
    let categories: Vec<Category> = if opts.only.is_empty() { in_backup } else { opts.only.clone() };
    let now = chrono::Utc::now();
    let restore_id = format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        u32::from_le_bytes(crate::crypto::random_array().map_err(plan::from_crate)?)
    );
    let settings = config_merge::settings_to_enter(home, src, &categories)?;
    let scope = Scope { meta: &meta, categories, restore_id, now };
    let report = if opts.dry_run {
        rehearse(home, src, opts, scope)
    } else {
        run(home, src, opts, scope, &|r| {
            let Some(shown) = shown else { return Ok(()) };
            let now = RestoreReport { settings_to_enter: settings.clone(), ..r.clone() };
            let changed = report::differences(shown, &now);
            if changed.is_empty() {
                Ok(())
            } else {
                Err(GatewayError::PlanChanged(changed.join("; ")))
            }
        })
    };
    report.map(|r| RestoreReport { settings_to_enter: settings, ..r })
}

/// `--into-tenant` re-homes the records of one tenant. A backup of several tenants is refused
/// rather than merged: their records would clash with each other on names and ids.
fn refuse_into_tenant_of_several(meta: &serde_json::Value, opts: &RestoreOptions) -> GatewayResult<()> {
    let Some(into) = &opts.into_tenant else { return Ok(()) };
    let tenants: Vec<&str> = meta["tenants"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
    if tenants.len() <= 1 {
        return Ok(());
    }
    Err(GatewayError::Usage(format!(
        "--into-tenant {into}: the backup holds {} tenants ({}), and --into-tenant restores a backup of one tenant; \
         back one tenant up with `sophon backup create --tenant <id>` and restore that, or restore this backup \
         without --into-tenant",
        tenants.len(),
        tenants.join(", ")
    )))
}

/// The real run; `approve` sees the report before the transaction commits, and an error from it
/// rolls everything back.
fn run(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    scope: Scope<'_>,
    approve: &dyn Fn(&RestoreReport) -> GatewayResult<()>,
) -> GatewayResult<RestoreReport> {
    recover(home)?;
    let db = home.join(DB_FILE);
    let sqlerr = |e: rusqlite::Error| GatewayError::sql(&db, e);
    let mut conn = open_home(home)?;
    // Planned inside the write transaction, so the home cannot change between plan and execution.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlerr)?;
    let mut plan: Plan = plan::build(&tx, home, src, opts, scope)?;
    let mut stager = Stager::new(home, &plan.restore_id, true);
    let executed = execute::execute(&tx, home, src, &mut plan, &mut stager, false)
        .and_then(|ex| stager.record(&tx).map(|()| ex).map_err(sqlerr));
    let report = executed.and_then(|ex| {
        let report = execute::report(home, &plan, ex, false);
        approve(&report).map(|()| report)
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // Nothing was committed: the staged files are no one's.
            drop(tx);
            stager.discard();
            return Err(e);
        }
    };
    tx.commit().map_err(sqlerr)?;
    // Committed: from here on the restore is rolled forward, even after a crash.
    stager.finish(&conn)?;
    Ok(report)
}

/// The dry run: the same plan, built and executed the same way, against a scratch copy of the
/// database; nothing is staged and the copy is discarded.
fn rehearse(
    home: &Path,
    src: &dyn BackupSource,
    opts: &RestoreOptions,
    scope: Scope<'_>,
) -> GatewayResult<RestoreReport> {
    let scratch = Scratch::copy_of(home)?;
    let sqlerr = |e: rusqlite::Error| GatewayError::sql(home.join(DB_FILE), e);
    // Opened as a home, so an older schema is upgraded in the copy exactly as the real run would.
    let mut conn = open_home(&scratch.0)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlerr)?;
    let mut plan = plan::build(&tx, home, src, opts, scope)?;
    let mut stager = Stager::new(home, &plan.restore_id, false);
    let executed = execute::execute(&tx, home, src, &mut plan, &mut stager, true)?;
    // Committed in the copy: a check the database makes only at commit fails the dry run too.
    tx.commit()
        .map_err(|e| invalid(format!("dry run: the restore would fail: committing into {}: {e}", home.display())))?;
    drop(conn);
    drop(scratch);
    Ok(execute::report(home, &plan, executed, true))
}

/// A private copy of a home's database in a fresh folder outside the home, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn copy_of(home: &Path) -> GatewayResult<Scratch> {
        let source = open_read_only(home)?;
        let suffix = hex::encode(crate::crypto::random_array::<8>().map_err(plan::from_crate)?);
        let dir = std::env::temp_dir().join(format!("sophon-restore-dry-run-{suffix}"));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700); // the copy holds the home's secrets
        builder.create(&dir).map_err(|e| GatewayError::io(&dir, e))?;
        let scratch = Scratch(dir);
        let target = scratch.0.join(DB_FILE);
        source
            .execute("VACUUM INTO ?1", [target.to_string_lossy()])
            .map_err(|e| GatewayError::sql(home.join(DB_FILE), e))?;
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    // The copy is upgraded like the home would be; a version this build does not know is refused.
    if !(i64::from(super::MIN_SCHEMA_VERSION)..=i64::from(super::SCHEMA_VERSION)).contains(&found) {
        return Err(GatewayError::UnsupportedSchema { path: db, found, supported: super::SCHEMA_VERSION });
    }
    Ok(conn)
}
