//! The stages after the walk: readers chunk and deduplicate (and compress small chunks themselves),
//! sealers compress the others, the packer fills packs, uploaders store them and the collector
//! writes the index segments that list them. They run on their own threads joined by bounded
//! channels, and share one [`Shared`].

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::{BackupOptions, Progress};
use crate::chunk::Chunker;
use crate::compress::{Compression, Compressor};
use crate::error::{Error, Result};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::pack::PackEntry;
use crate::id::{BlobId, BlobType, IndexId, PackId};
use crate::pack::{self, CompressedBlob, PackBuilder};
use crate::repo::Repository;
use crate::session::Session;

/// Packs listed per index segment before a new segment is started.
const PACKS_PER_SEGMENT: usize = 128;

pub(super) struct RawBlob {
    pub(super) blob_type: BlobType,
    pub(super) id: BlobId,
    pub(super) data: Vec<u8>,
}

pub(super) struct FileJob {
    pub(super) source: JobSource,
    pub(super) reply: Sender<std::result::Result<FileContent, String>>,
}

pub(super) enum JobSource {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

pub(super) struct FileContent {
    pub(super) content: Vec<BlobId>,
    pub(super) size: u64,
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

    /// A cleared buffer, or `None` once the backup is stopping.
    fn take(&self, stopping: impl Fn() -> bool) -> Option<Vec<u8>> {
        loop {
            match self.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(mut b) => {
                    b.clear();
                    return Some(b);
                }
                Err(_) if stopping() => return None,
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
pub(super) struct Shared {
    pub(super) repo: Arc<Repository>,
    /// Its lock is checked before anything that makes this run's packs reachable (index segments,
    /// snapshot).
    pub(super) lock: Session,
    /// Blobs claimed by this run and not yet in the index cache.
    session: Mutex<HashSet<BlobId>>,
    /// Packs this run uploaded (or tried to) that no index segment of it lists yet. If the run
    /// fails they are deleted: nothing references them, and no other client can deduplicate
    /// against a pack no segment lists (format-spec/repository.md §15.1).
    unindexed: Mutex<HashSet<PackId>>,
    /// The first fatal error (a failed upload, a full disk); every stage stops soon after.
    fatal: Mutex<Option<Error>>,
    pub(super) aborted: AtomicBool,
    pub(super) progress: Arc<Progress>,
    pool: BufferPool,
    pub(super) blobs_added: AtomicU64,
    pub(super) bytes_added: AtomicU64,
    pub(super) bytes_stored: AtomicU64,
}

impl Shared {
    pub(super) fn new(session: &Session, progress: Arc<Progress>, opts: &BackupOptions) -> Self {
        let repo = session.repo();
        Shared {
            repo: Arc::clone(repo),
            lock: session.clone(),
            session: Mutex::new(HashSet::new()),
            unindexed: Mutex::new(HashSet::new()),
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
        }
    }

    /// True when this run should store `id`: neither indexed nor claimed before.
    pub(super) fn claim(&self, id: &BlobId) -> Result<bool> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if session.contains(id) || self.repo.index().contains(id)? {
            return Ok(false);
        }
        session.insert(*id);
        Ok(true)
    }

    pub(super) fn fail(&self, e: Error) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether the run is to stop: a fatal error, or the caller's cancel, which becomes the run's
    /// error ([`Error::Cancelled`]) here, so every stage stops as after a failure.
    pub(super) fn stopping(&self) -> bool {
        if self.progress.cancelled() && !self.aborted.load(Ordering::Relaxed) {
            self.fail(Error::Cancelled);
        }
        self.aborted.load(Ordering::Relaxed)
    }

    pub(super) fn take_fatal(&self) -> Option<Error> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn unindexed(&self) -> std::sync::MutexGuard<'_, HashSet<PackId>> {
        self.unindexed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a failed run, once every stage has stopped: delete the packs it uploaded that no
    /// segment lists, so a backup that failed (a full disk above all) gives back the space it
    /// took. Safe while the run's lock is held: a pack no segment lists is referenced by nothing,
    /// and no other client can deduplicate against it. A pack that cannot be deleted stays for a
    /// prune (as after a crash). Packs already listed by a segment stay: others may use them.
    pub(super) fn discard_unindexed(&self) {
        let packs: Vec<PackId> = self.unindexed().drain().collect();
        let backend = self.repo.backend();
        for id in packs {
            let _ = backend.delete(&pack::pack_path(&id));
        }
    }
}

/// Room for one chunk of the largest size, compressed or not.
fn buffer_capacity(max_chunk: usize) -> usize {
    crate::compress::compress_bound(max_chunk).max(max_chunk)
}

pub(super) struct Pipeline {
    pub(super) file_tx: Sender<FileJob>,
    pub(super) blob_tx: Sender<RawBlob>,
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
    pub(super) fn start(shared: &Arc<Shared>, opts: &BackupOptions, level: i32) -> Result<Self> {
        let (file_tx, file_rx) = bounded::<FileJob>(256);
        let (blob_tx, blob_rx) = bounded::<RawBlob>(opts.sealer_threads);
        // Room for many small blobs (up to 64 × 64 KiB); large ones are bounded by the buffer pool.
        let (sealed_tx, sealed_rx) = bounded::<CompressedBlob>(opts.sealer_threads.max(64));
        // One finished pack may wait while others upload: memory holds at most uploaders + 2 packs.
        let (pack_tx, pack_rx) = bounded::<FinishedPack>(1);
        let (done_tx, done_rx) = unbounded::<(PackId, Vec<PackEntry>)>();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.clone()).spawn(f).map_err(|e| Error::io(name, e))
        };

        let mut readers = Vec::new();
        for i in 0..opts.reader_threads.max(1) {
            let (rx, sh) = (file_rx.clone(), Arc::clone(shared));
            let out = ReaderOutput { blobs: blob_tx.clone(), sealed: sealed_tx.clone(), level };
            readers.push(spawn(format!("sophon-read-{i}"), Box::new(move || reader_loop(&sh, rx, out)))?);
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
    pub(super) fn finish(self, shared: &Shared) -> Result<Vec<IndexId>> {
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

/// Chunks up to this size are compressed by the reader that read them and go straight to the
/// packer: for a small file, handing its one chunk to a sealer thread cost more than compressing it.
const READER_COMPRESSES_UP_TO: usize = 64 * 1024;

/// Where a reader sends the chunks it claimed: larger ones raw to the sealers, small ones
/// compressed (at `level`) to the packer.
struct ReaderOutput {
    blobs: Sender<RawBlob>,
    sealed: Sender<CompressedBlob>,
    level: i32,
}

fn reader_loop(shared: &Shared, jobs: Receiver<FileJob>, out: ReaderOutput) {
    let chunker = Chunker::new(shared.repo.config().chunker, shared.repo.keys().cdc_seed());
    let mut chunker = match chunker {
        Ok(c) => c,
        Err(e) => return shared.fail(e),
    };
    let mut compressor = match Compressor::new(out.level) {
        Ok(c) => c,
        Err(e) => return shared.fail(e),
    };
    let mut reader = Reader { shared, chunker: &mut chunker, compressor: &mut compressor, out: &out };
    for job in jobs {
        if shared.stopping() {
            let _ = job.reply.send(Err("backup aborted".into()));
            continue;
        }
        let result = match &job.source {
            JobSource::Path(path) => match File::open(path) {
                Ok(mut f) => reader.read_content(&mut f),
                Err(e) => Err(e.to_string()),
            },
            JobSource::Bytes(data) => reader.read_content(&mut &data[..]),
        };
        let _ = job.reply.send(result);
    }
}

/// One reader thread's tools.
struct Reader<'r> {
    shared: &'r Shared,
    chunker: &'r mut Chunker,
    compressor: &'r mut Compressor,
    out: &'r ReaderOutput,
}

impl Reader<'_> {
    /// Chunk one file and hand its new chunks on. `Err` is an unreadable file (reported, not fatal).
    fn read_content(&mut self, file: &mut dyn std::io::Read) -> std::result::Result<FileContent, String> {
        let shared = self.shared;
        self.chunker.reset();
        let mut content = Vec::new();
        let mut size = 0u64;
        let keys = shared.repo.keys();
        while let Some(chunk) = self.chunker.next_chunk(file).map_err(|e| e.to_string())? {
            if shared.stopping() {
                return Err("backup aborted".into());
            }
            let id = keys.blob_id(chunk);
            size += chunk.len() as u64;
            shared.progress.bytes_done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            match shared.claim(&id) {
                Ok(true) => {
                    let sent = if chunk.len() <= READER_COMPRESSES_UP_TO {
                        // Its own small buffer, not one of the pool's: a pool buffer holds the
                        // largest chunk, and a few of them in flight would stall a tree of small files.
                        let mut data = Vec::with_capacity(crate::compress::compress_bound(chunk.len()));
                        let compression = match self.compressor.compress_into(chunk, &mut data) {
                            Compression::Zstd => Compression::Zstd,
                            Compression::None => {
                                data.clear();
                                data.extend_from_slice(chunk);
                                Compression::None
                            }
                        };
                        let blob = counted(shared, BlobType::Data, id, chunk.len() as u32, compression, data);
                        self.out.sealed.send(blob).is_ok()
                    } else {
                        let Some(mut data) = shared.pool.take(|| shared.stopping()) else {
                            return Err("backup aborted".into());
                        };
                        data.extend_from_slice(chunk);
                        self.out.blobs.send(RawBlob { blob_type: BlobType::Data, id, data }).is_ok()
                    };
                    if !sent {
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
}

/// A compressed blob, counted as added by this run.
fn counted(
    shared: &Shared,
    blob_type: BlobType,
    id: BlobId,
    raw_len: u32,
    compression: Compression,
    payload: Vec<u8>,
) -> CompressedBlob {
    shared.blobs_added.fetch_add(1, Ordering::Relaxed);
    shared.bytes_added.fetch_add(raw_len as u64, Ordering::Relaxed);
    CompressedBlob { blob_type, compression, id, raw_len, payload }
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
            Compression::Zstd => std::mem::replace(&mut spare, blob.data),
            Compression::None => blob.data,
        };
        if spare.capacity() < shared.pool.capacity {
            spare = Vec::with_capacity(shared.pool.capacity);
        }
        if sealed.send(counted(shared, blob.blob_type, blob.id, raw_len, compression, payload)).is_err() {
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
        if shared.stopping() {
            continue;
        }
        // Noted before the write: a write that failed may still have left the object (a store
        // that answered too late), and it is deleted with the others if the run fails.
        shared.unindexed().insert(p.id);
        match backend.write(&pack::pack_path(&p.id), p.bytes.into()) {
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
        let id = repo.upload_index_segment(&seg)?;
        // Listed now, whatever happens to the cache: never deleted as unindexed.
        {
            let mut unindexed = shared.unindexed();
            for p in &seg.packs {
                unindexed.remove(&p.id);
            }
        }
        written.push(id);
        repo.index().add_segment(&id, &seg)?;
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
    // The run's last chance to stop: once the last segment is stored, the backup is complete and
    // its snapshot is saved even if a cancel comes now (a snapshot no one asked for is better
    // than indexed packs no snapshot uses).
    if shared.stopping() {
        return Ok(written);
    }
    flush(&mut pending)?;
    Ok(written)
}
