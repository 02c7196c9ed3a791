//! The checkpoint directory (`<data-dir>/checkpoints`): writing a checkpoint so that it appears
//! whole or not at all, keeping the newest few, and finding the newest one that verifies.
//!
//! Publication order: the state file is written as `*.state.tmp`, fsync'd, renamed to
//! `checkpoint-N.state`; then the manifest `checkpoint-N.json` is written the same way
//! (`lpm_connectors::fs::replace_file`: temp file, fsync, rename, directory fsync). A crash at
//! any point leaves either the previous checkpoints only, or those plus a complete new one.
//! Retention deletes manifests first, then the state files no manifest names, so a manifest
//! never points at a deleted state file.

use std::path::{Path, PathBuf};

use lpm_connectors::fs::{replace_file, sync_dir};

use super::file::{self, CheckpointFileError, Manifest};

/// The directory under the data dir.
pub const DIR: &str = "checkpoints";

/// The manifest's file name for checkpoint `number`.
pub fn manifest_name(number: u64) -> String {
    format!("checkpoint-{number:012}.json")
}

/// The state file's name for checkpoint `number`.
pub fn state_name(number: u64) -> String {
    format!("checkpoint-{number:012}.state")
}

/// The number in a checkpoint file name (`checkpoint-000000000042.json` -> 42).
fn number_of(name: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix("checkpoint-")?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// A checkpoint that was skipped at recovery, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The manifest.
    pub manifest: PathBuf,
    /// Why it was not used.
    pub why: String,
}

