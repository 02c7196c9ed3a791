//! Checkpoints: the engine's upsert state and the source position that covers exactly the same
//! tick, written to `<data-dir>/checkpoints`, so that a restart loads the state and replays only
//! what follows instead of the whole history.
//!
//! # Taking one (one thread, `lpm-checkpoint`)
//! 1. The source pushes a checkpoint request into the engine's feed *behind everything it has
//!    pushed* and says where it stood at that point ([`Checkpointable::mark`]): for the embedded
//!    log the last log record pushed, and the decoder's ingestion counter. The request gets a
//!    tick of its own, so the state at that tick is exactly "every change pushed before it".
//! 2. Every worker applies that tick, copies its upsert state (pointers to the rows, a pause of
//!    one pointer copy per key) and hands it over ([`lpm_engine::checkpoint`]).
//! 3. This thread writes the copies as one state file, fsyncs it, renames it into place, then
//!    publishes the manifest the same way ([`store`]); then only the newest `keep` remain.
//!
//! When: every `interval` if anything changed, or after `every_changes` changes, whichever is
//! first; after the `--demo` history is loaded; and on a clean shutdown. A checkpoint is skipped
//! (counted) while a blocking snapshot is half read, because its re-read sets are not saved.
//!
//! # Restoring one
//! [`restore`] streams the newest checkpoint that verifies into the feed (the table cuts first,
//! then every stored key at its stored position; [`lpm_engine::checkpoint`] says why that
//! rebuilds the state exactly, for any worker count) and hands each row to the caller (the
//! embedded log rebuilds its write ledger from them). The source then replays only what follows
//! the checkpoint's position. A newer checkpoint that fails to verify is logged and counted and
//! the previous one is tried, then a full replay: never a partial state, never a crash.
//!
//! # In a cluster (`lpm serve --kafka --peers`)
//! The upsert state is spread over every process's workers by key, whatever partition a
//! record came from, so a checkpoint is only whole as the shares of every process at one tick.
//! Process 0 asks (as above); its request is broadcast to every worker of the cluster, so each
//! process's workers hand their images at process 0's tick T to their own process, which writes
//! its share with its own partitions' offsets at T ([`Role::Follower`]). At a restart every
//! process offers the ticks of its usable checkpoints in the cluster handshake, and each loads
//! its share of the newest tick all of them hold (none: every process reads from the
//! beginning). Checkpoint names stay per process; the tick is what they share.

pub mod file;
pub mod metrics;
pub mod store;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lpm_engine::checkpoint::{StoredEntry, TableImage, WorkerImage};
use lpm_engine::dataflow::Control;
use lpm_engine::model::Table;
use lpm_engine::{Change, PushFeed, Tick};

use crate::position::SourcePosition;
use file::{CheckpointFileError, Manifest, StateWriter};
pub use metrics::CheckpointMetrics;
use store::CheckpointDir;

/// When checkpoints are taken.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    /// Take one at most this long after the last, if anything changed.
    pub interval: Duration,
    /// Take one once this many changes were ingested since the last.
    pub every_changes: u64,
    /// How many to keep (at least one; two lets a corrupt newest fall back).
    pub keep: usize,
    /// Take none, not even at shutdown (restarts still load existing ones): the pipeline then
    /// starts no checkpoint thread.
    pub disabled: bool,
    /// How long log history is kept after a checkpoint covers it (the log is also the audit
    /// trail of who wrote what); then it is retired ([`Checkpointable::retire_through`]).
    pub log_retention: Duration,
    /// Where retired log segments go; `None`: deleted.
    pub log_archive: Option<std::path::PathBuf>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval: Duration::from_secs(300),
            every_changes: 1_000_000,
            keep: 2,
            disabled: false,
            log_retention: Duration::from_secs(7 * 24 * 3600),
            log_archive: None,
        }
    }
}

/// Where a source stood when it pushed a checkpoint request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The request's tick: the state taken there holds every change pushed before it.
    pub tick: Tick,
    /// The source position that covers exactly that state.
    pub position: SourcePosition,
    /// The source's ingestion counter at that point.
    pub ingest_seq: u64,
}

