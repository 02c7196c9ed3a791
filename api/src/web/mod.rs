//! The responder web UI: a single page (hash routing) of plain HTML, CSS and ES modules,
//! compiled into the binary with `include_bytes!` so `lpm serve` needs no Node build and no
//! files on disk.
//!
//! | route | serves |
//! |---|---|
//! | `GET /` | `index.html`, the shell every page renders into |
//! | `GET /assets/{name}` | the scripts, the stylesheet and the icon listed in [`ASSETS`] |
//! | `GET /runbook` | `docs/runbook.md` as HTML, the target of the alerts' runbook links ([`runbook`]) |
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
//! only, no inline script or style attribute, no framing), `X-Content-Type-Options: nosniff`,
//! an `ETag` (CRC-32 of the bytes) and `Cache-Control: no-cache`: names are not content-hashed,
//! so browsers revalidate on each load and get a 304 while the binary is unchanged. Anything
//! else, `/api/...` included, falls through to the API's JSON 404.
//!
//! The dictionaries of both languages live in one file, `assets/i18n.js`, between the
//! `BEGIN MESSAGES` and `END MESSAGES` markers as strict JSON, so the tests below check that
//! Spanish and English have the same keys and that every key the markup uses exists.

use std::sync::LazyLock;

use crate::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

/// The Content-Security-Policy of every UI response. `connect-src 'self'` covers the
/// same-origin WebSocket in CSP 3 browsers.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The headers every UI response carries besides its type and ETag.
const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    // names are not content-hashed: revalidate every time (a 304 while the binary is unchanged)
    (header::CACHE_CONTROL, "no-cache"),
];

/// One embedded file.
pub struct Asset {
    /// The name under `/assets/` (`index.html` is served at `/`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every embedded file.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("i18n.js", JS),
    asset!("charts.js", JS),
    asset!("map.js", JS),
    asset!("live.js", JS),
    asset!("page-signin.js", JS),
    asset!("page-report.js", JS),
    asset!("page-cases.js", JS),
    asset!("page-case.js", JS),
    asset!("page-dashboard.js", JS),
    asset!("page-reports.js", JS),
    asset!("page-engine.js", JS),
    asset!("page-contacts.js", JS),
];

/// The strong ETag of each asset, in [`ASSETS`] order, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{:08x}-{:x}\"", crc32fast::hash(a.body), a.body.len()))
        .collect()
});

/// The UI routes; merge into the app router before its fallback.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/runbook", get(runbook::runbook))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(IntoResponse::into_response)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers).unwrap_or_else(IntoResponse::into_response)
}

/// The asset `name` (200, or 304 when `If-None-Match` names its ETag), or a JSON 404.
fn serve(name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (i, a) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, a)| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("asset {name}")))?;
    let etag = &ETAGS[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let h = response.headers_mut();
    for (name, value) in HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    let etag = HeaderValue::from_str(etag)
        .map_err(|e| ApiError::Internal(format!("etag is not a header value: {e}")))?;
    h.insert(header::ETAG, etag);
    Ok(response)
}

pub mod runbook;

#[cfg(test)]
mod i18n_tests;
