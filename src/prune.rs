//! Prune: delete the data no snapshot references, and repack packs that are mostly unused or
//! small. A plan is built first (shown by `--dry-run`), then that plan is executed.
//!
//! Safety beside running and interrupted clients is a two-phase delete (format-spec/prune.md):
//! phase one writes an index without the condemned packs and a prune record naming them and every
//! client that held a lock at that moment; phase two deletes them only once none of those clients
//! is still running, after marking every snapshot that exists by then and bringing back
//! ("resurrecting") any condemned pack a snapshot turned out to use. When nothing else holds a lock
//! and no snapshot appeared meanwhile, both phases run in one go.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::config::LockHolder;
use crate::format::index::IndexedPack;
use crate::format::pack::PackEntry;
use crate::format::prune::{CondemnedPack, PruneRecord, VERSION as RECORD_VERSION};
use crate::format::tree::Tree;
use crate::id::{BlobId, BlobType, PackId, PruneId, SnapshotId};
use crate::index::{IndexCache, PackSet, PackTotals, PackUse, Pick, IN_RECORD, RESURRECTED, RIPE};
use crate::pack::{self, PackBuilder};
use crate::repo::{LockMode, Repository, PACKS_PER_INDEX_SEGMENT};
use crate::session::Session;

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Unused bytes tolerated after the prune, as a share (0..=100) of the repository (restic's
    /// `--max-unused`): the most wasteful packs are repacked until the rest is under it.
    pub max_unused_percent: f64,
    /// Repack at most this many bytes of packs in one run (the rest waits for the next).
    pub max_repack_bytes: Option<u64>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions { max_unused_percent: 5.0, max_repack_bytes: None }
    }
}

/// A set of packs the plan names: how many, their listed size, and which rows of the index
/// cache's plan table they are (read with [`packs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct PackList {
    pub packs: u64,
    pub bytes: u64,
    set: Option<PackSet>,
}

impl PackList {
    pub fn len(&self) -> usize {
        self.packs as usize
    }

    pub fn is_empty(&self) -> bool {
        self.packs == 0
    }
}

/// One pack the plan names, with why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlannedPack {
    pub id: PackId,
    pub size: u64,
    /// What a repack of it copies: its used blobs and their header entries.
    pub used_bytes: u64,
}

/// What prune will do. Sizes are pack file sizes as listed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PrunePlan {
    pub snapshots: usize,
    pub packs: u64,
    pub bytes: u64,
    /// Indexed packs no snapshot uses.
    #[serde(skip)]
    pub delete: PackList,
    /// Packs whose used blobs are copied into new packs before they are deleted.
    #[serde(skip)]
    pub repack: PackList,
    /// Packs in no index and no prune record (left by interrupted backups or prunes).
    #[serde(skip)]
    pub unindexed: PackList,
    /// Packs an earlier prune condemned but a snapshot uses: indexed again.
    pub resurrect: Vec<PlannedPack>,
    /// Packs the index lists as condemned but no prune record names (a prune stopped between
    /// writing its index and its record): recorded by this run.
    #[serde(skip)]
    pub unrecorded: PackList,
    /// Indexed packs that are missing from the repository but hold nothing used: dropped from the index.
    pub vanished: Vec<PackId>,
    /// Earlier prune records whose clients have all finished: their packs are deleted now.
    pub ripe: Vec<(PruneId, Vec<PlannedPack>)>,
    /// Earlier prune records still waiting for a client that held a lock when they were written.
    pub waiting: Vec<PruneId>,
    /// Index segments the repository holds now.
    pub index_segments: u64,
    /// Rewrite the index although nothing else is to be done: it has grown to
    /// [`INDEX_SEGMENTS_WORTH_CONSOLIDATING`] more segments than its packs need (every backup adds at
    /// least one). Any other work rewrites it too.
    pub consolidate_index: bool,
    pub keep_packs: u64,
    pub keep_bytes: u64,
    pub bytes_to_delete: u64,
    pub bytes_to_repack: u64,
    /// Bytes of used blobs the repack copies.
    pub bytes_repacked: u64,
    #[serde(skip)]
    marked: HashSet<SnapshotId>,
    /// Packs a record that still waits for its clients names: never deleted by this run.
    #[serde(skip)]
    protected: HashSet<PackId>,
    /// The generation of the index cache's marks of used blobs and table of packs this plan made
    /// (see [`IndexCache::marks_reset`]): execute checks they are still there. The packs the
    /// plan keeps, deletes and repacks are in that table, as the plan saw them (not as a shared
    /// cache may hold them later).
    #[serde(skip)]
    marks: u64,
    #[serde(skip)]
    superseded: Vec<crate::id::IndexId>,
    #[serde(skip)]
    resurrected_entries: HashMap<PackId, Vec<PackEntry>>,
}

