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

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::chunk::Chunker;
use crate::compress::Compressor;
use crate::error::{Error, Result};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::pack::PackEntry;
use crate::format::snapshot::{Snapshot, SnapshotError, SnapshotSummary, VERSION as SNAPSHOT_VERSION};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::id::{BlobId, BlobType, IndexId, PackId, SnapshotId};
use crate::pack::{self, CompressedBlob, PackBuilder};
use crate::repo::Repository;
use crate::session::Session;
pub use crate::source::{VirtualDir, VirtualEntry};

/// Packs listed per index segment before a new segment is started.
const PACKS_PER_SEGMENT: usize = 128;

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
        }
    }
}

/// Live counters for a progress display; the library only counts, the binary draws.
#[derive(Debug, Default)]
pub struct Progress {
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub scan_finished: AtomicBool,
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot_id: SnapshotId,
    pub snapshot: Snapshot,
    pub parent: Option<SnapshotId>,
    pub seconds: f64,
    pub index_segments: Vec<IndexId>,
}

struct RawBlob {
    blob_type: BlobType,
    id: BlobId,
    data: Vec<u8>,
}

struct FileJob {
    source: JobSource,
    reply: Sender<std::result::Result<FileContent, String>>,
}

enum JobSource {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

struct FileContent {
    content: Vec<BlobId>,
    size: u64,
}

/// A fixed set of chunk-sized buffers that circulate reader → sealer → packer → back. Reusing them
/// keeps peak memory independent of how much data a backup reads (glibc's arenas otherwise fragment
/// under millions of 1-4 MiB allocations), and an empty pool is the readers' backpressure.
struct BufferPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    capacity: usize,
}

impl BufferPool {
    fn new(count: usize, capacity: usize) -> Self {
        let (tx, rx) = bounded(count);
        for _ in 0..count {
            let _ = tx.try_send(Vec::with_capacity(capacity));
        }
        BufferPool { tx, rx, capacity }
    }

    /// A cleared buffer, or `None` once the backup is aborted.
    fn take(&self, aborted: &AtomicBool) -> Option<Vec<u8>> {
        loop {
            match self.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(mut b) => {
                    b.clear();
                    return Some(b);
                }
                Err(_) if aborted.load(Ordering::Relaxed) => return None,
                Err(_) => {}
            }
        }
    }

    /// Return a buffer; small ones (trees) and any beyond the pool's size are dropped.
    fn give(&self, b: Vec<u8>) {
        if b.capacity() >= self.capacity {
            let _ = self.tx.try_send(b);
        }
    }
}

/// What every stage shares.
struct Shared {
    repo: Arc<Repository>,
    /// Its lock is checked before anything that makes this run's packs reachable (index segments,
    /// snapshot).
    lock: Session,
    /// Blobs claimed by this run and not yet in the index cache.
    session: Mutex<HashSet<BlobId>>,
    /// The first fatal error (a failed upload, a full disk); every stage stops soon after.
    fatal: Mutex<Option<Error>>,
    aborted: AtomicBool,
    progress: Arc<Progress>,
    pool: BufferPool,
    blobs_added: AtomicU64,
    bytes_added: AtomicU64,
    bytes_stored: AtomicU64,
}

impl Shared {
    /// True when this run should store `id`: neither indexed nor claimed before.
    fn claim(&self, id: &BlobId) -> Result<bool> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if session.contains(id) || self.repo.index().contains(id)? {
            return Ok(false);
        }
        session.insert(*id);
        Ok(true)
    }

    fn fail(&self, e: Error) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    fn take_fatal(&self) -> Option<Error> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Room for one chunk of the largest size, compressed or not.
fn buffer_capacity(max_chunk: usize) -> usize {
    crate::compress::compress_bound(max_chunk).max(max_chunk)
}

fn time_ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn virtual_node(name: &[u8], kind: NodeKind, mode: u32, mtime_ns: i64) -> Node {
    let mut n = Node {
        name: None,
        name_hex: None,
        kind,
        mode: mode & 0o7777,
        mtime_ns,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        size: 0,
        content: Vec::new(),
        subtree: None,
        target: None,
        target_hex: None,
    };
    n.set_name(name);
    n
}

