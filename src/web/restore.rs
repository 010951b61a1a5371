//! Restoring from the dashboard (format-spec/gateway.md §11): an archive uploaded to a private
//! folder and checked as `restore --in` checks one; a preview (the library's dry run, the plan the
//! real run executes) kept under a token; the restore of that token as a background job, one at a
//! time per server.
//!
//! Between the preview and the confirmation the home may change (a cron job, another user, the
//! CLI). The restore then does not execute a stale plan: `gateway::restore::restore_as_shown` plans
//! again inside the write transaction, executes, and commits only when the outcome equals what the
//! preview showed; otherwise it rolls back and the job fails with what differs ("preview again").
//! Executing the stored plan instead would write decisions made against a home that no longer
//! exists (a record added since would be overwritten or clash), so the re-plan is the safe choice.

mod upload;
pub use upload::upload;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use sophon::export::chain::{self, Chain, Refusal};
use sophon::gateway::restore::{self as gateway_restore, BackupSource, Mode, RestoreOptions, RestoreReport};
use sophon::gateway::{Category, GatewayError, Settings};
use sophon::id::SnapshotId;
use sophon::restore::SnapshotFiles;
use sophon::source::SnapshotScope;

use super::auth::{self, Session as UserSession};
use super::jobs::JobError;
use super::{error, snapshots, Shared};

/// How long a preview can be confirmed.
pub const PLAN_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an upload is kept (it is removed at once after a restore from it succeeds).
pub const UPLOAD_TTL: Duration = Duration::from_secs(60 * 60);
/// The default cap of one upload (`sophon serve --max-upload`).
pub const DEFAULT_MAX_UPLOAD: u64 = 20 << 30;
/// Free space an upload always leaves on the disk that holds it.
const DISK_RESERVE: u64 = 256 << 20;
/// How often (bytes written) the free space is looked at again during an upload.
const SPACE_CHECK_EVERY: u64 = 64 << 20;
/// What the report's 2FA line tells a dashboard user.
const PASSPHRASE_HINT: &str = "Give the backup's passphrase in the restore form to keep it.";

/// An uploaded archive: a private folder (0700) with the file (0600), removed when dropped.
pub struct Upload {
    pub id: String,
    dir: PathBuf,
    file: PathBuf,
    pub name: String,
    pub bytes: u64,
    user: String,
    scope: Option<String>,
    created: Instant,
    sealed: bool,
    /// The archive opened and checked; `None` for a sealed one the server's passphrase does not
    /// open: it is checked at the preview, with the passphrase given there.
    chain: Mutex<Option<Arc<Chain>>>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        // The chain's staged files live in the folder: closed first.
        self.chain.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Upload {
    fn owned_by(&self, s: &UserSession) -> bool {
        self.user == s.email && self.scope == s.scope
    }

    /// A message about the file with its place on the server replaced by the upload's name.
    fn tidy(&self, message: &str) -> String {
        message
            .replace(&self.file.display().to_string(), &self.name)
            .replace(&self.dir.display().to_string(), "the upload")
    }

    /// The checked archive, opening and checking it now (with `passphrase`) when it is sealed and
    /// was not opened at upload.
    fn chain(&self, passphrase: Option<&[u8]>) -> Result<Arc<Chain>, (StatusCode, String)> {
        let mut slot = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let Some(pass) = passphrase else {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("{} is sealed: give its passphrase to preview the restore", self.name),
            ));
        };
        match chain::open_for_restore(&self.file, Some(pass), &self.dir) {
            Ok(Ok(c)) => {
                let c = Arc::new(c);
                *slot = Some(Arc::clone(&c));
                Ok(c)
            }
            Ok(Err(r)) => Err((StatusCode::BAD_REQUEST, self.tidy(&refusal_text(&r)))),
            Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, self.tidy(&e.to_string()))),
        }
    }
}

