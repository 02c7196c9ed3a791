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

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

pub use crate::debezium::encode::EncodedEvent;
use crate::fs::sync_dir;

/// The (only) segment's file name; also the `source.file` of the events it holds.
pub const SEGMENT: &str = "lpm-log.000001";
/// The largest payload a record may have. Bounds the allocation a corrupt length can cause.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

const MAGIC: u8 = 0xFA;
const VERSION: u8 = 1;
const HEADER: usize = 10;
const TRAILER: u8 = b'\n';

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

/// Why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// Fewer bytes than a header are left.
    PartialHeader {
        /// Bytes present.
        have: usize,
    },
    /// The header does not start with our magic and version.
    BadMagic {
        /// The first byte.
        magic: u8,
        /// The second byte.
        version: u8,
    },
    /// The length field exceeds [`MAX_RECORD_BYTES`].
    TooLong {
        /// The length field.
        len: u32,
    },
    /// The file ends inside the payload.
    ShortPayload {
        /// Payload plus trailer bytes the header promises.
        want: u64,
        /// Bytes present.
        have: u64,
    },
    /// The payload's CRC differs from the header's.
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the payload.
        computed: u32,
    },
    /// The byte after the payload is not the trailer.
    BadTrailer,
    /// The payload is not a record.
    BadJson(String),
    /// The record's sequence number does not follow the previous one.
    SeqNotIncreasing {
        /// The previous record's.
        previous: u64,
        /// This record's.
        seq: u64,
    },
}

impl CutReason {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CutReason::PartialHeader { .. } => "partial_header",
            CutReason::BadMagic { .. } => "bad_magic",
            CutReason::TooLong { .. } => "too_long",
            CutReason::ShortPayload { .. } => "short_payload",
            CutReason::CrcMismatch { .. } => "crc_mismatch",
            CutReason::BadTrailer => "bad_trailer",
            CutReason::BadJson(_) => "bad_json",
            CutReason::SeqNotIncreasing { .. } => "seq_not_increasing",
        }
    }

    /// Whether the record's extent is known (its header is sound), so a scan could go on after it.
    fn skippable(&self) -> bool {
        matches!(
            self,
            CutReason::CrcMismatch { .. }
                | CutReason::BadTrailer
                | CutReason::BadJson(_)
                | CutReason::SeqNotIncreasing { .. }
        )
    }
}

impl fmt::Display for CutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutReason::PartialHeader { have } => {
                write!(f, "partial header ({have} of {HEADER} bytes)")
            }
            CutReason::BadMagic { magic, version } => {
                write!(f, "bad magic/version {magic:#04x}/{version}")
            }
            CutReason::TooLong { len } => write!(f, "implausible length {len}"),
            CutReason::ShortPayload { want, have } => {
                write!(f, "short payload ({have} of {want} bytes)")
            }
            CutReason::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "crc mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            CutReason::BadTrailer => f.write_str("missing record trailer"),
            CutReason::BadJson(e) => write!(f, "payload is not a record: {e}"),
            CutReason::SeqNotIncreasing { previous, seq } => {
                write!(f, "seq {seq} does not follow {previous}")
            }
        }
    }
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

/// What [`export_kcat`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records read.
    pub records: u64,
    /// Lines written (one per event).
    pub events: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Where the export stopped early (nothing is truncated by an export).
    pub stopped: Option<CutReport>,
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

fn io_err<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        context,
        path: path.to_path_buf(),
        source,
    }
}

/// Frames a record: header, JSON payload, trailer.
fn frame(record: &LogRecord) -> Result<Vec<u8>, LogError> {
    let payload = serde_json::to_vec(record).map_err(|e| LogError::Encode(e.to_string()))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD_BYTES)
        .ok_or(LogError::TooLarge {
            bytes: payload.len(),
        })?;
    let mut out = Vec::with_capacity(HEADER + payload.len() + 1);
    out.push(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out.push(TRAILER);
    Ok(out)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One step of a scan.
enum Step {
    /// A good record at `offset`.
    Record { offset: u64, record: LogRecord },
    /// A bad record at `offset`; `extent` is its framed length when the header is sound.
    Bad {
        offset: u64,
        reason: CutReason,
        extent: Option<u64>,
    },
    /// A clean end.
    End,
}

/// Reads framed records one at a time (one payload buffer, reused: memory is one record).
struct Scanner<R> {
    input: R,
    offset: u64,
    last_seq: Option<u64>,
    payload: Vec<u8>,
}

impl<R: Read> Scanner<R> {
    fn new(input: R, offset: u64) -> Scanner<R> {
        Scanner {
            input,
            offset,
            last_seq: None,
            payload: Vec::new(),
        }
    }

    fn next(&mut self) -> io::Result<Step> {
        let offset = self.offset;
        let bad = |reason: CutReason, extent: Option<u64>| {
            Ok(Step::Bad {
                offset,
                reason,
                extent,
            })
        };
        let mut header = [0u8; HEADER];
        let have = read_full(&mut self.input, &mut header)?;
        if have == 0 {
            return Ok(Step::End);
        }
        if have < HEADER {
            return bad(CutReason::PartialHeader { have }, None);
        }
        if header[0] != MAGIC || header[1] != VERSION {
            return bad(
                CutReason::BadMagic {
                    magic: header[0],
                    version: header[1],
                },
                None,
            );
        }
        let len = u32::from_le_bytes([header[2], header[3], header[4], header[5]]);
        let stored = u32::from_le_bytes([header[6], header[7], header[8], header[9]]);
        if len > MAX_RECORD_BYTES {
            return bad(CutReason::TooLong { len }, None);
        }
        let framed = HEADER as u64 + u64::from(len) + 1;
        // payload plus trailer; `len` is bounded above, so this allocation is too
        self.payload.resize(len as usize + 1, 0);
        let got = read_full(&mut self.input, &mut self.payload)?;
        if got < self.payload.len() {
            return bad(
                CutReason::ShortPayload {
                    want: self.payload.len() as u64,
                    have: got as u64,
                },
                None,
            );
        }
        let extent = Some(framed);
        let (body, trailer) = self.payload.split_at(len as usize);
        let computed = crc32fast::hash(body);
        if computed != stored {
            return bad(CutReason::CrcMismatch { stored, computed }, extent);
        }
        if trailer != [TRAILER] {
            return bad(CutReason::BadTrailer, extent);
        }
        let record: LogRecord = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return bad(CutReason::BadJson(e.to_string()), extent),
        };
        if let Some(previous) = self.last_seq {
            if record.seq <= previous {
                return bad(
                    CutReason::SeqNotIncreasing {
                        previous,
                        seq: record.seq,
                    },
                    extent,
                );
            }
        }
        self.last_seq = Some(record.seq);
        self.offset += framed;
        Ok(Step::Record { offset, record })
    }
}

