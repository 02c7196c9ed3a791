//! Opening a log: recovery (verify, cut a torn tail, refuse or cut mid-log corruption) and
//! reading the records back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::{count_valid_from, Scanner, Step};
use super::segments::{check_layout, read_seq_floor, save_tail, write_seq_floor, SEQ_FLOOR};
use super::writer::{DurableHook, LogWriter};
use super::{io_err, CutReport, LogError, LogRecord, Recovery, SEGMENT};
use crate::fs::sync_dir;

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