/// A node for a filesystem entry: mode and times, plus ctime, inode and device for change detection.
fn base_node(name: &[u8], kind: NodeKind, meta: &Metadata) -> Node {
    let mut n = virtual_node(name, kind, meta.mode(), time_ns(meta.mtime(), meta.mtime_nsec()));
    n.ctime_ns = time_ns(meta.ctime(), meta.ctime_nsec());
    n.inode = meta.ino();
    n.device = meta.dev();
    n
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
    if progress.files_total.load(Ordering::Relaxed) == 0 {
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

/// The parent snapshot's folders along virtual paths, each loaded once.
struct ParentDirs<'t> {
    root: Option<&'t Tree>,
    loaded: HashMap<String, Option<Tree>>,
}

impl<'t> ParentDirs<'t> {
    fn new(root: Option<&'t Tree>) -> Self {
        ParentDirs { root, loaded: HashMap::new() }
    }

    /// The parent's node at `path` (slash-separated), if the parent has one.
    fn node(&mut self, repo: &Repository, path: &str) -> Option<Node> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => return find(self.root, path.as_bytes()).cloned(),
        };
        if !self.loaded.contains_key(dir) {
            let tree = self.load(repo, dir);
            self.loaded.insert(dir.to_string(), tree);
        }
        find(self.loaded.get(dir).and_then(Option::as_ref), name.as_bytes()).cloned()
    }

    fn load(&mut self, repo: &Repository, dir: &str) -> Option<Tree> {
        let node = self.node(repo, dir)?;
        if node.kind != NodeKind::Dir {
            return None;
        }
        repo.load_tree(&node.subtree?).ok()
    }
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
    let hostname = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    // The session locked, then read the index; the parent is read now, under that lock: a prune
    // that starts later sees the lock and keeps every pack this backup may deduplicate against
    // (format-spec/prune.md).
    let repo = session.repo();
    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(id) => Some(*id),
        ParentChoice::Auto => {
            let (snaps, _) = repo.list_snapshots()?;
            snaps.iter().rev().find(|(_, s)| s.paths == path_strings && s.hostname == hostname).map(|(id, _)| *id)
        }
    };
    // A parent forgotten (and pruned) since it was listed is no parent: every file is read.
    let (parent, parent_tree) = match parent {
        Some(id) => match repo.load_snapshot(&id).and_then(|s| repo.load_tree(&s.tree)) {
            Ok(tree) => (Some(id), Some(tree)),
            Err(Error::NotFound(_)) if matches!(opts.parent, ParentChoice::Auto) => (None, None),
            Err(e) => return Err(e),
        },
        None => (None, None),
    };

    let level = opts.compression.unwrap_or(repo.config().compression);
    Compressor::new(level)?;
    let shared = Arc::new(Shared {
        repo: Arc::clone(repo),
        lock: session.clone(),
        session: Mutex::new(HashSet::new()),
        fatal: Mutex::new(None),
        aborted: AtomicBool::new(false),
        progress,
        pool: BufferPool::new(
            opts.reader_threads + 2 * opts.sealer_threads + 2,
            buffer_capacity(repo.config().chunker.max_size as usize),
        ),
        blobs_added: AtomicU64::new(0),
        bytes_added: AtomicU64::new(0),
        bytes_stored: AtomicU64::new(0),
    });

    let pipeline = Pipeline::start(&shared, opts, level)?;
    let mut walker = Walker {
        shared: &shared,
        file_tx: pipeline.file_tx.clone(),
        blob_tx: pipeline.blob_tx.clone(),
        errors: Vec::new(),
        summary: SnapshotSummary::default(),
        prefetched: HashMap::new(),
    };
    let walked = walk(&mut walker, parent_tree.as_ref());
    let Walker { errors, mut summary, file_tx, blob_tx, .. } = walker;
    // The pipeline ends when every sender is gone, these included.
    drop((file_tx, blob_tx));
    let segments = pipeline.finish(&shared);
    let root = walked?;
    let segments = segments?;
    if let Some(e) = shared.take_fatal() {
        return Err(e);
    }

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

