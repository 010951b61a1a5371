//! Background jobs of the dashboard: a create, a restore or a verify runs on a blocking thread
//! of its own, so no request waits on it and closing the browser does not stop it. The page follows
//! a job over server-sent events and finds running jobs again with `GET /api/jobs`.
//!
//! Every job ends in one audit row (who, what, when, outcome). Kinds marked exclusive (restores)
//! run one at a time per server: a second one is refused with 409 naming who runs the first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use sophon::archive::Progress;

use super::auth::{self, Session};
use super::{error, Shared};

/// Finished jobs kept for the page to show, newest first, per server.
const KEEP_FINISHED: usize = 50;
/// How often the events stream sends the job's counters.
const TICK: Duration = Duration::from_millis(250);
/// How often the events stream looks for a new step between ticks.
const STEP_POLL: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// How a job's work ends when it does not succeed.
#[derive(Debug)]
pub enum JobError {
    /// The cancel button was pressed and the work stopped cleanly.
    Cancelled,
    Failed(String),
}

impl JobError {
    /// The library's error as the job's end: its cancel is the job's.
    pub fn of(e: sophon::Error) -> JobError {
        match e {
            sophon::Error::Cancelled => JobError::Cancelled,
            e => JobError::Failed(e.to_string()),
        }
    }
}

impl<E: std::fmt::Display> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::Failed(e.to_string())
    }
}

struct Status {
    state: JobState,
    step: String,
    result: Option<Value>,
    error: Option<String>,
    finished: Option<chrono::DateTime<chrono::Utc>>,
}

/// One job. The work reads `progress` (whose `cancel` the cancel button sets, so the library
/// stops on it) and `cancelled()`; the page reads `view()`.
pub struct Job {
    pub id: String,
    pub kind: &'static str,
    pub user: String,
    pub tenant: String,
    /// The tenant the job is confined to; `None`: gateway-wide.
    pub scope: Option<String>,
    /// What was asked, as shown in the list (never a passphrase).
    pub what: Value,
    pub progress: Arc<Progress>,
    started: chrono::DateTime<chrono::Utc>,
    clock: Instant,
    status: Mutex<Status>,
}

impl Job {
    /// Name the step the work is in ("dumping the gateway", "writing the archive", …).
    pub fn step(&self, step: impl Into<String>) {
        self.status().step = step.into();
    }

    /// The step the job is at now.
    pub fn step_now(&self) -> String {
        self.status().step.clone()
    }

    /// Whether the cancel button was pressed.
    pub fn cancelled(&self) -> bool {
        self.progress.cancelled()
    }

