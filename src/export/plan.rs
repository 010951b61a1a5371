//! What an export holds, in archive order: the snapshot's tree under `backup/`, then the
//! generated `metadata.json` and `manifest.json`. For an incremental export, only the files that
//! differ from the snapshot the previous export was made from (and the folders leading to them).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::id::{BlobId, SnapshotId};
use crate::repo::Repository;
use crate::source::SnapshotScope;

/// The folder every archive unpacks to.
pub const ROOT: &str = "backup";

#[derive(Clone, Debug)]
pub enum EntryKind {
    Dir,
    File { size: u64, content: Vec<BlobId> },
    Symlink { target: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Path below `backup/`, slash-separated.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
}

/// The files of a snapshot (path below `backup/` → content), for comparing two snapshots.
pub type FileIndex = BTreeMap<String, (u64, Vec<BlobId>)>;

/// A gateway snapshot's files carry the product page's layout; any other snapshot is a folder
/// backup, whose roots sit under `backup/` by name.
pub fn is_gateway(snapshot: &Snapshot) -> bool {
    SnapshotScope::from_paths(&snapshot.paths).is_gateway()
}

/// Every entry of `snapshot`'s tree, depth first in name order (trees are sorted).
pub fn entries(repo: &Repository, snapshot: &Snapshot, id: &SnapshotId) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(repo, &snapshot.tree, "", &mut out, id)?;
    Ok(out)
}

fn walk(repo: &Repository, tree: &BlobId, prefix: &str, out: &mut Vec<Entry>, snap: &SnapshotId) -> Result<()> {
    for node in repo.load_tree(tree)?.nodes {
        let raw = node.name_bytes()?;
        let name = String::from_utf8(raw).map_err(|e| {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Error::invalid(format!(
                "snapshot {}: {prefix}{lossy}: the name is not UTF-8, which zip and PAX names must be; \
                 restore this snapshot with `backup restore --target` instead",
                snap.short()
            ))
        })?;
        let path = format!("{prefix}{name}");
        let (mode, mtime) = (node.mode, node.mtime_ns.div_euclid(1_000_000_000));
        match node.kind {
            NodeKind::Dir => {
                out.push(Entry { path: path.clone(), kind: EntryKind::Dir, mode, mtime });
                if let Some(sub) = node.subtree {
                    walk(repo, &sub, &format!("{path}/"), out, snap)?;
                }
            }
            NodeKind::File => {
                let kind = EntryKind::File { size: node.size, content: node.content };
                out.push(Entry { path, kind, mode, mtime });
            }
            NodeKind::Symlink => {
                let target = node.target_bytes()?;
                out.push(Entry { path, kind: EntryKind::Symlink { target }, mode, mtime });
            }
        }
    }
    Ok(())
}

pub fn file_index(entries: &[Entry]) -> FileIndex {
    entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { size, content } => Some((e.path.clone(), (*size, content.clone()))),
            _ => None,
        })
        .collect()
}

/// Keep only the files that are new or changed against `previous` (and the folders above them);
/// returns the paths `previous` had that are gone.
pub fn keep_changed(entries: &mut Vec<Entry>, previous: &FileIndex) -> Vec<String> {
    let current = file_index(entries);
    let deleted = previous.keys().filter(|p| !current.contains_key(*p)).cloned().collect();
    let changed: Vec<bool> = entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { size, content } => previous.get(&e.path) != Some(&(*size, content.clone())),
            EntryKind::Symlink { .. } => true,
            EntryKind::Dir => false,
        })
        .collect();
    let mut needed_dirs = std::collections::HashSet::new();
    for (e, keep) in entries.iter().zip(&changed) {
        if *keep {
            let mut p = e.path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                needed_dirs.insert(parent.to_string());
                p = parent;
            }
        }
    }
    let mut i = 0;
    entries.retain(|e| {
        let keep = changed[i] || (matches!(e.kind, EntryKind::Dir) && needed_dirs.contains(&e.path));
        i += 1;
        keep
    });
    deleted
}