impl PrunePlan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
            && self.repack.is_empty()
            && self.unindexed.is_empty()
            && self.resurrect.is_empty()
            && self.unrecorded.is_empty()
            && self.vanished.is_empty()
            && self.ripe.is_empty()
            && !self.consolidate_index
    }
}

/// What an executed plan did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PruneOutcome {
    pub packs_written: u64,
    pub bytes_written: u64,
    pub packs_deleted: u64,
    pub bytes_deleted: u64,
    /// Condemned packs a segment written meanwhile lists again: not deleted.
    pub packs_spared: u64,
    /// Packs taken out of the index but kept until clients that were running have finished.
    pub packs_deferred: u64,
    pub bytes_deferred: u64,
    pub record: Option<PruneId>,
}

/// Blobs in packs no index lists (condemned by a prune, or left unindexed by a crash), found by
/// reading those packs' headers. Only built when a snapshot uses a blob the index lacks.
struct Outside {
    candidates: Vec<(PackId, u64)>,
    found: Mutex<Option<HashMap<BlobId, (PackId, PackEntry)>>>,
    headers: Mutex<HashMap<PackId, Vec<PackEntry>>>,
}

impl Outside {
    fn locate(&self, repo: &Repository, id: &BlobId) -> Result<Option<(PackId, PackEntry)>> {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if found.is_none() {
            let mut map = HashMap::new();
            let mut headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
            for (pack, size) in &self.candidates {
                match pack::read_pack_header(repo.backend().as_ref(), &repo.keys().seal, pack, *size) {
                    Ok(entries) => {
                        for e in &entries {
                            map.entry(e.id).or_insert((*pack, *e));
                        }
                        headers.insert(*pack, entries);
                    }
                    // An unreadable unindexed pack holds nothing we can use; it is deleted as planned.
                    Err(e) if e.is_damage() => {}
                    Err(e) => return Err(e),
                }
            }
            *found = Some(map);
        }
        Ok(found.as_ref().and_then(|m| m.get(id).copied()))
    }
}

