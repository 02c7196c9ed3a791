//! The system of record in embedded mode: commands are validated against the [`Ledger`],
//! encoded as Debezium MySQL events and appended to the fsync'd embedded log; once durable,
//! the writer thread decodes them with the same decoder every source uses and pushes them into
//! the engine as one tick per group commit.
//!
//! ```text
//! submit(cmd) ─ log lock: seq ─ ledger.execute ─ encode(seq) ─ queue ─┐
//!                                                                      ├─ write + fsync (group)
//!                          engine ← PushFeed.push (tick) ← decode ← hook┘ ─ ack ─ submit returns (seq, tick)
//! ```
//!
//! A record that does not decode (it should not happen: we encoded it) takes the one
//! decode-and-reject path (`lpm_connectors::decode`), on replay and in the durable hook alike:
//! counted and dead-lettered to the [`DeadLetters`] the caller gives (`lpm serve`:
//! `dead-letters.jsonl` in the data dir), with the log record's sequence number as its offset.
//!
//! Restart: [`EmbeddedSor::open`] replays the log into the ledger and the feed, so the engine
//! and the write model are rebuilt from the same bytes.
//!
//! The other system of record is MySQL ([`mysql`], `lpm serve --mysql`); routes reach either
//! through one [`Writer`].

pub mod auto_assign;
pub mod ledger;
pub mod mysql;
pub mod note;
pub mod public_id;
pub mod writer;

pub use writer::{WriteError, Writer, EMBEDDED_RETRY_AFTER_SECS};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lpm_connectors::dead_letter::{DeadLetters, KeyValue};
use lpm_connectors::debezium::encode::{encode, EventSource};
use lpm_connectors::debezium::Decoder;
use lpm_connectors::log::{EmbeddedLog, LogError, LogOptions, LogRecord, LogWriter, Recovery};
use lpm_connectors::{Catalog, DecodePath, DecodeStats};
use lpm_engine::model::{EpochMs, Key, Responsible, Row};
use lpm_engine::{Change, ChangeKind, PushFeed, Tick, TickMap};
use parking_lot::Mutex;

use crate::position::SourcePosition;
use ledger::{Command, Ledger};

/// The embedded log's directory under the data dir.
pub const LOG_DIR: &str = "log";
/// The binlog-style file name the embedded log's events carry (`source.file`).
pub const LOG_FILE: &str = "lpm-log.000001";
/// `source.name` / topic prefix of the embedded log's events.
pub const PREFIX: &str = "lpm";
/// The database name in topics.
pub const DATABASE: &str = "lost_persons_db";

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum SorError {
    /// The input breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The field to blame.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such row.
    #[error("{0} not found")]
    NotFound(String),
    /// The version sent is stale.
    #[error("version conflict: current is {current}")]
    Conflict {
        /// The current version.
        current: i64,
    },
    /// The log cannot take writes (I/O failure, shutting down).
    #[error("the log cannot take writes: {0}")]
    Unavailable(String),
}

impl SorError {
    /// An `Invalid` naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> SorError {
        SorError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<LogError> for SorError {
    fn from(e: LogError) -> SorError {
        SorError::Unavailable(e.to_string())
    }
}

/// A durable write.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The main row's id.
    pub id: Key,
    /// The case the write concerns (for case writes).
    pub case_id: Key,
    /// The main row's new version.
    pub version: Option<i64>,
    /// The log record.
    pub seq: u64,
    /// The engine tick that shows it (see `visibility`).
    pub tick: Tick,
    /// The main row as written (the case, the action or the responsible).
    pub row: Option<Row>,
    /// Whether the engine shows the write.
    pub visibility: Visibility,
}

/// What [`Committed::tick`] means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// The engine shows the write once its store reaches `tick` (embedded mode: the writer
    /// pushed it as that tick).
    AtTick,
    /// The engine showed the write at `tick` (MySQL mode, after waiting for it).
    Shown,
    /// The engine did not show it within the wait; `tick` is the next one (answer 202).
    NotYet,
}

