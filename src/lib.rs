//! Sophon Backup: a content-addressed, deduplicating, encrypted backup engine.
//!
//! Layers (a module uses only the layers below it; `ARCHITECTURE.md` explains them and
//! `tests/layers.rs` enforces them):
//! 0 `error`, `id`, `format`, `units` · 1 `chunk`, `crypto`, `compress`, `liveness` ·
//! 2 `backend`, `pack` · 3 `index`, `repo`, `session` · 4 `archive`, `restore`, `export`, `check`,
//! `retention`, `forget`, `prune`, `source` · 5 `gateway`, `cron` · 6 the binary (`main`, `cli`).
//!
//! Every operation takes a [`Session`]: the repository with the lock it needs and a synced index.
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
