//! The library's error type. Every variant names the object, file or setting that caused it, so an
//! operator can act on the message alone.

use std::path::PathBuf;

use crate::id::{BlobId, IndexId, PackId, SnapshotId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),

    #[error("{what}: malformed: {reason}")]
    Malformed { what: String, reason: String },

    #[error("{what}: format version {found} is not supported (this build reads version {supported}); upgrade sophon")]
    UnsupportedVersion { what: String, found: u32, supported: u32 },

    #[error("{what}: authentication failed (the data was modified, damaged, or sealed with another key)")]
    Authentication { what: String },

    /// No key file tried opens with the passphrase. `not_tried` counts the key files an open did not
    /// try because it tries at most `format::config::MAX_KEYS_TRIED` (the key hint names one).
    /// `unmatched_hint` is a key hint that named no key file (the others were tried all the same).
    #[error("wrong passphrase: no key file of repository {repo} opens with it{}", untried_note(*.not_tried, .unmatched_hint.as_deref()))]
    WrongPassphrase { repo: String, not_tried: usize, unmatched_hint: Option<String> },

    #[error("{what}: content does not match its id {expected} (damaged data)")]
    HashMismatch { what: String, expected: String },

    #[error("{what}: decompressed size exceeds the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("index cache {}: {source}{}", .path.display(), sqlite_hint(.source))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{0}")]
    NotFound(String),

    /// A pack the index lists cannot give the bytes of a blob: it is missing from the repository,
    /// or shorter than its index entries say. The message names the pack by its path, the blob and
    /// the file that needed it, and what to do.
    #[error("{0}")]
    PackUnreadable(Box<UnreadablePack>),

    /// A blob a snapshot uses is in no index segment the cache holds. The message names the blob,
    /// the file or folder that uses it, the segment that listed it when the cache remembers one,
    /// and what to do.
    #[error("{0}")]
    BlobNotIndexed(Box<NotIndexed>),

    #[error("{0}")]
    Invalid(String),

    #[error("repository {repo} is locked: {detail}")]
    Locked { repo: String, detail: String },

    /// An operation was handed a session whose lock is weaker than the one it needs.
    #[error("repository {repo}: {operation} needs a {needed} lock, the session holds a {held} one")]
    WrongSession { repo: String, operation: String, needed: &'static str, held: &'static str },

    #[error("restore refused: {0}")]
    UnsafePath(String),

    /// The caller stopped the work part-way (`archive::Progress::cancel`). What it had begun was
    /// removed first: a backup leaves no snapshot and none of its unindexed packs, an export no
    /// archive and no temporary file.
    #[error("cancelled: the work was stopped before it finished and what it had begun was removed")]
    Cancelled,

    /// `latest` was asked for while some snapshot cannot be read. An unreadable snapshot's time is
    /// unknown, so any of them may be the newest: picking the newest readable one instead would
    /// restore older data than the operator asked for without a word.
    #[error(
        "repository {repo}: `latest` is refused because {}; an unreadable snapshot's time is unknown, so it may be the newest. \
         To use the newest snapshot that can be read, ask for `latest-readable` in place of `latest` \
         (`sophon backup restore --snapshot latest-readable`, `sophon backup export latest-readable`)",
        unreadable_list(.unreadable)
    )]
    LatestUnreadable { repo: String, unreadable: Vec<(SnapshotId, String)> },

    /// A restore into a folder stopped part-way. Files it had started are removed (or, when that
    /// failed too, left under their `.partial` temporary names), so every file under its own name is
    /// complete; `missing` says which files are not there.
    #[error("{}", incomplete_text(.snapshot, .target, .missing, .source))]
    RestoreIncomplete {
        snapshot: SnapshotId,
        target: PathBuf,
        missing: Box<Unrestored>,
        #[source]
        source: Box<Error>,
    },
}

/// The files a failed restore did not restore. Entries it had not reached yet are not listed.
#[derive(Debug, Default)]
pub struct Unrestored {
    /// Files whose own data or write failed.
    pub failed: Vec<PathBuf>,
    /// Every file known not to be restored: the failed ones, those written beside them (removed
    /// as unfinished) and those waiting for their turn (never created).
    pub not_restored: Vec<PathBuf>,
    /// Unfinished files that could not be removed either, under their temporary names.
    pub left_partial: Vec<PathBuf>,
}

/// What is wrong with a pack that cannot give a blob's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackProblem {
    /// Not in the repository, though an index segment lists it.
    Missing,
    /// It holds `size` bytes; the blob read ends at byte `needed`.
    Short { size: u64, needed: u64 },
}

