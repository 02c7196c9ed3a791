//! [`KafkaFeed`]: the engine's view of the Kafka source. The consumer thread queues each tick's
//! raw records per worker (by partition); each worker decodes its own records on its thread.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lpm_engine::{Feed, FeedItem, Tick};
use parking_lot::Mutex;

use crate::catalog::Catalog;
use crate::dead_letter::KeyValue;
use crate::debezium::Decoder;
use crate::decode::DecodePath;

/// One Kafka record as polled (owned: it outlives the poll).
#[derive(Clone, Debug)]
pub struct RawRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes (`None` for keyless records: truncates).
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
    /// Ingestion order in this process (ties between events without source coordinates).
    pub seq: u64,
}

/// One worker's queued ticks.
type Slices = VecDeque<(Tick, Vec<RawRecord>)>;

/// The Kafka source as an engine [`Feed`].
pub struct KafkaFeed {
    queues: Vec<Mutex<Slices>>,
    /// Every slice of every tick up to this one is queued.
    closed: AtomicU64,
    ended: AtomicBool,
    decoders: Vec<Mutex<Decoder>>,
    /// Decode, count, dead-letter to the dead-letter topic.
    decode: DecodePath,
}

impl KafkaFeed {
    /// A feed for `workers` workers.
    pub(crate) fn new(workers: usize, catalog: Arc<Catalog>, decode: DecodePath) -> KafkaFeed {
        let workers = workers.max(1);
        KafkaFeed {
            queues: (0..workers).map(|_| Mutex::new(VecDeque::new())).collect(),
            closed: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            decoders: (0..workers)
                .map(|_| Mutex::new(Decoder::new(catalog.clone())))
                .collect(),
            decode,
        }
    }

    /// The worker that decodes `partition` of `topic` (fixed for the run, so a partition's
    /// records stay in order).
    pub fn worker_of(&self, topic: &str, partition: i32) -> usize {
        let mut h = rustc_hash::FxHasher::default();
        topic.hash(&mut h);
        (h.finish() as usize).wrapping_add(partition.max(0) as usize) % self.queues.len()
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.queues.len()
    }

    /// Queues tick `tick` (one slice per worker, empty ones skipped), then publishes it as
    /// closed. Ticks must be pushed in increasing order.
    pub(crate) fn push_tick(&self, tick: Tick, slices: Vec<Vec<RawRecord>>) {
        for (w, slice) in slices.into_iter().enumerate() {
            if !slice.is_empty() {
                if let Some(q) = self.queues.get(w) {
                    q.lock().push_back((tick, slice));
                }
            }
        }
        self.closed.store(tick, Ordering::Release);
    }

    /// The last closed tick.
    pub fn closed(&self) -> Tick {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the input: workers finish what is queued, then stop.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    fn decode(&self, worker: usize, records: Vec<RawRecord>) -> Vec<lpm_engine::Change> {
        let mut decoder = self.decoders[worker % self.decoders.len()].lock();
        let mut changes = Vec::with_capacity(records.len());
        for r in &records {
            let kv = KeyValue {
                topic: &r.topic,
                partition: Some(r.partition),
                offset: Some(r.offset),
                key: r.key.as_deref(),
                value: r.value.as_deref(),
            };
            changes.extend(self.decode.record(&mut decoder, kv, r.seq));
        }
        changes
    }
}

impl Feed for KafkaFeed {
    fn next(&self, worker: usize) -> FeedItem {
        let Some(queue) = self.queues.get(worker) else {
            return FeedItem::End;
        };
        // read `closed` first: every slice of a tick at or below it is already queued
        let closed = self.closed();
        if let Some((tick, records)) = queue.lock().pop_front() {
            return FeedItem::Batch {
                tick,
                changes: self.decode(worker, records),
            };
        }
        if self.ended.load(Ordering::Acquire) {
            // a last slice may have been queued between the pop and `ended`
            return match queue.lock().pop_front() {
                Some((tick, records)) => FeedItem::Batch {
                    tick,
                    changes: self.decode(worker, records),
                },
                None => FeedItem::End,
            };
        }
        FeedItem::Idle { tick: closed + 1 }
    }
}
