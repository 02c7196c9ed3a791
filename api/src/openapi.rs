//! The OpenAPI 3.1 document, generated from the handlers' annotations and the body types.
//!
//! It lists every route under `/api/v1` and `/grafana` (the web UI, `/healthz`, `/readyz` and
//! `/metrics` are not part of the API), every status each can answer and the credentials each
//! takes. `scripts/contract.sh` runs schemathesis against it on a demo server, so what it says
//! is checked against what the server does. [`Conventions`] adds what is true of every route
//! alike (the 401 of authenticated routes, the 413 of bodies, the headers of JSON answers), so
//! the annotations on the handlers hold what is particular to each.

use axum::Json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::auth::{self, api_doc as auth_doc};
use crate::error::{ErrorBody, ErrorCode};
use crate::grafana::{self, api_doc as grafana_doc};
use crate::routes::{cases, dto, engine, hotspots, reports, responsibles, sightings, views};

/// The REST API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Lost Persons Monitor API", description = "Reports, cases, responsibles, live views and the Grafana data source. \
Writes need a responder or admin session (cookie `lpm_session`, from `POST /api/v1/session`); reads also accept a read-only API token \
(`Authorization: Bearer lpm_...`), which never sees personal data and gets 403 on writes, admin routes and personal-data reads. \
Errors are `{error, field}` (plus `current_version` on a 409)."),
    paths(
        auth::routes::sign_in, auth::routes::who_am_i, auth::routes::sign_out,
        auth::routes::list_users, auth::routes::create_user,
        auth::routes::list_tokens, auth::routes::create_token, auth::routes::revoke_token,
        cases::create_report, cases::list_cases, cases::get_case, cases::update_case,
        cases::assign, cases::log_action, sightings::add_sighting,
        responsibles::list_responsibles, responsibles::create_responsible,
        responsibles::update_responsible, responsibles::deactivate_responsible,
        responsibles::link_user,
        views::all_views, views::one_view, hotspots::hotspots, engine::engine,
        reports::case_report, reports::case_poster, reports::analytics_report,
        crate::stream::handler, document,
        grafana::protocol::health, grafana::protocol::metrics, grafana::protocol::search,
        grafana::protocol::payload_options, grafana::protocol::query,
        grafana::protocol::variable, grafana::protocol::tag_keys,
        grafana::protocol::tag_values, grafana::rows::get_rows, grafana::rows::post_rows,
    ),
    components(schemas(ErrorBody, ErrorCode, dto::CaseDetailOut, dto::CaseOut, dto::PersonOut,
        dto::ResponsibleOut, dto::ActionOut, dto::NoteOut, dto::HistoryOut, dto::SightingOut, cases::ReportIn, cases::ActionIn,
        sightings::SightingIn,
        cases::CasePatch, cases::AssignIn, cases::Accepted, cases::CasePage,
        responsibles::NewResponsibleIn, responsibles::ResponsiblePatch,
        responsibles::ResponsibleList,
        responsibles::ResponsibleWithLoad, responsibles::AutoAssignInfo,
        responsibles::ContactUserIn, responsibles::ContactUserOut, dto::AssignMode, views::ViewsOut, views::ViewOut,
        hotspots::HotspotsOut, hotspots::HotspotCell, hotspots::HotspotsGeoJson, hotspots::HotspotRow, hotspots::HotspotsJson,
        views::SourcePosition, views::PartitionOffset, engine::EngineReport, engine::Freshness,
        engine::SourceStatus, engine::LagDetail, engine::UpsertReport, engine::TableRows,
        engine::ArrangementReport, engine::CheckpointReport, engine::NewestCheckpoint, auth::Role, auth::Via, auth::UserInfo, auth::TokenInfo,
        auth_doc::SignIn, auth_doc::SignedIn, auth_doc::WhoAmI, auth_doc::NewUser,
        auth_doc::NewTokenIn, auth_doc::TokenCreated, grafana_doc::Knobs,
        grafana_doc::RowsRequest, grafana_doc::QueryRange, grafana_doc::QueryTarget,
        grafana_doc::AdhocFilterDoc, grafana_doc::QueryRequestDoc,
        grafana_doc::PayloadOptionsDoc, grafana_doc::VariableRequestDoc,
        grafana_doc::TagValuesDoc)),
    modifiers(&Conventions),
    tags((name = "auth", description = "Sessions, users and API tokens"), (name = "cases"),
        (name = "responsibles"), (name = "views"), (name = "engine"), (name = "reports"),
        (name = "stream", description = "The live WebSocket"),
        (name = "grafana", description = "The Grafana JSON data source and Infinity rows"),
        (name = "meta"))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this document. Needs no credentials.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn document() -> Json<serde_json::Value> {
    Json(spec())
}

/// The document as JSON, with the schemas utoipa's types cannot hold
/// ([`grafana_doc::adhoc_filter`], [`grafana_doc::query_target`]). utoipa 5.5 also writes a link's `operationId` and `requestBody` in
/// snake case (`operation_id`, `request_body`), which OpenAPI tools do not read, so they are
/// renamed here.
pub fn spec() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        schemas.insert("AdhocFilterDoc".into(), grafana_doc::adhoc_filter());
        if let Some(target) = schemas.get("QueryTarget").cloned() {
            schemas.insert("QueryTarget".into(), grafana_doc::query_target(&target));
        }
    }
    if let Some(paths) = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for link in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("responses")?.as_object_mut())
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links")?.as_object_mut())
            .flat_map(|links| links.values_mut())
            .filter_map(serde_json::Value::as_object_mut)
        {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.into(), v);
                }
            }
        }
    }
    doc
}

/// What is true of every route alike; see the module docs.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The session of a signed-in person (`POST /api/v1/session`)",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // `/grafana/` answers like `/grafana` (Grafana appends the slash to the data source URL)
        if let Some(item) = doc.paths.paths.get("/grafana").cloned() {
            let mut slash = item;
            if let Some(op) = slash.get.as_mut() {
                op.operation_id = Some("health_slash".into());
            }
            doc.paths.paths.insert("/grafana/".into(), slash);
        }
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                conventions(op);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.patch.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorBody",
            ))))
            .build(),
    )
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
        .description(Some(description))
        .build()
}

/// Adds the statuses and headers every route of a kind shares.
fn conventions(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let responses = &mut op.responses.responses;
    if secured {
        responses.entry("401".into()).or_insert_with(|| {
            error_response("No valid credentials: no session or token, an expired session, or an invalid or revoked token")
                .header("WWW-Authenticate", string_header("`Bearer`"))
                .build()
                .into()
        });
    }
    if op.request_body.is_some() {
        responses.entry("413".into()).or_insert_with(|| {
            error_response("The body is larger than `--max-body-bytes`")
                .build()
                .into()
        });
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status == "429" || status == "503" {
            add_header(
                response,
                "Retry-After",
                "Seconds to wait before trying again",
            );
        }
        if response.content.get("application/json").is_some() {
            add_header(
                response,
                "Cache-Control",
                "`no-store`: API answers are not cached",
            );
            add_header(
                response,
                "X-Content-Type-Options",
                "`nosniff`: the type is the declared one",
            );
        }
    }
}

fn add_header(response: &mut Response, name: &str, description: &str) {
    response
        .headers
        .entry(name.into())
        .or_insert_with(|| string_header(description));
}
