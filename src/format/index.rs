//! Index segments: which blobs live in which packs. The plaintext (before compression and sealing):
//!
//! ```text
//! version u8 (1 or 2) | superseded count u32 | superseded index id (32){count}
//!                      | pack count u32 | pack{count}
//!                      | (version 2 only) condemned count u32 | pack{count}
//! pack: pack id (32) | entry count u32 | entry (46 bytes, as in a pack header){count}
//! ```
//! `superseded` lists segments this one replaces (written by prune and repair-index), so a reader
//! that sees both ignores the old ones and a crash between writing the new segment and deleting the
//! old ones loses nothing. `condemned` (written by prune) lists packs a prune means to delete once
//! the clients that may still use them have finished: their blobs stay readable, so no snapshot
//! written meanwhile points at a blob no segment lists, but a backup never deduplicates against
//! them (format-spec/prune.md). A segment without condemned packs is written as version 1.

use crate::error::{Error, Result};
use crate::format::pack::{PackEntry, ENTRY_LEN};
use crate::format::Reader;
use crate::id::{IndexId, PackId};

/// The version written when a segment lists condemned packs; one without them is written as
/// [`VERSION_PLAIN`], byte for byte what earlier writers wrote.
pub const VERSION: u8 = 2;
pub const VERSION_PLAIN: u8 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexSegment {
    pub superseded: Vec<IndexId>,
    pub packs: Vec<IndexedPack>,
    /// Packs a prune condemned: readable, never deduplicated against.
    pub condemned: Vec<IndexedPack>,
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
        let mut enc = SegmentEncoder::default();
        for p in &self.packs {
            enc.push(p, false);
        }
        for p in &self.condemned {
            enc.push(p, true);
        }
        enc.finish(&self.superseded)
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(bytes, what);
        let v = r.u8()?;
        if v != VERSION && v != VERSION_PLAIN {
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
        let packs = decode_packs(&mut r, what, "pack")?;
        let condemned = if v == VERSION { decode_packs(&mut r, what, "condemned pack")? } else { Vec::new() };
        // Writers write version 1 when nothing is condemned: one encoding for every segment.
        if v == VERSION && condemned.is_empty() {
            return Err(Error::malformed(what, "version 2 with an empty condemned list (that segment is version 1)"));
        }
        r.finish()?;
        Ok(IndexSegment { superseded, packs, condemned })
    }
}

/// A segment encoded a pack at a time, so that its writer holds each pack's entries only until
/// they are encoded: a prune's segment of 2^18 entries is 12 MiB encoded and as much again
/// decoded, and the next pack waits decoded beside it.
#[derive(Debug, Default)]
pub struct SegmentEncoder {
    /// The pack list as encoded (each pack's id, count and entries); `finish` puts the header
    /// in front of it.
    packs: Vec<u8>,
    pack_count: u32,
    condemned: Vec<u8>,
    condemned_count: u32,
    entries: usize,
}

impl SegmentEncoder {
    /// Add a pack to the pack list, or to the condemned list.
    pub fn push(&mut self, pack: &IndexedPack, condemned: bool) {
        let (out, count) = match condemned {
            false => (&mut self.packs, &mut self.pack_count),
            true => (&mut self.condemned, &mut self.condemned_count),
        };
        out.reserve(36 + pack.entries.len() * ENTRY_LEN);
        out.extend_from_slice(&pack.id.0);
        out.extend_from_slice(&(pack.entries.len() as u32).to_le_bytes());
        for e in &pack.entries {
            e.encode_into(out);
        }
        *count += 1;
        self.entries += pack.entries.len();
    }

    /// Packs in both lists.
    pub fn packs(&self) -> usize {
        (self.pack_count + self.condemned_count) as usize
    }

    /// Entries of every pack in both lists.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The segment's plaintext, superseding `superseded`; the pack list's bytes are reused, so
    /// the segment is never held twice.
    pub fn finish(self, superseded: &[IndexId]) -> Vec<u8> {
        let mut head = Vec::with_capacity(9 + superseded.len() * 32);
        head.push(if self.condemned_count == 0 { VERSION_PLAIN } else { VERSION });
        head.extend_from_slice(&(superseded.len() as u32).to_le_bytes());
        for s in superseded {
            head.extend_from_slice(&s.0);
        }
        head.extend_from_slice(&self.pack_count.to_le_bytes());
        let mut out = self.packs;
        out.reserve_exact(head.len() + if self.condemned_count == 0 { 0 } else { 4 + self.condemned.len() });
        out.splice(0..0, head);
        if self.condemned_count > 0 {
            out.extend_from_slice(&self.condemned_count.to_le_bytes());
            out.extend_from_slice(&self.condemned);
        }
        out
    }
}

fn decode_packs(r: &mut Reader<'_>, what: &str, list: &str) -> Result<Vec<IndexedPack>> {
    let n_packs = r.u32()? as usize;
    if n_packs.saturating_mul(36) > r.remaining() {
        return Err(Error::malformed(what, format!("{list} list longer than the segment")));
    }
    let mut packs = Vec::with_capacity(n_packs);
    for _ in 0..n_packs {
        let id = PackId(r.id32()?);
        let n = r.u32()? as usize;
        if n.saturating_mul(ENTRY_LEN) > r.remaining() {
            return Err(Error::malformed(what, format!("{list} {id} lists more entries than the segment holds")));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(PackEntry::decode(r, what)?);
        }
        packs.push(IndexedPack { id, entries });
    }
    Ok(packs)
}
