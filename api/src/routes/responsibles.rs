//! Responsible contacts: list, create, update, deactivate.
//!
//! The list comes from the system of record's current rows (the embedded ledger, or MySQL
//! with `--mysql`: 503 with `Retry-After` while MySQL is down) joined with the engine's
//! `responsible_load` view (open cases per contact) at the view store's tick. Writes answer
//! with the row as written.
//!
//! An admin links a contact to the user who works as it (`PUT /api/v1/responsibles/{id}/user`):
//! with `--auto-assign`, cases go to contacts whose user's session was seen recently. The link
//! lives in lpm's user store (`auth.json`), not in `responsible_contacts`, which is the source
//! schema other systems read through CDC.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use utoipa::openapi::{RefOr, Schema};

use super::dto::ResponsibleOut;
use crate::auth::{Caller, RequireAdmin, RequireWriter};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::input_schema::{nullable_required_text, optional_text, required_text};
use crate::json_integer::PathId;
use crate::state::AppState;
use lpm_service::sor::ledger::{Command, ResponsibleFields};

/// The responsible routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/responsibles",
            get(list_responsibles).post(create_responsible),
        )
        .route(
            "/api/v1/responsibles/{id}",
            patch(update_responsible).delete(deactivate_responsible),
        )
        .route("/api/v1/responsibles/{id}/user", put(link_user))
}

/// A contact with its current load.
#[derive(Serialize, ToSchema)]
pub struct ResponsibleWithLoad {
    /// The contact.
    #[serde(flatten)]
    pub contact: ResponsibleOut,
    /// Open or in-progress cases assigned to it.
    pub open_cases: i64,
    /// The user who works as this contact (set by admins; absent for read-only tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Auto-assignment's settings, for the UI (a manual assignment may exceed the cap).
#[derive(Serialize, ToSchema)]
pub struct AutoAssignInfo {
    /// Most open cases auto-assignment gives one responder (`--auto-assign-cap`).
    pub cap: i64,
    /// Seconds a session counts as present after its last request
    /// (`--auto-assign-session-ttl-s`).
    pub session_ttl_s: u64,
}

/// Every contact.
#[derive(Serialize, ToSchema)]
pub struct ResponsibleList {
    /// The view store tick of `open_cases`.
    pub tick: Option<u64>,
    /// Contacts by id.
    pub items: Vec<ResponsibleWithLoad>,
    /// Auto-assignment's settings; null when it is off.
    pub auto_assign: Option<AutoAssignInfo>,
}

/// The user to link to a contact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUserIn {
    /// A user name (`[a-z0-9._-]{1,64}`), or null to unlink the contact's user.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub user: Option<String>,
}

/// A contact's user link as written.
#[derive(Serialize, ToSchema)]
pub struct ContactUserOut {
    /// The contact.
    pub id: i64,
    /// Its user, or null.
    pub user: Option<String>,
}

/// Optional filters.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResponsibleFilter {
    /// `true`: only active contacts.
    pub active: Option<bool>,
}

/// A new contact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResponsibleIn {
    /// Name (not blank, at most 200 characters).
    #[schema(schema_with = name_schema)]
    pub full_name: String,
    /// Agency (not blank, at most 120 characters).
    #[schema(schema_with = agency_schema)]
    pub agency: String,
    /// Phone (at most 40 characters; blank or null: none).
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<String>,
    /// Email (at most 200 characters with an `@`; blank or null: none).
    #[serde(default)]
    #[schema(schema_with = email_schema)]
    pub email: Option<String>,
    /// Whether cases can be assigned to it (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

/// Changed fields of a contact, with the version you read. Absent or null: unchanged; a blank
/// phone or email clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsiblePatch {
    /// The version you read (a stale one answers 409).
    #[serde(deserialize_with = "crate::json_integer::whole")]
    pub version: i64,
    /// Name (not blank, at most 200 characters).
    #[serde(default)]
    #[schema(schema_with = optional_name_schema)]
    pub full_name: Option<String>,
    /// Agency (not blank, at most 120 characters).
    #[serde(default)]
    #[schema(schema_with = optional_agency_schema)]
    pub agency: Option<String>,
    /// Phone (at most 40 characters).
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub phone: Option<String>,
    /// Email (at most 200 characters with an `@`).
    #[serde(default)]
    #[schema(schema_with = email_schema)]
    pub email: Option<String>,
    /// Active.
    #[serde(default)]
    pub active: Option<bool>,
}

