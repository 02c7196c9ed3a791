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

use super::dto::ResponsibleOut;
use crate::auth::{Caller, RequireWriter};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::sor::ledger::{Command, ResponsibleFields};
use crate::state::AppState;

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

/// A new contact, or changed fields (PATCH requires `version`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsibleIn {
    /// The version you read (PATCH only).
    #[serde(default)]
    pub version: Option<i64>,
    /// Name (1-200).
    #[serde(default)]
    pub full_name: Option<String>,
    /// Agency (1-120).
    #[serde(default)]
    pub agency: Option<String>,
    /// Phone (up to 40).
    #[serde(default)]
    pub phone: Option<String>,
    /// Email (up to 200).
    #[serde(default)]
    pub email: Option<String>,
    /// Active.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Deactivation needs the version too.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionParam {
    /// The version you read.
    pub version: i64,
}

fn limited(
    field: &str,
    v: Option<String>,
    max: usize,
    required: bool,
) -> ApiResult<Option<String>> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if s.is_empty() && required => Err(ApiError::invalid(field, "must not be empty")),
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        )),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

impl ResponsibleIn {
    fn fields(self, creating: bool) -> ApiResult<ResponsibleFields> {
        let full_name = limited("full_name", self.full_name, 200, true)?;
        let agency = limited("agency", self.agency, 120, true)?;
        if creating && full_name.is_none() {
            return Err(ApiError::invalid("full_name", "required"));
        }
        if creating && agency.is_none() {
            return Err(ApiError::invalid("agency", "required"));
        }
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
#[utoipa::path(get, path = "/api/v1/responsibles", params(ResponsibleFilter), tag = "responsibles",
    responses((status = 200, body = ResponsibleList), (status = 401, body = ErrorBody)))]
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
    let committed = state.writer()?.submit(cmd, who).await?;
    let Some(lpm_engine::model::Row::Responsible(r)) = committed.row else {
        return Err(ApiError::Internal("written responsible is missing".into()));
    };
    Ok((status, axum::Json(ResponsibleOut::new(&r, true))).into_response())
}

/// Create a contact.
#[utoipa::path(post, path = "/api/v1/responsibles", request_body = ResponsibleIn, tag = "responsibles",
    responses((status = 201, body = ResponsibleOut), (status = 422, body = ErrorBody)))]
pub async fn create_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Json(body): Json<ResponsibleIn>,
) -> ApiResult<Response> {
    if body.version.is_some() {
        return Err(ApiError::invalid("version", "not allowed when creating"));
    }
    let cmd = Command::CreateResponsible(body.fields(true)?);
    write(&state, who.name, cmd, StatusCode::CREATED).await
}

/// Update a contact (send only the fields to change, plus `version`).
#[utoipa::path(patch, path = "/api/v1/responsibles/{id}", request_body = ResponsibleIn,
    params(("id" = i64, Path, description = "Contact id")), tag = "responsibles",
    responses((status = 200, body = ResponsibleOut), (status = 409, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(id): Path<i64>,
    Json(body): Json<ResponsibleIn>,
) -> ApiResult<Response> {
    let version = body
        .version
        .ok_or_else(|| ApiError::invalid("version", "required"))?;
    let fields = body.fields(false)?;
    let cmd = Command::UpdateResponsible {
        id,
        version,
        fields,
    };
    write(&state, who.name, cmd, StatusCode::OK).await
}

/// Deactivate a contact (it stays in history; new assignments are refused).
#[utoipa::path(delete, path = "/api/v1/responsibles/{id}", params(("id" = i64, Path, description = "Contact id"), VersionParam),
    tag = "responsibles", responses((status = 200, body = ResponsibleOut), (status = 409, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn deactivate_responsible(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(id): Path<i64>,
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
