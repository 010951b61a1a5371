//! `verify`: check that every snapshot can be restored, and with `--read-data` that the stored
//! bytes are intact. Each damaged object is reported with the snapshots that use it.
//!
//! Order: index segments (read and authenticated, independently of the cache) → pack listing
//! against the index → pack contents (with `read_data`) → every snapshot's trees and blobs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::error::{Error, Result};
use crate::id::{BlobId, BlobType, PackId, SnapshotId};
use crate::index::{BlobLocation, ScratchPack, SortedIds};
use crate::pack;
use crate::repo::Repository;
use crate::session::Session;

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// `None`: structure only. `Some(p)`: read and authenticate this percentage of packs (0..=100].
    pub read_data_percent: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// The damaged object, e.g. `pack 3fa1…`, `snapshot 09ab…`, `index segment 77c0…`.
    pub object: String,
    pub problem: String,
    /// Snapshots that use the object (empty when none or unknown).
    pub snapshots: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
    pub snapshots: u64,
    pub trees: u64,
    pub packs: u64,
    pub packs_read: u64,
    pub blobs_read: u64,
    pub bytes_read: u64,
    /// Packs the index lists only as condemned by a prune (still readable, never reused).
    pub condemned_packs: u64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Default)]
struct Findings {
    by_object: BTreeMap<String, (String, BTreeSet<SnapshotId>)>,
}

impl Findings {
    fn add(&mut self, object: String, problem: String) -> String {
        // Errors already start with the object's name; say it once.
        let problem = problem.strip_prefix(&format!("{object}: ")).map(str::to_string).unwrap_or(problem);
        self.by_object.entry(object.clone()).or_insert_with(|| (problem, BTreeSet::new()));
        object
    }

    fn used_by(&mut self, object: &str, snap: SnapshotId) {
        if let Some((_, s)) = self.by_object.get_mut(object) {
            s.insert(snap);
        }
    }
}

