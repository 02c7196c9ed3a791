//! What feeds the engine: the embedded log (which is also the write side), a binlog capture, or
//! Debezium topics on Kafka. This module is the one place that knows which: it starts the
//! source with the engine on its feed, answers the position of a tick, the ticks that became
//! visible, the source's status and metrics, when the engine has caught up (readiness), and
//! stops it. A new source is one more [`SourceConfig`] and [`Source`] variant, and the match
//! arms here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::capture::CaptureConfig;
use lpm_connectors::kafka::{
    ClusterShare, KafkaConfig, Prepared, Resume as KafkaResume, TopicSelection,
};
use lpm_connectors::log::{LogOptions, MidLogCorruption};
use lpm_connectors::DecodeStats;
use lpm_engine::cluster::ClusterConfig;
use lpm_engine::{Engine, EngineConfig, PushFeed, Tick, ViewStore};

use crate::capture::CaptureSource;
use crate::checkpoint::file::Manifest;
use crate::checkpoint::store::{CheckpointDir, Rejected};
use crate::checkpoint::{self, RestoreFeed};
use crate::error::ServiceError;
use crate::kafka::KafkaInput;
use crate::position::SourcePosition;
use crate::sor::ledger::Ledger;
use crate::sor::{EmbeddedSor, PushedTick, Resume};

/// Which source to start.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// The embedded log under the data directory; `allow_log_cut` starts even when the log is
    /// corrupt before its end, cutting the valid records after the bad one (`--allow-log-cut`).
    Embedded {
        /// See above.
        allow_log_cut: bool,
        /// The log starts a new segment past this size (`--log-segment-bytes`).
        segment_bytes: u64,
    },
    /// A MySQL/MariaDB binlog capture (`--capture URL`).
    Capture(CaptureConfig),
    /// Debezium topics on Kafka (`--kafka BROKERS`).
    Kafka(KafkaConfig),
}

impl SourceConfig {
    /// Refuses writes to MySQL database `database` (`--mysql`) unless this source reads that
    /// database's changes: the writes would never become visible.
    pub fn check_shows_writes_to(&self, database: &str) -> Result<(), ServiceError> {
        match self {
            SourceConfig::Capture(c) if c.databases.iter().any(|d| d == database) => Ok(()),
            SourceConfig::Capture(c) => Err(ServiceError::Mysql(format!(
                "writes go to database {database}, but --capture reads {:?}; add --database {database}",
                c.databases
            ))),
            SourceConfig::Kafka(k) => match &k.topics {
                TopicSelection::Debezium { database: d, .. } if d != database => {
                    Err(ServiceError::Mysql(format!(
                        "writes go to database {database}, but --kafka reads topics of {d}; set --kafka-database {database}"
                    )))
                }
                _ => Ok(()),
            },
            SourceConfig::Embedded { .. } => Err(ServiceError::Mysql(
                "the engine must be fed from MySQL's changes to show writes made there: add \
                 --capture URL or --kafka BROKERS (the embedded log only holds writes made without --mysql)"
                    .into(),
            )),
        }
    }

    /// Whether the source takes the demo data set (only the embedded log is written by lpm).
    pub fn takes_demo(&self) -> bool {
        matches!(self, SourceConfig::Embedded { .. })
    }
}

/// The engine's source.
#[derive(Clone)]
pub enum Source {
    /// The embedded fsync'd log (`lpm serve`, read-write).
    Embedded(Arc<EmbeddedSor>),
    /// A MySQL/MariaDB binlog capture (`--capture`).
    Capture(Arc<CaptureSource>),
    /// Debezium topics on Kafka (`--kafka`).
    Kafka(Arc<KafkaInput>),
}

/// What [`Source::start`] started.
pub struct Started {
    /// The source.
    pub source: Source,
    /// The engine, fed by it.
    pub engine: Engine,
    /// Valid log records the embedded log's recovery cut (`--allow-log-cut`); 0 otherwise.
    pub log_records_dropped: u64,
    /// What the start loaded from a checkpoint and replayed after it.
    pub recovery: Recovery,
}

