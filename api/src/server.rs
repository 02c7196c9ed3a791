//! `lpm serve`: builds the engine, the embedded system of record, auth, metrics and the router,
//! serves HTTP until a shutdown signal, then stops in order (stop accepting, finish in-flight
//! requests and writes, close WebSockets with a close frame, drain the engine).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::DecodeStats;
use lpm_service::error::ServiceError;
use lpm_service::notify::Notifier;
use lpm_service::pipeline::{Service, ServiceConfig};
use lpm_service::source::SourceConfig;

use crate::auth::{self, AuthState, AuthStore};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::state::{ApiConfig, AppState, Health};

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
    /// The embedded log starts a new segment past this size.
    pub log_segment_bytes: u64,
    /// Timeouts and the connection cap.
    pub http: crate::listen::HttpLimits,
    /// When checkpoints are taken.
    pub checkpoint: lpm_service::checkpoint::CheckpointConfig,
    /// Where notifications go (off without a target); an empty `base_url` takes the public
    /// base URL.
    pub notify: lpm_service::notify::NotifyConfig,
    /// Auto-assignment of cases filed without a responsible (`--auto-assign`); `None`: off.
    pub auto_assign: Option<lpm_service::sor::auto_assign::AutoAssignConfig>,
    /// Run as one process of a timely cluster (`--peers`, `--kafka` only); `api.cluster` says
    /// the same for the routes.
    pub cluster: Option<lpm_engine::cluster::ClusterConfig>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The pipeline (data-dir lock, engine, source, write side, sink).
    #[error("{0}")]
    Service(#[from] ServiceError),
    /// Auth store.
    #[error("auth: {0}")]
    Auth(#[from] auth::AuthError),
    /// Metrics registry.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// `--demo` on a data directory that holds users no demo created (a real server's).
    #[error(
        "--demo refuses the data directory {}: it holds {} user(s) the demo did not create ({}). \
         The demo adds accounts with public passwords, so it never runs on a real server's data; \
         give it its own --data-dir (without one, --demo uses ./data-demo)",
        .data_dir.display(),
        .users.len(),
        .users.join(", ")
    )]
    DemoOnRealData {
        /// The refused directory.
        data_dir: PathBuf,
        /// The real users found there.
        users: Vec<String>,
    },
    /// Notifications (the outbox, their threads).
    #[error("notifications: {0}")]
    Notify(#[from] lpm_service::notify::NotifyError),
    /// Socket.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl ServeConfig {
    /// The pipeline's part of the configuration.
    fn service(&self) -> ServiceConfig {
        let source = match (&self.kafka, &self.capture) {
            (Some(k), _) => SourceConfig::Kafka(k.clone()),
            (None, Some(c)) => SourceConfig::Capture(c.clone()),
            (None, None) => SourceConfig::Embedded {
                allow_log_cut: self.allow_log_cut,
                segment_bytes: self.log_segment_bytes,
            },
        };
        ServiceConfig {
            data_dir: self.data_dir.clone(),
            workers: self.workers,
            tz: self.api.tz,
            source,
            mysql: self.mysql.clone(),
            sink: self.sink.clone(),
            demo: self.demo.then_some(self.demo_every),
            visible_timeout: self.api.visible_timeout,
            read_timeout: self.api.read_timeout,
            checkpoint: self.checkpoint.clone(),
            hotspots: self.api.hotspots.resolutions(),
            cluster: self.cluster.clone(),
        }
    }
}

