//! Sign-in with the gateway's own users, sessions in memory, the sign-in rate limit, and the
//! audit rows of sign-in and sign-out (format-spec/gateway.md §11).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{error, Shared};

/// How long a session lives.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Failed sign-ins counted per email and per client address within this window...
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// ...before further attempts are refused with 429.
pub const MAX_FAILURES: usize = 5;
const COOKIE: &str = "sophon_session";
/// The one answer to a wrong password and to an unknown user.
const BAD_CREDENTIALS: &str = "wrong email or password";

/// What a signed-in user may do (format-spec/gateway.md §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `owner` or `admin`: create, restore, delete, schedule.
    Act,
    /// `viewer`: lists and history only.
    Read,
}

impl Access {
    /// The access the roles give, if any.
    pub fn of(roles: &[String]) -> Option<Access> {
        if roles.iter().any(|r| r == "owner" || r == "admin") {
            Some(Access::Act)
        } else if roles.iter().any(|r| r == "viewer") {
            Some(Access::Read)
        } else {
            None
        }
    }
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub email: String,
    pub roles: Vec<String>,
    pub tenant: String,
    /// The tenant whose data the user sees; `None`: gateway-wide (an owner of the default tenant).
    pub scope: Option<String>,
    pub access: Access,
    pub csrf: String,
    pub expires: Instant,
}

impl Session {
    fn view(&self) -> Value {
        json!({
            "user": self.user,
            "email": self.email,
            "roles": self.roles,
            "tenant": self.tenant,
            "scope": self.scope.as_deref().unwrap_or("gateway"),
            "access": match self.access { Access::Act => "act", Access::Read => "read" },
            "csrf": self.csrf,
        })
    }
}

/// The sessions of this server, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Arc<Session>>>);

impl Sessions {
    fn insert(&self, s: Session) -> String {
        let id = random_hex(32);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(id.clone(), Arc::new(s));
        id
    }

    fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    /// The live session the request's cookie names.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let id = cookie(headers)?;
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// The signed-in user who may act (owner or admin): 401 without a session, 403 for a viewer,
    /// saying it cannot `what`.
    pub fn acting(&self, headers: &HeaderMap, what: &str) -> Result<Arc<Session>, (StatusCode, String)> {
        let s = self.of_request(headers).ok_or((StatusCode::UNAUTHORIZED, "not signed in".to_string()))?;
        if s.access != Access::Act {
            return Err((StatusCode::FORBIDDEN, format!("a viewer cannot {what}")));
        }
        Ok(s)
    }
}

/// Failed sign-ins by key (`email:…`, `ip:…`).
#[derive(Default)]
pub struct Limiter(Mutex<HashMap<String, Vec<Instant>>>);

