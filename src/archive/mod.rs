//! Backup of folders: walk, chunk, dedup, compress, seal, pack and upload, with the stages
//! overlapping on separate threads joined by bounded channels, so memory stays bounded and every
//! core is busy.
//!
//! ```text
//! walker (this thread) ──files──► readers (chunk + keyed hash + dedup) ──new blobs──► sealers (zstd + AES-GCM)
//!        │  trees ───────────────────────────────────────────────────────────────────────┘ │
//!        ▼                                                                                  ▼
//!   snapshot ◄── index segments ◄── collector ◄── uploaders ◄── packer (16 MiB packs) ◄────┘
//! ```
//! Nothing is referenced before it is stored: the snapshot is written only after every pack and
//! every index segment that lists them.

//!
//! `pipeline` holds the stages after the walk and what they share; `walker` turns folders and
//! virtual trees into tree blobs, queueing file contents on the pipeline.

mod estimate;
mod pipeline;
mod walker;

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::unbounded;

use crate::compress::Compressor;
use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, VERSION as SNAPSHOT_VERSION};
use crate::format::tree::Tree;
use crate::id::{BlobId, IndexId, SnapshotId};
use crate::session::Session;
pub use crate::source::{VirtualDir, VirtualEntry};
pub use estimate::{estimate_virtual, Estimate};
use pipeline::{Pipeline, Shared};
use walker::{ParentDirs, Walker};

#[derive(Clone, Debug)]
pub enum ParentChoice {
    /// The latest snapshot of the same paths from this host.
    Auto,
    None,
    Snapshot(SnapshotId),
}

#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    pub parent: ParentChoice,
    /// zstd level; `None` uses the repository's default.
    pub compression: Option<i32>,
    pub reader_threads: usize,
    pub sealer_threads: usize,
    pub upload_threads: usize,
    /// Count the files ahead of the backup on a thread of its own, so progress shows totals and an
    /// ETA. Off when nobody watches: on a tree of small files the count is a twentieth of the work.
    pub count_ahead: bool,
}

impl BackupOptions {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        BackupOptions {
            paths,
            tags: Vec::new(),
            time: None,
            parent: ParentChoice::Auto,
            compression: None,
            reader_threads: cpus.clamp(2, 8),
            sealer_threads: cpus.clamp(2, 16),
            upload_threads: 1,
            count_ahead: true,
        }
    }
}

/// Live counters for a progress display (the library only counts, the front end draws), and the
/// caller's way to stop the work.
#[derive(Debug, Default)]
pub struct Progress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    /// The totals are final: every file to back up is known (a gateway's dump has ended).
    pub scan_finished: AtomicBool,
    /// Set by the caller (never by the library) to stop the work part-way. A backup, a gateway
    /// dump and an export check it as they go and end with [`Error::Cancelled`] once they have
    /// removed what they began: no snapshot, the run's unindexed packs deleted, no archive file or
    /// temporary file. The session's lock is released when the caller drops it, as after any error.
    /// A backup takes a cancel until its last index segment is about to be stored; one that comes
    /// later is too late, and the backup ends with its snapshot saved.
    pub cancel: AtomicBool,
}