fn name_schema() -> RefOr<Schema> {
    required_text(200)
}
fn agency_schema() -> RefOr<Schema> {
    required_text(120)
}
fn optional_name_schema() -> RefOr<Schema> {
    nullable_required_text(200)
}
fn optional_agency_schema() -> RefOr<Schema> {
    nullable_required_text(120)
}
fn phone_schema() -> RefOr<Schema> {
    optional_text(40)
}
fn email_schema() -> RefOr<Schema> {
    crate::input_schema::email(200)
}

/// Deactivation needs the version too.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionParam {
    /// The version you read.
    #[serde(deserialize_with = "crate::json_integer::text")]
    pub version: i64,
}

/// Checks one text field: the limit counts the text as sent (as the OpenAPI `maxLength`
/// does), then it is trimmed; blank is an error when `required`, "clear" otherwise.
fn limited(
    field: &str,
    v: Option<String>,
    max: usize,
    required: bool,
) -> ApiResult<Option<String>> {
    if v.as_ref().is_some_and(|s| s.chars().count() > max) {
        return Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    match v.map(|s| s.trim().to_string()) {
        Some(s) if s.is_empty() && required => Err(ApiError::invalid(field, "must not be empty")),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// The fields of a create or a change, checked.
struct Fields {
    full_name: Option<String>,
    agency: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    active: Option<bool>,
}

impl Fields {
    fn check(self) -> ApiResult<ResponsibleFields> {
        let full_name = limited("full_name", self.full_name, 200, true)?;
        let agency = limited("agency", self.agency, 120, true)?;
        // absent = unchanged, empty = cleared
        let email = self
            .email
            .map(|e| limited("email", Some(e), 200, false))
            .transpose()?;
        if email
            .as_ref()
            .is_some_and(|e| e.as_ref().is_some_and(|e| !e.contains('@')))
        {
            return Err(ApiError::invalid("email", "not an email address"));
        }
        Ok(ResponsibleFields {
            full_name,
            agency,
            phone: self
                .phone
                .map(|p| limited("phone", Some(p), 40, false))
                .transpose()?,
            email,
            active: self.active,
        })
    }
}

/// List contacts with their open-case load.
/// Contact details only for callers who see personal data.
#[utoipa::path(get, path = "/api/v1/responsibles", params(ResponsibleFilter), tag = "responsibles",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "Every contact", body = ResponsibleList),
        (status = 400, description = "A malformed or unknown parameter", body = ErrorBody),
        (status = 503, description = "No system of record to list from (`--capture`, `--kafka`) or MySQL is down", body = ErrorBody)))]
pub async fn list_responsibles(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Query(f): Query<ResponsibleFilter>,
) -> ApiResult<axum::Json<ResponsibleList>> {
    let (tick, views) = state.engine.store().read_shared();
    let load: std::collections::HashMap<i64, i64> = views
        .responsible_load
        .iter()
        .map(|e| (e.id, e.open_cases))
        .collect();
    let personal = who.sees_personal_data();
    let users: std::collections::HashMap<i64, String> = if personal {
        let store = state.auth.store.clone();
        state
            .blocking(move || Ok(store.contact_links()))
            .await?
            .into_iter()
            .map(|(u, c)| (c, u))
            .collect()
    } else {
        Default::default()
    };
    // the contact list is the system of record's (capture mode has none yet: 503)
    let items = state
        .writer()?
        .responsibles()
        .await?
        .into_iter()
        .filter(|r| f.active.is_none_or(|a| a == r.active))
        .map(|r| ResponsibleWithLoad {
            open_cases: load.get(&r.id).copied().unwrap_or(0),
            user: users.get(&r.id).cloned(),
            contact: ResponsibleOut::new(&r, personal),
        })
        .collect();
    let auto_assign = state.auto_assign.as_ref().map(|a| AutoAssignInfo {
        cap: a.cap(),
        session_ttl_s: a.presence().ttl().as_secs(),
    });
    Ok(axum::Json(ResponsibleList {
        tick,
        items,
        auto_assign,
    }))
}

/// Link a contact to the user who works as it (`user`: null unlinks). A contact has one user
/// and a user one contact: earlier links of either are replaced. With `--auto-assign`, the
/// contact receives cases while that user's session is seen. Admins only.
#[utoipa::path(put, path = "/api/v1/responsibles/{id}/user", request_body = ContactUserIn,
    params(("id" = i64, Path, description = "Contact id")), tag = "responsibles",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The link as written", body = ContactUserOut),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Not an admin (a responder or a read-only token)", body = ErrorBody),
        (status = 404, description = "No such contact, or no user of that name", body = ErrorBody),
        (status = 422, description = "Not a user name (`field`: `user`)", body = ErrorBody),
        (status = 503, description = "Shutting down, or the system of record cannot be read", body = ErrorBody)))]
