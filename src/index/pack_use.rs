//! A prune plan's table of packs: every pack the repository lists or the index names, with what
//! the plan's marks use of it, in a temporary table of the cache's connection beside the marks.
//!
//! Held in maps and lists in memory, a plan of a repository of 390,000 packs (100 million small
//! blobs) took 110 MiB more than one of 4,000; here each set of packs the plan names is a query,
//! read in pages or summed, so the plan's memory does not grow with the number of packs. The table
//! lasts until the next [`marks_reset`](IndexCache::marks_reset), as the marks do.

use rusqlite::{params, OptionalExtension};

use super::{sql, IndexCache};
use crate::error::{Error, Result};
use crate::format::index::IndexedPack;
use crate::format::pack::ENTRY_LEN;
use crate::id::{BlobId, PackId};

/// One pack as the plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackUse {
    pub id: PackId,
    /// Its size in the repository's listing; `None` when the repository does not hold it.
    pub listed: Option<u64>,
    pub indexed: bool,
    /// The index lists it only as condemned.
    pub condemned: bool,
    /// Bytes of the blobs the index lists in it.
    pub blob_bytes: u64,
    /// Bytes and count of its indexed blobs that are marked as used.
    pub used_bytes: u64,
    pub used_blobs: u64,
    pub flags: u8,
}

impl PackUse {
    /// What a repack of it keeps: its used blobs and their header entries.
    pub fn kept_bytes(&self) -> u64 {
        self.used_bytes + self.used_blobs * ENTRY_LEN as u64
    }
}

/// A prune record names it.
pub const IN_RECORD: u8 = 1;
/// A snapshot uses it although it is condemned or unindexed: it is indexed again.
pub const RESURRECTED: u8 = 2;
/// A ripe prune record's pack, deleted by this run.
pub const RIPE: u8 = 4;

/// Where [`IndexCache::pack_use_each`] puts the packs its callback picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The wasteful packs repacked for the unused-space limit, before the byte budget.
    Chosen = 0,
    Repack = 1,
}

/// A set of packs of the table, each a query (`live`: indexed, not condemned, listed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackSet {
    /// Listed and in no index: where a used blob the index lacks may be found.
    NotIndexed,
    /// Indexed, not condemned, missing from the listing, and holding used blobs: damage.
    MissingUsed,
    /// Indexed and missing from the listing, holding nothing used (or condemned and not resurrected).
    Vanished,
    Live,
    /// Live and holding nothing used.
    Delete,
    /// Live, used, and holding unused blobs; by unused share (most first), then id.
    Wasteful,
    /// The packs picked into [`Pick::Chosen`], in [`Wasteful`](Self::Wasteful)'s order.
    Chosen,
    /// Live, used, not chosen and smaller than the bound; by size, then id.
    SmallerThan(u64),
    /// Live and used.
    LiveUsed,
    /// The packs picked into [`Pick::Repack`].
    Repack,
    /// Live, used and not repacked.
    Kept,
    /// Condemned in the index, listed, not resurrected and not deleted by a ripe record.
    StillCondemned,
    /// [`StillCondemned`](Self::StillCondemned) packs no prune record names.
    Unrecorded,
    /// Listed, in no index and no record, not resurrected.
    Unindexed,
    /// What the new index lists as condemned: still condemned, deleted and repacked packs.
    CondemnedListed,
    /// What this run condemns: deleted, repacked, unindexed and unrecorded packs.
    Condemned,
}

const LIVE: &str = "(u.indexed AND NOT u.condemned AND u.size IS NOT NULL)";
const STILL_CONDEMNED: &str = "(u.indexed AND u.condemned AND u.size IS NOT NULL AND NOT (u.flags & 6))";
/// [`PackUse::kept_bytes`] in SQL.
fn kept_bytes() -> String {
    format!("(u.used_bytes + u.used_blobs * {ENTRY_LEN})")
}

/// The share of a pack's size a repack frees, as `unused_share` in Rust's prune computes it.
fn unused_share() -> String {
    format!("(CASE WHEN u.size = 0 THEN 0.0 ELSE CAST(u.size - MIN({}, u.size) AS REAL) / u.size END)", kept_bytes())
}

