//! The engine's side of checkpoints: an image of the upsert state at the end of a tick, taken
//! on every worker, and what a restart feeds back to rebuild it.
//!
//! # Taking one
//! A source asks for an image by pushing `Control::Checkpoint` (of `dataflow`) at a
//! tick of its own (`PushFeed::push_control`). The control is broadcast, so every worker's
//! upsert operator sees it; each applies the whole tick first (the control sorts last), then
//! copies its state into a [`WorkerImage`] and hands it to the [`ImageSink`] of
//! [`EngineConfig`](crate::EngineConfig). The copy holds `Arc`s to the rows, not the rows, so
//! the worker pauses for a pointer copy per key; encoding and writing happen on the caller's
//! thread. The source knows which positions that tick covers: the images of all workers and
//! those positions make a checkpoint.
//!
//! # Restoring one
//! The image is the upsert state only: arrangements and views are derived and rebuilt by the
//! dataflow from the restored rows. A restart pushes, before anything else:
//! 1. one tick with each table's truncate cut and last closed snapshot as controls
//!    (`Control::restoring` in `dataflow`): applied to an empty table they set the cut and
//!    change no row;
//! 2. then every stored entry as a plain row event ([`TableImage::change`]): a row as an
//!    upsert, a deleted key as a delete, each at its stored position. On an empty state that
//!    recreates the entry exactly (a row positioned before the cut stays hidden; a deleted key
//!    keeps its position, so a stale replay of it is still dropped), and the exchange routes it
//!    to the worker that owns the key, so the worker count may change between runs.
//!
//! The upsert counters count the restored events (as applied rows and unknown deletes): they
//! say what this process did since it started.
//!
//! An open blocking snapshot (keys re-read so far, not yet swept) is not part of an image: the
//! image says how many are open and the caller skips such a checkpoint (it only happens while
//! a capture or Debezium snapshot is being read).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::change::{Change, ChangeKind, Coords, Position, RowChange, SnapshotMark};
use crate::model::{Key, Row, Table};
use crate::tick::Tick;

/// One stored key: the position of its last event and its row (`None`: deleted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// The primary key.
    pub key: Key,
    /// Where the last applied event for the key sits.
    pub position: Position,
    /// The current row; `None` once deleted.
    pub row: Option<Row>,
}

/// The table-wide part of a table's upsert state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Rows positioned before this are hidden (the latest truncate).
    pub truncated_before: Option<Position>,
    /// The coordinate of the last blocking snapshot that closed for the table.
    pub last_closed: Option<Coords>,
}

impl TableMeta {
    /// Whether a stored row at `position` is hidden by the table's truncate cut: the state
    /// keeps it, but no view shows it (an export of the state must not either).
    pub fn hides(&self, position: &Position) -> bool {
        position.hidden_by(self.truncated_before)
    }
}

/// One table of one worker's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableImage {
    /// The table.
    pub table: Table,
    /// Its table-wide state (the same on every worker).
    pub meta: TableMeta,
    /// The keys this worker owns, unordered.
    pub entries: Vec<StoredEntry>,
}

impl TableImage {
    /// The row event that recreates `entry` of `table` on an empty state.
    pub fn change(table: Table, entry: StoredEntry) -> Change {
        let kind = match entry.row {
            Some(row) => ChangeKind::Upsert(row),
            None => ChangeKind::Delete,
        };
        Change::Row(RowChange {
            table,
            key: entry.key,
            kind,
            position: entry.position,
            snapshot: SnapshotMark::Streamed,
        })
    }
}

/// One worker's upsert state at the end of `tick`.
#[derive(Clone, Debug)]
pub struct WorkerImage {
    /// The request the source pushed (`Control::Checkpoint`).
    pub request: u64,
    /// The tick the image is at: every change of every tick up to it, none after.
    pub tick: Tick,
    /// This worker.
    pub worker: usize,
    /// How many workers send an image for this request.
    pub workers: usize,
    /// One per table, in [`Table::ALL`] order.
    pub tables: Vec<TableImage>,
    /// Blocking snapshots still open (re-read keys not yet swept), over all tables. A
    /// checkpoint needs 0: the re-read sets are not in the image.
    pub open_snapshots: usize,
}

/// Where workers hand their images (called on the worker threads: return quickly).
#[derive(Clone)]
pub struct ImageSink(pub Arc<dyn Fn(WorkerImage) + Send + Sync>);

impl std::fmt::Debug for ImageSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageSink")
    }
}
