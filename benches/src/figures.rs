//! The headline figures of one bench run, handed to the `headline` bench as a small JSON file
//! (`<target>/bench-data/figures/<bench>.json`) beside the bench's markdown section, so that
//! `headline` reads numbers instead of parsing tables written for people.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Named figures of one run. A figure that was not measured is absent from `values`; `missing`
/// may say why, by its name or by a prefix ending in `/` that covers a group (`10000/` for a
/// whole data set size that failed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Measured values (only finite ones: JSON has no NaN, and NaN means "not measured" in the
    /// benches anyway).
    pub values: BTreeMap<String, f64>,
    /// Why a figure (or a `prefix/` group of figures) was not measured.
    pub missing: BTreeMap<String, String>,
    /// Words about the run the figures came from (dump sizes, knobs), by name.
    pub notes: BTreeMap<String, String>,
}

impl Figures {
    /// Records `value` under `name` when it is finite (a NaN or infinite reading stays absent).
    pub fn set(&mut self, name: impl Into<String>, value: f64) {
        if value.is_finite() {
            self.values.insert(name.into(), value);
        }
    }

    /// Records why `name` (or every figure under a `prefix/`) was not measured.
    pub fn miss(&mut self, name: impl Into<String>, why: impl Into<String>) {
        self.missing.insert(name.into(), why.into());
    }

    /// Records a note about the run.
    pub fn note(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.notes.insert(name.into(), text.into());
    }

    /// The value of `name`, if measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// Why `name` is absent: its own reason, else the reason of the longest `prefix/` group it
    /// belongs to.
    pub fn why_missing(&self, name: &str) -> Option<&str> {
        if let Some(why) = self.missing.get(name) {
            return Some(why);
        }
        self.missing
            .iter()
            .filter(|(k, _)| k.ends_with('/') && name.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, why)| why.as_str())
    }

    /// Where bench `bench` writes its figures under the target directory.
    pub fn path(target: &Path, bench: &str) -> PathBuf {
        target
            .join("bench-data")
            .join("figures")
            .join(format!("{bench}.json"))
    }

    /// Writes the figures of bench `bench` (see [`Figures::path`]).
    pub fn write(&self, target: &Path, bench: &str) -> Result<PathBuf, String> {
        let path = Self::path(target, bench);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Reads what [`Figures::write`] wrote.
    pub fn read(path: &Path) -> Result<Figures, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_stay_absent_and_groups_explain_them() {
        let mut f = Figures::default();
        f.set("a", 1.5);
        f.set("b", f64::NAN);
        f.miss("10000/", "the 10000-person data set failed");
        f.miss("10000/views/p99", "no such probe");
        assert_eq!(f.get("a"), Some(1.5));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.why_missing("10000/views/p99"), Some("no such probe"));
        assert_eq!(
            f.why_missing("10000/grafana/p50"),
            Some("the 10000-person data set failed")
        );
        assert_eq!(f.why_missing("100000/grafana/p50"), None);
        let json = serde_json::to_string(&f).expect("serialises");
        let back: Figures = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, f);
    }
}
