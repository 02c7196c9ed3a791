//! Whether MySQL answers, as writes and a background probe see it: `lpm_mysql_up`, the retry
//! and error counters, and the state `/readyz` reports.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::error::ErrorKind;
use prometheus::Registry;

/// The MySQL instruments (registered only when the server runs with `--mysql`).
pub struct MysqlMetrics {
    /// `lpm_mysql_up`: 1 when the last write or probe reached MySQL.
    pub up: IntGauge,
    /// `lpm_mysql_write_retries_total`: write attempts retried (deadlock, lock wait, duplicate
    /// key, broken connection).
    pub retries: IntCounter,
    /// `lpm_mysql_write_errors_total{kind}`: failed write attempts by kind (retried or not).
    pub errors: IntCounterVec,
}

impl MysqlMetrics {
    /// Registers the instruments in the server's registry.
    pub fn register(metrics: &Registry) -> Result<MysqlMetrics, prometheus::Error> {
        let m = MysqlMetrics {
            up: IntGauge::new(
                "lpm_mysql_up",
                "1 when MySQL (the system of record) answered the last write or probe.",
            )?,
            retries: IntCounter::new(
                "lpm_mysql_write_retries_total",
                "MySQL write attempts retried after a deadlock, lock-wait timeout, duplicate key \
                 or broken connection.",
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "lpm_mysql_write_errors_total",
                    "Failed MySQL write attempts by kind.",
                ),
                &["kind"],
            )?,
        };
        metrics.register(Box::new(m.up.clone()))?;
        metrics.register(Box::new(m.retries.clone()))?;
        metrics.register(Box::new(m.errors.clone()))?;
        Ok(m)
    }
}

/// MySQL's reachability.
pub struct MysqlHealth {
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
    metrics: MysqlMetrics,
}

impl MysqlHealth {
    /// Starts as up (unknown until the first probe).
    pub fn new(metrics: MysqlMetrics) -> MysqlHealth {
        metrics.up.set(1);
        MysqlHealth {
            up: AtomicBool::new(true),
            last_error: Mutex::new(None),
            metrics,
        }
    }

    /// MySQL answered.
    pub fn reached(&self) {
        if !self.up.swap(true, Ordering::SeqCst) {
            tracing::info!("MySQL answers again; writes resume.");
        }
        self.metrics.up.set(1);
    }

    /// MySQL did not answer (`kind` is a connection failure or a timeout).
    pub fn unreachable(&self, error: &str) {
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                error,
                "MySQL is unreachable; writes answer 503 until it is back."
            );
        }
        self.metrics.up.set(0);
        *self.last_error.lock() = Some(error.to_string());
    }

    /// Counts a failed attempt.
    pub fn failed(&self, kind: ErrorKind) {
        self.metrics.errors.with_label_values(&[kind.label()]).inc();
    }

    /// Counts a retry.
    pub fn retried(&self) {
        self.metrics.retries.inc();
    }

    /// Whether the last contact succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// `/readyz`'s `mysql` object.
    pub fn json(&self) -> serde_json::Value {
        let up = self.is_up();
        let error = if up {
            None
        } else {
            self.last_error.lock().clone()
        };
        serde_json::json!({"up": up, "writes": if up { "accepted" } else { "503 until MySQL is back" }, "error": error})
    }
}
