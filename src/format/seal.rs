//! The header and layout of a sealed export (the STREAM envelope around an exported zip or tar.gz;
//! `format-spec/export-seal.md`). Pure: no I/O and no cryptography; `export::seal` derives the key,
//! seals and opens the segments.
//!
//! ```text
//! magic "SOPHSEAL" (8) | version u8 = 1 | kdf id u8 | kdf params (12) | salt (32) | nonce prefix (7)
//! | segment size u32 LE                                                          = 65 bytes
//! segment{n}: AES-256-GCM(plaintext segment) || tag (16), nonce = prefix | index u32 BE | final u8
//! ```
//!
//! Every limit is checked here, before a caller derives a key or allocates a segment buffer, so a
//! hostile header can neither make a reader spin in the KDF for hours nor allocate gigabytes.

use crate::crypto::Argon2Params;
use crate::error::{Error, Result};
use crate::format::Reader;

pub const MAGIC: &[u8; 8] = b"SOPHSEAL";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 65;
pub const SALT_LEN: usize = 32;
pub const NONCE_PREFIX_LEN: usize = 7;
pub const TAG_LEN: usize = 16;
pub const KDF_ARGON2ID: u8 = 1;
pub const KDF_PBKDF2_SHA256: u8 = 2;
const KDF_PARAMS_LEN: usize = 12;

pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
pub const MIN_SEGMENT_SIZE: u32 = 1024;
/// Bounds the one segment a reader holds in memory.
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;

/// The product page's PBKDF2 work factor (OWASP's 2023 figure for HMAC-SHA256).
pub const PBKDF2_DEFAULT_ITERATIONS: u32 = 600_000;
pub const PBKDF2_MIN_ITERATIONS: u32 = 100_000;
pub const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;
pub const ARGON2_MAX_PARALLELISM: u32 = Argon2Params::MAX_PARALLELISM;

/// The key derivation a sealed export names in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    Argon2id(Argon2Params),
    Pbkdf2 { iterations: u32 },
}

impl Kdf {
    /// Argon2id with the repository's key-file defaults (64 MiB, t = 3, p = 1).
    pub fn default_argon2id() -> Self {
        Kdf::Argon2id(Argon2Params::DEFAULT)
    }

    /// PBKDF2-HMAC-SHA256 with 600 000 iterations, for tools that only have PBKDF2.
    pub fn pbkdf2_default() -> Self {
        Kdf::Pbkdf2 { iterations: PBKDF2_DEFAULT_ITERATIONS }
    }

    pub fn id(&self) -> u8 {
        match self {
            Kdf::Argon2id(_) => KDF_ARGON2ID,
            Kdf::Pbkdf2 { .. } => KDF_PBKDF2_SHA256,
        }
    }

    /// The limits a reader enforces before deriving; writers check them too, so nothing they write
    /// is unreadable.
    pub fn check(&self, what: &str) -> Result<()> {
        match *self {
            Kdf::Argon2id(p) => {
                // The same bounds as a key file's (format-spec/repository.md §21).
                p.check().map_err(|e| Error::malformed(what, format!("argon2id parameters: {e}")))?;
            }
            Kdf::Pbkdf2 { iterations } => {
                if !(PBKDF2_MIN_ITERATIONS..=PBKDF2_MAX_ITERATIONS).contains(&iterations) {
                    return Err(Error::malformed(
                        what,
                        format!(
                            "pbkdf2 iterations {iterations} out of range \
                             ({PBKDF2_MIN_ITERATIONS}..={PBKDF2_MAX_ITERATIONS})"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn encode_params(&self) -> [u8; KDF_PARAMS_LEN] {
        let mut out = [0u8; KDF_PARAMS_LEN];
        match *self {
            Kdf::Argon2id(p) => {
                out[0..4].copy_from_slice(&p.memory_kib.to_le_bytes());
                out[4..8].copy_from_slice(&p.iterations.to_le_bytes());
                out[8..12].copy_from_slice(&p.parallelism.to_le_bytes());
            }
            // The padding keeps the header one fixed length whatever the KDF.
            Kdf::Pbkdf2 { iterations } => out[0..4].copy_from_slice(&iterations.to_le_bytes()),
        }
        out
    }
}

/// Everything in the fixed 65-byte header. The encoded header is also every segment's
/// associated data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealHeader {
    pub kdf: Kdf,
    pub salt: [u8; SALT_LEN],
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Plaintext bytes per segment (every segment but the last holds exactly this many).
    pub segment_size: u32,
}

impl SealHeader {
    pub fn check(&self, what: &str) -> Result<()> {
        self.kdf.check(what)?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::malformed(
                what,
                format!("segment size {} out of range ({MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE})", self.segment_size),
            ));
        }
        Ok(())
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(MAGIC);
        out[8] = VERSION;
        out[9] = self.kdf.id();
        out[10..22].copy_from_slice(&self.kdf.encode_params());
        out[22..54].copy_from_slice(&self.salt);
        out[54..61].copy_from_slice(&self.nonce_prefix);
        out[61..65].copy_from_slice(&self.segment_size.to_le_bytes());
        out
    }

    /// Decode exactly one header. The magic and then the version are checked before anything else
    /// (a later version may have another length); every limit is checked before returning.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(Error::malformed(what, "not a sealed export (bad magic)"));
        }
        if let Some(&version) = bytes.get(8) {
            if version != VERSION {
                return Err(Error::UnsupportedVersion {
                    what: what.into(),
                    found: version as u32,
                    supported: VERSION as u32,
                });
            }
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::malformed(
                what,
                format!("truncated: the header is {HEADER_LEN} bytes, only {} present", bytes.len()),
            ));
        }
        let mut r = Reader::new(bytes, what);
        r.take(9)?;
        let kdf_id = r.u8()?;
        let kdf = match kdf_id {
            KDF_ARGON2ID => {
                let memory_kib = r.u32()?;
                let iterations = r.u32()?;
                let parallelism = r.u32()?;
                Kdf::Argon2id(Argon2Params { memory_kib, iterations, parallelism })
            }
            KDF_PBKDF2_SHA256 => {
                let iterations = r.u32()?;
                if r.take(8)?.iter().any(|&b| b != 0) {
                    return Err(Error::malformed(what, "pbkdf2 parameter padding is not zero"));
                }
                Kdf::Pbkdf2 { iterations }
            }
            other => return Err(Error::malformed(what, format!("unknown key derivation function {other}"))),
        };
        let salt = r.id32()?;
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(r.take(NONCE_PREFIX_LEN)?);
        let segment_size = r.u32()?;
        r.finish()?;
        let h = SealHeader { kdf, salt, nonce_prefix, segment_size };
        h.check(what)?;
        Ok(h)
    }

    /// The AES-GCM nonce of segment `index`: prefix (7) | index u32 BE | final flag u8.
    pub fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        n[7..11].copy_from_slice(&index.to_be_bytes());
        n[11] = last as u8;
        n
    }

