//! The local index cache: a SQLite database mapping blob ids to their place in a pack.
//!
//! It is only a cache. Everything in it comes from the repository's index segments (and those can be
//! rebuilt from pack headers by `repo repair-index`), so deleting it loses nothing: the next command
//! rebuilds it. Lookups go to SQLite rather than to a map in memory, so memory does not grow with the
//! repository.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::format::index::IndexSegment;
use crate::format::pack::{PackEntry, ENTRY_LEN};
use crate::format::Reader;
use crate::id::{BlobId, BlobType, IndexId, PackId};

mod pack_use;
mod runs;
pub use pack_use::{PackSet, PackTotals, PackUse, Pick, IN_RECORD, RESURRECTED, RIPE};
use runs::{Row, SortedRuns};

/// Bumped whenever the cache's schema changes; an older cache is dropped and rebuilt.
/// 2: the ids the cached segments supersede are kept, so a superseded segment left behind by an
/// interrupted prune is never loaded beside the segment that replaced it.
/// 3: packs carry `condemned` (listed only in segments' condemned lists): readable, not reused.
/// 4: `lost` remembers which vanished segment listed each blob no segment lists any more, so the
/// error for such a blob can name the segment.
/// 5: packs carry `entries`, a hash of their entries, so a rebuild keeps the blob rows of a pack
/// it already holds instead of writing them again (after a prune rewrote every segment).
/// 6: `entries` holds the pack's entries themselves, encoded as a segment encodes them: a pack's
/// entries were found by scanning every blob row (the blob table is keyed by blob), once per pack
/// a verify reads or a prune keeps, which took a verify of 1M blobs 264 s. The pack tables have
/// rowids: in a table without them SQLite reads the whole of every row its search passes whose
/// record overflows its page (a pack's entries do), so each pack lookup read megabytes.
/// 7: `packs_state`, an index of (id, condemned): a lookup asks whether a blob's pack is condemned,
/// and without it read the pack's row, a page of its own for most packs (at 100M blobs, 390,000
/// pages read at random).
const SCHEMA_VERSION: i64 = 7;

/// Where a blob is: its pack and its header entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackId,
    pub entry: PackEntry,
}

/// An indexed pack as verify pages through them: its blob bytes, its size in the listing (none
/// when it is missing) and whether only a prune's condemned list names it.
pub struct ScratchPack {
    pub id: PackId,
    pub blob_bytes: u64,
    pub listed: Option<u64>,
    pub condemned: bool,
}

/// Adds one segment inside [`IndexCache::replace_all`]'s transaction.
pub type AddSegment<'a> = dyn FnMut(&IndexId, &IndexSegment) -> Result<()> + 'a;

/// The cache's SQLite page cache, in KiB (see `init`), and while a rebuild writes its sorted rows.
const CACHE_KIB: i64 = 16 * 1024;
const MERGE_CACHE_KIB: i64 = 4 * 1024;

/// Ids asked in one read transaction by the `*_many` lookups.
const READ_PART: usize = 4096;

/// The columns [`IndexCache::location`] reads, in its order.
const LOCATION_COLUMNS: &str = "id, type, compression, offset, sealed_len, raw_len, pack";

/// Where a segment's rows go: the cache's own tables, or a rebuild's staging tables, which also key
/// packs by segment so that superseded segments can be left out at the end (a rebuild's blob rows
/// go to sorted runs instead, see `runs`).
#[derive(Clone, Copy)]
enum Tables {
    Cache,
    /// `reuse`: a pack the cache holds is staged without its blobs (see `stage_and_swap`).
    Staging {
        reuse: bool,
    },
}

impl Tables {
    /// The inserts of a segment's superseded ids, its id and its packs (?1 pack, ?2 segment, ?3 blob
    /// bytes, ?4 condemned, ?5 entries; staging: ?6 reused).
    fn inserts(self) -> [&'static str; 3] {
        match self {
            Tables::Cache => [
                "INSERT OR IGNORE INTO superseded (id) VALUES (?1)",
                "INSERT OR IGNORE INTO segments (id) VALUES (?1)",
                // A pack one segment condemns and another lists plainly (a backup indexed its own
                // pack after a prune condemned it) is a live pack.
                "INSERT INTO packs (id, segment, blob_bytes, condemned, entries) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET condemned = min(condemned, excluded.condemned)",
            ],
            Tables::Staging { .. } => [
                "INSERT OR IGNORE INTO staging.superseded (id) VALUES (?1)",
                "INSERT OR IGNORE INTO staging.segments (id) VALUES (?1)",
                "INSERT INTO staging.packs (id, segment, blob_bytes, condemned, entries, reused)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id, segment) DO UPDATE SET condemned = min(condemned, excluded.condemned)",
            ],
        }
    }
}

/// A pack's entries as the cache keeps them: encoded as a segment encodes them.
fn encode_entries(entries: &[PackEntry]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        e.encode_into(&mut bytes);
    }
    bytes
}

/// The insert of one blob row into the cache (?1 blob, ?2 pack, then the entry's fields).
const INSERT_BLOB: &str = "INSERT OR IGNORE INTO blobs (id, pack, type, compression, offset, sealed_len, raw_len)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// [`INSERT_BLOB`] for rows written ahead of a rebuild's swap: a row a killed rebuild left
/// (same blob, same pack) takes the staged values.
const INSERT_BLOB_AHEAD: &str =
    "INSERT OR REPLACE INTO blobs (id, pack, type, compression, offset, sealed_len, raw_len)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Rows per transaction of a rebuild's rows written ahead (about 100 MB of log each; see
/// [`IndexCache::merge_rows`]).
const ROWS_PER_COMMIT: usize = 1 << 20;

/// The main database's page cache, in KiB.
fn set_cache_kib(conn: &Connection, p: &Path, kib: i64) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA main.cache_size = -{kib}")).map_err(|e| sql(p, e))
}

/// SQLite's count of commits by other connections (it changes when one commits).
fn data_version(conn: &Connection, p: &Path) -> Result<i64> {
    conn.query_row("PRAGMA main.data_version", [], |r| r.get(0)).map_err(|e| sql(p, e))
}

/// Where a segment's blob rows go: straight into the cache's table, or into a rebuild's sorted
/// runs under the rebuild's number for the segment.
enum BlobSink<'c, 'r> {
    Table(rusqlite::CachedStatement<'c>),
    Runs { rows: &'r mut SortedRuns<Row>, segment: u32 },
}

impl BlobSink<'_, '_> {
    fn add(&mut self, p: &Path, pack: &PackId, e: &PackEntry) -> Result<()> {
        match self {
            BlobSink::Table(st) => st
                .execute(params![
                    &e.id.0[..],
                    &pack.0[..],
                    e.blob_type.code(),
                    e.compression.code(),
                    e.offset,
                    e.sealed_len,
                    e.raw_len
                ])
                .map(|_| ())
                .map_err(|err| sql(p, err)),
            BlobSink::Runs { rows, segment } => rows.push(Row {
                id: e.id.0,
                pack: pack.0,
                segment: *segment,
                blob_type: e.blob_type.code(),
                compression: e.compression.code(),
                offset: e.offset,
                sealed_len: e.sealed_len,
                raw_len: e.raw_len,
            }),
        }
    }
}

/// Blob ids gathered during a walk of every snapshot, then looked up or marked together in key
/// order, each once: ids are hashes, so a lookup or mark per id as a walk meets them lands on a
/// random page of a table each time, and once the table outgrows memory (100M blobs: the blob
/// table holds 13 GB, a prune's marks 3 GB) each is a read from disk (a verify of 100M blobs took
/// 44 minutes). Sorted (in runs spilled beside the cache, as a rebuild's rows are), the table's
/// pages are walked in order and each is read or written once. Memory is one run of ids, whatever
/// their number.
pub struct SortedIds<'c> {
    cache: &'c IndexCache,
    ids: SortedRuns<BlobId>,
}

impl SortedIds<'_> {
    pub fn push(&mut self, id: BlobId) -> Result<()> {
        self.ids.push(id)
    }

    /// Each distinct id pushed, in key order, with what [`IndexCache::lookup`] answers for it.
    pub fn lookup_each(mut self, f: &mut dyn FnMut(&BlobId, Option<BlobLocation>) -> Result<()>) -> Result<()> {
        let cache = self.cache;
        distinct_in_parts(&mut self.ids, READ_PART, &mut |part| {
            for (id, loc) in part.iter().zip(cache.lookup_many(part)?) {
                f(id, loc)?;
            }
            Ok(())
        })
    }

    /// Mark every id pushed (see [`IndexCache::mark`]).
    pub fn mark_all(mut self) -> Result<()> {
        let cache = self.cache;
        distinct_in_parts(&mut self.ids, MARK_PART, &mut |part| cache.mark(part).map(drop))
    }
}

