//! `GET /api/v1/engine`: what a data engineer tunes by. The tick and its rate, freshness over
//! the last minute, where each source stands, the upsert state and the size of every
//! arrangement, as one JSON document (the web UI's engine page polls it).
//!
//! It carries no personal data, so any authenticated caller (readers too) may read it. The
//! same figures are on `/metrics` for Prometheus; this route exists for people without one.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use lpm_engine::model::Table;
pub use lpm_service::source::{LagDetail, SourceStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/engine", get(engine))
}

/// The engine page's document.
#[derive(Serialize, Debug, ToSchema)]
pub struct EngineReport {
    /// The last complete tick (`null` before the first).
    pub tick: Option<u64>,
    /// Timely worker threads.
    pub workers: usize,
    /// Ticks completed per second over the last minute.
    pub ticks_per_second: f64,
    /// Source commit to visible in the views, over the last minute.
    pub freshness_seconds: Freshness,
    /// How long the oldest pushed-but-not-visible tick has waited (0 when caught up).
    pub staleness_seconds: f64,
    /// Where each source stands.
    pub sources: Vec<SourceStatus>,
    /// The per-key upsert state in front of the dataflow.
    pub upsert: UpsertReport,
    /// Every arrangement, by operator name, summed over workers.
    pub arrangements: Vec<ArrangementReport>,
}

/// Freshness percentiles.
#[derive(Serialize, Debug, ToSchema)]
pub struct Freshness {
    /// Median, seconds.
    pub p50: Option<f64>,
    /// 99th percentile, seconds.
    pub p99: Option<f64>,
    /// Samples in the window.
    pub samples: usize,
}

/// Upsert state and outcomes.
#[derive(Serialize, Debug, ToSchema)]
pub struct UpsertReport {
    /// Keys held per table.
    pub tables: Vec<TableRows>,
    /// Changes applied.
    pub applied: u64,
    /// Exact duplicates dropped (replays, redeliveries).
    pub duplicates: u64,
    /// Changes older than what the key holds, dropped.
    pub stale: u64,
    /// Deletes of keys never seen.
    pub unknown_deletes: u64,
}

/// Keys held for one table.
#[derive(Serialize, Debug, ToSchema)]
pub struct TableRows {
    /// The source table.
    pub table: &'static str,
    /// Keys held.
    pub rows: usize,
}

/// One arrangement's size.
#[derive(Serialize, Debug, ToSchema)]
pub struct ArrangementReport {
    /// Operator name (`case_records_by_id`, `view.responsible_load`, ...).
    pub name: String,
    /// Operators of that name (per worker).
    pub operators: usize,
    /// Updates held, over all workers.
    pub records: i64,
    /// Batches held, over all workers.
    pub batches: i64,
}

/// The engine's state for data engineers; no personal data, so any caller.
#[utoipa::path(get, path = "/api/v1/engine", tag = "engine",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The engine's state", body = EngineReport)))]
pub async fn engine(
    State(state): State<AppState>,
    Caller(_who): Caller,
) -> ApiResult<Json<EngineReport>> {
    let stats = state.engine.stats();
    let recent = state.metrics.recent.summary();
    let staleness_seconds = crate::routes::views::VIEW_NAMES.first().map_or(0.0, |v| {
        state.metrics.staleness.with_label_values(&[v]).get()
    });
    let upsert = UpsertReport {
        tables: Table::ALL
            .iter()
            .map(|t| TableRows {
                table: t.name(),
                rows: stats.entries[t.index()],
            })
            .collect(),
        applied: stats.upsert.applied,
        duplicates: stats.upsert.duplicates,
        stale: stats.upsert.stale,
        unknown_deletes: stats.upsert.unknown_deletes,
    };
    Ok(Json(EngineReport {
        tick: state.engine.store().tick(),
        workers: state.engine.workers(),
        ticks_per_second: recent.ticks_per_second,
        freshness_seconds: Freshness {
            p50: recent.freshness_p50,
            p99: recent.freshness_p99,
            samples: recent.freshness_samples,
        },
        staleness_seconds,
        sources: vec![state.source.status(staleness_seconds)],
        upsert,
        arrangements: stats
            .arrangements
            .into_iter()
            .map(|a| ArrangementReport {
                name: a.name,
                operators: a.operators,
                records: a.records,
                batches: a.batches,
            })
            .collect(),
    }))
}
