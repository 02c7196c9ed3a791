//! Checkpoint and recovery instruments (`/metrics`, the engine page). Registered once per
//! pipeline; the checkpoint thread and the start-up recovery update them.

use std::time::Instant;

use parking_lot::Mutex;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::file::Manifest;

/// The instruments.
pub struct CheckpointMetrics {
    /// `lpm_checkpoint_last_tick`: the engine tick of the newest checkpoint of this process.
    pub last_tick: IntGauge,
    /// `lpm_checkpoint_age_seconds`: since the newest checkpoint (this process's or the one
    /// loaded at start) was taken; refreshed every second.
    pub age_seconds: Gauge,
    /// `lpm_checkpoint_bytes`: the newest checkpoint's state file.
    pub bytes: IntGauge,
    /// `lpm_checkpoint_duration_seconds`: how long the newest one took.
    pub duration_seconds: Gauge,
    /// `lpm_checkpoint_pending_changes`: changes ingested since the newest checkpoint (what a
    /// restart would replay); an idle server's old checkpoint is not stale.
    pub pending_changes: IntGauge,
    /// `lpm_checkpoints_total{outcome}`: `taken`, `skipped`, `failed`.
    pub outcomes: IntCounterVec,
    /// `lpm_recovery_seconds`: start to ready at this start.
    pub recovery_seconds: Gauge,
    /// `lpm_recovery_replayed_records`: change events replayed after the checkpoint.
    pub replayed_records: IntGauge,
    /// `lpm_recovery_restored_entries`: stored keys loaded from the checkpoint.
    pub restored_entries: IntGauge,
    /// `lpm_recovery_fallbacks_total`: checkpoints found unusable at this start.
    pub fallbacks: IntCounter,
    /// Skipped checkpoints (a snapshot half read).
    pub skipped: IntCounter,
    /// Failed checkpoints.
    pub failed: IntCounter,
    /// `lpm_log_segments`: segment files of the embedded log.
    pub log_segments: IntGauge,
    /// `lpm_log_bytes`: their size.
    pub log_bytes: IntGauge,
    /// `lpm_log_retired_segments_total`: segments retired (deleted or archived) since start.
    pub retired_segments: IntCounter,
    /// When the newest checkpoint was taken (ms since the epoch).
    newest_at_ms: Mutex<Option<i64>>,
    /// The newest manifest (the engine page shows it).
    newest: Mutex<Option<Manifest>>,
    started: Instant,
}

impl CheckpointMetrics {
    /// Registers the instruments in `r`.
    pub fn register(r: &Registry) -> Result<CheckpointMetrics, prometheus::Error> {
        use crate::register as reg;
        let outcomes = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "lpm_checkpoints_total",
                    "Checkpoints attempted by this process, by outcome (taken, skipped while a snapshot is read, failed).",
                ),
                &["outcome"],
            )?,
        )?;
        Ok(CheckpointMetrics {
            last_tick: reg(r, IntGauge::new("lpm_checkpoint_last_tick", "Engine tick of the newest checkpoint this process took (0: none yet).")?)?,
            age_seconds: reg(r, Gauge::new("lpm_checkpoint_age_seconds", "Seconds since the newest checkpoint was taken (by this process or loaded at start); since start when there is none.")?)?,
            bytes: reg(r, IntGauge::new("lpm_checkpoint_bytes", "Size of the newest checkpoint's state file.")?)?,
            duration_seconds: reg(r, Gauge::new("lpm_checkpoint_duration_seconds", "How long the newest checkpoint took, request to published manifest.")?)?,
            pending_changes: reg(r, IntGauge::new("lpm_checkpoint_pending_changes", "Changes ingested since the newest checkpoint: what a restart now would replay after it.")?)?,
            recovery_seconds: reg(r, Gauge::new("lpm_recovery_seconds", "Seconds from start to ready at this start.")?)?,
            replayed_records: reg(r, IntGauge::new("lpm_recovery_replayed_records", "Change events replayed into the engine after the loaded checkpoint at this start (all of them without one).")?)?,
            restored_entries: reg(r, IntGauge::new("lpm_recovery_restored_entries", "Stored keys loaded from the checkpoint at this start.")?)?,
            fallbacks: reg(r, IntCounter::new("lpm_recovery_fallbacks_total", "Checkpoints found unusable (corrupt, torn, another format) at this start.")?)?,
            log_segments: reg(r, IntGauge::new("lpm_log_segments", "Segment files of the embedded log (0 with another source).")?)?,
            log_bytes: reg(r, IntGauge::new("lpm_log_bytes", "Bytes in the embedded log's segment files.")?)?,
            retired_segments: reg(r, IntCounter::new("lpm_log_retired_segments_total", "Embedded log segments retired (deleted or archived) because old checkpoints cover them.")?)?,
            skipped: outcomes.with_label_values(&["skipped"]),
            failed: outcomes.with_label_values(&["failed"]),
            outcomes,
            newest_at_ms: Mutex::new(None),
            newest: Mutex::new(None),
            started: Instant::now(),
        })
    }

    /// A checkpoint was taken.
    pub fn taken(&self, m: &Manifest) {
        self.outcomes.with_label_values(&["taken"]).inc();
        self.last_tick
            .set(i64::try_from(m.tick).unwrap_or(i64::MAX));
        self.bytes
            .set(i64::try_from(m.state_bytes).unwrap_or(i64::MAX));
        self.duration_seconds.set(m.duration_ms as f64 / 1000.0);
        self.loaded(m);
    }

    /// The checkpoint loaded at start (its age counts until the first new one).
    pub fn loaded(&self, m: &Manifest) {
        *self.newest_at_ms.lock() = Some(m.taken_at_ms);
        *self.newest.lock() = Some(m.clone());
        self.tick_age();
    }

    /// Refreshes `lpm_checkpoint_age_seconds`.
    pub fn tick_age(&self) {
        let age = match *self.newest_at_ms.lock() {
            Some(at) => (chrono::Utc::now().timestamp_millis() - at).max(0) as f64 / 1000.0,
            None => self.started.elapsed().as_secs_f64(),
        };
        self.age_seconds.set(age);
    }

    /// The source's history size, when it keeps one.
    pub fn history(&self, size: Option<(u64, u64)>) {
        if let Some((segments, bytes)) = size {
            self.log_segments
                .set(i64::try_from(segments).unwrap_or(i64::MAX));
            self.log_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// The newest checkpoint's manifest.
    pub fn newest(&self) -> Option<Manifest> {
        self.newest.lock().clone()
    }
}