/// Build the plan, in a prune session (its own lock's holder is not waited for).
pub fn plan(session: &Session, opts: &PruneOptions, progress: &mut dyn FnMut(&str)) -> Result<PrunePlan> {
    session.require(LockMode::Prune, "prune")?;
    let (repo, lock): (&Repository, _) = (session.repo(), session.lock());
    // The order matters (format-spec/prune.md §3): who runs, then the snapshots, then the index,
    // then the packs. Who runs is read before the snapshots, so any client that finishes in between
    // has its snapshot marked. The snapshots are read before the index, so every segment a listed
    // snapshot needs is in the cache; the index before the packs, so every indexed pack is listed.
    let live = repo.live_holders(Some(lock))?;
    let records = repo.prune_records()?;
    progress("reading snapshots");
    let (snaps, bad) = repo.list_snapshots()?;
    if let Some((id, e)) = bad.first() {
        return Err(Error::invalid(format!(
            "snapshot {id} cannot be read ({e}); prune would not know what it uses. Remove it with \
             `backup forget` or repair the repository first ({} unreadable)",
            bad.len()
        )));
    }
    // The segments the new index replaces: every one listed now, including segments an interrupted
    // prune or repair already superseded but did not delete (were they left, they would come back
    // to life once the segment superseding them is replaced in turn). Listed before the sync, so
    // the cache holds all of them; one a concurrent backup writes later stays.
    let mut superseded = repo.index_segment_ids()?;
    superseded.sort();
    repo.sync_index(&mut |_| {})?;

    // The plan's table of packs goes with the marks: a plan made later through this cache
    // replaces both, and execute checks the generation before it reads either.
    let index = repo.index();
    let generation = index.marks_reset()?;
    progress("listing packs");
    let mut page: Vec<(PackId, u64)> = Vec::with_capacity(LISTED_PART);
    repo.backend().list("data", &mut |o| {
        if let Ok(id) = o.name.rsplit('/').next().unwrap_or("").parse::<PackId>() {
            page.push((id, o.size));
            if page.len() == LISTED_PART {
                index.pack_use_add_listed(&page)?;
                page.clear();
            }
        }
        Ok(())
    })?;
    index.pack_use_add_listed(&page)?;
    drop(page);
    // Packs the index lists only as condemned are readable (so the marking finds their trees)
    // but not live; one a snapshot uses is resurrected below.
    index.pack_use_add_indexed()?;
    let mut candidates = Vec::new();
    for_each_page(index, PackSet::NotIndexed, &mut |p| {
        candidates.push((p.id, p.listed.unwrap_or(0)));
        Ok(())
    })?;
    let outside = Outside { candidates, found: Mutex::new(None), headers: Mutex::new(HashMap::new()) };

    progress("marking used data");
    let mut plan = PrunePlan { snapshots: snaps.len(), marks: generation, ..PrunePlan::default() };
    let mut resurrected: HashSet<PackId> = HashSet::new();
    mark(repo, snaps.iter().map(|(_, s)| s.tree).collect(), &outside, &mut resurrected)?;
    plan.marked = snaps.iter().map(|(id, _)| *id).collect();

    // How much of each pack is used. A used blob that only a condemned pack holds brings that
    // pack back.
    progress("counting used data");
    index.pack_use_count_marks()?;
    // Used blobs no live pack holds: normally none, so they are gathered before any pack is read.
    let mut not_live = Vec::new();
    index.for_each_marked_not_live(&mut |id| {
        not_live.push(id);
        Ok(())
    })?;
    let mut revived: HashSet<PackId> = HashSet::new();
    let mut missing = Vec::new();
    for id in &not_live {
        if let Some(pack) = index.pack_use_condemned_holder(id)? {
            revived.insert(pack);
            continue;
        }
        match outside.locate(repo, id)? {
            Some((pack, _)) => {
                resurrected.insert(pack);
            }
            None => missing.push(*id),
        }
    }
    drop(not_live);
    if !missing.is_empty() {
        let some: Vec<String> = missing.iter().take(5).map(|b| b.to_string()).collect();
        return Err(Error::invalid(format!(
            "{} blob(s) used by snapshots are in no pack (e.g. {}); nothing was deleted. Run `backup verify` \
             to see which snapshots are damaged",
            missing.len(),
            some.join(", ")
        )));
    }
    for id in &revived {
        let entries = index.pack_entries(id)?;
        let u = index.pack_use_get(id)?;
        let size = u.and_then(|u| u.listed).unwrap_or(0);
        let used_bytes = u.map(|u| u.used_bytes).unwrap_or(0);
        plan.resurrect.push(PlannedPack { id: *id, size, used_bytes });
        plan.resurrected_entries.insert(*id, entries);
    }
    resurrected.extend(revived.iter().copied());
    {
        let headers = outside.headers.lock().unwrap_or_else(|p| p.into_inner());
        for id in resurrected.iter().filter(|id| !revived.contains(id)) {
            let entries = headers.get(id).cloned().unwrap_or_default();
            let size = index.pack_use_get(id)?.and_then(|u| u.listed).unwrap_or(0);
            let ids: Vec<BlobId> = entries.iter().map(|e| e.id).collect();
            let marked = index.marked(&ids)?;
            let used_bytes =
                entries.iter().zip(marked).filter(|(_, used)| *used).map(|(e, _)| e.sealed_len as u64).sum();
            plan.resurrect.push(PlannedPack { id: *id, size, used_bytes });
            plan.resurrected_entries.insert(*id, entries);
        }
    }
    index.pack_use_flag(&resurrected.iter().copied().collect::<Vec<_>>(), RESURRECTED)?;
    let in_records: Vec<PackId> = records.iter().flat_map(|(_, r)| r.packs.iter().map(|p| p.id)).collect();
    index.pack_use_flag(&in_records, IN_RECORD)?;
    drop(in_records);

    // Earlier records: ripe ones are executed now, except for packs that are live again, that a
    // snapshot uses, or that a record still waiting for its clients also names.
    for (rid, r) in &records {
        if r.holders.iter().any(|h| live.contains(h)) {
            plan.waiting.push(*rid);
            plan.protected.extend(r.packs.iter().map(|p| p.id));
        }
    }
    for (rid, r) in &records {
        if plan.waiting.contains(rid) {
            continue;
        }
        let mut packs = Vec::new();
        for p in &r.packs {
            let u = index.pack_use_get(&p.id)?;
            let live_indexed = u.is_some_and(|u| u.indexed && !u.condemned);
            if live_indexed || resurrected.contains(&p.id) || plan.protected.contains(&p.id) {
                continue;
            }
            packs.push(PlannedPack { id: p.id, size: u.and_then(|u| u.listed).unwrap_or(0), used_bytes: 0 });
        }
        index.pack_use_flag(&packs.iter().map(|p| p.id).collect::<Vec<_>>(), RIPE)?;
        plan.ripe.push((*rid, packs));
    }

    // Classify the indexed packs.
    if let Some(p) = index.pack_use_page(PackSet::MissingUsed, None, 1)?.first() {
        return Err(Error::invalid(format!(
            "pack {} is in the index and holds used data but is missing from the repository; nothing was \
             deleted. Run `backup verify` and `repo repair-index`",
            p.id
        )));
    }
    for_each_page(index, PackSet::Vanished, &mut |p| {
        plan.vanished.push(p.id);
        Ok(())
    })?;
    let live_packs = index.pack_use_totals(PackSet::Live)?;
    (plan.packs, plan.bytes) = (live_packs.packs, live_packs.bytes);
    // A used blob keeps its header entry too: counted, the header of a pack of small blobs
    // (46 bytes an entry beside a blob of a few dozen) is not taken for space a repack frees.
    let used = index.pack_use_totals(PackSet::LiveUsed)?;
    let (used_total, mut unused_total) = (used.kept_bytes, used.unused_bytes);
    // As restic: the unused bytes left may be up to P % of what the repository will hold
    // (P / (100 - P) of the used bytes); the most wasteful packs are repacked until that holds.
    let p = opts.max_unused_percent;
    let allowed = if p >= 100.0 { u64::MAX } else { (used_total as f64 * p / (100.0 - p)) as u64 };
    index.pack_use_each(PackSet::Wasteful, Pick::Chosen, &mut |w| {
        if unused_total <= allowed {
            return Ok(false);
        }
        let size = w.listed.unwrap_or(0);
        unused_total -= size - w.kept_bytes().min(size);
        Ok(true)
    })?;
    // Small packs are merged once there are enough of them to be worth a rewrite (restic's
    // threshold), or when a repack is writing new packs anyway.
    let target = repo.config().pack_size as u64;
    let chosen = index.pack_use_totals(PackSet::Chosen)?.packs;
    let small = index.pack_use_totals(PackSet::SmallerThan(target / 4))?.packs;
    let merge_small = small >= SMALL_PACKS_WORTH_MERGING as u64 || (small > 0 && chosen > 0);
    let mut budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    let mut within_budget = |p: &PackUse| {
        let size = p.listed.unwrap_or(0);
        let fits = size <= budget;
        if fits {
            budget -= size;
        }
        Ok(fits)
    };
    index.pack_use_each(PackSet::Chosen, Pick::Repack, &mut within_budget)?;
    if merge_small {
        index.pack_use_each(PackSet::SmallerThan(target / 4), Pick::Repack, &mut within_budget)?;
    }
    let list = |set, t: PackTotals| PackList { packs: t.packs, bytes: t.bytes, set: Some(set) };
    let totals = |set| index.pack_use_totals(set).map(|t| list(set, t));
    plan.delete = totals(PackSet::Delete)?;
    let repack = index.pack_use_totals(PackSet::Repack)?;
    (plan.repack, plan.bytes_repacked) = (list(PackSet::Repack, repack), repack.kept_bytes);
    plan.unindexed = totals(PackSet::Unindexed)?;
    plan.unrecorded = totals(PackSet::Unrecorded)?;
    let kept = index.pack_use_totals(PackSet::Kept)?;
    (plan.keep_packs, plan.keep_bytes) = (kept.packs, kept.bytes);
    plan.resurrect.sort_by_key(|p| p.id);
    plan.bytes_to_delete = plan.delete.bytes
        + plan.unindexed.bytes
        + plan.ripe.iter().flat_map(|(_, ps)| ps.iter().map(|p| p.size)).sum::<u64>();
    plan.bytes_to_repack = plan.repack.bytes;
    let condemned_listed = index.pack_use_totals(PackSet::CondemnedListed)?.packs;
    plan.index_segments = superseded.len() as u64;
    let needed = (kept.packs + condemned_listed).div_ceil(PACKS_PER_INDEX_SEGMENT as u64).max(1) as usize;
    plan.consolidate_index = superseded.len() >= needed + INDEX_SEGMENTS_WORTH_CONSOLIDATING;
    plan.superseded = superseded;
    Ok(plan)
}

