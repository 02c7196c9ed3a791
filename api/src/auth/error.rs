//! `AuthError`: what the auth store, the CLI helpers and the extractors can fail with. It turns
//! into [`ApiError`] for responses (`{error, field}`), so clients see the same shape everywhere.

use std::path::PathBuf;
use std::time::Duration;

use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// An auth failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input that breaks a rule (user name syntax, short password, unknown role); 422.
    #[error("{message}")]
    Invalid {
        /// The request field to blame (`username`, `password`, `role`, `label`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A user with this name exists already; 422 naming `username`.
    #[error("user {0:?} already exists")]
    DuplicateUser(String),
    /// No user with this name; 404.
    #[error("no user named {0:?}")]
    UnknownUser(String),
    /// No token with this id; 404.
    #[error("no API token with id {0:?}")]
    UnknownToken(String),
    /// Wrong user name or password (deliberately not saying which); 401.
    #[error("invalid username or password")]
    BadCredentials,
    /// No credentials at all; 401.
    #[error("sign in or send an API token (Authorization: Bearer ...)")]
    Unauthenticated,
    /// A Bearer header that is not a valid, unrevoked token; 401.
    #[error("the API token is invalid or revoked")]
    InvalidToken,
    /// A session cookie that is unknown or expired; 401.
    #[error("the session has expired; sign in again")]
    SessionExpired,
    /// Authenticated, but the role does not allow this; 403.
    #[error("this needs the {needs} role")]
    Forbidden {
        /// The role(s) needed, for the message.
        needs: &'static str,
    },
    /// Too many failed sign-ins from this client for this user; 429 with `Retry-After`.
    #[error("too many failed sign-ins; try again in {} seconds", retry_after_secs(*.retry_after))]
    Locked {
        /// How long the lock still holds.
        retry_after: Duration,
    },
    /// Reading or writing the auth file failed.
    #[error("cannot access {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The auth file is not valid JSON of the expected shape.
    #[error("{} is not a valid auth file: {source}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Argon2 failed (bad parameters or a malformed stored hash).
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    /// The operating system's random generator failed.
    #[error("the system random generator failed: {0}")]
    Random(getrandom::Error),
    /// A background task (blocking hash) failed or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Whole seconds to wait, rounded up, at least 1 (the `Retry-After` value).
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl From<argon2::password_hash::Error> for AuthError {
    fn from(e: argon2::password_hash::Error) -> AuthError {
        AuthError::Hash(e)
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> AuthError {
        AuthError::Random(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Invalid { field, .. } => ApiError::invalid(field, e.to_string()),
            AuthError::DuplicateUser(_) => ApiError::invalid("username", e.to_string()),
            AuthError::UnknownUser(name) => ApiError::NotFound(format!("user {name:?}")),
            AuthError::UnknownToken(id) => ApiError::NotFound(format!("API token {id:?}")),
            AuthError::BadCredentials
            | AuthError::Unauthenticated
            | AuthError::InvalidToken
            | AuthError::SessionExpired => ApiError::Unauthorized,
            AuthError::Forbidden { .. } => ApiError::Forbidden(e.to_string()),
            AuthError::Locked { retry_after } => ApiError::TooManyRequests {
                retry_after: retry_after_secs(retry_after),
            },
            AuthError::Io { .. }
            | AuthError::Corrupt { .. }
            | AuthError::Hash(_)
            | AuthError::Random(_)
            | AuthError::Task(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(0)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(60_001)), 61);
        assert_eq!(retry_after_secs(Duration::from_secs(900)), 900);
    }

    #[test]
    fn statuses() {
        let status = |e: AuthError| ApiError::from(e).status();
        assert_eq!(status(AuthError::BadCredentials), StatusCode::UNAUTHORIZED);
        assert_eq!(status(AuthError::InvalidToken), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(AuthError::Forbidden { needs: "admin" }),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(AuthError::Locked {
                retry_after: Duration::from_secs(3)
            }),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status(AuthError::DuplicateUser("a".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(AuthError::UnknownToken("a".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(AuthError::Task("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
