//! What lpm asks of a broker besides consuming: creating topics (admin API) and producing with
//! back-pressure (a full local queue waits instead of failing). Shared by the dead-letter
//! producer and `lpm kafka produce`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;
use rdkafka::ClientConfig;

use super::KafkaError;

/// Creates `topics` (name -> partitions) that do not exist yet, waiting at most `timeout`.
/// Brokers without an admin API (librdkafka's mock cluster) time out here. Runs on its own
/// thread: the admin API blocks on a runtime of its own, and callers may be inside another.
pub fn create_topics(
    config: &ClientConfig,
    topics: &BTreeMap<String, i32>,
    compacted: bool,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let (config, topics) = (config.clone(), topics.clone());
    std::thread::spawn(move || {
        let admin: AdminClient<DefaultClientContext> = config.create()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KafkaError::Thread)?;
        let news: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(t, n)| {
                let topic = NewTopic::new(t, (*n).max(1), TopicReplication::Fixed(1));
                if compacted {
                    topic.set("cleanup.policy", "compact")
                } else {
                    topic
                }
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout));
        for r in rt.block_on(admin.create_topics(news.iter(), &opts))? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => return Err(KafkaError::Config(format!("creating topic {t}: {e}"))),
            }
        }
        Ok(())
    })
    .join()
    .map_err(|_| KafkaError::Config("the topic-creation thread panicked".into()))?
}

/// Queues `record`, waiting while librdkafka's local queue is full (at most `patience`, or
/// forever when `None`).
pub fn send<C, K, P, D>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, K, P, D>,
    patience: Option<Duration>,
) -> Result<(), KafkaError>
where
    C: ProducerContext<DeliveryOpaque = D> + 'static,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
    D: IntoOpaque,
{
    let started = Instant::now();
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if patience.is_none_or(|p| started.elapsed() < p) =>
            {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}
