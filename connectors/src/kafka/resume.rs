//! Starting from a checkpoint: where each partition resumes, and whether the broker still
//! holds what follows.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{KafkaConfig, KafkaError};

/// Where a consumer starts when a checkpoint was loaded: the offsets it covers and the
/// counters to continue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// `(topic, partition, next offset)`: each partition is read from there.
    pub offsets: Vec<(String, i32, i64)>,
    /// Records handed over before (the position's `records` continues from it).
    pub records: u64,
    /// The `seq` of the last record handed over before (ingestion order continues above it).
    pub seq: u64,
}

impl Resume {
    /// The partitions whose checkpoint offset the broker no longer serves, each with why: the
    /// records after it were deleted (retention, compaction of a non-compacted read, a deleted
    /// and recreated topic) or the partition is shorter than the offset (recreated). Resuming
    /// there would skip records, so the caller re-reads everything instead.
    pub fn out_of_range(&self, config: &KafkaConfig) -> Result<Vec<String>, KafkaError> {
        let consumer: BaseConsumer = config.consumer_config().create()?;
        let mut problems = Vec::new();
        for (topic, partition, offset) in &self.offsets {
            match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5)) {
                Ok((low, high)) if *offset < low || *offset > high => problems.push(format!(
                    "{topic}/{partition}: offset {offset} is outside what the broker holds [{low}, {high}]"
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!("{topic}/{partition}: {e}")),
            }
        }
        Ok(problems)
    }
}
