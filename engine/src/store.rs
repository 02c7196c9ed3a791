//! The view store: every view's rows at the last complete tick, on one place, plus bounded
//! per-subscriber queues of per-tick consolidated diffs.
//!
//! View outputs are small (hundreds of rows), so all workers send their view updates to worker 0,
//! whose sink applies a tick's consolidated diffs only once the tick is complete everywhere. A
//! read therefore always sees every view at one tick, and a subscriber sees each tick's diff once.
//!
//! Each tick's update also names the cases whose record (case, person, responsible, actions,
//! history) changed at that tick, so subscribers learn of case changes from the dataflow
//! itself, whatever the source, in tick order and together with that tick's view diff.
//!
//! Subscribers never make the engine's memory grow without bound: a queue that fills up is
//! dropped and replaced by one `Resync` message carrying a fresh snapshot (and the ids of the
//! cases changed in the ticks it replaces: at most every case once).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use differential_dataflow::consolidation::consolidate;
use parking_lot::{Condvar, Mutex};

use crate::model::Key;
use crate::series::{roll, Rollup, Series};
use crate::tick::Tick;
use crate::views::{Metric, ViewRow, Views};

/// One tick's consolidated changes to the view rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickDiff {
    /// The tick.
    pub tick: Tick,
    /// `(row, +1 | -1)`, consolidated; empty when only cases changed.
    pub diffs: Vec<(ViewRow, isize)>,
    /// The cases whose record changed at this tick, ascending, each once.
    pub cases: Vec<Key>,
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// The changes of one tick.
    Diff(TickDiff),
    /// The subscriber fell behind: here is the whole state at `tick`; diffs continue after it.
    Resync {
        /// The tick of the snapshot.
        tick: Tick,
        /// Every row.
        rows: Vec<ViewRow>,
        /// The cases changed in the ticks this snapshot replaces, ascending, each once.
        cases: Vec<Key>,
    },
}

impl Update {
    /// The cases this update names as changed.
    pub fn cases(&self) -> &[Key] {
        match self {
            Update::Diff(d) => &d.cases,
            Update::Resync { cases, .. } => cases,
        }
    }
}

struct Queue {
    items: Mutex<VecDeque<Update>>,
    ready: Condvar,
    capacity: usize,
}

/// A subscription to view diffs. Dropping it unsubscribes.
pub struct Subscription {
    queue: Arc<Queue>,
    /// The tick of the initial snapshot.
    pub tick: Option<Tick>,
    /// Every row at `tick`.
    pub snapshot: Vec<ViewRow>,
}

impl Subscription {
    /// Waits up to `timeout` for the next update.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Update> {
        let deadline = Instant::now() + timeout;
        let mut items = self.queue.items.lock();
        loop {
            if let Some(u) = items.pop_front() {
                return Some(u);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.queue.ready.wait_for(&mut items, left);
        }
    }
}

#[derive(Default)]
struct Inner {
    /// The last complete tick, `None` before the first.
    tick: Option<Tick>,
    /// When the first tick completed.
    first_tick_at: Option<Instant>,
    /// Whether the input has ended (no tick will ever follow).
    finished: bool,
    rows: BTreeMap<ViewRow, isize>,
    /// `rows` rendered, once per tick, so reads are a pointer copy.
    views: Arc<Views>,
    /// The time-series facts (kept apart: they are not views and subscribers do not get them).
    series: Series,
    /// The facts summed per bucket and single-dimension value (kept with `series`).
    rollup: Rollup,
    subscribers: Vec<Weak<Queue>>,
    /// Whether the `hotspots` view is maintained (rendered even with no cell).
    hotspots: bool,
}

impl Inner {
    fn snapshot(&self) -> Vec<ViewRow> {
        self.rows
            .iter()
            .flat_map(|(r, n)| std::iter::repeat_n(r.clone(), (*n).max(0) as usize))
            .collect()
    }
}

/// Shared view state.
#[derive(Default)]
pub struct ViewStore {
    inner: Mutex<Inner>,
    advanced: Condvar,
}

impl ViewStore {
    /// An empty store.
    pub fn new() -> Arc<ViewStore> {
        Arc::new(ViewStore::default())
    }

    /// An empty store whose views include `hotspots` when `hotspots` is on.
    pub fn with_hotspots(hotspots: bool) -> Arc<ViewStore> {
        let store = ViewStore::default();
        {
            let mut inner = store.inner.lock();
            inner.hotspots = hotspots;
            inner.views = Arc::new(Views::default().with_hotspots(hotspots));
        }
        Arc::new(store)
    }

