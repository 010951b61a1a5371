//! Fault injection, for tests of everything above the storage layer: a decorator that fails a
//! share of calls (transient or permanent errors, chosen by a seeded generator so a failing run can
//! be replayed), or fails every call from the N-th on, or cuts a write part-way (the object is
//! left half-written where the store allows that, as a dying client would leave it). It can also
//! run another client's work at an exact step (before the N-th call), to test what an operation
//! does when something happens beside it at that moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Backend, BackendError, BackendErrorKind, BackendResult, Bytes, ObjectInfo};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Fail this share (0..=1) of calls with a transient error.
    Transient(f64),
    /// Fail this share of calls with a permanent error.
    Permanent(f64),
    /// Succeed for the first N calls, then fail every call permanently.
    PermanentAfter(u64),
    /// The N-th write of a pack (an object under `data/`, counting from 1) stores only the first
    /// half of its bytes and fails: an upload cut part-way.
    CutWrite(u64),
    /// A streamed upload fails once it has taken this many bytes (a connection lost mid-upload).
    CutStream(u64),
}

pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    fault: Fault,
    rng: Mutex<u64>,
    calls: AtomicU64,
    writes: AtomicU64,
    injected: Arc<AtomicU64>,
    hook: Mutex<Option<Hook>>,
    write_hook: Mutex<Option<WriteHook>>,
}

/// Work run once, before the call with this number (counting from 1).
type Hook = (u64, Box<dyn FnOnce() + Send>);

/// Work run once, before the `at`-th write under `prefix`.
struct WriteHook {
    prefix: String,
    at: u64,
    seen: u64,
    work: Option<Box<dyn FnOnce() + Send>>,
}

impl FaultyBackend {
    pub fn new(inner: Arc<dyn Backend>, fault: Fault, seed: u64) -> Self {
        FaultyBackend {
            inner,
            fault,
            rng: Mutex::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            calls: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            injected: Arc::new(AtomicU64::new(0)),
            hook: Mutex::new(None),
            write_hook: Mutex::new(None),
        }
    }

    /// Run `work` once, just before the `call`-th call (counting from 1) goes through; the call
    /// waits for it. A call number the operation never reaches runs nothing.
    pub fn before_call(self, call: u64, work: impl FnOnce() + Send + 'static) -> Self {
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some((call, Box::new(work)));
        self
    }

    /// Run `work` once, just before the `n`-th write (counting from 1) of an object whose path
    /// starts with `prefix` (`data/`: a pack; `index/`: a segment) goes through; the write waits
    /// for it. Where a call number is not known ahead (a run whose reads vary), this reaches a
    /// given point of a backup exactly.
    pub fn before_write(self, prefix: &str, n: u64, work: impl FnOnce() + Send + 'static) -> Self {
        *self.write_hook.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(WriteHook { prefix: prefix.to_string(), at: n, seen: 0, work: Some(Box::new(work)) });
        self
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn chance(&self) -> f64 {
        let mut x = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn error(&self, op: &'static str, path: &str, kind: BackendErrorKind) -> BackendError {
        self.injected.fetch_add(1, Ordering::Relaxed);
        BackendError {
            kind,
            op,
            location: format!("{}/{path}", self.inner.location()),
            message: format!(
                "injected {} fault",
                if kind == BackendErrorKind::Transient { "transient" } else { "permanent" }
            ),
            detail: String::new(),
        }
    }

    /// The fault for this call, if any.
    fn check(&self, op: &'static str, path: &str) -> BackendResult<()> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let due = {
            let mut hook = self.hook.lock().unwrap_or_else(|p| p.into_inner());
            if hook.as_ref().is_some_and(|(at, _)| *at == n) {
                hook.take()
            } else {
                None
            }
        };
        if let Some((_, work)) = due {
            work();
        }
        match self.fault {
            Fault::Transient(p) if self.chance() < p => Err(self.error(op, path, BackendErrorKind::Transient)),
            Fault::Permanent(p) if self.chance() < p => Err(self.error(op, path, BackendErrorKind::Other)),
            Fault::PermanentAfter(after) if n > after => Err(self.error(op, path, BackendErrorKind::Other)),
            _ => Ok(()),
        }
    }
}

impl Backend for FaultyBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self, path: &str) -> BackendResult<Vec<u8>> {
        self.check("read", path)?;
        self.inner.read(path)
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> BackendResult<Vec<u8>> {
        self.check("read", path)?;
        self.inner.read_range(path, offset, len)
    }

    fn write(&self, path: &str, data: Bytes) -> BackendResult<()> {
        self.check("write", path)?;
        let n = if path.starts_with("data/") { self.writes.fetch_add(1, Ordering::Relaxed) + 1 } else { 0 };
        let due = {
            let mut hook = self.write_hook.lock().unwrap_or_else(|p| p.into_inner());
            match hook.as_mut() {
                Some(h) if path.starts_with(&h.prefix) => {
                    h.seen += 1;
                    if h.seen == h.at {
                        h.work.take()
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        if let Some(work) = due {
            work();
        }
        if n > 0 && self.fault == Fault::CutWrite(n) {
            let half = data.slice(..data.len() / 2);
            let _ = self.inner.write(path, half);
            return Err(self.error("write", path, BackendErrorKind::Other));
        }
        self.inner.write(path, data)
    }

    fn delete(&self, path: &str) -> BackendResult<()> {
        self.check("delete", path)?;
        self.inner.delete(path)
    }

    fn stat(&self, path: &str) -> BackendResult<Option<u64>> {
        self.check("stat", path)?;
        self.inner.stat(path)
    }

    fn list(&self, dir: &str, f: &mut dyn FnMut(ObjectInfo) -> crate::Result<()>) -> crate::Result<()> {
        self.check("list", dir)?;
        self.inner.list(dir, f)
    }

    fn parallel_writes(&self) -> usize {
        self.inner.parallel_writes()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn writer(&self, path: &str) -> BackendResult<Box<dyn super::ObjectWriter>> {
        self.check("write", path)?;
        let inner = self.inner.writer(path)?;
        match self.fault {
            Fault::CutStream(limit) => Ok(Box::new(CutStreamWriter {
                inner,
                left: limit,
                location: format!("{}/{path}", self.inner.location()),
                counter: Arc::clone(&self.injected),
                cut: false,
            })),
            _ => Ok(inner),
        }
    }
}

/// A stream that fails once `left` bytes have gone through.
struct CutStreamWriter {
    inner: Box<dyn super::ObjectWriter>,
    left: u64,
    location: String,
    counter: Arc<AtomicU64>,
    cut: bool,
}

impl CutStreamWriter {
    fn error(&self) -> BackendError {
        BackendError {
            kind: BackendErrorKind::Other,
            op: "write",
            location: self.location.clone(),
            message: "injected permanent fault".into(),
            detail: String::new(),
        }
    }
}

impl super::ObjectWriter for CutStreamWriter {
    fn write(&mut self, buf: &[u8]) -> BackendResult<()> {
        if buf.len() as u64 > self.left || self.cut {
            let keep = self.left.min(buf.len() as u64) as usize;
            if keep > 0 {
                self.inner.write(&buf[..keep])?;
            }
            self.left = 0;
            if !self.cut {
                self.cut = true;
                self.counter.fetch_add(1, Ordering::Relaxed);
            }
            return Err(self.error());
        }
        self.left -= buf.len() as u64;
        self.inner.write(buf)
    }

    fn finish(self: Box<Self>) -> BackendResult<()> {
        if self.cut {
            return Err(self.error());
        }
        self.inner.finish()
    }

    fn abort(self: Box<Self>) {
        self.inner.abort()
    }
}
