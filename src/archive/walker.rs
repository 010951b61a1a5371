//! The walk: folders and virtual trees become tree blobs, bottom up. File contents are queued on
//! the pipeline as they are met and collected when their folder's tree is written; a file whose
//! size, times and inode match the parent snapshot's reuses its content without being read.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::pipeline::{FileContent, FileJob, JobSource, Pipeline, RawBlob, Shared};
use crate::error::{Error, Result};
use crate::format::snapshot::{SnapshotError, SnapshotSummary};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::id::{BlobId, BlobType};
use crate::repo::Repository;
use crate::source::{VirtualDir, VirtualEntry};

fn time_ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn virtual_node(name: &[u8], kind: NodeKind, mode: u32, mtime_ns: i64) -> Node {
    let mut n = Node {
        name: None,
        name_hex: None,
        kind,
        mode: mode & 0o7777,
        mtime_ns,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        size: 0,
        content: Vec::new(),
        subtree: None,
        target: None,
        target_hex: None,
    };
    n.set_name(name);
    n
}

/// A node for a filesystem entry: mode and times, plus ctime, inode and device for change detection.
fn base_node(name: &[u8], kind: NodeKind, meta: &Metadata) -> Node {
    let mut n = virtual_node(name, kind, meta.mode(), time_ns(meta.mtime(), meta.mtime_nsec()));
    n.ctime_ns = time_ns(meta.ctime(), meta.ctime_nsec());
    n.inode = meta.ino();
    n.device = meta.dev();
    n
}

/// The parent snapshot's folders along virtual paths, each loaded once.
pub(super) struct ParentDirs<'t> {
    root: Option<&'t Tree>,
    loaded: HashMap<String, Option<Tree>>,
}

impl<'t> ParentDirs<'t> {
    pub(super) fn new(root: Option<&'t Tree>) -> Self {
        ParentDirs { root, loaded: HashMap::new() }
    }

    /// The parent's node at `path` (slash-separated), if the parent has one.
    fn node(&mut self, repo: &Repository, path: &str) -> Option<Node> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => return find(self.root, path.as_bytes()).cloned(),
        };
        if !self.loaded.contains_key(dir) {
            let tree = self.load(repo, dir);
            self.loaded.insert(dir.to_string(), tree);
        }
        find(self.loaded.get(dir).and_then(Option::as_ref), name.as_bytes()).cloned()
    }

    fn load(&mut self, repo: &Repository, dir: &str) -> Option<Tree> {
        let node = self.node(repo, dir)?;
        if node.kind != NodeKind::Dir {
            return None;
        }
        repo.load_tree(&node.subtree?).ok()
    }
}

pub(super) struct Walker<'a> {
    shared: &'a Arc<Shared>,
    file_tx: Sender<FileJob>,
    blob_tx: Sender<RawBlob>,
    errors: Vec<SnapshotError>,
    summary: SnapshotSummary,
    /// Real files of a virtual tree queued before the tree was done, by real path.
    prefetched: HashMap<PathBuf, Pending>,
}

/// A node waiting for its file's chunks.
enum Pending {
    Ready(Node),
    File(Node, Receiver<std::result::Result<FileContent, String>>, PathBuf),
    Failed,
}

impl<'a> Walker<'a> {
    pub(super) fn new(shared: &'a Arc<Shared>, pipeline: &Pipeline) -> Self {
        Walker {
            shared,
            file_tx: pipeline.file_tx.clone(),
            blob_tx: pipeline.blob_tx.clone(),
            errors: Vec::new(),
            summary: SnapshotSummary::default(),
            prefetched: HashMap::new(),
        }
    }

    /// What the walk found, with its senders to the pipeline dropped.
    pub(super) fn finish(self) -> (Vec<SnapshotError>, SnapshotSummary) {
        (self.errors, self.summary)
    }

    fn record(&mut self, path: &Path, error: impl std::fmt::Display) {
        self.errors.push(SnapshotError { path: path.to_string_lossy().into_owned(), error: error.to_string() });
    }

    pub(super) fn archive_roots(
        &mut self,
        roots: &[(PathBuf, Vec<u8>, Metadata)],
        parent: Option<&Tree>,
    ) -> Result<BlobId> {
        let mut pending = Vec::new();
        for (path, name, meta) in roots {
            let p = self.entry(path, name, meta, find(parent, name), &HashSet::new())?;
            pending.push(p);
        }
        self.finish_tree(pending)
    }

