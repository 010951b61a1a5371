//! Archives to read that are not local files yet: an archive in a store (`s3://…/name.zip`), with
//! the other archives of its folder when it is an incremental (its chain), or an archive streamed
//! in (standard input). Each is fetched into a fresh folder of the spool, removed when dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::chain::{is_archive_name, peek_metadata};
use super::destination::{download, DestinationError};
use crate::error::{Error, Result};

/// A fetched archive; its folder (and anything fetched with it) goes when this is dropped.
pub struct Fetched {
    dir: PathBuf,
    /// The archive to open.
    pub archive: PathBuf,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh folder under `staging` (the cache's spool) for fetched archives; those a killed process
/// left there are removed first.
fn fresh_dir(staging: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
    crate::source::spool::remove_abandoned(staging, "download-");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = staging.join(format!("download-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Download the archive at `url` into the spool under `staging`, and, when it is an incremental,
/// every other archive of its folder (the chain is found among them). `pass` opens a sealed one's
/// metadata.
pub fn fetch_url(url: &str, staging: &Path, pass: Option<&[u8]>) -> Result<Fetched> {
    let (store_url, name) = url
        .rsplit_once('/')
        .filter(|(_, n)| !n.is_empty())
        .ok_or_else(|| DestinationError::NoArchiveName(url.to_string()))?;
    let store = crate::backend::open_url(store_url, false)?;
    let dir = fresh_dir(staging)?;
    let fetched = Fetched { archive: dir.join(name), dir: dir.clone() };
    download(&*store, name, &fetched.archive)?;
    if peek_metadata(&fetched.archive, pass)?.follows().is_some() {
        let mut names = Vec::new();
        store.list("", &mut |o| {
            if !o.name.contains('/') && o.name != name && is_archive_name(&o.name) {
                names.push(o.name);
            }
            Ok(())
        })?;
        for n in names {
            download(&*store, &n, &dir.join(&n))?;
        }
    }
    Ok(fetched)
}

/// Spool a whole archive read from `r` (`from` names it: standard input). A stream has no
/// neighbours, so it cannot be an incremental, whose chain would be missing.
pub fn fetch_stream(r: &mut dyn Read, from: &str, staging: &Path, pass: Option<&[u8]>) -> Result<Fetched> {
    let dir = fresh_dir(staging)?;
    let fetched = Fetched { archive: dir.join("stdin-archive"), dir };
    let mut f = std::fs::File::create(&fetched.archive).map_err(|e| Error::io(&fetched.archive, e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(from, e)),
        };
        f.write_all(&buf[..n]).map_err(|e| Error::io(&fetched.archive, e))?;
    }
    if peek_metadata(&fetched.archive, pass)?.follows().is_some() {
        return Err(DestinationError::IncrementalOnStdin.into());
    }
    Ok(fetched)
}
