//! Prune records: packs a prune has taken out of the index and will delete once no client that
//! might still use them is running (the second phase of a two-phase delete, format-spec/prune.md).
//! Stored as sealed JSON under `prune/`.

use serde::{Deserialize, Serialize};

use super::config::{check_version, LockHolder};
use crate::error::{Error, Result};
use crate::id::PackId;

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRecord {
    pub version: u32,
    /// RFC 3339, for people; ripeness is decided by `holders`, never by clocks.
    pub created: String,
    pub hostname: String,
    pub pid: u32,
    /// Packs to delete, with their sizes when listed.
    pub packs: Vec<CondemnedPack>,
    /// Every other client that held a lock right after the index without these packs was written.
    /// Until all of them are gone, one of them may still write a snapshot that uses these packs.
    pub holders: Vec<LockHolder>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondemnedPack {
    pub id: PackId,
    pub size: u64,
}

impl PruneRecord {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid(format!("encoding a prune record: {e}")))
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        check_version(bytes, what, VERSION)?;
        let r: PruneRecord = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
        chrono::DateTime::parse_from_rfc3339(&r.created)
            .map_err(|e| Error::malformed(what, format!("created: {e}")))?;
        Ok(r)
    }
}
