//! Runs the dataflow on `workers` threads: each worker pulls batches from the shared [`Feed`]
//! (decoding them on its own thread, so decoding scales with workers), feeds them in at their
//! tick, keeps at most a few ticks in flight, and answers case reads.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono_tz::Tz;
use parking_lot::Mutex;
use timely::progress::frontier::Antichain;

use crate::arrangements::{self, ArrangementSize, Tally};
use crate::change::{Change, Coords, RowChange, SnapshotMark};
use crate::dataflow::{self, Built, CaseRecord, CaseTraces, Control, DataflowConfig};
use crate::error::EngineError;
use crate::model::{Row, Table};
use crate::read::{self, CaseDetail};
use crate::store::ViewStore;
use crate::tick::Tick;
use crate::upsert::{UpsertCounters, UpsertState};

/// Engine options.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Worker threads. Results are identical for any count.
    pub workers: usize,
    /// Zone for the hour views.
    pub tz: Tz,
    /// Maintain the case read model (case + person + responsible, actions, history).
    pub case_model: bool,
    /// Keep every worker's final rows (for `--rows`).
    pub collect_rows: bool,
    /// How many ticks may be in flight before a worker stops taking input.
    pub max_ticks_in_flight: u64,
    /// Read differential's arrangement log for [`EngineStats::arrangements`] (see
    /// [`crate::arrangements`]); off only to measure what it costs.
    pub arrangement_log: bool,
    /// Where workers hand checkpoint images ([`crate::checkpoint`]); `None`: checkpoint
    /// requests are ignored.
    pub images: Option<crate::checkpoint::ImageSink>,
    /// Maintain the `hotspots` view at each of these H3 resolutions (a cell's index names its
    /// resolution, so their rows never mix); empty: off (no cost, no output).
    pub hotspots: Vec<h3o::Resolution>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            tz: chrono_tz::America::Guayaquil,
            case_model: true,
            collect_rows: false,
            max_ticks_in_flight: 2,
            arrangement_log: true,
            images: None,
            hotspots: Vec::new(),
        }
    }
}

/// What a feed hands a worker.
pub enum FeedItem {
    /// Changes to apply at `tick` (never below a tick this worker saw before).
    Batch {
        /// Logical time of the changes.
        tick: Tick,
        /// The changes.
        changes: Vec<Change>,
    },
    /// A table-wide control at `tick` (a restored truncate cut or snapshot close, a
    /// checkpoint request); broadcast to every worker by the dataflow.
    Control {
        /// Logical time of the control.
        tick: Tick,
        /// The control.
        control: Control,
    },
    /// Nothing now; everything this worker will get later is at `tick` or later.
    Idle {
        /// The lower bound of future ticks.
        tick: Tick,
    },
    /// The input is exhausted.
    End,
}

/// A source of changes shared by all workers. Implementations decode on the calling worker.
pub trait Feed: Send + Sync + 'static {
    /// The next item for worker `worker`.
    fn next(&self, worker: usize) -> FeedItem;
}

/// The result of a finished run.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Upsert counters, summed over workers.
    pub upsert: UpsertCounters,
    /// Every visible row (only with `collect_rows`).
    pub rows: Vec<Row>,
    /// Entries in the upsert state (all keys ever seen).
    pub state_entries: usize,
}

/// A predicate over case records, run on every worker over the cases it holds.
pub type CasePredicate = Arc<dyn Fn(&CaseRecord) -> bool + Send + Sync>;

enum Query {
    Case {
        id: i64,
        tick: Tick,
        reply: Sender<Option<CaseDetail>>,
    },
    Cases {
        filter: CasePredicate,
        tick: Tick,
        reply: Sender<Vec<CaseRecord>>,
    },
    Listed {
        filter: CasePredicate,
        tick: Tick,
        reply: Sender<Vec<read::Listed>>,
    },
    Details {
        filter: CasePredicate,
        tick: Tick,
        reply: Sender<Vec<CaseDetail>>,
    },
}

impl Query {
    fn tick(&self) -> Tick {
        match self {
            Query::Case { tick, .. }
            | Query::Cases { tick, .. }
            | Query::Listed { tick, .. }
            | Query::Details { tick, .. } => *tick,
        }
    }
}

/// Ticks that reads in progress still need: the case traces never compact past the oldest.
///
/// A read takes its hold at the store's current tick under this lock, and workers compute their
/// compaction frontier under the same lock, so a frontier can never overtake a hold.
#[derive(Default)]
struct ReadHolds {
    ticks: Mutex<BTreeMap<Tick, usize>>,
}