    /// Bytes of one non-final sealed segment: the segment plus its tag.
    pub fn sealed_segment_len(&self) -> u64 {
        self.segment_size as u64 + TAG_LEN as u64
    }
}

/// True when `prefix` starts with the sealed-export magic (enough to tell a sealed export from a zip
/// or a gzip stream; it says nothing about whether the rest is valid).
pub fn is_sealed(prefix: &[u8]) -> bool {
    prefix.len() >= MAGIC.len() && prefix[..MAGIC.len()] == MAGIC[..]
}

/// Where the segments of a sealed file of known length are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Number of segments, at least 1 (the final one is always present).
    pub segments: u64,
    /// Bytes of the final sealed segment, tag included: 16..=segment size + 16.
    pub last_len: u64,
    /// Plaintext bytes in the whole stream.
    pub plaintext_len: u64,
}

impl Layout {
    /// Offset of segment `index` from the start of the sealed file (header included).
    pub fn offset(&self, segment_size: u32, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (segment_size as u64 + TAG_LEN as u64)
    }
}

/// The layout of `body_len` bytes of segments (everything after the header). Every non-final
/// segment is exactly `segment_size + 16` bytes and the final one 16..=`segment_size + 16`, so the
/// length alone fixes the segment count; a length no stream can have is `Malformed`.
pub fn layout(body_len: u64, segment_size: u32, what: &str) -> Result<Layout> {
    // Within these bounds 2^32 segments stay far below 2^64 bytes, so no offset overflows.
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        return Err(Error::malformed(what, format!("segment size {segment_size} out of range")));
    }
    let full = segment_size as u64 + TAG_LEN as u64;
    if body_len < TAG_LEN as u64 {
        return Err(Error::malformed(
            what,
            format!("truncated: the final segment is missing ({body_len} bytes after the header, less than a tag)"),
        ));
    }
    let before_last = (body_len - TAG_LEN as u64) / full;
    let last_len = body_len - before_last * full;
    if last_len > full {
        return Err(Error::malformed(
            what,
            format!(
                "truncated or extended: {body_len} bytes after the header is not a possible length for \
                 segment size {segment_size}"
            ),
        ));
    }
    let segments = before_last + 1;
    if segments > u32::MAX as u64 + 1 {
        return Err(Error::malformed(what, format!("{segments} segments, more than a segment counter can number")));
    }
    Ok(Layout { segments, last_len, plaintext_len: before_last * segment_size as u64 + (last_len - TAG_LEN as u64) })
}

