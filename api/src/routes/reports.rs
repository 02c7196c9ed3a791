//! PDF downloads: `GET /api/v1/cases/{id}/report.pdf` and `GET /api/v1/reports/{kind}.pdf`.
//! Thin: check the caller and the query, read and render on the blocking pool
//! (`crate::pdf`), answer `application/pdf` with the tick in `X-Lpm-Tick`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::Response;
use axum::routing::get;
use axum::Router;
use lpm_engine::read::CaseDetail;
use lpm_reports::{CellLine, Lang, Stamp};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::json_integer::PathId;
use crate::pdf::analytics::{self, Kind};
use crate::pdf::params::{AnalyticsQuery, CaseReportQuery, PosterQuery};
use crate::pdf::{case, pdf_response, render_error, Rendered};
use crate::routes::hotspots;
use crate::state::{engine_error, AppState};

/// The PDF routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/report.pdf", get(case_report))
        .route("/api/v1/cases/{id}/poster.pdf", get(case_poster))
        .route("/api/v1/reports/{file}", get(analytics_report))
}

/// `{kind}` of `/api/v1/reports/{kind}.pdf`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReportKind {
    /// The report.
    #[param(schema_with = report_kind_schema)]
    pub kind: String,
}

fn report_kind_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input_schema::one_of(
        &[
            "operational",
            "demographic",
            "hourly",
            "sensitive",
            "hotspots",
        ],
        false,
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// 403 unless `who` sees personal data: `what` (a case PDF) holds it.
fn personal_only(who: &crate::auth::Principal, what: &str) -> ApiResult<()> {
    if who.sees_personal_data() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{what} holds personal data: read-only tokens cannot download it"
        )))
    }
}

/// Reads case `id` on the blocking pool (404 when it does not exist) and renders it there
/// with `render`: the case PDFs' shared read.
async fn render_case(
    state: &AppState,
    id: i64,
    render: impl FnOnce(&AppState, &CaseDetail) -> ApiResult<Vec<u8>> + Send + 'static,
) -> ApiResult<Rendered> {
    let st = state.clone();
    state
        .blocking(move || {
            let detail = st
                .engine
                .case(id, st.config.read_timeout)
                .map_err(engine_error)?
                .ok_or_else(|| ApiError::NotFound(format!("case {id}")))?;
            let bytes = render(&st, &detail)?;
            Ok(Rendered {
                tick: detail.tick,
                bytes,
            })
        })
        .await
}

/// The case report (Spanish by default): person, case, responsible, history and every action.
/// It holds personal data, so read-only tokens get 403.
#[utoipa::path(get, path = "/api/v1/cases/{id}/report.pdf",
    params(("id" = i64, Path, description = "Case id"), CaseReportQuery), tag = "reports",
    security(("session" = []), ("token" = [])),
    responses((status = 200, content_type = "application/pdf", description = "The PDF",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"caso-<id>.pdf\"` (`case-<id>.pdf` in English)"),
                ("X-Lpm-Tick" = u64, description = "The engine tick the report shows"))),
        (status = 400, description = "A bad id, `lang` or `tz`, or an unknown parameter", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 503, description = "The engine did not answer in time", body = ErrorBody)))]
pub async fn case_report(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(PathId(id)): Path<PathId>,
    Query(q): Query<CaseReportQuery>,
) -> ApiResult<Response> {
    personal_only(&who, "the case report")?;
    let (lang, tz) = q.parse(state.config.tz)?;
    let rendered = render_case(&state, id, move |st, detail| {
        // the history stores responsible ids only; names come from the responsible_load view
        let (_, views) = st.engine.store().read_shared();
        let names: BTreeMap<i64, String> = views
            .responsible_load
            .iter()
            .map(|l| (l.id, l.full_name.clone()))
            .collect();
        let stamp = Stamp {
            generated_at_ms: now_ms(),
            tz,
            tick: detail.tick,
            lang,
        };
        case::report(detail, &names, stamp)
            .render()
            .map_err(render_error)
    })
    .await?;
    let name = match lang {
        Lang::Es => format!("caso-{id}.pdf"),
        Lang::En => format!("case-{id}.pdf"),
    };
    Ok(pdf_response(rendered, &name))
}

/// The poster of a published case (A4, Spanish by default): name, age, gender, description,
/// last seen, the agency's phone, and a QR code holding exactly `case.public_url`. Like the
/// case report it holds personal data, so read-only tokens get 403; a case that is not
/// published gets 409 `not_published`.
#[utoipa::path(get, path = "/api/v1/cases/{id}/poster.pdf",
    params(("id" = i64, Path, description = "Case id"), PosterQuery), tag = "reports",
    security(("session" = []), ("token" = [])),
    responses((status = 200, content_type = "application/pdf", description = "The PDF",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"cartel-<id>.pdf\"` (`poster-<id>.pdf` in English)"),
                ("X-Lpm-Tick" = u64, description = "The engine tick the poster shows"))),
        (status = 400, description = "A bad id or `lang`, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "The case is not published (`not_published`)", body = ErrorBody),
        (status = 503, description = "The engine did not answer in time", body = ErrorBody)))]