/// The case a command concerns, when it names one (a new report's case is the plan's id).
pub(crate) fn case_of_command(cmd: &Command) -> Option<Key> {
    match cmd {
        Command::UpdateCase { case_id, .. }
        | Command::Assign { case_id, .. }
        | Command::AutoAssign { case_id }
        | Command::LogAction { case_id, .. }
        | Command::AddSighting { case_id, .. } => Some(*case_id),
        _ => None,
    }
}

/// Remembers which log record each tick ends at (bounded: old ticks fold into the newest
/// entry at or below them), and which tick holds each record (for writes waiting to be seen).
struct TickIndex {
    positions: TickMap<SourcePosition>,
    tick_of_seq: BTreeMap<u64, Tick>,
    /// Ticks not yet seen visible by the metrics.
    pending: PendingTicks,
    /// The last log record pushed, and the decoder's ingestion counter after it: where a
    /// checkpoint request pushed now stands.
    last_seq: u64,
    last_ingest: u64,
}

/// Ticks pushed to the engine and not yet seen visible by the metrics loop: their records'
/// commit times and push time (freshness, tick duration, staleness). Every source keeps one.
#[derive(Default)]
pub struct PendingTicks(BTreeMap<Tick, (Vec<EpochMs>, std::time::Instant)>);

impl PendingTicks {
    /// `tick` was pushed now, holding records committed at `committed`.
    pub fn insert(&mut self, tick: Tick, committed: Vec<EpochMs>) {
        self.0.insert(tick, (committed, std::time::Instant::now()));
    }

    /// Keeps the newest `keep` ticks.
    pub fn trim(&mut self, keep: usize) {
        while self.0.len() > keep {
            self.0.pop_first();
        }
    }

    /// Takes the ticks at or below `visible`, and says since when the oldest tick still
    /// invisible has waited.
    pub fn take_visible(
        &mut self,
        visible: Option<Tick>,
    ) -> (Vec<PushedTick>, Option<std::time::Instant>) {
        let mut out = Vec::new();
        if let Some(v) = visible {
            while let Some(entry) = self.0.first_entry() {
                if *entry.key() > v {
                    break;
                }
                let tick = *entry.key();
                let (committed, pushed) = entry.remove();
                out.push(PushedTick {
                    tick,
                    committed,
                    pushed,
                });
            }
        }
        (out, self.0.values().next().map(|(_, at)| *at))
    }
}

/// A tick pushed to the engine, for freshness metrics.
#[derive(Clone, Debug)]
pub struct PushedTick {
    /// The tick.
    pub tick: Tick,
    /// Commit time of each record in it.
    pub committed: Vec<EpochMs>,
    /// When it was pushed.
    pub pushed: std::time::Instant,
}

impl TickIndex {
    const KEEP: usize = 100_000;

    fn new() -> TickIndex {
        TickIndex {
            positions: TickMap::new(Self::KEEP),
            tick_of_seq: BTreeMap::new(),
            pending: PendingTicks::default(),
            last_seq: 0,
            last_ingest: 0,
        }
    }

    fn record(&mut self, tick: Tick, seqs: &[u64], ingest: u64) {
        if let Some(&last) = seqs.last() {
            self.positions
                .record(tick, SourcePosition::EmbeddedLog { log_seq: last });
            self.last_seq = self.last_seq.max(last);
        }
        self.last_ingest = self.last_ingest.max(ingest);
        for &s in seqs {
            self.tick_of_seq.insert(s, tick);
        }
        while self.tick_of_seq.len() > Self::KEEP {
            self.tick_of_seq.pop_first();
        }
        self.pending.trim(Self::KEEP);
    }
}

/// Decodes log records into engine changes (the same decoder and decode-and-reject path as
/// every other source).
struct Decoding {
    decoder: Decoder,
    decode: DecodePath,
    seq: u64,
}

