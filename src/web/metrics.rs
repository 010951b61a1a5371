//! `GET /metrics`: Prometheus text format. No sign-in: it shows counts, times and job names only.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Shared;

/// One cron job's figures from `cron_runs`.
struct JobRow {
    tenant: String,
    job: String,
    last_success: Option<String>,
    last_duration: Option<f64>,
    failures: i64,
}

fn jobs(home: &std::path::Path) -> anyhow::Result<Vec<JobRow>> {
    let conn = sophon::gateway::open_home(home)?;
    let mut stmt = conn.prepare(
        "SELECT j.tenant_id, j.name,
            (SELECT max(r.finished_at) FROM cron_runs r WHERE r.job_id = j.id AND r.status = 'ok'),
            (SELECT (julianday(r.finished_at) - julianday(r.started_at)) * 86400.0 FROM cron_runs r
                WHERE r.job_id = j.id AND r.status = 'ok' AND r.finished_at IS NOT NULL
                ORDER BY r.finished_at DESC LIMIT 1),
            (SELECT count(*) FROM cron_runs r WHERE r.job_id = j.id AND r.status IN ('failed', 'timeout'))
         FROM cron_jobs j ORDER BY j.tenant_id, j.name",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(JobRow {
                tenant: r.get(0)?,
                job: r.get(1)?,
                last_success: r.get(2)?,
                last_duration: r.get(3)?,
                failures: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render(app: &Shared) -> anyhow::Result<String> {
    let mut out = String::new();
    let snapshots = match super::snapshots::visible(app, None) {
        Ok(Some(list)) => Some(list.len()),
        Ok(None) => Some(0),
        Err(_) => None,
    };
    writeln!(out, "# HELP sophon_snapshots_total Snapshots in the home's repository.")?;
    writeln!(out, "# TYPE sophon_snapshots_total gauge")?;
    if let Some(n) = snapshots {
        writeln!(out, "sophon_snapshots_total {n}")?;
    }
    let rows = jobs(&app.home)?;
    writeln!(out, "# HELP sophon_cron_job_last_success_timestamp_seconds When the job last finished successfully.")?;
    writeln!(out, "# TYPE sophon_cron_job_last_success_timestamp_seconds gauge")?;
    for r in &rows {
        let t = r.last_success.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if let Some(t) = t {
            writeln!(
                out,
                "sophon_cron_job_last_success_timestamp_seconds{{tenant=\"{}\",job=\"{}\"}} {}",
                label(&r.tenant),
                label(&r.job),
                t.timestamp()
            )?;
        }
    }
    writeln!(out, "# HELP sophon_cron_job_last_duration_seconds How long the job's last successful run took.")?;
    writeln!(out, "# TYPE sophon_cron_job_last_duration_seconds gauge")?;
    for r in &rows {
        if let Some(d) = r.last_duration {
            writeln!(
                out,
                "sophon_cron_job_last_duration_seconds{{tenant=\"{}\",job=\"{}\"}} {:.3}",
                label(&r.tenant),
                label(&r.job),
                d.max(0.0)
            )?;
        }
    }
    writeln!(out, "# HELP sophon_cron_job_failures_total Failed or timed-out runs of the job.")?;
    writeln!(out, "# TYPE sophon_cron_job_failures_total counter")?;
    for r in &rows {
        writeln!(
            out,
            "sophon_cron_job_failures_total{{tenant=\"{}\",job=\"{}\"}} {}",
            label(&r.tenant),
            label(&r.job),
            r.failures
        )?;
    }
    Ok(out)
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Shared>) -> Response {
    match tokio::task::spawn_blocking(move || render(&app)).await {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Ok(Err(e)) => super::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(_) => super::error(StatusCode::INTERNAL_SERVER_ERROR, "metrics failed"),
    }
}
