//! The record framing (header, JSON payload, CRC, trailer) and the [`Scanner`] that reads it
//! back one record at a time, saying why it stopped.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::{LogError, LogRecord, MAX_RECORD_BYTES};

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
pub(super) fn count_valid_from(path: &Path, offset: u64) -> io::Result<(u64, Option<u64>)> {
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
