//! Retries with exponential backoff and full jitter, for every backend: a transient failure
//! (timeout, throttling, connection reset) is tried again; anything else fails at once.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, BackendErrorKind, BackendResult, Bytes, ObjectInfo};

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 8, base_delay: Duration::from_millis(50), max_delay: Duration::from_secs(10) }
    }
}

pub struct RetryBackend {
    inner: Arc<dyn Backend>,
    policy: RetryPolicy,
}

impl RetryPolicy {
    /// Sleep before attempt `n` (1-based, after a failure): a random time up to
    /// base × 2ⁿ⁻¹, capped, so clients that failed together do not retry together.
    fn backoff(&self, n: u32) {
        let cap = self.base_delay.saturating_mul(1u32 << n.min(16)).min(self.max_delay);
        let r = u64::from_le_bytes(crate::crypto::random_array::<8>().unwrap_or([0; 8]));
        let nanos = (cap.as_nanos() as u64).max(1);
        std::thread::sleep(Duration::from_nanos(r % nanos));
    }

    /// `call`, tried again after a transient failure, up to `attempts` times in all.
    pub fn run<T>(&self, call: impl FnMut() -> BackendResult<T>) -> BackendResult<T> {
        self.run_within(Duration::MAX, call)
    }

    /// [`RetryPolicy::run`], but no new attempt starts once `patience` has passed since the first:
    /// a call that times out is not waited for `attempts` times over.
    pub fn run_within<T>(&self, patience: Duration, mut call: impl FnMut() -> BackendResult<T>) -> BackendResult<T> {
        let started = std::time::Instant::now();
        let mut n = 1;
        loop {
            match call() {
                Err(e)
                    if e.kind == BackendErrorKind::Transient && n < self.attempts && started.elapsed() < patience =>
                {
                    self.backoff(n);
                    n += 1;
                }
                other => return other,
            }
        }
    }
}

impl RetryBackend {
    pub fn new(inner: Arc<dyn Backend>, policy: RetryPolicy) -> Self {
        RetryBackend { inner, policy }
    }

    fn run<T>(&self, call: impl FnMut() -> BackendResult<T>) -> BackendResult<T> {
        self.policy.run(call)
    }
}

impl Backend for RetryBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read(&self, path: &str) -> BackendResult<Vec<u8>> {
        self.run(|| self.inner.read(path))
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> BackendResult<Vec<u8>> {
        self.run(|| self.inner.read_range(path, offset, len))
    }

    fn write(&self, path: &str, data: Bytes) -> BackendResult<()> {
        // Objects are immutable and named by their content, so writing again is harmless.
        self.run(|| self.inner.write(path, data.clone()))
    }

    fn delete(&self, path: &str) -> BackendResult<()> {
        self.run(|| self.inner.delete(path))
    }

    fn stat(&self, path: &str) -> BackendResult<Option<u64>> {
        self.run(|| self.inner.stat(path))
    }

    /// A listing is retried from the start only before it has handed anything out.
    fn list(&self, dir: &str, f: &mut dyn FnMut(ObjectInfo) -> crate::Result<()>) -> crate::Result<()> {
        let mut n = 1;
        loop {
            let mut handed_out = false;
            let result = self.inner.list(dir, &mut |o| {
                handed_out = true;
                f(o)
            });
            match result {
                Err(crate::Error::Backend(e))
                    if e.kind == BackendErrorKind::Transient && !handed_out && n < self.policy.attempts =>
                {
                    self.policy.backoff(n);
                    n += 1;
                }
                other => return other,
            }
        }
    }

    fn parallel_writes(&self) -> usize {
        self.inner.parallel_writes()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    /// A stream cannot be replayed from here; the store's own writer retries its parts.
    fn writer(&self, path: &str) -> BackendResult<Box<dyn super::ObjectWriter>> {
        self.run(|| self.inner.writer(path))
    }
}
