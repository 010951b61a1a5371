//! Remote object stores through OpenDAL: S3 (and S3-compatible servers), Azure Blob and SFTP,
//! configured from the URL and each provider's standard environment variables. Calls have
//! timeouts (transient errors are retried above, in `retry.rs`), and the store is checked
//! once at open (that check retried the same way) so that bad credentials, a missing bucket or an unknown host key fail at once with
//! the URL in the message.

use std::sync::Arc;
use std::time::Duration;

use opendal::layers::TimeoutLayer;
use opendal::Operator;

use super::retry::RetryPolicy;
use super::url::config_error;
use super::{Backend, BackendError, BackendErrorKind, OpendalBackend};
use crate::error::Result;

/// Pack uploads in flight at once to a remote store.
const REMOTE_UPLOADS: usize = 4;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `NAME/some/prefix` → (`NAME`, `/some/prefix`).
fn split(url: &str, rest: &str) -> Result<(String, String)> {
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(config_error(url, "the URL names no bucket or container".into()));
    }
    Ok((name.to_string(), format!("/{}", prefix.trim_matches('/'))))
}

/// Timeouts on every call (a hung connection becomes a transient error, which `RetryBackend`
/// above retries like any other).
fn layered(op: Operator) -> Operator {
    // The HTTP client (reqwest with rustls) is installed on first use; later calls do nothing.
    opendal::install_default();
    op.layer(TimeoutLayer::new().with_timeout(Duration::from_secs(300)).with_io_timeout(Duration::from_secs(60)))
}

/// A streamed upload cannot be replayed from the start by `RetryBackend`, so its parts are
/// retried where they are written.
fn retry_parts(op: Operator) -> Operator {
    op.layer(
        opendal::layers::RetryLayer::new()
            .with_jitter()
            .with_max_times(8)
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(10)),
    )
}

/// One listing of the root, retried like any call (`RetryBackend` wraps the backend only once it is
/// open): a store that is briefly unavailable, throttles, or drops the first connection is not a
/// configuration problem. But one that does not answer at all is reported within about a minute
/// (plus the call that is under way then), not after eight timeouts.
fn probe(backend: &OpendalBackend) -> super::BackendResult<()> {
    RetryPolicy::default().run_within(Duration::from_secs(60), || backend.probe())
}

/// Open and check: list one entry of the root, so that configuration problems surface now.
fn checked(url: &str, op: Operator, what: &str) -> Result<Arc<dyn Backend>> {
    let backend = OpendalBackend::new(layered(op), url.to_string())?
        .with_parallel_writes(REMOTE_UPLOADS)
        .with_streaming(retry_parts);
    if let Err(e) = probe(&backend) {
        let m = &e.message;
        let missing = ["NoSuchBucket", "ContainerNotFound", "does not exist"].iter().any(|k| m.contains(k));
        let refused = ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed", "403"]
            .iter()
            .any(|k| m.contains(k));
        let hint = if missing || e.kind == BackendErrorKind::NotFound {
            format!("the {what} does not exist (create it first)")
        } else if refused || e.kind == BackendErrorKind::PermissionDenied {
            "the credentials were refused (check the store's variables in the README)".to_string()
        } else if e.kind == BackendErrorKind::Transient {
            "the store did not answer".to_string()
        } else {
            "the store refused the request".to_string()
        };
        return Err(crate::Error::Backend(BackendError {
            kind: if e.kind == BackendErrorKind::Transient {
                BackendErrorKind::Transient
            } else {
                BackendErrorKind::Config
            },
            op: "open",
            location: url.to_string(),
            message: format!("{hint}: {}", e.message),
            detail: e.detail,
        }));
    }
    Ok(Arc::new(backend))
}

/// `s3://BUCKET/PREFIX`: credentials, region and endpoint from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL` and the shared
/// credentials file (OpenDAL's loader); path-style addressing, which custom endpoints need.
pub(super) fn s3(url: &str, rest: &str) -> Result<Arc<dyn Backend>> {
    let (bucket, root) = split(url, rest)?;
    let mut b = opendal::services::S3::default().bucket(&bucket).root(&root);
    if env("AWS_REGION").is_none() {
        b = b.region(&env("AWS_DEFAULT_REGION").unwrap_or_else(|| "us-east-1".into()));
    }
    let op = Operator::new(b).map_err(|e| config_error(url, e.to_string()))?;
    checked(url, op, "bucket")
}

