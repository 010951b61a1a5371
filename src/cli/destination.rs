//! Export archives at a destination, a local folder or a store, with their metadata: what archive
//! retention (`forget --dest`) decides on, and where an incremental export finds the export it
//! follows. A remote archive is downloaded once to read its metadata; what it said is remembered in
//! the cache by name and size, so a nightly run only downloads the archives it has not seen. An
//! archive this client uploads is remembered as it is written, so it is never downloaded for that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sophon::format::export_meta::ExportMetadata;

use sophon::backend::Backend;
use sophon::export::chain::{archives_in, is_archive_name, peek_metadata};

use super::RepoArgs;

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

impl Place {
    /// `dest`: a folder (which must exist), `file://…`, or a store URL.
    pub fn open(dest: &str) -> anyhow::Result<Place> {
        if !dest.contains("://") || dest.starts_with("file://") {
            let dir = PathBuf::from(dest.strip_prefix("file://").unwrap_or(dest));
            if !dir.is_dir() {
                anyhow::bail!("--dest {dest}: no such folder");
            }
            return Ok(Place::Folder(dir));
        }
        Ok(Place::Store(sophon::backend::open_url(dest, false)?))
    }

    /// Every archive whose metadata can be read (sealed ones need `pass`), by name, and one line
    /// for each that cannot. `dest` names the place in the cache.
    pub fn archives(
        &self,
        dest: &str,
        repo: &RepoArgs,
        pass: Option<&[u8]>,
    ) -> anyhow::Result<(Vec<Listed>, Vec<String>)> {
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
                let cache_file = cache_file(repo, dest);
                let mut known = remembered(&cache_file);
                let mut listed = Vec::new();
                store.list("", &mut |o| {
                    if is_archive_name(&o.name) && !o.name.contains('/') {
                        listed.push((o.name, o.size));
                    }
                    Ok(())
                })?;
                let spool = repo.cache_dir().join("spool");
                std::fs::create_dir_all(&spool).with_context(|| format!("creating {}", spool.display()))?;
                let mut fresh = BTreeMap::new();
                for (name, size) in listed {
                    if let Some(r) = known.remove(&name).filter(|r| r.size == size) {
                        fresh.insert(name, r);
                        continue;
                    }
                    let local = spool.join(format!("metadata-{}-{name}", std::process::id()));
                    let read = super::archive_in::download(store.as_ref(), &name, &local)
                        .and_then(|()| Ok(peek_metadata(&local, pass)?));
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

    pub fn remove(&self, dest: &str, name: &str) -> anyhow::Result<()> {
        match self {
            Place::Folder(dir) => {
                let p = dir.join(name);
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))
            }
            Place::Store(store) => store.delete(name).with_context(|| format!("removing {dest}/{name}")),
        }
    }
}

/// Remember the metadata of an archive this client has just uploaded to the store folder `dest`,
/// so that archive retention and the next incremental export do not download it to read it.
pub fn remember(repo: &RepoArgs, dest: &str, name: &str, size: u64, metadata: ExportMetadata) {
    let file = cache_file(repo, dest);
    let mut known = remembered(&file);
    known.insert(name.to_string(), Remembered { size, metadata });
    save(&file, &known);
}

/// The cache file for the store folder `dest` (`s3://b/x` and `s3://b/x/` are one folder).
fn cache_file(repo: &RepoArgs, dest: &str) -> PathBuf {
    let key = blake3::hash(dest.trim_end_matches('/').as_bytes());
    repo.cache_dir().join("archive-metadata").join(format!("{}.json", &hex::encode(key.as_bytes())[..24]))
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