/// Runs the server until `shutdown` resolves. `on_listening` gets the bound address (tests
/// use port 0).
pub async fn run(
    cfg: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    if cfg.kafka.is_some() && cfg.capture.is_some() {
        return Err(ServiceError::Config(
            "--kafka reads its data from Kafka and cannot be combined with --capture".into(),
        )
        .into());
    }
    if cfg.demo {
        // before the pipeline starts, which would write the demo data set into the log
        let users = auth::real_users(&AuthStore::open(&cfg.data_dir)?);
        if !users.is_empty() {
            return Err(ServeError::DemoOnRealData {
                data_dir: cfg.data_dir.clone(),
                users,
            });
        }
    }
    let stats = Arc::new(DecodeStats::default());
    let metrics = Arc::new(Metrics::new(stats.clone())?);
    let health = Arc::new(Health::default());
    let on_ready = {
        let (health, metrics) = (health.clone(), metrics.clone());
        move || {
            health.set_ready();
            metrics.ready.set(1);
        }
    };
    // holds the data directory from here until it has stopped
    let service = Service::start(cfg.service(), stats, metrics.registry(), on_ready).await?;
    let auth_store = Arc::new(AuthStore::open(&cfg.data_dir)?);
    if cfg.demo {
        let creds = auth::ensure_demo_users(&auth_store)?;
        println!("{creds}");
        println!(
            "Demo data directory: {} (keep it apart from a real server's; delete it to start over).",
            cfg.data_dir.display()
        );
        let n = service.demo_commands();
        if n > 0 {
            println!("Demo: loaded {n} commands of history (reports, actions, assignments, status changes).");
        }
    } else if let Some(hint) = auth::first_start_hint(&cfg.data_dir)? {
        println!("{hint}");
    }
    let mut auth = AuthState::new(auth_store.clone(), cfg.secure_cookies);
    let auto_assign = start_auto_assign(&cfg, &service, &auth_store, metrics.registry())?;
    auth.presence = auto_assign.as_ref().map(|a| a.presence().clone());
    metrics
        .log_records_dropped
        .set(i64::try_from(service.log_records_dropped()).unwrap_or(i64::MAX));
    metrics.set_source(service.source().clone());
    let handle = service.engine().clone();
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
    // bound before the state is built: the default public base URL names the bound port
    let mut api = cfg.api.clone();
    if api.public_base_url.is_empty() {
        api.public_base_url = default_public_base_url(addr);
    }
    let mut notify = cfg.notify.clone();
    if notify.base_url.is_empty() {
        notify.base_url.clone_from(&api.public_base_url);
    }
    let notifier = Notifier::start(notify, &cfg.data_dir, handle.clone(), metrics.registry())?;
    let hub = Hub::start(handle.store().clone(), 1024);
    let public = crate::public::Public::start(handle.clone(), cfg.api.read_timeout);
    let state = AppState {
        engine: handle,
        source: service.source().clone(),
        mysql: service.mysql().cloned(),
        auth,
        metrics: metrics.clone(),
        config: Arc::new(api),
        health: health.clone(),
        hub: hub.clone(),
        checkpoints: Some(service.checkpoints().clone()),
        public,
        notifier: notifier.clone(),
        auto_assign: auto_assign.clone(),
    };
    // the retry of unassigned cases, woken by arrivals and dropped loads (cases left
    // unassigned before a restart wait for the first linked responder to sign in)
    let retry = match (&auto_assign, state.writer()) {
        (Some(a), Ok(w)) => Some(lpm_service::sor::auto_assign::retry::spawn(
            w.inner().clone(),
            a.clone(),
        )),
        _ => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let metrics_loop = spawn_metrics_loop(state.clone(), stop.clone());

    on_listening(addr);
    let app = match state.config.cluster {
        Some(c) if c.process != 0 => {
            println!("lpm is serving on http://{addr}/ (cluster process {} of {}: /healthz, /readyz and /metrics; process 0 serves the API)", c.process, c.processes);
            crate::follower_router(state.clone())
        }
        _ => {
            println!("lpm is serving on http://{addr}/ (web UI at /, API under /api/v1, Grafana under /grafana, metrics at /metrics)");
            crate::router(state.clone())
        }
    };
    let (h2, hub2) = (health.clone(), hub.clone());
    let graceful = async move {
        shutdown.await;
        tracing::info!("Shutting down: no new connections; finishing in-flight requests.");
        h2.set_stopping();
        hub2.shutdown();
    };
    crate::listen::serve(listener, app, cfg.http.clone(), metrics.clone(), graceful).await;
    // the engine answers reads until every handle is gone: drop ours before stopping it
    stop.store(true, Ordering::SeqCst);
    if let Some(t) = metrics_loop {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    if let Some(r) = retry {
        r.abort();
    }
    let public = state.public.clone();
    drop(state);
    // its thread holds an engine handle: gone before the engine stops
    tokio::task::spawn_blocking(move || public.index.stop())
        .await
        .ok();
    // so does the unassigned check; what is pending stays in the outbox for the next start
    if let Some(n) = notifier {
        tokio::task::spawn_blocking(move || n.stop()).await.ok();
    }
    service.stop().await;
    Ok(())
}

/// Auto-assignment when `--auto-assign` is on: the users' contact links loaded from the auth
/// store, handed to whichever system of record takes writes.
fn start_auto_assign(
    cfg: &ServeConfig,
    service: &Service,
    store: &AuthStore,
    registry: &prometheus::Registry,
) -> Result<Option<Arc<lpm_service::sor::auto_assign::AutoAssign>>, ServeError> {
    let Some(config) = &cfg.auto_assign else {
        return Ok(None);
    };
    let auto = lpm_service::sor::auto_assign::AutoAssign::new(config, registry)?;
    for (user, contact) in store.contact_links() {
        auto.presence().set_link(&user, Some(contact));
    }
    if let Some(sor) = service.source().embedded() {
        sor.set_auto_assign(auto.clone());
    }
    if let Some(sor) = service.mysql() {
        sor.set_auto_assign(auto.clone());
    }
    tracing::info!(
        cap = config.cap,
        session_ttl_s = config.session_ttl.as_secs(),
        "Auto-assignment is on."
    );
    Ok(Some(auto))
}

/// The public base URL when `--public-base-url` is not set: this server as bound, with a
/// loopback address for an unspecified one (a URL cannot name 0.0.0.0).
pub fn default_public_base_url(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

/// Updates the gauges and histograms that watch the engine (tick, freshness, staleness, state
/// sizes) four times a second.
fn spawn_metrics_loop(
    state: AppState,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
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
    match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "Could not start the metrics thread.");
            None
        }
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
