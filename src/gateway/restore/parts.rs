//! Reading a backup's parts with bounded memory: every part the restore holds whole (a JSON
//! document, a JSON-lines file, a small file beside the database) is refused past its cap
//! (`format-spec/export.md` §5.1, "Reader bounds"), and documents are never held whole: they are
//! compared by hashing both sides in bounded pieces and copied as a stream.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use super::plan::{from_crate, invalid};
use super::BackupSource;
use crate::format::layout::bounds::ROW;
use crate::format::layout::gateway_part_cap;
use crate::gateway::{GatewayError, GatewayResult};

/// Collects at most `cap` bytes; one more fails the copy (the part is refused, never buffered).
struct Capped {
    buf: Vec<u8>,
    cap: u64,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.cap {
            self.over = true;
            return Err(std::io::Error::other("over its cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_large(path: &str, cap: u64) -> GatewayError {
    invalid(format!(
        "backup file {path} is larger than {cap} bytes ({} MiB), the most a restore reads of it \
         (format-spec/export.md §5.1, reader bounds): refused",
        cap >> 20
    ))
}

/// A part of the backup held whole, refused past its cap; `None` when the backup does not hold it.
/// The declared size is checked first, and the copy stops one byte past the cap whatever the
/// source says, so a lying header cannot make the restore buffer more.
pub(super) fn read_part(src: &dyn BackupSource, path: &str) -> GatewayResult<Option<Vec<u8>>> {
    let Some(size) = src.size(path) else { return Ok(None) };
    let cap = gateway_part_cap(path);
    if size > cap {
        return Err(too_large(path, cap));
    }
    let mut out = Capped { buf: Vec::with_capacity(size.min(1 << 20) as usize), cap, over: false };
    match src.copy_into(path, &mut out) {
        Ok(_) => Ok(Some(out.buf)),
        Err(_) if out.over => Err(too_large(path, cap)),
        Err(e) => Err(from_crate(e)),
    }
}

/// A JSON part, parsed; `None` when the backup does not hold it.
pub(super) fn json_part(src: &dyn BackupSource, path: &str) -> GatewayResult<Option<Value>> {
    match read_part(src, path)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| invalid(format!("backup file {path}: {e}"))),
    }
}

/// A hash of a stream, fed in whatever pieces the source hands over.
pub(super) struct Sha256Sink {
    ctx: ring::digest::Context,
    pub n: u64,
}

impl Sha256Sink {
    pub fn new() -> Self {
        Sha256Sink { ctx: ring::digest::Context::new(&ring::digest::SHA256), n: 0 }
    }
    pub fn hex(self) -> String {
        hex::encode(self.ctx.finish())
    }
}

impl Write for Sha256Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.ctx.update(data);
        self.n += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of a backup file, streamed (a document is never held whole).
pub(super) fn sha256_of_entry(src: &dyn BackupSource, path: &str) -> GatewayResult<String> {
    let mut h = Sha256Sink::new();
    src.copy_into(path, &mut h).map_err(|e| invalid(format!("backup file {path}: {e}")))?;
    Ok(h.hex())
}

/// SHA-256 of a file of the home, read in bounded pieces; `None` when it is absent.
pub(super) fn sha256_of_file(path: &Path) -> GatewayResult<Option<String>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GatewayError::io(path, e)),
    };
    let mut h = Sha256Sink::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(GatewayError::io(path, e)),
        };
        h.ctx.update(&buf[..k]);
    }
    Ok(Some(h.hex()))
}

/// Where a restore keeps what it must not hold in memory: the backup's big parts while their rows
/// are read one at a time, and the plan's rows. A private folder (the rows hold the backup's
/// records) outside the home, `sophon-restore-plan-<pid>-<random>` in the temporary folder,
/// removed on drop, or by the next restore when its process is gone.
#[derive(Debug)]
pub(super) struct Spool {
    pub dir: std::path::PathBuf,
    next: std::cell::Cell<u64>,
}

