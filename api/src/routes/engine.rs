//! `GET /api/v1/engine`: what a data engineer tunes by. The tick and its rate, freshness over
//! the last minute, where each source stands, the upsert state, the size of every arrangement,
//! and checkpoints and this start's recovery, as one JSON document (the web UI's engine page
//! polls it).
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
    /// Checkpoints and this start's recovery (`null` when the server keeps none).
    pub checkpoint: Option<CheckpointReport>,
}

/// Checkpoints and the recovery at this start (the same figures as `lpm_checkpoint_*`,
/// `lpm_recovery_*` and `lpm_log_*` on `/metrics`).
#[derive(Serialize, Debug, ToSchema)]
pub struct CheckpointReport {
    /// The newest checkpoint (taken by this process, or loaded at start), if any.
    pub newest: Option<NewestCheckpoint>,
    /// Seconds since it was taken (since start without one).
    pub age_seconds: f64,
    /// Changes ingested after it: what a restart now would replay.
    pub pending_changes: i64,
    /// Checkpoints taken, skipped (a snapshot half read) and failed by this process.
    pub taken: u64,
    /// See `taken`.
    pub skipped: u64,
    /// See `taken`.
    pub failed: u64,
    /// This start: seconds from start to ready.
    pub recovery_seconds: f64,
    /// This start: keys loaded from the checkpoint.
    pub restored_entries: i64,
    /// This start: change events replayed after it.
    pub replayed_records: i64,
    /// This start: checkpoints found unusable.
    pub fallbacks: u64,
    /// Segment files of the embedded log.
    pub log_segments: i64,
    /// Their size in bytes.
    pub log_bytes: i64,
}

/// The newest checkpoint's manifest, in short.
#[derive(Serialize, Debug, ToSchema)]
pub struct NewestCheckpoint {
    /// Its number (1, 2, 3, ... in the order taken).
    pub number: u64,
    /// When it was taken, ms since the epoch.
    pub taken_at_ms: i64,
    /// The source position it covers.
    pub position: lpm_service::position::SourcePosition,
    /// Keys stored.
    pub entries: u64,
    /// State file size.
    pub bytes: u64,
    /// How long taking it took.
    pub duration_ms: u64,
}

fn checkpoint_report(m: &lpm_service::checkpoint::CheckpointMetrics) -> CheckpointReport {
    CheckpointReport {
        newest: m.newest().map(|n| NewestCheckpoint {
            number: n.number,
            taken_at_ms: n.taken_at_ms,
            entries: n.total_entries(),
            bytes: n.state_bytes,
            duration_ms: n.duration_ms,
            position: n.position,
        }),
        age_seconds: m.age_seconds.get(),
        pending_changes: m.pending_changes.get(),
        taken: m.outcomes.with_label_values(&["taken"]).get(),
        skipped: m.skipped.get(),
        failed: m.failed.get(),
        recovery_seconds: m.recovery_seconds.get(),
        restored_entries: m.restored_entries.get(),
        replayed_records: m.replayed_records.get(),
        fallbacks: m.fallbacks.get(),
        log_segments: m.log_segments.get(),
        log_bytes: m.log_bytes.get(),
    }
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
        checkpoint: state.checkpoints.as_deref().map(checkpoint_report),
    }))
}