/// What a source does for checkpoints.
pub trait Checkpointable: Send + Sync + 'static {
    /// Pushes [`lpm_engine::dataflow::Control::Checkpoint`] with `request` behind everything
    /// pushed so far, atomically with reading where the source stands. `None`: the feed is
    /// closed.
    fn mark(&self, request: u64) -> Option<Marker>;
    /// Changes ingested so far (the source's ingestion counter).
    fn ingested(&self) -> u64;
    /// Deletes (or moves into `archive`) the source's own history up to `position`, which a
    /// kept checkpoint covers; returns the segments and bytes retired. Sources whose history
    /// is not theirs (a binlog, Kafka) retire nothing.
    fn retire_through(
        &self,
        _position: &SourcePosition,
        _archive: Option<&std::path::Path>,
    ) -> Result<(u64, u64), String> {
        Ok((0, 0))
    }
    /// The source's own history now: segments and bytes (`None`: it keeps none).
    fn history_size(&self) -> Option<(u64, u64)> {
        None
    }
    /// What the positions are positions *in*: the server and databases of a capture, the
    /// brokers, group and topics of Kafka (empty for the embedded log, whose positions belong
    /// to its data dir). A restart loads only checkpoints of the same origin: a binlog offset
    /// of another server, or offsets of other topics, would resume in the wrong place.
    fn origin(&self) -> String {
        String::new()
    }
    /// Where the source stood at the end of `tick`: the position a cluster process other than 0
    /// checkpoints its share at, when process 0's request (at a tick of process 0's) reaches
    /// its workers. `None`: this source cannot say (it never runs in a cluster).
    fn covered_at(&self, _tick: Tick) -> Option<SourcePosition> {
        None
    }
}

/// How long a checkpoint waits for the workers' images (the request queues behind the backlog
/// a large replay leaves).
const IMAGE_TIMEOUT: Duration = Duration::from_secs(600);

enum Command {
    Now(Sender<Result<Option<Manifest>, String>>),
    Stop,
}

/// The checkpoint thread. Dropping it without [`Checkpointer::stop`] stops it too.
pub struct Checkpointer {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// Everything the checkpoint thread needs.
pub struct Taker {
    /// Where checkpoints go.
    pub dir: CheckpointDir,
    /// When.
    pub config: CheckpointConfig,
    /// The source (pushes requests, says where it stands).
    pub source: Arc<dyn Checkpointable>,
    /// The workers' images (the engine's [`lpm_engine::checkpoint::ImageSink`] sends here).
    pub images: Receiver<WorkerImage>,
    /// The engine's worker count (images per checkpoint).
    pub workers: usize,
    /// Instruments.
    pub metrics: Arc<CheckpointMetrics>,
    /// Earlier checkpoints (taken at, position), oldest first: the one loaded at start and
    /// the history its manifest carried.
    pub history: Vec<Taken>,
    /// The source's ingestion count the loaded checkpoint covered (0 without one): changes are
    /// counted from there, so a log tail replayed at start counts toward the next checkpoint
    /// instead of being replayed again at every start.
    pub covered_ingested: u64,
    /// Alone, or which part it plays in a cluster.
    pub role: Role,
}

/// What a checkpoint thread does in a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// One process: asks when its own thresholds say so.
    Alone,
    /// Process 0 of a cluster: asks for every process. It only counts its own partitions'
    /// changes, so it also asks every interval when it saw none (the others may have).
    Leader,
    /// Any other process of a cluster: never asks. Process 0's requests are broadcast to every
    /// worker of the cluster, so this process's workers hand it their share of the state at
    /// process 0's tick, and it writes that share with its own source's position at the same
    /// tick ([`Checkpointable::covered_at`]). A restart loads the newest tick every process
    /// holds (`lpm_engine::cluster::ClusterConfig::agreed`).
    Follower,
}

/// When a checkpoint was taken and what it covered: manifests carry the history of earlier
/// ones so that log retention survives restarts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Taken {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// What it covered.
    pub position: SourcePosition,
}

