//! The files beside the segments: the seq floor, saved cut tails, and the layout check.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::Path;

use super::{io_err, LogError, SEGMENT};

/// The lowest seq a new record may take, written when a cut drops records (their seqs were
/// acknowledged as source positions and must never name another record).
pub(super) const SEQ_FLOOR: &str = "lpm-seq-floor";

pub(super) fn read_seq_floor(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a seq: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replaces the floor atomically and durably (a torn floor could hand out a used seq).
pub(super) fn write_seq_floor(path: &Path, seq: u64) -> io::Result<()> {
    crate::fs::replace_file(path, format!("{seq}\n").as_bytes()).map(drop)
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

/// Refuses directories holding segments this version does not write (rotation).
pub(super) fn check_layout(dir: &Path) -> Result<(), LogError> {
    let entries = fs::read_dir(dir).map_err(io_err("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("lpm-log.") && name != SEGMENT && !name.contains(".cut-") {
            return Err(LogError::Unsupported {
                path: dir.to_path_buf(),
                detail: format!("segment {name} (only {SEGMENT} is supported)"),
            });
        }
    }
    Ok(())
}
