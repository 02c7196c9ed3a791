//! The simpod JSON data-source endpoints under `/grafana` (`shared/grafana.md` 3a).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use lpm_engine::Views;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::budget::{Budget, Fields};
use super::catalog::{self, Dim, TableView, View};
use super::params::{
    asked_grain, choose_grain, parse_count, parse_instant, parse_tz, AdhocFilter, DimFilter,
};
use super::plan::{self, SeriesAsk};
use super::request::{
    fetch_sensitive, nullable_objects, payload_map, read_knobs, require_tick, with_tick, JsonBody,
};
use super::tables::{self, TableCtx};
use super::timeseries::Line;
use super::GrafanaState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};

/// Zero-fill limit when a request carries no `maxDataPoints` (a larger one is capped by
/// [`MAX_POINTS_PER_SERIES`](super::budget::MAX_POINTS_PER_SERIES)).
const DEFAULT_MAX_POINTS: usize = 10_000;

/// Grafana's data-query request. Unknown fields (`app`, `requestId`, `scopedVars`,
/// `dashboardUID`, `panelId`, `startTime`, `rangeRaw`, `interval`, ...) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryRequest {
    /// `{from, to, raw}`: ISO-8601 instants (or epoch ms); `raw` is display-only.
    pub range: Option<RangeBody>,
    /// The panel's interval in ms.
    pub interval_ms: Option<Value>,
    /// The panel's point budget.
    pub max_data_points: Option<Value>,
    /// `browser`, `utc`, an IANA name, or empty.
    pub timezone: Option<String>,
    /// The panel's queries.
    #[serde(deserialize_with = "nullable_objects")]
    pub targets: Vec<Target>,
    /// Ad-hoc filters.
    #[serde(deserialize_with = "nullable_objects")]
    pub filters: Vec<AdhocFilter>,
    /// Ad-hoc filters under SimpleJSON's older name.
    #[serde(deserialize_with = "nullable_objects")]
    pub adhoc_filters: Vec<AdhocFilter>,
}

/// `range`: an object (serde's derived reader would also take `[from, to]`, which the
/// document does not allow); a missing bound is null.
#[derive(Debug, Default)]
pub struct RangeBody {
    /// Start.
    pub from: Value,
    /// End.
    pub to: Value,
}

impl<'de> Deserialize<'de> for RangeBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RangeBody, D::Error> {
        let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
        Ok(RangeBody {
            from: map.remove("from").unwrap_or(Value::Null),
            to: map.remove("to").unwrap_or(Value::Null),
        })
    }
}

/// One panel query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Target {
    /// Grafana's query id (`A`, `B`, ...).
    pub ref_id: Option<String>,
    /// The metric (view) name.
    pub target: Option<String>,
    /// The builder payload.
    pub payload: Value,
    /// Hidden queries are skipped.
    pub hide: Option<bool>,
}

/// Parses `range` (400 naming `range.from` / `range.to`).
fn parse_range(range: Option<&RangeBody>) -> Result<Option<(i64, i64)>, ApiError> {
    let Some(r) = range else { return Ok(None) };
    if r.from.is_null() && r.to.is_null() {
        return Ok(None);
    }
    let from = parse_instant(&r.from, "range.from")?;
    let to = parse_instant(&r.to, "range.to")?;
    if to < from {
        return Err(ApiError::bad("range.to", "range.to is before range.from"));
    }
    Ok(Some((from, to)))
}

/// `GET /grafana/`: the "Save & test" probe.
#[utoipa::path(get, path = "/grafana", tag = "grafana", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "`{status: \"ok\", tick}`", body = Object, headers(("X-Lpm-Tick" = u64, description = "The engine tick the answer was read at")))))]
pub async fn health(_caller: Caller, State(st): State<GrafanaState>) -> Response {
    let tick = st.store.tick();
    with_tick(tick, json!({"status": "ok", "tick": tick}))
}

/// `POST /grafana/metrics`: every view with its payloads (the body is ignored).
#[utoipa::path(post, path = "/grafana/metrics", tag = "grafana", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "`[{value, label, payloads}]`", body = [Object])))]
pub async fn metrics(_caller: Caller) -> Json<Value> {
    Json(catalog::metrics())
}

/// `POST /grafana/search` (SimpleJSON's name for the metric list): the view names (the body
/// is ignored).
#[utoipa::path(post, path = "/grafana/search", tag = "grafana", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The view names", body = [String])))]
pub async fn search(_caller: Caller) -> Json<Value> {
    Json(json!(View::all().map(View::name).collect::<Vec<_>>()))
}