struct Pipeline {
    file_tx: Sender<FileJob>,
    blob_tx: Sender<RawBlob>,
    readers: Vec<JoinHandle<()>>,
    sealers: Vec<JoinHandle<()>>,
    packer: JoinHandle<()>,
    uploaders: Vec<JoinHandle<()>>,
    collector: JoinHandle<Result<Vec<IndexId>>>,
}

struct FinishedPack {
    id: PackId,
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Pipeline {
    fn start(shared: &Arc<Shared>, opts: &BackupOptions, level: i32) -> Result<Self> {
        let (file_tx, file_rx) = bounded::<FileJob>(256);
        let (blob_tx, blob_rx) = bounded::<RawBlob>(opts.sealer_threads);
        let (sealed_tx, sealed_rx) = bounded::<CompressedBlob>(opts.sealer_threads);
        // One finished pack may wait while others upload: memory holds at most uploaders + 2 packs.
        let (pack_tx, pack_rx) = bounded::<FinishedPack>(1);
        let (done_tx, done_rx) = unbounded::<(PackId, Vec<PackEntry>)>();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.clone()).spawn(f).map_err(|e| Error::io(name, e))
        };

        let mut readers = Vec::new();
        for i in 0..opts.reader_threads.max(1) {
            let (rx, tx, sh) = (file_rx.clone(), blob_tx.clone(), Arc::clone(shared));
            readers.push(spawn(format!("sophon-read-{i}"), Box::new(move || reader_loop(&sh, rx, tx)))?);
        }
        let mut sealers = Vec::new();
        for i in 0..opts.sealer_threads.max(1) {
            let (rx, tx, sh) = (blob_rx.clone(), sealed_tx.clone(), Arc::clone(shared));
            sealers.push(spawn(format!("sophon-seal-{i}"), Box::new(move || sealer_loop(&sh, level, rx, tx)))?);
        }
        drop(sealed_tx);
        let packer = {
            let sh = Arc::clone(shared);
            let target = shared.repo.config().pack_size as usize;
            spawn("sophon-pack".into(), Box::new(move || packer_loop(&sh, target, sealed_rx, pack_tx)))?
        };
        let mut uploaders = Vec::new();
        // A remote store hides its latency behind parallel uploads; a local disk needs one.
        let upload_threads = opts.upload_threads.max(shared.repo.backend().parallel_writes()).max(1);
        for i in 0..upload_threads {
            let (rx, tx, sh) = (pack_rx.clone(), done_tx.clone(), Arc::clone(shared));
            uploaders.push(spawn(format!("sophon-upload-{i}"), Box::new(move || uploader_loop(&sh, rx, tx)))?);
        }
        drop(done_tx);
        let collector = {
            let sh = Arc::clone(shared);
            std::thread::Builder::new()
                .name("sophon-index".into())
                .spawn(move || collector_loop(&sh, done_rx))
                .map_err(|e| Error::io("sophon-index", e))?
        };
        Ok(Pipeline { file_tx, blob_tx, readers, sealers, packer, uploaders, collector })
    }

    /// Close the pipeline stage by stage and wait for every pack and index segment to be stored.
    fn finish(self, shared: &Shared) -> Result<Vec<IndexId>> {
        drop(self.file_tx);
        let join = |h: JoinHandle<()>| {
            if h.join().is_err() {
                shared.fail(Error::invalid("a backup worker thread panicked"));
            }
        };
        self.readers.into_iter().for_each(join);
        drop(self.blob_tx);
        self.sealers.into_iter().for_each(join);
        join(self.packer);
        self.uploaders.into_iter().for_each(join);
        match self.collector.join() {
            Ok(r) => r,
            Err(_) => Err(Error::invalid("the index writer thread panicked")),
        }
    }
}

