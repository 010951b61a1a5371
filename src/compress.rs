//! zstd compression of blobs. A blob that does not shrink is stored raw, and decompression is
//! bounded by the size the (authenticated) pack header declares, so a hostile blob cannot be a
//! decompression bomb.

use crate::error::{Error, Result};

/// How a blob's payload is stored. The code is part of the pack header and of the blob's AEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

impl Compression {
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// The largest blob this build writes or reads (uncompressed). Chunks are at most 16 MiB (FastCDC's
/// ceiling); trees are capped at this size too (format-spec/repository.md, "Trees").
pub const MAX_BLOB_SIZE: usize = 64 * 1024 * 1024;

/// The most bytes zstd can produce from `len` input bytes.
pub fn compress_bound(len: usize) -> usize {
    zstd::zstd_safe::compress_bound(len)
}

/// Blobs smaller than this (in practice whole files below the chunker's smallest cut: source
/// code, documents, records) are compressed at [`SMALL_BLOB_LEVEL`] at least.
pub const SMALL_BLOB_BYTES: usize = 256 * 1024;

/// The least zstd level of a blob smaller than [`SMALL_BLOB_BYTES`] when compression is on. At
/// the default level 2, crate source trees backed up release after release took 1.6-4% more
/// than restic's repository; at 3, 1-1.6% less (format-spec/chunking.md §3.6). Large chunks,
/// where the bytes and so the time are, keep the repository's level.
pub const SMALL_BLOB_LEVEL: i32 = 3;

/// A reusable zstd context: one per worker thread avoids re-allocating zstd's tables per blob.
pub struct Compressor {
    level: i32,
    ctx: Option<zstd::bulk::Compressor<'static>>,
    /// For blobs under [`SMALL_BLOB_BYTES`], when `level` is below [`SMALL_BLOB_LEVEL`].
    small: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    /// `level` 0 disables compression; 1..=22 are zstd levels (blobs under [`SMALL_BLOB_BYTES`]
    /// at [`SMALL_BLOB_LEVEL`] at least).
    pub fn new(level: i32) -> Result<Self> {
        if !(0..=22).contains(&level) {
            return Err(Error::invalid(format!("compression level {level} is out of range 0..=22")));
        }
        let context =
            |level| zstd::bulk::Compressor::new(level).map_err(|e| Error::invalid(format!("zstd level {level}: {e}")));
        let ctx = if level == 0 { None } else { Some(context(level)?) };
        let small = if level == 0 || level >= SMALL_BLOB_LEVEL { None } else { Some(context(SMALL_BLOB_LEVEL)?) };
        Ok(Compressor { level, ctx, small })
    }

    pub fn level(&self) -> i32 {
        self.level
    }

    /// Compress `data`, or hand it back raw when compression would not shrink it.
    pub fn compress(&mut self, data: Vec<u8>) -> (Compression, Vec<u8>) {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        match self.compress_into(&data, &mut out) {
            Compression::Zstd => (Compression::Zstd, out),
            Compression::None => (Compression::None, data),
        }
    }