/// Packs listed into the plan's table in one transaction.
const LISTED_PART: usize = 4096;

/// Packs read from the plan's table at a time.
const PAGE: usize = 1024;

/// Reads the page of rows after a key (from the first without one), each row with its key.
type FetchPage<'a, K, T> = dyn FnMut(Option<&K>) -> Result<Vec<(K, T)>> + 'a;

/// Rows of the index cache read a page at a time (the cache is not held in between), each page
/// after the key of the last row of the one before.
struct Pages<'a, K, T> {
    fetch: Box<FetchPage<'a, K, T>>,
    size: usize,
    page: std::vec::IntoIter<(K, T)>,
    after: Option<K>,
    done: bool,
}

impl<'a, K, T> Pages<'a, K, T> {
    fn new(size: usize, fetch: impl FnMut(Option<&K>) -> Result<Vec<(K, T)>> + 'a) -> Self {
        Pages { fetch: Box::new(fetch), size, page: Vec::new().into_iter(), after: None, done: false }
    }
}

impl<K, T> Iterator for Pages<'_, K, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some((key, row)) = self.page.next() {
                self.after = Some(key);
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            match (self.fetch)(self.after.as_ref()) {
                Ok(page) => {
                    self.done = page.len() < self.size;
                    self.page = page.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The packs of `set`, by id.
fn packs_of(index: &IndexCache, set: PackSet) -> Pages<'_, PackId, PackUse> {
    Pages::new(PAGE, move |after| Ok(index.pack_use_page(set, after, PAGE)?.into_iter().map(|p| (p.id, p)).collect()))
}

/// The packs a repack wrote, with their entries, in the order it wrote them; one at a time: a
/// new pack of tiny blobs has a quarter of a million entries (19 MiB decoded), and four at a time
/// were half of a prune's peak at a million blobs.
fn new_packs(index: &IndexCache) -> Pages<'_, i64, IndexedPack> {
    const NEW_PAGE: usize = 1;
    Pages::new(NEW_PAGE, move |after| index.pack_use_new_page(after.copied().unwrap_or(0), NEW_PAGE))
}

