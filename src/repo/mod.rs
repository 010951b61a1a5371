//! A repository: opening it with a passphrase, its encrypted objects, and keeping the local index
//! cache in step with the index segments it holds. Its keys are in `keys`, its locks in `lock`.
//!
//! Write ordering (format-spec/repository.md): packs, then the index segments that list them, then
//! the snapshot that references them. A crash at any point leaves at most unreferenced packs.

mod keys;
mod lock;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::{Backend, BackendErrorKind};
use crate::chunk::ChunkerParams;
use crate::compress;
use crate::crypto::{self, Argon2Params, MasterKeys};
use crate::error::{Error, NotIndexed, PackProblem, Result, UnreadablePack};
use crate::format::config::{
    check_object_size, Config, CONFIG_VERSION, MAX_CONFIG_BYTES, MAX_KEYS_TRIED, MAX_KEY_FILE_BYTES,
};
use crate::format::envelope::{self, ObjectKind};
use crate::format::index::{IndexSegment, IndexedPack, SegmentEncoder};
use crate::format::prune::PruneRecord;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::id::{content_hash, BlobId, BlobType, IndexId, KeyId, PackId, PruneId, RepoId, SnapshotId};
use crate::index::{BlobLocation, IndexCache};
use crate::pack;
use keys::{key_path, unwrap_key, wrap_keys};
pub use lock::{LockGuard, LockMode, LOCK_STALE_AFTER};

/// Snapshots, index segments and locks larger than this (decompressed) are refused.
const MAX_OBJECT_SIZE: usize = 256 * 1024 * 1024;
/// Packs a segment written by a prune or repair lists (a backup's list at most 128: they are
/// written as it goes).
pub const PACKS_PER_INDEX_SEGMENT: usize = 1024;
/// Entries after which a prune or repair closes a segment even with fewer packs: packs of tiny
/// blobs hold hundreds of thousands each, and a segment of every repacked pack of 10M such blobs
/// (460 MB) was more than a reader accepts ([`MAX_OBJECT_SIZE`]) and was built whole in memory.
/// 2^18 entries are 12 MiB encoded; a segment of one pack holds that pack's entries, however many.
pub const ENTRIES_PER_INDEX_SEGMENT: usize = 1 << 18;

#[derive(Clone, Debug)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub pack_size: u32,
    pub compression: i32,
    pub argon2: Argon2Params,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::DEFAULT,
            pack_size: 16 * 1024 * 1024,
            compression: 2,
            argon2: Argon2Params::DEFAULT,
        }
    }
}

/// How [`Repository::open_with`] looks for the key file that opens.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// The first hex digits of a key file's id (its name under `keys/`, as `repo key add` printed
    /// it): the key files it names are tried first. One that names none is reported, not fatal.
    pub key_hint: Option<String>,
}

/// A key hint as the hex prefix it is compared with: `keys/` and surrounding blanks are dropped.
fn normalize_key_hint(hint: &str) -> Result<String> {
    let h = hint.trim();
    let h = h.strip_prefix("keys/").unwrap_or(h).to_ascii_lowercase();
    if h.is_empty() || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!(
            "key hint {hint:?} is not the start of a key id (1 to 64 hex digits, as `sophon repo key list` shows)"
        )));
    }
    Ok(h)
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    keys: Arc<MasterKeys>,
    key_id: KeyId,
    index: IndexCache,
    /// Index segments the last sync could not read (damaged), for the error a blob they may list
    /// meets.
    damaged_segments: std::sync::Mutex<Vec<IndexId>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.backend.location())
    }
}

/// Readable snapshots (oldest first) and the unreadable ones with why.
/// The snapshot spec for the newest snapshot, refused while any snapshot cannot be read.
pub const LATEST: &str = "latest";
/// The snapshot spec for the newest snapshot that can be read, passing over unreadable ones.
pub const LATEST_READABLE: &str = "latest-readable";

pub type SnapshotListing = (Vec<(SnapshotId, Snapshot)>, Vec<(SnapshotId, Error)>);

