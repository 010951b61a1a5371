//! Restore a snapshot's files into a folder: folders first, then file contents in parallel (large
//! files split into ranges written at their offsets), then modes and times, folders last so writing
//! into them does not disturb their mtimes.
//!
//! Safety: tree names were checked when the tree was decoded (no `/`, `.`, `..`, NUL; unique and
//! sorted), files are created with `O_EXCL` so nothing is written through a symlink, and the target
//! must be empty or absent.
//!
//! Confidentiality and completeness: a file is written under a temporary `.partial` name beside its
//! place, created with mode 0600 (or the snapshot's, when stricter) so others cannot read it while
//! it is written, and renamed into place only once its contents, mode and times are set. Folders are
//! created 0700 and get their own mode once filled. A restore that fails removes the files it had
//! started, so a file under its own name is always complete, and the error names what is missing.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::archive::Progress;
use crate::error::{Error, PackProblem, Result, Unrestored};
use crate::format::pack::PackEntry;
use crate::format::tree::{Node, NodeKind};
use crate::id::{BlobId, PackId, SnapshotId};
use crate::pack;
use crate::repo::Repository;
use crate::session::Session;

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub target: PathBuf,
    pub threads: usize,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreOutcome {
    pub snapshot: String,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Contents written in one parallel round are bounded by this many bytes (and files).
const BATCH_BYTES: u64 = 512 * 1024 * 1024;
/// Files of more than one chunk are held open through their round, so this stays well under the
/// usual 1024 descriptors.
const BATCH_HELD: usize = 768;
/// Files of one chunk or none are created, written, finished and renamed in one go (never held
/// open), so a round may hold many more of them: a tree of small files then restores in a few
/// rounds instead of one round per 768 files.
const BATCH_FILES: usize = 32 * 1024;

struct PendingFile {
    path: PathBuf,
    /// Where the contents are written until the file is complete; renamed to `path` then.
    temp: PathBuf,
    content: Vec<BlobId>,
    size: u64,
    mode: u32,
    mtime_ns: i64,
}

struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime_ns: i64,
}

/// Restore `snapshot` from the session's repository; the session's lock keeps a prune from
/// deleting the packs it reads.
pub fn restore(
    session: &Session,
    snapshot: &SnapshotId,
    opts: &RestoreOptions,
    progress: Arc<Progress>,
) -> Result<RestoreOutcome> {
    let started = Instant::now();
    let repo: &Repository = session.repo();
    let snap = repo.load_snapshot(snapshot)?;
    let target = &opts.target;
    match std::fs::read_dir(target) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::invalid(format!(
                    "restore target {} is not empty; restore into a new or empty folder",
                    target.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?
        }
        Err(e) => return Err(Error::io(target, e)),
    }
    progress.bytes_total.store(snap.summary.bytes, Ordering::Relaxed);
    progress.files_total.store(snap.summary.files, Ordering::Relaxed);
    progress.scan_finished.store(true, Ordering::Relaxed);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("sophon-restore-{i}"))
        .build()
        .map_err(|e| Error::invalid(format!("starting restore threads: {e}")))?;
    let mut r = Restorer {
        repo,
        target: target.clone(),
        pool,
        progress,
        batch: Vec::new(),
        batch_bytes: 0,
        batch_held: 0,
        dirs: Vec::new(),
        outcome: RestoreOutcome::default(),
        next_temp: 0,
        missing: Unrestored::default(),
    };
    if let Err(source) = r.restore_tree(&snap.tree, target).and_then(|()| r.flush()) {
        // Files still waiting for their batch were never created: missing, not half-written.
        r.missing.not_restored.extend(r.batch.drain(..).map(|f| f.path));
        return Err(Error::RestoreIncomplete {
            snapshot: *snapshot,
            target: target.clone(),
            missing: Box::new(r.missing),
            source: Box::new(source),
        });
    }
    let mut outcome = r.outcome;
    outcome.snapshot = snapshot.to_hex();
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

