//! `ApiError`: every failure a handler can answer with, mapped to a status and a JSON body
//! `{error, field}`. Input errors are 4xx and name the field; internal errors are a 500 with a
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

/// The JSON body of every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for humans.
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
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