impl ReadHolds {
    fn take(self: &Arc<Self>, store: &ViewStore) -> Option<ReadHold> {
        let mut ticks = self.ticks.lock();
        let tick = store.tick()?;
        *ticks.entry(tick).or_default() += 1;
        Some(ReadHold {
            holds: self.clone(),
            tick,
        })
    }

    /// The frontier the traces may compact to.
    fn frontier(&self, store: &ViewStore) -> Option<Tick> {
        let ticks = self.ticks.lock();
        let current = store.tick()?;
        Some(ticks.keys().next().map_or(current, |&t| t.min(current)))
    }
}

struct ReadHold {
    holds: Arc<ReadHolds>,
    tick: Tick,
}

impl Drop for ReadHold {
    fn drop(&mut self) {
        let mut ticks = self.holds.ticks.lock();
        if let Some(n) = ticks.get_mut(&self.tick) {
            *n -= 1;
            if *n == 0 {
                ticks.remove(&self.tick);
            }
        }
    }
}

/// Live state sizes and upsert outcomes, summed over workers (each worker publishes its own
/// after every batch; reading never touches the workers).
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    /// Upsert outcomes.
    pub upsert: UpsertCounters,
    /// Upsert state entries per table (indexed by `Table::index`).
    pub entries: [usize; crate::model::Table::COUNT],
    /// Arrangement sizes by operator name (summed over workers by [`EngineHandle::stats`]).
    pub arrangements: Vec<ArrangementSize>,
}

/// A cloneable handle for reads while the engine runs.
#[derive(Clone)]
pub struct EngineHandle {
    store: Arc<ViewStore>,
    queries: Vec<Sender<Query>>,
    holds: Arc<ReadHolds>,
    stats: Arc<Mutex<Vec<EngineStats>>>,
    frontier: Arc<AtomicU64>,
}

impl EngineHandle {
    /// The last tick complete on every worker of every process (timely's progress tracking is
    /// global, so a worker's probe sees the whole cluster), `None` before the first.
    ///
    /// Why beside [`ViewStore::tick`]: the store only fills on the process that holds worker 0;
    /// the other processes of a cluster learn here what the cluster has applied (a Kafka
    /// source commits its offsets behind it).
    pub fn completed(&self) -> Option<Tick> {
        self.frontier.load(Ordering::Acquire).checked_sub(1)
    }

    /// [`completed`](Self::completed) as a function that holds no handle: the workers answer
    /// reads until every handle is dropped, so a source that keeps this for its whole life
    /// must not keep a handle (the engine could never stop).
    pub fn completed_fn(&self) -> impl Fn() -> Option<Tick> + Send + Sync + 'static {
        let frontier = self.frontier.clone();
        move || frontier.load(Ordering::Acquire).checked_sub(1)
    }

    /// The view store (views at the last complete tick, subscriptions).
    pub fn store(&self) -> &Arc<ViewStore> {
        &self.store
    }

    /// How many workers the engine runs.
    pub fn workers(&self) -> usize {
        self.queries.len()
    }

    /// Upsert counters and state sizes, summed over workers.
    pub fn stats(&self) -> EngineStats {
        let per_worker = self.stats.lock();
        let mut total = EngineStats::default();
        for w in per_worker.iter() {
            total.upsert.add(&w.upsert);
            for (t, n) in total.entries.iter_mut().zip(w.entries) {
                *t += n;
            }
        }
        total.arrangements = arrangements::merge(per_worker.iter().map(|w| w.arrangements.clone()));
        total
    }

    /// One case with its person, responsible, actions and history, at the last complete tick.
    pub fn case(&self, id: i64, timeout: Duration) -> Result<Option<CaseDetail>, EngineError> {
        let replies = self.ask(timeout, |tick, reply| Query::Case { id, tick, reply })?;
        Ok(replies.1.into_iter().flatten().next())
    }

    /// Every case record matching `filter`, all at one tick (returned with it), unordered.
    pub fn cases(
        &self,
        filter: CasePredicate,
        timeout: Duration,
    ) -> Result<(Tick, Vec<CaseRecord>), EngineError> {
        let (tick, parts) = self.ask(timeout, |tick, reply| Query::Cases {
            filter: filter.clone(),
            tick,
            reply,
        })?;
        Ok((tick, parts.into_iter().flatten().collect()))
    }

    /// Every case record matching `filter` with its sighting count (the case list), all at one
    /// tick (returned with it), unordered.
    pub fn listed(
        &self,
        filter: CasePredicate,
        timeout: Duration,
    ) -> Result<(Tick, Vec<read::Listed>), EngineError> {
        let (tick, parts) = self.ask(timeout, |tick, reply| Query::Listed {
            filter: filter.clone(),
            tick,
            reply,
        })?;
        Ok((tick, parts.into_iter().flatten().collect()))
    }

    /// Every case matching `filter` with its actions and history, all at one tick (returned
    /// with it), unordered.
    pub fn case_details(
        &self,
        filter: CasePredicate,
        timeout: Duration,
    ) -> Result<(Tick, Vec<CaseDetail>), EngineError> {
        let (tick, parts) = self.ask(timeout, |tick, reply| Query::Details {
            filter: filter.clone(),
            tick,
            reply,
        })?;
        Ok((tick, parts.into_iter().flatten().collect()))
    }

    /// Sends one query per worker at the store's current tick (held until all replied).
    fn ask<T>(
        &self,
        timeout: Duration,
        make: impl Fn(Tick, Sender<T>) -> Query,
    ) -> Result<(Tick, Vec<T>), EngineError> {
        let hold = self.holds.take(&self.store).ok_or(EngineError::NotReady)?;
        let (tx, rx) = mpsc::channel();
        for q in &self.queries {
            q.send(make(hold.tick, tx.clone()))
                .map_err(|_| EngineError::Stopped)?;
        }
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut out = Vec::with_capacity(self.queries.len());
        for _ in 0..self.queries.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(part) => out.push(part),
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(EngineError::Timeout),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(EngineError::Stopped),
            }
        }
        Ok((hold.tick, out))
    }
}

