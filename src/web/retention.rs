//! `/api/retention`: the gateway's lifecycle (`Sophon:Backups:Default:Lifecycle`, the policy of
//! `backup forget` without `--keep-*` flags) read from the merged settings, previewed with the plan
//! `backup forget --dry-run` makes (`sophon::forget::plan`, every group, keep or remove with the
//! rules that keep), and written into the config file the settings model names
//! (`sophon::gateway::config_edit`). Saving runs no forget: the next scheduled run applies it.
//!
//! Anyone signed in reads the lifecycle and previews (a tenant's user sees its tenant's groups
//! only); the lifecycle is one setting for the whole gateway, so only an owner of the default
//! tenant saves it (format-spec/gateway.md §11). A save may carry the preview's `plan` token: when
//! the snapshots changed since, the plan differs and the save is refused with 409.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use sophon::forget::{self, ForgetPlan, Selection};
use sophon::gateway::config_edit;
use sophon::gateway::settings::{Lifecycle, LIFECYCLE_KEY};
use sophon::gateway::{Settings, SettingsError};
use sophon::retention::Policy;
use sophon::source::SnapshotScope;
use sophon::Session;

use super::access::{audited, blocking, body, require_gateway_wide, signed_in, ApiError};
use super::auth::Session as UserSession;
use super::{snapshots, App, Shared};

/// A path as the home's operator knows it: relative to the home when inside it.
fn shown(app: &App, p: &std::path::Path) -> String {
    p.strip_prefix(&app.home).unwrap_or(p).display().to_string()
}

fn settings_error(e: SettingsError) -> ApiError {
    match &e {
        SettingsError::Value { key, .. } => {
            let field = key.rsplit(':').next().unwrap_or("lifecycle").to_string();
            ApiError::bad(&field, e.to_string())
        }
        SettingsError::Edit { .. } => ApiError::conflict(e.to_string()),
        _ => ApiError::internal(e.to_string()),
    }
}

/// The lifecycle as the settings give it, with where each key comes from.
fn current(app: &App, session: &UserSession) -> Result<Value, ApiError> {
    let settings = Settings::load(&app.home).map_err(settings_error)?;
    let (policy, configured) = settings.retention_policy();
    let lifecycle = settings.backups().lifecycle.clone().unwrap_or_default();
    let sources: serde_json::Map<String, Value> =
        settings.lifecycle_sources().into_iter().map(|(k, p)| (k.to_string(), json!(shown(app, p)))).collect();
    let file = settings.lifecycle_file();
    Ok(json!({
        "key": LIFECYCLE_KEY.join(":"),
        "lifecycle": lifecycle,
        "policy": policy,
        "describe": policy.describe(),
        "configured": configured,
        "product_default": Policy::product_default().describe(),
        "sources": sources,
        "files": settings.files().map(|p| shown(app, p)).collect::<Vec<_>>(),
        "environment": settings.environment(),
        "file": shown(app, &file),
        "may_save": session.access == super::auth::Access::Act && session.scope.is_none(),
    }))
}

/// `GET /api/retention` (viewer and up).
pub async fn show(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || Ok(Json(current(&app, &session)?).into_response())).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    lifecycle: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    lifecycle: Value,
    /// The `plan` token of the preview the user saw.
    #[serde(default)]
    confirm_plan: Option<String>,
}

/// A lifecycle from the request, checked as a save would check it.
fn lifecycle(v: &Value) -> Result<Lifecycle, ApiError> {
    let l = Lifecycle::from_json(v).map_err(settings_error)?;
    l.check_keeps_something().map_err(settings_error)?;
    Ok(l)
}

/// The forget plan of `policy` over the whole repository (what `backup forget --dry-run` shows),
/// cut to `scope`'s groups; `None` while there is no repository.
fn plan(app: &App, policy: &Policy, scope: Option<&str>) -> Result<Option<ForgetPlan>, ApiError> {
    let Some(repo) = snapshots::repository(app)? else {
        return Ok(None);
    };
    let s = Session::shared(repo, "retention preview").map_err(|e| ApiError::internal(e.to_string()))?;
    let mut plan = forget::plan(&s, policy, &Selection::default()).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(t) = scope {
        plan.groups.retain(|g| SnapshotScope::from_paths(&g.key.paths).tenant() == Some(t));
        plan.unreadable.clear();
    }
    Ok(Some(plan))
}

/// A token naming the plan's decisions: equal tokens, equal plans.
fn token(plan: Option<&ForgetPlan>) -> String {
    let mut h = blake3::Hasher::new();
    if let Some(p) = plan {
        h.update(p.policy.describe().as_bytes());
        for g in &p.groups {
            h.update(g.key.describe().as_bytes());
            for s in &g.snapshots {
                h.update(s.id.to_string().as_bytes());
                h.update(if s.keep { b"k" } else { b"r" });
            }
        }
    }
    h.finalize().to_hex()[..32].to_string()
}

/// `POST /api/retention/preview {lifecycle}` (viewer and up; changes nothing).
pub async fn preview(
    State(app): State<Shared>,
    headers: HeaderMap,
    req: Result<Json<Value>, JsonRejection>,
) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let req: PreviewRequest = body(req)?;
        let l = lifecycle(&req.lifecycle)?;
        let policy = l.policy();
        let plan = plan(&app, &policy, session.scope.as_deref())?;
        let Some(p) = &plan else {
            return Ok(Json(json!({
                "policy": policy, "describe": policy.describe(), "lifecycle": l, "groups": [], "kept": 0, "removed": 0,
                "unreadable": [], "plan": token(None), "note": "no repository yet: the first backup creates it",
            }))
            .into_response());
        };
        Ok(Json(json!({
            "policy": p.policy,
            "describe": p.policy.describe(),
            "lifecycle": l,
            "groups": p.groups,
            "kept": p.kept(),
            "removed": p.to_remove().count(),
            "unreadable": p.unreadable,
            "plan": token(plan.as_ref()),
            "scope": session.scope.as_deref().unwrap_or("gateway"),
        }))
        .into_response())
    })
    .await
}

/// `PUT /api/retention {lifecycle, confirm_plan?}` (an owner of the default tenant): write the
/// lifecycle into the config; no forget runs.
pub async fn save(State(app): State<Shared>, headers: HeaderMap, req: Result<Json<Value>, JsonRejection>) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let mut detail = json!({});
        let result = (|| {
            require_gateway_wide(&session, "change the retention lifecycle (one setting for every tenant)")?;
            let req: SaveRequest = body(req)?;
            let l = lifecycle(&req.lifecycle)?;
            let settings = Settings::load(&app.home).map_err(settings_error)?;
            detail["before"] = json!(settings.backups().lifecycle);
            detail["lifecycle"] = json!(l);
            if let Some(seen) = &req.confirm_plan {
                let now = plan(&app, &l.policy(), None)?;
                if token(now.as_ref()) != *seen {
                    return Err(ApiError::conflict(
                        "the snapshots changed since the preview, so its plan is no longer the one this lifecycle \
                         makes: preview again, then save",
                    ));
                }
            }
            let saved = config_edit::save_lifecycle(&settings, &l).map_err(settings_error)?;
            detail["file"] = json!(shown(&app, &saved.file));
            detail["written"] = saved.value.clone();
            Ok(Json(json!({
                "saved": { "file": shown(&app, &saved.file), "created": saved.created, "value": saved.value },
                "retention": current(&app, &session)?,
            }))
            .into_response())
        })();
        audited(&app.home, &session, "dashboard.retention_save", detail, result)
    })
    .await
}
