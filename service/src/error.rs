//! Why the pipeline could not start.

/// Why the pipeline (`pipeline::Service::start`) could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Another process holds the data directory.
    #[error("{0}")]
    Lock(#[from] lpm_connectors::lock::LockError),
    /// The embedded log / system of record.
    #[error("embedded log: {0}")]
    Sor(#[from] crate::sor::SorError),
    /// The engine.
    #[error("engine: {0}")]
    Engine(#[from] lpm_engine::EngineError),
    /// The binlog capture cannot start.
    #[error("capture: {0}")]
    Capture(String),
    /// The Kafka source cannot start.
    #[error("kafka: {0}")]
    Kafka(#[from] lpm_connectors::kafka::KafkaError),
    /// `--mysql` is misconfigured or its database is not migrated.
    #[error("--mysql: {0}")]
    Mysql(String),
    /// The dead-letter file in the data dir cannot be opened.
    #[error("dead letters: {path}: {source}")]
    DeadLetters {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The aggregate sink cannot start (a bad URL; MySQL being down is retried instead).
    #[error("sink: {0}")]
    Sink(#[from] crate::sink::SinkError),
    /// The pipeline's instruments could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A thread could not be started.
    #[error("starting a thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The checkpoint directory cannot be read, or a verified checkpoint failed to load.
    #[error("checkpoint: {0}")]
    Checkpoint(crate::checkpoint::file::CheckpointFileError),
    /// An option that cannot be combined with another.
    #[error("{0}")]
    Config(String),
}
