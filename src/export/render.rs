//! Rendering entries into a zip or tar.gz stream. Blobs are read from the repository and
//! compressed on every core, in order, a bounded window at a time; the writer computes each
//! file's CRC-32 and SHA-256 (for the manifest) as the bytes pass.
//!
//! Deflate runs on independent pieces: a zip entry is the concatenation of its chunks' deflate
//! streams (each ended with a sync flush, the last with a final block; a file of one piece that
//! does not shrink is stored instead), and a tar.gz is one gzip
//! member made of 1 MiB blocks compressed the same way, each primed with the previous block's last
//! 32 KiB as its dictionary (what `pigz` does). Incompressible pieces are stored: a sample decides
//! before any real compression is spent on them.

use std::io::Write;
use std::sync::Arc;

use flate2::{Compress, Compression, FlushCompress};

use super::fetch::BlobFetcher;
use super::ordered::ordered_map;
use super::plan::{Entry, EntryKind, ROOT};
use super::zip::{Method, ZipWriter};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repo::Repository;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    #[serde(rename = "zip")]
    Zip,
    #[serde(rename = "tar.gz")]
    TarGz,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }
}

impl Format {
    /// The extensions an archive's name may end with (any case), and the format each one means.
    pub const EXTENSIONS: [(&'static str, Format); 3] =
        [(".zip", Format::Zip), (".tar.gz", Format::TarGz), (".tgz", Format::TarGz)];

    /// The format an archive's name announces; `None` when it ends with none of [`Self::EXTENSIONS`]
    /// (then the caller must say which format it wants rather than have one guessed).
    pub fn from_archive_name(name: &str) -> Option<Format> {
        let n = name.to_ascii_lowercase();
        Self::EXTENSIONS.iter().find(|(ext, _)| n.ends_with(ext)).map(|&(_, f)| f)
    }

    /// `.zip, .tar.gz, .tgz`, for messages.
    pub fn extensions_list() -> String {
        Self::EXTENSIONS.map(|(ext, _)| ext).join(", ")
    }
}

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub format: Format,
    /// Deflate level, 1..=9.
    pub level: u32,
    pub workers: usize,
    /// Counted as file content is written (`bytes_done`, `files_done`).
    pub progress: Option<Arc<crate::archive::Progress>>,
}

impl RenderOptions {
    /// Count `bytes` of a file's content written, and the file when `file_done`.
    pub(crate) fn tick(&self, bytes: u64, file_done: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(p) = &self.progress {
            p.bytes_done.fetch_add(bytes, Relaxed);
            p.files_done.fetch_add(u64::from(file_done), Relaxed);
        }
    }
}

/// A file of the archive as the manifest lists it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Generated content written after the tree's entries (metadata.json, manifest.json).
pub struct Extra {
    pub path: String,
    pub data: Vec<u8>,
    pub mtime: i64,
}

/// What was written: the manifest of the tree's files and the byte counts.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<ManifestFile>,
    pub bytes_in: u64,
}

pub(crate) enum Source {
    Blob(BlobId),
    Bytes(Arc<Vec<u8>>),
}

/// One piece of work, in archive order.
enum Unit {
    Dir(usize),
    Symlink(usize),
    /// A file's piece: entry, source, first and last piece of the file.
    Piece(usize, Source, bool, bool),
    Empty(usize),
}

struct Piece {
    raw: Vec<u8>,
    crc: u32,
    deflated: Option<Vec<u8>>,
}

enum Done {
    Dir(usize),
    Symlink(usize),
    Piece(usize, Piece, bool, bool),
    Empty(usize),
}

/// Entries as the archive holds them: the tree's, then the extras (addressed by index past the
/// tree's).
struct All<'a> {
    entries: &'a [Entry],
    extras: &'a [Extra],
}

impl All<'_> {
    fn len(&self) -> usize {
        self.entries.len() + self.extras.len()
    }

    fn path(&self, i: usize) -> &str {
        match self.entries.get(i) {
            Some(e) => &e.path,
            None => &self.extras[i - self.entries.len()].path,
        }
    }

    /// Mode and mtime.
    fn meta(&self, i: usize) -> (u32, i64) {
        match self.entries.get(i) {
            Some(e) => (e.mode, e.mtime),
            None => (0o600, self.extras[i - self.entries.len()].mtime),
        }
    }

    fn size(&self, i: usize) -> u64 {
        match self.entries.get(i) {
            Some(Entry { kind: EntryKind::File { size, .. }, .. }) => *size,
            Some(_) => 0,
            None => self.extras[i - self.entries.len()].data.len() as u64,
        }
    }

    fn units(&self) -> impl Iterator<Item = Result<Unit>> + '_ {
        (0..self.len()).flat_map(move |i| -> Vec<Result<Unit>> {
            match self.entries.get(i) {
                Some(e) => match &e.kind {
                    EntryKind::Dir => vec![Ok(Unit::Dir(i))],
                    EntryKind::Symlink { .. } => vec![Ok(Unit::Symlink(i))],
                    EntryKind::File { content, .. } if content.is_empty() => vec![Ok(Unit::Empty(i))],
                    EntryKind::File { content, .. } => {
                        let n = content.len();
                        content
                            .iter()
                            .enumerate()
                            .map(|(k, id)| Ok(Unit::Piece(i, Source::Blob(*id), k == 0, k + 1 == n)))
                            .collect()
                    }
                },
                None => {
                    let data = Arc::new(self.extras[i - self.entries.len()].data.clone());
                    if data.is_empty() {
                        vec![Ok(Unit::Empty(i))]
                    } else {
                        vec![Ok(Unit::Piece(i, Source::Bytes(data), true, true))]
                    }
                }
            }
        })
    }
}

