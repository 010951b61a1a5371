//! `/api/schedules`: the home's scheduled jobs (`cron_jobs`, `cron_runs`) through the library's
//! job store (`sophon::cron`), as `sophon cron list|add|edit|rm` use it: the same schedule check,
//! the same name rule (a clash is 409), the same next-run computation, runs claimed the same way.
//!
//! Scope (format-spec/gateway.md §11): a tenant's admin or viewer sees and acts on its tenant's jobs
//! only (another tenant's job is answered 404, as if it did not exist); a job it adds belongs to its
//! tenant, and a backup job it adds backs up its tenant only (`--tenant`). A `custom` job runs a
//! shell command as the server's user, so only an owner of the default tenant adds one or changes
//! its command. Commands and run summaries are redacted as a backup redacts them. Every request
//! that changes something writes an audit row, refused or not.

use std::sync::atomic::Ordering;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Local, SecondsFormat, Utc};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};

use sophon::cron::edit::{self, JobChanges};
use sophon::cron::store::{self, Action, Job, JobStatus, NewJob};
use sophon::cron::{self, DaemonOptions, RunNow, Runner, Schedule, SystemClock};
use sophon::gateway::redact::redact_str;
use sophon::gateway::{open_home, Category};

use super::access::{audited, blocking, body, require_act, signed_in, ApiError};
use super::auth::Session;
use super::jobs::JobError;
use super::{App, Shared};

/// How many runs `GET /api/schedules/{id}/runs` answers with at most (the newest).
const MAX_RUNS: usize = 200;
/// How many times the preview shows.
const PREVIEW: usize = 5;

/// A time in the server's time zone, where the expressions are evaluated.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Text as a backup would write it: the spans shaped like a credential replaced.
fn redact(s: &str) -> String {
    redact_str(s, false).unwrap_or_else(|| s.to_string())
}

/// Options of a backup job that the dashboard's form sets; the others stay as they are.
const FORM_OPTIONS: [&str; 3] = ["--tenant", "--categories", "--tag"];

/// A backup job's arguments split into what the form shows and the rest.
#[derive(Default)]
struct BackupArgs {
    tenant: Option<String>,
    categories: Vec<String>,
    tags: Vec<String>,
    /// Every other argument, in order.
    other: Vec<String>,
}

impl BackupArgs {
    fn split(args: &[String]) -> BackupArgs {
        let mut out = BackupArgs::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let (flag, value, step) = match a.split_once('=') {
                Some((f, v)) if FORM_OPTIONS.contains(&f) => (f.to_string(), Some(v.to_string()), 1),
                _ if FORM_OPTIONS.contains(&a.as_str()) => (a.clone(), args.get(i + 1).cloned(), 2),
                _ => {
                    out.other.push(a.clone());
                    i += 1;
                    continue;
                }
            };
            let value = value.unwrap_or_default();
            match flag.as_str() {
                "--tenant" => out.tenant = Some(value),
                "--categories" => {
                    out.categories.extend(value.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from))
                }
                _ => out.tags.push(value),
            }
            i += step;
        }
        out
    }

    fn join(&self) -> Vec<String> {
        let mut args = self.other.clone();
        if let Some(t) = &self.tenant {
            args.extend(["--tenant".to_string(), t.clone()]);
        }
        if !self.categories.is_empty() {
            args.extend(["--categories".to_string(), self.categories.join(",")]);
        }
        for t in &self.tags {
            args.extend(["--tag".to_string(), t.clone()]);
        }
        args
    }
}

