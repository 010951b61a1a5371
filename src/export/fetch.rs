//! Reading a snapshot's blobs for an export. On a remote store, one ranged GET per chunk is tens
//! of thousands of requests for a large export; blobs of neighbouring files sit next to each
//! other in a pack, so a span of a pack is read at once and the next blobs come from it. A local
//! disk reads each blob exactly, as before.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::id::{BlobId, PackId};
use crate::repo::Repository;

/// How much of a pack one request reads, and how many such spans are kept (bounded memory:
/// 8 × 4 MiB).
const SPAN: u64 = 4 << 20;
const KEPT: usize = 8;

struct Span {
    pack: PackId,
    start: u64,
    data: Arc<Vec<u8>>,
}

pub(crate) struct BlobFetcher<'a> {
    repo: &'a Repository,
    spans: Option<Mutex<Spans>>,
}

#[derive(Default)]
struct Spans {
    recent: VecDeque<Span>,
    /// Pack sizes, so a span never reaches past a pack's end.
    sizes: HashMap<PackId, u64>,
}

impl<'a> BlobFetcher<'a> {
    pub(crate) fn new(repo: &'a Repository) -> Self {
        let spans = repo.backend().is_remote().then(|| Mutex::new(Spans::default()));
        BlobFetcher { repo, spans }
    }

    pub(crate) fn read(&self, id: &BlobId) -> Result<Vec<u8>> {
        let Some(spans) = &self.spans else { return self.repo.read_blob(id) };
        let loc = self.repo.lookup_blob(id)?;
        let (off, len) = (loc.entry.offset as u64, loc.entry.sealed_len as u64);
        let cached = {
            let s = spans.lock().unwrap_or_else(|p| p.into_inner());
            s.recent
                .iter()
                .find(|sp| sp.pack == loc.pack && sp.start <= off && off + len <= sp.start + sp.data.len() as u64)
                .map(|sp| (Arc::clone(&sp.data), sp.start))
        };
        let (data, start) = match cached {
            Some(hit) => hit,
            None => {
                let path = crate::pack::pack_path(&loc.pack);
                let known = spans.lock().unwrap_or_else(|p| p.into_inner()).sizes.get(&loc.pack).copied();
                let size = match known {
                    Some(s) => s,
                    None => {
                        let s = self.repo.backend().stat(&path)?.unwrap_or(off + len);
                        spans.lock().unwrap_or_else(|p| p.into_inner()).sizes.insert(loc.pack, s);
                        s
                    }
                };
                let end = (off + SPAN.max(len)).min(size).max(off + len);
                // The span ends at the pack's end or the blob's, so a pack cut short fails on this
                // blob, and the error names it.
                let data = Arc::new(self.repo.read_pack_range(&loc.pack, off, end - off).map_err(|e| match e {
                    Error::PackUnreadable(mut p) => {
                        p.blob = Some(loc.entry.id);
                        Error::PackUnreadable(p)
                    }
                    other => other,
                })?);
                let mut s = spans.lock().unwrap_or_else(|p| p.into_inner());
                s.recent.push_back(Span { pack: loc.pack, start: off, data: Arc::clone(&data) });
                while s.recent.len() > KEPT {
                    s.recent.pop_front();
                }
                (data, off)
            }
        };
        let from = (off - start) as usize;
        let sealed = data[from..from + len as usize].to_vec();
        let e = &loc.entry;
        crate::pack::open_blob(&self.repo.keys().seal, e, sealed, &|| format!("blob {} in pack {}", e.id, loc.pack))
    }
}