impl Progress {
    /// Whether the caller asked the work to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Zero the counters (not `cancel`), for the next step of one piece of work (a backup, then
    /// its export).
    pub fn reset_counts(&self) {
        for c in [&self.files_done, &self.bytes_done, &self.files_total, &self.bytes_total] {
            c.store(0, Ordering::Relaxed);
        }
        self.scan_finished.store(false, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot_id: SnapshotId,
    pub snapshot: Snapshot,
    pub parent: Option<SnapshotId>,
    pub seconds: f64,
    pub index_segments: Vec<IndexId>,
}

/// Run a backup of `opts.paths` into the session's repository.
pub fn backup(session: &Session, opts: &BackupOptions, progress: Arc<Progress>) -> Result<BackupOutcome> {
    if opts.paths.is_empty() {
        return Err(Error::invalid("nothing to back up: give at least one --path"));
    }
    let mut roots = Vec::new();
    let mut names = HashSet::new();
    for p in &opts.paths {
        let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| Error::io(&abs, e))?;
        let name = abs.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_else(|| b"root".to_vec());
        if !names.insert(name.clone()) {
            return Err(Error::invalid(format!(
                "two paths end in the same name {:?}; back them up separately",
                String::from_utf8_lossy(&name)
            )));
        }
        roots.push((abs, name, meta));
    }
    roots.sort_by(|a, b| a.1.cmp(&b.1));
    let path_strings: Vec<String> = roots.iter().map(|r| r.0.to_string_lossy().into_owned()).collect();
    if opts.count_ahead && progress.files_total.load(Ordering::Relaxed) == 0 {
        spawn_scanner(roots.iter().map(|r| r.0.clone()).collect(), Arc::clone(&progress));
    }
    run(session, opts, progress, path_strings, |walker, parent| walker.archive_roots(&roots, parent))
}

/// Back up a virtual tree; `label` stands in the snapshot's `paths` (and picks the parent).
pub fn backup_virtual(
    session: &Session,
    label: &str,
    root: &VirtualDir,
    opts: &BackupOptions,
    progress: Arc<Progress>,
) -> Result<BackupOutcome> {
    run(session, opts, progress, vec![label.to_string()], |walker, parent| walker.archive_virtual(root, parent))
}

/// Back up a virtual tree that `build` makes on another thread, while this one already queues for
/// reading the real files that `build` announces (virtual path, real path) before the tree is
/// done: a gateway's documents are read while its database is still being dumped. Every announced
/// file must appear in the finished tree as a [`VirtualEntry::File`] at that path.
pub fn backup_virtual_streamed(
    session: &Session,
    label: &str,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    build: impl FnOnce(&mut dyn FnMut(&str, PathBuf)) -> Result<VirtualDir> + Send,
) -> Result<BackupOutcome> {
    run(session, opts, progress, vec![label.to_string()], |walker, parent| {
        let (tx, rx) = unbounded::<(String, PathBuf)>();
        std::thread::scope(|scope| {
            let builder = std::thread::Builder::new()
                .name("sophon-source".into())
                .spawn_scoped(scope, move || {
                    build(&mut |virtual_path, real| drop(tx.send((virtual_path.into(), real))))
                })
                .map_err(|e| Error::io("sophon-source", e))?;
            let mut early = Ok(());
            let mut parents = ParentDirs::new(parent);
            // Runs until `build` returns (its sender is gone), however prefetching went.
            for (virtual_path, real) in rx {
                if early.is_ok() {
                    early = walker.prefetch(&virtual_path, real, &mut parents);
                }
            }
            let root = builder.join().map_err(|_| Error::invalid("the backup source thread panicked"))??;
            early?;
            walker.archive_virtual(&root, parent)
        })
    })
}

/// Choose the parent, run the pipeline around `walk`, and save the snapshot.
fn run(
    session: &Session,
    opts: &BackupOptions,
    progress: Arc<Progress>,
    path_strings: Vec<String>,
    walk: impl FnOnce(&mut Walker<'_>, Option<&Tree>) -> Result<BlobId>,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(chrono::Utc::now);
    let hostname = this_host();
    // The session locked, then read the index; the parent is read now, under that lock: a prune
    // that starts later sees the lock and keeps every pack this backup may deduplicate against
    // (format-spec/prune.md).
    let repo = session.repo();
    let (parent, parent_tree) = choose_parent(repo, opts, &path_strings, &hostname)?;

    let level = opts.compression.unwrap_or(repo.config().compression);
    Compressor::new(level)?;
    let shared = Arc::new(Shared::new(session, progress, opts));
    let pipeline = Pipeline::start(&shared, opts, level)?;
    let mut walker = Walker::new(&shared, &pipeline);
    let walked = walk(&mut walker, parent_tree.as_ref());
    // The pipeline ends when every sender is gone, the walker's included.
    let (errors, mut summary) = walker.finish();
    let segments = pipeline.finish(&shared);
    // A cancel seen by any stage, up to the index writer's last check before the final segment,
    // is the run's fatal error; one that came later is too late (`collector_loop`).
    let finished = walked.and_then(|root| segments.map(|s| (root, s))).and_then(|done| match shared.take_fatal() {
        Some(e) => Err(e),
        None => Ok(done),
    });
    let (root, segments) = match finished {
        Ok(done) => done,
        Err(e) => {
            // Every stage has stopped and the session's lock is still held.
            shared.discard_unindexed();
            // What a stage reported while stopping for the cancel (a source that saw it first,
            // "backup aborted") is the cancel.
            return Err(if shared.progress.cancelled() { Error::Cancelled } else { e });
        }
    };

    summary.blobs_added = shared.blobs_added.load(Ordering::Relaxed);
    summary.bytes_added = shared.bytes_added.load(Ordering::Relaxed);
    summary.bytes_stored = shared.bytes_stored.load(Ordering::Relaxed);
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        tree: root,
        paths: path_strings,
        hostname,
        username: std::env::var("USER").unwrap_or_default(),
        tags: opts.tags.clone(),
        parent,
        partial: errors.iter().any(|e| !e.error.starts_with("skipped:")),
        errors,
        summary,
    };
    shared.lock.ensure_held()?;
    let snapshot_id = repo.save_snapshot(&snapshot)?;
    Ok(BackupOutcome {
        snapshot_id,
        snapshot,
        parent,
        seconds: started.elapsed().as_secs_f64(),
        index_segments: segments,
    })
}

/// The parent snapshot `opts` asks for (by default the latest of the same paths from this host)
/// and its root tree.
fn choose_parent(
    repo: &crate::repo::Repository,
    opts: &BackupOptions,
    path_strings: &[String],
    hostname: &str,
) -> Result<(Option<SnapshotId>, Option<Tree>)> {
    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(id) => Some(*id),
        ParentChoice::Auto => {
            let (snaps, _) = repo.list_snapshots()?;
            snaps.iter().rev().find(|(_, s)| s.paths == path_strings && s.hostname == hostname).map(|(id, _)| *id)
        }
    };
    // A parent forgotten (and pruned) since it was listed is no parent: every file is read.
    Ok(match parent {
        Some(id) => match repo.load_snapshot(&id).and_then(|s| repo.load_tree(&s.tree)) {
            Ok(tree) => (Some(id), Some(tree)),
            Err(Error::NotFound(_) | Error::BlobNotIndexed(_)) if matches!(opts.parent, ParentChoice::Auto) => {
                (None, None)
            }
            Err(e) => return Err(e),
        },
        None => (None, None),
    })
}

fn this_host() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Counts files and bytes ahead of the backup so progress can show an ETA.
fn spawn_scanner(roots: Vec<PathBuf>, progress: Arc<Progress>) {
    let _ = std::thread::Builder::new().name("sophon-scan".into()).spawn(move || {
        let mut stack = roots;
        while let Some(p) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    stack.extend(rd.flatten().map(|e| e.path()));
                }
            } else if meta.is_file() {
                progress.files_total.fetch_add(1, Ordering::Relaxed);
                progress.bytes_total.fetch_add(meta.len(), Ordering::Relaxed);
            }
        }
        progress.scan_finished.store(true, Ordering::Relaxed);
    });
}
