//! Storage: a small synchronous trait over whole immutable objects, so the engine never sees async
//! code. The only implementation talks to OpenDAL; its tokio runtime lives here and nowhere else.
//!
//! Contract for every backend: `write` creates an object whole (a reader never sees half of it);
//! objects are never modified after they are written; `list` streams names, so no listing is ever
//! held in memory whole.

pub mod fault;
mod opendal_backend;
mod remote;
pub mod retry;
mod url;

pub use opendal_backend::{shutdown, OpendalBackend};
pub use url::{open_url, open_url_with};

use std::fmt;

pub use bytes::Bytes;

/// What went wrong, in the terms a retry policy and an operator need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendErrorKind {
    NotFound,
    AlreadyExists,
    PermissionDenied,
    /// Worth retrying: timeouts, throttling, connection resets.
    Transient,
    /// Bad configuration: wrong URL, credentials, missing bucket.
    Config,
    /// The disk (or the quota) holding the object is full. Never retried: a full disk does not
    /// empty itself in the seconds a retry waits, and the operator must free space.
    NoSpace,
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct BackendError {
    pub kind: BackendErrorKind,
    pub op: &'static str,
    /// The object's full location (backend URL and path).
    pub location: String,
    /// What went wrong, in a line.
    pub message: String,
    /// The store's whole answer (request, response headers, body), for `--verbose`; may be empty.
    pub detail: String,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == BackendErrorKind::NoSpace {
            // The message is the same words; one line, the object's name and what is wrong.
            return write!(f, "{} {}: {NO_SPACE}", self.op, self.location);
        }
        let what = match self.kind {
            BackendErrorKind::NotFound => "not found",
            BackendErrorKind::AlreadyExists => "already exists",
            BackendErrorKind::PermissionDenied => "permission denied",
            BackendErrorKind::Transient => "temporary failure",
            BackendErrorKind::Config => "configuration error",
            BackendErrorKind::NoSpace => NO_SPACE,
            BackendErrorKind::Other => "failed",
        };
        write!(f, "{} {}: {what}: {}", self.op, self.location, self.message)
    }
}

/// What a full disk is called in every message.
pub const NO_SPACE: &str = "no space left on device";

pub type BackendResult<T> = Result<T, BackendError>;

/// One listed object: its name relative to the listed folder, and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

pub trait Backend: Send + Sync {
    /// A human-readable location (URL) for messages.
    fn location(&self) -> String;

    fn read(&self, path: &str) -> BackendResult<Vec<u8>>;

    fn read_range(&self, path: &str, offset: u64, len: u64) -> BackendResult<Vec<u8>>;

    /// Create `path` with `data` as a whole object. `Bytes`, not `Vec<u8>`: a decorator that may
    /// write again (retries) keeps a reference, not a second copy of a 16 MiB pack.
    fn write(&self, path: &str, data: Bytes) -> BackendResult<()>;

    fn delete(&self, path: &str) -> BackendResult<()>;

    /// The object's size, or `None` when it does not exist.
    fn stat(&self, path: &str) -> BackendResult<Option<u64>>;

    /// Call `f` for every object below `dir` (recursively), with names relative to `dir`.
    fn list(&self, dir: &str, f: &mut dyn FnMut(ObjectInfo) -> crate::Result<()>) -> crate::Result<()>;

    /// How many writes are worth running at once (bounded concurrency for uploads).
    fn parallel_writes(&self) -> usize {
        1
    }

    /// Whether each request crosses a network (then fewer, larger reads pay).
    fn is_remote(&self) -> bool {
        false
    }

    /// Stream a new object to `path` (exports): it appears under its name only when finished;
    /// an aborted or dropped writer leaves nothing that looks complete.
    fn writer(&self, path: &str) -> BackendResult<Box<dyn ObjectWriter>> {
        Err(BackendError {
            kind: BackendErrorKind::Config,
            op: "write",
            location: format!("{}/{path}", self.location()),
            message: "this store cannot stream an object".into(),
            detail: String::new(),
        })
    }
}

/// An object being written as a stream; memory holds a bounded buffer (parts in flight).
pub trait ObjectWriter: Send {
    fn write(&mut self, buf: &[u8]) -> BackendResult<()>;
    /// Complete the object: only now does it appear under its name.
    fn finish(self: Box<Self>) -> BackendResult<()>;
    /// Give up: a multipart upload is aborted, a temporary object removed.
    fn abort(self: Box<Self>);
}

impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn read(&self, path: &str) -> BackendResult<Vec<u8>> {
        (**self).read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> BackendResult<Vec<u8>> {
        (**self).read_range(path, offset, len)
    }
    fn write(&self, path: &str, data: Bytes) -> BackendResult<()> {
        (**self).write(path, data)
    }
    fn delete(&self, path: &str) -> BackendResult<()> {
        (**self).delete(path)
    }
    fn stat(&self, path: &str) -> BackendResult<Option<u64>> {
        (**self).stat(path)
    }
    fn list(&self, dir: &str, f: &mut dyn FnMut(ObjectInfo) -> crate::Result<()>) -> crate::Result<()> {
        (**self).list(dir, f)
    }
    fn parallel_writes(&self) -> usize {
        (**self).parallel_writes()
    }
    fn is_remote(&self) -> bool {
        (**self).is_remote()
    }
    fn writer(&self, path: &str) -> BackendResult<Box<dyn ObjectWriter>> {
        (**self).writer(path)
    }
}
