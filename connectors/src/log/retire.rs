//! Retirement: removing (or archiving) the segments a checkpoint covers, so the log does not
//! grow without bound.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::frame::{count_frames, first_seq_of, scan_file};
use super::segments::{file_len, list, raise_seq_floor, retry_interrupted, SegmentFile};
use super::{io_err, LogError};
use crate::fs::sync_dir;

/// What [`retire_through`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetireSummary {
    /// Segments removed from the log directory.
    pub segments: u64,
    /// Their total size.
    pub bytes: u64,
    /// Records in them (counted by their headers).
    pub records: u64,
    /// The lowest seq the log can still hold after retirement (the seq floor it raised).
    pub next_seq_floor: Option<u64>,
    /// Where they went: the archive's files, or empty when they were deleted.
    pub archived: Vec<PathBuf>,
}

/// Deletes, or moves into `archive` (created if needed), every segment of the log in `dir`
/// all of whose records have a seq at or below `seq`, oldest first. The last segment is never
/// retired. Safe while a writer appends (it only writes the last segment, and a segment is
/// judged by the first seq of the one after it, which is fixed once that one exists); not
/// concurrently with another retirement of the same directory (use
/// [`LogWriter::retire_through`](super::LogWriter::retire_through) for that), nor with a
/// reader still to reach a retired segment.
///
/// The seq floor is raised past the retired records before any file goes, so a log left with
/// only an empty segment still never reuses their seqs. Each removal is made durable before
/// the next, so a crash leaves the numbers contiguous (a gap would refuse the next start).
pub fn retire_through(
    dir: &Path,
    seq: u64,
    archive: Option<&Path>,
) -> Result<RetireSummary, LogError> {
    retire(dir, seq, archive, None)
}

/// [`retire_through`], also keeping segment `active` and everything after it.
pub(super) fn retire(
    dir: &Path,
    seq: u64,
    archive: Option<&Path>,
    active: Option<u64>,
) -> Result<RetireSummary, LogError> {
    let files = list(dir)?;
    let Some(last) = files.last() else {
        return Ok(RetireSummary::default());
    };
    let keep_from = active.map_or(last.number, |a| a.min(last.number));
    let mut retired: Vec<&SegmentFile> = Vec::new();
    let mut floor = None;
    for (segment, next) in files.iter().zip(&files[1..]) {
        if segment.number >= keep_from {
            break;
        }
        let Some(bound) = seq_bound(segment, next)? else {
            break;
        };
        if bound.is_some_and(|b| b > seq.saturating_add(1)) {
            break;
        }
        retired.push(segment);
        floor = bound.or(floor);
    }
    let mut summary = RetireSummary {
        next_seq_floor: floor,
        ..RetireSummary::default()
    };
    if retired.is_empty() {
        return Ok(summary);
    }
    if let Some(floor) = floor {
        raise_seq_floor(dir, floor)?;
    }
    if let Some(archive) = archive {
        fs::create_dir_all(archive).map_err(io_err("creating", archive))?;
        if let Some(parent) = archive.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(io_err("syncing", parent))?;
        }
    }
    for segment in retired {
        let path = &segment.path;
        summary.bytes += file_len(path)?;
        summary.records += count_frames(path).map_err(io_err("reading", path))?;
        match archive {
            Some(archive) => {
                let to =
                    move_into(path, archive).map_err(io_err("moving into the archive", path))?;
                summary.archived.push(to);
            }
            None => fs::remove_file(path).map_err(io_err("removing", path))?,
        }
        sync_dir(dir).map_err(io_err("syncing", dir))?;
        summary.segments += 1;
    }
    tracing::info!(
        dir = %dir.display(),
        through_seq = seq,
        segments = summary.segments,
        bytes = summary.bytes,
        records = summary.records,
        archived = archive.is_some(),
        "Retired embedded log segments."
    );
    Ok(summary)
}

/// One past the highest seq `segment` can hold: the first seq of `next` (every record of a
/// segment is below the next one's first), or, when `next` has no readable first record yet
/// (empty, or being written), `segment`'s own last seq + 1 from a scan. `Some(None)` for an
/// empty segment, `None` when it cannot be told (a bad record: keep the segment).
fn seq_bound(segment: &SegmentFile, next: &SegmentFile) -> Result<Option<Option<u64>>, LogError> {
    if let Some(first) = first_seq_of(&next.path).map_err(io_err("reading", &next.path))? {
        return Ok(Some(Some(first)));
    }
    let scan = scan_file(&segment.path, 0).map_err(io_err("reading", &segment.path))?;
    Ok(scan.clean.then_some(scan.max_seq.map(|s| s + 1)))
}

/// Moves `path` into `dir` durably: a rename, or across file systems a copy (fsync'd) and a
/// removal. Returns the new path.
fn move_into(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file"))?;
    let to = dir.join(name);
    match fs::rename(path, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            retry_interrupted(|| {
                let mut src = File::open(path)?;
                let mut dst = File::create(&to)?;
                io::copy(&mut src, &mut dst)?;
                dst.sync_all()
            })?;
            sync_dir(dir)?;
            fs::remove_file(path)?;
        }
        Err(e) => return Err(e),
    }
    sync_dir(dir)?;
    Ok(to)
}
