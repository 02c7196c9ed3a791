//! `lpm serve`: builds the engine, the embedded system of record, auth, metrics and the router,
//! serves HTTP until a shutdown signal, then stops in order (stop accepting, finish in-flight
//! requests and writes, close WebSockets with a close frame, drain the engine).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::DecodeStats;
use lpm_engine::{Engine, EngineConfig, PushFeed};

use crate::auth::{self, AuthState, AuthStore};
use crate::metrics::Metrics;
use crate::state::{ApiConfig, AppState, Health};
use crate::stream::Hub;
use lpm_service::sor::EmbeddedSor;
use lpm_service::source::Source;

/// Everything `lpm serve` is configured with.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where the log and `auth.json` live.
    pub data_dir: PathBuf,
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Dataflow workers.
    pub workers: usize,
    /// Load the demo data set and keep a trickle going.
    pub demo: bool,
    /// Trickle interval in demo mode.
    pub demo_every: Duration,
    /// Mark cookies `Secure` (behind TLS).
    pub secure_cookies: bool,
    /// Serving options.
    pub api: ApiConfig,
    /// Feed the engine from a MySQL/MariaDB binlog capture instead of the embedded log (the
    /// server is then read-only unless `mysql` is set).
    pub capture: Option<lpm_connectors::capture::CaptureConfig>,
    /// Feed the engine from Debezium topics on Kafka instead of the embedded log.
    pub kafka: Option<lpm_connectors::kafka::KafkaConfig>,
    /// Write to MySQL instead of the embedded log (needs a source that reads MySQL).
    pub mysql: Option<lpm_service::sor::mysql::MysqlConfig>,
    /// Keep `agg_*` tables in this MySQL database equal to the views (`--sink`).
    pub sink: Option<lpm_service::sink::SinkConfig>,
    /// Start even if the embedded log is corrupt before its end, cutting the valid records
    /// after the bad one (`--allow-log-cut`); without it such a start is refused.
    pub allow_log_cut: bool,
    /// Timeouts and the connection cap.
    pub http: crate::listen::HttpLimits,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process holds the data directory.
    #[error("{0}")]
    Lock(#[from] lpm_connectors::lock::LockError),
    /// Auth store.
    #[error("auth: {0}")]
    Auth(#[from] auth::AuthError),
    /// Log / system of record.
    #[error("embedded log: {0}")]
    Sor(#[from] lpm_service::sor::SorError),
    /// Engine.
    #[error("engine: {0}")]
    Engine(#[from] lpm_engine::EngineError),
    /// The binlog capture cannot start.
    #[error("capture: {0}")]
    Capture(String),
    /// The Kafka source cannot start.
    #[error("kafka: {0}")]
    Kafka(#[from] lpm_connectors::kafka::KafkaError),
    /// `--mysql` is misconfigured or its database is not migrated.
    #[error("--mysql: {0}")]
    Mysql(String),
    /// The dead-letter file in the data dir cannot be opened.
    #[error("dead letters: {path}: {source}")]
    DeadLetters {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The aggregate sink cannot start (a bad URL; MySQL being down is retried instead).
    #[error("sink: {0}")]
    Sink(#[from] lpm_service::sink::SinkError),
    /// Metrics registry.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Socket.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the server until `shutdown` resolves. `on_listening` gets the bound address (tests
/// use port 0).
pub async fn run(
    cfg: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let started = Instant::now();
    check_mysql_source(&cfg)?;
    // held until this function returns, after the log writer and the engine have stopped
    let data_dir_lock = lpm_connectors::lock::DataDirLock::acquire(&cfg.data_dir)?;
    let auth_store = Arc::new(AuthStore::open(&cfg.data_dir)?);
    if cfg.demo {
        let creds = auth::ensure_demo_users(&auth_store)?;
        println!("{creds}");
    } else if let Some(hint) = auth::first_start_hint(&cfg.data_dir)? {
        println!("{hint}");
    }
    let auth = AuthState::new(auth_store, cfg.secure_cookies);

    let stats = Arc::new(DecodeStats::default());
    let feed = Arc::new(PushFeed::new(8));
    // a Kafka source feeds the workers itself (each decodes its partitions)
    let kafka =
        match &cfg.kafka {
            Some(_) if cfg.capture.is_some() || cfg.demo => return Err(ServeError::Capture(
                "--kafka reads its data from Kafka and cannot be combined with --capture or --demo"
                    .into(),
            )),
            Some(k) => Some(Arc::new(lpm_service::kafka::KafkaInput::start(
                k.clone(),
                cfg.workers.max(1),
                stats.clone(),
            )?)),
            None => None,
        };
    let engine_feed: Arc<dyn lpm_engine::Feed> = match &kafka {
        Some(k) => k.source.feed.clone(),
        None => feed.clone(),
    };
    let engine = Engine::start(
        EngineConfig {
            workers: cfg.workers.max(1),
            tz: cfg.api.tz,
            case_model: true,
            collect_rows: false,
            max_ticks_in_flight: 2,
            arrangement_log: true,
        },
        engine_feed,
    )?;
    if let Some(k) = &kafka {
        k.attach(engine.handle().store().clone());
    }
    // the engine's source: the embedded log (read-write) or a binlog capture (read-only)
    let mut sor = None;
    let mut capture = None;
    let mut log_records_dropped = 0;
    let ready_target;
    if let Some(k) = &kafka {
        tracing::info!(brokers = %k.source.config().brokers, "Feeding the engine from Kafka (read-only API).");
        ready_target = None::<lpm_engine::Tick>;
    } else if let Some(ccfg) = &cfg.capture {
        if cfg.demo {
            return Err(ServeError::Capture(
                "--demo writes its own data and cannot be combined with --capture".into(),
            ));
        }
        let opts = mysql_async::Opts::from_url(&ccfg.url)
            .map_err(|e| ServeError::Capture(format!("invalid URL: {e}")))?;
        lpm_connectors::capture::settings::preflight(&opts, ccfg)
            .await
            .map_err(|e| ServeError::Capture(e.to_string()))?;
        let dead = dead_letters(&cfg)?;
        let (source, handle) =
            lpm_service::capture::start(ccfg.clone(), feed.clone(), stats.clone(), dead)
                .map_err(|e| ServeError::Capture(format!("starting the capture thread: {e}")))?;
        tracing::info!(databases = ?ccfg.databases, "Feeding the engine from the binlog capture (read-only API).");
        capture = Some((source, handle));
        ready_target = None::<lpm_engine::Tick>;
    } else {
        let log_dir = cfg.data_dir.join("log");
        tracing::info!(dir = %log_dir.display(), "Rebuilding state from the embedded log.");
        let on_mid_log = if cfg.allow_log_cut {
            lpm_connectors::log::MidLogCorruption::CutAndDrop
        } else {
            lpm_connectors::log::MidLogCorruption::Refuse
        };
        let dead = dead_letters(&cfg)?;
        let (opened_sor, opened) = EmbeddedSor::open(
            &log_dir,
            on_mid_log,
            feed.clone(),
            stats.clone(),
            dead,
            |n| {
                tracing::info!(records = n, "Replaying the embedded log.");
            },
        )?;
        if let Some(cut) = &opened.recovery.cut {
            tracing::warn!(offset = cut.offset, bytes = cut.bytes_cut, reason = %cut.reason,
                records_dropped = cut.records_dropped,
                "The embedded log had a torn or corrupt tail; it was cut there.");
            log_records_dropped = cut.records_dropped;
        }
        tracing::info!(
            records = opened.records,
            "Embedded log replayed into the engine."
        );
        ready_target = Some(opened.replay_tick.unwrap_or(0));
        sor = Some(Arc::new(opened_sor));
    }
    let capture_source = capture.as_ref().map(|(s, _)| s.clone());
    let handle = engine.handle();
    let metrics = Arc::new(Metrics::new(stats)?);
    metrics
        .log_records_dropped
        .set(i64::try_from(log_records_dropped).unwrap_or(i64::MAX));
    if let Some(c) = &capture_source {
        metrics.set_capture(c.stats.clone());
    }
    if let Some(k) = &kafka {
        let c = k.source.config();
        metrics.set_kafka(k.source.stats.clone(), c.idle_after, c.stall_after);
    }
    let mysql = match &cfg.mysql {
        Some(m) => Some(start_mysql(m, &handle, &cfg.api, &metrics).await?),
        None => None,
    };
    let health = Arc::new(Health::default());
    let hub = Hub::start(handle.store().clone(), 1024);
    let source = match (&kafka, &capture_source, &sor) {
        (Some(k), _, _) => Source::Kafka(k.clone()),
        (None, Some(c), _) => Source::Capture(c.clone()),
        (None, None, Some(s)) => Source::Embedded(s.clone()),
        (None, None, None) => {
            return Err(ServeError::Capture(
                "no source feeds the engine (an internal error: please report it)".into(),
            ))
        }
    };
    let state = AppState {
        engine: handle.clone(),
        source: source.clone(),
        mysql: mysql.clone(),
        auth,
        metrics: metrics.clone(),
        config: Arc::new(cfg.api.clone()),
        health: health.clone(),
        hub: hub.clone(),
    };

    // --- aggregate sink (docs/sink.md): follows the view store, never holds the engine handle
    let sink = match &cfg.sink {
        Some(scfg) => {
            // every source, Kafka included: the sink's restart guard compares these
            let source = source.clone();
            let position: lpm_service::sink::PositionFn = Arc::new(move |t| source.position_at(t));
            let sink_metrics = lpm_service::sink::SinkMetrics::register(metrics.registry())?;
            tracing::info!(sink_id = %scfg.sink_id, "Starting the aggregate sink.");
            Some(lpm_service::sink::start(
                scfg.clone(),
                handle.store().clone(),
                position,
                sink_metrics,
            )?)
        }
        None => None,
    };
    // --- end aggregate sink

    // readiness: the engine has applied everything the log held (or the capture's snapshot)
    {
        let (store, health, metrics) = (handle.store().clone(), health.clone(), metrics.clone());
        let source = capture_source.clone();
        let kafka = kafka.clone();
        std::thread::Builder::new()
            .name("lpm-ready".into())
            .spawn(move || {
                if let Some(k) = kafka {
                    // caught up: every partition applied up to its high watermark at assignment
                    let mut said = Instant::now();
                    while !k.source.caught_up() {
                        if said.elapsed() > Duration::from_secs(5) {
                            tracing::info!(lag = k.source.stats.lag(), "Waiting for the engine to catch up with Kafka.");
                            said = Instant::now();
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                } else {
                    let ready_target = match (ready_target, source) {
                        (Some(t), _) => t,
                        (None, Some(source)) => loop {
                            if let Some(t) = source.snapshot_tick() {
                                break t;
                            }
                            if let Some(why) = source.failed() {
                                tracing::error!(error = %why, "Not ready: the capture failed before its snapshot completed.");
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        },
                        (None, None) => 0,
                    };
                    while !store.wait_for(ready_target, Duration::from_secs(5)) {
                        tracing::info!(target_tick = ready_target, tick = ?store.tick(),
                            "Waiting for the engine to catch up with the log.");
                    }
                }
                health.set_ready();
                metrics.ready.set(1);
                tracing::info!(ms = started.elapsed().as_millis() as u64, "Ready.");
            })
            .map_err(|e| ServeError::Listen {
                addr: cfg.listen,
                source: e,
            })?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    spawn_metrics_loop(state.clone(), stop.clone());
    if let Some(m) = &mysql {
        m.spawn_probe(Duration::from_secs(2), stop.clone());
    }
    let mut trickle = None;
    if let (true, Some(sor)) = (cfg.demo, &sor) {
        let now = chrono::Utc::now().timestamp_millis();
        let n = lpm_service::demo::load(sor, lpm_service::demo::DemoSize::default(), now)?;
        if n > 0 {
            println!("Demo: loaded {n} commands of history (reports, actions, assignments, status changes).");
        }
        trickle = lpm_service::demo::trickle(sor.clone(), cfg.demo_every, stop.clone()).ok();
    }

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: cfg.listen,
        source,
    })?;
    on_listening(addr);
    println!("lpm is serving on http://{addr}/ (web UI at /, API under /api/v1, Grafana under /grafana, metrics at /metrics)");

    let app = crate::router(state.clone());
    let (h2, hub2) = (health.clone(), hub.clone());
    let graceful = async move {
        shutdown.await;
        tracing::info!("Shutting down: no new connections; finishing in-flight requests.");
        h2.set_stopping();
        hub2.shutdown();
    };
    crate::listen::serve(listener, app, cfg.http.clone(), metrics.clone(), graceful).await;
    stop.store(true, Ordering::SeqCst);
    if let Some(t) = trickle {
        let _ = t.join();
    }
    // every acknowledged write was fsync'd before its answer; close the engine input
    if let Some((_, c)) = capture {
        let _ = tokio::task::spawn_blocking(move || c.stop()).await;
    }
    if let Some(k) = kafka.clone() {
        let _ = tokio::task::spawn_blocking(move || k.source.stop()).await;
    }
    if let Some(sor) = &sor {
        sor.close();
    }
    if let Some(m) = &mysql {
        m.close().await;
    }
    feed.close();
    drop(state);
    drop(handle);
    let _ = tokio::task::spawn_blocking(move || engine.join()).await;
    // the views are final now: the sink writes the last tick (bounded wait) and ends
    if let Some(sink) = sink {
        let _ = tokio::task::spawn_blocking(move || sink.stop()).await;
    }
    drop(data_dir_lock);
    Ok(())
}

// ---- MySQL as the system of record (`--mysql`) ----------------------------------------------

/// What feeds the engine. Writes to MySQL reach the engine only through a source that reads
/// MySQL's changes; a new source is one more variant here and one arm in
/// [`check_mysql_source`].
enum EngineSource {
    /// The embedded log: holds only the API's own writes.
    Embedded,
    /// The binlog capture (`--capture`).
    Capture(lpm_connectors::capture::CaptureConfig),
    /// Debezium topics on Kafka (`--kafka`).
    Kafka(lpm_connectors::kafka::KafkaConfig),
}

impl EngineSource {
    fn of(cfg: &ServeConfig) -> EngineSource {
        match (&cfg.kafka, &cfg.capture) {
            (Some(k), _) => EngineSource::Kafka(k.clone()),
            (None, Some(c)) => EngineSource::Capture(c.clone()),
            (None, None) => EngineSource::Embedded,
        }
    }
}

/// Refuses `--mysql` without a source that shows MySQL's changes, or whose source does not
/// read the database the writes go to (they would never become visible).
fn check_mysql_source(cfg: &ServeConfig) -> Result<(), ServeError> {
    let Some(m) = &cfg.mysql else { return Ok(()) };
    if cfg.demo {
        return Err(ServeError::Mysql(
            "--demo writes its own data to the embedded log and cannot be combined with --mysql"
                .into(),
        ));
    }
    let database = m.database().map_err(|e| ServeError::Mysql(e.to_string()))?;
    match EngineSource::of(cfg) {
        EngineSource::Capture(c) if c.databases.contains(&database) => Ok(()),
        EngineSource::Capture(c) => Err(ServeError::Mysql(format!(
            "writes go to database {database}, but --capture reads {:?}; add --database {database}",
            c.databases
        ))),
        EngineSource::Kafka(k) => match &k.topics {
            lpm_connectors::kafka::TopicSelection::Debezium { database: d, .. } if *d != database => {
                Err(ServeError::Mysql(format!(
                    "writes go to database {database}, but --kafka reads topics of {d}; set --kafka-database {database}"
                )))
            }
            _ => Ok(()),
        },
        EngineSource::Embedded => Err(ServeError::Mysql(
            "the engine must be fed from MySQL's changes to show writes made there: add \
             --capture URL or --kafka BROKERS (the embedded log only holds writes made without --mysql)"
                .into(),
        )),
    }
}

/// Opens the MySQL pool and checks the database is migrated.
async fn start_mysql(
    m: &lpm_service::sor::mysql::MysqlConfig,
    engine: &lpm_engine::EngineHandle,
    api: &ApiConfig,
    metrics: &Metrics,
) -> Result<Arc<lpm_service::sor::mysql::MysqlSor>, ServeError> {
    let sor = lpm_service::sor::mysql::MysqlSor::new(
        m.clone(),
        engine.clone(),
        api.visible_timeout,
        api.read_timeout,
        metrics.registry(),
    )
    .map_err(|e| ServeError::Mysql(e.to_string()))?;
    sor.check_schema()
        .await
        .map_err(|e| ServeError::Mysql(e.to_string()))?;
    tracing::info!(
        database = sor.database(),
        "Writes go to MySQL (the system of record)."
    );
    Ok(Arc::new(sor))
}

/// Updates the gauges and histograms that watch the engine (tick, freshness, staleness, state
/// sizes) four times a second.
fn spawn_metrics_loop(state: AppState, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("lpm-metrics".into())
        .spawn(move || {
            let store = state.engine.store().clone();
            let m = &state.metrics;
            let mut seen = 0;
            let mut sizes_at = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                // wake as soon as a tick completes, so freshness is measured when it happens
                store.wait_for(seen + 1, Duration::from_millis(250));
                let tick = store.tick();
                seen = tick.unwrap_or(0);
                let now_ms = chrono::Utc::now().timestamp_millis();
                let (visible, waiting) = state.take_visible(tick);
                for t in visible {
                    m.tick_duration.observe(t.pushed.elapsed().as_secs_f64());
                    for c in t.committed {
                        let seconds = ((now_ms - c).max(0) as f64) / 1000.0;
                        m.freshness.observe(seconds);
                        m.recent.freshness(seconds);
                    }
                }
                let stale = waiting.map_or(0.0, |at| at.elapsed().as_secs_f64());
                for v in crate::routes::views::VIEW_NAMES {
                    m.staleness.with_label_values(&[v]).set(stale);
                }
                if let Some(t) = tick {
                    m.tick.set(t as i64);
                    m.recent.tick(t);
                }
                if sizes_at.elapsed() < Duration::from_millis(250) {
                    continue;
                }
                sizes_at = Instant::now();
                let es = state.engine.stats();
                for table in lpm_engine::model::Table::ALL {
                    m.upsert_rows
                        .with_label_values(&[table.name()])
                        .set(es.entries[table.index()] as i64);
                }
                for a in &es.arrangements {
                    m.arrangement_records
                        .with_label_values(&[&a.name])
                        .set(a.records);
                    m.arrangement_batches
                        .with_label_values(&[&a.name])
                        .set(a.batches);
                }
                let u = es.upsert;
                for (outcome, n) in [
                    ("applied", u.applied),
                    ("duplicate", u.duplicates),
                    ("stale", u.stale),
                    ("unknown_delete", u.unknown_deletes),
                    ("truncated", u.truncated),
                    ("swept", u.swept),
                ] {
                    crate::metrics::set_counter(&m.upsert_events.with_label_values(&[outcome]), n);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "Could not start the metrics thread.");
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Where the capture's and the embedded log's undecodable records go: `dead-letters.jsonl` in
/// the data dir (Kafka has its dead-letter topic).
fn dead_letters(
    cfg: &ServeConfig,
) -> Result<Arc<dyn lpm_connectors::dead_letter::DeadLetters>, ServeError> {
    let path = cfg
        .data_dir
        .join(lpm_connectors::dead_letter::file::DATA_DIR_FILE);
    match lpm_connectors::dead_letter::file::FileDeadLetters::open(&path) {
        Ok(file) => Ok(Arc::new(file)),
        Err(source) => Err(ServeError::DeadLetters { path, source }),
    }
}