    /// Compress `data` into `out` (cleared first; no allocation when `out` has room for
    /// [`compress_bound`]). Returns `None` when the result would not be smaller, and then `out`
    /// holds nothing useful.
    pub fn compress_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> Compression {
        out.clear();
        let ctx = match (&mut self.small, &mut self.ctx) {
            (Some(small), _) if data.len() < SMALL_BLOB_BYTES => small,
            (_, Some(ctx)) => ctx,
            (_, None) => return Compression::None,
        };
        match ctx.compress_to_buffer(data, out) {
            Ok(n) if n < data.len() => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

thread_local! {
    /// One zstd context per thread, kept: creating one cost more than decompressing a small blob
    /// (a restore of 200,000 small files spent a sixth of its time in `ZSTD_createDCtx`). A blob
    /// that fails to decompress leaves nothing behind that matters: each frame starts afresh.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Undo [`Compressor::compress`]. `raw_len` is the size the header declares; anything else is damage.
pub fn decompress(
    compression: Compression,
    payload: Vec<u8>,
    raw_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    if raw_len > MAX_BLOB_SIZE {
        return Err(Error::TooLarge { what: what(), limit: MAX_BLOB_SIZE as u64 });
    }
    let out = match compression {
        Compression::None => payload,
        Compression::Zstd => DECOMPRESSOR
            .with(|cell| -> std::io::Result<Vec<u8>> {
                let mut slot = cell.borrow_mut();
                let ctx = match slot.as_mut() {
                    Some(ctx) => ctx,
                    None => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                ctx.decompress(&payload, raw_len)
            })
            .map_err(|e| Error::malformed(what(), format!("zstd: {e}")))?,
    };
    if out.len() != raw_len {
        return Err(Error::malformed(
            what(),
            format!("{} bytes after decompression, header says {raw_len}", out.len()),
        ));
    }
    Ok(out)
}

/// Compress a whole small object (snapshot, index segment) at a fixed level.
pub fn compress_object(data: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(data, 3).map_err(|e| Error::invalid(format!("zstd: {e}")))
}

/// Decompress a small object, refusing more than `limit` bytes of output.
pub fn decompress_object(data: &[u8], limit: usize, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut dec = zstd::stream::read::Decoder::new(data).map_err(|e| Error::malformed(what(), format!("zstd: {e}")))?;
    // Sized from the frame's declared content size when it has one (ours do): grown by doubling,
    // a 12 MiB index segment briefly took twice that, in each of the threads reading segments.
    // The declaration is only a hint: the limit still holds whatever it says.
    let declared = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n.min(limit as u64) as usize));
    (&mut dec)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(what(), format!("zstd: {e}")))?;
    if out.len() > limit {
        return Err(Error::TooLarge { what: what(), limit: limit as u64 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_is_stored_raw_and_text_is_compressed() {
        let mut c = Compressor::new(3).unwrap();
        let random: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let (kind, out) = c.compress(random.clone());
        if kind == Compression::None {
            assert_eq!(out, random);
        }
        let text = b"the same words again and again ".repeat(200);
        let (kind, out) = c.compress(text.clone());
        assert_eq!(kind, Compression::Zstd);
        assert!(out.len() < text.len() / 4);
        assert_eq!(decompress(kind, out, text.len(), &|| "t".into()).unwrap(), text);
    }

    #[test]
    fn small_blobs_take_the_small_blob_level_and_large_ones_the_repositorys() {
        // Text like source code, varied enough that levels 2 and 3 differ on it.
        let text = |n: usize| -> Vec<u8> {
            (0..)
                .map(|i: u64| format!("fn item_{}(x: u32) -> u32 {{ x * {} + {} }}\n", i % 977, i % 13, i * 7 % 31))
                .flat_map(String::into_bytes)
                .take(n)
                .collect()
        };
        let at = |level, data: &[u8]| zstd::bulk::compress(data, level).unwrap();
        let (small, large) = (text(SMALL_BLOB_BYTES - 1), text(SMALL_BLOB_BYTES));
        assert_ne!(at(2, &small), at(SMALL_BLOB_LEVEL, &small), "the levels differ on this text");
        let mut c = Compressor::new(2).unwrap();
        assert_eq!(c.compress(small.clone()).1, at(SMALL_BLOB_LEVEL, &small));
        assert_eq!(c.compress(large.clone()).1, at(2, &large));
        // A level above it, and no compression, are kept for every size.
        assert_eq!(Compressor::new(5).unwrap().compress(small.clone()).1, at(5, &small));
        assert_eq!(Compressor::new(0).unwrap().compress(small.clone()), (Compression::None, small));
    }

    #[test]
    fn an_object_declares_its_size_so_its_reader_allocates_it_once() {
        let data = b"index entries ".repeat(100_000);
        let obj = compress_object(&data).unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&obj).ok().flatten(), Some(data.len() as u64));
        let out = decompress_object(&obj, 256 << 20, &|| "t".into()).unwrap();
        assert_eq!(out, data);
        assert_eq!(out.capacity(), data.len(), "sized once, not grown by doubling");
        // A declaration past the limit does not reserve past it, and the object is still refused.
        assert!(matches!(decompress_object(&obj, 1000, &|| "t".into()), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn declared_size_mismatch_and_bombs_are_refused() {
        let mut c = Compressor::new(3).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let (kind, out) = c.compress(zeros);
        assert!(decompress(kind, out.clone(), 1000, &|| "t".into()).is_err());
        assert!(matches!(decompress(kind, out, MAX_BLOB_SIZE + 1, &|| "t".into()), Err(Error::TooLarge { .. })));
        let obj = compress_object(&vec![0u8; 10 << 20]).unwrap();
        assert!(matches!(decompress_object(&obj, 1 << 20, &|| "t".into()), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn the_kept_context_decompresses_each_blob_afresh_after_damage() {
        let mut c = Compressor::new(3).unwrap();
        let a = b"first blob, first blob, first blob ".repeat(50);
        let b = b"second blob is different text ".repeat(70);
        let (ka, za) = c.compress(a.clone());
        let (kb, zb) = c.compress(b.clone());
        let mut cut = za.clone();
        cut.truncate(za.len() / 2);
        assert!(decompress(ka, cut, a.len(), &|| "t".into()).is_err());
        let mut flipped = zb.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let _ = decompress(kb, flipped, b.len(), &|| "t".into());
        assert_eq!(decompress(kb, zb, b.len(), &|| "t".into()).unwrap(), b);
        assert_eq!(decompress(ka, za, a.len(), &|| "t".into()).unwrap(), a);
    }
}