/// The sealed length of `plaintext_len` bytes as v1 writers lay them out (a full final segment when
/// the length is a non-zero multiple of the segment size); `None` when it does not fit a `u64` or
/// needs more segments than the counter can number.
pub fn sealed_len(plaintext_len: u64, segment_size: u32) -> Option<u64> {
    let s = segment_size as u64;
    if s == 0 {
        return None;
    }
    let segments = if plaintext_len == 0 { 1 } else { plaintext_len.div_ceil(s) };
    if segments > u32::MAX as u64 + 1 {
        return None;
    }
    (HEADER_LEN as u64).checked_add(plaintext_len)?.checked_add(segments.checked_mul(TAG_LEN as u64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SealHeader {
        SealHeader {
            kdf: Kdf::Argon2id(Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }),
            salt: [3; 32],
            nonce_prefix: [9; 7],
            segment_size: 1024,
        }
    }

    #[test]
    fn header_round_trips_and_is_fixed_length() {
        for kdf in [Kdf::default_argon2id(), Kdf::pbkdf2_default(), header().kdf] {
            let h = SealHeader { kdf, ..header() };
            let enc = h.encode();
            assert_eq!(enc.len(), HEADER_LEN);
            assert!(is_sealed(&enc));
            assert_eq!(SealHeader::decode(&enc, "t").unwrap(), h);
        }
    }

    #[test]
    fn decoder_checks_magic_then_version_then_limits() {
        let enc = header().encode();
        for n in 0..HEADER_LEN {
            assert!(matches!(SealHeader::decode(&enc[..n], "t"), Err(Error::Malformed { .. })), "{n}");
        }
        let mut long = enc.to_vec();
        long.push(0);
        assert!(matches!(SealHeader::decode(&long, "t"), Err(Error::Malformed { .. })));
        let mut v2 = enc[..9].to_vec();
        v2[8] = 2;
        assert!(matches!(SealHeader::decode(&v2, "t"), Err(Error::UnsupportedVersion { found: 2, .. })));
        let mut bad = enc;
        bad[0] = b'X';
        assert!(!is_sealed(&bad));
        assert!(matches!(SealHeader::decode(&bad, "t"), Err(Error::Malformed { .. })));
        let mut kdf = enc;
        kdf[9] = 3;
        assert!(matches!(SealHeader::decode(&kdf, "t"), Err(Error::Malformed { .. })));

        let over =
            |kdf: Kdf, seg: u32| SealHeader::decode(&SealHeader { kdf, segment_size: seg, ..header() }.encode(), "t");
        let a = |m, t, p| Kdf::Argon2id(Argon2Params { memory_kib: m, iterations: t, parallelism: p });
        for bad in [
            over(a(Argon2Params::MAX_MEMORY_KIB + 1, 1, 1), 1024),
            over(a(1024, 0, 1), 1024),
            over(a(1024, Argon2Params::MAX_ITERATIONS + 1, 1), 1024),
            over(a(1024, 1, 0), 1024),
            over(a(1024, 1, 17), 1024),
            over(a(8, 1, 2), 1024),
            over(Kdf::Pbkdf2 { iterations: PBKDF2_MIN_ITERATIONS - 1 }, 1024),
            over(Kdf::Pbkdf2 { iterations: PBKDF2_MAX_ITERATIONS + 1 }, 1024),
            over(header().kdf, MIN_SEGMENT_SIZE - 1),
            over(header().kdf, MAX_SEGMENT_SIZE + 1),
            over(a(Argon2Params::MAX_MEMORY_KIB, 5, 1), 1024),
            over(a(128 * 1024, Argon2Params::MAX_ITERATIONS, 1), 1024),
        ] {
            assert!(matches!(bad, Err(Error::Malformed { .. })), "{bad:?}");
        }
        assert!(over(a(Argon2Params::MAX_MEMORY_KIB, 4, 16), MAX_SEGMENT_SIZE).is_ok());
        assert!(over(a(64 * 1024, Argon2Params::MAX_ITERATIONS, 16), MAX_SEGMENT_SIZE).is_ok());
        let mut pad = SealHeader { kdf: Kdf::pbkdf2_default(), ..header() }.encode();
        pad[21] = 1;
        assert!(matches!(SealHeader::decode(&pad, "t"), Err(Error::Malformed { .. })));
    }

    #[test]
    fn layout_agrees_with_sealed_len() {
        let s = 1024u32;
        for p in [0u64, 1, 1023, 1024, 1025, 2048, 3172, 10 * 1024 + 7] {
            let total = sealed_len(p, s).unwrap();
            let l = layout(total - HEADER_LEN as u64, s, "t").unwrap();
            assert_eq!(l.plaintext_len, p);
            assert_eq!(l.offset(s, l.segments - 1) + l.last_len, total);
        }
        // An empty final segment after a full one (readers accept it; v1 writers do not produce it).
        let l = layout(1040 + 16, s, "t").unwrap();
        assert_eq!((l.segments, l.last_len, l.plaintext_len), (2, 16, 1024));
        for bad in [0u64, 15, 1041, 1040 + 15] {
            assert!(matches!(layout(bad, s, "t"), Err(Error::Malformed { .. })), "{bad}");
        }
        assert!(layout(u64::MAX, MIN_SEGMENT_SIZE, "t").is_err());
        assert!(layout(u64::MAX - 65, MAX_SEGMENT_SIZE, "t").is_err());
        assert!(layout(1040, MIN_SEGMENT_SIZE - 1, "t").is_err());
        assert!(sealed_len(u64::MAX, s).is_none());
    }

    #[test]
    fn nonce_layout() {
        let h = header();
        assert_eq!(h.nonce(0x01020304, true), [9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 4, 1]);
        assert_eq!(h.nonce(0, false), [9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0]);
    }
}
