//! Reading an export back: open a zip or tar.gz (sealed or not), refuse anything unsafe before a
//! byte reaches a home, verify it against its manifest and its `SHA256SUMS`, and serve its files
//! to a restore.
//!
//! A zip is read in place (its central directory gives random access; a sealed one is decrypted
//! segment by segment as entries are read). A tar.gz has no index, so its files are unpacked once
//! into a staging folder (never into the home) and served from there.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::plan::{self, ROOT};
use super::render::ManifestFile;
use super::seal::{self, SealedFile};
use crate::error::{Error, Result};
use crate::format::export_meta::{ExportInfo, ExportMetadata, MAX_METADATA_BYTES};
use crate::format::layout::Layout;
use crate::source::BackupSource;

/// Deflate cannot expand data more than about 1032 times; a claim beyond this is a bomb.
const MAX_RATIO: u64 = 1100;
/// Entries a reader accepts, and the longest path.
const MAX_ENTRIES: usize = 10_000_000;
const MAX_PATH: usize = 4096;
/// Unix file types, as a zip's external attributes carry them in their high 16 bits.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

enum Backing {
    Zip(Mutex<::zip::ZipArchive<Box<dyn ReadSeek>>>),
    /// Unpacked into this folder (removed on drop).
    Staged(PathBuf),
}

/// Where one file of the archive is.
#[derive(Clone, Debug)]
struct Member {
    size: u64,
    /// Index in the zip's central directory.
    zip_index: usize,
}

/// An opened export.
pub struct ExportArchive {
    pub path: PathBuf,
    pub sealed: bool,
    pub format: super::Format,
    pub metadata: ExportMetadata,
    pub manifest: Vec<ManifestFile>,
    /// `SHA256SUMS` as (path, hex); `None` in an archive written before it was (format 1 exports
    /// of earlier builds).
    pub sums: Option<Vec<(String, String)>>,
    files: BTreeMap<String, Member>,
    backing: Backing,
}

/// On the backing, not the archive: an archive refused after it was unpacked (no readable
/// `metadata.json`, a bad manifest) never becomes an `ExportArchive`, and its folder must go too.
impl Drop for Backing {
    fn drop(&mut self) {
        if let Backing::Staged(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn refused(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::UnsafePath(format!("{}: {why}", path.display()))
}

/// The path below `backup/` of an archive member, or why it is refused. Folders end with `/`.
fn member_path(archive: &Path, name: &str) -> Result<Option<String>> {
    if name.len() > MAX_PATH {
        return Err(refused(archive, format!("an entry name is {} bytes long", name.len())));
    }
    let Some(rest) = name.strip_prefix(&format!("{ROOT}/")) else {
        if name == ROOT {
            return Ok(None);
        }
        return Err(refused(archive, format!("entry {name:?} is outside {ROOT}/ (unknown layout)")));
    };
    let trimmed = rest.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') || part.contains('\0') {
            return Err(refused(archive, format!("entry {name:?} would escape the restore folder")));
        }
    }
    Ok(Some(trimmed.to_string()))
}

/// The first bytes of a file, to tell sealed, zip and gzip apart.
fn sniff(r: &mut dyn Read) -> Result<Vec<u8>> {
    let mut head = vec![0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io("archive", e)),
        }
    }
    head.truncate(n);
    Ok(head)
}

impl ExportArchive {
    /// Open `path`; `passphrase` opens a sealed archive; a tar.gz is unpacked into a fresh folder
    /// under `staging`.
    pub fn open(path: &Path, passphrase: Option<&[u8]>, staging: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::open_from(path, f, passphrase, staging)
    }

    /// [`Self::open`] on bytes in memory (`name` stands for the path in messages): for tests and
    /// the fuzzer.
    pub fn open_bytes(name: &Path, bytes: Vec<u8>, passphrase: Option<&[u8]>, staging: &Path) -> Result<Self> {
        Self::open_from(name, std::io::Cursor::new(bytes), passphrase, staging)
    }