impl PackSet {
    /// Its condition (in SQL over `temp.pack_use u`) and order.
    fn query(self) -> (String, &'static str) {
        let picked =
            |p: Pick| format!("EXISTS (SELECT 1 FROM temp.pack_picks k WHERE k.list = {} AND k.id = u.id)", p as u8);
        let by_id = "u.id";
        match self {
            PackSet::NotIndexed => ("u.size IS NOT NULL AND NOT u.indexed".into(), by_id),
            PackSet::MissingUsed => {
                ("u.indexed AND NOT u.condemned AND u.size IS NULL AND u.used_blobs > 0".into(), by_id)
            }
            PackSet::Vanished => (
                "u.indexed AND u.size IS NULL AND ((u.condemned AND NOT (u.flags & 2)) OR (NOT u.condemned AND \
                 u.used_blobs = 0))"
                    .into(),
                by_id,
            ),
            PackSet::Live => (LIVE.into(), by_id),
            PackSet::Delete => (format!("{LIVE} AND u.used_blobs = 0"), by_id),
            PackSet::Wasteful => {
                (format!("{LIVE} AND u.used_blobs > 0 AND u.used_bytes < u.blob_bytes"), "unused_share DESC, u.id")
            }
            PackSet::Chosen => (picked(Pick::Chosen), "unused_share DESC, u.id"),
            PackSet::SmallerThan(bound) => (
                format!(
                    "{LIVE} AND u.used_blobs > 0 AND u.size < {} AND NOT {}",
                    bound.min(i64::MAX as u64),
                    picked(Pick::Chosen)
                ),
                "u.size, u.id",
            ),
            PackSet::LiveUsed => (format!("{LIVE} AND u.used_blobs > 0"), by_id),
            PackSet::Repack => (picked(Pick::Repack), by_id),
            PackSet::Kept => (format!("{LIVE} AND u.used_blobs > 0 AND NOT {}", picked(Pick::Repack)), by_id),
            PackSet::StillCondemned => (STILL_CONDEMNED.into(), by_id),
            PackSet::Unrecorded => (format!("{STILL_CONDEMNED} AND NOT (u.flags & 1)"), by_id),
            PackSet::Unindexed => ("u.size IS NOT NULL AND NOT u.indexed AND NOT (u.flags & 3)".into(), by_id),
            PackSet::CondemnedListed => {
                (format!("{STILL_CONDEMNED} OR ({LIVE} AND u.used_blobs = 0) OR {}", picked(Pick::Repack)), by_id)
            }
            PackSet::Condemned => (
                format!(
                    "({LIVE} AND u.used_blobs = 0) OR {} OR (u.size IS NOT NULL AND NOT u.indexed AND NOT (u.flags \
                     & 3)) OR ({STILL_CONDEMNED} AND NOT (u.flags & 1))",
                    picked(Pick::Repack)
                ),
                by_id,
            ),
        }
    }
}

const COLUMNS: &str = "u.id, u.size, u.indexed, u.condemned, u.blob_bytes, u.used_bytes, u.used_blobs, u.flags";

/// Sums over a [`PackSet`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackTotals {
    pub packs: u64,
    /// Listed sizes.
    pub bytes: u64,
    /// [`PackUse::kept_bytes`].
    pub kept_bytes: u64,
    /// What a repack would free: listed sizes less kept bytes.
    pub unused_bytes: u64,
}

impl IndexCache {
    /// Empty the table (with the marks, in [`marks_reset`](Self::marks_reset)).
    pub(super) fn pack_use_reset(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS pack_use (id BLOB PRIMARY KEY, size INTEGER,
                 indexed INTEGER NOT NULL DEFAULT 0, condemned INTEGER NOT NULL DEFAULT 0,
                 blob_bytes INTEGER NOT NULL DEFAULT 0, used_bytes INTEGER NOT NULL DEFAULT 0,
                 used_blobs INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS pack_picks (list INTEGER NOT NULL, id BLOB NOT NULL,
                 PRIMARY KEY (list, id)) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS new_packs (seq INTEGER PRIMARY KEY, id BLOB NOT NULL,
                 entries BLOB NOT NULL);
             DELETE FROM temp.pack_use; DELETE FROM temp.pack_picks; DELETE FROM temp.new_packs;",
        )
    }

