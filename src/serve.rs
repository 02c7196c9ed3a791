//! `lpm serve`, `lpm user add`, `lpm token create|revoke`, `lpm log export`: flags to configs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use lpm_api::auth::Role;
use lpm_api::server::{self, ServeConfig};
use lpm_api::ApiConfig;

/// Where `lpm serve` keeps its data without `--data-dir`.
const DATA_DIR: &str = "./data";
/// Where `lpm serve --demo` keeps its data without `--data-dir`: never a real server's
/// directory, since the demo accounts have public passwords.
const DEMO_DATA_DIR: &str = "./data-demo";

/// `lpm serve` flags.
///
/// The capture options are shared with `lpm capture`, where they are `--prefix`, `--database`,
/// ...; here they are renamed `--capture-*` so they read like `--kafka-*` beside them. The old
/// names stay as visible aliases for one release, so existing scripts keep working.
#[derive(Args)]
#[command(
    mut_arg("server_id", |a| a.long("capture-server-id").visible_alias("server-id")),
    mut_arg("prefix", |a| a.long("capture-prefix").visible_alias("prefix")),
    mut_arg("databases", |a| a.long("capture-database").visible_alias("database")),
    mut_arg("tables", |a| a.long("capture-table").visible_alias("table")),
    mut_arg("snapshot", |a| a.long("capture-snapshot").visible_alias("snapshot")),
    mut_arg("resume_by", |a| a.long("capture-resume-by").visible_alias("resume-by")),
    mut_arg("heartbeat_ms", |a| a.long("capture-heartbeat-ms").visible_alias("heartbeat-ms"))
)]
pub struct ServeArgs {
    /// A TOML file of `serve` settings, keys named as these flags with `_` for `-`
    /// (`listen = "0.0.0.0:8080"`); flags and environment variables override it. Without
    /// it, ./lpm.toml is read when it exists. See docs/configuration.md.
    #[arg(long, env = "LPM_CONFIG", value_name = "FILE")]
    #[allow(dead_code)] // read by main before this struct is built (src/config.rs)
    config: Option<PathBuf>,
    /// Where the embedded log and `auth.json` live [default: ./data, or ./data-demo with --demo].
    #[arg(long, env = "LPM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address.
    #[arg(long, env = "LPM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Dataflow worker threads.
    #[arg(long, short = 'w', env = "LPM_WORKERS", default_value_t = 2)]
    workers: usize,
    /// IANA zone for local times and the hour views.
    #[arg(long, env = "LPM_TZ", default_value = "America/Guayaquil", value_parser = crate::replay::parse_tz)]
    tz: chrono_tz::Tz,
    /// Load a demo data set on first start, create demo users (public passwords), and keep a
    /// trickle of changes. Uses ./data-demo unless --data-dir is given, and refuses a data
    /// directory that holds users the demo did not create.
    #[arg(long, env = "LPM_DEMO")]
    demo: bool,
    /// Demo trickle interval in milliseconds.
    #[arg(long, env = "LPM_DEMO_EVERY_MS", default_value_t = 1500)]
    demo_every_ms: u64,
    /// Mark the session cookie `Secure` (set when serving behind TLS).
    #[arg(long, env = "LPM_SECURE_COOKIES")]
    secure_cookies: bool,
    /// How long a write waits for the engine to show it before answering 202, in ms.
    #[arg(long, env = "LPM_VISIBLE_TIMEOUT_MS", default_value_t = 5000)]
    visible_timeout_ms: u64,
    /// Feed the engine from this MySQL/MariaDB binlog (`mysql://user:pass@host:port`) instead of
    /// the embedded log: a consistent snapshot at start, then streaming. The API is read-only
    /// unless `--mysql` sends writes to MySQL.
    #[arg(long, env = "LPM_CAPTURE")]
    capture: Option<String>,
    #[command(flatten)]
    capture_options: crate::capture::CaptureOptions,
    #[command(flatten)]
    kafka: crate::kafka::KafkaOptions,
    /// `--peers`, `--process`, `--peer-timeout-s`: one process of a cluster (with `--kafka`;
    /// docs/scale-out.md).
    #[command(flatten)]
    cluster: crate::cluster::ClusterArgs,
    /// Write to this MySQL/MariaDB (`mysql://user:pass@host:port/database`) instead of the
    /// embedded log. Needs a source that shows MySQL's changes to the engine (`--capture` or `--kafka`) and a
    /// migrated database (`lpm migrate`).
    #[arg(long, env = "LPM_MYSQL_URL")]
    mysql: Option<String>,
    /// Largest number of pooled MySQL connections.
    #[arg(long, env = "LPM_MYSQL_POOL_MAX", default_value_t = 16)]
    mysql_pool_max: usize,
    /// Bound of one MySQL write attempt (connect, statements, commit), in ms; an unreachable
    /// MySQL answers 503 after about this long.
    #[arg(long, env = "LPM_MYSQL_TIMEOUT_MS", default_value_t = 3000)]
    mysql_timeout_ms: u64,
    #[command(flatten)]
    sink: crate::sink::SinkOptions,
    #[command(flatten)]
    notify: crate::notify::NotifyOptions,
    /// Largest request body, in bytes.
    #[arg(long, env = "LPM_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Start even when the embedded log is corrupt before its end: cut it at the bad record,
    /// dropping the valid records after it (saved beside the log as `*.cut-<offset>`). Without
    /// it such a start is refused; `lpm_log_records_dropped` counts what was dropped.
    #[arg(long, env = "LPM_ALLOW_LOG_CUT")]
    allow_log_cut: bool,
    /// Take a checkpoint of the engine state at most this many seconds after the last one (if
    /// anything changed), so a restart replays only what follows it.
    #[arg(long, env = "LPM_CHECKPOINT_INTERVAL_S", default_value_t = 300)]
    checkpoint_interval_s: u64,
    /// Also take one once this many changes arrived since the last.
    #[arg(
        long,
        env = "LPM_CHECKPOINT_EVERY_CHANGES",
        default_value_t = 1_000_000
    )]
    checkpoint_every_changes: u64,
    /// Checkpoints kept (at least 1; with 2 a corrupt newest one falls back to the previous).
    #[arg(long, env = "LPM_CHECKPOINT_KEEP", default_value_t = 2)]
    checkpoint_keep: usize,
    /// Take no checkpoints (existing ones are still loaded at start).
    #[arg(long, env = "LPM_NO_CHECKPOINTS")]
    no_checkpoints: bool,
    /// The embedded log starts a new segment file past this many bytes.
    #[arg(long, env = "LPM_LOG_SEGMENT_BYTES", default_value_t = lpm_connectors::log::DEFAULT_SEGMENT_BYTES)]
    log_segment_bytes: u64,
    /// Keep log segments this many seconds after a checkpoint covers them (the log is the audit
    /// trail of who wrote what: the default keeps a week); then they are deleted, or moved to
    /// `--log-archive`.
    #[arg(long, env = "LPM_LOG_RETENTION_S", default_value_t = 7 * 24 * 3600)]
    log_retention_s: u64,
    /// Move retired log segments into this directory instead of deleting them.
    #[arg(long, env = "LPM_LOG_ARCHIVE")]
    log_archive: Option<PathBuf>,
    /// A request's headers must arrive within this many ms, or the connection is closed.
    #[arg(long, env = "LPM_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    http_header_timeout_ms: u64,
    /// A connection that moves no byte for this many ms is closed.
    #[arg(long, env = "LPM_HTTP_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    http_idle_timeout_ms: u64,
    /// Most open connections (WebSockets included); more wait in the listen backlog. Lowered to
    /// fit the open-files limit, which is raised to its hard limit at start.
    #[arg(long, env = "LPM_HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    http_max_connections: usize,
    /// WebSocket heartbeat (a heartbeat message and a ping) interval, in ms.
    #[arg(long, env = "LPM_WS_HEARTBEAT_MS", default_value_t = 15_000)]
    ws_heartbeat_ms: u64,
    /// A WebSocket client that does not take a frame within this many ms is closed.
    #[arg(long, env = "LPM_WS_SEND_TIMEOUT_MS", default_value_t = 10_000)]
    ws_send_timeout_ms: u64,
    /// A WebSocket client that answers no ping for this many ms is closed.
    #[arg(long, env = "LPM_WS_PONG_TIMEOUT_MS", default_value_t = 45_000)]
    ws_pong_timeout_ms: u64,
    /// Origins besides the server's own that may open the WebSocket stream, comma-separated
    /// (e.g. `https://lpm.example.org` behind a reverse proxy).
    #[arg(long, env = "LPM_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// The URL people reach this server at from outside (`https://lpm.example.org`, a path
    /// prefix allowed): a published case's `public_url` and its poster's QR code are this plus
    /// `/public/cases/<id>` [default: http:// and the bound --listen, 127.0.0.1 for 0.0.0.0]. Set it
    /// before printing posters.
    #[arg(long, env = "LPM_PUBLIC_BASE_URL", value_parser = parse_public_base_url)]
    public_base_url: Option<String>,
    /// H3 resolution (0-15) of the `hotspots` view's cells: 7 is ~5 km² a cell, each step
    /// finer divides a cell's area by 7.
    #[arg(long, env = "LPM_HOTSPOTS_RESOLUTION", default_value_t = 7,
        value_parser = clap::value_parser!(u8).range(0..=15))]
    hotspots_resolution: u8,
    /// Read-only tokens see a `hotspots` cell only when it holds at least this many reports:
    /// a cell with one or two reports could point at a person's home.
    #[arg(long, env = "LPM_HOTSPOTS_MIN_REPORTS", default_value_t = 5)]
    hotspots_min_reports: u32,
    /// H3 resolution (0-15, no finer than --hotspots-resolution) of the cells read-only tokens
    /// see: coarser cells, kept as a second exact view, so a shared dashboard cannot narrow a
    /// report down to a few streets [default: the --hotspots-resolution cells].
    #[arg(long, env = "LPM_HOTSPOTS_READER_RESOLUTION",
        value_parser = clap::value_parser!(u8).range(0..=15))]
    hotspots_reader_resolution: Option<u8>,
    /// Assign each case filed without a responsible (and retry unassigned ones) to a present
    /// responder under the cap: the least loaded, then the one assigned longest ago, then the
    /// lowest contact id.
    #[arg(long, env = "LPM_AUTO_ASSIGN")]
    auto_assign: bool,
    /// Most open cases auto-assignment gives one responder (a manual assignment may exceed it).
    #[arg(long, env = "LPM_AUTO_ASSIGN_CAP", default_value_t = 50)]
    auto_assign_cap: u32,
    /// A responder counts as present (eligible for auto-assignment) for this many seconds after
    /// their session's last request.
    #[arg(long, env = "LPM_AUTO_ASSIGN_SESSION_TTL_S", default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..))]
    auto_assign_session_ttl_s: u64,
}