/// A running engine.
pub struct Engine {
    handle: EngineHandle,
    thread: JoinHandle<Result<RunSummary, EngineError>>,
}

impl Engine {
    /// Starts `config.workers` workers over `feed`.
    pub fn start(config: EngineConfig, feed: Arc<dyn Feed>) -> Result<Engine, EngineError> {
        Engine::start_in(config, feed, None)
    }

    /// [`start`](Self::start), as one process of a timely cluster when `cluster` is given:
    /// `config.workers` threads here, the same on every process, worker indices global (this
    /// process's workers are `process * workers ..`). Only process 0 holds worker 0, so only its
    /// store fills; the others finish when the whole cluster has. Returns once the cluster has
    /// formed (every peer connected and agreed), or with why not.
    pub fn start_in(
        config: EngineConfig,
        feed: Arc<dyn Feed>,
        cluster: Option<crate::cluster::ClusterConfig>,
    ) -> Result<Engine, EngineError> {
        let workers = config.workers.max(1);
        let store = ViewStore::with_hotspots(!config.hotspots.is_empty());
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| mpsc::channel::<Query>()).unzip();
        let receivers: Arc<Vec<Mutex<Option<Receiver<Query>>>>> =
            Arc::new(receivers.into_iter().map(|r| Mutex::new(Some(r))).collect());
        let results: Arc<Mutex<RunSummary>> = Arc::default();
        let holds = Arc::new(ReadHolds::default());
        let stats = Arc::new(Mutex::new(vec![EngineStats::default(); workers]));
        let frontier = Arc::new(AtomicU64::new(0));
        let handle = EngineHandle {
            store: store.clone(),
            queries: senders,
            holds: holds.clone(),
            stats: stats.clone(),
            frontier: frontier.clone(),
        };

        let first = cluster.as_ref().map_or(0, |c| c.process * workers);
        let (store2, results2) = (store.clone(), results.clone());
        let work = move |worker: &mut timely::worker::Worker| {
            let local = worker.index() - first;
            let queries = receivers[local].lock().take();
            run_worker(
                worker,
                local,
                &config,
                feed.clone(),
                store2.clone(),
                (queries, holds.clone(), stats.clone()),
                (&results2, &frontier),
            );
        };
        let guards = match cluster {
            None => timely::execute(timely::Config::process(workers), work),
            Some(cluster) => {
                let (builders, comms) = crate::cluster::connect(&cluster, workers)?;
                timely::execute::execute_from(
                    builders,
                    comms,
                    timely::WorkerConfig::default(),
                    work,
                )
            }
        }
        .map_err(EngineError::Timely)?;
        let thread = std::thread::Builder::new()
            .name("lpm-engine".into())
            .spawn(move || {
                for r in guards.join() {
                    r.map_err(EngineError::WorkerFailed)?;
                }
                let mut summary = results.lock();
                Ok(std::mem::take(&mut *summary))
            })
            .map_err(|e| EngineError::Timely(e.to_string()))?;
        Ok(Engine { handle, thread })
    }

    /// A handle for reads.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Whether the workers have stopped ([`join`](Self::join) would not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the feed to end and every tick to be applied.
    ///
    /// Workers keep answering reads until every [`EngineHandle`] is dropped, so drop clones first.
    pub fn join(self) -> Result<RunSummary, EngineError> {
        let Engine { handle, thread } = self;
        drop(handle);
        thread
            .join()
            .map_err(|_| EngineError::WorkerFailed("engine thread panicked".into()))?
    }
}

