//! Reports and cases: file a report (person + case at once), list cases with filters, read one
//! case with its timeline, change status/priority, assign a responsible, log an action.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lpm_engine::model::{Decimal, Priority, Status};
use lpm_engine::read::Listed;
use lpm_engine::views::{AgeBand, Gender};
use lpm_engine::CaseRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use utoipa::openapi::{RefOr, Schema};

use super::dto::{CaseDetailOut, CaseOut};
use crate::auth::{Caller, RequireWriter};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::input_schema::{
    csv_of, one_of, optional_text, required_text, ACTION_TYPES, AGE_BANDS, GENDERS, PRIORITIES,
    STATUSES,
};
use crate::json_integer::PathId;
use crate::state::{engine_error, AppState};
use crate::times::{parse_instant, parse_wall_clock};
use lpm_service::sor::ledger::{Command, NewAction, NewReport};
use lpm_service::sor::Visibility;

/// The case routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports", post(create_report))
        .route("/api/v1/cases", get(list_cases))
        .route("/api/v1/cases/{id}", get(get_case).patch(update_case))
        .route("/api/v1/cases/{id}/assignment", post(assign))
        .route("/api/v1/cases/{id}/actions", post(log_action))
}

/// A new report: the lost person, plus the case's priority and optional first responsible
/// and action.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    /// Full name (not blank, at most 200 characters).
    #[schema(schema_with = name_schema)]
    pub full_name: String,
    /// Age in years (0-150), omitted or null when unknown.
    #[serde(default, deserialize_with = "crate::json_integer::optional")]
    #[schema(minimum = 0, maximum = 150)]
    pub age: Option<i64>,
    /// `female`, `male`, `other` or `unknown`.
    #[schema(schema_with = gender_schema)]
    pub gender: String,
    /// Last seen: ISO-8601 with an offset (converted to the server's zone), or a local wall
    /// clock time without one (`2026-11-20T14:30`, `2026-11-20T14:30:00.5`,
    /// `2026-11-20 14:30:00`), taken as is.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// Where (not blank, at most 255 characters).
    #[schema(schema_with = place_schema)]
    pub last_seen_place: String,
    /// Latitude, -90..90, at most 6 decimals.
    #[serde(default)]
    #[schema(minimum = -90, maximum = 90, multiple_of = 0.000001)]
    pub latitude: Option<f64>,
    /// Longitude, -180..180, at most 6 decimals.
    #[serde(default)]
    #[schema(minimum = -180, maximum = 180, multiple_of = 0.000001)]
    pub longitude: Option<f64>,
    /// Description (at most 10 000 characters; blank means none).
    #[serde(default)]
    #[schema(schema_with = long_text_schema)]
    pub description: Option<String>,
    /// Who reports (at most 200 characters; blank means none).
    #[serde(default)]
    #[schema(schema_with = optional_name_schema)]
    pub reporter_name: Option<String>,
    /// Reporter phone (at most 40 characters; blank means none).
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub reporter_phone: Option<String>,
    /// `low`, `medium` (default), `high`, `critical`.
    #[serde(default)]
    #[schema(schema_with = optional_priority_schema)]
    pub priority: Option<String>,
    /// Assign this responsible right away (an active one).
    #[serde(default, deserialize_with = "crate::json_integer::optional")]
    pub responsible_id: Option<i64>,
    /// Log this action right away.
    #[serde(default)]
    pub first_action: Option<ActionIn>,
}

/// An action to log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// `note`, `search`, `call` or `sighting`.
    #[schema(schema_with = action_type_schema)]
    pub action_type: String,
    /// Free text (at most 10 000 characters; blank means none).
    #[serde(default)]
    #[schema(schema_with = long_text_schema)]
    pub notes: Option<String>,
    /// Who did it (default: the case's responsible).
    #[serde(default, deserialize_with = "crate::json_integer::optional")]
    pub responsible_id: Option<i64>,
}

/// A status and/or priority change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    /// The version you read (optimistic concurrency; a stale one answers 409).
    #[serde(deserialize_with = "crate::json_integer::whole")]
    pub version: i64,
    /// New status.
    #[serde(default)]
    #[schema(schema_with = optional_status_schema)]
    pub status: Option<String>,
    /// New priority.
    #[serde(default)]
    #[schema(schema_with = optional_priority_schema)]
    pub priority: Option<String>,
    /// `true` publishes the case (its public page and poster; `case.public_url` says where),
    /// `false` unpublishes it (the page answers 404; the link comes back on republishing).
    #[serde(default)]
    pub public: Option<bool>,
}