/// What a start recovered: the checkpoint it loaded (if any), the newer ones it could not use,
/// and what it replayed after.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The checkpoint loaded.
    pub checkpoint: Option<crate::checkpoint::file::Manifest>,
    /// Newer checkpoints found unusable, and why.
    pub rejected: Vec<crate::checkpoint::store::Rejected>,
    /// Stored keys pushed from the checkpoint.
    pub restored_entries: u64,
    /// Change events replayed after it (all of them without a checkpoint).
    pub replayed_events: u64,
}

/// How a source is doing (the engine page's `sources`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    /// `embedded-log`, `mysql-binlog` or `kafka`.
    pub source: &'static str,
    /// `live`, `idle`, `stalled` (Kafka), `connected`/`disconnected` (binlog), `live` (log).
    pub status: &'static str,
    /// How far behind: records for Kafka, seconds of staleness otherwise.
    pub lag: f64,
    /// The unit of `lag`.
    pub lag_unit: &'static str,
    /// Per partition for Kafka (`topic/partition`); empty otherwise.
    pub detail: Vec<LagDetail>,
}

/// One partition's lag.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LagDetail {
    /// `topic/partition`.
    pub name: String,
    /// Records on the broker not yet visible.
    pub lag: i64,
}

impl Source {
    /// Starts the engine with `engine` on the source's feed, then the source: the embedded
    /// log replays into it, a capture checks the server and starts its thread, Kafka attaches
    /// the engine's store (its commits follow the visible tick). `feed` is the engine input of
    /// the embedded log and the capture (Kafka brings its own, one slice per worker).
    pub async fn start(
        cfg: &SourceConfig,
        data_dir: &Path,
        (engine, cluster): (EngineConfig, Option<ClusterConfig>),
        feed: Arc<PushFeed>,
        stats: Arc<DecodeStats>,
    ) -> Result<Started, ServiceError> {
        match cfg {
            SourceConfig::Kafka(k) => {
                let mut k = k.clone();
                k.cluster = cluster.as_ref().map(|c| ClusterShare {
                    process: c.process,
                    processes: c.peers.len(),
                    workers: engine.workers.max(1),
                });
                let prepared = lpm_connectors::kafka::prepare(
                    k.clone(),
                    engine.workers,
                    Arc::new(lpm_connectors::Catalog::lpm()),
                    stats,
                )?;
                let clustered = cluster.is_some();
                let origin = crate::kafka::origin(&k);
                // a cluster process offers its checkpoints in the handshake (see `restore_share`)
                let mut cluster = cluster;
                let offers = match &mut cluster {
                    Some(c) => {
                        let (usable, recovery) = kafka_offers(data_dir, &k, &origin)?;
                        c.checkpoints = usable.iter().map(|o| o.manifest.tick).collect();
                        Some((usable, recovery, c.agreed.clone()))
                    }
                    None => None,
                };
                let engine = Engine::start_in(engine, prepared.feed.clone(), cluster)?;
                let handle = engine.handle();
                let store = handle.store().clone();
                let completed = handle.completed_fn();
                drop(handle);
                // what the engine has applied: in a cluster only process 0's store fills, and
                // only the engine's frontier covers every process (commits follow it too)
                let applied: Arc<dyn Fn() -> Option<Tick> + Send + Sync> = if clustered {
                    Arc::new(completed)
                } else {
                    Arc::new(move || store.tick())
                };
                let (resume, recovery) = match offers {
                    Some((usable, recovery, agreed)) => {
                        let agreed = agreed.get().copied().flatten();
                        restore_share(usable, recovery, agreed, &prepared, &*applied)?
                    }
                    None => restore_kafka(data_dir, &k, &origin, &prepared, &*applied)?,
                };
                let input = Arc::new(KafkaInput::start(prepared, resume, applied, origin)?);
                tracing::info!(brokers = %k.brokers, "Feeding the engine from Kafka (read-only API).");
                Ok(Started {
                    source: Source::Kafka(input),
                    engine,
                    log_records_dropped: 0,
                    recovery,
                })
            }
            SourceConfig::Capture(c) => {
                let opts = mysql_async::Opts::from_url(&c.url)
                    .map_err(|e| ServiceError::Capture(format!("invalid URL: {e}")))?;
                let server = lpm_connectors::capture::settings::preflight(&opts, c)
                    .await
                    .map_err(|e| ServiceError::Capture(e.to_string()))?;
                let engine = Engine::start(engine, feed.clone())?;
                let origin = crate::capture::origin(c, &opts, server.server_id);
                let (resume, recovery) = restore_capture(data_dir, &origin, &feed)?;
                let dead = dead_letters(data_dir)?;
                let capture = crate::capture::start(c.clone(), feed, (stats, dead), origin, resume)
                    .map_err(|e| {
                        ServiceError::Capture(format!("starting the capture thread: {e}"))
                    })?;
                tracing::info!(databases = ?c.databases, "Feeding the engine from the binlog capture (read-only API).");
                Ok(Started {
                    source: Source::Capture(capture),
                    engine,
                    log_records_dropped: 0,
                    recovery,
                })
            }
            SourceConfig::Embedded {
                allow_log_cut,
                segment_bytes,
            } => {
                let engine = Engine::start(engine, feed.clone())?;
                let log_dir = data_dir.join(crate::sor::LOG_DIR);
                let (resume, mut recovery) = restore_embedded(data_dir, &feed)?;
                tracing::info!(dir = %log_dir.display(), after_seq = resume.log_seq,
                    "Replaying the embedded log.");
                let on_mid_log = if *allow_log_cut {
                    MidLogCorruption::CutAndDrop
                } else {
                    MidLogCorruption::Refuse
                };
                let dead = dead_letters(data_dir)?;
                let options = LogOptions {
                    segment_bytes: *segment_bytes,
                    on_mid_log,
                    // set from `resume` by `open`
                    verify_after: 0,
                };
                let (sor, opened) =
                    EmbeddedSor::open(&log_dir, options, feed, (stats, dead), resume, |n| {
                        tracing::info!(records = n, "Replaying the embedded log.");
                    })?;
                let mut log_records_dropped = 0;
                if let Some(cut) = &opened.recovery.cut {
                    tracing::warn!(offset = cut.offset, bytes = cut.bytes_cut, reason = %cut.reason,
                        records_dropped = cut.records_dropped,
                        "The embedded log had a torn or corrupt tail; it was cut there.");
                    log_records_dropped = cut.records_dropped;
                }
                recovery.replayed_events = opened.events;
                tracing::info!(
                    records = opened.records,
                    events = opened.events,
                    "Embedded log replayed into the engine."
                );
                Ok(Started {
                    source: Source::Embedded(Arc::new(sor)),
                    engine,
                    log_records_dropped,
                    recovery,
                })
            }
        }
    }