/// `local`: the worker's index in this process (its query channel and stats slot); the feed
/// gets the global `worker.index()`.
fn run_worker(
    worker: &mut timely::worker::Worker,
    local: usize,
    config: &EngineConfig,
    feed: Arc<dyn Feed>,
    store: Arc<ViewStore>,
    (queries, holds, stats): WorkerShared,
    (results, frontier): (&Mutex<RunSummary>, &AtomicU64),
) {
    let reads = Reads {
        queries,
        holds,
        store: store.clone(),
    };
    let state = Rc::new(RefCell::new(UpsertState::new()));
    let tally = if config.arrangement_log {
        arrangements::register(worker)
    } else {
        Rc::default()
    };
    let df_config = DataflowConfig {
        tz: config.tz,
        case_model: config.case_model,
        images: config.images.clone(),
        hotspots: config.hotspots.clone(),
        case_holders: config.workers.max(1),
    };
    let Built {
        mut changes,
        mut controls,
        probe,
        mut cases,
    } = dataflow::build(worker, &df_config, state.clone(), store.clone());
    let index = worker.index();
    let mut pending: Vec<Query> = Vec::new();
    let mut input_open = true;
    let mut router = Router::default();
    while input_open {
        match feed.next(index) {
            FeedItem::Batch {
                tick,
                changes: batch,
            } => {
                advance(&mut changes, &mut controls, tick);
                let tick = *changes.time();
                for change in batch {
                    router.route(change, tick, &mut changes, &mut controls);
                }
                changes.flush();
                controls.flush();
                worker.step();
                let floor = tick.saturating_sub(config.max_ticks_in_flight);
                while probe.less_than(&floor) {
                    worker.step();
                }
            }
            FeedItem::Control { tick, control } => {
                advance(&mut changes, &mut controls, tick);
                let tick = *changes.time();
                controls.send((control, tick));
                controls.flush();
                worker.step();
            }
            FeedItem::Idle { tick } => {
                advance(&mut changes, &mut controls, tick);
                // 1 ms: an idle worker must notice a new live tick quickly (write latency)
                worker.step_or_park(Some(Duration::from_millis(1)));
            }
            FeedItem::End => input_open = false,
        }
        publish_stats(&stats, local, &state.borrow(), &tally);
        if local == 0 {
            publish_frontier(frontier, &probe);
        }
        reads.serve(&mut pending, &probe, cases.as_mut(), true);
    }
    drop(changes);
    drop(controls);
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(1)));
        if local == 0 {
            publish_frontier(frontier, &probe);
        }
        reads.serve(&mut pending, &probe, cases.as_mut(), true);
    }
    if local == 0 {
        publish_frontier(frontier, &probe);
    }
    let st = state.borrow();
    {
        let mut r = results.lock();
        r.upsert.add(&st.counters);
        r.state_entries += st.entries();
        if config.collect_rows {
            r.rows.extend(st.rows().cloned());
        }
    }
    drop(st);
    // keep answering reads until every handle is gone
    if let Some(rx) = &reads.queries {
        while let Ok(q) = rx.recv() {
            pending.push(q);
            reads.serve(&mut pending, &probe, cases.as_mut(), false);
        }
    }
}

/// What a worker shares with the handles: its query channel, the read holds, the stats slots.
type WorkerShared = (
    Option<Receiver<Query>>,
    Arc<ReadHolds>,
    Arc<Mutex<Vec<EngineStats>>>,
);

/// Publishes the probe's frontier for [`EngineHandle::completed`] (`u64::MAX` once done).
fn publish_frontier(frontier: &AtomicU64, probe: &timely::dataflow::ProbeHandle<Tick>) {
    let first = probe.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX));
    frontier.store(first, Ordering::Release);
}

fn publish_stats(
    stats: &Mutex<Vec<EngineStats>>,
    index: usize,
    st: &UpsertState,
    tally: &RefCell<Tally>,
) {
    let sizes = tally.borrow_mut().take_changed();
    if let Some(mine) = stats.lock().get_mut(index) {
        mine.upsert = st.counters;
        mine.entries = st.entries_by_table();
        if let Some(sizes) = sizes {
            mine.arrangements = sizes;
        }
    }
}

