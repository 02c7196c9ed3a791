//! Undecodable records go to a dead-letter topic, key and value byte for byte, with the other
//! fields of the one dead-letter shape ([`crate::dead_letter`]) in headers: why (`lpm.reason`,
//! `lpm.error`) and where they came from (`lpm.source`, `lpm.seq`, `lpm.topic`,
//! `lpm.partition`, `lpm.offset`). Offsets are committed only after the dead letters before
//! them are delivered.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::stats::KafkaStats;
use super::{KafkaConfig, KafkaError};
use crate::dead_letter::{DeadLetter, DeadLetters};

/// Counts deliveries that failed.
struct Ctx {
    failed: Arc<AtomicU64>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Relaxed);
            tracing::error!(error = %e, "A dead letter could not be delivered; offsets stop being committed until one is.");
        }
    }
}

/// The dead-letter producer.
pub struct DeadLetterProducer {
    producer: ThreadedProducer<Ctx>,
    topic: String,
    failed: Arc<AtomicU64>,
    stats: Arc<KafkaStats>,
}

impl DeadLetterProducer {
    /// A producer writing to `cfg.dead_letter_topic`.
    pub fn new(
        cfg: &KafkaConfig,
        stats: Arc<KafkaStats>,
    ) -> Result<DeadLetterProducer, KafkaError> {
        let failed = Arc::new(AtomicU64::new(0));
        let producer = cfg.producer_config().create_with_context(Ctx {
            failed: failed.clone(),
        })?;
        Ok(DeadLetterProducer {
            producer,
            topic: cfg.dead_letter_topic.clone(),
            failed,
            stats,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Deliveries that failed so far.
    pub fn failures(&self) -> u64 {
        self.failed.load(Relaxed)
    }
}

/// The headers of a dead letter: every field of [`DeadLetter::fields`] that is known, as
/// `lpm.<name>` with the value's text.
pub(crate) fn headers(letter: &DeadLetter<'_>) -> Vec<(String, String)> {
    letter
        .fields()
        .into_iter()
        .filter_map(|(name, value)| {
            let text = match value? {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((format!("lpm.{name}"), text))
        })
        .collect()
}

impl DeadLetters for DeadLetterProducer {
    /// Queues one record for the dead-letter topic and counts it by reason
    /// (`lpm_kafka_dead_letters_total`).
    fn write(&self, letter: &DeadLetter<'_>) {
        self.stats.dead_letter(letter.reason);
        let fields = headers(letter);
        let mut hs = OwnedHeaders::new_with_capacity(fields.len());
        for (key, value) in &fields {
            hs = hs.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(hs);
        if let Some(k) = letter.key() {
            record = record.key(k);
        }
        if let Some(v) = letter.value() {
            record = record.payload(v);
        }
        if let Err(e) = super::broker::send(&self.producer, record, Some(Duration::from_secs(1))) {
            self.failed.fetch_add(1, Relaxed);
            self.stats.dead_letter_failures.fetch_add(1, Relaxed);
            tracing::error!(error = %e, source = letter.source, seq = letter.seq, reason = letter.reason,
                "A dead letter could not be queued.");
        }
    }

    /// Waits for every queued dead letter; returns whether all so far were delivered.
    fn flush(&self, timeout: Duration) -> bool {
        let flushed = self.producer.flush(timeout).is_ok();
        flushed && self.failed.load(Relaxed) == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::headers;
    use crate::dead_letter::file::line;
    use crate::dead_letter::{DeadLetter, KeyValue, Raw};

    /// The file line and the Kafka record of `letter` carry the same fields and the same record.
    fn assert_same_shape(letter: &DeadLetter<'_>) {
        let file: Value = serde_json::from_str(&line(letter)).expect("file line");
        let Value::Object(file) = file else {
            panic!("not an object: {file}")
        };
        let kafka = headers(letter);
        let mut from_file: Vec<(String, String)> = file
            .iter()
            .filter(|(name, value)| *name != "record" && !value.is_null())
            .map(|(name, value)| {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                (format!("lpm.{name}"), text)
            })
            .collect();
        from_file.sort();
        let mut kafka = kafka;
        kafka.sort();
        assert_eq!(from_file, kafka, "file fields vs Kafka headers");
        let record = file["record"].as_str().expect("record");
        match letter.raw {
            Raw::Line(l) => {
                assert_eq!(letter.key(), None);
                assert_eq!(letter.value(), Some(l));
                assert_eq!(record.as_bytes(), l);
            }
            Raw::KeyValue(kv) => {
                let r: Value = serde_json::from_str(record).expect("kcat line");
                assert_eq!(r["key"].as_str().map(str::as_bytes), kv.key);
                assert_eq!(r["payload"].as_str().map(str::as_bytes), kv.value);
                assert_eq!(letter.key(), kv.key, "the Kafka key is the record's key");
                assert_eq!(
                    letter.value(),
                    kv.value,
                    "the Kafka value is the record's value"
                );
            }
        }
    }

    #[test]
    fn file_and_kafka_dead_letters_have_one_shape() {
        let kv = KeyValue {
            topic: "lpm.db.persons_lost",
            partition: Some(2),
            offset: Some(41),
            key: Some(br#"{"id":7}"#),
            value: Some(b"{not json"),
        };
        for raw in [
            Raw::KeyValue(kv),
            Raw::KeyValue(KeyValue {
                partition: None,
                offset: None,
                value: None,
                ..kv
            }),
            Raw::Line(b"{\"topic\":1"),
        ] {
            assert_same_shape(&DeadLetter {
                reason: "invalid_json",
                error: "invalid JSON in the value: EOF",
                source: "kafka",
                seq: 5,
                raw,
            });
        }
        let names: Vec<String> = headers(&DeadLetter {
            reason: "bad_value",
            error: "e",
            source: "kafka",
            seq: 1,
            raw: Raw::KeyValue(kv),
        })
        .into_iter()
        .map(|(k, _)| k)
        .collect();
        assert_eq!(
            names,
            [
                "lpm.reason",
                "lpm.error",
                "lpm.source",
                "lpm.seq",
                "lpm.topic",
                "lpm.partition",
                "lpm.offset"
            ],
            "the headers the runbook names are still there"
        );
    }
}