    fn open_from(
        path: &Path,
        mut f: impl Read + Seek + Send + 'static,
        passphrase: Option<&[u8]>,
        staging: &Path,
    ) -> Result<Self> {
        let head = sniff(&mut f)?;
        f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        let sealed = seal::is_sealed(&head);
        let mut reader: Box<dyn ReadSeek> = if sealed {
            let pass = passphrase.ok_or_else(|| {
                Error::invalid(format!(
                    "{} is sealed: give the passphrase (--passphrase-file or SOPHON_BACKUP_PASSPHRASE)",
                    path.display()
                ))
            })?;
            let sf = SealedFile::open(BufReader::with_capacity(1 << 16, f), pass).map_err(|e| with_path(path, e))?;
            Box::new(sf)
        } else {
            Box::new(BufReader::with_capacity(1 << 16, f))
        };
        let plain_head = sniff(&mut reader)?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        let (format, files, links, backing) = if plain_head.starts_with(b"PK\x03\x04")
            || plain_head.starts_with(b"PK\x05\x06")
        {
            open_zip(path, reader)?
        } else if plain_head.starts_with(&[0x1f, 0x8b]) {
            open_targz(path, reader, staging)?
        } else {
            return Err(Error::malformed(path.display().to_string(), "not a zip or tar.gz archive (nor a sealed one)"));
        };
        let metadata_bytes = read_member(path, &files, &backing, "metadata.json", MAX_METADATA_BYTES)?;
        let metadata = ExportMetadata::parse(&metadata_bytes, &format!("{}: metadata.json", path.display()))?;
        let mut a = ExportArchive {
            path: path.to_path_buf(),
            sealed,
            format,
            metadata,
            manifest: Vec::new(),
            sums: None,
            files,
            backing,
        };
        if let Some(link) = links.first().filter(|_| a.metadata.layout() != Layout::Files) {
            return Err(refused(
                path,
                format!("entry {link:?} is a symbolic link, which a gateway backup never holds"),
            ));
        }
        // Bounded by the layout's cap (format-spec/export.md §5.1) and parsed straight into the typed
        // list: a JSON tree of a large manifest would take several times its size.
        let cap = a.metadata.layout().manifest_cap();
        let bytes = read_member(&a.path, &a.files, &a.backing, plan::MANIFEST, cap)?;
        #[derive(serde::Deserialize)]
        struct Manifest {
            files: Vec<ManifestFile>,
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(format!("{}: manifest.json", path.display()), e.to_string()))?;
        drop(bytes);
        a.manifest = manifest.files;
        if a.files.contains_key(plan::SUMS) {
            let bytes = read_member(&a.path, &a.files, &a.backing, plan::SUMS, cap)?;
            let what = || format!("{}: {}", path.display(), plan::SUMS);
            let text = String::from_utf8(bytes).map_err(|_| Error::malformed(what(), "not UTF-8 text"))?;
            let sums = plan::parse_sha256sums(&text)
                .map_err(|line| Error::malformed(what(), format!("line {line} is not `<sha-256 hex>  <path>`")))?;
            a.sums = Some(sums);
        }
        Ok(a)
    }

    /// What `SHA256SUMS` says against the manifest (whose entries [`Self::verify`] checks against
    /// the content) and against `manifest.json` itself.
    fn verify_sums(&self, findings: &mut Vec<String>) -> Result<()> {
        let Some(sums) = &self.sums else { return Ok(()) };
        let by_path: BTreeMap<&str, &str> =
            self.manifest.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
        let mut seen = HashSet::new();
        for (path, sha) in sums {
            seen.insert(path.as_str());
            let want = if path == plan::MANIFEST {
                let mut h = HashingSink { sha: ring::digest::Context::new(&ring::digest::SHA256), n: 0 };
                self.copy(plan::MANIFEST, &mut h)?;
                hex::encode(h.sha.finish())
            } else {
                match by_path.get(path.as_str()) {
                    Some(m) => m.to_string(),
                    None => {
                        findings.push(format!("{}: lists {path}, which the manifest does not", plan::SUMS));
                        continue;
                    }
                }
            };
            if *sha != want {
                findings.push(format!("checksum: {} says SHA-256 {sha} for {path}, which has {want}", plan::SUMS));
            }
        }
        for f in self.manifest.iter().filter(|f| !seen.contains(f.path.as_str())) {
            findings.push(format!("{}: does not list {}", plan::SUMS, f.path));
        }
        if !seen.contains(plan::MANIFEST) {
            findings.push(format!("{}: does not list {}", plan::SUMS, plan::MANIFEST));
        }
        Ok(())
    }

