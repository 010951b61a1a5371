//! Portable exports: a snapshot rendered as a zip or tar.gz archive laid out like the product
//! page's backup structure (`backup/…`, with `metadata.json`, `manifest.json` and `SHA256SUMS`), optionally
//! sealed in a streaming envelope; and the way back (verify, restore from an archive).
//! `format-spec/export.md` specifies the archive, `format-spec/export-seal.md` the envelope.

pub mod chain;
pub mod destination;
mod fetch;
pub mod input;
pub mod ordered;
pub mod output;
pub mod plan;
pub mod previous;
pub mod reader;
pub mod render;
pub mod retention;
pub mod seal;
pub mod targz;
pub mod zip;

use std::io::Write;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::format::export_meta::{ExportInfo, ExportMetadata, Incremental};
use crate::format::layout::Layout;
use crate::id::SnapshotId;
use crate::repo::Repository;
use crate::session::Session;
use crate::source::SnapshotScope;
pub use plan::ROOT;
use plan::{Entry, EntryKind};
use render::{Extra, RenderOptions};
pub use render::{Format, ManifestFile};

pub use crate::format::export_meta::EXPORT_FORMAT_VERSION;
/// The deflate level: as small as `zip -6`/`pigz -6` output within a few percent, and faster.
pub const DEFAULT_LEVEL: u32 = 6;

/// The export an incremental one follows: what its archive's metadata says.
#[derive(Clone, Debug)]
pub struct Previous {
    pub export_id: String,
    /// The full export the chain starts with.
    pub base_id: String,
    /// 0 for the full export, then 1, 2, …
    pub sequence: u64,
    pub snapshot: SnapshotId,
    /// The name of the archive it is in, so the operator can tell which file a new one needs.
    pub archive: String,
}

pub struct ExportOptions {
    pub format: Format,
    pub level: u32,
    pub workers: usize,
    /// Seal with this passphrase and key derivation.
    pub seal: Option<(zeroize::Zeroizing<Vec<u8>>, seal::Kdf)>,
    pub previous: Option<Previous>,
    /// Replace a file or object already at the destination (otherwise that is an error, before
    /// anything is written: `output`).
    pub overwrite: bool,
    /// Where the export counts its progress: the totals are set once the files to write are known.
    pub progress: Option<std::sync::Arc<crate::archive::Progress>>,
}

