//! Runs the dataflow on `workers` threads: each worker pulls batches from the shared [`Feed`]
//! (decoding them on its own thread, so decoding scales with workers), feeds them in at their
//! tick, keeps at most a few ticks in flight, and answers case reads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono_tz::Tz;
use timely::progress::frontier::Antichain;

use crate::change::{Change, RowChange};
use crate::dataflow::{self, Built, CaseTraces, Control, DataflowConfig, Tick};
use crate::error::EngineError;
use crate::model::Row;
use crate::read::{self, CaseDetail};
use crate::store::ViewStore;
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            tz: chrono_tz::America::Guayaquil,
            case_model: true,
            collect_rows: false,
            max_ticks_in_flight: 2,
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

enum Query {
    Case {
        id: i64,
        reply: Sender<Option<CaseDetail>>,
    },
}

/// A cloneable handle for reads while the engine runs.
#[derive(Clone)]
pub struct EngineHandle {
    store: Arc<ViewStore>,
    queries: Vec<Sender<Query>>,
}

impl EngineHandle {
    /// The view store (views at the last complete tick, subscriptions).
    pub fn store(&self) -> &Arc<ViewStore> {
        &self.store
    }

    /// One case with its person, responsible, actions and history, at the last complete tick.
    pub fn case(&self, id: i64, timeout: Duration) -> Result<Option<CaseDetail>, EngineError> {
        self.store.tick().ok_or(EngineError::NotReady)?;
        let (tx, rx) = mpsc::channel();
        for q in &self.queries {
            q.send(Query::Case {
                id,
                reply: tx.clone(),
            })
            .map_err(|_| EngineError::Stopped)?;
        }
        drop(tx);
        let mut found = None;
        for _ in 0..self.queries.len() {
            match rx.recv_timeout(timeout) {
                Ok(Some(d)) => found = Some(d),
                Ok(None) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(EngineError::Timeout),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(EngineError::Stopped),
            }
        }
        Ok(found)
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
        let workers = config.workers.max(1);
        let store = ViewStore::new();
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| mpsc::channel::<Query>()).unzip();
        let receivers: Arc<Vec<Mutex<Option<Receiver<Query>>>>> =
            Arc::new(receivers.into_iter().map(|r| Mutex::new(Some(r))).collect());
        let results: Arc<Mutex<RunSummary>> = Arc::default();
        let handle = EngineHandle {
            store: store.clone(),
            queries: senders,
        };

        let timely_config = timely::Config::process(workers);
        let (store2, results2) = (store.clone(), results.clone());
        let guards = timely::execute(timely_config, move |worker| {
            let index = worker.index();
            let queries = receivers[index].lock().ok().and_then(|mut r| r.take());
            run_worker(
                worker,
                &config,
                feed.clone(),
                store2.clone(),
                queries,
                &results2,
            );
        })
        .map_err(EngineError::Timely)?;
        let thread = std::thread::Builder::new()
            .name("lpm-engine".into())
            .spawn(move || {
                for r in guards.join() {
                    r.map_err(EngineError::WorkerFailed)?;
                }
                let mut summary = results
                    .lock()
                    .map_err(|_| EngineError::WorkerFailed("poisoned".into()))?;
                Ok(std::mem::take(&mut *summary))
            })
            .map_err(|e| EngineError::Timely(e.to_string()))?;
        Ok(Engine { handle, thread })
    }

    /// A handle for reads.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
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

fn run_worker(
    worker: &mut timely::worker::Worker,
    config: &EngineConfig,
    feed: Arc<dyn Feed>,
    store: Arc<ViewStore>,
    queries: Option<Receiver<Query>>,
    results: &Mutex<RunSummary>,
) {
    let state = Rc::new(RefCell::new(UpsertState::new()));
    let df_config = DataflowConfig {
        tz: config.tz,
        case_model: config.case_model,
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
    while input_open {
        match feed.next(index) {
            FeedItem::Batch {
                tick,
                changes: batch,
            } => {
                advance(&mut changes, &mut controls, tick);
                let tick = *changes.time();
                for change in batch {
                    route(change, tick, &mut changes, &mut controls);
                }
                changes.flush();
                controls.flush();
                worker.step();
                let floor = tick.saturating_sub(config.max_ticks_in_flight);
                while probe.less_than(&floor) {
                    worker.step();
                }
            }
            FeedItem::Idle { tick } => {
                advance(&mut changes, &mut controls, tick);
                worker.step_or_park(Some(Duration::from_millis(5)));
            }
            FeedItem::End => input_open = false,
        }
        serve_queries(&queries, &mut pending, &probe, cases.as_mut(), &store);
    }
    drop(changes);
    drop(controls);
    while !probe.done() {
        worker.step_or_park(Some(Duration::from_millis(1)));
        serve_queries(&queries, &mut pending, &probe, cases.as_mut(), &store);
    }
    let st = state.borrow();
    if let Ok(mut r) = results.lock() {
        r.upsert.add(&st.counters);
        r.state_entries += st.entries();
        if config.collect_rows {
            r.rows.extend(st.rows().cloned());
        }
    }
    drop(st);
    // keep answering reads until every handle is gone
    if let Some(rx) = &queries {
        while let Ok(q) = rx.recv() {
            pending.push(q);
            serve_queries(&None, &mut pending, &probe, cases.as_mut(), &store);
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

fn route(change: Change, tick: Tick, changes: &mut Changes, controls: &mut Controls) {
    match change {
        Change::Row(row) => {
            if row.snapshot.closes_table() {
                if let Some(coords) = row.position.coords {
                    let close = Control::SnapshotClosed {
                        table: row.table,
                        coords,
                        seq: row.position.seq,
                    };
                    controls.send((close, tick));
                }
            }
            changes.send((row, tick));
        }
        Change::Truncate { table, position } => {
            controls.send((Control::Truncate { table, position }, tick))
        }
    }
}

fn serve_queries(
    queries: &Option<Receiver<Query>>,
    pending: &mut Vec<Query>,
    probe: &timely::dataflow::ProbeHandle<Tick>,
    cases: Option<&mut CaseTraces>,
    store: &ViewStore,
) {
    if let Some(rx) = queries {
        pending.extend(rx.try_iter());
    }
    let Some(cases) = cases else {
        for Query::Case { reply, .. } in pending.drain(..) {
            let _ = reply.send(None);
        }
        return;
    };
    // Read at the last published tick once this worker's arrangements have it, and let the
    // traces compact up to that tick: no read ever goes back further.
    let Some(tick) = store.tick() else { return };
    if probe.less_equal(&tick) {
        return;
    }
    {
        use differential_dataflow::trace::TraceReader;
        let f = Antichain::from_elem(tick);
        cases.records.set_logical_compaction(f.borrow());
        cases.actions.set_logical_compaction(f.borrow());
        cases.history.set_logical_compaction(f.borrow());
        cases.records.set_physical_compaction(f.borrow());
        cases.actions.set_physical_compaction(f.borrow());
        cases.history.set_physical_compaction(f.borrow());
    }
    for Query::Case { id, reply } in pending.drain(..) {
        let _ = reply.send(read::case(cases, id, tick));
    }
}