struct Restorer<'a> {
    repo: &'a Repository,
    /// Where the snapshot is restored: errors name files relative to it, as the snapshot does.
    target: PathBuf,
    pool: rayon::ThreadPool,
    progress: Arc<Progress>,
    batch: Vec<PendingFile>,
    batch_bytes: u64,
    /// Files of the batch held open through its round (more than one chunk).
    batch_held: usize,
    dirs: Vec<DirMeta>,
    outcome: RestoreOutcome,
    /// Numbers the temporary names, so no two files of a restore share one.
    next_temp: u64,
    /// What a failure left unrestored, for the error.
    missing: Unrestored,
}

/// Temporary names are `.sophon-restore-N.partial`: visibly unfinished to anyone who finds one.
const TEMP_PREFIX: &[u8] = b".sophon-restore-";
const TEMP_SUFFIX: &[u8] = b".partial";

/// A restored file or folder as the snapshot names it: relative to the restore's target.
fn in_snapshot(target: &Path, kind: &str, path: &Path) -> String {
    match path.strip_prefix(target) {
        Ok(rel) if rel.as_os_str().is_empty() => format!("the snapshot's top {kind}"),
        Ok(rel) => format!("{kind} {}", rel.display()),
        Err(_) => format!("{kind} {}", path.display()),
    }
}

