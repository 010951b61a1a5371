//! The streaming encryption envelope of a sealed export (the STREAM construction; byte layout in
//! `format-spec/export-seal.md`, header codec in `format::seal`).
//!
//! A passphrase-derived AES-256-GCM key seals the export front to back in fixed-size segments. Each
//! segment's nonce carries its index and whether it is the final one, and every segment binds the
//! whole header as associated data, so a reader that authenticates every segment in order and sees
//! a segment flagged final at the very end has exactly the bytes the writer wrote: no reordering,
//! dropping, duplicating, truncating or appending goes unnoticed, and no plaintext is handed out
//! before its segment authenticated.
//!
//! - [`SealWriter`] seals a byte stream without seeking, holding at most one segment.
//! - [`SealReader`] opens one sequentially (pipes, stdin).
//! - [`SealedFile`] opens a seekable file with random access (a zip's central directory is at the
//!   end), checking the first and the final segment when it opens.
//!
//! Errors: a header that cannot be read is `Malformed` (or `UnsupportedVersion`); a segment that
//! fails authentication is `Authentication`, and its `what` says which: the first segment failing
//! reads "wrong passphrase or damaged first segment" (the two cannot be told apart), a later one
//! "damaged or tampered at segment N (byte offset X)". A stream that ends without its final segment
//! is `Malformed` "truncated: the final segment is missing", and bytes after the final segment are
//! `Malformed` "… after the final segment".

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroU32;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use crate::crypto::{argon2id, random_array};
use crate::error::{Error, Result};
pub use crate::format::seal::{
    is_sealed, sealed_len, Kdf, SealHeader, DEFAULT_SEGMENT_SIZE, HEADER_LEN, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
    TAG_LEN,
};
use crate::format::seal::{layout, Layout, NONCE_PREFIX_LEN, SALT_LEN};

pub(crate) const WHAT: &str = "sealed export";

/// Recover the library error behind an `io::Error` returned by the readers' and the writer's
/// `Read`/`Write`/`Seek` impls (they must speak `io::Error`); any other I/O error is wrapped.
pub fn error_from_io(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::invalid("sealed export: an error was lost in conversion");
    }
    Error::io(WHAT, e)
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// A copy of an error this module produced, so a reader that failed keeps failing with the same
/// error instead of reporting a clean end of stream on the next call.
fn dup(e: &Error) -> Error {
    match e {
        Error::Malformed { what, reason } => Error::Malformed { what: what.clone(), reason: reason.clone() },
        Error::Authentication { what } => Error::Authentication { what: what.clone() },
        Error::UnsupportedVersion { what, found, supported } => {
            Error::UnsupportedVersion { what: what.clone(), found: *found, supported: *supported }
        }
        Error::Io { path, source } => {
            Error::Io { path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
        }
        other => Error::invalid(other.to_string()),
    }
}

fn derive_key(passphrase: &[u8], header: &SealHeader) -> Result<Zeroizing<[u8; 32]>> {
    header.check(WHAT)?;
    match header.kdf {
        Kdf::Argon2id(params) => argon2id(passphrase, &header.salt, params),
        Kdf::Pbkdf2 { iterations } => {
            let iterations = NonZeroU32::new(iterations)
                .ok_or_else(|| Error::malformed(WHAT, "pbkdf2 iterations must not be zero"))?;
            let mut out = Zeroizing::new([0u8; 32]);
            ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &header.salt, passphrase, out.as_mut());
            Ok(out)
        }
    }
}

/// The stream's AEAD key with the header it is bound to. The raw key is wiped once `ring` has
/// expanded it; `ring`'s key schedule cannot be wiped (as for `crypto::SealKey`).
struct SegmentKey {
    key: LessSafeKey,
    header: SealHeader,
    header_bytes: [u8; HEADER_LEN],
}

