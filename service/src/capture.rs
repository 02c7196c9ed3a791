//! `lpm serve --capture mysql://…`: the engine fed straight from a MySQL/MariaDB binlog capture
//! (no Kafka, no embedded log). The capture runs on its own thread and runtime; each batch it
//! emits (a snapshot chunk, or the transactions that were waiting) is decoded by the same
//! Debezium decoder as every other source and pushed into the engine as one tick.
//!
//! Undecodable records take the one decode-and-reject path (`lpm_connectors::decode`): counted
//! and dead-lettered to the [`DeadLetters`] the caller gives (`lpm serve`: `dead-letters.jsonl`
//! in the data dir).
//!
//! Starts: with a checkpoint of this capture's origin (server, databases, prefix) the engine
//! state is loaded from it and the capture streams from its binlog position; the server is
//! ready once the stream reaches where the server stood at start. Without one, a consistent
//! snapshot, then streaming from its position; ready once the snapshot is visible. A
//! reconnect within one run resumes from the last batch the engine took, without a new
//! snapshot. A resume position the server no longer has (purged binlog) takes a new snapshot,
//! logged and counted (`lpm_capture_resnapshots_total`): rows it does not re-read are swept,
//! tables it finds empty included.
//!
//! Checkpoints ([`crate::checkpoint`]): a request is pushed into the feed between two batches
//! and only at a resumable point (never inside a snapshot), with the position of the last
//! batch pushed.

use std::sync::Arc;
use std::thread::JoinHandle;

use lpm_connectors::capture::{
    self, Batch, BatchKind, BinlogPosition, CaptureConfig, CaptureSink, CaptureStats, SinkError,
    Stored,
};
use lpm_connectors::dead_letter::{DeadLetters, KeyValue};
use lpm_connectors::debezium::Decoder;
use lpm_connectors::{Catalog, DecodePath, DecodeStats};
use lpm_engine::dataflow::Control;
use lpm_engine::model::Table;
use lpm_engine::{Change, Coords, PushFeed, Tick, TickMap};
use parking_lot::Mutex;

use crate::checkpoint::{Checkpointable, Marker};
use crate::position::SourcePosition;
use crate::sor::{PendingTicks, PushedTick};

/// Where a capture resumes from a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The binlog position the checkpoint covers.
    pub position: BinlogPosition,
    /// Transactions applied before it (the position's `log_seq` continues from it).
    pub transactions: u64,
    /// The ingestion counter (`seq` of positions continues above it).
    pub seq: u64,
    /// The last tick the restore pushed.
    pub restored_tick: Option<Tick>,
}

/// What a capture's positions are positions in: the server (unless it resumes by GTID, which
/// survives a failover), the databases and the topic prefix.
pub fn origin(cfg: &CaptureConfig, opts: &mysql_async::Opts, server_id: u32) -> String {
    let (host, port) = (opts.ip_or_hostname(), opts.tcp_port());
    let server = match cfg.resume_by {
        capture::ResumeBy::Gtid => String::new(),
        capture::ResumeBy::Position => format!(" server_id {server_id}"),
    };
    format!(
        "mysql-binlog {host}:{port}{server} databases {:?} prefix {}",
        cfg.databases, cfg.prefix
    )
}

/// What the API needs to know about a running capture.
pub struct CaptureSource {
    /// The capture's counters (exported on `/metrics`).
    pub stats: Arc<CaptureStats>,
    state: Mutex<State>,
    thread: Mutex<Option<CaptureHandle>>,
    /// Held while pushing into the feed, so a checkpoint request lands between two batches.
    pushed: Mutex<Pushed>,
    feed: Arc<PushFeed>,
    origin: String,
}

/// Where the last push into the feed left the capture.
#[derive(Default)]
struct Pushed {
    /// The ingestion counter.
    seq: u64,
    /// Transactions applied.
    transactions: u64,
    /// The position after the last batch, when it is one to resume from (not inside a
    /// snapshot).
    resumable: Option<BinlogPosition>,
}

