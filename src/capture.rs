//! `lpm capture`: MySQL/MariaDB binlog -> Debezium MySQL-connector events, written as a
//! `kcat -C -J` dump (which `lpm replay` and `shared/bench/oracle.py` read). The options shared
//! with `lpm serve --capture` live in [`CaptureOptions`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lpm_connectors::capture::{
    self, CaptureConfig, CaptureStats, FileSink, ResumeBy, SnapshotMode,
};

/// Capture options shared by `lpm capture` and `lpm serve --capture`.
#[derive(Args, Clone, Debug)]
pub struct CaptureOptions {
    /// Replica server id of this capture: unique among the server's replicas and captures.
    #[arg(long, env = "LPM_CAPTURE_SERVER_ID", default_value_t = CaptureConfig::default().server_id)]
    pub server_id: u32,
    /// Topic prefix (Debezium's `topic.prefix`): topics are `<prefix>.<db>.<table>`.
    #[arg(long, env = "LPM_CAPTURE_PREFIX", default_value = "lpm")]
    pub prefix: String,
    /// Databases to capture (repeat or comma-separate).
    #[arg(
        long = "database",
        env = "LPM_CAPTURE_DATABASES",
        value_delimiter = ',',
        default_value = "lost_persons_db"
    )]
    pub databases: Vec<String>,
    /// Tables to capture (`table` or `db.table`; repeat or comma-separate). Default: every table
    /// with a primary key in the databases.
    #[arg(long = "table", env = "LPM_CAPTURE_TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// `initial`: snapshot when nothing is stored yet; `never`: start at the current binlog end.
    #[arg(long, env = "LPM_CAPTURE_SNAPSHOT", value_enum, default_value_t = Snapshot::Initial)]
    pub snapshot: Snapshot,
    /// Resume by the stored binlog `position` or by MariaDB `gtid`.
    #[arg(long, env = "LPM_CAPTURE_RESUME_BY", value_enum, default_value_t = Resume::Position)]
    pub resume_by: Resume,
    /// Server heartbeat period while idle, in ms (3 missed periods = dead stream, reconnect).
    #[arg(long, env = "LPM_CAPTURE_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,
}

/// `--snapshot`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Snapshot {
    /// Snapshot when nothing is stored yet.
    Initial,
    /// No snapshot: only changes from now on.
    Never,
}

/// `--resume-by`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Resume {
    /// Binlog file and position.
    Position,
    /// MariaDB GTID state.
    Gtid,
}

impl CaptureOptions {
    /// The library configuration for `url`.
    pub fn config(&self, url: &str) -> CaptureConfig {
        CaptureConfig {
            url: url.to_string(),
            server_id: self.server_id,
            prefix: self.prefix.clone(),
            databases: self.databases.clone(),
            tables: self.tables.clone(),
            snapshot: match self.snapshot {
                Snapshot::Initial => SnapshotMode::Initial,
                Snapshot::Never => SnapshotMode::Never,
            },
            resume_by: match self.resume_by {
                Resume::Position => ResumeBy::Position,
                Resume::Gtid => ResumeBy::Gtid,
            },
            heartbeat: Duration::from_millis(self.heartbeat_ms.max(10)),
            ..CaptureConfig::default()
        }
    }
}

/// `lpm capture`.
#[derive(Args)]
pub struct CaptureArgs {
    /// The server: `mysql://user:password@host:port`.
    #[arg(long, env = "LPM_CAPTURE_MYSQL")]
    mysql: String,
    /// Output dump (kcat JSON lines). Its offsets live in `<FILE>.offsets.json`; a restart resumes
    /// after the last stored transaction, so the dump holds every committed change exactly once.
    #[arg(long, env = "LPM_CAPTURE_TO")]
    to: PathBuf,
    /// Partitions per topic for the `partition` field (Kafka's default partitioner on the key).
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Exit once the end of the binlog is reached (instead of following it).
    #[arg(long)]
    until_end: bool,
    /// Serve Prometheus metrics at this address (`/metrics`).
    #[arg(long, env = "LPM_CAPTURE_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    options: CaptureOptions,
}

/// Runs `lpm capture` until SIGTERM/SIGINT (or the end of the binlog with `--until-end`).
pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let mut cfg = args.options.config(&args.mysql);
    cfg.stop_at_end = args.until_end;
    let mut sink = FileSink::open(&args.to, args.partitions)
        .with_context(|| format!("opening {}", args.to.display()))?;
    let stats = Arc::new(CaptureStats::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        if let Some(addr) = args.metrics_listen {
            serve_metrics(addr, stats.clone()).await?;
        }
        capture::run(
            &cfg,
            &mut sink,
            stats.clone(),
            lpm_api::server::shutdown_signal(),
        )
        .await
        .context("capture stopped")
    })?;
    let s = stats.snapshot();
    eprintln!(
        "lpm capture: {} snapshot rows, {} transactions, {} reconnects; stored position {}",
        s.snapshot_rows,
        s.transactions,
        s.reconnects,
        s.position
            .map_or_else(|| "-".to_string(), |p| p.to_string())
    );
    Ok(())
}

/// A minimal `/metrics` endpoint on its own task.
async fn serve_metrics(addr: std::net::SocketAddr, stats: Arc<CaptureStats>) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let stats = stats.clone();
            async move { stats.render_prometheus() }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
