//! Kafka source settings.

use std::time::Duration;

use rdkafka::ClientConfig;

use super::KafkaError;
use crate::catalog::Catalog;

/// Which topics to read.
#[derive(Clone, Debug)]
pub enum TopicSelection {
    /// Debezium's naming: `<prefix>.<database>.<table>` for every table of the catalog.
    Debezium {
        /// `topic.prefix` of the connector.
        prefix: String,
        /// The source database.
        database: String,
    },
    /// A regular expression (librdkafka syntax, anchored with `^`).
    Regex(String),
}

/// Kafka source options.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group.
    pub group: String,
    /// Change topics.
    pub topics: TopicSelection,
    /// Debezium heartbeat topic (`__debezium-heartbeat.<prefix>` by default); `None` = none.
    pub heartbeat_topic: Option<String>,
    /// Where undecodable records go.
    pub dead_letter_topic: String,
    /// librdkafka settings passed through (applied last: they win).
    pub options: Vec<(String, String)>,
    /// Longest time records wait in an open tick.
    pub tick_interval: Duration,
    /// Most records in one tick.
    pub max_tick_records: usize,
    /// Ticks handed to the engine but not yet visible before polling pauses.
    pub max_ticks_in_flight: u64,
    /// How often applied offsets are committed.
    pub commit_interval: Duration,
    /// No change record for this long: the source is idle (if heartbeats arrive).
    pub idle_after: Duration,
    /// No record and no heartbeat for this long: the source is stalled.
    pub stall_after: Duration,
    /// This process's share when it is one process of a cluster (`--peers`); `None`: the
    /// consumer group balances the partitions.
    pub cluster: Option<super::ClusterShare>,
}

impl KafkaConfig {
    /// Defaults for `brokers`, Debezium topics `lpm.lost_persons_db.*`.
    pub fn new(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            group: "lpm".into(),
            topics: TopicSelection::Debezium {
                prefix: "lpm".into(),
                database: "lost_persons_db".into(),
            },
            heartbeat_topic: Some("__debezium-heartbeat.lpm".into()),
            dead_letter_topic: "lpm.dead-letter".into(),
            options: Vec::new(),
            tick_interval: Duration::from_millis(20),
            max_tick_records: 50_000,
            max_ticks_in_flight: 8,
            commit_interval: Duration::from_millis(500),
            idle_after: Duration::from_secs(10),
            stall_after: Duration::from_secs(60),
            cluster: None,
        }
    }

    /// The subscription: one regex covering the change topics and the heartbeat topic.
    pub fn subscription(&self, catalog: &Catalog) -> Vec<String> {
        let mut subs = match &self.topics {
            TopicSelection::Debezium { prefix, database } => {
                let mut tables: Vec<&str> = catalog.table_names().collect();
                tables.sort_unstable();
                vec![format!(
                    "^{}\\.{}\\.({})$",
                    regex_escape(prefix),
                    regex_escape(database),
                    tables.join("|")
                )]
            }
            TopicSelection::Regex(r) if r.starts_with('^') => vec![r.clone()],
            TopicSelection::Regex(r) => vec![format!("^{r}")],
        };
        if let Some(h) = &self.heartbeat_topic {
            subs.push(h.clone());
        }
        subs
    }

    /// Parses `key=value[,key=value…]` librdkafka pass-through settings.
    pub fn parse_options(text: &str) -> Result<Vec<(String, String)>, KafkaError> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| {
                        KafkaError::Config(format!(
                            "--kafka-option {kv:?}: expected key=value (a librdkafka setting)"
                        ))
                    })
            })
            .collect()
    }

    /// The consumer's librdkafka configuration: no auto-commit, no auto offset store, reading
    /// from the beginning, statistics every second (for lag), then the pass-through settings.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "10000")
            .set("client.id", "lpm");
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }

    /// A producer configuration on the same brokers (dead letters), with the pass-through
    /// settings that apply to producers too.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "lpm-dead-letters")
            .set("enable.idempotence", "false")
            .set("linger.ms", "5");
        for (k, v) in &self.options {
            // consumer-only keys make a producer refuse to start
            if !CONSUMER_ONLY.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
        c
    }
}

const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.wait.max.ms",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "enable.partition.eof",
    "check.crcs",
];

/// Escapes regex metacharacters (topic names may hold `.`, `-`, `_`).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debezium_subscription_names_every_table_and_the_heartbeats() {
        let cfg = KafkaConfig::new("b:9092");
        let subs = cfg.subscription(&Catalog::lpm());
        assert_eq!(
            subs[0],
            "^lpm\\.lost_persons_db\\.(case_actions|case_cases|case_responsible_history|case_sightings|persons_lost|responsible_contacts)$"
        );
        assert_eq!(subs[1], "__debezium-heartbeat.lpm");
    }

    #[test]
    fn regex_selection_is_anchored() {
        let mut cfg = KafkaConfig::new("b:9092");
        cfg.topics = TopicSelection::Regex("dbz\\..*".into());
        cfg.heartbeat_topic = None;
        assert_eq!(cfg.subscription(&Catalog::lpm()), vec!["^dbz\\..*"]);
    }

    #[test]
    fn options_parse_and_bad_ones_are_named() {
        let o = KafkaConfig::parse_options("fetch.wait.max.ms=50, security.protocol=ssl")
            .expect("parses");
        assert_eq!(o[1], ("security.protocol".into(), "ssl".into()));
        let e = KafkaConfig::parse_options("oops")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("oops") && e.contains("key=value"), "{e}");
    }

    #[test]
    fn producer_config_drops_consumer_only_settings() {
        let mut cfg = KafkaConfig::new("b:9092");
        cfg.options = vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("socket.timeout.ms".into(), "1000".into()),
        ];
        let p = cfg.producer_config();
        assert_eq!(p.get("session.timeout.ms"), None);
        assert_eq!(p.get("socket.timeout.ms"), Some("1000"));
    }
}
