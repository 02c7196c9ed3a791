//! Flat-row endpoints for Infinity (and JSON API): `GET|POST /api/v1/rows/{view}`.
//!
//! The root of every answer is a JSON array of flat objects whose keys depend only on the view,
//! the `split_by` parameter and the caller's role, never on the range (`shared/grafana.md` 3b).
//! The engine tick is in the `X-Lpm-Tick` header.

use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use chrono_tz::Tz;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::budget::{Budget, Fields};
use super::catalog::{Dim, View};
use super::params::{
    asked_grain, choose_grain, iso, parse_count, parse_instant, DimFilter, MAX_MS, MIN_MS,
};
use super::plan::{self, SeriesAsk};
use super::request::{fetch_sensitive, read_knobs, require_tick, with_tick, JsonBody};
use super::tables::{self, TableCtx};
use super::timeseries::Line;
use super::GrafanaState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Path;

/// Zero-fill limit for row requests without `max_points` (a larger one is capped by
/// [`MAX_POINTS_PER_SERIES`](super::budget::MAX_POINTS_PER_SERIES)).
const ROWS_FILL_LIMIT: usize = 50_000;

/// The grain of time-series rows (`hour` or `day`): it may be coarser than `bucket` asked.
pub const BUCKET_HEADER: HeaderName = HeaderName::from_static("x-lpm-bucket");

/// Why the answer is not what was asked for (a coarser grain), when it is not.
pub const NOTICE_HEADER: HeaderName = HeaderName::from_static("x-lpm-notice");

/// `GET /api/v1/rows/{view}?from=&to=&bucket=&tz=&gender=&age_band=&status=&priority=&split_by=`.
/// A repeated parameter (`gender=female&gender=male`) is a multi value, like `gender=female,male`.
/// Other parameters are ignored.
#[utoipa::path(get, path = "/api/v1/rows/{view}", tag = "grafana", security(("session" = []), ("token" = [])),
    params(super::api_doc::ViewPath, super::api_doc::RowsQuery),
    responses((status = 200, description = "A JSON array of flat rows", body = [Object], headers(
            ("X-Lpm-Tick" = u64, description = "The engine tick the answer was read at"),
            ("X-Lpm-Bucket" = String, description = "The grain of time-series rows: `hour` or `day`, coarser than `bucket` asked when the work budget required it"),
            ("X-Lpm-Notice" = String, description = "Why the answer is coarser than asked, when it is"))),
        (status = 400, description = "A bad `from`, `to`, `tz`, `bucket`, count or filter value, or a repeated single-valued parameter; `field` names it", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 422, description = "An unknown filter value or `split_by`, or a request over the work budget: more than 50,000 points per series even by day (`from`/`to`), or more than 100 series (`split_by`); `field` names it", body = ErrorBody),
        (status = 503, description = "The engine has not completed its first tick", body = ErrorBody)))]
pub async fn get_rows(
    caller: Caller,
    State(st): State<GrafanaState>,
    Path(view): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query?;
    let mut params = Map::new();
    for (k, v) in pairs {
        match params.get_mut(&k) {
            None => {
                params.insert(k, Value::String(v));
            }
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(old) => *old = json!([old.take(), v]),
        }
    }
    rows(caller, st, &view, params).await
}

/// `POST /api/v1/rows/{view}` with a JSON object of the same parameters (values may be numbers
/// or arrays). The body may come without `Content-Type`, or not at all (read as `{}`: every
/// parameter at its default, as a plain `GET`); other keys are ignored. The OpenAPI document
/// marks it optional for that reason.
#[utoipa::path(post, path = "/api/v1/rows/{view}", tag = "grafana", security(("session" = []), ("token" = [])),
    params(super::api_doc::ViewPath),
    request_body = Option<super::api_doc::RowsRequest>,
    responses((status = 200, description = "A JSON array of flat rows", body = [Object], headers(
            ("X-Lpm-Tick" = u64, description = "The engine tick the answer was read at"),
            ("X-Lpm-Bucket" = String, description = "The grain of time-series rows: `hour` or `day`, coarser than `bucket` asked when the work budget required it"),
            ("X-Lpm-Notice" = String, description = "Why the answer is coarser than asked, when it is"))),
        (status = 400, description = "A bad `from`, `to`, `tz`, `bucket`, count or filter value, or malformed JSON; `field` names it", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 422, description = "An unknown filter value or `split_by`, a body that is not a JSON object, or a request over the work budget: more than 50,000 points per series even by day (`from`/`to`), or more than 100 series (`split_by`); `field` names it", body = ErrorBody),
        (status = 503, description = "The engine has not completed its first tick", body = ErrorBody)))]
pub async fn post_rows(
    caller: Caller,
    State(st): State<GrafanaState>,
    Path(view): Path<String>,
    JsonBody(params): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    rows(caller, st, &view, params).await
}

