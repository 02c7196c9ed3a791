//! The embedded log: the API's writes, appended and fsync'd as Debezium-shaped events to
//! segment files under the data directory, so that a restart rebuilds the engine by replaying
//! them through the same decoder as any other source (DESIGN.md, "Embedded log"). No external
//! service is needed.
//!
//! # Layout
//!
//! One directory of numbered segments, `lpm-log.000001`, `lpm-log.000002`, ... (the first may
//! be above 1 once old ones are retired; a gap in the numbers is refused with
//! [`LogError::SegmentGap`]). Beside them: `lpm-seq-floor` (below), and the `*.cut-*` copies a
//! cut keeps. Any other name is ignored. Each *record* is one transaction: the
//! [`EncodedEvent`]s of its row changes, in order. A record is framed as
//!
//! ```text
//! magic 0xFA | version 1 | payload length: u32 LE | crc32(payload): u32 LE | payload | '\n'
//! ```
//!
//! where the payload is the record as JSON (`{"seq":N,"events":[{"topic","key","value","ts_ms"}]}`),
//! so a segment stays readable with `less` and `lpm log export` turns the log into a `kcat -J`
//! dump. The magic byte can never occur in UTF-8 JSON, and a zero-filled tail (a crash after the
//! size grew but before the data landed) fails on it. A record never spans segments.
//!
//! # Positions
//!
//! Every record gets a sequence number `seq`, 1, 2, 3, ... in log order, across segments,
//! stored in the record, so it survives restarts (open resumes at the last good record's
//! `seq + 1`, or past the records a mid-log cut dropped or retirement removed: the `seq` of an
//! acknowledged record is never reused, which `lpm-seq-floor` guarantees once those records are
//! gone). The events of a record carry `source.file = "lpm-log.000001"` ([`SEGMENT`]) whatever
//! segment the record lands in, `source.pos = seq` and `source.row` = their index, which is the
//! order the decoder and `oracle.py` use: `(file number, pos, row)`. The caller stamps them, and
//! keeps `source.file` fixed so that a position never depends on rotation. To let the caller
//! stamp `pos` before the write, [`LogWriter::append_with`] hands `seq` to a closure that builds
//! the events *under the queue lock*, so sequence order, queue order and file order are one
//! order. [`Appended`] also says where the record landed (segment number and byte offset,
//! [`RecordAt`]), known only once the writer thread has placed it.
//!
//! # Durability, group commit and rotation
//!
//! One writer thread takes every queued record, writes them with one `write_all`, calls
//! `sync_data` (fdatasync) once, calls the `on_durable` hook with the batch, then wakes the
//! appenders. An append returns only after its record is on disk. When a batch leaves the
//! active segment at or over [`LogOptions::segment_bytes`] (default 128 MiB), the thread then
//! creates the next segment (create, fsync the file, fsync the directory) and appends there;
//! a crash between the two leaves an empty last segment, which opens like any other.
//!
//! If a write, an fsync or the creation of the next segment fails, the writer is poisoned: the
//! batch, everything queued and every later append fail with [`LogError::Io`], and nothing is
//! acknowledged again until a restart. Retrying fsync is unsafe ("fsyncgate", PostgreSQL 2018):
//! Linux reports a writeback error once, may drop the dirty pages and clear the error, so a
//! second fsync can succeed while the data is gone. A restart re-reads what actually reached
//! the disk, and the CRCs decide what counts. An error means "unknown", not "not written": a
//! failed batch may still be found on restart.
//!
//! # Recovery
//!
//! [`EmbeddedLog::open_opts`] lists the segments and scans their records (header, length, CRC,
//! trailer, JSON, `seq` increasing within and across segments). Every segment but the last must
//! end cleanly. The first bad record ends the log: its segment is truncated there (`ftruncate`
//! and fsync), every later segment is moved aside, and the cut is reported ([`CutReport`], plus
//! a `warn!`), so a record is never half-applied. A torn tail (partial header, short payload) of
//! the *last* segment is the normal result of a crash mid-write and loses only unacknowledged
//! data. A bad record *followed by valid ones*, in its segment or in later ones, is media
//! corruption: we still cut at the first bad record, because applying later transactions
//! without an earlier one would build a state that never existed, and a prefix of the history
//! is always a state that did. The valid records dropped that way are counted
//! (`records_dropped`, logged at error level), their highest seq raises `lpm-seq-floor`, the cut
//! bytes are first copied to `lpm-log.NNNNNN.cut-<offset>` beside the segment, and later
//! segments are renamed to `lpm-log.NNNNNN.cut-0` (newest first, each rename fsync'd, so a crash
//! part-way leaves contiguous segments still ending in the bad record): nothing is destroyed
//! without a copy.
//!
//! Dropping valid, acknowledged records is an operator's decision, not a start-up default:
//! [`EmbeddedLog::open`] refuses such a log with [`LogError::CorruptBeforeEnd`] and touches no
//! file; [`MidLogCorruption::CutAndDrop`] (the `--allow-log-cut` flag of `lpm serve`) cuts it as
//! described. A torn tail is always cut.
//!
//! A restart after a checkpoint need not read the whole history: with
//! [`LogOptions::verify_after`] = the checkpoint's seq, a segment whose successor starts at or
//! below `verify_after + 1` holds only records the caller does not need, and only its first
//! record is read (to learn its first seq). The segments after are verified as above.
//! [`EmbeddedLog::records_after`] then reads from the segment holding `verify_after + 1`, never
//! opening the earlier ones.
//!
//! # Retirement
//!
//! [`retire_through`] (or [`LogWriter::retire_through`] on a running log) deletes, or moves into
//! an archive directory, every segment all of whose records are at or below a seq (the one a
//! checkpoint old enough covers), oldest first, each removal fsync'd, never the last segment.
//! It raises `lpm-seq-floor` first, so a log left with only an empty segment still resumes past
//! the retired seqs. [`export_kcat`] reads every retained segment; [`export_kcat_after`] the
//! records after a seq (and [`export_kcat_into`] the same into a [`KcatWriter`] that already
//! wrote a checkpoint's rows, so offsets go on); [`first_retained_seq`] says where the retained
//! history starts. [`SegmentsSummary`] ([`EmbeddedLog::segments`], [`LogWriter::segments`])
//! gives the size for metrics.
//!
//! Two processes must not open the same directory: `lpm serve` holds the data directory's lock
//! ([`crate::lock::DataDirLock`]) for its whole life.

