//! `GET /api/exports`: the archives at the destination the gateway's config names for scheduled
//! backups (`Sophon:Backups:Default:Destination`: `local` is the home's `backups/archives/`, or a
//! folder or store URL), read from their `metadata.json`, within the user's scope. With
//! `Destination: archive` (the default) the repository is the archive and nothing is listed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use sophon::export::destination::Place;
use sophon::gateway::settings::{ScheduledDestination, LOCAL_ARCHIVES};
use sophon::gateway::Settings;
use sophon::source::SnapshotScope;

use super::{error, snapshots, Shared};

/// `GET /api/exports` (viewer and up).
pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let scope = session.scope.clone();
    let outcome = tokio::task::spawn_blocking(move || listing(&app, scope.as_deref())).await;
    match outcome {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "listing the exports failed"),
    }
}

fn listing(app: &Shared, scope: Option<&str>) -> anyhow::Result<Value> {
    let settings = Settings::load(&app.home)?;
    let dest = match settings.scheduled_backups()?.destination {
        ScheduledDestination::Archive => {
            return Ok(json!({ "destination": "archive", "exports": [],
                "note": "Destination is \"archive\": the repository is the archive storage" }))
        }
        ScheduledDestination::Local => app.home.join(LOCAL_ARCHIVES).to_string_lossy().into_owned(),
        ScheduledDestination::Url(u) => u,
    };
    // A local folder no backup has written to yet holds nothing.
    if sophon::export::destination::is_local(&dest) && !std::path::Path::new(&dest).is_dir() {
        return Ok(json!({ "destination": dest, "exports": [] }));
    }
    let place = Place::open(&dest)?;
    let seal = snapshots::given().seal(Some(&settings)).ok().flatten();
    let cache = sophon::repo::default_cache_dir().join("exports");
    let (found, unreadable) = place.archives(&dest, &cache, seal.as_ref().map(|p| p.value.as_slice()))?;
    let mut exports: Vec<Value> = found
        .into_iter()
        .filter_map(|l| {
            let m = &l.metadata;
            let paths = m.paths.clone().or_else(|| m.export.scope.clone().map(|s| vec![s])).unwrap_or_default();
            let label = SnapshotScope::from_paths(&paths);
            if let Some(tenant) = scope {
                if label.tenant() != Some(tenant) {
                    return None;
                }
            }
            Some(json!({
                "name": l.name,
                "size": l.size,
                "created": m.export.created,
                "format": m.export.format,
                "snapshot": m.export.snapshot,
                "snapshot_time": m.export.snapshot_time,
                "scope": label.to_string(),
                "tenant": label.tenant(),
                "sealed": m.export.sealed,
                "incremental_of": m.export.incremental.as_ref().map(|i| i.follows.clone()),
                "hostname": m.hostname,
                "tags": m.tags,
            }))
        })
        .collect();
    exports.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
    // Only a gateway-wide user learns about archives it cannot read (they may be another tenant's).
    let unreadable = if scope.is_none() { unreadable } else { Vec::new() };
    Ok(json!({ "destination": dest, "exports": exports, "unreadable": unreadable }))
}