impl Restorer<'_> {
    fn restore_tree(&mut self, tree_id: &BlobId, dir: &Path) -> Result<()> {
        let tree = self.repo.load_tree(tree_id).map_err(|e| e.used_by(|| in_snapshot(&self.target, "folder", dir)))?;
        // The folder was empty when created and will hold exactly the tree's names, so a temporary
        // name that no entry of the tree has cannot collide with one. Usually this set is empty.
        let taken: std::collections::HashSet<Vec<u8>> =
            tree.nodes.iter().filter_map(|n| n.name_bytes().ok()).filter(|n| n.starts_with(TEMP_PREFIX)).collect();
        for node in tree.nodes {
            let name = node.name_bytes()?;
            if !Node::is_safe_name(&name) {
                return Err(Error::UnsafePath(format!("entry {:?} in tree {tree_id}", String::from_utf8_lossy(&name))));
            }
            let path = dir.join(std::ffi::OsStr::from_bytes(&name));
            match node.kind {
                NodeKind::Dir => {
                    // Private until its own mode is set at the end, once everything in it is written.
                    std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| Error::io(&path, e))?;
                    self.outcome.dirs += 1;
                    let sub = node
                        .subtree
                        .ok_or_else(|| Error::malformed(format!("tree {tree_id}"), "folder without subtree"))?;
                    self.restore_tree(&sub, &path)?;
                    self.dirs.push(DirMeta { path, mode: node.mode, mtime_ns: node.mtime_ns });
                }
                NodeKind::Symlink => {
                    let target = node.target_bytes()?;
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                        .map_err(|e| Error::io(&path, e))?;
                    let t = filetime_from_ns(node.mtime_ns);
                    filetime::set_symlink_file_times(&path, t, t).map_err(|e| Error::io(&path, e))?;
                    self.outcome.symlinks += 1;
                }
                NodeKind::File => {
                    // Created later, in parallel, by `flush`: file creation is the slow part on ext4.
                    self.outcome.files += 1;
                    self.outcome.bytes += node.size;
                    self.batch_bytes += node.size;
                    let temp = loop {
                        let mut name = TEMP_PREFIX.to_vec();
                        name.extend_from_slice(self.next_temp.to_string().as_bytes());
                        name.extend_from_slice(TEMP_SUFFIX);
                        self.next_temp += 1;
                        if !taken.contains(&name) {
                            break dir.join(std::ffi::OsStr::from_bytes(&name));
                        }
                    };
                    if node.content.len() > 1 {
                        self.batch_held += 1;
                    }
                    self.batch.push(PendingFile {
                        path,
                        temp,
                        content: node.content,
                        size: node.size,
                        mode: node.mode,
                        mtime_ns: node.mtime_ns,
                    });
                    if self.batch.len() >= BATCH_FILES
                        || self.batch_held >= BATCH_HELD
                        || self.batch_bytes >= BATCH_BYTES
                    {
                        self.flush()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Write the contents of every pending file, then their modes and times. Work is grouped by
    /// pack: each pack's needed bytes are read once (in a few large ranges) and every blob is written
    /// to each place that uses it, so small files cost no read of their own and big files restore on
    /// every core. On failure, every file of the batch not yet in place is removed and noted.
    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.batch_held = 0;
        let marks: Vec<Mark> = batch.iter().map(|_| Mark::default()).collect();
        if let Err(e) = self.write_batch(&batch, &marks) {
            for (f, mark) in batch.iter().zip(&marks) {
                if mark.placed.load(Ordering::Relaxed) {
                    continue;
                }
                if mark.failed.load(Ordering::Relaxed) {
                    self.missing.failed.push(f.path.clone());
                }
                self.missing.not_restored.push(f.path.clone());
                match std::fs::remove_file(&f.temp) {
                    Ok(()) => {}
                    // Never created: the batch failed before its turn.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => self.missing.left_partial.push(f.temp.clone()),
                }
            }
            return Err(e);
        }
        // Folders finished so far (pushed after their whole subtree, so children come first) now
        // hold every entry they will get: set their modes and times, and forget them.
        for d in self.dirs.drain(..) {
            set_meta(&d.path, d.mode, d.mtime_ns)?;
        }
        Ok(())
    }

    /// Create, fill, finish and rename into place the files of one batch, marking in `marks[i]`
    /// when `batch[i]` is under its own name, or was what failed.
    fn write_batch(&self, batch: &[PendingFile], marks: &[Mark]) -> Result<()> {
        let mut by_pack: HashMap<PackId, BTreeMap<u32, Needed>> = HashMap::new();
        let ids: Vec<BlobId> = batch.iter().flat_map(|f| f.content.iter().copied()).collect();
        let mut locations = self.repo.lookup_blobs(&ids)?.into_iter();
        for (i, f) in batch.iter().enumerate() {
            let mut offset = 0u64;
            for loc in locations.by_ref().take(f.content.len()) {
                let loc = loc.map_err(|e| {
                    marks[i].fail();
                    e.used_by(|| in_snapshot(&self.target, "file", &f.path))
                })?;
                let len = loc.entry.raw_len as u64;
                by_pack
                    .entry(loc.pack)
                    .or_default()
                    .entry(loc.entry.offset)
                    .or_insert_with(|| Needed { entry: loc.entry, places: Vec::new() })
                    .places
                    .push((i, offset));
                offset += len;
            }
            if offset != f.size {
                marks[i].fail();
                return Err(Error::malformed(
                    format!("file {}", f.path.display()),
                    format!("its chunks hold {offset} bytes, the tree says {}", f.size),
                ));
            }
        }
        let packs: Vec<(PackId, Vec<Needed>)> =
            by_pack.into_iter().map(|(id, blobs)| (id, blobs.into_values().collect())).collect();
        let repo = self.repo;
        let progress = &self.progress;
        let target = self.target.as_path();
        self.pool.install(|| -> Result<()> {
            // Files of several chunks are created up front and held open while their chunks come
            // from different packs; a file of one chunk is made whole where its chunk is read.
            let held: Vec<Option<File>> = batch
                .par_iter()
                .zip(marks)
                .map(|(f, mark)| match f.content.len() {
                    0 => create_file(f)
                        .inspect_err(|_| mark.fail())
                        .and_then(|file| place(file, f, mark, progress))
                        .map(|()| None),
                    1 => Ok(None),
                    _ => create_file(f).inspect_err(|_| mark.fail()).map(Some),
                })
                .collect::<Result<_>>()?;
            let ctx = Batch { repo, files: &held, batch, marks, progress };
            // Every pack is read even after one failed: a round now holds thousands of small files,
            // and each one whose data is sound is put in place and kept.
            let failures: Vec<Error> = packs
                .par_iter()
                .filter_map(|(pack, needed)| {
                    restore_from_pack(&ctx, pack, needed).err().map(|e| blame_pack(e, needed, batch, marks, target))
                })
                .collect();
            if let Some(e) = failures.into_iter().next() {
                return Err(e);
            }
            held.into_par_iter()
                .zip(batch.par_iter().zip(marks))
                .try_for_each(|(file, (f, mark))| file.map_or(Ok(()), |file| place(file, f, mark, progress)))
        })
    }
}

/// One round's files, as the pack readers see them.
struct Batch<'a> {
    repo: &'a Repository,
    /// The files held open (more than one chunk), by batch position; `None` for the others.
    files: &'a [Option<File>],
    batch: &'a [PendingFile],
    marks: &'a [Mark],
    progress: &'a Progress,
}

impl Batch<'_> {
    /// Write one chunk at its place: into the held file, or (a file of one chunk) as the whole file.
    fn write(&self, f: usize, offset: u64, data: &[u8]) -> Result<()> {
        let pending = &self.batch[f];
        let mark = &self.marks[f];
        // Named as the operator knows it (a full disk: which file did not fit); its temporary
        // name is removed when the batch fails.
        let write = |file: &File| file.write_all_at(data, offset).map_err(|err| Error::io(&pending.path, err));
        match &self.files[f] {
            Some(file) => write(file).inspect_err(|_| mark.fail()),
            None => {
                let file = create_file(pending).inspect_err(|_| mark.fail())?;
                write(&file).inspect_err(|_| mark.fail())?;
                place(file, pending, mark, self.progress)
            }
        }
    }
}

