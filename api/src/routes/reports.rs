//! PDF downloads: `GET /api/v1/cases/{id}/report.pdf` and `GET /api/v1/reports/{kind}.pdf`.
//! Thin: check the caller and the query, read and render on the blocking pool
//! (`crate::pdf`), answer `application/pdf` with the tick in `X-Lpm-Tick`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::Response;
use axum::routing::get;
use axum::Router;
use lpm_reports::{Lang, Stamp};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::pdf::analytics::{self, Kind};
use crate::pdf::params::{AnalyticsQuery, CaseReportQuery};
use crate::pdf::{case, pdf_response, render_error, Rendered};
use crate::state::{engine_error, AppState};

/// The PDF routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/report.pdf", get(case_report))
        .route("/api/v1/reports/{file}", get(analytics_report))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The case report (Spanish by default): person, case, responsible, history and every action.
/// It holds personal data, so read-only tokens get 403.
#[utoipa::path(get, path = "/api/v1/cases/{id}/report.pdf",
    params(("id" = i64, Path, description = "Case id"), CaseReportQuery), tag = "reports",
    responses((status = 200, content_type = "application/pdf", description = "The PDF"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn case_report(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Path(id): Path<i64>,
    Query(q): Query<CaseReportQuery>,
) -> ApiResult<Response> {
    if !who.sees_personal_data() {
        return Err(ApiError::Forbidden(
            "the case report holds personal data: read-only tokens cannot download it".into(),
        ));
    }
    let (lang, tz) = q.parse(state.config.tz)?;
    let st = state.clone();
    let rendered = state
        .blocking(move || {
            let detail = st
                .engine
                .case(id, st.config.read_timeout)
                .map_err(engine_error)?
                .ok_or_else(|| ApiError::NotFound(format!("case {id}")))?;
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
            let bytes = case::report(&detail, &names, stamp)
                .render()
                .map_err(render_error)?;
            Ok(Rendered {
                tick: detail.tick,
                bytes,
            })
        })
        .await?;
    let name = match lang {
        Lang::Es => format!("caso-{id}.pdf"),
        Lang::En => format!("case-{id}.pdf"),
    };
    Ok(pdf_response(rendered, &name))
}

/// An analytics report: `operational`, `demographic`, `hourly` or `sensitive` (`.pdf`), over
/// the period `from`..=`to` (local dates in `tz`). Every number comes from one engine read.
#[utoipa::path(get, path = "/api/v1/reports/{kind}.pdf",
    params(("kind" = String, Path, description = "operational, demographic, hourly or sensitive"),
        AnalyticsQuery), tag = "reports",
    responses((status = 200, content_type = "application/pdf", description = "The PDF"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
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
            };
            Ok(Rendered {
                tick,
                bytes: bytes.map_err(render_error)?,
            })
        })
        .await?;
    Ok(pdf_response(rendered, kind.file_name(p.lang)))
}