    /// The `export` object of the metadata.
    pub fn export_info(&self) -> &ExportInfo {
        &self.metadata.export
    }

    pub fn export_id(&self) -> Option<&str> {
        self.metadata.export_id()
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn size(&self, path: &str) -> Option<u64> {
        self.files.get(path).map(|m| m.size)
    }

    /// Stream a file's content into `out`; returns its size. Reading more than the declared size
    /// is refused (a bomb), and so is reading less.
    pub fn copy(&self, path: &str, out: &mut dyn Write) -> Result<u64> {
        copy_member(&self.path, &self.files, &self.backing, path, out)
    }

    /// A whole (small) file.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        if !self.files.contains_key(path) {
            return Ok(None);
        }
        let mut v = Vec::new();
        self.copy(path, &mut v)?;
        Ok(Some(v))
    }

    /// Check the archive against its manifest, and `SHA256SUMS` against both; one finding per
    /// problem (empty: clean).
    pub fn verify(&self) -> Result<Vec<String>> {
        let mut findings = Vec::new();
        let listed: HashSet<&str> = self.manifest.iter().map(|f| f.path.as_str()).collect();
        for f in &self.manifest {
            match self.files.get(&f.path) {
                None => findings.push(format!("missing: {} is in the manifest but not in the archive", f.path)),
                Some(_) => {
                    let mut h = HashingSink { sha: ring::digest::Context::new(&ring::digest::SHA256), n: 0 };
                    match self.copy(&f.path, &mut h) {
                        Err(e) => findings.push(format!("unreadable: {}: {e}", f.path)),
                        Ok(_) => {
                            let sha = hex::encode(h.sha.finish());
                            if h.n != f.size {
                                findings
                                    .push(format!("size: {} has {} bytes, the manifest says {}", f.path, h.n, f.size));
                            } else if sha != f.sha256 {
                                findings.push(format!(
                                    "checksum: {} has SHA-256 {sha}, the manifest says {}",
                                    f.path, f.sha256
                                ));
                            }
                        }
                    }
                }
            }
        }
        for p in self.files.keys() {
            if p != plan::MANIFEST && p != plan::SUMS && !listed.contains(p.as_str()) {
                findings.push(format!("unlisted: {p} is in the archive but not in the manifest"));
            }
        }
        self.verify_sums(&mut findings)?;
        Ok(findings)
    }
}

struct HashingSink {
    sha: ring::digest::Context,
    n: u64,
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sha.update(buf);
        self.n += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_path(path: &Path, e: Error) -> Error {
    match e {
        Error::Authentication { what } => Error::Authentication { what: format!("{}: {what}", path.display()) },
        Error::Malformed { what, reason } => Error::Malformed { what: format!("{}: {what}", path.display()), reason },
        other => other,
    }
}

/// The library error a sealed reader reported through `io::Error`, or the I/O error itself.
fn unwrap_io(e: std::io::Error) -> std::result::Result<Error, std::io::Error> {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Ok(seal::error_from_io(e));
    }
    Err(e)
}

fn zip_err(path: &Path, e: ::zip::result::ZipError) -> Error {
    match e {
        ::zip::result::ZipError::Io(io) => match unwrap_io(io) {
            Ok(inner) => with_path(path, inner),
            Err(io) => Error::io(path, io),
        },
        other => Error::malformed(path.display().to_string(), other.to_string()),
    }
}

/// Copy at most `limit` bytes; one more is a bomb (or a lie).
fn copy_limited(r: impl Read, out: &mut dyn Write, limit: u64, what: &dyn Fn() -> String) -> Result<u64> {
    let mut r = r.take(limit + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) => {
                return Err(match unwrap_io(e) {
                    Ok(inner) => inner,
                    Err(e) => Error::malformed(what(), e.to_string()),
                })
            }
        };
        n += k as u64;
        if n > limit {
            return Err(Error::TooLarge { what: what(), limit });
        }
        out.write_all(&buf[..k]).map_err(|e| Error::io(what(), e))?;
    }
    Ok(n)
}

