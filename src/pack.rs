//! Building and reading pack files (layout in `format::pack`).

use crate::backend::Backend;
use crate::compress::{self, Compression};
use crate::crypto::SealKey;
use crate::error::{Error, Result};
use crate::format::pack::{self as fmt, PackEntry};
use crate::id::{content_hash, BlobId, BlobType, PackId};

/// Where pack `id` is stored: `data/<first two hex digits>/<id>`.
pub fn pack_path(id: &PackId) -> String {
    let h = id.to_hex();
    format!("data/{}/{}", &h[..2], h)
}

/// A blob compressed (or kept raw) and ready to be sealed into a pack.
pub struct CompressedBlob {
    pub blob_type: BlobType,
    pub compression: Compression,
    pub id: BlobId,
    pub raw_len: u32,
    pub payload: Vec<u8>,
}

/// Compress one blob's plaintext (kept raw when that does not shrink it).
pub fn compress_blob(
    compressor: &mut compress::Compressor,
    blob_type: BlobType,
    id: BlobId,
    plaintext: Vec<u8>,
) -> Result<CompressedBlob> {
    let raw_len = u32::try_from(plaintext.len()).map_err(|_| Error::invalid("blob larger than 4 GiB"))?;
    let (compression, payload) = compressor.compress(plaintext);
    Ok(CompressedBlob { blob_type, compression, id, raw_len, payload })
}

/// Open, decompress and (optionally) re-hash one blob read from a pack.
pub fn open_blob(key: &SealKey, entry: &PackEntry, mut sealed: Vec<u8>, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
    key.open_in_place(&mut sealed, &entry.blob_ad(), what)?;
    compress::decompress(entry.compression, sealed, entry.raw_len as usize, what)
}

/// Accumulates sealed blobs into one pack in memory (a pack is bounded by the target size plus one
/// blob, so memory stays bounded).
pub struct PackBuilder {
    bytes: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    pub fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&fmt::prefix());
        PackBuilder { bytes, entries: Vec::new() }
    }

    pub fn with_capacity(cap: usize) -> Self {
        let mut b = PackBuilder { bytes: Vec::with_capacity(cap), entries: Vec::new() };
        b.bytes.extend_from_slice(&fmt::prefix());
        b
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seal `blob` straight into the pack (no intermediate copy); returns the sealed length.
    pub fn add(&mut self, key: &SealKey, blob: &CompressedBlob) -> Result<u32> {
        let offset = u32::try_from(self.bytes.len()).map_err(|_| Error::invalid("pack larger than 4 GiB"))?;
        let ad = fmt::blob_ad(blob.blob_type, blob.compression, &blob.id, blob.raw_len);
        key.seal_append(&blob.payload, &ad, &mut self.bytes)?;
        let sealed_len =
            u32::try_from(self.bytes.len() - offset as usize).map_err(|_| Error::invalid("blob larger than 4 GiB"))?;
        self.entries.push(PackEntry {
            blob_type: blob.blob_type,
            compression: blob.compression,
            id: blob.id,
            offset,
            sealed_len,
            raw_len: blob.raw_len,
        });
        Ok(sealed_len)
    }

    /// Append a blob sealed elsewhere (prune's repack): a blob's seal binds its id, type and
    /// lengths, not its pack or offset, so it moves between packs byte for byte.
    pub fn add_sealed(&mut self, entry: &PackEntry, sealed: &[u8]) -> Result<()> {
        let offset = u32::try_from(self.bytes.len()).map_err(|_| Error::invalid("pack larger than 4 GiB"))?;
        if sealed.len() != entry.sealed_len as usize {
            return Err(Error::invalid(format!("blob {}: sealed length does not match its entry", entry.id)));
        }
        self.bytes.extend_from_slice(sealed);
        self.entries.push(PackEntry { offset, ..*entry });
        Ok(())
    }

    /// Seal the header, append it and the trailer; returns the pack's id, bytes and entries.
    pub fn finish(mut self, key: &SealKey) -> Result<(PackId, Vec<u8>, Vec<PackEntry>)> {
        // Sealed straight onto the blobs, room made once: a pack of tiny blobs has a header of
        // megabytes, and a sealed copy appended after it doubled the pack's buffer.
        let plain = fmt::encode_header(&self.entries);
        self.bytes.reserve_exact(plain.len() + crate::crypto::SEAL_OVERHEAD + 4);
        let start = self.bytes.len();
        key.seal_append(&plain, fmt::HEADER_AD, &mut self.bytes)?;
        drop(plain);
        let header_len = (self.bytes.len() - start) as u32;
        self.bytes.extend_from_slice(&header_len.to_le_bytes());
        let id = PackId(content_hash(&self.bytes));
        Ok((id, self.bytes, self.entries))
    }
}