fn reader_loop(shared: &Shared, jobs: Receiver<FileJob>, blobs: Sender<RawBlob>) {
    let chunker = Chunker::new(shared.repo.config().chunker, shared.repo.keys().cdc_seed());
    let mut chunker = match chunker {
        Ok(c) => c,
        Err(e) => return shared.fail(e),
    };
    for job in jobs {
        if shared.aborted.load(Ordering::Relaxed) {
            let _ = job.reply.send(Err("backup aborted".into()));
            continue;
        }
        let result = match &job.source {
            JobSource::Path(path) => match File::open(path) {
                Ok(mut f) => read_content(shared, &mut chunker, &mut f, &blobs),
                Err(e) => Err(e.to_string()),
            },
            JobSource::Bytes(data) => read_content(shared, &mut chunker, &mut &data[..], &blobs),
        };
        let _ = job.reply.send(result);
    }
}

/// Chunk one file and hand its new chunks on. `Err` is an unreadable file (reported, not fatal).
fn read_content(
    shared: &Shared,
    chunker: &mut Chunker,
    file: &mut dyn std::io::Read,
    blobs: &Sender<RawBlob>,
) -> std::result::Result<FileContent, String> {
    chunker.reset();
    let mut content = Vec::new();
    let mut size = 0u64;
    let keys = shared.repo.keys();
    while let Some(chunk) = chunker.next_chunk(file).map_err(|e| e.to_string())? {
        let id = keys.blob_id(chunk);
        size += chunk.len() as u64;
        shared.progress.bytes_done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        match shared.claim(&id) {
            Ok(true) => {
                let Some(mut data) = shared.pool.take(&shared.aborted) else {
                    return Err("backup aborted".into());
                };
                data.extend_from_slice(chunk);
                if blobs.send(RawBlob { blob_type: BlobType::Data, id, data }).is_err() {
                    return Err("backup aborted".into());
                }
            }
            Ok(false) => {}
            Err(e) => {
                shared.fail(e);
                return Err("backup aborted".into());
            }
        }
        content.push(id);
    }
    Ok(FileContent { content, size })
}

fn sealer_loop(shared: &Shared, level: i32, blobs: Receiver<RawBlob>, sealed: Sender<CompressedBlob>) {
    let mut compressor = match Compressor::new(level) {
        Ok(c) => c,
        Err(e) => return shared.fail(e),
    };
    let mut spare = Vec::with_capacity(shared.pool.capacity);
    for blob in blobs {
        if shared.aborted.load(Ordering::Relaxed) {
            shared.pool.give(blob.data);
            continue;
        }
        let raw_len = match u32::try_from(blob.data.len()) {
            Ok(n) => n,
            Err(_) => {
                shared.fail(Error::invalid("blob larger than 4 GiB"));
                continue;
            }
        };
        // Compress into the spare buffer; whichever of the two is not sent on becomes the spare.
        let compression = compressor.compress_into(&blob.data, &mut spare);
        let payload = match compression {
            crate::compress::Compression::Zstd => std::mem::replace(&mut spare, blob.data),
            crate::compress::Compression::None => blob.data,
        };
        if spare.capacity() < shared.pool.capacity {
            spare = Vec::with_capacity(shared.pool.capacity);
        }
        shared.blobs_added.fetch_add(1, Ordering::Relaxed);
        shared.bytes_added.fetch_add(raw_len as u64, Ordering::Relaxed);
        let c = CompressedBlob { blob_type: blob.blob_type, compression, id: blob.id, raw_len, payload };
        if sealed.send(c).is_err() {
            return;
        }
    }
}

