//! The change model: the one type every source produces, and the positions that order it.
//!
//! A source turns each Debezium record into a [`Change`] (a row event, a truncate, or a
//! tombstone). The engine never reads Debezium's `before` image: retractions come from the
//! upsert state, which is what makes duplicates, replays and partial before-images harmless.

use serde::{Deserialize, Serialize};

use crate::model::{Key, Row, Table};

/// Where an event sits in the source database's log.
///
/// For MySQL this is the binlog coordinate `(file number, pos, row)`; `streamed` breaks ties in
/// favour of a streamed event over a snapshot read taken at the same coordinate (every snapshot
/// row of one snapshot carries the same coordinate). Compare whole coordinates, never `pos`
/// alone: `pos` restarts in every binlog file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coords {
    /// Binlog file number (`mysql-bin.000042` -> 42).
    pub file: u32,
    /// Position of the rows event in that file.
    pub pos: u64,
    /// Row index inside a multi-row event.
    pub row: u32,
    /// `false` for snapshot reads, `true` for streamed events.
    pub streamed: bool,
}

/// The order key of one event: its source coordinates (when the source has them) and the
/// ingestion sequence number, which orders events without coordinates and breaks ties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Source-log coordinates, if the record carried them.
    pub coords: Option<Coords>,
    /// Ingestion order: the line number in a dump, the offset order of a consumer.
    pub seq: u64,
}

/// How a new event relates to the one already applied for the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Strictly newer: apply it.
    Newer,
    /// Same source coordinates: a re-delivery. Drop it.
    Duplicate,
    /// Older than what was applied: a stale replay. Drop it.
    Stale,
}

impl Position {
    /// Classifies `self` against the position stored for its key. Coordinates decide when both
    /// events carry them; otherwise the ingestion order does.
    pub fn freshness(&self, stored: &Position) -> Freshness {
        match (self.coords, stored.coords) {
            (Some(a), Some(b)) if a > b => Freshness::Newer,
            (Some(a), Some(b)) if a == b => Freshness::Duplicate,
            (Some(_), Some(_)) => Freshness::Stale,
            _ if self.seq > stored.seq => Freshness::Newer,
            _ if self.seq == stored.seq => Freshness::Duplicate,
            _ => Freshness::Stale,
        }
    }

    /// Whether `self` happened before `other` (coordinates first, ingestion order otherwise).
    pub fn before(&self, other: &Position) -> bool {
        match (self.coords, other.coords) {
            (Some(a), Some(b)) => (a, self.seq) < (b, other.seq),
            _ => self.seq < other.seq,
        }
    }

    /// Whether a row at `self` is hidden by a truncate cut at `cut` (rows before it are gone;
    /// the upsert state keeps them only to recognise stale events).
    pub fn hidden_by(&self, cut: Option<Position>) -> bool {
        cut.is_some_and(|c| self.before(&c))
    }
}

/// Debezium's `source.snapshot` marker of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SnapshotMark {
    /// A streamed event (`"false"`, absent, or the old boolean `null`).
    Streamed,
    /// `"first"`: the first record of a snapshot.
    First,
    /// `"first_in_data_collection"`.
    FirstInTable,
    /// `"true"`: a snapshot record in the middle.
    Middle,
    /// `"last_in_data_collection"`: the last record of this table's snapshot.
    LastInTable,
    /// `"last"`: the last record of the whole snapshot.
    Last,
    /// `"incremental"`: an incremental-snapshot read, interleaved with streaming.
    Incremental,
}

impl SnapshotMark {
    /// Whether the record was read by a snapshot (of any kind).
    pub fn is_snapshot(self) -> bool {
        !matches!(self, SnapshotMark::Streamed)
    }

    /// Whether the record closes its table's snapshot: the moment to sweep rows it did not re-read.
    pub fn closes_table(self) -> bool {
        matches!(self, SnapshotMark::LastInTable | SnapshotMark::Last)
    }

    /// Whether the record takes part in mark-and-sweep (a blocking snapshot, not incremental).
    pub fn marks(self) -> bool {
        matches!(
            self,
            SnapshotMark::First
                | SnapshotMark::FirstInTable
                | SnapshotMark::Middle
                | SnapshotMark::LastInTable
                | SnapshotMark::Last
        )
    }
}

/// What an event does to its key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChangeKind {
    /// `c`, `r`, `u`: the row for this key is now this.
    Upsert(Row),
    /// `d`, or a flattened record with `__deleted: "true"`: no row for this key.
    Delete,
    /// A tombstone (null value). Deletes the key only if the `d` before it was lost to compaction,
    /// so it never counts as a newer event at the same position.
    Tombstone,
}

/// One decoded source event for one key of one table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowChange {
    /// The table.
    pub table: Table,
    /// The primary key.
    pub key: Key,
    /// What happens to the key.
    pub kind: ChangeKind,
    /// Where the event sits in the source log.
    pub position: Position,
    /// The snapshot marker.
    pub snapshot: SnapshotMark,
}

/// Anything a source hands the engine.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    /// A row event for one key.
    Row(RowChange),
    /// `op: "t"`: every row of the table older than `position` is gone.
    Truncate {
        /// The truncated table.
        table: Table,
        /// Where the truncate happened.
        position: Position,
    },
}

impl Change {
    /// The ingestion sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Change::Row(r) => r.position.seq,
            Change::Truncate { position, .. } => position.seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: u32, pos: u64, row: u32, streamed: bool, seq: u64) -> Position {
        Position {
            coords: Some(Coords {
                file,
                pos,
                row,
                streamed,
            }),
            seq,
        }
    }

    #[test]
    fn file_number_beats_pos() {
        // pos restarts in every binlog file
        assert_eq!(
            at(8, 4, 0, true, 1).freshness(&at(7, 90_000, 0, true, 0)),
            Freshness::Newer
        );
        assert_eq!(
            at(7, 90_000, 0, true, 2).freshness(&at(8, 4, 0, true, 1)),
            Freshness::Stale
        );
    }

    #[test]
    fn rows_of_one_event_are_ordered() {
        assert_eq!(
            at(1, 10, 1, true, 5).freshness(&at(1, 10, 0, true, 9)),
            Freshness::Newer
        );
    }

    #[test]
    fn redelivery_is_a_duplicate() {
        assert_eq!(
            at(3, 10, 0, true, 50).freshness(&at(3, 10, 0, true, 5)),
            Freshness::Duplicate
        );
    }

    #[test]
    fn streamed_beats_snapshot_at_same_coords() {
        assert_eq!(
            at(3, 10, 0, true, 1).freshness(&at(3, 10, 0, false, 2)),
            Freshness::Newer
        );
    }

    #[test]
    fn without_coords_ingestion_order_decides() {
        let a = Position {
            coords: None,
            seq: 3,
        };
        let b = Position {
            coords: None,
            seq: 4,
        };
        assert_eq!(b.freshness(&a), Freshness::Newer);
        assert_eq!(a.freshness(&b), Freshness::Stale);
        assert!(a.before(&b));
    }
}