    /// Add packs of the repository's listing with their sizes (in one transaction).
    pub fn pack_use_add_listed(&self, packs: &[(PackId, u64)]) -> Result<()> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(|e| sql(&self.path, e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO temp.pack_use (id, size) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET size = \
                     excluded.size",
                )
                .map_err(|e| sql(&self.path, e))?;
            for (id, size) in packs {
                st.execute(params![&id.0[..], *size as i64]).map_err(|e| sql(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| sql(&self.path, e))
    }

    /// Add every pack the index lists, as it lists it now.
    pub fn pack_use_add_indexed(&self) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO temp.pack_use (id, indexed, condemned, blob_bytes)
                     SELECT id, 1, condemned, blob_bytes FROM main.packs WHERE true
                     ON CONFLICT (id) DO UPDATE SET indexed = 1, condemned = excluded.condemned,
                         blob_bytes = excluded.blob_bytes",
                [],
            )
            .map(drop)
            .map_err(|e| sql(&self.path, e))
    }

    /// Count what the marks use of each indexed pack: one pass over the marks in key order, the
    /// sums grouped by SQLite's sorter (which spills to disk), not in a map per pack.
    pub fn pack_use_count_marks(&self) -> Result<()> {
        let conn = self.conn();
        self.small_sorter(&conn, &mut || {
            conn.execute(
                "UPDATE temp.pack_use AS u SET used_bytes = g.bytes, used_blobs = g.blobs
                     FROM (SELECT b.pack AS pack, SUM(b.sealed_len) AS bytes, COUNT(*) AS blobs
                           FROM temp.marks m JOIN main.blobs b ON b.id = m.id GROUP BY b.pack) AS g
                     WHERE u.id = g.pack",
                [],
            )
            .map(drop)
            .map_err(|e| sql(&self.path, e))
        })
    }

    /// Run `f` with the main page cache at 4 MiB: SQLite's sorter keeps as much in memory as the
    /// main page cache may hold (16 MiB), and the passes that sort (the grouped count, the packs
    /// in an order other than the key's) read their tables in key order, so a small cache loses
    /// nothing while they run.
    fn small_sorter(&self, conn: &rusqlite::Connection, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        super::set_cache_kib(conn, &self.path, super::MERGE_CACHE_KIB)?;
        let done = f();
        let restored = super::set_cache_kib(conn, &self.path, super::CACHE_KIB);
        done.and(restored)
    }

