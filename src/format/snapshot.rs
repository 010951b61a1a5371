//! Snapshots: the root of one backup, stored as a sealed JSON object under `snapshots/`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// RFC 3339 time the backup started (or `--time`).
    pub time: String,
    pub tree: BlobId,
    /// What was backed up: absolute paths for folder backups.
    pub paths: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SnapshotId>,
    /// True when some files could not be read; they are listed in `errors`.
    #[serde(default)]
    pub partial: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SnapshotError>,
    #[serde(default)]
    pub summary: SnapshotSummary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotError {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub blobs_added: u64,
    pub bytes_added: u64,
    pub bytes_stored: u64,
}

impl Snapshot {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid(format!("encoding a snapshot: {e}")))
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, format!("snapshot JSON: {e}")))?;
        if probe.version != VERSION {
            return Err(Error::UnsupportedVersion { what: what.into(), found: probe.version, supported: VERSION });
        }
        let s: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, format!("snapshot JSON: {e}")))?;
        chrono::DateTime::parse_from_rfc3339(&s.time)
            .map_err(|e| Error::malformed(what, format!("time {:?}: {e}", s.time)))?;
        Ok(s)
    }

    pub fn time(&self) -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339(&self.time).unwrap_or_default()
    }
}
