//! A folder whose entries do not come from walking a folder on disk, handed to the archive
//! pipeline by a generated source (a gateway's backup layout).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::tree::Node;

/// A folder whose entries do not come from walking a folder on disk: a gateway's backup layout,
/// made of generated files and real files read at backup time. Entries are kept sorted by name.
#[derive(Clone, Debug, Default)]
pub struct VirtualDir {
    pub mode: u32,
    pub mtime_ns: i64,
    pub entries: std::collections::BTreeMap<Vec<u8>, VirtualEntry>,
}

#[derive(Clone, Debug)]
pub enum VirtualEntry {
    Dir(VirtualDir),
    /// Generated content.
    Bytes {
        data: Arc<Vec<u8>>,
        mode: u32,
        mtime_ns: i64,
    },
    /// A real file, read (or, unchanged since the parent snapshot, reused) when archived.
    File(PathBuf),
    /// Generated content too big to hold in memory, written to a temporary file; it takes this
    /// entry's mode and time, not the temporary file's.
    Spooled {
        path: PathBuf,
        size: u64,
        mode: u32,
        mtime_ns: i64,
    },
}

impl VirtualDir {
    pub fn new(mode: u32, mtime_ns: i64) -> Self {
        VirtualDir { mode, mtime_ns, entries: Default::default() }
    }

    /// Put `entry` at the slash-separated `path`, making folders on the way (with this folder's
    /// mode and time). Refuses unsafe names and a path that runs through a file.
    pub fn insert(&mut self, path: &str, entry: VirtualEntry) -> Result<()> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut dir = self;
        for (i, part) in parts.iter().enumerate() {
            if !Node::is_safe_name(part.as_bytes()) {
                return Err(Error::invalid(format!("virtual path {path:?}: unsafe component {part:?}")));
            }
            if i + 1 == parts.len() {
                dir.entries.insert(part.as_bytes().to_vec(), entry);
                return Ok(());
            }
            let (mode, mtime_ns) = (dir.mode, dir.mtime_ns);
            let next = dir
                .entries
                .entry(part.as_bytes().to_vec())
                .or_insert_with(|| VirtualEntry::Dir(VirtualDir::new(mode, mtime_ns)));
            dir = match next {
                VirtualEntry::Dir(d) => d,
                _ => return Err(Error::invalid(format!("virtual path {path:?}: {part:?} is a file"))),
            };
        }
        Ok(())
    }

    /// Files and bytes below this folder: generated sizes as held, real files as they are on disk
    /// now (one that cannot be read counts nothing).
    pub fn totals(&self) -> (u64, u64) {
        let (mut files, mut bytes) = (0u64, 0u64);
        for entry in self.entries.values() {
            match entry {
                VirtualEntry::Dir(d) => {
                    let (f, b) = d.totals();
                    files += f;
                    bytes += b;
                }
                VirtualEntry::Bytes { data, .. } => {
                    files += 1;
                    bytes += data.len() as u64;
                }
                VirtualEntry::Spooled { size, .. } => {
                    files += 1;
                    bytes += size;
                }
                VirtualEntry::File(path) => {
                    if let Some(m) = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file()) {
                        files += 1;
                        bytes += m.len();
                    }
                }
            }
        }
        (files, bytes)
    }
}
