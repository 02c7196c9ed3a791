//! Upsert by primary key: the current row and position of every key, and the `-old, +new`
//! diffs that feed the dataflow.
//!
//! # Order keys
//! Every stored entry keeps the [`Position`] of the event that produced it, deletes included, so
//! a re-delivered or stale event is recognised and dropped (counted) however late it arrives.
//! Retractions always come from the stored row, never from Debezium's `before` image.
//!
//! # Truncates
//! A truncate at position `p` hides every row whose position is before `p`. Rows are not
//! forgotten: a stale event from before the truncate that arrives later is still recognised.
//!
//! # Mark and sweep
//! A blocking snapshot re-reads every row of a table at one binlog coordinate. Rows deleted while
//! the connector was down produce no `d` event, so when a table's snapshot closes
//! (its `last_in_data_collection`, or the snapshot's `last` record for every table it read: see
//! `dataflow::upsert`), every visible row that is older than the snapshot and was not re-read by
//! it is retracted. Only rows *older* than the snapshot can be swept, so a
//! partition-ordered backlog (snapshot rows of one partition read after the close marker of
//! another) at worst shows a transient phantom, and converges.
//!
//! # A note on state size
//! One entry per key ever seen: a 32-byte position and a shared row pointer. Deleted keys keep
//! their entry (that is what makes a late stale replay harmless).

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::change::{ChangeKind, Coords, Freshness, Position, RowChange};
use crate::checkpoint::{StoredEntry, TableImage, TableMeta};
use crate::model::{Key, Row, Table};

/// What the upsert did with events, for metrics and for the replay summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertCounters {
    /// Events that changed the state.
    pub applied: u64,
    /// Events with the same source coordinates as the stored one (re-deliveries): dropped.
    pub duplicates: u64,
    /// Events older than the stored one: dropped.
    pub stale: u64,
    /// Deletes or tombstones for keys never seen: recorded, nothing to retract.
    pub unknown_deletes: u64,
    /// Rows retracted by a truncate.
    pub truncated: u64,
    /// Rows retracted by a snapshot sweep.
    pub swept: u64,
}

impl UpsertCounters {
    /// Adds another set of counters into this one.
    pub fn add(&mut self, o: &UpsertCounters) {
        self.applied += o.applied;
        self.duplicates += o.duplicates;
        self.stale += o.stale;
        self.unknown_deletes += o.unknown_deletes;
        self.truncated += o.truncated;
        self.swept += o.swept;
    }
}

#[derive(Clone, Debug)]
struct Entry {
    position: Position,
    row: Option<Row>,
}

#[derive(Default)]
struct TableState {
    entries: FxHashMap<Key, Entry>,
    /// Rows positioned before this are hidden (the latest truncate).
    truncated_before: Option<Position>,
    /// Keys re-read by each open snapshot, by the snapshot's coordinate.
    snapshot_reads: BTreeMap<Coords, FxHashSet<Key>>,
    /// The coordinate of the last snapshot that closed for this table.
    last_closed: Option<Coords>,
}

/// Whether a row at `position` is hidden by a truncate cut at `cut`.
fn hidden_by(cut: Option<Position>, position: &Position) -> bool {
    position.hidden_by(cut)
}

impl TableState {
    fn visible<'a>(&self, e: &'a Entry) -> Option<&'a Row> {
        if hidden_by(self.truncated_before, &e.position) {
            None
        } else {
            e.row.as_ref()
        }
    }
}

/// The upsert state of one worker (it owns the keys that hash to it).
#[derive(Default)]
pub struct UpsertState {
    tables: [TableState; Table::COUNT],
    /// What happened so far.
    pub counters: UpsertCounters,
}

