//! The data directory's exclusive lock: one `lpm serve` per data directory.
//!
//! Two servers on one directory both appended to the embedded log from their own idea of its
//! end and handed out the same ids, so the second overwrote the first's acknowledged records
//! with valid checksums (a silent loss found in the hardening review). [`DataDirLock::acquire`]
//! takes an exclusive advisory lock (`flock`) on `<dir>/lpm.lock` for the life of the process,
//! and a second process fails at once with [`LockError::Held`], naming the lock file and the
//! holder's PID. The kernel releases the lock when the holder exits in any way, kill -9
//! included, so a stale lock file never blocks a restart: only a live holder does.
//!
//! The PID written into the file is informational (for the error message); the lock itself is
//! the `flock`, never the file's presence or content.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "lpm.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error(
        "the data directory {dir} is in use by another lpm process ({holder}; lock file {lock}); \
         stop it first, or give this process its own --data-dir"
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// `pid N` as the holder wrote it, or `pid unknown`.
        holder: String,
    },
    /// The directory or lock file could not be created, opened or locked.
    #[error("locking the data directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An exclusive lock on a data directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it, or fails at once if another process holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text) {
                    Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
                    _ => "pid unknown".to_string(),
                };
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
        // ours now: say who holds it, for the next process's error message
        let said = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "pid {}", std::process::id()))
            .and_then(|()| file.sync_data());
        if let Err(e) = said {
            tracing::warn!(path = %path.display(), error = %e, "Could not write the PID into the data directory's lock file (the lock is held).");
        }
        Ok(DataDirLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // the file stays (removing it would race with a new holder); the flock goes
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_fails_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        // flock locks belong to the open file description: a second open in this process
        // conflicts exactly as a second process would
        let err = DataDirLock::acquire(dir.path()).expect_err("second lock must fail");
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(LOCK_FILE), "{text}");
        drop(first);
        // released on drop: the next holder gets it, and the stale PID text does not matter
        let again = DataDirLock::acquire(dir.path()).expect("lock after release");
        assert_eq!(again.path(), dir.path().join(LOCK_FILE));
    }

    #[test]
    fn a_missing_dir_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        let lock = DataDirLock::acquire(&nested).expect("lock");
        assert!(lock.path().exists());
    }
}
