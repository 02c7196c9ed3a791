//! `lpm log export`: the log as a `kcat -C -J` dump, read-only.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use super::frame::{dropped_after, first_seq_of};
use super::read::{BadRecord, Chain, Item, Span};
use super::segments::{file_len, list, SegmentFile};
use super::{io_err, CutReport, LogError, SEGMENT};

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
    let mut offsets: HashMap<String, u64> = HashMap::new();
    let mut summary = ExportSummary::default();
    let mut line = Vec::with_capacity(4096);
    while let Some(item) = chain.step()? {
        match item {
            Item::Record { index, record, .. } => {
                if record.seq <= seq {
                    continue;
                }
                summary.records += 1;
                let path = &files[index].path;
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
                        .map_err(io_err("writing the export of", path))?;
                    *offset += 1;
                    summary.events += 1;
                    summary.tombstones += u64::from(e.value.is_none());
                }
            }
            Item::SegmentEnd { .. } => summary.segments += 1,
            Item::Bad(bad) => summary.stopped = Some(stopped_at(&files[bad.index..], bad)?),
        }
    }
    out.flush().map_err(io_err("writing the export of", dir))?;
    Ok(summary)
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