fn packer_loop(shared: &Shared, target: usize, sealed: Receiver<CompressedBlob>, packs: Sender<FinishedPack>) {
    let key = &shared.repo.keys().seal;
    // Room for the target, one more blob of the largest size, and the header: the buffer never
    // reallocates (a reallocation would briefly double a 16 MiB pack).
    let capacity = target + shared.repo.config().chunker.max_size as usize + 1024 * 1024;
    let mut data = PackBuilder::with_capacity(capacity);
    let mut trees = PackBuilder::new();
    let flush = |b: PackBuilder| -> bool {
        match b.finish(key) {
            Ok((id, bytes, entries)) => packs.send(FinishedPack { id, bytes, entries }).is_ok(),
            Err(e) => {
                shared.fail(e);
                false
            }
        }
    };
    for blob in sealed {
        let builder = if blob.blob_type == BlobType::Tree { &mut trees } else { &mut data };
        let added = builder.add(key, &blob);
        shared.pool.give(blob.payload);
        match added {
            Ok(sealed_len) => {
                shared.bytes_stored.fetch_add(sealed_len as u64, Ordering::Relaxed);
            }
            Err(e) => {
                shared.fail(e);
                continue;
            }
        }
        if builder.len() >= target {
            let full = std::mem::replace(builder, PackBuilder::with_capacity(capacity));
            if !flush(full) {
                return;
            }
        }
    }
    if shared.aborted.load(Ordering::Relaxed) {
        return;
    }
    for b in [data, trees] {
        if !b.is_empty() && !flush(b) {
            return;
        }
    }
}

fn uploader_loop(shared: &Shared, packs: Receiver<FinishedPack>, done: Sender<(PackId, Vec<PackEntry>)>) {
    let backend = shared.repo.backend();
    for p in packs {
        if shared.aborted.load(Ordering::Relaxed) {
            continue;
        }
        match backend.write(&pack::pack_path(&p.id), p.bytes) {
            Ok(()) => {
                let _ = done.send((p.id, p.entries));
            }
            Err(e) => shared.fail(e.into()),
        }
    }
}

fn collector_loop(shared: &Shared, done: Receiver<(PackId, Vec<PackEntry>)>) -> Result<Vec<IndexId>> {
    let mut pending = IndexSegment::default();
    let mut written = Vec::new();
    let repo = &shared.repo;
    let mut flush = |pending: &mut IndexSegment| -> Result<()> {
        if pending.packs.is_empty() {
            return Ok(());
        }
        let seg = std::mem::take(pending);
        shared.lock.ensure_held()?;
        written.push(repo.save_index_segment(&seg)?);
        // Blobs now in the cache no longer need the in-memory claim.
        let mut session = shared.session.lock().unwrap_or_else(|p| p.into_inner());
        for p in &seg.packs {
            for e in &p.entries {
                session.remove(&e.id);
            }
        }
        Ok(())
    };
    for (id, entries) in done {
        pending.packs.push(IndexedPack { id, entries });
        if pending.packs.len() >= PACKS_PER_SEGMENT {
            if let Err(e) = flush(&mut pending) {
                shared.fail(e);
            }
        }
    }
    if shared.aborted.load(Ordering::Relaxed) {
        return Ok(written);
    }
    flush(&mut pending)?;
    Ok(written)
}

struct Walker<'a> {
    shared: &'a Arc<Shared>,
    file_tx: Sender<FileJob>,
    blob_tx: Sender<RawBlob>,
    errors: Vec<SnapshotError>,
    summary: SnapshotSummary,
    /// Real files of a virtual tree queued before the tree was done, by real path.
    prefetched: HashMap<PathBuf, Pending>,
}

/// A node waiting for its file's chunks.
enum Pending {
    Ready(Node),
    File(Node, Receiver<std::result::Result<FileContent, String>>, PathBuf),
    Failed,
}

