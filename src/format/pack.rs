//! Pack files: sealed blobs back to back, then a sealed header that lists them, then the header's
//! length.
//!
//! ```text
//! "SOPHPACK" (8) | version u8 = 1 | blob* | sealed header | sealed header length u32 LE
//! header plaintext: version u8 = 1 | count u32 LE | entry{count}
//! entry (46 bytes): type u8 | compression u8 | blob id (32) | offset u32 | sealed length u32 | raw length u32
//! ```

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::format::Reader;
use crate::id::{BlobId, BlobType};

pub const MAGIC: &[u8; 8] = b"SOPHPACK";
pub const VERSION: u8 = 1;
pub const PREFIX_LEN: usize = 9;
pub const TRAILER_LEN: usize = 4;
pub const ENTRY_LEN: usize = 46;
/// Associated data of a pack header's seal.
pub const HEADER_AD: &[u8] = b"SOPHPACK-HEADER-1";
/// A header longer than this is refused before it is read (≈ 360k blobs).
pub const MAX_HEADER_LEN: u32 = 16 * 1024 * 1024;

/// Where one blob lives inside a pack, as the header and the index record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub blob_type: BlobType,
    pub compression: Compression,
    pub id: BlobId,
    pub offset: u32,
    pub sealed_len: u32,
    pub raw_len: u32,
}

impl PackEntry {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.blob_type.code());
        out.push(self.compression.code());
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.sealed_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>, what: &str) -> Result<Self> {
        let t = r.u8()?;
        let blob_type =
            BlobType::from_code(t).ok_or_else(|| Error::malformed(what, format!("unknown blob type {t}")))?;
        let c = r.u8()?;
        let compression =
            Compression::from_code(c).ok_or_else(|| Error::malformed(what, format!("unknown compression {c}")))?;
        let id = BlobId(r.id32()?);
        let offset = r.u32()?;
        let sealed_len = r.u32()?;
        let raw_len = r.u32()?;
        if (sealed_len as usize) < crate::crypto::SEAL_OVERHEAD {
            return Err(Error::malformed(what, format!("blob {id} is shorter than its seal")));
        }
        if raw_len as usize > crate::compress::MAX_BLOB_SIZE {
            return Err(Error::malformed(what, format!("blob {id} declares {raw_len} bytes, over the limit")));
        }
        Ok(PackEntry { blob_type, compression, id, offset, sealed_len, raw_len })
    }

    /// Associated data of this blob's seal: its type, compression, id and raw size.
    pub fn blob_ad(&self) -> [u8; 43] {
        blob_ad(self.blob_type, self.compression, &self.id, self.raw_len)
    }
}

pub fn blob_ad(blob_type: BlobType, compression: Compression, id: &BlobId, raw_len: u32) -> [u8; 43] {
    let mut ad = [0u8; 43];
    ad[..4].copy_from_slice(b"BLB1");
    ad[4] = blob_type.code();
    ad[5] = compression.code();
    ad[6..38].copy_from_slice(&id.0);
    ad[38..42].copy_from_slice(&raw_len.to_le_bytes());
    ad[42] = VERSION;
    ad
}

pub fn prefix() -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..8].copy_from_slice(MAGIC);
    p[8] = VERSION;
    p
}

pub fn check_prefix(bytes: &[u8], what: &str) -> Result<()> {
    if bytes.len() < PREFIX_LEN || &bytes[..8] != MAGIC {
        return Err(Error::malformed(what, "not a sophon pack (bad magic)"));
    }
    if bytes[8] != VERSION {
        return Err(Error::UnsupportedVersion { what: what.into(), found: bytes[8] as u32, supported: VERSION as u32 });
    }
    Ok(())
}

pub fn encode_header(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + entries.len() * ENTRY_LEN);
    out.push(VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        e.encode_into(&mut out);
    }
    out
}

/// Parse a header's plaintext and check every entry lies inside the blob area of a pack of
/// `pack_len` bytes whose sealed header is `header_len` bytes long, without overlaps.
pub fn decode_header(plain: &[u8], pack_len: u64, header_len: u32, what: &str) -> Result<Vec<PackEntry>> {
    let mut r = Reader::new(plain, what);
    let v = r.u8()?;
    if v != VERSION {
        return Err(Error::UnsupportedVersion { what: what.into(), found: v as u32, supported: VERSION as u32 });
    }
    let count = r.u32()? as usize;
    if count.checked_mul(ENTRY_LEN) != Some(r.remaining()) {
        return Err(Error::malformed(
            what,
            format!("header declares {count} entries but holds {} bytes", r.remaining()),
        ));
    }
    let blob_end = pack_len
        .checked_sub(TRAILER_LEN as u64 + header_len as u64)
        .ok_or_else(|| Error::malformed(what, "header longer than the pack"))?;
    let mut entries = Vec::with_capacity(count);
    let mut expected_offset = PREFIX_LEN as u64;
    for _ in 0..count {
        let e = PackEntry::decode(&mut r, what)?;
        if e.offset as u64 != expected_offset {
            return Err(Error::malformed(
                what,
                format!("blob {} at offset {}, expected {expected_offset}", e.id, e.offset),
            ));
        }
        expected_offset += e.sealed_len as u64;
        if expected_offset > blob_end {
            return Err(Error::malformed(what, format!("blob {} runs past the blob area", e.id)));
        }
        entries.push(e);
    }
    if expected_offset != blob_end {
        return Err(Error::malformed(what, "blob area and header do not add up to the pack's size"));
    }
    r.finish()?;
    Ok(entries)
}

/// Read the sealed header's length from a pack's last 4 bytes and check it fits.
pub fn decode_trailer(trailer: &[u8], pack_len: u64, what: &str) -> Result<u32> {
    if trailer.len() != TRAILER_LEN {
        return Err(Error::malformed(what, "trailer must be 4 bytes"));
    }
    let len = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if len > MAX_HEADER_LEN || (len as u64) + (TRAILER_LEN + PREFIX_LEN) as u64 > pack_len {
        return Err(Error::malformed(what, format!("header length {len} does not fit a pack of {pack_len} bytes")));
    }
    if (len as usize) < crate::crypto::SEAL_OVERHEAD + 5 {
        return Err(Error::malformed(what, "header too short"));
    }
    Ok(len)
}
