//! Dead letters appended to a JSON-lines file: `lpm replay --dead-letters FILE`, and the
//! `dead-letters.jsonl` in `lpm serve`'s data dir for the capture and the embedded log.

use parking_lot::Mutex;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{DeadLetter, DeadLetters};

/// The file name of the dead letters in `lpm serve`'s data dir.
pub const DATA_DIR_FILE: &str = "dead-letters.jsonl";

/// Appends one JSON object per dead letter (see the module doc of [`super`] for the fields).
/// Each letter is one unbuffered write: dead letters are rare, and an operator reading the
/// file of a running server (or after a `kill -9`) must find every letter counted so far.
pub struct FileDeadLetters {
    out: Mutex<File>,
    /// Letters that could not be written since the last flush (reported by `flush`).
    failed: AtomicU64,
}

impl FileDeadLetters {
    /// Appends to `path`, creating it when missing.
    pub fn open(path: &Path) -> std::io::Result<FileDeadLetters> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(FileDeadLetters {
            out: Mutex::new(f),
            failed: AtomicU64::new(0),
        })
    }
}

/// The dead letters of a file, one JSON object each (for tools and tests).
pub fn read(path: &Path) -> std::io::Result<Vec<Value>> {
    std::fs::read_to_string(path)?
        .lines()
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}

/// One dead letter as its file line (without the newline).
pub fn line(letter: &DeadLetter<'_>) -> String {
    let mut object = Map::new();
    for (name, value) in letter.fields() {
        object.insert(name.into(), value.unwrap_or(Value::Null));
    }
    object.insert("record".into(), Value::from(letter.record_line()));
    Value::Object(object).to_string()
}

impl DeadLetters for FileDeadLetters {
    fn write(&self, letter: &DeadLetter<'_>) {
        let mut line = line(letter);
        line.push('\n');
        let mut w = self.out.lock();
        if let Err(error) = w.write_all(line.as_bytes()) {
            self.failed.fetch_add(1, Relaxed);
            tracing::error!(%error, reason = letter.reason, seq = letter.seq, "Dead-letter write failed.");
        }
    }

    /// Nothing is buffered: reports whether every write since the last call succeeded.
    fn flush(&self, _: Duration) -> bool {
        self.failed.swap(0, Relaxed) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::{KeyValue, Raw};

    #[test]
    fn a_dump_line_keeps_the_old_fields_verbatim() {
        let letter = DeadLetter {
            reason: "bad_record",
            error: "not a kcat -J record: EOF",
            source: "dump",
            seq: 7,
            raw: Raw::Line(b"{not json"),
        };
        let v: Value = serde_json::from_str(&line(&letter)).expect("JSON");
        assert_eq!(v["reason"], "bad_record");
        assert_eq!(v["error"], "not a kcat -J record: EOF");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["record"], "{not json");
        assert_eq!(v["source"], "dump");
        assert!(v["topic"].is_null() && v["partition"].is_null() && v["offset"].is_null());
    }

    #[test]
    fn a_key_value_record_becomes_a_kcat_line() {
        let letter = DeadLetter {
            reason: "invalid_json",
            error: "invalid JSON in the value",
            source: "embedded-log",
            seq: 3,
            raw: Raw::KeyValue(KeyValue {
                topic: "lpm.db.persons_lost",
                partition: None,
                offset: Some(12),
                key: Some(br#"{"id":1}"#),
                value: Some(b"{oops"),
            }),
        };
        let v: Value = serde_json::from_str(&line(&letter)).expect("JSON");
        assert_eq!(v["topic"], "lpm.db.persons_lost");
        assert_eq!(v["offset"], 12);
        assert!(v["partition"].is_null());
        let record: Value =
            serde_json::from_str(v["record"].as_str().unwrap_or("")).expect("record JSON");
        assert_eq!(record["topic"], "lpm.db.persons_lost");
        assert_eq!(record["key"], r#"{"id":1}"#);
        assert_eq!(record["payload"], "{oops");
        assert_eq!(record["offset"], 12);
    }

    #[test]
    fn letters_are_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead.jsonl");
        for seq in [1, 2] {
            let sink = FileDeadLetters::open(&path).expect("open");
            sink.write(&DeadLetter {
                reason: "bad_record",
                error: "x",
                source: "dump",
                seq,
                raw: Raw::Line(b"x"),
            });
            assert!(sink.flush(Duration::ZERO));
        }
        assert_eq!(read(&path).expect("read").len(), 2);
    }
}
