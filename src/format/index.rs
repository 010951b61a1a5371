//! Index segments: which blobs live in which packs. The plaintext (before compression and sealing):
//!
//! ```text
//! version u8 = 1 | superseded count u32 | superseded index id (32){count}
//!                | pack count u32 | pack{count}
//! pack: pack id (32) | entry count u32 | entry (46 bytes, as in a pack header){count}
//! ```
//! `superseded` lists segments this one replaces (written by prune and repair-index), so a reader
//! that sees both ignores the old ones and a crash between writing the new segment and deleting the
//! old ones loses nothing.

use crate::error::{Error, Result};
use crate::format::pack::{PackEntry, ENTRY_LEN};
use crate::format::Reader;
use crate::id::{IndexId, PackId};

pub const VERSION: u8 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexSegment {
    pub superseded: Vec<IndexId>,
    pub packs: Vec<IndexedPack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedPack {
    pub id: PackId,
    pub entries: Vec<PackEntry>,
}

impl IndexedPack {
    /// The pack file's size implied by its entries is unknown (the header's sealed length is not
    /// recorded), so only the blob area is derived here.
    pub fn blob_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.sealed_len as u64).sum()
    }
}

impl IndexSegment {
    pub fn encode(&self) -> Vec<u8> {
        let entries: usize = self.packs.iter().map(|p| p.entries.len()).sum();
        let mut out = Vec::with_capacity(9 + self.superseded.len() * 32 + self.packs.len() * 36 + entries * ENTRY_LEN);
        out.push(VERSION);
        out.extend_from_slice(&(self.superseded.len() as u32).to_le_bytes());
        for s in &self.superseded {
            out.extend_from_slice(&s.0);
        }
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            out.extend_from_slice(&p.id.0);
            out.extend_from_slice(&(p.entries.len() as u32).to_le_bytes());
            for e in &p.entries {
                e.encode_into(&mut out);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(bytes, what);
        let v = r.u8()?;
        if v != VERSION {
            return Err(Error::UnsupportedVersion { what: what.into(), found: v as u32, supported: VERSION as u32 });
        }
        let n_sup = r.u32()? as usize;
        if n_sup.saturating_mul(32) > r.remaining() {
            return Err(Error::malformed(what, "superseded list longer than the segment"));
        }
        let mut superseded = Vec::with_capacity(n_sup);
        for _ in 0..n_sup {
            superseded.push(IndexId(r.id32()?));
        }
        let n_packs = r.u32()? as usize;
        if n_packs.saturating_mul(36) > r.remaining() {
            return Err(Error::malformed(what, "pack list longer than the segment"));
        }
        let mut packs = Vec::with_capacity(n_packs);
        for _ in 0..n_packs {
            let id = PackId(r.id32()?);
            let n = r.u32()? as usize;
            if n.saturating_mul(ENTRY_LEN) > r.remaining() {
                return Err(Error::malformed(what, format!("pack {id} lists more entries than the segment holds")));
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(PackEntry::decode(&mut r, what)?);
            }
            packs.push(IndexedPack { id, entries });
        }
        r.finish()?;
        Ok(IndexSegment { superseded, packs })
    }
}