impl SegmentKey {
    fn new(raw: &[u8; 32], header: SealHeader) -> Result<Self> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, raw).map_err(|_| Error::invalid("sealed export: unusable AES-256 key"))?;
        let header_bytes = header.encode();
        Ok(SegmentKey { key: LessSafeKey::new(unbound), header, header_bytes })
    }

    fn segment_size(&self) -> usize {
        self.header.segment_size as usize
    }

    fn full_len(&self) -> usize {
        self.segment_size() + TAG_LEN
    }

    /// Encrypt the plaintext in `buf` and append the tag.
    fn seal(&self, index: u32, last: bool, buf: &mut Vec<u8>) -> Result<()> {
        let nonce = Nonce::assume_unique_for_key(self.header.nonce(index, last));
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.header_bytes[..]), buf)
            .map_err(|_| Error::invalid("sealed export: sealing a segment failed"))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Open `ciphertext || tag` in place; the plaintext length on success. `ring` wipes the buffer on
    /// failure, so callers that want to try again keep a copy.
    fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> Option<usize> {
        let index = u32::try_from(index).ok()?;
        if buf.len() < TAG_LEN {
            return None;
        }
        let nonce = Nonce::assume_unique_for_key(self.header.nonce(index, last));
        self.key.open_in_place(nonce, Aad::from(&self.header_bytes[..]), buf).ok().map(|p| p.len())
    }

    /// Why segment `index`, expected to be final or not as `last` says, failed to open. `ciphertext`
    /// is an intact copy. Opening it with the other flag tells a stream cut after a non-final
    /// segment, or one going on after its final segment, from damage.
    fn diagnose(&self, index: u64, offset: u64, last: bool, ciphertext: &mut [u8]) -> Error {
        if self.open(index, !last, ciphertext).is_some() {
            if last {
                return Error::malformed(
                    WHAT,
                    format!(
                        "truncated: the final segment is missing (the stream ends after segment {index} at byte \
                         offset {offset}, which is not the final one)"
                    ),
                );
            }
            return Error::malformed(
                WHAT,
                format!("data after the final segment (segment {index} at byte offset {offset} is the final one)"),
            );
        }
        damaged(index, offset)
    }
}

fn damaged(index: u64, offset: u64) -> Error {
    if index == 0 {
        Error::Authentication { what: format!("{WHAT}: wrong passphrase or damaged first segment") }
    } else {
        Error::Authentication { what: format!("{WHAT}: damaged or tampered at segment {index} (byte offset {offset})") }
    }
}

fn too_many_segments() -> Error {
    Error::malformed(WHAT, "more segments than the 32-bit segment counter can number")
}

/// Read the header from the start of `inner`: at most `HEADER_LEN` bytes, decoded with every limit
/// checked before the caller derives a key.
fn read_header<R: Read>(inner: &mut R) -> Result<SealHeader> {
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    inner.take(HEADER_LEN as u64).read_to_end(&mut bytes).map_err(|e| Error::io(WHAT, e))?;
    SealHeader::decode(&bytes, WHAT)
}

// ------------------------------------------------------------------------------------------------
// Writing

/// Seals a byte stream. Writes the header at once, then each segment as soon as the data after it
/// starts arriving (so a plaintext that is a multiple of the segment size ends with a full final
/// segment); [`finish`](SealWriter::finish) writes the final segment.
///
/// A `SealWriter` dropped without `finish` (an error, a panic, a killed export) leaves a file whose
/// last segment is not flagged final: every reader rejects it as truncated. That is the point of
/// the flag, so there is no `Drop` impl trying to finish.
pub struct SealWriter<W: Write> {
    inner: W,
    key: SegmentKey,
    /// The current segment's plaintext, with room for its tag.
    buf: Vec<u8>,
    index: u64,
    plaintext_len: u64,
    failed: bool,
}

impl<W: Write> SealWriter<W> {
    /// A writer with a random salt and nonce prefix and the default segment size (64 KiB).
    pub fn new(inner: W, passphrase: &[u8], kdf: Kdf) -> Result<Self> {
        Self::with_params(inner, passphrase, kdf, random_array()?, random_array()?, DEFAULT_SEGMENT_SIZE)
    }

    /// A writer with every header field given. For test vectors and tests: sealing two streams with
    /// the same passphrase, salt and nonce prefix reuses nonces under one key, which destroys
    /// AES-GCM's security. Use [`new`](SealWriter::new) for real data.
    pub fn with_params(
        inner: W,
        passphrase: &[u8],
        kdf: Kdf,
        salt: [u8; SALT_LEN],
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
        segment_size: u32,
    ) -> Result<Self> {
        if passphrase.is_empty() {
            return Err(Error::invalid("sealed export: the passphrase must not be empty"));
        }
        let header = SealHeader { kdf, salt, nonce_prefix, segment_size };
        header.check("sealed export settings").map_err(|e| Error::invalid(e.to_string()))?;
        let key = derive_key(passphrase, &header)?;
        Self::with_key(inner, header, &key)
    }