/// `/metric-payload-options` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PayloadOptionsRequest {
    /// The current metric.
    pub metric: Option<String>,
    /// The name of the payload whose options are wanted.
    pub name: Option<String>,
}

/// `POST /grafana/metric-payload-options`: `[{value, label}]` for one payload. The body may
/// come without `Content-Type`.
#[utoipa::path(post, path = "/grafana/metric-payload-options", tag = "grafana", security(("session" = []), ("token" = [])),
    request_body = super::api_doc::PayloadOptionsDoc,
    responses((status = 200, description = "`[{value, label}]`", body = [Object]),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "An unknown metric or payload, or a mistyped field; `field` names it", body = ErrorBody)))]
pub async fn payload_options(
    _caller: Caller,
    JsonBody(req): JsonBody<PayloadOptionsRequest>,
) -> Result<Json<Value>, ApiError> {
    if let Some(m) = req.metric.as_deref().filter(|m| !m.trim().is_empty()) {
        View::parse(m)
            .ok_or_else(|| ApiError::invalid("metric", format!("unknown metric {m:?}")))?;
    }
    let name = req
        .name
        .ok_or_else(|| ApiError::invalid("name", "missing payload name"))?;
    catalog::payload_options(name.trim())
        .map(Json)
        .ok_or_else(|| ApiError::invalid("name", format!("unknown payload {name:?}")))
}

/// `POST /grafana/query`: one element per visible target (several for a split series). The body
/// may come without `Content-Type`, or not at all: read as `{}`, no targets, answered `[]` (the
/// OpenAPI document marks it optional for that reason).
#[utoipa::path(post, path = "/grafana/query", tag = "grafana", security(("session" = []), ("token" = [])),
    request_body = Option<super::api_doc::QueryRequestDoc>,
    responses((status = 200, description = "Time series `{target, refId, datapoints, tags?}` and tables `{type: \"table\", refId, columns, rows}`", body = [Object], headers(
            ("X-Lpm-Tick" = u64, description = "The engine tick the answer was read at"),
            ("X-Lpm-Notice" = String, description = "Why a series is coarser than asked (hour became day), when one is; also in the frame's `meta.notices`"))),
        (status = 400, description = "Malformed JSON, or a bad range, zone, bucket, count or filter value; `field` names it", body = ErrorBody),
        (status = 422, description = "An unknown metric, payload value or filter, a mistyped field, or a request over the work budget: more than 20 targets (`targets`), more than 100 series (`targets[i].payload.split_by`), or more than 50,000 points per series even by day (`range`); `field` names it", body = ErrorBody),
        (status = 503, description = "The engine has not completed its first tick", body = ErrorBody)))]