pub async fn link_user(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireAdmin(who): RequireAdmin,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<ContactUserIn>,
) -> ApiResult<axum::Json<ContactUserOut>> {
    state.refuse_writes_when_stopping()?;
    let exists = state
        .writer()?
        .responsibles()
        .await?
        .iter()
        .any(|r| r.id == id);
    if !exists {
        return Err(ApiError::NotFound(format!("responsible {id}")));
    }
    let store = state.auth.store.clone();
    let user = body.user.map(|u| u.trim().to_string());
    let (linked, actor) = (user.clone(), who.name);
    state
        .blocking(move || {
            match &linked {
                Some(u) => {
                    // a malformed name is a bad body; a well-formed one that is nobody's is a
                    // user that does not exist, like a contact that does not exist
                    crate::auth::validate_name(u)
                        .map_err(|e| ApiError::invalid("user", e.to_string()))?;
                    // an unknown user is the store's `UnknownUser`: a 404
                    store.set_contact(u, Some(id), &actor)?;
                }
                None => {
                    for (u, _) in store.contact_links().iter().filter(|(_, c)| *c == id) {
                        store.set_contact(u, None, &actor)?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    if let Some(p) = &state.auth.presence {
        match &user {
            Some(u) => p.set_link(u, Some(id)),
            None => {
                if let Some(u) = p.user_of(id) {
                    p.set_link(&u, None);
                }
            }
        }
    }
    Ok(axum::Json(ContactUserOut { id, user }))
}

async fn write(
    state: &AppState,
    who: String,
    cmd: Command,
    status: StatusCode,
) -> ApiResult<Response> {
    state.refuse_writes_when_stopping()?;
    let committed = state.submit(cmd, who).await?;
    let Some(lpm_engine::model::Row::Responsible(r)) = committed.row else {
        return Err(ApiError::Internal("written responsible is missing".into()));
    };
    Ok((status, axum::Json(ResponsibleOut::new(&r, true))).into_response())
}

/// Create a contact. Responders and admins.
#[utoipa::path(post, path = "/api/v1/responsibles", request_body = NewResponsibleIn, tag = "responsibles",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "The contact as written", body = ResponsibleOut,
            links(
                ("UpdateResponsible" = (operation_id = "update_responsible",
                    parameters(("id" = "$response.body#/id")),
                    request_body = json!({"version": "$response.body#/version"}))),
                ("DeactivateResponsible" = (operation_id = "deactivate_responsible",
                    parameters(("id" = "$response.body#/id"), ("version" = "$response.body#/version")))),
            )),
        (status = 400, description = "Malformed JSON or not `application/json`", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down, or the system of record refuses writes", body = ErrorBody)))]
pub async fn create_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Json(body): Json<NewResponsibleIn>,
) -> ApiResult<Response> {
    let fields = Fields {
        full_name: Some(body.full_name),
        agency: Some(body.agency),
        phone: body.phone,
        email: body.email,
        active: body.active,
    };
    let cmd = Command::CreateResponsible(fields.check()?);
    write(&state, who.name, cmd, StatusCode::CREATED).await
}

/// Update a contact (send only the fields to change, plus `version`). Responders and admins.
#[utoipa::path(patch, path = "/api/v1/responsibles/{id}", request_body = ResponsiblePatch,
    params(("id" = i64, Path, description = "Contact id")), tag = "responsibles",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The contact as written", body = ResponsibleOut),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "`version` is not the current one (`current_version` says which is)", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down, or the system of record refuses writes", body = ErrorBody)))]
pub async fn update_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<ResponsiblePatch>,
) -> ApiResult<Response> {
    let fields = Fields {
        full_name: body.full_name,
        agency: body.agency,
        phone: body.phone,
        email: body.email,
        active: body.active,
    };
    let cmd = Command::UpdateResponsible {
        id,
        version: body.version,
        fields: fields.check()?,
    };
    write(&state, who.name, cmd, StatusCode::OK).await
}

/// Deactivate a contact (it stays in history; new assignments are refused).
/// Responders and admins.
#[utoipa::path(delete, path = "/api/v1/responsibles/{id}", params(("id" = i64, Path, description = "Contact id"), VersionParam),
    tag = "responsibles", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The contact, now inactive", body = ResponsibleOut),
        (status = 400, description = "A bad id, or `version` missing or malformed", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "`version` is not the current one (`current_version` says which is)", body = ErrorBody),
        (status = 503, description = "Shutting down, or the system of record refuses writes", body = ErrorBody)))]
pub async fn deactivate_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Query(v): Query<VersionParam>,
) -> ApiResult<Response> {
    let cmd = Command::UpdateResponsible {
        id,
        version: v.version,
        fields: ResponsibleFields {
            active: Some(false),
            ..Default::default()
        },
    };
    write(&state, who.name, cmd, StatusCode::OK).await
}