impl UpsertState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one row event, pushing `(row, diff)` updates for the dataflow into `out`.
    pub fn apply(&mut self, change: RowChange, out: &mut Vec<(Row, isize)>) {
        let RowChange {
            table,
            key,
            kind,
            position,
            snapshot,
        } = change;
        let t = &mut self.tables[table.index()];
        if snapshot.marks() {
            if let Some(c) = position.coords {
                if t.last_closed.is_none_or(|closed| c > closed) {
                    t.snapshot_reads.entry(c).or_default().insert(key);
                }
            }
        }
        let truncated_before = t.truncated_before;
        let hidden = |p: &Position| hidden_by(truncated_before, p);
        let Some(entry) = t.entries.get_mut(&key) else {
            match kind {
                ChangeKind::Upsert(row) => {
                    if !hidden(&position) {
                        out.push((row.clone(), 1));
                    }
                    t.entries.insert(
                        key,
                        Entry {
                            position,
                            row: Some(row),
                        },
                    );
                    self.counters.applied += 1;
                }
                ChangeKind::Delete => {
                    t.entries.insert(
                        key,
                        Entry {
                            position,
                            row: None,
                        },
                    );
                    self.counters.unknown_deletes += 1;
                }
                ChangeKind::Tombstone => self.counters.unknown_deletes += 1,
            }
            return;
        };
        if let ChangeKind::Tombstone = kind {
            // A tombstone has no position of its own; it only matters if its `d` was compacted away.
            if let Some(old) = entry.row.take() {
                if !hidden(&entry.position) {
                    out.push((old, -1));
                }
                entry.position.seq = entry.position.seq.max(position.seq);
                self.counters.applied += 1;
            }
            return;
        }
        match position.freshness(&entry.position) {
            Freshness::Duplicate => {
                self.counters.duplicates += 1;
                return;
            }
            Freshness::Stale => {
                self.counters.stale += 1;
                return;
            }
            Freshness::Newer => {}
        }
        if let Some(old) = entry.row.take() {
            if !hidden(&entry.position) {
                out.push((old, -1));
            }
        }
        let row = match kind {
            ChangeKind::Upsert(row) => Some(row),
            _ => None,
        };
        if let Some(new) = &row {
            if !hidden(&position) {
                out.push((new.clone(), 1));
            }
        }
        *entry = Entry { position, row };
        self.counters.applied += 1;
    }

    /// Applies a truncate of `table` at `position`: rows before it disappear.
    ///
    /// Every row's visibility is re-evaluated under the old and the new cut, and both directions
    /// are emitted: with events that lack coordinates, "before" is not transitive, so a newer
    /// truncate can un-hide a row an older one hid.
    pub fn truncate(&mut self, table: Table, position: Position, out: &mut Vec<(Row, isize)>) {
        let t = &mut self.tables[table.index()];
        if t.truncated_before.is_some_and(|tb| !tb.before(&position)) {
            return;
        }
        let old = t.truncated_before;
        let mut n = 0;
        for e in t.entries.values() {
            let Some(row) = &e.row else { continue };
            let was = !hidden_by(old, &e.position);
            let is = !e.position.before(&position);
            if was && !is {
                out.push((row.clone(), -1));
                n += 1;
            } else if !was && is {
                out.push((row.clone(), 1));
            }
        }
        t.truncated_before = Some(position);
        self.counters.truncated += n;
    }

    /// Closes the snapshot of `table` taken at `coords`: retracts rows older than it that it did
    /// not re-read.
    pub fn close_snapshot(&mut self, table: Table, coords: Coords, out: &mut Vec<(Row, isize)>) {
        let t = &mut self.tables[table.index()];
        if t.last_closed.is_some_and(|c| c >= coords) {
            return;
        }
        let reread = t.snapshot_reads.remove(&coords).unwrap_or_default();
        t.snapshot_reads.retain(|c, _| *c > coords);
        t.last_closed = Some(coords);
        let truncated_before = t.truncated_before;
        let mut n = 0;
        for (key, e) in t.entries.iter_mut() {
            let older = e.position.coords.is_some_and(|c| c < coords);
            if older && e.row.is_some() && !reread.contains(key) {
                let hidden = hidden_by(truncated_before, &e.position);
                if let Some(old) = e.row.take() {
                    if !hidden {
                        out.push((old, -1));
                        n += 1;
                    }
                }
            }
        }
        self.counters.swept += n;
    }

    /// Opens `table`'s epoch for the snapshot at `coords` (a read of it was routed somewhere),
    /// unless that snapshot already closed for the table.
    pub fn open_snapshot(&mut self, table: Table, coords: Coords) {
        let t = &mut self.tables[table.index()];
        if t.last_closed.is_none_or(|closed| coords > closed) {
            t.snapshot_reads.entry(coords).or_default();
        }
    }

    /// The snapshot at `coords` ended: closes it for every table whose epoch it opened. Every
    /// worker saw the same [`open_snapshot`](Self::open_snapshot) calls, so all close the same
    /// tables, and each sweeps its own keys.
    pub fn end_snapshot(&mut self, coords: Coords, out: &mut Vec<(Row, isize)>) {
        for table in Table::ALL {
            if self.tables[table.index()]
                .snapshot_reads
                .contains_key(&coords)
            {
                self.close_snapshot(table, coords, out);
            }
        }
    }

    /// Every visible row this worker holds, for `--rows` and for tests.
    pub fn rows(&self) -> impl Iterator<Item = &Row> + '_ {
        self.tables
            .iter()
            .flat_map(|t| t.entries.values().filter_map(|e| t.visible(e)))
    }

    /// Stored entries per table (indexed by [`Table::index`]), for state-size metrics.
    pub fn entries_by_table(&self) -> [usize; Table::COUNT] {
        std::array::from_fn(|i| self.tables[i].entries.len())
    }

    /// Number of stored entries (visible, deleted and hidden), for state-size metrics.
    pub fn entries(&self) -> usize {
        self.tables.iter().map(|t| t.entries.len()).sum()
    }

    /// A copy of the state for a checkpoint (rows are shared, not copied), and how many
    /// blocking snapshots are open (their re-read sets are not in the copy).
    pub fn image(&self) -> (Vec<TableImage>, usize) {
        let tables = Table::ALL
            .iter()
            .map(|&table| {
                let t = &self.tables[table.index()];
                TableImage {
                    table,
                    meta: TableMeta {
                        truncated_before: t.truncated_before,
                        last_closed: t.last_closed,
                    },
                    entries: t
                        .entries
                        .iter()
                        .map(|(&key, e)| StoredEntry {
                            key,
                            position: e.position,
                            row: e.row.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        let open = self.tables.iter().map(|t| t.snapshot_reads.len()).sum();
        (tables, open)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::change::SnapshotMark;
    use crate::model::Responsible;

    fn resp(id: Key, name: &str) -> Row {
        Row::Responsible(Arc::new(Responsible {
            id,
            full_name: name.into(),
            agency: "ECU 911".into(),
            phone: None,
            email: None,
            active: true,
            version: 1,
        }))
    }

    fn pos(pos: u64, seq: u64, streamed: bool) -> Position {
        Position {
            coords: Some(Coords {
                file: 1,
                pos,
                row: 0,
                streamed,
            }),
            seq,
        }
    }

    fn ev(key: Key, kind: ChangeKind, p: Position, snapshot: SnapshotMark) -> RowChange {
        RowChange {
            table: Table::ResponsibleContacts,
            key,
            kind,
            position: p,
            snapshot,
        }
    }

    fn up(key: Key, name: &str, p: Position) -> RowChange {
        ev(
            key,
            ChangeKind::Upsert(resp(key, name)),
            p,
            SnapshotMark::Streamed,
        )
    }

    #[test]
    fn update_retracts_the_stored_row() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(up(1, "b", pos(20, 2, true)), &mut out);
        assert_eq!(
            out,
            vec![(resp(1, "a"), 1), (resp(1, "a"), -1), (resp(1, "b"), 1)]
        );
    }

    #[test]
    fn duplicates_and_stale_events_are_dropped_and_counted() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(up(1, "b", pos(20, 2, true)), &mut out);
        out.clear();
        s.apply(up(1, "b", pos(20, 3, true)), &mut out); // re-delivery
        s.apply(up(1, "a", pos(10, 4, true)), &mut out); // stale replay
        assert!(out.is_empty());
        assert_eq!((s.counters.duplicates, s.counters.stale), (1, 1));
    }

    #[test]
    fn delete_then_stale_insert_stays_deleted() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(
            ev(
                1,
                ChangeKind::Delete,
                pos(20, 2, true),
                SnapshotMark::Streamed,
            ),
            &mut out,
        );
        s.apply(
            ev(
                1,
                ChangeKind::Tombstone,
                Position {
                    coords: None,
                    seq: 3,
                },
                SnapshotMark::Streamed,
            ),
            &mut out,
        );
        s.apply(up(1, "a", pos(10, 4, true)), &mut out);
        assert_eq!(out, vec![(resp(1, "a"), 1), (resp(1, "a"), -1)]);
        assert_eq!(s.rows().count(), 0);
    }

    #[test]
    fn tombstone_deletes_when_its_delete_was_compacted_away() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(
            ev(
                1,
                ChangeKind::Tombstone,
                Position {
                    coords: None,
                    seq: 2,
                },
                SnapshotMark::Streamed,
            ),
            &mut out,
        );
        assert_eq!(out, vec![(resp(1, "a"), 1), (resp(1, "a"), -1)]);
    }

    #[test]
    fn unknown_delete_is_a_counted_no_op() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(
            ev(
                9,
                ChangeKind::Delete,
                pos(5, 1, true),
                SnapshotMark::Streamed,
            ),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(s.counters.unknown_deletes, 1);
    }

    #[test]
    fn truncate_hides_older_rows_only() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(up(2, "b", pos(30, 3, true)), &mut out);
        out.clear();
        s.truncate(Table::ResponsibleContacts, pos(20, 2, true), &mut out);
        assert_eq!(out, vec![(resp(1, "a"), -1)]);
        // a late event from before the truncate stays hidden
        out.clear();
        s.apply(up(3, "c", pos(15, 4, true)), &mut out);
        assert!(out.is_empty());
        assert_eq!(s.rows().count(), 1);
    }

    #[test]
    fn resnapshot_sweeps_rows_it_did_not_reread() {
        let mut s = UpsertState::new();
        let mut out = vec![];
        s.apply(up(1, "a", pos(10, 1, true)), &mut out);
        s.apply(up(2, "b", pos(11, 2, true)), &mut out);
        s.apply(up(3, "c", pos(90, 3, true)), &mut out); // newer than the snapshot: kept
        out.clear();
        let snap = pos(50, 0, false);
        let at = |seq| Position { seq, ..snap };
        s.apply(
            ev(
                1,
                ChangeKind::Upsert(resp(1, "a")),
                at(4),
                SnapshotMark::First,
            ),
            &mut out,
        );
        s.apply(
            ev(
                9,
                ChangeKind::Upsert(resp(9, "z")),
                at(5),
                SnapshotMark::Last,
            ),
            &mut out,
        );
        s.close_snapshot(
            Table::ResponsibleContacts,
            snap.coords.expect("coords"),
            &mut out,
        );
        // 1 re-read (same content: -a +a), 9 new, 2 swept
        let mut names: Vec<_> = s.rows().map(|r| r.key()).collect();
        names.sort();
        assert_eq!(names, vec![1, 3, 9]);
        assert_eq!(s.counters.swept, 1);
        assert!(out.contains(&(resp(2, "b"), -1)));
    }
}
