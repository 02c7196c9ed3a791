//! `lpm log export`: the log as a `kcat -C -J` dump, read-only.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use super::frame::{dropped_after, first_seq_of};
use super::read::{BadRecord, Chain, Item, Span};
use super::segments::{file_len, list, read_seq_floor, summarize, SegmentFile};
use super::{io_err, CutReport, EncodedEvent, LogError, SEGMENT};

/// What [`export_kcat`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Records exported.
    pub records: u64,
    /// Lines written (one per event).
    pub events: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Segments read to their end.
    pub segments: u64,
    /// Where the export stopped early (nothing is truncated by an export).
    pub stopped: Option<CutReport>,
}

/// Writes the log in `dir` as a `kcat -C -J` dump (one line per event, partition 0, offsets
/// per topic from 0, continuing across segments), readable by `lpm replay` and
/// `shared/bench/oracle.py`. Every retained segment is read in order. Read-only: a bad record
/// ends the export and is reported in [`ExportSummary::stopped`], nothing is truncated (the
/// log may belong to a running server).
pub fn export_kcat(dir: &Path, out: &mut impl Write) -> Result<ExportSummary, LogError> {
    export_kcat_after(dir, 0, out)
}

/// [`export_kcat`] of the records with a seq above `seq` only (offsets still from 0): the tail
/// after a checkpoint. Segments holding only records at or below `seq` are not read beyond
/// their first record.
pub fn export_kcat_after(
    dir: &Path,
    seq: u64,
    out: &mut impl Write,
) -> Result<ExportSummary, LogError> {
    export_kcat_into(dir, seq, &mut KcatWriter::new(out))
}

/// Writes [`EncodedEvent`]s as `kcat -C -J` lines (partition 0, offsets counted per topic),
/// so that a dump made of several parts (a checkpoint's rows, then the log after it) numbers
/// each topic's offsets on from one part to the next, as one consumer would have read them.
pub struct KcatWriter<W: Write> {
    out: W,
    /// The next offset of each topic.
    offsets: HashMap<String, u64>,
    line: Vec<u8>,
}

impl<W: Write> KcatWriter<W> {
    /// Offsets from 0 in every topic.
    pub fn new(out: W) -> KcatWriter<W> {
        KcatWriter {
            out,
            offsets: HashMap::new(),
            line: Vec::with_capacity(4096),
        }
    }

    /// Writes `event` as the next line of its topic.
    pub fn event(&mut self, event: &EncodedEvent) -> io::Result<()> {
        let offset = self.offsets.entry(event.topic.clone()).or_insert(0);
        self.line.clear();
        serde_json::to_writer(
            &mut self.line,
            &crate::dump::KcatLine {
                topic: &event.topic,
                partition: 0,
                offset: *offset,
                tstype: "create",
                ts: event.ts_ms,
                broker: -1,
                key: Some(&event.key),
                payload: event.value.as_deref(),
            },
        )?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        *offset += 1;
        Ok(())
    }

    /// The offset the next line of `topic` gets.
    pub fn next_offset(&self, topic: &str) -> u64 {
        self.offsets.get(topic).copied().unwrap_or(0)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// [`export_kcat_after`] into `writer`, whose offsets go on from the lines it wrote before.
pub fn export_kcat_into<W: Write>(
    dir: &Path,
    seq: u64,
    writer: &mut KcatWriter<W>,
) -> Result<ExportSummary, LogError> {
    let files = list(dir)?;
    if files.is_empty() {
        let path = dir.join(SEGMENT);
        return Err(io_err("opening", &path)(io::ErrorKind::NotFound.into()));
    }
    let files = &files[start_after(&files, seq)?..];
    let spans = files
        .iter()
        .map(|f| Span::new(f.number, &f.path, u64::MAX))
        .collect();
    let mut chain = Chain::new(spans);
    let mut summary = ExportSummary::default();
    while let Some(item) = chain.step()? {
        match item {
            Item::Record { index, record, .. } => {
                if record.seq <= seq {
                    continue;
                }
                summary.records += 1;
                let path = &files[index].path;
                for e in &record.events {
                    writer
                        .event(e)
                        .map_err(io_err("writing the export of", path))?;
                    summary.events += 1;
                    summary.tombstones += u64::from(e.value.is_none());
                }
            }
            Item::SegmentEnd { .. } => summary.segments += 1,
            Item::Bad(bad) => summary.stopped = Some(stopped_at(&files[bad.index..], bad)?),
        }
    }
    writer
        .flush()
        .map_err(io_err("writing the export of", dir))?;
    Ok(summary)
}

/// The seq of the oldest record the log in `dir` still holds; for a log that holds none, the
/// lowest seq its next record can take (the seq floor; 1 for a new log). Every record below
/// it is gone (retired with a checkpoint, or cut). Read-only: reads first records only.
pub fn first_retained_seq(dir: &Path) -> Result<u64, LogError> {
    match summarize(dir, None)?.first_seq {
        Some(first) => Ok(first),
        None => Ok(read_seq_floor(dir)?.max(1)),
    }
}

/// The index of the first segment that may hold a record above `seq`: the last one whose first
/// record is at or below `seq + 1` (reading first records only, and stopping at one that
/// cannot be read, which the export then reaches and reports).
fn start_after(files: &[SegmentFile], seq: u64) -> Result<usize, LogError> {
    let mut start = 0;
    if seq == 0 {
        return Ok(start);
    }
    for (i, f) in files.iter().enumerate() {
        match first_seq_of(&f.path).map_err(io_err("reading", &f.path))? {
            Some(first) if first <= seq.saturating_add(1) => start = i,
            Some(_) => break,
            None if file_len(&f.path)? == 0 => {}
            None => break,
        }
    }
    Ok(start)
}

/// The report of an export that stopped at a bad record of `files[0]`.
fn stopped_at(files: &[SegmentFile], bad: BadRecord) -> Result<CutReport, LogError> {
    let BadRecord {
        offset,
        reason,
        extent,
        ..
    } = bad;
    let path = &files[0].path;
    let later = files[1..].iter().map(|f| f.path.as_path());
    let dropped = dropped_after(path, offset, &reason, extent, later)?;
    let mut bytes_cut = file_len(path)?.saturating_sub(offset);
    for f in &files[1..] {
        bytes_cut += file_len(&f.path)?;
    }
    tracing::warn!(
        path = %path.display(),
        offset,
        reason = %reason,
        "Embedded log export stopped at a bad record."
    );
    Ok(CutReport {
        segment: path.clone(),
        offset,
        bytes_cut,
        reason,
        records_dropped: dropped.records,
        saved_to: None,
        moved_aside: Vec::new(),
    })
}