/// A job as the API shows it; `now` tells whether its next run is already due.
fn view(st: &JobStatus, now: DateTime<Utc>) -> Value {
    let job = &st.job;
    // Decoded from the redacted column, as a backup would carry it.
    let shown = Job { command: redact(&job.command), ..job.clone() };
    let (command, backup, invalid) = match shown.action() {
        Ok(Action::Backup { args, retention }) => {
            let b = BackupArgs::split(&args);
            let backup = json!({
                "args": args,
                "retention": retention,
                "tenant": b.tenant,
                "categories": b.categories,
                "tags": b.tags,
                "other_args": b.other,
            });
            (None, Some(backup), None)
        }
        Ok(Action::Custom { command }) => (Some(command), None, None),
        Ok(Action::Gateway { .. }) => (Some(shown.command.clone()), None, None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    let schedule_error = Schedule::parse(&job.schedule).err().map(|e| e.to_string());
    let last = st.last_run.as_ref().map(run_view);
    json!({
        "id": job.id,
        "tenant": job.tenant_id,
        "name": job.name,
        "schedule": job.schedule,
        "schedule_error": schedule_error,
        "action": job.action,
        "command": command,
        "backup": backup,
        "invalid": invalid,
        "enabled": job.enabled,
        "paused": !job.enabled,
        "runs_here": job.runs_here(),
        "created_at": local(job.created_at),
        "next_run": st.next_run.map(local),
        "due": st.next_run.is_some_and(|n| n <= now),
        "last_run": last,
        "status": st.last_run.as_ref().map_or("never", |r| r.status.as_str()),
    })
}

fn run_view(r: &store::Run) -> Value {
    let duration = r.finished_at.map(|f| (f - r.started_at).num_milliseconds().max(0) as f64 / 1000.0);
    json!({
        "started_at": local(r.started_at),
        "finished_at": r.finished_at.map(local),
        "duration_seconds": duration,
        "status": r.status,
        "summary": redact(&r.summary),
    })
}

/// The job `id` if the user's scope holds it; 404 otherwise (another tenant's job is not there).
fn scoped_job(conn: &Connection, session: &Session, id: &str) -> Result<Job, ApiError> {
    let job = store::find_job_by_id(conn, id).map_err(ApiError::cron)?;
    match job {
        Some(j) if session.scope.as_deref().is_none_or(|t| t == j.tenant_id) => Ok(j),
        _ => Err(ApiError::not_found(format!("no schedule {id:?}"))),
    }
}

fn status(conn: &Connection, job: Job, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let st = store::status(conn, job, now, &Local).map_err(ApiError::cron)?;
    Ok(view(&st, now))
}

fn home_conn(app: &App) -> Result<Connection, ApiError> {
    open_home(&app.home).map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /api/schedules` (viewer and up): the jobs in the user's scope with next and last runs.
pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let conn = home_conn(&app)?;
        let now = Utc::now();
        let jobs: Vec<Value> = store::overview(&conn, now, &Local)
            .map_err(ApiError::cron)?
            .iter()
            .filter(|st| session.scope.as_deref().is_none_or(|t| t == st.job.tenant_id))
            .map(|st| view(st, now))
            .collect();
        let tenants: Vec<String> = match &session.scope {
            Some(t) => vec![t.clone()],
            None => {
                let mut st = conn
                    .prepare("SELECT id FROM tenants ORDER BY rowid")
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let rows = st.query_map([], |r| r.get(0)).map_err(|e| ApiError::internal(e.to_string()))?;
                rows.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| ApiError::internal(e.to_string()))?
            }
        };
        let categories: Vec<&str> = Category::ALL.iter().map(|c| c.id()).collect();
        Ok(Json(json!({
            "schedules": jobs,
            "scope": session.scope.as_deref().unwrap_or("gateway"),
            "tenants": tenants,
            "categories": categories,
            "now": local(now),
            "custom_commands": session.scope.is_none(),
        }))
        .into_response())
    })
    .await
}

/// `GET /api/schedules/{id}/runs` (viewer and up): the job's runs, newest first.
pub async fn runs(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let conn = home_conn(&app)?;
        let job = scoped_job(&conn, &session, &id)?;
        let all = store::runs(&conn, &job.id).map_err(ApiError::cron)?;
        let total = all.len();
        let runs: Vec<Value> = all.iter().rev().take(MAX_RUNS).map(run_view).collect();
        let job = status(&conn, job, Utc::now())?;
        Ok(Json(json!({ "schedule": job, "runs": runs, "total": total })).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    expression: String,
}

/// `POST /api/schedules/preview {expression}` (any signed-in user; changes nothing): the
/// expression checked as `cron add` checks it, and its next five times in the server's time zone.
pub async fn preview(
    State(app): State<Shared>,
    headers: HeaderMap,
    req: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(e) = signed_in(&app, &headers) {
        return e.into_response();
    }
    let result = (|| {
        let req: PreviewRequest = body(req)?;
        let schedule = Schedule::parse(&req.expression).map_err(|e| ApiError::bad("expression", e.to_string()))?;
        let times: Vec<String> = schedule
            .next_n(&Local::now(), PREVIEW)
            .iter()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .collect();
        Ok::<_, ApiError>(Json(json!({
            "expression": schedule.as_str(),
            "times": times,
            "time_zone": Local::now().format("%:z").to_string(),
        })))
    })();
    match result {
        Ok(j) => j.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The backup options of the add and edit forms.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupForm {
    /// Only this tenant's records (a tenant's admin: always its own tenant).
    #[serde(default)]
    tenant: Option<String>,
    /// Category ids (`users`, `documents`, …); empty: all.
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Apply the gateway's lifecycle to the job's own snapshots after each run (default true).
    #[serde(default)]
    retention: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    schedule: String,
    /// `backup` or `custom`.
    action: String,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    backup: Option<BackupForm>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Replace the tenant's job of that name (`cron add --replace`): it keeps its id and history.
    #[serde(default)]
    replace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    backup: Option<BackupForm>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad("name", "give the job a name"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad("name", "a name cannot hold control characters"));
    }
    Ok(name.to_string())
}

fn check_schedule(s: &str) -> Result<(), ApiError> {
    Schedule::parse(s).map(|_| ()).map_err(|e| ApiError::bad("schedule", e.to_string()))
}

/// A custom command: only gateway-wide users, never empty.
fn check_command(session: &Session, command: &str) -> Result<String, ApiError> {
    if let Some(t) = &session.scope {
        return Err(ApiError::forbidden(format!(
            "a custom command runs as the server's user: only an owner of the default tenant sets one (your scope \
             is tenant {t:?})"
        ))
        .with_field("command"));
    }
    if command.trim().is_empty() {
        return Err(ApiError::bad("command", "the command is empty"));
    }
    Ok(command.to_string())
}

/// A backup job's arguments from the form, over the `other` arguments the job already has.
fn backup_action(
    conn: &Connection,
    session: &Session,
    form: &BackupForm,
    other: Vec<String>,
) -> Result<Action, ApiError> {
    let tenant = match (&session.scope, &form.tenant) {
        (Some(mine), Some(t)) if t != mine => {
            return Err(ApiError::forbidden(format!("your scope is tenant {mine:?}: a backup of {t:?} is not yours"))
                .with_field("backup.tenant"))
        }
        (Some(mine), _) => Some(mine.clone()),
        (None, Some(t)) if t.trim().is_empty() => None,
        (None, Some(t)) => Some(
            store::resolve_tenant(conn, Some(t.trim())).map_err(|e| ApiError::cron(e).with_field("backup.tenant"))?,
        ),
        (None, None) => None,
    };
    let mut categories = Vec::new();
    for c in form.categories.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let cat: Category = c.parse().map_err(|e: String| ApiError::bad("backup.categories", e))?;
        if tenant.is_some() && cat.is_gateway_wide() {
            return Err(ApiError::bad(
                "backup.categories",
                format!("category {c:?} belongs to the gateway as a whole, not to a tenant's backup"),
            ));
        }
        if !categories.contains(&cat.id().to_string()) {
            categories.push(cat.id().to_string());
        }
    }
    let mut tags = Vec::new();
    for t in form.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if t.contains(',') || t.chars().any(char::is_control) {
            return Err(ApiError::bad("backup.tags", format!("tag {t:?}: a tag holds no comma or control character")));
        }
        tags.push(t.to_string());
    }
    let args = BackupArgs { tenant, categories, tags, other }.join();
    Ok(Action::Backup { args, retention: form.retention.unwrap_or(true) })
}

fn frozen_warning(action: &Action) -> Option<String> {
    match action {
        Action::Custom { command } => sophon::cron::template::frozen_date_warning(command),
        Action::Backup { args, .. } => sophon::cron::template::frozen_date_warning(&args.join(" ")),
        Action::Gateway { .. } => None,
    }
}

/// `POST /api/schedules` (act): add a job, or with `replace` give an existing one a new definition.
pub async fn add(State(app): State<Shared>, headers: HeaderMap, req: Result<Json<Value>, JsonRejection>) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let mut detail = json!({});
        let result = (|| {
            require_act(&session, "change schedules")?;
            let req: AddRequest = body(req)?;
            let name = check_name(&req.name)?;
            detail = json!({ "name": name, "schedule": req.schedule, "action": req.action });
            check_schedule(&req.schedule)?;
            let conn = home_conn(&app)?;
            let tenant = match (&session.scope, &req.tenant) {
                (Some(mine), Some(t)) if t != mine => {
                    return Err(ApiError::forbidden(format!("your scope is tenant {mine:?}: {t:?} is not yours"))
                        .with_field("tenant"))
                }
                (Some(mine), _) => mine.clone(),
                (None, t) => store::resolve_tenant(&conn, t.as_deref().map(str::trim).filter(|t| !t.is_empty()))
                    .map_err(ApiError::cron)?,
            };
            detail["tenant"] = json!(tenant);
            let action = match req.action.as_str() {
                "custom" => {
                    if req.backup.is_some() {
                        return Err(ApiError::bad("backup", "backup options are for a backup job"));
                    }
                    Action::Custom { command: check_command(&session, req.command.as_deref().unwrap_or(""))? }
                }
                "backup" => {
                    if req.command.is_some() {
                        return Err(ApiError::bad("command", "a backup job takes backup options, not a command"));
                    }
                    backup_action(&conn, &session, &req.backup.unwrap_or_default(), Vec::new())?
                }
                other => {
                    return Err(ApiError::bad("action", format!("action {other:?}: give \"backup\" or \"custom\"")))
                }
            };
            let warning = frozen_warning(&action);
            let new = NewJob { tenant_id: tenant, name, schedule: req.schedule.clone(), action, enabled: req.enabled.unwrap_or(true) };
            let (job, replaced) = if req.replace {
                let (job, how) = edit::replace_job(&conn, &new, Utc::now()).map_err(ApiError::cron)?;
                (job, how == edit::Replaced::Replaced)
            } else {
                let job = store::add_job(&conn, &new, Utc::now()).map_err(|e| match e {
                    e @ cron::CronError::Duplicate { .. } => {
                        let msg = format!(
                            "tenant {:?} already has a job named {:?}: edit that job, or add it again with \"replace\": true \
                             (it keeps its id and run history)",
                            new.tenant_id, new.name
                        );
                        ApiError { message: msg, ..ApiError::cron(e) }
                    }
                    e => ApiError::cron(e),
                })?;
                (job, false)
            };
            detail["job"] = json!(job.id);
            detail["replaced"] = json!(replaced);
            let mut v = status(&conn, job, Utc::now())?;
            v["replaced"] = json!(replaced);
            v["warning"] = json!(warning);
            Ok((StatusCode::CREATED, Json(v)).into_response())
        })();
        audited(&app.home, &session, "dashboard.schedule_add", detail, result)
    })
    .await
}

/// `PUT /api/schedules/{id}` (act): change the schedule, the enabled flag, a custom job's command or
/// a backup job's options (the job keeps its id and history).
pub async fn edit(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    req: Result<Json<Value>, JsonRejection>,
) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let mut detail = json!({ "job": id });
        let result = (|| {
            require_act(&session, "change schedules")?;
            let req: EditRequest = body(req)?;
            let conn = home_conn(&app)?;
            let job = scoped_job(&conn, &session, &id)?;
            detail["tenant"] = json!(job.tenant_id);
            detail["name"] = json!(job.name);
            if req.schedule.is_none() && req.command.is_none() && req.enabled.is_none() && req.backup.is_none() {
                return Err(ApiError::bad("body", "nothing to change: give schedule, command, enabled or backup"));
            }
            if let Some(s) = &req.schedule {
                check_schedule(s)?;
                detail["schedule"] = json!(s);
            }
            let command = match &req.command {
                Some(_) if matches!(job.action(), Ok(Action::Backup { .. })) => {
                    return Err(ApiError::bad("command", "a backup job takes backup options, not a command"))
                }
                Some(c) => Some(check_command(&session, c)?),
                None => None,
            };
            let warning;
            let job = match &req.backup {
                Some(form) => {
                    let Ok(Action::Backup { args, .. }) = job.action() else {
                        return Err(ApiError::bad("backup", "backup options are for a backup job"));
                    };
                    let action = backup_action(&conn, &session, form, BackupArgs::split(&args).other)?;
                    warning = frozen_warning(&action);
                    let new = NewJob {
                        tenant_id: job.tenant_id.clone(),
                        name: job.name.clone(),
                        schedule: req.schedule.clone().unwrap_or(job.schedule.clone()),
                        action,
                        enabled: req.enabled.unwrap_or(job.enabled),
                    };
                    edit::replace_job(&conn, &new, Utc::now()).map_err(ApiError::cron)?.0
                }
                None => {
                    warning = command.as_ref().and_then(|c| frozen_warning(&Action::Custom { command: c.clone() }));
                    let changes = JobChanges { schedule: req.schedule.clone(), command, enabled: req.enabled };
                    edit::edit_job(&conn, &job.tenant_id, &job.name, &changes, Utc::now()).map_err(|e| {
                        let field = if matches!(e, cron::CronError::BadJob { .. }) { Some("command") } else { None };
                        let e = ApiError::cron(e);
                        match field {
                            Some(f) if req.command.is_some() => e.with_field(f),
                            _ => e,
                        }
                    })?
                }
            };
            let mut v = status(&conn, job, Utc::now())?;
            v["warning"] = json!(warning);
            Ok(Json(v).into_response())
        })();
        audited(&app.home, &session, "dashboard.schedule_edit", detail, result)
    })
    .await
}

async fn set_enabled(app: Shared, headers: HeaderMap, id: String, enabled: bool) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let action = if enabled { "dashboard.schedule_resume" } else { "dashboard.schedule_pause" };
    blocking(move || {
        let mut detail = json!({ "job": id });
        let result = (|| {
            require_act(&session, if enabled { "resume schedules" } else { "pause schedules" })?;
            let conn = home_conn(&app)?;
            let job = scoped_job(&conn, &session, &id)?;
            detail["tenant"] = json!(job.tenant_id);
            detail["name"] = json!(job.name);
            let changes = JobChanges { enabled: Some(enabled), ..Default::default() };
            let job = edit::edit_job(&conn, &job.tenant_id, &job.name, &changes, Utc::now()).map_err(ApiError::cron)?;
            Ok(Json(status(&conn, job, Utc::now())?).into_response())
        })();
        audited(&app.home, &session, action, detail, result)
    })
    .await
}

/// `POST /api/schedules/{id}/pause` (act): the scheduler skips the job until it is resumed.
pub async fn pause(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    set_enabled(app, headers, id, false).await
}

/// `POST /api/schedules/{id}/resume` (act).
pub async fn resume(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    set_enabled(app, headers, id, true).await
}

/// `DELETE /api/schedules/{id}` (act): the job and its run history (refused while it runs).
pub async fn remove(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    blocking(move || {
        let mut detail = json!({ "job": id });
        let result = (|| {
            require_act(&session, "remove schedules")?;
            let conn = home_conn(&app)?;
            let job = scoped_job(&conn, &session, &id)?;
            detail["tenant"] = json!(job.tenant_id);
            detail["name"] = json!(job.name);
            let shown = status(&conn, job.clone(), Utc::now())?;
            let runs = store::remove_job(&conn, &job, Utc::now()).map_err(ApiError::cron)?;
            detail["runs_removed"] = json!(runs);
            Ok(Json(json!({ "removed": shown, "runs_removed": runs })).into_response())
        })();
        audited(&app.home, &session, "dashboard.schedule_remove", detail, result)
    })
    .await
}

/// `POST /api/schedules/{id}/run` (act): run the job now as a background job (kind
/// `schedule-run`), claimed and recorded in its history as a scheduled run is; cancelling it stops
/// the run (recorded as abandoned). Refused with 409 while a run of the job is in progress, and for
/// `agent`/`workflow` jobs, which the gateway runs.
pub async fn run(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = match signed_in(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let shared = app.clone();
    blocking(move || {
        let mut detail = json!({ "job": id });
        let result = (|| {
            require_act(&session, "run schedules")?;
            let conn = home_conn(&app)?;
            let job = scoped_job(&conn, &session, &id)?;
            detail["tenant"] = json!(job.tenant_id);
            detail["name"] = json!(job.name);
            if let Ok(Action::Gateway { kind }) = job.action() {
                return Err(ApiError::conflict(format!("{kind} jobs are run by the gateway, not by sophon")));
            }
            if let Some(r) = store::last_run(&conn, &job.id).map_err(ApiError::cron)? {
                let me = store::Claimant::this_process();
                if r.status == "running" && !store::is_stale(&r, Utc::now(), &me, DaemonOptions::default().stale_after)
                {
                    return Err(ApiError::conflict(format!(
                        "a run of {}/{} started at {} is still in progress",
                        job.tenant_id,
                        job.name,
                        local(r.started_at)
                    )));
                }
            }
            drop(conn);
            let sophon =
                std::env::current_exe().map_err(|e| ApiError::internal(format!("finding the sophon binary: {e}")))?;
            let home = std::path::absolute(&app.home).map_err(|e| ApiError::internal(e.to_string()))?;
            let runner = Runner { sophon, home: home.clone(), env: Vec::new() };
            let note = format!("run now from the dashboard by {}", session.email);
            let what = json!({ "schedule": job.id, "tenant": job.tenant_id, "name": job.name });
            let started = shared.jobs.start(&shared, &session, "schedule-run", None, what, move |j| {
                j.step(format!("running {}/{}", job.tenant_id, job.name));
                let on_event = |e: &cron::Event| {
                    if e.event == cron::EventKind::Started {
                        j.step(format!("running {}/{} ({})", job.tenant_id, job.name, job.action));
                    }
                };
                let opts = DaemonOptions::default();
                match cron::run_now(&home, &runner, &SystemClock, &opts, &j.progress.cancel, &job, &note, &on_event) {
                    Ok(RunNow::Ran(o)) if o.status == "ok" => {
                        Ok(json!({ "status": o.status, "summary": redact(&o.summary) }))
                    }
                    Ok(RunNow::Ran(_)) if j.progress.cancel.load(Ordering::Relaxed) => Err(JobError::Cancelled),
                    Ok(RunNow::Ran(o)) => Err(JobError::Failed(format!("{}: {}", o.status, redact(&o.summary)))),
                    Ok(RunNow::Busy(r)) => {
                        Err(JobError::Failed(format!("a run started at {} is still in progress", local(r.started_at))))
                    }
                    Err(e) => Err(JobError::Failed(e.to_string())),
                }
            });
            match started {
                Ok(job) => Ok((StatusCode::ACCEPTED, Json(job.view())).into_response()),
                Err(busy) => Err(ApiError::conflict(busy.0)),
            }
        })();
        // A started run is audited when it ends (`dashboard.schedule-run`); a refusal now.
        match result {
            Ok(r) => Ok(r),
            Err(e) => audited(&app.home, &session, "dashboard.schedule-run", detail, Err(e)),
        }
    })
    .await
}
