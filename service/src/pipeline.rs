//! The running pipeline: data-dir lock, engine, source, write side, aggregate sink, demo data,
//! readiness, and the order they stop in. `lpm serve` starts one [`Service`] and serves it
//! over HTTP; nothing here knows HTTP.
//!
//! Start: validate the options, lock the data directory, start the engine on the source's
//! feed (the embedded log replays, a capture snapshots, Kafka attaches), open MySQL for writes
//! (`--mysql`), start the sink (`--sink`) and a readiness thread, load the demo history.
//! Stop (the reverse of the data path): demo trickle, source (every acknowledged write was
//! fsync'd or committed before its answer), MySQL pool, engine input, engine, then the sink
//! writes the final views, and the data directory is released last.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use lpm_connectors::lock::DataDirLock;
use lpm_connectors::DecodeStats;
use lpm_engine::checkpoint::ImageSink;
use lpm_engine::{Engine, EngineConfig, EngineHandle, PushFeed};

use crate::checkpoint::file::Manifest;
use crate::checkpoint::store::CheckpointDir;
use crate::checkpoint::{CheckpointConfig, CheckpointMetrics, Checkpointer, Role, Taker};
use crate::error::ServiceError;
use crate::sink::{self, Sink, SinkConfig, SinkMetrics};
use crate::sor::mysql::{MysqlConfig, MysqlSor};
use crate::source::{Recovery, Source, SourceConfig};

/// Everything the pipeline is configured with.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Where the embedded log lives (and the lock that keeps a second process out).
    pub data_dir: PathBuf,
    /// Dataflow workers.
    pub workers: usize,
    /// Zone for local times in the views.
    pub tz: Tz,
    /// What feeds the engine.
    pub source: SourceConfig,
    /// Write to MySQL instead of the embedded log (needs a source that reads MySQL).
    pub mysql: Option<MysqlConfig>,
    /// Keep `agg_*` tables in a MySQL database equal to the views (`--sink`).
    pub sink: Option<SinkConfig>,
    /// Load the demo history and keep a trickle of new actions going at this interval.
    pub demo: Option<Duration>,
    /// How long a MySQL write waits for the engine to show it.
    pub visible_timeout: Duration,
    /// How long a MySQL read may wait for the engine.
    pub read_timeout: Duration,
    /// When checkpoints are taken (`crate::checkpoint`).
    pub checkpoint: CheckpointConfig,
    /// The H3 resolutions the `hotspots` view is kept at (the cells people see, then the
    /// coarser cells read-only tokens see, if configured); empty: the view is off.
    pub hotspots: Vec<lpm_engine::hotspots::Resolution>,
    /// Run as one process of a timely cluster (`--peers`): only with Kafka, which then reads
    /// this process's share of the partitions; each process checkpoints its share of the
    /// state when process 0 asks, and a restart loads the newest tick all of them hold
    /// (`crate::checkpoint`, "In a cluster"). `None`: one process.
    pub cluster: Option<lpm_engine::cluster::ClusterConfig>,
}

impl ServiceConfig {
    /// Refuses combinations that cannot work, before anything starts.
    fn check(&self) -> Result<(), ServiceError> {
        if let Some(c) = &self.cluster {
            if !matches!(self.source, SourceConfig::Kafka(_)) {
                return Err(ServiceError::Config(
                    "--peers needs --kafka: a cluster's processes each read their share of the \
                     topics' partitions (the embedded log and --capture have one reader)"
                        .into(),
                ));
            }
            if self.mysql.is_some() {
                return Err(ServiceError::Config(
                    "--mysql cannot be combined with --peers yet: a cluster serves reads only \
                     (run the writes on a single lpm, or straight against MySQL)"
                        .into(),
                ));
            }
            if self.sink.is_some() && c.process != 0 {
                return Err(ServiceError::Config(format!(
                    "--sink belongs on process 0 of the cluster, where the views are (this is \
                     process {})",
                    c.process
                )));
            }
        }
        if self.demo.is_some() && !self.source.takes_demo() {
            return Err(ServiceError::Config(
                "--demo writes its own data to the embedded log and cannot be combined with \
                 --capture or --kafka"
                    .into(),
            ));
        }
        if let Some(m) = &self.mysql {
            if self.demo.is_some() {
                return Err(ServiceError::Mysql(
                    "--demo writes its own data to the embedded log and cannot be combined with --mysql"
                        .into(),
                ));
            }
            let database = m
                .database()
                .map_err(|e| ServiceError::Mysql(e.to_string()))?;
            self.source.check_shows_writes_to(&database)?;
        }
        Ok(())
    }
}

