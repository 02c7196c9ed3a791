//! Headers every answer carries.
//!
//! API answers hold personal data (cases, persons, contacts) and session state, so no browser,
//! proxy or disk cache may keep them (`Cache-Control: no-store`), and no browser may sniff a
//! JSON body into something it would execute (`X-Content-Type-Options: nosniff`). Routes that
//! choose their own caching (the web UI's assets: `no-cache` with an ETag) keep it.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Adds `nosniff` to every answer, and `no-store` to those that set no `Cache-Control`.
pub async fn protect(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
