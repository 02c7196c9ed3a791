//! `lpm capture`: reads a MySQL/MariaDB binlog and emits the change events Debezium's MySQL
//! connector would (2.x, default settings, JsonConverter without schemas).
//!
//! ```text
//! preflight (server settings) ─▶ snapshot (op r, one consistent read) ─▶ stream (binlog from the
//!   snapshot's position; c/u/d, PK change = d + tombstone + c, truncate = t) ─▶ CaptureSink
//!   (file dump, engine) which stores each batch with the position to resume from
//! ```
//!
//! - Positions move only at transaction boundaries (XID, or the standalone GTID of a DDL), so a
//!   restart never resumes inside a transaction.
//! - Resume by binlog file/position (default) or by MariaDB GTID (`ResumeBy::Gtid`, survives a
//!   failover to a replica with the same GTIDs).
//! - The server's heartbeat (`@master_heartbeat_period`) tells an idle server from a dead
//!   stream: no event and no heartbeat for 3 periods means reconnect.
//! - Connection errors reconnect with exponential backoff from the last stored position;
//!   configuration errors (a setting, a purged position) stop with a message naming the fix.
//!
//! Modules: [`column`] (values -> Debezium JSON), [`table`] (table shape from the binlog or
//! `information_schema`), [`settings`] (preflight), [`snapshot`], [`stream`], [`record`]
//! (records, batches, positions, Kafka partitioning), [`sink`] (where batches go), [`stats`].

pub mod column;
pub mod record;
pub mod settings;
pub mod sink;
pub mod snapshot;
pub mod stats;
pub mod stream;
pub mod table;
mod table_map;

use std::sync::Arc;
use std::time::Duration;

pub use record::{coords_of, reached, Batch, BatchKind, BinlogPosition, Record};
pub use settings::ServerInfo;
pub use sink::{CaptureSink, FileSink, SinkError, Stored};
pub use stats::CaptureStats;

/// How a restart finds its place in the binlog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResumeBy {
    /// The binlog file and position stored with the last batch.
    #[default]
    Position,
    /// The MariaDB GTID state stored with the last batch (`@slave_connect_state`).
    Gtid,
}

/// When to take a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotMode {
    /// When the sink has no stored position (Debezium's `initial`).
    #[default]
    Initial,
    /// Never: stream from the server's current position when nothing is stored
    /// (Debezium's `no_data`): only changes made from now on.
    Never,
}

/// Everything a capture is configured with.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// `mysql://user:pass@host:port` (a database in the URL is ignored; see `databases`).
    pub url: String,
    /// Our replica server id: unique among the server's replicas and captures.
    pub server_id: u32,
    /// Debezium's `topic.prefix` (`source.name`).
    pub prefix: String,
    /// Databases to capture.
    pub databases: Vec<String>,
    /// Tables to capture (`table` or `db.table`); empty means every table with a primary key.
    pub tables: Vec<String>,
    /// Snapshot policy.
    pub snapshot: SnapshotMode,
    /// Resume policy.
    pub resume_by: ResumeBy,
    /// Server heartbeat period while idle.
    pub heartbeat: Duration,
    /// Largest snapshot chunk, in rows.
    pub snapshot_chunk: usize,
    /// Flush streamed transactions to the sink once this many records wait (or when the
    /// stream has nothing more right now).
    pub max_batch_records: usize,
    /// Stop at the current end of the binlog instead of waiting for more (tests, one-off dumps).
    pub stop_at_end: bool,
    /// Longest wait between reconnect attempts.
    pub max_backoff: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            url: "mysql://root@127.0.0.1:3306".into(),
            server_id: default_server_id(),
            prefix: "lpm".into(),
            databases: vec!["lost_persons_db".into()],
            tables: Vec::new(),
            snapshot: SnapshotMode::Initial,
            resume_by: ResumeBy::Position,
            heartbeat: Duration::from_secs(1),
            snapshot_chunk: 2048,
            max_batch_records: 8192,
            stop_at_end: false,
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Debezium's default range starts at 5400; ours sits apart so both can run against one server.
const fn default_server_id() -> u32 {
    5_817_001
}

impl CaptureConfig {
    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        if !self.databases.iter().any(|d| d == db) {
            return false;
        }
        self.tables.is_empty()
            || self
                .tables
                .iter()
                .any(|t| t == table || t.split_once('.') == Some((db, table)))
    }
}

/// Why a capture stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A server setting or privilege is wrong: fix the server, then restart.
    #[error("{0}")]
    Settings(String),
    /// The URL does not parse.
    #[error("the MySQL URL is invalid: {0}")]
    Url(String),
    /// The stored position is gone from the server (purged binlog, unknown GTID).
    #[error("cannot resume from {position}: {reason}")]
    PositionLost {
        /// The stored position.
        position: BinlogPosition,
        /// The server's answer.
        reason: String,
    },
    /// A row or table map we cannot encode.
    #[error("{0}")]
    Encode(String),
    /// The sink failed.
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    /// The server or the connection failed (retried with backoff by [`run`]).
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
}

impl CaptureError {
    /// Whether reconnecting can help.
    pub fn is_transient(&self) -> bool {
        match self {
            CaptureError::Mysql(mysql_async::Error::Server(e)) => {
                // 1236: position not in the binlog; 1045/1227/1044: access denied
                !matches!(e.code, 1236 | 1045 | 1227 | 1044 | 1142)
            }
            CaptureError::Mysql(_) => true,
            _ => false,
        }
    }
}

/// Runs the capture until `shutdown` resolves (or the end of the binlog with `stop_at_end`):
/// preflight, snapshot when needed, then streaming with reconnects.
pub async fn run(
    cfg: &CaptureConfig,
    sink: &mut dyn CaptureSink,
    stats: Arc<CaptureStats>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), CaptureError> {
    let opts =
        mysql_async::Opts::from_url(&cfg.url).map_err(|e| CaptureError::Url(e.to_string()))?;
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = async {
            let server = settings::preflight(&opts, cfg).await?;
            stats.set_connected(true);
            let from = match sink.stored() {
                Some(s) => s.position,
                None if cfg.snapshot == SnapshotMode::Initial => {
                    snapshot::run(&opts, cfg, &server, sink, &stats).await?
                }
                None => settings::current_position(&opts).await?,
            };
            stream::run(&opts, cfg, &server, from, sink, &stats).await
        };
        let result = tokio::select! {
            r = attempt => r,
            () = &mut shutdown => return Ok(()),
        };
        stats.set_connected(false);
        match result {
            Ok(()) => return Ok(()),
            Err(CaptureError::PositionLost { position, reason })
                if cfg.snapshot == SnapshotMode::Initial && sink.position_lost() =>
            {
                stats.resnapshot();
                tracing::error!(%position, %reason,
                    "The binlog position to resume from is gone from the server (purged?); taking a new snapshot.");
            }
            Err(e) if e.is_transient() => {
                stats.reconnected();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "The binlog connection failed; reconnecting from the last stored position.");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => return Ok(()),
                }
                backoff = (backoff * 2).min(cfg.max_backoff);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_filters() {
        let mut cfg = CaptureConfig::default();
        assert!(cfg.captures("lost_persons_db", "persons_lost"));
        assert!(!cfg.captures("other", "persons_lost"));
        cfg.tables = vec!["case_cases".into(), "lost_persons_db.case_actions".into()];
        assert!(cfg.captures("lost_persons_db", "case_cases"));
        assert!(cfg.captures("lost_persons_db", "case_actions"));
        assert!(!cfg.captures("lost_persons_db", "persons_lost"));
    }
}