/// The running pipeline. [`Service::stop`] ends it in order.
pub struct Service {
    engine: Engine,
    handle: EngineHandle,
    source: Source,
    mysql: Option<Arc<MysqlSor>>,
    feed: Arc<PushFeed>,
    sink: Option<Sink>,
    trickle: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    log_records_dropped: u64,
    demo_commands: usize,
    checkpointer: Option<Checkpointer>,
    checkpoint_metrics: Arc<CheckpointMetrics>,
    recovery: Recovery,
    /// One process of a cluster: no checkpoint at shutdown (it needs every process, and the
    /// others may be stopping too; the periodic ones are what a restart loads).
    clustered: bool,
    /// Released last, after the engine and the log writer have stopped.
    lock: DataDirLock,
}

impl Service {
    /// Starts the pipeline. Decoder counters go to `stats`; the write side's and the sink's
    /// instruments register in `registry`. `on_ready` runs once the engine shows everything
    /// the source had at start (on a thread of its own).
    pub async fn start(
        cfg: ServiceConfig,
        stats: Arc<DecodeStats>,
        registry: &prometheus::Registry,
        on_ready: impl FnOnce() + Send + 'static,
    ) -> Result<Service, ServiceError> {
        let t0 = std::time::Instant::now();
        cfg.check()?;
        let lock = DataDirLock::acquire(&cfg.data_dir)?;
        let feed = Arc::new(PushFeed::new(8));
        let checkpoint_metrics = Arc::new(CheckpointMetrics::register(registry)?);
        let (images_tx, images) = std::sync::mpsc::channel();
        let engine_config = EngineConfig {
            workers: cfg.workers.max(1),
            tz: cfg.tz,
            case_model: true,
            collect_rows: false,
            max_ticks_in_flight: 2,
            arrangement_log: true,
            images: Some(ImageSink(Arc::new(move |image| {
                let _ = images_tx.send(image);
            }))),
            hotspots: cfg.hotspots.clone(),
        };
        let started = Source::start(
            &cfg.source,
            &cfg.data_dir,
            (engine_config, cfg.cluster.clone()),
            feed.clone(),
            stats,
        )
        .await?;
        let (source, engine) = (started.source, started.engine);
        let recovery = started.recovery;
        checkpoint_metrics
            .fallbacks
            .inc_by(recovery.rejected.len() as u64);
        checkpoint_metrics
            .restored_entries
            .set(i64::try_from(recovery.restored_entries).unwrap_or(i64::MAX));
        checkpoint_metrics
            .replayed_records
            .set(i64::try_from(recovery.replayed_events).unwrap_or(i64::MAX));
        if let Some(m) = &recovery.checkpoint {
            checkpoint_metrics.loaded(m);
        }
        let handle = engine.handle();
        let mysql = match &cfg.mysql {
            Some(m) => Some(open_mysql(m, &handle, &cfg, registry).await?),
            None => None,
        };
        let sink = match &cfg.sink {
            Some(scfg) => {
                // the sink's restart guard compares the positions of whichever source runs
                let s = source.clone();
                let position: sink::PositionFn = Arc::new(move |t| s.position_at(t));
                tracing::info!(sink_id = %scfg.sink_id, "Starting the aggregate sink.");
                Some(sink::start(
                    scfg.clone(),
                    handle.store().clone(),
                    position,
                    SinkMetrics::register(registry)?,
                )?)
            }
            None => None,
        };
        let on_ready = {
            let m = checkpoint_metrics.clone();
            // a capture or Kafka replays its tail while the server starts: count it at ready
            // (the embedded log replayed before `Source::start` returned)
            let tail = source.embedded().is_none().then(|| {
                let base = recovery.checkpoint.as_ref().map_or(0, |c| c.ingest_seq);
                (source.checkpointable(), base)
            });
            move || {
                m.recovery_seconds.set(t0.elapsed().as_secs_f64());
                if let Some((source, base)) = tail {
                    let replayed = source.ingested().saturating_sub(base);
                    m.replayed_records
                        .set(i64::try_from(replayed).unwrap_or(i64::MAX));
                }
                on_ready();
            }
        };
        spawn_readiness(&source, &handle, t0, on_ready)?;
        // `--no-checkpoints`: none at all, not even at shutdown (existing ones were loaded)
        let checkpointable = (!cfg.checkpoint.disabled).then(|| source.checkpointable());
        let checkpointer = match checkpointable {
            Some(checkpointable) => Some(Checkpointer::start(Taker {
                dir: CheckpointDir::open(&cfg.data_dir).map_err(ServiceError::Checkpoint)?,
                config: cfg.checkpoint.clone(),
                source: checkpointable,
                images,
                workers: cfg.workers.max(1),
                metrics: checkpoint_metrics.clone(),
                history: recovery
                    .checkpoint
                    .as_ref()
                    .map(|m| {
                        let mut h = m.history.clone();
                        h.push(crate::checkpoint::Taken {
                            at_ms: m.taken_at_ms,
                            position: m.position.clone(),
                        });
                        h
                    })
                    .unwrap_or_default(),
                covered_ingested: recovery.checkpoint.as_ref().map_or(0, |c| c.ingest_seq),
                role: match &cfg.cluster {
                    None => Role::Alone,
                    Some(c) if c.process == 0 => Role::Leader,
                    Some(_) => Role::Follower,
                },
            })?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(m) = &mysql {
            m.spawn_probe(Duration::from_secs(2), stop.clone());
        }
        let (mut trickle, mut demo_commands) = (None, 0);
        if let (Some(every), Some(sor)) = (cfg.demo, source.embedded()) {
            let now = chrono::Utc::now().timestamp_millis();
            demo_commands = crate::demo::load(sor, crate::demo::DemoSize::default(), now)?;
            // the history is the bulk of the log: a restart should not replay it
            if let (Some(c), true) = (&checkpointer, demo_commands > 0) {
                if let Err(why) = c.checkpoint_now() {
                    tracing::error!(error = %why, "Checkpoint after the demo history failed.");
                }
            }
            trickle = Some(crate::demo::trickle(sor.clone(), every, stop.clone())?);
        }
        Ok(Service {
            engine,
            handle,
            source,
            mysql,
            feed,
            sink,
            trickle,
            stop,
            log_records_dropped: started.log_records_dropped,
            demo_commands,
            checkpointer,
            checkpoint_metrics,
            clustered: cfg.cluster.is_some(),
            recovery,
            lock,
        })
    }

    /// Engine reads.
    pub fn engine(&self) -> &EngineHandle {
        &self.handle
    }

    /// What feeds the engine.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The MySQL system of record (`--mysql`).
    pub fn mysql(&self) -> Option<&Arc<MysqlSor>> {
        self.mysql.as_ref()
    }

    /// Valid records the embedded log's recovery cut at this start (`--allow-log-cut`).
    pub fn log_records_dropped(&self) -> u64 {
        self.log_records_dropped
    }

    /// Commands of demo history loaded at this start (0 when the log already held cases).
    pub fn demo_commands(&self) -> usize {
        self.demo_commands
    }

    /// What this start loaded from a checkpoint and replayed after it.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Checkpoint and recovery instruments (the newest checkpoint's manifest among them).
    pub fn checkpoints(&self) -> &Arc<CheckpointMetrics> {
        &self.checkpoint_metrics
    }

    /// Takes a checkpoint now and waits for it (`Ok(None)`: skipped, or this source takes
    /// none).
    pub async fn checkpoint_now(&self) -> Result<Option<Manifest>, String> {
        let Some(c) = &self.checkpointer else {
            return Ok(None);
        };
        tokio::task::block_in_place(|| c.checkpoint_now())
    }

    /// Stops in order (see the module docs); returns once the sink wrote the final views or
    /// gave up within its stop timeout. Every acknowledged write is durable before this. The
    /// engine answers reads until every [`EngineHandle`] is gone, so the caller drops its
    /// clones (and whatever holds them) first.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let (trickle, source, checkpointer) = (self.trickle, self.source, self.checkpointer);
        let clustered = self.clustered;
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(t) = trickle {
                let _ = t.join();
            }
            // a clean stop leaves a checkpoint of everything written: the next start replays
            // nothing (the feed is still open, the writer has acknowledged everything)
            if let Some(c) = checkpointer {
                if !clustered {
                    if let Err(why) = c.checkpoint_now() {
                        tracing::error!(error = %why, "Checkpoint at shutdown failed.");
                    }
                }
                c.stop();
            }
            source.stop();
        })
        .await;
        if let Some(m) = self.mysql {
            m.close().await;
        }
        self.feed.close();
        drop(self.handle);
        let engine = self.engine;
        let _ = tokio::task::spawn_blocking(move || engine.join()).await;
        // the views are final now: the sink writes the last tick (bounded wait) and ends
        if let Some(sink) = self.sink {
            let _ = tokio::task::spawn_blocking(move || sink.stop()).await;
        }
        drop(self.lock);
    }
}

