//! What a backup of a virtual tree would add, found without writing anything: the files the parent
//! snapshot lets the backup reuse are passed over as the backup passes over them, every other file
//! is chunked as the backup would chunk it and each chunk looked up in the index. The figure is the
//! data the backup would store, before compression; nothing is locked beyond the session's lock.

use std::collections::HashSet;
use std::io::Read;

use serde::Serialize;

use super::walker::{all_indexed, find, same_file};
use super::{choose_parent, this_host, BackupOptions};
use crate::chunk::Chunker;
use crate::error::{Error, Result};
use crate::format::tree::{NodeKind, Tree};
use crate::id::{BlobId, SnapshotId};
use crate::repo::Repository;
use crate::session::Session;
use crate::source::{VirtualDir, VirtualEntry};

/// A dry run of a backup: how much it would read and add.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Estimate {
    /// Every file of the tree, and its bytes.
    pub files: u64,
    pub bytes: u64,
    /// The snapshot the backup would take as its parent (the latest of the same source from this host).
    pub parent: Option<SnapshotId>,
    /// Files the parent lets the backup reuse without reading (same size, times and inode).
    pub files_unchanged: u64,
    pub bytes_unchanged: u64,
    /// Files the backup would read, and their bytes.
    pub files_to_read: u64,
    pub bytes_to_read: u64,
    /// Of the bytes read, those in chunks the repository does not hold yet: what the backup would
    /// add, before compression.
    pub bytes_new: u64,
    pub chunks_new: u64,
}

/// Estimate a backup of `root` under the source label `label` (which, with this host, picks the
/// parent as [`super::backup_virtual`] does).
pub fn estimate_virtual(session: &Session, label: &str, root: &VirtualDir, opts: &BackupOptions) -> Result<Estimate> {
    let repo = session.repo();
    let (parent, parent_tree) = choose_parent(repo, opts, &[label.to_string()], &this_host())?;
    let mut e = Estimator {
        repo,
        chunker: Chunker::new(repo.config().chunker, repo.keys().cdc_seed())?,
        seen: HashSet::new(),
        est: Estimate { parent, ..Estimate::default() },
    };
    e.dir(root, parent_tree.as_ref())?;
    Ok(e.est)
}

struct Estimator<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    /// Chunks met in this run: a second copy adds nothing.
    seen: HashSet<BlobId>,
    est: Estimate,
}

impl Estimator<'_> {
    fn dir(&mut self, dir: &VirtualDir, parent: Option<&Tree>) -> Result<()> {
        for (name, entry) in &dir.entries {
            let prev = find(parent, name);
            match entry {
                VirtualEntry::Dir(sub) => {
                    let sub_parent = match prev {
                        Some(p) if p.kind == NodeKind::Dir => p.subtree.and_then(|id| self.repo.load_tree(&id).ok()),
                        _ => None,
                    };
                    self.dir(sub, sub_parent.as_ref())?;
                }
                VirtualEntry::Bytes { data, .. } => {
                    self.read(&mut &data[..], data.len() as u64).map_err(|e| Error::io("generated file", e))?;
                }
                VirtualEntry::Spooled { path, size, .. } => {
                    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                    self.read(&mut f, *size).map_err(|e| Error::io(path, e))?;
                }
                VirtualEntry::File(path) => {
                    // What cannot be read now is reported by the backup itself, not here.
                    let Some(meta) = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file()) else { continue };
                    if let Some(p) = prev {
                        if same_file(p, &meta) && all_indexed(self.repo, &p.content)? {
                            self.est.files += 1;
                            self.est.bytes += meta.len();
                            self.est.files_unchanged += 1;
                            self.est.bytes_unchanged += meta.len();
                            continue;
                        }
                    }
                    if let Ok(mut f) = std::fs::File::open(path) {
                        let _ = self.read(&mut f, meta.len());
                    }
                }
            }
        }
        Ok(())
    }

    /// Chunk one file to read, counting the bytes of chunks neither indexed nor met before.
    fn read(&mut self, r: &mut dyn Read, size: u64) -> std::io::Result<()> {
        let Estimator { repo, chunker, seen, est } = self;
        est.files += 1;
        est.bytes += size;
        est.files_to_read += 1;
        est.bytes_to_read += size;
        chunker.reset();
        let keys = repo.keys();
        while let Some(chunk) = chunker.next_chunk(r)? {
            let id = keys.blob_id(chunk);
            if seen.insert(id) && !repo.index().contains(&id).map_err(std::io::Error::other)? {
                est.bytes_new += chunk.len() as u64;
                est.chunks_new += 1;
            }
        }
        Ok(())
    }
}
