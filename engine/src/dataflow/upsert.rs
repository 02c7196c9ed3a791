//! The upsert operator: routes each key's events to the worker that owns the key, applies them
//! in ingestion order once their tick is complete, and emits `-old, +new` updates.
//!
//! Truncates and snapshot bookkeeping concern every key of a table, so they arrive on a second,
//! broadcast input and are applied in the same `seq` order as the row events of their tick. A
//! checkpoint request arrives the same way and is served after everything else of its tick.
//!
//! # Which tables a snapshot's `last` record closes
//! A table's snapshot closes with its `last_in_data_collection` record, but not every table gets
//! one: the connector marks the very first record `first` even when it is also its table's last
//! (a first table with one row), and Debezium 1.x marks no table ends at all (only `true` and
//! `last`). So the `last` record ends the epoch of *every* table the snapshot read. Which tables
//! those are is global knowledge (each worker sees the reads of its own keys only), so the
//! router announces the first snapshot read of each table at each coordinate to every worker
//! ([`Control::SnapshotOpened`]) before the `last` record's [`Control::SnapshotEnded`]. Tables
//! the snapshot read nothing of are not closed: nothing says the snapshot covered them (an ad-hoc
//! blocking snapshot may cover a few tables only).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use differential_dataflow::{AsCollection, VecCollection};
use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::change::{Coords, Position, RowChange};
use crate::checkpoint::{ImageSink, TableMeta, WorkerImage};
use crate::model::{Row, Table};
use crate::tick::Tick;
use crate::upsert::UpsertState;

/// A table-wide event, delivered to every worker.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Control {
    /// A truncate of `table` at `position`.
    Truncate {
        /// The table.
        table: Table,
        /// Where it happened.
        position: Position,
    },
    /// The snapshot of `table` taken at `coords` has closed: sweep rows it did not re-read.
    SnapshotClosed {
        /// The table.
        table: Table,
        /// The snapshot's coordinate.
        coords: Coords,
        /// Ingestion order of the closing record.
        seq: u64,
    },
    /// A snapshot at `coords` read a row of `table` (announced once per worker that routes
    /// one): the table's epoch is open, so the snapshot's `last` record closes it.
    SnapshotOpened {
        /// The table.
        table: Table,
        /// The snapshot's coordinate.
        coords: Coords,
        /// Ingestion order of the announcing record.
        seq: u64,
    },
    /// The snapshot at `coords` ended (its `last` record): close every table it read that has
    /// not closed yet.
    SnapshotEnded {
        /// The snapshot's coordinate.
        coords: Coords,
        /// Ingestion order of the `last` record.
        seq: u64,
    },
    /// Once this tick is applied, hand a copy of the state to the checkpoint sink
    /// ([`crate::checkpoint`]).
    Checkpoint {
        /// The source's request number, returned with the images.
        request: u64,
    },
}

impl Control {
    /// The controls that restore a checkpointed table's `meta` on an empty state (pushed a
    /// tick before the rows; see [`crate::checkpoint`]).
    pub fn restoring(table: Table, meta: &TableMeta) -> Vec<Control> {
        let mut out = Vec::new();
        if let Some(position) = meta.truncated_before {
            out.push(Control::Truncate { table, position });
        }
        if let Some(coords) = meta.last_closed {
            out.push(Control::SnapshotClosed {
                table,
                coords,
                seq: 0,
            });
        }
        out
    }

    /// Where the control applies among the events of its tick: after the row of its own
    /// record, epochs opened before anything closes them.
    fn order(&self) -> (u64, u8) {
        match self {
            Control::SnapshotOpened { seq, .. } => (*seq, 1),
            Control::Truncate { position, .. } => (position.seq, 2),
            Control::SnapshotClosed { seq, .. } => (*seq, 2),
            Control::SnapshotEnded { seq, .. } => (*seq, 3),
            // after every change of its tick
            Control::Checkpoint { .. } => (u64::MAX, u8::MAX),
        }
    }
}

/// The worker a key belongs to (stable across runs, independent of the worker count's history).
pub fn key_hash(table: Table, key: i64) -> u64 {
    let mut h = FxHasher::default();
    (table as u8, key).hash(&mut h);
    h.finish()
}

enum Pending {
    Row(RowChange),
    Control(Control),
}

impl Pending {
    /// Row events before table-wide events of the same record.
    fn order(&self) -> (u64, u8) {
        match self {
            Pending::Row(r) => (r.position.seq, 0),
            Pending::Control(c) => c.order(),
        }
    }
}

/// Builds the upsert operator over `state` (shared with the worker loop, which reads it for
/// `--rows` and metrics).
///
/// Records carry their own tick: in timely 0.32 one message may travel under several times (a
/// stamp), so the message's capability does not say which tick a record belongs to.
pub fn render<'s>(
    changes: StreamVec<'s, Tick, (RowChange, Tick)>,
    controls: StreamVec<'s, Tick, (Control, Tick)>,
    state: Rc<RefCell<UpsertState>>,
    images: Option<ImageSink>,
) -> VecCollection<'s, Tick, Row> {
    let (worker, workers) = (changes.scope().index(), changes.scope().peers());
    let by_key = Exchange::new(|(c, _): &(RowChange, Tick)| key_hash(c.table, c.key));
    changes
        .binary_frontier(controls, by_key, Pipeline, "upsert", move |_cap, _info| {
            let mut stash: BTreeMap<Tick, (Capability<Tick>, Vec<Pending>)> = BTreeMap::new();
            let mut out: Vec<(Row, isize)> = Vec::new();
            move |(rows_in, rows_frontier), (ctl_in, ctl_frontier), output| {
                rows_in.for_each(|cap, data| {
                    for (change, tick) in data.drain(..) {
                        let e = stash
                            .entry(tick)
                            .or_insert_with(|| (cap.delayed(&tick, 0), Vec::new()));
                        e.1.push(Pending::Row(change));
                    }
                });
                ctl_in.for_each(|cap, data| {
                    for (control, tick) in data.drain(..) {
                        let e = stash
                            .entry(tick)
                            .or_insert_with(|| (cap.delayed(&tick, 0), Vec::new()));
                        e.1.push(Pending::Control(control));
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    let tick = *entry.key();
                    if rows_frontier.less_equal(&tick) || ctl_frontier.less_equal(&tick) {
                        break;
                    }
                    let (cap, mut pending) = entry.remove();
                    pending.sort_by_key(Pending::order);
                    let mut st = state.borrow_mut();
                    for p in pending {
                        match p {
                            Pending::Row(change) => st.apply(change, &mut out),
                            Pending::Control(Control::Truncate { table, position }) => {
                                st.truncate(table, position, &mut out)
                            }
                            Pending::Control(Control::SnapshotOpened { table, coords, .. }) => {
                                st.open_snapshot(table, coords)
                            }
                            Pending::Control(Control::SnapshotClosed { table, coords, .. }) => {
                                st.close_snapshot(table, coords, &mut out)
                            }
                            Pending::Control(Control::SnapshotEnded { coords, .. }) => {
                                st.end_snapshot(coords, &mut out)
                            }
                            Pending::Control(Control::Checkpoint { request }) => {
                                if let Some(sink) = &images {
                                    let (tables, open_snapshots) = st.image();
                                    (sink.0)(WorkerImage {
                                        request,
                                        tick,
                                        worker,
                                        workers,
                                        tables,
                                        open_snapshots,
                                    });
                                }
                            }
                        }
                    }
                    let mut session = output.session(&cap);
                    for (row, diff) in out.drain(..) {
                        session.give((row, tick, diff));
                    }
                }
            }
        })
        .as_collection()
}
