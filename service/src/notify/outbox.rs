//! The outbox: every notification is appended here, fsync'd, before delivery starts, and a
//! delivered-marker is appended (fsync'd) after a target answered 2xx. A restart reads it back
//! and re-sends what has no marker: delivery is at least once, and receivers drop repeats by
//! the `Idempotency-Key` (the notification's id).
//!
//! Why a file of its own and not records in the embedded log: the log is the system of record
//! that the engine replays and `lpm log export` dumps as Debezium events; delivery markers are
//! not case data, and MySQL mode (which has no embedded log) needs the same outbox. One JSON
//! line per record, appended and fsync'd; a line torn by a crash is cut at open.
//!
//! ```text
//! {"add":{"n":{...notification...},"to":["webhook-1","slack"]}}
//! {"done":{"id":"case_filed:7","target":"webhook-1"}}
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::notification::Notification;

/// The outbox's file name in the data dir.
pub const OUTBOX_FILE: &str = "notifications.jsonl";

/// The outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("notification outbox {}: {source}", path.display())]
pub struct OutboxError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Add { n: Notification, to: Vec<String> },
    Done { id: String, target: String },
}

struct Pending {
    n: Notification,
    targets: BTreeSet<String>,
}

/// What [`Outbox::open`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// Notifications read (delivered or not).
    pub notifications: usize,
    /// Bytes of a torn last line cut off.
    pub torn_bytes: u64,
    /// Lines that did not parse (skipped).
    pub bad_lines: usize,
}

