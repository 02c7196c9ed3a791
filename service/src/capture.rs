//! `lpm serve --capture mysql://…`: the engine fed straight from a MySQL/MariaDB binlog capture
//! (no Kafka, no embedded log). The capture runs on its own thread and runtime; each batch it
//! emits (a snapshot chunk, or the transactions that were waiting) is decoded by the same
//! Debezium decoder as every other source and pushed into the engine as one tick.
//!
//! Undecodable records take the one decode-and-reject path (`lpm_connectors::decode`): counted
//! and dead-lettered to the [`DeadLetters`] the caller gives (`lpm serve`: `dead-letters.jsonl`
//! in the data dir).
//!
//! Nothing is persisted: each start takes a consistent snapshot, then streams from its position
//! (the engine keeps its state in memory). A reconnect within one run resumes from the last
//! batch the engine took, without a new snapshot. The server is ready once the snapshot is
//! visible in the views.

use std::sync::Arc;
use std::thread::JoinHandle;

use lpm_connectors::capture::{
    self, Batch, BatchKind, BinlogPosition, CaptureConfig, CaptureSink, CaptureStats, SinkError,
    Stored,
};
use lpm_connectors::dead_letter::{DeadLetters, KeyValue};
use lpm_connectors::debezium::Decoder;
use lpm_connectors::{Catalog, DecodePath, DecodeStats};
use lpm_engine::{PushFeed, Tick, TickMap};
use parking_lot::Mutex;

use crate::position::SourcePosition;
use crate::sor::{PendingTicks, PushedTick};

/// What the API needs to know about a running capture.
pub struct CaptureSource {
    /// The capture's counters (exported on `/metrics`).
    pub stats: Arc<CaptureStats>,
    state: Mutex<State>,
    thread: Mutex<Option<CaptureHandle>>,
}

struct State {
    /// Where each tick the capture can resume from stands (snapshot chunks before the last
    /// one are not resumable and inherit the position before them).
    positions: TickMap<SourcePosition>,
    /// Ticks not yet seen visible by the metrics loop.
    pending: PendingTicks,
    /// The tick that completes the snapshot.
    snapshot_tick: Option<Tick>,
    /// Why the capture stopped, when it did.
    failed: Option<String>,
}

impl CaptureSource {
    /// The source position a tick covers.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        self.state
            .lock()
            .positions
            .at(tick)
            .cloned()
            .unwrap_or(SourcePosition::Binlog {
                log_seq: 0,
                binlog: None,
            })
    }

    /// The tick that completes the snapshot, once it has been pushed.
    pub fn snapshot_tick(&self) -> Option<Tick> {
        self.state.lock().snapshot_tick
    }

    /// Stops the capture (after its current batch) and waits for its thread; a second call
    /// does nothing.
    pub fn stop(&self) {
        if let Some(handle) = self.thread.lock().take() {
            handle.stop();
        }
    }

    /// Why the capture stopped (a fatal error), if it did.
    pub fn failed(&self) -> Option<String> {
        self.state.lock().failed.clone()
    }

    /// Ticks at or below `visible` (for the tick-duration metric) and since when the oldest
    /// invisible one has waited (staleness). Binlog commit times have one-second resolution, so
    /// capture mode reports no per-record freshness; `lpm_capture_lag_seconds` covers it.
    pub fn take_visible(
        &self,
        visible: Option<Tick>,
    ) -> (Vec<PushedTick>, Option<std::time::Instant>) {
        self.state.lock().pending.take_visible(visible)
    }
}

/// The capture's sink: decode, push one tick per batch, remember where it stands.
struct EngineSink {
    feed: Arc<PushFeed>,
    decoder: Decoder,
    decode: DecodePath,
    source: Arc<CaptureSource>,
    stored: Option<BinlogPosition>,
    seq: u64,
    transactions: u64,
}

impl CaptureSink for EngineSink {
    fn stored(&self) -> Option<Stored> {
        self.stored.clone().map(|position| Stored { position })
    }

    fn begin_snapshot(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        let mut changes = Vec::with_capacity(batch.records.len());
        for r in &batch.records {
            self.seq += 1;
            let kv = KeyValue {
                topic: &r.topic,
                partition: None,
                offset: None,
                key: r.key.as_deref().map(str::as_bytes),
                value: r.value.as_deref().map(str::as_bytes),
            };
            changes.extend(self.decode.record(&mut self.decoder, kv, self.seq));
        }
        let tick = self.feed.push(changes).ok_or(SinkError::Closed)?;
        self.transactions += batch.transactions;
        let resumable = !matches!(batch.kind, BatchKind::Snapshot { last: false });
        let mut s = self.source.state.lock();
        s.pending.insert(tick, Vec::new()); // no per-record commit times: see take_visible
        s.pending.trim(100_000);
        if resumable {
            s.positions.record(
                tick,
                SourcePosition::Binlog {
                    log_seq: self.transactions,
                    binlog: Some(batch.position.clone()),
                },
            );
            self.stored = Some(batch.position);
        }
        if batch.kind == (BatchKind::Snapshot { last: true }) {
            s.snapshot_tick = Some(tick);
        }
        Ok(())
    }
}

