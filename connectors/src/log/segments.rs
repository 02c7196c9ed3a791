//! The files of a log directory: segment names and their listing, the seq floor, and the
//! copies a cut keeps (the cut tail, the segments moved aside).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::first_seq_of;
use super::{io_err, LogError, SegmentsSummary};
use crate::fs::sync_dir;

const PREFIX: &str = "lpm-log.";

/// The file name of segment `number`: `lpm-log.000001`, `lpm-log.000002`, ...
pub fn segment_name(number: u64) -> String {
    format!("{PREFIX}{number:06}")
}

/// A segment file in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SegmentFile {
    pub number: u64,
    pub path: PathBuf,
}

/// The number of a segment's canonical name; `None` for any other name (`*.cut-*` copies,
/// the seq floor, temporary files, `lpm-log.1`).
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.parse().ok()?;
    (segment_name(number) == name).then_some(number)
}

/// The segments of `dir` in order. Refuses a gap in the numbers: the first may be above 1
/// (retirement removes from the front), but a hole in the middle is lost records.
pub(super) fn list(dir: &Path) -> Result<Vec<SegmentFile>, LogError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_name) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    if let Some(w) = numbers.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(LogError::SegmentGap {
            dir: dir.to_path_buf(),
            missing: segment_name(w[0] + 1),
            before: segment_name(w[0]),
            after: segment_name(w[1]),
        });
    }
    Ok(numbers
        .into_iter()
        .map(|number| SegmentFile {
            number,
            path: dir.join(segment_name(number)),
        })
        .collect())
}

/// Creates the empty segment `number` durably (the file, then its directory entry), failing
/// if it exists.
pub(super) fn create_segment(dir: &Path, number: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(segment_name(number)))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// The size of a file.
pub(super) fn file_len(path: &Path) -> Result<u64, LogError> {
    Ok(fs::metadata(path)
        .map_err(io_err("reading metadata of", path))?
        .len())
}

/// Segments, bytes and first seq of the log in `dir`; `last_seq` comes from the caller, who
/// knows the newest durable record without reading the active segment.
pub(super) fn summarize(dir: &Path, last_seq: Option<u64>) -> Result<SegmentsSummary, LogError> {
    let mut summary = SegmentsSummary {
        last_seq,
        ..SegmentsSummary::default()
    };
    for segment in list(dir)? {
        let len = file_len(&segment.path)?;
        summary.segments += 1;
        summary.bytes += len;
        if summary.first_seq.is_none() && len > 0 {
            summary.first_seq =
                first_seq_of(&segment.path).map_err(io_err("reading", &segment.path))?;
        }
    }
    Ok(summary)
}

/// The lowest seq a new record may take, written when records leave the log (a cut drops
/// them, or retirement removes the last segment that held any): their seqs were acknowledged
/// as source positions and must never name another record.
pub(super) const SEQ_FLOOR: &str = "lpm-seq-floor";

pub(super) fn read_seq_floor(dir: &Path) -> Result<u64, LogError> {
    let path = dir.join(SEQ_FLOOR);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| LogError::Io {
            context: "reading",
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, format!("not a seq: {e}")),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err("reading", &path)(e)),
    }
}

/// Raises the floor to `seq` (never lowers it), atomically and durably: a torn floor could
/// hand out a used seq.
pub(super) fn raise_seq_floor(dir: &Path, seq: u64) -> Result<(), LogError> {
    if read_seq_floor(dir)? >= seq {
        return Ok(());
    }
    let path = dir.join(SEQ_FLOOR);
    crate::fs::replace_file(&path, format!("{seq}\n").as_bytes())
        .map(drop)
        .map_err(io_err("writing", &path))
}

/// A path for `name` in `dir` that names no existing file (`name`, `name.1`, `name.2`, ...), so
/// a second cut at the same place never overwrites the copy of the first.
pub(super) fn unused_path(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 0u32;
    while fs::symlink_metadata(&path).is_ok() {
        n += 1;
        path = dir.join(format!("{name}.{n}"));
    }
    path
}

/// Copies `path[offset..]` to `to`, durably.
pub(super) fn save_tail(path: &Path, offset: u64, to: &Path) -> io::Result<()> {
    retry_interrupted(|| {
        let mut src = File::open(path)?;
        src.seek(SeekFrom::Start(offset))?;
        let mut dst = File::create(to)?;
        io::copy(&mut src, &mut dst)?;
        dst.sync_all()
    })
}

/// Runs `op` again while it fails with `Interrupted`. `io::copy` between two files uses
/// `copy_file_range`, which a signal can interrupt (EINTR) mid-copy, and unlike `write_all`
/// std does not retry it there; a signal during recovery (a profiler's, a timer's) must not
/// refuse the start. `op` must be safe to redo from the beginning (found by fuzz/log_recovery
/// under libFuzzer's timer signal).
pub(super) fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}
