//! `POST /api/verify`: check the home's repository in the background, as `backup verify` does,
//! optionally reading a share of the stored data. A tenant's admin sees the counts and only the
//! damaged snapshots of that tenant.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use sophon::check::{self, CheckOptions};
use sophon::Session;

use super::jobs::JobError;
use super::{error, snapshots, Shared};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Percentage of packs to read and authenticate (0 < p ≤ 100); absent: structure only.
    #[serde(default)]
    read_data_percent: Option<f64>,
}

pub async fn start(State(app): State<Shared>, headers: HeaderMap, body: Json<VerifyRequest>) -> Response {
    let session = match app.sessions.acting(&headers, "start a verify") {
        Ok(s) => s,
        Err((status, message)) => return error(status, &message),
    };
    let percent = body.read_data_percent;
    if let Some(p) = percent {
        if !(p > 0.0 && p <= 100.0) {
            return error(StatusCode::BAD_REQUEST, "read_data_percent: give a percentage above 0 and at most 100");
        }
    }
    let scope = session.scope.clone();
    let shared = app.clone();
    let started = app.jobs.start(&app, &session, "verify", None, json!({ "read_data_percent": percent }), move |job| {
        let repo = snapshots::repository(&shared)?
            .ok_or_else(|| JobError::Failed("no repository yet: the first backup creates it".into()))?;
        let s = Session::shared(repo, "check")?;
        job.step("checking the repository");
        let report = check::check(&s, &CheckOptions { read_data_percent: percent }, &mut |msg| job.step(msg))?;
        let mut view = serde_json::to_value(&report)?;
        view["clean"] = Value::Bool(report.is_clean());
        if let Some(tenant) = scope {
            // Only the tenant's own snapshots are named; objects are named only when one of them uses it.
            let mine: HashSet<String> = snapshots::visible(&shared, Some(&tenant))?
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect();
            let findings: Vec<Value> = report
                .findings
                .iter()
                .filter(|f| f.snapshots.iter().any(|id| mine.contains(id)))
                .map(|f| {
                    let own: Vec<&String> = f.snapshots.iter().filter(|id| mine.contains(*id)).collect();
                    json!({ "object": f.object, "problem": f.problem, "snapshots": own })
                })
                .collect();
            view["findings"] = Value::Array(findings);
        }
        Ok(view)
    });
    match started {
        Ok(job) => (StatusCode::ACCEPTED, Json(job.view())).into_response(),
        Err(busy) => busy.into_response(),
    }
}