/// The checkpoint directory.
#[derive(Clone, Debug)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// `<data_dir>/checkpoints`, created when missing.
    pub fn open(data_dir: &Path) -> Result<CheckpointDir, CheckpointFileError> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(|source| CheckpointFileError::Io {
            context: "creating",
            path: dir.display().to_string(),
            source,
        })?;
        Ok(CheckpointDir { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Manifest numbers present, newest first.
    pub fn numbers(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .names()
            .iter()
            .filter_map(|n| number_of(n, ".json"))
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// The number the next checkpoint takes: above every file present, published or not.
    pub fn next_number(&self) -> u64 {
        self.names()
            .iter()
            .filter_map(|n| {
                number_of(n, ".json")
                    .or_else(|| number_of(n, ".state"))
                    .or_else(|| number_of(n, ".state.tmp"))
            })
            .max()
            .map_or(1, |n| n + 1)
    }

    /// The path a new state file of checkpoint `number` is written to before it is renamed.
    pub fn temp_state(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{}.tmp", state_name(number)))
    }

    /// Publishes checkpoint `manifest.number`: renames its written (and fsync'd) temporary
    /// state file into place, then writes the manifest. Once this returns, the checkpoint is
    /// durable and a restart may use it.
    pub fn publish(&self, manifest: &Manifest) -> Result<(), CheckpointFileError> {
        let temp = self.temp_state(manifest.number);
        let state = self.dir.join(&manifest.state_file);
        std::fs::rename(&temp, &state).map_err(|source| CheckpointFileError::Io {
            context: "renaming",
            path: temp.display().to_string(),
            source,
        })?;
        sync_dir(&self.dir).map_err(|source| CheckpointFileError::Io {
            context: "syncing",
            path: self.dir.display().to_string(),
            source,
        })?;
        let path = self.dir.join(manifest_name(manifest.number));
        let json =
            serde_json::to_vec_pretty(manifest).map_err(|e| CheckpointFileError::Invalid {
                path: path.display().to_string(),
                why: format!("encoding: {e}"),
            })?;
        replace_file(&path, &json).map_err(|source| CheckpointFileError::Io {
            context: "writing",
            path: path.display().to_string(),
            source,
        })?;
        Ok(())
    }

    /// Keeps the newest `keep` checkpoints (at least one) and removes everything else:
    /// older manifests first, then state and temporary files that no kept manifest names.
    /// Returns the numbers removed. Run only by the one thread that takes checkpoints.
    pub fn retain(&self, keep: usize) -> Vec<u64> {
        let numbers = self.numbers();
        let kept: Vec<u64> = numbers.iter().copied().take(keep.max(1)).collect();
        let mut removed = Vec::new();
        for &n in numbers.iter().skip(kept.len()) {
            if self.remove(&manifest_name(n)) {
                removed.push(n);
            }
        }
        for name in self.names() {
            let n = number_of(&name, ".state").or_else(|| number_of(&name, ".state.tmp"));
            if n.is_some_and(|n| !kept.contains(&n)) {
                self.remove(&name);
            }
        }
        let _ = sync_dir(&self.dir);
        removed
    }

    /// The newest checkpoint whose manifest parses, is for `source`, and whose state file
    /// verifies ([`file::verify`]), with the newer ones that did not and why.
    pub fn newest_valid(&self, source: &str) -> (Option<(Manifest, PathBuf)>, Vec<Rejected>) {
        self.newest_valid_from(source, "")
    }

    /// [`newest_valid`](Self::newest_valid) of the checkpoints whose positions are in `origin`
    /// ([`super::Checkpointable::origin`]).
    pub fn newest_valid_from(
        &self,
        source: &str,
        origin: &str,
    ) -> (Option<(Manifest, PathBuf)>, Vec<Rejected>) {
        let mut rejected = Vec::new();
        for checked in self.checked(source, origin) {
            match checked {
                Ok(found) => return (Some(found), rejected),
                Err(r) => rejected.push(r),
            }
        }
        (None, rejected)
    }

    /// Every checkpoint whose positions are in `origin` and that verifies, newest first, with
    /// the ones that did not and why: a cluster process offers them all, and the cluster loads
    /// the newest tick every process holds.
    pub fn valid_from(
        &self,
        source: &str,
        origin: &str,
    ) -> (Vec<(Manifest, PathBuf)>, Vec<Rejected>) {
        let (mut valid, mut rejected) = (Vec::new(), Vec::new());
        for checked in self.checked(source, origin) {
            match checked {
                Ok(found) => valid.push(found),
                Err(r) => rejected.push(r),
            }
        }
        (valid, rejected)
    }

    /// Each checkpoint, newest first, checked as it is reached (a state file is only read when
    /// the caller gets that far); an unusable one is logged.
    fn checked<'a>(
        &'a self,
        source: &'a str,
        origin: &'a str,
    ) -> impl Iterator<Item = Result<(Manifest, PathBuf), Rejected>> + 'a {
        self.numbers().into_iter().map(move |n| {
            let path = self.dir.join(manifest_name(n));
            self.check(&path, source, origin).map_err(|why| {
                tracing::error!(manifest = %path.display(), %why,
                    "Checkpoint unusable; trying the previous one.");
                Rejected {
                    manifest: path,
                    why,
                }
            })
        })
    }

    fn check(
        &self,
        path: &Path,
        source: &str,
        origin: &str,
    ) -> Result<(Manifest, PathBuf), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading the manifest: {e}"))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("the manifest: {e}"))?;
        if manifest.format != file::FORMAT {
            return Err(format!(
                "format {}, this build reads {}",
                manifest.format,
                file::FORMAT
            ));
        }
        if manifest.position.source() != source {
            return Err(format!(
                "taken from {}, this start reads {source}",
                manifest.position.source()
            ));
        }
        if manifest.origin != origin {
            return Err(format!(
                "its positions are in {:?}, this start reads {origin:?}",
                manifest.origin
            ));
        }
        if manifest.state_file != state_name(manifest.number) {
            return Err(format!("names state file {:?}", manifest.state_file));
        }
        let state = self.dir.join(&manifest.state_file);
        file::verify(&state, &manifest).map_err(|e| e.to_string())?;
        Ok((manifest, state))
    }

    fn names(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remove(&self, name: &str) -> bool {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(file = name, error = %e, "Could not remove an old checkpoint file.");
                false
            }
        }
    }
}