/// A pack that cannot give a blob's bytes ([`Error::PackUnreadable`]).
#[derive(Clone, Debug)]
pub struct UnreadablePack {
    pub pack: PackId,
    /// Its path in the repository: `data/ab/abcd…`.
    pub path: String,
    /// The repository's location.
    pub repo: String,
    pub problem: PackProblem,
    /// The blob that was read, when one blob was.
    pub blob: Option<BlobId>,
    /// The file or folder of the snapshot that needed it, when known (`file a/b.txt`).
    pub used_by: Option<String>,
}

impl std::fmt::Display for UnreadablePack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let blob = match (&self.blob, &self.used_by) {
            (Some(b), Some(u)) => format!("blob {b} of {u}"),
            (Some(b), None) => format!("blob {b}"),
            (None, Some(u)) => format!("the data of {u}"),
            (None, None) => "the data read".to_string(),
        };
        match self.problem {
            PackProblem::Missing => write!(
                f,
                "pack {} is missing from {}, though the index lists it ({blob} is in it)",
                self.path, self.repo
            )?,
            PackProblem::Short { size, needed } => write!(
                f,
                "pack {} in {} is cut short: expected at least {needed} bytes ({blob} ends there), found {size}",
                self.path, self.repo
            )?,
        }
        write!(
            f,
            ". Run `sophon backup verify --read-data` to list the damage; then copy the pack back from a copy \
             of the repository, or run `sophon repo repair-index` to drop it from the index (the next backup \
             stores its data again)"
        )
    }
}

/// A blob no index segment in the cache lists ([`Error::BlobNotIndexed`]).
#[derive(Clone, Debug)]
pub struct NotIndexed {
    pub blob: BlobId,
    /// The repository's location.
    pub repo: String,
    /// The file or folder of the snapshot that uses it, when known (`folder a/b`).
    pub used_by: Option<String>,
    /// How many index segments the cache holds.
    pub segments: u64,
    /// The segment that listed the blob before it vanished from the repository, when the cache
    /// remembers it.
    pub listed_by: Option<IndexId>,
    /// How many segments the cache held that vanished from the repository (none superseding them).
    pub vanished: u64,
    /// Segments the last index sync could not read (damaged), which may list it.
    pub damaged: Vec<IndexId>,
}

impl std::fmt::Display for NotIndexed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let folder = format!("{}/index/", self.repo.trim_end_matches('/'));
        write!(f, "blob {}", self.blob)?;
        if let Some(u) = &self.used_by {
            write!(f, " of {u}")?;
        }
        write!(f, " is not in the index of {}: ", self.repo)?;
        match (&self.listed_by, self.damaged.as_slice()) {
            (Some(seg), damaged) if damaged.contains(seg) => {
                write!(f, "index segment {seg} in {folder} listed it, but it cannot be read now (damaged)")?
            }
            (Some(seg), _) => {
                write!(f, "index segment {seg} listed it, but that segment is gone from {folder}")?;
                if self.vanished > 1 {
                    write!(f, " ({} segments this computer's index cache held are gone)", self.vanished)?;
                }
            }
            (None, [one]) => write!(f, "index segment {one} in {folder} cannot be read (damaged) and may list it")?,
            (None, [_, ..]) => write!(
                f,
                "index segments {} in {folder} cannot be read (damaged) and may list it",
                self.damaged.iter().map(|s| s.to_hex()).collect::<Vec<_>>().join(", ")
            )?,
            (None, []) if self.vanished > 0 => write!(
                f,
                "{} index segment(s) this computer's index cache held are gone from {folder} and may have listed it",
                self.vanished
            )?,
            (None, []) => write!(
                f,
                "none of the {} index segment(s) in {folder} lists it; a segment may be missing or damaged",
                self.segments
            )?,
        }
        write!(
            f,
            ". Run `sophon repo repair-index` to rebuild the index from the packs; a blob still missing after \
             that is in no pack (`sophon backup verify` names the snapshots that use it)"
        )
    }
}

/// What to do about a cache whose disk is full: the words SQLite uses ("database or disk is
/// full") do not say that the cache can live elsewhere, or that deleting it loses nothing.
fn sqlite_hint(source: &rusqlite::Error) -> &'static str {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => {
            ": no space left on the disk that holds the index cache. Free space there, or set SOPHON_CACHE_DIR \
             to a folder on a disk with room (the cache is rebuilt from the repository; deleting it loses nothing)"
        }
        _ => "",
    }
}

fn unreadable_list(unreadable: &[(SnapshotId, String)]) -> String {
    let each: Vec<String> =
        unreadable.iter().map(|(id, why)| format!("snapshot {id} cannot be read ({why})")).collect();
    each.join(", ")
}