impl Decoding {
    fn changes(&mut self, record: &LogRecord, out: &mut Vec<Change>, rows: &mut Vec<RowEffect>) {
        for ev in &record.events {
            self.seq += 1;
            let kv = KeyValue {
                topic: &ev.topic,
                partition: None,
                offset: i64::try_from(record.seq).ok(),
                key: Some(ev.key.as_bytes()),
                value: ev.value.as_deref().map(str::as_bytes),
            };
            let Some(change) = self.decode.record(&mut self.decoder, kv, self.seq) else {
                continue;
            };
            if let Change::Row(rc) = &change {
                rows.push(match &rc.kind {
                    ChangeKind::Upsert(row) => RowEffect::Upsert(row.clone()),
                    ChangeKind::Delete | ChangeKind::Tombstone => {
                        RowEffect::Delete(rc.table, rc.key)
                    }
                });
            }
            out.push(change);
        }
    }
}

enum RowEffect {
    Upsert(Row),
    Delete(lpm_engine::model::Table, Key),
}

/// The embedded system of record.
pub struct EmbeddedSor {
    ledger: Arc<Mutex<Ledger>>,
    writer: LogWriter,
    ticks: Arc<Mutex<TickIndex>>,
    feed: Arc<PushFeed>,
    clock: Box<dyn Fn() -> EpochMs + Send + Sync>,
    /// The last tick the replay at open pushed: the state is rebuilt once the engine shows it.
    replay_tick: Option<Tick>,
    /// `--auto-assign`, set once at start.
    auto: std::sync::OnceLock<Arc<auto_assign::AutoAssign>>,
}

/// Where [`EmbeddedSor::open`] starts: after a checkpoint the engine already holds (restored
/// into the feed), or from the beginning ([`Resume::default`]).
#[derive(Default)]
pub struct Resume {
    /// The last log record the checkpoint covers: replay starts after it.
    pub log_seq: u64,
    /// The decoder's ingestion counter at the checkpoint (positions continue above it).
    pub ingest_seq: u64,
    /// The write ledger rebuilt from the checkpoint's rows.
    pub ledger: Ledger,
    /// The last tick the restore pushed.
    pub restored_tick: Option<Tick>,
}

/// What opening found and rebuilt.
#[derive(Debug)]
pub struct Opened {
    /// The log's recovery report (torn tail cut, counts).
    pub recovery: Recovery,
    /// Records replayed (after the checkpoint, when resuming from one).
    pub records: u64,
    /// Change events those records decoded to.
    pub events: u64,
    /// The last tick the replay pushed (the engine is rebuilt when its store reaches it).
    pub replay_tick: Option<Tick>,
}

