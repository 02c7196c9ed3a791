//! Opening a log: list the segments, skip the ones below `verify_after`, verify the rest,
//! cut a torn tail, refuse or cut mid-log corruption; then read the records back.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::{dropped_after, first_seq_of};
use super::read::{BadRecord, Chain, Item, Records, Span};
use super::segments::{
    create_segment, file_len, list, raise_seq_floor, read_seq_floor, save_tail, segment_name,
    unused_path, SegmentFile,
};
use super::writer::{DurableHook, LogWriter, WriterStart};
use super::{
    io_err, CutReport, LogError, LogOptions, LogRecord, MidLogCorruption, RecordAt, Recovery,
    SegmentsSummary,
};
use crate::fs::sync_dir;

/// A retained segment as open left it.
#[derive(Clone, Debug)]
struct Segment {
    number: u64,
    path: PathBuf,
    /// Verified length for scanned segments; the file's length for skipped ones.
    len: u64,
    /// The seq of its first record (`None` when empty, or unknown).
    first_seq: Option<u64>,
}

/// An opened, recovered log: replay it, then turn it into a [`LogWriter`].
#[derive(Debug)]
pub struct EmbeddedLog {
    dir: PathBuf,
    /// In order; never empty; the last is the active segment.
    segments: Vec<Segment>,
    file: File,
    next_seq: u64,
    last_seq: Option<u64>,
    segment_bytes: u64,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`, verifies every record and truncates a torn
    /// tail, refusing a log that is corrupt before its end; see the module docs.
    pub fn open(dir: &Path) -> Result<(EmbeddedLog, Recovery), LogError> {
        EmbeddedLog::open_opts(dir, &LogOptions::default())
    }

    /// [`EmbeddedLog::open`] with an explicit policy for corruption before the end.
    pub fn open_with(
        dir: &Path,
        on_mid_log: MidLogCorruption,
    ) -> Result<(EmbeddedLog, Recovery), LogError> {
        EmbeddedLog::open_opts(
            dir,
            &LogOptions {
                on_mid_log,
                ..LogOptions::default()
            },
        )
    }

    /// Opens (creating if needed) the log in `dir` with `options`: segments holding only
    /// records at or below `verify_after` are not read beyond their first record; the others
    /// are verified, a torn tail of the last one is cut, and a bad record anywhere else is
    /// refused or cut as `on_mid_log` says. See the module docs.
    pub fn open_opts(
        dir: &Path,
        options: &LogOptions,
    ) -> Result<(EmbeddedLog, Recovery), LogError> {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let mut files = list(dir)?;
        if files.is_empty() {
            let path = dir.join(segment_name(1));
            create_segment(dir, 1).map_err(io_err("creating", &path))?;
            files.push(SegmentFile { number: 1, path });
        }
        let mut segments = files
            .into_iter()
            .map(|f| {
                Ok(Segment {
                    len: file_len(&f.path)?,
                    number: f.number,
                    path: f.path,
                    first_seq: None,
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        let skipped = skip_verified(&mut segments, options.verify_after)?;
        let mut recovery = Recovery {
            segments_skipped: skipped as u64,
            ..Recovery::default()
        };
        let spans = segments[skipped..]
            .iter()
            .map(|s| Span::new(s.number, &s.path, u64::MAX))
            .collect();
        let mut chain = Chain::new(spans);
        let mut bad = None;
        while let Some(item) = chain.step()? {
            match item {
                Item::Record { index, at, record } => {
                    recovery.records += 1;
                    recovery.events += record.events.len() as u64;
                    recovery.last_at = Some(at);
                    recovery.last_seq = Some(record.seq);
                    segments[skipped + index]
                        .first_seq
                        .get_or_insert(record.seq);
                }
                Item::SegmentEnd { index, end } => segments[skipped + index].len = end,
                Item::Bad(found) => {
                    bad = Some(BadRecord {
                        index: skipped + found.index,
                        ..found
                    })
                }
            }
        }
        // a cut or a retirement of an earlier start removed records whose seqs stay unused
        let mut next_seq = recovery
            .last_seq
            .map_or(1, |s| s + 1)
            .max(read_seq_floor(dir)?);
        if let Some(bad) = bad {
            let cut = cut(dir, &mut segments, bad, options.on_mid_log, &mut next_seq)?;
            recovery.cut = Some(cut);
        }
        let active = segments.last().ok_or_else(|| LogError::Io {
            context: "opening",
            path: dir.to_path_buf(),
            source: std::io::Error::other("no segment"),
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&active.path)
            .map_err(io_err("opening", &active.path))?;
        recovery.end = active.len;
        recovery.segments = segments.len() as u64;
        let log = EmbeddedLog {
            dir: dir.to_path_buf(),
            segments,
            file,
            next_seq,
            last_seq: recovery.last_seq,
            segment_bytes: options.segment_bytes,
        };
        Ok((log, recovery))
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active (last) segment file.
    pub fn path(&self) -> &Path {
        &self.active().path
    }

    /// The active segment's verified length.
    pub fn len(&self) -> u64 {
        self.active().len
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.len == 0)
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Segments, bytes and seqs of the log as opened.
    pub fn segments(&self) -> SegmentsSummary {
        SegmentsSummary {
            segments: self.segments.len() as u64,
            bytes: self.segments.iter().map(|s| s.len).sum(),
            first_seq: self.segments.iter().find_map(|s| s.first_seq),
            last_seq: self.last_seq,
        }
    }

    fn active(&self) -> &Segment {
        // open never leaves the list empty
        &self.segments[self.segments.len() - 1]
    }

    /// The records from the start, one at a time (memory: one record).
    pub fn records(&self) -> Result<Records, LogError> {
        self.records_after(0)
    }

    /// The records with a seq above `seq`, one at a time. Segments holding only records at or
    /// below it are not opened (their first seqs, learned at open, say so), which is how a
    /// restart after a checkpoint replays only the tail, and why a retired or unverified
    /// segment before it does not matter.
    pub fn records_after(&self, seq: u64) -> Result<Records, LogError> {
        // every record before the last segment starting at or below seq + 1 is at or below seq
        let start = self
            .segments
            .iter()
            .rposition(|s| s.first_seq.is_some_and(|f| f <= seq.saturating_add(1)))
            .unwrap_or(0);
        let spans = self.segments[start..]
            .iter()
            .map(|s| Span::new(s.number, &s.path, s.len))
            .collect();
        Ok(Records::new(spans, seq))
    }

    /// Calls `f(at, record)` for every record, in log order; returns how many there were.
    /// This is how the engine is rebuilt at startup.
    pub fn replay(&self, mut f: impl FnMut(RecordAt, &LogRecord)) -> Result<u64, LogError> {
        let mut n = 0;
        for item in self.records()? {
            let (at, record) = item?;
            f(at, &record);
            n += 1;
        }
        Ok(n)
    }

    /// Starts the writer thread. `on_durable` is called on that thread after each fsync with the
    /// batch's records in log order, before their appends return (so a caller that gets its
    /// `Appended` back knows the hook has seen the record). If the active segment is already
    /// at or over the segment size (a smaller size than the last run's), the next segment is
    /// created first.
    pub fn into_writer(self, on_durable: Option<DurableHook>) -> Result<LogWriter, LogError> {
        let EmbeddedLog {
            dir,
            segments,
            mut file,
            next_seq,
            last_seq,
            segment_bytes,
        } = self;
        let active = &segments[segments.len() - 1];
        file.seek(SeekFrom::Start(active.len))
            .map_err(io_err("seeking", &active.path))?;
        let start = WriterStart {
            segment: active.number,
            end: active.len,
            next_seq,
            last_seq,
            segment_bytes,
        };
        LogWriter::open(dir, file, start, on_durable)
    }
}

/// How many leading segments need no scan: segment k is skipped when the next one's first
/// record (read alone) is at or below `verify_after + 1`, so every record of k is at or below
/// `verify_after`. The last segment is always scanned (its end is where appends go), and so
/// is one before an empty or unreadable start (its last seq is the log's). Fills `first_seq`
/// of the segments it read.
fn skip_verified(segments: &mut [Segment], verify_after: u64) -> Result<usize, LogError> {
    if verify_after == 0 {
        return Ok(0);
    }
    let first = |s: &Segment| first_seq_of(&s.path).map_err(io_err("reading", &s.path));
    segments[0].first_seq = first(&segments[0])?;
    let mut skipped = 0;
    while skipped + 1 < segments.len() {
        let next = first(&segments[skipped + 1])?;
        segments[skipped + 1].first_seq = next;
        let Some(next) = next else { break };
        let increasing = segments[skipped].first_seq.is_none_or(|f| f < next);
        if !increasing || next > verify_after.saturating_add(1) {
            break;
        }
        skipped += 1;
    }
    Ok(skipped)
}

/// Handles the first bad record: counts the valid records it would drop (later in its segment
/// and in every later segment), refuses if there are some and the policy says so, else cuts
/// there. Later segments are moved aside newest first, each rename made durable, so a crash
/// part-way leaves contiguous segments that still end in the bad record; the floor is raised
/// before anything moves.
fn cut(
    dir: &Path,
    segments: &mut Vec<Segment>,
    bad: BadRecord,
    on_mid_log: MidLogCorruption,
    next_seq: &mut u64,
) -> Result<CutReport, LogError> {
    let BadRecord {
        index,
        offset,
        reason,
        extent,
    } = bad;
    let path = segments[index].path.clone();
    let later = segments[index + 1..].iter().map(|s| s.path.as_path());
    let dropped = dropped_after(&path, offset, &reason, extent, later)?;
    if dropped.records > 0 && on_mid_log == MidLogCorruption::Refuse {
        return Err(LogError::CorruptBeforeEnd {
            path,
            offset,
            reason,
            records_dropped: dropped.records,
        });
    }
    // never reuse the seq (= `source.pos`) of a dropped record that was acknowledged, in this
    // start or any later one (the dropped records are gone from the log)
    if let Some(max) = dropped.max_seq {
        *next_seq = (*next_seq).max(max + 1);
        raise_seq_floor(dir, *next_seq)?;
    }
    let mut bytes_cut = segments[index].len.saturating_sub(offset);
    let mut moved_aside = Vec::new();
    for later in segments.drain(index + 1..).rev() {
        let name = format!("{}.cut-0", segment_name(later.number));
        let to = unused_path(dir, &name);
        fs::rename(&later.path, &to).map_err(io_err("moving aside", &later.path))?;
        sync_dir(dir).map_err(io_err("syncing", dir))?;
        bytes_cut += later.len;
        moved_aside.push(to);
    }
    moved_aside.reverse();
    let saved = unused_path(
        dir,
        &format!("{}.cut-{offset}", segment_name(segments[index].number)),
    );
    save_tail(&path, offset, &saved).map_err(io_err("saving the cut tail to", &saved))?;
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    file.set_len(offset).map_err(io_err("truncating", &path))?;
    file.sync_all().map_err(io_err("syncing", &path))?;
    sync_dir(dir).map_err(io_err("syncing", dir))?;
    segments[index].len = offset;
    if offset == 0 {
        segments[index].first_seq = None;
    }
    let cut = CutReport {
        segment: path.clone(),
        offset,
        bytes_cut,
        reason,
        records_dropped: dropped.records,
        saved_to: Some(saved.clone()),
        moved_aside,
    };
    if cut.records_dropped > 0 {
        tracing::error!(
            path = %path.display(),
            offset,
            bytes_cut = cut.bytes_cut,
            records_dropped = cut.records_dropped,
            segments_moved_aside = cut.moved_aside.len(),
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
    Ok(cut)
}