/// The packs of one of the plan's lists, by id, as the plan saw them.
pub fn packs(session: &Session, plan: &PrunePlan, list: &PackList) -> Result<Vec<PlannedPack>> {
    let index = session.repo().index();
    let Some(set) = list.set else { return Ok(Vec::new()) };
    if index.marks_generation() != plan.marks {
        return Err(Error::invalid(
            "the prune plan's table of packs is gone from the index cache (another plan was made through it)",
        ));
    }
    packs_of(index, set)
        .map(|p| {
            p.map(|p| PlannedPack {
                id: p.id,
                size: p.listed.unwrap_or(0),
                used_bytes: if p.indexed && !p.condemned { p.kept_bytes() } else { 0 },
            })
        })
        .collect()
}

/// Every pack of `set`, by id, a page at a time (`f` may use the cache).
fn for_each_page(index: &IndexCache, set: PackSet, f: &mut dyn FnMut(&PackUse) -> Result<()>) -> Result<()> {
    packs_of(index, set).try_for_each(|p| f(&p?))
}

/// A prune with nothing else to do still rewrites the index once it holds this many segments more
/// than its packs need: a client with an empty cache reads every segment, and a fleet of backups
/// adds one per backup (examples/index_sync.rs measures what that costs).
pub const INDEX_SEGMENTS_WORTH_CONSOLIDATING: usize = 64;