    /// Whether the `hotspots` view is maintained.
    pub fn hotspots(&self) -> bool {
        self.inner.lock().hotspots
    }

    /// The last complete tick.
    pub fn tick(&self) -> Option<Tick> {
        self.inner.lock().tick
    }

    /// Every view at the last complete tick, and that tick.
    pub fn read(&self) -> (Option<Tick>, Views) {
        let (tick, views) = self.read_shared();
        (tick, Views::clone(&views))
    }

    /// Like [`ViewStore::read`] without copying the views.
    pub fn read_shared(&self) -> (Option<Tick>, Arc<Views>) {
        let inner = self.inner.lock();
        (inner.tick, inner.views.clone())
    }

    /// Runs `f` over the time-series facts and their rollup at the last complete tick (under
    /// the store's lock: keep `f` short).
    pub fn with_series<R>(&self, f: impl FnOnce(Option<Tick>, &Series, &Rollup) -> R) -> R {
        let inner = self.inner.lock();
        f(inner.tick, &inner.series, &inner.rollup)
    }

    /// When the first tick completed (for time-to-first-view measurements).
    pub fn first_tick_at(&self) -> Option<Instant> {
        self.inner.lock().first_tick_at
    }

    /// Every view row at the last complete tick (what a subscriber's snapshot holds).
    pub fn snapshot(&self) -> (Option<Tick>, Vec<ViewRow>) {
        let inner = self.inner.lock();
        (inner.tick, inner.snapshot())
    }

    /// Subscribes with a queue of at most `capacity` updates.
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        });
        let mut inner = self.inner.lock();
        inner.subscribers.push(Arc::downgrade(&queue));
        Subscription {
            queue,
            tick: inner.tick,
            snapshot: inner.snapshot(),
        }
    }

    /// Waits until `tick` is complete (or the input ended); `false` on timeout.
    pub fn wait_for(&self, tick: Tick, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        loop {
            if inner.finished || inner.tick.is_some_and(|t| t >= tick) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            self.advanced.wait_for(&mut inner, left);
        }
    }

    /// Waits until the input has ended and every tick is applied.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        self.wait_for(Tick::MAX, timeout)
    }

    /// Applies one complete tick's view updates and the ids of the cases changed at it (sorted,
    /// each once), called by the dataflow's sink on worker 0. Subscribers hear of the tick when
    /// either is non-empty.
    pub(crate) fn apply(&self, tick: Tick, mut all: Vec<(ViewRow, isize)>, cases: Vec<Key>) {
        consolidate(&mut all);
        let (series, diffs): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|(r, _)| matches!(r, ViewRow::Count(Metric::Series(_), _)));
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        apply_series(&mut inner.series, &mut inner.rollup, series);
        for (row, d) in &diffs {
            let n = inner.rows.entry(row.clone()).or_insert(0);
            *n += d;
            if *n == 0 {
                inner.rows.remove(row);
            }
        }
        inner.tick = Some(tick);
        inner.first_tick_at.get_or_insert_with(Instant::now);
        if !diffs.is_empty() {
            let on = inner.hotspots;
            inner.views = Arc::new(Views::from_rows(inner.rows.keys()).with_hotspots(on));
        }
        if !diffs.is_empty() || !cases.is_empty() {
            let update = TickDiff { tick, diffs, cases };
            let mut resync = None;
            inner.subscribers.retain(|w| w.strong_count() > 0);
            for q in inner.subscribers.iter().filter_map(Weak::upgrade) {
                let mut items = q.items.lock();
                if items.len() >= q.capacity {
                    let mut cases: Vec<Key> =
                        items.iter().flat_map(Update::cases).copied().collect();
                    cases.extend_from_slice(&update.cases);
                    cases.sort_unstable();
                    cases.dedup();
                    items.clear();
                    let rows = resync.get_or_insert_with(|| inner.snapshot());
                    items.push_back(Update::Resync {
                        tick,
                        rows: rows.clone(),
                        cases,
                    });
                } else {
                    items.push_back(Update::Diff(update.clone()));
                }
                q.ready.notify_all();
            }
        }
        self.advanced.notify_all();
    }

    /// Marks every tick through `complete_through` complete, with or without view changes, and
    /// whether the input ended (called by the dataflow's sink, on worker 0).
    pub(crate) fn advance(&self, complete_through: Option<Tick>, finished: bool) {
        let mut inner = self.inner.lock();
        if let Some(t) = complete_through {
            if inner.tick.is_none_or(|old| t > old) {
                inner.tick = Some(t);
                inner.first_tick_at.get_or_insert_with(Instant::now);
            }
        }
        inner.finished |= finished;
        self.advanced.notify_all();
    }
}

