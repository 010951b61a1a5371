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
    pub delete: Vec<PlannedPack>,
    /// Packs whose used blobs are copied into new packs before they are deleted.
    pub repack: Vec<PlannedPack>,
    /// Packs in no index and no prune record (left by interrupted backups or prunes).
    pub unindexed: Vec<PlannedPack>,
    /// Packs an earlier prune condemned but a snapshot uses: indexed again.
    pub resurrect: Vec<PlannedPack>,
    /// Packs the index lists as condemned but no prune record names (a prune stopped between
    /// writing its index and its record): recorded by this run.
    pub unrecorded: Vec<PlannedPack>,
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
    /// Indexed packs that stay, as the plan saw them (not as a shared cache may hold them later).
    #[serde(skip)]
    kept: Vec<PackId>,
    /// Packs the new index lists as condemned: this run's deleted and repacked ones, and earlier
    /// condemned ones still waiting for their clients. They stay readable until they are deleted.
    #[serde(skip)]
    condemned_listed: Vec<PackId>,
    /// Packs a record that still waits for its clients names: never deleted by this run.
    #[serde(skip)]
    protected: HashSet<PackId>,
    /// The generation of the index cache's marks of used blobs this plan made (see
    /// [`IndexCache::mark`](crate::index::IndexCache::mark)): execute checks they are still there.
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
    let in_records: HashSet<PackId> = records.iter().flat_map(|(_, r)| r.packs.iter().map(|p| p.id)).collect();
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

    progress("listing packs");
    let mut listed: HashMap<PackId, u64> = HashMap::new();
    repo.backend().list("data", &mut |o| {
        if let Ok(id) = o.name.rsplit('/').next().unwrap_or("").parse::<PackId>() {
            listed.insert(id, o.size);
        }
        Ok(())
    })?;
    let mut indexed: HashMap<PackId, PackStats> = HashMap::new();
    // Packs the index lists only as condemned: readable (so the marking finds their trees) but not
    // live; one a snapshot uses is resurrected below.
    let mut condemned_indexed: HashSet<PackId> = HashSet::new();
    repo.index().for_each_pack(&mut |id, _, condemned| {
        indexed.insert(id, PackStats::default());
        if condemned {
            condemned_indexed.insert(id);
        }
        Ok(())
    })?;
    let outside = Outside {
        candidates: listed.iter().filter(|(id, _)| !indexed.contains_key(id)).map(|(id, s)| (*id, *s)).collect(),
        found: Mutex::new(None),
        headers: Mutex::new(HashMap::new()),
    };

    progress("marking used data");
    let mut plan = PrunePlan { snapshots: snaps.len(), ..PrunePlan::default() };
    let mut resurrected: HashSet<PackId> = HashSet::new();
    plan.marks = mark(repo, snaps.iter().map(|(_, s)| s.tree).collect(), &outside, &mut resurrected)?;
    plan.marked = snaps.iter().map(|(id, _)| *id).collect();

    // How much of each pack is used. A used blob that only a condemned pack holds brings that
    // pack back.
    let mut in_condemned: HashMap<BlobId, PackId> = HashMap::new();
    repo.index().for_each_blob_marked(&mut |pack, e, used| {
        let st = indexed.entry(pack).or_default();
        st.blob_bytes += e.sealed_len as u64;
        if used {
            st.used_bytes += e.sealed_len as u64;
            st.used_blobs += 1;
            if condemned_indexed.contains(&pack) {
                in_condemned.entry(e.id).or_insert(pack);
            }
        }
        Ok(())
    })?;
    // Used blobs no live pack holds: normally none, so they are gathered before any pack is read.
    let mut not_live = Vec::new();
    repo.index().for_each_marked_not_live(&mut |id| {
        not_live.push(id);
        Ok(())
    })?;
    let mut revived: HashSet<PackId> = HashSet::new();
    let mut missing = Vec::new();
    for id in &not_live {
        if let Some(pack) = in_condemned.get(id) {
            revived.insert(*pack);
            continue;
        }
        match outside.locate(repo, id)? {
            Some((pack, _)) => {
                resurrected.insert(pack);
            }
            None => missing.push(*id),
        }
    }
    drop((in_condemned, not_live));
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
        let entries = repo.index().pack_entries(id)?;
        let size = listed.get(id).copied().unwrap_or(0);
        let used_bytes = indexed.get(id).map(|st| st.used_bytes).unwrap_or(0);
        plan.resurrect.push(PlannedPack { id: *id, size, used_bytes });
        plan.resurrected_entries.insert(*id, entries);
    }
    resurrected.extend(revived.iter().copied());
    {
        let headers = outside.headers.lock().unwrap_or_else(|p| p.into_inner());
        for id in resurrected.iter().filter(|id| !revived.contains(id)) {
            let entries = headers.get(id).cloned().unwrap_or_default();
            let size = listed.get(id).copied().unwrap_or(0);
            let ids: Vec<BlobId> = entries.iter().map(|e| e.id).collect();
            let marked = repo.index().marked(&ids)?;
            let used_bytes =
                entries.iter().zip(marked).filter(|(_, used)| *used).map(|(e, _)| e.sealed_len as u64).sum();
            plan.resurrect.push(PlannedPack { id: *id, size, used_bytes });
            plan.resurrected_entries.insert(*id, entries);
        }
    }

    // Earlier records: ripe ones are executed now, except for packs that are live again, that a
    // snapshot uses, or that a record still waiting for its clients also names.
    let live_indexed = |id: &PackId| indexed.contains_key(id) && !condemned_indexed.contains(id);
    let mut ripe_packs: HashSet<PackId> = HashSet::new();
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
        let packs: Vec<PlannedPack> = r
            .packs
            .iter()
            .filter(|p| !live_indexed(&p.id) && !resurrected.contains(&p.id) && !plan.protected.contains(&p.id))
            .map(|p| PlannedPack { id: p.id, size: listed.get(&p.id).copied().unwrap_or(0), used_bytes: 0 })
            .collect();
        ripe_packs.extend(packs.iter().map(|p| p.id));
        plan.ripe.push((*rid, packs));
    }

    // Classify the indexed packs.
    let target = repo.config().pack_size as u64;
    let mut wasteful = Vec::new();
    let mut small = Vec::new();
    let (mut used_total, mut unused_total) = (0u64, 0u64);
    for (id, st) in &indexed {
        if condemned_indexed.contains(id) {
            if resurrected.contains(id) {
                continue;
            }
            match listed.get(id) {
                // Deleted once its clients had finished; its entries go with this index.
                None => plan.vanished.push(*id),
                // Deleted by this run (a ripe record): not carried into the new index.
                Some(_) if ripe_packs.contains(id) => {}
                Some(&size) => {
                    plan.condemned_listed.push(*id);
                    if !in_records.contains(id) {
                        plan.unrecorded.push(PlannedPack { id: *id, size, used_bytes: 0 });
                    }
                }
            }
            continue;
        }
        let Some(&size) = listed.get(id) else {
            if st.used_blobs > 0 {
                return Err(Error::invalid(format!(
                    "pack {id} is in the index and holds used data but is missing from the repository; \
                     nothing was deleted. Run `backup verify` and `repo repair-index`"
                )));
            }
            plan.vanished.push(*id);
            continue;
        };
        plan.packs += 1;
        plan.bytes += size;
        // A used blob keeps its header entry too: counted, the header of a pack of small blobs
        // (46 bytes an entry beside a blob of a few dozen) is not taken for space a repack frees.
        let kept = st.used_bytes + st.used_blobs * crate::format::pack::ENTRY_LEN as u64;
        let p = PlannedPack { id: *id, size, used_bytes: kept };
        if st.used_blobs == 0 {
            plan.delete.push(p);
            continue;
        }
        used_total += kept;
        unused_total += size - kept.min(size);
        if st.used_bytes < st.blob_bytes {
            wasteful.push(p);
        } else {
            small_or_keep(p, target, &mut small, &mut plan);
        }
    }
    // As restic: the unused bytes left may be up to P % of what the repository will hold
    // (P / (100 - P) of the used bytes); the most wasteful packs are repacked until that holds.
    let p = opts.max_unused_percent;
    let allowed = if p >= 100.0 { u64::MAX } else { (used_total as f64 * p / (100.0 - p)) as u64 };
    wasteful.sort_by(|a, b| unused_share(b).total_cmp(&unused_share(a)).then(a.id.cmp(&b.id)));
    let mut repack_candidates = Vec::new();
    for w in wasteful {
        if unused_total > allowed {
            unused_total -= w.size - w.used_bytes.min(w.size);
            repack_candidates.push(w);
        } else {
            small_or_keep(w, target, &mut small, &mut plan);
        }
    }
    // Small packs are merged once there are enough of them to be worth a rewrite (restic's
    // threshold), or when a repack is writing new packs anyway.
    small.sort_by(|a, b| a.size.cmp(&b.size).then(a.id.cmp(&b.id)));
    if small.len() >= SMALL_PACKS_WORTH_MERGING || (!small.is_empty() && !repack_candidates.is_empty()) {
        repack_candidates.append(&mut small);
    }
    for p in small {
        plan.keep_packs += 1;
        plan.keep_bytes += p.size;
    }
    let mut budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for p in repack_candidates {
        if p.size <= budget {
            budget -= p.size;
            plan.bytes_repacked += p.used_bytes;
            plan.repack.push(p);
        } else {
            plan.keep_packs += 1;
            plan.keep_bytes += p.size;
        }
    }
    for (id, size) in &listed {
        if !indexed.contains_key(id) && !in_records.contains(id) && !resurrected.contains(id) {
            plan.unindexed.push(PlannedPack { id: *id, size: *size, used_bytes: 0 });
        }
    }
    for list in [&mut plan.delete, &mut plan.repack, &mut plan.unindexed, &mut plan.resurrect, &mut plan.unrecorded] {
        list.sort_by_key(|p| p.id);
    }
    plan.bytes_to_delete = plan.delete.iter().chain(&plan.unindexed).map(|p| p.size).sum::<u64>()
        + plan.ripe.iter().flat_map(|(_, ps)| ps.iter().map(|p| p.size)).sum::<u64>();
    plan.bytes_to_repack = plan.repack.iter().map(|p| p.size).sum();
    let dropped: HashSet<PackId> =
        plan.delete.iter().chain(&plan.repack).map(|p| p.id).chain(plan.vanished.iter().copied()).collect();
    plan.kept = indexed.keys().filter(|id| live_indexed(id) && !dropped.contains(id)).copied().collect();
    plan.kept.sort();
    // This run's condemned packs stay readable through the new index until they are deleted, so a
    // client that deduplicated against them before this prune writes a snapshot that resolves.
    plan.condemned_listed.extend(plan.delete.iter().chain(&plan.repack).map(|p| p.id));
    plan.condemned_listed.sort();
    plan.index_segments = superseded.len() as u64;
    let needed = (plan.kept.len() + plan.condemned_listed.len()).div_ceil(PACKS_PER_INDEX_SEGMENT).max(1);
    plan.consolidate_index = superseded.len() >= needed + INDEX_SEGMENTS_WORTH_CONSOLIDATING;
    plan.superseded = superseded;
    Ok(plan)
}