pub async fn query(
    Caller(principal): Caller,
    State(st): State<GrafanaState>,
    JsonBody(req): JsonBody<QueryRequest>,
) -> Result<Response, ApiError> {
    let mut tick = require_tick(st.store.tick())?;
    let request_tz = parse_tz(req.timezone.as_deref(), st.default_tz, "timezone")?;
    let range = parse_range(req.range.as_ref())?;
    let interval_ms = parse_count(req.interval_ms.as_ref(), "intervalMs")?;
    let max_points = parse_count(req.max_data_points.as_ref(), "maxDataPoints")?
        .filter(|n| *n > 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut adhoc = DimFilter::default();
    adhoc.add_adhoc(&req.filters)?;
    adhoc.add_adhoc(&req.adhoc_filters)?;

    let visible: Vec<(usize, &Target, &str)> = req
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let metric = t.target.as_deref().map(str::trim).unwrap_or_default();
            (t.hide != Some(true) && !metric.is_empty()).then_some((i, t, metric))
        })
        .collect();
    Budget::check_targets(visible.len(), "targets")?;
    let mut budget = Budget::default();

    let mut views: Option<Arc<Views>> = None;
    let mut sensitive = None;
    let mut out = Vec::new();
    for (i, target, metric) in visible {
        let ref_id = target.ref_id.clone().unwrap_or_default();
        let field = |k: &str| format!("targets[{i}].payload.{k}");
        let view = View::parse(metric).ok_or_else(|| {
            ApiError::invalid(
                format!("targets[{i}].target"),
                format!("unknown metric {metric:?}"),
            )
        })?;
        let payload = payload_map(&target.payload, &format!("targets[{i}].payload"))?;
        let knobs = read_knobs(&payload, &field, request_tz, st.default_tz, adhoc.clone())?;
        match view {
            View::Series(kind) => {
                let ask = SeriesAsk {
                    kind,
                    from: range.map(|r| r.0),
                    to: range.map(|r| r.1),
                    tz: knobs.tz,
                    asked: asked_grain(knobs.bucket, interval_ms),
                    explicit: knobs.bucket.is_some(),
                    grain: choose_grain(knobs.bucket, interval_ms, max_points, range),
                    filter: knobs.filter,
                    split: knobs.split,
                    fill_limit: max_points.unwrap_or(DEFAULT_MAX_POINTS),
                };
                let fields = Fields {
                    range: "range".into(),
                    split: field("split_by"),
                    targets: "targets".into(),
                };
                let served = plan::answer(&st.store, &ask, &mut budget, &fields)?;
                tick = tick.max(served.tick.unwrap_or(tick));
                out.extend(series_elements(
                    view.name(),
                    &ref_id,
                    knobs.split,
                    &served.lines,
                    served.notice.as_deref(),
                )?);
            }
            View::Table(table) => {
                let views = match &views {
                    Some(v) => v.clone(),
                    None => {
                        let (t, v) = st.store.read_shared();
                        tick = tick.max(t.unwrap_or(tick));
                        views.insert(v).clone()
                    }
                };
                if table == TableView::SensitiveOpenCases && sensitive.is_none() {
                    sensitive = Some(fetch_sensitive(st.cases.clone()).await?);
                }
                let ctx = TableCtx {
                    range,
                    filter: &knobs.filter,
                    personal: principal.sees_personal_data(),
                    cases: sensitive.as_deref().unwrap_or_default(),
                };
                out.push(raw(&tables::build(table, &views, &ctx).to_grafana(&ref_id))?);
            }
        }
    }
    Ok(with_tick(Some(tick), out))
}

/// simpod time-series elements: `{target, refId, datapoints: [[value, epoch_ms], ...], tags}`,
/// with `meta.notices` (Grafana shows them on the panel) when the grain served is not the one
/// asked for. Each is written to JSON text at once (no `Value` per point), so a request costs
/// about its answer's bytes.
fn series_elements(
    name: &str,
    ref_id: &str,
    split: Option<Dim>,
    lines: &[Line],
    notice: Option<&str>,
) -> Result<Vec<Box<RawValue>>, ApiError> {
    let meta = notice.map(|text| json!({"notices": [{"severity": "info", "text": text}]}));
    lines
        .iter()
        .map(|line| {
            let (target, tags) = match (split, &line.label) {
                (Some(dim), Some(label)) => (
                    format!("{name} {label}"),
                    Some(BTreeMap::from([(dim.name(), label.as_str())])),
                ),
                _ => (name.to_string(), None),
            };
            raw(&SeriesElement {
                target,
                ref_id,
                datapoints: Datapoints(&line.points),
                tags,
                meta: meta.as_ref(),
            })
        })
        .collect()
}

/// One simpod time-series element.
#[derive(Serialize)]
struct SeriesElement<'a> {
    target: String,
    #[serde(rename = "refId")]
    ref_id: &'a str,
    datapoints: Datapoints<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<BTreeMap<&'static str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a Value>,
}

/// `(period start, count)` points as simpod's `[[count, epoch_ms], ...]` (the value first).
struct Datapoints<'a>(&'a [(i64, i64)]);

impl Serialize for Datapoints<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(t, n)| [n, t]))
    }
}

/// One answer element as JSON text.
fn raw(element: &impl Serialize) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(element)
        .map_err(|e| ApiError::Internal(format!("serializing a /query element: {e}")))
}

/// `/variable` body: `{payload: {target: ..} | "..", range}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VariableRequest {
    /// The variable query.
    pub payload: Value,
    /// A bare target (raw mode of older plugin versions).
    pub target: Option<String>,
}

/// `POST /grafana/variable`: `[{__text, __value}]` for `gender`, `age_band`, `status`,
/// `priority`, `tz`, `bucket`, `split_by`, `view` or `responsible`.
#[utoipa::path(post, path = "/grafana/variable", tag = "grafana", security(("session" = []), ("token" = [])),
    request_body = super::api_doc::VariableRequestDoc,
    responses((status = 200, description = "`[{__text, __value}]`", body = [Object]),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "An unknown variable or a mistyped field; `field` names it", body = ErrorBody)))]
