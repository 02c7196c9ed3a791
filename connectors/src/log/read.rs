//! Reading records across segments, in log order: one chain for recovery, [`Records`] and
//! the export, so the three agree on what a segment boundary may hold.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::frame::{CutReason, Scanner, Step};
use super::{LogError, LogRecord, RecordAt};

/// One segment to read: its number, file and how many bytes of it count (the verified length
/// for an opened log; everything for a read-only export).
#[derive(Clone, Debug)]
pub(super) struct Span {
    pub number: u64,
    pub path: PathBuf,
    pub limit: u64,
}

impl Span {
    pub(super) fn new(number: u64, path: &Path, limit: u64) -> Span {
        Span {
            number,
            path: path.to_path_buf(),
            limit,
        }
    }
}

/// One step of a chain.
pub(super) enum Item {
    /// A good record in the span at `index`.
    Record {
        index: usize,
        at: RecordAt,
        record: LogRecord,
    },
    /// The span at `index` ended cleanly at byte `end`.
    SegmentEnd { index: usize, end: u64 },
    /// A bad record.
    Bad(BadRecord),
}

/// A bad record in the span at `index`; `extent` as in [`Step::Bad`].
pub(super) struct BadRecord {
    pub index: usize,
    pub offset: u64,
    pub reason: CutReason,
    pub extent: Option<u64>,
}

/// Reads the spans in order with one [`Scanner`] at a time, carrying the last seq across
/// boundaries so that a segment starting at or below the previous one's last seq is a bad
/// record (`seq_not_increasing`) like any other. Files are opened only when reached.
pub(super) struct Chain {
    spans: Vec<Span>,
    next: usize,
    current: Option<(usize, Scanner<io::Take<BufReader<File>>>)>,
    last_seq: Option<u64>,
}

impl Chain {
    pub(super) fn new(spans: Vec<Span>) -> Chain {
        Chain {
            spans,
            next: 0,
            current: None,
            last_seq: None,
        }
    }

    pub(super) fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The next item; `Ok(None)` once every span is read. After `Bad` the chain stops.
    pub(super) fn step(&mut self) -> Result<Option<Item>, LogError> {
        let (index, scanner) = match &mut self.current {
            Some((index, scanner)) => (*index, scanner),
            None => {
                let Some(span) = self.spans.get(self.next) else {
                    return Ok(None);
                };
                let file = File::open(&span.path).map_err(|source| LogError::Io {
                    context: "opening",
                    path: span.path.clone(),
                    source,
                })?;
                let mut scanner =
                    Scanner::new(BufReader::with_capacity(1 << 20, file).take(span.limit), 0);
                scanner.last_seq = self.last_seq;
                self.next += 1;
                let (index, scanner) = self.current.insert((self.next - 1, scanner));
                (*index, scanner)
            }
        };
        let step = scanner.next().map_err(|source| LogError::Io {
            context: "reading",
            path: self.spans[index].path.clone(),
            source,
        })?;
        Ok(Some(match step {
            Step::Record { offset, record } => {
                self.last_seq = Some(record.seq);
                let at = RecordAt {
                    segment: self.spans[index].number,
                    offset,
                };
                Item::Record { index, at, record }
            }
            Step::End => {
                let end = scanner.offset;
                self.current = None;
                Item::SegmentEnd { index, end }
            }
            Step::Bad {
                offset,
                reason,
                extent,
            } => {
                self.next = self.spans.len();
                self.current = None;
                Item::Bad(BadRecord {
                    index,
                    offset,
                    reason,
                    extent,
                })
            }
        }))
    }
}

/// The records of a log with a seq above a bound, in order; see
/// [`EmbeddedLog::records_after`](super::EmbeddedLog::records_after).
pub struct Records {
    chain: Chain,
    after: u64,
    done: bool,
}

impl Records {
    pub(super) fn new(spans: Vec<Span>, after: u64) -> Records {
        Records {
            chain: Chain::new(spans),
            after,
            done: false,
        }
    }
}

impl Iterator for Records {
    type Item = Result<(RecordAt, LogRecord), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.chain.step() {
                Ok(Some(Item::Record { at, record, .. })) if record.seq > self.after => {
                    return Some(Ok((at, record)));
                }
                Ok(Some(Item::Record { .. } | Item::SegmentEnd { .. })) => {}
                Ok(None) => self.done = true,
                Ok(Some(Item::Bad(bad))) => {
                    self.done = true;
                    return Some(Err(LogError::Corrupt {
                        path: self.chain.spans()[bad.index].path.clone(),
                        offset: bad.offset,
                        reason: bad.reason,
                    }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
