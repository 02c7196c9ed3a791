//! `lpm serve --kafka BROKERS`: the engine fed from Debezium change topics on Kafka.
//!
//! The source itself (consumer thread, per-worker decoding, commits of visible offsets, dead
//! letters) is `lpm_connectors::kafka`; this module connects it to the server: the engine's
//! visible tick for commits, freshness from the records' Kafka timestamps, the positions each
//! tick covers for `/api/v1/views`, readiness once the partitions are caught up.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use lpm_connectors::kafka::{self, KafkaConfig, KafkaError, KafkaFeed, KafkaSource};
use lpm_engine::dataflow::Control;
use lpm_engine::{Change, Tick};
use parking_lot::Mutex;

use crate::checkpoint::{Checkpointable, Marker, RestoreFeed};
use crate::position::{PartitionOffset, SourcePosition};
use crate::sor::{PendingTicks, PushedTick};

/// The running Kafka source, as the API sees it.
pub struct KafkaInput {
    /// The source (feed, stats, positions).
    pub source: KafkaSource,
    pending: Arc<Mutex<PendingTicks>>,
    origin: String,
}

/// What Kafka positions are positions in: the brokers, the consumer group and the topics, and
/// in a cluster the process and the process count (a process's checkpoint holds its share of
/// the state and the offsets of its share of the partitions: no other layout can load it).
pub fn origin(cfg: &KafkaConfig) -> String {
    let mut origin = format!(
        "kafka {} group {} topics {:?}",
        cfg.brokers, cfg.group, cfg.topics
    );
    if let Some(share) = &cfg.cluster {
        origin.push_str(&format!(
            " cluster process {} of {}",
            share.process, share.processes
        ));
    }
    origin
}

impl KafkaInput {
    /// Starts the consumer of `prepared` (whose feed the engine already reads, with anything
    /// restored from a checkpoint pushed into it), from `resume`'s offsets.
    pub fn start(
        prepared: kafka::Prepared,
        resume: kafka::Resume,
        visible: Arc<dyn Fn() -> Option<Tick> + Send + Sync>,
        origin: String,
    ) -> Result<KafkaInput, KafkaError> {
        let pending = Arc::new(Mutex::new(PendingTicks::default()));
        let p = pending.clone();
        let on_tick = Box::new(move |tick: Tick, stamps: &[i64]| {
            let mut pending = p.lock();
            pending.insert(tick, stamps.to_vec());
            pending.trim(100_000);
        });
        let source = prepared.run(visible, on_tick, resume)?;
        Ok(KafkaInput {
            source,
            pending,
            origin,
        })
    }

    /// The source position a tick covers.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        position(self.source.position_at(tick))
    }

    /// Ticks at or below `visible` (freshness from their records' Kafka timestamps) and since
    /// when the oldest invisible one waits.
    pub fn take_visible(&self, visible: Option<Tick>) -> (Vec<PushedTick>, Option<Instant>) {
        self.pending.lock().take_visible(visible)
    }
}

/// How long a checkpoint request waits for the consumer thread (it looks between polls,
/// every 50 ms at most, unless held back by a slow engine).
const MARK_TIMEOUT: Duration = Duration::from_secs(60);

impl Checkpointable for KafkaInput {
    fn mark(&self, request: u64) -> Option<Marker> {
        let mark = self.source.mark(request, MARK_TIMEOUT)?;
        Some(Marker {
            tick: mark.tick,
            position: position(mark.position),
            ingest_seq: mark.seq,
        })
    }

    fn ingested(&self) -> u64 {
        self.source.ingested()
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }

    fn covered_at(&self, tick: Tick) -> Option<SourcePosition> {
        self.source.covering(tick).map(position)
    }
}

/// A [`kafka::TickPosition`] as the API and checkpoints name it.
fn position(p: kafka::TickPosition) -> SourcePosition {
    SourcePosition::Kafka {
        log_seq: p.records,
        offsets: p
            .offsets
            .into_iter()
            .map(|(topic, partition, offset)| PartitionOffset {
                topic,
                partition,
                offset,
            })
            .collect(),
    }
}

/// Where a consumer resumes after checkpoint position `position` (ingestion counter `seq`).
pub fn resume(position: &SourcePosition, seq: u64) -> kafka::Resume {
    let offsets = match position {
        SourcePosition::Kafka { offsets, .. } => offsets
            .iter()
            .map(|o| (o.topic.clone(), o.partition, o.offset))
            .collect(),
        _ => Vec::new(),
    };
    kafka::Resume {
        offsets,
        records: position.log_seq(),
        seq,
    }
}

/// The Kafka feed as a checkpoint's restore target: pushes wait while the engine is more than
/// a few ticks behind, so a large checkpoint is not queued whole in memory.
pub struct RestoreInto<'a> {
    /// The feed.
    pub feed: &'a KafkaFeed,
    /// The last tick the engine has applied (the store's tick; in a cluster, where only
    /// process 0's store fills, the tick complete on every process).
    pub applied: &'a dyn Fn() -> Option<Tick>,
}

impl RestoreInto<'_> {
    fn wait(&self) {
        while self.feed.closed() > (self.applied)().unwrap_or(0) + 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl RestoreFeed for RestoreInto<'_> {
    fn push(&self, changes: Vec<Change>) -> Option<Tick> {
        self.wait();
        Some(self.feed.push_changes(changes))
    }

    fn push_control(&self, control: Control) -> Option<Tick> {
        self.wait();
        Some(self.feed.push_control(control))
    }
}