/// How far one file of a batch got.
#[derive(Default)]
struct Mark {
    /// Under its own name, complete: kept if the batch fails later.
    placed: AtomicBool,
    /// Its own data or its own write failed: named first when the restore fails.
    failed: AtomicBool,
}

impl Mark {
    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

/// A blob to restore and every (file, offset) that holds it.
struct Needed {
    entry: PackEntry,
    places: Vec<(usize, u64)>,
}

/// Create a file's temporary name exclusively (never through an existing symlink), readable by its
/// owner at most: its final mode, which may let others read it, is set once it is complete. It is
/// not sized up front: a file cut short must not look whole.
fn create_file(f: &PendingFile) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600 & f.mode)
        .open(&f.temp)
        .map_err(|e| Error::io(&f.temp, e))
}

/// Give a written file its mode and times through its descriptor (no path lookups), then move it to
/// its name. `rename` never follows a symlink at the destination; and as the folder was empty and a
/// tree's names are unique, nothing of this restore is there to be replaced.
fn finish_file(file: File, f: &PendingFile) -> Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(f.mode & 0o7777)).map_err(|e| Error::io(&f.temp, e))?;
    let t = filetime_from_ns(f.mtime_ns);
    filetime::set_file_handle_times(&file, Some(t), Some(t)).map_err(|e| Error::io(&f.temp, e))?;
    drop(file);
    std::fs::rename(&f.temp, &f.path).map_err(|e| Error::io(&f.path, e))
}