/// Ids marked in one transaction by [`SortedIds::mark_all`].
const MARK_PART: usize = 64 * 1024;

/// The distinct ids of `runs`, in key order, handed to `f` in parts of up to `size`.
fn distinct_in_parts(
    runs: &mut SortedRuns<BlobId>,
    size: usize,
    f: &mut dyn FnMut(&[BlobId]) -> Result<()>,
) -> Result<()> {
    let mut part: Vec<BlobId> = Vec::with_capacity(size);
    let mut last: Option<BlobId> = None;
    runs.merge(&mut |id| {
        if last == Some(*id) {
            return Ok(());
        }
        last = Some(*id);
        part.push(*id);
        if part.len() == size {
            f(&part)?;
            part.clear();
        }
        Ok(())
    })?;
    if part.is_empty() {
        Ok(())
    } else {
        f(&part)
    }
}

/// The process id in the name of a scratch file beside the cache (after `<cache>.`):
/// `rebuild-<pid>`, `rebuild-<pid>.rows`, `<what>-<pid>-<n>` ([`IndexCache::sorted_ids`]).
fn scratch_pid(rest: &str) -> Option<u32> {
    let (kind, tail) = rest.split_once('-')?;
    if !matches!(kind, "rebuild" | "lookups" | "marks") {
        return None;
    }
    tail.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

pub struct IndexCache {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Counts [`marks_reset`](Self::marks_reset)s, so a plan can tell its marks are still there.
    marks_generation: std::sync::atomic::AtomicU64,
    /// Records (a rebuild's blob rows, [`SortedIds`]' ids) sorted in memory before a run is
    /// spilled ([`runs::RUN_ROWS`]; tests lower it to spill small ones).
    run_rows: usize,
}

impl IndexCache {
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        let cache = IndexCache {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            marks_generation: Default::default(),
            run_rows: runs::RUN_ROWS,
        };
        cache.init()?;
        cache.remove_dead_scratch(std::time::Duration::from_secs(3600));
        Ok(cache)
    }

    /// Delete the scratch files beside the cache (a rebuild's staging database and rows, the runs
    /// of [`SortedIds`]) of processes that are gone: one killed part-way leaves files as large as
    /// the cache (3.2 GB of runs at 100M blobs) that nothing else would remove. Only files
    /// untouched for `age`: a process of another pid table (a container sharing the cache folder)
    /// looks dead from here.
    fn remove_dead_scratch(&self, age: std::time::Duration) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else { return };
        let prefix = format!("{}.", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(scratch_pid) else {
                continue;
            };
            let dead = crate::liveness::ProcessRef { pid, start: None, space: None }.liveness()
                == crate::liveness::Liveness::Dead;
            let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if dead && old.is_some_and(|old| old >= age) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// An in-memory cache, for tools and tests.
    pub fn in_memory() -> Result<Self> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql(&path, e))?;
        let cache =
            IndexCache { conn: Mutex::new(conn), path, marks_generation: Default::default(), run_rows: runs::RUN_ROWS };
        cache.init()?;
        Ok(cache)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn init(&self) -> Result<()> {
        let conn = self.conn();
        let p = &self.path;
        conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(|e| sql(p, e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| sql(p, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| sql(p, e))?;
        // 16 MiB of pages (SQLite's default is 2 MiB): a backup's lookups and inserts land all over
        // the blob table, and with the default the pages were read back from the file and spilled
        // to the log within one transaction again and again. The memory is a bound, not a reservation.
        conn.pragma_update(None, "cache_size", -CACHE_KIB).map_err(|e| sql(p, e))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| sql(p, e))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(
                "DROP TABLE IF EXISTS blobs; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS segments;
                 DROP TABLE IF EXISTS superseded; DROP TABLE IF EXISTS lost;
                 CREATE TABLE lost (blob BLOB NOT NULL, segment BLOB NOT NULL, PRIMARY KEY (blob, segment)) WITHOUT ROWID;
                 CREATE TABLE segments (id BLOB PRIMARY KEY) WITHOUT ROWID;
                 CREATE TABLE superseded (id BLOB PRIMARY KEY) WITHOUT ROWID;
                 CREATE TABLE packs (id BLOB PRIMARY KEY, segment BLOB NOT NULL, blob_bytes INTEGER NOT NULL,
                     condemned INTEGER NOT NULL, entries BLOB NOT NULL);
                 CREATE TABLE blobs (id BLOB NOT NULL, pack BLOB NOT NULL, type INTEGER NOT NULL,
                     compression INTEGER NOT NULL, offset INTEGER NOT NULL, sealed_len INTEGER NOT NULL,
                     raw_len INTEGER NOT NULL, PRIMARY KEY (id, pack)) WITHOUT ROWID;
                 CREATE INDEX packs_state ON packs (id, condemned);",
            )
            .map_err(|e| sql(p, e))?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| sql(p, e))?;
        }
        Ok(())
    }

    pub fn segments(&self) -> Result<HashSet<IndexId>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT id FROM segments").map_err(|e| sql(&self.path, e))?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| sql(&self.path, e))?;
        let mut out = HashSet::new();
        for r in rows {
            let bytes = r.map_err(|e| sql(&self.path, e))?;
            if let Some(id) = IndexId::from_slice(&bytes) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// Whether a segment the cache holds lists pack `id` as live (not only as condemned).
    pub fn has_live_pack(&self, id: &PackId) -> Result<bool> {
        Ok(self.pack_condemned(&self.conn(), id)? == Some(false))
    }

    /// Whether a segment the cache holds supersedes `id`.
    pub fn is_superseded(&self, id: &IndexId) -> Result<bool> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT 1 FROM superseded WHERE id = ?1").map_err(|e| sql(&self.path, e))?;
        st.exists(params![&id.0[..]]).map_err(|e| sql(&self.path, e))
    }

    /// Forget everything (before a full rebuild).
    pub fn clear(&self) -> Result<()> {
        self.conn()
            .execute_batch(
                "DELETE FROM blobs; DELETE FROM packs; DELETE FROM segments; DELETE FROM superseded; DELETE FROM lost;",
            )
            .map_err(|e| sql(&self.path, e))
    }

    /// The segment that listed blob `id` before it vanished from the repository, when a rebuild
    /// of this cache saw it go (see [`IndexCache::replace_all`]).
    pub fn lost_from(&self, id: &BlobId) -> Result<Option<IndexId>> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT segment FROM lost WHERE blob = ?1 LIMIT 1").map_err(|e| sql(&self.path, e))?;
        let found: Option<Vec<u8>> =
            st.query_row(params![&id.0[..]], |r| r.get(0)).optional().map_err(|e| sql(&self.path, e))?;
        Ok(found.and_then(|b| IndexId::from_slice(&b)))
    }

    /// How many segments this cache held have vanished from the repository with blobs no segment
    /// lists any more.
    pub fn lost_segment_count(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT COUNT(DISTINCT segment) FROM lost", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| sql(&self.path, e))
    }

    /// Forget the vanished segments (after a repair-index: the index was rebuilt from every pack,
    /// so a blob still missing is in no pack, whichever segment once listed it).
    pub fn forget_lost(&self) -> Result<()> {
        self.conn().execute_batch("DELETE FROM lost;").map_err(|e| sql(&self.path, e))
    }

    /// Record a segment and all its entries in one transaction.
    pub fn add_segment(&self, id: &IndexId, segment: &IndexSegment) -> Result<()> {
        let mut conn = self.conn();
        let p = self.path.clone();
        let tx = conn.transaction().map_err(|e| sql(&p, e))?;
        {
            let mut blobs = BlobSink::Table(tx.prepare_cached(INSERT_BLOB).map_err(|e| sql(&p, e))?);
            Self::write_segment(&tx, &p, Tables::Cache, id, segment, &mut blobs)?;
        }
        tx.commit().map_err(|e| sql(&p, e))
    }

    /// Replace the whole cache: `fill` is handed a function that adds one segment. Segments that
    /// another added segment supersedes are left out, so a caller can add every segment it finds in
    /// one pass. Other processes sharing the cache see the old index or the new one, never an empty
    /// one, and are not kept waiting while segments download: they are staged in a scratch
    /// database beside the cache (their blob rows in sorted runs, see `runs`), and the cache is
    /// written only at the end, its blob rows in key order.
    pub fn replace_all(&self, fill: &mut dyn FnMut(&mut AddSegment<'_>) -> Result<()>) -> Result<()> {
        let mut conn = self.conn();
        let p = self.path.clone();
        // Beside the cache, not in the temporary folder (often a small tmpfs): it holds about as
        // much as the cache. Writing to it locks nothing in the cache file. An in-memory cache
        // stages in a private temporary database ('') and keeps its runs in memory.
        let scratch = |suffix: &str| self.beside(&format!("rebuild-{}{suffix}", std::process::id()));
        let staging = scratch("").unwrap_or_default();
        let mut rows = SortedRuns::with_run_rows(scratch(".rows"), self.run_rows);
        let remove_staging = || {
            if !staging.as_os_str().is_empty() {
                let _ = std::fs::remove_file(&staging);
            }
        };
        // Left attached by an earlier rebuild of this process that panicked part-way.
        let _ = conn.execute_batch("DETACH DATABASE staging");
        remove_staging();
        conn.execute("ATTACH DATABASE ?1 AS staging", params![staging.to_string_lossy()]).map_err(|e| sql(&p, e))?;
        let mut replaced =
            Self::create_staging(&conn, &p).and_then(|()| Self::stage_and_swap(&mut conn, &p, fill, &mut rows, true));
        if let Ok(false) = replaced {
            // Another process rebuilt the cache meanwhile and dropped packs this rebuild kept
            // rows of: stage everything again, reusing nothing.
            replaced = conn
                .execute_batch(
                    "DELETE FROM staging.segments; DELETE FROM staging.superseded; DELETE FROM staging.packs;",
                )
                .map_err(|e| sql(&p, e))
                .and_then(|()| rows.clear())
                .and_then(|()| Self::stage_and_swap(&mut conn, &p, fill, &mut rows, false));
        }
        let detached = conn.execute_batch("DETACH DATABASE staging").map_err(|e| sql(&p, e));
        remove_staging();
        replaced.map(|_| ()).and(detached)
    }

    fn create_staging(conn: &Connection, p: &Path) -> Result<()> {
        // Scratch: a crash loses nothing the next rebuild does not redo.
        conn.execute_batch(
            "PRAGMA staging.journal_mode = OFF; PRAGMA staging.synchronous = OFF;
             CREATE TABLE staging.segments (id BLOB PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE staging.superseded (id BLOB PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE staging.packs (id BLOB NOT NULL, segment BLOB NOT NULL, blob_bytes INTEGER NOT NULL,
                 condemned INTEGER NOT NULL, entries BLOB NOT NULL, reused INTEGER NOT NULL,
                 PRIMARY KEY (id, segment));",
        )
        .map_err(|e| sql(p, e))
    }

    /// Stage every segment `fill` adds, then swap the staged index in. With `reuse`, a pack the
    /// cache already holds (same id, same entries: a pack's entries never change) is staged
    /// without its blobs, whose rows stay: after a prune rewrote every segment, a client's sync
    /// writes a row per pack, not per blob. Returns false, having changed nothing, when a pack
    /// staged that way is gone from the cache by the swap (another process rebuilt it).
    fn stage_and_swap(
        conn: &mut Connection,
        p: &Path,
        fill: &mut dyn FnMut(&mut AddSegment<'_>) -> Result<()>,
        rows: &mut SortedRuns<Row>,
        reuse: bool,
    ) -> Result<bool> {
        // A cache that lists no pack (a first sync, a cache of an older schema or a cleared one)
        // shows nothing a reader could miss while the new rows go in ahead of the swap (see
        // `merge_rows`). Any commit by another connection since then is noticed at the swap,
        // which then fails (false); the second attempt (without `reuse`) writes in the swap.
        let (fresh, orphans, version) = {
            let tx = conn.transaction().map_err(|e| sql(p, e))?;
            let exists = |table: &str| {
                tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM main.{table})"), [], |r| r.get::<_, bool>(0))
                    .map_err(|e| sql(p, e))
            };
            let state = (reuse && !exists("packs")?, exists("blobs")?, data_version(&tx, p)?);
            tx.commit().map_err(|e| sql(p, e))?;
            state
        };
        let tx = conn.transaction().map_err(|e| sql(p, e))?;
        let tables = Tables::Staging { reuse };
        // The rebuild's numbers for the segments it staged, which its blob rows carry.
        let mut staged: Vec<IndexId> = Vec::new();
        fill(&mut |id, seg| {
            let number = u32::try_from(staged.len()).map_err(|_| Error::invalid("more than 2^32 index segments"))?;
            staged.push(*id);
            Self::write_segment(&tx, p, tables, id, seg, &mut BlobSink::Runs { rows: &mut *rows, segment: number })
        })?;
        tx.commit().map_err(|e| sql(p, e))?;
        // The staged segments whose rows the new index keeps: those no staged segment supersedes.
        let kept = {
            let mut st = conn
                .prepare("SELECT NOT EXISTS (SELECT 1 FROM staging.superseded WHERE id = ?1)")
                .map_err(|e| sql(p, e))?;
            staged
                .iter()
                .map(|id| st.query_row(params![&id.0[..]], |r| r.get(0)))
                .collect::<rusqlite::Result<Vec<bool>>>()
        }
        .map_err(|e| sql(p, e))?;
        if fresh {
            Self::merge_rows(conn, p, rows, &kept, INSERT_BLOB_AHEAD, Some(ROWS_PER_COMMIT))?;
            rows.clear()?;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| sql(p, e))?;
        if fresh && data_version(&tx, p)? != version {
            // Another process wrote the cache meanwhile (a rebuild of its own, a backup's segment):
            // the rows written ahead may no longer be all there. Stage again, the slow way.
            return Ok(false);
        }
        let vanished: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM staging.packs s WHERE s.reused = 1
                     AND NOT EXISTS (SELECT 1 FROM main.packs m WHERE m.id = s.id)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| sql(p, e))?;
        if vanished > 0 {
            return Ok(false);
        }
        // Blobs of a segment the cache held that is neither among the new ones nor superseded by
        // one vanished from the repository (deleted by hand, lost) or cannot be read: remember
        // which segment listed them, for the error a snapshot that uses one meets. Forgotten once a
        // segment lists them again (a repair-index), or once a segment supersedes theirs. The blobs
        // are read (once, each with its pack by key) only when such a segment is there.
        let gone: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM main.segments WHERE id NOT IN (SELECT id FROM staging.segments)
                     AND id NOT IN (SELECT id FROM staging.superseded)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| sql(p, e))?;
        if gone > 0 {
            tx.execute_batch(
                "INSERT OR IGNORE INTO main.lost (blob, segment)
                     SELECT b.id, p.segment FROM main.blobs b CROSS JOIN main.packs p ON p.id = b.pack
                     WHERE p.segment NOT IN (SELECT id FROM staging.segments)
                       AND p.segment NOT IN (SELECT id FROM staging.superseded);",
            )
            .map_err(|e| sql(p, e))?;
        }
        tx.execute_batch(
            "DELETE FROM main.packs; DELETE FROM main.segments; DELETE FROM main.superseded;
             INSERT INTO main.superseded SELECT id FROM staging.superseded;
             INSERT INTO main.segments SELECT id FROM staging.segments
                 WHERE id NOT IN (SELECT id FROM staging.superseded);
             INSERT INTO main.packs (id, segment, blob_bytes, condemned, entries)
                 SELECT id, min(segment), max(blob_bytes), min(condemned), min(entries) FROM staging.packs
                 WHERE segment IN (SELECT id FROM main.segments) GROUP BY id;",
        )
        .map_err(|e| sql(p, e))?;
        if fresh {
            // Rows a rebuild killed part-way wrote ahead, of packs this index may not list.
            if orphans {
                tx.execute_batch("DELETE FROM main.blobs WHERE pack NOT IN (SELECT id FROM main.packs);")
                    .map_err(|e| sql(p, e))?;
            }
        } else {
            // The blob rows of packs the new index keeps stay (reused packs have no staged blobs);
            // those of every other pack go.
            tx.execute_batch(
                "DELETE FROM main.blobs WHERE pack NOT IN (SELECT id FROM staging.packs
                     WHERE reused = 1 AND segment IN (SELECT id FROM main.segments));",
            )
            .map_err(|e| sql(p, e))?;
            Self::merge_rows(&tx, p, rows, &kept, INSERT_BLOB, None)?;
        }
        // The runs are spent: their file goes before the commit copies the log into the cache.
        rows.clear()?;
        tx.execute_batch(
            "DELETE FROM main.lost WHERE EXISTS (SELECT 1 FROM main.blobs b WHERE b.id = lost.blob)
                 OR EXISTS (SELECT 1 FROM main.superseded s WHERE s.id = lost.segment);",
        )
        .map_err(|e| sql(p, e))?;
        tx.commit().map_err(|e| sql(p, e))?;
        Ok(true)
    }

    /// The staged blob rows of `kept` segments, merged in key order, through `insert_sql` (of
    /// [`INSERT_BLOB`]'s shape). The rows come in key order, so the insert needs only the pages
    /// along the table's right edge: a smaller page cache while it runs keeps a rebuild's peak
    /// memory flat.
    ///
    /// With `commit_every`, the rows go in their own transactions of that many rows (into a cache
    /// that lists no pack, ahead of the swap: lookups pass over a row whose pack the cache does not
    /// list, so no reader sees them until the swap lists their packs). One transaction of 100M rows
    /// grew SQLite's log and, with it, the log's index in shared memory by 25 MB (a third of the
    /// rebuild's peak); the log now starts over after each commit's checkpoint. Without it they go
    /// into the caller's transaction.
    fn merge_rows(
        conn: &Connection,
        p: &Path,
        rows: &mut SortedRuns<Row>,
        kept: &[bool],
        insert_sql: &str,
        commit_every: Option<usize>,
    ) -> Result<()> {
        set_cache_kib(conn, p, MERGE_CACHE_KIB)?;
        // Transaction statements run only when the rows take their own transactions.
        let own_tx = |statements: &str| match commit_every {
            Some(_) => conn.execute_batch(statements).map_err(|e| sql(p, e)),
            None => Ok(()),
        };
        let written = own_tx("BEGIN").and_then(|()| {
            let mut insert = conn.prepare(insert_sql).map_err(|e| sql(p, e))?;
            let mut in_tx = 0usize;
            rows.merge(&mut |r| {
                if kept.get(r.segment as usize) != Some(&true) {
                    return Ok(());
                }
                let fields = (r.blob_type, r.compression, r.offset, r.sealed_len, r.raw_len);
                insert
                    .execute(params![&r.id[..], &r.pack[..], fields.0, fields.1, fields.2, fields.3, fields.4])
                    .map_err(|e| sql(p, e))?;
                in_tx += 1;
                if Some(in_tx) == commit_every {
                    own_tx("COMMIT; BEGIN")?;
                    in_tx = 0;
                }
                Ok(())
            })?;
            drop(insert);
            own_tx("COMMIT")
        });
        if written.is_err() && commit_every.is_some() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Restored whatever the outcome: the connection serves the rest of the command.
        set_cache_kib(conn, p, CACHE_KIB)?;
        written
    }

    fn write_segment(
        tx: &rusqlite::Transaction,
        p: &Path,
        tables: Tables,
        id: &IndexId,
        segment: &IndexSegment,
        blobs: &mut BlobSink<'_, '_>,
    ) -> Result<()> {
        let [superseded_sql, segment_sql, pack_sql] = tables.inserts();
        // Prepared per segment (a segment holds up to 1,024 packs) and not cached: a cached statement
        // on the staging database would outlive its DETACH.
        let prepare = |sql_text: &str| tx.prepare(sql_text);
        let mut sup = prepare(superseded_sql).map_err(|e| sql(p, e))?;
        for s in &segment.superseded {
            sup.execute(params![&s.0[..]]).map_err(|e| sql(p, e))?;
        }
        prepare(segment_sql).map_err(|e| sql(p, e))?.execute(params![&id.0[..]]).map_err(|e| sql(p, e))?;
        let mut pack = prepare(pack_sql).map_err(|e| sql(p, e))?;
        let mut known = match tables {
            Tables::Staging { reuse: true } => {
                Some(prepare("SELECT entries FROM main.packs WHERE id = ?1").map_err(|e| sql(p, e))?)
            }
            _ => None,
        };
        let listed = segment.packs.iter().map(|pk| (pk, false));
        for (pk, condemned) in listed.chain(segment.condemned.iter().map(|pk| (pk, true))) {
            let bytes = pk.blob_bytes() as i64;
            let (pack_id, seg_id) = (&pk.id.0[..], &id.0[..]);
            let entries = encode_entries(&pk.entries);
            let reused = match known.as_mut() {
                Some(st) => {
                    st.query_row(params![pack_id], |r| r.get::<_, Vec<u8>>(0)).optional().map_err(|e| sql(p, e))?
                        == Some(entries.clone())
                }
                None => false,
            };
            match tables {
                Tables::Cache => pack.execute(params![pack_id, seg_id, bytes, condemned, &entries]),
                Tables::Staging { .. } => pack.execute(params![pack_id, seg_id, bytes, condemned, &entries, reused]),
            }
            .map_err(|e| sql(p, e))?;
            if reused {
                continue;
            }
            for e in &pk.entries {
                blobs.add(p, &pk.id, e)?;
            }
        }
        Ok(())
    }

    /// Where to read a blob: in a live pack if one holds it, else in a condemned one.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        self.lookup_in(&self.conn(), id)
    }

    /// [`lookup`](Self::lookup) for many blobs in few read transactions (see
    /// [`contains_many`](Self::contains_many)): a restore of 200,000 small files asks for each.
    pub fn lookup_many(&self, ids: &[BlobId]) -> Result<Vec<Option<BlobLocation>>> {
        self.read_in_parts(ids, &|conn, id| self.lookup_in(conn, id))
    }

    /// Ids to look up or mark in key order (see [`SortedIds`]), their runs spilled beside the
    /// cache to `<cache>.<what>-<pid>-<n>` (an in-memory cache keeps them in memory).
    pub fn sorted_ids(&self, what: &str) -> SortedIds<'_> {
        debug_assert!(scratch_pid(&format!("{what}-1-0")).is_some(), "{what}: a scratch file no open would remove");
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spill = self.beside(&format!("{what}-{}-{n}", std::process::id()));
        SortedIds { cache: self, ids: SortedRuns::with_run_rows(spill, self.run_rows) }
    }

    /// `<cache>.<name>`, a scratch file beside the cache; none for an in-memory cache.
    fn beside(&self, name: &str) -> Option<PathBuf> {
        (self.path != Path::new(":memory:")).then(|| {
            let mut path = self.path.clone().into_os_string();
            path.push(format!(".{name}"));
            PathBuf::from(path)
        })
    }

    /// `ask` for each of `ids`, in read transactions of [`READ_PART`] ids: one transaction spares
    /// SQLite's file locking per query, and parts let other threads' lookups in between.
    fn read_in_parts<T>(&self, ids: &[BlobId], ask: &dyn Fn(&Connection, &BlobId) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(READ_PART) {
            let conn = self.conn();
            let tx = conn.unchecked_transaction().map_err(|e| sql(&self.path, e))?;
            for id in part {
                out.push(ask(&tx, id)?);
            }
            tx.finish().map_err(|e| sql(&self.path, e))?;
        }
        Ok(out)
    }

    fn lookup_in(&self, conn: &Connection, id: &BlobId) -> Result<Option<BlobLocation>> {
        let mut st = conn
            .prepare_cached(&format!("SELECT {LOCATION_COLUMNS} FROM blobs WHERE id = ?1"))
            .map_err(|e| sql(&self.path, e))?;
        let mut rows = st.query(params![&id.0[..]]).map_err(|e| sql(&self.path, e))?;
        let mut condemned = None;
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            let loc = self.location(r)?;
            match self.pack_condemned(conn, &loc.pack)? {
                Some(false) => return Ok(Some(loc)),
                Some(true) => condemned = condemned.or(Some(loc)),
                // A row whose pack the cache does not list is not a place to read from.
                None => {}
            }
        }
        Ok(condemned)
    }

    /// Whether the cache lists `pack` as condemned; `None` when it does not list it.
    ///
    /// Lookups are two single-table queries rather than a join: SQLite, built with STAT4 (as
    /// rusqlite bundles it), plans a join again on every new binding of its parameter, which made
    /// each lookup ten times slower than its two B-tree searches (20 µs against 2.8 µs; a backup or
    /// a restore of 200,000 small files makes 200,000 of them).
    fn pack_condemned(&self, conn: &Connection, pack: &PackId) -> Result<Option<bool>> {
        // Named: SQLite's planner otherwise picks the primary key's index and reads the row.
        let mut st = conn
            .prepare_cached("SELECT condemned FROM packs INDEXED BY packs_state WHERE id = ?1")
            .map_err(|e| sql(&self.path, e))?;
        st.query_row(params![&pack.0[..]], |r| r.get::<_, i64>(0))
            .optional()
            .map(|c| c.map(|c| c != 0))
            .map_err(|e| sql(&self.path, e))
    }

    /// A row of [`LOCATION_COLUMNS`], checked (the cache is a file others could have damaged).
    fn location(&self, r: &rusqlite::Row) -> Result<BlobLocation> {
        let get = |r: &rusqlite::Row| -> rusqlite::Result<_> {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, u8>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, Vec<u8>>(6)?,
            ))
        };
        let (id, t, c, offset, sealed_len, raw_len, pack) = get(r).map_err(|e| sql(&self.path, e))?;
        let bad = || Error::malformed(format!("index cache {}", self.path.display()), "invalid row; delete the cache");
        Ok(BlobLocation {
            pack: PackId::from_slice(&pack).ok_or_else(bad)?,
            entry: PackEntry {
                blob_type: BlobType::from_code(t).ok_or_else(bad)?,
                compression: Compression::from_code(c).ok_or_else(bad)?,
                id: BlobId::from_slice(&id).ok_or_else(bad)?,
                offset,
                sealed_len,
                raw_len,
            },
        })
    }

    /// Whether a backup may reuse the blob: a live (not condemned) pack holds it. A blob only in
    /// condemned packs is stored again, since those packs are deleted once the clients that were
    /// running when they were condemned have finished (format-spec/prune.md).
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        self.live(&self.conn(), id)
    }

    fn live(&self, conn: &Connection, id: &BlobId) -> Result<bool> {
        let mut st = conn.prepare_cached("SELECT pack FROM blobs WHERE id = ?1").map_err(|e| sql(&self.path, e))?;
        let mut rows = st.query(params![&id.0[..]]).map_err(|e| sql(&self.path, e))?;
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            let pack = r.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(|e| sql(&self.path, e))?;
            let Some(pack) = PackId::from_slice(pack) else { continue };
            if self.pack_condemned(conn, &pack)? == Some(false) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`contains`](Self::contains) for many blobs at once, in few read transactions: a query
    /// outside one pays SQLite's file locking each time, which was a third of a no-change backup
    /// of 200,000 small files.
    pub fn contains_many(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        self.read_in_parts(ids, &|conn, id| self.live(conn, id))
    }

    /// Every indexed pack with the bytes of blobs it holds and whether it is condemned, streamed.
    pub fn for_each_pack(&self, f: &mut dyn FnMut(PackId, u64, bool) -> Result<()>) -> Result<()> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT id, blob_bytes, condemned FROM packs").map_err(|e| sql(&self.path, e))?;
        let mut rows = st.query([]).map_err(|e| sql(&self.path, e))?;
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            let id: Vec<u8> = r.get(0).map_err(|e| sql(&self.path, e))?;
            let bytes: i64 = r.get(1).map_err(|e| sql(&self.path, e))?;
            let condemned: bool = r.get(2).map_err(|e| sql(&self.path, e))?;
            if let Some(id) = PackId::from_slice(&id) {
                f(id, bytes as u64, condemned)?;
            }
        }
        Ok(())
    }

    /// The entries the index holds for one pack, by offset; none for a pack it does not list.
    pub fn pack_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT entries FROM packs WHERE id = ?1").map_err(|e| sql(&self.path, e))?;
        let Some(bytes) = st
            .query_row(params![&pack.0[..]], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(|e| sql(&self.path, e))?
        else {
            return Ok(Vec::new());
        };
        self.decode_entries(&bytes)
    }

    /// Entries as [`encode_entries`] wrote them, by offset. The cache is a file others could have
    /// damaged: its entries are parsed as strictly as a segment's.
    fn decode_entries(&self, bytes: &[u8]) -> Result<Vec<PackEntry>> {
        let what = format!("index cache {}", self.path.display());
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return Err(Error::malformed(what, "invalid pack entries; delete the cache"));
        }
        let mut r = Reader::new(bytes, &what);
        let mut out =
            (0..bytes.len() / ENTRY_LEN).map(|_| PackEntry::decode(&mut r, &what)).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|e| e.offset);
        Ok(out)
    }

    pub fn blob_count(&self) -> Result<u64> {
        let conn = self.conn();
        conn.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| sql(&self.path, e))
    }
}