/// An assignment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    /// The version you read.
    #[serde(deserialize_with = "crate::json_integer::whole")]
    pub version: i64,
    /// The new responsible (must be active).
    #[serde(deserialize_with = "crate::json_integer::whole")]
    pub responsible_id: i64,
}

fn name_schema() -> RefOr<Schema> {
    required_text(200)
}
pub(super) fn place_schema() -> RefOr<Schema> {
    required_text(255)
}
pub(super) fn optional_name_schema() -> RefOr<Schema> {
    optional_text(200)
}
pub(super) fn phone_schema() -> RefOr<Schema> {
    optional_text(40)
}
pub(super) fn long_text_schema() -> RefOr<Schema> {
    optional_text(10_000)
}
fn gender_schema() -> RefOr<Schema> {
    one_of(&GENDERS, false)
}
fn action_type_schema() -> RefOr<Schema> {
    one_of(&ACTION_TYPES, false)
}
fn optional_priority_schema() -> RefOr<Schema> {
    one_of(&PRIORITIES, true)
}
fn optional_status_schema() -> RefOr<Schema> {
    one_of(&STATUSES, true)
}

/// What a write answers when the engine has not shown it within the wait (HTTP 202).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The written row's id.
    pub id: i64,
    /// Its new version.
    pub version: Option<i64>,
    /// The tick that will show it.
    pub tick: u64,
    /// Always false: poll the Location.
    pub visible: bool,
}

/// The length limit counts the text as sent, before trimming, as the OpenAPI `maxLength`
/// does ([`required_text`]).
pub(super) fn text(field: &str, v: String, max: usize) -> ApiResult<String> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        ));
    }
    let t = v.trim();
    if t.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    Ok(t.to_string())
}

/// Blank is none; the limit counts the text as sent ([`optional_text`]).
pub(super) fn opt_text(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        )),
        Some(s) if !s.trim().is_empty() => text(field, s, max).map(Some),
        _ => Ok(None),
    }
}

/// A coordinate of at most 6 decimals, read as a person reads the JSON number: its shortest
/// decimal text (Rust's `Display`, which never uses an exponent) has at most 6 digits after the
/// point. This is what the OpenAPI `multipleOf: 0.000001` means to JSON Schema validators that
/// compare decimals; a tolerance on the binary value would accept `5e-324` as `0`.
pub(super) fn coordinate(field: &str, v: Option<f64>, limit: f64) -> ApiResult<Option<Decimal>> {
    let Some(v) = v else { return Ok(None) };
    if !v.is_finite() || v.abs() > limit {
        return Err(ApiError::invalid(field, format!("must be within ±{limit}")));
    }
    let text = v.to_string();
    if text
        .split_once('.')
        .is_some_and(|(_, fraction)| fraction.len() > 6)
    {
        return Err(ApiError::invalid(field, "at most 6 decimals"));
    }
    let unscaled = (v * 1e6).round();
    Ok(Some(Decimal {
        unscaled: unscaled as i128,
        scale: 6,
    }))
}

/// Parses a known status.
pub fn status(field: &str, s: &str) -> ApiResult<Status> {
    match Status::parse(s) {
        Status::Other(_) => Err(ApiError::invalid(
            field,
            "unknown status: expected open, in_progress, found_alive, found_deceased or closed",
        )),
        st => Ok(st),
    }
}

/// Parses a known priority.
pub fn priority(field: &str, s: &str) -> ApiResult<Priority> {
    match Priority::parse(s) {
        Priority::Other(_) => Err(ApiError::invalid(
            field,
            "unknown priority: expected low, medium, high or critical",
        )),
        p => Ok(p),
    }
}

fn action(field: &str, a: ActionIn) -> ApiResult<NewAction> {
    if !ACTION_TYPES.contains(&a.action_type.as_str()) {
        return Err(ApiError::invalid(
            format!("{field}action_type"),
            "unknown action type: expected note, search, call or sighting",
        ));
    }
    Ok(NewAction {
        action_type: a.action_type,
        notes: opt_text(&format!("{field}notes"), a.notes, 10_000)?,
        responsible_id: a.responsible_id,
    })
}