/// A base URL: `http` or `https`, a host, no query or fragment, at most 200 bytes (the QR code
/// of a poster holds it); the trailing `/` is dropped.
fn parse_public_base_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("expected a URL starting with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the URL names no host".into());
    }
    if s.len() > 200 {
        return Err("longer than 200 bytes".into());
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '<' | '>'))
    {
        return Err("expected no spaces, query (?) or fragment (#)".into());
    }
    Ok(s.to_string())
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let tz = args.tz;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(if args.demo { DEMO_DATA_DIR } else { DATA_DIR }));
    let resolution = |n: u8, flag: &str| {
        lpm_engine::hotspots::resolution(n).with_context(|| format!("{flag} is 0 to 15"))
    };
    let hotspots = lpm_api::state::HotspotsConfig {
        resolution: resolution(args.hotspots_resolution, "--hotspots-resolution")?,
        min_reports: i64::from(args.hotspots_min_reports),
        reader_resolution: args
            .hotspots_reader_resolution
            .map(|n| resolution(n, "--hotspots-reader-resolution"))
            .transpose()?,
    };
    hotspots.check()?;
    let kafka = args.kafka.config()?;
    let cluster = args.cluster.config(cluster_settings(&args, &hotspots))?;
    if let Some(c) = &cluster {
        // without --kafka the pipeline refuses it (ServiceConfig::check); the demo's own
        // refusal there would not name --peers
        if args.demo {
            anyhow::bail!("--peers cannot be combined with --demo (a cluster reads Kafka)");
        }
        tracing::info!(
            process = c.process,
            processes = c.peers.len(),
            "Joining the cluster."
        );
    }
    let place = cluster.as_ref().map(|c| lpm_api::state::ClusterPlace {
        process: c.process,
        processes: c.peers.len(),
    });
    let cfg = ServeConfig {
        data_dir,
        listen: args.listen,
        workers: args.workers,
        demo: args.demo,
        demo_every: Duration::from_millis(args.demo_every_ms.max(10)),
        secure_cookies: args.secure_cookies,
        api: ApiConfig {
            tz,
            visible_timeout: Duration::from_millis(args.visible_timeout_ms),
            max_body_bytes: args.max_body_bytes,
            heartbeat: Duration::from_millis(args.ws_heartbeat_ms.max(10)),
            ws_send_timeout: Duration::from_millis(args.ws_send_timeout_ms.max(10)),
            ws_pong_timeout: Duration::from_millis(args.ws_pong_timeout_ms.max(10)),
            allowed_origins: args
                .allowed_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            // empty: the server derives it from the address it binds
            public_base_url: args.public_base_url.unwrap_or_default(),
            hotspots,
            cluster: place,
            ..ApiConfig::default()
        },
        allow_log_cut: args.allow_log_cut,
        checkpoint: lpm_service::checkpoint::CheckpointConfig {
            interval: Duration::from_secs(args.checkpoint_interval_s.max(1)),
            every_changes: args.checkpoint_every_changes.max(1),
            keep: args.checkpoint_keep.max(1),
            disabled: args.no_checkpoints,
            log_retention: Duration::from_secs(args.log_retention_s),
            log_archive: args.log_archive,
        },
        log_segment_bytes: args.log_segment_bytes.max(4096),
        http: lpm_api::listen::HttpLimits {
            header_read_timeout: Duration::from_millis(args.http_header_timeout_ms.max(10)),
            idle_timeout: Duration::from_millis(args.http_idle_timeout_ms.max(10)),
            max_connections: args.http_max_connections.max(1),
            ..lpm_api::listen::HttpLimits::default()
        },
        capture: args
            .capture
            .as_deref()
            .map(|url| args.capture_options.config(url)),
        kafka,
        mysql: args.mysql.map(|url| lpm_service::sor::mysql::MysqlConfig {
            pool_max: args.mysql_pool_max.max(1),
            timeout: Duration::from_millis(args.mysql_timeout_ms.max(100)),
            ..lpm_service::sor::mysql::MysqlConfig::new(url)
        }),
        sink: args.sink.config(),
        notify: args.notify.config()?,
        auto_assign: args
            .auto_assign
            .then(|| lpm_service::sor::auto_assign::AutoAssignConfig {
                cap: i64::from(args.auto_assign_cap),
                session_ttl: Duration::from_secs(args.auto_assign_session_ttl_s),
            }),
        cluster,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        tokio::select! {
            served = server::run(cfg, server::shutdown_signal(), |_| {}) => served.map_err(anyhow::Error::from),
            lost = lost_peer() => Err(lost),
        }
    });
    if outcome.is_err() {
        // a broken cluster's threads may never finish: do not wait for them
        rt.shutdown_background();
    }
    outcome
}

