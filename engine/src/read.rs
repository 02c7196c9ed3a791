//! Reads of the case read model at one complete tick, from trace cursors on the worker thread.

use std::sync::Arc;

use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::trace::TraceReader;
use serde::Serialize;
use timely::progress::frontier::Antichain;

use crate::dataflow::{CaseRecord, CaseTraces};
use crate::model::{Action, Assignment, Key, Sighting};
use crate::tick::Tick;

/// One case as responders see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseDetail {
    /// The tick this read reflects.
    pub tick: Tick,
    /// Case, person and current responsible.
    pub record: CaseRecord,
    /// Actions, oldest first.
    pub actions: Vec<Arc<Action>>,
    /// Responsible history, oldest first.
    pub history: Vec<Arc<Assignment>>,
    /// Sightings, newest first (by `seen_at`, then id).
    pub sightings: Vec<Arc<Sighting>>,
}

/// Newest sighting first: by when the person was seen, ties by the later id.
fn sort_sightings(sightings: &mut [Arc<Sighting>]) {
    sightings.sort_by_key(|s| std::cmp::Reverse((s.seen_at, s.id)));
}

/// The values of `key` at `tick` (accumulated multiplicities, positive ones repeated).
fn values_at<V: Ord + Clone + 'static>(
    trace: &mut TraceAgent<ValSpine<Key, V, Tick, isize>>,
    key: Key,
    tick: Tick,
) -> Vec<V> {
    values_for_keys(trace, &[key], tick)
        .pop()
        .unwrap_or_default()
}

/// Reads case `id` at `tick`; `None` if this worker does not hold it or it does not exist.
pub fn case(traces: &mut CaseTraces, id: Key, tick: Tick) -> Option<CaseDetail> {
    let record = values_at(&mut traces.records, id, tick)
        .into_iter()
        .next()?;
    let mut actions = values_at(&mut traces.actions, id, tick);
    actions.sort_by_key(|a| (a.created_at, a.id));
    let mut history = values_at(&mut traces.history, id, tick);
    history.sort_by_key(|h| (h.assigned_at, h.id));
    let mut sightings = values_at(&mut traces.sightings, id, tick);
    sort_sightings(&mut sightings);
    Some(CaseDetail {
        tick,
        record,
        actions,
        history,
        sightings,
    })
}

/// Calls `visit(i, value, n)` for each value of `keys[i]` (sorted ascending) whose accumulated
/// multiplicity at `tick` is `n > 0`, in one cursor pass.
fn visit_keys<V: Ord + Clone + 'static>(
    trace: &mut TraceAgent<ValSpine<Key, V, Tick, isize>>,
    keys: &[Key],
    tick: Tick,
    mut visit: impl FnMut(usize, &V, isize),
) {
    let Some(batches) = trace.batches_through(Antichain::new().borrow()) else {
        return;
    };
    let (mut cursor, storage) = cursor_list(batches);
    for (i, key) in keys.iter().enumerate() {
        cursor.seek_key(&storage, key);
        if cursor.get_key(&storage) != Some(key) {
            continue;
        }
        while let Some(v) = cursor.get_val(&storage) {
            let mut n = 0isize;
            cursor.map_times(&storage, |t, d| {
                if *t <= tick {
                    n += *d;
                }
            });
            if n > 0 {
                visit(i, v, n);
            }
            cursor.step_val(&storage);
        }
    }
}

/// The values of each of `keys` (sorted ascending) at `tick`, from one cursor pass
/// (accumulated multiplicities, positive ones repeated).
fn values_for_keys<V: Ord + Clone + 'static>(
    trace: &mut TraceAgent<ValSpine<Key, V, Tick, isize>>,
    keys: &[Key],
    tick: Tick,
) -> Vec<Vec<V>> {
    let mut out = vec![Vec::new(); keys.len()];
    visit_keys(trace, keys, tick, |i, v, n| {
        for _ in 0..n {
            out[i].push(v.clone());
        }
    });
    out
}

/// Every case on this worker that satisfies `filter`, with its actions and history, at
/// `tick` (for reports that need both, such as "no action in the last 24 h").
pub fn details(
    traces: &mut CaseTraces,
    tick: Tick,
    filter: &dyn Fn(&CaseRecord) -> bool,
) -> Vec<CaseDetail> {
    let records = cases(traces, tick, filter);
    let ids: Vec<Key> = records.iter().map(|r| r.case.id).collect();
    let actions = values_for_keys(&mut traces.actions, &ids, tick);
    let history = values_for_keys(&mut traces.history, &ids, tick);
    let sightings = values_for_keys(&mut traces.sightings, &ids, tick);
    records
        .into_iter()
        .zip(actions.into_iter().zip(history).zip(sightings))
        .map(|(record, ((mut actions, mut history), mut sightings))| {
            actions.sort_by_key(|a| (a.created_at, a.id));
            history.sort_by_key(|h| (h.assigned_at, h.id));
            sort_sightings(&mut sightings);
            CaseDetail {
                tick,
                record,
                actions,
                history,
                sightings,
            }
        })
        .collect()
}

/// A case as lists show it: its record and how many sightings it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Case, person and current responsible.
    pub record: CaseRecord,
    /// Its sightings at the same tick.
    pub sightings: usize,
}

/// Every case at `tick` on this worker that satisfies `filter`, with its sighting count (one
/// more cursor pass, over the sightings of the matching cases only).
pub fn listed(
    traces: &mut CaseTraces,
    tick: Tick,
    filter: &dyn Fn(&CaseRecord) -> bool,
) -> Vec<Listed> {
    // the records cursor walks case ids in ascending order, as `visit_keys` wants them
    let records = cases(traces, tick, filter);
    let ids: Vec<Key> = records.iter().map(|r| r.case.id).collect();
    let mut counts = vec![0usize; ids.len()];
    visit_keys(&mut traces.sightings, &ids, tick, |i, _, n| {
        counts[i] += n.unsigned_abs();
    });
    records
        .into_iter()
        .zip(counts)
        .map(|(record, sightings)| Listed { record, sightings })
        .collect()
}

/// Every case record at `tick` on this worker that satisfies `filter`, by ascending case id.
pub fn cases(
    traces: &mut CaseTraces,
    tick: Tick,
    filter: &dyn Fn(&CaseRecord) -> bool,
) -> Vec<CaseRecord> {
    let Some(batches) = traces.records.batches_through(Antichain::new().borrow()) else {
        return Vec::new();
    };
    let (mut cursor, storage) = cursor_list(batches);
    let mut out = Vec::new();
    while cursor.key_valid(&storage) {
        while let Some(v) = cursor.get_val(&storage) {
            let mut n = 0isize;
            cursor.map_times(&storage, |t, d| {
                if *t <= tick {
                    n += *d;
                }
            });
            if n > 0 && filter(v) {
                out.push(v.clone());
            }
            cursor.step_val(&storage);
        }
        cursor.step_key(&storage);
    }
    out
}