struct State {
    /// Where each tick the capture can resume from stands (snapshot chunks before the last
    /// one are not resumable and inherit the position before them).
    positions: TickMap<SourcePosition>,
    /// Ticks not yet seen visible by the metrics loop.
    pending: PendingTicks,
    /// The tick the engine must show to be ready: the one that completes the snapshot, or the
    /// first that reaches where the server stood at start (after a checkpoint).
    ready_tick: Option<Tick>,
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

    /// The tick the engine must show to be ready, once it has been pushed: the snapshot's
    /// last, or (resumed from a checkpoint) the first at or past the server's position at
    /// start.
    pub fn ready_tick(&self) -> Option<Tick> {
        self.state.lock().ready_tick
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
    /// Resumed from a checkpoint: ready once a batch reaches this (the server's position at
    /// start).
    ready_at: Option<BinlogPosition>,
    /// The snapshot being read replaces restored state (the resume position was lost): tables
    /// it re-reads nothing of are swept when it completes.
    resnapshot: Option<Resnapshot>,
}

/// What a re-snapshot has read so far.
#[derive(Default)]
struct Resnapshot {
    tables: std::collections::BTreeSet<Table>,
    coords: Option<Coords>,
}

impl CaptureSink for EngineSink {
    fn stored(&self) -> Option<Stored> {
        self.stored.clone().map(|position| Stored { position })
    }

    fn begin_snapshot(&mut self) -> Result<(), SinkError> {
        self.source.pushed.lock().resumable = None;
        Ok(())
    }

    fn position_lost(&mut self) -> bool {
        self.stored = None;
        self.ready_at = None;
        self.resnapshot = Some(Resnapshot::default());
        self.source.pushed.lock().resumable = None;
        true
    }

    fn idle(&mut self) {
        if self.ready_at.take().is_some() {
            let mut s = self.source.state.lock();
            if s.ready_tick.is_none() {
                // everything pushed so far: the feed's newest tick
                s.ready_tick = Some(self.feed.next_tick().saturating_sub(1));
            }
        }
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
        if let Some(re) = &mut self.resnapshot {
            for c in &changes {
                if let Change::Row(r) = c {
                    re.tables.insert(r.table);
                    re.coords = re.coords.max(r.position.coords);
                }
            }
        }
        let resumable = !matches!(batch.kind, BatchKind::Snapshot { last: false });
        let snapshot_done = batch.kind == (BatchKind::Snapshot { last: true });
        self.transactions += batch.transactions;
        let position = SourcePosition::Binlog {
            log_seq: self.transactions,
            binlog: Some(batch.position.clone()),
        };
        let mut pushed = self.source.pushed.lock();
        let mut tick = self.feed.push(changes).ok_or(SinkError::Closed)?;
        if snapshot_done {
            if let Some(re) = self.resnapshot.take() {
                tick = self.sweep_unread(re, &batch.position)?.unwrap_or(tick);
            }
        }
        pushed.seq = self.seq;
        pushed.transactions = self.transactions;
        pushed.resumable = resumable.then(|| batch.position.clone());
        let mut s = self.source.state.lock();
        drop(pushed);
        s.pending.insert(tick, Vec::new()); // no per-record commit times: see take_visible
        s.pending.trim(100_000);
        if resumable {
            s.positions.record(tick, position);
            let reached = self
                .ready_at
                .as_ref()
                .is_some_and(|at| capture::reached(&batch.position, at));
            if reached && s.ready_tick.is_none() {
                s.ready_tick = Some(tick);
            }
            self.stored = Some(batch.position);
        }
        if snapshot_done {
            s.ready_tick = Some(s.ready_tick.map_or(tick, |t| t.max(tick)));
        }
        Ok(())
    }
}

impl EngineSink {
    /// After a re-snapshot: closes the snapshot of every table it read no row of, so that the
    /// restored rows of a table emptied while the position was lost are swept too (the others
    /// closed with their `last_in_data_collection` record). Returns the last tick pushed.
    fn sweep_unread(&self, re: Resnapshot, at: &BinlogPosition) -> Result<Option<Tick>, SinkError> {
        let Some(coords) = re.coords.or_else(|| capture::coords_of(at)) else {
            tracing::warn!(position = %at, "A re-snapshot's position has no file number; tables it found empty keep their old rows.");
            return Ok(None);
        };
        let mut last = None;
        for table in Table::ALL.into_iter().filter(|t| !re.tables.contains(t)) {
            let control = Control::SnapshotClosed {
                table,
                coords,
                seq: self.seq,
            };
            last = Some(self.feed.push_control(control).ok_or(SinkError::Closed)?);
        }
        Ok(last)
    }
}

impl Checkpointable for CaptureSource {
    fn mark(&self, request: u64) -> Option<Marker> {
        let pushed = self.pushed.lock();
        let binlog = pushed.resumable.clone()?;
        let tick = self.feed.push_control(Control::Checkpoint { request })?;
        let position = SourcePosition::Binlog {
            log_seq: pushed.transactions,
            binlog: Some(binlog),
        };
        self.state.lock().positions.record(tick, position.clone());
        Some(Marker {
            tick,
            position,
            ingest_seq: pushed.seq,
        })
    }

