//! `sophon serve`: the web dashboard (issue 13). An axum server on the tokio runtime: sign-in with
//! the gateway's own users, the home's snapshots, verify, create (a backup with its archive written
//! or downloaded) and streamed downloads as background jobs, health and metrics, and one page
//! compiled into the binary. It calls the library (settings, keys, `Session`), never the CLI.
//!
//! Plain HTTP only: TLS belongs to the operator's proxy.

mod access;
mod assets;
mod auth;
mod browse;
mod create;
mod downloads;
mod exports;
mod jobs;
mod metrics;
mod restore;
mod retention;
mod schedules;
mod snapshots;
mod stats;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use sophon::Repository;

/// What every handler shares.
pub struct App {
    pub home: PathBuf,
    pub sessions: auth::Sessions,
    pub limiter: auth::Limiter,
    pub jobs: jobs::Jobs,
    pub downloads: downloads::Downloads,
    /// The home's repository once opened (opening derives its key: once per server, not per request).
    pub repo: Mutex<Option<Arc<Repository>>>,
    /// Uploaded archives and restore previews.
    pub restores: restore::Restores,
    /// Listings and browsing open a repository session each (a lock file written, every other lock
    /// read, the index synced): at most this many at once. Beyond a few, concurrent sessions only
    /// slow each other down (each one reads every other's lock), so 50 requests at once would take
    /// seconds each instead of milliseconds; waiting for a permit is the cheaper queue.
    pub reads: tokio::sync::Semaphore,
    /// The repository's snapshots decoded so far, by id (see [`snapshots::listing`]).
    pub snapshots: Mutex<std::collections::HashMap<sophon::SnapshotId, sophon::format::snapshot::Snapshot>>,
    /// The repository session that list and browse requests share for a moment (see
    /// [`snapshots::read_session`]).
    pub read_session: Arc<Mutex<Option<snapshots::SharedRead>>>,
}

/// How many list/browse requests hold a repository session at once (see [`App::reads`]).
pub const READS_AT_ONCE: usize = 4;

pub type Shared = Arc<App>;

/// The default of `sophon serve --max-upload`.
pub const DEFAULT_MAX_UPLOAD: u64 = restore::DEFAULT_MAX_UPLOAD;

/// Run the server until the process is stopped; an uploaded archive may be at most `max_upload` bytes.
pub fn serve(home: PathBuf, listen: &str, max_upload: u64) -> anyhow::Result<u8> {
    if !home.join(sophon::gateway::DB_FILE).is_file() {
        anyhow::bail!("{} is not a gateway home (no {})", home.display(), sophon::gateway::DB_FILE);
    }
    // The settings are read now so a malformed config is an error at start, not on first use.
    sophon::gateway::Settings::load(&home)?;
    let app = Arc::new(App {
        home,
        sessions: auth::Sessions::default(),
        limiter: auth::Limiter::default(),
        jobs: jobs::Jobs::default(),
        downloads: downloads::Downloads::default(),
        repo: Mutex::new(None),
        restores: restore::Restores::new(sophon::repo::default_cache_dir().join("uploads"), max_upload)?,
        reads: tokio::sync::Semaphore::new(READS_AT_ONCE),
        snapshots: Mutex::default(),
        read_session: Arc::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("dashboard: http://{addr}/ (plain HTTP: put it behind your TLS proxy)");
        // Expired uploads and previews are removed even when no one asks.
        let sweeper = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                let s = sweeper.clone();
                let _ = tokio::task::spawn_blocking(move || s.restores.sweep()).await;
            }
        });
        let serve = axum::serve(listener, router(app).into_make_service_with_connect_info::<SocketAddr>());
        tokio::select! {
            served = std::future::IntoFuture::into_future(serve) => served.context("serving")?,
            // Stopped by its service manager: return, so that the binary closes the stores'
            // connections (SFTP's ssh masters) instead of dying with them open.
            _ = stop_requested() => {}
        }
        Ok::<u8, anyhow::Error>(0)
    })?;
    // Jobs still running are abandoned as a kill would (every write is crash-safe), not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(0)
}

/// SIGTERM or SIGINT.
async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // No handler: the default action of the signals stays, and this never returns.
        _ => std::future::pending::<()>().await,
    }
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/metrics", get(metrics::metrics))
        .route("/api/session", get(auth::current).post(auth::sign_in).delete(auth::sign_out))
        .route("/api/snapshots", get(snapshots::list))
        .route("/api/exports", get(exports::list))
        .route("/api/snapshots/{id}/tree", get(browse::tree))
        .route("/api/snapshots/{id}/file", get(browse::file))
        .route("/api/snapshots/{id}/zip", get(browse::zip))
        .route("/api/uploads", post(restore::upload))
        .route("/api/restores/plan", post(restore::plan))
        .route("/api/restores", post(restore::start))
        .route("/api/verify", post(verify::start))
        .route("/api/backups", post(create::create))
        .route("/api/backups/options", get(create::options))
        .route("/api/backups/estimate", post(create::estimate))
        .route("/api/downloads", post(downloads::start))
        .route("/api/downloads/{token}", get(downloads::fetch))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::one))
        .route("/api/jobs/{id}/events", get(jobs::events))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/schedules", get(schedules::list).post(schedules::add))
        .route("/api/schedules/preview", post(schedules::preview))
        .route("/api/schedules/{id}", put(schedules::edit).delete(schedules::remove))
        .route("/api/schedules/{id}/runs", get(schedules::runs))
        .route("/api/schedules/{id}/pause", post(schedules::pause))
        .route("/api/schedules/{id}/resume", post(schedules::resume))
        .route("/api/schedules/{id}/run", post(schedules::run))
        .route("/api/retention", get(retention::show).put(retention::save))
        .route("/api/retention/preview", post(retention::preview))
        .route("/api/stats", get(stats::stats))
        .layer(middleware::from_fn_with_state(app.clone(), csrf))
        .layer(middleware::from_fn(no_store))
        .with_state(app)
}

/// Every state-changing request but the sign-in itself needs a session and its CSRF token in
/// `X-CSRF-Token`.
async fn csrf(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let changes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let sign_in = req.method() == Method::POST && req.uri().path() == "/api/session";
    if changes && !sign_in {
        let Some(session) = app.sessions.of_request(req.headers()) else {
            return error(StatusCode::UNAUTHORIZED, "not signed in");
        };
        let given = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !auth::same(given.as_bytes(), session.csrf.as_bytes()) {
            return error(StatusCode::FORBIDDEN, "missing or wrong X-CSRF-Token");
        }
    }
    next.run(req).await
}

/// API answers are about one user: no cache keeps them.
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h: &mut HeaderMap = res.headers_mut();
    h.entry(header::CACHE_CONTROL).or_insert(header::HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    // Every script and style is served from /assets/: nothing inline, nothing from elsewhere.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    res
}

/// A JSON error: `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
