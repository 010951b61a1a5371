//! Where a rendered export goes: a file that appears under its name only once complete (written
//! under a temporary name, synced, renamed), or an object in a store uploaded while it is rendered
//! (never left half-written under its name). Destination names may hold templates expanded when
//! the export runs. An archive already under the name is never replaced unless the options say so
//! (`ExportOptions::overwrite`): checked before rendering, and for a file again when it is put in
//! place (a hard link, which fails rather than replaces).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::destination::{self, split_archive_url, DestinationError, Place};
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
    expand(dest, scope.tenant(), Some(&id.short()), now)
}

fn expand(dest: &str, tenant: Option<&str>, short_id: Option<&str>, now: chrono::DateTime<chrono::Local>) -> String {
    let expanded = dest
        .replace("{date}", &now.format("%Y-%m-%d").to_string())
        .replace("{time}", &now.format("%H%M%S").to_string())
        .replace("{tenant}", tenant.unwrap_or("all"));
    match short_id {
        Some(id) => expanded.replace("{snapshot}", id),
        None => expanded,
    }
}

/// Where an archive is to be written, as given before the backup it renders is taken.
pub struct PlannedArchive<'a> {
    /// `--out`: a file (`-`, standard output, is never taken).
    pub out: Option<&'a Path>,
    /// `--dest`: a URL or path, with templates.
    pub dest: Option<&'a str>,
    /// The tenant of the backup, for `{tenant}`.
    pub tenant: Option<&'a str>,
    pub overwrite: bool,
    /// An incremental export never replaces an archive, `overwrite` or not.
    pub incremental: bool,
}

/// Refuse, before a backup is taken, an archive name that is already taken, so a refused archive
/// leaves no snapshot behind. `dest`'s templates are expanded at `now`; a name with `{snapshot}`
/// cannot be known yet and is checked when the export starts.
pub fn refuse_existing(a: &PlannedArchive, now: chrono::DateTime<chrono::Local>) -> Result<()> {
    if a.overwrite && !a.incremental {
        return Ok(());
    }
    let taken = match (a.out.filter(|o| o.as_os_str() != "-"), a.dest.filter(|d| !d.contains("{snapshot}"))) {
        (Some(out), _) => file_taken(out).then(|| out.display().to_string()),
        (None, Some(dest)) => {
            let url = expand(dest, a.tenant, None, now);
            match split_archive_url(&url) {
                None => None,
                Some((store_url, name)) if destination::is_local(store_url) => {
                    let file = Path::new(store_url.strip_prefix("file://").unwrap_or(store_url)).join(name);
                    file_taken(&file).then(|| file.display().to_string())
                }
                Some((store_url, name)) => {
                    let store = StoreDestination::open(store_url, name)?;
                    store.backend.stat(name)?.map(|_| store.url())
                }
            }
        }
        (None, None) => None,
    };
    match taken {
        None => Ok(()),
        Some(target) if a.incremental => Err(PreviousError::WouldReplace { target }.into()),
        Some(target) => Err(DestinationError::Exists(target).into()),
    }
}

/// A dangling symbolic link is a name taken as well.
fn file_taken(out: &Path) -> bool {
    std::fs::symlink_metadata(out).is_ok()
}

fn refuse_existing_file(out: &Path) -> Result<()> {
    match file_taken(out) {
        true => Err(DestinationError::Exists(out.display().to_string()).into()),
        false => Ok(()),
    }
}

/// Put the finished `partial` under the name `out` without replacing anything there: a hard link
/// fails when the name exists, where a rename would replace it. On a file system without hard
/// links, a check then a rename (a race with another writer of the same name is then possible).
fn publish_new(partial: &Path, out: &Path) -> Result<()> {
    match std::fs::hard_link(partial, out) {
        Ok(()) => {
            let _ = std::fs::remove_file(partial);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(DestinationError::Exists(out.display().to_string()).into())
        }
        Err(_) => {
            refuse_existing_file(out)?;
            std::fs::rename(partial, out).map_err(|e| Error::io(out, e))
        }
    }
}

/// Render snapshot `id` into the file `out`, which appears under its name only once complete. An
/// existing `out` is an error (before anything is written) unless `opts.overwrite`.
pub fn export_to_file(session: &Session, id: &SnapshotId, out: &Path, opts: &ExportOptions) -> Result<ExportSummary> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().ok_or_else(|| Error::invalid(format!("{}: not a file name", out.display())))?;
    if !opts.overwrite {
        refuse_existing_file(out)?;
    }
    let partial = dir.join(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<ExportSummary> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let f = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let s = export_snapshot(session, id, &mut w, opts)?;
        let f = w.into_inner().map_err(|e| Error::io(out, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(out, e))?;
        // The last moment a cancel keeps the archive from appearing.
        if super::cancelled(opts) {
            return Err(Error::Cancelled);
        }
        if opts.overwrite {
            std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))?;
        } else {
            publish_new(&partial, out)?;
        }
        Ok(s)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    // A failed write names the archive as the operator gave it (a full disk: which file did not
    // fit), not the temporary name, which is gone.
    result.map_err(|e| match e {
        Error::Io { path, source } if path == Path::new(super::OUTPUT) || path == Path::new(super::seal::WHAT) => {
            Error::io(out, source)
        }
        e => e,
    })
}

