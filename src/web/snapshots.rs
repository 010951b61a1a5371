//! `GET /api/snapshots`: the home's repository snapshots, within the user's scope.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use sophon::format::snapshot::Snapshot;
use sophon::gateway::keys::{self, Given};
use sophon::gateway::Settings;
use sophon::id::SnapshotId;
use sophon::source::SnapshotScope;
use sophon::{Repository, Session};

use super::{error, App, Shared};

/// What the environment gives for the repository's key, as for the CLI (SOPHON_REPOSITORY_PASSPHRASE,
/// SOPHON_BACKUP_PASSPHRASE, SOPHON_BACKUP_PASSPHRASE_FILE, SOPHON_KEY_HINT; the config's
/// PassphraseFile and the home's key file are tried by `keys` itself).
pub fn given() -> Given {
    use std::os::unix::ffi::OsStringExt;
    let bytes = |n: &str| std::env::var_os(n).map(|v| zeroize::Zeroizing::new(v.into_vec()));
    Given {
        repo_file: None,
        repo_variable: bytes("SOPHON_REPOSITORY_PASSPHRASE"),
        seal_file: std::env::var_os("SOPHON_BACKUP_PASSPHRASE_FILE").map(Into::into),
        seal_variable: bytes("SOPHON_BACKUP_PASSPHRASE"),
        key_hint: std::env::var("SOPHON_KEY_HINT").ok(),
    }
}

/// The home's configured repository, opened once per server; `None` while it does not exist yet
/// (a first backup creates it).
pub fn repository(app: &App) -> anyhow::Result<Option<Arc<Repository>>> {
    let mut slot = app.repo.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = slot.as_ref() {
        return Ok(Some(Arc::clone(r)));
    }
    let settings = Settings::load(&app.home)?;
    let url = settings.repository_url();
    if settings.is_default_repository() && !std::path::Path::new(&url).join("config").exists() {
        return Ok(None);
    }
    let (repo, _) = keys::open_repository(&url, &given(), Some(&settings), Some(sophon::repo::default_cache_dir()))
        .map_err(|e| anyhow::anyhow!("opening repository {url}: {e}"))?;
    let repo = Arc::new(repo);
    *slot = Some(Arc::clone(&repo));
    Ok(Some(repo))
}

/// How long one repository session serves the list and browse requests that arrive while it is
/// open. Opening a session writes a lock file, reads every other lock and syncs the index: under
/// fifty clients that was most of each request. Shared for two seconds, a session still ends soon,
/// so a prune waiting for the readers of its time is held up by no more than that.
pub const SHARED_READS_FOR: Duration = Duration::from_secs(2);

/// A session shared by list and browse requests, with the snapshots listed before it was opened:
/// the index it synced holds their blobs (a backup writes its index before its snapshot), so a
/// snapshot written since is browsed with a fresh session of its own.
pub struct SharedRead {
    born: Instant,
    session: Session,
    ids: Arc<HashSet<SnapshotId>>,
}

/// The shared read session, opened (or replaced, once it is older than [`SHARED_READS_FOR`]) as
/// needed. The slot lets it go after its time even if no request comes, so an idle server holds no
/// lock.
pub fn read_session(app: &App, repo: Arc<Repository>) -> anyhow::Result<(Session, Arc<HashSet<SnapshotId>>)> {
    let mut slot = app.read_session.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = slot.as_ref().filter(|r| r.born.elapsed() < SHARED_READS_FOR) {
        return Ok((r.session.clone(), Arc::clone(&r.ids)));
    }
    // Listed first, then the session: every snapshot listed has its blobs in the index it syncs.
    let ids: HashSet<SnapshotId> = repo.snapshot_ids()?.into_iter().collect();
    let session = Session::shared(repo, "dashboard reads")?;
    let born = Instant::now();
    let ids = Arc::new(ids);
    let old = slot.replace(SharedRead { born, session: session.clone(), ids: Arc::clone(&ids) });
    drop(slot);
    drop(old);
    let holder = Arc::clone(&app.read_session);
    std::thread::spawn(move || {
        std::thread::sleep(SHARED_READS_FOR);
        let mut slot = holder.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|r| r.born == born) {
            let gone = slot.take();
            drop(slot);
            drop(gone);
        }
    });
    Ok((session, ids))
}

/// Whether snapshot `s` is visible in `scope` (`None`: gateway-wide, every snapshot; a tenant: the
/// snapshots whose scope label names it).
pub fn in_scope(s: &Snapshot, scope: Option<&str>) -> bool {
    scope.is_none_or(|tenant| SnapshotScope::from_paths(&s.paths).tenant() == Some(tenant))
}

