//! Retention for export archives at a destination (`backup forget --dest`): the same policy as for
//! snapshots, applied to what each archive's `metadata.json` says, grouped by scope and host. An
//! incremental archive needs every archive it follows, so those are kept with it.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::format::export_meta::ExportMetadata;
use crate::retention::{self, Candidate, Policy};
use chrono::{DateTime, FixedOffset};

/// What retention needs to know of one archive.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArchiveInfo {
    pub name: String,
    pub size: u64,
    /// The snapshot's time (RFC 3339).
    pub time: String,
    pub scope: String,
    pub hostname: String,
    pub tags: Vec<String>,
    pub id: Option<String>,
    pub follows: Option<String>,
}

impl ArchiveInfo {
    pub fn from_metadata(name: &str, size: u64, meta: &ExportMetadata) -> Result<Self> {
        let time = meta
            .snapshot_time()
            .ok_or_else(|| Error::malformed(format!("{name}: metadata.json"), "no snapshot time"))?;
        DateTime::parse_from_rfc3339(time)
            .map_err(|e| Error::malformed(format!("{name}: metadata.json"), format!("time {time:?}: {e}")))?;
        Ok(ArchiveInfo {
            name: name.to_string(),
            size,
            time: time.to_string(),
            scope: meta.scope(),
            hostname: meta.hostname.clone().unwrap_or_default(),
            tags: meta.tags.clone().unwrap_or_default(),
            id: meta.export_id().map(str::to_string),
            follows: meta.follows().map(str::to_string),
        })
    }

    fn parsed_time(&self) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&self.time).unwrap_or_default()
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ArchiveDecision {
    pub name: String,
    pub size: u64,
    pub time: String,
    pub scope: String,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// Decide which archives stay. The result is grouped by scope, oldest first within a group.
pub fn plan(policy: &Policy, archives: &[ArchiveInfo]) -> Vec<ArchiveDecision> {
    let mut groups: BTreeMap<(&str, &str), Vec<&ArchiveInfo>> = BTreeMap::new();
    for a in archives {
        groups.entry((&a.scope, &a.hostname)).or_default().push(a);
    }
    let mut out = Vec::new();
    for (_, mut members) in groups {
        members.sort_by(|a, b| a.parsed_time().cmp(&b.parsed_time()).then(a.name.cmp(&b.name)));
        let times: Vec<DateTime<FixedOffset>> = members.iter().map(|a| a.parsed_time()).collect();
        let candidates: Vec<Candidate> =
            members.iter().zip(&times).map(|(a, t)| Candidate { time: *t, tags: &a.tags }).collect();
        for (a, d) in members.iter().zip(retention::apply(policy, &candidates)) {
            out.push(ArchiveDecision {
                name: a.name.clone(),
                size: a.size,
                time: a.time.clone(),
                scope: a.scope.clone(),
                keep: d.keep,
                reasons: d.reasons,
            });
        }
    }
    // A kept incremental keeps the chain it follows.
    let by_id: HashMap<&str, usize> = archives
        .iter()
        .filter_map(|a| a.id.as_deref().map(|id| (id, out.iter().position(|d| d.name == a.name))))
        .filter_map(|(id, i)| i.map(|i| (id, i)))
        .collect();
    let follows: HashMap<&str, &str> =
        archives.iter().filter_map(|a| a.follows.as_deref().map(|f| (a.name.as_str(), f))).collect();
    let mut stack: Vec<usize> = (0..out.len()).filter(|&i| out[i].keep).collect();
    while let Some(i) = stack.pop() {
        let Some(f) = follows.get(out[i].name.as_str()) else { continue };
        let Some(&j) = by_id.get(f) else { continue };
        let reason = format!("followed by kept {}", out[i].name);
        if !out[j].keep {
            out[j].keep = true;
            stack.push(j);
        }
        out[j].reasons.push(reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, time: &str, id: &str, follows: Option<&str>) -> ArchiveInfo {
        ArchiveInfo {
            name: name.into(),
            size: 1,
            time: time.into(),
            scope: "gateway:/srv".into(),
            hostname: "h".into(),
            tags: vec![],
            id: Some(id.into()),
            follows: follows.map(str::to_string),
        }
    }

    #[test]
    fn a_kept_incremental_keeps_the_archives_it_follows() {
        let archives = vec![
            info("full.zip", "2026-01-01T03:00:00Z", "e1", None),
            info("inc1.zip", "2026-01-02T03:00:00Z", "e2", Some("e1")),
            info("inc2.zip", "2026-01-03T03:00:00Z", "e3", Some("e2")),
            info("old.zip", "2025-12-01T03:00:00Z", "e0", None),
        ];
        let p = Policy { last: 1, ..Policy::default() };
        let decisions = plan(&p, &archives);
        let kept: Vec<&str> = decisions.iter().filter(|d| d.keep).map(|d| d.name.as_str()).collect();
        assert_eq!(kept, ["full.zip", "inc1.zip", "inc2.zip"]);
    }
}