/// Counts the good records from `offset` on and finds their highest `seq` (best effort: stops
/// at the next bad record).
fn count_valid_from(path: &Path, offset: u64) -> io::Result<(u64, Option<u64>)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut scanner = Scanner::new(BufReader::new(file), offset);
    let (mut n, mut max_seq) = (0, None);
    while let Step::Record { record, .. } = scanner.next()? {
        n += 1;
        max_seq = max_seq.max(Some(record.seq));
    }
    Ok((n, max_seq))
}

/// Copies `path[offset..]` to `to`, durably.
/// The lowest seq a new record may take, written when a cut drops records (their seqs were
/// acknowledged as source positions and must never name another record).
const SEQ_FLOOR: &str = "lpm-seq-floor";

fn read_seq_floor(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a seq: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replaces the floor atomically and durably (a torn floor could hand out a used seq).
fn write_seq_floor(path: &Path, seq: u64) -> io::Result<()> {
    crate::fs::replace_file(path, format!("{seq}\n").as_bytes()).map(drop)
}

fn save_tail(path: &Path, offset: u64, to: &Path) -> io::Result<()> {
    retry_interrupted(|| {
        let mut src = File::open(path)?;
        src.seek(SeekFrom::Start(offset))?;
        let mut dst = File::create(to)?;
        io::copy(&mut src, &mut dst)?;
        dst.sync_all()
    })
}

/// Runs `op` again while it fails with `Interrupted`. `io::copy` between two files uses
/// `copy_file_range`, which a signal can interrupt (EINTR) mid-copy, and unlike `write_all`
/// std does not retry it there; a signal during recovery (a profiler's, a timer's) must not
/// refuse the start. `op` must be safe to redo from the beginning (found by fuzz/log_recovery
/// under libFuzzer's timer signal).
fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Refuses directories holding segments this version does not write (rotation).
fn check_layout(dir: &Path) -> Result<(), LogError> {
    let entries = fs::read_dir(dir).map_err(io_err("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("lpm-log.") && name != SEGMENT && !name.contains(".cut-") {
            return Err(LogError::Unsupported {
                path: dir.to_path_buf(),
                detail: format!("segment {name} (only {SEGMENT} is supported)"),
            });
        }
    }
    Ok(())
}

/// An opened, recovered log: replay it, then turn it into a [`LogWriter`].
#[derive(Debug)]
pub struct EmbeddedLog {
    path: PathBuf,
    file: File,
    end: u64,
    next_seq: u64,
}

/// What [`EmbeddedLog::open_with`] does when a bad record is followed by valid ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MidLogCorruption {
    /// Fail with [`LogError::CorruptBeforeEnd`] and leave the file untouched.
    #[default]
    Refuse,
    /// Cut at the bad record, dropping the valid ones after it (saved beside the segment).
    CutAndDrop,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`, verifies every record and truncates a torn
    /// tail, refusing a log that is corrupt before its end; see the module docs.
    pub fn open(dir: &Path) -> Result<(EmbeddedLog, Recovery), LogError> {
        EmbeddedLog::open_with(dir, MidLogCorruption::Refuse)
    }

    /// [`EmbeddedLog::open`] with an explicit policy for corruption before the end.
    pub fn open_with(
        dir: &Path,
        on_mid_log: MidLogCorruption,
    ) -> Result<(EmbeddedLog, Recovery), LogError> {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        check_layout(dir)?;
        let path = dir.join(SEGMENT);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        if !existed {
            file.sync_all().map_err(io_err("syncing", &path))?;
            sync_dir(dir).map_err(io_err("syncing", dir))?;
        }
        let file_len = file
            .metadata()
            .map_err(io_err("reading metadata of", &path))?
            .len();
        let reader = File::open(&path).map_err(io_err("opening", &path))?;
        let mut scanner = Scanner::new(BufReader::with_capacity(1 << 20, reader), 0);
        let mut recovery = Recovery::default();
        let bad = loop {
            match scanner.next().map_err(io_err("reading", &path))? {
                Step::Record { offset, record, .. } => {
                    recovery.records += 1;
                    recovery.events += record.events.len() as u64;
                    recovery.last_offset = Some(offset);
                    recovery.last_seq = Some(record.seq);
                }
                Step::End => break None,
                Step::Bad {
                    offset,
                    reason,
                    extent,
                } => break Some((offset, reason, extent)),
            }
        };
        recovery.end = scanner.offset;
        let mut next_seq = recovery.last_seq.map_or(1, |s| s + 1);
        // a cut of an earlier start dropped records whose seqs must stay unused
        let floor_path = dir.join(SEQ_FLOOR);
        next_seq =
            next_seq.max(read_seq_floor(&floor_path).map_err(io_err("reading", &floor_path))?);
        if let Some((offset, reason, extent)) = bad {
            let (records_dropped, dropped_max_seq) = match extent.filter(|_| reason.skippable()) {
                Some(extent) => {
                    count_valid_from(&path, offset + extent).map_err(io_err("reading", &path))?
                }
                None => (0, None),
            };
            if records_dropped > 0 && on_mid_log == MidLogCorruption::Refuse {
                return Err(LogError::CorruptBeforeEnd {
                    path,
                    offset,
                    reason,
                    records_dropped,
                });
            }
            // never reuse the seq (= `source.pos`) of a dropped record that was acknowledged,
            // in this start or any later one (the dropped records are gone from the segment)
            next_seq = next_seq.max(dropped_max_seq.map_or(0, |s| s + 1));
            if dropped_max_seq.is_some() {
                write_seq_floor(&floor_path, next_seq).map_err(io_err("writing", &floor_path))?;
            }
            let saved = dir.join(format!("{SEGMENT}.cut-{offset}"));
            save_tail(&path, offset, &saved).map_err(io_err("saving the cut tail to", &saved))?;
            file.set_len(offset).map_err(io_err("truncating", &path))?;
            file.sync_all().map_err(io_err("syncing", &path))?;
            sync_dir(dir).map_err(io_err("syncing", dir))?;
            let cut = CutReport {
                offset,
                bytes_cut: file_len - offset,
                reason,
                records_dropped,
                saved_to: Some(saved.clone()),
            };
            if records_dropped > 0 {
                tracing::error!(
                    path = %path.display(),
                    offset,
                    bytes_cut = cut.bytes_cut,
                    records_dropped,
                    reason = %cut.reason,
                    saved_to = %saved.display(),
                    "Embedded log is corrupt before its end; cut at the first bad record, dropping later records."
                );
            } else {
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    bytes_cut = cut.bytes_cut,
                    reason = %cut.reason,
                    "Embedded log had a torn tail; truncated at the last good record."
                );
            }
            recovery.cut = Some(cut);
        }
        let log = EmbeddedLog {
            path,
            file,
            end: recovery.end,
            next_seq,
        };
        Ok((log, recovery))
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The segment's verified length.
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The records from the start, one at a time (memory: one record).
    pub fn records(&self) -> Result<Records, LogError> {
        let file = File::open(&self.path).map_err(io_err("opening", &self.path))?;
        Ok(Records {
            path: self.path.clone(),
            scanner: Scanner::new(BufReader::with_capacity(1 << 20, file).take(self.end), 0),
            done: false,
        })
    }

    /// Calls `f(offset, record)` for every record, in log order; returns how many there were.
    /// This is how the engine is rebuilt at startup.
    pub fn replay(&self, mut f: impl FnMut(u64, &LogRecord)) -> Result<u64, LogError> {
        let mut n = 0;
        for item in self.records()? {
            let (offset, record) = item?;
            f(offset, &record);
            n += 1;
        }
        Ok(n)
    }

    /// Starts the writer thread. `on_durable` is called on that thread after each fsync with the
    /// batch's records in log order, before their appends return (so a caller that gets its
    /// `Appended` back knows the hook has seen the record).
    pub fn into_writer(self, on_durable: Option<DurableHook>) -> Result<LogWriter, LogError> {
        let EmbeddedLog {
            path,
            mut file,
            end,
            next_seq,
        } = self;
        file.seek(SeekFrom::Start(end))
            .map_err(io_err("seeking", &path))?;
        LogWriter::spawn(Box::new(file), path, end, next_seq, on_durable)
    }
}

/// The records of a log, in order; see [`EmbeddedLog::records`].
pub struct Records {
    path: PathBuf,
    scanner: Scanner<io::Take<BufReader<File>>>,
    done: bool,
}

impl Iterator for Records {
    type Item = Result<(u64, LogRecord), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.scanner.next();
        match step {
            Ok(Step::Record { offset, record, .. }) => Some(Ok((offset, record))),
            Ok(Step::End) => {
                self.done = true;
                None
            }
            Ok(Step::Bad { offset, reason, .. }) => {
                self.done = true;
                Some(Err(LogError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    reason,
                }))
            }
            Err(source) => {
                self.done = true;
                Some(Err(LogError::Io {
                    context: "reading",
                    path: self.path.clone(),
                    source,
                }))
            }
        }
    }
}

/// Called by the writer thread with each durable batch: `(seq, record)` in log order.
pub type DurableHook = Box<dyn FnMut(Vec<(u64, Arc<LogRecord>)>) + Send>;

/// Where the writer thread puts bytes: the segment file, or a failing stand-in in tests.
trait Storage: Send {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

impl Storage for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// The failure that poisoned the writer, kept to answer every later append.
#[derive(Clone, Debug)]
struct Failure {
    context: &'static str,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn error(&self, path: &Path) -> LogError {
        LogError::Io {
            context: self.context,
            path: path.to_path_buf(),
            source: io::Error::new(self.kind, self.message.clone()),
        }
    }
}

struct Pending {
    seq: u64,
    record: Arc<LogRecord>,
    frame: Vec<u8>,
    reply: SyncSender<Result<Appended, LogError>>,
}

struct State {
    next_seq: u64,
    queue: Vec<Pending>,
    failed: Option<Failure>,
    closing: bool,
}

struct Shared {
    /// A parking_lot lock, so it does not poison: a panic while holding it (in a caller's build
    /// closure) leaves the state intact, since nothing is mutated before the closure returns.
    state: Mutex<State>,
    wake: Condvar,
    path: PathBuf,
}

impl Shared {
    /// Poisons the writer and fails everything queued.
    fn fail(&self, failure: Failure) {
        let queued = {
            let mut st = self.state.lock();
            if st.failed.is_none() {
                st.failed = Some(failure.clone());
            }
            std::mem::take(&mut st.queue)
        };
        for p in queued {
            let _ = p.reply.send(Err(failure.error(&self.path)));
        }
    }
}

/// Stops the writer thread when the last [`LogWriter`] clone is dropped (after draining).
struct WriterHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Appends records durably with group commit. Cheap to clone; all clones share one writer
/// thread, which stops (after writing what is queued) when the last clone is dropped.
#[derive(Clone)]
pub struct LogWriter {
    handle: Arc<WriterHandle>,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.handle.shared.path)
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    fn spawn(
        storage: Box<dyn Storage>,
        path: PathBuf,
        end: u64,
        next_seq: u64,
        on_durable: Option<DurableHook>,
    ) -> Result<LogWriter, LogError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_seq,
                queue: Vec::new(),
                failed: None,
                closing: false,
            }),
            wake: Condvar::new(),
            path,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lpm-log-writer".into())
            .spawn(move || write_loop(&thread_shared, storage, end, on_durable))
            .map_err(io_err("starting the writer thread for", &shared.path))?;
        Ok(LogWriter {
            handle: Arc::new(WriterHandle {
                shared,
                thread: Some(thread),
            }),
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.handle.shared.path
    }

    /// The sequence number the next record will get (racy with concurrent appends).
    pub fn next_seq(&self) -> u64 {
        self.handle.shared.state.lock().next_seq
    }

    /// Appends one record and blocks until it is durable.
    pub fn append(&self, events: Vec<EncodedEvent>) -> Result<Appended, LogError> {
        self.append_with(|_| events)
    }

    /// Appends the record `build(seq)` and blocks until it is durable. `build` runs under the
    /// queue lock with the record's sequence number, so events can carry `source.pos = seq`
    /// and the file order is the `seq` order. Keep it short: it blocks other appenders.
    pub fn append_with(
        &self,
        build: impl FnOnce(u64) -> Vec<EncodedEvent>,
    ) -> Result<Appended, LogError> {
        self.try_append_with(|seq| Ok::<_, LogError>(build(seq)))
    }

    /// As [`append_with`](Self::append_with) with a fallible `build`: its error is returned and
    /// nothing is appended (the sequence number is not used up).
    pub fn try_append_with<E: From<LogError>>(
        &self,
        build: impl FnOnce(u64) -> Result<Vec<EncodedEvent>, E>,
    ) -> Result<Appended, E> {
        self.try_append_as(None, build)
    }

    /// As [`try_append_with`](Self::try_append_with), recording `actor` (who made the write)
    /// in the record.
    pub fn try_append_as<E: From<LogError>>(
        &self,
        actor: Option<&str>,
        build: impl FnOnce(u64) -> Result<Vec<EncodedEvent>, E>,
    ) -> Result<Appended, E> {
        let shared = &self.handle.shared;
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut st = shared.state.lock();
            if let Some(f) = &st.failed {
                return Err(f.error(&shared.path).into());
            }
            let seq = st.next_seq;
            let record = LogRecord {
                seq,
                events: build(seq)?,
                actor: actor.map(str::to_string),
            };
            let frame = frame(&record)?;
            st.next_seq += 1;
            st.queue.push(Pending {
                seq,
                record: Arc::new(record),
                frame,
                reply,
            });
        }
        shared.wake.notify_one();
        answer
            .recv()
            .unwrap_or(Err(LogError::Closed))
            .map_err(E::from)
    }
}

/// Marks the writer failed if its thread ends for any reason but a clean close (a panic in the
/// hook), so no append waits forever.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(Failure {
                context: "the writer thread panicked; not appending to",
                kind: io::ErrorKind::Other,
                message: "writer thread panicked".into(),
            });
        }
    }
}

fn write_loop(
    shared: &Shared,
    mut storage: Box<dyn Storage>,
    mut end: u64,
    mut on_durable: Option<DurableHook>,
) {
    let _guard = ExitGuard(shared);
    let mut buf = Vec::new();
    let mut offsets = Vec::new();
    loop {
        let batch = {
            let mut st = shared.state.lock();
            while st.queue.is_empty() && !st.closing {
                shared.wake.wait(&mut st);
            }
            if st.queue.is_empty() {
                return;
            }
            std::mem::take(&mut st.queue)
        };
        buf.clear();
        offsets.clear();
        for p in &batch {
            offsets.push(end + buf.len() as u64);
            buf.extend_from_slice(&p.frame);
        }
        let written = match storage.write_all(&buf) {
            Ok(()) => storage.sync_data().map_err(|e| ("fsyncing", e)),
            Err(e) => Err(("writing", e)),
        };
        if let Err((context, error)) = written {
            tracing::error!(
                path = %shared.path.display(),
                op = context,
                %error,
                records = batch.len(),
                "Embedded log write failed; the writer is poisoned until restart."
            );
            let failure = Failure {
                context: if context == "writing" {
                    "writing (the log is poisoned until restart)"
                } else {
                    "fsyncing (the log is poisoned until restart)"
                },
                kind: error.kind(),
                message: error.to_string(),
            };
            for p in batch {
                let _ = p.reply.send(Err(failure.error(&shared.path)));
            }
            shared.fail(failure);
            return;
        }
        end += buf.len() as u64;
        if let Some(hook) = on_durable.as_mut() {
            hook(batch.iter().map(|p| (p.seq, p.record.clone())).collect());
        }
        for (p, offset) in batch.into_iter().zip(offsets.iter().copied()) {
            let _ = p.reply.send(Ok(Appended { offset, seq: p.seq }));
        }
    }
}

/// Writes the log in `dir` as a `kcat -C -J` dump (one line per event, partition 0, offsets
/// per topic from 0), readable by `lpm replay` and `shared/bench/oracle.py`. Read-only: a bad
/// record ends the export and is reported in [`ExportSummary::stopped`], nothing is truncated
/// (the log may belong to a running server).
pub fn export_kcat(dir: &Path, out: &mut impl Write) -> Result<ExportSummary, LogError> {
    let path = dir.join(SEGMENT);
    let file = File::open(&path).map_err(io_err("opening", &path))?;
    let file_len = file
        .metadata()
        .map_err(io_err("reading metadata of", &path))?
        .len();
    let mut scanner = Scanner::new(BufReader::with_capacity(1 << 20, file), 0);
    let mut offsets: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut summary = ExportSummary::default();
    let mut line = Vec::with_capacity(4096);
    loop {
        match scanner.next().map_err(io_err("reading", &path))? {
            Step::Record { record, .. } => {
                summary.records += 1;
                for e in &record.events {
                    let offset = offsets.entry(e.topic.clone()).or_insert(0);
                    line.clear();
                    serde_json::to_writer(
                        &mut line,
                        &crate::dump::KcatLine {
                            topic: &e.topic,
                            partition: 0,
                            offset: *offset,
                            tstype: "create",
                            ts: e.ts_ms,
                            broker: -1,
                            key: Some(&e.key),
                            payload: e.value.as_deref(),
                        },
                    )
                    .map_err(|err| LogError::Encode(err.to_string()))?;
                    line.push(b'\n');
                    out.write_all(&line)
                        .map_err(io_err("writing the export of", &path))?;
                    *offset += 1;
                    summary.events += 1;
                    summary.tombstones += u64::from(e.value.is_none());
                }
            }
            Step::End => break,
            Step::Bad {
                offset,
                reason,
                extent,
            } => {
                let records_dropped = match extent.filter(|_| reason.skippable()) {
                    Some(extent) => {
                        count_valid_from(&path, offset + extent)
                            .map_err(io_err("reading", &path))?
                            .0
                    }
                    None => 0,
                };
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    reason = %reason,
                    "Embedded log export stopped at a bad record."
                );
                summary.stopped = Some(CutReport {
                    offset,
                    bytes_cut: file_len.saturating_sub(offset),
                    reason,
                    records_dropped,
                    saved_to: None,
                });
                break;
            }
        }
    }
    out.flush()
        .map_err(io_err("writing the export of", &path))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use lpm_engine::change::{Change, ChangeKind};
    use lpm_engine::model::{Person, Responsible, Row};
    use lpm_engine::{Feed, FeedItem};

    use super::*;
    use crate::catalog::Catalog;
    use crate::debezium::encode::{encode_change, EventSource};
    use crate::dump::{DumpFeed, DumpOptions};
    use crate::stats::DecodeStats;

    fn contact(id: i64, version: i64) -> Row {
        Row::Responsible(Arc::new(Responsible {
            id,
            full_name: format!("Agente {id} Muñoz"),
            agency: "ECU 911".into(),
            phone: None,
            email: Some(format!("a{id}@example.ec")),
            active: id % 2 == 0,
            version,
        }))
    }

    fn person(id: i64) -> Row {
        Row::Person(Arc::new(Person {
            id,
            full_name: format!("Persona Ñ {id}"),
            age: Some(id % 90),
            gender: "female".into(),
            last_seen_at: 1_710_000_000_000 + id,
            reported_at: 1_710_054_900_000 + id * 100,
            last_seen_place: "Quito".into(),
            latitude: Some(lpm_engine::model::Decimal {
                unscaled: -180_653 - id as i128,
                scale: 6,
            }),
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            version: 1,
        }))
    }

    fn source(seq: u64) -> EventSource {
        EventSource::new(
            "lpm",
            "lost_persons_db",
            SEGMENT,
            seq,
            1_710_054_900_000 + seq as i64,
        )
    }

    /// A record of `changes` (before, after) stamped with `seq`, rows numbered by index.
    fn events(seq: u64, changes: &[(Option<Row>, Option<Row>)]) -> Vec<EncodedEvent> {
        let mut out = vec![];
        for (i, (b, a)) in changes.iter().enumerate() {
            let src = source(seq).at_row(i as u32);
            out.extend(encode_change(b.as_ref(), a.as_ref(), &src).expect("encodes"));
        }
        out
    }

    fn all_records(log: &EmbeddedLog) -> Vec<(u64, LogRecord)> {
        log.records()
            .expect("records")
            .collect::<Result<Vec<_>, _>>()
            .expect("valid")
    }

    #[test]
    fn an_interrupted_step_is_redone_and_other_errors_are_not() {
        let mut calls = 0;
        let r = retry_interrupted(|| {
            calls += 1;
            if calls < 3 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.expect("redone until it succeeds"), 3);
        let mut calls = 0;
        let r: io::Result<()> = retry_interrupted(|| {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        });
        assert_eq!(
            r.expect_err("fails").kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(calls, 1);
    }

    #[test]
    fn append_then_reopen_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, rec) = EmbeddedLog::open(dir.path()).expect("open");
        assert_eq!(rec, Recovery::default());
        assert_eq!(log.next_seq(), 1);
        let writer = log.into_writer(None).expect("writer");
        let mut appended = vec![];
        for id in 1..=3 {
            appended.push(
                writer
                    .append_with(|seq| events(seq, &[(None, Some(contact(id, 1)))]))
                    .expect("append"),
            );
        }
        assert_eq!(
            appended.iter().map(|a| a.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(appended[0].offset, 0);
        assert!(appended.windows(2).all(|w| w[0].offset < w[1].offset));
        drop(writer);

        let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.records, 3);
        assert_eq!(rec.events, 3);
        assert_eq!(rec.last_seq, Some(3));
        assert_eq!(rec.last_offset, Some(appended[2].offset));
        assert_eq!(rec.cut, None);
        assert_eq!(log.next_seq(), 4);
        let mut seen = vec![];
        let n = log
            .replay(|offset, r| seen.push((offset, r.clone())))
            .expect("replay");
        assert_eq!(n, 3);
        for ((offset, r), (a, id)) in seen.iter().zip(appended.iter().zip(1..)) {
            assert_eq!((*offset, r.seq), (a.offset, a.seq));
            assert_eq!(r.events, events(a.seq, &[(None, Some(contact(id, 1)))]));
        }
        // the sequence goes on after a restart
        let writer = log.into_writer(None).expect("writer");
        let a = writer
            .append_with(|seq| events(seq, &[(Some(contact(1, 1)), None)]))
            .expect("append");
        assert_eq!(a.seq, 4);
        drop(writer);
        let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
        assert_eq!((rec.records, rec.events), (4, 5), "delete + tombstone");
        assert_eq!(all_records(&log).len(), 4);
    }

    #[test]
    fn concurrent_appends_are_each_durable_once_in_seq_order() {
        const THREADS: i64 = 8;
        const EACH: i64 = 40;
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
        let hooked = Arc::new(Mutex::new(Vec::new()));
        let batches = Arc::new(AtomicUsize::new(0));
        let (h, b) = (hooked.clone(), batches.clone());
        let hook: DurableHook = Box::new(move |batch| {
            b.fetch_add(1, Ordering::Relaxed);
            h.lock().extend(batch.iter().map(|(seq, r)| (*seq, r.seq)));
        });
        let writer = log.into_writer(Some(hook)).expect("writer");
        let results: Vec<Vec<(i64, Appended)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let writer = writer.clone();
                    s.spawn(move || {
                        (0..EACH)
                            .map(|i| {
                                let id = t * 1000 + i;
                                let a = writer
                                    .append_with(|seq| events(seq, &[(None, Some(contact(id, 1)))]))
                                    .expect("append");
                                (id, a)
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        drop(writer);
        let acked: BTreeMap<i64, Appended> = results.into_iter().flatten().collect();
        assert_eq!(acked.len(), (THREADS * EACH) as usize);
        // each thread saw its own appends in increasing order
        for t in 0..THREADS {
            let mine: Vec<_> = (0..EACH).map(|i| acked[&(t * 1000 + i)].seq).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }

        let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
        assert_eq!(rec.records, (THREADS * EACH) as u64);
        assert_eq!(rec.cut, None);
        let records = all_records(&log);
        // file order = seq order = offset order, and every ack points at its record
        assert!(records
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1.seq < w[1].1.seq));
        let mut ids = BTreeSet::new();
        for (offset, r) in &records {
            assert_eq!(r.events.len(), 1);
            let id: i64 = r.events[0].key["{\"id\":".len()..r.events[0].key.len() - 1]
                .parse()
                .expect("key");
            assert!(ids.insert(id), "id {id} appears once");
            assert_eq!(
                acked[&id],
                Appended {
                    offset: *offset,
                    seq: r.seq
                }
            );
            // the events carry their record's seq as source.pos
            assert!(r.events[0]
                .value
                .as_deref()
                .expect("value")
                .contains(&format!("\"pos\":{},", r.seq)));
        }
        // the hook saw every record once, in log order
        let hooked = hooked.lock().clone();
        let in_log: Vec<(u64, u64)> = records.iter().map(|(_, r)| (r.seq, r.seq)).collect();
        assert_eq!(hooked, in_log);
        assert!(batches.load(Ordering::Relaxed) <= records.len());
    }

    /// Writes `n` one-event records and returns the segment's bytes and each record's offset.
    fn log_of(n: u64) -> (tempfile::TempDir, Vec<u8>, Vec<u64>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
        let writer = log.into_writer(None).expect("writer");
        let offsets = (1..=n as i64)
            .map(|id| {
                writer
                    .append_with(|seq| events(seq, &[(None, Some(person(id)))]))
                    .expect("append")
                    .offset
            })
            .collect();
        drop(writer);
        let bytes = fs::read(dir.path().join(SEGMENT)).expect("read");
        (dir, bytes, offsets)
    }

    fn open_bytes(bytes: &[u8]) -> (tempfile::TempDir, EmbeddedLog, Recovery) {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(SEGMENT), bytes).expect("write");
        let (log, rec) =
            EmbeddedLog::open_with(dir.path(), MidLogCorruption::CutAndDrop).expect("open");
        (dir, log, rec)
    }

    #[test]
    fn corruption_before_the_end_is_refused_by_default_and_the_file_left_alone() {
        let (_src, bytes, offsets) = log_of(5);
        let mut mid = bytes.clone();
        mid[offsets[1] as usize + HEADER + 5] ^= 0x40;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(SEGMENT);
        fs::write(&path, &mid).expect("write");
        let err = EmbeddedLog::open(dir.path()).expect_err("a mid-log corruption is refused");
        match &err {
            LogError::CorruptBeforeEnd {
                offset,
                records_dropped,
                reason,
                ..
            } => {
                assert_eq!((*offset, *records_dropped), (offsets[1], 3));
                assert_eq!(reason.label(), "crc_mismatch");
            }
            other => panic!("expected CorruptBeforeEnd, got {other:?}"),
        }
        assert!(err.to_string().contains("--allow-log-cut"), "{err}");
        assert_eq!(fs::read(&path).expect("read"), mid, "nothing was cut");
        let cut_files = fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().contains(".cut-"))
            })
            .count();
        assert_eq!(cut_files, 0, "nothing was saved aside either");
        // a torn tail is still cut without asking: it loses nothing acknowledged
        let mut torn = bytes.clone();
        torn.truncate(offsets[4] as usize + 7);
        fs::write(&path, &torn).expect("write");
        let (_log, rec) = EmbeddedLog::open(dir.path()).expect("a torn tail opens");
        assert_eq!(
            (rec.records, rec.cut.map(|c| c.records_dropped)),
            (4, Some(0))
        );
    }

    #[test]
    fn torn_tails_are_cut_at_the_last_good_record() {
        let (_src, bytes, offsets) = log_of(4);
        let last = offsets[3] as usize;
        assert!(bytes.len() - last > 200, "a record is a few hundred bytes");
        // every cut inside the header, then a sample of cuts inside the payload and trailer
        let cuts: BTreeSet<usize> = (last + 1..last + HEADER)
            .chain((last + HEADER..bytes.len()).step_by(37))
            .chain([bytes.len() - 1])
            .collect();
        for at in cuts {
            let (dir, log, rec) = open_bytes(&bytes[..at]);
            let cut = rec.cut.as_ref().unwrap_or_else(|| panic!("cut at {at}"));
            assert_eq!(cut.offset, last as u64, "cut at {at}");
            assert_eq!(cut.bytes_cut, (at - last) as u64);
            assert_eq!(cut.records_dropped, 0);
            let expected = if at - last < HEADER {
                "partial_header"
            } else {
                "short_payload"
            };
            assert_eq!(cut.reason.label(), expected, "cut at {at}");
            assert_eq!(
                (rec.records, rec.last_seq, rec.end),
                (3, Some(3), last as u64)
            );
            assert_eq!(log.len(), last as u64);
            let on_disk = fs::metadata(dir.path().join(SEGMENT)).expect("meta").len();
            assert_eq!(on_disk, last as u64, "truncated on disk");
            let saved = cut.saved_to.as_ref().expect("saved");
            assert_eq!(fs::read(saved).expect("saved tail"), &bytes[last..at]);
        }
        // cutting exactly at a record boundary is a clean log
        let (_dir, _log, rec) = open_bytes(&bytes[..last]);
        assert_eq!((rec.records, rec.cut), (3, None));

        // after a cut, appends continue the sequence and a reopen sees old + new
        let (dir, log, _) = open_bytes(&bytes[..last + 50]);
        assert_eq!(log.next_seq(), 4);
        let writer = log.into_writer(None).expect("writer");
        let a = writer
            .append_with(|seq| events(seq, &[(None, Some(person(99)))]))
            .expect("append");
        assert_eq!(
            a,
            Appended {
                offset: last as u64,
                seq: 4
            }
        );
        drop(writer);
        let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
        assert_eq!((rec.records, rec.cut), (4, None));
        let records = all_records(&log);
        assert_eq!(
            records.iter().map(|(o, r)| (*o, r.seq)).collect::<Vec<_>>(),
            offsets[..3]
                .iter()
                .copied()
                .zip(1..)
                .chain([(last as u64, 4)])
                .collect::<Vec<_>>()
        );
        assert_eq!(records[3].1.events, events(4, &[(None, Some(person(99)))]));
    }

    #[test]
    fn a_flipped_payload_byte_is_a_crc_mismatch() {
        let (_src, bytes, offsets) = log_of(5);
        // in the last record: a plain cut
        let mut torn = bytes.clone();
        torn[offsets[4] as usize + HEADER + 20] ^= 0x01;
        let (_dir, _log, rec) = open_bytes(&torn);
        let cut = rec.cut.expect("cut");
        assert_eq!(cut.reason.label(), "crc_mismatch");
        assert_eq!((cut.offset, cut.records_dropped), (offsets[4], 0));
        assert_eq!(rec.records, 4);

        // in the middle: cut there too, and count the valid records dropped with it
        let mut mid = bytes.clone();
        mid[offsets[1] as usize + HEADER + 5] ^= 0x40;
        let (dir, log, rec) = open_bytes(&mid);
        let cut = rec.cut.expect("cut");
        assert!(matches!(cut.reason, CutReason::CrcMismatch { .. }));
        assert_eq!(cut.offset, offsets[1]);
        assert_eq!(cut.bytes_cut, bytes.len() as u64 - offsets[1]);
        assert_eq!(cut.records_dropped, 3);
        assert_eq!(rec.records, 1);
        assert_eq!(
            log.next_seq(),
            6,
            "the seqs of dropped, acknowledged records are not reused"
        );
        assert_eq!(all_records(&log).len(), 1);
        let saved = fs::read(cut.saved_to.expect("saved")).expect("saved tail");
        assert_eq!(saved, &mid[offsets[1] as usize..]);
        assert_eq!(
            fs::metadata(dir.path().join(SEGMENT)).expect("meta").len(),
            offsets[1]
        );
        // nor after a restart, once the dropped records are gone from the segment (found by
        // fuzz/log_recovery: a reopen handed out seq 2 again after a cut that dropped 2-5)
        drop(log);
        let (again, second) = EmbeddedLog::open(dir.path()).expect("reopen");
        assert!(second.cut.is_none());
        assert_eq!(again.next_seq(), 6, "a restart reuses no dropped seq");
    }

    #[test]
    fn bad_framing_and_bad_json_are_cut() {
        let (_src, bytes, offsets) = log_of(2);
        let second = offsets[1] as usize;
        let check = |bytes: &[u8], label: &str| {
            let (_dir, _log, rec) = open_bytes(bytes);
            let cut = rec.cut.expect("cut");
            assert_eq!((cut.reason.label(), cut.offset), (label, offsets[1]));
            assert_eq!(rec.records, 1);
        };
        let mut b = bytes.clone();
        b[second] = 0;
        check(&b, "bad_magic");
        // a zero-filled tail, as after a crash that grew the file but lost the data
        let mut b = bytes[..second].to_vec();
        b.extend(std::iter::repeat_n(0u8, 300));
        check(&b, "bad_magic");
        let mut b = bytes.clone();
        b[second + 2..second + 6].copy_from_slice(&u32::MAX.to_le_bytes());
        check(&b, "too_long");
        let mut b = bytes.clone();
        let end = b.len() - 1;
        b[end] = b' ';
        check(&b, "bad_trailer");
        // a valid frame around a payload that is not a record
        let mut b = bytes[..second].to_vec();
        let payload = b"{\"seq\":3,\"events\":7}";
        b.extend([MAGIC, VERSION]);
        b.extend((payload.len() as u32).to_le_bytes());
        b.extend(crc32fast::hash(payload).to_le_bytes());
        b.extend(payload);
        b.push(TRAILER);
        check(&b, "bad_json");
        // a valid record whose seq goes backwards
        let mut b = bytes[..second].to_vec();
        b.extend(
            frame(&LogRecord {
                seq: 1,
                events: vec![],
                actor: None,
            })
            .expect("frame"),
        );
        check(&b, "seq_not_increasing");
    }

    /// Storage that fails its `n`-th fsync.
    struct FailingSync {
        syncs: usize,
        fail_at: usize,
    }

    impl Storage for FailingSync {
        fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            self.syncs += 1;
            if self.syncs == self.fail_at {
                Err(io::Error::other("EIO"))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_failed_fsync_poisons_the_writer() {
        let hooked = Arc::new(Mutex::new(Vec::new()));
        let h = hooked.clone();
        let hook: DurableHook =
            Box::new(move |batch| h.lock().extend(batch.into_iter().map(|(s, _)| s)));
        let writer = LogWriter::spawn(
            Box::new(FailingSync {
                syncs: 0,
                fail_at: 2,
            }),
            PathBuf::from("test-segment"),
            0,
            1,
            Some(hook),
        )
        .expect("writer");
        let first = writer.append(vec![]).expect("first append is durable");
        assert_eq!(first.seq, 1);
        let second = writer.append(vec![]);
        assert!(
            matches!(&second, Err(LogError::Io { source, .. }) if source.to_string() == "EIO"),
            "{second:?}"
        );
        for _ in 0..3 {
            assert!(matches!(writer.append(vec![]), Err(LogError::Io { .. })));
        }
        assert_eq!(*hooked.lock(), vec![1], "no hook after a failure");
    }

    #[test]
    fn a_failed_build_appends_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
        let writer = log.into_writer(None).expect("writer");
        let err = writer.try_append_with(|_| Err::<Vec<EncodedEvent>, _>(LogError::Closed));
        assert!(matches!(err, Err(LogError::Closed)));
        let a = writer.append(vec![]).expect("append");
        assert_eq!(a, Appended { offset: 0, seq: 1 });
    }

    #[test]
    fn other_segments_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("lpm-log.000002"), b"").expect("write");
        assert!(matches!(
            EmbeddedLog::open(dir.path()),
            Err(LogError::Unsupported { .. })
        ));
    }

    #[test]
    fn export_decodes_to_the_same_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
        let writer = log.into_writer(None).expect("writer");
        let transactions: Vec<Vec<(Option<Row>, Option<Row>)>> = vec![
            vec![(None, Some(contact(1, 1))), (None, Some(contact(2, 1)))],
            vec![(None, Some(person(10))), (None, Some(person(11)))],
            vec![(Some(contact(1, 1)), Some(contact(1, 2)))],
            vec![(Some(person(11)), None)],
            vec![(None, Some(person(12)))],
        ];
        for t in &transactions {
            writer.append_with(|seq| events(seq, t)).expect("append");
        }
        drop(writer);

        let dump = dir.path().join("export.jsonl");
        let mut out = io::BufWriter::new(File::create(&dump).expect("create"));
        let summary = export_kcat(dir.path(), &mut out).expect("export");
        drop(out);
        assert_eq!(
            (summary.records, summary.events, summary.tombstones),
            (5, 8, 1)
        );
        assert_eq!(summary.stopped, None);
        let text = fs::read_to_string(&dump).expect("read");
        let first: serde_json::Value =
            serde_json::from_str(text.lines().next().expect("a line")).expect("json");
        assert_eq!(first["topic"], "lpm.lost_persons_db.responsible_contacts");
        assert_eq!(
            (first["partition"].clone(), first["offset"].clone()),
            (0.into(), 0.into())
        );
        assert_eq!(first["key"], "{\"id\":1}");
        // kcat's field order: the dump reader's fast path needs `payload` last
        let line = text.lines().next().expect("a line");
        let at: Vec<usize> = [
            "topic",
            "partition",
            "offset",
            "tstype",
            "ts",
            "broker",
            "key",
            "payload",
        ]
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).expect("field"))
        .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
        // per-topic offsets from 0
        let offsets: Vec<(String, u64)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                (
                    v["topic"].as_str().expect("topic").to_string(),
                    v["offset"].as_u64().expect("offset"),
                )
            })
            .collect();
        let persons: Vec<u64> = offsets
            .iter()
            .filter(|(t, _)| t.ends_with("persons_lost"))
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(persons, vec![0, 1, 2, 3, 4], "c, c, d, tombstone, c");

        // the dump reader decodes it into the same final rows, with increasing positions
        let feed = DumpFeed::open(
            &DumpOptions::new(&dump),
            Arc::new(Catalog::lpm()),
            Arc::new(DecodeStats::default()),
        )
        .expect("open dump");
        let mut changes = vec![];
        while let FeedItem::Batch { changes: c, .. } = feed.next(0) {
            changes.extend(c);
        }
        assert_eq!(changes.len(), 8);
        let mut state: BTreeMap<(lpm_engine::model::Table, i64), Row> = BTreeMap::new();
        let mut last = None;
        for change in changes {
            let Change::Row(c) = change else {
                panic!("row changes only")
            };
            let coords = c.position.coords;
            match c.kind {
                ChangeKind::Upsert(row) => {
                    let coords = coords.expect("coords");
                    assert_eq!(coords.file, 1);
                    assert!(last < Some(coords), "positions increase");
                    last = Some(coords);
                    state.insert((c.table, c.key), row);
                }
                ChangeKind::Delete => {
                    state.remove(&(c.table, c.key));
                }
                ChangeKind::Tombstone => {}
            }
        }
        let expected: BTreeMap<_, _> = [contact(1, 2), contact(2, 1), person(10), person(12)]
            .into_iter()
            .map(|r| ((r.table(), r.key()), r))
            .collect();
        assert_eq!(state, expected);
    }

    #[test]
    fn export_stops_at_a_bad_record_without_truncating() {
        let (src, bytes, offsets) = log_of(3);
        let torn = &bytes[..offsets[2] as usize + 15];
        fs::write(src.path().join(SEGMENT), torn).expect("write");
        let mut out = Vec::new();
        let summary = export_kcat(src.path(), &mut out).expect("export");
        assert_eq!(summary.records, 2);
        let stopped = summary.stopped.expect("stopped");
        assert_eq!((stopped.offset, stopped.bytes_cut), (offsets[2], 15));
        assert_eq!(fs::read(src.path().join(SEGMENT)).expect("read"), torn);
        assert_eq!(String::from_utf8(out).expect("utf8").lines().count(), 2);
    }

    #[test]
    fn records_stay_human_readable() {
        let (_src, bytes, offsets) = log_of(1);
        let payload = &bytes[HEADER..bytes.len() - 1];
        let text = std::str::from_utf8(payload).expect("utf8 JSON");
        assert!(text
            .starts_with("{\"seq\":1,\"events\":[{\"topic\":\"lpm.lost_persons_db.persons_lost\""));
        assert_eq!(offsets, vec![0]);
        assert_eq!(*bytes.last().expect("a byte"), b'\n');
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn writer_is_send_sync() {
        assert_send_sync::<LogWriter>();
    }
}