impl Spool {
    pub fn new() -> GatewayResult<Spool> {
        const PREFIX: &str = "sophon-restore-plan-";
        let tmp = std::env::temp_dir();
        // A killed restore's folder is removed by the next one.
        crate::source::spool::remove_abandoned(&tmp, PREFIX);
        let suffix = hex::encode(crate::crypto::random_array::<8>().map_err(from_crate)?);
        let dir = tmp.join(format!("{PREFIX}{}-{suffix}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| GatewayError::io(&dir, e))?;
        Ok(Spool { dir, next: std::cell::Cell::new(0) })
    }

    /// A fresh file name in the spool.
    pub fn file(&self, what: &str) -> std::path::PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        self.dir.join(format!("{n}-{}", what.replace('/', "_")))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A part of the backup copied into the spool (refused past its cap), to be read as a stream.
pub(super) struct SpooledPart {
    pub path: String,
    file: std::path::PathBuf,
}

impl Drop for SpooledPart {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Copy a part into the spool; `None` when the backup does not hold it.
pub(super) fn spool_part(src: &dyn BackupSource, path: &str, spool: &Spool) -> GatewayResult<Option<SpooledPart>> {
    let Some(size) = src.size(path) else { return Ok(None) };
    let cap = gateway_part_cap(path);
    if size > cap {
        return Err(too_large(path, cap));
    }
    let part = SpooledPart { path: path.to_string(), file: spool.file(path) };
    let f = std::fs::File::create(&part.file).map_err(|e| GatewayError::io(&part.file, e))?;
    let mut out = CappedFile { f: std::io::BufWriter::new(f), n: 0, cap, over: false };
    match src.copy_into(path, &mut out) {
        Ok(_) => {}
        Err(_) if out.over => return Err(too_large(path, cap)),
        Err(e) => return Err(from_crate(e)),
    }
    out.f.flush().map_err(|e| GatewayError::io(&part.file, e))?;
    Ok(Some(part))
}

struct CappedFile {
    f: std::io::BufWriter<std::fs::File>,
    n: u64,
    cap: u64,
    over: bool,
}

impl Write for CappedFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.n + data.len() as u64 > self.cap {
            self.over = true;
            return Err(std::io::Error::other("over its cap"));
        }
        self.f.write_all(data)?;
        self.n += data.len() as u64;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.f.flush()
    }
}

/// Counts the bytes read since the last row ended; past [`ROW`] the read fails, so one row of a
/// part can never take more memory than that, whatever the part holds.
struct RowLimit {
    inner: std::fs::File,
    meter: std::rc::Rc<RowMeter>,
}

/// Bytes read since the last row ended, counted while rows are being read (not while a part's
/// other values are skipped, which takes no memory).
#[derive(Default)]
struct RowMeter {
    since_row: std::cell::Cell<u64>,
    active: std::cell::Cell<bool>,
}

impl RowMeter {
    fn row_starts(&self) {
        self.since_row.set(0);
    }
}

impl Read for RowLimit {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        let n = self.meter.since_row.get() + k as u64;
        self.meter.since_row.set(n);
        // The reader runs up to one buffer (64 KiB) ahead of the row being parsed.
        if self.meter.active.get() && n > ROW + (1 << 16) {
            return Err(std::io::Error::other(ROW_TOO_LARGE));
        }
        Ok(k)
    }
}

const ROW_TOO_LARGE: &str = "row over its cap";

fn row_too_large(path: &str) -> GatewayError {
    invalid(format!(
        "backup file {path}: a row is larger than {ROW} bytes ({} MiB), the most a restore reads of one row \
         (format-spec/export.md §5.1, reader bounds): refused",
        ROW >> 20
    ))
}

impl SpooledPart {
    fn reader(&self) -> GatewayResult<(std::io::BufReader<RowLimit>, std::rc::Rc<RowMeter>)> {
        let f = std::fs::File::open(&self.file).map_err(|e| GatewayError::io(&self.file, e))?;
        let meter = std::rc::Rc::new(RowMeter::default());
        let limited = RowLimit { inner: f, meter: meter.clone() };
        Ok((std::io::BufReader::with_capacity(1 << 16, limited), meter))
    }

    /// Every element of the part's rows, one at a time: the top-level array (`key` `None`), or the
    /// array under `key` of the top-level object. A part of another shape holds no rows.
    pub fn each(&self, key: Option<&str>, each: &mut dyn FnMut(Value) -> GatewayResult<()>) -> GatewayResult<()> {
        let mut failed = None;
        let (reader, meter) = self.reader()?;
        let mut de = serde_json::Deserializer::from_reader(reader);
        let top = Top { key, rows: Rows { each, failed: &mut failed, meter } };
        let parsed = serde::de::DeserializeSeed::deserialize(top, &mut de).and_then(|()| de.end());
        if let Some(e) = failed {
            return Err(e);
        }
        parsed.map_err(|e| {
            if e.to_string().contains(ROW_TOO_LARGE) {
                row_too_large(&self.path)
            } else {
                invalid(format!("backup file {}: {e}", self.path))
            }
        })
    }

