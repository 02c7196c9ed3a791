//! The consumer thread: polls, groups records into ticks, commits what is visible, and handles
//! rebalances (a partition this process has read resumes where it was; any other starts at the
//! beginning, because the engine's state for it must be rebuilt).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lpm_engine::{Tick, TickMap};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use super::cluster::{clock_tick, Selection};
use super::dead_letter::DeadLetterProducer;
use super::feed::{KafkaFeed, RawRecord};
use super::resume::Resume;
use super::stats::KafkaStats;
use super::{KafkaConfig, KafkaError};
use crate::catalog::Catalog;
use crate::dead_letter::DeadLetters;
use crate::decode::DecodePath;
use crate::stats::DecodeStats;

type Part = (Arc<str>, i32);
/// Per partition: the next offset and the Kafka timestamp of the last record read.
type Positions = Arc<BTreeMap<Part, (i64, i64)>>;
/// Told each tick handed to the engine, with a sample of its records' Kafka timestamps.
pub type OnTick = Box<dyn Fn(Tick, &[i64]) + Send>;

/// What one tick covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickPosition {
    /// `(topic, partition, next offset)` for every partition read so far.
    pub offsets: Vec<(String, i32, i64)>,
    /// Records (changes and heartbeats) handed to the engine up to this tick.
    pub records: u64,
}

struct State {
    /// The next offset this process hands the engine, and the Kafka timestamp (epoch ms) of
    /// the last record read, per partition.
    read: BTreeMap<Part, (i64, i64)>,
    /// Position (and records handed over) at each recent tick.
    ticks: TickMap<(Positions, u64)>,
    /// Partitions assigned to us now.
    assigned: BTreeSet<Part>,
    /// High watermarks when each partition was first assigned: ready once all are applied.
    targets: BTreeMap<Part, i64>,
    /// Whether any assignment has been received.
    ever_assigned: bool,
    /// Committed offsets (as last sent).
    committed: BTreeMap<Part, i64>,
    /// Topics interned.
    names: HashMap<String, Arc<str>>,
    /// Partitions whose start offset came from a checkpoint: on their first assignment they
    /// still get a catch-up target (the tail after the checkpoint is what readiness waits for).
    resumed: BTreeSet<Part>,
}

impl Default for State {
    fn default() -> State {
        State {
            read: BTreeMap::new(),
            ticks: TickMap::new(4096),
            assigned: BTreeSet::new(),
            targets: BTreeMap::new(),
            ever_assigned: false,
            committed: BTreeMap::new(),
            names: HashMap::new(),
            resumed: BTreeSet::new(),
        }
    }
}

impl State {
    fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.names.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.names.insert(topic.to_string(), t.clone());
        t
    }

    /// The position of the newest tick at or below `tick`.
    fn at(&self, tick: Tick) -> Option<&(Positions, u64)> {
        self.ticks.at(tick)
    }
}

struct Shared {
    state: Mutex<State>,
    stats: Arc<KafkaStats>,
    visible: Arc<dyn Fn() -> Option<Tick> + Send + Sync>,
    /// A checkpoint request waiting for the consumer thread, and where to say where it stood.
    mark: Mutex<Option<(u64, std::sync::mpsc::Sender<Mark>)>>,
    /// Records handed to the engine (the `seq` of the last one).
    ingested: AtomicU64,
}

/// Where the consumer stood when it pushed a checkpoint request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The request's tick: the engine state there holds every record pushed before it.
    pub tick: Tick,
    /// The offsets (and records handed over) that state covers.
    pub position: TickPosition,
    /// The `seq` of the last record handed over (ingestion order continues above it).
    pub seq: u64,
}

impl Shared {
    /// Offsets to commit: the visible tick's position for `parts` (all assigned when `None`),
    /// only where it moved past what was committed.
    fn to_commit(
        &self,
        only: Option<&BTreeSet<Part>>,
    ) -> Option<(TopicPartitionList, Vec<(Part, i64)>)> {
        let visible = (self.visible)()?;
        let st = self.state.lock();
        let (pos, _) = st.at(visible)?.clone();
        let mut tpl = TopicPartitionList::new();
        let mut list = Vec::new();
        for (part, (off, _)) in pos.iter() {
            let wanted = only.map_or_else(|| st.assigned.contains(part), |o| o.contains(part));
            if wanted
                && st.committed.get(part).is_none_or(|c| c < off)
                && tpl
                    .add_partition_offset(&part.0, part.1, Offset::Offset(*off))
                    .is_ok()
            {
                list.push((part.clone(), *off));
            }
        }
        (!list.is_empty()).then_some((tpl, list))
    }