type Changes = timely::dataflow::InputHandleVec<Tick, (RowChange, Tick)>;
type Controls = timely::dataflow::InputHandleVec<Tick, (Control, Tick)>;

fn advance(changes: &mut Changes, controls: &mut Controls, tick: Tick) {
    if tick > *changes.time() {
        changes.advance_to(tick);
        controls.advance_to(tick);
    }
}

/// Sends a worker's feed into the dataflow's two inputs: row events to the keyed input, and
/// table-wide events to the broadcast one. It also announces the snapshot epochs this worker
/// sees open, once per table and coordinate, so that a snapshot's `last` record closes the same
/// tables on every worker (see `dataflow::upsert`).
#[derive(Default)]
struct Router {
    /// `(table, coordinate)` of the snapshot reads already announced, until their snapshot ends.
    opened: BTreeSet<(Table, Coords)>,
}

impl Router {
    fn route(
        &mut self,
        change: Change,
        tick: Tick,
        changes: &mut Changes,
        controls: &mut Controls,
    ) {
        match change {
            Change::Row(row) => {
                let (table, seq) = (row.table, row.position.seq);
                if let Some(coords) = row.position.coords.filter(|_| row.snapshot.marks()) {
                    if self.opened.insert((table, coords)) {
                        let open = Control::SnapshotOpened { table, coords, seq };
                        controls.send((open, tick));
                    }
                    if row.snapshot.closes_table() {
                        let close = Control::SnapshotClosed { table, coords, seq };
                        controls.send((close, tick));
                    }
                    if row.snapshot == SnapshotMark::Last {
                        self.opened.retain(|(_, c)| *c > coords);
                        controls.send((Control::SnapshotEnded { coords, seq }, tick));
                    }
                }
                changes.send((row, tick));
            }
            Change::Truncate { table, position } => {
                controls.send((Control::Truncate { table, position }, tick))
            }
        }
    }
}

/// The worker's side of reads: its query channel and the shared holds.
struct Reads {
    queries: Option<Receiver<Query>>,
    holds: Arc<ReadHolds>,
    store: Arc<ViewStore>,
}

impl Reads {
    /// Answers the queries whose tick this worker has completed, and compacts the case traces
    /// up to the oldest tick a read may still ask for.
    fn serve(
        &self,
        pending: &mut Vec<Query>,
        probe: &timely::dataflow::ProbeHandle<Tick>,
        cases: Option<&mut CaseTraces>,
        poll: bool,
    ) {
        if poll {
            if let Some(rx) = &self.queries {
                pending.extend(rx.try_iter());
            }
        }
        let Some(cases) = cases else {
            for q in pending.drain(..) {
                match q {
                    Query::Case { reply, .. } => drop(reply.send(None)),
                    Query::Cases { reply, .. } => drop(reply.send(Vec::new())),
                    Query::Listed { reply, .. } => drop(reply.send(Vec::new())),
                    Query::Details { reply, .. } => drop(reply.send(Vec::new())),
                }
            }
            return;
        };
        if let Some(f) = self.holds.frontier(&self.store) {
            use differential_dataflow::trace::TraceReader;
            let f = Antichain::from_elem(f);
            cases.records.set_logical_compaction(f.borrow());
            cases.actions.set_logical_compaction(f.borrow());
            cases.history.set_logical_compaction(f.borrow());
            cases.sightings.set_logical_compaction(f.borrow());
            cases.records.set_physical_compaction(f.borrow());
            cases.actions.set_physical_compaction(f.borrow());
            cases.history.set_physical_compaction(f.borrow());
            cases.sightings.set_physical_compaction(f.borrow());
        }
        let mut waiting = Vec::new();
        for q in pending.drain(..) {
            if probe.less_equal(&q.tick()) {
                waiting.push(q);
                continue;
            }
            match q {
                Query::Case { id, tick, reply } => drop(reply.send(read::case(cases, id, tick))),
                Query::Cases {
                    filter,
                    tick,
                    reply,
                } => drop(reply.send(read::cases(cases, tick, &*filter))),
                Query::Listed {
                    filter,
                    tick,
                    reply,
                } => drop(reply.send(read::listed(cases, tick, &*filter))),
                Query::Details {
                    filter,
                    tick,
                    reply,
                } => drop(reply.send(read::details(cases, tick, &*filter))),
            }
        }
        *pending = waiting;
    }
}