fn refusal_text(r: &Refusal) -> String {
    match r {
        Refusal::Unreadable(e) => format!("not a Sophon export archive, or not readable as one: {e}"),
        Refusal::Damaged(findings) => {
            let shown: Vec<&str> = findings.iter().take(10).map(String::as_str).collect();
            let more = findings.len().saturating_sub(shown.len());
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            format!("the archive is damaged: {}{more}", shown.join("; "))
        }
        Refusal::FolderExport => "the archive is an export of a folder backup, not of a gateway: unpack it with \
                                  unzip or tar"
            .into(),
    }
}

/// Where a restore comes from.
#[derive(Clone, Debug)]
enum Source {
    Snapshot(SnapshotId),
    Upload(String),
}

impl Source {
    fn view(&self) -> Value {
        match self {
            Source::Snapshot(id) => json!({ "snapshot": id.to_hex() }),
            Source::Upload(id) => json!({ "upload": id }),
        }
    }
}

/// A preview the user may confirm: what was asked and what the dry run showed.
struct StoredPlan {
    user: String,
    scope: Option<String>,
    source: Source,
    /// With the passphrase given (or the server's), kept in memory for the plan's life only.
    opts: RestoreOptions,
    shown: RestoreReport,
    created: Instant,
}

/// The uploads and previews of this server.
pub struct Restores {
    root: PathBuf,
    pub max_upload: u64,
    uploads: Mutex<HashMap<String, Arc<Upload>>>,
    plans: Mutex<HashMap<String, Arc<StoredPlan>>>,
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

impl Restores {
    /// Uploads go to `root` (made private); what a killed server left there is removed.
    pub fn new(root: PathBuf, max_upload: u64) -> anyhow::Result<Restores> {
        private_dir(&root).map_err(|e| anyhow::anyhow!("upload folder {}: {e}", root.display()))?;
        sophon::source::spool::remove_abandoned(&root, "upload-");
        Ok(Restores { root, max_upload, uploads: Mutex::default(), plans: Mutex::default() })
    }

    /// Forget expired previews and uploads (an upload's folder goes when no job uses it any more).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, p| now.duration_since(p.created) < PLAN_TTL);
        let expired: Vec<Arc<Upload>> = {
            let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<String> = uploads
                .iter()
                .filter(|(_, u)| now.duration_since(u.created) >= UPLOAD_TTL)
                .map(|(k, _)| k.clone())
                .collect();
            gone.iter().filter_map(|k| uploads.remove(k)).collect()
        };
        // Removing a big file takes a while: not on the runtime's own threads.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !expired.is_empty() => drop(rt.spawn_blocking(move || drop(expired))),
            _ => drop(expired),
        }
    }

    fn upload(&self, id: &str, user: &UserSession) -> Option<Arc<Upload>> {
        self.sweep();
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).get(id).filter(|u| u.owned_by(user)).cloned()
    }

    fn remove_upload(&self, id: &str) {
        let gone = self.uploads.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        drop(gone);
    }
}

/// The signed-in user who may act, or the answer.
fn actor(app: &Shared, headers: &HeaderMap, what: &str) -> Result<Arc<UserSession>, (StatusCode, String)> {
    app.sessions.acting(headers, what)
}

async fn audit(app: &Shared, user: &UserSession, action: &'static str, detail: Value) {
    auth::audit_off_thread(&app.home, user, action, detail).await;
}

