//! `lpm log export`: the log as a `kcat -C -J` dump, read-only.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use super::frame::{count_valid_from, Scanner, Step};
use super::{io_err, CutReport, LogError, SEGMENT};

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
