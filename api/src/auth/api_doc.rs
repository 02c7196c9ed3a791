//! The OpenAPI description of the auth routes' bodies. The handlers ([`super::routes`]) read
//! their bodies as JSON objects field by field, so that a missing, mistyped or unknown field is
//! a 400 naming it; these types only describe those objects, with the rules the store applies
//! (`validate_name`, `validate_password`, `validate_label`), and the contract tests check the
//! two agree.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::{Role, Via};
use crate::input_schema::WHITESPACE;

/// `POST /api/v1/session`: any strings; a wrong pair is a 401 that does not say which part.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Who signed in (`POST /api/v1/session`) or was created (`POST /api/v1/users`).
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// The user name.
    pub user: String,
    /// The role.
    pub role: Role,
}

/// `GET /api/v1/session`: who is calling and what they may do.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The user name, or `token:<id>` for an API token.
    pub user: String,
    /// The role.
    pub role: Role,
    /// How the caller proved it.
    pub via: Via,
    /// Whether the caller may write (responder, admin).
    pub can_write: bool,
    /// Whether the caller sees personal data (responder, admin).
    pub sees_personal_data: bool,
}

/// `POST /api/v1/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`; not taken yet (422 otherwise).
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub username: String,
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    /// `admin` or `responder` (read-only access is an API token).
    #[schema(schema_with = user_role_schema)]
    pub role: String,
}

fn user_role_schema() -> RefOr<Schema> {
    crate::input_schema::one_of(&["admin", "responder"], false)
}

/// `POST /api/v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenIn {
    /// What it is for: 1 to 64 characters, no control characters, not blank.
    #[schema(schema_with = label_schema)]
    pub label: String,
}

/// The token label rule: printable (`char::is_control` is Unicode `Cc`: U+0000-U+001F,
/// U+007F-U+009F), at most 64 characters, holding at least one character `trim` keeps.
fn label_schema() -> RefOr<Schema> {
    let printable = "[^\\u0000-\\u001f\\u007f-\\u009f]";
    let kept = format!("[^\\u0000-\\u001f\\u007f-\\u009f{WHITESPACE}]");
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some(format!("^{printable}*{kept}{printable}*$")))
        .into()
}

/// `POST /api/v1/tokens` answer: the only time the token is shown.
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    /// The id, for listing and revoking.
    pub id: String,
    /// The token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The label.
    pub label: String,
}
