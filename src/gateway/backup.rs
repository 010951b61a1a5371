//! A gateway backup: the dump streamed into the backup pipeline, so the documents' raw files are
//! read, chunked and sealed while the database is still being dumped.

use std::path::Path;
use std::sync::Arc;

use super::dump::{dump_announcing, Dump, DumpOptions};
use super::Category;
use crate::archive::{self, BackupOptions, BackupOutcome, Progress};
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

/// Back up the gateway at `home` into the session's repository.
pub fn backup(
    session: &Session,
    home: &Path,
    dump_opts: &DumpOptions,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> crate::Result<(BackupOutcome, Dump)> {
    let label = source_label(home, dump_opts.tenant.as_deref(), &dump_opts.categories);
    let mut dumped = None;
    let outcome = archive::backup_virtual_streamed(session, &label, opts, progress, |announce| {
        let mut d = dump_announcing(home, dump_opts, announce)?;
        let root = std::mem::take(&mut d.root);
        dumped = Some(d);
        Ok(root)
    })?;
    let d = dumped.ok_or_else(|| crate::Error::invalid("the gateway dump ended without a result"))?;
    Ok((outcome, d))
}