    /// Commits the visible tick's offsets for `only` (every assigned partition when `None`),
    /// once the dead letters before them are delivered.
    fn commit(
        &self,
        consumer: &BaseConsumer<Ctx>,
        dead: &DeadLetterProducer,
        only: Option<&BTreeSet<Part>>,
        mode: CommitMode,
    ) {
        let timeout = match mode {
            CommitMode::Sync => Duration::from_secs(5),
            CommitMode::Async => Duration::from_millis(500),
        };
        if !dead.flush(timeout) {
            return;
        }
        let Some((tpl, list)) = self.to_commit(only) else {
            return;
        };
        match consumer.commit(&tpl, mode) {
            Ok(()) => self.committed(&list),
            Err(e) => {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "Committing offsets failed; the next interval retries.");
            }
        }
    }

    /// Sets where each partition of `tpl` starts (where this process was, else the beginning),
    /// records them as assigned, and takes the catch-up target of the new ones: what the
    /// broker holds now.
    fn set_starts(&self, consumer: &BaseConsumer<Ctx>, tpl: &mut TopicPartitionList) {
        let mut fresh = Vec::new();
        let mut starts = Vec::new();
        {
            let mut st = self.state.lock();
            st.ever_assigned = true;
            for e in tpl.elements() {
                let part: Part = (st.intern(e.topic()), e.partition());
                st.assigned.insert(part.clone());
                let at = st.read.get(&part).map(|(next, _)| *next);
                let resumed = st.resumed.remove(&part);
                if (at.is_none() || resumed) && !st.targets.contains_key(&part) {
                    fresh.push(part.clone());
                }
                starts.push((part, at.map_or(Offset::Beginning, Offset::Offset)));
            }
        }
        for ((topic, p), offset) in starts {
            if let Err(e) = tpl.set_partition_offset(&topic, p, offset) {
                tracing::warn!(%topic, partition = p, error = %e, "Could not set the start offset.");
            }
        }
        for part in fresh {
            let high = consumer
                .fetch_watermarks(&part.0, part.1, Duration::from_secs(5))
                .map(|(_, h)| h)
                .unwrap_or(0);
            self.stats
                .partition(&part.0, part.1, |s| s.high = s.high.max(high));
            self.state.lock().targets.insert(part, high);
        }
    }

    fn committed(&self, list: &[(Part, i64)]) {
        let mut st = self.state.lock();
        for (part, off) in list {
            st.committed.insert(part.clone(), *off);
            self.stats
                .partition(&part.0, part.1, |s| s.committed = *off);
        }
    }
}

/// librdkafka callbacks: rebalances, statistics.
struct Ctx {
    shared: Arc<Shared>,
    dead: Arc<DeadLetterProducer>,
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (pid, p) in &t.partitions {
                if *pid >= 0 && p.hi_offset >= 0 {
                    self.shared
                        .stats
                        .partition(topic, *pid, |s| s.high = p.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.shared.stats.rebalances.fetch_add(1, Ordering::Relaxed);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.shared.set_starts(consumer, tpl);
                tracing::info!(partitions = tpl.count(), "Kafka partitions assigned; reading each from where this process (or its checkpoint) was, or from the beginning.");
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "Assigning partitions failed.");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: BTreeSet<Part> = {
                    let mut st = self.shared.state.lock();
                    tpl.elements()
                        .iter()
                        .map(|e| (st.intern(e.topic()), e.partition()))
                        .collect()
                };
                // hand over what is applied; the rest will be re-read by the next owner
                self.shared
                    .commit(consumer, &self.dead, Some(&revoked), CommitMode::Sync);
                {
                    let mut st = self.shared.state.lock();
                    for p in &revoked {
                        st.assigned.remove(p);
                        st.targets.remove(p);
                    }
                }
                tracing::info!(partitions = revoked.len(), "Kafka partitions revoked.");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "Unassigning partitions failed.");
                }
            }
            other => {
                tracing::error!(error = ?other, "Kafka rebalance error.");
                let _ = consumer.unassign();
                self.shared.state.lock().assigned.clear();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.shared
                    .stats
                    .commit_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "An offset commit failed; the next one retries.");
            }
        }
    }
}

