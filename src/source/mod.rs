//! Where a backup's files come from and what a snapshot says it is a backup of: the virtual tree a
//! generated source (a gateway home) hands to the archive pipeline, the read access a restore
//! needs ([`BackupSource`], served by a snapshot or an export), the typed snapshot scope written
//! into every snapshot's `paths`, the layouts an export can carry, and the spool for generated
//! files too big for memory.
//!
//! Layer 4 (sources), below the operations that use it: it knows the repository's formats and
//! errors only, never an operation, the gateway, or the CLI.

pub mod scope;
pub mod spool;
pub mod virtual_tree;

use std::path::Path;

pub use crate::format::layout::{Layout, FILES_LAYOUT_VERSION, GATEWAY_LAYOUT_VERSION};
pub use scope::SnapshotScope;
pub use spool::{Spool, SpoolFile};
pub use virtual_tree::{VirtualDir, VirtualEntry};

/// Read access to a backup's files by path below the backup's root (a snapshot, an export, or an
/// incremental chain of exports), for restores that interpret a backup.
///
/// Whole reads ([`BackupSource::read`]) are for a backup's small parts; a reader of untrusted
/// bytes checks [`BackupSource::size`] against its bound first, or streams with
/// [`BackupSource::copy_into`], which never holds more than a bounded piece of a file.
pub trait BackupSource {
    fn paths(&self) -> Vec<String>;
    fn size(&self, path: &str) -> Option<u64>;
    fn read(&self, path: &str) -> crate::Result<Option<Vec<u8>>>;
    /// Stream a file into `out` in bounded pieces (an export's entry, a snapshot's chunks);
    /// returns the bytes written. A file the backup does not hold is an error.
    fn copy_into(&self, path: &str, out: &mut dyn std::io::Write) -> crate::Result<u64>;
    fn copy_to(&self, path: &str, dest: &Path) -> crate::Result<()>;
}
