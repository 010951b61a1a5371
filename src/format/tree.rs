//! Trees: one directory's entries, stored as a blob of type `tree`. JSON, sorted by name, so the
//! same directory always yields the same bytes (and so the same blob id, which dedups unchanged
//! directories between snapshots).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::BlobId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The entry's name when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The entry's raw name, hex-encoded, when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_hex: Option<String>,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Unix permission bits (and setuid/setgid/sticky), `st_mode & 0o7777`.
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Change time, inode and device: used only to decide whether a file changed since the parent
    /// snapshot, never restored.
    #[serde(default)]
    pub ctime_ns: i64,
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub device: u64,
    #[serde(default)]
    pub size: u64,
    /// Data blobs, in order, for files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<BlobId>,
    /// The tree blob, for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<BlobId>,
    /// The link target for symlinks (UTF-8), or its raw bytes hex-encoded in `target_hex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<String>,
}

impl Node {
    /// The entry's raw name bytes.
    pub fn name_bytes(&self) -> Result<Vec<u8>> {
        match (&self.name, &self.name_hex) {
            (Some(n), None) => Ok(n.as_bytes().to_vec()),
            (None, Some(h)) => hex::decode(h).map_err(|_| Error::malformed("tree node", "name_hex is not hex")),
            _ => Err(Error::malformed("tree node", "exactly one of name and name_hex must be set")),
        }
    }

    pub fn set_name(&mut self, raw: &[u8]) {
        match std::str::from_utf8(raw) {
            Ok(s) => {
                self.name = Some(s.to_string());
                self.name_hex = None;
            }
            Err(_) => {
                self.name = None;
                self.name_hex = Some(hex::encode(raw));
            }
        }
    }

    pub fn target_bytes(&self) -> Result<Vec<u8>> {
        match (&self.target, &self.target_hex) {
            (Some(t), None) => Ok(t.as_bytes().to_vec()),
            (None, Some(h)) => hex::decode(h).map_err(|_| Error::malformed("tree node", "target_hex is not hex")),
            _ => Err(Error::malformed("tree node", "a symlink needs exactly one of target and target_hex")),
        }
    }

    pub fn set_target(&mut self, raw: &[u8]) {
        match std::str::from_utf8(raw) {
            Ok(s) => self.target = Some(s.to_string()),
            Err(_) => self.target_hex = Some(hex::encode(raw)),
        }
    }

    /// A name restore can use as one path component: not empty, not `.` or `..`, no `/` or NUL.
    pub fn is_safe_name(raw: &[u8]) -> bool {
        !raw.is_empty() && raw != b"." && raw != b".." && !raw.contains(&b'/') && !raw.contains(&0)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid(format!("encoding a tree: {e}")))
    }

    /// Parse a tree and check what restore relies on: safe, unique, sorted names and the fields
    /// each kind of node needs.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let tree: Tree =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, format!("tree JSON: {e}")))?;
        let mut prev: Option<Vec<u8>> = None;
        for node in &tree.nodes {
            let name = node.name_bytes().map_err(|e| Error::malformed(what, e.to_string()))?;
            if !Node::is_safe_name(&name) {
                return Err(Error::malformed(what, format!("unsafe entry name {:?}", String::from_utf8_lossy(&name))));
            }
            if let Some(p) = &prev {
                if *p >= name {
                    return Err(Error::malformed(
                        what,
                        format!("entries not sorted or duplicated at {:?}", String::from_utf8_lossy(&name)),
                    ));
                }
            }
            match node.kind {
                NodeKind::Dir if node.subtree.is_none() => {
                    return Err(Error::malformed(what, "directory without subtree"))
                }
                NodeKind::Symlink => {
                    node.target_bytes().map_err(|e| Error::malformed(what, e.to_string()))?;
                }
                _ => {}
            }
            if node.kind != NodeKind::File && !node.content.is_empty() {
                return Err(Error::malformed(what, "content on a node that is not a file"));
            }
            prev = Some(name);
        }
        Ok(tree)
    }
}