/// A running Kafka source.
pub struct KafkaSource {
    /// Counters and positions (`lpm_kafka_*`).
    pub stats: Arc<KafkaStats>,
    /// The engine feed.
    pub feed: Arc<KafkaFeed>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    started: Instant,
    config: KafkaConfig,
}

impl KafkaSource {
    /// Where the source stood at `tick`.
    pub fn position_at(&self, tick: Tick) -> TickPosition {
        self.covering(tick).unwrap_or_default()
    }

    /// Where the source stood at `tick`, exactly: `None` when the tick is older than the
    /// recent ticks kept (a checkpoint of a cluster process must not guess).
    pub fn covering(&self, tick: Tick) -> Option<TickPosition> {
        let st = self.shared.state.lock();
        st.at(tick).map(|(pos, records)| TickPosition {
            offsets: pos
                .iter()
                .map(|((t, p), (o, _))| (t.to_string(), *p, *o))
                .collect(),
            records: *records,
        })
    }

    /// Whether every partition assigned at start has been applied up to the high watermark it
    /// had then (or no partition was assigned within 15 s: nothing to catch up with).
    pub fn caught_up(&self) -> bool {
        let visible = (self.shared.visible)();
        let st = self.shared.state.lock();
        if !st.ever_assigned {
            return self.started.elapsed() > Duration::from_secs(15);
        }
        let applied = visible.and_then(|v| st.at(v)).map(|(p, _)| p.clone());
        st.targets.iter().all(|(part, high)| {
            *high <= 0
                || applied
                    .as_ref()
                    .and_then(|a| a.get(part))
                    .is_some_and(|(o, _)| o >= high)
        })
    }

    /// How many partitions are assigned to this consumer now.
    pub fn assigned(&self) -> usize {
        self.shared.state.lock().assigned.len()
    }

    /// The settings it runs with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Asks the consumer thread to push a checkpoint request (`Control::Checkpoint`) behind
    /// every record it has pushed, closing the open tick first, and says where it stood there.
    /// `None` when the thread does not answer within `timeout` (stopped, or stuck in a poll).
    pub fn mark(&self, request: u64, timeout: Duration) -> Option<Mark> {
        let (tx, rx) = std::sync::mpsc::channel();
        *self.shared.mark.lock() = Some((request, tx));
        let answer = rx.recv_timeout(timeout).ok();
        // a request nobody took must not be answered later
        self.shared.mark.lock().take();
        answer
    }

    /// The `seq` of the last record handed to the engine.
    pub fn ingested(&self) -> u64 {
        self.shared.ingested.load(Ordering::Relaxed)
    }