/// The snapshot `spec` names among those visible in `scope`: its full id, or a prefix of at least
/// 8 hex digits that one visible snapshot alone has. Snapshots outside the scope are never
/// matched, so guessing another tenant's id, short id or a prefix of it finds nothing (404). The
/// session holds the repository's shared lock while the caller reads the snapshot.
pub fn find(app: &App, scope: Option<&str>, spec: &str) -> anyhow::Result<Option<(Session, SnapshotId, Snapshot)>> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec.len() < 8 || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(repo) = repository(app)? else { return Ok(None) };
    let (session, ids) = read_session(app, Arc::clone(&repo))?;
    let snaps = listing(app, &session)?;
    let mut matching = snaps.into_iter().filter(|(id, s)| id.to_hex().starts_with(&spec) && in_scope(s, scope));
    match (matching.next(), matching.next()) {
        (Some((id, snap)), None) if ids.contains(&id) => Ok(Some((session, id, snap))),
        // Written after the shared session synced its index: read with a session of its own.
        (Some((id, snap)), None) => Ok(Some((Session::shared(repo, "browse")?, id, snap))),
        _ => Ok(None),
    }
}

/// The readable snapshots of the repository, oldest first, as `Session::list_snapshots` gives them,
/// without decrypting them all on every request: a snapshot's id is the hash of its bytes, so the
/// decoded snapshot of an id never changes and is kept in `app.snapshots`; a request lists the ids
/// and reads only the ones it has not seen (a forgotten one leaves the cache). An unreadable one
/// is left out, as `list_snapshots` leaves it out of its first list, and tried again next time.
pub fn listing(app: &App, session: &Session) -> anyhow::Result<Vec<(SnapshotId, Snapshot)>> {
    let ids = session.repo().snapshot_ids()?;
    let mut out = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    {
        let cache = app.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        for id in &ids {
            match cache.get(id) {
                Some(s) => out.push((*id, s.clone())),
                None => missing.push(*id),
            }
        }
    }
    let mut fresh = Vec::new();
    for id in missing {
        match session.load_snapshot(&id) {
            Ok(s) => {
                fresh.push((id, s.clone()));
                out.push((id, s));
            }
            // Forgotten between the listing and the read.
            Err(sophon::Error::NotFound(_)) => {}
            Err(e) if e.is_damage() => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
    let listed: HashSet<SnapshotId> = ids.into_iter().collect();
    let mut cache = app.snapshots.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|id, _| listed.contains(id));
    cache.extend(fresh);
    Ok(out)
}

/// The home's repository for a backup: opened, or (the in-home default one, on the first backup)
/// created under the key `keys` chooses, as `backup create` does. Says whether it was created, and
/// where its key came from then.
pub fn home_repository(app: &App) -> anyhow::Result<(Arc<Repository>, Option<keys::Source>)> {
    if let Some(repo) = repository(app)? {
        return Ok((repo, None));
    }
    let mut slot = app.repo.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = slot.as_ref() {
        return Ok((Arc::clone(r), None));
    }
    let settings = Settings::load(&app.home)?;
    let url = settings.repository_url();
    let home = keys::open_home_repository(
        &settings,
        &given(),
        Some(sophon::repo::default_cache_dir()),
        &sophon::InitOptions::default(),
    )
    .map_err(|e| anyhow::anyhow!("the gateway's repository {url}: {e}"))?;
    let repo = Arc::new(home.repo);
    *slot = Some(Arc::clone(&repo));
    Ok((repo, home.created.then_some(home.key)))
}

/// The snapshots visible in `scope` (`None`: all), oldest first.
pub fn visible(app: &App, scope: Option<&str>) -> anyhow::Result<Option<Vec<Value>>> {
    let Some(repo) = repository(app)? else {
        return Ok(None);
    };
    let (session, _) = read_session(app, repo)?;
    let snaps = listing(app, &session)?;
    Ok(Some(
        snaps
            .iter()
            .filter_map(|(id, s)| {
                if !in_scope(s, scope) {
                    return None;
                }
                let label = SnapshotScope::from_paths(&s.paths);
                Some(json!({
                    "id": id,
                    "short_id": id.short(),
                    "time": s.time,
                    "tags": s.tags,
                    "paths": s.paths,
                    "scope": label.to_string(),
                    "tenant": label.tenant(),
                    "hostname": s.hostname,
                    "partial": s.partial,
                    "summary": s.summary,
                }))
            })
            .collect(),
    ))
}

/// `GET /api/snapshots` (viewer and up).
pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let scope = session.scope.clone();
    let Ok(_permit) = app.reads.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    };
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || visible(&shared, scope.as_deref())).await;
    match outcome {
        Ok(Ok(Some(list))) => {
            Json(json!({ "snapshots": list, "scope": session.scope.as_deref().unwrap_or("gateway") })).into_response()
        }
        Ok(Ok(None)) => {
            Json(json!({ "snapshots": [], "note": "no repository yet: the first backup creates it" })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "listing the snapshots failed"),
    }
}
