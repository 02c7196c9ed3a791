//! PDF reports: each one reads the engine once, at one tick, turns what it read into
//! `lpm-reports`' plain structs and renders them (docs/reports.md).
//!
//! The reads and the rendering run on the blocking pool; the handlers in
//! `routes::reports` only check who asks, parse the query and wrap the bytes in a response.

pub mod analytics;
pub mod case;
pub mod params;
pub mod poster;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// A rendered report: the PDF bytes and the tick its numbers come from.
pub struct Rendered {
    /// The engine tick of the one read behind the report.
    pub tick: u64,
    /// The PDF.
    pub bytes: Vec<u8>,
}

/// `application/pdf` as an attachment named `filename`, with the tick in `X-Lpm-Tick`.
/// Reports may hold personal data, so they are never cached.
pub fn pdf_response(r: Rendered, filename: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static("x-lpm-tick"),
                HeaderValue::from(r.tick),
            ),
        ],
        r.bytes,
    )
        .into_response()
}

/// A report that failed to render is our bug, never the caller's.
pub fn render_error(e: lpm_reports::ReportError) -> ApiError {
    ApiError::Internal(format!("rendering a PDF report: {e}"))
}