/// Fewer small packs than this are left alone (unless a repack runs anyway).
const SMALL_PACKS_WORTH_MERGING: usize = 10;

/// Every blob the snapshots reach (trees and data), walking shared subtrees once. Trees are read
/// a level at a time, 32 at once on every core.
///
/// The marks go to the index cache ([`IndexCache::mark`](crate::index::IndexCache::mark)), so
/// memory does not grow with the repository.
fn mark(repo: &Repository, roots: Vec<BlobId>, outside: &Outside, resurrected: &mut HashSet<PackId>) -> Result<()> {
    let index = repo.index();
    let fresh = index.mark(&roots)?;
    let mut frontier: Vec<BlobId> = roots.into_iter().zip(fresh).filter_map(|(r, new)| new.then_some(r)).collect();
    // Data blobs are marked at the end, in key order (see `SortedIds`): marked in a tree's order,
    // each insert missed SQLite's page cache (10 million blobs: 116 s).
    let mut data = index.sorted_ids("marks");
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for part in frontier.chunks(TREES_AT_ONCE) {
            let loaded: Vec<Result<(Tree, Option<PackId>)>> =
                part.par_iter().map(|id| load_tree(repo, id, outside)).collect();
            for r in loaded {
                let (tree, from) = r?;
                if let Some(p) = from {
                    resurrected.insert(p);
                }
                for c in tree.nodes.iter().flat_map(|n| n.content.iter()) {
                    data.push(*c)?;
                }
                let subs: Vec<BlobId> = tree.nodes.iter().filter_map(|n| n.subtree).collect();
                let fresh = index.mark(&subs)?;
                next.extend(subs.into_iter().zip(fresh).filter_map(|(s, new)| new.then_some(s)));
            }
        }
        frontier = next;
    }
    data.mark_all()
}

/// Trees loaded (in parallel) before their blobs are marked: a level of a large repository holds
/// thousands, each of up to megabytes once decoded.
const TREES_AT_ONCE: usize = 32;

/// A tree from the index, or from a pack outside it (then also which pack, to index it again).
fn load_tree(repo: &Repository, id: &BlobId, outside: &Outside) -> Result<(Tree, Option<PackId>)> {
    if let Some(loc) = repo.index().lookup(id)? {
        if loc.entry.blob_type != BlobType::Tree {
            return Err(Error::malformed(format!("tree {id}"), "indexed as a data blob"));
        }
        let bytes = repo.read_blob_at(&loc)?;
        return Ok((Tree::decode(&bytes, &format!("tree {id}"))?, None));
    }
    match outside.locate(repo, id)? {
        Some((pack, entry)) if entry.blob_type == BlobType::Tree => {
            let loc = crate::index::BlobLocation { pack, entry };
            let bytes = repo.read_blob_at(&loc)?;
            Ok((Tree::decode(&bytes, &format!("tree {id}"))?, Some(pack)))
        }
        _ => Err(Error::invalid(format!(
            "tree {id}, used by a snapshot, is in no pack; nothing was deleted. Run `backup verify`"
        ))),
    }
}

