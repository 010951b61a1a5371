//! tar.gz rendering: a POSIX (ustar + PAX) tar stream, cut into 1 MiB blocks that are deflated
//! on every core and joined into one gzip member, as `pigz` does. Two stages run side by side:
//! one reads the snapshot's blobs and lays out the tar stream, the other compresses and writes.

use std::io::Write;

use crossbeam_channel::bounded;

use super::ordered::ordered_map;
use super::plan::{Entry, EntryKind, ROOT};
use super::render::{deflate, deflate_if_worth_it, fetch, Extra, ManifestFile, RenderOptions, Rendered, EMPTY_SHA256};
use crate::error::{Error, Result};

const BLOCK: usize = 1 << 20;
const WINDOW: usize = 32 << 10;
/// The largest size a ustar header holds (11 octal digits); bigger files get a PAX `size`.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

struct Block {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
}

struct Packed {
    deflated: Vec<u8>,
    crc: u32,
    len: u64,
}

pub(crate) fn render(
    repo: &crate::repo::Repository,
    entries: &[Entry],
    extras: impl FnOnce(&[ManifestFile]) -> Result<Vec<Extra>> + Send,
    out: &mut dyn Write,
    opts: &RenderOptions,
    rendered: &mut Rendered,
) -> Result<()> {
    let workers = opts.workers.max(1);
    let level = opts.level;
    let (block_tx, block_rx) = bounded::<Result<Block>>(workers + 1);
    std::thread::scope(|scope| -> Result<()> {
        let layout = std::thread::Builder::new()
            .name("sophon-tar".into())
            .spawn_scoped(scope, move || -> Result<Rendered> {
                let mut tar = TarStream { cutter: Cutter { tx: block_tx, buf: Vec::with_capacity(BLOCK), held: None } };
                let mut r = Rendered::default();
                let result = (|| {
                    tar.header(
                        &format!("{ROOT}/"),
                        b'5',
                        0,
                        0o755,
                        entries.first().map(|e| e.mtime).unwrap_or(0),
                        None,
                    )?;
                    write_entries(repo, entries, &[], &mut tar, &mut r, opts)?;
                    let extra = extras(&r.files)?;
                    let mut tail = Rendered::default();
                    write_entries(repo, &[], &extra, &mut tar, &mut tail, opts)?;
                    r.bytes_in += tail.bytes_in;
                    tar.put(&[0u8; 1024])?;
                    tar.cutter.close()
                })();
                if let Err(e) = &result {
                    let _ = tar.cutter.tx.send(Err(Error::invalid(e.to_string())));
                }
                result.map(|_| r)
            })
            .map_err(|e| Error::io("sophon-tar", e))?;

        // gzip header: deflate, no flags, no time, unknown OS... Unix (3).
        let mut io = |b: &[u8]| out.write_all(b).map_err(|e| Error::io(super::OUTPUT, e));
        io(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        let mut crc = crc32fast::Hasher::new();
        let mut total = 0u64;
        let compress = |b: Block| -> Result<Packed> {
            let crc = crc32fast::hash(&b.data);
            let deflated = match deflate_if_worth_it(&b.data, level, b.last, Some(&b.dictionary))? {
                Some(d) => d,
                None => deflate(&b.data, 0, b.last, None)?,
            };
            Ok(Packed { deflated, crc, len: b.data.len() as u64 })
        };
        let written = ordered_map(block_rx.into_iter(), workers, 2 * workers + 2, compress, |p| {
            crc.combine(&crc32fast::Hasher::new_with_initial_len(p.crc, p.len));
            total += p.len;
            io(&p.deflated)
        });
        let laid_out = layout.join().map_err(|_| Error::invalid("the tar layout thread panicked"))?;
        // The layout's own error is the cause; a compression error otherwise.
        let r = laid_out?;
        written?;
        io(&crc.finalize().to_le_bytes())?;
        io(&(total as u32).to_le_bytes())?;
        out.flush().map_err(|e| Error::io(super::OUTPUT, e))?;
        *rendered = r;
        Ok(())
    })
}

fn write_entries(
    repo: &crate::repo::Repository,
    entries: &[Entry],
    extras: &[Extra],
    tar: &mut TarStream,
    r: &mut Rendered,
    opts: &RenderOptions,
) -> Result<()> {
    let workers = opts.workers.max(1);
    // Units: (index, piece number, piece count); extras are indexed after the entries.
    let units = (0..entries.len() + extras.len()).flat_map(|i| {
        let n = match entries.get(i) {
            Some(Entry { kind: EntryKind::File { content, .. }, .. }) => content.len(),
            _ => 0,
        };
        let pieces = if i >= entries.len() { 1 } else { n };
        (0..pieces.max(1)).map(move |k| Ok((i, k, pieces)))
    });
    let path = |i: usize| entries.get(i).map(|e| e.path.as_str()).unwrap_or_else(|| &extras[i - entries.len()].path);
    let blobs = super::fetch::BlobFetcher::new(repo);
    let fetch_piece = |(i, k, pieces): (usize, usize, usize)| -> Result<(usize, usize, usize, Vec<u8>)> {
        let data = match entries.get(i) {
            Some(Entry { kind: EntryKind::File { content, .. }, .. }) if pieces > 0 => {
                fetch(&blobs, super::render::Source::Blob(content[k]), path(i))?
            }
            Some(_) => Vec::new(),
            None => extras[i - entries.len()].data.clone(),
        };
        Ok((i, k, pieces, data))
    };
    let mut sha: Option<ring::digest::Context> = None;
    let mut size = 0u64;
    ordered_map(units, workers, 2 * workers + 2, fetch_piece, |(i, k, pieces, data)| {
        let name = format!("{ROOT}/{}", path(i));
        let (kind, declared, mode, mtime) = match entries.get(i) {
            Some(e) => match &e.kind {
                EntryKind::Dir => (b'5', 0, e.mode, e.mtime),
                EntryKind::Symlink { .. } => (b'2', 0, e.mode, e.mtime),
                EntryKind::File { size, .. } => (b'0', *size, e.mode, e.mtime),
            },
            None => {
                let x = &extras[i - entries.len()];
                (b'0', x.data.len() as u64, 0o600, x.mtime)
            }
        };
        match kind {
            b'5' => tar.header(&format!("{name}/"), b'5', 0, mode, mtime, None),
            b'2' => {
                let target = match entries.get(i).map(|e| &e.kind) {
                    Some(EntryKind::Symlink { target }) => target.clone(),
                    _ => Vec::new(),
                };
                tar.header(&name, b'2', 0, mode, mtime, Some(&target))
            }
            _ => {
                if k == 0 {
                    tar.header(&name, b'0', declared, mode, mtime, None)?;
                    sha = Some(ring::digest::Context::new(&ring::digest::SHA256));
                    size = 0;
                }
                if let Some(s) = sha.as_mut() {
                    s.update(&data);
                }
                size += data.len() as u64;
                r.bytes_in += data.len() as u64;
                if i < entries.len() {
                    opts.tick(data.len() as u64, k + 1 >= pieces);
                }
                tar.put(&data)?;
                if k + 1 >= pieces {
                    if size != declared {
                        return Err(Error::malformed(
                            format!("snapshot file {}", path(i)),
                            format!("its chunks hold {size} bytes, its tree entry says {declared}"),
                        ));
                    }
                    let pad = (512 - (size % 512) as usize) % 512;
                    tar.put(&vec![0u8; pad])?;
                    let sha256 = match sha.take() {
                        Some(s) if size > 0 => hex::encode(s.finish()),
                        _ => EMPTY_SHA256.to_string(),
                    };
                    r.files.push(ManifestFile { path: path(i).to_string(), size, sha256 });
                }
                Ok(())
            }
        }
    })
}

struct TarStream {
    cutter: Cutter,
}

impl TarStream {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.cutter.put(bytes)
    }

    /// A ustar header, preceded by a PAX extended header when the name, the link target or the
    /// size does not fit.
    fn header(&mut self, name: &str, kind: u8, size: u64, mode: u32, mtime: i64, link: Option<&[u8]>) -> Result<()> {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut h = tar::Header::new_ustar();
        if h.set_path(name).is_err() || name.len() > 100 {
            pax.push(("path", name.as_bytes().to_vec()));
            let short: String = name.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
            h.set_path(short.trim_start_matches('/')).map_err(|e| Error::invalid(format!("tar name {name}: {e}")))?;
        }
        if let Some(target) = link {
            if target.len() > 100 || h.set_link_name_literal(target).is_err() {
                pax.push(("linkpath", target.to_vec()));
                h.set_link_name_literal(b"PaxHeaders-linkpath").map_err(|e| Error::invalid(format!("tar: {e}")))?;
            }
        }
        if size > USTAR_MAX_SIZE {
            pax.push(("size", size.to_string().into_bytes()));
            h.set_size(0);
        } else {
            h.set_size(size);
        }
        h.set_mode(mode & 0o7777);
        h.set_mtime(mtime.max(0) as u64);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (key, value) in &pax {
                records.extend_from_slice(&pax_record(key, value));
            }
            let mut x = tar::Header::new_ustar();
            x.set_path("PaxHeaders/entry").map_err(|e| Error::invalid(format!("tar: {e}")))?;
            x.set_size(records.len() as u64);
            x.set_mode(0o644);
            x.set_mtime(mtime.max(0) as u64);
            x.set_entry_type(tar::EntryType::XHeader);
            x.set_cksum();
            self.put(x.as_bytes())?;
            let pad = (512 - records.len() % 512) % 512;
            records.resize(records.len() + pad, 0);
            self.put(&records)?;
        }
        self.put(h.as_bytes())
    }
}