pub async fn case_poster(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(PathId(id)): Path<PathId>,
    Query(q): Query<PosterQuery>,
) -> ApiResult<Response> {
    personal_only(&who, "the poster")?;
    let lang = crate::pdf::params::lang(&q.lang)?;
    let rendered = render_case(&state, id, move |st, detail| {
        crate::pdf::poster::poster(detail, lang, &st.config.public_base_url)?
            .render()
            .map_err(render_error)
    })
    .await?;
    let name = match lang {
        Lang::Es => format!("cartel-{id}.pdf"),
        Lang::En => format!("poster-{id}.pdf"),
    };
    Ok(pdf_response(rendered, &name))
}

/// An analytics report: `operational`, `demographic`, `hourly`, `sensitive` or `hotspots`
/// (`.pdf`), over the period `from`..=`to` (local dates in `tz`; `hotspots` is the view's
/// current state, for every period). Every number comes from one engine read.
#[utoipa::path(get, path = "/api/v1/reports/{kind}.pdf",
    params(ReportKind, AnalyticsQuery), tag = "reports",
    security(("session" = []), ("token" = [])),
    responses((status = 200, content_type = "application/pdf", description = "The PDF",
            headers(("Content-Disposition" = String, description = "`attachment; filename=...`"),
                ("X-Lpm-Tick" = u64, description = "The engine tick the report shows"))),
        (status = 400, description = "A malformed date, `lang` or `tz`, an unknown parameter, `to` before `from`, or a period over 1000 days", body = ErrorBody),
        (status = 404, description = "No such report, or `hotspots` when the engine runs without the view", body = ErrorBody),
        (status = 503, description = "The engine did not answer in time, or has not completed its first tick", body = ErrorBody)))]
pub async fn analytics_report(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(file): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> ApiResult<Response> {
    let kind =
        Kind::from_file(&file).ok_or_else(|| ApiError::NotFound(format!("report {file:?}")))?;
    let p = q.parse(state.config.tz)?;
    let personal = who.sees_personal_data();
    // the cells this caller may see, read before the blocking work: one store read, one tick
    let cells = match kind {
        Kind::Hotspots => Some(hotspots::visible_cells(&state, &who).ok_or_else(|| {
            ApiError::NotFound("report hotspots.pdf (the engine runs without the view)".into())
        })?),
        _ => None,
    };
    let st = state.clone();
    let rendered = state
        .blocking(move || {
            let (tz, range, timeout) = (p.tz, p.range, st.config.read_timeout);
            let stamp = |tick| Stamp {
                generated_at_ms: now_ms(),
                tz,
                tick,
                lang: p.lang,
            };
            let (tick, bytes) = match kind {
                Kind::Operational => {
                    let (tick, details) = st
                        .engine
                        .case_details(
                            Arc::new(move |r| {
                                r.case.status.is_open() && analytics::opened_in(r, &range, &tz)
                            }),
                            timeout,
                        )
                        .map_err(engine_error)?;
                    let s = stamp(tick);
                    let now = s.generated_at_ms;
                    let r = analytics::operational(&details, s, range, personal, now);
                    (tick, r.render())
                }
                Kind::Demographic | Kind::Hourly => {
                    let (tick, records) = st
                        .engine
                        .cases(
                            Arc::new(move |r| analytics::reported_in(r, &range, &tz)),
                            timeout,
                        )
                        .map_err(engine_error)?;
                    let bytes = if kind == Kind::Demographic {
                        analytics::demographic(&records, stamp(tick), range).render()
                    } else {
                        analytics::hourly(&records, stamp(tick), range)?.render()
                    };
                    (tick, bytes)
                }
                Kind::Sensitive => {
                    let (tick, records) = st
                        .engine
                        .cases(
                            Arc::new(move |r| {
                                r.case.status.is_open()
                                    && lpm_engine::views::is_minor(
                                        r.person.as_ref().and_then(|p| p.age),
                                    )
                                    && analytics::opened_in(r, &range, &tz)
                            }),
                            timeout,
                        )
                        .map_err(engine_error)?;
                    let r = analytics::sensitive(&records, stamp(tick), range, personal);
                    (tick, r.render())
                }
                Kind::Hotspots => {
                    // read above for this kind, always
                    let Some((tick, view, cells)) = cells else {
                        return Err(ApiError::Internal("the cells were not read".into()));
                    };
                    let tick = tick.ok_or_else(|| ApiError::Unavailable {
                        message: "the engine has not completed its first tick yet".into(),
                        retry_after: 1,
                    })?;
                    let lines = hotspots::rows(&cells)
                        .into_iter()
                        .map(|r| CellLine {
                            cell: r.cell,
                            lat: r.lat,
                            lon: r.lon,
                            reports: r.reports,
                            open_cases: r.open_cases,
                            open_minor_cases: r.open_minor_cases,
                        })
                        .collect();
                    let r = analytics::hotspots(
                        lines,
                        stamp(tick),
                        u8::from(view.resolution),
                        view.min_reports,
                    );
                    (tick, r.render())
                }
            };
            Ok(Rendered {
                tick,
                bytes: bytes.map_err(render_error)?,
            })
        })
        .await?;
    Ok(pdf_response(rendered, kind.file_name(p.lang)))
}
