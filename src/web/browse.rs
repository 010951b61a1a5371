//! Browsing a snapshot (format-spec/gateway.md §11): its tree as an export lays it out under
//! `backup/`, one folder at a time; a file viewed as text (within [`VIEW_CAP`]) or downloaded; a
//! folder downloaded as a zip. Viewers and up, within their scope: a snapshot outside it is not
//! found, whatever id, short id or prefix names it.
//!
//! Downloads stream: a file chunk by chunk, a zip through the export's own renderer (deflated on
//! worker threads, a bounded window at a time), both through a bounded channel into the response,
//! so the server's memory does not grow with what is downloaded. The repository's shared lock is
//! held until the last byte is sent.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use sophon::export::plan::{Entry, EntryKind};
use sophon::export::render::{self, RenderOptions};
use sophon::format::snapshot::Snapshot;
use sophon::format::tree::{Node, NodeKind};
use sophon::id::{BlobId, SnapshotId};
use sophon::source::SnapshotScope;
use sophon::Session;

use super::auth::{self, Session as UserSession};
use super::{error, snapshots, Shared};

/// The largest file the page shows as text; bigger ones are downloaded.
pub const VIEW_CAP: u64 = 1 << 20;
/// Pieces in flight between the thread reading the repository and the response: with pieces of
/// at most [`PIECE`] bytes (or one blob), a few MiB at most, whatever the size of the download.
const CHANNEL_PIECES: usize = 8;
const PIECE: usize = 256 * 1024;

#[derive(Deserialize)]
pub struct PathQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    download: Option<String>,
}

/// A path below `backup/`: its names, or why it is refused (400).
pub fn parse_path(p: &str) -> Result<Vec<String>, String> {
    if p.starts_with('/') {
        return Err(format!("path {p:?} is absolute: give it relative to the snapshot's backup/ folder"));
    }
    let trimmed = p.strip_suffix('/').unwrap_or(p);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(format!("path {p:?}: empty, `.` and `..` names are refused"));
        }
        out.push(part.to_string());
    }
    Ok(out)
}

/// What a path names in a snapshot.
enum Found {
    /// A folder: its tree (the root has no node).
    Dir(BlobId, Option<Node>),
    File(Node),
    Symlink(Node),
}

#[derive(Debug)]
enum BrowseError {
    NotFound(String),
    Bad(String),
    Failed(String),
}

impl BrowseError {
    fn response(self) -> Response {
        match self {
            BrowseError::NotFound(m) => error(StatusCode::NOT_FOUND, &m),
            BrowseError::Bad(m) => error(StatusCode::BAD_REQUEST, &m),
            BrowseError::Failed(m) => error(StatusCode::INTERNAL_SERVER_ERROR, &m),
        }
    }
}

impl From<sophon::Error> for BrowseError {
    fn from(e: sophon::Error) -> Self {
        BrowseError::Failed(e.to_string())
    }
}

fn name_of(node: &Node) -> String {
    match node.name_bytes() {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => "?".into(),
    }
}

fn locate(session: &Session, snap: &Snapshot, names: &[String]) -> Result<Found, BrowseError> {
    let repo = session.repo();
    let mut found = Found::Dir(snap.tree, None);
    for (i, name) in names.iter().enumerate() {
        let Found::Dir(tree, _) = &found else {
            return Err(BrowseError::NotFound(format!("{} is not a folder", names[..i].join("/"))));
        };
        let node = repo
            .load_tree(tree)?
            .nodes
            .into_iter()
            .find(|n| n.name_bytes().is_ok_and(|b| b == name.as_bytes()))
            .ok_or_else(|| BrowseError::NotFound(format!("{} is not in the snapshot", names[..=i].join("/"))))?;
        found = match node.kind {
            NodeKind::Dir => match node.subtree {
                Some(sub) => Found::Dir(sub, Some(node)),
                None => return Err(BrowseError::Failed(format!("folder {} has no tree", names[..=i].join("/")))),
            },
            NodeKind::File => Found::File(node),
            NodeKind::Symlink => Found::Symlink(node),
        };
    }
    Ok(found)
}

fn time_text(mtime_ns: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(mtime_ns.div_euclid(1_000_000_000), mtime_ns.rem_euclid(1_000_000_000) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn entry_view(n: &Node) -> Value {
    let kind = match n.kind {
        NodeKind::Dir => "dir",
        NodeKind::File => "file",
        NodeKind::Symlink => "symlink",
    };
    let mut v = json!({
        "name": name_of(n),
        "kind": kind,
        "size": if n.kind == NodeKind::File { Some(n.size) } else { None },
        "mtime": time_text(n.mtime_ns),
        "mode": format!("{:04o}", n.mode & 0o7777),
    });
    if n.kind == NodeKind::Symlink {
        v["target"] = json!(n.target_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default());
    }
    v
}

/// A session held by a request. Releasing a session's lock deletes its lock file through the
/// blocking storage API, which must not run on the runtime's own threads: dropped here, it is
/// released on a blocking thread.
pub struct Held(Option<Session>);

impl Held {
    pub fn new(s: Session) -> Held {
        Held(Some(s))
    }

    pub fn session(&self) -> &Session {
        self.0.as_ref().expect("a held session")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(move || drop(s))),
                Err(_) => drop(s),
            }
        }
    }
}