/// `"<length> <key>=<value>\n"`, where the length counts the whole record, itself included.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// Cuts the tar stream into blocks; holds the newest back so the final one can be marked.
struct Cutter {
    tx: crossbeam_channel::Sender<Result<Block>>,
    buf: Vec<u8>,
    held: Option<Block>,
}

impl Cutter {
    fn put(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = (BLOCK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == BLOCK {
                self.cut(false)?;
            }
        }
        Ok(())
    }

    fn cut(&mut self, last: bool) -> Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let dictionary = match &self.held {
            Some(prev) => prev.data[prev.data.len().saturating_sub(WINDOW)..].to_vec(),
            None => Vec::new(),
        };
        if let Some(prev) = self.held.replace(Block { data, dictionary, last: false }) {
            self.tx.send(Ok(prev)).map_err(|_| Error::invalid("the tar.gz writer stopped"))?;
        }
        if last {
            if let Some(mut b) = self.held.take() {
                b.last = true;
                self.tx.send(Ok(b)).map_err(|_| Error::invalid("the tar.gz writer stopped"))?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.cut(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [0, 1, 5, 90, 91, 92, 93, 94, 95, 96, 990, 995, 998, 999, 1000, 5000] {
            let v = vec![b'a'; n];
            let r = pax_record("path", &v);
            let (len, _) = std::str::from_utf8(&r[..r.iter().position(|&b| b == b' ').unwrap()])
                .map(|s| (s.parse::<usize>().unwrap(), ()))
                .unwrap();
            assert_eq!(len, r.len(), "value of {n} bytes");
        }
    }
}
