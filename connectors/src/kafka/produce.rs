//! Loads a `kcat -C -J` topic dump into a broker: every record to its topic and partition,
//! with its key, in file order (so each partition gets the dump's order). Topics missing on the
//! broker are created with enough partitions (when the broker has an admin API).
//!
//! Used by `lpm kafka produce` (staging, demos, load tests) and by the Kafka tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use serde::Deserialize;

use super::KafkaError;

/// Counts deliveries the broker refused, keeping the first reason.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

struct Ctx(Arc<Deliveries>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.0.first.lock();
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

/// What was produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// Records produced.
    pub records: u64,
    /// Partitions per topic (the highest partition in the dump + 1).
    pub topics: BTreeMap<String, i32>,
}

#[derive(Deserialize)]
struct Line {
    topic: String,
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

fn read_lines(path: &Path) -> Result<Vec<Line>, KafkaError> {
    let err = |detail: String| KafkaError::Dump {
        path: path.display().to_string(),
        detail,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| err(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line =
            serde_json::from_str(&line).map_err(|e| err(format!("line {}: {e}", n + 1)))?;
        out.push(l);
    }
    Ok(out)
}

/// Produces every record of the dump at `path` to `brokers`. With `create = Some(n)`, missing
/// topics are created first with at least `n` partitions (compacted, as Debezium's change
/// topics should be).
pub fn produce_dump(
    brokers: &str,
    path: &Path,
    create: Option<i32>,
    options: &[(String, String)],
) -> Result<ProduceReport, KafkaError> {
    let lines = read_lines(path)?;
    let mut report = ProduceReport::default();
    for l in &lines {
        let n = report.topics.entry(l.topic.clone()).or_insert(1);
        *n = (*n).max(l.partition + 1);
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "200000");
    for (k, v) in options {
        config.set(k, v);
    }
    if let Some(min) = create {
        let sized = report
            .topics
            .iter()
            .map(|(t, n)| (t.clone(), (*n).max(min)))
            .collect();
        super::broker::create_topics(&config, &sized, true, Duration::from_secs(5))?;
    }
    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Ctx> = config.create_with_context(Ctx(deliveries.clone()))?;
    for l in &lines {
        let payload = match &l.payload {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let mut record: BaseRecord<'_, str, str> = BaseRecord::to(&l.topic).partition(l.partition);
        if let Some(k) = &l.key {
            record = record.key(k.as_str());
        }
        if let Some(p) = &payload {
            record = record.payload(p.as_str());
        }
        super::broker::send(&producer, record, None)?;
        report.records += 1;
    }
    producer.flush(Duration::from_secs(60))?;
    let failed = deliveries.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let why = deliveries.first.lock().clone().unwrap_or_default();
        return Err(KafkaError::Config(format!(
            "{failed} of {} records were not delivered (first: {why})",
            report.records
        )));
    }
    Ok(report)
}