/// Where an archive is to go, as a front end takes it (`--out`, `--dest`, the dashboard's form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveTarget {
    /// A file, written under a temporary name beside it and renamed once complete.
    File(std::path::PathBuf),
    /// A URL or folder path naming the archive (`s3://bucket/x/{date}.zip`, `/srv/exports/a.zip`),
    /// uploaded while it is rendered; its templates are expanded when the export runs.
    Destination(String),
}

/// An [`ArchiveTarget`] resolved for one snapshot: templates expanded, the store opened.
pub enum PlacedArchive {
    File(std::path::PathBuf),
    Store(StoreDestination),
}

impl ArchiveTarget {
    /// Resolve for snapshot `id` (`snapshot` is its content), expanding templates at `now`. A
    /// store is opened and checked here, so a refused credential fails before anything is rendered.
    pub fn place(
        &self,
        snapshot: &Snapshot,
        id: &SnapshotId,
        now: chrono::DateTime<chrono::Local>,
    ) -> Result<PlacedArchive> {
        match self {
            ArchiveTarget::File(out) => {
                if out.file_name().is_none() {
                    return Err(Error::invalid(format!("{}: not a file name", out.display())));
                }
                Ok(PlacedArchive::File(out.clone()))
            }
            ArchiveTarget::Destination(dest) => {
                let url = expand_destination(dest, snapshot, id, now);
                let (store_url, name) =
                    split_archive_url(&url).ok_or_else(|| DestinationError::NoArchiveName(url.clone()))?;
                Ok(PlacedArchive::Store(StoreDestination::open(store_url, name)?))
            }
        }
    }
}

impl PlacedArchive {
    /// The archive's own name (a file's or an object's), whose extension may announce its format.
    pub fn name(&self) -> String {
        match self {
            PlacedArchive::File(out) => out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            PlacedArchive::Store(store) => store.name.clone(),
        }
    }

    /// Where the archive goes: the file's path or the object's URL.
    pub fn location(&self) -> String {
        match self {
            PlacedArchive::File(out) => out.display().to_string(),
            PlacedArchive::Store(store) => store.url(),
        }
    }

    /// The export an incremental one written here follows: the newest of the same scope beside it.
    pub fn previous(
        &self,
        session: &Session,
        id: &SnapshotId,
        cache_dir: &Path,
        pass: Option<&[u8]>,
    ) -> Result<super::Previous> {
        match self {
            PlacedArchive::File(out) => previous::previous_beside(session, id, out, cache_dir, pass),
            PlacedArchive::Store(store) => store.previous(session, id, cache_dir, pass),
        }
    }

    /// Render snapshot `id` here: nothing appears under the name unless complete, and nothing
    /// there is replaced unless `opts.overwrite`.
    pub fn export(
        &self,
        session: &Session,
        id: &SnapshotId,
        opts: &ExportOptions,
        cache_dir: &Path,
    ) -> Result<ExportSummary> {
        match self {
            PlacedArchive::File(out) => export_to_file(session, id, out, opts),
            PlacedArchive::Store(store) => store.export(session, id, opts, cache_dir),
        }
    }
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

    /// An error naming the archive when its name is already taken in the store.
    pub fn refuse_existing(&self) -> Result<()> {
        match self.backend.stat(&self.name)? {
            Some(_) => Err(DestinationError::Exists(self.url()).into()),
            None => Ok(()),
        }
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
    /// archive's name. A store's upload is remembered in `cache_dir` with its metadata. An object
    /// already under the name is an error (before anything is uploaded) unless `opts.overwrite`.
    pub fn export(
        &self,
        session: &Session,
        id: &SnapshotId,
        opts: &ExportOptions,
        cache_dir: &Path,
    ) -> Result<ExportSummary> {
        if !opts.overwrite {
            self.refuse_existing()?;
        }
        let url = self.url();
        let mut up = Upload { w: Some(self.backend.writer(&self.name)?), buf: Vec::with_capacity(UPLOAD_PART) };
        let result = export_snapshot(session, id, &mut up, opts).and_then(|s| {
            up.push().map_err(|e| Error::io(&url, e))?;
            // The last moment a cancel keeps the object from appearing.
            if super::cancelled(opts) {
                return Err(Error::Cancelled);
            }
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
