//! The views, all at one tick, with the source position that tick covers.

use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::state::AppState;

/// The view routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/views", get(all_views))
        .route("/api/v1/views/{name}", get(one_view))
}

/// Where the source stood at a tick.
#[derive(Serialize, serde::Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
pub struct SourcePosition {
    /// The source: `embedded-log`, `mysql-binlog` or `kafka`.
    pub source: String,
    /// The last log record the tick includes (records are numbered from 1; 0 = none); for a
    /// binlog capture, the transactions applied since start; for Kafka, the records applied.
    pub log_seq: u64,
    /// For a binlog capture: `file:pos` (and the GTID state) the tick reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<String>,
    /// For a Kafka source: per topic partition, the next offset to read (every record below it
    /// is in the tick). Partitions never read are absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets: Vec<PartitionOffset>,
}

/// A Kafka consumer position: the next offset of one topic partition.
#[derive(Serialize, serde::Deserialize, ToSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
}

/// Every view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewsOut {
    /// The engine tick (`null` before the first).
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The views, in the shape of `oracle.py`.
    #[schema(value_type = Object)]
    pub views: serde_json::Value,
}

/// One view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewOut {
    /// The engine tick.
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The view name.
    pub view: String,
    /// Its value.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// The view names.
pub const VIEW_NAMES: [&str; 9] = [
    "age_group",
    "gender",
    "hour_of_day",
    "hourly",
    "cases_by_status",
    "open_by_priority",
    "responsible_load",
    "kpi",
    "row_counts",
];

fn snapshot(state: &AppState) -> ApiResult<(Option<u64>, Vec<SourcePosition>, serde_json::Value)> {
    let (tick, views) = state.engine.store().read_shared();
    let positions = tick.map(|t| state.position_at(t)).into_iter().collect();
    let json = serde_json::to_value(&*views)
        .map_err(|e| ApiError::Internal(format!("views did not serialise: {e}")))?;
    Ok((tick, positions, json))
}

/// Every view.
#[utoipa::path(get, path = "/api/v1/views", tag = "views",
    responses((status = 200, body = ViewsOut), (status = 401, body = ErrorBody)))]
pub async fn all_views(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
) -> ApiResult<axum::Json<ViewsOut>> {
    let (tick, positions, views) = snapshot(&state)?;
    Ok(axum::Json(ViewsOut {
        tick,
        positions,
        views,
    }))
}

/// One view by name.
#[utoipa::path(get, path = "/api/v1/views/{name}", tag = "views",
    params(("name" = String, Path, description = "age_group, gender, hour_of_day, hourly, cases_by_status, open_by_priority, responsible_load, kpi or row_counts")),
    responses((status = 200, body = ViewOut), (status = 404, body = ErrorBody)))]
pub async fn one_view(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ViewOut>> {
    if !VIEW_NAMES.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!("view {name}")));
    }
    let (tick, positions, mut views) = snapshot(&state)?;
    let value = views
        .get_mut(&name)
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    Ok(axum::Json(ViewOut {
        tick,
        positions,
        view: name,
        value,
    }))
}