    pub(super) fn archive_virtual(&mut self, dir: &VirtualDir, parent: Option<&Tree>) -> Result<BlobId> {
        let mut pending = Vec::with_capacity(dir.entries.len());
        for (name, entry) in &dir.entries {
            let prev = find(parent, name);
            match entry {
                VirtualEntry::Dir(sub) => {
                    self.summary.dirs += 1;
                    let sub_parent = match prev {
                        Some(p) if p.kind == NodeKind::Dir => {
                            p.subtree.and_then(|id| self.shared.repo.load_tree(&id).ok())
                        }
                        _ => None,
                    };
                    let mut node = virtual_node(name, NodeKind::Dir, sub.mode, sub.mtime_ns);
                    node.subtree = Some(self.archive_virtual(sub, sub_parent.as_ref())?);
                    pending.push(Pending::Ready(node));
                }
                VirtualEntry::Bytes { data, mode, mtime_ns } => {
                    let source = JobSource::Bytes(Arc::clone(data));
                    pending.push(self.generated(name, data.len() as u64, *mode, *mtime_ns, source)?);
                }
                VirtualEntry::Spooled { path, size, mode, mtime_ns } => {
                    pending.push(self.generated(name, *size, *mode, *mtime_ns, JobSource::Path(path.clone()))?);
                }
                VirtualEntry::File(path) if self.prefetched.contains_key(path) => {
                    pending.extend(self.prefetched.remove(path));
                }
                VirtualEntry::File(path) => match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_file() => pending.push(self.entry(path, name, &meta, prev, &HashSet::new())?),
                    Ok(_) => self.record(path, "not a regular file"),
                    Err(e) => self.record(path, e),
                },
            }
        }
        self.finish_tree(pending)
    }

    /// Queue generated content for reading; it is always new (it has no change time to compare).
    fn generated(&mut self, name: &[u8], size: u64, mode: u32, mtime_ns: i64, source: JobSource) -> Result<Pending> {
        if self.shared.stopping() {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        self.summary.files += 1;
        self.summary.bytes += size;
        self.summary.files_new += 1;
        let mut node = virtual_node(name, NodeKind::File, mode, mtime_ns);
        node.size = size;
        let (tx, rx) = bounded(1);
        if self.file_tx.send(FileJob { source, reply: tx }).is_err() {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        Ok(Pending::File(node, rx, PathBuf::from(String::from_utf8_lossy(name).into_owned())))
    }

    /// Queue the real file `real`, which will sit at `virtual_path` of a virtual tree, for reading
    /// now (or reuse it from the parent snapshot). Anything but a regular file is left to the walk,
    /// which reports it.
    pub(super) fn prefetch(&mut self, virtual_path: &str, real: PathBuf, parents: &mut ParentDirs<'_>) -> Result<()> {
        let Ok(meta) = std::fs::symlink_metadata(&real) else { return Ok(()) };
        if !meta.is_file() || self.prefetched.contains_key(&real) {
            return Ok(());
        }
        let name = virtual_path.rsplit('/').next().unwrap_or(virtual_path).as_bytes().to_vec();
        let prev = parents.node(&self.shared.repo, virtual_path);
        let pending = self.entry(&real, &name, &meta, prev.as_ref(), &HashSet::new())?;
        self.prefetched.insert(real, pending);
        Ok(())
    }

    fn archive_dir(&mut self, dir: &Path, parent: Option<&Tree>) -> Result<Option<BlobId>> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.record(dir, e);
                return Ok(None);
            }
        };
        let mut entries = Vec::new();
        for ent in rd {
            match ent {
                Ok(ent) => entries.push(ent.file_name()),
                Err(e) => self.record(dir, e),
            }
        }
        entries.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut found = Vec::with_capacity(entries.len());
        for name in entries {
            let path = dir.join(&name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) => found.push((path, OsStr::as_bytes(&name).to_vec(), meta)),
                Err(e) => self.record(&path, e),
            }
        }
        let verified = self.indexed_of_unchanged(&found, parent)?;
        let mut pending = Vec::with_capacity(found.len());
        for (path, name, meta) in found {
            let p = self.entry(&path, &name, &meta, find(parent, &name), &verified)?;
            pending.push(p);
        }
        self.finish_tree(pending).map(Some)
    }

    /// The blobs of the folder's unchanged files (by [`same_file`]) that the index holds, asked in
    /// one batch rather than blob by blob as each file is met.
    fn indexed_of_unchanged(
        &self,
        found: &[(PathBuf, Vec<u8>, Metadata)],
        parent: Option<&Tree>,
    ) -> Result<HashSet<BlobId>> {
        let mut ids: Vec<BlobId> = found
            .iter()
            .filter_map(|(_, name, meta)| find(parent, name).filter(|prev| same_file(prev, meta)))
            .flat_map(|prev| prev.content.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let live = self.shared.repo.index().contains_many(&ids)?;
        Ok(ids.into_iter().zip(live).filter_map(|(id, live)| live.then_some(id)).collect())
    }

    /// `verified`: blobs already known to be in the index (see [`Self::indexed_of_unchanged`]).
    fn entry(
        &mut self,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
        parent: Option<&Node>,
        verified: &HashSet<BlobId>,
    ) -> Result<Pending> {
        if self.shared.stopping() {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        let ft = meta.file_type();
        if ft.is_file() {
            self.summary.files += 1;
            self.summary.bytes += meta.len();
            let mut node = base_node(name, NodeKind::File, meta);
            node.size = meta.len();
            if let Some(prev) = parent {
                if same_file(prev, meta) && self.all_indexed(&prev.content, verified)? {
                    node.content = prev.content.clone();
                    self.summary.files_unmodified += 1;
                    self.shared.progress.files_done.fetch_add(1, Ordering::Relaxed);
                    self.shared.progress.bytes_done.fetch_add(node.size, Ordering::Relaxed);
                    return Ok(Pending::Ready(node));
                }
                self.summary.files_changed += 1;
            } else {
                self.summary.files_new += 1;
            }
            let (tx, rx) = bounded(1);
            if self.file_tx.send(FileJob { source: JobSource::Path(path.to_path_buf()), reply: tx }).is_err() {
                return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
            }
            Ok(Pending::File(node, rx, path.to_path_buf()))
        } else if ft.is_dir() {
            self.summary.dirs += 1;
            let mut node = base_node(name, NodeKind::Dir, meta);
            let sub_parent = match parent {
                Some(p) if p.kind == NodeKind::Dir => p.subtree.and_then(|id| self.shared.repo.load_tree(&id).ok()),
                _ => None,
            };
            match self.archive_dir(path, sub_parent.as_ref())? {
                Some(id) => {
                    node.subtree = Some(id);
                    Ok(Pending::Ready(node))
                }
                None => Ok(Pending::Failed),
            }
        } else if ft.is_symlink() {
            let mut node = base_node(name, NodeKind::Symlink, meta);
            match std::fs::read_link(path) {
                Ok(t) => {
                    node.set_target(t.as_os_str().as_bytes());
                    Ok(Pending::Ready(node))
                }
                Err(e) => {
                    self.record(path, e);
                    Ok(Pending::Failed)
                }
            }
        } else {
            self.record(path, "skipped: not a regular file, folder or symlink (device, socket or fifo)");
            Ok(Pending::Failed)
        }
    }

    fn all_indexed(&self, content: &[BlobId], verified: &HashSet<BlobId>) -> Result<bool> {
        for id in content {
            if !verified.contains(id) && !self.shared.repo.index().contains(id)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn finish_tree(&mut self, pending: Vec<Pending>) -> Result<BlobId> {
        let mut nodes = Vec::with_capacity(pending.len());
        for p in pending {
            match p {
                Pending::Ready(n) => nodes.push(n),
                Pending::Failed => {}
                Pending::File(mut node, rx, path) => match rx.recv() {
                    Ok(Ok(c)) => {
                        node.size = c.size;
                        node.content = c.content;
                        self.shared.progress.files_done.fetch_add(1, Ordering::Relaxed);
                        nodes.push(node);
                    }
                    Ok(Err(e)) => {
                        if self.shared.aborted.load(Ordering::Relaxed) {
                            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
                        }
                        self.record(&path, e);
                    }
                    Err(_) => return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted"))),
                },
            }
        }
        let tree = Tree { nodes };
        let bytes = tree.encode()?;
        if bytes.len() > crate::compress::MAX_BLOB_SIZE {
            return Err(Error::invalid("a folder has too many entries for one tree blob (limit 64 MiB of metadata)"));
        }
        let id = self.shared.repo.keys().blob_id(&bytes);
        if self.shared.claim(&id)? && self.blob_tx.send(RawBlob { blob_type: BlobType::Tree, id, data: bytes }).is_err()
        {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        Ok(id)
    }
}

/// Whether the parent snapshot's `prev` describes the file `meta` describes, unchanged (same size,
/// times and inode): its content is then reused, as long as the index holds it, without reading.
pub(super) fn same_file(prev: &Node, meta: &Metadata) -> bool {
    prev.kind == NodeKind::File
        && prev.size == meta.len()
        && prev.mtime_ns == time_ns(meta.mtime(), meta.mtime_nsec())
        && prev.ctime_ns == time_ns(meta.ctime(), meta.ctime_nsec())
        && prev.inode == meta.ino()
}

/// Whether the index holds every blob of `content`.
pub(super) fn all_indexed(repo: &Repository, content: &[BlobId]) -> Result<bool> {
    for id in content {
        if !repo.index().contains(id)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The parent's node of the same name. Decoded trees are sorted by name bytes, so this is a binary search.
pub(super) fn find<'t>(tree: Option<&'t Tree>, name: &[u8]) -> Option<&'t Node> {
    let nodes = &tree?.nodes;
    let i = nodes.binary_search_by(|n| n.name_bytes().unwrap_or_default().as_slice().cmp(name)).ok()?;
    nodes.get(i)
}