/// Render `entries` and then the extras that `extras` makes from the tree files' manifest.
pub fn render(
    repo: &Repository,
    entries: &[Entry],
    extras: impl FnOnce(&[ManifestFile]) -> Result<Vec<Extra>> + Send,
    out: &mut dyn Write,
    opts: &RenderOptions,
) -> Result<Rendered> {
    let mut rendered = Rendered::default();
    match opts.format {
        Format::Zip => {
            let mut zip = ZipWriter::new(out);
            zip.dir(ROOT, 0o755, entries.first().map(|e| e.mtime).unwrap_or(0))?;
            let mut state = FileState::default();
            let all = All { entries, extras: &[] };
            zip_pass(repo, &all, &mut zip, &mut state, &mut rendered, opts)?;
            let extra = extras(&rendered.files)?;
            let all = All { entries: &[], extras: &extra };
            let mut tail = Rendered::default();
            zip_pass(repo, &all, &mut zip, &mut state, &mut tail, opts)?;
            rendered.bytes_in += tail.bytes_in;
            zip.finish()?;
        }
        Format::TarGz => {
            super::targz::render(repo, entries, extras, out, opts, &mut rendered)?;
        }
    }
    Ok(rendered)
}

#[derive(Default)]
struct FileState {
    method: Option<Method>,
    crc: Option<crc32fast::Hasher>,
    sha: Option<ring::digest::Context>,
    size: u64,
}

fn zip_pass(
    repo: &Repository,
    all: &All<'_>,
    zip: &mut ZipWriter<&mut dyn Write>,
    st: &mut FileState,
    rendered: &mut Rendered,
    opts: &RenderOptions,
) -> Result<()> {
    let level = opts.level;
    let blobs = BlobFetcher::new(repo);
    let work = |u: Unit| -> Result<Done> {
        Ok(match u {
            Unit::Dir(i) => Done::Dir(i),
            Unit::Symlink(i) => Done::Symlink(i),
            Unit::Empty(i) => Done::Empty(i),
            Unit::Piece(i, src, first, last) => {
                let raw = fetch(&blobs, src, all.path(i))?;
                let crc = crc32fast::hash(&raw);
                let mut deflated = deflate_if_worth_it(&raw, level, last, None)?;
                // A file of several pieces is always deflated (its first piece cannot speak for
                // the rest); its incompressible pieces become deflate's stored blocks, here on a
                // worker rather than in the writer.
                if deflated.is_none() && !(first && last) {
                    deflated = Some(deflate(&raw, 0, last, None)?);
                }
                Done::Piece(i, Piece { raw, crc, deflated }, first, last)
            }
        })
    };
    let name = |i: usize| format!("{ROOT}/{}", all.path(i));
    let sink = |d: Done| -> Result<()> {
        match d {
            Done::Dir(i) => {
                let (mode, mtime) = all.meta(i);
                zip.dir(&name(i), mode, mtime)
            }
            Done::Symlink(i) => {
                let (mode, mtime) = all.meta(i);
                let Some(Entry { kind: EntryKind::Symlink { target }, .. }) = all.entries.get(i) else {
                    return Err(Error::invalid("export: symlink entry without a target"));
                };
                zip.symlink(&name(i), mode, mtime, target)
            }
            Done::Empty(i) => {
                let (mode, mtime) = all.meta(i);
                zip.start_file(&name(i), mode, mtime, Method::Stored, 0)?;
                zip.end_file(0, 0)?;
                opts.tick(0, true);
                rendered.files.push(ManifestFile {
                    path: all.path(i).to_string(),
                    size: 0,
                    sha256: EMPTY_SHA256.into(),
                });
                Ok(())
            }
            Done::Piece(i, p, first, last) => {
                if first {
                    let (mode, mtime) = all.meta(i);
                    let method = if p.deflated.is_some() { Method::Deflate } else { Method::Stored };
                    zip.start_file(&name(i), mode, mtime, method, all.size(i))?;
                    *st = FileState {
                        method: Some(method),
                        crc: Some(crc32fast::Hasher::new()),
                        sha: Some(ring::digest::Context::new(&ring::digest::SHA256)),
                        size: 0,
                    };
                }
                let (Some(method), Some(crc), Some(sha)) = (st.method, st.crc.as_mut(), st.sha.as_mut()) else {
                    return Err(Error::invalid("export: a file's piece arrived before its start"));
                };
                crc.combine(&crc32fast::Hasher::new_with_initial_len(p.crc, p.raw.len() as u64));
                sha.update(&p.raw);
                st.size += p.raw.len() as u64;
                rendered.bytes_in += p.raw.len() as u64;
                if i < all.entries.len() {
                    opts.tick(p.raw.len() as u64, last);
                }
                match (method, p.deflated) {
                    (Method::Stored, _) => zip.data(&p.raw)?,
                    (Method::Deflate, Some(d)) => zip.data(&d)?,
                    (Method::Deflate, None) => {
                        return Err(Error::invalid("export: a deflated file's piece came without its deflate stream"))
                    }
                }
                if last {
                    let expected = all.size(i);
                    if st.size != expected {
                        return Err(Error::malformed(
                            format!("snapshot file {}", all.path(i)),
                            format!("its chunks hold {} bytes, its tree entry says {expected}", st.size),
                        ));
                    }
                    let crc = st.crc.take().map(|c| c.finalize()).unwrap_or(0);
                    let sha = st.sha.take().map(|s| hex::encode(s.finish())).unwrap_or_default();
                    zip.end_file(crc, st.size)?;
                    rendered.files.push(ManifestFile { path: all.path(i).to_string(), size: st.size, sha256: sha });
                }
                Ok(())
            }
        }
    };
    let workers = opts.workers.max(1);
    ordered_map(all.units(), workers, 2 * workers + 2, work, sink)
}

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(crate) fn fetch(blobs: &BlobFetcher<'_>, src: Source, path: &str) -> Result<Vec<u8>> {
    match src {
        Source::Blob(id) => blobs.read(&id).map_err(|e| match e {
            Error::NotFound(m) => Error::NotFound(format!("{path}: {m}")),
            other => other.used_by(|| format!("file {path}")),
        }),
        Source::Bytes(b) => Ok(b.as_ref().clone()),
    }
}

