//! The OpenAPI 3 document, generated from the handlers' annotations and the body types.

use axum::Json;
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::{cases, dto, engine, reports, responsibles, views};

/// The REST API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Lost Persons Monitor API", description = "Reports, cases, responsibles and live views. Writes need a responder or admin session (cookie `lpm_session`) ; reads accept a read-only Bearer token, which never sees personal data."),
    paths(
        cases::create_report, cases::list_cases, cases::get_case, cases::update_case,
        cases::assign, cases::log_action,
        responsibles::list_responsibles, responsibles::create_responsible,
        responsibles::update_responsible, responsibles::deactivate_responsible,
        views::all_views, views::one_view, engine::engine,
        reports::case_report, reports::analytics_report,
    ),
    components(schemas(ErrorBody, dto::CaseDetailOut, dto::CaseOut, dto::PersonOut,
        dto::ResponsibleOut, dto::ActionOut, dto::HistoryOut, cases::ReportIn, cases::ActionIn,
        cases::CasePatch, cases::AssignIn, cases::Accepted, cases::CasePage,
        responsibles::ResponsibleIn, responsibles::ResponsibleList,
        responsibles::ResponsibleWithLoad, views::ViewsOut, views::ViewOut,
        views::SourcePosition, views::PartitionOffset, engine::EngineReport, engine::Freshness,
        engine::SourceReport, engine::LagDetail, engine::UpsertReport, engine::TableRows,
        engine::ArrangementReport)),
    tags((name = "cases"), (name = "responsibles"), (name = "views"), (name = "engine"),
        (name = "reports"))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