/// Execute `plan`: repack, write the new index, record what is condemned, delete what is safe.
pub fn execute(session: &Session, plan: &PrunePlan, progress: &mut dyn FnMut(&str)) -> Result<PruneOutcome> {
    session.require(LockMode::Prune, "prune")?;
    let (repo, lock): (&Repository, _) = (session.repo(), session.lock());
    let mut outcome = PruneOutcome::default();
    if plan.is_empty() {
        return Ok(outcome);
    }
    lock.ensure_held()?;
    let index = repo.index();
    if index.marks_generation() != plan.marks {
        return Err(Error::invalid(
            "the prune plan's marks of used data are gone from the index cache (another plan was made \
             through it); nothing was deleted. Run the prune again",
        ));
    }

    // 1. Repack: the used blobs of the repacked packs go into new packs, authenticated on the way.
    if !plan.repack.is_empty() {
        progress("repacking");
        repack(repo, &mut outcome)?;
    }

    // 2. The new index: every kept pack, the new ones, the resurrected ones, and the condemned
    //    ones (this run's deleted and repacked packs, and earlier ones still waiting for their
    //    clients), which stay readable until they are deleted, so a client that deduplicated
    //    against them before this prune writes a snapshot that resolves. It supersedes every
    //    segment the plan was made from.
    progress("writing the index");
    let entries =
        |id: PackId, condemned: bool| index.pack_entries(&id).map(|entries| (IndexedPack { id, entries }, condemned));
    let mut packs = packs_of(index, PackSet::Kept)
        .map(|p| p.and_then(|p| entries(p.id, false)))
        .chain(new_packs(index).map(|p| p.map(|p| (p, false))))
        .chain(
            plan.resurrected_entries
                .iter()
                .map(|(id, entries)| Ok((IndexedPack { id: *id, entries: entries.clone() }, false))),
        )
        .chain(packs_of(index, PackSet::CondemnedListed).map(|p| p.and_then(|p| entries(p.id, true))));
    lock.ensure_held()?;
    repo.replace_index(&mut packs, &plan.superseded)?;
    drop(packs);

    // 3. Record what is condemned and who might still use it, before anything is deleted.
    let mut condemned: Vec<CondemnedPack> = Vec::new();
    for_each_page(index, PackSet::Condemned, &mut |p| {
        condemned.push(CondemnedPack { id: p.id, size: p.listed.unwrap_or(0) });
        Ok(())
    })?;
    let holders: Vec<LockHolder> = repo.live_holders(Some(lock))?.into_iter().collect();
    let record = if condemned.is_empty() {
        None
    } else {
        let r = PruneRecord {
            version: RECORD_VERSION,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            hostname: hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            pid: std::process::id(),
            packs: condemned.clone(),
            holders: holders.clone(),
        };
        Some(repo.save_prune_record(&r)?)
    };
    outcome.record = record;

    // Any segment written since the plan was made (a backup that indexed its own pack, then
    // stopped without a snapshot) is read now; a pack a live segment lists is never deleted.
    repo.sync_index(&mut |_| {})?;
    let new_snapshot = repo.snapshot_ids()?.into_iter().any(|id| !plan.marked.contains(&id));

    // 4. Phase two for earlier records whose clients have all gone.
    for (rid, packs) in &plan.ripe {
        progress("deleting packs condemned by an earlier prune");
        lock.ensure_held()?;
        delete_packs(repo, plan, packs.iter().map(|p| (p.id, p.size)), &mut outcome)?;
        repo.remove_prune_record(rid)?;
    }

    // 5. Phase two for this run, at once, when no other client was running and no snapshot
    //    appeared since the marking (one that did may use a condemned pack: the next prune decides).
    if let Some(rid) = record {
        if holders.is_empty() && !new_snapshot {
            progress("deleting packs");
            lock.ensure_held()?;
            delete_packs(repo, plan, condemned.iter().map(|p| (p.id, p.size)), &mut outcome)?;
            repo.remove_prune_record(&rid)?;
            outcome.record = None;
        } else {
            outcome.packs_deferred = condemned.len() as u64;
            outcome.bytes_deferred = condemned.iter().map(|p| p.size).sum();
        }
    }
    // The cache was brought up to date before the deletions, which change no index segment.
    Ok(outcome)
}

/// Delete condemned packs, sparing any that a live segment lists again (a backup indexed its own
/// pack after it was condemned) or that a record still waiting for its clients names.
fn delete_packs(
    repo: &Repository,
    plan: &PrunePlan,
    packs: impl Iterator<Item = (PackId, u64)>,
    outcome: &mut PruneOutcome,
) -> Result<()> {
    let mut packs: Vec<(PackId, u64)> = packs.collect();
    let index = repo.index();
    let mut spared = Vec::new();
    for (id, _) in &packs {
        if plan.protected.contains(id) || index.has_live_pack(id)? {
            spared.push(*id);
        }
    }
    packs.retain(|(id, _)| !spared.contains(id));
    outcome.packs_spared += spared.len() as u64;
    let backend = repo.backend();
    let results: Vec<Result<u64>> = packs
        .par_iter()
        .map(|(id, size)| match backend.delete(&pack::pack_path(id)) {
            Ok(()) => Ok(*size),
            Err(e) if e.kind == crate::backend::BackendErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        })
        .collect();
    for r in results {
        let size = r?;
        outcome.packs_deleted += 1;
        outcome.bytes_deleted += size;
    }
    Ok(())
}