/// `azblob://CONTAINER/PREFIX`: `AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT` and
/// `AZURE_STORAGE_KEY` (or `AZURE_STORAGE_SAS_TOKEN`), with `AZURE_STORAGE_ENDPOINT` for another
/// endpoint than `https://ACCOUNT.blob.core.windows.net` (Azurite, sovereign clouds).
pub(super) fn azblob(url: &str, rest: &str) -> Result<Arc<dyn Backend>> {
    let (container, root) = split(url, rest)?;
    let mut b = match env("AZURE_STORAGE_CONNECTION_STRING") {
        Some(conn) => opendal::services::Azblob::from_connection_string(&conn)
            .map_err(|e| config_error(url, format!("AZURE_STORAGE_CONNECTION_STRING: {e}")))?,
        None => {
            let account = env("AZURE_STORAGE_ACCOUNT").ok_or_else(|| {
                config_error(
                    url,
                    "set AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or AZURE_STORAGE_CONNECTION_STRING)".into(),
                )
            })?;
            let endpoint =
                env("AZURE_STORAGE_ENDPOINT").unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            let mut b = opendal::services::Azblob::default().account_name(&account).endpoint(&endpoint);
            if let Some(key) = env("AZURE_STORAGE_KEY") {
                b = b.account_key(&key);
            }
            if let Some(sas) = env("AZURE_STORAGE_SAS_TOKEN") {
                b = b.sas_token(&sas);
            }
            b
        }
    };
    b = b.container(&container).root(&root);
    let op = Operator::new(b).map_err(|e| config_error(url, e.to_string()))?;
    checked(url, op, "container")
}

/// `sftp://USER@HOST:PORT/PATH`: the key from `SOPHON_SFTP_KEY` (else ssh's defaults and agent),
/// host keys checked strictly against the user's `~/.ssh/known_hosts` (`SOPHON_SFTP_KNOWN_HOSTS=add`
/// trusts a new host on first use; a changed key always fails, and no other value is accepted).
/// Objects are written under a temporary name and renamed, so none is ever seen half-written.
pub(super) fn sftp(url: &str, rest: &str) -> Result<Arc<dyn Backend>> {
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(config_error(url, "the URL names no host".into()));
    }
    let root = format!("/{}", path.trim_matches('/'));
    let mut b = opendal::services::Sftp::default().endpoint(&format!("ssh://{host}")).root(&root);
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        b = b.user(u);
    }
    if let Some(key) = env("SOPHON_SFTP_KEY") {
        b = b.key(&key);
    }
    // OpenDAL also offers "accept", which connects to a host whose key has changed: the very attack
    // host keys exist to stop, so it is not passed through.
    let known_hosts = env("SOPHON_SFTP_KNOWN_HOSTS").unwrap_or_else(|| "strict".into()).to_ascii_lowercase();
    if !matches!(known_hosts.as_str(), "strict" | "add") {
        return Err(config_error(
            url,
            format!("SOPHON_SFTP_KNOWN_HOSTS={known_hosts}: use strict (the default) or add (trust a new host on first use)"),
        ));
    }
    b = b.known_hosts_strategy(&known_hosts);
    let op = Operator::new(b).map_err(|e| config_error(url, e.to_string()))?;
    let backend = OpendalBackend::new(layered(op), url.to_string())?
        .with_rename_writes()
        .with_parallel_writes(REMOTE_UPLOADS)
        .with_streaming(retry_parts);
    if let Err(e) = probe(&backend) {
        return Err(crate::Error::Backend(BackendError {
            kind: BackendErrorKind::Config,
            op: "open",
            location: url.to_string(),
            message: format!(
                "cannot open the SFTP store (host key not in ~/.ssh/known_hosts or changed, key refused, or no such folder): {}",
                e.message
            ),
            detail: e.detail,
        }));
    }
    Ok(Arc::new(backend))
}
