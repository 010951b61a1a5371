//! Export archives at a destination, a local folder or a store, with their metadata: what archive
//! retention (`forget --dest`) decides on, and where an incremental export finds the export it
//! follows. A remote archive is downloaded once to read its metadata; what it said is remembered in
//! the cache by name and size, so a nightly run only downloads the archives it has not seen. An
//! archive this client uploads is remembered as it is written, so it is never downloaded for that.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chain::{archives_in, is_archive_name, peek_metadata};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::export_meta::ExportMetadata;

/// What can go wrong with a destination or an archive fetched from one, beyond I/O and the store.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("{0}: no such folder")]
    NoSuchFolder(String),

    #[error("{0}: no such object")]
    NoSuchObject(String),

    #[error("{0}: give the archive's full name, e.g. s3://bucket/backup.zip")]
    NoArchiveName(String),

    #[error("an incremental archive on standard input cannot bring the exports it follows: give its file or URL")]
    IncrementalOnStdin,

    /// An archive is never replaced unless asked (`--overwrite`): a name reused by a script (a
    /// date without the time, run twice a day) must not silently destroy the earlier archive.
    #[error("{0} already exists: an archive is never replaced without --overwrite (nothing was written)")]
    Exists(String),
}

impl From<DestinationError> for Error {
    fn from(e: DestinationError) -> Self {
        match e {
            DestinationError::NoSuchFolder(_) | DestinationError::NoSuchObject(_) => Error::NotFound(e.to_string()),
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// An archive and its `metadata.json`.
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub metadata: ExportMetadata,
}

/// What the cache remembers of a remote archive.
#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    size: u64,
    metadata: ExportMetadata,
}

pub enum Place {
    Folder(PathBuf),
    Store(Arc<dyn Backend>),
}

/// Whether `dest` names a local folder (a path or `file://…`) rather than a store.
pub fn is_local(dest: &str) -> bool {
    !dest.contains("://") || dest.starts_with("file://")
}

/// The store folder and the archive's name of a destination URL (`s3://bucket/x/name.zip`), or
/// `None` when it names no archive.
pub fn split_archive_url(url: &str) -> Option<(&str, &str)> {
    url.rsplit_once('/').filter(|(store, name)| !name.is_empty() && !store.ends_with(':') && !store.ends_with("//"))
}

impl Place {
    /// `dest`: a folder (which must exist), `file://…`, or a store URL.
    pub fn open(dest: &str) -> Result<Place> {
        if is_local(dest) {
            let dir = PathBuf::from(dest.strip_prefix("file://").unwrap_or(dest));
            if !dir.is_dir() {
                return Err(DestinationError::NoSuchFolder(dest.to_string()).into());
            }
            return Ok(Place::Folder(dir));
        }
        Ok(Place::Store(crate::backend::open_url(dest, false)?))
    }

    /// Every archive whose metadata can be read (sealed ones need `pass`), by name, and one line
    /// for each that cannot. `dest` names the place in the cache under `cache_dir`; remote
    /// archives are downloaded into `cache_dir/spool` to be read.
    pub fn archives(&self, dest: &str, cache_dir: &Path, pass: Option<&[u8]>) -> Result<(Vec<Listed>, Vec<String>)> {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        match self {
            Place::Folder(dir) => {
                for p in archives_in(dir) {
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    match peek_metadata(&p, pass) {
                        Ok(metadata) => found.push(Listed { name, size, metadata }),
                        Err(e) => unreadable.push(format!("{name}: {e}")),
                    }
                }
            }
            Place::Store(store) => {
                let cache_file = cache_file(cache_dir, dest);
                let mut known = remembered(&cache_file);
                let mut listed = Vec::new();
                store.list("", &mut |o| {
                    if is_archive_name(&o.name) && !o.name.contains('/') {
                        listed.push((o.name, o.size));
                    }
                    Ok(())
                })?;
                let spool = cache_dir.join("spool");
                std::fs::create_dir_all(&spool).map_err(|e| Error::io(&spool, e))?;
                let mut fresh = BTreeMap::new();
                for (name, size) in listed {
                    if let Some(r) = known.remove(&name).filter(|r| r.size == size) {
                        fresh.insert(name, r);
                        continue;
                    }
                    let local = spool.join(format!("metadata-{}-{name}", std::process::id()));
                    let read = download(store.as_ref(), &name, &local).and_then(|()| peek_metadata(&local, pass));
                    let _ = std::fs::remove_file(&local);
                    match read {
                        Ok(metadata) => {
                            fresh.insert(name, Remembered { size, metadata });
                        }
                        Err(e) => unreadable.push(format!("{name}: {e}")),
                    }
                }
                save(&cache_file, &fresh);
                found.extend(fresh.into_iter().map(|(name, r)| Listed { name, size: r.size, metadata: r.metadata }));
            }
        }
        Ok((found, unreadable))
    }

