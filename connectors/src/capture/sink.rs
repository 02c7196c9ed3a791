//! Where captured batches go, and what a sink remembers to resume from.
//!
//! A sink stores each batch and the position after it *together*: the capture resumes from
//! [`CaptureSink::stored`], so whatever the sink has not durably stored is captured again, and
//! nothing it stored is repeated. [`FileSink`] gets exactly-once output from that: its offsets
//! file names the dump length that goes with the stored position, and on open the dump is cut
//! back to that length (bytes written after it belong to a batch whose position was never
//! stored, and will be captured again).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{partition_for, Batch, BatchKind, BinlogPosition};
use crate::dump::KcatLine;

/// What a sink has durably stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Resume after this position.
    pub position: BinlogPosition,
}

/// A sink could not store a batch; the capture stops (the batch is not acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// File system.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The dump and its offsets file disagree, or the dump is not ours.
    #[error("{0}")]
    Inconsistent(String),
    /// The consumer is gone (shutdown).
    #[error("the consumer stopped")]
    Closed,
}

/// A destination for captured batches.
pub trait CaptureSink: Send {
    /// Where to resume; `None` when nothing was stored yet (a snapshot is needed).
    fn stored(&self) -> Option<Stored>;
    /// A snapshot is starting: forget any unfinished earlier one.
    fn begin_snapshot(&mut self) -> Result<(), SinkError>;
    /// Stores `batch`; on return it is durable (or handed on) and its position stored with it.
    fn write(&mut self, batch: Batch) -> Result<(), SinkError>;
    /// The stored position is gone from the server: `true` when the sink has forgotten it and
    /// takes a new snapshot over what it holds (the engine, which sweeps rows the snapshot does
    /// not re-read); `false` (the default) stops the capture with the error, as Debezium does.
    fn position_lost(&mut self) -> bool {
        false
    }
    /// The stream is at the end of the binlog: the server sent a heartbeat, which it does only
    /// after a period without events, and everything before it was handed to `write`. (A
    /// position taken from `SHOW MASTER STATUS` may lie past the last transaction, behind
    /// rotation or binlog-checkpoint events, so reaching it is not the only sign of being
    /// current.)
    fn idle(&mut self) {}
}

/// The offsets file beside a dump: `<dump>.offsets.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Offsets {
    /// Where to resume; `None` while the first snapshot is unfinished.
    position: Option<BinlogPosition>,
    /// The dump's length that goes with `position`.
    dump_len: u64,
    /// Next offset per `topic/partition`.
    next_offset: BTreeMap<String, u64>,
}

