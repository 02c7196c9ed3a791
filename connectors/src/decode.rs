//! The one decode-and-reject path: a raw record becomes an engine change, a skip, or a dead
//! letter, and is counted either way. Every source goes through it: the dump reader
//! ([`crate::dump`]), the Kafka feed (`kafka::feed`), the binlog capture's engine sink and the
//! embedded log's replay and durable hook (both in `lpm-service`).
//!
//! ```text
//! raw record ─ read (records, bytes) ─ decode (the source's decoder) ─ DecodeStats::change_of
//!                                                                        ├ Some(change) ─ engine
//!                                                                        ├ None: skipped, counted by reason
//!                                                                        └ Err(e) ─ errors{e.reason()} + DeadLetters::write
//! ```
//!
//! * **Why one path.** Each source used to carry its own copy of this loop, and two of them
//!   counted errors without writing a dead letter. Here the counting, the reason code and the
//!   dead letter cannot drift apart.
//! * **What stays with the source.** The decoder: it is per worker (schema caches), and the
//!   dump reads `kcat -J` lines with its own fast path ([`DecodePath::accept`]), while key/value
//!   sources share [`DecodePath::record`]. Where the dead letters go: a [`DeadLetters`] the
//!   caller picks (the dump: `--dead-letters FILE` or nowhere; Kafka: the dead-letter topic;
//!   the capture and the embedded log: `dead-letters.jsonl` in the data dir).
//! * **Reason codes.** [`DecodeError::reason`], the labels of `lpm_decode_errors_total` and the
//!   `reason` of every dead letter: stable and bounded ([`crate::stats::ERROR_REASONS`]).
//! * **Semantics.** The path adds nothing between the decoder and the engine: the change a
//!   record makes is [`DecodeStats::change_of`] of its decoding, as before.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use lpm_engine::Change;

use crate::dead_letter::{DeadLetter, DeadLetters, KeyValue, Raw};
use crate::debezium::rows::RowShape;
use crate::debezium::{Decoded, Decoder};
use crate::error::DecodeError;
use crate::stats::DecodeStats;

/// A source's decode-and-reject path: its name, counters, dead letters and row shape. Shared
/// by the source's workers; each brings its own decoder.
pub struct DecodePath {
    source: &'static str,
    stats: Arc<DecodeStats>,
    dead: Arc<dyn DeadLetters>,
    shape: RowShape,
}

impl DecodePath {
    /// The path of `source` (the `source` of its dead letters: `dump`, `kafka`, `capture`,
    /// `embedded-log`), keeping full rows.
    pub fn new(
        source: &'static str,
        stats: Arc<DecodeStats>,
        dead: Arc<dyn DeadLetters>,
    ) -> DecodePath {
        DecodePath {
            source,
            stats,
            dead,
            shape: RowShape::Full,
        }
    }

    /// Keeps only the columns `shape` names in decoded rows (replay without `--rows`).
    pub fn with_shape(mut self, shape: RowShape) -> DecodePath {
        self.shape = shape;
        self
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<DecodeStats> {
        &self.stats
    }

    /// Where rejected records go.
    pub fn dead_letters(&self) -> &Arc<dyn DeadLetters> {
        &self.dead
    }

    /// Counts one record read, `bytes` long (blank dump lines included).
    pub fn read(&self, bytes: usize) {
        self.stats.records.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// The change `raw` makes, given its decoding, counted: ingested by table and op, skipped
    /// by reason (`None`), or rejected (`None`): counted by reason and dead-lettered with `seq`.
    pub fn accept(
        &self,
        decoded: Result<Decoded, DecodeError>,
        seq: u64,
        raw: Raw<'_>,
    ) -> Option<Change> {
        match self.stats.change_of(decoded, self.shape) {
            Ok(change) => change,
            Err(e) => {
                self.reject(&e, seq, raw);
                None
            }
        }
    }

    /// Reads, decodes with `decoder` and accepts one key/value record (Kafka, the capture,
    /// the embedded log). A key or value that is not UTF-8 is rejected as `invalid_json`.
    pub fn record(&self, decoder: &mut Decoder, kv: KeyValue<'_>, seq: u64) -> Option<Change> {
        self.read(kv.key.map_or(0, <[u8]>::len) + kv.value.map_or(0, <[u8]>::len));
        let decoded = match (utf8(kv.key, "key"), utf8(kv.value, "value")) {
            (Ok(key), Ok(value)) => decoder.decode(kv.topic, key, value, seq),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self.accept(decoded, seq, Raw::KeyValue(kv))
    }

    fn reject(&self, e: &DecodeError, seq: u64, raw: Raw<'_>) {
        self.stats.error(e.reason());
        let error = e.to_string();
        self.dead.write(&DeadLetter {
            reason: e.reason(),
            error: &error,
            source: self.source,
            seq,
            raw,
        });
    }
}

fn utf8<'a>(bytes: Option<&'a [u8]>, part: &'static str) -> Result<Option<&'a str>, DecodeError> {
    bytes
        .map(|b| {
            std::str::from_utf8(b).map_err(|e| DecodeError::Json {
                part,
                detail: format!("not UTF-8: {e}"),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