/// Check the session's repository. The index is synced again after the segments were read one
/// by one, so damage found in them is reported here rather than skipped silently.
pub fn check(session: &Session, opts: &CheckOptions, on_progress: &mut dyn FnMut(&str)) -> Result<CheckReport> {
    let repo: &Repository = session.repo();
    let mut report = CheckReport::default();
    let mut findings = Findings::default();

    // 1. Index segments, read straight from the repository.
    on_progress("checking index segments");
    for id in repo.index_segment_ids()? {
        if let Err(e) = repo.load_index_segment(&id) {
            if !e.is_damage() {
                return Err(e);
            }
            findings.add(format!("index segment {id}"), e.to_string());
        }
    }
    repo.sync_index(&mut |_| {})?;

    // 2. Packs present versus packs indexed (the listing goes to SQLite, not memory).
    on_progress("listing packs");
    let index = repo.index();
    index.scratch_reset()?;
    let mut page: Vec<(PackId, u64)> = Vec::with_capacity(4096);
    repo.backend().list("data", &mut |o| {
        let name = o.name.rsplit('/').next().unwrap_or("");
        if let Ok(id) = name.parse::<PackId>() {
            page.push((id, o.size));
            if page.len() == page.capacity() {
                index.scratch_add_listed(&page)?;
                page.clear();
            }
        }
        Ok(())
    })?;
    index.scratch_add_listed(&page)?;
    drop(page);
    report.packs = index.scratch_listed_count()?;
    let unindexed = index.scratch_unindexed_count()?;
    if unindexed > 0 {
        report.warnings.push(format!(
            "{unindexed} pack(s) are not in any index segment (left by an interrupted backup or prune, or being \
             written by a running backup; prune removes them, repo repair-index indexes them)"
        ));
    }
    match repo.prune_records() {
        Ok(records) if !records.is_empty() => {
            let packs: usize = records.iter().map(|(_, r)| r.packs.len()).sum();
            report.warnings.push(format!(
                "{} prune record(s) hold {packs} pack(s) for deletion once the clients named in them have finished",
                records.len()
            ));
        }
        Ok(_) => {}
        Err(e) if e.is_damage() => {
            findings.add("prune records".into(), e.to_string());
        }
        Err(e) => return Err(e),
    }

    // 3. Every indexed pack, a page at a time: missing or short ones are damage; with `read_data`,
    //    the picked ones are read whole and every blob authenticated.
    let mut damage = Damage::default();
    let read_seed = u64::from_le_bytes(crate::crypto::random_array()?);
    let mut after: Option<PackId> = None;
    loop {
        let page = index.scratch_indexed_packs(after.as_ref(), 1024)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for ScratchPack { id, blob_bytes, listed, condemned } in page {
            if condemned && listed.is_some() {
                report.condemned_packs += 1;
            }
            match listed {
                // A prune deleted it after the clients that might use it had finished; the next
                // prune drops it from the index. Only a snapshot that uses it makes it damage.
                None if condemned => {
                    damage.gone_condemned.insert(id);
                }
                None => {
                    let o = findings.add(format!("pack {id}"), "indexed but missing from the repository".into());
                    damage.packs.insert(id, o);
                }
                Some(size) if size < blob_bytes => {
                    let o = findings.add(
                        format!("pack {id}"),
                        format!("{size} bytes, but its indexed blobs alone take {blob_bytes}"),
                    );
                    damage.packs.insert(id, o);
                }
                Some(_) => {
                    let Some(percent) = opts.read_data_percent else { continue };
                    let pick = u64::from_le_bytes(id.0[..8].try_into().unwrap_or([0; 8])) ^ read_seed;
                    if percent < 100.0 && ((pick % 1_000_000) as f64) >= percent * 10_000.0 {
                        continue;
                    }
                    report.packs_read += 1;
                    on_progress(&format!("reading pack {} ({})", report.packs_read, id.short()));
                    read_pack(repo, &id, &mut report, &mut findings, &mut damage)?;
                }
            }
        }
    }

    if report.condemned_packs > 0 {
        report.warnings.push(format!(
            "{} pack(s) are condemned by a prune: still readable, never reused, deleted by a later prune once \
             the clients that were running have finished",
            report.condemned_packs
        ));
    }

    // 4. Snapshots and their trees. Data blobs are looked up after the walk, in key order (see
    //    `SortedIds`); only if one is damaged are the trees walked again to tell which
    //    snapshots use it.
    on_progress("checking snapshots");
    let mut roots: Vec<(SnapshotId, BlobId)> = Vec::new();
    let mut data = index.sorted_ids("lookups");
    {
        let mut ctx = Walk::new(repo, &mut findings, &damage, Data::Gather(&mut data));
        for snap_id in repo.snapshot_ids()? {
            report.snapshots += 1;
            let snap = match repo.load_snapshot(&snap_id) {
                Ok(s) => s,
                Err(e) if e.is_damage() || matches!(e, Error::NotFound(_)) => {
                    let o = ctx.findings.add(format!("snapshot {snap_id}"), e.to_string());
                    ctx.findings.used_by(&o, snap_id);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for o in ctx.tree(&snap.tree)? {
                ctx.findings.used_by(&o, snap_id);
            }
            roots.push((snap_id, snap.tree));
        }
        report.trees = ctx.trees;
    }
    on_progress("checking data blobs");
    let mut bad_data: HashMap<BlobId, String> = HashMap::new();
    data.lookup_each(&mut |id, loc| {
        if let Some(o) = damage.problem_at(&mut findings, id, BlobType::Data, loc) {
            bad_data.insert(*id, o);
        }
        Ok(())
    })?;
    if !bad_data.is_empty() {
        on_progress("finding the snapshots that use damaged data blobs");
        index.scratch_reset_walked()?;
        let mut ctx = Walk::new(repo, &mut findings, &damage, Data::Known(&bad_data));
        for (snap_id, root) in &roots {
            for o in ctx.tree(root)? {
                ctx.findings.used_by(&o, *snap_id);
            }
        }
    }

    report.findings = findings
        .by_object
        .into_iter()
        .map(|(object, (problem, snaps))| Finding {
            object,
            problem,
            snapshots: snaps.iter().map(|s| s.to_hex()).collect(),
        })
        .collect();
    Ok(report)
}

/// Read one pack whole: its name must be the hash of its bytes, its header must match the index,
/// and every blob must authenticate and hash to its id.
fn read_pack(
    repo: &Repository,
    id: &PackId,
    report: &mut CheckReport,
    findings: &mut Findings,
    damage: &mut Damage,
) -> Result<()> {
    let bytes = match repo.backend().read(&pack::pack_path(id)) {
        Ok(b) => b,
        Err(e) => {
            damage.packs.insert(*id, findings.add(format!("pack {id}"), e.to_string()));
            return Ok(());
        }
    };
    report.bytes_read += bytes.len() as u64;
    let key = &repo.keys().seal;
    let object = format!("pack {id}");
    let mut pack_problem: Option<String> = None;
    let indexed = repo.index().pack_entries(id)?;
    match pack::parse_pack(key, Some(id), &bytes) {
        Ok(header) => {
            if header != indexed {
                pack_problem = Some(format!(
                    "its header lists {} blob(s) that differ from the {} the index records",
                    header.len(),
                    indexed.len()
                ));
            }
        }
        Err(e) => pack_problem = Some(e.to_string()),
    }
    // Check blob by blob against the index, so a damaged pack still tells which blobs survive.
    for entry in indexed {
        report.blobs_read += 1;
        let start = entry.offset as usize;
        let end = start.saturating_add(entry.sealed_len as usize);
        let result = match bytes.get(start..end) {
            None => Err(Error::malformed(format!("blob {} in {object}", entry.id), "outside the pack")),
            Some(sealed) => pack::open_blob(key, &entry, sealed.to_vec(), &|| format!("blob {} in {object}", entry.id))
                .and_then(|plain| {
                    if repo.keys().blob_id(&plain) == entry.id {
                        Ok(())
                    } else {
                        Err(Error::HashMismatch {
                            what: format!("blob {} in {object}", entry.id),
                            expected: entry.id.to_hex(),
                        })
                    }
                }),
        };
        if let Err(e) = result {
            if !e.is_damage() {
                return Err(e);
            }
            pack_problem.get_or_insert_with(|| e.to_string());
            damage.blobs.insert(entry.id, object.clone());
        }
    }
    // Only the blobs that fail are unreadable: a snapshot that uses none of them still restores.
    if let Some(p) = pack_problem {
        findings.add(object, p);
    }
    Ok(())
}

/// What a walk does with a tree's data blobs.
enum Data<'w, 'c> {
    /// Gather them, to be looked up after the walk in key order.
    Gather(&'w mut SortedIds<'c>),
    /// Those looked up and found unreadable, with the damaged object each one names.
    Known(&'w HashMap<BlobId, String>),
}

struct Walk<'a, 'w, 'c> {
    repo: &'a Repository,
    findings: &'a mut Findings,
    damage: &'a Damage,
    data: Data<'w, 'c>,
    trees: u64,
}

/// What reading the packs found, each entry with the damaged object's name.
#[derive(Default)]
struct Damage {
    packs: HashMap<PackId, String>,
    blobs: HashMap<BlobId, String>,
    /// Condemned packs a prune has deleted: damage only for a snapshot that uses them.
    gone_condemned: HashSet<PackId>,
}

impl Damage {
    /// The damaged object that makes blob `id`, which the index places at `loc`, unreadable.
    fn problem_at(
        &self,
        findings: &mut Findings,
        id: &BlobId,
        expected: BlobType,
        loc: Option<BlobLocation>,
    ) -> Option<String> {
        if let Some(o) = self.blobs.get(id) {
            return Some(o.clone());
        }
        match loc {
            None => Some(findings.add(
                format!("blob {id}"),
                format!(
                    "{} blob referenced but not in any index segment (a segment may be missing or damaged; \
                     `sophon repo repair-index` rebuilds the index from the packs)",
                    if expected == BlobType::Tree { "tree" } else { "data" }
                ),
            )),
            Some(loc) => {
                if let Some(o) = self.packs.get(&loc.pack) {
                    return Some(o.clone());
                }
                if self.gone_condemned.contains(&loc.pack) {
                    return Some(findings.add(
                        format!("pack {}", loc.pack),
                        "condemned by a prune and deleted, yet a snapshot uses it".into(),
                    ));
                }
                if loc.entry.blob_type != expected {
                    return Some(findings.add(format!("blob {id}"), "indexed with the wrong type".into()));
                }
                None
            }
        }
    }
}

impl<'a, 'w, 'c> Walk<'a, 'w, 'c> {
    fn new(repo: &'a Repository, findings: &'a mut Findings, damage: &'a Damage, data: Data<'w, 'c>) -> Self {
        Walk { repo, findings, damage, data, trees: 0 }
    }

    /// The damaged objects reachable from tree `id` (memoized in SQLite: shared subtrees are walked
    /// once), data blobs as far as [`Data`] knows them.
    fn tree(&mut self, id: &BlobId) -> Result<Vec<String>> {
        if let Some(found) = self.repo.index().scratch_walked(id)? {
            return Ok(found);
        }
        self.trees += 1;
        let mut found = BTreeSet::new();
        if let Some(o) = self.blob_problem(id, BlobType::Tree)? {
            found.insert(o);
        } else {
            match self.repo.load_tree(id) {
                Ok(tree) => {
                    for c in tree.nodes.iter().flat_map(|n| n.content.iter()) {
                        match &mut self.data {
                            Data::Gather(ids) => ids.push(*c)?,
                            Data::Known(bad) => found.extend(bad.get(c).cloned()),
                        }
                    }
                    for node in &tree.nodes {
                        if let Some(sub) = &node.subtree {
                            found.extend(self.tree(sub)?);
                        }
                    }
                }
                Err(e) if e.is_damage() || matches!(e, Error::NotFound(_)) => {
                    found.insert(self.findings.add(format!("tree {id}"), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        let found: Vec<String> = found.into_iter().collect();
        self.repo.index().scratch_set_walked(id, &found)?;
        Ok(found)
    }

    /// The damaged object that makes blob `id` unreadable, if any.
    fn blob_problem(&mut self, id: &BlobId, expected: BlobType) -> Result<Option<String>> {
        let loc = self.repo.index().lookup(id)?;
        Ok(self.damage.problem_at(self.findings, id, expected, loc))
    }
}
