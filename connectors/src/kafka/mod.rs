//! The Kafka source: Debezium change topics read with librdkafka (rdkafka) and fed to the
//! engine, decoded on the dataflow's worker threads.
//!
//! ```text
//! broker ─ poll (consumer thread) ─ tick slices per worker ─ Feed::next(w): decode ─ dataflow
//!              │ heartbeats, high watermarks (stats)             └ undecodable ─ dead-letter topic
//!              └ commit: offsets of the last *visible* tick only
//! ```
//!
//! * **Ticks.** The consumer thread groups what it polls into ticks (at most `tick_interval`
//!   apart, at most `max_tick_records` each) and hands each worker the records of the partitions
//!   it owns (`partition -> worker` is fixed for a run), so decoding is spread over the workers
//!   and a partition's order is kept.
//! * **Offsets.** Auto-commit is off. A partition's offset is committed only once the tick that
//!   holds its records is visible in the views, so the group's committed offsets never run ahead
//!   of what lpm has applied.
//! * **Restart.** The engine keeps its state in memory, so a new process rebuilds it by reading
//!   every assigned partition from the beginning (Debezium's change topics are compacted, so the
//!   beginning holds the latest row of every key). Committed offsets tell operators (and the
//!   aggregate sink) what was applied; they are not a resume point for state that is gone.
//!   A partition handed back to this process by a rebalance resumes where this process was.
//! * **Cluster.** As one process of a timely cluster (`KafkaConfig::cluster`), the source
//!   assigns itself a fixed share of the partitions and numbers ticks by the wall clock
//!   (`cluster.rs` says why).
//! * **Heartbeats.** Debezium's `__debezium-heartbeat.<prefix>` records are read (never
//!   decoded as rows): they tell an idle source (heartbeats, no changes) from a stalled one.

mod broker;
mod cluster;
mod config;
mod consumer;
mod dead_letter;
mod feed;
mod produce;
mod resume;
mod stats;

pub use broker::create_topics;
pub use cluster::ClusterShare;
pub use config::{KafkaConfig, TopicSelection};
pub use consumer::{prepare, start, KafkaSource, Mark, OnTick, Prepared, TickPosition};
pub use dead_letter::DeadLetterProducer;
pub use feed::KafkaFeed;
pub use produce::{produce_dump, ProduceReport};
pub use resume::Resume;
pub use stats::{KafkaStats, SourceStatus};

/// Why the Kafka source cannot run.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused the configuration or an operation.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// Reading a dump to produce failed.
    #[error("reading {path}: {detail}")]
    Dump {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The consumer thread could not start.
    #[error("starting the consumer thread: {0}")]
    Thread(std::io::Error),
}
