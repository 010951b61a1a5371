//! The one place a repository or destination URL becomes a backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::retry::{RetryBackend, RetryPolicy};
use super::{Backend, BackendError, BackendErrorKind, OpendalBackend};
use crate::error::{Error, Result};

/// Open `url`: a plain path or `file://PATH` (local disk), `s3://BUCKET/PREFIX`,
/// `azblob://CONTAINER/PREFIX`, `sftp://USER@HOST:PORT/PATH`, or `memory://NAME` (tests; lives as
/// long as the process). `create` makes a missing local folder. Remote stores are checked at once
/// (a wrong credential, bucket or host key fails here, naming the URL), and their transient
/// errors are retried with backoff and jitter.
pub fn open_url(url: &str, create: bool) -> Result<Arc<dyn Backend>> {
    open_url_with(url, create, |b| b)
}

/// [`open_url`] with `layer` between the store and the retries: tests put fault injection there,
/// so that what they exercise is the retry policy every command runs with.
pub fn open_url_with(
    url: &str,
    create: bool,
    layer: impl FnOnce(Arc<dyn Backend>) -> Arc<dyn Backend>,
) -> Result<Arc<dyn Backend>> {
    let raw = open_raw(url, create)?;
    Ok(Arc::new(RetryBackend::new(layer(raw), RetryPolicy::default())))
}

fn open_raw(url: &str, create: bool) -> Result<Arc<dyn Backend>> {
    if let Some(rest) = url.strip_prefix("s3://") {
        return super::remote::s3(url, rest);
    }
    if let Some(rest) = url.strip_prefix("azblob://") {
        return super::remote::azblob(url, rest);
    }
    if let Some(rest) = url.strip_prefix("sftp://") {
        return super::remote::sftp(url, rest);
    }
    if url.starts_with("memory://") {
        // One store per URL for the life of the process, so reopening finds what was written.
        static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn Backend>>>> = OnceLock::new();
        let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = stores.get(url) {
            return Ok(b.clone());
        }
        let op = opendal::Operator::new(opendal::services::Memory::default())
            .map_err(|e| config_error(url, e.to_string()))?;
        let backend: Arc<dyn Backend> = Arc::new(OpendalBackend::new(op, url.to_string())?);
        stores.insert(url.to_string(), backend.clone());
        return Ok(backend);
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "file" {
            return Err(Error::invalid(format!(
                "URL {url:?}: scheme {scheme}:// is not supported (use a path, file://, s3://, azblob://, sftp:// or memory://)"
            )));
        }
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.is_empty() {
        return Err(Error::invalid("repository URL is empty"));
    }
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    if create {
        std::fs::create_dir_all(&abs).map_err(|e| Error::io(&abs, e))?;
    } else if !abs.is_dir() {
        return Err(Error::NotFound(format!("repository {}: no such folder", abs.display())));
    }
    let tmp = abs.join(".tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let root = abs.to_string_lossy().to_string();
    let builder = opendal::services::Fs::default().root(&root).atomic_write_dir(&tmp.to_string_lossy());
    let op = opendal::Operator::new(builder).map_err(|e| config_error(url, e.to_string()))?;
    Ok(Arc::new(OpendalBackend::new(op, root)?))
}

pub(super) fn config_error(url: &str, message: String) -> Error {
    Error::Backend(BackendError {
        kind: BackendErrorKind::Config,
        op: "open",
        location: url.to_string(),
        message,
        detail: String::new(),
    })
}