    pub fn state(&self) -> JobState {
        self.status().state
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The job as the API shows it: counters, rate and ETA while it runs, the result or the error after.
    pub fn view(&self) -> Value {
        let p = &self.progress;
        let files_done = p.files_done.load(Ordering::Relaxed);
        let files_total = p.files_total.load(Ordering::Relaxed);
        let bytes_done = p.bytes_done.load(Ordering::Relaxed);
        let bytes_total = p.bytes_total.load(Ordering::Relaxed);
        let st = self.status();
        let elapsed = match st.finished {
            Some(f) => (f - self.started).num_milliseconds().max(0) as f64 / 1000.0,
            None => self.clock.elapsed().as_secs_f64(),
        };
        let rate = if elapsed > 0.0 { bytes_done as f64 / elapsed } else { 0.0 };
        let eta = (st.state == JobState::Running && rate > 0.0 && bytes_total > bytes_done)
            .then(|| ((bytes_total - bytes_done) as f64 / rate).ceil() as u64);
        json!({
            "id": self.id,
            "kind": self.kind,
            "user": self.user,
            "scope": self.scope.as_deref().unwrap_or("gateway"),
            "what": self.what,
            "state": st.state.as_str(),
            "step": st.step,
            "started": self.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "finished": st.finished.map(|f| f.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "elapsed_seconds": (elapsed * 10.0).round() / 10.0,
            "files_done": files_done,
            "files_total": files_total,
            "bytes_done": bytes_done,
            "bytes_total": bytes_total,
            "bytes_per_second": rate.round() as u64,
            "eta_seconds": eta,
            "result": st.result,
            "error": st.error,
        })
    }

    fn visible_to(&self, s: &Session) -> bool {
        match &s.scope {
            None => true,
            Some(t) => self.scope.as_deref() == Some(t.as_str()),
        }
    }
}

/// A job refused because another of its family runs: answered with 409 and this message.
pub struct Busy(pub String);

impl IntoResponse for Busy {
    fn into_response(self) -> Response {
        error(StatusCode::CONFLICT, &self.0)
    }
}

/// The jobs of this server.
#[derive(Default)]
pub struct Jobs {
    all: Mutex<Vec<Arc<Job>>>,
    /// The exclusive job running, by kind family ("restore").
    exclusive: Mutex<HashMap<&'static str, Arc<Job>>>,
}

impl Jobs {
    fn all(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Job>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start `work` in the background as `kind` for the signed-in user. With `exclusive`, a second
    /// job of the same family while one runs is refused (409) with who runs the first.
    pub fn start<F>(
        &self,
        app: &Shared,
        session: &Session,
        kind: &'static str,
        exclusive: Option<&'static str>,
        what: Value,
        work: F,
    ) -> Result<Arc<Job>, Busy>
    where
        F: FnOnce(&Job) -> Result<Value, JobError> + Send + 'static,
    {
        let job = Arc::new(Job {
            id: auth::random_hex(8),
            kind,
            user: session.email.clone(),
            tenant: session.tenant.clone(),
            scope: session.scope.clone(),
            what,
            progress: Arc::new(Progress::default()),
            started: chrono::Utc::now(),
            clock: Instant::now(),
            status: Mutex::new(Status {
                state: JobState::Running,
                step: "starting".into(),
                result: None,
                error: None,
                finished: None,
            }),
        });
        if let Some(family) = exclusive {
            let mut running = self.exclusive.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = running.get(family).filter(|j| j.state() == JobState::Running) {
                return Err(Busy(format!(
                    "a {family} started by {} at {} is still running: wait for it to finish",
                    other.user,
                    other.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
            running.insert(family, Arc::clone(&job));
        }
        {
            let mut all = self.all();
            all.insert(0, Arc::clone(&job));
            // Drop the oldest finished jobs beyond the limit; running ones always stay.
            let mut finished = 0;
            all.retain(|j| {
                j.state() == JobState::Running || {
                    finished += 1;
                    finished <= KEEP_FINISHED
                }
            });
        }
        let home = app.home.clone();
        let j = Arc::clone(&job);
        tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&j)))
                .unwrap_or_else(|_| Err(JobError::Failed("the job stopped on an internal error".into())));
            let (state, detail) = {
                let mut st = j.status();
                st.finished = Some(chrono::Utc::now());
                match outcome {
                    Ok(result) => {
                        st.state = JobState::Succeeded;
                        st.step = "done".into();
                        st.result = Some(result);
                    }
                    Err(JobError::Cancelled) => {
                        st.state = JobState::Cancelled;
                        st.step = "cancelled".into();
                    }
                    Err(JobError::Failed(e)) => {
                        st.state = JobState::Failed;
                        st.error = Some(e);
                    }
                }
                (st.state, json!({ "outcome": st.state.as_str(), "job": j.id, "what": j.what, "error": st.error }))
            };
            debug_assert_ne!(state, JobState::Running);
            auth::audit_in(&home, &j.tenant, &j.user, &format!("dashboard.{}", j.kind), detail);
        });
        Ok(job)
    }

    pub fn get(&self, id: &str, session: &Session) -> Option<Arc<Job>> {
        self.all().iter().find(|j| j.id == id && j.visible_to(session)).cloned()
    }
}

/// `GET /api/jobs`: the jobs the user may see, newest first.
pub async fn list(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let jobs: Vec<Value> = app.jobs.all().iter().filter(|j| j.visible_to(&session)).map(|j| j.view()).collect();
    Json(json!({ "jobs": jobs })).into_response()
}

/// `GET /api/jobs/{id}`.
pub async fn one(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    match app.jobs.get(&id, &session) {
        Some(j) => Json(j.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

/// `GET /api/jobs/{id}/events`: the job's view every 250 ms while it runs, at once when its step
/// changes, then once more at the end.
pub async fn events(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let Some(job) = app.jobs.get(&id, &session) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    let stream = futures_util::stream::unfold((job, false, None), |(job, ended, sent)| async move {
        if ended {
            return None;
        }
        // After the first view, wait a tick, but send at once when the step changes or the job
        // ends: a step shorter than a tick is still seen.
        if let Some(step) = sent {
            let mut waited = Duration::ZERO;
            while waited < TICK && job.state() == JobState::Running && job.step_now() == step {
                tokio::time::sleep(STEP_POLL).await;
                waited += STEP_POLL;
            }
        }
        let running = job.state() == JobState::Running;
        let view = job.view();
        let step = view["step"].as_str().unwrap_or_default().to_string();
        let event = Event::default().data(view.to_string());
        Some((Ok::<_, Infallible>(event), (job, !running, Some(step))))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `POST /api/jobs/{id}/cancel`: ask a running job to stop; it ends as `cancelled` once its work
/// has removed what it had begun to write.
pub async fn cancel(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = match app.sessions.acting(&headers, "cancel jobs") {
        Ok(s) => s,
        Err((status, message)) => return error(status, &message),
    };
    let Some(job) = app.jobs.get(&id, &session) else {
        return error(StatusCode::NOT_FOUND, "no such job");
    };
    if job.state() != JobState::Running {
        return error(StatusCode::CONFLICT, &format!("the job has already ended ({})", job.state().as_str()));
    }
    job.progress.cancel.store(true, Ordering::Relaxed);
    Json(job.view()).into_response()
}