mod export;
mod frame;
mod open;
mod read;
mod retire;
mod segments;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::debezium::encode::EncodedEvent;
pub use export::{
    export_kcat, export_kcat_after, export_kcat_into, first_retained_seq, ExportSummary, KcatWriter,
};
pub use frame::CutReason;
pub use open::EmbeddedLog;
pub use read::Records;
pub use retire::{retire_through, RetireSummary};
pub use segments::segment_name;
pub use writer::{DurableHook, LogWriter};

/// The first segment's file name, and the `source.file` every event of the log carries
/// (stamped by the caller, whatever segment the record lands in, so a position never depends
/// on rotation).
pub const SEGMENT: &str = "lpm-log.000001";
/// The largest payload a record may have. Bounds the allocation a corrupt length can cause.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;
/// The default [`LogOptions::segment_bytes`]: large enough that rotation is rare (one fsync'd
/// create per 128 MiB), small enough that retiring one segment frees a useful amount.
pub const DEFAULT_SEGMENT_BYTES: u64 = 128 << 20;

/// One record: the events of one transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Sequence number: 1, 2, 3, ... in log order, across segments and restarts.
    pub seq: u64,
    /// The Kafka records of the transaction.
    pub events: Vec<EncodedEvent>,
    /// Who made the write (the signed-in user), so every change is attributed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Where a record is: its segment's number and its byte offset in that segment. Ordered like
/// the log (segment, then offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordAt {
    /// The segment's number (`lpm-log.000002` is 2).
    pub segment: u64,
    /// Byte offset of the record in the segment.
    pub offset: u64,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The segment's number.
    pub segment: u64,
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// The record's sequence number (the events' `source.pos`).
    pub seq: u64,
}

impl Appended {
    /// The record's place in the log.
    pub fn at(&self) -> RecordAt {
        RecordAt {
            segment: self.segment,
            offset: self.offset,
        }
    }
}