/// Opens the MySQL pool and checks the database is migrated.
async fn open_mysql(
    m: &MysqlConfig,
    engine: &EngineHandle,
    cfg: &ServiceConfig,
    registry: &prometheus::Registry,
) -> Result<Arc<MysqlSor>, ServiceError> {
    let sor = MysqlSor::new(
        m.clone(),
        engine.clone(),
        cfg.visible_timeout,
        cfg.read_timeout,
        registry,
    )
    .map_err(|e| ServiceError::Mysql(e.to_string()))?;
    sor.check_schema()
        .await
        .map_err(|e| ServiceError::Mysql(e.to_string()))?;
    tracing::info!(
        database = sor.database(),
        "Writes go to MySQL (the system of record)."
    );
    Ok(Arc::new(sor))
}

/// Waits on a thread of its own for the engine to catch up with the source, then runs
/// `on_ready`; a source that fails first (a capture before its snapshot) never becomes ready.
fn spawn_readiness(
    source: &Source,
    engine: &EngineHandle,
    started: std::time::Instant,
    on_ready: impl FnOnce() + Send + 'static,
) -> Result<(), ServiceError> {
    let (source, store) = (source.clone(), engine.store().clone());
    std::thread::Builder::new()
        .name("lpm-ready".into())
        .spawn(move || match source.wait_ready(&store) {
            Ok(()) => {
                on_ready();
                tracing::info!(ms = started.elapsed().as_millis() as u64, "Ready.");
            }
            Err(why) => tracing::error!(error = %why, "Not ready."),
        })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::sync::mpsc;

    use super::*;
    use crate::sor::ledger::{Command, ResponsibleFields};

    pub(crate) fn config(dir: &Path) -> ServiceConfig {
        ServiceConfig {
            data_dir: dir.to_path_buf(),
            workers: 2,
            tz: chrono_tz::UTC,
            source: SourceConfig::Embedded {
                allow_log_cut: false,
                segment_bytes: lpm_connectors::log::DEFAULT_SEGMENT_BYTES,
            },
            mysql: None,
            sink: None,
            demo: None,
            visible_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            checkpoint: CheckpointConfig::default(),
            hotspots: Vec::new(),
            cluster: None,
        }
    }

    /// Starts a pipeline on `dir` and waits until it is ready.
    async fn start_ready(dir: &Path) -> Service {
        start_ready_with(config(dir)).await
    }

    /// Starts a pipeline with `cfg` and waits until it is ready.
    pub(crate) async fn start_ready_with(cfg: ServiceConfig) -> Service {
        let (tx, rx) = mpsc::channel();
        let service = Service::start(
            cfg,
            Arc::new(DecodeStats::default()),
            &prometheus::Registry::new(),
            move || {
                let _ = tx.send(());
            },
        )
        .await
        .expect("the pipeline starts");
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join")
            .expect("the pipeline becomes ready");
        service
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipeline_holds_its_data_dir_and_a_restart_rebuilds_what_it_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = start_ready(dir.path()).await;
        // a second pipeline on the same directory is refused while the first runs
        let second = Service::start(
            config(dir.path()),
            Arc::new(DecodeStats::default()),
            &prometheus::Registry::new(),
            || {},
        )
        .await;
        assert!(matches!(second, Err(ServiceError::Lock(_))));

        let sor = service
            .source()
            .embedded()
            .expect("the embedded log")
            .clone();
        for name in ["Ana", "Luis"] {
            let fields = ResponsibleFields {
                full_name: Some(name.into()),
                agency: Some("ECU 911".into()),
                ..Default::default()
            };
            let c = sor
                .submit_async(Command::CreateResponsible(fields), "alice".into())
                .await
                .expect("write");
            assert!(service
                .engine()
                .store()
                .wait_for(c.tick, Duration::from_secs(10)));
        }
        let (_, before) = service.engine().store().snapshot();
        assert!(!before.is_empty());
        drop(sor);
        service.stop().await;

        // the lock went with the stop; the log replays into the same views
        let service = start_ready(dir.path()).await;
        let (_, after) = service.engine().store().snapshot();
        assert_eq!(after, before);
        service.stop().await;
    }

    #[tokio::test]
    async fn options_that_cannot_work_are_refused_before_anything_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let refused = |cfg: ServiceConfig| async move {
            Service::start(
                cfg,
                Arc::new(DecodeStats::default()),
                &prometheus::Registry::new(),
                || {},
            )
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        let mut demo_on_kafka = config(dir.path());
        demo_on_kafka.demo = Some(Duration::from_secs(1));
        demo_on_kafka.source =
            SourceConfig::Kafka(lpm_connectors::kafka::KafkaConfig::new("127.0.0.1:1"));
        assert!(refused(demo_on_kafka).await.contains("--demo"));
        let mut mysql_on_log = config(dir.path());
        mysql_on_log.mysql = Some(MysqlConfig::new("mysql://root@127.0.0.1:1/lpm"));
        assert!(refused(mysql_on_log)
            .await
            .contains("--capture URL or --kafka"));
        // nothing was started: the directory is still free
        assert!(!dir.path().join("log").exists());
    }
}