fn sql(path: &Path, source: rusqlite::Error) -> Error {
    Error::Sqlite { path: path.to_path_buf(), source }
}

/// Prune's marks: the blobs its snapshots use, and those a repack has copied, in temporary tables
/// of this connection (spilled to disk by SQLite when large) rather than in sets in memory, which
/// took a prune's plan to 1.5 GiB at 10 million blobs. They last until the next [`marks_reset`]
/// on this cache (a plan is executed through the same cache it was made with).
///
/// [`marks_reset`]: IndexCache::marks_reset
impl IndexCache {
    /// Empty the marks and the plan's table of packs (see `pack_use`); returns their new
    /// generation (see [`marks_generation`](Self::marks_generation)).
    pub fn marks_reset(&self) -> Result<u64> {
        let conn = self.conn();
        conn.execute_batch(
            "PRAGMA temp.cache_size = -8192; PRAGMA temp.journal_mode = OFF;
             CREATE TEMP TABLE IF NOT EXISTS marks (id BLOB PRIMARY KEY) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS copied (id BLOB PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM temp.marks; DELETE FROM temp.copied;",
        )
        .map_err(|e| sql(&self.path, e))?;
        Self::pack_use_reset(&conn).map_err(|e| sql(&self.path, e))?;
        Ok(self.marks_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
    }

    /// Which reset the current marks come from.
    pub fn marks_generation(&self) -> u64 {
        self.marks_generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Mark `ids` (in one transaction); for each, whether it was not marked before.
    pub fn mark(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        self.insert_new("INSERT OR IGNORE INTO temp.marks (id) VALUES (?1)", ids)
    }

    /// Record `ids` as copied by a repack; for each, whether it was not copied before.
    pub fn mark_copied(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        self.insert_new("INSERT OR IGNORE INTO temp.copied (id) VALUES (?1)", ids)
    }

    fn insert_new(&self, insert: &str, ids: &[BlobId]) -> Result<Vec<bool>> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(|e| sql(&self.path, e))?;
        let mut fresh = Vec::with_capacity(ids.len());
        {
            let mut st = tx.prepare_cached(insert).map_err(|e| sql(&self.path, e))?;
            for id in ids {
                fresh.push(st.execute(params![&id.0[..]]).map_err(|e| sql(&self.path, e))? == 1);
            }
        }
        tx.commit().map_err(|e| sql(&self.path, e))?;
        Ok(fresh)
    }

    /// For each of `ids`, whether it is marked.
    pub fn marked(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        self.read_in_parts(ids, &|conn, id| {
            let mut st =
                conn.prepare_cached("SELECT 1 FROM temp.marks WHERE id = ?1").map_err(|e| sql(&self.path, e))?;
            st.exists(params![&id.0[..]]).map_err(|e| sql(&self.path, e))
        })
    }

    /// Every marked blob no live (not condemned) indexed pack holds, streamed.
    pub fn for_each_marked_not_live(&self, f: &mut dyn FnMut(BlobId) -> Result<()>) -> Result<()> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT m.id FROM temp.marks m WHERE NOT EXISTS (SELECT 1 FROM blobs b JOIN packs p ON p.id = b.pack
                     WHERE b.id = m.id AND p.condemned = 0)",
            )
            .map_err(|e| sql(&self.path, e))?;
        let mut rows = st.query([]).map_err(|e| sql(&self.path, e))?;
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            let id: Vec<u8> = r.get(0).map_err(|e| sql(&self.path, e))?;
            let id = BlobId::from_slice(&id)
                .ok_or_else(|| Error::malformed(format!("index cache {}", self.path.display()), "invalid mark"))?;
            f(id)?;
        }
        Ok(())
    }
}

