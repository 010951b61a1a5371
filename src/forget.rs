//! `forget`: apply a retention policy to a repository's snapshots, one group (host, source and
//! scheduled job) at a time, and delete the snapshot objects it does not keep. The data stays
//! until prune. A scheduled job's retention selects its own snapshots by the job's tag, so it
//! never touches a snapshot someone took by hand (format-spec/retention.md §2).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::retention::{self, Candidate, Policy};
use crate::session::Session;
use crate::source::SnapshotScope;

/// The start of the tag a scheduled job puts on its snapshots.
pub const JOB_TAG_PREFIX: &str = "cron:";

/// The tag of the snapshots taken by job `name` of `tenant` (jobs are unique per tenant and name).
pub fn job_tag(tenant: &str, name: &str) -> String {
    format!("{JOB_TAG_PREFIX}{tenant}/{name}")
}

/// The job a snapshot was taken by, from its tags (`tenant/name`); `None` for one taken by hand.
pub fn job_of(tags: &[String]) -> Option<String> {
    tags.iter().find_map(|t| t.strip_prefix(JOB_TAG_PREFIX)).map(str::to_string)
}

/// Snapshots forget sees as one history: the same host, the same source (`paths`: for a gateway,
/// the label naming the home, the categories and the tenant) and the same scheduled job (or none),
/// as restic's default `--group-by host,paths` with the job added.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Vec<String>,
    /// `tenant/name` of the job whose tag the snapshots carry; `None`: taken by hand.
    pub job: Option<String>,
}

impl GroupKey {
    /// The key in words: `host H, gateway HOME, tenant T|all tenants, categories a,b|all
    /// categories, job J|no job` (a folder backup names its paths).
    pub fn describe(&self) -> String {
        let host = if self.hostname.is_empty() { "?" } else { &self.hostname };
        let scope = SnapshotScope::from_paths(&self.paths);
        let source = match &scope {
            SnapshotScope::Gateway { home, tenant, categories } => format!(
                "gateway {}, {}, {}",
                home.display(),
                tenant.as_deref().map_or_else(|| "all tenants".to_string(), |t| format!("tenant {t}")),
                if categories.is_empty() {
                    "all categories".to_string()
                } else {
                    format!("categories {}", categories.join(","))
                }
            ),
            SnapshotScope::Paths(p) => format!("paths {}", p.join(", ")),
        };
        let job = self.job.as_deref().map_or_else(|| "no job (taken by hand)".to_string(), |j| format!("job {j}"));
        format!("host {host}, {source}, {job}")
    }
}

/// In JSON the key's parts are spelled out beside the raw `paths`.
impl serde::Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let scope = SnapshotScope::from_paths(&self.paths);
        let mut st = s.serialize_struct("GroupKey", 8)?;
        st.serialize_field("hostname", &self.hostname)?;
        st.serialize_field("paths", &self.paths)?;
        st.serialize_field("kind", if scope.is_gateway() { "gateway" } else { "paths" })?;
        st.serialize_field("home", &scope.home().map(|h| h.display().to_string()))?;
        st.serialize_field("tenant", &scope.is_gateway().then(|| scope.tenant().unwrap_or("all")))?;
        let categories = scope.categories().map(|c| c.join(","));
        st.serialize_field("categories", &scope.is_gateway().then(|| categories.unwrap_or_else(|| "all".into())))?;
        st.serialize_field("job", &self.job)?;
        st.serialize_field("describe", &self.describe())?;
        st.end()
    }
}

/// Which snapshots forget looks at; the others are not in the plan at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Selection {
    /// Only snapshots carrying every tag of one of these lists (empty: every snapshot).
    pub tags: Vec<Vec<String>>,
}

impl Selection {
    /// A scheduled job's selection: its own snapshots only.
    pub fn job(tenant: &str, name: &str) -> Selection {
        Selection { tags: vec![vec![job_tag(tenant, name)]] }
    }

    fn admits(&self, s: &Snapshot) -> bool {
        self.tags.is_empty() || self.tags.iter().any(|list| list.iter().all(|t| s.tags.contains(t)))
    }
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
    pub selection: Selection,
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

/// Decide, per group, which of the selected snapshots the policy keeps.
pub fn plan(session: &Session, policy: &Policy, selection: &Selection) -> Result<ForgetPlan> {
    let (snaps, bad) = session.list_snapshots()?;
    let snaps = snaps.into_iter().filter(|(_, s)| selection.admits(s)).collect();
    Ok(ForgetPlan {
        policy: policy.clone(),
        selection: selection.clone(),
        groups: plan_groups(policy, snaps),
        unreadable: bad.into_iter().map(|(id, e)| format!("snapshot {id}: {e}")).collect(),
    })
}

/// The policy over snapshots already loaded (oldest first; ties in time are ordered by id, so the
/// outcome never depends on listing order).
pub fn plan_groups(policy: &Policy, snaps: Vec<(SnapshotId, Snapshot)>) -> Vec<Group> {
    let mut groups: BTreeMap<GroupKey, Vec<(SnapshotId, Snapshot)>> = BTreeMap::new();
    for (id, s) in snaps {
        let key = GroupKey { hostname: s.hostname.clone(), paths: s.paths.clone(), job: job_of(&s.tags) };
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
