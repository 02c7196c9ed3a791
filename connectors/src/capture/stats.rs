//! What the capture has done, for metrics and logs: records by table and op, transactions,
//! reconnects, heartbeats, and lag (server commit time vs now). Updated per batch, read by the
//! metrics exporter at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::record::{BinlogPosition, Record};

/// Shared counters of one capture.
#[derive(Debug, Default)]
pub struct CaptureStats {
    records: Mutex<BTreeMap<(String, &'static str), u64>>,
    transactions: AtomicU64,
    snapshot_rows: AtomicU64,
    reconnects: AtomicU64,
    resnapshots: AtomicU64,
    heartbeats: AtomicU64,
    events: AtomicU64,
    connected: AtomicBool,
    /// Commit time of the newest change handed to the sink, epoch ms (0 = none yet).
    newest_commit_ms: AtomicI64,
    /// Wall-clock time of the last event or heartbeat from the server, epoch ms.
    last_contact_ms: AtomicI64,
    position: Mutex<Option<BinlogPosition>>,
}

/// A point-in-time copy of [`CaptureStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureSnapshot {
    /// Records by (table, op) (`c`, `u`, `d`, `t`, `r`).
    pub records: BTreeMap<(String, &'static str), u64>,
    /// Committed transactions handed to the sink.
    pub transactions: u64,
    /// Snapshot rows handed to the sink.
    pub snapshot_rows: u64,
    /// Reconnects after errors.
    pub reconnects: u64,
    /// New snapshots taken because the resume position was gone.
    pub resnapshots: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Binlog events received.
    pub events: u64,
    /// Whether a binlog connection is up.
    pub connected: bool,
    /// Commit time of the newest change handed on, epoch ms.
    pub newest_commit_ms: Option<i64>,
    /// Last event or heartbeat, epoch ms.
    pub last_contact_ms: Option<i64>,
    /// The last stored position.
    pub position: Option<BinlogPosition>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl CaptureStats {
    /// One record of `table` with `op`.
    pub fn record(&self, table: &str, op: &'static str) {
        *self
            .records
            .lock()
            .entry((table.to_string(), op))
            .or_insert(0) += 1;
    }

    /// A snapshot chunk.
    pub fn snapshot_rows(&self, records: &[Record]) {
        self.snapshot_rows
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut map = self.records.lock();
        for r in records {
            let table = r.topic.rsplit('.').next().unwrap_or_default().to_string();
            *map.entry((table, "r")).or_insert(0) += 1;
        }
    }

    /// Transactions stored by the sink, up to `position`.
    pub fn committed(&self, n: u64, newest_commit_ms: Option<i64>, position: &BinlogPosition) {
        self.transactions.fetch_add(n, Ordering::Relaxed);
        if let Some(ms) = newest_commit_ms {
            self.newest_commit_ms.fetch_max(ms, Ordering::Relaxed);
        }
        *self.position.lock() = Some(position.clone());
    }

    /// Any binlog event.
    pub fn event_seen(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.last_contact_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// A server heartbeat (idle server, live stream).
    pub fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
    }

    /// A reconnect after an error.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// A new snapshot because the resume position was gone.
    pub fn resnapshot(&self) {
        self.resnapshots.fetch_add(1, Ordering::Relaxed);
    }

    /// Connection state.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> CaptureSnapshot {
        let opt = |v: i64| (v != 0).then_some(v);
        CaptureSnapshot {
            records: self.records.lock().clone(),
            transactions: self.transactions.load(Ordering::Relaxed),
            snapshot_rows: self.snapshot_rows.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            resnapshots: self.resnapshots.load(Ordering::Relaxed),
            heartbeats: self.heartbeats.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            newest_commit_ms: opt(self.newest_commit_ms.load(Ordering::Relaxed)),
            last_contact_ms: opt(self.last_contact_ms.load(Ordering::Relaxed)),
            position: self.position.lock().clone(),
        }
    }

    /// Prometheus text exposition of the capture's metrics (for `lpm capture --metrics-listen`
    /// and `lpm serve --capture`, which registers the same names).
    pub fn render_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let s = self.snapshot();
        let now = now_ms();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP lpm_capture_records_total Change records emitted, by table and Debezium op."
        );
        let _ = writeln!(out, "# TYPE lpm_capture_records_total counter");
        for ((table, op), n) in &s.records {
            let _ = writeln!(
                out,
                "lpm_capture_records_total{{table=\"{table}\",op=\"{op}\"}} {n}"
            );
        }
        let simple: [(&str, &str, &str, f64); 6] = [
            (
                "lpm_capture_transactions_total",
                "counter",
                "Committed transactions stored by the sink.",
                s.transactions as f64,
            ),
            (
                "lpm_capture_reconnects_total",
                "counter",
                "Reconnects after a binlog connection error.",
                s.reconnects as f64,
            ),
            (
                "lpm_capture_resnapshots_total",
                "counter",
                "New snapshots taken because the binlog position to resume from was gone (purged).",
                s.resnapshots as f64,
            ),
            (
                "lpm_capture_heartbeats_total",
                "counter",
                "Server heartbeats received while idle.",
                s.heartbeats as f64,
            ),
            (
                "lpm_capture_binlog_events_total",
                "counter",
                "Binlog events received.",
                s.events as f64,
            ),
            (
                "lpm_capture_connected",
                "gauge",
                "1 while a binlog connection is up.",
                f64::from(u8::from(s.connected)),
            ),
        ];
        for (name, kind, help, v) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let lag = s
            .newest_commit_ms
            .map_or(0.0, |ms| (now - ms).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "# HELP lpm_capture_lag_seconds Now minus the server commit time of the newest change handed on (binlog timestamps have 1 s resolution).\n# TYPE lpm_capture_lag_seconds gauge\nlpm_capture_lag_seconds {lag}");
        let silent = s
            .last_contact_ms
            .map_or(0.0, |ms| (now - ms).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "# HELP lpm_capture_seconds_since_server_contact Seconds since the last binlog event or heartbeat (grows only when the stream is dead).\n# TYPE lpm_capture_seconds_since_server_contact gauge\nlpm_capture_seconds_since_server_contact {silent}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
        let s = CaptureStats::default();
        s.record("persons_lost", "c");
        s.record("persons_lost", "c");
        s.record("case_cases", "d");
        s.reconnected();
        let text = s.render_prometheus();
        assert!(
            text.contains("lpm_capture_records_total{table=\"persons_lost\",op=\"c\"} 2"),
            "{text}"
        );
        assert!(text.contains("lpm_capture_records_total{table=\"case_cases\",op=\"d\"} 1"));
        assert!(text.contains("lpm_capture_reconnects_total 1"));
        assert!(text.contains("lpm_capture_connected 0"));
    }
}
