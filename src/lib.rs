//! Sophon Backup: a content-addressed, deduplicating, encrypted backup engine.
//!
//! Layers (a module uses only the layers below it; see `../shared/DESIGN.md`):
//! 0 `error`, `id`, `format` · 1 `chunk`, `crypto`, `compress`, `liveness` · 2 `backend`, `pack` ·
//! 3 `index`, `repo`, `session` · 4 `archive`, `restore`, `check` · 5 the binary.
#![forbid(unsafe_code)]

pub mod archive;
pub mod backend;
pub mod check;
pub mod chunk;
pub mod compress;
pub mod cron;
pub mod crypto;
pub mod error;
pub mod export;
pub mod forget;
pub mod format;
pub mod gateway;
pub mod id;
pub mod index;
pub mod liveness;
pub mod pack;
pub mod prune;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod session;
pub mod source;
pub mod units;

pub use error::{Error, Result};
pub use id::{BlobId, BlobType, IndexId, KeyId, PackId, RepoId, SnapshotId};
pub use repo::{InitOptions, Repository};
pub use session::Session;
