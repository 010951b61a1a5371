//! Settings → Backup → Create: what the form offers (`GET /api/backups/options`), an estimate
//! (`POST /api/backups/estimate`) and the create job (`POST /api/backups`): a gateway backup, then
//! its archive written to a folder or a store, or offered for download. Every input is checked
//! before anything starts, and a refusal names the field. A tenant's admin backs up its own tenant
//! only, without the gateway-wide categories (format-spec/gateway.md §11).
//!
//! The passphrase lives in the job's memory until the job ends (or, for a download, until the
//! download starts or its link expires): never in a response, a job's `what`, a log or an audit row.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use sophon::archive::BackupOptions;
use sophon::export::output::{self, ArchiveTarget, PlannedArchive};
use sophon::export::seal::Kdf;
use sophon::export::{ExportOptions, Format};
use sophon::gateway::dump::DumpOptions;
use sophon::gateway::{keys, Category, Settings};
use sophon::Session as RepoSession;

use super::auth::Session;
use super::jobs::{Job, JobError};
use super::{downloads, error, snapshots, Shared};

/// A refused request: the status, the field it concerns (if it is about one), and a message that
/// names it.
pub struct Refusal {
    status: StatusCode,
    field: Option<&'static str>,
    message: String,
}

impl Refusal {
    fn about(status: StatusCode, field: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal { status, field: Some(field), message: format!("{field}: {message}") }
    }

    pub fn bad(field: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal::about(StatusCode::BAD_REQUEST, field, message)
    }

    pub fn forbidden(field: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal::about(StatusCode::FORBIDDEN, field, message)
    }

    pub fn not_found(field: &'static str, message: impl std::fmt::Display) -> Refusal {
        Refusal::about(StatusCode::NOT_FOUND, field, message)
    }

    /// A failure that is no field's (the repository cannot be opened, …).
    pub fn failed(status: StatusCode, message: impl std::fmt::Display) -> Refusal {
        Refusal { status, field: None, message: message.to_string() }
    }

    /// The repository or the home could not be read: 503 with the reason.
    pub fn unavailable(message: impl std::fmt::Display) -> Refusal {
        Refusal::failed(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.field {
            Some(field) => (self.status, Json(json!({ "error": self.message, "field": field }))).into_response(),
            None => error(self.status, &self.message),
        }
    }
}

/// The signed-in user who may act, or the answer to give.
pub fn actor(app: &Shared, headers: &HeaderMap, what: &str) -> Result<Arc<Session>, Refusal> {
    app.sessions.acting(headers, what).map_err(|(status, message)| Refusal::failed(status, message))
}

/// A JSON body, refused with 400 naming what is wrong with it (never echoing a value).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::bad("body", format!("not the expected JSON ({e})")))
}

/// `zip`, `tar.gz` (or `tgz`).
pub fn parse_format(format: &str) -> Result<Format, Refusal> {
    match format {
        "zip" => Ok(Format::Zip),
        "tar.gz" | "tgz" => Ok(Format::TarGz),
        _ => Err(Refusal::bad("format", "give zip or tar.gz")),
    }
}

/// The passphrase to seal with when `encrypt`: given, one line, typed the same twice.
pub fn typed_passphrase(
    encrypt: bool,
    passphrase: Option<Zeroizing<String>>,
    confirm: Option<Zeroizing<String>>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Refusal> {
    if !encrypt {
        return Ok(None);
    }
    let Some(pass) = passphrase.filter(|p| !p.is_empty()) else {
        return Err(Refusal::bad("passphrase", "give a passphrase to encrypt with"));
    };
    if pass.contains(['\n', '\r']) {
        return Err(Refusal::bad("passphrase", "a passphrase is one line"));
    }
    match confirm {
        Some(c) if c.as_bytes() == pass.as_bytes() => Ok(Some(Zeroizing::new(pass.as_bytes().to_vec()))),
        Some(c) if !c.is_empty() => Err(Refusal::bad("passphrase_confirm", "the two passphrases differ")),
        _ => Err(Refusal::bad("passphrase_confirm", "type the passphrase a second time")),
    }
}

fn passphrase_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Zeroizing::new))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationRequest {
    kind: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// Replace an archive already under the name.
    #[serde(default)]
    overwrite: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default = "zip")]
    format: String,
    #[serde(default)]
    encrypt: bool,
    #[serde(default, deserialize_with = "passphrase_field")]
    passphrase: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "passphrase_field")]
    passphrase_confirm: Option<Zeroizing<String>>,
    destination: DestinationRequest,
}

