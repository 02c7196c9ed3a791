//! Dead letters: every record a source could not decode, kept whole with why and where it came
//! from, so it can be fixed and replayed. Nothing a source read is ever silently lost.
//!
//! There is one record shape, [`DeadLetter`], and one trait, [`DeadLetters`], with two
//! implementations that write the same fields:
//!
//! * [`file::FileDeadLetters`] appends one JSON object per line:
//!   `{"reason","error","source","seq","topic","partition","offset","record"}`. `record` is the
//!   record as a `kcat -C -J` line: the dump's line verbatim, or, for a key/value record (Kafka,
//!   the capture, the embedded log), a line built from its topic, partition, offset, key and
//!   value, so a fixed file feeds `lpm replay` after `jq -c -r .record`. The first four fields
//!   (`reason`, `error`, `seq`, `record`) are the ones dead-letter files always had, with the
//!   same meaning; the others were added, so older readers keep working.
//! * `kafka::DeadLetterProducer` writes the key and the value byte for byte and every other
//!   field as a header named `lpm.<field>`.
//!
//! [`DeadLetter::fields`] lists the fields once; both implementations write exactly that list.
//! `reason` is [`crate::DecodeError::reason`]: stable and bounded (see
//! [`crate::stats::ERROR_REASONS`]). Which sink a source uses is its caller's choice; the one
//! decode-and-reject path ([`crate::decode::DecodePath`]) writes to it.

pub mod file;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Where dead letters go. Shared by every worker of a source, hence `Sync`. A failed write is
/// the implementation's to count and report: decoding goes on regardless.
pub trait DeadLetters: Send + Sync {
    /// Writes (or queues) one dead letter.
    fn write(&self, letter: &DeadLetter<'_>);

    /// Waits up to `timeout` until what was written is stored or delivered; `false` when some
    /// dead letter so far was not (the Kafka source then holds back its offset commits).
    fn flush(&self, timeout: Duration) -> bool;
}

/// One record as a source read it, before decoding: what a dead letter keeps verbatim.
#[derive(Clone, Copy, Debug)]
pub enum Raw<'a> {
    /// A `kcat -C -J` line of a topic dump (trimmed).
    Line(&'a [u8]),
    /// A Debezium key/value record on a topic.
    KeyValue(KeyValue<'a>),
}

/// A Debezium key/value record and where it was read.
#[derive(Clone, Copy, Debug)]
pub struct KeyValue<'a> {
    /// Topic (`<prefix>.<db>.<table>`).
    pub topic: &'a str,
    /// Kafka partition; `None` when the source has none (capture, embedded log).
    pub partition: Option<i32>,
    /// Kafka offset, or the embedded log's record sequence number; `None` for the capture.
    pub offset: Option<i64>,
    /// Key bytes (`None` for keyless records: truncates).
    pub key: Option<&'a [u8]>,
    /// Value bytes (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
}

/// One rejected record: the one shape every [`DeadLetters`] implementation writes.
#[derive(Clone, Copy, Debug)]
pub struct DeadLetter<'a> {
    /// Stable reason code ([`crate::DecodeError::reason`]).
    pub reason: &'static str,
    /// Human-readable error.
    pub error: &'a str,
    /// Which source read it: `dump`, `kafka`, `capture` or `embedded-log`.
    pub source: &'a str,
    /// The source's ingestion sequence number (the line number in a dump).
    pub seq: u64,
    /// The record, verbatim.
    pub raw: Raw<'a>,
}

/// The record of a key/value dead letter as a kcat `-J` line (kcat's field order, `payload`
/// last, which the dump reader's fast path expects).
#[derive(Serialize)]
struct RecordLine<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<&'a str>,
    payload: Option<&'a str>,
}

impl<'a> DeadLetter<'a> {
    /// The metadata fields, in the order written: `(name, value)`, `None` where unknown. The
    /// file sink writes them as JSON fields, the Kafka sink as `lpm.<name>` headers (numbers
    /// as their decimal text); `topic`, `partition` and `offset` are known for key/value records.
    pub fn fields(&self) -> [(&'static str, Option<Value>); 7] {
        let kv = match self.raw {
            Raw::KeyValue(kv) => Some(kv),
            Raw::Line(_) => None,
        };
        [
            ("reason", Some(Value::from(self.reason))),
            ("error", Some(Value::from(self.error))),
            ("source", Some(Value::from(self.source))),
            ("seq", Some(Value::from(self.seq))),
            ("topic", kv.map(|kv| Value::from(kv.topic))),
            ("partition", kv.and_then(|kv| kv.partition).map(Value::from)),
            ("offset", kv.and_then(|kv| kv.offset).map(Value::from)),
        ]
    }

    /// The record's key bytes (`None` for a dump line, which is all value).
    pub fn key(&self) -> Option<&'a [u8]> {
        match self.raw {
            Raw::Line(_) => None,
            Raw::KeyValue(kv) => kv.key,
        }
    }

    /// The record's value bytes: the whole line for a dump line.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.raw {
            Raw::Line(line) => Some(line),
            Raw::KeyValue(kv) => kv.value,
        }
    }

    /// The record as a `kcat -C -J` line: a dump's line as it was (invalid UTF-8 replaced), a
    /// key/value record rebuilt (`partition` 0 and `offset` -1 when the source has none; bytes
    /// that are not UTF-8, which fail decoding as `invalid_json`, are replaced).
    pub fn record_line(&self) -> String {
        match self.raw {
            Raw::Line(line) => String::from_utf8_lossy(line).into_owned(),
            Raw::KeyValue(kv) => {
                let key = kv.key.map(String::from_utf8_lossy);
                let payload = kv.value.map(String::from_utf8_lossy);
                let line = RecordLine {
                    topic: kv.topic,
                    partition: kv.partition.unwrap_or(0),
                    offset: kv.offset.unwrap_or(-1),
                    key: key.as_deref(),
                    payload: payload.as_deref(),
                };
                serde_json::to_string(&line).unwrap_or_default()
            }
        }
    }
}

/// Drops dead letters (they are still counted as decode errors): `lpm replay` without
/// `--dead-letters`.
pub struct Discard;

impl DeadLetters for Discard {
    fn write(&self, _: &DeadLetter<'_>) {}

    fn flush(&self, _: Duration) -> bool {
        true
    }
}