/// The passphrase the server was started with for seals (environment, the config's PassphraseFile).
fn server_seal(home: &Path) -> Option<Zeroizing<Vec<u8>>> {
    let settings = Settings::load(home).ok();
    snapshots::given().seal(settings.as_ref()).ok().flatten().map(|p| p.value)
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum SourceSpec {
    Snapshot(String),
    Upload(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    source: SourceSpec,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    into_tenant: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
}

/// An error of the library as an answer: the input's fault (400), a refused dry run (422), the
/// home changed (409), else 500.
fn gateway_error(e: &GatewayError) -> (StatusCode, String) {
    let status = match e {
        GatewayError::Usage(_) | GatewayError::Invalid(_) | GatewayError::Settings(_) => StatusCode::BAD_REQUEST,
        GatewayError::RestoreRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        GatewayError::PlanChanged(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The CLI's flag names read as the dashboard's fields.
    (status, e.to_string().replace("--into-tenant", "into_tenant").replace("--only", "only"))
}

/// The restore options a user may have: the rules of format-spec/gateway.md §11 applied to what
/// was asked, given what the backup holds.
fn allowed_options(
    user: &UserSession,
    info: &gateway_restore::BackupInfo,
    from_upload: bool,
    only: Vec<Category>,
    into_tenant: Option<String>,
) -> Result<(Vec<Category>, Option<String>), (StatusCode, String)> {
    let Some(tenant) = &user.scope else {
        return Ok((only, into_tenant));
    };
    // A tenant's admin restores into its own tenant only.
    let into = match into_tenant {
        Some(t) if t != *tenant => {
            return Err((StatusCode::FORBIDDEN, format!("a restore by {}'s admin goes into {tenant} only", tenant)))
        }
        _ => tenant.clone(),
    };
    // Never the gateway's own files, and never accounts from an archive whose content no one vouches for.
    let refused = |c: Category| c.is_gateway_wide() || (from_upload && c == Category::Users);
    if let Some(c) = only.iter().find(|c| refused(**c)) {
        let why = if c.is_gateway_wide() {
            format!("{c} belongs to the whole gateway: only an owner of the default tenant restores it")
        } else {
            "users from an uploaded archive: only an owner of the default tenant restores them (an archive can \
             hold any account and role); restore them from a snapshot of the repository"
                .to_string()
        };
        return Err((StatusCode::FORBIDDEN, why));
    }
    let only = if only.is_empty() { info.categories.iter().copied().filter(|c| !refused(*c)).collect() } else { only };
    if only.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "the backup holds no category this user may restore".into()));
    }
    Ok((only, Some(into)))
}

/// Open the source of a restore for `user` and run `f` on it (on a blocking thread).
fn with_source<T>(
    app: &Shared,
    user: &UserSession,
    source: &Source,
    passphrase: Option<&[u8]>,
    f: impl FnOnce(&dyn BackupSource, bool) -> Result<T, (StatusCode, String)>,
) -> Result<T, (StatusCode, String)> {
    match source {
        Source::Snapshot(id) => {
            let (session, id, snap) = snapshots::find(app, user.scope.as_deref(), &id.to_hex())
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")))?
                .ok_or((StatusCode::NOT_FOUND, "no such snapshot".to_string()))?;
            if !SnapshotScope::from_paths(&snap.paths).is_gateway() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("snapshot {} is a folder backup, not a gateway backup: browse it instead", id.short()),
                ));
            }
            let files =
                SnapshotFiles::open(&session, &id).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            f(&files, false)
        }
        Source::Upload(uid) => {
            let upload = app.restores.upload(uid, user).ok_or((
                StatusCode::NOT_FOUND,
                "no such upload (uploads are kept for an hour): upload the archive again".to_string(),
            ))?;
            let chain = upload.chain(passphrase)?;
            f(&*chain, true).map_err(|(s, m)| (s, upload.tidy(&m)))
        }
    }
}

fn report_view(report: &RestoreReport, home: &Path) -> Value {
    let mut v = serde_json::to_value(report).unwrap_or(Value::Null);
    v["conflicts"] = json!(report.conflicts);
    v["conflicts_listed"] = json!(gateway_restore::CONFLICTS_LISTED);
    v["text"] = json!(report.lines(home, PASSPHRASE_HINT));
    v["needs_action"] = Value::Array(
        report.needs_action().into_iter().map(|(what, ids)| json!({ "what": what, "ids": ids })).collect(),
    );
    v
}

fn bad_json(e: JsonRejection) -> Response {
    error(StatusCode::BAD_REQUEST, &e.body_text())
}