/// A pack read whole for repacking: its id, bytes and indexed entries.
type ReadPack = (PackId, Vec<u8>, Vec<PackEntry>);

/// Copy the used blobs of the packs to repack into new packs of the target size; each new pack's
/// entries wait in the index cache for the new index (see [`new_packs`]).
fn repack(repo: &Repository, outcome: &mut PruneOutcome) -> Result<()> {
    let key = &repo.keys().seal;
    let target = repo.config().pack_size as usize;
    let backend = repo.backend();
    let mut builder = PackBuilder::with_capacity(target + target / 8);
    let flush = |builder: &mut PackBuilder, outcome: &mut PruneOutcome| -> Result<()> {
        // The next pack's buffer is made once this one is written, not beside it.
        let (id, bytes, entries) = std::mem::take(builder).finish(key)?;
        outcome.packs_written += 1;
        outcome.bytes_written += bytes.len() as u64;
        backend.write(&pack::pack_path(&id), bytes.into())?;
        *builder = PackBuilder::with_capacity(target + target / 8);
        repo.index().pack_use_add_new(&IndexedPack { id, entries })
    };
    // Packs are read two at a time ahead of the copying, on rayon's pool.
    let mut to_repack = packs_of(repo.index(), PackSet::Repack);
    loop {
        let chunk = [to_repack.next().transpose()?, to_repack.next().transpose()?];
        let chunk: Vec<PackUse> = chunk.into_iter().flatten().collect();
        if chunk.is_empty() {
            break;
        }
        let read: Vec<Result<ReadPack>> = chunk
            .par_iter()
            .map(|p| {
                let entries = repo.index().pack_entries(&p.id)?;
                let bytes = backend.read(&pack::pack_path(&p.id))?;
                Ok((p.id, bytes, entries))
            })
            .collect();
        for r in read {
            let (pack_id, bytes, entries) = r?;
            let ids: Vec<BlobId> = entries.iter().map(|e| e.id).collect();
            let used = repo.index().marked(&ids)?;
            // Marked as copied now, before the copy: a blob two repacked packs hold is taken once.
            let used_ids: Vec<BlobId> = ids.iter().zip(&used).filter(|(_, u)| **u).map(|(id, _)| *id).collect();
            let first = repo.index().mark_copied(&used_ids)?;
            let mut first = first.into_iter();
            let wanted: Vec<&PackEntry> = entries
                .iter()
                .zip(used)
                .filter(|(_, u)| *u)
                .filter_map(|(e, _)| first.next().unwrap_or(false).then_some(e))
                .collect();
            // Authenticate every blob before it moves: a damaged blob must not be laundered into
            // a fresh pack (and then lose its original when this one is deleted).
            let checked: Vec<Result<()>> = wanted
                .par_iter()
                .map(|e| {
                    let sealed = slice(&bytes, e, &pack_id)?;
                    key.open(sealed, &e.blob_ad(), &|| format!("blob {} in pack {pack_id}", e.id)).map(|_| ())
                })
                .collect();
            for (e, ok) in wanted.iter().zip(checked) {
                ok?;
                builder.add_sealed(e, slice(&bytes, e, &pack_id)?)?;
                if builder.len() >= target {
                    flush(&mut builder, outcome)?;
                }
            }
        }
    }
    if !builder.is_empty() {
        flush(&mut builder, outcome)?;
    }
    Ok(())
}

fn slice<'a>(bytes: &'a [u8], e: &PackEntry, pack: &PackId) -> Result<&'a [u8]> {
    let start = e.offset as usize;
    bytes
        .get(start..start + e.sealed_len as usize)
        .ok_or_else(|| Error::malformed(format!("pack {pack}"), format!("blob {} lies beyond the pack's end", e.id)))
}