impl EmbeddedSor {
    /// Opens (or creates) the log under `dir`, replays it into the ledger and `feed` (only the
    /// records after `resume.log_seq`), and starts the writer. `progress(records)` is called
    /// every 10 000 records. A log that is corrupt before its end is refused unless
    /// `on_mid_log` allows cutting it (`--allow-log-cut`). Records that do not decode are
    /// counted in `stats` and written to `dead`.
    pub fn open(
        dir: &Path,
        options: LogOptions,
        feed: Arc<PushFeed>,
        (stats, dead): (Arc<DecodeStats>, Arc<dyn DeadLetters>),
        resume: Resume,
        mut progress: impl FnMut(u64),
    ) -> Result<(EmbeddedSor, Opened), SorError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SorError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        let options = LogOptions {
            verify_after: resume.log_seq,
            ..options
        };
        let (log, recovery) = EmbeddedLog::open_opts(dir, &options)?;
        // history the checkpoint does not cover must all be here: retired segments are gone
        if let Some(first) = log.segments().first_seq {
            if first > resume.log_seq + 1 {
                return Err(SorError::Unavailable(format!(
                    "the embedded log starts at record {first}, but the state to resume from \
                     covers only records up to {}: the records between were retired with a \
                     checkpoint that is now unusable. Restore that checkpoint (or the archived \
                     segments) from a backup; see docs/runbook.md",
                    resume.log_seq
                )));
            }
        }
        let mut decoding = Decoding {
            decoder: Decoder::new(Arc::new(Catalog::lpm())),
            decode: DecodePath::new("embedded-log", stats, dead),
            seq: resume.ingest_seq,
        };
        let mut ledger = resume.ledger;
        let ticks = Arc::new(Mutex::new(TickIndex::new()));
        let mut replay_tick = resume.restored_tick;
        if let Some(tick) = replay_tick {
            ticks
                .lock()
                .record(tick, &[resume.log_seq], resume.ingest_seq);
        }
        let (mut batch, mut effects, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
        let mut records = 0u64;
        for item in log.records_after(resume.log_seq)? {
            let (_at, record) = item?;
            decoding.changes(&record, &mut batch, &mut effects);
            // nobody waits on a replayed record: only the batch's last seq (its position) counts
            seqs.clear();
            seqs.push(record.seq);
            for e in effects.drain(..) {
                match e {
                    RowEffect::Upsert(row) => ledger.apply(&row),
                    RowEffect::Delete(t, k) => ledger.remove(t, k),
                }
            }
            records += 1;
            if batch.len() >= 20_000 {
                replay_tick =
                    push(&feed, &ticks, &mut batch, &mut seqs, decoding.seq).or(replay_tick);
            }
            if records.is_multiple_of(10_000) {
                progress(records);
            }
        }
        if !batch.is_empty() {
            replay_tick = push(&feed, &ticks, &mut batch, &mut seqs, decoding.seq).or(replay_tick);
        }
        let events = decoding.seq - resume.ingest_seq;
        let hook_feed = feed.clone();
        let hook_ticks = ticks.clone();
        let hook = move |durable: Vec<(u64, Arc<LogRecord>)>| {
            let (mut changes, mut effects) = (Vec::new(), Vec::new());
            let mut seqs = Vec::with_capacity(durable.len());
            let mut committed = Vec::with_capacity(durable.len());
            for (seq, record) in &durable {
                decoding.changes(record, &mut changes, &mut effects);
                seqs.push(*seq);
                if let Some(ev) = record.events.first() {
                    committed.push(ev.ts_ms);
                }
            }
            if let Some(tick) = push(
                &hook_feed,
                &hook_ticks,
                &mut changes,
                &mut seqs,
                decoding.seq,
            ) {
                hook_ticks.lock().pending.insert(tick, committed);
            }
        };
        let writer = log.into_writer(Some(Box::new(hook)))?;
        Ok((
            EmbeddedSor {
                ledger: Arc::new(Mutex::new(ledger)),
                writer,
                ticks,
                feed,
                clock: Box::new(|| chrono::Utc::now().timestamp_millis()),
                replay_tick,
                auto: std::sync::OnceLock::new(),
            },
            Opened {
                recovery,
                records,
                events,
                replay_tick,
            },
        ))
    }

    /// Validates, logs durably and hands `cmd` to the engine; blocks for the fsync. `actor` is
    /// the signed-in user, recorded with the write.
    pub fn submit(&self, cmd: Command, actor: &str) -> Result<Committed, SorError> {
        self.submit_at(cmd, actor, (self.clock)())
    }

    /// As [`submit`](Self::submit) at a given time (the demo loader backdates its history).
    pub fn submit_at(
        &self,
        cmd: Command,
        actor: &str,
        now: EpochMs,
    ) -> Result<Committed, SorError> {
        let case_of_cmd = case_of_command(&cmd);
        let main_table = cmd.main_table();
        let auto = self.auto.get();
        // who is present is read before the lock; their loads are read under it
        let eligible = auto.filter(|_| cmd.wants_auto()).map(|a| a.eligible());
        let mut outcome = None;
        let appended = self.writer.try_append_as(Some(actor), |seq| {
            let plan = self
                .ledger
                .lock()
                .execute_with(cmd, now, eligible.as_ref())?;
            let source = EventSource::new(PREFIX, DATABASE, LOG_FILE, seq, now);
            let mut events = Vec::with_capacity(plan.rows.len());
            for (i, (before, after)) in plan.rows.iter().enumerate() {
                let src = source.at_row(i as u32);
                let ev = encode(before.as_ref(), Some(after), &src)
                    .map_err(|e| SorError::Unavailable(format!("encoding: {e}")))?;
                events.push(ev);
            }
            outcome = Some(plan);
            Ok::<_, SorError>(events)
        })?;
        let plan = outcome.ok_or_else(|| SorError::Unavailable("no plan".into()))?;
        if let Some(a) = auto {
            a.committed(&plan);
        }
        let (id, version, row) = (
            plan.id,
            plan.version,
            plan.row(main_table, plan.id).cloned(),
        );
        let tick = self
            .ticks
            .lock()
            .tick_of_seq
            .get(&appended.seq)
            .copied()
            .ok_or_else(|| SorError::Unavailable("the engine feed is closed".into()))?;
        tracing::debug!(actor, seq = appended.seq, tick, "Write committed.");
        Ok(Committed {
            id,
            case_id: case_of_cmd.unwrap_or(id),
            version,
            seq: appended.seq,
            tick,
            row,
            visibility: Visibility::AtTick,
        })
    }