pub async fn variable(
    _caller: Caller,
    State(st): State<GrafanaState>,
    JsonBody(req): JsonBody<VariableRequest>,
) -> Result<Json<Value>, ApiError> {
    let name = match &req.payload {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => ["target", "variable", "name", "query"]
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str).map(str::to_string)),
        _ => None,
    }
    .or(req.target)
    .unwrap_or_default();
    let name = name.trim();
    let pairs: Vec<(String, String)> = match name {
        "view" | "views" | "metric" | "metrics" => View::all()
            .map(|v| (v.name().to_string(), v.name().to_string()))
            .collect(),
        "tz" | "timezone" => tz_values().into_iter().map(|(v, l)| (l, v)).collect(),
        "bucket" => same(&catalog::BUCKET_OPTIONS),
        "split_by" => same(&catalog::SPLIT_OPTIONS),
        "responsible" => {
            let (_, views) = st.store.read_shared();
            views
                .responsible_load
                .iter()
                .map(|e| (e.full_name.clone(), e.id.to_string()))
                .collect()
        }
        other => match Dim::parse(other) {
            Some(dim) => dim_values(&st, dim)
                .into_iter()
                .map(|v| (v.clone(), v))
                .collect(),
            None => {
                return Err(ApiError::invalid(
                    "payload.target",
                    format!(
                        "unknown variable {name:?}: expected gender, age_band, status, priority, \
                         tz, bucket, split_by, view or responsible"
                    ),
                ))
            }
        },
    };
    Ok(Json(Value::Array(
        pairs
            .into_iter()
            .map(|(text, value)| json!({"__text": text, "__value": value}))
            .collect(),
    )))
}

fn same(values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| (v.to_string(), v.to_string()))
        .collect()
}

/// `(value, label)` of every zone choice.
fn tz_values() -> Vec<(String, String)> {
    catalog::TZ_SPECIAL
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .chain(
            catalog::tz_names()
                .into_iter()
                .filter(|n| *n != "UTC")
                .map(|n| (n.to_string(), n.to_string())),
        )
        .collect()
}

/// A dimension's values: the fixed ones, plus statuses seen in `cases_by_status` and
/// priorities seen in `open_by_priority`.
fn dim_values(st: &GrafanaState, dim: Dim) -> Vec<String> {
    let mut values: Vec<String> = dim.known_values().iter().map(|v| v.to_string()).collect();
    let extra = |m: &std::collections::BTreeMap<String, i64>, values: &mut Vec<String>| {
        for k in m.keys() {
            if !values.contains(k) {
                values.push(k.clone());
            }
        }
    };
    match dim {
        Dim::Status => extra(&st.store.read_shared().1.cases_by_status, &mut values),
        Dim::Priority => extra(&st.store.read_shared().1.open_by_priority, &mut values),
        Dim::Gender | Dim::AgeBand => {}
    }
    values
}

/// `POST /grafana/tag-keys`: the ad-hoc filter keys (the body is ignored).
#[utoipa::path(post, path = "/grafana/tag-keys", tag = "grafana", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "`[{type, text}]`", body = [Object])))]
pub async fn tag_keys(_caller: Caller) -> Json<Value> {
    Json(Value::Array(
        Dim::ALL
            .iter()
            .map(|d| json!({"type": "string", "text": d.name()}))
            .collect(),
    ))
}

/// `/tag-values` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TagValuesRequest {
    /// The tag key.
    pub key: Option<String>,
}

/// `POST /grafana/tag-values`: `[{text}]` for one key.
#[utoipa::path(post, path = "/grafana/tag-values", tag = "grafana", security(("session" = []), ("token" = [])),
    request_body = super::api_doc::TagValuesDoc,
    responses((status = 200, description = "`[{text}]`", body = [Object]),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "An unknown or missing key; `field` names it", body = ErrorBody)))]
pub async fn tag_values(
    _caller: Caller,
    State(st): State<GrafanaState>,
    JsonBody(req): JsonBody<TagValuesRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = req
        .key
        .ok_or_else(|| ApiError::invalid("key", "missing tag key"))?;
    let dim = Dim::parse(&key).ok_or_else(|| {
        ApiError::invalid(
            "key",
            format!("unknown tag key {key:?}: expected gender, age_band, status or priority"),
        )
    })?;
    Ok(Json(Value::Array(
        dim_values(&st, dim)
            .into_iter()
            .map(|v| json!({"text": v}))
            .collect(),
    )))
}
