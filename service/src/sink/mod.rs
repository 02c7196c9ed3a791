//! The exactly-once aggregate sink (`lpm serve --sink mysql://…`): keeps one `agg_<view>`
//! table per view in MySQL equal to the views, and stores with every write the source position
//! the written tick covers, in the same transaction.
//!
//! ## Protocol
//!
//! The sink subscribes to the view store and folds every tick's diffs into its own copy of the
//! view rows. Whenever it has ticks that are not yet written, it renders the views, turns them
//! into table rows ([`tables::image`]) and runs one transaction ([`mysql::write`]) that
//!
//! 1. locks its `agg_sink_state` row and checks that the stored position is not ahead of ours,
//! 2. upserts the rows that changed and deletes the rows that left the views (absolute values,
//!    so writing a tick twice is harmless),
//! 3. stores the tick and `serde_json` of the position it covers, and commits.
//!
//! Ticks that queue up while a transaction runs are written together by the next one (at most
//! `max_group` ticks per transaction).
//!
//! ## Restart
//!
//! A restarted engine rebuilds its state from its source and passes through older states on
//! the way. The sink reads its stored position first and writes nothing until the engine's
//! position [covers](crate::position::SourcePosition::covers) it, so the tables never go
//! back to an older state. Its first transaction then reconciles whole tables (strays deleted,
//! every row upserted), and diffs follow. A subscription that fell behind (`Resync`) and every
//! failed transaction also end in a reconcile, because after them the sink no longer knows
//! which rows differ.
//!
//! ## Failure
//!
//! MySQL down or erroring never stops the server: the sink keeps folding diffs, retries with a
//! capped backoff, and on recovery writes the then-current state by reconcile.

pub mod metrics;
pub mod mysql;
pub mod tables;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lpm_engine::store::{Subscription, Update, ViewStore};
use lpm_engine::views::{ViewRow, Views};
use lpm_engine::Tick;

use crate::position::SourcePosition;
pub use metrics::SinkMetrics;
use tables::Image;

/// Sink options.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// `mysql://user:pw@host:port/db`; the database must exist, the tables are created.
    pub url: String,
    /// This sink's row in `agg_sink_state`. One database holds one server's `agg_*` tables;
    /// the id names the stored position that guards them.
    pub sink_id: String,
    /// Most ticks grouped into one transaction.
    pub max_group: usize,
    /// Ticks the subscription queues before it resynchronises (a reconcile).
    pub queue: usize,
    /// How long a clean shutdown waits for the last write.
    pub stop_timeout: Duration,
    /// First retry delay after an error (doubles up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Longest a connect or a transaction may take before it counts as failed.
    pub op_timeout: Duration,
}

