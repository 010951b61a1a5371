//! A progress bar on a terminal (files, bytes, rate, ETA); nothing when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sophon::archive::Progress;

pub struct ProgressDisplay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Start drawing `progress` unless `quiet` or stderr is not a terminal.
    pub fn start(progress: Arc<Progress>, verb: &'static str, quiet: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return ProgressDisplay { stop, thread: None };
        }
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let bar = ProgressBar::new(0);
            bar.set_prefix(verb);
            let mut known = None;
            while !s.load(Ordering::Relaxed) {
                let total = progress.bytes_total.load(Ordering::Relaxed);
                // A gateway's records are counted as they are read: until a total is known the
                // display shows what is done, never "of 0".
                if known != Some(total > 0) {
                    known = Some(total > 0);
                    bar.set_style(style(total > 0));
                }
                bar.set_length(total);
                bar.set_position(progress.bytes_done.load(Ordering::Relaxed));
                bar.set_message(files(
                    progress.files_done.load(Ordering::Relaxed),
                    progress.files_total.load(Ordering::Relaxed),
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        ProgressDisplay { stop, thread: Some(thread) }
    }
}

const WITH_TOTAL: &str =
    "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}";
const WITHOUT_TOTAL: &str = "{prefix} [{elapsed_precise}] {spinner} {bytes} {bytes_per_sec} {msg}";

fn style(total_known: bool) -> ProgressStyle {
    let template = if total_known { WITH_TOTAL } else { WITHOUT_TOTAL };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `12/40 files`, or `12 files` while the total is not known.
fn files(done: u64, total: u64) -> String {
    if total == 0 {
        format!("{done} files")
    } else {
        format!("{done}/{total} files")
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_total_is_never_shown_as_zero() {
        assert_eq!(files(189, 0), "189 files");
        assert_eq!(files(12, 40), "12/40 files");
        // Both templates parse (a bad one would fall back to indicatif's default silently).
        assert!(ProgressStyle::with_template(WITH_TOTAL).is_ok());
        assert!(ProgressStyle::with_template(WITHOUT_TOTAL).is_ok());
        assert!(!WITHOUT_TOTAL.contains("total") && !WITHOUT_TOTAL.contains("eta"));
    }
}
