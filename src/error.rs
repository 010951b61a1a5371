//! The library's error type. Every variant names the object, file or setting that caused it, so an
//! operator can act on the message alone.

use std::path::PathBuf;

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

    #[error("index cache {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    Invalid(String),

    #[error("repository {repo} is locked: {detail}")]
    Locked { repo: String, detail: String },

    /// An operation was handed a session whose lock is weaker than the one it needs.
    #[error("repository {repo}: {operation} needs a {needed} lock, the session holds a {held} one")]
    WrongSession { repo: String, operation: String, needed: &'static str, held: &'static str },

    #[error("restore refused: {0}")]
    UnsafePath(String),
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

    /// True when the error says stored data is damaged or was tampered with (as opposed to a setup
    /// or I/O problem): `verify` counts these as damage.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. }
                | Error::Authentication { .. }
                | Error::HashMismatch { .. }
                | Error::TooLarge { .. }
        )
    }
}