    /// Runs many commands as one log record (one transaction, one fsync): the demo loader's
    /// bulk path. Commands that fail validation are skipped and counted; returns
    /// `(applied, skipped)`.
    pub fn submit_many(&self, cmds: Vec<(Command, EpochMs)>) -> Result<(usize, usize), SorError> {
        let (mut applied, mut skipped) = (0, 0);
        self.writer.try_append_as(Some("demo"), |seq| {
            let mut ledger = self.ledger.lock();
            let mut events = Vec::new();
            let mut row = 0u32;
            for (cmd, at) in cmds {
                let plan = match ledger.execute(cmd, at) {
                    Ok(p) => p,
                    Err(_) => {
                        skipped += 1;
                        continue;
                    }
                };
                applied += 1;
                let source = EventSource::new(PREFIX, DATABASE, LOG_FILE, seq, at);
                for (before, after) in &plan.rows {
                    let ev = encode(before.as_ref(), Some(after), &source.at_row(row))
                        .map_err(|e| SorError::Unavailable(format!("encoding: {e}")))?;
                    events.push(ev);
                    row += 1;
                }
            }
            Ok::<_, SorError>(events)
        })?;
        Ok((applied, skipped))
    }

    /// [`submit`](Self::submit) on the blocking pool.
    pub async fn submit_async(
        self: &Arc<Self>,
        cmd: Command,
        actor: String,
    ) -> Result<Committed, SorError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.submit(cmd, &actor))
            .await
            .map_err(|e| SorError::Unavailable(format!("the write task failed: {e}")))?
    }

    /// The source position a tick covers.
    pub fn position_at(&self, tick: Tick) -> SourcePosition {
        self.ticks
            .lock()
            .positions
            .at(tick)
            .cloned()
            .unwrap_or(SourcePosition::EmbeddedLog { log_seq: 0 })
    }

    /// The last tick the replay at open pushed (`None`: the log was empty).
    pub fn replay_tick(&self) -> Option<Tick> {
        self.replay_tick
    }

    /// Takes the ticks at or below `visible` (for freshness), and says since when the oldest
    /// tick still invisible has waited (for staleness).
    pub fn take_visible(
        &self,
        visible: Option<Tick>,
    ) -> (Vec<PushedTick>, Option<std::time::Instant>) {
        self.ticks.lock().pending.take_visible(visible)
    }

    /// Every responsible contact, by id (current rows of the system of record).
    pub fn responsibles(&self) -> Vec<Arc<Responsible>> {
        let ledger = self.ledger.lock();
        let mut v: Vec<_> = ledger.responsibles().cloned().collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// One responsible contact.
    pub fn responsible(&self, id: Key) -> Option<Arc<Responsible>> {
        self.ledger.lock().responsible(id).cloned()
    }

    /// Turns auto-assignment on (`--auto-assign`; once, at start).
    pub fn set_auto_assign(&self, auto: Arc<auto_assign::AutoAssign>) {
        let _ = self.auto.set(auto);
    }

    /// The oldest open case without a responsible.
    pub fn oldest_unassigned(&self) -> Option<Key> {
        self.ledger.lock().oldest_unassigned()
    }

    /// Runs `f` over the ledger (the demo trickle picks cases from it).
    pub fn with_ledger<R>(&self, f: impl FnOnce(&Ledger) -> R) -> R {
        f(&self.ledger.lock())
    }

    /// Stops the engine input once the writer is done (shutdown).
    pub fn close(&self) {
        self.feed.close();
    }
}