/// How many paths an error message spells out; the error value holds them all.
const PATHS_SHOWN: usize = 10;

/// Paths relative to `base` (the message names it once), the first [`PATHS_SHOWN`] of them.
fn path_list<'a>(base: &std::path::Path, paths: impl ExactSizeIterator<Item = &'a PathBuf>) -> String {
    let total = paths.len();
    let mut text: Vec<String> =
        paths.take(PATHS_SHOWN).map(|p| p.strip_prefix(base).unwrap_or(p).display().to_string()).collect();
    if total > PATHS_SHOWN {
        text.push(format!("and {} more", total - PATHS_SHOWN));
    }
    text.join(", ")
}

fn incomplete_text(snapshot: &SnapshotId, target: &std::path::Path, missing: &Unrestored, source: &Error) -> String {
    let Unrestored { failed, not_restored, left_partial } = missing;
    // A cause that ends a sentence of its own is not given a second full stop.
    let cause = source.to_string();
    let mut text = format!(
        "restore of snapshot {} into {} did not finish: {}.",
        snapshot.short(),
        target.display(),
        cause.trim_end_matches('.')
    );
    if !failed.is_empty() {
        text.push_str(&format!(" Not restored: {}.", path_list(target, failed.iter())));
    }
    let others: Vec<&PathBuf> = not_restored.iter().filter(|p| !failed.contains(p)).collect();
    if !others.is_empty() {
        text.push_str(&format!(
            " Also not restored, as the restore stopped while writing them: {}.",
            path_list(target, others.into_iter())
        ));
    }
    text.push_str(if not_restored.is_empty() {
        " Entries not reached yet were not restored."
    } else {
        " Entries after them in the snapshot were not reached."
    });
    if left_partial.is_empty() {
        text.push_str(" No unfinished file was left: every file there is complete.");
    } else {
        text.push_str(&format!(
            " These unfinished files could not be removed; delete them: {}.",
            path_list(target, left_partial.iter())
        ));
    }
    text
}

/// What `WrongPassphrase` and the damaged-keys error add when key files were left untried, or the
/// key hint named none.
pub(crate) fn untried_note(not_tried: usize, unmatched_hint: Option<&str>) -> String {
    let mut note = String::new();
    if let Some(h) = unmatched_hint {
        note.push_str(&format!("; the key hint {h:?} names no key file"));
    }
    if not_tried > 0 {
        note.push_str(&format!(
            "; {not_tried} more key file{} not tried (a reader tries at most {}): name yours with \
             --key-hint or SOPHON_KEY_HINT (the first hex digits of its id, its name under keys/)",
            if not_tried == 1 { " was" } else { "s were" },
            crate::format::config::MAX_KEYS_TRIED
        ));
    }
    note
}

impl Error {
    pub fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Malformed { what: what.into(), reason: reason.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Name the file or folder of a snapshot that needed the blob or pack this error is about
    /// (`file a/b.txt`, `folder a`), unless it names one already. Other errors are kept as they are.
    pub fn used_by(mut self, what: impl FnOnce() -> String) -> Self {
        match &mut self {
            Error::PackUnreadable(p) if p.used_by.is_none() => p.used_by = Some(what()),
            Error::BlobNotIndexed(n) if n.used_by.is_none() => n.used_by = Some(what()),
            _ => {}
        }
        self
    }

    /// True when the error says stored data is damaged or was tampered with (as opposed to a setup
    /// or I/O problem): `verify` counts these as damage.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. }
                | Error::Authentication { .. }
                | Error::HashMismatch { .. }
                | Error::TooLarge { .. }
                | Error::PackUnreadable(_)
                | Error::BlobNotIndexed(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_restore_names_the_failed_files_first_relative_to_the_target() {
        let target = PathBuf::from("/restore");
        let missing = Unrestored {
            failed: vec![target.join("z/secret.bin")],
            not_restored: (0..12)
                .map(|i| target.join(format!("a/f{i}")))
                .chain([target.join("z/secret.bin")])
                .collect(),
            left_partial: Vec::new(),
        };
        let e = Error::RestoreIncomplete {
            snapshot: SnapshotId([7; 32]),
            target,
            missing: Box::new(missing),
            source: Box::new(Error::invalid("damaged")),
        };
        let text = e.to_string();
        assert!(text.contains("did not finish: damaged. Not restored: z/secret.bin. Also not restored"), "{text}");
        assert!(text.contains("a/f9, and 2 more."), "{text}");
        assert!(text.ends_with("every file there is complete."), "{text}");
    }
}