/// Stream member `path` into `out`; returns its size. Reading more than the declared size is
/// refused (a bomb), and so is reading less.
fn copy_member(
    archive: &Path,
    files: &BTreeMap<String, Member>,
    backing: &Backing,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let m = files.get(path).ok_or_else(|| Error::NotFound(format!("{path} is not in the archive")))?;
    let what = || format!("{}: {ROOT}/{path}", archive.display());
    let n = match backing {
        Backing::Zip(z) => {
            let mut z = z.lock().map_err(|_| Error::invalid("archive reader poisoned"))?;
            let entry = z.by_index(m.zip_index).map_err(|e| zip_err(archive, e))?;
            copy_limited(entry, out, m.size, &what)?
        }
        Backing::Staged(dir) => {
            let f = File::open(dir.join(path)).map_err(|e| Error::io(dir.join(path), e))?;
            copy_limited(f, out, m.size, &what)?
        }
    };
    if n != m.size {
        return Err(Error::malformed(what(), format!("holds {n} bytes, its header says {}", m.size)));
    }
    Ok(n)
}

/// One of the generated files every export has (`metadata.json`, `manifest.json`, `SHA256SUMS`), whole; one
/// declared larger than `limit` is refused before it is read.
fn read_member(
    archive: &Path,
    files: &BTreeMap<String, Member>,
    backing: &Backing,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let Some(m) = files.get(name) else {
        return Err(Error::malformed(archive.display().to_string(), format!("no {ROOT}/{name}: not a Sophon export")));
    };
    if m.size > limit {
        return Err(Error::TooLarge { what: format!("{}: {ROOT}/{name}", archive.display()), limit });
    }
    let mut v = Vec::new();
    copy_member(archive, files, backing, name, &mut v)?;
    Ok(v)
}

/// Format, files, symbolic links (paths), and where the bytes are.
type Opened = (super::Format, BTreeMap<String, Member>, Vec<String>, Backing);

/// The number of entries the end of central directory record declares (zip64's if present).
/// The zip crate indexes entries by name, so duplicates would vanish silently without this count.
fn declared_entries(path: &Path, r: &mut dyn ReadSeek) -> Result<u64> {
    let io = |e| Error::io(path, e);
    let len = r.seek(SeekFrom::End(0)).map_err(io)?;
    let tail_len = len.min(22 + 65_535 + 20);
    r.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
    let mut tail = vec![0u8; tail_len as usize];
    r.read_exact(&mut tail).map_err(io)?;
    let bad = || Error::malformed(path.display().to_string(), "no end of central directory record");
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(bad)?;
    let total = u16::from_le_bytes([tail[at + 10], tail[at + 11]]) as u64;
    if total != 0xFFFF || at < 20 || tail[at - 20..at - 16] != [0x50, 0x4b, 0x06, 0x07] {
        return Ok(total);
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&tail[at - 12..at - 4]);
    let zip64_end = u64::from_le_bytes(off);
    r.seek(SeekFrom::Start(zip64_end)).map_err(io)?;
    let mut rec = [0u8; 56];
    r.read_exact(&mut rec).map_err(io)?;
    if rec[..4] != [0x50, 0x4b, 0x06, 0x06] {
        return Err(bad());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rec[32..40]);
    Ok(u64::from_le_bytes(n))
}

fn open_zip(path: &Path, mut reader: Box<dyn ReadSeek>) -> Result<Opened> {
    let declared = declared_entries(path, &mut reader)?;
    reader.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let mut z = ::zip::ZipArchive::new(reader).map_err(|e| zip_err(path, e))?;
    if z.len() > MAX_ENTRIES {
        return Err(refused(path, format!("{} entries", z.len())));
    }
    if declared != z.len() as u64 {
        return Err(refused(
            path,
            format!("the central directory lists {declared} entries under {} names: an entry appears twice", z.len()),
        ));
    }
    let mut files = BTreeMap::new();
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..z.len() {
        let e = z.by_index_raw(i).map_err(|e| zip_err(path, e))?;
        let name = e.name().to_string();
        if !seen.insert(name.clone()) {
            return Err(refused(path, format!("entry {name:?} appears twice")));
        }
        let Some(rel) = member_path(path, &name)? else { continue };
        // The Unix file type in the external attributes (§3): a FIFO, device or socket is refused,
        // whatever its name says; an entry without a Unix type is a folder or a file by its name.
        let kind = e.unix_mode().map_or(0, |m| m & S_IFMT);
        if ![0, S_IFREG, S_IFDIR, S_IFLNK].contains(&kind) {
            return Err(refused(
                path,
                format!("entry {name:?} is not a regular file, folder or symbolic link (Unix file type {kind:#o})"),
            ));
        }
        if e.is_dir() {
            continue;
        }
        if e.is_symlink() {
            // Allowed in a folder backup's export (checked against the layout once it is known).
            links.push(rel);
            continue;
        }
        let (size, packed) = (e.size(), e.compressed_size());
        if size > packed.saturating_mul(MAX_RATIO).max(1 << 20) {
            return Err(refused(
                path,
                format!("entry {name:?} claims {size} bytes from {packed} (a decompression bomb)"),
            ));
        }
        if files.insert(rel.clone(), Member { size, zip_index: i }).is_some() {
            return Err(refused(path, format!("entry {name:?} appears twice")));
        }
    }
    Ok((super::Format::Zip, files, links, Backing::Zip(Mutex::new(z))))
}