impl Walker<'_> {
    fn record(&mut self, path: &Path, error: impl std::fmt::Display) {
        self.errors.push(SnapshotError { path: path.to_string_lossy().into_owned(), error: error.to_string() });
    }

    fn archive_roots(&mut self, roots: &[(PathBuf, Vec<u8>, Metadata)], parent: Option<&Tree>) -> Result<BlobId> {
        let mut pending = Vec::new();
        for (path, name, meta) in roots {
            let p = self.entry(path, name, meta, find(parent, name))?;
            pending.push(p);
        }
        self.finish_tree(pending)
    }

    fn archive_virtual(&mut self, dir: &VirtualDir, parent: Option<&Tree>) -> Result<BlobId> {
        let mut pending = Vec::with_capacity(dir.entries.len());
        for (name, entry) in &dir.entries {
            let prev = find(parent, name);
            match entry {
                VirtualEntry::Dir(sub) => {
                    self.summary.dirs += 1;
                    let sub_parent = match prev {
                        Some(p) if p.kind == NodeKind::Dir => {
                            p.subtree.and_then(|id| self.shared.repo.load_tree(&id).ok())
                        }
                        _ => None,
                    };
                    let mut node = virtual_node(name, NodeKind::Dir, sub.mode, sub.mtime_ns);
                    node.subtree = Some(self.archive_virtual(sub, sub_parent.as_ref())?);
                    pending.push(Pending::Ready(node));
                }
                VirtualEntry::Bytes { data, mode, mtime_ns } => {
                    let source = JobSource::Bytes(Arc::clone(data));
                    pending.push(self.generated(name, data.len() as u64, *mode, *mtime_ns, source)?);
                }
                VirtualEntry::Spooled { path, size, mode, mtime_ns } => {
                    pending.push(self.generated(name, *size, *mode, *mtime_ns, JobSource::Path(path.clone()))?);
                }
                VirtualEntry::File(path) if self.prefetched.contains_key(path) => {
                    pending.extend(self.prefetched.remove(path));
                }
                VirtualEntry::File(path) => match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_file() => pending.push(self.entry(path, name, &meta, prev)?),
                    Ok(_) => self.record(path, "not a regular file"),
                    Err(e) => self.record(path, e),
                },
            }
        }
        self.finish_tree(pending)
    }

    /// Queue generated content for reading; it is always new (it has no change time to compare).
    fn generated(&mut self, name: &[u8], size: u64, mode: u32, mtime_ns: i64, source: JobSource) -> Result<Pending> {
        self.summary.files += 1;
        self.summary.bytes += size;
        self.summary.files_new += 1;
        let mut node = virtual_node(name, NodeKind::File, mode, mtime_ns);
        node.size = size;
        let (tx, rx) = bounded(1);
        if self.file_tx.send(FileJob { source, reply: tx }).is_err() {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        Ok(Pending::File(node, rx, PathBuf::from(String::from_utf8_lossy(name).into_owned())))
    }

    /// Queue the real file `real`, which will sit at `virtual_path` of a virtual tree, for reading
    /// now (or reuse it from the parent snapshot). Anything but a regular file is left to the walk,
    /// which reports it.
    fn prefetch(&mut self, virtual_path: &str, real: PathBuf, parents: &mut ParentDirs<'_>) -> Result<()> {
        let Ok(meta) = std::fs::symlink_metadata(&real) else { return Ok(()) };
        if !meta.is_file() || self.prefetched.contains_key(&real) {
            return Ok(());
        }
        let name = virtual_path.rsplit('/').next().unwrap_or(virtual_path).as_bytes().to_vec();
        let prev = parents.node(&self.shared.repo, virtual_path);
        let pending = self.entry(&real, &name, &meta, prev.as_ref())?;
        self.prefetched.insert(real, pending);
        Ok(())
    }

    fn archive_dir(&mut self, dir: &Path, parent: Option<&Tree>) -> Result<Option<BlobId>> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.record(dir, e);
                return Ok(None);
            }
        };
        let mut entries = Vec::new();
        for ent in rd {
            match ent {
                Ok(ent) => entries.push(ent.file_name()),
                Err(e) => self.record(dir, e),
            }
        }
        entries.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut pending = Vec::with_capacity(entries.len());
        for name in entries {
            let path = dir.join(&name);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.record(&path, e);
                    continue;
                }
            };
            let name = OsStr::as_bytes(&name).to_vec();
            let p = self.entry(&path, &name, &meta, find(parent, &name))?;
            pending.push(p);
        }
        self.finish_tree(pending).map(Some)
    }

    fn entry(&mut self, path: &Path, name: &[u8], meta: &Metadata, parent: Option<&Node>) -> Result<Pending> {
        if self.shared.aborted.load(Ordering::Relaxed) {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        let ft = meta.file_type();
        if ft.is_file() {
            self.summary.files += 1;
            self.summary.bytes += meta.len();
            let mut node = base_node(name, NodeKind::File, meta);
            node.size = meta.len();
            if let Some(prev) = parent {
                if prev.kind == NodeKind::File
                    && prev.size == node.size
                    && prev.mtime_ns == node.mtime_ns
                    && prev.ctime_ns == node.ctime_ns
                    && prev.inode == node.inode
                    && self.all_indexed(&prev.content)?
                {
                    node.content = prev.content.clone();
                    self.summary.files_unmodified += 1;
                    self.shared.progress.files_done.fetch_add(1, Ordering::Relaxed);
                    self.shared.progress.bytes_done.fetch_add(node.size, Ordering::Relaxed);
                    return Ok(Pending::Ready(node));
                }
                self.summary.files_changed += 1;
            } else {
                self.summary.files_new += 1;
            }
            let (tx, rx) = bounded(1);
            if self.file_tx.send(FileJob { source: JobSource::Path(path.to_path_buf()), reply: tx }).is_err() {
                return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
            }
            Ok(Pending::File(node, rx, path.to_path_buf()))
        } else if ft.is_dir() {
            self.summary.dirs += 1;
            let mut node = base_node(name, NodeKind::Dir, meta);
            let sub_parent = match parent {
                Some(p) if p.kind == NodeKind::Dir => p.subtree.and_then(|id| self.shared.repo.load_tree(&id).ok()),
                _ => None,
            };
            match self.archive_dir(path, sub_parent.as_ref())? {
                Some(id) => {
                    node.subtree = Some(id);
                    Ok(Pending::Ready(node))
                }
                None => Ok(Pending::Failed),
            }
        } else if ft.is_symlink() {
            let mut node = base_node(name, NodeKind::Symlink, meta);
            match std::fs::read_link(path) {
                Ok(t) => {
                    node.set_target(t.as_os_str().as_bytes());
                    Ok(Pending::Ready(node))
                }
                Err(e) => {
                    self.record(path, e);
                    Ok(Pending::Failed)
                }
            }
        } else {
            self.record(path, "skipped: not a regular file, folder or symlink (device, socket or fifo)");
            Ok(Pending::Failed)
        }
    }

    fn all_indexed(&self, content: &[BlobId]) -> Result<bool> {
        for id in content {
            if !self.shared.repo.index().contains(id)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn finish_tree(&mut self, pending: Vec<Pending>) -> Result<BlobId> {
        let mut nodes = Vec::with_capacity(pending.len());
        for p in pending {
            match p {
                Pending::Ready(n) => nodes.push(n),
                Pending::Failed => {}
                Pending::File(mut node, rx, path) => match rx.recv() {
                    Ok(Ok(c)) => {
                        node.size = c.size;
                        node.content = c.content;
                        self.shared.progress.files_done.fetch_add(1, Ordering::Relaxed);
                        nodes.push(node);
                    }
                    Ok(Err(e)) => {
                        if self.shared.aborted.load(Ordering::Relaxed) {
                            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
                        }
                        self.record(&path, e);
                    }
                    Err(_) => return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted"))),
                },
            }
        }
        let tree = Tree { nodes };
        let bytes = tree.encode()?;
        if bytes.len() > crate::compress::MAX_BLOB_SIZE {
            return Err(Error::invalid("a folder has too many entries for one tree blob (limit 64 MiB of metadata)"));
        }
        let id = self.shared.repo.keys().blob_id(&bytes);
        if self.shared.claim(&id)? && self.blob_tx.send(RawBlob { blob_type: BlobType::Tree, id, data: bytes }).is_err()
        {
            return Err(self.shared.take_fatal().unwrap_or_else(|| Error::invalid("backup aborted")));
        }
        Ok(id)
    }
}

/// The parent's node of the same name. Decoded trees are sorted by name bytes, so this is a binary search.
fn find<'t>(tree: Option<&'t Tree>, name: &[u8]) -> Option<&'t Node> {
    let nodes = &tree?.nodes;
    let i = nodes.binary_search_by(|n| n.name_bytes().unwrap_or_default().as_slice().cmp(name)).ok()?;
    nodes.get(i)
}