    /// Every non-blank line of a JSON-lines part, parsed, one at a time.
    pub fn each_line(&self, each: &mut dyn FnMut(Value) -> GatewayResult<()>) -> GatewayResult<()> {
        let (mut r, meter) = self.reader()?;
        meter.active.set(true);
        let mut line = Vec::new();
        loop {
            line.clear();
            meter.row_starts();
            let n = std::io::BufRead::read_until(&mut (&mut r).take(ROW + 1), b'\n', &mut line).map_err(|e| {
                if e.to_string().contains(ROW_TOO_LARGE) {
                    row_too_large(&self.path)
                } else {
                    invalid(format!("backup file {}: {e}", self.path))
                }
            })?;
            if n == 0 {
                return Ok(());
            }
            if n as u64 > ROW {
                return Err(row_too_large(&self.path));
            }
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            each(serde_json::from_str(&text).map_err(|e| invalid(format!("backup file {}: {e}", self.path)))?)?;
        }
    }
}

/// The top level of a part: the rows are the array itself, or the array under one key.
struct Top<'a, 'f> {
    key: Option<&'a str>,
    rows: Rows<'f>,
}

struct Rows<'f> {
    each: &'f mut dyn FnMut(Value) -> GatewayResult<()>,
    failed: &'f mut Option<GatewayError>,
    meter: std::rc::Rc<RowMeter>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A part that is a scalar where rows were expected holds no rows: accepted as empty.
macro_rules! accept_scalars {
    () => {
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
    };
}

impl<'de> serde::de::Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array or object of records")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        match self.key {
            None => serde::de::Visitor::visit_seq(self.rows, seq),
            Some(_) => skip_seq(seq),
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut rows = Some(self.rows);
        while let Some(k) = map.next_key::<String>()? {
            match (Some(k.as_str()) == self.key, rows.take()) {
                (true, Some(r)) => map.next_value_seed(r)?,
                (_, r) => {
                    rows = r;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    accept_scalars!();
}

fn skip_seq<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> serde::de::DeserializeSeed<'de> for Rows<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Rows<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.meter.row_starts();
        self.meter.active.set(true);
        while let Some(v) = seq.next_element::<Value>()? {
            self.meter.row_starts();
            if let Err(e) = (self.each)(v) {
                *self.failed = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        self.meter.active.set(false);
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
    accept_scalars!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(spool: &Spool, bytes: &[u8]) -> SpooledPart {
        let file = spool.file("part");
        std::fs::write(&file, bytes).unwrap();
        SpooledPart { path: "x.json".into(), file }
    }

    fn rows(p: &SpooledPart, key: Option<&str>) -> GatewayResult<Vec<Value>> {
        let mut out = Vec::new();
        p.each(key, &mut |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn rows_come_one_at_a_time_from_an_array_or_the_array_under_a_key() {
        let spool = Spool::new().unwrap();
        let top = part(&spool, br#"[{"id": 1}, {"id": 2, "nested": [{"a": [1, 2]}]}]"#);
        assert_eq!(rows(&top, None).unwrap().len(), 2);
        assert!(rows(&top, Some("users")).unwrap().is_empty(), "an array has no key");
        let keyed = part(&spool, br#"{"tenants": [{"id": "t"}], "users": [{"id": "u1"}, {"id": "u2"}, {"id": "u3"}]}"#);
        assert_eq!(rows(&keyed, Some("users")).unwrap().len(), 3);
        assert_eq!(rows(&keyed, Some("tenants")).unwrap(), vec![serde_json::json!({"id": "t"})]);
        assert!(rows(&keyed, None).unwrap().is_empty(), "an object is not an array of rows");
        assert!(rows(&part(&spool, b"null"), None).unwrap().is_empty());
        let err = rows(&part(&spool, b"[{\"id\": 1}, {\"id\""), None).unwrap_err().to_string();
        assert!(err.contains("x.json"), "{err}");
    }

    #[test]
    fn a_row_over_its_cap_is_refused_and_skipped_values_are_not_counted() {
        let spool = Spool::new().unwrap();
        let big = " ".repeat(ROW as usize + (2 << 16));
        let p = part(&spool, format!("{{\"users\": [{{\"id\": 1}}, {{\"x\": 1{big}}}]}}").as_bytes());
        let err = rows(&p, Some("users")).unwrap_err().to_string();
        assert!(err.contains("x.json") && err.contains(&ROW.to_string()), "{err}");
        // The same bytes under a key that is not read take no memory: skipped, not refused.
        let p = part(&spool, format!("{{\"other\": [{{\"x\": 1{big}}}], \"users\": [{{\"id\": 1}}]}}").as_bytes());
        assert_eq!(rows(&p, Some("users")).unwrap().len(), 1);
        let lines = part(&spool, format!("{{\"a\": 1}}\n\n{{\"b\": 2{big}}}\n").as_bytes());
        let mut n = 0;
        let err = lines
            .each_line(&mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert_eq!(n, 1);
        assert!(err.contains(&ROW.to_string()), "{err}");
    }
}