    /// A writer under an already derived key (fuzzing and tests: no KDF per input).
    #[doc(hidden)]
    pub fn with_key(mut inner: W, header: SealHeader, key: &[u8; 32]) -> Result<Self> {
        header.check("sealed export settings").map_err(|e| Error::invalid(e.to_string()))?;
        let key = SegmentKey::new(key, header)?;
        inner.write_all(&key.header_bytes).map_err(|e| Error::io(WHAT, e))?;
        let buf = Vec::with_capacity(key.full_len());
        Ok(SealWriter { inner, key, buf, index: 0, plaintext_len: 0, failed: false })
    }

    pub fn header(&self) -> &SealHeader {
        &self.key.header
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn emit(&mut self, last: bool) -> Result<()> {
        // A non-final segment may not take the counter's last value: the final one needs a number.
        let index = u32::try_from(self.index)
            .ok()
            .filter(|&i| last || i < u32::MAX)
            .ok_or_else(|| Error::invalid("sealed export: more than 2^32 segments; seal with a larger segment size"))?;
        self.key.seal(index, last, &mut self.buf)?;
        self.inner.write_all(&self.buf).map_err(|e| Error::io(WHAT, e))?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Write the final segment, flush, and hand back the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(Error::invalid("sealed export: an earlier write failed; the output is incomplete"));
        }
        self.emit(true)?;
        self.inner.flush().map_err(|e| Error::io(WHAT, e))?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("sealed export: an earlier write failed; the output is incomplete"));
        }
        let seg = self.key.segment_size();
        let mut rest = data;
        while !rest.is_empty() {
            // A full segment is sealed only once more data arrives: until then it may be the final one.
            if self.buf.len() == seg {
                if let Err(e) = self.emit(false) {
                    // Part of a segment may have reached the output: nothing written after it could be read.
                    self.failed = true;
                    return Err(to_io(e));
                }
            }
            let n = (seg - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        self.plaintext_len += data.len() as u64;
        Ok(data.len())
    }

    /// Flushes the inner writer. The segment being filled stays buffered: sealing it early would make
    /// it shorter than the segment size, which only the final segment may be.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter")
            .field("header", &self.key.header)
            .field("segments_written", &self.index)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

// ------------------------------------------------------------------------------------------------
// Reading front to back

/// Opens a sealed export front to back, for inputs that cannot seek. `new` reads the header, derives
/// the key and authenticates the first segment, so a wrong passphrase is reported before any
/// plaintext is read. `Read` hands out a segment's plaintext only after it authenticated, and ends
/// (returns 0) only after the final segment did; a stream that ends early or goes on after its final
/// segment is an error, never a quiet end of file.
pub struct SealReader<R: Read> {
    inner: R,
    key: SegmentKey,
    /// Bytes read ahead: the next segment and one byte past it (that byte tells a non-final segment
    /// from the final one without a length field).
    raw: Vec<u8>,
    /// The current segment's plaintext, handed out from `pos`.
    plain: Vec<u8>,
    pos: usize,
    /// Index and byte offset of the next segment.
    index: u64,
    offset: u64,
    plaintext_len: u64,
    finished: bool,
    failed: Option<Error>,
}

impl<R: Read> SealReader<R> {
    pub fn new(mut inner: R, passphrase: &[u8]) -> Result<Self> {
        let header = read_header(&mut inner)?;
        let key = derive_key(passphrase, &header)?;
        Self::start(inner, header, &key)
    }

    /// A reader under an already derived key (fuzzing: no KDF per input). The header is still read
    /// and checked, and still authenticated as every segment's associated data.
    #[doc(hidden)]
    pub fn with_key(mut inner: R, key: &[u8; 32]) -> Result<Self> {
        let header = read_header(&mut inner)?;
        Self::start(inner, header, key)
    }

    fn start(inner: R, header: SealHeader, key: &[u8; 32]) -> Result<Self> {
        let key = SegmentKey::new(key, header)?;
        let mut r = SealReader {
            inner,
            key,
            raw: Vec::new(),
            plain: Vec::new(),
            pos: 0,
            index: 0,
            offset: HEADER_LEN as u64,
            plaintext_len: 0,
            finished: false,
            failed: None,
        };
        r.next_segment()?;
        Ok(r)
    }

    pub fn header(&self) -> &SealHeader {
        &self.key.header
    }

    /// Plaintext bytes authenticated so far (the whole stream's once `read` returned 0).
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Read and authenticate the next segment into `plain`; false after the final one.
    fn next_segment(&mut self) -> Result<bool> {
        if self.finished {
            return Ok(false);
        }
        let full = self.key.full_len();
        // Buffers grow with what the input holds, not with what the header claims.
        let want = (full + 1 - self.raw.len()) as u64;
        (&mut self.inner).take(want).read_to_end(&mut self.raw).map_err(|e| Error::io(WHAT, e))?;
        let last = self.raw.len() <= full;
        let len = if last { self.raw.len() } else { full };
        if self.index > u32::MAX as u64 {
            return Err(too_many_segments());
        }
        if len < TAG_LEN {
            let (index, offset) = (self.index, self.offset);
            let ends = if len == 0 && index == 0 {
                "nothing follows the header".to_string()
            } else {
                format!("the stream ends {len} bytes into segment {index} at byte offset {offset}")
            };
            return Err(Error::malformed(WHAT, format!("truncated: the final segment is missing ({ends})")));
        }
        // Opened in a copy: `ring` wipes a buffer that fails, and the diagnosis needs the ciphertext
        // (a stream cannot be read twice).
        self.plain.clear();
        self.plain.extend_from_slice(&self.raw[..len]);
        match self.key.open(self.index, last, &mut self.plain) {
            Some(n) => self.plain.truncate(n),
            None => {
                self.plain.clear();
                return Err(self.key.diagnose(self.index, self.offset, last, &mut self.raw[..len]));
            }
        }
        self.raw.drain(..len);
        self.pos = 0;
        self.index += 1;
        self.offset += len as u64;
        self.plaintext_len += self.plain.len() as u64;
        self.finished = last;
        Ok(true)
    }
}

impl<R: Read> Read for SealReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(to_io(dup(e)));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.plain.len() {
            match self.next_segment() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.failed = Some(dup(&e));
                    return Err(to_io(e));
                }
            }
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R: Read> std::fmt::Debug for SealReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealReader")
            .field("header", &self.key.header)
            .field("next_segment", &self.index)
            .field("plaintext_len", &self.plaintext_len)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Authenticate a whole sealed export front to back; its plaintext length.