/// Scratch tables for `verify`: the repository's pack listing and the trees already walked, kept
/// in SQLite (temporary tables, spilled to disk by SQLite when large) rather than in memory.
impl IndexCache {
    pub fn scratch_reset(&self) -> Result<()> {
        self.conn()
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS listed (id BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
                 CREATE TEMP TABLE IF NOT EXISTS walked (id BLOB PRIMARY KEY, findings TEXT NOT NULL) WITHOUT ROWID;
                 DELETE FROM listed; DELETE FROM walked;",
            )
            .map_err(|e| sql(&self.path, e))
    }

    /// Forget which trees were walked (a verify walks them again to tell which snapshots use a
    /// damaged data blob).
    pub fn scratch_reset_walked(&self) -> Result<()> {
        self.conn().execute_batch("DELETE FROM walked;").map_err(|e| sql(&self.path, e))
    }

    pub fn scratch_add_listed(&self, packs: &[(PackId, u64)]) -> Result<()> {
        let mut conn = self.conn();
        let p = self.path.clone();
        let tx = conn.transaction().map_err(|e| sql(&p, e))?;
        {
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO listed (id, size) VALUES (?1, ?2)")
                .map_err(|e| sql(&p, e))?;
            for (id, size) in packs {
                st.execute(params![&id.0[..], *size as i64]).map_err(|e| sql(&p, e))?;
            }
        }
        tx.commit().map_err(|e| sql(&p, e))
    }

