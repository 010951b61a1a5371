//! An export's `backup/metadata.json` (`format-spec/export.md` §2): one writer and one reader, so
//! every consumer (chains, retention, the previous-export lookup, verify, restore, a destination's
//! metadata cache) sees the same typed value. The reader treats the bytes as hostile: bounded in
//! size, versions checked before anything else is believed, unknown layouts refused.
//!
//! A gateway export's metadata is the gateway backup's own (`format-spec/gateway.md` §9) with the
//! `export` object added; its keys this crate does not interpret are kept as they are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::layout::Layout;
use crate::error::{Error, Result};

/// The version of the archive layout and of the `export` object.
pub const EXPORT_FORMAT_VERSION: u32 = 1;
/// The largest `metadata.json` a reader accepts: far above what any gateway writes, far below
/// what would exhaust memory once parsed.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

/// The whole `metadata.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportMetadata {
    /// Absent in a gateway backup's own metadata, which is the gateway layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// The version of [`Self::layout`] the files follow.
    pub layout_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sophon_version: Option<String>,
    /// The snapshot's time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A folder export's snapshot paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    pub export: ExportInfo,
    /// The gateway backup's own keys (`format-spec/gateway.md` §9), kept as written.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The `export` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `zip` or `tar.gz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The snapshot rendered (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<String>,
    /// The snapshot's scope (`format-spec/export.md` §1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub sealed: bool,
    /// `null` for a full export: always written, so a reader can tell.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// Fields a later version 1 may add.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What an incremental export follows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incremental {
    pub follows: String,
    /// The chain's full export.
    pub base: String,
    /// 1, 2, … (the full export is 0).
    pub sequence: u64,
    pub previous_snapshot: String,
    /// Paths the previous export had that are gone.
    #[serde(default)]
    pub deleted: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ExportMetadata {
    /// The layout of the archive's files (a gateway backup's own metadata names none).
    pub fn layout(&self) -> Layout {
        self.layout.unwrap_or(Layout::Gateway)
    }

    pub fn export_id(&self) -> Option<&str> {
        self.export.id.as_deref()
    }

    /// The export this one follows, for an incremental.
    pub fn follows(&self) -> Option<&str> {
        self.export.incremental.as_ref().map(|i| i.follows.as_str())
    }

    /// The scope the export was made of: the recorded one, else (older metadata) the paths.
    pub fn scope(&self) -> String {
        match (&self.export.scope, &self.paths) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => p.join(" "),
            (None, None) => String::new(),
        }
    }

    /// The snapshot's time: the export's record of it, else the backup's own.
    pub fn snapshot_time(&self) -> Option<&str> {
        self.export.snapshot_time.as_deref().or(self.timestamp.as_deref())
    }

    /// A gateway export's metadata: the gateway backup's own `metadata.json` (`base`, an object)
    /// with `export` added. `what` names the base in errors.
    pub fn from_base(base: Value, export: ExportInfo, what: &str) -> Result<ExportMetadata> {
        let Value::Object(mut map) = base else {
            return Err(Error::malformed(what, "not a JSON object"));
        };
        let export = serde_json::to_value(&export).map_err(|e| Error::invalid(format!("metadata.json: {e}")))?;
        map.insert("export".into(), export);
        serde_json::from_value(Value::Object(map)).map_err(|e| Error::malformed(what, e.to_string()))
    }

    /// The bytes of `metadata.json`: pretty JSON, keys in byte order at every level.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Through `Value`, whose objects are sorted maps: the bytes do not depend on field order.
        let v = serde_json::to_value(self).map_err(|e| Error::invalid(format!("metadata.json: {e}")))?;
        serde_json::to_vec_pretty(&v).map_err(|e| Error::invalid(format!("metadata.json: {e}")))
    }

    /// Read `metadata.json` (`what` names it in errors): bounded, versions checked first (a newer
    /// export is refused as such, not as malformed), the layout known.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ExportMetadata> {
        if bytes.len() as u64 > MAX_METADATA_BYTES {
            return Err(Error::TooLarge { what: what.to_string(), limit: MAX_METADATA_BYTES });
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
        Self::from_value(v, what)
    }

    /// [`Self::parse`] on JSON already read (a destination's metadata cache).
    pub fn from_value(v: Value, what: &str) -> Result<ExportMetadata> {
        if !v.is_object() {
            return Err(Error::malformed(what, "not a JSON object"));
        }
        let version = v["export"]["format_version"]
            .as_u64()
            .ok_or_else(|| Error::malformed(what, "no export.format_version: not a Sophon export"))?;
        if version > EXPORT_FORMAT_VERSION as u64 {
            return Err(Error::UnsupportedVersion {
                what: what.to_string(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: EXPORT_FORMAT_VERSION,
            });
        }
        let layout = match &v["layout"] {
            Value::Null => Layout::Gateway,
            Value::String(s) => s.parse().map_err(|e: Error| Error::malformed(what, e.to_string()))?,
            other => return Err(Error::malformed(what, format!("layout {other} is not a name"))),
        };
        let found = v["layout_version"].as_u64().unwrap_or(0);
        if found == 0 || found > layout.version() as u64 {
            return Err(Error::UnsupportedVersion {
                what: format!("{what} ({layout} layout_version)"),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: layout.version(),
            });
        }
        serde_json::from_value(v).map_err(|e| Error::malformed(what, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_export() -> Value {
        json!({
            "format_version": 1, "id": "exp_0123456789abcdef", "format": "zip",
            "created": "2026-01-02T03:04:05Z", "snapshot": "ab".repeat(32),
            "snapshot_time": "2026-01-02T03:00:00Z", "scope": "/data /etc", "sealed": false,
            "incremental": null,
        })
    }

    /// What the writer of earlier builds put in a folder export, byte for byte (`json!` sorts keys).
    fn folder_metadata_as_written_before() -> Value {
        json!({
            "layout": "files", "layout_version": 1, "sophon_version": "0.1.0",
            "timestamp": "2026-01-02T03:00:00Z", "paths": ["/data", "/etc"], "hostname": "h",
            "tags": ["nightly"], "export": full_export(),
        })
    }

    #[test]
    fn a_folder_export_reads_as_the_folder_layout_and_writes_the_same_bytes() {
        let before = serde_json::to_vec_pretty(&folder_metadata_as_written_before()).unwrap();
        let m = ExportMetadata::parse(&before, "x.zip: metadata.json").unwrap();
        assert_eq!(m.layout(), Layout::Files);
        assert_eq!(m.paths.as_deref(), Some(&["/data".to_string(), "/etc".to_string()][..]));
        assert_eq!(m.scope(), "/data /etc");
        assert_eq!(m.follows(), None);
        assert_eq!(m.to_bytes().unwrap(), before);
    }

    #[test]
    fn a_gateway_export_keeps_the_gateway_keys_and_has_no_layout_key() {
        let base = json!({
            "layout_version": 1, "sophon_version": "0.1.0", "gateway_schema_version": 3, "tier": "pro",
            "timestamp": "2026-01-02T03:00:00Z", "tenant_scope": "acme", "records": {"users": 4},
            "audit_range": {"since": null, "until": null},
        });
        let export: ExportInfo = serde_json::from_value(full_export()).unwrap();
        let m = ExportMetadata::from_base(base.clone(), export, "snapshot metadata.json").unwrap();
        assert_eq!(m.layout, None);
        assert_eq!(m.layout(), Layout::Gateway);
        let mut expected = base;
        expected["export"] = full_export();
        assert_eq!(m.to_bytes().unwrap(), serde_json::to_vec_pretty(&expected).unwrap());
        let back = ExportMetadata::parse(&m.to_bytes().unwrap(), "x").unwrap();
        assert_eq!(back, m);
        assert_eq!(back.other["records"]["users"], 4);
    }

    #[test]
    fn old_minimal_metadata_still_reads() {
        // As hand-made test archives and the earliest exports have it: only the versions and the id.
        let old = br#"{"layout_version": 1, "sophon_version": "0.1.0",
                       "export": {"format_version": 1, "id": "exp_0000000000000000"}}"#;
        let m = ExportMetadata::parse(old, "old.zip: metadata.json").unwrap();
        assert_eq!(m.layout(), Layout::Gateway);
        assert_eq!(m.export_id(), Some("exp_0000000000000000"));
        assert_eq!(m.snapshot_time(), None);
        assert!(!m.export.sealed);
    }

    #[test]
    fn an_incremental_reads_with_its_chain_fields() {
        let mut v = folder_metadata_as_written_before();
        v["export"]["incremental"] = json!({
            "follows": "exp_1", "base": "exp_0", "sequence": 2, "previous_snapshot": "cd".repeat(32),
            "deleted": ["a/b.txt"],
        });
        let m = ExportMetadata::from_value(v, "inc.zip").unwrap();
        assert_eq!(m.follows(), Some("exp_1"));
        let inc = m.export.incremental.as_ref().unwrap();
        assert_eq!((inc.base.as_str(), inc.sequence, inc.deleted.len()), ("exp_0", 2, 1));
    }

    #[test]
    fn hostile_or_newer_metadata_is_refused_with_the_reason() {
        let what = "x.zip: metadata.json";
        let err = |bytes: &[u8]| ExportMetadata::parse(bytes, what).unwrap_err();

        let big = vec![b' '; MAX_METADATA_BYTES as usize + 1];
        assert!(matches!(err(&big), Error::TooLarge { .. }), "oversize");
        assert!(matches!(err(b"[1, 2]"), Error::Malformed { .. }), "not an object");
        assert!(err(b"{}").to_string().contains("not a Sophon export"));
        assert!(matches!(err(b"{\"layout_version\": 1"), Error::Malformed { .. }), "truncated");

        let mut newer = folder_metadata_as_written_before();
        newer["export"]["format_version"] = json!(2);
        let e = ExportMetadata::from_value(newer, what).unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion { found: 2, .. }), "{e}");

        let mut layout = folder_metadata_as_written_before();
        layout["layout_version"] = json!(super::super::layout::FILES_LAYOUT_VERSION + 1);
        let e = ExportMetadata::from_value(layout, what).unwrap_err();
        assert!(e.to_string().contains("files layout_version"), "{e}");

        let mut unknown = folder_metadata_as_written_before();
        unknown["layout"] = json!("tapes");
        let e = ExportMetadata::from_value(unknown, what).unwrap_err();
        assert!(e.to_string().contains("unknown layout \"tapes\""), "{e}");

        let mut bad = folder_metadata_as_written_before();
        bad["export"]["incremental"] = json!({"follows": 7});
        assert!(matches!(ExportMetadata::from_value(bad, what).unwrap_err(), Error::Malformed { .. }));
    }
}