impl ExportOptions {
    pub fn new(format: Format) -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        ExportOptions {
            format,
            level: DEFAULT_LEVEL,
            workers,
            seal: None,
            previous: None,
            overwrite: false,
            progress: None,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportSummary {
    pub export_id: String,
    pub snapshot: String,
    pub format: Format,
    pub sealed: bool,
    /// Files in the archive (the generated metadata.json, manifest.json and SHA256SUMS included).
    pub files: u64,
    /// Bytes of file content rendered.
    pub bytes_in: u64,
    /// Bytes written (the archive's size).
    pub bytes_out: u64,
    pub follows: Option<String>,
    /// The name of the archive holding the export this one follows.
    pub follows_archive: Option<String>,
    pub deleted: u64,
    /// Where it was uploaded (`--dest`, templates expanded), if anywhere.
    pub destination: Option<String>,
    /// The archive's `metadata.json`, so that whoever wrote it need not read it back.
    #[serde(skip)]
    pub metadata: ExportMetadata,
}

/// Counts what passes through to the output, and refuses to go on once the caller's cancel is set.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
    cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(std::io::Error::other("cancelled"));
        }
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A random export id, `exp_` and 16 hex digits.
fn new_export_id() -> Result<String> {
    Ok(format!("exp_{}", hex::encode(crate::crypto::random_array::<8>()?)))
}

/// What a failed write of the archive names when the archive has no name here (it may be standard
/// output or an upload); a caller that knows the name puts it in (`output::export_to_file`).
pub(crate) const OUTPUT: &str = "export output";

/// Whether the caller of an export with `opts` asked it to stop.
pub(crate) fn cancelled(opts: &ExportOptions) -> bool {
    opts.progress.as_ref().is_some_and(|p| p.cancelled())
}

/// Render snapshot `id` of the session's repository to `out`; the session's lock keeps a prune
/// from deleting the packs it reads. Once `opts.progress`'s `cancel` is set, the next write to
/// `out` is refused and the export ends with [`Error::Cancelled`] (whoever owns `out` removes what
/// it holds: `output` does for files and uploads).
pub fn export_snapshot(
    session: &Session,
    id: &SnapshotId,
    out: &mut dyn Write,
    opts: &ExportOptions,
) -> Result<ExportSummary> {
    match export_unless_cancelled(session, id, out, opts) {
        Err(_) if cancelled(opts) => Err(Error::Cancelled),
        other => other,
    }
}

fn export_unless_cancelled(
    session: &Session,
    id: &SnapshotId,
    out: &mut dyn Write,
    opts: &ExportOptions,
) -> Result<ExportSummary> {
    if cancelled(opts) {
        return Err(Error::Cancelled);
    }
    let repo: &Repository = session.repo();
    let snapshot = repo.load_snapshot(id)?;
    let gateway = plan::is_gateway(&snapshot);
    let mut entries = plan::entries(repo, &snapshot, id)?;
    // The snapshot's own metadata (a gateway's) is the base of the export's; both files are
    // written anew after the tree so they describe this archive.
    let mut base_metadata = None;
    if gateway {
        if let Some(e) = entries.iter().find(|e| e.path == "metadata.json") {
            if let EntryKind::File { content, .. } = &e.kind {
                let mut bytes = Vec::new();
                for b in content {
                    bytes.extend_from_slice(&repo.read_blob(b).map_err(|e| e.used_by(|| "file metadata.json".into()))?);
                }
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::malformed(format!("snapshot {} metadata.json", id.short()), e.to_string()))?;
                base_metadata = Some(v);
            }
        }
        entries.retain(|e| !plan::GENERATED.contains(&e.path.as_str()));
    } else if let Some(e) = entries.iter().find(|e| plan::GENERATED.contains(&e.path.as_str())) {
        return Err(Error::invalid(format!(
            "snapshot {}: a backed-up root is named {}, which the export's own file needs; \
             restore it with `backup restore --target` instead",
            id.short(),
            e.path
        )));
    }

    let mut deleted = Vec::new();
    if let Some(prev) = &opts.previous {
        let prev_snapshot = repo.load_snapshot(&prev.snapshot).map_err(|e| {
            Error::NotFound(format!(
                "the previous export {} was made from snapshot {}, which the repository no longer holds ({e}); \
                 make a full export instead",
                prev.export_id,
                prev.snapshot.short()
            ))
        })?;
        let mut prev_entries = plan::entries(repo, &prev_snapshot, &prev.snapshot)?;
        prev_entries.retain(|e| !plan::GENERATED.contains(&e.path.as_str()));
        deleted = plan::keep_changed(&mut entries, &plan::file_index(&prev_entries));
    }