impl SinkConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> SinkConfig {
        SinkConfig {
            url: url.into(),
            sink_id: "lpm".into(),
            max_group: 64,
            queue: 4096,
            stop_timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            op_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the sink could not start or a write failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The URL does not parse.
    #[error("invalid sink URL: {0}")]
    Url(String),
    /// MySQL answered with an error or the connection broke.
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// `agg_sink_state` holds something unreadable.
    #[error("stored sink state: {0}")]
    BadState(String),
    /// The stored position is ahead of ours (another writer with the same sink id).
    #[error("the stored position is ahead of the engine: {0:?}")]
    Ahead(Box<SourcePosition>),
    /// A connect or transaction took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The sink thread could not be started.
    #[error("starting the sink thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The source position a tick covers (the server passes `AppState::position_at`'s sources).
pub type PositionFn = Arc<dyn Fn(Tick) -> SourcePosition + Send + Sync>;

/// A running sink. [`Sink::stop`] writes the last visible tick and ends it.
pub struct Sink {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
    timeout: Duration,
}

/// Starts the sink thread. Only a bad URL fails here; MySQL being down does not.
pub fn start(
    cfg: SinkConfig,
    store: Arc<ViewStore>,
    position: PositionFn,
    metrics: SinkMetrics,
) -> Result<Sink, SinkError> {
    let opts = mysql_async::Opts::from_url(&cfg.url).map_err(|e| SinkError::Url(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sub = store.subscribe(cfg.queue);
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = mpsc::channel();
    let timeout = cfg.stop_timeout;
    let worker = Worker::new(cfg, opts, rt, store, sub, position, metrics);
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("lpm-sink".into())
        .spawn(move || {
            worker.run(&flag);
            let _ = done_tx.send(());
        })?;
    Ok(Sink {
        stop,
        done,
        thread,
        timeout,
    })
}

impl Sink {
    /// Writes the last visible tick (if MySQL answers within the stop timeout) and ends.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // a hung MySQL must not hold the server's exit: wait a bounded time, then detach
        match self
            .done
            .recv_timeout(self.timeout + Duration::from_secs(2))
        {
            Ok(()) => {
                let _ = self.thread.join();
            }
            Err(_) => tracing::warn!(
                timeout_ms = self.timeout.as_millis() as u64,
                "The sink did not finish its last write in time; exiting without it."
            ),
        }
    }
}

/// Where the sink stands with respect to its stored position.
enum Stored {
    /// Not read yet (no connection so far).
    Unknown,
    /// The engine has not reached this stored position yet: nothing may be written.
    Waiting(SourcePosition),
    /// Caught up: every tick from here on is written.
    Following,
}

struct Worker {
    cfg: SinkConfig,
    opts: mysql_async::Opts,
    rt: tokio::runtime::Runtime,
    store: Arc<ViewStore>,
    sub: Subscription,
    position: PositionFn,
    metrics: SinkMetrics,
    /// The view rows at `seen` (a multiset, as the store keeps them).
    rows: BTreeMap<ViewRow, isize>,
    /// The tick `rows` stand at.
    seen: Option<Tick>,
    /// Ticks folded since the last write.
    folded: usize,
    conn: Option<mysql_async::Conn>,
    stored: Stored,
    /// What the tables hold after this process's last commit; `None` = reconcile next.
    written: Option<Image>,
    written_tick: Option<Tick>,
    backoff: Duration,
    retry_at: Instant,
    waiting_logged: Option<Instant>,
}

impl Worker {
    fn new(
        cfg: SinkConfig,
        opts: mysql_async::Opts,
        rt: tokio::runtime::Runtime,
        store: Arc<ViewStore>,
        sub: Subscription,
        position: PositionFn,
        metrics: SinkMetrics,
    ) -> Worker {
        let mut rows = BTreeMap::new();
        for r in &sub.snapshot {
            *rows.entry(r.clone()).or_insert(0) += 1;
        }
        let seen = sub.tick;
        let backoff = cfg.min_backoff;
        Worker {
            cfg,
            opts,
            rt,
            store,
            sub,
            position,
            metrics,
            rows,
            seen,
            folded: 0,
            conn: None,
            stored: Stored::Unknown,
            written: None,
            written_tick: None,
            backoff,
            retry_at: Instant::now(),
            waiting_logged: None,
        }
    }

    /// Whether everything seen is written.
    fn caught_up(&self) -> bool {
        matches!(self.stored, Stored::Following)
            && self.written.is_some()
            && self.written_tick == self.seen
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut deadline = None;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if stopping && deadline.is_none() {
                deadline = Some(Instant::now() + self.cfg.stop_timeout);
            }
            let now = Instant::now();
            // nothing to write until an update arrives: block on the subscription
            let idle = self.caught_up()
                || matches!(self.stored, Stored::Waiting(_))
                || (self.seen.is_none() && !matches!(self.stored, Stored::Unknown));
            let wait = if stopping {
                Duration::ZERO
            } else if idle {
                Duration::from_millis(200)
            } else {
                self.retry_at
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(200))
            };
            self.gather(
                wait,
                if stopping {
                    usize::MAX
                } else {
                    self.cfg.max_group
                },
            );
            let engine_tick = self.store.tick().unwrap_or(0);
            self.metrics
                .lag
                .set(engine_tick.saturating_sub(self.written_tick.unwrap_or(0)) as i64);
            if stopping {
                let waiting = matches!(self.stored, Stored::Waiting(_));
                if self.caught_up() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if waiting && self.step_coverage() != Some(true) {
                    // the engine never reached the stored state: writing now would go back
                    tracing::info!("The sink stops without writing: the engine had not reached its stored position.");
                    break;
                }
            }
            if Instant::now() < self.retry_at {
                if stopping {
                    std::thread::sleep(Duration::from_millis(20));
                }
                continue;
            }
            self.step();
        }
        if let Some(conn) = self.conn.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await
            });
        }
        tracing::info!(tick = ?self.written_tick, "The sink stopped.");
    }

    /// Folds waiting updates (at most `max` ticks) into `rows`, blocking up to `wait` for the
    /// first one.
    fn gather(&mut self, wait: Duration, max: usize) {
        let first = self.sub.recv_timeout(wait);
        // read before draining: the store queues a tick's diff before it shows the tick, so
        // once the queue is empty every diff at or below `visible` has been folded
        let visible = self.store.tick();
        let mut taken = 0;
        let mut next = first;
        loop {
            let Some(update) = next else {
                // drained: ticks without view changes up to `visible` are covered too
                if let Some(v) = visible {
                    if self.seen.is_none_or(|s| v > s) {
                        self.seen = Some(v);
                    }
                }
                return;
            };
            self.fold(update);
            taken += 1;
            if taken >= max {
                return;
            }
            next = self.sub.recv_timeout(Duration::ZERO);
        }
    }

    fn fold(&mut self, update: Update) {
        match update {
            Update::Diff(d) => {
                for (row, n) in d.diffs {
                    let e = self.rows.entry(row.clone()).or_insert(0);
                    *e += n;
                    if *e == 0 {
                        self.rows.remove(&row);
                    }
                }
                self.seen = Some(d.tick);
            }
            Update::Resync { tick, rows, .. } => {
                tracing::info!(
                    tick,
                    "The sink fell behind the engine; the next write reconciles whole tables."
                );
                self.rows.clear();
                for r in rows {
                    *self.rows.entry(r).or_insert(0) += 1;
                }
                self.seen = Some(tick);
                self.written = None;
            }
        }
        self.folded += 1;
    }

    /// One attempt at progress: connect, read the stored position, wait for coverage, write.
    fn step(&mut self) {
        if self.conn.is_none() {
            let opts = self.opts.clone();
            match self.timed(mysql::connect(&opts)) {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.metrics.up.set(1);
                }
                Err(e) => return self.fail("connect", e),
            }
        }
        if matches!(self.stored, Stored::Unknown) {
            let sink_id = self.cfg.sink_id.clone();
            let Some(mut conn) = self.conn.take() else {
                return;
            };
            let read = self.timed(mysql::stored_position(&mut conn, &sink_id));
            self.conn = Some(conn);
            match read {
                Ok(Some(p)) => {
                    tracing::info!(position = ?p, "The sink resumes after its stored position.");
                    self.stored = Stored::Waiting(p);
                }
                Ok(None) => self.stored = Stored::Following,
                Err(e) => return self.fail("reading the stored position", e),
            }
        }
        if matches!(self.stored, Stored::Waiting(_)) && self.step_coverage() != Some(true) {
            return;
        }
        let Some(tick) = self.seen else {
            return;
        };
        if self.written.is_some() && self.written_tick == Some(tick) {
            return;
        }
        self.write(tick);
    }

    /// While waiting: whether the engine now covers the stored position (then the sink
    /// follows); `None` when no tick is visible yet.
    fn step_coverage(&mut self) -> Option<bool> {
        let Stored::Waiting(stored) = &self.stored else {
            return Some(true);
        };
        let here = (self.position)(self.seen?);
        if here.covers(stored) {
            tracing::info!(position = ?here, "The engine reached the sink's stored position; reconciling.");
            self.stored = Stored::Following;
            self.written = None;
            self.metrics.waiting.set(0);
            return Some(true);
        }
        self.metrics.waiting.set(1);
        if self
            .waiting_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
        {
            self.waiting_logged = Some(Instant::now());
            tracing::info!(stored = ?stored, engine = ?here,
                "The sink waits for the engine to reach its stored position before writing.");
        }
        Some(false)
    }

    fn write(&mut self, tick: Tick) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let image = tables::image(&Views::from_rows(self.rows.keys()));
        let position = (self.position)(tick);
        let sink_id = self.cfg.sink_id.clone();
        let written = self.written.take();
        let result = self.timed(mysql::write(
            &mut conn,
            mysql::Write {
                sink_id: &sink_id,
                tick,
                position: &position,
                image: &image,
                written: written.as_ref(),
            },
        ));
        self.conn = Some(conn);
        match result {
            Ok(c) => {
                let m = &self.metrics;
                m.transactions.inc();
                if c.reconciled {
                    m.reconciles.inc();
                }
                m.rows_written.inc_by(c.rows as u64);
                m.group.observe(self.folded.max(1) as f64);
                m.tick.set(tick as i64);
                m.up.set(1);
                self.folded = 0;
                self.written = Some(image);
                self.written_tick = Some(tick);
                self.backoff = self.cfg.min_backoff;
                tracing::debug!(
                    tick,
                    rows = c.rows,
                    reconciled = c.reconciled,
                    "Sink transaction committed."
                );
            }
            Err(SinkError::Ahead(stored)) => {
                tracing::warn!(stored = ?stored, ours = ?position,
                    "Another writer stored a newer position under this sink id; waiting until the engine reaches it.");
                self.stored = Stored::Waiting(*stored);
            }
            Err(e) => self.fail("writing", e),
        }
    }

    /// Runs `f` on the sink's runtime, bounded by the operation timeout.
    fn timed<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        let limit = self.cfg.op_timeout;
        self.rt
            .block_on(async { tokio::time::timeout(limit, f).await })
            .unwrap_or(Err(SinkError::Timeout(limit)))
    }

    /// Counts the error, drops the connection, schedules a retry and forces a reconcile (the
    /// failed transaction may or may not have committed).
    fn fail(&mut self, what: &str, e: SinkError) {
        self.metrics.errors.inc();
        self.metrics.up.set(0);
        if let Some(conn) = self.conn.take() {
            let _guard = self.rt.enter();
            drop(conn);
        }
        self.written = None;
        tracing::warn!(error = %e, during = what, retry_ms = self.backoff.as_millis() as u64,
            "The aggregate sink failed; retrying.");
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.cfg.max_backoff);
    }
}
