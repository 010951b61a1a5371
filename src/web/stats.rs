//! `GET /api/stats` (viewer and up): one point per snapshot in the user's scope, oldest first, for
//! the Backups tab's history chart. Each point has the snapshot's logical size (`bytes`), the data it
//! added (`bytes_added`, before compression and encryption, and `bytes_stored`, what that took in
//! the repository), and the running totals: `stored_total`, the repository's growth from these
//! snapshots (the data of snapshots since forgotten, and what prune removed, are not in it), and
//! `dedup_ratio`, the logical bytes of all snapshots so far over `stored_total`. A gateway-wide
//! user also gets the repository's size now (`repository_bytes`: the stored bytes of every indexed,
//! live pack) and the ratio over it. The points are the snapshots of `/api/snapshots`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use sophon::Session;

use super::access::{blocking, signed_in, ApiError};
use super::{snapshots, Shared};

fn ratio(logical: u64, stored: u64) -> Option<f64> {
    (stored > 0).then(|| ((logical as f64 / stored as f64) * 100.0).round() / 100.0)
}

/// `GET /api/stats`.
pub async fn stats(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let scope = session.scope.as_deref().unwrap_or("gateway");
        let Some(list) = snapshots::visible(&app, session.scope.as_deref())? else {
            return Ok(Json(
                json!({ "points": [], "scope": scope, "note": "no repository yet: the first backup creates it" }),
            )
            .into_response());
        };
        let (mut logical_total, mut stored_total) = (0u64, 0u64);
        let mut points = Vec::with_capacity(list.len());
        for s in &list {
            let n = |k: &str| s["summary"][k].as_u64().unwrap_or(0);
            let (bytes, added, stored) = (n("bytes"), n("bytes_added"), n("bytes_stored"));
            logical_total += bytes;
            stored_total += stored;
            points.push(json!({
                "id": s["id"],
                "short_id": s["short_id"],
                "time": s["time"],
                "scope": s["scope"],
                "bytes": bytes,
                "files": n("files"),
                "bytes_added": added,
                "bytes_stored": stored,
                "logical_total": logical_total,
                "stored_total": stored_total,
                "dedup_ratio": ratio(logical_total, stored_total),
            }));
        }
        let mut out = json!({
            "points": points,
            "scope": scope,
            "logical_total": logical_total,
            "stored_total": stored_total,
            "dedup_ratio": ratio(logical_total, stored_total),
        });
        if session.scope.is_none() {
            if let Some(repo) = snapshots::repository(&app)? {
                let s = Session::shared(repo, "stats").map_err(|e| ApiError::internal(e.to_string()))?;
                let mut live = 0u64;
                s.repo()
                    .index()
                    .for_each_pack(&mut |_, bytes, condemned| {
                        if !condemned {
                            live += bytes;
                        }
                        Ok(())
                    })
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                out["repository_bytes"] = Value::from(live);
                out["repository_dedup_ratio"] = json!(ratio(logical_total, live));
            }
        }
        Ok(Json(out).into_response())
    })
    .await
}
