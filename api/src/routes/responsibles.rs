//! Responsible contacts: list, create, update, deactivate.
//!
//! The list comes from the system of record's current rows (the embedded ledger, or MySQL
//! with `--mysql`: 503 with `Retry-After` while MySQL is down) joined with the engine's
//! `responsible_load` view (open cases per contact) at the view store's tick. Writes answer
//! with the row as written.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use utoipa::openapi::{RefOr, Schema};

use super::dto::ResponsibleOut;
use crate::auth::{Caller, RequireWriter};
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
}

/// A contact with its current load.
#[derive(Serialize, ToSchema)]
pub struct ResponsibleWithLoad {
    /// The contact.
    #[serde(flatten)]
    pub contact: ResponsibleOut,
    /// Open or in-progress cases assigned to it.
    pub open_cases: i64,
}

/// Every contact.
#[derive(Serialize, ToSchema)]
pub struct ResponsibleList {
    /// The view store tick of `open_cases`.
    pub tick: Option<u64>,
    /// Contacts by id.
    pub items: Vec<ResponsibleWithLoad>,
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
    // the contact list is the system of record's (capture mode has none yet: 503)
    let items = state
        .writer()?
        .responsibles()
        .await?
        .into_iter()
        .filter(|r| f.active.is_none_or(|a| a == r.active))
        .map(|r| ResponsibleWithLoad {
            open_cases: load.get(&r.id).copied().unwrap_or(0),
            contact: ResponsibleOut::new(&r, personal),
        })
        .collect();
    Ok(axum::Json(ResponsibleList { tick, items }))
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
