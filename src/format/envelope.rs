//! The envelope around every encrypted object that is not a pack: index segments, snapshots, locks,
//! prune records.
//!
//! ```text
//! magic "SOPHOBJ" (7) | version u8 = 1 | kind u8 | compression u8 | sealed payload (nonce, ciphertext, tag)
//! ```
//! The first 10 bytes are the associated data of the seal, so an index segment can never be opened
//! as a snapshot, and a changed compression flag fails authentication.

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 7] = b"SOPHOBJ";
pub const VERSION: u8 = 1;
pub const PREFIX_LEN: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Index = 1,
    Snapshot = 2,
    Lock = 3,
    PruneRecord = 4,
}

impl ObjectKind {
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(ObjectKind::Index),
            2 => Some(ObjectKind::Snapshot),
            3 => Some(ObjectKind::Lock),
            4 => Some(ObjectKind::PruneRecord),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Index => "index segment",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Lock => "lock",
            ObjectKind::PruneRecord => "prune record",
        }
    }
}

/// The prefix (also the AEAD's associated data) for an object of `kind`.
pub fn prefix(kind: ObjectKind, compressed: bool) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..7].copy_from_slice(MAGIC);
    p[7] = VERSION;
    p[8] = kind as u8;
    p[9] = compressed as u8;
    p
}

/// Split a stored object into (prefix, compressed flag, sealed payload), checking it is of `kind`.
pub fn parse(bytes: &[u8], kind: ObjectKind, what: &str) -> Result<([u8; PREFIX_LEN], bool, usize)> {
    if bytes.len() < PREFIX_LEN {
        return Err(Error::malformed(what, "shorter than the object prefix"));
    }
    if &bytes[..7] != MAGIC {
        return Err(Error::malformed(what, "not a sophon object (bad magic)"));
    }
    if bytes[7] != VERSION {
        return Err(Error::UnsupportedVersion { what: what.into(), found: bytes[7] as u32, supported: VERSION as u32 });
    }
    match ObjectKind::from_code(bytes[8]) {
        Some(k) if k == kind => {}
        Some(k) => return Err(Error::malformed(what, format!("is a {}, expected a {}", k.name(), kind.name()))),
        None => return Err(Error::malformed(what, format!("unknown object kind {}", bytes[8]))),
    }
    let compressed = match bytes[9] {
        0 => false,
        1 => true,
        c => return Err(Error::malformed(what, format!("unknown compression {c}"))),
    };
    let mut p = [0u8; PREFIX_LEN];
    p.copy_from_slice(&bytes[..PREFIX_LEN]);
    Ok((p, compressed, PREFIX_LEN))
}