pub fn verify_all<R: Read>(r: R, passphrase: &[u8]) -> Result<u64> {
    let mut reader = SealReader::new(r, passphrase)?;
    while reader.next_segment()? {}
    Ok(reader.plaintext_len)
}

// ------------------------------------------------------------------------------------------------
// Random access

/// A sealed export in a seekable file, read with random access over its plaintext. The segment
/// count follows from the file's length (every segment but the last has the same size). `open`
/// authenticates the first segment (a wrong passphrase fails here) and the final one (a truncated or
/// extended file fails here too); the others are authenticated when read. One decrypted segment is
/// cached. The file is taken to start at offset 0 of `inner`.
pub struct SealedFile<R: Read + Seek> {
    inner: R,
    key: SegmentKey,
    layout: Layout,
    pos: u64,
    cached: Option<u64>,
    cache: Vec<u8>,
}

impl<R: Read + Seek> SealedFile<R> {
    pub fn open(mut inner: R, passphrase: &[u8]) -> Result<Self> {
        let (header, layout) = Self::read_layout(&mut inner)?;
        let key = derive_key(passphrase, &header)?;
        Self::start(inner, header, layout, &key)
    }

    /// Open under an already derived key (fuzzing: no KDF per input).
    #[doc(hidden)]
    pub fn open_with_key(mut inner: R, key: &[u8; 32]) -> Result<Self> {
        let (header, layout) = Self::read_layout(&mut inner)?;
        Self::start(inner, header, layout, key)
    }

