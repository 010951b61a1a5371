//! Which export an incremental one follows: the newest export of the snapshot's scope at the
//! destination (`format-spec/export.md` §5, "Writing an incremental").

use std::path::Path;

use super::destination::{Listed, Place};
use super::Previous;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::session::Session;
use crate::source::SnapshotScope;

/// Why an incremental export is not written over an existing archive: chains follow export ids,
/// so replacing any link, the one followed or an older one, breaks every chain through it.
pub const NEVER_REPLACES: &str =
    "already exists, and an incremental export never replaces an archive (it may be a link of \
     the chain, such as the export it would follow); give each incremental its own name";

#[derive(Debug, thiserror::Error)]
pub enum PreviousError {
    /// `target` names the archive that would have been written.
    #[error("{target}: {NEVER_REPLACES}")]
    WouldReplace { target: String },

    #[error("no earlier export of {scope} in {place}: make a full export first (without --incremental)")]
    NoEarlierExport { scope: String, place: String },

    #[error("export {0}: its metadata names no snapshot")]
    NoSnapshot(String),
}

impl From<PreviousError> for Error {
    fn from(e: PreviousError) -> Self {
        match e {
            PreviousError::NoEarlierExport { .. } => Error::NotFound(e.to_string()),
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// The export an incremental one written to the file `out` follows: the newest of the same scope
/// beside it. `out` must not exist yet.
pub fn previous_beside(
    session: &Session,
    id: &SnapshotId,
    out: &Path,
    cache_dir: &Path,
    pass: Option<&[u8]>,
) -> Result<Previous> {
    if out.exists() {
        return Err(PreviousError::WouldReplace { target: out.display().to_string() }.into());
    }
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let place = Place::Folder(dir.to_path_buf());
    previous_at(session, id, &place, &dir.display().to_string(), cache_dir, pass)
}

/// The newest export of snapshot `id`'s scope at `place` (`where_` names it). Archives whose
/// metadata cannot be read (another passphrase, damage) cannot be followed, and are passed over.
pub fn previous_at(
    session: &Session,
    id: &SnapshotId,
    place: &Place,
    where_: &str,
    cache_dir: &Path,
    pass: Option<&[u8]>,
) -> Result<Previous> {
    let scope = SnapshotScope::from_paths(&session.load_snapshot(id)?.paths).to_string();
    let (listed, _unreadable) = place.archives(where_, cache_dir, pass)?;
    let newest = newest_of_scope(listed, &scope)
        .ok_or_else(|| PreviousError::NoEarlierExport { scope: scope.clone(), place: where_.to_string() })?;
    let e = &newest.metadata.export;
    let export_id = e.id.clone().unwrap_or_default();
    let snapshot: SnapshotId = e
        .snapshot
        .as_deref()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| PreviousError::NoSnapshot(export_id.clone()))?;
    Ok(Previous {
        base_id: e.incremental.as_ref().map_or_else(|| export_id.clone(), |i| i.base.clone()),
        sequence: e.incremental.as_ref().map_or(0, |i| i.sequence),
        export_id,
        snapshot,
        archive: newest.name.clone(),
    })
}

/// The newest (by `created`, then `sequence`) of the archives whose scope is `scope`.
fn newest_of_scope(listed: Vec<Listed>, scope: &str) -> Option<Listed> {
    let mut best: Option<(String, Listed)> = None;
    for l in listed {
        let e = &l.metadata.export;
        if e.scope.as_deref() != Some(scope) {
            continue;
        }
        let created = e.created.clone().unwrap_or_default();
        let seq = e.incremental.as_ref().map_or(0, |i| i.sequence);
        let key = format!("{created}#{seq:020}");
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, l));
        }
    }
    best.map(|(_, l)| l)
}
