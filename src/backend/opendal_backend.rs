//! [`Backend`] over an OpenDAL operator, driven by one shared tokio runtime.

use std::sync::{Arc, Mutex};

use opendal::{blocking, ErrorKind, Operator};

use super::{Backend, BackendError, BackendErrorKind, BackendResult, Bytes, ObjectInfo};

/// One runtime for every backend in the process: OpenDAL's blocking operator spawns each call on it.
/// It is held in a slot rather than a plain static so that [`shutdown`] can end it: SFTP's ssh
/// sessions live in tasks on it, and only dropping those tasks closes their control masters.
static RT: Mutex<Option<Arc<tokio::runtime::Runtime>>> = Mutex::new(None);

fn runtime() -> Arc<tokio::runtime::Runtime> {
    let mut slot = RT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    slot.get_or_insert_with(|| {
        Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sophon-io")
                .enable_all()
                .build()
                .expect("the tokio runtime starts"),
        )
    })
    .clone()
}

/// Ends the runtime of every backend: each connection it holds is closed (an SFTP store's ssh
/// control master is told to exit; OpenDAL starts it with `ControlPersist=yes`, so without this it
/// outlives the process). Call it when the process has finished with its stores; a store used
/// afterwards starts a new runtime and new connections.
pub fn shutdown() {
    let taken = RT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    if let Some(rt) = taken {
        // Another thread still inside a call holds a clone; the runtime then ends when it lets go.
        if let Ok(rt) = Arc::try_unwrap(rt) {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

#[derive(Clone)]
pub struct OpendalBackend {
    op: Arc<blocking::Operator>,
    /// The same store, async, for whole-object writes that must be aborted when they fail.
    plain: Operator,
    /// The same store for streaming writers (with retries of each part on remote stores).
    streaming: Operator,
    location: String,
    /// Write under a temporary name and rename: for stores whose writes are visible while they
    /// run (SFTP).
    rename_writes: bool,
    parallel_writes: usize,
}

impl OpendalBackend {
    pub fn new(op: Operator, location: String) -> BackendResult<Self> {
        let rt = runtime();
        let _guard = rt.enter();
        let streaming = op.clone();
        let plain = op.clone();
        let op = blocking::Operator::new(op).map_err(|e| convert("open", &location, "", e))?;
        Ok(OpendalBackend { op: Arc::new(op), plain, streaming, location, rename_writes: false, parallel_writes: 1 })
    }

    /// Streaming writers go through `layer` (a retry layer for the parts of an upload).
    pub fn with_streaming(mut self, layer: impl FnOnce(Operator) -> Operator) -> Self {
        self.streaming = layer(self.streaming);
        self
    }

    /// Up to `n` uploads at once (remote stores).
    pub fn with_parallel_writes(mut self, n: usize) -> Self {
        self.parallel_writes = n.max(1);
        self
    }

    pub fn with_rename_writes(mut self) -> Self {
        self.rename_writes = true;
        self
    }

    /// One listing call on the root: fails when the store is unreachable, refuses the
    /// credentials, or its bucket, container or folder does not exist.
    pub fn probe(&self) -> BackendResult<()> {
        let opts = opendal::options::ListOptions { limit: Some(1), ..Default::default() };
        let lister = self.op.lister_options("/", opts).map_err(|e| self.err("list", "", e))?;
        if let Some(first) = lister.into_iter().next() {
            first.map_err(|e| self.err("list", "", e))?;
        }
        Ok(())
    }

    fn loc(&self, path: &str) -> String {
        format!("{}/{}", self.location.trim_end_matches('/'), path)
    }

    fn err(&self, op: &'static str, path: &str, e: opendal::Error) -> BackendError {
        convert(op, &self.location, path, e)
    }

    /// Write `data` to `path` in one go. A write that fails is aborted: on a local folder OpenDAL
    /// writes `.tmp/NAME.RANDOM` and renames it into place, and without the abort that temporary
    /// file would stay (on a full disk, holding the space the next write needs).
    fn write_whole(&self, path: &str, data: Bytes) -> opendal::Result<()> {
        let op = self.plain.clone();
        let path = path.to_string();
        runtime().block_on(async move {
            let mut w = op.writer(&path).await?;
            let written = match w.write(data).await {
                Ok(()) => w.close().await.map(|_| ()),
                Err(e) => Err(e),
            };
            if written.is_err() {
                let _ = w.abort().await;
            }
            written
        })
    }
}

/// True when `e` comes from a full disk or an exceeded quota (ENOSPC, EDQUOT): OpenDAL reports
/// every local I/O error as a temporary one, but retrying a full disk only delays the message.
fn is_no_space(e: &opendal::Error) -> bool {
    use std::io::ErrorKind as Io;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), Io::StorageFull | Io::QuotaExceeded) {
                return true;
            }
        }
        cause = c.source();
    }
    // The source is the `io::Error` above; its kind's words stand in the message as well.
    let m = e.message();
    m == Io::StorageFull.to_string() || m == Io::QuotaExceeded.to_string()
}

