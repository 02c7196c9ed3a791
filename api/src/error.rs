//! `ApiError`: every failure a handler can answer with, mapped to a status and a JSON body
//! `{code, error, field}`. Input errors are 4xx and name the field; internal errors are a 500 with a
//! generic message (the detail goes to the log, never to the client).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A handler's error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (bad JSON, wrong type, bad query parameter).
    #[error("{message}")]
    BadRequest {
        /// The offending field, when one is to blame.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Well-formed input that breaks a rule (unknown enum value, invalid transition).
    #[error("{message}")]
    Unprocessable {
        /// The offending field.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// No valid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Valid credentials without the right.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// Optimistic concurrency: the `version` sent is not the current one.
    #[error("version conflict: current version is {current}")]
    Conflict {
        /// The current version.
        current: i64,
    },
    /// The case is not published, so it has no public page and no poster.
    #[error("case {0} is not published: publish it first (PATCH with \"public\": true)")]
    NotPublished(i64),
    /// The body is larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The service cannot take this now (not ready, shutting down).
    #[error("{message}")]
    Unavailable {
        /// Why.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A bug or an I/O failure; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// What kind of failure an error is, as a stable machine-readable word. Clients (the web UI)
/// translate it into the reader's language; the `error` text beside it is English and may be
/// reworded, the code may not: a new failure gets a new code, an existing one keeps its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed input (bad JSON, wrong type, bad query or path parameter).
    BadRequest,
    /// 422: well-formed input that breaks a rule; `field` names it when one is to blame.
    InvalidField,
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: credentials without the right.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 409: the `version` sent is not the current one (`current_version` says which is).
    VersionConflict,
    /// 409: the case is not published (its poster needs its public page).
    NotPublished,
    /// 413: the body is over the size limit.
    PayloadTooLarge,
    /// 429: too many attempts; retry after `Retry-After` seconds.
    TooManyRequests,
    /// 503: not ready or not taking writes now; retry after `Retry-After` seconds.
    Unavailable,
    /// 500: a bug or an I/O failure on the server.
    Internal,
}

impl ErrorCode {
    /// Every code, so tests can check each is documented and translated by the UI.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidField,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::VersionConflict,
        ErrorCode::NotPublished,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyRequests,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
}

/// The JSON body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What kind of failure, stable across releases: translate this, not `error`.
    pub code: ErrorCode,
    /// What went wrong, for humans (English).
    pub error: String,
    /// The request field to blame, if any.
    pub field: Option<String>,
    /// The current version, on a 409.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// `Result` with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::NotPublished(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of the body; one per status except 409, which is a stale `version`
    /// (`version_conflict`) or an unpublished case's poster (`not_published`).
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest { .. } => ErrorCode::BadRequest,
            ApiError::Unprocessable { .. } => ErrorCode::InvalidField,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict { .. } => ErrorCode::VersionConflict,
            ApiError::NotPublished(_) => ErrorCode::NotPublished,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::BadRequest { field, .. } | ApiError::Unprocessable { field, .. } => {
                field.clone()
            }
            ApiError::Conflict { .. } => Some("version".into()),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail = %detail, "Request failed with an internal error.");
        }
        let status = self.status();
        let body = ErrorBody {
            code: self.code(),
            error: self.to_string(),
            field: self.field(),
            current_version: match self {
                ApiError::Conflict { current } => Some(current),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests { retry_after }
            | ApiError::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> ApiError {
        use axum::extract::rejection::JsonRejection as J;
        let text = r.body_text();
        match r {
            J::MissingJsonContentType(_) => ApiError::BadRequest {
                field: None,
                message: "expected Content-Type: application/json".into(),
            },
            J::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            J::JsonDataError(_) => {
                // serde names the path: "body.field: invalid type ..." -> the field; without
                // one the body as a whole has the wrong shape (found by fuzz/grafana_request:
                // a 422 for the body `"targets"` named no field)
                let field = field_of_serde_message(&text).or_else(|| Some("body".into()));
                ApiError::Unprocessable {
                    field,
                    message: text,
                }
            }
            _ => ApiError::BadRequest {
                field: None,
                message: text,
            },
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> ApiError {
        let text = r.body_text();
        ApiError::BadRequest {
            field: field_of_serde_message(&text),
            message: text,
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::BadRequest {
            field: Some("path".into()),
            message: r.body_text(),
        }
    }
}

/// Pulls the field path out of serde's messages. axum prefixes data errors with the
/// serde_path_to_error path: `"...target type: first_action: missing field `action_type` at
/// ..."` names `first_action.action_type`; `"...: first_action.colour: unknown field `colour`"`
/// names `first_action.colour`; `"...: status: unknown variant ..."` names `status`.
fn field_of_serde_message(text: &str) -> Option<String> {
    let after = text.rsplit_once("target type: ").map_or(text, |(_, r)| r);
    let after = after
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(after);
    let (path, rest) = match after.split_once(": ") {
        Some((p, r)) if !p.trim().is_empty() && !p.contains(' ') => (Some(p.trim()), r),
        _ => (None, after),
    };
    let named = |marker: &str| {
        rest.split(marker)
            .nth(1)
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
    };
    if let Some(missing) = named("missing field `") {
        return Some(match path {
            Some(p) if p != "." => format!("{p}.{missing}"),
            _ => missing,
        });
    }
    if let Some(p) = path.filter(|p| *p != ".") {
        return Some(p.to_string());
    }
    named("unknown field `")
}

impl From<lpm_service::sor::SorError> for ApiError {
    fn from(e: lpm_service::sor::SorError) -> ApiError {
        ApiError::from(lpm_service::sor::WriteError {
            error: e,
            retry_after: lpm_service::sor::EMBEDDED_RETRY_AFTER_SECS,
        })
    }
}

impl From<lpm_service::sor::WriteError> for ApiError {
    fn from(e: lpm_service::sor::WriteError) -> ApiError {
        use lpm_service::sor::SorError;
        match e.error {
            SorError::Invalid { field, message } => ApiError::invalid(field, message),
            SorError::NotFound(what) => ApiError::NotFound(what),
            SorError::Conflict { current } => ApiError::Conflict { current },
            SorError::Unavailable(message) => ApiError::Unavailable {
                message,
                retry_after: e.retry_after,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> serde_json::Value {
        let r = e.into_response();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("the error body is readable");
        serde_json::from_slice(&bytes).expect("the error body is JSON")
    }

    /// The OpenAPI document states the code as a required field with exactly these words, so
    /// the contract tests hold the server to it.
    #[test]
    fn the_document_lists_the_codes() {
        let doc = crate::openapi::spec();
        let schemas = &doc["components"]["schemas"];
        let required = schemas["ErrorBody"]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(required.iter().any(|r| r == "code"), "{required:?}");
        let words: Vec<_> = schemas["ErrorCode"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(words.len(), ErrorCode::ALL.len(), "{words:?}");
        for c in ErrorCode::ALL {
            let w = serde_json::to_value(c).expect("a code serializes");
            assert!(words.contains(&w), "{w} in {words:?}");
        }
    }

    /// The codes are part of the API: a rename breaks every client that translates them.
    #[tokio::test]
    async fn every_error_carries_its_stable_code() {
        let cases = [
            (ApiError::bad("q", "bad"), "bad_request"),
            (ApiError::invalid("age", "too old"), "invalid_field"),
            (ApiError::Unauthorized, "unauthorized"),
            (ApiError::Forbidden("no".into()), "forbidden"),
            (ApiError::NotFound("case 9".into()), "not_found"),
            (ApiError::Conflict { current: 4 }, "version_conflict"),
            (ApiError::NotPublished(4), "not_published"),
            (ApiError::PayloadTooLarge, "payload_too_large"),
            (
                ApiError::TooManyRequests { retry_after: 3 },
                "too_many_requests",
            ),
            (
                ApiError::Unavailable {
                    message: "not ready".into(),
                    retry_after: 1,
                },
                "unavailable",
            ),
            (ApiError::Internal("disk".into()), "internal"),
        ];
        for (e, code) in cases {
            let message = e.to_string();
            let body = body_of(e).await;
            assert_eq!(body["code"], code, "{body}");
            if code != "internal" {
                assert_eq!(body["error"], message.as_str(), "the message is kept");
            }
        }
        let conflict = body_of(ApiError::Conflict { current: 4 }).await;
        assert_eq!(conflict["current_version"], 4);
        assert_eq!(conflict["field"], "version");
    }

    #[test]
    fn serde_paths_name_the_field() {
        assert_eq!(
            field_of_serde_message("Failed to deserialize the JSON body into the target type: status: unknown variant `x`, expected one of `open`"),
            Some("status".into())
        );
        assert_eq!(
            field_of_serde_message("Failed to deserialize the JSON body into the target type: missing field `full_name` at line 1 column 2"),
            Some("full_name".into())
        );
        assert_eq!(field_of_serde_message("EOF while parsing"), None);
        assert_eq!(
            field_of_serde_message("Failed to deserialize the JSON body into the target type: first_action: missing field `action_type` at line 1 column 9"),
            Some("first_action.action_type".into())
        );
        assert_eq!(
            field_of_serde_message("Failed to deserialize the JSON body into the target type: first_action.colour: unknown field `colour`, expected one of"),
            Some("first_action.colour".into())
        );
    }
}