    /// Stops polling, commits what is visible, ends the feed and waits for the thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// The tick being filled: records per worker, since when, and a sample of their timestamps.
struct Open {
    slices: Vec<Vec<RawRecord>>,
    count: usize,
    since: Instant,
    stamps: Vec<i64>,
}

/// What the consumer thread owns.
struct Runner {
    consumer: BaseConsumer<Ctx>,
    shared: Arc<Shared>,
    feed: Arc<KafkaFeed>,
    dead: Arc<DeadLetterProducer>,
    stop: Arc<AtomicBool>,
    heartbeat_topic: Option<String>,
    config: KafkaConfig,
    on_tick: OnTick,
    /// The `seq` of the last record handed over.
    seq: u64,
    /// Records (changes and heartbeats) handed over.
    records: u64,
    /// In a cluster: the topics to take a share of (`None`: subscribed, the group balances).
    selection: Option<Selection>,
    /// Ticks with records handed over and not yet visible, oldest first (backpressure counts
    /// ticks, not tick numbers: a cluster's ticks follow the clock and skip numbers).
    in_flight: VecDeque<Tick>,
}

/// Starts the source with nothing restored: [`prepare`], then [`Prepared::run`] from the
/// beginning of every partition.
pub fn start(
    config: KafkaConfig,
    workers: usize,
    catalog: Arc<Catalog>,
    decode_stats: Arc<DecodeStats>,
    visible: Arc<dyn Fn() -> Option<Tick> + Send + Sync>,
    on_tick: OnTick,
) -> Result<KafkaSource, KafkaError> {
    prepare(config, workers, catalog, decode_stats)?.run(visible, on_tick, Resume::default())
}

/// A source whose feed exists but whose consumer has not started: the engine starts on
/// [`Prepared::feed`], a checkpoint may be restored into it, then [`Prepared::run`].
pub struct Prepared {
    /// The engine feed.
    pub feed: Arc<KafkaFeed>,
    /// Counters and positions (`lpm_kafka_*`).
    pub stats: Arc<KafkaStats>,
    dead: Arc<DeadLetterProducer>,
    config: KafkaConfig,
    catalog: Arc<Catalog>,
}

/// Creates the dead-letter producer (and topic) and the engine feed.
pub fn prepare(
    config: KafkaConfig,
    workers: usize,
    catalog: Arc<Catalog>,
    decode_stats: Arc<DecodeStats>,
) -> Result<Prepared, KafkaError> {
    let stats = Arc::new(KafkaStats::new(config.heartbeat_topic.is_some()));
    let dead = Arc::new(DeadLetterProducer::new(&config, stats.clone())?);
    ensure_topic(&config, dead.topic());
    let decode = DecodePath::new("kafka", decode_stats, dead.clone());
    let feed = Arc::new(KafkaFeed::new(
        workers,
        config.cluster,
        catalog.clone(),
        decode,
    ));
    Ok(Prepared {
        feed,
        stats,
        dead,
        config,
        catalog,
    })
}

impl Prepared {
    /// Creates the consumer, subscribes, and spawns the consumer thread, which reads each
    /// partition of `resume` from its offset (the others from the beginning) and numbers its
    /// ticks after whatever was pushed into the feed already. `visible()` is the engine's last
    /// complete tick; `on_tick` is told each tick handed to the engine with a sample of its
    /// records' Kafka timestamps.
    pub fn run(
        self,
        visible: Arc<dyn Fn() -> Option<Tick> + Send + Sync>,
        on_tick: OnTick,
        resume: Resume,
    ) -> Result<KafkaSource, KafkaError> {
        let Prepared {
            feed,
            stats,
            dead,
            config,
            catalog,
        } = self;
        let mut state = State::default();
        for (topic, partition, offset) in &resume.offsets {
            let part = (state.intern(topic), *partition);
            state.read.insert(part.clone(), (*offset, -1));
            state.resumed.insert(part);
        }
        // where it starts (nothing, or a checkpoint's offsets), so that every tick from here on
        // has a recorded position (see `KafkaSource::covering`)
        let pos = Arc::new(state.read.clone());
        state.ticks.record(feed.closed(), (pos, resume.records));
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            stats: stats.clone(),
            visible,
            mark: Mutex::new(None),
            ingested: AtomicU64::new(resume.seq),
        });
        let consumer: BaseConsumer<Ctx> = config.consumer_config().create_with_context(Ctx {
            shared: shared.clone(),
            dead: dead.clone(),
        })?;
        let subs = config.subscription(&catalog);
        // a cluster process assigns itself its share instead (cluster.rs)
        let selection = match config.cluster {
            Some(share) => {
                tracing::info!(brokers = %config.brokers, group = %config.group, topics = ?subs,
                    process = share.process, processes = share.processes,
                    "Reading this process's share of the Kafka partitions (no group rebalancing in a cluster).");
                Some(Selection::new(&subs)?)
            }
            None => {
                let refs: Vec<&str> = subs.iter().map(String::as_str).collect();
                consumer.subscribe(&refs)?;
                tracing::info!(brokers = %config.brokers, group = %config.group, topics = ?subs,
                    resumed_partitions = resume.offsets.len(), "Subscribed to Kafka.");
                None
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let runner = Runner {
            consumer,
            shared: shared.clone(),
            feed: feed.clone(),
            dead,
            stop: stop.clone(),
            heartbeat_topic: config.heartbeat_topic.clone(),
            config: config.clone(),
            on_tick,
            seq: resume.seq,
            records: resume.records,
            selection,
            in_flight: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("lpm-kafka".into())
            .spawn(move || runner.run())
            .map_err(KafkaError::Thread)?;
        Ok(KafkaSource {
            stats,
            feed,
            shared,
            stop,
            thread: Mutex::new(Some(thread)),
            started: Instant::now(),
            config,
        })
    }
}

/// Creates the dead-letter topic when the broker has an admin API and it is missing (brokers
/// without auto-creation, such as tansu, refuse to produce to an unknown topic).
fn ensure_topic(config: &KafkaConfig, topic: &str) {
    let topics = BTreeMap::from([(topic.to_string(), 1)]);
    match super::broker::create_topics(
        &config.producer_config(),
        &topics,
        false,
        Duration::from_secs(3),
    ) {
        Ok(()) => tracing::debug!(topic, "The dead-letter topic exists."),
        Err(e) => tracing::warn!(topic, error = %e,
            "Could not create the dead-letter topic; it must exist or be auto-created."),
    }
}

impl Runner {
    fn run(mut self) {
        let workers = self.feed.workers();
        let mut open = Open {
            slices: vec![Vec::new(); workers],
            count: 0,
            since: Instant::now(),
            stamps: Vec::new(),
        };
        let mut last_commit = Instant::now();
        let mut last_publish = Instant::now();
        let mut read_since_publish = 0u64;
        let mut last_error_log: Option<Instant> = None;
        let mut last_assign: Option<Instant> = None;
        loop {
            // a cluster's share: at start, then every 5 s for new topics and partitions
            if self.selection.is_some()
                && last_assign.is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
            {
                self.assign_share();
                last_assign = Some(Instant::now());
            }
            let stopping = self.stop.load(Ordering::SeqCst);
            let close = open.count > 0
                && (stopping
                    || open.count >= self.config.max_tick_records
                    || open.since.elapsed() >= self.config.tick_interval);
            if close {
                self.close(&mut open);
            }
            let request = self.shared.mark.lock().take();
            if let Some((request, reply)) = request {
                self.mark(&mut open, request, &reply);
            }
            if stopping {
                break;
            }
            if last_publish.elapsed() >= Duration::from_millis(100) {
                self.shared
                    .stats
                    .records_read(std::mem::take(&mut read_since_publish));
                self.publish_applied();
                last_publish = Instant::now();
            }
            if last_commit.elapsed() >= self.config.commit_interval {
                self.commit(CommitMode::Async);
                last_commit = Instant::now();
            }
            // backpressure: too many ticks not yet visible
            let visible = (self.shared.visible)();
            while self
                .in_flight
                .front()
                .is_some_and(|t| visible.is_some_and(|v| *t <= v))
            {
                self.in_flight.pop_front();
            }
            if self.in_flight.len() as u64 > self.config.max_ticks_in_flight {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            // a cluster process with nothing open follows the clock (cluster.rs)
            if let (Some(_), 0) = (&self.selection, open.count) {
                let now = clock_tick(self.config.tick_interval);
                self.feed.close_empty_through(now.saturating_sub(1));
            }
            let wait = if open.count > 0 {
                self.config
                    .tick_interval
                    .saturating_sub(open.since.elapsed())
                    .max(Duration::from_millis(1))
            } else if self.selection.is_some() {
                // a cluster process follows the clock while idle: wake once a tick
                self.config.tick_interval.min(Duration::from_millis(50))
            } else {
                Duration::from_millis(50)
            };
            match self.consumer.poll(wait) {
                None => {}
                Some(Err(e)) => {
                    self.shared
                        .stats
                        .consumer_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "Kafka consumer error (retrying).");
                        last_error_log = Some(Instant::now());
                    }
                }
                Some(Ok(m)) => {
                    let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
                    let part = {
                        let mut st = self.shared.state.lock();
                        let part = (st.intern(topic), partition);
                        // a record below what we read: a re-fetch after a seek; drop it
                        if st.read.get(&part).is_some_and(|(next, _)| offset < *next) {
                            continue;
                        }
                        let ts = match m.timestamp() {
                            Timestamp::CreateTime(ts) | Timestamp::LogAppendTime(ts) => ts,
                            Timestamp::NotAvailable => -1,
                        };
                        st.read.insert(part.clone(), (offset + 1, ts));
                        part
                    };
                    if open.count == 0 {
                        open.since = Instant::now();
                    }
                    open.count += 1;
                    self.records += 1;
                    if self.heartbeat_topic.as_deref() == Some(topic) {
                        self.shared.stats.heartbeat_read();
                        continue;
                    }
                    read_since_publish += 1;
                    if let Timestamp::CreateTime(ts) | Timestamp::LogAppendTime(ts) = m.timestamp()
                    {
                        if open.stamps.len() < 64 || self.records.is_multiple_of(64) {
                            open.stamps.push(ts);
                        }
                    }
                    self.seq += 1;
                    self.shared.ingested.store(self.seq, Ordering::Relaxed);
                    let w = self.feed.worker_of(topic, partition);
                    open.slices[w].push(RawRecord {
                        topic: part.0,
                        partition,
                        offset,
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        seq: self.seq,
                    });
                }
            }
        }
        self.shared.stats.records_read(read_since_publish);
        // wait (bounded) for the last ticks to become visible, then commit them
        let deadline = Instant::now() + Duration::from_secs(5);
        while (self.shared.visible)().unwrap_or(0) < self.feed.closed() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.commit(CommitMode::Sync);
        self.feed.end();
        self.consumer.unsubscribe();
        tracing::info!("Kafka source stopped.");
    }

    /// Hands the open tick to the engine.
    fn close(&mut self, open: &mut Open) {
        let mut tick = self.feed.closed() + 1;
        if self.selection.is_some() {
            tick = tick.max(clock_tick(self.config.tick_interval));
        }
        self.in_flight.push_back(tick);
        let slices = std::mem::replace(&mut open.slices, vec![Vec::new(); self.feed.workers()]);
        {
            let mut st = self.shared.state.lock();
            let pos = Arc::new(st.read.clone());
            st.ticks.record(tick, (pos, self.records));
        }
        self.feed.push_tick(tick, slices);
        (self.on_tick)(tick, &open.stamps);
        open.stamps.clear();
        open.count = 0;
    }

    /// Assigns this cluster process its share of the selected topics' partitions
    /// ([`super::ClusterShare::process_of`]), when it changed: each starts where this process was,
    /// else at the beginning.
    fn assign_share(&mut self) {
        let (Some(selection), Some(share)) = (&self.selection, self.config.cluster) else {
            return;
        };
        let metadata = match self.consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "Listing the Kafka topics failed; retrying in 5 s.");
                return;
            }
        };
        let mut mine: BTreeSet<(String, i32)> = BTreeSet::new();
        for topic in metadata.topics() {
            if !selection.matches(topic.name()) {
                continue;
            }
            for p in topic.partitions() {
                if share.process_of(topic.name(), p.id()) == share.process {
                    mine.insert((topic.name().to_string(), p.id()));
                }
            }
        }
        let now: BTreeSet<(String, i32)> = {
            let st = self.shared.state.lock();
            st.assigned
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect()
        };
        if mine == now {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in &mine {
            tpl.add_partition(topic, *p);
        }
        {
            let mut st = self.shared.state.lock();
            st.assigned.clear();
        }
        self.shared.set_starts(&self.consumer, &mut tpl);
        tracing::info!(
            partitions = mine.len(),
            process = share.process,
            "Kafka partitions of this cluster process assigned."
        );
        if let Err(e) = self.consumer.assign(&tpl) {
            tracing::error!(error = %e, "Assigning partitions failed.");
        }
    }

    /// Pushes checkpoint request `request` behind everything read (the open tick closes
    /// first) and tells `reply` where that is.
    fn mark(&mut self, open: &mut Open, request: u64, reply: &std::sync::mpsc::Sender<Mark>) {
        if open.count > 0 {
            self.close(open);
        }
        let tick = self
            .feed
            .push_control(lpm_engine::dataflow::Control::Checkpoint { request });
        let position = {
            let mut st = self.shared.state.lock();
            let pos = Arc::new(st.read.clone());
            st.ticks.record(tick, (pos.clone(), self.records));
            TickPosition {
                offsets: pos
                    .iter()
                    .map(|((t, p), (o, _))| (t.to_string(), *p, *o))
                    .collect(),
                records: self.records,
            }
        };
        let _ = reply.send(Mark {
            tick,
            position,
            seq: self.seq,
        });
    }

    /// Publishes applied positions and commits the visible tick's offsets.
    fn commit(&mut self, mode: CommitMode) {
        self.publish_applied();
        self.shared.commit(&self.consumer, &self.dead, None, mode);
    }

    /// Publishes, per partition, the next offset read and the one visible in the views.
    fn publish_applied(&self) {
        let (read, pos) = {
            let st = self.shared.state.lock();
            let visible = (self.shared.visible)();
            let pos = visible.and_then(|v| st.at(v)).map(|(p, _)| p.clone());
            (st.read.clone(), pos)
        };
        for ((t, p), (next, _)) in &read {
            self.shared.stats.partition(t, *p, |s| s.read = *next);
        }
        if let Some(pos) = pos {
            let now = chrono::Utc::now().timestamp_millis();
            for ((t, p), (o, ts)) in pos.iter() {
                self.shared.stats.partition(t, *p, |s| {
                    if s.applied != *o && *ts >= 0 {
                        let delay = Duration::from_millis(now.saturating_sub(*ts).max(0) as u64);
                        s.freshness = Some((*ts, delay));
                    }
                    s.applied = *o;
                });
            }
        }
    }
}