/// Counts the compressed bytes a gzip decoder consumes (for the ratio limit).
struct CountingRead<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

fn open_targz(path: &Path, reader: Box<dyn ReadSeek>, staging: &Path) -> Result<Opened> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
    crate::source::spool::remove_abandoned(staging, "unpack-");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = staging.join(format!("unpack-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let result = unpack(path, reader, &dir);
    match result {
        Ok((files, links)) => Ok((super::Format::TarGz, files, links, Backing::Staged(dir))),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

fn unpack(path: &Path, reader: Box<dyn ReadSeek>, dir: &Path) -> Result<(BTreeMap<String, Member>, Vec<String>)> {
    let packed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = CountingRead { inner: reader, n: std::sync::Arc::clone(&packed) };
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counting));
    let mut tar = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut links = Vec::new();
    let mut unpacked = 0u64;
    let entries = tar.entries().map_err(|e| io_or_damage(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io_or_damage(path, e))?;
        let name = {
            let p = entry.path().map_err(|e| io_or_damage(path, e))?;
            p.to_str().ok_or_else(|| refused(path, "an entry name is not UTF-8"))?.to_string()
        };
        if files.len() > MAX_ENTRIES {
            return Err(refused(path, "too many entries"));
        }
        let kind = entry.header().entry_type();
        let Some(rel) = member_path(path, &name)? else { continue };
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() {
            // Never materialised; allowed in a folder backup's export only (checked later).
            links.push(rel);
            continue;
        }
        if !kind.is_file() {
            return Err(refused(path, format!("entry {name:?} is not a regular file or folder ({kind:?})")));
        }
        if files.contains_key(&rel) {
            return Err(refused(path, format!("entry {name:?} appears twice")));
        }
        let size = entry.size();
        let target = dir.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut out = File::options().write(true).create_new(true).open(&target).map_err(|e| Error::io(&target, e))?;
        let what = || format!("{}: {name}", path.display());
        let n = copy_limited(&mut entry, &mut out, size, &what)?;
        if n != size {
            return Err(Error::malformed(what(), format!("holds {n} bytes, its header says {size}")));
        }
        unpacked += n;
        let consumed = packed.load(std::sync::atomic::Ordering::Relaxed);
        if unpacked > (1 << 20) && unpacked > consumed.saturating_mul(MAX_RATIO) {
            return Err(refused(path, format!("{unpacked} bytes from {consumed} compressed (a decompression bomb)")));
        }
        files.insert(rel, Member { size, zip_index: 0 });
    }
    Ok((files, links))
}

fn io_or_damage(path: &Path, e: std::io::Error) -> Error {
    match unwrap_io(e) {
        Ok(inner) => with_path(path, inner),
        Err(e) => Error::malformed(path.display().to_string(), e.to_string()),
    }
}

impl BackupSource for ExportArchive {
    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
    fn size(&self, path: &str) -> Option<u64> {
        ExportArchive::size(self, path)
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        ExportArchive::read(self, path)
    }
    fn copy_into(&self, path: &str, out: &mut dyn Write) -> Result<u64> {
        self.copy(path, out)
    }
    fn copy_to(&self, path: &str, dest: &Path) -> Result<()> {
        let mut f = File::create(dest).map_err(|e| Error::io(dest, e))?;
        self.copy(path, &mut f)?;
        f.sync_all().map_err(|e| Error::io(dest, e))
    }
}
