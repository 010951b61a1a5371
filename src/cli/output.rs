//! Writing to standard output without panicking when the reader goes away (`sophon … | head`).
//!
//! A closed pipe is an error that travels up like any other, so every lock guard and temporary
//! folder is dropped on the way; `main` then exits 0, as `head` expects.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output was found closed: later lines fail at once, including the ones that
/// callbacks (which cannot return an error) print after the first failure.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Print a line. Once the reader has gone, this and every later call return a `BrokenPipe` error.
pub fn line(s: impl AsRef<str>) -> std::io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Err(std::io::ErrorKind::BrokenPipe.into());
    }
    // One `write_all` holds stdout's lock for the whole line, so lines from threads never mix.
    std::io::stdout().write_all(format!("{}\n", s.as_ref()).as_bytes()).inspect_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    })
}

/// Whether `e` comes from standard output having been closed. A broken pipe elsewhere (a network
/// connection, a child process) stays an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    CLOSED.load(Ordering::Relaxed)
        && e.chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    line(serde_json::to_string_pretty(value)?)?;
    Ok(())
}

pub fn bytes(n: u64) -> String {
    sophon::units::human_bytes(n)
}