async fn rows(
    Caller(principal): Caller,
    st: GrafanaState,
    view_name: &str,
    params: Map<String, Value>,
) -> Result<Response, ApiError> {
    let view =
        View::parse(view_name).ok_or_else(|| ApiError::NotFound(format!("view {view_name:?}")))?;
    let tick = require_tick(st.store.tick())?;
    let instant = |k: &str| -> Result<Option<i64>, ApiError> {
        match params.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(v) => parse_instant(v, k).map(Some),
        }
    };
    let (from, to) = (instant("from")?, instant("to")?);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            return Err(ApiError::bad("to", "`to` is before `from`"));
        }
    }
    // tables filter on a closed range; series read a missing end as the data's first / last
    let range =
        (from.is_some() || to.is_some()).then(|| (from.unwrap_or(MIN_MS), to.unwrap_or(MAX_MS)));
    // `max_points` wins over Grafana's `maxDataPoints`, but a present one must still be a count
    let grafana_max = parse_count(params.get("maxDataPoints"), "maxDataPoints")?;
    let max_points = match params.get("max_points") {
        Some(v) if !v.is_null() => parse_count(Some(v), "max_points")?,
        _ => grafana_max,
    }
    .filter(|n| *n > 0)
    .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let knobs = read_knobs(
        &params,
        &|k| k.to_string(),
        st.default_tz,
        st.default_tz,
        DimFilter::default(),
    )?;
    match view {
        View::Series(kind) => {
            let ask = SeriesAsk {
                kind,
                from,
                to,
                tz: knobs.tz,
                asked: asked_grain(knobs.bucket, None),
                explicit: knobs.bucket.is_some(),
                grain: choose_grain(knobs.bucket, None, max_points, range),
                filter: knobs.filter,
                split: knobs.split,
                fill_limit: max_points.unwrap_or(ROWS_FILL_LIMIT),
            };
            let fields = Fields {
                range: "from".into(),
                split: "split_by".into(),
                targets: "split_by".into(),
            };
            let served = plan::answer(&st.store, &ask, &mut Budget::default(), &fields)?;
            // long format: by time, then by split value in display order
            let mut points: Vec<(i64, usize, i64)> = served
                .lines
                .iter()
                .enumerate()
                .flat_map(|(i, l)| l.points.iter().map(move |(t, n)| (*t, i, *n)))
                .collect();
            points.sort_unstable();
            let rows = SeriesRows {
                points: &points,
                lines: &served.lines,
                split: knobs.split,
                tz: &knobs.tz,
            };
            let mut response = with_tick(Some(served.tick.unwrap_or(tick)), rows);
            let headers = response.headers_mut();
            headers.insert(BUCKET_HEADER, HeaderValue::from_static(served.grain.name()));
            if let Some(text) = served.notice {
                // the notice is ASCII text of ours; never fail the answer over it
                if let Ok(value) = HeaderValue::from_str(&text) {
                    headers.insert(NOTICE_HEADER, value);
                }
            }
            Ok(response)
        }
        View::Table(table) => {
            let (t, views) = st.store.read_shared();
            let cases = match table {
                super::catalog::TableView::SensitiveOpenCases => {
                    fetch_sensitive(st.cases.clone()).await?
                }
                _ => Vec::new(),
            };
            let ctx = TableCtx {
                range,
                filter: &knobs.filter,
                personal: principal.sees_personal_data(),
                cases: &cases,
            };
            let data = tables::build(table, &views, &ctx);
            Ok(with_tick(
                Some(t.unwrap_or(tick)),
                Value::Array(data.to_rows(&knobs.tz)),
            ))
        }
    }
}

/// Long-format time-series rows, `{time, time_iso, value}` plus the split dimension's key,
/// written straight to JSON: no map of strings per row, so the largest answer the budget
/// allows costs about its bytes.
struct SeriesRows<'a> {
    /// `(time, line index, value)`, in row order.
    points: &'a [(i64, usize, i64)],
    lines: &'a [Line],
    split: Option<Dim>,
    tz: &'a Tz,
}

impl Serialize for SeriesRows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.points.len()))?;
        for &(time, i, value) in self.points {
            let label = self.lines.get(i).and_then(|l| l.label.as_deref());
            let split = self.split.zip(label).map(|(dim, l)| (dim.name(), l));
            seq.serialize_element(&SeriesRow {
                time,
                value,
                tz: self.tz,
                split,
            })?;
        }
        seq.end()
    }
}

/// One row; keys in sorted order, as a JSON object map writes them (every dimension name sorts
/// before `time`).
struct SeriesRow<'a> {
    time: i64,
    value: i64,
    tz: &'a Tz,
    split: Option<(&'static str, &'a str)>,
}

impl Serialize for SeriesRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3 + usize::from(self.split.is_some())))?;
        if let Some((key, label)) = self.split {
            map.serialize_entry(key, label)?;
        }
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("time_iso", &iso(self.time, self.tz))?;
        map.serialize_entry("value", &self.value)?;
        map.end()
    }
}