fn zip() -> String {
    "zip".into()
}

/// What a backup covers, checked against the user's scope.
#[derive(Clone)]
struct Scope {
    /// Empty: every category.
    categories: Vec<Category>,
    tenant: Option<String>,
}

impl Scope {
    fn view(&self) -> Value {
        json!({
            "categories": self.categories.iter().map(|c| c.id()).collect::<Vec<_>>(),
            "tenant": self.tenant,
        })
    }
}

/// The tenants of the home, `(id, name)`, by id.
fn tenants(home: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let conn = sophon::gateway::open_home(home)?;
    let mut st = conn.prepare("SELECT id, name FROM tenants ORDER BY id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Check a scope against the user's: a tenant's admin backs up its own tenant, without the
/// gateway-wide categories; a gateway-wide user names an existing tenant or none.
fn check_scope(app: &Shared, session: &Session, categories: &[String], tenant: Option<&str>) -> Result<Scope, Refusal> {
    let mut parsed = Vec::new();
    for c in categories {
        let cat: Category = c.trim().parse().map_err(|e| Refusal::bad("categories", e))?;
        if !parsed.contains(&cat) {
            parsed.push(cat);
        }
    }
    let tenant = tenant.map(str::trim).filter(|t| !t.is_empty());
    match &session.scope {
        Some(own) => {
            if tenant.is_some_and(|t| t != own) {
                return Err(Refusal::forbidden(
                    "tenant",
                    format!("a tenant's admin backs up its own tenant ({own}) only"),
                ));
            }
            if let Some(c) = parsed.iter().find(|c| c.is_gateway_wide()) {
                return Err(Refusal::forbidden(
                    "categories",
                    format!("{c} belongs to the whole gateway: only a gateway-wide user backs it up"),
                ));
            }
            if parsed.is_empty() {
                parsed = Category::ALL.iter().copied().filter(|c| !c.is_gateway_wide()).collect();
            }
            Ok(Scope { categories: parsed, tenant: Some(own.clone()) })
        }
        None => {
            if let Some(t) = tenant {
                let known = tenants(&app.home).map_err(|e| Refusal::bad("tenant", e))?;
                if !known.iter().any(|(id, _)| id == t) {
                    return Err(Refusal::bad("tenant", format!("no tenant {t:?} in this gateway")));
                }
            }
            Ok(Scope { categories: parsed, tenant: tenant.map(str::to_string) })
        }
    }
}

/// Where the archive goes.
#[derive(Clone)]
enum Destination {
    Download,
    Local(PathBuf),
    Store(String),
}

impl Destination {
    fn view(&self, kind: &str, overwrite: bool) -> Value {
        match self {
            Destination::Download => json!({ "kind": kind }),
            Destination::Local(p) => json!({ "kind": kind, "path": p, "overwrite": overwrite }),
            Destination::Store(u) => json!({ "kind": kind, "url": u, "overwrite": overwrite }),
        }
    }
}

/// Whether `name` ends with an extension of `format`.
fn named_for(name: &str, format: Format) -> bool {
    Format::from_archive_name(name) == Some(format)
}

fn extensions(format: Format) -> &'static str {
    match format {
        Format::Zip => ".zip",
        Format::TarGz => ".tar.gz or .tgz",
    }
}

/// Check the destination: a local file in an existing folder, or a store URL naming an archive;
/// an archive already there is refused without `overwrite` (a store is opened here, so refused
/// credentials are found before the backup).
fn check_destination(d: &DestinationRequest, format: Format, tenant: Option<&str>) -> Result<Destination, Refusal> {
    let dest = match d.kind.as_str() {
        "download" => return Ok(Destination::Download),
        "local" => {
            let path = d.path.as_deref().map(str::trim).filter(|p| !p.is_empty());
            let Some(path) = path else {
                return Err(Refusal::bad("destination.path", "give the archive's absolute path"));
            };
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Refusal::bad("destination.path", format!("{}: not an absolute path", path.display())));
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !named_for(&name, format) {
                let why =
                    format!("{}: a {} archive's name ends with {}", path.display(), format.name(), extensions(format));
                return Err(Refusal::bad("destination.path", why));
            }
            let dir = path.parent().unwrap_or(Path::new("/"));
            if !dir.is_dir() {
                return Err(Refusal::bad("destination.path", format!("no folder {}", dir.display())));
            }
            Destination::Local(path)
        }
        kind @ ("s3" | "azblob" | "sftp") => {
            let url = d.url.as_deref().map(str::trim).unwrap_or_default();
            if !url.starts_with(&format!("{kind}://")) {
                return Err(Refusal::bad("destination.url", format!("give a {kind}:// URL naming the archive")));
            }
            let Some((_, name)) = sophon::export::destination::split_archive_url(url) else {
                return Err(Refusal::bad(
                    "destination.url",
                    "give the archive's full name, e.g. s3://bucket/backup.zip",
                ));
            };
            if !named_for(name, format) {
                let why = format!("a {} archive's name ends with {}", format.name(), extensions(format));
                return Err(Refusal::bad("destination.url", why));
            }
            Destination::Store(url.to_string())
        }
        _ => return Err(Refusal::bad("destination.kind", "give download, local, s3, azblob or sftp")),
    };
    let (out, url) = match &dest {
        Destination::Local(p) => (Some(p.as_path()), None),
        Destination::Store(u) => (None, Some(u.as_str())),
        Destination::Download => (None, None),
    };
    let planned = PlannedArchive { out, dest: url, tenant, overwrite: d.overwrite, incremental: false };
    output::refuse_existing(&planned, chrono::Local::now()).map_err(|e| {
        Refusal::bad(if out.is_some() { "destination.path" } else { "destination.url" }, format!("{e}"))
    })?;
    Ok(dest)
}

