//! Undecodable records go to a dead-letter topic, byte for byte, with why in headers
//! (`lpm.reason`, `lpm.error`, and where they came from: `lpm.topic`, `lpm.partition`,
//! `lpm.offset`). Offsets are committed only after the dead letters before them are delivered.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::feed::RawRecord;
use super::stats::KafkaStats;
use super::{KafkaConfig, KafkaError};

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

    /// Queues one record for the dead-letter topic.
    pub fn send(&self, r: &RawRecord, reason: &str, error: &str) {
        let partition = r.partition.to_string();
        let offset = r.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: "lpm.reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "lpm.error",
                value: Some(error),
            })
            .insert(Header {
                key: "lpm.topic",
                value: Some(&*r.topic),
            })
            .insert(Header {
                key: "lpm.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "lpm.offset",
                value: Some(&offset),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        if let Err(e) = super::broker::send(&self.producer, record, Some(Duration::from_secs(1))) {
            self.failed.fetch_add(1, Relaxed);
            self.stats.dead_letter_failures.fetch_add(1, Relaxed);
            tracing::error!(error = %e, topic = %r.topic, partition = r.partition, offset = r.offset,
                "A dead letter could not be queued.");
        }
    }

    /// Waits for every queued dead letter; returns whether all so far were delivered.
    pub fn flush(&self, timeout: Duration) -> bool {
        let flushed = self.producer.flush(timeout).is_ok();
        flushed && self.failed.load(Relaxed) == 0
    }

    /// Deliveries that failed so far.
    pub fn failures(&self) -> u64 {
        self.failed.load(Relaxed)
    }
}