/// Resolves when a thread of this cluster process failed (a lost peer): a timely cluster is
/// fail-stop, so `lpm serve` exits 1 with it instead of serving views that no longer move.
async fn lost_peer() -> anyhow::Error {
    loop {
        if let Some(failure) = lpm_engine::cluster::failure() {
            return anyhow::anyhow!(
                "{failure}; a cluster is fail-stop, so this process stops too (restart every \
                 process: each loads its share of the newest checkpoint all of them hold, and \
                 reads its partitions from there)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What every process of a serving cluster must share, beyond what the engine checks itself
/// (worker threads, the peer list) and the version `ClusterArgs` adds: what shapes the
/// dataflow, and what the Kafka share depends on (the same topics, group and tick clock).
fn cluster_settings(
    args: &ServeArgs,
    hotspots: &lpm_api::state::HotspotsConfig,
) -> Vec<(String, String)> {
    let k = &args.kafka;
    vec![
        ("command".into(), "serve".into()),
        ("tz".into(), args.tz.name().into()),
        ("hotspots".into(), format!("{:?}", hotspots.resolutions())),
        (
            "kafka brokers".into(),
            k.kafka_brokers.clone().unwrap_or_default(),
        ),
        ("kafka group".into(), k.kafka_group.clone()),
        (
            "kafka topics".into(),
            match &k.kafka_topics {
                Some(r) => format!("regex {r}"),
                None => format!("{}.{}.*", k.kafka_prefix, k.kafka_database),
            },
        ),
        (
            "kafka heartbeat topic".into(),
            k.kafka_heartbeat_topic.clone().unwrap_or_default(),
        ),
        ("kafka tick ms".into(), k.kafka_tick_ms.max(1).to_string()),
    ]
}

/// `lpm user ...`
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (password from `LPM_PASSWORD` or asked on stdin).
    Add {
        /// User name.
        name: String,
        /// `admin` or `responder`.
        #[arg(long, default_value = "responder")]
        role: String,
        /// Data directory.
        #[arg(long, env = "LPM_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// `lpm token ...`
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a read-only API token (printed once).
    Create {
        /// A label, e.g. `grafana`.
        label: String,
        /// Data directory.
        #[arg(long, env = "LPM_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token id.
        id: String,
        /// Data directory.
        #[arg(long, env = "LPM_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// `lpm log ...`
#[derive(Subcommand)]
pub enum LogCommand {
    /// Write the embedded log as a kcat-style dump (`lpm replay` and `oracle.py` read it).
    ///
    /// Read-only, safe on a running server. Once log retention (`--log-retention-s`) has
    /// retired the log's first records, the dump starts with the newest valid checkpoint's
    /// rows as Debezium snapshot reads (`op: "r"`), followed by the log records after it;
    /// without a checkpoint that covers up to the retained log, it refuses.
    Export {
        /// Data directory.
        #[arg(long, env = "LPM_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Output file (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            data_dir,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let password = match std::env::var("LPM_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprintln!("Password for {name} (at least 10 characters), then Enter:");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            lpm_api::auth::cli_add_user(&data_dir, &name, &password, role)?;
            println!("User {name} ({}) created.", role.as_str());
            Ok(())
        }
    }
}

pub fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { label, data_dir } => {
            let t = lpm_api::auth::cli_create_token(&data_dir, &label)?;
            println!("{t}");
            Ok(())
        }
        TokenCommand::Revoke { id, data_dir } => {
            lpm_api::auth::cli_revoke_token(&data_dir, &id)?;
            println!("Token {id} revoked.");
            Ok(())
        }
    }
}

pub fn log(cmd: LogCommand) -> anyhow::Result<()> {
    match cmd {
        LogCommand::Export { data_dir, out } => {
            let exported = match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let exported =
                        lpm_service::export::embedded_log(&data_dir, std::io::BufWriter::new(f));
                    if exported.is_err() {
                        // a partial or empty dump would replay to wrong views: leave none
                        let _ = std::fs::remove_file(&path);
                    }
                    exported?
                }
                None => {
                    let stdout = std::io::stdout();
                    lpm_service::export::embedded_log(
                        &data_dir,
                        std::io::BufWriter::new(stdout.lock()),
                    )?
                }
            };
            let log = &exported.log;
            if let Some(s) = &exported.snapshot {
                eprintln!(
                    "checkpoint {} (log records up to {}): {} rows as snapshot reads ({} deleted \
                     keys and {} rows hidden by a truncate left out)",
                    s.checkpoint, s.log_seq, s.rows, s.deleted, s.hidden
                );
            }
            eprintln!(
                "exported {} records, {} events ({} tombstones){}{}",
                log.records,
                log.events,
                log.tombstones,
                match &exported.snapshot {
                    Some(s) => format!(" after record {}", s.log_seq),
                    None => String::new(),
                },
                if log.stopped.is_some() {
                    "; stopped at a bad record"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