    /// Keep a pack a repack wrote, with its entries, until the new index lists it: a repack of
    /// 100M small blobs writes packs whose entries take gigabytes.
    pub fn pack_use_add_new(&self, pack: &IndexedPack) -> Result<()> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("INSERT INTO temp.new_packs (id, entries) VALUES (?1, ?2)")
            .map_err(|e| sql(&self.path, e))?;
        st.execute(params![&pack.id.0[..], super::encode_entries(&pack.entries)]).map_err(|e| sql(&self.path, e))?;
        Ok(())
    }

    /// Up to `limit` of the packs [`pack_use_add_new`](Self::pack_use_add_new) kept, in the order
    /// they were added, after the one numbered `after` (0: from the first); each with its number.
    pub fn pack_use_new_page(&self, after: i64, limit: usize) -> Result<Vec<(i64, IndexedPack)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached("SELECT seq, id, entries FROM temp.new_packs WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|e| sql(&self.path, e))?;
        let mut rows = st.query(params![after, limit as i64]).map_err(|e| sql(&self.path, e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            let seq: i64 = r.get(0).map_err(|e| sql(&self.path, e))?;
            let id: Vec<u8> = r.get(1).map_err(|e| sql(&self.path, e))?;
            let entries: Vec<u8> = r.get(2).map_err(|e| sql(&self.path, e))?;
            let id = PackId::from_slice(&id).ok_or_else(|| self.bad_row())?;
            out.push((seq, IndexedPack { id, entries: self.decode_entries(&entries)? }));
        }
        Ok(out)
    }

    /// Set `flag` on those of `packs` the table holds.
    pub fn pack_use_flag(&self, packs: &[PackId], flag: u8) -> Result<()> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(|e| sql(&self.path, e))?;
        {
            let mut st = tx
                .prepare_cached("UPDATE temp.pack_use SET flags = flags | ?2 WHERE id = ?1")
                .map_err(|e| sql(&self.path, e))?;
            for id in packs {
                st.execute(params![&id.0[..], flag]).map_err(|e| sql(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| sql(&self.path, e))
    }

    pub fn pack_use_get(&self, id: &PackId) -> Result<Option<PackUse>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM temp.pack_use u WHERE u.id = ?1"))
            .map_err(|e| sql(&self.path, e))?;
        let row = st
            .query_row(params![&id.0[..]], |r| Ok(self.pack_use_row(r)))
            .optional()
            .map_err(|e| sql(&self.path, e))?;
        row.transpose()
    }

    /// The condemned indexed pack (the first by id) that holds `blob`, if any.
    pub fn pack_use_condemned_holder(&self, blob: &BlobId) -> Result<Option<PackId>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT b.pack FROM main.blobs b JOIN temp.pack_use u ON u.id = b.pack
                     WHERE b.id = ?1 AND u.indexed AND u.condemned ORDER BY b.pack LIMIT 1",
            )
            .map_err(|e| sql(&self.path, e))?;
        let pack: Option<Vec<u8>> =
            st.query_row(params![&blob.0[..]], |r| r.get(0)).optional().map_err(|e| sql(&self.path, e))?;
        match pack {
            None => Ok(None),
            Some(p) => PackId::from_slice(&p).map(Some).ok_or_else(|| self.bad_row()),
        }
    }

    pub fn pack_use_totals(&self, set: PackSet) -> Result<PackTotals> {
        let (cond, _) = set.query();
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT COUNT(*), COALESCE(SUM(u.size), 0), COALESCE(SUM({kept}), 0),
                     COALESCE(SUM(u.size - MIN({kept}, u.size)), 0) FROM temp.pack_use u WHERE {cond}",
                kept = kept_bytes()
            ))
            .map_err(|e| sql(&self.path, e))?;
        st.query_row([], |r| {
            Ok(PackTotals {
                packs: r.get::<_, i64>(0)? as u64,
                bytes: r.get::<_, i64>(1)? as u64,
                kept_bytes: r.get::<_, i64>(2)? as u64,
                unused_bytes: r.get::<_, i64>(3)? as u64,
            })
        })
        .map_err(|e| sql(&self.path, e))
    }

    /// Up to `limit` packs of `set` after `after`, by id (whatever the set's own order): a page,
    /// read without holding the cache while the caller works on it.
    pub fn pack_use_page(&self, set: PackSet, after: Option<&PackId>, limit: usize) -> Result<Vec<PackUse>> {
        let (cond, _) = set.query();
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM temp.pack_use u WHERE ({cond}) AND u.id > ?1 ORDER BY u.id LIMIT ?2"
            ))
            .map_err(|e| sql(&self.path, e))?;
        let start: &[u8] = after.map(|a| &a.0[..]).unwrap_or(&[]);
        let mut rows = st.query(params![start, limit as i64]).map_err(|e| sql(&self.path, e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| sql(&self.path, e))? {
            out.push(self.pack_use_row(r)?);
        }
        Ok(out)
    }

    /// Every pack of `set` in its order, to `f`; the packs for which `f` returns true are added
    /// to `pick`. `f` runs while the cache is held: it must not use the cache.
    pub fn pack_use_each(&self, set: PackSet, pick: Pick, f: &mut dyn FnMut(&PackUse) -> Result<bool>) -> Result<()> {
        let (cond, order) = set.query();
        let conn = self.conn();
        let p = &self.path;
        self.small_sorter(&conn, &mut || {
            let tx = conn.unchecked_transaction().map_err(|e| sql(p, e))?;
            {
                // The rows are sorted by SQLite before the first is returned (every order but the
                // key's needs its sorter), and picks go to another table: the scan is not disturbed.
                let mut st = tx
                    .prepare(&format!(
                        "SELECT {COLUMNS}, {} AS unused_share FROM temp.pack_use u WHERE {cond} ORDER BY {order}",
                        unused_share()
                    ))
                    .map_err(|e| sql(p, e))?;
                let mut add = tx
                    .prepare("INSERT OR IGNORE INTO temp.pack_picks (list, id) VALUES (?1, ?2)")
                    .map_err(|e| sql(p, e))?;
                let mut rows = st.query([]).map_err(|e| sql(p, e))?;
                while let Some(r) = rows.next().map_err(|e| sql(p, e))? {
                    let pack = self.pack_use_row(r)?;
                    if f(&pack)? {
                        add.execute(params![pick as u8, &pack.id.0[..]]).map_err(|e| sql(p, e))?;
                    }
                }
            }
            tx.commit().map_err(|e| sql(p, e))
        })
    }

    fn pack_use_row(&self, r: &rusqlite::Row) -> Result<PackUse> {
        let get = |r: &rusqlite::Row| -> rusqlite::Result<_> {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, u8>(7)?,
            ))
        };
        let (id, size, indexed, condemned, blob_bytes, used_bytes, used_blobs, flags) =
            get(r).map_err(|e| sql(&self.path, e))?;
        Ok(PackUse {
            id: PackId::from_slice(&id).ok_or_else(|| self.bad_row())?,
            listed: size.map(|s| s as u64),
            indexed,
            condemned,
            blob_bytes: blob_bytes as u64,
            used_bytes: used_bytes as u64,
            used_blobs: used_blobs as u64,
            flags,
        })
    }

    fn bad_row(&self) -> Error {
        Error::malformed(format!("index cache {}", self.path.display()), "invalid row; delete the cache")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::pack;
    use super::*;
    use crate::format::index::IndexSegment;
    use crate::id::IndexId;

    fn ids(cache: &IndexCache, set: PackSet) -> Vec<u8> {
        let mut out = Vec::new();
        let mut after = None;
        // Pages of one, so paging is what is tested.
        while let Some(p) = cache.pack_use_page(set, after.as_ref(), 1).unwrap().pop() {
            out.push(p.id.0[0]);
            after = Some(p.id);
        }
        out
    }

    #[test]
    fn the_plan_table_classifies_listed_indexed_and_marked_packs() {
        let cache = IndexCache::in_memory().unwrap();
        let segment = IndexSegment {
            superseded: Vec::new(),
            // 20 fully used, 21 half used, 22 unused, 25 unused and not listed.
            packs: vec![pack(20, &[1, 2]), pack(21, &[3, 4]), pack(22, &[5]), pack(25, &[7])],
            // 23 condemned by a prune (holds blob 6); 26 condemned and gone.
            condemned: vec![pack(23, &[6]), pack(26, &[8])],
        };
        cache.add_segment(&IndexId([1; 32]), &segment).unwrap();
        cache.marks_reset().unwrap();
        let listed = [(20u8, 1000u64), (21, 1000), (22, 500), (23, 400), (24, 300)];
        let listed: Vec<(PackId, u64)> = listed.iter().map(|&(p, s)| (PackId([p; 32]), s)).collect();
        cache.pack_use_add_listed(&listed[..2]).unwrap();
        cache.pack_use_add_listed(&listed[2..]).unwrap();
        cache.pack_use_add_indexed().unwrap();
        cache.mark(&[1, 2, 3].map(|b| BlobId([b; 32]))).unwrap();
        cache.pack_use_count_marks().unwrap();

        let p21 = cache.pack_use_get(&PackId([21; 32])).unwrap().unwrap();
        assert_eq!((p21.listed, p21.indexed, p21.condemned), (Some(1000), true, false));
        assert_eq!((p21.blob_bytes, p21.used_bytes, p21.used_blobs), (200, 100, 1));
        assert_eq!(p21.kept_bytes(), 100 + ENTRY_LEN as u64);
        assert_eq!(cache.pack_use_get(&PackId([99; 32])).unwrap(), None);
        assert_eq!(ids(&cache, PackSet::NotIndexed), [24]);
        assert_eq!(ids(&cache, PackSet::Live), [20, 21, 22]);
        let live = cache.pack_use_totals(PackSet::Live).unwrap();
        assert_eq!((live.packs, live.bytes), (3, 2500));
        assert_eq!(ids(&cache, PackSet::Delete), [22]);
        assert_eq!(ids(&cache, PackSet::LiveUsed), [20, 21]);
        assert_eq!(ids(&cache, PackSet::Vanished), [25, 26]);
        assert!(ids(&cache, PackSet::MissingUsed).is_empty());
        assert_eq!(ids(&cache, PackSet::StillCondemned), [23]);
        assert_eq!(ids(&cache, PackSet::Unrecorded), [23]);
        assert_eq!(ids(&cache, PackSet::Unindexed), [24]);
        assert_eq!(cache.pack_use_condemned_holder(&BlobId([6; 32])).unwrap(), Some(PackId([23; 32])));
        assert_eq!(cache.pack_use_condemned_holder(&BlobId([3; 32])).unwrap(), None);

        // A record names 23, a snapshot brings 24 back.
        cache.pack_use_flag(&[PackId([23; 32])], IN_RECORD).unwrap();
        cache.pack_use_flag(&[PackId([24; 32])], RESURRECTED).unwrap();
        assert!(ids(&cache, PackSet::Unrecorded).is_empty());
        assert!(ids(&cache, PackSet::Unindexed).is_empty());

        // The wasteful pack is chosen; the fully used one, small, is then merged.
        let mut seen = Vec::new();
        cache
            .pack_use_each(PackSet::Wasteful, Pick::Chosen, &mut |p| {
                seen.push(p.id.0[0]);
                Ok(true)
            })
            .unwrap();
        assert_eq!(seen, [21]);
        assert_eq!(ids(&cache, PackSet::SmallerThan(2000)), [20]);
        assert!(ids(&cache, PackSet::SmallerThan(1000)).is_empty(), "the bound is exclusive");
        cache.pack_use_each(PackSet::SmallerThan(2000), Pick::Repack, &mut |_| Ok(true)).unwrap();
        assert_eq!(ids(&cache, PackSet::Repack), [20]);
        assert_eq!(ids(&cache, PackSet::Kept), [21]);
        assert_eq!(ids(&cache, PackSet::CondemnedListed), [20, 22, 23]);
        assert_eq!(ids(&cache, PackSet::Condemned), [20, 22]);
        let repack = cache.pack_use_totals(PackSet::Repack).unwrap();
        assert_eq!((repack.packs, repack.bytes, repack.kept_bytes), (1, 1000, 200 + 2 * ENTRY_LEN as u64));
        assert_eq!(repack.unused_bytes, 1000 - 200 - 2 * ENTRY_LEN as u64);

        // A ripe record deletes 23: it is no longer carried as condemned.
        cache.pack_use_flag(&[PackId([23; 32])], RIPE).unwrap();
        assert_eq!(ids(&cache, PackSet::CondemnedListed), [20, 22]);

        // The next plan starts from an empty table.
        cache.marks_reset().unwrap();
        assert!(ids(&cache, PackSet::Live).is_empty() && ids(&cache, PackSet::Repack).is_empty());
    }

    #[test]
    fn packs_a_repack_wrote_come_back_in_order_with_their_entries() {
        let cache = IndexCache::in_memory().unwrap();
        cache.marks_reset().unwrap();
        let written = [pack(40, &[3, 1, 2]), pack(39, &[4])];
        for p in &written {
            cache.pack_use_add_new(p).unwrap();
        }
        let first = cache.pack_use_new_page(0, 1).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1, written[0], "added first, read first, entries as written");
        let rest = cache.pack_use_new_page(first[0].0, 10).unwrap();
        assert_eq!(rest.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(), [written[1].clone()]);
        assert!(cache.pack_use_new_page(rest[0].0, 10).unwrap().is_empty());
        cache.marks_reset().unwrap();
        assert!(cache.pack_use_new_page(0, 10).unwrap().is_empty(), "a new plan starts without them");
    }

    #[test]
    fn wasteful_packs_come_most_wasteful_first() {
        let cache = IndexCache::in_memory().unwrap();
        let segment = IndexSegment {
            superseded: Vec::new(),
            packs: vec![pack(30, &[1, 2, 3, 4]), pack(31, &[5, 6]), pack(32, &[7, 8]), pack(33, &[9, 10])],
            condemned: Vec::new(),
        };
        cache.add_segment(&IndexId([1; 32]), &segment).unwrap();
        cache.marks_reset().unwrap();
        let listed: Vec<(PackId, u64)> = [30u8, 31, 32, 33].iter().map(|&p| (PackId([p; 32]), 1000)).collect();
        cache.pack_use_add_listed(&listed).unwrap();
        cache.pack_use_add_indexed().unwrap();
        // 30 keeps 3 of 4 blobs, 31 and 32 one of two (a tie, by id), 33 both.
        cache.mark(&[1, 2, 3, 6, 7, 9, 10].map(|b| BlobId([b; 32]))).unwrap();
        cache.pack_use_count_marks().unwrap();
        let mut order = Vec::new();
        cache
            .pack_use_each(PackSet::Wasteful, Pick::Chosen, &mut |p| {
                order.push(p.id.0[0]);
                Ok(order.len() < 3)
            })
            .unwrap();
        assert_eq!(order, [31, 32, 30]);
        assert_eq!(ids(&cache, PackSet::Chosen), [31, 32], "the picked ones, by id");
    }
}