/// `GET /api/backups/options`: what the form offers this user.
pub async fn options(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = app.sessions.of_request(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let home = app.home.clone();
    let listed = tokio::task::spawn_blocking(move || tenants(&home)).await;
    let all = match listed {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "listing the tenants failed"),
    };
    let tenants: Vec<Value> = all
        .into_iter()
        .filter(|(id, _)| session.scope.as_deref().is_none_or(|own| own == id))
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let categories: Vec<Value> = Category::ALL
        .iter()
        .filter(|c| session.scope.is_none() || !c.is_gateway_wide())
        .map(|c| json!({ "id": c.id(), "gateway_wide": c.is_gateway_wide() }))
        .collect();
    Json(json!({
        "scope": session.scope.as_deref().unwrap_or("gateway"),
        "categories": categories,
        "tenants": tenants,
        "formats": ["zip", "tar.gz"],
        "destinations": ["download", "local", "s3", "azblob", "sftp"],
    }))
    .into_response()
}

/// The dump of a backup of `scope`; `seal` seals its 2FA secrets.
fn dump_options(scope: &Scope, settings: &Settings, seal: Option<&keys::Passphrase>) -> DumpOptions {
    DumpOptions {
        categories: scope.categories.clone(),
        tenant: scope.tenant.clone(),
        include_license: settings.include_license(),
        audit_since: None,
        audit_until: None,
        passphrase: seal.map(|p| p.value.clone()),
        spool_dir: Some(sophon::repo::default_cache_dir().join("spool")),
    }
}

