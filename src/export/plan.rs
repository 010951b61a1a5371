//! What an export holds, in archive order: the snapshot's tree under `backup/`, then the
//! generated `metadata.json`, `manifest.json` and `SHA256SUMS`. For an incremental export, only the files that
//! differ from the snapshot the previous export was made from (and the folders leading to them).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::id::{BlobId, SnapshotId};
use crate::repo::Repository;
use crate::source::SnapshotScope;

/// The folder every archive unpacks to.
pub const ROOT: &str = "backup";

/// The files every export generates beside the tree's (`format-spec/export.md` §1): a snapshot's
/// own copies are replaced, and a folder backup may not have a root of these names.
pub const METADATA: &str = "metadata.json";
pub const MANIFEST: &str = "manifest.json";
/// The checksums in the form GNU `sha256sum -c` reads, so the archive checks out without Sophon.
pub const SUMS: &str = "SHA256SUMS";
pub const GENERATED: [&str; 3] = [METADATA, MANIFEST, SUMS];

/// `SHA256SUMS`: one line per file, `<hex>  <path>`, as GNU sha256sum writes them (text mode),
/// sorted by path. A path holding `\`, a line feed or a carriage return is written escaped
/// (`\\`, `\n`, `\r`) with a `\` before the line, as sha256sum does.
pub fn sha256sums(files: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, sha) in sorted {
        if path.contains(['\\', '\n', '\r']) {
            let escaped = path.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r");
            out.push_str(&format!("\\{sha}  {escaped}\n"));
        } else {
            out.push_str(&format!("{sha}  {path}\n"));
        }
    }
    out.into_bytes()
}

/// The lines of a `SHA256SUMS` as (path, hex), or the number of the first line that is not one.
pub fn parse_sha256sums(text: &str) -> std::result::Result<Vec<(String, String)>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (sha, path) = line.split_once("  ").ok_or(i + 1)?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || path.is_empty() {
            return Err(i + 1);
        }
        let path = if escaped { unescape(path).ok_or(i + 1)? } else { path.to_string() };
        out.push((path, sha.to_ascii_lowercase()));
    }
    Ok(out)
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    Dir,
    File { size: u64, content: Vec<BlobId> },
    Symlink { target: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Path below `backup/`, slash-separated.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
}

/// The files of a snapshot (path below `backup/` → content), for comparing two snapshots.
pub type FileIndex = BTreeMap<String, (u64, Vec<BlobId>)>;

/// A gateway snapshot's files carry the product page's layout; any other snapshot is a folder
/// backup, whose roots sit under `backup/` by name.
pub fn is_gateway(snapshot: &Snapshot) -> bool {
    SnapshotScope::from_paths(&snapshot.paths).is_gateway()
}

/// Every entry of `snapshot`'s tree, depth first in name order (trees are sorted).
pub fn entries(repo: &Repository, snapshot: &Snapshot, id: &SnapshotId) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(repo, &snapshot.tree, "", &mut out, id)?;
    Ok(out)
}

fn walk(repo: &Repository, tree: &BlobId, prefix: &str, out: &mut Vec<Entry>, snap: &SnapshotId) -> Result<()> {
    let listing = repo.load_tree(tree).map_err(|e| {
        e.used_by(|| match prefix.strip_suffix('/') {
            Some(folder) => format!("folder {folder}"),
            None => "the snapshot's top folder".into(),
        })
    })?;
    for node in listing.nodes {
        let raw = node.name_bytes()?;
        let name = String::from_utf8(raw).map_err(|e| {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Error::invalid(format!(
                "snapshot {}: {prefix}{lossy}: the name is not UTF-8, which zip and PAX names must be; \
                 restore this snapshot with `backup restore --target` instead",
                snap.short()
            ))
        })?;
        let path = format!("{prefix}{name}");
        let (mode, mtime) = (node.mode, node.mtime_ns.div_euclid(1_000_000_000));
        match node.kind {
            NodeKind::Dir => {
                out.push(Entry { path: path.clone(), kind: EntryKind::Dir, mode, mtime });
                if let Some(sub) = node.subtree {
                    walk(repo, &sub, &format!("{path}/"), out, snap)?;
                }
            }
            NodeKind::File => {
                let kind = EntryKind::File { size: node.size, content: node.content };
                out.push(Entry { path, kind, mode, mtime });
            }
            NodeKind::Symlink => {
                let target = node.target_bytes()?;
                out.push(Entry { path, kind: EntryKind::Symlink { target }, mode, mtime });
            }
        }
    }
    Ok(())
}

pub fn file_index(entries: &[Entry]) -> FileIndex {
    entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { size, content } => Some((e.path.clone(), (*size, content.clone()))),
            _ => None,
        })
        .collect()
}

/// Keep only the files that are new or changed against `previous` (and the folders above them);
/// returns the paths `previous` had that are gone.
pub fn keep_changed(entries: &mut Vec<Entry>, previous: &FileIndex) -> Vec<String> {
    let current = file_index(entries);
    let deleted = previous.keys().filter(|p| !current.contains_key(*p)).cloned().collect();
    let changed: Vec<bool> = entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { size, content } => previous.get(&e.path) != Some(&(*size, content.clone())),
            EntryKind::Symlink { .. } => true,
            EntryKind::Dir => false,
        })
        .collect();
    let mut needed_dirs = std::collections::HashSet::new();
    for (e, keep) in entries.iter().zip(&changed) {
        if *keep {
            let mut p = e.path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                needed_dirs.insert(parent.to_string());
                p = parent;
            }
        }
    }
    let mut i = 0;
    entries.retain(|e| {
        let keep = changed[i] || (matches!(e.kind, EntryKind::Dir) && needed_dirs.contains(&e.path));
        i += 1;
        keep
    });
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_written_as_sha256sum_writes_them_and_read_back() {
        let a = "ab".repeat(32);
        let b = "0c".repeat(32);
        let files = vec![("z/x.txt".to_string(), a.clone()), ("a b\\c\nd".to_string(), b.clone())];
        let text = String::from_utf8(sha256sums(&files)).unwrap();
        assert_eq!(text, format!("\\{b}  a b\\\\c\\nd\n{a}  z/x.txt\n"));
        let mut back = parse_sha256sums(&text).unwrap();
        back.sort();
        let mut want = files.clone();
        want.sort();
        assert_eq!(back, want);
        assert_eq!(parse_sha256sums("nothex  x\n"), Err(1));
        assert_eq!(parse_sha256sums(&format!("{a}  ok\n{a} one-space\n")), Err(2));
    }
}