/// A `kcat -C -J` dump file plus its offsets file: `lpm capture --to FILE`.
pub struct FileSink {
    path: PathBuf,
    offsets_path: PathBuf,
    file: File,
    state: Offsets,
    /// `next_offset` as written (the stored copy moves only with a stored position).
    written_offsets: BTreeMap<String, u64>,
    len: u64,
    partitions: u32,
    line: Vec<u8>,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl FileSink {
    /// Opens (or creates) the dump at `path`; `partitions` spreads keys as Kafka's default
    /// partitioner would over that many partitions (the `partition` field of each line).
    pub fn open(path: &Path, partitions: u32) -> Result<FileSink, SinkError> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".offsets.json");
        let offsets_path = path.with_file_name(name);
        let state: Offsets = match std::fs::read(&offsets_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SinkError::Inconsistent(format!("{}: {e}", offsets_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Offsets::default(),
            Err(e) => return Err(io("reading", &offsets_path)(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io("opening", path))?;
        let len = file
            .metadata()
            .map_err(io("reading metadata of", path))?
            .len();
        let known = offsets_path.exists();
        if !known && len > 0 {
            return Err(SinkError::Inconsistent(format!(
                "{} is not empty and has no {}: not a dump this capture wrote; choose another file",
                path.display(),
                offsets_path.display()
            )));
        }
        if len < state.dump_len {
            return Err(SinkError::Inconsistent(format!(
                "{} is {len} bytes but its offsets say {}: the dump lost data",
                path.display(),
                state.dump_len
            )));
        }
        if len > state.dump_len {
            tracing::info!(path = %path.display(), from = len, to = state.dump_len,
                "Cutting records whose position was never stored; they will be captured again.");
            file.set_len(state.dump_len)
                .map_err(io("truncating", path))?;
            file.sync_all().map_err(io("syncing", path))?;
        }
        Ok(FileSink {
            path: path.to_path_buf(),
            offsets_path,
            file,
            written_offsets: state.next_offset.clone(),
            len: state.dump_len,
            state,
            partitions: partitions.max(1),
            line: Vec::with_capacity(4096),
        })
    }

    fn save_offsets(&self) -> Result<(), SinkError> {
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| SinkError::Inconsistent(e.to_string()))?;
        crate::fs::replace_file(&self.offsets_path, &bytes)
            .map_err(io("replacing", &self.offsets_path))?;
        Ok(())
    }
}

impl CaptureSink for FileSink {
    fn stored(&self) -> Option<Stored> {
        self.state
            .position
            .clone()
            .map(|position| Stored { position })
    }

    fn begin_snapshot(&mut self) -> Result<(), SinkError> {
        // everything before `dump_len` stays; an unfinished snapshot was already cut on open
        self.written_offsets = self.state.next_offset.clone();
        self.state.position = None;
        self.save_offsets()
    }

    fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        let mut buf = Vec::with_capacity(
            batch
                .records
                .iter()
                .map(|r| r.value.as_ref().map_or(64, |v| v.len() + 160))
                .sum(),
        );
        for r in &batch.records {
            let partition = partition_for(r.key.as_deref(), self.partitions);
            let slot = format!("{}/{partition}", r.topic);
            let offset = self.written_offsets.entry(slot).or_insert(0);
            self.line.clear();
            serde_json::to_writer(
                &mut self.line,
                &KcatLine {
                    topic: &r.topic,
                    partition,
                    offset: *offset,
                    tstype: "create",
                    ts: r.ts_ms,
                    broker: -1,
                    key: r.key.as_deref(),
                    payload: r.value.as_deref(),
                },
            )
            .map_err(|e| SinkError::Inconsistent(e.to_string()))?;
            *offset += 1;
            buf.extend_from_slice(&self.line);
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(io("appending to", &self.path))?;
        self.file.sync_data().map_err(io("syncing", &self.path))?;
        self.len += buf.len() as u64;
        let resumable = match batch.kind {
            BatchKind::Stream | BatchKind::Snapshot { last: true } => true,
            BatchKind::Snapshot { last: false } => false,
        };
        if resumable {
            self.state.position = Some(batch.position);
            self.state.dump_len = self.len;
            self.state.next_offset = self.written_offsets.clone();
            self.save_offsets()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::Record;
    use super::*;

    fn batch(kind: BatchKind, n: usize, pos: u64) -> Batch {
        Batch {
            kind,
            records: (0..n)
                .map(|i| Record {
                    topic: "p.db.t".into(),
                    key: Some(format!("{{\"id\":{i}}}")),
                    value: Some(format!("{{\"n\":{i}}}")),
                    ts_ms: 1,
                })
                .collect(),
            position: BinlogPosition {
                file: "mysql-bin.000001".into(),
                pos,
                gtid: None,
            },
            transactions: 1,
            newest_commit_ms: None,
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn an_unfinished_snapshot_and_unstored_batches_are_cut_on_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("dump.jsonl");
        let mut s = FileSink::open(&path, 1).expect("open");
        assert_eq!(s.stored(), None);
        s.begin_snapshot().expect("begin");
        s.write(batch(BatchKind::Snapshot { last: false }, 3, 4))
            .expect("w");
        drop(s);
        // crashed mid-snapshot: nothing stored, dump cut back to empty
        let mut s = FileSink::open(&path, 1).expect("reopen");
        assert_eq!(s.stored(), None);
        assert!(lines(&path).is_empty());
        s.begin_snapshot().expect("begin");
        s.write(batch(BatchKind::Snapshot { last: false }, 2, 4))
            .expect("w");
        s.write(batch(BatchKind::Snapshot { last: true }, 1, 100))
            .expect("w");
        s.write(batch(BatchKind::Stream, 2, 200)).expect("w");
        assert_eq!(s.stored().map(|s| s.position.pos), Some(200));
        // a batch appended whose offsets write is lost: simulate by appending by hand
        let stored_len = std::fs::metadata(&path).expect("meta").len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"torn\":"))
            .expect("append");
        drop(s);
        let s = FileSink::open(&path, 1).expect("reopen");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), stored_len);
        assert_eq!(s.stored().map(|s| s.position.pos), Some(200));
        let got = lines(&path);
        assert_eq!(got.len(), 5);
        // offsets continue per topic/partition
        let last: serde_json::Value = serde_json::from_str(&got[4]).expect("json");
        assert_eq!(last["offset"], 4);
        assert_eq!(last["key"], "{\"id\":1}");
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("other.jsonl");
        std::fs::write(&path, "hello\n").expect("write");
        let err = FileSink::open(&path, 1).err().expect("refused");
        assert!(
            err.to_string().contains("not a dump this capture wrote"),
            "{err}"
        );
    }
}