fn convert(op: &'static str, location: &str, path: &str, e: opendal::Error) -> BackendError {
    let kind = match e.kind() {
        _ if is_no_space(&e) => BackendErrorKind::NoSpace,
        ErrorKind::NotFound => BackendErrorKind::NotFound,
        ErrorKind::AlreadyExists => BackendErrorKind::AlreadyExists,
        ErrorKind::PermissionDenied => BackendErrorKind::PermissionDenied,
        ErrorKind::ConfigInvalid => BackendErrorKind::Config,
        _ if e.is_temporary() => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    };
    let location =
        if path.is_empty() { location.to_string() } else { format!("{}/{}", location.trim_end_matches('/'), path) };
    let message = if kind == BackendErrorKind::NoSpace { super::NO_SPACE.to_string() } else { concise(&e) };
    BackendError { kind, op, location, message, detail: e.to_string() }
}

/// The store's own words in a line: `NoSuchBucket: The specified bucket does not exist`, not the
/// request, the response headers and the request id (those are in the detail).
fn concise(e: &opendal::Error) -> String {
    let m = e.message();
    let field = |name: &str| {
        let start = m.find(&format!("{name}: \""))? + name.len() + 3;
        let len = m[start..].find('"')?;
        Some(&m[start..start + len])
    };
    let tag = |name: &str| {
        let start = m.find(&format!("<{name}>"))? + name.len() + 2;
        let len = m[start..].find(['<', '\n'])?;
        Some(&m[start..start + len])
    };
    let line = match (field("code").or_else(|| tag("Code")), field("message").or_else(|| tag("Message"))) {
        (Some(code), Some(text)) if !text.is_empty() => format!("{code}: {text}"),
        (Some(code), _) => code.to_string(),
        _ => m.lines().next().unwrap_or("").to_string(),
    };
    let line = if line.is_empty() { e.kind().to_string() } else { line };
    const MAX: usize = 200;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

impl Backend for OpendalBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn read(&self, path: &str) -> BackendResult<Vec<u8>> {
        self.op.read(path).map(|b| b.to_vec()).map_err(|e| self.err("read", path, e))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> BackendResult<Vec<u8>> {
        let reader = self.op.reader(path).map_err(|e| self.err("read", path, e))?;
        let buf = reader.read(offset..offset + len).map_err(|e| self.err("read", path, e))?;
        if buf.len() as u64 != len {
            return Err(BackendError {
                kind: BackendErrorKind::Other,
                op: "read",
                location: self.loc(path),
                message: format!("short read: {} of {len} bytes at offset {offset}", buf.len()),
                detail: String::new(),
            });
        }
        Ok(buf.to_vec())
    }

    fn write(&self, path: &str, data: Bytes) -> BackendResult<()> {
        if !self.rename_writes {
            return self.write_whole(path, data).map_err(|e| self.err("write", path, e));
        }
        let tmp = temp_name(path);
        if let Err(e) = self.op.write(&tmp, data) {
            // A half-written temporary must not stay behind (on a full disk, holding its space).
            let _ = self.op.delete(&tmp);
            return Err(self.err("write", &tmp, e));
        }
        if let Err(e) = self.op.rename(&tmp, path) {
            let _ = self.op.delete(&tmp);
            return Err(self.err("write", path, e));
        }
        Ok(())
    }

    fn delete(&self, path: &str) -> BackendResult<()> {
        self.op.delete(path).map_err(|e| self.err("delete", path, e))
    }

    fn stat(&self, path: &str) -> BackendResult<Option<u64>> {
        match self.op.stat(path) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", path, e)),
        }
    }

    fn parallel_writes(&self) -> usize {
        self.parallel_writes
    }

    /// Only remote stores are given parallel writes (`remote.rs`).
    fn is_remote(&self) -> bool {
        self.parallel_writes > 1
    }

    fn writer(&self, path: &str) -> BackendResult<Box<dyn super::ObjectWriter>> {
        let target = if self.rename_writes { temp_name(path) } else { path.to_string() };
        let future = self.streaming.writer_with(&target).chunk(STREAM_CHUNK).concurrent(STREAM_PARTS_IN_FLIGHT);
        let w = runtime()
            .block_on(std::future::IntoFuture::into_future(future))
            .map_err(|e| self.err("write", &target, e))?;
        Ok(Box::new(StreamWriter { w: Some(w), backend: self.clone(), target, path: path.to_string() }))
    }

    fn list(&self, dir: &str, f: &mut dyn FnMut(ObjectInfo) -> crate::Result<()>) -> crate::Result<()> {
        let dir = format!("{}/", dir.trim_end_matches('/'));
        let opts = opendal::options::ListOptions { recursive: true, ..Default::default() };
        let lister = match self.op.lister_options(&dir, opts) {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("list", &dir, e).into()),
        };
        for entry in lister {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(self.err("list", &dir, e).into()),
            };
            if entry.metadata().is_dir() {
                continue;
            }
            let full = entry.path();
            let name = full.strip_prefix(dir.as_str()).unwrap_or(full).to_string();
            if name.is_empty() || name.starts_with('.') {
                continue;
            }
            let mut size = entry.metadata().content_length();
            if size == 0 {
                // Some services leave the size out of listings; ask for it.
                size = self.stat(full)?.unwrap_or(0);
            }
            f(ObjectInfo { name, size })?;
        }
        Ok(())
    }
}