/// Pushes `batch` (the changes of log records `seqs`, the decoder's counter at `ingest` after
/// them) as the next tick. Under the tick index's lock, so that a checkpoint request
/// ([`EmbeddedSor::mark`]) sees every push before it recorded and none after.
impl crate::checkpoint::Checkpointable for EmbeddedSor {
    fn mark(&self, request: u64) -> Option<crate::checkpoint::Marker> {
        let index = self.ticks.lock();
        let tick = self
            .feed
            .push_control(lpm_engine::dataflow::Control::Checkpoint { request })?;
        Some(crate::checkpoint::Marker {
            tick,
            position: SourcePosition::EmbeddedLog {
                log_seq: index.last_seq,
            },
            ingest_seq: index.last_ingest,
        })
    }

    fn ingested(&self) -> u64 {
        self.ticks.lock().last_ingest
    }

    fn retire_through(
        &self,
        position: &SourcePosition,
        archive: Option<&Path>,
    ) -> Result<(u64, u64), String> {
        let SourcePosition::EmbeddedLog { log_seq } = position else {
            return Ok((0, 0));
        };
        let retired = self
            .writer
            .retire_through(*log_seq, archive)
            .map_err(|e| e.to_string())?;
        Ok((retired.segments, retired.bytes))
    }

    fn history_size(&self) -> Option<(u64, u64)> {
        let s = self.writer.segments().ok()?;
        Some((s.segments, s.bytes))
    }
}

fn push(
    feed: &PushFeed,
    ticks: &Mutex<TickIndex>,
    batch: &mut Vec<Change>,
    seqs: &mut Vec<u64>,
    ingest: u64,
) -> Option<Tick> {
    let mut index = ticks.lock();
    let tick = feed.push(std::mem::take(batch))?;
    index.record(tick, seqs, ingest);
    seqs.clear();
    Some(tick)
}

#[cfg(test)]
mod tests {
    use super::ledger::{NewReport, ResponsibleFields};
    use super::*;
    use lpm_connectors::dead_letter::Discard;
    use lpm_engine::model::{Priority, Status};
    use lpm_engine::{Feed, FeedItem};

    /// A feed with a thread that drains it (no engine needed).
    fn drained_feed() -> Arc<PushFeed> {
        let feed = Arc::new(PushFeed::new(4));
        let f = feed.clone();
        std::thread::spawn(move || loop {
            match f.next(0) {
                FeedItem::End => return,
                FeedItem::Idle { .. } => std::thread::sleep(std::time::Duration::from_millis(1)),
                FeedItem::Batch { .. } | FeedItem::Control { .. } => {}
            }
        });
        feed
    }

    /// Opens the embedded system of record over `log_dir`, fed to a drained feed.
    fn open(
        log_dir: &Path,
        stats: &Arc<DecodeStats>,
        dead: Arc<dyn DeadLetters>,
    ) -> (EmbeddedSor, Opened) {
        EmbeddedSor::open(
            log_dir,
            LogOptions::default(),
            drained_feed(),
            (stats.clone(), dead),
            Resume::default(),
            |_| {},
        )
        .expect("open")
    }

    fn report() -> Command {
        Command::CreateReport(Box::new(NewReport {
            full_name: "Lucía Ibáñez".into(),
            age: Some(9),
            gender: "female".into(),
            last_seen_at: 0,
            last_seen_place: "Cuenca".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            priority: Priority::Critical,
            responsible_id: Some(1),
            first_action: None,
            reported_at: None,
        }))
    }

