//! `lpm log export`: the embedded log's history as one `kcat -C -J` dump, even after log
//! retention (`--log-retention-s`) has retired its oldest segments.
//!
//! While the log still starts at record 1, the dump is the log itself
//! ([`lpm_connectors::log::export_kcat`]). Once retirement has removed its first records, those
//! exist only inside a checkpoint, so the dump becomes what Debezium writes for a database it
//! starts capturing mid-life: a snapshot, then the stream after it. The snapshot is the newest
//! valid embedded-log checkpoint's current rows as `op:"r"` reads, encoded by the same encoder
//! as the log's own events; the stream is every log record after the checkpoint's `log_seq`.
//! Offsets go on per topic from the snapshot into the stream, as one consumer would read them.
//!
//! # Why the tail always wins
//! `lpm replay` and `oracle.py` order events by source coordinates `(file, pos, row)`, a
//! streamed event beating a snapshot read at equal coordinates. The log's events carry
//! `file = lpm-log.000001`, `pos` = their record's seq, `row` = their index in it. Every
//! snapshot row carries `pos = log_seq`, `row = 0`, marked as a snapshot read: it is before
//! every tail event (their `pos` is above `log_seq`), so a later update or delete of a key
//! replaces its snapshot row, and nothing in the tail is a duplicate of a snapshot row or
//! older than one. The rows share that one coordinate, as the rows of one Debezium snapshot
//! share the binlog position it was taken at, and not each its stored position: the engine's
//! mark and sweep keys a blocking snapshot by its coordinate, so per-row coordinates would make
//! every row a snapshot of its own, and closing one would sweep the rest.
//!
//! # What the snapshot holds
//! The rows a server would show at the checkpoint: a deleted key (kept in the state only to
//! recognise stale events) and a row hidden by a truncate cut ([`TableMeta::hides`]) are left
//! out, so neither comes back in a replay. Markers follow the capture's snapshots (`first`,
//! `first_in_data_collection`, `true`, `last_in_data_collection`, `last`) except that a
//! table's last row always says so, even when it is also the very first, so that every table's
//! snapshot closes. Rows are sorted by key within each table, in [`Table::ALL`] order, so two
//! exports of one checkpoint are identical; they are held in memory while sorted (as much as
//! the server holds).
//!
//! The export only reads (the server may be running). It refuses, rather than write a partial
//! history that would replay to wrong views, when no checkpoint verifies, or when the newest
//! that does is older than the retained log's first record.

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

use lpm_connectors::debezium::encode::{encode, EncodeError, EventSource, SnapshotFlag};
use lpm_connectors::log::{
    export_kcat_into, first_retained_seq, ExportSummary, KcatWriter, LogError,
};
use lpm_engine::checkpoint::TableMeta;
use lpm_engine::model::{Key, Row, Table};

use crate::checkpoint::file::{self, CheckpointFileError, Manifest};
use crate::checkpoint::store::{CheckpointDir, Rejected};
use crate::sor::{DATABASE, LOG_DIR, LOG_FILE, PREFIX};

/// The source name of embedded-log checkpoints (their manifest's `position.source`).
const SOURCE: &str = "embedded-log";

/// What [`embedded_log`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The checkpoint whose rows open the dump; `None` when the log holds its whole history
    /// and the dump is the log alone.
    pub snapshot: Option<SnapshotSummary>,
    /// The log records written (all of them, or those after the checkpoint).
    pub log: ExportSummary,
}

/// The snapshot part of an export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// The checkpoint's number.
    pub checkpoint: u64,
    /// The last log record it covers: the log part starts after it.
    pub log_seq: u64,
    /// Rows written as snapshot reads.
    pub rows: u64,
    /// Deleted keys of the checkpoint, not written.
    pub deleted: u64,
    /// Rows hidden by a truncate, not written.
    pub hidden: u64,
}

/// Why the log could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the log, or writing the dump, failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The log's first records were retired and no checkpoint holds them.
    #[error(
        "{dir} starts at record {first}: the records before were retired with a checkpoint \
         (--log-retention-s), and no checkpoint in {checkpoints} verifies to stand in for them \
         ({}); export from the retirement archive (--log-archive) or from a backup taken \
         before retirement",
        rejected_text(.rejected)
    )]
    NoCheckpoint {
        /// The log directory.
        dir: PathBuf,
        /// Its first record.
        first: u64,
        /// The checkpoint directory.
        checkpoints: PathBuf,
        /// The checkpoints that did not verify, and why.
        rejected: Vec<Rejected>,
    },
    /// The newest valid checkpoint is older than the retained log: the records between are
    /// in neither.
    #[error(
        "checkpoint {number} covers the log up to record {log_seq}, but {dir} starts at record \
         {first}: records {} to {} are in neither (the newer checkpoints that covered them are \
         gone or do not verify); export from the retirement archive (--log-archive) or from a \
         backup",
        .log_seq + 1,
        .first - 1
    )]
    TailMissing {
        /// The log directory.
        dir: PathBuf,
        /// The checkpoint's number.
        number: u64,
        /// The last record it covers.
        log_seq: u64,
        /// The log's first retained record.
        first: u64,
    },
    /// The checkpoint directory or state file cannot be read.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointFileError),
    /// A checkpointed row has no Debezium encoding (it came from a decoded event, so this is
    /// a bug, not bad input).
    #[error("checkpoint {number}: {table} row {key}: {source}")]
    Encode {
        /// The checkpoint's number.
        number: u64,
        /// The row's table.
        table: Table,
        /// Its key.
        key: Key,
        /// Why.
        source: EncodeError,
    },
    /// Writing the dump failed.
    #[error("writing the export: {0}")]
    Write(#[source] std::io::Error),
}