/// Parts of a streamed upload: 8 MiB each, 4 in flight, so an export holds at most 32 MiB (plus
/// the part being filled) whatever its size.
const STREAM_CHUNK: usize = 8 << 20;
const STREAM_PARTS_IN_FLIGHT: usize = 4;

/// A hidden name beside `path` (listings skip names starting with a dot).
fn temp_name(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let nonce = hex::encode(crate::crypto::random_array::<6>().unwrap_or_default());
    if dir.is_empty() {
        format!(".{name}.{nonce}.tmp")
    } else {
        format!("{dir}/.{name}.{nonce}.tmp")
    }
}

struct StreamWriter {
    w: Option<opendal::Writer>,
    backend: OpendalBackend,
    /// Where the bytes go; `path` itself unless the store needs a rename at the end.
    target: String,
    path: String,
}

impl super::ObjectWriter for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> BackendResult<()> {
        let Some(w) = self.w.as_mut() else { return Err(self.backend.err("write", &self.target, closed())) };
        runtime().block_on(w.write(buf.to_vec())).map_err(|e| self.backend.err("write", &self.target, e))
    }

    fn finish(mut self: Box<Self>) -> BackendResult<()> {
        let Some(mut w) = self.w.take() else { return Err(self.backend.err("write", &self.target, closed())) };
        if let Err(e) = runtime().block_on(w.close()) {
            // Not finished: nothing may be left under a temporary name either.
            let _ = runtime().block_on(w.abort());
            if self.target != self.path {
                let _ = self.backend.op.delete(&self.target);
            }
            return Err(self.backend.err("write", &self.target, e));
        }
        if self.target != self.path {
            if let Err(e) = self.backend.op.rename(&self.target, &self.path) {
                let _ = self.backend.op.delete(&self.target);
                return Err(self.backend.err("write", &self.path, e));
            }
        }
        Ok(())
    }

    fn abort(self: Box<Self>) {
        // Dropping an unfinished writer aborts it (below).
    }
}

impl Drop for StreamWriter {
    /// A writer dropped unfinished (an error unwinding past it) is aborted.
    fn drop(&mut self) {
        if let Some(mut w) = self.w.take() {
            let _ = runtime().block_on(w.abort());
            if self.target != self.path {
                let _ = self.backend.op.delete(&self.target);
            }
        }
    }
}

fn closed() -> opendal::Error {
    opendal::Error::new(ErrorKind::Unexpected, "the writer was already finished")
}