/// What [`EmbeddedLog::open_opts`] does when a bad record is followed by valid ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MidLogCorruption {
    /// Fail with [`LogError::CorruptBeforeEnd`] and leave every file untouched.
    #[default]
    Refuse,
    /// Cut at the bad record, dropping the valid ones after it (the cut bytes are saved beside
    /// the segment and later segments are moved aside, never deleted).
    CutAndDrop,
}

/// How a log is opened and written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// The writer starts a new segment once a group-commit batch leaves the active one at or
    /// over this size (a record never spans segments, so a segment may exceed it by a batch).
    pub segment_bytes: u64,
    /// What to do with corruption before the end of the log.
    pub on_mid_log: MidLogCorruption,
    /// The highest seq the caller does not need (its checkpoint's log seq): segments holding
    /// only records up to it are not scanned at open (0 verifies everything).
    pub verify_after: u64,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            on_mid_log: MidLogCorruption::Refuse,
            verify_after: 0,
        }
    }
}

/// A truncation made (or, for exports, a stop) at the first bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutReport {
    /// The segment holding the first bad record (the active segment after a cut).
    pub segment: PathBuf,
    /// Byte offset of the first bad record: the new end of that segment.
    pub offset: u64,
    /// Bytes removed from the log: from `offset` to the segment's old end, plus every later
    /// segment.
    pub bytes_cut: u64,
    /// What was wrong.
    pub reason: CutReason,
    /// Valid records found after the bad one and dropped with it, in its segment and the
    /// later ones (0 for a torn tail).
    pub records_dropped: u64,
    /// Where the bytes removed from `segment` were saved.
    pub saved_to: Option<PathBuf>,
    /// Where the later segments were moved (renamed with a `.cut-0` suffix), in log order.
    pub moved_aside: Vec<PathBuf>,
}

/// What [`EmbeddedLog::open_opts`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Good records in the scanned segments.
    pub records: u64,
    /// Events in them.
    pub events: u64,
    /// Where the last good record is.
    pub last_at: Option<RecordAt>,
    /// Sequence number of the last good record.
    pub last_seq: Option<u64>,
    /// The active segment's length after recovery.
    pub end: u64,
    /// The truncation, if the log did not end cleanly.
    pub cut: Option<CutReport>,
    /// Segments in the log after recovery.
    pub segments: u64,
    /// Of which not scanned, because they hold only records at or below
    /// [`LogOptions::verify_after`].
    pub segments_skipped: u64,
}

/// The size of a log, for metrics (`lpm_log_segments`, `lpm_log_bytes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentsSummary {
    /// Segment files retained (retired ones not counted).
    pub segments: u64,
    /// Their total size.
    pub bytes: u64,
    /// The seq of the oldest retained record.
    pub first_seq: Option<u64>,
    /// The seq of the newest durable record.
    pub last_seq: Option<u64>,
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
    /// A record that was valid at open no longer is (the file changed underneath us), or one
    /// in a segment that open did not scan ([`LogOptions::verify_after`]).
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
    /// A segment is missing between two others: the records in it are gone, and replaying
    /// around the hole would build a state that never existed.
    #[error(
        "{dir}: segment {missing} is missing (the log has {before} and {after}); restore it \
         from a backup or the retirement archive"
    )]
    SegmentGap {
        /// The log directory.
        dir: PathBuf,
        /// The first missing segment's name.
        missing: String,
        /// The segment before the hole.
        before: String,
        /// The segment after it.
        after: String,
    },
    /// The writer thread is gone (it panicked, e.g. in the `on_durable` hook).
    #[error("the log writer thread stopped")]
    Closed,
    /// A bad record is followed by valid ones (media corruption, not a torn tail) and the
    /// caller did not allow cutting them off; every file was left as it was.
    #[error(
        "the embedded log is corrupt before its end: the record at byte {offset} of {path} \
         is bad ({reason}) and {records_dropped} valid records follow it; refusing to start, which \
         would drop them. Keep a copy of the log directory, then start with --allow-log-cut to \
         cut the log at that record (the cut bytes are saved beside it and later segments are \
         moved aside), or restore the segment from a backup"
    )]
    CorruptBeforeEnd {
        /// The segment.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: CutReason,
        /// Valid records after it, in its segment and the later ones.
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