    fn read_layout(inner: &mut R) -> Result<(SealHeader, Layout)> {
        inner.seek(SeekFrom::Start(0)).map_err(|e| Error::io(WHAT, e))?;
        let header = read_header(inner)?;
        let len = inner.seek(SeekFrom::End(0)).map_err(|e| Error::io(WHAT, e))?;
        let body =
            len.checked_sub(HEADER_LEN as u64).ok_or_else(|| Error::malformed(WHAT, "shorter than its header"))?;
        let layout = layout(body, header.segment_size, WHAT)?;
        Ok((header, layout))
    }

    fn start(inner: R, header: SealHeader, layout: Layout, key: &[u8; 32]) -> Result<Self> {
        let key = SegmentKey::new(key, header)?;
        let mut f = SealedFile { inner, key, layout, pos: 0, cached: None, cache: Vec::new() };
        f.load(0)?;
        // Cached last: zip readers start at the end, with the central directory.
        f.load(layout.segments - 1)?;
        Ok(f)
    }

    pub fn header(&self) -> &SealHeader {
        &self.key.header
    }

    pub fn plaintext_len(&self) -> u64 {
        self.layout.plaintext_len
    }

    pub fn segment_count(&self) -> u64 {
        self.layout.segments
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn segment_span(&self, index: u64) -> (u64, usize, bool) {
        let last = index + 1 == self.layout.segments;
        let len = if last { self.layout.last_len as usize } else { self.key.full_len() };
        (self.layout.offset(self.key.header.segment_size, index), len, last)
    }

    fn read_at(&mut self, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        buf.resize(len, 0);
        self.inner.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(WHAT, e))?;
        self.inner.read_exact(buf).map_err(|e| Error::io(WHAT, e))
    }

    /// Decrypt segment `index` into the cache.
    fn load(&mut self, index: u64) -> Result<()> {
        if self.cached == Some(index) {
            return Ok(());
        }
        self.cached = None;
        let (offset, len, last) = self.segment_span(index);
        let mut cache = std::mem::take(&mut self.cache);
        self.read_at(offset, len, &mut cache)?;
        let opened = self.key.open(index, last, &mut cache);
        self.cache = cache;
        match opened {
            Some(n) => {
                self.cache.truncate(n);
                self.cached = Some(index);
                Ok(())
            }
            None => {
                self.cache.clear();
                Err(self.diagnose(index, offset, len, last))
            }
        }
    }

    /// `ring` wiped the failed ciphertext; a file can simply be read again (a stream reader keeps a
    /// copy instead).
    fn diagnose(&mut self, index: u64, offset: u64, len: usize, last: bool) -> Error {
        let mut ct = Vec::new();
        if let Err(e) = self.read_at(offset, len, &mut ct) {
            return e;
        }
        let err = self.key.diagnose(index, offset, last, &mut ct);
        // Data appended after a full final segment shifts the layout: the segment before the one
        // taken for final may be the real final one.
        if last && index >= 2 && matches!(err, Error::Authentication { .. }) {
            let (prev_offset, prev_len, _) = self.segment_span(index - 1);
            if self.read_at(prev_offset, prev_len, &mut ct).is_ok() && self.key.open(index - 1, true, &mut ct).is_some()
            {
                return Error::malformed(
                    WHAT,
                    format!(
                        "{len} bytes of data after the final segment (segment {} at byte offset {prev_offset} is \
                         the final one)",
                        index - 1
                    ),
                );
            }
        }
        err
    }
}

impl<R: Read + Seek> Read for SealedFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.layout.plaintext_len {
            return Ok(0);
        }
        let seg = self.key.header.segment_size as u64;
        let index = self.pos / seg;
        let within = (self.pos % seg) as usize;
        self.load(index).map_err(to_io)?;
        let avail = self.cache.get(within..).unwrap_or_default();
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SealedFile<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.layout.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "sealed export: seek to a negative or overflowing position")
        })?;
        self.pos = new;
        Ok(new)
    }
}

impl<R: Read + Seek> std::fmt::Debug for SealedFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("header", &self.key.header)
            .field("layout", &self.layout)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}