/// The durable outbox; callers hold it under one lock.
pub struct Outbox {
    path: PathBuf,
    file: File,
    /// Every id ever added: a rule firing twice for one fact (a retried check) adds nothing.
    known: HashSet<String>,
    /// Undelivered, by insertion order.
    pending: BTreeMap<u64, Pending>,
    order_of: HashMap<String, u64>,
    next: u64,
    history: Vec<Notification>,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`, cutting a torn last line.
    pub fn open(path: &Path) -> Result<(Outbox, Opened), OutboxError> {
        let err = |source| OutboxError {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut opened = Opened {
            torn_bytes: (bytes.len() - whole) as u64,
            ..Opened::default()
        };
        if opened.torn_bytes > 0 {
            file.set_len(whole as u64).map_err(err)?;
            file.sync_data().map_err(err)?;
        }
        let mut outbox = Outbox {
            path: path.to_path_buf(),
            file,
            known: HashSet::new(),
            pending: BTreeMap::new(),
            order_of: HashMap::new(),
            next: 0,
            history: Vec::new(),
        };
        for line in bytes[..whole].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Line>(line) {
                Ok(l) => outbox.apply(l),
                Err(_) => opened.bad_lines += 1,
            }
        }
        opened.notifications = outbox.history.len();
        Ok((outbox, opened))
    }

    fn apply(&mut self, line: Line) {
        match line {
            Line::Add { n, to } => {
                if !self.known.insert(n.id.clone()) {
                    return;
                }
                self.history.push(n.clone());
                let targets: BTreeSet<String> = to.into_iter().collect();
                if !targets.is_empty() {
                    self.order_of.insert(n.id.clone(), self.next);
                    self.pending.insert(self.next, Pending { n, targets });
                    self.next += 1;
                }
            }
            Line::Done { id, target } => {
                let Some(&order) = self.order_of.get(&id) else {
                    return;
                };
                if let Some(p) = self.pending.get_mut(&order) {
                    p.targets.remove(&target);
                    if p.targets.is_empty() {
                        self.pending.remove(&order);
                        self.order_of.remove(&id);
                    }
                }
            }
        }
    }

    fn append(&mut self, line: &Line) -> Result<(), OutboxError> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| OutboxError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        let path = &self.path;
        let err = |source| OutboxError {
            path: path.clone(),
            source,
        };
        self.file.write_all(&bytes).map_err(err)?;
        self.file.sync_data().map_err(err)
    }

    /// Adds `n` for delivery to `to`, durably; `false` when its id was already added (then
    /// nothing is written).
    pub fn add(&mut self, n: Notification, to: &[String]) -> Result<bool, OutboxError> {
        if self.known.contains(&n.id) {
            return Ok(false);
        }
        let line = Line::Add { n, to: to.to_vec() };
        self.append(&line)?;
        self.apply(line);
        Ok(true)
    }

    /// Marks `id` delivered to `target`, durably.
    pub fn done(&mut self, id: &str, target: &str) -> Result<(), OutboxError> {
        let line = Line::Done {
            id: id.to_string(),
            target: target.to_string(),
        };
        self.append(&line)?;
        self.apply(line);
        Ok(())
    }

    /// The oldest notification not yet delivered to `target`.
    pub fn next_for(&self, target: &str) -> Option<&Notification> {
        self.pending
            .values()
            .find(|p| p.targets.contains(target))
            .map(|p| &p.n)
    }

    /// Undelivered (notification, target) pairs, per target name.
    pub fn pending_by_target(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for p in self.pending.values() {
            for t in &p.targets {
                *out.entry(t.as_str()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Every notification added, oldest first (the unassigned rule seeds its memory from it).
    pub fn history(&self) -> &[Notification] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::super::notification::Kind;
    use super::*;

    fn n(id: &str) -> Notification {
        Notification {
            id: id.into(),
            kind: Kind::SightingReported,
            case_id: 1,
            priority: None,
            status: None,
            person_name: None,
            age: None,
            link: "http://x/#/cases/1".into(),
            at_ms: 0,
        }
    }

    fn targets() -> Vec<String> {
        vec!["webhook-1".into(), "slack".into()]
    }

    #[test]
    fn pending_survives_a_reopen_until_every_target_has_a_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(OUTBOX_FILE);
        {
            let (mut o, _) = Outbox::open(&path).expect("open");
            assert!(o.add(n("a"), &targets()).expect("add"));
            assert!(o.add(n("b"), &targets()).expect("add"));
            o.done("a", "webhook-1").expect("done");
        }
        let (mut o, opened) = Outbox::open(&path).expect("reopen");
        assert_eq!(opened.notifications, 2);
        assert_eq!(o.next_for("webhook-1").map(|n| n.id.as_str()), Some("b"));
        assert_eq!(o.next_for("slack").map(|n| n.id.as_str()), Some("a"));
        assert_eq!(
            o.pending_by_target(),
            BTreeMap::from([("slack", 2), ("webhook-1", 1)])
        );
        o.done("a", "slack").expect("done");
        o.done("b", "slack").expect("done");
        o.done("b", "webhook-1").expect("done");
        assert!(o.next_for("slack").is_none());
        assert!(o.pending_by_target().is_empty());
    }

    #[test]
    fn an_id_added_twice_is_written_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(OUTBOX_FILE);
        let (mut o, _) = Outbox::open(&path).expect("open");
        assert!(o.add(n("a"), &targets()).expect("add"));
        o.done("a", "webhook-1").expect("done");
        o.done("a", "slack").expect("done");
        assert!(!o.add(n("a"), &targets()).expect("add"));
        assert!(o.next_for("slack").is_none());
        drop(o);
        let (o, _) = Outbox::open(&path).expect("reopen");
        assert_eq!(o.history().len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_later_appends_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(OUTBOX_FILE);
        {
            let (mut o, _) = Outbox::open(&path).expect("open");
            o.add(n("a"), &targets()).expect("add");
        }
        let mut f = OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"{\"add\":{\"n\":{\"id\":\"tor").expect("torn");
        drop(f);
        let (mut o, opened) = Outbox::open(&path).expect("reopen");
        assert_eq!(opened.torn_bytes, 22);
        assert_eq!(opened.bad_lines, 0);
        o.add(n("b"), &targets()).expect("add after the cut");
        drop(o);
        let (o, opened) = Outbox::open(&path).expect("reopen");
        assert_eq!(opened.notifications, 2);
        assert_eq!(opened.bad_lines, 0);
        assert_eq!(o.next_for("slack").map(|n| n.id.as_str()), Some("a"));
    }
}
