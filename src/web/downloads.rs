//! Downloads of a snapshot as an archive. `POST /api/downloads` (or a create job for the
//! download destination) offers one: a random single-use link, bound to the session that asked,
//! expiring after five minutes. `GET /api/downloads/{token}` renders the export as it streams: the
//! archive goes through a small bounded channel into the response body, so the server's memory
//! does not grow with the archive. A tenant's admin may only download its tenant's snapshots (any
//! other id is as unknown as one that does not exist). Each download ends in one audit row.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use sophon::archive::Progress;
use sophon::export::seal::Kdf;
use sophon::export::{ExportOptions, Format};
use sophon::source::SnapshotScope;
use sophon::{Session as RepoSession, SnapshotId};

use super::auth::{self, Session};
use super::create::{actor, parse_body, parse_format, typed_passphrase, Refusal};
use super::{error, snapshots, Shared};

/// How long an offered download may wait to be started.
pub const OFFER_TTL: Duration = Duration::from_secs(5 * 60);
/// The archive passes to the response in pieces of this size...
const PIECE: usize = 256 << 10;
/// ...with at most this many waiting: the server holds about a megabyte per download.
const PIECES_IN_FLIGHT: usize = 4;

/// A download waiting for its link to be followed. Holds the passphrase until then (in memory only).
struct Offer {
    /// The CSRF token of the session that asked: random per session, so it names that session.
    session: String,
    user: String,
    tenant: String,
    snapshot: SnapshotId,
    format: Format,
    seal: Option<Zeroizing<Vec<u8>>>,
    name: String,
    expires: Instant,
}

/// The offered downloads of this server, by token.
#[derive(Default)]
pub struct Downloads(Mutex<HashMap<String, Offer>>);

impl Downloads {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Offer>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, o| o.expires > now);
        map
    }

    /// The offer `token` names, taken (it is single-use) when it belongs to `session`.
    fn take(&self, token: &str, session: &Session) -> Option<Offer> {
        let mut map = self.map();
        let mine = map.get(token).is_some_and(|o| auth::same(o.session.as_bytes(), session.csrf.as_bytes()));
        if mine {
            map.remove(token)
        } else {
            None
        }
    }
}

/// The file name of a download: `sophon-<tenant or gateway>-<short id>-<snapshot time>.<ext>`.
fn file_name(snapshot: &sophon::format::snapshot::Snapshot, id: &SnapshotId, format: Format) -> String {
    let scope = SnapshotScope::from_paths(&snapshot.paths);
    let who: String = scope
        .tenant()
        .unwrap_or(if scope.is_gateway() { "gateway" } else { "files" })
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let when = snapshot.time().format("%Y%m%d-%H%M%S");
    format!("sophon-{who}-{}-{when}.{}", id.short(), format.name())
}

/// Offer snapshot `id` for download to `owner`'s session; the answer's `url` starts it.
pub fn offer(
    app: &Shared,
    owner: &Session,
    session: &RepoSession,
    id: SnapshotId,
    format: Format,
    seal: Option<Zeroizing<Vec<u8>>>,
) -> sophon::Result<Value> {
    let snapshot = session.load_snapshot(&id)?;
    let name = file_name(&snapshot, &id, format);
    let token = auth::random_hex(32);
    let sealed = seal.is_some();
    app.downloads.map().insert(
        token.clone(),
        Offer {
            session: owner.csrf.clone(),
            user: owner.email.clone(),
            tenant: owner.tenant.clone(),
            snapshot: id,
            format,
            seal,
            name: name.clone(),
            expires: Instant::now() + OFFER_TTL,
        },
    );
    Ok(json!({
        "url": format!("/api/downloads/{token}"),
        "name": name,
        "format": format.name(),
        "sealed": sealed,
        "expires_seconds": OFFER_TTL.as_secs(),
    }))
}