/// A prune with nothing else to do still rewrites the index once it holds this many segments more
/// than its packs need: a client with an empty cache reads every segment, and a fleet of backups
/// adds one per backup (examples/index_sync.rs measures what that costs).
pub const INDEX_SEGMENTS_WORTH_CONSOLIDATING: usize = 64;

/// Fewer small packs than this are left alone (unless a repack runs anyway).
const SMALL_PACKS_WORTH_MERGING: usize = 10;

fn small_or_keep(p: PlannedPack, target: u64, small: &mut Vec<PlannedPack>, plan: &mut PrunePlan) {
    if p.size < target / 4 {
        small.push(p);
    } else {
        plan.keep_packs += 1;
        plan.keep_bytes += p.size;
    }
}

#[derive(Default, Clone, Copy)]
struct PackStats {
    blob_bytes: u64,
    used_bytes: u64,
    used_blobs: u64,
}

fn unused_share(p: &PlannedPack) -> f64 {
    if p.size == 0 {
        0.0
    } else {
        (p.size - p.used_bytes.min(p.size)) as f64 / p.size as f64
    }
}

/// Every blob the snapshots reach (trees and data), walking shared subtrees once. Trees are read
/// a level at a time, 32 at once on every core.
///
/// The marks go to the index cache ([`IndexCache::mark`](crate::index::IndexCache::mark)), so
/// memory does not grow with the repository. Returns the marks' generation.
fn mark(repo: &Repository, roots: Vec<BlobId>, outside: &Outside, resurrected: &mut HashSet<PackId>) -> Result<u64> {
    let index = repo.index();
    let generation = index.marks_reset()?;
    let fresh = index.mark(&roots)?;
    let mut frontier: Vec<BlobId> = roots.into_iter().zip(fresh).filter_map(|(r, new)| new.then_some(r)).collect();
    // Data blobs are marked at the end, in key order (see `SortedMarks`): marked in a tree's order,
    // each insert missed SQLite's page cache (10 million blobs: 116 s).
    let mut data = index.sorted_marks();
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
    data.finish()?;
    Ok(generation)
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

    // 1. Repack: the used blobs of the repacked packs go into new packs, authenticated on the way.
    let new_packs = if plan.repack.is_empty() {
        Vec::new()
    } else {
        progress("repacking");
        repack(repo, plan, &mut outcome)?
    };

    // 2. The new index: every kept pack, the new ones, the resurrected ones; it supersedes every
    //    segment the plan was made from.
    progress("writing the index");
    let index = repo.index();
    let entries = |id: &PackId, condemned: bool| {
        let id = *id;
        index.pack_entries(&id).map(|entries| (IndexedPack { id, entries }, condemned))
    };
    let mut packs = plan
        .kept
        .iter()
        .map(|id| entries(id, false))
        .chain(new_packs.into_iter().map(|p| Ok((p, false))))
        .chain(
            plan.resurrected_entries
                .iter()
                .map(|(id, entries)| Ok((IndexedPack { id: *id, entries: entries.clone() }, false))),
        )
        .chain(plan.condemned_listed.iter().map(|id| entries(id, true)));
    lock.ensure_held()?;
    repo.replace_index(&mut packs, &plan.superseded)?;
    drop(packs);

    // 3. Record what is condemned and who might still use it, before anything is deleted.
    let condemned: Vec<CondemnedPack> = plan
        .delete
        .iter()
        .chain(&plan.repack)
        .chain(&plan.unindexed)
        .chain(&plan.unrecorded)
        .map(|p| CondemnedPack { id: p.id, size: p.size })
        .collect();
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

/// Copy the used blobs of the packs to repack into new packs of the target size.
fn repack(repo: &Repository, plan: &PrunePlan, outcome: &mut PruneOutcome) -> Result<Vec<IndexedPack>> {
    let key = &repo.keys().seal;
    let target = repo.config().pack_size as usize;
    let backend = repo.backend();
    let mut written = Vec::new();
    if repo.index().marks_generation() != plan.marks {
        return Err(Error::invalid(
            "the prune plan's marks of used data are gone from the index cache (another plan was made \
             through it); nothing was deleted. Run the prune again",
        ));
    }
    let mut builder = PackBuilder::with_capacity(target + target / 8);
    let flush = |builder: &mut PackBuilder, outcome: &mut PruneOutcome, written: &mut Vec<IndexedPack>| -> Result<()> {
        let full = std::mem::replace(builder, PackBuilder::with_capacity(target + target / 8));
        let (id, bytes, entries) = full.finish(key)?;
        outcome.packs_written += 1;
        outcome.bytes_written += bytes.len() as u64;
        backend.write(&pack::pack_path(&id), bytes.into())?;
        written.push(IndexedPack { id, entries });
        Ok(())
    };
    // Packs are read two at a time ahead of the copying, on rayon's pool.
    for chunk in plan.repack.chunks(2) {
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
                    flush(&mut builder, outcome, &mut written)?;
                }
            }
        }
    }
    if !builder.is_empty() {
        flush(&mut builder, outcome, &mut written)?;
    }
    Ok(written)
}

fn slice<'a>(bytes: &'a [u8], e: &PackEntry, pack: &PackId) -> Result<&'a [u8]> {
    let start = e.offset as usize;
    bytes
        .get(start..start + e.sealed_len as usize)
        .ok_or_else(|| Error::malformed(format!("pack {pack}"), format!("blob {} lies beyond the pack's end", e.id)))
}