/// Deflate `raw` as one piece of a longer stream: ended with a sync flush, or with the final block
/// when `last`; primed with `dictionary` (the 32 KiB before it) if given.
pub(crate) fn deflate(raw: &[u8], level: u32, last: bool, dictionary: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if let Some(d) = dictionary.filter(|d| !d.is_empty()) {
        c.set_dictionary(d).map_err(|e| Error::invalid(format!("deflate dictionary: {e}")))?;
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 100 + 64);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&raw[consumed.min(raw.len())..], &mut out, flush)
            .map_err(|e| Error::invalid(format!("deflate: {e}")))?;
        let done = c.total_in() as usize >= raw.len()
            && match flush {
                FlushCompress::Finish => status == flate2::Status::StreamEnd,
                _ => out.len() < out.capacity(),
            };
        if done {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// Deflated `raw`, or `None` when it is not worth it: a sample (the start, middle and end, 16 KiB
/// each, at the fastest level) decides before real work is spent, and a result that does not
/// shrink by at least 2% is dropped.
pub(crate) fn deflate_if_worth_it(raw: &[u8], level: u32, last: bool, dict: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
    const SAMPLE: usize = 16 << 10;
    if raw.len() > 4 * SAMPLE {
        let mid = raw.len() / 2 - SAMPLE / 2;
        let mut sampled = 0usize;
        let mut packed = 0usize;
        for s in [&raw[..SAMPLE], &raw[mid..mid + SAMPLE], &raw[raw.len() - SAMPLE..]] {
            sampled += s.len();
            packed += deflate(s, 1, true, None)?.len();
        }
        if packed * 100 > sampled * 97 {
            return Ok(None);
        }
    }
    let d = deflate(raw, level, last, dict)?;
    Ok(if d.len() * 100 <= raw.len() * 98 { Some(d) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn concatenated_pieces_inflate_to_the_whole() {
        let text: Vec<u8> = (0..300_000u32).flat_map(|i| format!("line {} of text\n", i % 977).into_bytes()).collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let pieces = [&text[..100_000], &noise[..], &text[100_000..]];
        let mut stream = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            let last = k + 1 == pieces.len();
            let dict = if k > 0 { Some(&pieces[k - 1][pieces[k - 1].len().saturating_sub(32 << 10)..]) } else { None };
            match deflate_if_worth_it(p, 6, last, dict).unwrap() {
                Some(d) => stream.extend_from_slice(&d),
                None => stream.extend_from_slice(&deflate(p, 0, last, None).unwrap()),
            }
        }
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&stream[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, pieces.concat());
        assert!(deflate_if_worth_it(&noise, 6, true, None).unwrap().is_none(), "noise is stored");
    }
}