fn passphrase_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Zeroizing::new))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadRequest {
    snapshot: String,
    #[serde(default = "zip")]
    format: String,
    #[serde(default)]
    encrypt: bool,
    #[serde(default, deserialize_with = "passphrase_field")]
    passphrase: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "passphrase_field")]
    passphrase_confirm: Option<Zeroizing<String>>,
}

fn zip() -> String {
    "zip".into()
}

/// `POST /api/downloads`: offer a snapshot of the user's scope as a zip or tar.gz, sealed with a
/// typed passphrase when `encrypt`.
pub async fn start(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let session = match actor(&app, &headers, "download backups") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<Value, Refusal> {
        let req: DownloadRequest = parse_body(&body)?;
        let format = parse_format(&req.format)?;
        let seal = typed_passphrase(req.encrypt, req.passphrase, req.passphrase_confirm)?;
        let (repo_session, id, _) = snapshots::find(&shared, session.scope.as_deref(), &req.snapshot)
            .map_err(|e| Refusal::unavailable(format!("{e:#}")))?
            .ok_or_else(|| Refusal::not_found("snapshot", "no such snapshot"))?;
        offer(&shared, &session, &repo_session, id, format, seal).map_err(Refusal::unavailable)
    })
    .await;
    match outcome {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(r)) => r.into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "offering the download failed"),
    }
}

/// Hands the archive to the response in pieces; a client that went away stops the export.
struct ToResponse {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    progress: Arc<Progress>,
    sent: u64,
}

impl ToResponse {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        let n = piece.len() as u64;
        if self.tx.blocking_send(Ok(piece)).is_err() {
            // Nobody reads any more: the export stops as if cancelled.
            self.progress.cancel.store(true, Ordering::Relaxed);
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"));
        }
        self.sent += n;
        Ok(())
    }
}

impl Write for ToResponse {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /api/downloads/{token}`: the archive, rendered as it is sent.
pub async fn fetch(State(app): State<Shared>, headers: HeaderMap, Path(token): Path<String>) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let Some(offer) = app.downloads.take(&token, &session) else {
        return error(StatusCode::NOT_FOUND, "no such download: it was used, has expired or is another session's");
    };
    let shared = app.clone();
    let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<RepoSession> {
        let repo = snapshots::repository(&shared)?.ok_or_else(|| anyhow::anyhow!("no repository"))?;
        Ok(RepoSession::shared(repo, "download")?)
    })
    .await;
    let repo_session = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "opening the repository failed"),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(PIECES_IN_FLIGHT);
    let content_type = match (&offer.seal, offer.format) {
        (Some(_), _) => "application/octet-stream",
        (None, Format::Zip) => "application/zip",
        (None, Format::TarGz) => "application/gzip",
    };
    let disposition = format!("attachment; filename=\"{}\"", offer.name);
    let home = app.home.clone();
    tokio::task::spawn_blocking(move || {
        let progress = Arc::new(Progress::default());
        let mut opts = ExportOptions::new(offer.format);
        opts.progress = Some(Arc::clone(&progress));
        opts.seal = offer.seal.as_ref().map(|p| (p.clone(), Kdf::default_argon2id()));
        let mut out = ToResponse { tx: tx.clone(), buf: Vec::with_capacity(PIECE), progress, sent: 0 };
        let written = sophon::export::export_snapshot(&repo_session, &offer.snapshot, &mut out, &opts);
        drop(repo_session);
        let detail = match &written {
            Ok(s) => json!({ "outcome": "succeeded", "bytes": s.bytes_out }),
            Err(sophon::Error::Cancelled) => json!({ "outcome": "cancelled", "error": "the client went away" }),
            Err(e) => {
                // The body ends in an error, so the client sees an incomplete download, never a
                // short archive that looks whole.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                json!({ "outcome": "failed", "error": e.to_string() })
            }
        };
        let mut detail = detail;
        detail["snapshot"] = json!(offer.snapshot);
        detail["format"] = json!(offer.format.name());
        detail["sealed"] = json!(offer.seal.is_some());
        detail["name"] = json!(offer.name);
        auth::audit_in(&home, &offer.tenant, &offer.user, "dashboard.download", detail);
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
