//! Where a rendered export goes: a file that appears under its name only once complete (written
//! under a temporary name, synced, renamed), or an object in a store uploaded while it is rendered
//! (never left half-written under its name). Destination names may hold templates expanded when
//! the export runs.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::destination::{self, Place};
use super::previous::{self, PreviousError};
use super::{export_snapshot, ExportOptions, ExportSummary};
use crate::backend::{Backend, ObjectWriter};
use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::session::Session;
use crate::source::SnapshotScope;

/// `{date}` (YYYY-MM-DD), `{time}` (HHMMSS), both in the server's time zone, `{tenant}` (the
/// backup's tenant, or `all`) and `{snapshot}` (the short id), expanded at `now`: a cron job's
/// command line keeps the braces and gets a fresh name on every run.
pub fn expand_destination(
    dest: &str,
    snapshot: &Snapshot,
    id: &SnapshotId,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    let scope = SnapshotScope::from_paths(&snapshot.paths);
    dest.replace("{date}", &now.format("%Y-%m-%d").to_string())
        .replace("{time}", &now.format("%H%M%S").to_string())
        .replace("{tenant}", scope.tenant().unwrap_or("all"))
        .replace("{snapshot}", &id.short())
}

/// Render snapshot `id` into the file `out`, which appears under its name only once complete.
pub fn export_to_file(session: &Session, id: &SnapshotId, out: &Path, opts: &ExportOptions) -> Result<ExportSummary> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().ok_or_else(|| Error::invalid(format!("{}: not a file name", out.display())))?;
    let partial = dir.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<ExportSummary> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let f = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let s = export_snapshot(session, id, &mut w, opts)?;
        let f = w.into_inner().map_err(|e| Error::io(&partial, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&partial, e))?;
        std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
        Ok(s)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// An archive to upload: `name` in the store folder `store_url`, the store opened once for both
/// the previous-export lookup and the upload.
pub struct StoreDestination {
    backend: Arc<dyn Backend>,
    store_url: String,
    name: String,
}

impl StoreDestination {
    pub fn open(store_url: &str, name: &str) -> Result<StoreDestination> {
        let backend = crate::backend::open_url(store_url, true)?;
        Ok(StoreDestination { backend, store_url: store_url.to_string(), name: name.to_string() })
    }

    /// The archive's full URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.store_url, self.name)
    }

    /// The export an incremental one written here follows: the newest of the same scope in the
    /// store folder. Refused when the archive's name is taken. `cache_dir` holds the store's
    /// remembered metadata; `pass` opens sealed archives.
    pub fn previous(
        &self,
        session: &Session,
        id: &SnapshotId,
        cache_dir: &Path,
        pass: Option<&[u8]>,
    ) -> Result<super::Previous> {
        if self.backend.stat(&self.name)?.is_some() {
            return Err(PreviousError::WouldReplace { target: self.url() }.into());
        }
        let place = match self.backend.is_remote() {
            true => Place::Store(self.backend.clone()),
            false => Place::open(&self.store_url)?,
        };
        previous::previous_at(session, id, &place, &self.store_url, cache_dir, pass)
    }

    /// Render snapshot `id` and upload it as it is rendered; on failure nothing is left under the
    /// archive's name. A store's upload is remembered in `cache_dir` with its metadata.
    pub fn export(
        &self,
        session: &Session,
        id: &SnapshotId,
        opts: &ExportOptions,
        cache_dir: &Path,
    ) -> Result<ExportSummary> {
        let url = self.url();
        let mut up = Upload { w: Some(self.backend.writer(&self.name)?), buf: Vec::with_capacity(UPLOAD_PART) };
        let result = export_snapshot(session, id, &mut up, opts).and_then(|s| {
            up.push().map_err(|e| Error::io(&url, e))?;
            let w = up.w.take().ok_or_else(|| Error::invalid(format!("{url}: the upload was closed")))?;
            w.finish()?;
            Ok(s)
        });
        match result {
            Ok(mut s) => {
                if self.backend.is_remote() {
                    destination::remember(cache_dir, &self.store_url, &self.name, s.bytes_out, s.metadata.clone());
                }
                s.destination = Some(url);
                Ok(s)
            }
            Err(e) => {
                if let Some(w) = up.w.take() {
                    w.abort();
                }
                Err(e)
            }
        }
    }
}

/// Buffers the archive into parts for a streamed upload.
struct Upload {
    w: Option<Box<dyn ObjectWriter>>,
    buf: Vec<u8>,
}

const UPLOAD_PART: usize = 8 << 20;

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= UPLOAD_PART {
            self.push()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Upload {
    fn push(&mut self) -> std::io::Result<()> {
        let Some(w) = self.w.as_mut() else { return Err(std::io::Error::other("the upload was closed")) };
        w.write(&self.buf).map_err(std::io::Error::other)?;
        self.buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snapshot(paths: &[&str]) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "version": 1, "time": "2026-01-02T03:04:05Z", "tree": "00".repeat(32),
            "paths": paths,
        }))
        .unwrap()
    }

    #[test]
    fn templates_expand_from_the_snapshot_scope_and_the_time() {
        let id: SnapshotId = "ab".repeat(32).parse().unwrap();
        let now = chrono::Local.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        let dest = "s3://b/{tenant}/{date}-{time}-{snapshot}.zip";
        let one = expand_destination(dest, &snapshot(&["gateway:/srv/sophon?tenant=acme"]), &id, now);
        assert_eq!(one, format!("s3://b/acme/2026-03-04-050607-{}.zip", id.short()));
        let all = expand_destination(dest, &snapshot(&["gateway:/srv/sophon"]), &id, now);
        assert!(all.starts_with("s3://b/all/"), "{all}");
        // A folder path that merely looks like a tenant scope has no tenant.
        let folder = expand_destination("{tenant}", &snapshot(&["/srv/x?tenant=acme"]), &id, now);
        assert_eq!(folder, "all");
    }
}