impl ReportIn {
    fn validate(self, tz: &chrono_tz::Tz) -> ApiResult<NewReport> {
        if let Some(age) = self.age {
            if !(0..=150).contains(&age) {
                return Err(ApiError::invalid("age", "must be between 0 and 150"));
            }
        }
        let gender = self.gender.trim().to_lowercase();
        if !GENDERS.contains(&gender.as_str()) {
            return Err(ApiError::invalid(
                "gender",
                "expected female, male, other or unknown",
            ));
        }
        Ok(NewReport {
            full_name: text("full_name", self.full_name, 200)?,
            age: self.age,
            gender,
            last_seen_at: parse_wall_clock("last_seen_at", &self.last_seen_at, tz)?,
            last_seen_place: text("last_seen_place", self.last_seen_place, 255)?,
            latitude: coordinate("latitude", self.latitude, 90.0)?,
            longitude: coordinate("longitude", self.longitude, 180.0)?,
            description: opt_text("description", self.description, 10_000)?,
            reporter_name: opt_text("reporter_name", self.reporter_name, 200)?,
            reporter_phone: opt_text("reporter_phone", self.reporter_phone, 40)?,
            priority: match self.priority.as_deref() {
                Some(p) => priority("priority", p)?,
                None => Priority::Medium,
            },
            responsible_id: self.responsible_id,
            first_action: self
                .first_action
                .map(|a| action("first_action.", a))
                .transpose()?,
            reported_at: None,
        })
    }
}

/// Runs a write and answers with the case as the engine shows it (201/200), or 202 with a
/// Location when the engine has not caught up within the wait.
pub(super) async fn write_case(
    state: &AppState,
    who: String,
    cmd: Command,
    created: bool,
) -> ApiResult<Response> {
    state.refuse_writes_when_stopping()?;
    let committed = state.submit(cmd, who).await?;
    let case_id = committed.case_id;
    let location = format!("/api/v1/cases/{case_id}");
    let st = state.clone();
    let (tick, not_yet) = (committed.tick, committed.visibility == Visibility::NotYet);
    let detail = state
        .blocking(move || {
            let store = st.engine.store().clone();
            if not_yet || !store.wait_for(tick, st.config.visible_timeout) {
                return Ok(None);
            }
            st.engine
                .case(case_id, st.config.read_timeout)
                .map_err(engine_error)
        })
        .await?;
    match detail {
        Some(d) => {
            // its link works as soon as this answers, before the index thread sees the tick
            if let Some(id) = &d.record.case.public_id {
                state.public.index.insert(id, d.record.case.id);
            }
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((
                status,
                [(header::LOCATION, location)],
                axum::Json(CaseDetailOut::new(&d, true, &state.config.public_base_url)),
            )
                .into_response())
        }
        None => Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            axum::Json(Accepted {
                id: committed.id,
                version: committed.version,
                tick: committed.tick,
                visible: false,
            }),
        )
            .into_response()),
    }
}

/// File a report: creates the person and its case atomically. Responders and admins; a
/// read-only token gets 403. 422 also when `responsible_id` names no active contact.
#[utoipa::path(post, path = "/api/v1/reports", request_body = ReportIn, tag = "cases",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "The case as the engine shows it", body = CaseDetailOut,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`")),
            links(
                ("GetCase" = (operation_id = "get_case", parameters(("id" = "$response.body#/case/id")))),
                ("UpdateCase" = (operation_id = "update_case",
                    parameters(("id" = "$response.body#/case/id")),
                    request_body = json!({"version": "$response.body#/case/version"}))),
                ("Assign" = (operation_id = "assign",
                    parameters(("id" = "$response.body#/case/id")),
                    request_body = json!({"version": "$response.body#/case/version"}))),
                ("LogAction" = (operation_id = "log_action", parameters(("id" = "$response.body#/case/id")))),
                ("AddSighting" = (operation_id = "add_sighting", parameters(("id" = "$response.body#/case/id")))),
                ("CaseReport" = (operation_id = "case_report", parameters(("id" = "$response.body#/case/id")))),
            )),
        (status = 202, description = "Written, not yet visible: poll the Location", body = Accepted,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 400, description = "Malformed JSON or not `application/json`", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down or the log refuses writes", body = ErrorBody)))]
pub async fn create_report(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Json(body): Json<ReportIn>,
) -> ApiResult<Response> {
    let report = body.validate(&state.config.tz)?;
    write_case(
        &state,
        who.name,
        Command::CreateReport(Box::new(report)),
        true,
    )
    .await
}

/// Case list filters. Lists take comma-separated values.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    /// Statuses, e.g. `open,in_progress`.
    #[param(schema_with = status_list_schema)]
    pub status: Option<String>,
    /// Priorities, e.g. `high,critical`.
    #[param(schema_with = priority_list_schema)]
    pub priority: Option<String>,
    /// Only cases of this responsible.
    #[serde(default, deserialize_with = "crate::json_integer::optional_text")]
    pub responsible_id: Option<i64>,
    /// `true`: only cases without a responsible.
    pub unassigned: Option<bool>,
    /// Age bands, e.g. `0-11,12-17`.
    #[param(schema_with = age_band_list_schema)]
    pub age_band: Option<String>,
    /// Genders.
    #[param(schema_with = gender_list_schema)]
    pub gender: Option<String>,
    /// `true`: only minors.
    pub minor: Option<bool>,
    /// Text in the person's name or last-seen place (case-insensitive). Needs personal-data
    /// access: a read-only token gets 403.
    pub q: Option<String>,
    /// Opened at or after (epoch ms or ISO-8601 with an offset).
    #[param(schema_with = instant_schema)]
    pub opened_from: Option<String>,
    /// Opened before (epoch ms or ISO-8601 with an offset).
    #[param(schema_with = instant_schema)]
    pub opened_to: Option<String>,
    /// `opened_at` (default), `id`, `priority`, `status`, `age`.
    #[param(schema_with = sort_schema)]
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[param(schema_with = order_schema)]
    pub order: Option<String>,
    /// Page, from 1 (at most 1 000 000 000).
    #[param(minimum = 1, maximum = 1_000_000_000)]
    #[serde(default, deserialize_with = "crate::json_integer::optional_text")]
    pub page: Option<usize>,
    /// Items per page, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    #[serde(default, deserialize_with = "crate::json_integer::optional_text")]
    pub per_page: Option<usize>,
}

