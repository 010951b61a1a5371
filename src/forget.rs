//! `forget`: apply a retention policy to a repository's snapshots, one group (host and source)
//! at a time, and delete the snapshot objects it does not keep. The data stays until prune.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::retention::{self, Candidate, Policy};
use crate::session::Session;

/// Snapshots forget sees as one history: the same host and the same source (for a gateway, the
/// home and tenant scope), as restic's default `--group-by host,paths`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PlannedSnapshot {
    pub id: SnapshotId,
    pub time: String,
    pub tags: Vec<String>,
    pub keep: bool,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Group {
    pub key: GroupKey,
    /// Oldest first.
    pub snapshots: Vec<PlannedSnapshot>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ForgetPlan {
    pub policy: Policy,
    pub groups: Vec<Group>,
    /// Snapshots that could not be read; forget leaves them alone.
    pub unreadable: Vec<String>,
}

impl ForgetPlan {
    pub fn to_remove(&self) -> impl Iterator<Item = &PlannedSnapshot> {
        self.groups.iter().flat_map(|g| g.snapshots.iter()).filter(|s| !s.keep)
    }

    pub fn kept(&self) -> usize {
        self.groups.iter().flat_map(|g| g.snapshots.iter()).filter(|s| s.keep).count()
    }
}

/// Decide, per group, which snapshots the policy keeps.
pub fn plan(session: &Session, policy: &Policy) -> Result<ForgetPlan> {
    let (snaps, bad) = session.list_snapshots()?;
    Ok(ForgetPlan {
        policy: policy.clone(),
        groups: plan_groups(policy, snaps),
        unreadable: bad.into_iter().map(|(id, e)| format!("snapshot {id}: {e}")).collect(),
    })
}

/// The policy over snapshots already loaded (oldest first; ties in time are ordered by id, so the
/// outcome never depends on listing order).
pub fn plan_groups(policy: &Policy, snaps: Vec<(SnapshotId, Snapshot)>) -> Vec<Group> {
    let mut groups: BTreeMap<GroupKey, Vec<(SnapshotId, Snapshot)>> = BTreeMap::new();
    for (id, s) in snaps {
        let key = GroupKey { hostname: s.hostname.clone(), paths: s.paths.clone() };
        groups.entry(key).or_default().push((id, s));
    }
    groups
        .into_iter()
        .map(|(key, mut members)| {
            // Among equal times the policy takes the smaller id as the newer (a documented choice:
            // restic leaves it to listing order).
            members.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
            let candidates: Vec<Candidate> =
                members.iter().map(|(_, s)| Candidate { time: s.time(), tags: &s.tags }).collect();
            let decisions = retention::apply(policy, &candidates);
            let snapshots = members
                .iter()
                .zip(decisions)
                .map(|((id, s), d)| PlannedSnapshot {
                    id: *id,
                    time: s.time.clone(),
                    tags: s.tags.clone(),
                    keep: d.keep,
                    reasons: d.reasons,
                })
                .collect();
            Group { key, snapshots }
        })
        .collect()
}

/// Delete the snapshots the plan removes; returns how many were deleted.
pub fn execute(session: &Session, plan: &ForgetPlan, on_removed: &mut dyn FnMut(&PlannedSnapshot)) -> Result<usize> {
    let mut n = 0;
    for s in plan.to_remove() {
        session.repo().remove_snapshot(&s.id)?;
        on_removed(s);
        n += 1;
    }
    Ok(n)
}
