//! [`KafkaFeed`]: the engine's view of the Kafka source. The consumer thread queues each tick's
//! raw records per worker (by partition); each worker decodes its own records on its thread.
//!
//! Two more kinds of tick go to worker 0 alone (the dataflow routes changes by key and
//! broadcasts controls, so one worker suffices): a restored checkpoint's changes, already
//! decoded, before the consumer starts; and a checkpoint request between two record ticks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lpm_engine::dataflow::Control;
use lpm_engine::{Change, Feed, FeedItem, Tick};
use parking_lot::Mutex;

use super::cluster::{spread, ClusterShare};
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

/// What one queued tick holds for one worker.
enum Slice {
    /// Records to decode.
    Records(Vec<RawRecord>),
    /// Changes decoded already (a restored checkpoint).
    Changes(Vec<Change>),
    /// A control (a restored cut, a checkpoint request).
    Control(Control),
}

/// One worker's queued ticks.
type Slices = VecDeque<(Tick, Slice)>;

/// The Kafka source as an engine [`Feed`].
pub struct KafkaFeed {
    queues: Vec<Mutex<Slices>>,
    /// In a cluster: this process's share (its workers' global indices start at
    /// `first_worker`; partitions go to workers by [`ClusterShare::worker_of`]).
    share: Option<ClusterShare>,
    /// Every slice of every tick up to this one is queued.
    closed: AtomicU64,
    ended: AtomicBool,
    decoders: Vec<Mutex<Decoder>>,
    /// Decode, count, dead-letter to the dead-letter topic.
    decode: DecodePath,
}

impl KafkaFeed {
    /// A feed for `workers` workers.
    pub(crate) fn new(
        workers: usize,
        share: Option<ClusterShare>,
        catalog: Arc<Catalog>,
        decode: DecodePath,
    ) -> KafkaFeed {
        let workers = workers.max(1);
        KafkaFeed {
            queues: (0..workers).map(|_| Mutex::new(VecDeque::new())).collect(),
            share,
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
        match &self.share {
            Some(share) => share.worker_of(topic, partition) % self.queues.len(),
            None => spread(topic, partition) % self.queues.len(),
        }
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
                    q.lock().push_back((tick, Slice::Records(slice)));
                }
            }
        }
        self.closed.store(tick, Ordering::Release);
    }

    /// Queues decoded `changes` as the next tick (a restored checkpoint, pushed before the
    /// consumer starts) and returns it.
    pub fn push_changes(&self, changes: Vec<Change>) -> Tick {
        self.push_one(Slice::Changes(changes))
    }

    /// Queues `control` as the next tick and returns it. Not concurrently with the consumer
    /// thread's pushes: it calls this itself for checkpoint requests.
    pub fn push_control(&self, control: Control) -> Tick {
        self.push_one(Slice::Control(control))
    }

    fn push_one(&self, slice: Slice) -> Tick {
        let tick = self.closed() + 1;
        self.queues[0].lock().push_back((tick, slice));
        self.closed.store(tick, Ordering::Release);
        tick
    }

    /// Declares every tick up to `tick` closed without records (a cluster process with
    /// nothing to read follows the clock, so the others' ticks can complete).
    pub(crate) fn close_empty_through(&self, tick: Tick) {
        self.closed.fetch_max(tick, Ordering::AcqRel);
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
        // the engine names workers by their global index: a cluster's process 1 starts at w
        let first = self.share.map_or(0, |s| s.first_worker());
        let worker = worker.wrapping_sub(first);
        let Some(queue) = self.queues.get(worker) else {
            return FeedItem::End;
        };
        // read `closed` first: every slice of a tick at or below it is already queued
        let closed = self.closed();
        if let Some((tick, slice)) = queue.lock().pop_front() {
            return self.item(worker, tick, slice);
        }
        if self.ended.load(Ordering::Acquire) {
            // a last slice may have been queued between the pop and `ended`
            return match queue.lock().pop_front() {
                Some((tick, slice)) => self.item(worker, tick, slice),
                None => FeedItem::End,
            };
        }
        FeedItem::Idle { tick: closed + 1 }
    }
}

impl KafkaFeed {
    fn item(&self, worker: usize, tick: Tick, slice: Slice) -> FeedItem {
        match slice {
            Slice::Records(records) => FeedItem::Batch {
                tick,
                changes: self.decode(worker, records),
            },
            Slice::Changes(changes) => FeedItem::Batch { tick, changes },
            Slice::Control(control) => FeedItem::Control { tick, control },
        }
    }
}

#[cfg(test)]
mod tests {
    use lpm_engine::change::{ChangeKind, Position, RowChange, SnapshotMark};
    use lpm_engine::model::Table;

    use super::*;
    use crate::dead_letter::Discard;

    fn feed(workers: usize) -> KafkaFeed {
        let decode = DecodePath::new("kafka", Arc::default(), Arc::new(Discard));
        KafkaFeed::new(workers, None, Arc::new(Catalog::lpm()), decode)
    }

    fn delete(key: i64) -> Change {
        Change::Row(RowChange {
            table: Table::PersonsLost,
            key,
            kind: ChangeKind::Delete,
            position: Position {
                coords: None,
                seq: 1,
            },
            snapshot: SnapshotMark::Streamed,
        })
    }

    #[test]
    fn restored_ticks_and_requests_go_to_worker_zero_in_order_and_number_the_ticks_after() {
        let f = feed(2);
        assert_eq!(f.push_changes(vec![delete(1), delete(2)]), 1);
        assert_eq!(f.push_control(Control::Checkpoint { request: 7 }), 2);
        // the consumer's first tick comes after what was restored
        let tick = f.closed() + 1;
        f.push_tick(tick, vec![Vec::new(), Vec::new()]);
        assert_eq!(tick, 3);
        assert!(
            matches!(f.next(1), FeedItem::Idle { tick: 4 }),
            "worker 1 only learns how far time went"
        );
        match f.next(0) {
            FeedItem::Batch { tick: 1, changes } => assert_eq!(changes.len(), 2),
            _ => panic!("the restored changes first, decoded already"),
        }
        assert!(matches!(
            f.next(0),
            FeedItem::Control {
                tick: 2,
                control: Control::Checkpoint { request: 7 }
            }
        ));
        assert!(matches!(f.next(0), FeedItem::Idle { tick: 4 }));
        f.end();
        assert!(matches!(f.next(0), FeedItem::End));
        assert!(matches!(f.next(1), FeedItem::End));
    }
}