/// How many earlier checkpoints a manifest remembers (a week at the default interval).
const HISTORY: usize = 2016;

/// The position up to which history may be retired at `now_ms`: the newest checkpoint taken
/// at least `retention` ago, but never past the oldest of the `keep` newest checkpoints (a
/// corrupt newest one falls back to that one, which needs its tail).
fn retirable(
    history: &[Taken],
    keep: usize,
    retention: Duration,
    now_ms: i64,
) -> Option<&SourcePosition> {
    let cutoff = now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let old_enough = history.iter().rposition(|t| t.at_ms <= cutoff)?;
    let oldest_kept = history.len().saturating_sub(keep.max(1));
    Some(&history[old_enough.min(oldest_kept)].position)
}

impl Checkpointer {
    /// Starts the thread.
    pub fn start(taker: Taker) -> std::io::Result<Checkpointer> {
        let (commands, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lpm-checkpoint".into())
            .spawn(move || taker.run(rx))?;
        Ok(Checkpointer {
            commands,
            thread: Some(thread),
        })
    }

    /// Takes a checkpoint now and waits for it: `Ok(None)` when it was skipped (a snapshot
    /// half read, or the feed closed).
    pub fn checkpoint_now(&self) -> Result<Option<Manifest>, String> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::Now(tx))
            .map_err(|_| "the checkpoint thread has stopped".to_string())?;
        rx.recv()
            .map_err(|_| "the checkpoint thread has stopped".to_string())?
    }

    /// Stops the thread (a checkpoint in progress completes first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Taker {
    fn run(mut self, commands: Receiver<Command>) {
        self.metrics.history(self.source.history_size());
        if self.role == Role::Follower {
            return self.follow(commands);
        }
        let mut last_at = Instant::now();
        let mut last_ingested = self.covered_ingested;
        loop {
            // a tenth of a second: the change threshold is noticed during a burst
            match commands.recv_timeout(Duration::from_millis(100)) {
                Ok(Command::Now(reply)) => {
                    let r = self.take(&mut last_at, &mut last_ingested);
                    let _ = reply.send(r);
                }
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    self.metrics.tick_age();
                    let changed = self.source.ingested().saturating_sub(last_ingested);
                    self.metrics
                        .pending_changes
                        .set(i64::try_from(changed).unwrap_or(i64::MAX));
                    let due = (changed > 0 || self.role == Role::Leader)
                        && (last_at.elapsed() >= self.config.interval
                            || changed >= self.config.every_changes);
                    if due {
                        if let Err(why) = self.take(&mut last_at, &mut last_ingested) {
                            tracing::error!(error = %why, "Checkpoint failed; the previous ones are kept.");
                        }
                    }
                }
            }
        }
    }

    /// A follower's loop ([`Role::Follower`]): writes this process's share whenever every
    /// local worker has handed over its image for one request (a request some worker missed,
    /// which only happens when the engine stopped mid-way, is dropped with the next).
    fn follow(mut self, commands: Receiver<Command>) {
        let mut pending: std::collections::BTreeMap<u64, Vec<WorkerImage>> = Default::default();
        loop {
            match commands.try_recv() {
                Ok(Command::Now(reply)) => {
                    // process 0 asks for the cluster's checkpoints; this one only follows
                    let _ = reply.send(Ok(None));
                }
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            match self.images.recv_timeout(Duration::from_millis(100)) {
                Ok(image) => {
                    let request = image.request;
                    let started = Instant::now();
                    let arrived = pending.entry(request).or_default();
                    arrived.push(image);
                    if arrived.len() < self.workers {
                        continue;
                    }
                    let images = pending.remove(&request).unwrap_or_default();
                    pending.retain(|r, _| *r > request);
                    if let Err(why) = self.take_share(&images, started) {
                        tracing::error!(error = %why, request, "Checkpoint of this process's share failed; the previous ones are kept.");
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.metrics.tick_age(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// A follower's checkpoint: the workers' images of one request, at the position this
    /// process's source had at the request's tick.
    fn take_share(
        &mut self,
        images: &[WorkerImage],
        started: Instant,
    ) -> Result<Option<Manifest>, String> {
        let Some(tick) = images.first().map(|i| i.tick) else {
            return Ok(None);
        };
        let Some(position) = self.source.covered_at(tick) else {
            self.metrics.failed.inc();
            return Err(format!(
                "the source no longer knows where it stood at tick {tick} (older than the recent ticks it keeps)"
            ));
        };
        let marker = Marker {
            tick,
            position,
            // above every record the state holds (ingestion order resumes from it)
            ingest_seq: self.source.ingested(),
        };
        let number = self.dir.next_number();
        self.keep(number, &marker, images, started)
    }

    /// Takes one checkpoint; see the module docs.
    fn take(
        &mut self,
        last_at: &mut Instant,
        last_ingested: &mut u64,
    ) -> Result<Option<Manifest>, String> {
        let started = Instant::now();
        let number = self.dir.next_number();
        let Some(marker) = self.source.mark(number) else {
            return Ok(None);
        };
        let images = self.collect(number)?;
        *last_at = Instant::now();
        *last_ingested = marker.ingest_seq;
        self.keep(number, &marker, &images, started)
    }

    /// Writes and publishes the images of one request as checkpoint `number` (unless a
    /// snapshot is half read), then keeps only the newest and retires covered history.
    fn keep(
        &mut self,
        number: u64,
        marker: &Marker,
        images: &[WorkerImage],
        started: Instant,
    ) -> Result<Option<Manifest>, String> {
        if images.iter().any(|i| i.open_snapshots > 0) {
            tracing::info!(
                tick = marker.tick,
                "Checkpoint skipped: a snapshot is being read."
            );
            self.metrics.skipped.inc();
            return Ok(None);
        }
        match self.write(number, marker, images, started) {
            Ok(manifest) => {
                let removed = self.dir.retain(self.config.keep);
                tracing::info!(number, tick = marker.tick, position = ?marker.position,
                    entries = manifest.total_entries(), bytes = manifest.state_bytes,
                    ms = manifest.duration_ms, removed = ?removed, "Checkpoint taken.");
                self.metrics.taken(&manifest);
                self.history.push(Taken {
                    at_ms: manifest.taken_at_ms,
                    position: manifest.position.clone(),
                });
                if self.history.len() > HISTORY {
                    self.history.remove(0);
                }
                self.retire();
                Ok(Some(manifest))
            }
            Err(e) => {
                self.metrics.failed.inc();
                // an unpublished state file is never loaded; retention removes it later
                let _ = std::fs::remove_file(self.dir.temp_state(number));
                Err(e.to_string())
            }
        }
    }

    /// Retires the history old checkpoints cover (see [`retirable`]).
    fn retire(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        if let Some(position) = retirable(
            &self.history,
            self.config.keep,
            self.config.log_retention,
            now,
        ) {
            match self
                .source
                .retire_through(position, self.config.log_archive.as_deref())
            {
                Ok((0, _)) => {}
                Ok((segments, bytes)) => {
                    tracing::info!(segments, bytes, through = ?position,
                        archive = ?self.config.log_archive, "Retired log segments a checkpoint covers.");
                    self.metrics.retired_segments.inc_by(segments);
                }
                Err(why) => tracing::error!(error = %why, "Retiring old log segments failed."),
            }
        }
        self.metrics.history(self.source.history_size());
    }

    /// Waits for the image of every worker for `request`, dropping leftovers of earlier ones.
    fn collect(&mut self, request: u64) -> Result<Vec<WorkerImage>, String> {
        let deadline = Instant::now() + IMAGE_TIMEOUT;
        let mut images: Vec<WorkerImage> = Vec::with_capacity(self.workers);
        while images.len() < self.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.images.recv_timeout(left) {
                Ok(img) if img.request == request => images.push(img),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    self.metrics.failed.inc();
                    return Err(format!(
                        "{} of {} workers sent their state within {}s",
                        images.len(),
                        self.workers,
                        IMAGE_TIMEOUT.as_secs()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the engine has stopped".into());
                }
            }
        }
        Ok(images)
    }

    fn write(
        &self,
        number: u64,
        marker: &Marker,
        images: &[WorkerImage],
        started: Instant,
    ) -> Result<Manifest, CheckpointFileError> {
        let metas = images
            .first()
            .map(|i| i.tables.iter().map(|t| (t.table, t.meta)).collect())
            .unwrap_or_default();
        let temp = self.dir.temp_state(number);
        let mut out = StateWriter::create(&temp, metas)?;
        let mut entries = std::collections::BTreeMap::new();
        for img in images {
            for t in &img.tables {
                out.entries(t.table, &t.entries)?;
                *entries.entry(t.table.name().to_string()).or_insert(0) += t.entries.len() as u64;
            }
        }
        let (state_bytes, state_crc32) = out.finish()?;
        let manifest = Manifest {
            format: file::FORMAT,
            number,
            tick: marker.tick,
            taken_at_ms: chrono::Utc::now().timestamp_millis(),
            position: marker.position.clone(),
            ingest_seq: marker.ingest_seq,
            workers: images.len(),
            entries,
            state_file: store::state_name(number),
            state_bytes,
            state_crc32,
            duration_ms: started.elapsed().as_millis() as u64,
            history: self.history.clone(),
            origin: self.source.origin(),
        };
        self.dir.publish(&manifest)?;
        Ok(manifest)
    }
}

/// What [`restore`] pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// Stored keys pushed.
    pub entries: u64,
    /// The last tick pushed (the state is rebuilt once the engine shows it).
    pub last_tick: Option<Tick>,
}

/// Changes per pushed tick while restoring.
const RESTORE_BATCH: usize = 20_000;

/// Where [`restore`] pushes: the engine input of the source being started (the embedded log's
/// and the capture's [`PushFeed`], or the Kafka feed before its consumer starts). Each push is
/// one tick; `None` once the input is closed.
pub trait RestoreFeed {
    /// Queues `changes` as the next tick.
    fn push(&self, changes: Vec<Change>) -> Option<Tick>;
    /// Queues `control` as the next tick.
    fn push_control(&self, control: Control) -> Option<Tick>;
}

impl RestoreFeed for PushFeed {
    fn push(&self, changes: Vec<Change>) -> Option<Tick> {
        PushFeed::push(self, changes)
    }

    fn push_control(&self, control: Control) -> Option<Tick> {
        PushFeed::push_control(self, control)
    }
}

/// Pushes a verified checkpoint's state into `feed`: each table's cut as a control tick, then
/// every stored key as a row event at its stored position. `on_entry` sees each entry first.
pub fn restore(
    state: &std::path::Path,
    feed: &dyn RestoreFeed,
    mut on_entry: impl FnMut(Table, &StoredEntry),
) -> Result<Restored, CheckpointFileError> {
    let closed = |path: &std::path::Path| CheckpointFileError::Invalid {
        path: path.display().to_string(),
        why: "the engine feed closed while restoring".into(),
    };
    let last_tick = std::cell::Cell::new(None);
    let mut batch = Vec::with_capacity(RESTORE_BATCH);
    let entries = file::read(
        state,
        |metas| {
            for (table, meta) in metas {
                for control in Control::restoring(table, &meta) {
                    last_tick.set(Some(
                        feed.push_control(control).ok_or_else(|| closed(state))?,
                    ));
                }
            }
            Ok(())
        },
        |table, entries| {
            for e in entries {
                on_entry(table, &e);
                batch.push(TableImage::change(table, e));
            }
            if batch.len() >= RESTORE_BATCH {
                last_tick.set(Some(
                    feed.push(std::mem::take(&mut batch))
                        .ok_or_else(|| closed(state))?,
                ));
            }
            Ok(())
        },
    )?;
    if !batch.is_empty() {
        last_tick.set(Some(feed.push(batch).ok_or_else(|| closed(state))?));
    }
    Ok(Restored {
        entries,
        last_tick: last_tick.get(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