/// The default folder for index caches: `$SOPHON_CACHE_DIR`, else `$XDG_CACHE_HOME/sophon`, else
/// `~/.cache/sophon`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SOPHON_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("sophon");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("sophon");
    }
    std::env::temp_dir().join("sophon-cache")
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn host() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

fn user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default()
}

impl Repository {
    /// Create a new repository at `backend`. Refuses a location that already holds one.
    pub fn init(
        backend: Arc<dyn Backend>,
        passphrase: &[u8],
        opts: &InitOptions,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self> {
        opts.chunker.validate()?;
        compress::Compressor::new(opts.compression)?;
        if backend.stat("config")?.is_some() {
            return Err(Error::invalid(format!("{}: a repository already exists here", backend.location())));
        }
        if passphrase.is_empty() {
            return Err(Error::invalid("the passphrase is empty"));
        }
        let repo_id = RepoId(crypto::random_array()?);
        let keys = MasterKeys::generate(repo_id)?;
        let config = Config {
            version: CONFIG_VERSION,
            id: repo_id,
            chunker: opts.chunker,
            pack_size: opts.pack_size,
            compression: opts.compression,
        };
        // Refuse now what `open` would refuse later (the decoder holds the limits).
        let encoded = config.encode()?;
        Config::decode(&encoded).map_err(|e| Error::invalid(format!("repository options: {e}")))?;
        // Keys first: a config without a key would be a repository nobody can open.
        let keyfile = wrap_keys(&keys, passphrase, opts.argon2)?;
        let key_id = KeyId(content_hash(&keyfile));
        backend.write(&key_path(&key_id), keyfile.into())?;
        backend.write("config", encoded.into())?;
        Self::finish_open(backend, config, keys, key_id, cache_dir)
    }

    /// Open the repository at `backend` with `passphrase`, and bring the index cache up to date.
    pub fn open(backend: Arc<dyn Backend>, passphrase: &[u8], cache_dir: Option<PathBuf>) -> Result<Self> {
        Self::open_with(backend, passphrase, cache_dir, &OpenOptions::default())
    }

    /// [`Repository::open`], trying the key files `opts.key_hint` names first. At most
    /// [`MAX_KEYS_TRIED`] key files are read and tried (format-spec/repository.md §5.3).
    pub fn open_with(
        backend: Arc<dyn Backend>,
        passphrase: &[u8],
        cache_dir: Option<PathBuf>,
        opts: &OpenOptions,
    ) -> Result<Self> {
        let hint = opts.key_hint.as_deref().map(normalize_key_hint).transpose()?;
        let config_size = match backend.stat("config")? {
            Some(size) => size,
            None => {
                return Err(Error::NotFound(format!(
                    "{}: no repository here (no config); create one with `sophon repo init`",
                    backend.location()
                )))
            }
        };
        check_object_size("config", config_size, MAX_CONFIG_BYTES)?;
        let config_bytes = match backend.read("config") {
            Ok(b) => b,
            Err(e) if e.kind == BackendErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "{}: no repository here (no config); create one with `sophon repo init`",
                    backend.location()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let config = Config::decode(&config_bytes)?;
        let mut listed = Vec::new();
        backend.list("keys", &mut |o| {
            if let Ok(id) = o.name.parse::<KeyId>() {
                listed.push((id, o.size));
            }
            Ok(())
        })?;
        listed.sort();
        // The hinted key files first (in name order), then the others; at most MAX_KEYS_TRIED.
        let hinted = |id: &KeyId| hint.as_deref().is_some_and(|h| id.to_hex().starts_with(h));
        let hint_matched = listed.iter().any(|(id, _)| hinted(id));
        listed.sort_by_key(|(id, _)| !hinted(id));
        let not_tried = listed.len().saturating_sub(MAX_KEYS_TRIED);
        listed.truncate(MAX_KEYS_TRIED);
        let mut damaged = Vec::new();
        for (id, size) in listed {
            let what = format!("key {id}");
            if let Err(e) = check_object_size(&what, size, MAX_KEY_FILE_BYTES) {
                damaged.push(e.to_string());
                continue;
            }
            let bytes = backend.read(&key_path(&id))?;
            if content_hash(&bytes) != id.0 {
                damaged.push(format!("key {id}: content does not match its name"));
                continue;
            }
            match unwrap_key(&bytes, &id, passphrase) {
                // A key of another repository (say, left by an interrupted `init`) is skipped, not fatal.
                Ok(Some(keys)) if keys.repo_id != config.id => damaged.push(format!(
                    "key {id} belongs to repository {}, not to this one ({})",
                    keys.repo_id.short(),
                    config.id.short()
                )),
                Ok(Some(keys)) => return Self::finish_open(backend, config, keys, id, cache_dir),
                Ok(None) => {}
                Err(e) => damaged.push(e.to_string()),
            }
        }
        let unmatched_hint = hint.filter(|_| !hint_matched);
        if !damaged.is_empty() {
            return Err(Error::invalid(format!(
                "wrong passphrase for {}, or damaged key files: {}{}",
                backend.location(),
                damaged.join("; "),
                crate::error::untried_note(not_tried, unmatched_hint.as_deref())
            )));
        }
        Err(Error::WrongPassphrase { repo: backend.location(), not_tried, unmatched_hint })
    }

    fn finish_open(
        backend: Arc<dyn Backend>,
        config: Config,
        keys: MasterKeys,
        key_id: KeyId,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let index = match cache_dir {
            Some(dir) => IndexCache::open(&dir.join(config.id.to_hex()).join("index.sqlite"))?,
            None => IndexCache::in_memory()?,
        };
        let repo = Repository {
            backend,
            config,
            keys: Arc::new(keys),
            key_id,
            index,
            damaged_segments: std::sync::Mutex::new(Vec::new()),
        };
        repo.sync_index(&mut |_| {})?;
        Ok(repo)
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn keys(&self) -> &Arc<MasterKeys> {
        &self.keys
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn index(&self) -> &IndexCache {
        &self.index
    }

    // ---------------------------------------------------------------- sealed objects

    fn object_path(kind: ObjectKind, id: &[u8; 32]) -> String {
        let dir = match kind {
            ObjectKind::Index => "index",
            ObjectKind::Snapshot => "snapshots",
            ObjectKind::Lock => "locks",
            ObjectKind::PruneRecord => "prune",
        };
        format!("{dir}/{}", hex::encode(id))
    }

    fn seal_object(&self, kind: ObjectKind, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.seal_payload(kind, &compress::compress_object(plaintext)?)
    }

    /// The envelope's prefix, then the compressed payload sealed straight behind it.
    fn seal_payload(&self, kind: ObjectKind, payload: &[u8]) -> Result<Vec<u8>> {
        let prefix = envelope::prefix(kind, true);
        let mut out = Vec::with_capacity(prefix.len() + payload.len() + crypto::SEAL_OVERHEAD);
        out.extend_from_slice(&prefix);
        self.keys.seal.seal_append(payload, &prefix, &mut out)?;
        Ok(out)
    }

    fn save_object(&self, kind: ObjectKind, plaintext: &[u8]) -> Result<[u8; 32]> {
        self.save_sealed(kind, self.seal_object(kind, plaintext)?)
    }

    /// [`Repository::save_object`] that lets go of the plaintext once it is compressed: a prune's
    /// index segments are megabytes.
    fn save_plaintext(&self, kind: ObjectKind, plaintext: Vec<u8>) -> Result<[u8; 32]> {
        let payload = compress::compress_object(&plaintext)?;
        drop(plaintext);
        let bytes = self.seal_payload(kind, &payload)?;
        drop(payload);
        self.save_sealed(kind, bytes)
    }

    fn save_sealed(&self, kind: ObjectKind, bytes: Vec<u8>) -> Result<[u8; 32]> {
        let id = content_hash(&bytes);
        self.backend.write(&Self::object_path(kind, &id), bytes.into())?;
        Ok(id)
    }

    /// Check, open and decompress a stored object.
    pub fn open_object(&self, kind: ObjectKind, id: &[u8; 32], bytes: &[u8]) -> Result<Vec<u8>> {
        self.open_object_owned(kind, id, bytes.to_vec())
    }

    /// [`open_object`](Self::open_object), decrypting in the object's own buffer: an index
    /// segment of a million blobs is 8 MiB, and each of the threads reading segments held it twice.
    fn open_object_owned(&self, kind: ObjectKind, id: &[u8; 32], mut bytes: Vec<u8>) -> Result<Vec<u8>> {
        let what = format!("{} {}", kind.name(), hex::encode(id));
        if content_hash(&bytes) != *id {
            return Err(Error::HashMismatch { what, expected: hex::encode(id) });
        }
        let (prefix, compressed, start) = envelope::parse(&bytes, kind, &what)?;
        bytes.drain(..start);
        self.keys.seal.open_in_place(&mut bytes, &prefix, &|| what.clone())?;
        if compressed {
            compress::decompress_object(&bytes, MAX_OBJECT_SIZE, &|| what.clone())
        } else {
            Ok(bytes)
        }
    }

    fn load_object(&self, kind: ObjectKind, id: &[u8; 32]) -> Result<Vec<u8>> {
        let bytes = match self.backend.read(&Self::object_path(kind, id)) {
            Ok(b) => b,
            Err(e) if e.kind == BackendErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "{} {} not found in {}",
                    kind.name(),
                    hex::encode(id),
                    self.backend.location()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        self.open_object_owned(kind, id, bytes)
    }

    fn list_ids(&self, dir: &str) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        self.backend.list(dir, &mut |o| {
            let mut id = [0u8; 32];
            if hex::decode_to_slice(&o.name, &mut id).is_ok() {
                out.push(id);
            }
            Ok(())
        })?;
        Ok(out)
    }

    // ---------------------------------------------------------------- snapshots

    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        Ok(SnapshotId(self.save_object(ObjectKind::Snapshot, &snap.encode()?)?))
    }

    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let plain = self.load_object(ObjectKind::Snapshot, &id.0)?;
        Snapshot::decode(&plain, &format!("snapshot {id}"))
    }

    /// Delete a snapshot object (forget). Its data stays until prune.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        // Already gone (another client's forget) is what was asked for.
        self.delete_object(ObjectKind::Snapshot, &id.0)
    }

    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self.list_ids("snapshots")?.into_iter().map(SnapshotId).collect())
    }

    /// Every snapshot that can be read, oldest first, plus the ones that could not with why.
    pub fn list_snapshots(&self) -> Result<SnapshotListing> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(s) => ok.push((id, s)),
                // Forgotten between the listing and the read.
                Err(Error::NotFound(_)) => {}
                Err(e) if e.is_damage() => bad.push((id, e)),
                Err(e) => return Err(e),
            }
        }
        ok.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok((ok, bad))
    }

    /// `latest`, `latest-readable`, a full id, or a unique prefix of at least 4 hex digits. See
    /// [`Repository::resolve_snapshot_noting`].
    pub fn resolve_snapshot(&self, spec: &str) -> Result<SnapshotId> {
        self.resolve_snapshot_noting(spec).map(|(id, _)| id)
    }

    /// [`Repository::resolve_snapshot`], with the unreadable snapshots `latest-readable` passed over
    /// (empty for every other spec), so a front end can say what it skipped.
    ///
    /// `latest` fails with [`Error::LatestUnreadable`] while any snapshot cannot be read: its time
    /// is unknown, so it may be the newest, and the operator must choose between repairing it and
    /// the newest readable one (`latest-readable`), not find out from the restored data.
    pub fn resolve_snapshot_noting(&self, spec: &str) -> Result<(SnapshotId, Vec<(SnapshotId, Error)>)> {
        if spec == LATEST || spec == LATEST_READABLE {
            let (snaps, bad) = self.list_snapshots()?;
            if spec == LATEST && !bad.is_empty() {
                return Err(Error::LatestUnreadable {
                    repo: self.backend.location(),
                    unreadable: bad
                        .into_iter()
                        .map(|(id, e)| {
                            // The message names the snapshot already.
                            let text = e.to_string();
                            let why = text.strip_prefix(&format!("snapshot {id}: ")).unwrap_or(&text).to_string();
                            (id, why)
                        })
                        .collect(),
                });
            }
            return match snaps.last() {
                Some((id, _)) => Ok((*id, bad)),
                None if bad.is_empty() => {
                    Err(Error::NotFound(format!("{}: no snapshots yet", self.backend.location())))
                }
                None => Err(Error::NotFound(format!(
                    "{}: no snapshot can be read ({} cannot: {})",
                    self.backend.location(),
                    bad.len(),
                    bad.iter().map(|(id, e)| format!("{id}: {e}")).collect::<Vec<_>>().join("; ")
                ))),
            };
        }
        if spec.len() < 4 || !spec.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "snapshot {spec:?}: give `latest`, `latest-readable` or at least 4 hex digits of an id"
            )));
        }
        let spec = spec.to_ascii_lowercase();
        let matches: Vec<SnapshotId> =
            self.snapshot_ids()?.into_iter().filter(|id| id.to_hex().starts_with(&spec)).collect();
        match matches.as_slice() {
            [one] => Ok((*one, Vec::new())),
            [] => Err(Error::NotFound(format!("snapshot {spec} not found in {}", self.backend.location()))),
            _ => Err(Error::invalid(format!(
                "snapshot prefix {spec} matches {} snapshots; give more digits",
                matches.len()
            ))),
        }
    }

    // ---------------------------------------------------------------- index

    /// Write an index segment, then record it in the cache.
    pub fn save_index_segment(&self, segment: &IndexSegment) -> Result<IndexId> {
        let id = self.upload_index_segment(segment)?;
        self.index.add_segment(&id, segment)?;
        Ok(id)
    }

    /// Write an index segment to the repository only (the caller records it in the cache): once
    /// this returns, the packs it lists are indexed, whatever happens to the cache.
    pub fn upload_index_segment(&self, segment: &IndexSegment) -> Result<IndexId> {
        Ok(IndexId(self.save_object(ObjectKind::Index, &segment.encode())?))
    }

    /// Write `packs` (each flagged when it is only condemned) as new index segments that supersede
    /// `superseded`, then delete those. Readers
    /// that see old and new segments at once ignore the old (the superseded list), so a crash at
    /// any point leaves a complete index.
    pub fn replace_index(
        &self,
        packs: &mut dyn Iterator<Item = Result<(IndexedPack, bool)>>,
        superseded: &[IndexId],
    ) -> Result<Vec<IndexId>> {
        // Only the last segment written supersedes the old ones: until it exists readers use the
        // old segments (beside the new ones, which only list some packs twice), so no moment, and
        // no crash, leaves an index missing packs.
        let mut written = Vec::new();
        let mut segment = SegmentEncoder::default();
        let save = |segment: SegmentEncoder, superseded: &[IndexId]| {
            self.save_plaintext(ObjectKind::Index, segment.finish(superseded)).map(IndexId)
        };
        for p in packs {
            let (pack, condemned) = p?;
            // Closed before a pack that would take it past the entries' bound.
            if segment.entries() > 0 && segment.entries() + pack.entries.len() > ENTRIES_PER_INDEX_SEGMENT {
                written.push(save(std::mem::take(&mut segment), &[])?);
            }
            segment.push(&pack, condemned);
            drop(pack);
            if segment.packs() >= PACKS_PER_INDEX_SEGMENT {
                written.push(save(std::mem::take(&mut segment), &[])?);
            }
        }
        written.push(save(segment, superseded)?);
        for id in superseded {
            if !written.contains(id) {
                self.delete_object(ObjectKind::Index, &id.0)?;
            }
        }
        Ok(written)
    }

    fn delete_object(&self, kind: ObjectKind, id: &[u8; 32]) -> Result<()> {
        match self.backend.delete(&Self::object_path(kind, id)) {
            Err(e) if e.kind != BackendErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub fn load_index_segment(&self, id: &IndexId) -> Result<IndexSegment> {
        let plain = self.load_object(ObjectKind::Index, &id.0)?;
        IndexSegment::decode(&plain, &format!("index segment {id}"))
    }

    /// Index segments read at once while syncing the cache: from a remote store as many as it
    /// takes writes at once (two at least), since each read is mostly waiting; from a local disk
    /// one, read by the thread that writes the cache. The sync reads them in batches of this size,
    /// so memory holds at most this many decoded segments (a prune's can list 1,024 packs), and
    /// segments decoded in other threads left the allocator holding their memory: a rebuild of
    /// 10M blobs on a local disk peaked at 126 MiB with two readers, 86 MiB with one, no slower
    /// (1M blobs: 107 and 77 MiB).
    fn segment_readers(&self) -> usize {
        if self.backend.is_remote() {
            self.backend.parallel_writes().max(2)
        } else {
            1
        }
    }

    /// [`Repository::load_index_segment`] of each of `ids`, in their order, several at once: a
    /// client with an empty cache reads every segment, and on a remote store each read is mostly
    /// waiting (1,000 segments one after the other took seconds even on a store on loopback).
    fn load_index_segments(&self, ids: &[IndexId]) -> Vec<Result<IndexSegment>> {
        // The sync hands over at most `segment_readers()` ids at a time: one thread each.
        if ids.len() <= 1 {
            return ids.iter().map(|id| self.load_index_segment(id)).collect();
        }
        std::thread::scope(|scope| {
            let readers: Vec<_> = ids.iter().map(|id| scope.spawn(move || self.load_index_segment(id))).collect();
            readers
                .into_iter()
                .zip(ids)
                .map(|(reader, id)| {
                    reader.join().unwrap_or_else(|_| {
                        Err(Error::invalid(format!("index segment {id} was not read (its reader thread panicked)")))
                    })
                })
                .collect()
        })
    }

    pub fn index_segment_ids(&self) -> Result<Vec<IndexId>> {
        Ok(self.list_ids("index")?.into_iter().map(IndexId).collect())
    }

    /// Bring the cache in step with the repository's index segments: load new ones; if one the cache
    /// holds is gone or superseded, rebuild from scratch. A damaged segment is reported through
    /// `on_damage` and skipped, so the rest of the repository stays usable.
    ///
    /// Only the library calls it: outside, a `Session` syncs after taking its lock, as the rule
    /// asks (format-spec/repository.md §12).
    pub(crate) fn sync_index(&self, on_damage: &mut dyn FnMut(Error)) -> Result<()> {
        let mut damaged = Vec::new();
        let synced = self.sync_index_noting(&mut |id, e| {
            damaged.push(id);
            on_damage(e)
        });
        *self.damaged_segments.lock().unwrap_or_else(|p| p.into_inner()) = damaged;
        synced
    }

    fn sync_index_noting(&self, on_damage: &mut dyn FnMut(IndexId, Error)) -> Result<()> {
        let remote: HashSet<IndexId> = self.index_segment_ids()?.into_iter().collect();
        let cached = self.index.segments()?;
        let mut missing: Vec<IndexId> = remote.difference(&cached).copied().collect();
        missing.sort();
        // An empty cache (a new client, a deleted cache) is filled as a rebuild: staged in bulk, it
        // is several times faster than segment by segment (one commit each into a growing table).
        let mut rebuild = cached.iter().any(|id| !remote.contains(id)) || (cached.is_empty() && missing.len() > 1);
        if !rebuild {
            // Left behind by a prune or repair that was interrupted before deleting them: a
            // segment already read replaces each, so their packs must not come back.
            let mut wanted = Vec::with_capacity(missing.len());
            for id in missing {
                if !self.index.is_superseded(&id)? {
                    wanted.push(id);
                }
            }
            'load: for batch in wanted.chunks(self.segment_readers()) {
                for (id, loaded) in batch.iter().zip(self.load_index_segments(batch)) {
                    match loaded {
                        Ok(seg) => {
                            if seg.superseded.iter().any(|s| cached.contains(s) || remote.contains(s)) {
                                rebuild = true;
                                break 'load;
                            }
                            self.index.add_segment(id, &seg)?;
                        }
                        // Deleted since the listing: a prune or repair replaced it.
                        Err(Error::NotFound(_)) => {}
                        Err(e) if e.is_damage() => on_damage(*id, e),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if rebuild {
            self.rebuild_index_cache(&remote, on_damage)?;
        }
        Ok(())
    }

    fn rebuild_index_cache(&self, remote: &HashSet<IndexId>, on_damage: &mut dyn FnMut(IndexId, Error)) -> Result<()> {
        // One pass: the cache leaves out segments that others supersede. Damage is reported only
        // for segments nothing supersedes; a superseded one left behind by an interrupted prune or
        // repair is not needed.
        let mut superseded = HashSet::new();
        let mut damaged = Vec::new();
        let mut ids: Vec<IndexId> = remote.iter().copied().collect();
        ids.sort();
        self.index.replace_all(&mut |add| {
            for batch in ids.chunks(self.segment_readers()) {
                for (id, loaded) in batch.iter().zip(self.load_index_segments(batch)) {
                    match loaded {
                        Ok(seg) => {
                            superseded.extend(seg.superseded.iter().copied());
                            add(id, &seg)?;
                        }
                        Err(Error::NotFound(_)) => {}
                        Err(e) if e.is_damage() => damaged.push((*id, e)),
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        })?;
        for (id, e) in damaged {
            if !superseded.contains(&id) {
                on_damage(id, e);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- blobs

    /// Where blob `id` is. A blob no segment lists is [`Error::BlobNotIndexed`], naming the
    /// segment that listed it when the cache saw that segment vanish, or the damaged ones.
    pub fn lookup_blob(&self, id: &BlobId) -> Result<BlobLocation> {
        match self.index.lookup(id)? {
            Some(loc) => Ok(loc),
            None => Err(self.not_indexed(id)?),
        }
    }

    /// [`lookup_blob`](Self::lookup_blob) for many blobs in one index transaction; a blob the
    /// index lacks is an `Err` in its own place, so the caller can say which file needed it.
    pub fn lookup_blobs(&self, ids: &[BlobId]) -> Result<Vec<Result<BlobLocation>>> {
        let found = self.index.lookup_many(ids)?;
        found
            .into_iter()
            .zip(ids)
            .map(|(loc, id)| match loc {
                Some(loc) => Ok(Ok(loc)),
                None => Ok(Err(self.not_indexed(id)?)),
            })
            .collect()
    }

    /// Why `id` is not in the index, with what the cache knows of where it went.
    fn not_indexed(&self, id: &BlobId) -> Result<Error> {
        Ok(Error::BlobNotIndexed(Box::new(NotIndexed {
            blob: *id,
            repo: self.backend.location(),
            used_by: None,
            segments: self.index.segments()?.len() as u64,
            listed_by: self.index.lost_from(id)?,
            vanished: self.index.lost_segment_count()?,
            damaged: self.damaged_segments.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        })))
    }

    /// Read one blob: locate it, read its bytes, authenticate, decompress.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.lookup_blob(id)?;
        self.read_blob_at(&loc)
    }

    pub fn read_blob_at(&self, loc: &BlobLocation) -> Result<Vec<u8>> {
        let e = &loc.entry;
        let sealed =
            self.read_pack_range(&loc.pack, e.offset as u64, e.sealed_len as u64).map_err(|err| match err {
                Error::PackUnreadable(mut p) => {
                    p.blob = Some(e.id);
                    Error::PackUnreadable(p)
                }
                other => other,
            })?;
        pack::open_blob(&self.keys.seal, e, sealed, &|| format!("blob {} in pack {}", e.id, loc.pack))
    }

    /// Read `len` bytes at `offset` of pack `id`. A read that fails because the pack is missing,
    /// or shorter than the range, is [`Error::PackUnreadable`] (the pack's path, its size, what to
    /// do) rather than the store's words; any other failure is the store's error.
    pub fn read_pack_range(&self, id: &PackId, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = pack::pack_path(id);
        let err = match self.backend.read_range(&path, offset, len) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => e,
        };
        let unreadable = |problem| {
            Error::PackUnreadable(Box::new(UnreadablePack {
                pack: *id,
                path: path.clone(),
                repo: self.backend.location(),
                problem,
                blob: None,
                used_by: None,
            }))
        };
        let needed = offset.saturating_add(len);
        match err.kind {
            BackendErrorKind::NotFound => Err(unreadable(PackProblem::Missing)),
            // A store says "range not satisfiable" (or hands back fewer bytes) in words of its own:
            // its size says what is wrong.
            BackendErrorKind::Other => match self.backend.stat(&path) {
                Ok(None) => Err(unreadable(PackProblem::Missing)),
                Ok(Some(size)) if size < needed => Err(unreadable(PackProblem::Short { size, needed })),
                _ => Err(err.into()),
            },
            _ => Err(err.into()),
        }
    }

    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        let loc = self.lookup_blob(id)?;
        if loc.entry.blob_type != BlobType::Tree {
            return Err(Error::malformed(format!("tree {id}"), "indexed as a data blob"));
        }
        let bytes = self.read_blob_at(&loc)?;
        Tree::decode(&bytes, &format!("tree {id}"))
    }

    // ---------------------------------------------------------------- prune records

    pub fn save_prune_record(&self, record: &PruneRecord) -> Result<PruneId> {
        Ok(PruneId(self.save_object(ObjectKind::PruneRecord, &record.encode()?)?))
    }

    /// Every prune record; an unreadable one is an error (its packs must not be guessed at).
    pub fn prune_records(&self) -> Result<Vec<(PruneId, PruneRecord)>> {
        let mut out = Vec::new();
        for id in self.list_ids("prune")? {
            let id = PruneId(id);
            let plain = self.load_object(ObjectKind::PruneRecord, &id.0)?;
            out.push((id, PruneRecord::decode(&plain, &format!("prune record {id}"))?));
        }
        Ok(out)
    }

    pub fn remove_prune_record(&self, id: &PruneId) -> Result<()> {
        self.delete_object(ObjectKind::PruneRecord, &id.0)
    }
}

impl Repository {
    /// Rebuild the index segments from the pack headers: write one new set of segments that
    /// supersedes every existing one, then delete the old ones. Packs whose header cannot be read
    /// are reported and left out.
    pub(crate) fn repair_index(&self, on_problem: &mut dyn FnMut(Error)) -> Result<RepairOutcome> {
        let old = self.index_segment_ids()?;
        let mut outcome = RepairOutcome::default();
        let mut listed = Vec::new();
        self.backend.list("data", &mut |o| {
            if let Ok(id) = o.name.rsplit('/').next().unwrap_or("").parse::<PackId>() {
                listed.push((id, o.size));
            }
            Ok(())
        })?;
        // Headers are read as the segments are written, so only one segment's packs are held.
        let mut packs = listed.into_iter().filter_map(|(id, size)| {
            match pack::read_pack_header(self.backend.as_ref(), &self.keys.seal, &id, size) {
                Ok(entries) => {
                    outcome.packs += 1;
                    outcome.blobs += entries.len() as u64;
                    // Every pack comes back live: a prune record that named one as condemned then
                    // finds it indexed and spares it.
                    Some(Ok((IndexedPack { id, entries }, false)))
                }
                Err(e) if e.is_damage() => {
                    outcome.unreadable += 1;
                    on_problem(e);
                    None
                }
                Err(e) => Some(Err(e)),
            }
        });
        let written = self.replace_index(&mut packs, &old)?;
        outcome.segments_written = written.len() as u64;
        outcome.segments_removed = old.len() as u64;
        self.sync_index(&mut |_| {})?;
        // Every pack was read: a blob still missing is in none, whichever segment once listed it.
        self.index.forget_lost()?;
        Ok(outcome)
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RepairOutcome {
    pub packs: u64,
    pub blobs: u64,
    pub unreadable: u64,
    pub segments_written: u64,
    pub segments_removed: u64,
}