/// Applies one tick's consolidated series diffs: a changed count arrives as `(old, -1)` and
/// `(new, +1)`, so removals go first. The rollup moves by each fact's change of count.
fn apply_series(series: &mut Series, rollup: &mut Rollup, mut diffs: Vec<(ViewRow, isize)>) {
    diffs.sort_by_key(|(_, d)| *d);
    for (row, d) in diffs {
        if let ViewRow::Count(Metric::Series(key), n) = row {
            if d < 0 {
                if series.get(&key) == Some(&n) {
                    series.remove(&key);
                    roll(rollup, &key, -n);
                }
            } else if n != 0 {
                let old = series.insert(key.clone(), n).unwrap_or(0);
                roll(rollup, &key, n - old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Table;

    fn persons(n: i64) -> ViewRow {
        ViewRow::Count(Metric::RowCount(Table::PersonsLost), n)
    }

    #[test]
    fn a_tick_that_changed_only_cases_reaches_subscribers() {
        let store = ViewStore::new();
        let sub = store.subscribe(8);
        store.apply(1, vec![(persons(1), 1)], vec![]);
        store.apply(2, vec![], vec![]);
        store.apply(3, vec![], vec![4, 9]);
        let ticks: Vec<(Tick, usize, Vec<Key>)> = std::iter::from_fn(|| {
            sub.recv_timeout(Duration::ZERO).map(|u| match u {
                Update::Diff(d) => (d.tick, d.diffs.len(), d.cases),
                Update::Resync { tick, .. } => panic!("resync at {tick}"),
            })
        })
        .collect();
        assert_eq!(ticks, vec![(1, 1, vec![]), (3, 0, vec![4, 9])]);
        assert_eq!(store.tick(), Some(3));
    }

    #[test]
    fn a_resync_names_the_cases_of_the_ticks_it_replaces() {
        let store = ViewStore::new();
        let sub = store.subscribe(1);
        store.apply(1, vec![(persons(1), 1)], vec![3]);
        store.apply(2, vec![], vec![5, 7]);
        store.apply(3, vec![(persons(1), -1), (persons(2), 1)], vec![3]);
        match sub.recv_timeout(Duration::ZERO) {
            Some(Update::Resync { tick, rows, cases }) => {
                assert_eq!((tick, rows), (3, vec![persons(2)]));
                assert_eq!(cases, vec![3, 5, 7]);
            }
            other => panic!("expected one resync, got {other:?}"),
        }
        assert!(sub.recv_timeout(Duration::ZERO).is_none());
    }

    /// The rollup the store keeps equals the facts it keeps, summed, after ticks that insert,
    /// change and remove facts.
    #[test]
    fn the_rollup_follows_the_facts() {
        use crate::dims::{AgeBand, Gender};
        use crate::series::{SeriesKey, SeriesKind};
        let fact = |bucket: i64, gender: Gender, n: i64| {
            let key = SeriesKey {
                kind: SeriesKind::Reported,
                bucket,
                gender,
                age_band: AgeBand::Child,
                status: None,
                priority: None,
            };
            ViewRow::Count(Metric::Series(key), n)
        };
        let store = ViewStore::new();
        store.apply(
            1,
            vec![
                (fact(0, Gender::Male, 2), 1),
                (fact(0, Gender::Female, 1), 1),
            ],
            vec![],
        );
        store.apply(
            2,
            vec![
                (fact(0, Gender::Male, 2), -1),
                (fact(0, Gender::Male, 5), 1),
            ],
            vec![],
        );
        store.apply(3, vec![(fact(0, Gender::Female, 1), -1)], vec![]);
        store.with_series(|_, series, rollup| {
            let mut expected = Rollup::new();
            for (key, &n) in series {
                roll(&mut expected, key, n);
            }
            assert_eq!(rollup, &expected);
            assert_eq!(series.len(), 1);
            assert_eq!(rollup.len(), 5, "total, gender, age band, status, priority");
        });
    }
}