fn status_list_schema() -> RefOr<Schema> {
    csv_of(&STATUSES)
}
fn priority_list_schema() -> RefOr<Schema> {
    csv_of(&PRIORITIES)
}
fn age_band_list_schema() -> RefOr<Schema> {
    csv_of(&AGE_BANDS)
}
fn gender_list_schema() -> RefOr<Schema> {
    csv_of(&GENDERS)
}
fn instant_schema() -> RefOr<Schema> {
    crate::input_schema::instant()
}
fn sort_schema() -> RefOr<Schema> {
    one_of(&["opened_at", "id", "priority", "status", "age"], false)
}
fn order_schema() -> RefOr<Schema> {
    one_of(&["asc", "desc"], false)
}

/// The largest page number: a bound the OpenAPI document can state (any larger number is an
/// empty page anyway, and a number past `usize` would otherwise be a parse error).
const MAX_PAGE: usize = 1_000_000_000;

/// One page of cases, all read at one tick.
#[derive(Serialize, ToSchema)]
pub struct CasePage {
    /// The engine tick.
    pub tick: u64,
    /// Matching cases in all pages.
    pub total: usize,
    /// This page.
    pub page: usize,
    /// Page size.
    pub per_page: usize,
    /// The cases.
    pub items: Vec<CaseOut>,
}

fn csv<T>(
    field: &str,
    v: &Option<String>,
    parse: impl Fn(&str) -> ApiResult<T>,
) -> ApiResult<Option<Vec<T>>> {
    let Some(v) = v else { return Ok(None) };
    let items: ApiResult<Vec<T>> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(&parse)
        .collect();
    let items = items.map_err(|e| match e {
        ApiError::Unprocessable { message, .. } => ApiError::invalid(field, message),
        other => other,
    })?;
    Ok(Some(items))
}

fn age_band(s: &str) -> ApiResult<AgeBand> {
    AgeBand::ALL
        .into_iter()
        .find(|b| b.label() == s)
        .ok_or_else(|| {
            ApiError::invalid(
                "age_band",
                "expected 0-11, 12-17, 18-29, 30-44, 45-59, 60+ or unknown",
            )
        })
}

fn gender(s: &str) -> ApiResult<Gender> {
    Gender::ALL
        .into_iter()
        .find(|g| g.label() == s)
        .ok_or_else(|| ApiError::invalid("gender", "expected female, male, other or unknown"))
}

/// The compiled filter, run on the engine's workers.
struct Predicate {
    status: Option<Vec<Status>>,
    priority: Option<Vec<Priority>>,
    responsible_id: Option<i64>,
    unassigned: Option<bool>,
    age_band: Option<Vec<AgeBand>>,
    gender: Option<Vec<Gender>>,
    minor: Option<bool>,
    q: Option<String>,
    opened_from: Option<i64>,
    opened_to: Option<i64>,
}