/// `POST /api/restores/plan` (act): the dry run of the restore asked for, and a token to confirm it with.
pub async fn plan(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<PlanRequest>, JsonRejection>,
) -> Response {
    let user = match actor(&app, &headers, "restore") {
        Ok(u) => u,
        Err((status, message)) => return error(status, &message),
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_json(e),
    };
    let mode = match req.mode.as_deref().unwrap_or("additive") {
        "additive" => Mode::Additive,
        "replace" => Mode::Replace,
        other => return error(StatusCode::BAD_REQUEST, &format!("mode {other:?}: give additive or replace")),
    };
    let mut only = Vec::new();
    for c in &req.only {
        match c.trim().parse::<Category>() {
            Ok(c) if !only.contains(&c) => only.push(c),
            Ok(_) => {}
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("only: {e}")),
        }
    }
    let into_tenant = req.into_tenant.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    if let Some(t) = &into_tenant {
        if t.len() > 128 || t.chars().any(|c| c.is_control() || c == '/') {
            return error(StatusCode::BAD_REQUEST, "into_tenant: give a tenant id");
        }
    }
    let source = match req.source {
        SourceSpec::Snapshot(spec) => {
            let scope = user.scope.clone();
            let a = app.clone();
            let found = move || snapshots::find(&a, scope.as_deref(), &spec).map(|f| f.map(|(_, id, _)| id));
            match tokio::task::spawn_blocking(found).await {
                Ok(Ok(Some(id))) => Source::Snapshot(id),
                Ok(Ok(None)) => return error(StatusCode::NOT_FOUND, "no such snapshot"),
                Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
                Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "finding the snapshot failed"),
            }
        }
        SourceSpec::Upload(id) => Source::Upload(id),
    };
    let given = req.passphrase.filter(|p| !p.is_empty()).map(|p| Zeroizing::new(p.into_bytes()));
    let passphrase = given.or_else(|| server_seal(&app.home));
    let (a, u, src) = (app.clone(), user.clone(), source.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        with_source(&a, &u, &src, passphrase.as_ref().map(|p| p.as_slice()), |backup, from_upload| {
            let info = gateway_restore::describe(backup).map_err(|e| gateway_error(&e))?;
            let (only, into_tenant) = allowed_options(&u, &info, from_upload, only, into_tenant)?;
            let opts = RestoreOptions { mode, only, into_tenant, dry_run: true, passphrase: passphrase.clone() };
            let shown = gateway_restore::restore(&a.home, backup, &opts).map_err(|e| gateway_error(&e))?;
            Ok((opts, shown, info))
        })
    })
    .await;
    let (opts, shown, info) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err((status, message))) => return error(status, &message),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the preview failed"),
    };
    let token = auth::random_hex(16);
    let confirm_with =
        (mode == Mode::Replace).then(|| gateway_restore::replace_confirmation(opts.into_tenant.as_deref()).to_string());
    let view = json!({
        "plan": token,
        "expires_in_seconds": PLAN_TTL.as_secs(),
        "source": source.view(),
        "backup": info,
        "mode": shown.mode,
        "only": opts.only.iter().map(|c| c.id()).collect::<Vec<_>>(),
        "into_tenant": opts.into_tenant,
        "confirm_with": confirm_with,
        "report": report_view(&shown, &app.home),
    });
    audit(
        &app,
        &user,
        "dashboard.restore_preview",
        json!({ "outcome": "ok", "source": source.view(), "mode": shown.mode, "into_tenant": opts.into_tenant }),
    )
    .await;
    let stored = StoredPlan {
        user: user.email.clone(),
        scope: user.scope.clone(),
        source,
        opts,
        shown,
        created: Instant::now(),
    };
    app.restores.sweep();
    app.restores.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(token, Arc::new(stored));
    Json(view).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    plan: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /api/restores` (act): restore a preview (its token) as a background job; a replace needs
/// `confirm` equal to the preview's `confirm_with`. One restore at a time per server (409).
pub async fn start(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<RestoreRequest>, JsonRejection>,
) -> Response {
    let user = match actor(&app, &headers, "restore") {
        Ok(u) => u,
        Err((status, message)) => return error(status, &message),
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_json(e),
    };
    app.restores.sweep();
    let plan = app.restores.plans.lock().unwrap_or_else(|e| e.into_inner()).get(&req.plan).cloned();
    let Some(plan) = plan.filter(|p| p.user == user.email && p.scope == user.scope) else {
        return error(
            StatusCode::NOT_FOUND,
            "no such preview (a preview can be confirmed for 30 minutes): preview again",
        );
    };
    if plan.opts.mode == Mode::Replace {
        let want = gateway_restore::replace_confirmation(plan.opts.into_tenant.as_deref());
        if req.confirm.as_deref().map(str::trim) != Some(want) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "a replace deletes the present data of the categories restored first: type {want:?} to confirm"
                ),
            );
        }
    }
    let what = json!({
        "source": plan.source.view(),
        "mode": plan.shown.mode,
        "only": plan.opts.only.iter().map(|c| c.id()).collect::<Vec<_>>(),
        "into_tenant": plan.opts.into_tenant,
    });
    let (a, p, u) = (app.clone(), Arc::clone(&plan), user.clone());
    let started = app.jobs.start(&app, &user, "restore", Some("restore"), what, move |job| {
        job.step("opening the backup");
        let outcome = with_source(&a, &u, &p.source, p.opts.passphrase.as_ref().map(|x| x.as_slice()), |backup, _| {
            job.step("restoring: planning again in the write transaction, then executing");
            gateway_restore::restore_as_shown(&a.home, backup, &p.opts, &p.shown).map_err(|e| gateway_error(&e))
        });
        match outcome {
            Ok(report) => {
                if let Source::Upload(id) = &p.source {
                    a.restores.remove_upload(id);
                }
                Ok(json!({ "report": report_view(&report, &a.home) }))
            }
            Err((_, message)) => Err(JobError::Failed(message)),
        }
    });
    match started {
        Ok(job) => {
            app.restores.plans.lock().unwrap_or_else(|e| e.into_inner()).remove(&req.plan);
            (StatusCode::ACCEPTED, Json(job.view())).into_response()
        }
        Err(busy) => busy.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(scope: Option<&str>) -> UserSession {
        UserSession {
            user: "u".into(),
            email: "a@example.com".into(),
            roles: vec!["admin".into()],
            tenant: scope.unwrap_or("acme").into(),
            scope: scope.map(str::to_string),
            access: auth::Access::Act,
            csrf: String::new(),
            expires: Instant::now(),
        }
    }

    fn info() -> gateway_restore::BackupInfo {
        gateway_restore::BackupInfo {
            categories: vec![Category::Users, Category::Agents, Category::Config],
            tenants: vec!["globex".into()],
            tenant_scope: "globex".into(),
        }
    }

    #[test]
    fn a_tenant_admin_restores_its_tenant_s_own_categories_only() {
        let admin = user(Some("globex"));
        let (only, into) = allowed_options(&admin, &info(), false, vec![], None).unwrap();
        assert_eq!((only, into.as_deref()), (vec![Category::Users, Category::Agents], Some("globex")));
        let (only, _) = allowed_options(&admin, &info(), true, vec![], None).unwrap();
        assert_eq!(only, vec![Category::Agents], "no accounts from an upload");
        let e = allowed_options(&admin, &info(), false, vec![], Some("acme".into())).unwrap_err();
        assert_eq!(e.0, StatusCode::FORBIDDEN);
        let e = allowed_options(&admin, &info(), false, vec![Category::Config], None).unwrap_err();
        assert_eq!(e.0, StatusCode::FORBIDDEN);
        let e = allowed_options(&admin, &info(), true, vec![Category::Users], None).unwrap_err();
        assert_eq!(e.0, StatusCode::FORBIDDEN);
        let owner = user(None);
        let (only, into) = allowed_options(&owner, &info(), true, vec![], None).unwrap();
        assert_eq!((only, into), (vec![], None), "gateway-wide: as asked");
    }
}