impl Limiter {
    /// Seconds to wait when any of `keys` has had too many failures within the window.
    fn retry_after(&self, keys: &[String]) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for k in keys {
            if let Some(times) = map.get_mut(k) {
                times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
                if times.len() >= MAX_FAILURES {
                    let oldest = times[times.len() - MAX_FAILURES];
                    let secs = (FAILURE_WINDOW - now.duration_since(oldest)).as_secs().max(1);
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        wait
    }

    fn fail(&self, keys: &[String]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            map.entry(k.clone()).or_default().push(Instant::now());
        }
    }

    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Compare without stopping at the first difference.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the system's random source");
    hex::encode(buf)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Whether `password` matches a PHC argon2 string or a `$2a$`/`$2b$`/`$2y$` bcrypt hash.
pub fn verify_password(password: &[u8], hash: &str) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        match PasswordHash::new(hash) {
            Ok(h) => argon2::Argon2::default().verify_password(password, &h).is_ok(),
            Err(_) => false,
        }
    } else if hash.starts_with("$2") {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else {
        false
    }
}

/// A hash to verify against when no user has the email, so both failures take about as long.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"sophon-decoy-slt").expect("salt");
        let params = argon2::Params::new(19_456, 2, 1, None).expect("params");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"decoy", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[derive(Deserialize)]
pub struct SignIn {
    email: String,
    password: String,
}

/// A user row that may sign in.
struct UserRow {
    id: String,
    tenant: String,
    email: String,
    hash: String,
    roles: Vec<String>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Write one row of the gateway's audit log. Never given a password.
pub fn audit(conn: &Connection, tenant: &str, actor: &str, action: &str, detail: Value) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_log (id, tenant_id, at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![format!("aud_{}", random_hex(12)), tenant, now_text(), actor, action, "dashboard", detail.to_string()],
    )?;
    Ok(())
}

/// One audit row written into `home`'s database, opened for it. A row that cannot be written does
/// not fail the action it records (the action has happened, or been refused, already).
pub fn audit_in(home: &std::path::Path, tenant: &str, actor: &str, action: &str, detail: Value) {
    if let Ok(conn) = sophon::gateway::open_home(home) {
        let _ = audit(&conn, tenant, actor, action, detail);
    }
}

/// [`audit_in`] from async code: SQLite is written on a blocking thread.
pub async fn audit_off_thread(home: &std::path::Path, session: &Session, action: &str, detail: Value) {
    let (home, tenant, email, action) =
        (home.to_path_buf(), session.tenant.clone(), session.email.clone(), action.to_string());
    let _ = tokio::task::spawn_blocking(move || audit_in(&home, &tenant, &email, &action, detail)).await;
}

fn default_tenant(conn: &Connection) -> Option<String> {
    sophon::cron::store::default_tenant(conn).ok().flatten()
}

/// The outcome of checking a sign-in against the database.
enum Checked {
    Ok(Session),
    Bad,
    NoAccess(UserRow),
}

fn check(conn: &Connection, email: &str, password: &[u8]) -> anyhow::Result<Checked> {
    let mut stmt =
        conn.prepare("SELECT id, tenant_id, email, password_hash, roles FROM users WHERE lower(email) = lower(?1)")?;
    let rows = stmt
        .query_map([email], |r| {
            let roles: String = r.get(4)?;
            Ok(UserRow {
                id: r.get(0)?,
                tenant: r.get(1)?,
                email: r.get(2)?,
                hash: r.get(3)?,
                roles: serde_json::from_str(&roles).unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.is_empty() {
        verify_password(password, decoy_hash());
        return Ok(Checked::Bad);
    }
    let Some(user) = rows.into_iter().find(|u| verify_password(password, &u.hash)) else {
        return Ok(Checked::Bad);
    };
    let Some(access) = Access::of(&user.roles) else {
        return Ok(Checked::NoAccess(user));
    };
    let default = default_tenant(conn);
    let gateway_wide = user.roles.iter().any(|r| r == "owner") && default.as_deref() == Some(user.tenant.as_str());
    Ok(Checked::Ok(Session {
        scope: if gateway_wide { None } else { Some(user.tenant.clone()) },
        user: user.id,
        email: user.email,
        roles: user.roles,
        tenant: user.tenant,
        access,
        csrf: random_hex(32),
        expires: Instant::now() + SESSION_TTL,
    }))
}

/// `POST /api/session`.
pub async fn sign_in(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Json(body): Json<SignIn>,
) -> Response {
    let password = Zeroizing::new(body.password.into_bytes());
    let email = body.email.trim().to_string();
    let keys = [format!("email:{}", email.to_lowercase()), format!("ip:{}", ip(&peer))];
    if let Some(secs) = app.limiter.retry_after(&keys) {
        let mut res = error(StatusCode::TOO_MANY_REQUESTS, "too many failed sign-ins: wait and try again");
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return res;
    }
    let home = app.home.clone();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<(Checked, Connection)> {
        let conn = sophon::gateway::open_home(&home)?;
        Ok((check(&conn, &email, &password)?, conn))
    })
    .await;
    let (checked, conn) = match outcome {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the sign-in check failed"),
    };
    let email = body.email.trim();
    let detail = |outcome: &str| json!({ "outcome": outcome, "client": ip(&peer) });
    let audit_tenant = |t: Option<&str>| t.map(str::to_string).or_else(|| default_tenant(&conn)).unwrap_or_default();
    match checked {
        Checked::Ok(session) => {
            app.limiter.forget(&keys[0]);
            let _ = audit(&conn, &session.tenant, &session.email, "dashboard.sign_in", detail("ok"));
            let view = session.view();
            let id = app.sessions.insert(session);
            let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_TTL.as_secs());
            let mut res = Json(view).into_response();
            res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii cookie"));
            res
        }
        Checked::Bad => {
            app.limiter.fail(&keys);
            let _ =
                audit(&conn, &audit_tenant(None), email, "dashboard.sign_in_failed", detail("wrong email or password"));
            error(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS)
        }
        Checked::NoAccess(user) => {
            let _ = audit(&conn, &user.tenant, &user.email, "dashboard.sign_in_refused", detail("no dashboard role"));
            error(StatusCode::FORBIDDEN, "this user's roles give no access to the dashboard (owner, admin or viewer)")
        }
    }
}

fn ip(peer: &SocketAddr) -> String {
    peer.ip().to_string()
}

/// `GET /api/session`.
pub async fn current(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match app.sessions.of_request(&headers) {
        Some(s) => Json(s.view()).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

/// `DELETE /api/session` (the CSRF check has passed).
pub async fn sign_out(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let Some(id) = cookie(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    if let Some(s) = app.sessions.remove(&id) {
        let home = app.home.clone();
        let _ = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let conn = sophon::gateway::open_home(&home)?;
            audit(&conn, &s.tenant, &s.email, "dashboard.sign_out", json!({ "outcome": "ok" }))?;
            Ok(())
        })
        .await;
    }
    let mut res = Json(json!({ "signed_out": true })).into_response();
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&expired).expect("ascii cookie"));
    res
}
