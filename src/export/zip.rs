//! A zip writer that streams: every entry is written front to back (sizes and CRC follow the data
//! in a data descriptor), nothing is ever sought or rewritten, so the archive can go to a pipe or
//! an upload. Entries and archives past the classic limits (4 GiB, 65,535 entries) switch to
//! zip64 records, entry by entry, as APPNOTE 6.3 allows. Compression happens elsewhere: the
//! caller hands in each entry's bytes already deflated (or stored).

use std::io::Write;

use crate::error::{Error, Result};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;

/// General purpose flags: sizes in a data descriptor (bit 3), UTF-8 names (bit 11).
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// Made by Unix (3), spec 6.3: external attributes carry the Unix mode.
const MADE_BY: u16 = (3 << 8) | 63;
const VERSION_PLAIN: u16 = 20;
const VERSION_ZIP64: u16 = 45;

/// Entries at least this big get zip64 sizes from the start: their compressed size (deflate's
/// stored blocks add a few bytes per 64 KiB) could pass 4 GiB even if the input does not.
pub const ZIP64_FROM: u64 = 0xF000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Stored = 0,
    Deflate = 8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

struct Central {
    name: String,
    kind: Kind,
    mode: u32,
    mtime: i64,
    method: Method,
    descriptor: bool,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// An entry being written: the caller writes its data, then ends it with its CRC and sizes.
pub struct Open {
    central: Central,
    zip64: bool,
    written: u64,
}

pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    central: Vec<Central>,
    open: Option<Open>,
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> Self {
        ZipWriter { out, offset: 0, central: Vec::new(), open: None }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::io(super::OUTPUT, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Start a file whose uncompressed size is `size`; its data follows through [`Self::data`].
    pub fn start_file(&mut self, name: &str, mode: u32, mtime: i64, method: Method, size: u64) -> Result<()> {
        self.check_idle(name)?;
        let zip64 = size >= ZIP64_FROM;
        let central = Central {
            name: name.to_string(),
            kind: Kind::File,
            mode,
            mtime,
            method,
            descriptor: true,
            crc: 0,
            compressed: 0,
            size: 0,
            offset: self.offset,
        };
        let header = local_header(&central, zip64);
        self.put(&header)?;
        self.open = Some(Open { central, zip64, written: 0 });
        Ok(())
    }

    /// More of the open file's (compressed) data.
    pub fn data(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(open) = self.open.as_mut() else { return Err(Error::invalid("zip: data outside an entry")) };
        open.written += bytes.len() as u64;
        self.put(bytes)
    }

    /// End the open file: its CRC-32 and uncompressed size, written in the data descriptor.
    pub fn end_file(&mut self, crc: u32, size: u64) -> Result<()> {
        let Some(mut open) = self.open.take() else { return Err(Error::invalid("zip: no entry to end")) };
        if !open.zip64 && (open.written > u32::MAX as u64 || size > u32::MAX as u64) {
            return Err(Error::invalid(format!(
                "zip: {} grew past 4 GiB although it was announced smaller",
                open.central.name
            )));
        }
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&DATA_DESCRIPTOR.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        if open.zip64 {
            d.extend_from_slice(&open.written.to_le_bytes());
            d.extend_from_slice(&size.to_le_bytes());
        } else {
            d.extend_from_slice(&(open.written as u32).to_le_bytes());
            d.extend_from_slice(&(size as u32).to_le_bytes());
        }
        self.put(&d)?;
        open.central.crc = crc;
        open.central.compressed = open.written;
        open.central.size = size;
        self.central.push(open.central);
        Ok(())
    }

    /// A folder (`name` without the trailing slash).
    pub fn dir(&mut self, name: &str, mode: u32, mtime: i64) -> Result<()> {
        self.small(format!("{name}/"), Kind::Dir, mode, mtime, &[])
    }

    /// A symbolic link: stored, its data the target.
    pub fn symlink(&mut self, name: &str, mode: u32, mtime: i64, target: &[u8]) -> Result<()> {
        self.small(name.to_string(), Kind::Symlink, mode, mtime, target)
    }

    fn small(&mut self, name: String, kind: Kind, mode: u32, mtime: i64, data: &[u8]) -> Result<()> {
        self.check_idle(&name)?;
        let central = Central {
            name,
            kind,
            mode,
            mtime,
            method: Method::Stored,
            descriptor: false,
            crc: crc32fast::hash(data),
            compressed: data.len() as u64,
            size: data.len() as u64,
            offset: self.offset,
        };
        let header = local_header(&central, false);
        self.put(&header)?;
        self.put(data)?;
        self.central.push(central);
        Ok(())
    }

    fn check_idle(&self, name: &str) -> Result<()> {
        match &self.open {
            Some(o) => Err(Error::invalid(format!("zip: {name} started while {} is open", o.central.name))),
            None => Ok(()),
        }
    }

    /// Write the central directory and the end records; returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.check_idle("the central directory")?;
        let start = self.offset;
        let central = std::mem::take(&mut self.central);
        for c in &central {
            let h = central_header(c);
            self.put(&h)?;
        }
        let size = self.offset - start;
        let count = central.len() as u64;
        let needs64 = count >= 0xFFFF || start >= u32::MAX as u64 || size >= u32::MAX as u64;
        let mut e = Vec::with_capacity(98);
        if needs64 {
            let at = self.offset;
            e.extend_from_slice(&ZIP64_END.to_le_bytes());
            e.extend_from_slice(&44u64.to_le_bytes());
            e.extend_from_slice(&MADE_BY.to_le_bytes());
            e.extend_from_slice(&VERSION_ZIP64.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&count.to_le_bytes());
            e.extend_from_slice(&count.to_le_bytes());
            e.extend_from_slice(&size.to_le_bytes());
            e.extend_from_slice(&start.to_le_bytes());
            e.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
            e.extend_from_slice(&at.to_le_bytes());
            e.extend_from_slice(&1u32.to_le_bytes());
        }
        let clamp16 = |n: u64| if needs64 { 0xFFFF } else { n as u16 };
        let clamp32 = |n: u64| if needs64 { u32::MAX } else { n as u32 };
        e.extend_from_slice(&END.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&clamp16(count).to_le_bytes());
        e.extend_from_slice(&clamp16(count).to_le_bytes());
        e.extend_from_slice(&clamp32(size).to_le_bytes());
        e.extend_from_slice(&clamp32(start).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        self.put(&e)?;
        self.out.flush().map_err(|e| Error::io(super::OUTPUT, e))?;
        Ok(self.out)
    }
}

/// MS-DOS time and date of a Unix time (UTC; zip has no time zone), clamped to 1980..=2107.
fn dos_time(mtime: i64) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp(mtime, 0).unwrap_or_default().naive_utc();
    let year = t.year().clamp(1980, 2107);
    if year != t.year() {
        return if t.year() < 1980 { (0, (1 << 5) | 1) } else { (0xBF7D, 0xFF9F) };
    }
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date = (((year - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    (time, date)
}

/// The extended timestamp extra field (0x5455): the modification time in whole seconds, which
/// survives where DOS time cannot (time zone, 2-second steps).
fn timestamp_extra(mtime: i64) -> Vec<u8> {
    let secs = mtime.clamp(0, u32::MAX as i64) as u32;
    let mut x = Vec::with_capacity(9);
    x.extend_from_slice(&0x5455u16.to_le_bytes());
    x.extend_from_slice(&5u16.to_le_bytes());
    x.push(1);
    x.extend_from_slice(&secs.to_le_bytes());
    x
}

fn flags(c: &Central) -> u16 {
    FLAG_UTF8 | if c.descriptor { FLAG_DESCRIPTOR } else { 0 }
}

fn local_header(c: &Central, zip64: bool) -> Vec<u8> {
    let (time, date) = dos_time(c.mtime);
    let mut extra = Vec::new();
    if zip64 {
        // Sizes follow in the descriptor; the extra field marks them as 8 bytes wide.
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&[0u8; 16]);
    }
    extra.extend_from_slice(&timestamp_extra(c.mtime));
    let (crc, comp, size) = if zip64 {
        (0, u32::MAX, u32::MAX)
    } else if c.descriptor {
        (0, 0, 0)
    } else {
        (c.crc, c.compressed as u32, c.size as u32)
    };
    let mut h = Vec::with_capacity(30 + c.name.len() + extra.len());
    h.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
    h.extend_from_slice(&(if zip64 { VERSION_ZIP64 } else { VERSION_PLAIN }).to_le_bytes());
    h.extend_from_slice(&flags(c).to_le_bytes());
    h.extend_from_slice(&(c.method as u16).to_le_bytes());
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&comp.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(c.name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

fn central_header(c: &Central) -> Vec<u8> {
    let (time, date) = dos_time(c.mtime);
    let big = |n: u64| n >= u32::MAX as u64;
    // The zip64 extra holds, in this order, only the fields that do not fit.
    let mut z64 = Vec::new();
    for (n, needed) in [(c.size, big(c.size)), (c.compressed, big(c.compressed)), (c.offset, big(c.offset))] {
        if needed {
            z64.extend_from_slice(&n.to_le_bytes());
        }
    }
    let mut extra = Vec::new();
    if !z64.is_empty() {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&(z64.len() as u16).to_le_bytes());
        extra.extend_from_slice(&z64);
    }
    extra.extend_from_slice(&timestamp_extra(c.mtime));
    let clamp = |n: u64| if big(n) { u32::MAX } else { n as u32 };
    let type_bits: u32 = match c.kind {
        Kind::File => 0o100000,
        Kind::Dir => 0o040000,
        Kind::Symlink => 0o120000,
    };
    let dos_dir: u32 = if c.kind == Kind::Dir { 0x10 } else { 0 };
    let external = ((type_bits | (c.mode & 0o7777)) << 16) | dos_dir;
    let needed = if z64.is_empty() { VERSION_PLAIN } else { VERSION_ZIP64 };
    let mut h = Vec::with_capacity(46 + c.name.len() + extra.len());
    h.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    h.extend_from_slice(&MADE_BY.to_le_bytes());
    h.extend_from_slice(&needed.to_le_bytes());
    h.extend_from_slice(&flags(c).to_le_bytes());
    h.extend_from_slice(&(c.method as u16).to_le_bytes());
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&c.crc.to_le_bytes());
    h.extend_from_slice(&clamp(c.compressed).to_le_bytes());
    h.extend_from_slice(&clamp(c.size).to_le_bytes());
    h.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&external.to_le_bytes());
    h.extend_from_slice(&clamp(c.offset).to_le_bytes());
    h.extend_from_slice(c.name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::new(6), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, flate2::FlushCompress::Finish).unwrap();
        out
    }

    #[test]
    fn the_zip_crate_reads_what_we_write() {
        let mut z = ZipWriter::new(Vec::new());
        z.dir("backup", 0o755, 1_700_000_000).unwrap();
        let text = b"hello hello hello hello".repeat(100);
        z.start_file("backup/a.txt", 0o644, 1_700_000_000, Method::Deflate, text.len() as u64).unwrap();
        z.data(&deflate(&text)).unwrap();
        z.end_file(crc32fast::hash(&text), text.len() as u64).unwrap();
        z.start_file("backup/b.bin", 0o600, 1_700_000_000, Method::Stored, 3).unwrap();
        z.data(b"xyz").unwrap();
        z.end_file(crc32fast::hash(b"xyz"), 3).unwrap();
        z.symlink("backup/link", 0o777, 1_700_000_000, b"a.txt").unwrap();
        let bytes = z.finish().unwrap();
        let mut zip = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 4);
        let mut s = Vec::new();
        zip.by_name("backup/a.txt").unwrap().read_to_end(&mut s).unwrap();
        assert_eq!(s, text);
        let b = zip.by_name("backup/b.bin").unwrap();
        assert_eq!(b.unix_mode().unwrap() & 0o7777, 0o600);
        drop(b);
        assert!(zip.by_name("backup/").unwrap().is_dir());
    }

    #[test]
    fn more_than_65535_entries_switch_to_zip64_end_records() {
        let mut z = ZipWriter::new(Vec::new());
        for i in 0..70_000u32 {
            z.start_file(&format!("f{i}"), 0o644, 0, Method::Stored, 1).unwrap();
            z.data(b"x").unwrap();
            z.end_file(crc32fast::hash(b"x"), 1).unwrap();
        }
        let bytes = z.finish().unwrap();
        let zip = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 70_000);
    }

    #[test]
    fn dos_times_clamp() {
        assert_eq!(dos_time(0), (0, (1 << 5) | 1));
        let (t, d) = dos_time(1_700_000_000); // 2023-11-14T22:13:20Z
        assert_eq!(d >> 9, 2023 - 1980);
        assert_eq!(t >> 11, 22);
    }
}