impl Predicate {
    fn matches(&self, r: &CaseRecord) -> bool {
        let c = &r.case;
        let age = r.person.as_ref().and_then(|p| p.age);
        let g = r
            .person
            .as_ref()
            .map_or(Gender::Unknown, |p| Gender::normalise(&p.gender));
        self.status.as_ref().is_none_or(|s| s.contains(&c.status))
            && self
                .priority
                .as_ref()
                .is_none_or(|p| p.contains(&c.priority))
            && self
                .responsible_id
                .is_none_or(|id| c.responsible_id == Some(id))
            && self
                .unassigned
                .is_none_or(|u| u == c.responsible_id.is_none())
            && self
                .age_band
                .as_ref()
                .is_none_or(|b| b.contains(&AgeBand::of(age)))
            && self.gender.as_ref().is_none_or(|gs| gs.contains(&g))
            && self
                .minor
                .is_none_or(|m| m == lpm_engine::views::is_minor(age))
            && self.opened_from.is_none_or(|t| c.opened_at >= t)
            && self.opened_to.is_none_or(|t| c.opened_at < t)
            && self.q.as_ref().is_none_or(|q| {
                r.person.as_ref().is_some_and(|p| {
                    p.full_name.to_lowercase().contains(q)
                        || p.last_seen_place.to_lowercase().contains(q)
                })
            })
    }
}

fn priority_rank(p: &Priority) -> usize {
    Priority::KNOWN
        .iter()
        .position(|k| k == p)
        .unwrap_or(usize::MAX)
}

fn status_rank(s: &Status) -> usize {
    Status::KNOWN
        .iter()
        .position(|k| k == s)
        .unwrap_or(usize::MAX)
}

/// List cases with filters, sorting and paging; every item is read at one tick. Read-only
/// tokens get the anonymised rows and may not search (`q`: 403).
#[utoipa::path(get, path = "/api/v1/cases", params(CaseFilter), tag = "cases",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "One page", body = CasePage),
        (status = 400, description = "A malformed or unknown parameter", body = ErrorBody),
        (status = 403, description = "`q` with a read-only token", body = ErrorBody),
        (status = 422, description = "An unknown value; `field` names it", body = ErrorBody),
        (status = 503, description = "The engine did not answer in time", body = ErrorBody)))]
pub async fn list_cases(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Query(f): Query<CaseFilter>,
) -> ApiResult<axum::Json<CasePage>> {
    let personal = who.sees_personal_data();
    if f.q.is_some() && !personal {
        return Err(ApiError::Forbidden(
            "text search needs personal-data access (q)".into(),
        ));
    }
    let per_page = f.per_page.unwrap_or(50);
    if !(1..=200).contains(&per_page) {
        return Err(ApiError::invalid("per_page", "must be between 1 and 200"));
    }
    let page = f.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::invalid("page", "pages start at 1"));
    }
    if page > MAX_PAGE {
        return Err(ApiError::invalid(
            "page",
            format!("must be at most {MAX_PAGE}"),
        ));
    }
    let sort = f.sort.clone().unwrap_or_else(|| "opened_at".into());
    if !["opened_at", "id", "priority", "status", "age"].contains(&sort.as_str()) {
        return Err(ApiError::invalid(
            "sort",
            "expected opened_at, id, priority, status or age",
        ));
    }
    let desc = match f.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::invalid("order", "expected asc or desc")),
    };
    let pred = Predicate {
        status: csv("status", &f.status, |s| status("status", s))?,
        priority: csv("priority", &f.priority, |s| priority("priority", s))?,
        responsible_id: f.responsible_id,
        unassigned: f.unassigned,
        age_band: csv("age_band", &f.age_band, age_band)?,
        gender: csv("gender", &f.gender, gender)?,
        minor: f.minor,
        q: f.q
            .as_ref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty()),
        opened_from: f
            .opened_from
            .as_deref()
            .map(|t| parse_instant("opened_from", t))
            .transpose()?,
        opened_to: f
            .opened_to
            .as_deref()
            .map(|t| parse_instant("opened_to", t))
            .transpose()?,
    };
    let pred = Arc::new(pred);
    let st = state.clone();
    let (tick, mut items) = state
        .blocking(move || {
            st.engine
                .listed(Arc::new(move |r| pred.matches(r)), st.config.read_timeout)
                .map_err(engine_error)
        })
        .await?;
    let key = |l: &Listed| -> (i64, usize, i64) {
        let (r, c) = (&l.record, &l.record.case);
        match sort.as_str() {
            "priority" => (0, priority_rank(&c.priority), c.opened_at),
            "status" => (0, status_rank(&c.status), c.opened_at),
            "age" => (
                r.person.as_ref().and_then(|p| p.age).unwrap_or(-1),
                0,
                c.opened_at,
            ),
            "id" => (c.id, 0, 0),
            _ => (c.opened_at, 0, 0),
        }
    };
    items.sort_by(|a, b| {
        let o = key(a)
            .cmp(&key(b))
            .then(a.record.case.id.cmp(&b.record.case.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let total = items.len();
    let out = items
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|l| {
            CaseOut::new(
                &l.record,
                l.sightings,
                personal,
                &state.config.public_base_url,
            )
        })
        .collect();
    Ok(axum::Json(CasePage {
        tick,
        total,
        page,
        per_page,
        items: out,
    }))
}

/// One case with its person, responsible, actions and responsible history.
#[utoipa::path(get, path = "/api/v1/cases/{id}", params(("id" = i64, Path, description = "Case id")),
    tag = "cases", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The case at one tick", body = CaseDetailOut),
        (status = 400, description = "The id is not a 64-bit integer", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 503, description = "The engine did not answer in time", body = ErrorBody)))]