/// `POST /api/backups/estimate`: what a backup of the scope holds and would add: a dry run that
/// dumps the gateway, passes over the files the last snapshot of the scope lets it reuse, and
/// chunks the rest against the repository's index. Nothing is written.
pub async fn estimate(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let session = match actor(&app, &headers, "estimate a backup") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<Value, Refusal> {
        let req: ScopeRequest = parse_body(&body)?;
        let scope = check_scope(&shared, &session, &req.categories, req.tenant.as_deref())?;
        let settings = Settings::load(&shared.home).map_err(Refusal::unavailable)?;
        let seal = snapshots::given().seal(Some(&settings)).ok().flatten();
        let dump_opts = dump_options(&scope, &settings, seal.as_ref());
        let repo = snapshots::repository(&shared).map_err(|e| Refusal::unavailable(format!("{e:#}")))?;
        let repo_session = match repo {
            Some(r) => Some(RepoSession::shared(r, "estimate").map_err(Refusal::unavailable)?),
            None => None,
        };
        let opts = BackupOptions::new(vec![]);
        let (est, dump) = sophon::gateway::backup::estimate(repo_session.as_ref(), &shared.home, &dump_opts, &opts)
            .map_err(Refusal::unavailable)?;
        let parent = match (&repo_session, est.parent) {
            (Some(s), Some(id)) => s.load_snapshot(&id).ok().map(|snap| {
                json!({ "id": id, "short_id": id.short(), "time": snap.time, "bytes": snap.summary.bytes,
                        "files": snap.summary.files })
            }),
            _ => None,
        };
        let label = sophon::gateway::backup::source_label(&shared.home, scope.tenant.as_deref(), &scope.categories);
        Ok(json!({
            "scope": sophon::source::SnapshotScope::from_paths(&[label]).to_string(),
            "tenant": scope.tenant,
            "categories": dump.categories.iter().map(|c| c.id()).collect::<Vec<_>>(),
            "records": dump.records,
            "records_total": dump.records.values().sum::<u64>(),
            "files": est.files,
            "bytes": est.bytes,
            "parent": parent,
            "files_unchanged": est.files_unchanged,
            "bytes_unchanged": est.bytes_unchanged,
            "files_to_read": est.files_to_read,
            "bytes_to_read": est.bytes_to_read,
            "bytes_new": est.bytes_new,
            "repository": repo_session.is_some(),
            "basis": if repo_session.is_some() {
                "dry run: the files the last snapshot of this scope lets the backup reuse are passed over, \
                 the others chunked and looked up in the repository's index; bytes_new is the data the \
                 repository does not hold yet, before compression"
            } else {
                "no repository yet: the first backup creates it, and everything is new"
            },
        }))
    })
    .await;
    match outcome {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(r)) => r.into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the estimate failed"),
    }
}

/// Everything a create job needs, checked.
struct Plan {
    scope: Scope,
    format: Format,
    encrypt: bool,
    typed: Option<Zeroizing<Vec<u8>>>,
    destination: Destination,
    overwrite: bool,
    what: Value,
}

fn plan(app: &Shared, session: &Session, body: &[u8]) -> Result<Plan, Refusal> {
    let req: CreateRequest = parse_body(body)?;
    let scope = check_scope(app, session, &req.categories, req.tenant.as_deref())?;
    let format = parse_format(&req.format)?;
    let typed = typed_passphrase(req.encrypt, req.passphrase, req.passphrase_confirm)?;
    let destination = check_destination(&req.destination, format, scope.tenant.as_deref())?;
    let mut what = scope.view();
    what["format"] = json!(format.name());
    what["encrypt"] = json!(req.encrypt);
    what["destination"] = destination.view(&req.destination.kind, req.destination.overwrite);
    Ok(Plan { scope, format, encrypt: req.encrypt, typed, destination, overwrite: req.destination.overwrite, what })
}

/// `POST /api/backups`: check the form, then start the create job (202 with the job).
pub async fn create(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let session = match actor(&app, &headers, "create a backup") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let (shared, s) = (app.clone(), Arc::clone(&session));
    let checked = tokio::task::spawn_blocking(move || plan(&shared, &s, &body)).await;
    let plan = match checked {
        Ok(Ok(p)) => p,
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "checking the request failed"),
    };
    let what = plan.what.clone();
    let shared = app.clone();
    let owner = Arc::clone(&session);
    let started = app.jobs.start(&app, &session, "create", None, what, move |job| run(&shared, &owner, job, plan));
    match started {
        Ok(job) => (StatusCode::ACCEPTED, Json(job.view())).into_response(),
        Err(busy) => busy.into_response(),
    }
}

