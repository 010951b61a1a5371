//! Pure encoders and decoders for every byte the repository stores. No I/O and no cryptography
//! here: callers seal and open; these functions frame, parse and validate. Every decoder treats
//! its input as hostile: it checks lengths before reading, refuses unknown versions, and never panics.
//! The byte layouts are specified in `format-spec/repository.md` (an export's `metadata.json` in
//! `format-spec/export.md`).

pub mod config;
pub mod envelope;
pub mod export_meta;
pub mod index;
pub mod layout;
pub mod pack;
pub mod prune;
pub mod seal;
pub mod snapshot;
pub mod tree;

/// A cursor over untrusted bytes whose reads fail instead of panicking.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Reader { bytes, pos: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> crate::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            crate::Error::malformed(self.what, format!("truncated: needed {n} bytes at offset {}", self.pos))
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> crate::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> crate::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn id32(&mut self) -> crate::Result<[u8; 32]> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn finish(&self) -> crate::Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(crate::Error::malformed(self.what, format!("{} trailing bytes", self.remaining())))
        }
    }
}