pub async fn get_case(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(PathId(id)): Path<PathId>,
) -> ApiResult<axum::Json<CaseDetailOut>> {
    let st = state.clone();
    let detail = state
        .blocking(move || {
            st.engine
                .case(id, st.config.read_timeout)
                .map_err(engine_error)
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("case {id}")))?;
    Ok(axum::Json(CaseDetailOut::new(
        &detail,
        who.sees_personal_data(),
        &state.config.public_base_url,
    )))
}

/// Change status and/or priority (valid transitions only; `closed_at` follows the status),
/// and publish or unpublish the case (`public`). Responders and admins; 422 for a transition
/// the status does not allow.
#[utoipa::path(patch, path = "/api/v1/cases/{id}", request_body = CasePatch,
    params(("id" = i64, Path, description = "Case id")), tag = "cases",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The case as the engine shows it", body = CaseDetailOut,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`")),
            links(("GetCase" = (operation_id = "get_case", parameters(("id" = "$response.body#/case/id")))))),
        (status = 202, description = "Written, not yet visible: poll the Location", body = Accepted,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "`version` is not the current one (`current_version` says which is)", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down or the log refuses writes", body = ErrorBody)))]
pub async fn update_case(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<CasePatch>,
) -> ApiResult<Response> {
    let cmd = Command::UpdateCase {
        case_id: id,
        version: body.version,
        status: body
            .status
            .as_deref()
            .map(|s| status("status", s))
            .transpose()?,
        priority: body
            .priority
            .as_deref()
            .map(|p| priority("priority", p))
            .transpose()?,
        public: body.public,
    };
    write_case(&state, who.name, cmd, false).await
}

/// Assign a responsible: closes the open history row, opens a new one, logs an action.
/// Responders and admins; 422 when the responsible is unknown, inactive or already assigned.
#[utoipa::path(post, path = "/api/v1/cases/{id}/assignment", request_body = AssignIn,
    params(("id" = i64, Path, description = "Case id")), tag = "cases",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The case as the engine shows it", body = CaseDetailOut,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`")),
            links(("GetCase" = (operation_id = "get_case", parameters(("id" = "$response.body#/case/id")))))),
        (status = 202, description = "Written, not yet visible: poll the Location", body = Accepted,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "`version` is not the current one (`current_version` says which is)", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down or the log refuses writes", body = ErrorBody)))]
pub async fn assign(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<AssignIn>,
) -> ApiResult<Response> {
    let cmd = Command::Assign {
        case_id: id,
        version: body.version,
        responsible_id: body.responsible_id,
    };
    write_case(&state, who.name, cmd, false).await
}

/// Log an action on a case.
/// Responders and admins; 422 when `responsible_id` names no contact.
#[utoipa::path(post, path = "/api/v1/cases/{id}/actions", request_body = ActionIn,
    params(("id" = i64, Path, description = "Case id")), tag = "cases",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "The case with the new action", body = CaseDetailOut,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 202, description = "Written, not yet visible: poll the Location", body = Accepted,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down or the log refuses writes", body = ErrorBody)))]
pub async fn log_action(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<ActionIn>,
) -> ApiResult<Response> {
    let cmd = Command::LogAction {
        case_id: id,
        action: action("", body)?,
    };
    write_case(&state, who.name, cmd, true).await
}
