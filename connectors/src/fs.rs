//! Replacing a small file atomically and durably: the one implementation behind the log's seq
//! floor, the capture's offsets file and the auth file.
//!
//! A reader (or a restart after `kill -9` or a power cut) sees either the old content or the
//! new, never a mix or an empty file: the bytes go to a temporary file in the same directory
//! (a rename is only atomic within one file system), that file is fsync'd, renamed over the
//! target, and then the directory is fsync'd so the rename itself survives a crash.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` (mode: the process's default for new files).
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<Metadata> {
    replace(path, bytes, None)
}

/// Replaces `path` with `bytes`, the new file having permission bits `mode` (Unix; ignored
/// elsewhere) from the moment it exists, so a secret is never readable by others, not even
/// as the temporary file.
pub fn replace_file_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Metadata> {
    replace(path, bytes, Some(mode))
}

/// Makes a directory entry change (create, rename) durable. A no-op outside Unix, where a
/// directory cannot be opened for fsync.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Returns the metadata of the new file (a rename keeps the inode, so it is the metadata of
/// `path` once replaced). The temporary file is removed when anything fails.
fn replace(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<Metadata> {
    let dir = parent(path);
    let tmp = temporary(path, dir)?;
    let result = write_synced(&tmp, bytes, mode).and_then(|meta| {
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(meta)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.<name>.tmp.<pid>.<n>` beside `path`: unique per process and call, so two processes (a
/// server and `lpm user add`) or two threads never write the same temporary file.
fn temporary(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!(
        ".{}.tmp.{}.{n}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn write_synced(tmp: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<Metadata> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut f = options.open(tmp)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        // `mode` only applies when the file is created, and the umask may have narrowed it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    f.write_all(bytes)?;
    f.sync_all()?;
    f.metadata()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_then_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offsets.json");
        replace_file(&path, b"first").expect("create");
        assert_eq!(fs::read(&path).expect("read"), b"first");
        let meta = replace_file(&path, b"second, longer").expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"second, longer");
        assert_eq!(meta.len(), 14);
        assert_eq!(names(dir.path()), vec!["offsets.json".to_string()]);
    }

    #[test]
    fn the_returned_metadata_is_the_replaced_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.json");
        let meta = replace_file(&path, b"{}").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(meta.ino(), fs::metadata(&path).expect("meta").ino());
        }
        assert_eq!(meta.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_mode_applies_to_the_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        fs::write(&path, "old").expect("old");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        replace_file_with_mode(&path, b"new", 0o600).expect("replace");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert_eq!(fs::read(&path).expect("read"), b"new");
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        // the target is a non-empty directory, so the rename fails
        let path = dir.path().join("taken");
        fs::create_dir(&path).expect("mkdir");
        fs::write(path.join("inside"), "x").expect("inside");
        assert!(replace_file(&path, b"bytes").is_err());
        assert_eq!(names(dir.path()), vec!["taken".to_string()]);
        assert!(path.join("inside").is_file());
    }

    #[test]
    fn a_bare_file_name_is_replaced_in_the_current_directory() {
        assert_eq!(parent(Path::new("offsets.json")), Path::new("."));
        assert_eq!(parent(Path::new("a/offsets.json")), Path::new("a"));
    }
}