    /// Remove archive `name` (`dest` names the place in errors).
    pub fn remove(&self, dest: &str, name: &str) -> Result<()> {
        match self {
            Place::Folder(dir) => {
                let p = dir.join(name);
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))
            }
            Place::Store(store) => {
                store.delete(name).map_err(|e| Error::invalid(format!("removing {dest}/{name}: {e}")))
            }
        }
    }
}

/// Remember the metadata of an archive this client has just uploaded to the store folder `dest`,
/// so that archive retention and the next incremental export do not download it to read it.
pub fn remember(cache_dir: &Path, dest: &str, name: &str, size: u64, metadata: ExportMetadata) {
    let file = cache_file(cache_dir, dest);
    let mut known = remembered(&file);
    known.insert(name.to_string(), Remembered { size, metadata });
    save(&file, &known);
}

/// The cache file for the store folder `dest` (`s3://b/x` and `s3://b/x/` are one folder).
fn cache_file(cache_dir: &Path, dest: &str) -> PathBuf {
    let key = blake3::hash(dest.trim_end_matches('/').as_bytes());
    cache_dir.join("archive-metadata").join(format!("{}.json", &hex::encode(key.as_bytes())[..24]))
}

/// A cache in an older shape, or damaged, is only a cache: it reads as empty.
fn remembered(file: &Path) -> BTreeMap<String, Remembered> {
    std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Written under a temporary name and renamed, so a concurrent reader never sees half a file; a
/// cache that cannot be written is only a cache.
fn save(file: &Path, known: &BTreeMap<String, Remembered>) {
    let Some(dir) = file.parent() else { return };
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join(format!(".{}.{}", file.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let written = serde_json::to_vec(known).ok().is_some_and(|b| std::fs::write(&tmp, b).is_ok());
    if !written || std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Archives are downloaded a range at a time (never a whole archive in memory).
const DOWNLOAD_PART: u64 = 8 << 20;

/// Copy object `name` of `store` to the file `to`.
pub fn download(store: &dyn Backend, name: &str, to: &Path) -> Result<()> {
    let size =
        store.stat(name)?.ok_or_else(|| DestinationError::NoSuchObject(format!("{}/{name}", store.location())))?;
    let f = std::fs::File::create(to).map_err(|e| Error::io(to, e))?;
    let mut f = std::io::BufWriter::new(f);
    let mut at = 0;
    while at < size {
        let n = DOWNLOAD_PART.min(size - at);
        f.write_all(&store.read_range(name, at, n)?).map_err(|e| Error::io(to, e))?;
        at += n;
    }
    f.flush().map_err(|e| Error::io(to, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls_split_into_store_and_name_only_when_they_name_an_archive() {
        assert_eq!(split_archive_url("s3://b/x/a.zip"), Some(("s3://b/x", "a.zip")));
        assert_eq!(split_archive_url("/srv/exports/a.tgz"), Some(("/srv/exports", "a.tgz")));
        assert_eq!(split_archive_url("s3://b/x/"), None);
        assert_eq!(split_archive_url("s3://"), None);
        assert_eq!(split_archive_url("sftp:/a"), None);
        assert!(is_local("/srv/x") && is_local("file:///srv/x") && !is_local("s3://b/x"));
    }

    #[test]
    fn a_missing_folder_is_named() {
        let e = Place::open("/nonexistent/sophon-dest").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("/nonexistent/sophon-dest: no such folder"), "{e}");
    }
}
