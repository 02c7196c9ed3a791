//! The embedded log: the API's writes, appended and fsync'd as Debezium-shaped events to a file
//! under the data directory, so that a restart rebuilds the engine by replaying it through the
//! same decoder as any other source (DESIGN.md, "Embedded log"). No external service is needed.
//!
//! # Layout
//!
//! One directory, one segment file `lpm-log.000001`. Each *record* is one transaction: the
//! [`EncodedEvent`]s of its row changes, in order. A record is framed as
//!
//! ```text
//! magic 0xFA | version 1 | payload length: u32 LE | crc32(payload): u32 LE | payload | '\n'
//! ```
//!
//! where the payload is the record as JSON (`{"seq":N,"events":[{"topic","key","value","ts_ms"}]}`),
//! so the file stays readable with `less` and `lpm log export` turns it into a `kcat -J` dump.
//! The magic byte can never occur in UTF-8 JSON, and a zero-filled tail (a crash after the size
//! grew but before the data landed) fails on it. Rotation is not implemented: segment names
//! carry a number so that it can be, and positions (below) do not depend on the segment.
//!
//! # Positions
//!
//! Every record gets a sequence number `seq`, 1, 2, 3, ... in file order, stored in the record,
//! so it survives restarts (open resumes at the last good record's `seq + 1`, or past the valid
//! records a mid-log cut dropped: the `seq` of an acknowledged record is never reused). The events of a
//! record carry `source.file = "lpm-log.000001"`, `source.pos = seq` and `source.row` = their index,
//! which is the order the decoder and `oracle.py` use: `(file number, pos, row)`. To let the caller
//! stamp `pos` before the write, [`LogWriter::append_with`] hands `seq` to a closure that builds the
//! events *under the queue lock*, so sequence order, queue order and file order are one order.
//! [`Appended::offset`] is the record's byte offset in the segment: unique and increasing too,
//! but only known once the writer thread has placed the record.
//!
//! # Durability and group commit
//!
//! One writer thread takes every queued record, writes them with one `write_all`, calls
//! `sync_data` (fdatasync) once, calls the `on_durable` hook with the batch, then wakes the
//! appenders. An append returns only after its record is on disk.
//!
//! If a write or an fsync fails, the writer is poisoned: the batch, everything queued and every
//! later append fail with [`LogError::Io`], and nothing is acknowledged again until a restart.
//! Retrying fsync is unsafe ("fsyncgate", PostgreSQL 2018): Linux reports a writeback error once,
//! may drop the dirty pages and clear the error, so a second fsync can succeed while the data is
//! gone. A restart re-reads what actually reached the disk, and the CRCs decide what counts. An
//! error means "unknown", not "not written": a failed batch may still be found on restart.
//!
//! # Recovery
//!
//! [`EmbeddedLog::open`] scans every record (header, length, CRC, trailer, JSON, increasing
//! `seq`). The first bad record ends the log: the file is truncated there (`ftruncate` + fsync)
//! and the cut is reported ([`CutReport`], plus a `warn!`), so a record is never half-applied.
//! A torn tail (partial header, short payload) is the normal result of a crash mid-write and
//! loses only unacknowledged data. A bad record *followed by valid ones* is media corruption:
//! we still cut at the first bad record, because applying later transactions without an
//! earlier one would build a state that never existed, and a prefix of the history is always a
//! state that did. The valid records dropped that way are counted (`records_dropped`, logged at
//! error level), and every cut byte is first copied to `lpm-log.000001.cut-<offset>` beside the
//! segment, so nothing is destroyed without a copy.
//!
//! Dropping valid, acknowledged records is an operator's decision, not a start-up default:
//! [`EmbeddedLog::open`] refuses such a log with [`LogError::CorruptBeforeEnd`] and leaves the
//! file untouched; [`EmbeddedLog::open_with`] and [`MidLogCorruption::CutAndDrop`] (the
//! `--allow-log-cut` flag of `lpm serve`) cut it as described. A torn tail is always cut.
//!
//! Two processes must not open the same directory: `lpm serve` holds the data directory's lock
//! ([`crate::lock::DataDirLock`]) for its whole life.

mod export;
mod frame;
mod open;
mod segments;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::debezium::encode::EncodedEvent;
pub use export::{export_kcat, ExportSummary};
pub use frame::CutReason;
pub use open::{EmbeddedLog, MidLogCorruption, Records};
pub use writer::{DurableHook, LogWriter};

/// The (only) segment's file name; also the `source.file` of the events it holds.
pub const SEGMENT: &str = "lpm-log.000001";
/// The largest payload a record may have. Bounds the allocation a corrupt length can cause.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// One record: the events of one transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Sequence number: 1, 2, 3, ... in file order, across restarts.
    pub seq: u64,
    /// The Kafka records of the transaction.
    pub events: Vec<EncodedEvent>,
    /// Who made the write (the signed-in user), so every change is attributed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// The record's sequence number (the events' `source.pos`).
    pub seq: u64,
}

/// A truncation made (or, for exports, a stop) at the first bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutReport {
    /// Byte offset of the first bad record: the new end of the segment.
    pub offset: u64,
    /// Bytes removed (from `offset` to the old end).
    pub bytes_cut: u64,
    /// What was wrong.
    pub reason: CutReason,
    /// Valid records found after the bad one and dropped with it (0 for a torn tail).
    pub records_dropped: u64,
    /// Where the removed bytes were saved.
    pub saved_to: Option<PathBuf>,
}

/// What [`EmbeddedLog::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Good records.
    pub records: u64,
    /// Events in them.
    pub events: u64,
    /// Offset of the last good record.
    pub last_offset: Option<u64>,
    /// Sequence number of the last good record.
    pub last_seq: Option<u64>,
    /// The segment's length after recovery.
    pub end: u64,
    /// The truncation, if the log did not end cleanly.
    pub cut: Option<CutReport>,
}

/// Embedded-log failures.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed; after a write or fsync failure every append fails with this.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A record that was valid at open no longer is (the file changed underneath us).
    #[error("{path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// The record's offset.
        offset: u64,
        /// What is wrong.
        reason: CutReason,
    },
    /// A record too large for the format.
    #[error("a record of {bytes} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// Its payload size.
        bytes: usize,
    },
    /// A record that cannot be serialized.
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// A layout this version cannot read (e.g. more than one segment).
    #[error("unsupported log layout in {path}: {detail}")]
    Unsupported {
        /// The directory.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The writer thread is gone (it panicked, e.g. in the `on_durable` hook).
    #[error("the log writer thread stopped")]
    Closed,
    /// A bad record is followed by valid ones (media corruption, not a torn tail) and the
    /// caller did not allow cutting them off; the file was left as it was.
    #[error(
        "{path} is corrupt before its end: the record at byte {offset} is bad ({reason}) and \
         {records_dropped} valid records follow it; refusing to start, which would drop them. \
         Keep a copy of the file, then start with --allow-log-cut to cut the log at that record \
         (the cut bytes are saved beside it), or restore the file from a backup"
    )]
    CorruptBeforeEnd {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: CutReason,
        /// Valid records after it.
        records_dropped: u64,
    },
}

pub(super) fn io_err<'a>(
    context: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        context,
        path: path.to_path_buf(),
        source,
    }
}