    let export_id = new_export_id()?;
    let now = chrono::Utc::now();
    let export = ExportInfo {
        format_version: EXPORT_FORMAT_VERSION,
        id: Some(export_id.clone()),
        format: Some(opts.format.name().to_string()),
        created: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        snapshot: Some(id.to_hex()),
        snapshot_time: Some(snapshot.time.clone()),
        scope: Some(SnapshotScope::from_paths(&snapshot.paths).to_string()),
        sealed: opts.seal.is_some(),
        incremental: opts.previous.as_ref().map(|p| Incremental {
            follows: p.export_id.clone(),
            base: p.base_id.clone(),
            sequence: p.sequence + 1,
            previous_snapshot: p.snapshot.to_hex(),
            deleted: deleted.clone(),
            other: Default::default(),
        }),
        other: Default::default(),
    };
    let metadata = match base_metadata {
        Some(base) => ExportMetadata::from_base(base, export, &format!("snapshot {} metadata.json", id.short()))?,
        None => {
            let layout = if gateway { Layout::Gateway } else { Layout::Files };
            ExportMetadata {
                layout: Some(layout),
                layout_version: layout.version(),
                sophon_version: Some(env!("CARGO_PKG_VERSION").to_string()),
                timestamp: Some(snapshot.time.clone()),
                paths: Some(snapshot.paths.clone()),
                hostname: Some(snapshot.hostname.clone()),
                tags: Some(snapshot.tags.clone()),
                export,
                other: Default::default(),
            }
        }
    };
    let mtime = now.timestamp();
    let written_metadata = metadata.clone();
    let extras = move |files: &[ManifestFile]| -> Result<Vec<Extra>> {
        let meta = metadata.to_bytes()?;
        let mut listed = files.to_vec();
        listed.push(ManifestFile { path: plan::METADATA.into(), size: meta.len() as u64, sha256: sha256_hex(&meta) });
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest =
            serde_json::to_vec_pretty(&json!({ "files": listed })).map_err(|e| Error::invalid(e.to_string()))?;
        // Every file but itself, the manifest included, for `sha256sum -c SHA256SUMS` in backup/.
        let mut sums: Vec<(String, String)> = listed.into_iter().map(|f| (f.path, f.sha256)).collect();
        sums.push((plan::MANIFEST.into(), sha256_hex(&manifest)));
        let sums = plan::sha256sums(&sums);
        Ok(vec![
            Extra { path: plan::METADATA.into(), data: meta, mtime },
            Extra { path: plan::MANIFEST.into(), data: manifest, mtime },
            Extra { path: plan::SUMS.into(), data: sums, mtime },
        ])
    };

    if let Some(p) = &opts.progress {
        use std::sync::atomic::Ordering::Relaxed;
        let sizes = entries.iter().filter_map(|e| match &e.kind {
            EntryKind::File { size, .. } => Some(*size),
            _ => None,
        });
        let (files, bytes) = sizes.fold((0u64, 0u64), |(n, b), s| (n + 1, b + s));
        p.files_total.store(files, Relaxed);
        p.bytes_total.store(bytes, Relaxed);
    }
    let ropts = RenderOptions {
        format: opts.format,
        level: opts.level,
        workers: opts.workers,
        progress: opts.progress.clone(),
    };
    let mut counting = Counting { inner: out, n: 0, cancel: opts.progress.as_deref().map(|p| &p.cancel) };
    let rendered = match &opts.seal {
        Some((pass, kdf)) => {
            let mut sealer = seal::SealWriter::new(&mut counting, pass, *kdf)?;
            let r = render::render(repo, &entries, extras, &mut sealer, &ropts)?;
            sealer.finish()?;
            r
        }
        None => render::render(repo, &entries, extras, &mut counting, &ropts)?,
    };
    counting.flush().map_err(|e| Error::io(OUTPUT, e))?;
    Ok(ExportSummary {
        export_id,
        snapshot: id.to_hex(),
        format: opts.format,
        sealed: opts.seal.is_some(),
        files: rendered.files.len() as u64 + plan::GENERATED.len() as u64,
        bytes_in: rendered.bytes_in,
        bytes_out: counting.n,
        follows: opts.previous.as_ref().map(|p| p.export_id.clone()),
        follows_archive: opts.previous.as_ref().map(|p| p.archive.clone()),
        deleted: deleted.len() as u64,
        destination: None,
        metadata: written_metadata,
    })
}

/// The entries an export of `id` would hold (for tests and `--dry-run`).
pub fn planned_entries(session: &Session, id: &SnapshotId) -> Result<Vec<Entry>> {
    let repo: &Repository = session.repo();
    let snapshot = repo.load_snapshot(id)?;
    plan::entries(repo, &snapshot, id)
}