/// The running capture thread.
struct CaptureHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CaptureHandle {
    /// Stops the capture (after its current batch) and waits for the thread.
    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the capture thread feeding `feed`; [`CaptureSource::stop`] ends it. Undecodable
/// records go to `dead`.
pub fn start(
    cfg: CaptureConfig,
    feed: Arc<PushFeed>,
    decode_stats: Arc<DecodeStats>,
    dead: Arc<dyn DeadLetters>,
) -> std::io::Result<Arc<CaptureSource>> {
    let source = Arc::new(CaptureSource {
        stats: Arc::new(CaptureStats::default()),
        state: Mutex::new(State {
            positions: TickMap::new(100_000),
            pending: PendingTicks::default(),
            snapshot_tick: None,
            failed: None,
        }),
        thread: Mutex::new(None),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let src = source.clone();
    let thread = std::thread::Builder::new()
        .name("lpm-capture".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    src.state.lock().failed = Some(format!("runtime: {e}"));
                    return;
                }
            };
            let mut sink = EngineSink {
                feed,
                decoder: Decoder::new(Arc::new(Catalog::lpm())),
                decode: DecodePath::new("capture", decode_stats, dead),
                source: src.clone(),
                stored: None,
                seq: 0,
                transactions: 0,
            };
            let stats = src.stats.clone();
            let result = rt.block_on(capture::run(&cfg, &mut sink, stats, async {
                let _ = stop_rx.await;
            }));
            if let Err(e) = result {
                tracing::error!(error = %e, "The binlog capture stopped; the views no longer follow MySQL.");
                src.state.lock().failed = Some(e.to_string());
            }
        })?;
    *source.thread.lock() = Some(CaptureHandle {
        stop: Some(stop_tx),
        thread: Some(thread),
    });
    Ok(source)
}

#[cfg(test)]
mod tests {
    use lpm_connectors::capture::Record;
    use lpm_connectors::dead_letter::file::FileDeadLetters;
    use lpm_engine::{Feed, FeedItem};

    use super::*;

    const TOPIC: &str = "lpm.lost_persons_db.responsible_contacts";

    fn contact(after: &str) -> Record {
        Record {
            topic: TOPIC.into(),
            key: Some(r#"{"id":1}"#.into()),
            value: Some(format!(
                r#"{{"before":null,"after":{after},"source":{{"snapshot":"false","file":"mysql-bin.000001","pos":4,"row":0}},"op":"c"}}"#
            )),
            ts_ms: 0,
        }
    }

    #[test]
    fn an_undecodable_row_is_dead_lettered_with_its_reason_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead-letters.jsonl");
        let stats = Arc::new(DecodeStats::default());
        let dead = Arc::new(FileDeadLetters::open(&path).expect("dead letters"));
        let feed = Arc::new(PushFeed::new(8));
        let mut sink = EngineSink {
            feed: feed.clone(),
            decoder: Decoder::new(Arc::new(Catalog::lpm())),
            decode: DecodePath::new("capture", stats.clone(), dead.clone()),
            source: Arc::new(CaptureSource {
                stats: Arc::new(CaptureStats::default()),
                state: Mutex::new(State {
                    positions: TickMap::new(16),
                    pending: PendingTicks::default(),
                    snapshot_tick: None,
                    failed: None,
                }),
                thread: Mutex::new(None),
            }),
            stored: None,
            seq: 0,
            transactions: 0,
        };
        let good = r#"{"id":1,"full_name":"A","agency":"ECU 911","phone":null,"email":null,"active":1,"version":1}"#;
        let bad = r#"{"id":1,"agency":"ECU 911","phone":null,"email":null,"active":1,"version":1}"#;
        sink.write(Batch {
            kind: BatchKind::Stream,
            records: vec![contact(bad), contact(good)],
            position: BinlogPosition::default(),
            transactions: 1,
            newest_commit_ms: None,
        })
        .expect("write");

        let FeedItem::Batch { changes, .. } = feed.next(0) else {
            panic!("no tick pushed")
        };
        assert_eq!(
            changes.len(),
            1,
            "the decodable row still reaches the engine"
        );
        assert_eq!(stats.error_counts(), vec![("null_in_not_null", 1)]);
        assert!(dead.flush(std::time::Duration::ZERO));
        let letters = lpm_connectors::dead_letter::file::read(&path).expect("dead letters");
        assert_eq!(letters.len(), 1, "{letters:?}");
        assert_eq!(letters[0]["reason"], "null_in_not_null");
        assert_eq!(letters[0]["source"], "capture");
        assert_eq!(letters[0]["seq"], 1);
        assert_eq!(letters[0]["topic"], TOPIC);
        let record: serde_json::Value =
            serde_json::from_str(letters[0]["record"].as_str().unwrap_or("")).expect("record");
        assert_eq!(record["payload"].as_str(), contact(bad).value.as_deref());
    }
}