/// Complete an error about a pack that cannot give its bytes with the blob and the file that
/// needed them, and mark the files whose data it holds as failed: every needed blob of a missing
/// pack, the blobs past the end of one cut short.
fn blame_pack(e: Error, needed: &[Needed], batch: &[PendingFile], marks: &[Mark], target: &Path) -> Error {
    let Error::PackUnreadable(mut p) = e else { return e };
    let lost = |n: &&Needed| match p.problem {
        PackProblem::Missing => true,
        PackProblem::Short { size, .. } => n.entry.offset as u64 + n.entry.sealed_len as u64 > size,
    };
    let lost: Vec<&Needed> = needed.iter().filter(lost).collect();
    for n in &lost {
        n.places.iter().for_each(|&(f, _)| marks[f].fail());
    }
    if let Some(first) = lost.first() {
        p.blob = Some(first.entry.id);
        if let PackProblem::Short { size, .. } = p.problem {
            p.problem = PackProblem::Short { size, needed: first.entry.offset as u64 + first.entry.sealed_len as u64 };
        }
        if let Some(&(f, _)) = first.places.first() {
            p.used_by = Some(in_snapshot(target, "file", &batch[f].path));
        }
    }
    Error::PackUnreadable(p)
}

/// Finish a written file (`finish_file`) and count it as in place, or mark it as what failed.
fn place(file: File, f: &PendingFile, mark: &Mark, progress: &Progress) -> Result<()> {
    finish_file(file, f).inspect_err(|_| mark.fail())?;
    mark.placed.store(true, Ordering::Relaxed);
    progress.files_done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Blobs closer together than this are read in one range (the gap is read and discarded).
const MAX_READ_GAP: u64 = 256 * 1024;
/// A range joins blobs only up to this many bytes (a single larger blob is read alone): each
/// restore thread holds one range, and whole 16 MiB packs on every thread took a restore's peak
/// memory well past 128 MiB while reading no faster than 4 MiB at a time.
const MAX_READ_SPAN: u64 = 4 * 1024 * 1024;

/// Restore every needed blob of one pack (sorted by offset) into the files that use it.
fn restore_from_pack(ctx: &Batch<'_>, pack: &PackId, needed: &[Needed]) -> Result<()> {
    let (repo, marks) = (ctx.repo, ctx.marks);
    let mut i = 0;
    while i < needed.len() {
        let start = needed[i].entry.offset as u64;
        let mut end = start + needed[i].entry.sealed_len as u64;
        let mut j = i + 1;
        while j < needed.len() {
            let next = &needed[j].entry;
            let next_end = next.offset as u64 + next.sealed_len as u64;
            if next.offset as u64 > end + MAX_READ_GAP || next_end - start > MAX_READ_SPAN {
                break;
            }
            end = end.max(next.offset as u64 + next.sealed_len as u64);
            j += 1;
        }
        // The files that use a blob that cannot be had are the ones that failed (a pack missing or
        // cut short: those `blame_pack` picks).
        let blame = |n: &Needed| n.places.iter().for_each(|&(f, _)| marks[f].fail());
        let bytes = repo.read_pack_range(pack, start, end - start).inspect_err(|e| {
            if !matches!(e, Error::PackUnreadable(_)) {
                needed[i..j].iter().for_each(blame)
            }
        })?;
        for n in &needed[i..j] {
            let e = &n.entry;
            let at = (e.offset as u64 - start) as usize;
            let what = || format!("blob {} in pack {pack}", e.id);
            // A pack shorter than its index says is damage, not a reason to panic.
            let Some(sealed) = bytes.get(at..at + e.sealed_len as usize) else {
                blame(n);
                return Err(Error::malformed(what(), "the pack ends before the blob does"));
            };
            let data = pack::open_blob(&repo.keys().seal, e, sealed.to_vec(), &what).inspect_err(|_| blame(n))?;
            if repo.keys().blob_id(&data) != e.id {
                blame(n);
                return Err(Error::HashMismatch { what: what(), expected: e.id.to_hex() });
            }
            for &(f, offset) in &n.places {
                ctx.write(f, offset, &data)?;
                ctx.progress.bytes_done.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        i = j;
    }
    Ok(())
}

fn filetime_from_ns(ns: i64) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
}

fn set_meta(path: &Path, mode: u32, mtime_ns: i64) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| Error::io(path, e))?;
    let t = filetime_from_ns(mtime_ns);
    filetime::set_file_times(path, t, t).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Read access to the files of a snapshot by path, for restores that interpret a backup (a gateway
/// restore) instead of writing it out as files.
pub struct SnapshotFiles<'a> {
    repo: &'a Repository,
    files: std::collections::BTreeMap<String, (u64, Vec<BlobId>)>,
}

impl<'a> SnapshotFiles<'a> {
    /// Index the files of `snapshot` (names and chunk lists only; no content is read). The
    /// session stays borrowed, so its lock is held while the files are read.
    pub fn open(session: &'a Session, snapshot: &SnapshotId) -> Result<Self> {
        let repo: &'a Repository = session.repo();
        let snap = repo.load_snapshot(snapshot)?;
        let mut files = std::collections::BTreeMap::new();
        let mut stack = vec![(String::new(), snap.tree)];
        while let Some((prefix, id)) = stack.pop() {
            let tree = repo.load_tree(&id).map_err(|e| {
                e.used_by(|| {
                    if prefix.is_empty() {
                        "the snapshot's top folder".into()
                    } else {
                        format!("folder {prefix}")
                    }
                })
            })?;
            for node in tree.nodes {
                let name = String::from_utf8(node.name_bytes()?)
                    .map_err(|_| Error::malformed(format!("tree {id}"), "a gateway backup has UTF-8 names only"))?;
                let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                match node.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = node.subtree {
                            stack.push((path, sub));
                        }
                    }
                    NodeKind::File => {
                        files.insert(path, (node.size, node.content));
                    }
                    NodeKind::Symlink => {}
                }
            }
        }
        Ok(SnapshotFiles { repo, files })
    }

    /// One blob of the file at `path`; an error names the file.
    fn read_blob(&self, path: &str, id: &BlobId) -> Result<Vec<u8>> {
        self.repo.read_blob(id).map_err(|e| e.used_by(|| format!("file {path}")))
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn size(&self, path: &str) -> Option<u64> {
        self.files.get(path).map(|f| f.0)
    }

    /// A whole (small) file; `None` when the backup does not hold it.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some((size, content)) = self.files.get(path) else { return Ok(None) };
        let mut out = Vec::with_capacity(*size as usize);
        for id in content {
            out.extend_from_slice(&self.read_blob(path, id)?);
        }
        Ok(Some(out))
    }

    /// Stream a file into `dest` (created), chunk by chunk.
    pub fn copy_to(&self, path: &str, dest: &Path) -> Result<()> {
        use std::io::Write;
        let (_, content) =
            self.files.get(path).ok_or_else(|| Error::NotFound(format!("{path} is not in the backup")))?;
        let mut f = File::create(dest).map_err(|e| Error::io(dest, e))?;
        for id in content {
            f.write_all(&self.read_blob(path, id)?).map_err(|e| Error::io(dest, e))?;
        }
        f.sync_all().map_err(|e| Error::io(dest, e))
    }
}

impl crate::source::BackupSource for SnapshotFiles<'_> {
    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
    fn size(&self, path: &str) -> Option<u64> {
        SnapshotFiles::size(self, path)
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        SnapshotFiles::read(self, path)
    }
    fn copy_into(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        // Chunk by chunk: a file is never held whole.
        let (_, content) =
            self.files.get(path).ok_or_else(|| Error::NotFound(format!("{path} is not in the backup")))?;
        let mut n = 0u64;
        for id in content {
            let data = self.read_blob(path, id)?;
            out.write_all(&data).map_err(|e| Error::io(path, e))?;
            n += data.len() as u64;
        }
        Ok(n)
    }
    fn copy_to(&self, path: &str, dest: &Path) -> Result<()> {
        SnapshotFiles::copy_to(self, path, dest)
    }
}