    /// Up to `limit` indexed packs after `after` (in id order), each with its indexed blob bytes and
    /// its listed size (`None`: not in the repository). Paging keeps memory bounded.
    pub fn scratch_indexed_packs(&self, after: Option<&PackId>, limit: usize) -> Result<Vec<ScratchPack>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT p.id, p.blob_bytes, l.size, p.condemned FROM packs p LEFT JOIN listed l ON l.id = p.id
                 WHERE p.id > ?1 ORDER BY p.id LIMIT ?2",
            )
            .map_err(|e| sql(&self.path, e))?;
        let start: &[u8] = after.map(|a| &a.0[..]).unwrap_or(&[]);
        let rows = st
            .query_map(params![start, limit as i64], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?, r.get::<_, bool>(3)?))
            })
            .map_err(|e| sql(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, bytes, size, condemned) = row.map_err(|e| sql(&self.path, e))?;
            if let Some(id) = PackId::from_slice(&id) {
                out.push(ScratchPack { id, blob_bytes: bytes as u64, listed: size.map(|s| s as u64), condemned });
            }
        }
        Ok(out)
    }

    pub fn scratch_unindexed_count(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM listed WHERE id NOT IN (SELECT id FROM packs)", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| sql(&self.path, e))
    }

    pub fn scratch_listed_count(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM listed", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| sql(&self.path, e))
    }

    /// The findings recorded for an already walked tree (newline-separated object names).
    pub fn scratch_walked(&self, id: &BlobId) -> Result<Option<Vec<String>>> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT findings FROM walked WHERE id = ?1").map_err(|e| sql(&self.path, e))?;
        let found: Option<String> =
            st.query_row(params![&id.0[..]], |r| r.get(0)).optional().map_err(|e| sql(&self.path, e))?;
        Ok(found.map(|s| s.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()))
    }

    pub fn scratch_set_walked(&self, id: &BlobId, findings: &[String]) -> Result<()> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("INSERT OR REPLACE INTO walked (id, findings) VALUES (?1, ?2)")
            .map_err(|e| sql(&self.path, e))?;
        st.execute(params![&id.0[..], findings.join("\n")]).map_err(|e| sql(&self.path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::IndexedPack;

    /// Pack `id` holding data blobs `blobs` of 100 sealed bytes each, one after the other.
    pub(super) fn pack(id: u8, blobs: &[u8]) -> IndexedPack {
        let entries = blobs
            .iter()
            .enumerate()
            .map(|(i, &b)| PackEntry {
                blob_type: BlobType::Data,
                compression: Compression::Zstd,
                id: BlobId([b; 32]),
                offset: 8 + 100 * i as u32,
                sealed_len: 100,
                raw_len: 200,
            })
            .collect();
        IndexedPack { id: PackId([id; 32]), entries }
    }

    fn segment(superseded: &[u8], packs: &[(u8, &[u8])]) -> IndexSegment {
        IndexSegment {
            superseded: superseded.iter().map(|&s| IndexId([s; 32])).collect(),
            packs: packs.iter().map(|&(id, blobs)| pack(id, blobs)).collect(),
            condemned: Vec::new(),
        }
    }

    fn pack_of(cache: &IndexCache, blob: u8) -> Option<u8> {
        cache.lookup(&BlobId([blob; 32])).unwrap().map(|l| l.pack.0[0])
    }

    /// Every (blob, pack) row of the cache, in order.
    fn blob_rows(cache: &IndexCache) -> Vec<(Vec<u8>, Vec<u8>, u32)> {
        let conn = cache.conn();
        let mut st = conn.prepare("SELECT id, pack, offset FROM blobs ORDER BY id, pack").unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn a_rebuild_spilled_in_many_sorted_runs_holds_what_adding_each_segment_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rebuilt = IndexCache::open(&dir.path().join("index.sqlite")).unwrap();
        rebuilt.run_rows = 3;
        let added = IndexCache::in_memory().unwrap();
        // Blobs in several packs, a pack listed by two segments, and a superseded segment whose
        // blob 12 no other segment lists: 17 rows, six runs of three.
        let kept = [
            (IndexId([1; 32]), segment(&[], &[(20, &[10, 11, 13, 14]), (21, &[11, 15, 16, 17])])),
            (IndexId([2; 32]), segment(&[3], &[(22, &[10, 18, 19]), (20, &[10, 11, 13, 14])])),
        ];
        let superseded = (IndexId([3; 32]), segment(&[], &[(23, &[12, 10])]));
        for (id, seg) in &kept {
            added.add_segment(id, seg).unwrap();
        }
        let saw_runs = std::cell::Cell::new(false);
        rebuilt
            .replace_all(&mut |add| {
                add(&kept[1].0, &kept[1].1)?;
                add(&superseded.0, &superseded.1)?;
                add(&kept[0].0, &kept[0].1)?;
                let rows = dir.path().join(format!("index.sqlite.rebuild-{}.rows", std::process::id()));
                saw_runs.set(rows.exists());
                Ok(())
            })
            .unwrap();
        assert!(saw_runs.get(), "the rows were spilled in runs beside the cache");
        assert_eq!(blob_rows(&rebuilt), blob_rows(&added));
        assert_eq!(blob_rows(&rebuilt).len(), 11);
        assert_eq!(pack_of(&rebuilt, 12), None, "the superseded segment's blob is left out");
        assert_eq!(pack_of(&rebuilt, 19), Some(22));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(
            left.iter().all(|n| !n.to_string_lossy().contains(".rebuild-")),
            "the scratch files are gone: {left:?}"
        );
    }

    #[test]
    fn sorted_lookups_answer_each_distinct_id_once_in_key_order_as_lookup_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = IndexCache::open(&dir.path().join("index.sqlite")).unwrap();
        cache.run_rows = 3;
        // 10 live, 11 only condemned (still readable there), 12 nowhere, 13 in both.
        let mut seg = segment(&[], &[(20, &[10, 13, 14, 15])]);
        seg.condemned = segment(&[], &[(21, &[11, 13])]).packs;
        cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
        let asked = [15u8, 12, 10, 13, 11, 10, 14, 12, 13, 15, 11];
        let mut lookups = cache.sorted_ids("lookups");
        for b in asked {
            lookups.push(BlobId([b; 32])).unwrap();
        }
        let scratch = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".lookups-"))
                .count()
        };
        assert_eq!(scratch(dir.path()), 1, "eleven ids in runs of three were spilled beside the cache");
        let mut answered = Vec::new();
        lookups
            .lookup_each(&mut |id, loc| {
                answered.push((id.0[0], loc.map(|l| l.pack.0[0])));
                Ok(())
            })
            .unwrap();
        let want: Vec<(u8, Option<u8>)> = [10u8, 11, 12, 13, 14, 15]
            .iter()
            .map(|&b| (b, cache.lookup(&BlobId([b; 32])).unwrap().map(|l| l.pack.0[0])))
            .collect();
        assert_eq!(answered, want);
        assert_eq!(answered[..4], [(10, Some(20)), (11, Some(21)), (12, None), (13, Some(20))]);
        assert_eq!(scratch(dir.path()), 0, "the ids' scratch file goes with them");
    }

    #[test]
    fn scratch_files_of_processes_that_are_gone_are_removed_when_the_cache_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let names = [
            format!("index.sqlite.rebuild-{dead}"),
            format!("index.sqlite.rebuild-{dead}.rows"),
            format!("index.sqlite.marks-{dead}-3"),
            format!("index.sqlite.lookups-{me}-0"),
            format!("index.sqlite.notes-{dead}"),
            format!("other.sqlite.marks-{dead}-0"),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), b"runs").unwrap();
        }
        let left = || {
            let mut v: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            v.retain(|n| n != "index.sqlite" && !n.starts_with("index.sqlite-"));
            v.sort();
            v
        };
        let mut all = names.to_vec();
        all.sort();
        // Fresh files stay (another pid table's process looks dead from here).
        let cache = IndexCache::open(&path).unwrap();
        assert_eq!(left(), all);
        cache.remove_dead_scratch(std::time::Duration::ZERO);
        let mut want = names[3..].to_vec();
        want.sort();
        assert_eq!(left(), want, "a dead process's rebuild, rows and marks go; our own and others' files stay");
    }

    #[test]
    fn sorted_marks_mark_what_was_pushed_once_spilled_beside_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = IndexCache::open(&dir.path().join("index.sqlite")).unwrap();
        cache.run_rows = 2;
        cache.marks_reset().unwrap();
        cache.mark(&[BlobId([40; 32])]).unwrap();
        let mut marks = cache.sorted_ids("marks");
        for b in [33u8, 31, 35, 31, 40, 33, 32] {
            marks.push(BlobId([b; 32])).unwrap();
        }
        let spilled = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".marks-"));
        assert_eq!(spilled.count(), 1, "seven ids in runs of two were spilled beside the cache");
        marks.mark_all().unwrap();
        let asked: Vec<BlobId> = (30u8..=41).map(|b| BlobId([b; 32])).collect();
        let want: Vec<bool> = (30u8..=41).map(|b| matches!(b, 31 | 32 | 33 | 35 | 40)).collect();
        assert_eq!(cache.marked(&asked).unwrap(), want);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().contains(".marks-")), "{left:?}");
    }

    #[test]
    fn a_rebuild_leaves_out_superseded_segments_in_whatever_order_they_come() {
        let cache = IndexCache::in_memory().unwrap();
        // Segment 2 replaces segment 1 (a prune moved blob 11 to pack 21 and dropped blob 12); it
        // is added first, as a listing may return it.
        let old = segment(&[], &[(20, &[10, 11, 12])]);
        let new = segment(&[1], &[(20, &[10]), (21, &[11])]);
        cache
            .replace_all(&mut |add| {
                add(&IndexId([2; 32]), &new)?;
                add(&IndexId([1; 32]), &old)
            })
            .unwrap();
        assert_eq!(cache.segments().unwrap(), HashSet::from([IndexId([2; 32])]));
        assert!(cache.is_superseded(&IndexId([1; 32])).unwrap());
        assert_eq!(pack_of(&cache, 10), Some(20));
        assert_eq!(pack_of(&cache, 11), Some(21));
        assert_eq!(pack_of(&cache, 12), None);
        assert_eq!(cache.blob_count().unwrap(), 2);
        assert_eq!(cache.pack_entries(&PackId([20; 32])).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_rebuild_keeps_the_old_cache_and_the_next_one_works() {
        let cache = IndexCache::in_memory().unwrap();
        cache.add_segment(&IndexId([1; 32]), &segment(&[], &[(20, &[10])])).unwrap();
        let failed = cache.replace_all(&mut |add| {
            add(&IndexId([2; 32]), &segment(&[], &[(21, &[11])]))?;
            Err(Error::NotFound("segment 3, for this test".into()))
        });
        assert!(failed.is_err());
        assert_eq!(pack_of(&cache, 10), Some(20));
        assert_eq!(pack_of(&cache, 11), None);
        cache.replace_all(&mut |add| add(&IndexId([2; 32]), &segment(&[], &[(21, &[11])]))).unwrap();
        assert_eq!(pack_of(&cache, 10), None);
        assert_eq!(pack_of(&cache, 11), Some(21));
    }

    #[test]
    fn other_processes_read_and_write_the_cache_while_a_rebuild_downloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let cache = IndexCache::open(&path).unwrap();
        cache.add_segment(&IndexId([1; 32]), &segment(&[], &[(20, &[10])])).unwrap();
        let other = Connection::open(&path).unwrap();
        // No waiting: a lock held by the rebuild shows at once as SQLITE_BUSY.
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        cache
            .replace_all(&mut |add| {
                add(&IndexId([2; 32]), &segment(&[], &[(21, &[11])]))?;
                // Mid-rebuild (a remote one spends its time here, downloading): another process
                // still reads the old index and can take the write lock.
                let blobs: i64 = other.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0)).unwrap();
                assert_eq!(blobs, 1);
                other.execute_batch("BEGIN IMMEDIATE; COMMIT;").expect("the cache is not locked while staging");
                Ok(())
            })
            .unwrap();
        let blobs: i64 = other.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0)).unwrap();
        assert_eq!(blobs, 1);
        assert_eq!(pack_of(&cache, 11), Some(21));
        assert_eq!(pack_of(&cache, 10), None);
        let scratch = dir.path().join(format!("index.sqlite.rebuild-{}", std::process::id()));
        assert!(!scratch.exists(), "the scratch database is deleted");

        // A rebuild that panics part-way leaves the scratch database attached; the next one works.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.replace_all(&mut |_| panic!("mid-rebuild, for this test"))
        }));
        assert!(panicked.is_err());
        assert_eq!(pack_of(&cache, 11), Some(21));
        cache.replace_all(&mut |add| add(&IndexId([3; 32]), &segment(&[], &[(22, &[12])]))).unwrap();
        assert_eq!(pack_of(&cache, 12), Some(22));
        assert_eq!(pack_of(&cache, 11), None);
        assert!(!scratch.exists());
    }

    #[test]
    fn a_rebuild_remembers_which_vanished_segment_listed_a_blob_until_a_segment_lists_it_again() {
        let cache = IndexCache::in_memory().unwrap();
        cache.add_segment(&IndexId([1; 32]), &segment(&[], &[(20, &[10, 11])])).unwrap();
        cache.add_segment(&IndexId([2; 32]), &segment(&[], &[(21, &[12])])).unwrap();
        cache.add_segment(&IndexId([3; 32]), &segment(&[], &[(22, &[13])])).unwrap();
        // Segment 1 vanished; segment 3 was replaced by segment 4 (a prune), which is no loss.
        let replacement = segment(&[3], &[(22, &[13])]);
        cache
            .replace_all(&mut |add| {
                add(&IndexId([2; 32]), &segment(&[], &[(21, &[12])]))?;
                add(&IndexId([4; 32]), &replacement)
            })
            .unwrap();
        assert_eq!(cache.lost_from(&BlobId([10; 32])).unwrap(), Some(IndexId([1; 32])));
        assert_eq!(cache.lost_from(&BlobId([11; 32])).unwrap(), Some(IndexId([1; 32])));
        assert_eq!(cache.lost_from(&BlobId([12; 32])).unwrap(), None);
        assert_eq!(cache.lost_from(&BlobId([13; 32])).unwrap(), None);
        assert_eq!(cache.lost_segment_count().unwrap(), 1);
        // A later rebuild keeps what it knows; a segment that lists blob 10 again (a repair) ends it.
        cache
            .replace_all(&mut |add| {
                add(&IndexId([2; 32]), &segment(&[], &[(21, &[12])]))?;
                add(&IndexId([4; 32]), &replacement)?;
                add(&IndexId([5; 32]), &segment(&[], &[(20, &[10])]))
            })
            .unwrap();
        assert_eq!(cache.lost_from(&BlobId([10; 32])).unwrap(), None);
        assert_eq!(cache.lost_from(&BlobId([11; 32])).unwrap(), Some(IndexId([1; 32])));
        cache.forget_lost().unwrap();
        assert_eq!(cache.lost_segment_count().unwrap(), 0);
    }

    #[test]
    fn a_rebuild_after_a_consolidation_keeps_the_rows_of_the_packs_it_holds_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(&dir.path().join("index.sqlite")).unwrap();
        cache.add_segment(&IndexId([1; 32]), &segment(&[], &[(20, &[10, 11])])).unwrap();
        cache.add_segment(&IndexId([2; 32]), &segment(&[], &[(21, &[12])])).unwrap();
        cache.add_segment(&IndexId([3; 32]), &segment(&[], &[(22, &[13])])).unwrap();
        // A prune rewrote segments 1-3 as segment 4: pack 20 as it was (its rows are kept), pack 21
        // gone, pack 22 listed with other entries than the cache holds (staged again), pack 23 new.
        let consolidated = segment(&[1, 2, 3], &[(20, &[10, 11]), (22, &[14]), (23, &[15])]);
        cache.replace_all(&mut |add| add(&IndexId([4; 32]), &consolidated)).unwrap();
        assert_eq!(cache.segments().unwrap(), HashSet::from([IndexId([4; 32])]));
        assert_eq!(
            [10, 11, 12, 13, 14, 15].map(|b| pack_of(&cache, b)),
            [Some(20), Some(20), None, None, Some(22), Some(23)]
        );
        assert_eq!(cache.blob_count().unwrap(), 4);
        assert_eq!(cache.lost_segment_count().unwrap(), 0, "superseded segments are no loss");

        // Another process rebuilds the cache between this rebuild's staging and its swap, dropping
        // pack 20, which this rebuild staged without its blobs: it stages everything again.
        let other = IndexCache::open(&dir.path().join("index.sqlite")).unwrap();
        let mut calls = 0;
        cache
            .replace_all(&mut |add| {
                calls += 1;
                add(&IndexId([6; 32]), &segment(&[4], &[(20, &[10, 11]), (23, &[15])]))?;
                if calls == 1 {
                    other.replace_all(&mut |add| add(&IndexId([5; 32]), &segment(&[4], &[(23, &[15])]))).unwrap();
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(calls, 2, "staged again once");
        assert_eq!(pack_of(&cache, 10), Some(20));
        assert_eq!(pack_of(&cache, 11), Some(20));
        assert_eq!(pack_of(&cache, 15), Some(23));
        assert_eq!(cache.blob_count().unwrap(), 3);
    }

    #[test]
    fn a_rebuild_of_a_cache_that_lists_no_pack_writes_its_rows_ahead_and_drops_rows_a_killed_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let cache = IndexCache::open(&path).unwrap();
        // What a rebuild killed while writing ahead leaves: rows of packs no segment lists yet,
        // one of them (blob 10 in pack 20) with an offset the pack does not have.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(
                "INSERT INTO blobs VALUES (x'0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a',
                     x'1414141414141414141414141414141414141414141414141414141414141414', 0, 1, 999, 100, 200);
                 INSERT INTO blobs VALUES (x'3232323232323232323232323232323232323232323232323232323232323232',
                     x'6363636363636363636363636363636363636363636363636363636363636363', 0, 1, 8, 100, 200);",
            )
            .unwrap();
        assert_eq!(pack_of(&cache, 10), None, "a row of a pack the cache does not list is not a location");
        cache
            .replace_all(&mut |add| {
                add(&IndexId([1; 32]), &segment(&[], &[(20, &[10, 11])]))?;
                add(&IndexId([2; 32]), &segment(&[], &[(21, &[12])]))
            })
            .unwrap();
        let rows = blob_rows(&cache);
        let expect = [(10u8, 20u8, 8u32), (11, 20, 108), (12, 21, 8)];
        let expect: Vec<_> = expect.iter().map(|&(b, p, o)| (vec![b; 32], vec![p; 32], o)).collect();
        assert_eq!(rows, expect);
        assert_eq!(cache.lookup(&BlobId([10; 32])).unwrap().map(|l| l.entry.offset), Some(8));
    }

    #[test]
    fn a_rebuild_of_an_empty_cache_that_another_process_wrote_meanwhile_stages_again_the_slow_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let cache = IndexCache::open(&path).unwrap();
        let other = IndexCache::open(&path).unwrap();
        let mut calls = 0;
        cache
            .replace_all(&mut |add| {
                calls += 1;
                add(&IndexId([1; 32]), &segment(&[], &[(20, &[10, 11])]))?;
                if calls == 1 {
                    // A backup adds its segment while this rebuild downloads: written ahead, the
                    // rebuild's rows would stand beside its pack's, which the swap drops.
                    other.add_segment(&IndexId([7; 32]), &segment(&[], &[(30, &[40])])).unwrap();
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(calls, 2, "staged again once");
        assert_eq!(pack_of(&cache, 10), Some(20));
        assert_eq!(pack_of(&cache, 40), None);
        assert_eq!(cache.blob_count().unwrap(), 2, "no row of a pack the new index does not list");
    }

    #[test]
    fn a_condemned_pack_is_readable_not_reusable_until_a_segment_lists_it_plainly() {
        let blob = BlobId([10; 32]);
        let condemned = |sup: &[u8]| {
            let mut s = segment(sup, &[]);
            s.condemned = segment(&[], &[(20, &[10])]).packs;
            s
        };
        for rebuild in [false, true] {
            let cache = IndexCache::in_memory().unwrap();
            let seg = condemned(&[]);
            cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
            assert_eq!(pack_of(&cache, 10), Some(20), "a condemned pack stays readable");
            assert!(!cache.contains(&blob).unwrap(), "a backup never reuses a condemned blob");
            assert!(!cache.has_live_pack(&PackId([20; 32])).unwrap());
            // A backup that wrote pack 20 itself indexes it after the prune condemned it.
            let plain = segment(&[], &[(20, &[10])]);
            if rebuild {
                cache
                    .replace_all(&mut |add| {
                        add(&IndexId([1; 32]), &seg)?;
                        add(&IndexId([2; 32]), &plain)
                    })
                    .unwrap();
            } else {
                cache.add_segment(&IndexId([2; 32]), &plain).unwrap();
            }
            assert!(cache.contains(&blob).unwrap(), "rebuild {rebuild}");
            assert!(cache.has_live_pack(&PackId([20; 32])).unwrap(), "rebuild {rebuild}");
        }
    }

    #[test]
    fn contains_many_answers_as_contains_does_blob_by_blob() {
        let cache = IndexCache::in_memory().unwrap();
        // Blob 10 is live (pack 20), 11 only in a condemned pack (21), 12 nowhere; 13 is in both
        // a condemned pack and a live one.
        let mut seg = segment(&[], &[(20, &[10, 13])]);
        seg.condemned = segment(&[], &[(21, &[11, 13])]).packs;
        cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
        let ids: Vec<BlobId> = [10u8, 11, 12, 13, 10].iter().map(|&b| BlobId([b; 32])).collect();
        let one_by_one: Vec<bool> = ids.iter().map(|id| cache.contains(id).unwrap()).collect();
        assert_eq!(one_by_one, [true, false, false, true, true]);
        assert_eq!(cache.contains_many(&ids).unwrap(), one_by_one);
        assert!(cache.contains_many(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_packs_entries_are_read_from_its_own_row_as_the_segment_listed_them() {
        let cache = IndexCache::in_memory().unwrap();
        let seg = segment(&[], &[(20, &[12, 10, 11]), (21, &[13])]);
        cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
        assert_eq!(cache.pack_entries(&PackId([20; 32])).unwrap(), seg.packs[0].entries);
        assert_eq!(cache.pack_entries(&PackId([21; 32])).unwrap(), seg.packs[1].entries);
        assert!(cache.pack_entries(&PackId([22; 32])).unwrap().is_empty());
        // A rebuild that keeps pack 20 (same entries: its blob rows are reused) keeps its entries.
        let again = segment(&[1], &[(20, &[12, 10, 11])]);
        cache.replace_all(&mut |add| add(&IndexId([2; 32]), &again)).unwrap();
        assert_eq!(cache.pack_entries(&PackId([20; 32])).unwrap(), seg.packs[0].entries);
        assert!(cache.pack_entries(&PackId([21; 32])).unwrap().is_empty());
        // A damaged row is an error naming the cache, not a panic or a short list.
        cache.conn().execute("UPDATE packs SET entries = x'0102'", []).unwrap();
        let err = cache.pack_entries(&PackId([20; 32])).unwrap_err().to_string();
        assert!(err.contains("index cache"), "{err}");
    }

    #[test]
    fn marks_say_what_is_new_what_is_used_and_what_no_live_pack_holds() {
        let cache = IndexCache::in_memory().unwrap();
        // Blob 10 is in live pack 20, 11 only in condemned pack 21, 12 in no pack.
        let mut seg = segment(&[], &[(20, &[10, 13])]);
        seg.condemned = segment(&[], &[(21, &[11])]).packs;
        cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
        let g = cache.marks_reset().unwrap();
        let id = |b: u8| BlobId([b; 32]);
        assert_eq!(cache.mark(&[id(10), id(11), id(12), id(10)]).unwrap(), [true, true, true, false]);
        assert_eq!(cache.mark(&[id(11)]).unwrap(), [false]);
        assert_eq!(cache.marked(&[id(10), id(13), id(12)]).unwrap(), [true, false, true]);
        cache.pack_use_add_indexed().unwrap();
        cache.pack_use_count_marks().unwrap();
        let used = |p: u8| cache.pack_use_get(&PackId([p; 32])).unwrap().map(|u| (u.used_blobs, u.blob_bytes));
        assert_eq!((used(20), used(21)), (Some((1, 200)), Some((1, 100))), "blob 13 of pack 20 is not used");
        let mut not_live = Vec::new();
        cache
            .for_each_marked_not_live(&mut |b| {
                not_live.push(b.0[0]);
                Ok(())
            })
            .unwrap();
        assert_eq!(not_live, [11, 12]);
        assert_eq!(cache.mark_copied(&[id(10), id(10)]).unwrap(), [true, false]);
        // A reset starts over, under a new generation.
        assert_eq!(cache.marks_reset().unwrap(), g + 1);
        assert_eq!(cache.marks_generation(), g + 1);
        assert_eq!(cache.marked(&[id(10)]).unwrap(), [false]);
        assert_eq!(cache.mark_copied(&[id(10)]).unwrap(), [true]);
    }

    #[test]
    fn lookup_many_answers_as_lookup_does_blob_by_blob() {
        let cache = IndexCache::in_memory().unwrap();
        // As above: 10 live, 11 only condemned (still readable there), 12 nowhere, 13 in both.
        let mut seg = segment(&[], &[(20, &[10, 13])]);
        seg.condemned = segment(&[], &[(21, &[11, 13])]).packs;
        cache.add_segment(&IndexId([1; 32]), &seg).unwrap();
        let ids: Vec<BlobId> = [10u8, 11, 12, 13, 10].iter().map(|&b| BlobId([b; 32])).collect();
        let pack_of = |l: Option<BlobLocation>| l.map(|l| l.pack.0[0]);
        let one_by_one: Vec<Option<u8>> = ids.iter().map(|id| pack_of(cache.lookup(id).unwrap())).collect();
        assert_eq!(one_by_one, [Some(20), Some(21), None, Some(20), Some(20)]);
        let many: Vec<Option<u8>> = cache.lookup_many(&ids).unwrap().into_iter().map(pack_of).collect();
        assert_eq!(many, one_by_one);
        assert!(cache.lookup_many(&[]).unwrap().is_empty());
    }
}
