//! Decode counters, shared by all workers (atomics; read by the replay summary and, later,
//! Prometheus). Labels are fixed and bounded: table, op, reason.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use lpm_engine::model::Table;
use lpm_engine::Change;

use crate::debezium::rows::{to_change_shaped, RowShape};
use crate::debezium::Decoded;
use crate::error::DecodeError;

/// Ops we count per table.
pub const OPS: [&str; 6] = ["c", "r", "u", "d", "t", "tombstone"];

/// Decode error reasons (see `DecodeError::reason`).
pub const ERROR_REASONS: [&str; 10] = [
    "bad_record",
    "invalid_json",
    "not_an_event",
    "unknown_op",
    "missing_key",
    "missing_after",
    "null_in_not_null",
    "bad_value",
    "envelope_mismatch",
    "flattened_without_deletes",
];

/// Skip reasons (see `Skip::reason`).
pub const SKIP_REASONS: [&str; 4] = [
    "unknown_table",
    "schema_change",
    "transaction_marker",
    "other",
];

/// Counters.
#[derive(Default)]
pub struct DecodeStats {
    /// Records read.
    pub records: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
    ingested: [[AtomicU64; 6]; Table::COUNT],
    errors: [AtomicU64; 10],
    skipped: [AtomicU64; 4],
}

impl DecodeStats {
    /// Counts one decoded event of `table` with `op` (one of [`OPS`]).
    pub fn ingested(&self, table: Table, op: &str) {
        if let Some(i) = OPS.iter().position(|o| *o == op) {
            self.ingested[table.index()][i].fetch_add(1, Relaxed);
        }
    }

    /// Counts a decode error.
    pub fn error(&self, reason: &str) {
        if let Some(i) = ERROR_REASONS.iter().position(|r| *r == reason) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    /// One decoded record -> the engine change it makes, counted: ingested by table and op,
    /// or skipped by reason (`Ok(None)`). An error is returned uncounted: sources go through
    /// [`crate::decode::DecodePath`], which counts and dead-letters it.
    pub fn change_of(
        &self,
        decoded: Result<Decoded, DecodeError>,
        shape: RowShape,
    ) -> Result<Option<Change>, DecodeError> {
        match decoded? {
            Decoded::Event(event) => {
                let code = event.code;
                let change = to_change_shaped(event, shape)?;
                match &change {
                    Some(Change::Row(rc)) => self.ingested(rc.table, code),
                    Some(Change::Truncate { table, .. }) => self.ingested(*table, code),
                    None => self.skipped("unknown_table"),
                }
                Ok(change)
            }
            Decoded::Skipped(skip) => {
                self.skipped(skip.reason());
                Ok(None)
            }
        }
    }

    /// Counts a skipped record.
    pub fn skipped(&self, reason: &str) {
        if let Some(i) = SKIP_REASONS.iter().position(|r| *r == reason) {
            self.skipped[i].fetch_add(1, Relaxed);
        }
    }

    /// `(table, op, count)` for every non-zero counter.
    pub fn ingested_counts(&self) -> Vec<(Table, &'static str, u64)> {
        let mut out = Vec::new();
        for t in Table::ALL {
            for (i, op) in OPS.iter().enumerate() {
                let n = self.ingested[t.index()][i].load(Relaxed);
                if n > 0 {
                    out.push((t, *op, n));
                }
            }
        }
        out
    }

    /// `(reason, count)` for every non-zero error counter.
    pub fn error_counts(&self) -> Vec<(&'static str, u64)> {
        ERROR_REASONS
            .iter()
            .zip(&self.errors)
            .map(|(r, n)| (*r, n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// `(reason, count)` for every non-zero skip counter.
    pub fn skipped_counts(&self) -> Vec<(&'static str, u64)> {
        SKIP_REASONS
            .iter()
            .zip(&self.skipped)
            .map(|(r, n)| (*r, n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Total decode errors.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(|n| n.load(Relaxed)).sum()
    }
}