/// The signed-in user, or the 401 answer.
fn user(app: &Shared, headers: &HeaderMap) -> Option<std::sync::Arc<UserSession>> {
    app.sessions.of_request(headers)
}

/// Open snapshot `id` (within the user's scope) and find `path` in it, on a blocking thread.
async fn open(
    app: &Shared,
    user: &UserSession,
    id: String,
    path: &str,
) -> Result<(Held, SnapshotId, Snapshot, Vec<String>, Found), Response> {
    let names = parse_path(path).map_err(|m| error(StatusCode::BAD_REQUEST, &m))?;
    let scope = user.scope.clone();
    let app = app.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<_, BrowseError> {
        let (session, id, snap) = snapshots::find(&app, scope.as_deref(), &id)
            .map_err(|e| BrowseError::Failed(format!("{e:#}")))?
            .ok_or_else(|| BrowseError::NotFound("no such snapshot".into()))?;
        let session = Held::new(session);
        let found = locate(session.session(), &snap, &names)?;
        Ok((session, id, snap, names, found))
    })
    .await;
    match outcome {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(e.response()),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "reading the snapshot failed")),
    }
}

/// `GET /api/snapshots/{id}/tree?path=P`: one folder of the snapshot's `backup/` tree.
pub async fn tree(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Response {
    let Some(user) = user(&app, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    // Held until the folder is read and the session dropped (see `App::reads`).
    let Ok(_permit) = app.reads.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    };
    let (session, id, snap, names, found) = match open(&app, &user, id, &q.path).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Found::Dir(tree, _) = found else {
        return error(StatusCode::BAD_REQUEST, &format!("{} is not a folder: open it with /file", names.join("/")));
    };
    let listed = tokio::task::spawn_blocking(move || session.session().repo().load_tree(&tree)).await;
    let nodes = match listed {
        Ok(Ok(t)) => t.nodes,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the snapshot failed"),
    };
    // Folders first, then by name (trees are sorted by name already).
    let mut entries: Vec<Value> = nodes.iter().filter(|n| n.kind == NodeKind::Dir).map(entry_view).collect();
    entries.extend(nodes.iter().filter(|n| n.kind != NodeKind::Dir).map(entry_view));
    let label = SnapshotScope::from_paths(&snap.paths);
    Json(json!({
        "snapshot": id,
        "short_id": id.short(),
        "time": snap.time,
        "scope": label.to_string(),
        "layout": if label.is_gateway() { "gateway" } else { "files" },
        "root": sophon::export::ROOT,
        "path": names.join("/"),
        "entries": entries,
    }))
    .into_response()
}

/// A `Write` that hands its bytes to the response in pieces through a bounded channel: a
/// blocking writer waits while the client is slow, and fails once the client has gone.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A response body written by `work` on a blocking thread. A failure after the first byte cuts
/// the response short (the client sees an incomplete download, never a silently truncated one).
pub fn streamed<F>(work: F) -> Body
where
    F: FnOnce(&mut ChannelWriter) -> Result<(), String> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_PIECES);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(PIECE) };
        let outcome = work(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = outcome {
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// `attachment; filename="…"; filename*=UTF-8''…`: a plain fallback and the exact name.
fn attachment(name: &str) -> HeaderValue {
    let plain: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let mut exact = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            exact.push(b as char);
        } else {
            exact.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// One audit row for a download (who, which snapshot and path, file or zip).
async fn audit_download(app: &Shared, user: &UserSession, id: &SnapshotId, path: &str, kind: &str) {
    let detail = json!({ "outcome": "started", "snapshot": id.to_hex(), "path": path, "as": kind });
    auth::audit_off_thread(&app.home, user, "dashboard.download", detail).await;
}

/// `GET /api/snapshots/{id}/file?path=P[&download=1]`: a file as text (within [`VIEW_CAP`]), or
/// streamed as an attachment.
pub async fn file(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Response {
    let Some(user) = user(&app, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let (session, id, _snap, names, found) = match open(&app, &user, id, &q.path).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let path = names.join("/");
    let node = match found {
        Found::File(n) => n,
        Found::Dir(..) => {
            return error(StatusCode::BAD_REQUEST, &format!("{path:?} is a folder: list it with /tree or get /zip"))
        }
        Found::Symlink(n) => {
            let target = n.target_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
            return error(StatusCode::BAD_REQUEST, &format!("{path} is a symbolic link to {target}"));
        }
    };
    let download = matches!(q.download.as_deref(), Some("1" | "true" | "yes"));
    if download {
        audit_download(&app, &user, &id, &path, "file").await;
        let size = node.size;
        let name = name_of(&node);
        let body = streamed(move |w| {
            for blob in &node.content {
                let data = session.session().repo().read_blob(blob).map_err(|e| e.to_string())?;
                w.write_all(&data).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        let mut res = Response::new(body);
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        h.insert(header::CONTENT_DISPOSITION, attachment(&name));
        return res;
    }
    if node.size > VIEW_CAP {
        let msg = format!(
            "{path} is {}, more than the {} the page shows as text: download it instead",
            sophon::units::human_bytes(node.size),
            sophon::units::human_bytes(VIEW_CAP)
        );
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({ "error": msg, "size": node.size }))).into_response();
    }
    let read = tokio::task::spawn_blocking(move || -> sophon::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(node.size as usize);
        for blob in &node.content {
            out.extend_from_slice(&session.session().repo().read_blob(blob)?);
        }
        Ok(out)
    })
    .await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the file failed"),
    };
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        _ => error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &format!("{path} is not text: download it instead")),
    }
}

/// The entries below folder `names` (its tree `tree`), depth first in name order, with the
/// folder itself and the folders above it first: a zip of a folder holds the paths an export of
/// the snapshot has for it.
fn entries_below(session: &Session, names: &[String], tree: &BlobId, dirs: &[Node]) -> Result<Vec<Entry>, BrowseError> {
    let mut out = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        out.push(Entry {
            path: names[..=i].join("/"),
            kind: EntryKind::Dir,
            mode: d.mode,
            mtime: d.mtime_ns.div_euclid(1_000_000_000),
        });
    }
    // Depth first, in name order: a folder's entries right after it.
    fn walk(session: &Session, prefix: &str, tree: &BlobId, out: &mut Vec<Entry>) -> Result<(), BrowseError> {
        for node in session.repo().load_tree(tree)?.nodes {
            let name = String::from_utf8(node.name_bytes()?).map_err(|_| {
                BrowseError::Bad(format!(
                    "{prefix}: a name is not UTF-8, which zip names must be; restore the snapshot with \
                     `sophon backup restore --target` instead"
                ))
            })?;
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let (mode, mtime) = (node.mode, node.mtime_ns.div_euclid(1_000_000_000));
            match node.kind {
                NodeKind::Dir => {
                    out.push(Entry { path: path.clone(), kind: EntryKind::Dir, mode, mtime });
                    if let Some(sub) = node.subtree {
                        walk(session, &path, &sub, out)?;
                    }
                }
                NodeKind::File => out.push(Entry {
                    path,
                    kind: EntryKind::File { size: node.size, content: node.content },
                    mode,
                    mtime,
                }),
                NodeKind::Symlink => {
                    let target = node.target_bytes()?;
                    out.push(Entry { path, kind: EntryKind::Symlink { target }, mode, mtime });
                }
            }
        }
        Ok(())
    }
    walk(session, &names.join("/"), tree, &mut out)?;
    Ok(out)
}

/// The folders from the root down to `names` (their nodes), for their modes and times.
fn folders_down(session: &Session, snap: &Snapshot, names: &[String]) -> Result<Vec<Node>, BrowseError> {
    let mut out = Vec::new();
    for i in 0..names.len() {
        match locate(session, snap, &names[..=i])? {
            Found::Dir(_, Some(n)) => out.push(n),
            _ => return Err(BrowseError::NotFound(format!("{} is not a folder", names[..=i].join("/")))),
        }
    }
    Ok(out)
}

/// `GET /api/snapshots/{id}/zip?path=P`: a folder (the whole `backup/` tree without a path) as a
/// zip streamed while it is rendered.
pub async fn zip(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Response {
    let Some(user) = user(&app, &headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let (session, id, snap, names, found) = match open(&app, &user, id, &q.path).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Found::Dir(tree, _) = found else {
        return error(StatusCode::BAD_REQUEST, &format!("{} is not a folder: download it with /file", names.join("/")));
    };
    let (s, n) = (Held::new(session.session().clone()), names.clone());
    let listed = tokio::task::spawn_blocking(move || -> Result<Vec<Entry>, BrowseError> {
        let dirs = folders_down(s.session(), &snap, &n)?;
        entries_below(s.session(), &n, &tree, &dirs)
    })
    .await;
    let entries = match listed {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return e.response(),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the snapshot failed"),
    };
    let path = names.join("/");
    audit_download(&app, &user, &id, &path, "zip").await;
    let name = format!("{}-{}.zip", id.short(), names.last().map(String::as_str).unwrap_or(sophon::export::ROOT));
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 4);
    let body = streamed(move |w| {
        let opts = RenderOptions {
            format: sophon::export::Format::Zip,
            level: sophon::export::DEFAULT_LEVEL,
            workers,
            progress: None,
        };
        render::render(session.session().repo(), &entries, |_| Ok(Vec::new()), w, &opts).map_err(|e| e.to_string())?;
        Ok(())
    });
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CONTENT_DISPOSITION, attachment(&name));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_never_climb() {
        assert_eq!(parse_path("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_path("a/b/").unwrap(), vec!["a", "b"]);
        for bad in ["/etc", "..", "a/../b", "a//b", "./a", "a/\0"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attachment_names_are_quoted_safely() {
        let h = attachment("r\u{e9}sum\u{e9} \"x\".txt");
        assert_eq!(
            h.to_str().unwrap(),
            "attachment; filename=\"r_sum___x_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.txt"
        );
    }
}
