//! `lpm serve --kafka …` flags, and `lpm kafka produce` (load a topic dump into a broker).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use lpm_connectors::kafka::{KafkaConfig, TopicSelection};

/// Kafka source flags of `lpm serve`.
#[derive(Args, Clone, Debug)]
pub struct KafkaOptions {
    /// Feed the engine from Debezium change topics on these Kafka brokers
    /// (`host:port[,host:port]`) instead of the embedded log. The API is read-only unless a
    /// system of record is configured.
    #[arg(long = "kafka", env = "LPM_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Consumer group (offsets are committed there once applied).
    #[arg(long = "kafka-group", env = "LPM_KAFKA_GROUP", default_value = "lpm")]
    pub kafka_group: String,
    /// Debezium `topic.prefix`: topics are `<prefix>.<database>.<table>`.
    #[arg(long = "kafka-prefix", env = "LPM_KAFKA_PREFIX", default_value = "lpm")]
    pub kafka_prefix: String,
    /// The source database in topic names.
    #[arg(
        long = "kafka-database",
        env = "LPM_KAFKA_DATABASE",
        default_value = "lost_persons_db"
    )]
    pub kafka_database: String,
    /// A regular expression for the change topics, instead of prefix and database
    /// (anchored at the start; the table is the topic's last dot-separated part).
    #[arg(long = "kafka-topics", env = "LPM_KAFKA_TOPICS")]
    pub kafka_topics: Option<String>,
    /// Debezium heartbeat topic (default `__debezium-heartbeat.<prefix>`; `none` to disable).
    #[arg(long = "kafka-heartbeat-topic", env = "LPM_KAFKA_HEARTBEAT_TOPIC")]
    pub kafka_heartbeat_topic: Option<String>,
    /// Where undecodable records go, with the reason in headers.
    #[arg(
        long = "kafka-dead-letter-topic",
        env = "LPM_KAFKA_DEAD_LETTER_TOPIC",
        default_value = "lpm.dead-letter"
    )]
    pub kafka_dead_letter_topic: String,
    /// librdkafka settings passed through, `key=value` (repeat, or comma-separate in the
    /// environment), e.g. `security.protocol=ssl`.
    #[arg(
        long = "kafka-option",
        env = "LPM_KAFKA_OPTIONS",
        value_delimiter = ','
    )]
    pub kafka_options: Vec<String>,
    /// Longest time a record waits for its tick, in ms.
    #[arg(
        long = "kafka-tick-ms",
        env = "LPM_KAFKA_TICK_MS",
        default_value_t = 20
    )]
    pub kafka_tick_ms: u64,
    /// Seconds without change records (heartbeats still arriving) before the source is `idle`.
    #[arg(
        long = "kafka-idle-after",
        env = "LPM_KAFKA_IDLE_AFTER",
        default_value_t = 10
    )]
    pub kafka_idle_after_s: u64,
    /// Seconds without records or heartbeats (or with records pending and none read) before
    /// the source is `stalled`.
    #[arg(
        long = "kafka-stall-after",
        env = "LPM_KAFKA_STALL_AFTER",
        default_value_t = 60
    )]
    pub kafka_stall_after_s: u64,
}

impl KafkaOptions {
    /// The source configuration, when `--kafka` is given.
    pub fn config(&self) -> anyhow::Result<Option<KafkaConfig>> {
        let Some(brokers) = &self.kafka_brokers else {
            return Ok(None);
        };
        let mut c = KafkaConfig::new(brokers.clone());
        c.group = self.kafka_group.clone();
        c.topics = match &self.kafka_topics {
            Some(r) => TopicSelection::Regex(r.clone()),
            None => TopicSelection::Debezium {
                prefix: self.kafka_prefix.clone(),
                database: self.kafka_database.clone(),
            },
        };
        c.heartbeat_topic = match self.kafka_heartbeat_topic.as_deref() {
            Some("none") | Some("") => None,
            Some(t) => Some(t.to_string()),
            None => Some(format!("__debezium-heartbeat.{}", self.kafka_prefix)),
        };
        c.dead_letter_topic = self.kafka_dead_letter_topic.clone();
        c.options = KafkaConfig::parse_options(&self.kafka_options.join(","))?;
        c.tick_interval = Duration::from_millis(self.kafka_tick_ms.max(1));
        c.idle_after = Duration::from_secs(self.kafka_idle_after_s.max(1));
        c.stall_after = Duration::from_secs(self.kafka_stall_after_s.max(1));
        Ok(Some(c))
    }
}

/// `lpm kafka …`.
#[derive(Subcommand)]
pub enum KafkaCommand {
    /// Produce a `kcat -C -J` topic dump into a broker: each record to its topic and partition
    /// with its key (creates missing topics, compacted, when the broker has an admin API).
    Produce {
        /// Brokers (`host:port`).
        #[arg(long, env = "LPM_KAFKA_BROKERS")]
        brokers: String,
        /// The dump (`.gz` accepted).
        dump: PathBuf,
        /// Do not create topics (they exist, or the broker auto-creates them).
        #[arg(long)]
        no_create: bool,
        /// Partitions of each topic created (at least the dump's highest partition + 1).
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// librdkafka producer settings, `key=value` (repeatable).
        #[arg(long = "kafka-option", value_delimiter = ',')]
        options: Vec<String>,
    },
}

/// Runs `lpm kafka …`.
pub fn run(cmd: KafkaCommand) -> anyhow::Result<()> {
    match cmd {
        KafkaCommand::Produce {
            brokers,
            dump,
            no_create,
            partitions,
            options,
        } => {
            let options = KafkaConfig::parse_options(&options.join(","))?;
            let report = lpm_connectors::kafka::produce_dump(
                &brokers,
                &dump,
                (!no_create).then_some(partitions),
                &options,
            )
            .with_context(|| format!("producing {} to {brokers}", dump.display()))?;
            println!(
                "{}",
                serde_json::json!({"records": report.records, "topics": report.topics})
            );
            Ok(())
        }
    }
}
