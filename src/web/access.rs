//! What the schedule, retention and stats handlers share: the signed-in user or 401, may this user
//! act or 403, a JSON body read into a typed request or 400 (after the role is checked, so a viewer
//! gets 403 whatever it sends), blocking work off the async threads, and errors as
//! `{"error": message, "field": name}` so the page can show a message next to the field that caused it.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use sophon::cron::CronError;

use super::auth::{Access, Session};
use super::App;

/// An answer other than success.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field the error is about.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), field: None }
    }

    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), field: Some(field.to_string()) }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    /// A job store error: a mistake in what was asked is 400 (a name taken 409, an unknown job 404,
    /// a job that is running 409); a failure of the store is 500.
    pub fn cron(e: CronError) -> Self {
        let status = match &e {
            CronError::Duplicate { .. } | CronError::Running { .. } => StatusCode::CONFLICT,
            CronError::NotFound { .. } => StatusCode::NOT_FOUND,
            e if e.is_usage() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let field = match &e {
            CronError::Expr(_) => Some("schedule".to_string()),
            CronError::Duplicate { .. } => Some("name".to_string()),
            CronError::UnknownTenant(_) | CronError::NoTenant => Some("tenant".to_string()),
            _ => None,
        };
        ApiError { status, message: e.to_string(), field }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(f) = self.field {
            body["field"] = Value::String(f);
        }
        (self.status, Json(body)).into_response()
    }
}

/// The signed-in user, or 401.
pub fn signed_in(app: &App, headers: &HeaderMap) -> Result<Arc<Session>, ApiError> {
    app.sessions.of_request(headers).ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not signed in"))
}

/// 403 unless the user may act (owner or admin); `what`: "change schedules".
pub fn require_act(s: &Session, what: &str) -> Result<(), ApiError> {
    if s.access != Access::Act {
        return Err(ApiError::forbidden(format!("a viewer cannot {what}")));
    }
    Ok(())
}

/// 403 unless the user acts gateway-wide (an owner of the default tenant; format-spec/gateway.md §11).
pub fn require_gateway_wide(s: &Session, what: &str) -> Result<(), ApiError> {
    require_act(s, what)?;
    if let Some(t) = &s.scope {
        return Err(ApiError::forbidden(format!(
            "only an owner of the default tenant can {what}: your scope is tenant {t:?}"
        )));
    }
    Ok(())
}

/// The JSON body as `T`, or 400 saying what is wrong with it.
pub fn body<T: DeserializeOwned>(body: Result<Json<Value>, JsonRejection>) -> Result<T, ApiError> {
    let Json(v) = body.map_err(|e| ApiError::bad("body", format!("the request body: {}", e.body_text())))?;
    serde_json::from_value(v).map_err(|e| ApiError::bad("body", format!("the request body: {e}")))
}

/// Run `f` on a blocking thread (SQLite, the repository) and answer with what it returns.
pub async fn blocking<F>(f: F) -> Response
where
    F: FnOnce() -> Result<Response, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::internal("the request stopped on an internal error").into_response(),
    }
}

/// Write the audit row of a request: `outcome` is `ok` or the message of the refusal.
pub fn audit(home: &std::path::Path, session: &Session, action: &str, mut detail: Value, outcome: &str) {
    detail["outcome"] = Value::String(outcome.to_string());
    super::auth::audit_in(home, &session.tenant, &session.email, action, detail);
}

/// Audit `result` (ok, or its error) and return it.
pub fn audited(
    home: &std::path::Path,
    session: &Session,
    action: &str,
    detail: Value,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    match &result {
        Ok(_) => audit(home, session, action, detail, "ok"),
        Err(e) => audit(home, session, action, detail, &format!("refused ({}): {}", e.status.as_u16(), e.message)),
    }
    result
}