/// Parse a whole pack held in memory: check its name, prefix and header; return the entries.
pub fn parse_pack(key: &SealKey, id: Option<&PackId>, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    let what = match id {
        Some(id) => format!("pack {id}"),
        None => "pack".to_string(),
    };
    if let Some(id) = id {
        if content_hash(bytes) != id.0 {
            return Err(Error::HashMismatch { what, expected: id.to_hex() });
        }
    }
    fmt::check_prefix(bytes, &what)?;
    let len = bytes.len() as u64;
    if bytes.len() < fmt::PREFIX_LEN + fmt::TRAILER_LEN {
        return Err(Error::malformed(&what, "too short"));
    }
    let header_len = fmt::decode_trailer(&bytes[bytes.len() - fmt::TRAILER_LEN..], len, &what)?;
    let start = bytes.len() - fmt::TRAILER_LEN - header_len as usize;
    let plain =
        key.open(&bytes[start..bytes.len() - fmt::TRAILER_LEN], fmt::HEADER_AD, &|| format!("{what} header"))?;
    fmt::decode_header(&plain, len, header_len, &what)
}

/// Read just a pack's header from a backend (two range reads), for rebuilding the index.
pub fn read_pack_header(backend: &dyn Backend, key: &SealKey, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
    let what = format!("pack {id}");
    let path = pack_path(id);
    if size < (fmt::PREFIX_LEN + fmt::TRAILER_LEN) as u64 {
        return Err(Error::malformed(&what, "too short"));
    }
    let prefix = backend.read_range(&path, 0, fmt::PREFIX_LEN as u64)?;
    fmt::check_prefix(&prefix, &what)?;
    let trailer = backend.read_range(&path, size - fmt::TRAILER_LEN as u64, fmt::TRAILER_LEN as u64)?;
    let header_len = fmt::decode_trailer(&trailer, size, &what)?;
    let sealed = backend.read_range(&path, size - fmt::TRAILER_LEN as u64 - header_len as u64, header_len as u64)?;
    let plain = key.open(&sealed, fmt::HEADER_AD, &|| format!("{what} header"))?;
    fmt::decode_header(&plain, size, header_len, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip_and_tamper_detection() {
        let key = SealKey::new([3; 32]);
        let mut comp = compress::Compressor::new(3).unwrap();
        let mut b = PackBuilder::new();
        let blobs: Vec<Vec<u8>> = vec![b"alpha".repeat(100), vec![], b"gamma".to_vec()];
        for (i, data) in blobs.iter().enumerate() {
            let id = BlobId([i as u8; 32]);
            b.add(&key, &compress_blob(&mut comp, BlobType::Data, id, data.clone()).unwrap()).unwrap();
        }
        let (id, bytes, entries) = b.finish(&key).unwrap();
        let parsed = parse_pack(&key, Some(&id), &bytes).unwrap();
        assert_eq!(parsed, entries);
        for (e, data) in parsed.iter().zip(&blobs) {
            let sealed = bytes[e.offset as usize..(e.offset + e.sealed_len) as usize].to_vec();
            assert_eq!(&open_blob(&key, e, sealed, &|| "b".into()).unwrap(), data);
        }
        let mut bad = bytes.clone();
        bad[20] ^= 0x40;
        assert!(matches!(parse_pack(&key, Some(&id), &bad), Err(Error::HashMismatch { .. })));
        let e = parsed[0];
        let mut sealed = bad[e.offset as usize..(e.offset + e.sealed_len) as usize].to_vec();
        sealed[15] ^= 1;
        assert!(open_blob(&key, &e, sealed, &|| "b".into()).is_err());
    }
}