    fn ingested(&self) -> u64 {
        self.pushed.lock().seq
    }

    fn origin(&self) -> String {
        self.origin.clone()
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

/// Starts the capture thread feeding `feed`, from `resume` (a loaded checkpoint) or with a
/// snapshot; [`CaptureSource::stop`] ends it. Undecodable records go to `dead`.
pub fn start(
    cfg: CaptureConfig,
    feed: Arc<PushFeed>,
    decode: (Arc<DecodeStats>, Arc<dyn DeadLetters>),
    origin: String,
    resume: Option<Resume>,
) -> std::io::Result<Arc<CaptureSource>> {
    let (decode_stats, dead) = decode;
    let source = Arc::new(CaptureSource {
        stats: Arc::new(CaptureStats::default()),
        state: Mutex::new(State {
            positions: TickMap::new(100_000),
            pending: PendingTicks::default(),
            ready_tick: None,
            failed: None,
        }),
        thread: Mutex::new(None),
        pushed: Mutex::new(Pushed::default()),
        feed: feed.clone(),
        origin,
    });
    let mut sink = EngineSink {
        feed,
        decoder: Decoder::new(Arc::new(Catalog::lpm())),
        decode: DecodePath::new("capture", decode_stats, dead),
        source: source.clone(),
        stored: None,
        seq: 0,
        transactions: 0,
        ready_at: None,
        resnapshot: None,
    };
    if let Some(r) = &resume {
        sink.stored = Some(r.position.clone());
        sink.seq = r.seq;
        sink.transactions = r.transactions;
        *source.pushed.lock() = Pushed {
            seq: r.seq,
            transactions: r.transactions,
            resumable: Some(r.position.clone()),
        };
        if let Some(tick) = r.restored_tick {
            source.state.lock().positions.record(
                tick,
                SourcePosition::Binlog {
                    log_seq: r.transactions,
                    binlog: Some(r.position.clone()),
                },
            );
        }
    }
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
            if let Some(r) = &resume {
                rt.block_on(ready_after_restore(&cfg, r, &mut sink));
            }
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

/// After a restore: ready at once when the checkpoint covers where the server stands now,
/// else once the stream reaches it (`sink.ready_at`). When the server's position cannot be
/// read, ready once the checkpoint is loaded (the tail streams in after).
async fn ready_after_restore(cfg: &CaptureConfig, resume: &Resume, sink: &mut EngineSink) {
    let now = match mysql_async::Opts::from_url(&cfg.url) {
        Ok(opts) => capture::settings::current_position(&opts).await.ok(),
        Err(_) => None,
    };
    match now {
        Some(now) if !capture::reached(&resume.position, &now) => {
            tracing::info!(from = %resume.position, to = %now,
                "Streaming the binlog written since the checkpoint; ready once it is applied.");
            sink.ready_at = Some(now);
        }
        _ => {
            sink.source.state.lock().ready_tick = Some(resume.restored_tick.unwrap_or(0));
        }
    }
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
                    ready_tick: None,
                    failed: None,
                }),
                thread: Mutex::new(None),
                pushed: Mutex::new(Pushed::default()),
                feed: feed.clone(),
                origin: String::new(),
            }),
            stored: None,
            seq: 0,
            transactions: 0,
            ready_at: None,
            resnapshot: None,
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