/// The create job: the gateway backup, then the archive (written, or offered for download).
fn run(app: &Shared, owner: &Session, job: &Job, plan: Plan) -> Result<Value, JobError> {
    let Plan { scope, format, encrypt, typed, destination, overwrite, .. } = plan;
    job.step("opening the repository");
    let settings = Settings::load(&app.home)?;
    let seal = keys::backup_seal(&snapshots::given(), Some(&settings), typed, encrypt)?;
    let (repo, created) = snapshots::home_repository(app).map_err(|e| JobError::Failed(format!("{e:#}")))?;
    let session = RepoSession::shared(repo, "backup").map_err(JobError::of)?;
    let dump_opts = dump_options(&scope, &settings, seal.as_ref());
    let progress = Arc::clone(&job.progress);

    job.step("dumping the gateway");
    let done = AtomicBool::new(false);
    let backed_up = std::thread::scope(|threads| {
        // The step follows the library's counters: the dump has ended once the totals are final.
        threads.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if progress.scan_finished.load(Ordering::Relaxed) {
                    job.step("backing up");
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let r = sophon::gateway::backup::backup(
            &session,
            &app.home,
            &dump_opts,
            &BackupOptions::new(vec![]),
            Arc::clone(&progress),
        );
        done.store(true, Ordering::Relaxed);
        r
    });
    let (outcome, dump) = backed_up.map_err(JobError::of)?;
    let id = outcome.snapshot_id;
    // From here on a cancel takes the new snapshot away again.
    let undo = |e: sophon::Error| -> JobError {
        match e {
            sophon::Error::Cancelled => match session.repo().remove_snapshot(&id) {
                Ok(()) => JobError::Cancelled,
                Err(r) => JobError::Failed(format!("cancelled, but snapshot {} could not be removed: {r}", id.short())),
            },
            e => JobError::Failed(format!(
                "{e}; snapshot {} was kept: download it or export it from the Backups list",
                id.short()
            )),
        }
    };
    let mut result = json!({
        "snapshot": id,
        "short_id": id.short(),
        "scope": sophon::source::SnapshotScope::from_paths(&outcome.snapshot.paths).to_string(),
        "partial": outcome.snapshot.partial,
        "summary": outcome.snapshot.summary,
        "seconds": outcome.seconds,
        "records": dump.records,
        "repository_created": created.map(|k| k.to_string()),
    });
    let sealed_archive = match &destination {
        Destination::Download => {
            if job.cancelled() {
                return Err(undo(sophon::Error::Cancelled));
            }
            job.step("ready to download");
            let pass = if encrypt { seal.as_ref().map(|p| p.value.clone()) } else { None };
            let offer = downloads::offer(app, owner, &session, id, format, pass).map_err(undo)?;
            result["download"] = offer;
            encrypt
        }
        Destination::Local(_) | Destination::Store(_) => {
            progress.reset_counts();
            job.step("writing the archive");
            let target = match &destination {
                Destination::Local(p) => ArchiveTarget::File(p.clone()),
                Destination::Store(u) => ArchiveTarget::Destination(u.clone()),
                Destination::Download => unreachable!("handled above"),
            };
            let placed = target.place(&outcome.snapshot, &id, chrono::Local::now()).map_err(undo)?;
            let mut opts = ExportOptions::new(format);
            opts.overwrite = overwrite;
            opts.progress = Some(Arc::clone(&progress));
            if encrypt {
                let pass = seal.as_ref().map(|p| p.value.clone()).ok_or(keys::KeyError::NoSeal)?;
                opts.seal = Some((pass, Kdf::default_argon2id()));
            }
            let cache_dir = sophon::repo::default_cache_dir();
            let written = placed.export(&session, &id, &opts, &cache_dir).map_err(undo)?;
            result["archive"] = json!(placed.location());
            result["export"] = json!(written);
            written.sealed
        }
    };
    let protection = keys::Protection::of(&dump, seal.as_ref(), Some(sealed_archive));
    result["protection"] = json!(protection);
    Ok(result)
}