    #[test]
    fn writes_survive_a_restart_with_their_actor_and_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join("log");
        let stats = Arc::new(DecodeStats::default());
        {
            let (sor, opened) = open(&log_dir, &stats, Arc::new(Discard));
            assert_eq!(opened.records, 0);
            let r = sor
                .submit(
                    Command::CreateResponsible(ResponsibleFields {
                        full_name: Some("Ana".into()),
                        agency: Some("ECU 911".into()),
                        ..Default::default()
                    }),
                    "alice",
                )
                .expect("responsible");
            let c = sor.submit(report(), "bob").expect("report");
            assert!(c.tick > r.tick, "each durable batch is a later tick");
            let u = sor
                .submit(
                    Command::UpdateCase {
                        case_id: c.id,
                        version: 1,
                        status: Some(Status::InProgress),
                        priority: None,
                        public: None,
                    },
                    "bob",
                )
                .expect("update");
            assert_eq!(u.version, Some(2));
            assert!(sor.position_at(u.tick).log_seq() >= u.seq);
        }
        let (sor, opened) = open(&log_dir, &stats, Arc::new(Discard));
        assert_eq!(opened.records, 3);
        let case = sor
            .with_ledger(|l| l.case(1).cloned())
            .expect("case rebuilt");
        assert_eq!((case.version, case.status.clone()), (2, Status::InProgress));
        // a stale version is refused after the restart too
        let stale = sor.submit(
            Command::UpdateCase {
                case_id: 1,
                version: 1,
                status: Some(Status::Open),
                priority: None,
                public: None,
            },
            "bob",
        );
        assert!(matches!(stale, Err(SorError::Conflict { current: 2 })));
        let (log, _) = EmbeddedLog::open(&log_dir).expect("log");
        let actors: Vec<Option<String>> = log
            .records()
            .expect("records")
            .filter_map(Result::ok)
            .map(|(_, r)| r.actor)
            .collect();
        assert_eq!(
            actors,
            [Some("alice".into()), Some("bob".into()), Some("bob".into())]
        );
    }

    #[test]
    fn an_undecodable_record_is_dead_lettered_on_replay_and_when_durable() {
        use lpm_connectors::dead_letter::file::FileDeadLetters;
        use lpm_connectors::debezium::encode::EncodedEvent;

        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join("log");
        let bad = |id: u32| EncodedEvent {
            topic: format!("{PREFIX}.{DATABASE}.persons_lost"),
            key: format!(r#"{{"id":{id}}}"#),
            value: Some(r#"{"op":"c","after":{"id":"#.into()),
            ts_ms: 0,
        };
        {
            let (log, _) = EmbeddedLog::open(&log_dir).expect("log");
            let writer = log.into_writer(None).expect("writer");
            writer.append(vec![bad(1)]).expect("append");
        }
        let path = dir.path().join("dead-letters.jsonl");
        let dead = Arc::new(FileDeadLetters::open(&path).expect("dead letters"));
        let stats = Arc::new(DecodeStats::default());
        let (sor, opened) = open(&log_dir, &stats, dead.clone());
        assert_eq!(opened.records, 1);
        assert_eq!(stats.error_counts(), vec![("invalid_json", 1)], "replay");
        // the durable hook takes the same path
        let appended = sor.writer.append(vec![bad(2)]).expect("append");
        assert_eq!(
            stats.error_counts(),
            vec![("invalid_json", 2)],
            "durable hook"
        );

        assert!(dead.flush(std::time::Duration::ZERO));
        let letters = lpm_connectors::dead_letter::file::read(&path).expect("dead letters");
        assert_eq!(letters.len(), 2, "{letters:?}");
        for (letter, offset) in letters.iter().zip([1, appended.seq]) {
            assert_eq!(letter["reason"], "invalid_json");
            assert_eq!(letter["source"], "embedded-log");
            assert_eq!(letter["offset"], offset, "the log record's seq");
        }
        let record: serde_json::Value =
            serde_json::from_str(letters[1]["record"].as_str().unwrap_or("")).expect("record");
        assert_eq!(record["key"], r#"{"id":2}"#);
        assert_eq!(record["payload"], r#"{"op":"c","after":{"id":"#);
    }
}
