//! The record framing (header, JSON payload, CRC, trailer) and the [`Scanner`] that reads it
//! back one record at a time, saying why it stopped.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::{io_err, LogError, LogRecord, MAX_RECORD_BYTES};

pub(super) const MAGIC: u8 = 0xFA;
pub(super) const VERSION: u8 = 1;
pub(super) const HEADER: usize = 10;
pub(super) const TRAILER: u8 = b'\n';

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
    pub(super) fn skippable(&self) -> bool {
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

/// Frames a record: header, JSON payload, trailer.
pub(super) fn frame(record: &LogRecord) -> Result<Vec<u8>, LogError> {
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
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
pub(super) enum Step {
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
pub(super) struct Scanner<R> {
    input: R,
    pub(super) offset: u64,
    pub(super) last_seq: Option<u64>,
    payload: Vec<u8>,
}

impl<R: Read> Scanner<R> {
    pub(super) fn new(input: R, offset: u64) -> Scanner<R> {
        Scanner {
            input,
            offset,
            last_seq: None,
            payload: Vec::new(),
        }
    }

    pub(super) fn next(&mut self) -> io::Result<Step> {
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
        // seqs start at 1 (0 means "no record" in positions and `records_after(0)` reads from
        // the start), and each one is above the one before it
        let previous = self.last_seq.unwrap_or(0);
        if record.seq <= previous {
            return bad(
                CutReason::SeqNotIncreasing {
                    previous,
                    seq: record.seq,
                },
                extent,
            );
        }
        self.last_seq = Some(record.seq);
        self.offset += framed;
        Ok(Step::Record { offset, record })
    }
}

/// What a read-only scan of one file found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FileScan {
    /// Good records before the end or the first bad record.
    pub records: u64,
    /// The highest seq among them.
    pub max_seq: Option<u64>,
    /// Whether the file ended cleanly (no bad record).
    pub clean: bool,
}

/// Scans `path` from `offset` (best effort: stops at the next bad record).
pub(super) fn scan_file(path: &Path, offset: u64) -> io::Result<FileScan> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut scanner = Scanner::new(BufReader::with_capacity(1 << 20, file), offset);
    let mut scan = FileScan::default();
    loop {
        match scanner.next()? {
            Step::Record { record, .. } => {
                scan.records += 1;
                scan.max_seq = scan.max_seq.max(Some(record.seq));
            }
            Step::End => {
                scan.clean = true;
                return Ok(scan);
            }
            Step::Bad { .. } => return Ok(scan),
        }
    }
}

/// The valid records a cut at a bad record would drop: after it in its segment (when its
/// extent is known, so the scan can go on past it) and in every later segment (best effort:
/// each scan stops at its own first bad record).
pub(super) fn dropped_after<'a>(
    path: &Path,
    offset: u64,
    reason: &CutReason,
    extent: Option<u64>,
    later: impl IntoIterator<Item = &'a Path>,
) -> Result<FileScan, LogError> {
    let mut dropped = match extent.filter(|_| reason.skippable()) {
        Some(extent) => scan_file(path, offset + extent).map_err(io_err("reading", path))?,
        None => FileScan::default(),
    };
    for path in later {
        let scan = scan_file(path, 0).map_err(io_err("reading", path))?;
        dropped.records += scan.records;
        dropped.max_seq = dropped.max_seq.max(scan.max_seq);
    }
    Ok(dropped)
}

/// The seq of the first record of `path`, reading that record only; `None` for an empty file
/// or a bad first record (the caller then scans the file instead of trusting it).
pub(super) fn first_seq_of(path: &Path) -> io::Result<Option<u64>> {
    let file = File::open(path)?;
    match Scanner::new(BufReader::new(file), 0).next()? {
        Step::Record { record, .. } => Ok(Some(record.seq)),
        Step::End | Step::Bad { .. } => Ok(None),
    }
}

/// Counts the framed records of `path` by their headers alone, skipping the payloads (no CRC,
/// no JSON): what retirement reports, without reading a whole segment. Stops at a header that
/// is not ours or a length that runs past the end.
pub(super) fn count_frames(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let (mut at, mut n) = (0u64, 0u64);
    let mut header = [0u8; HEADER];
    while at + HEADER as u64 <= len {
        file.seek(SeekFrom::Start(at))?;
        if read_full(&mut file, &mut header)? < HEADER || header[0] != MAGIC || header[1] != VERSION
        {
            break;
        }
        let payload = u32::from_le_bytes([header[2], header[3], header[4], header[5]]);
        let next = at + HEADER as u64 + u64::from(payload) + 1;
        if payload > MAX_RECORD_BYTES || next > len {
            break;
        }
        n += 1;
        at = next;
    }
    Ok(n)
}