fn rejected_text(rejected: &[Rejected]) -> String {
    if rejected.is_empty() {
        return "there is none".into();
    }
    let each: Vec<String> = rejected
        .iter()
        .map(|r| format!("{}: {}", r.manifest.display(), r.why))
        .collect();
    format!("rejected: {}", each.join("; "))
}

/// Writes the embedded log of `data_dir` to `out` as a `kcat -C -J` dump that `lpm replay` and
/// `oracle.py` turn into the server's views: the log itself while it starts at record 1,
/// otherwise the newest valid checkpoint's rows as a snapshot followed by the log after it
/// (see the module docs).
pub fn embedded_log(data_dir: &Path, out: impl Write) -> Result<Exported, ExportError> {
    let dir = data_dir.join(LOG_DIR);
    let mut kcat = KcatWriter::new(out);
    let first = first_retained_seq(&dir)?;
    if first <= 1 {
        let log = export_kcat_into(&dir, 0, &mut kcat)?;
        return Ok(Exported {
            snapshot: None,
            log,
        });
    }
    let checkpoints = CheckpointDir::open(data_dir)?;
    let (found, rejected) = checkpoints.newest_valid(SOURCE);
    let Some((manifest, state)) = found else {
        return Err(ExportError::NoCheckpoint {
            dir,
            first,
            checkpoints: checkpoints.path().to_path_buf(),
            rejected,
        });
    };
    let log_seq = manifest.position.log_seq();
    if first > log_seq.saturating_add(1) {
        return Err(ExportError::TailMissing {
            dir,
            number: manifest.number,
            log_seq,
            first,
        });
    }
    tracing::info!(
        checkpoint = manifest.number,
        log_seq,
        first_retained = first,
        "Exporting a checkpoint's rows as a snapshot, then the log after it."
    );
    let snapshot = write_snapshot(&manifest, &state, &mut kcat)?;
    let log = export_kcat_into(&dir, log_seq, &mut kcat)?;
    Ok(Exported {
        snapshot: Some(snapshot),
        log,
    })
}

/// The rows to export, per table (indexed by [`Table::index`]), sorted by key.
type TableRows = [Vec<(Key, Row)>; Table::COUNT];

/// Writes the visible rows of the (verified) state file `state` of `manifest` as snapshot
/// reads at the checkpoint's position.
fn write_snapshot<W: Write>(
    manifest: &Manifest,
    state: &Path,
    kcat: &mut KcatWriter<W>,
) -> Result<SnapshotSummary, ExportError> {
    let mut summary = SnapshotSummary {
        checkpoint: manifest.number,
        log_seq: manifest.position.log_seq(),
        ..SnapshotSummary::default()
    };
    // the header's metas, read before any entry
    let metas = Cell::new([TableMeta::default(); Table::COUNT]);
    let mut rows: TableRows = Default::default();
    file::read(
        state,
        |header| {
            let mut all = metas.get();
            for (table, meta) in header {
                all[table.index()] = meta;
            }
            metas.set(all);
            Ok(())
        },
        |table, entries| {
            let meta = metas.get()[table.index()];
            for e in entries {
                match e.row {
                    None => summary.deleted += 1,
                    Some(_) if meta.hides(&e.position) => summary.hidden += 1,
                    Some(row) => rows[table.index()].push((e.key, row)),
                }
            }
            Ok(())
        },
    )?;
    for table in &mut rows {
        table.sort_unstable_by_key(|(key, _)| *key);
    }
    let source = EventSource {
        server_id: 0,
        ..EventSource::new(
            PREFIX,
            DATABASE,
            LOG_FILE,
            summary.log_seq,
            manifest.taken_at_ms,
        )
    };
    let tables: Vec<&Vec<(Key, Row)>> = Table::ALL
        .iter()
        .map(|t| &rows[t.index()])
        .filter(|r| !r.is_empty())
        .collect();
    for (t, table_rows) in tables.iter().enumerate() {
        for (i, (key, row)) in table_rows.iter().enumerate() {
            let place = Place {
                first_table: t == 0,
                last_table: t + 1 == tables.len(),
                first_in_table: i == 0,
                last_in_table: i + 1 == table_rows.len(),
            };
            let src = EventSource {
                snapshot: place.flag(),
                ..source.clone()
            };
            let event = encode(None, Some(row), &src).map_err(|e| ExportError::Encode {
                number: manifest.number,
                table: row.table(),
                key: *key,
                source: e,
            })?;
            kcat.event(&event).map_err(ExportError::Write)?;
            summary.rows += 1;
        }
    }
    Ok(summary)
}

/// Where a row falls in the snapshot.
#[derive(Clone, Copy, Debug)]
struct Place {
    first_table: bool,
    last_table: bool,
    first_in_table: bool,
    last_in_table: bool,
}

impl Place {
    /// The row's `source.snapshot` marker: a table's last row closes its snapshot in the
    /// engine, so it wins over `first` (Debezium gives a first table's only row `first`,
    /// which would leave that table's snapshot open).
    fn flag(self) -> SnapshotFlag {
        if self.last_in_table && self.last_table {
            SnapshotFlag::Last
        } else if self.last_in_table {
            SnapshotFlag::LastInDataCollection
        } else if self.first_in_table && self.first_table {
            SnapshotFlag::First
        } else if self.first_in_table {
            SnapshotFlag::FirstInDataCollection
        } else {
            SnapshotFlag::True
        }
    }
}

#[cfg(test)]
mod tests;