    /// The name positions and reports use: `embedded-log`, `mysql-binlog` or `kafka`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Embedded(_) => "embedded-log",
            Source::Capture(_) => "mysql-binlog",
            Source::Kafka(_) => "kafka",
        }
    }

    /// Where the source stood at `tick`.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        match self {
            Source::Embedded(s) => s.position_at(tick),
            Source::Capture(s) => s.position_at(tick),
            Source::Kafka(s) => s.position_at(tick),
        }
    }

    /// Ticks that became visible (freshness metrics), and since when the oldest invisible one
    /// waits (staleness).
    pub fn take_visible(&self, visible: Option<Tick>) -> (Vec<PushedTick>, Option<Instant>) {
        match self {
            Source::Embedded(s) => s.take_visible(visible),
            Source::Capture(s) => s.take_visible(visible),
            Source::Kafka(s) => s.take_visible(visible),
        }
    }

    /// What takes checkpoints of this source.
    pub fn checkpointable(&self) -> Arc<dyn crate::checkpoint::Checkpointable> {
        match self {
            Source::Embedded(s) => s.clone(),
            Source::Capture(s) => s.clone(),
            Source::Kafka(s) => s.clone(),
        }
    }

    /// The embedded log, when it is the source (and so the write side too).
    pub fn embedded(&self) -> Option<&Arc<EmbeddedSor>> {
        match self {
            Source::Embedded(s) => Some(s),
            _ => None,
        }
    }

    /// Blocks until the engine shows everything the source had when it started: the whole
    /// embedded log, the capture's snapshot, every Kafka partition up to its high watermark at
    /// assignment. Says why not when that can never happen (the capture failed first).
    pub fn wait_ready(&self, store: &ViewStore) -> Result<(), String> {
        let target = match self {
            Source::Kafka(k) => {
                let mut said = Instant::now();
                while !k.source.caught_up() {
                    if said.elapsed() > Duration::from_secs(5) {
                        tracing::info!(
                            lag = k.source.stats.lag(),
                            "Waiting for the engine to catch up with Kafka."
                        );
                        said = Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            Source::Capture(c) => loop {
                if let Some(t) = c.ready_tick() {
                    break t;
                }
                if let Some(why) = c.failed() {
                    return Err(format!(
                        "the capture failed before it caught up with the server: {why}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            },
            Source::Embedded(s) => s.replay_tick().unwrap_or(0),
        };
        while !store.wait_for(target, Duration::from_secs(5)) {
            tracing::info!(target_tick = target, tick = ?store.tick(),
                "Waiting for the engine to catch up with the source.");
        }
        Ok(())
    }

    /// How the source is doing; `staleness` is how long the oldest invisible tick has waited.
    pub fn status(&self, staleness: f64) -> SourceStatus {
        let (status, lag, lag_unit, detail) = match self {
            Source::Kafka(k) => {
                let (stats, cfg) = (&k.source.stats, k.source.config());
                let detail = stats
                    .partitions()
                    .into_iter()
                    .map(|((topic, partition), p)| LagDetail {
                        name: format!("{topic}/{partition}"),
                        lag: p.lag().unwrap_or(0),
                    })
                    .collect();
                let status = stats.status(cfg.idle_after, cfg.stall_after).as_str();
                (status, stats.lag() as f64, "records", detail)
            }
            Source::Capture(c) => {
                let status = if c.stats.snapshot().connected {
                    "connected"
                } else {
                    "disconnected"
                };
                (status, staleness, "seconds", Vec::new())
            }
            Source::Embedded(_) => ("live", staleness, "seconds", Vec::new()),
        };
        SourceStatus {
            source: self.name(),
            status,
            lag,
            lag_unit,
            detail,
        }
    }

    /// Appends the source's own metrics (`lpm_capture_*`, `lpm_kafka_*`) to a Prometheus text
    /// exposition.
    pub fn render_metrics(&self, out: &mut String) {
        match self {
            Source::Kafka(k) => {
                let cfg = k.source.config();
                k.source
                    .stats
                    .render_prometheus(out, cfg.idle_after, cfg.stall_after);
            }
            Source::Capture(c) => out.push_str(&c.stats.render_prometheus()),
            Source::Embedded(_) => {}
        }
    }

    /// Stops taking input: the capture thread or the Kafka consumer ends (committing what is
    /// visible); the embedded log's writer has already fsync'd every acknowledged write and
    /// closes the engine input. Blocking.
    pub fn stop(&self) {
        match self {
            Source::Capture(c) => c.stop(),
            Source::Kafka(k) => k.source.stop(),
            Source::Embedded(s) => s.close(),
        }
    }
}

/// The newest usable checkpoint of `source` (positions in `origin`), with the newer ones that
/// were not, each logged and counted by the caller.
fn newest(
    data_dir: &Path,
    source: &str,
    origin: &str,
) -> Result<(Option<(Manifest, PathBuf)>, Recovery), ServiceError> {
    let dir = CheckpointDir::open(data_dir).map_err(ServiceError::Checkpoint)?;
    let (found, rejected) = dir.newest_valid_from(source, origin);
    let recovery = Recovery {
        rejected,
        ..Recovery::default()
    };
    if found.is_none() && !recovery.rejected.is_empty() {
        tracing::error!(
            rejected = recovery.rejected.len(),
            source,
            "No usable checkpoint: reading the whole history."
        );
    }
    Ok((found, recovery))
}

/// Pushes a verified checkpoint into `feed` (each row also to `on_entry`) and logs it.
fn load(
    manifest: &Manifest,
    state: &Path,
    feed: &dyn RestoreFeed,
    recovery: &mut Recovery,
    on_entry: impl FnMut(lpm_engine::model::Table, &lpm_engine::checkpoint::StoredEntry),
) -> Result<Option<Tick>, ServiceError> {
    let restored = checkpoint::restore(state, feed, on_entry).map_err(ServiceError::Checkpoint)?;
    tracing::info!(
        number = manifest.number,
        entries = restored.entries,
        position = ?manifest.position,
        "Loaded the checkpoint."
    );
    recovery.restored_entries = restored.entries;
    Ok(restored.last_tick)
}

/// Loads the newest usable checkpoint of the embedded log into `feed` and rebuilds the write
/// ledger from its rows; without one, a full replay ([`Resume::default`]).
fn restore_embedded(data_dir: &Path, feed: &PushFeed) -> Result<(Resume, Recovery), ServiceError> {
    let (found, mut recovery) = newest(data_dir, "embedded-log", "")?;
    let Some((manifest, state)) = found else {
        return Ok((Resume::default(), recovery));
    };
    let mut ledger = Ledger::default();
    let restored_tick = load(
        &manifest,
        &state,
        feed,
        &mut recovery,
        |table, entry| match &entry.row {
            Some(row) => ledger.apply(row),
            None => ledger.seed_max_id(table, entry.key),
        },
    )?;
    let resume = Resume {
        log_seq: manifest.position.log_seq(),
        ingest_seq: manifest.ingest_seq,
        ledger,
        restored_tick,
    };
    recovery.checkpoint = Some(manifest);
    Ok((resume, recovery))
}

/// Loads the newest usable checkpoint of this capture's origin into `feed`: the capture then
/// streams from its binlog position. Without one, `None`: a snapshot.
fn restore_capture(
    data_dir: &Path,
    origin: &str,
    feed: &PushFeed,
) -> Result<(Option<crate::capture::Resume>, Recovery), ServiceError> {
    let (found, mut recovery) = newest(data_dir, "mysql-binlog", origin)?;
    let Some((manifest, state)) = found else {
        return Ok((None, recovery));
    };
    let SourcePosition::Binlog {
        binlog: Some(position),
        log_seq,
    } = manifest.position.clone()
    else {
        recovery.rejected.push(Rejected {
            manifest: state
                .with_file_name(crate::checkpoint::store::manifest_name(manifest.number)),
            why: "a binlog checkpoint without a binlog position".into(),
        });
        return Ok((None, recovery));
    };
    let restored_tick = load(&manifest, &state, feed, &mut recovery, |_, _| {})?;
    let resume = crate::capture::Resume {
        position,
        transactions: log_seq,
        seq: manifest.ingest_seq,
        restored_tick,
    };
    recovery.checkpoint = Some(manifest);
    Ok((Some(resume), recovery))
}

/// Loads the newest usable checkpoint of these topics into the Kafka feed, unless the broker
/// no longer holds what follows one of its offsets: then every partition is read from the
/// beginning (logged, and counted as a fallback).
fn restore_kafka(
    data_dir: &Path,
    cfg: &KafkaConfig,
    origin: &str,
    prepared: &Prepared,
    applied: &dyn Fn() -> Option<Tick>,
) -> Result<(KafkaResume, Recovery), ServiceError> {
    let (found, mut recovery) = newest(data_dir, "kafka", origin)?;
    let Some((manifest, state)) = found else {
        return Ok((Default::default(), recovery));
    };
    match kafka_resume(
        &manifest,
        &state,
        cfg,
        "reading every partition from the beginning",
    )? {
        Ok(resume) => load_kafka(manifest, &state, resume, prepared, applied, recovery),
        Err(rejected) => {
            recovery.rejected.push(rejected);
            Ok((Default::default(), recovery))
        }
    }
}

/// Where a Kafka checkpoint resumes, or why it cannot: the broker no longer holds what follows
/// one of its offsets (logged, with `then`: what the caller does instead).
fn kafka_resume(
    manifest: &Manifest,
    state: &Path,
    cfg: &KafkaConfig,
    then: &str,
) -> Result<Result<KafkaResume, Rejected>, ServiceError> {
    let resume = crate::kafka::resume(&manifest.position, manifest.ingest_seq);
    let problems = resume.out_of_range(cfg)?;
    if problems.is_empty() {
        return Ok(Ok(resume));
    }
    tracing::error!(
        ?problems,
        number = manifest.number,
        "The broker no longer holds what follows the checkpoint: {then}."
    );
    Ok(Err(Rejected {
        manifest: state.with_file_name(crate::checkpoint::store::manifest_name(manifest.number)),
        why: format!("offsets out of the broker's range: {}", problems.join("; ")),
    }))
}

/// Pushes a verified Kafka checkpoint into the feed (each push waits while the engine, as
/// `applied` tells, is a few ticks behind) and records it as the one loaded.
fn load_kafka(
    manifest: Manifest,
    state: &Path,
    resume: KafkaResume,
    prepared: &Prepared,
    applied: &dyn Fn() -> Option<Tick>,
    mut recovery: Recovery,
) -> Result<(KafkaResume, Recovery), ServiceError> {
    let into = crate::kafka::RestoreInto {
        feed: &prepared.feed,
        applied,
    };
    load(&manifest, state, &into, &mut recovery, |_, _| {})?;
    recovery.checkpoint = Some(manifest);
    Ok((resume, recovery))
}

/// A cluster process's checkpoint it can offer: verified, and the broker still holds what
/// follows its offsets.
struct Offer {
    manifest: Manifest,
    state: PathBuf,
    resume: KafkaResume,
}

/// A cluster process's usable checkpoints of these topics, newest first, with the ones that
/// are not.
fn kafka_offers(
    data_dir: &Path,
    cfg: &KafkaConfig,
    origin: &str,
) -> Result<(Vec<Offer>, Recovery), ServiceError> {
    let dir = CheckpointDir::open(data_dir).map_err(ServiceError::Checkpoint)?;
    let (valid, rejected) = dir.valid_from("kafka", origin);
    let mut recovery = Recovery {
        rejected,
        ..Recovery::default()
    };
    let mut usable = Vec::new();
    for (manifest, state) in valid {
        match kafka_resume(&manifest, &state, cfg, "not offered to the cluster")? {
            Ok(resume) => usable.push(Offer {
                manifest,
                state,
                resume,
            }),
            Err(rejected) => recovery.rejected.push(rejected),
        }
    }
    Ok((usable, recovery))
}

/// Loads this cluster process's share of the checkpoint at `agreed`, the newest tick every
/// process offered (`lpm_engine::cluster::ClusterConfig::agreed`); without one, this process
/// reads its partitions from the beginning, as every other process then does.
fn restore_share(
    usable: Vec<Offer>,
    recovery: Recovery,
    agreed: Option<Tick>,
    prepared: &Prepared,
    applied: &dyn Fn() -> Option<Tick>,
) -> Result<(KafkaResume, Recovery), ServiceError> {
    let newer = usable
        .iter()
        .filter(|o| agreed.is_none_or(|t| o.manifest.tick > t))
        .count();
    if newer > 0 {
        tracing::warn!(newer, agreed_tick = ?agreed,
            "Newer checkpoints of this process are not held by every cluster process: not loaded.");
    }
    let Some(offer) = agreed.and_then(|t| usable.into_iter().find(|o| o.manifest.tick == t)) else {
        tracing::info!("No checkpoint tick is held by every cluster process: reading this process's partitions from the beginning.");
        return Ok((Default::default(), recovery));
    };
    load_kafka(
        offer.manifest,
        &offer.state,
        offer.resume,
        prepared,
        applied,
        recovery,
    )
}

/// Where the capture's and the embedded log's undecodable records go: `dead-letters.jsonl` in
/// the data dir (Kafka has its dead-letter topic).
fn dead_letters(
    data_dir: &Path,
) -> Result<Arc<dyn lpm_connectors::dead_letter::DeadLetters>, ServiceError> {
    let path = data_dir.join(lpm_connectors::dead_letter::file::DATA_DIR_FILE);
    match lpm_connectors::dead_letter::file::FileDeadLetters::open(&path) {
        Ok(file) => Ok(Arc::new(file)),
        Err(source) => Err(ServiceError::DeadLetters { path, source }),
    }
}
