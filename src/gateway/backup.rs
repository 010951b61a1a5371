//! A gateway backup: the dump streamed into the backup pipeline, so the documents' raw files are
//! read, chunked and sealed while the database is still being dumped.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::dump::{dump, dump_announcing, Dump, DumpOptions};
use super::Category;
use crate::archive::{self, BackupOptions, BackupOutcome, Estimate, Progress};
use crate::session::Session;
use crate::source::SnapshotScope;

/// What a gateway backup's snapshot names as its source: the home's absolute path, the categories
/// when the backup has only some of them, and, for a tenant-scoped backup, the tenant
/// ([`SnapshotScope`] writes it). Parents and retention groups are chosen by it, so each scope has
/// its own chain and a category-only backup never shares a group with full ones.
pub fn source_label(home: &Path, tenant: Option<&str>, categories: &[Category]) -> String {
    let every = Category::ALL.iter().all(|c| categories.contains(c));
    let listed: Vec<&str> = if every { Vec::new() } else { categories.iter().map(|c| c.id()).collect() };
    SnapshotScope::gateway(home, tenant).with_categories(&listed).to_string()
}

/// Back up the gateway at `home` into the session's repository. `progress` gets its totals once
/// the dump has ended (`scan_finished`); its `cancel` stops the dump and the backup alike.
pub fn backup(
    session: &Session,
    home: &Path,
    dump_opts: &DumpOptions,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> crate::Result<(BackupOutcome, Dump)> {
    let label = source_label(home, dump_opts.tenant.as_deref(), &dump_opts.categories);
    let mut dumped = None;
    let counts = Arc::clone(&progress);
    let outcome = archive::backup_virtual_streamed(session, &label, opts, progress, |announce| {
        let mut d = dump_announcing(home, dump_opts, announce, &counts.cancel)?;
        let (files, bytes) = d.root.totals();
        counts.files_total.store(files, Ordering::Relaxed);
        counts.bytes_total.store(bytes, Ordering::Relaxed);
        counts.scan_finished.store(true, Ordering::Relaxed);
        let root = std::mem::take(&mut d.root);
        dumped = Some(d);
        Ok(root)
    })?;
    let d = dumped.ok_or_else(|| crate::Error::invalid("the gateway dump ended without a result"))?;
    Ok((outcome, d))
}

/// What a backup of the gateway at `home` with `dump_opts` would read and add, without writing
/// anything: the dump is made (and its spool removed again), then
/// [`archive::estimate_virtual`] runs against the session's repository. Without a session (no
/// repository yet) everything would be new.
pub fn estimate(
    session: Option<&Session>,
    home: &Path,
    dump_opts: &DumpOptions,
    opts: &BackupOptions,
) -> crate::Result<(Estimate, Dump)> {
    let label = source_label(home, dump_opts.tenant.as_deref(), &dump_opts.categories);
    let d = dump(home, dump_opts)?;
    let estimate = match session {
        Some(s) => archive::estimate_virtual(s, &label, &d.root, opts)?,
        None => {
            let (files, bytes) = d.root.totals();
            Estimate {
                files,
                bytes,
                files_to_read: files,
                bytes_to_read: bytes,
                bytes_new: bytes,
                ..Estimate::default()
            }
        }
    };
    Ok((estimate, d))
}
