//! The page's assets, compiled into the binary: nothing is fetched from elsewhere.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// The page at `/`.
const INDEX_HTML: &str = include_str!("index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file under `/assets/`: one line per section script.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", CSS, include_str!("ui/style.css")),
    ("app.js", JS, include_str!("ui/app.js")),
    ("start.js", JS, include_str!("ui/start.js")),
    ("backups.js", JS, include_str!("ui/backups.js")),
    ("jobs.js", JS, include_str!("ui/jobs.js")),
    ("browse.js", JS, include_str!("ui/browse.js")),
    ("restore.js", JS, include_str!("ui/restore.js")),
    ("chart.js", JS, include_str!("ui/chart.js")),
    ("schedules.js", JS, include_str!("ui/schedules.js")),
    ("retention.js", JS, include_str!("ui/retention.js")),
    ("create.js", JS, include_str!("ui/create.js")),
];

pub async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(header::CONTENT_TYPE, *kind)], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
