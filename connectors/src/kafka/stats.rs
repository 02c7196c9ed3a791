//! The Kafka source's counters and per-partition positions, rendered as `lpm_kafka_*` metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Where one partition stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionStat {
    /// The broker's high watermark (from librdkafka's statistics), `-1` until known.
    pub high: i64,
    /// The next offset the consumer will hand to the engine.
    pub read: i64,
    /// The next offset whose records are all visible in the views.
    pub applied: i64,
    /// The last offset committed to the group.
    pub committed: i64,
    /// Producer timestamp of the last visible record (epoch ms), and the event-to-visible
    /// delay it had.
    pub freshness: Option<(i64, Duration)>,
}

impl PartitionStat {
    /// Records on the broker not yet visible in the views; `None` until the high watermark is
    /// known.
    pub fn lag(&self) -> Option<i64> {
        (self.high >= 0).then(|| (self.high - self.applied.max(0)).max(0))
    }
}

/// What the source is doing, as an operator reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Change records arrive.
    Live,
    /// No change records for a while, but Debezium's heartbeats arrive (nothing to do), or
    /// nothing is pending and no heartbeat topic is configured.
    Idle,
    /// Records are pending and nothing is read, or neither records nor heartbeats arrive.
    Stalled,
}

impl SourceStatus {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Live => "live",
            SourceStatus::Idle => "idle",
            SourceStatus::Stalled => "stalled",
        }
    }
}

#[derive(Debug)]
struct Inner {
    partitions: BTreeMap<(String, i32), PartitionStat>,
    dead_by_reason: BTreeMap<String, u64>,
    last_record: Instant,
    last_heartbeat: Option<Instant>,
}

/// Counters and positions, shared by the consumer thread, the workers and `/metrics`.
#[derive(Debug)]
pub struct KafkaStats {
    inner: Mutex<Inner>,
    /// Change records read.
    pub records: AtomicU64,
    /// Debezium heartbeats read.
    pub heartbeats: AtomicU64,
    /// Records that could not be written to the dead-letter topic.
    pub dead_letter_failures: AtomicU64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Failed offset commits.
    pub commit_failures: AtomicU64,
    /// Partition assignments received.
    pub rebalances: AtomicU64,
    /// Consumer errors (broker down, unknown topic …).
    pub consumer_errors: AtomicU64,
    /// Whether the heartbeat topic is configured.
    pub heartbeats_expected: bool,
}

impl KafkaStats {
    /// Fresh counters.
    pub fn new(heartbeats_expected: bool) -> KafkaStats {
        KafkaStats {
            inner: Mutex::new(Inner {
                partitions: BTreeMap::new(),
                dead_by_reason: BTreeMap::new(),
                last_record: Instant::now(),
                last_heartbeat: None,
            }),
            records: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            dead_letter_failures: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
            heartbeats_expected,
        }
    }

    /// Runs `f` on one partition's entry (created at `-1`s when new).
    pub fn partition<R>(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&mut PartitionStat) -> R,
    ) -> R {
        let mut inner = self.inner.lock();
        let e = inner
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| PartitionStat {
                high: -1,
                read: -1,
                applied: -1,
                committed: -1,
                freshness: None,
            });
        f(e)
    }

    /// Every partition's entry.
    pub fn partitions(&self) -> Vec<((String, i32), PartitionStat)> {
        self.inner
            .lock()
            .partitions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A change record was read.
    pub fn record_read(&self) {
        self.records_read(1);
    }

    /// `n` change records were read since the last call (the consumer reports in batches, so
    /// the per-record path takes no lock); `0` changes nothing.
    pub fn records_read(&self, n: u64) {
        if n > 0 {
            self.records.fetch_add(n, Relaxed);
            self.inner.lock().last_record = Instant::now();
        }
    }

    /// A heartbeat was read.
    pub fn heartbeat_read(&self) {
        self.heartbeats.fetch_add(1, Relaxed);
        self.inner.lock().last_heartbeat = Some(Instant::now());
    }

    /// A record went to the dead-letter topic.
    pub fn dead_letter(&self, reason: &str) {
        *self
            .inner
            .lock()
            .dead_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// Dead letters by reason.
    pub fn dead_letters(&self) -> BTreeMap<String, u64> {
        self.inner.lock().dead_by_reason.clone()
    }

    /// Records known on the broker and not yet visible, over every partition.
    pub fn lag(&self) -> i64 {
        self.inner
            .lock()
            .partitions
            .values()
            .filter_map(PartitionStat::lag)
            .sum()
    }

    /// Live, idle or stalled (see [`SourceStatus`]).
    pub fn status(&self, idle_after: Duration, stall_after: Duration) -> SourceStatus {
        let lag = self.lag();
        let inner = self.inner.lock();
        let since_record = inner.last_record.elapsed();
        let since_heartbeat = inner.last_heartbeat.map(|t| t.elapsed());
        drop(inner);
        if since_record < idle_after {
            return SourceStatus::Live;
        }
        if lag > 0 && since_record >= stall_after {
            return SourceStatus::Stalled;
        }
        match since_heartbeat {
            Some(h) if h < stall_after => SourceStatus::Idle,
            None if !self.heartbeats_expected && lag == 0 => SourceStatus::Idle,
            _ if since_record < stall_after => SourceStatus::Idle,
            _ => SourceStatus::Stalled,
        }
    }

    /// Appends the `lpm_kafka_*` metrics in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String, idle_after: Duration, stall_after: Duration) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            out,
            "lpm_kafka_records_total",
            "Change records read from Kafka.",
            self.records.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_heartbeats_total",
            "Debezium heartbeat records read.",
            self.heartbeats.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_commits_total",
            "Offset commits that succeeded.",
            self.commits.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_commit_failures_total",
            "Offset commits that failed (retried at the next interval).",
            self.commit_failures.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_rebalances_total",
            "Partition assignments and revocations received.",
            self.rebalances.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_consumer_errors_total",
            "Errors reported by the consumer (broker unreachable, unknown topic ...).",
            self.consumer_errors.load(Relaxed),
        );
        counter(
            out,
            "lpm_kafka_dead_letter_failures_total",
            "Undecodable records that could not be written to the dead-letter topic.",
            self.dead_letter_failures.load(Relaxed),
        );
        let _ = writeln!(out, "# HELP lpm_kafka_dead_letters_total Undecodable records sent to the dead-letter topic, by reason.\n# TYPE lpm_kafka_dead_letters_total counter");
        for (reason, n) in self.dead_letters() {
            let _ = writeln!(
                out,
                "lpm_kafka_dead_letters_total{{reason=\"{}\"}} {n}",
                escape(&reason)
            );
        }
        let parts = self.partitions();
        let gauge = |out: &mut String,
                     name: &str,
                     help: &str,
                     get: &dyn Fn(&PartitionStat) -> Option<f64>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for ((topic, p), s) in &parts {
                if let Some(v) = get(s) {
                    let _ = writeln!(
                        out,
                        "{name}{{topic=\"{}\",partition=\"{p}\"}} {v}",
                        escape(topic)
                    );
                }
            }
        };
        gauge(
            out,
            "lpm_kafka_partition_high_watermark",
            "The broker's high watermark of the partition.",
            &|s| (s.high >= 0).then_some(s.high as f64),
        );
        gauge(
            out,
            "lpm_kafka_partition_read_offset",
            "The next offset lpm will read.",
            &|s| (s.read >= 0).then_some(s.read as f64),
        );
        gauge(
            out,
            "lpm_kafka_partition_applied_offset",
            "The next offset not yet visible in the views (everything below it is).",
            &|s| (s.applied >= 0).then_some(s.applied as f64),
        );
        gauge(
            out,
            "lpm_kafka_partition_committed_offset",
            "The offset last committed to the consumer group.",
            &|s| (s.committed >= 0).then_some(s.committed as f64),
        );
        gauge(
            out,
            "lpm_kafka_partition_lag",
            "Records on the broker not yet visible in the views.",
            &|s| s.lag().map(|l| l as f64),
        );
        gauge(out, "lpm_kafka_partition_freshness_seconds", "For the last visible record of the partition: from its Kafka timestamp to visible in the views.", &|s| s.freshness.map(|(_, d)| d.as_secs_f64()));
        let inner = self.inner.lock();
        let since_record = inner.last_record.elapsed().as_secs_f64();
        let since_heartbeat = inner.last_heartbeat.map(|t| t.elapsed().as_secs_f64());
        drop(inner);
        let _ = writeln!(out, "# HELP lpm_kafka_last_record_age_seconds Seconds since the last change record was read.\n# TYPE lpm_kafka_last_record_age_seconds gauge\nlpm_kafka_last_record_age_seconds {since_record}");
        if let Some(h) = since_heartbeat {
            let _ = writeln!(out, "# HELP lpm_kafka_heartbeat_age_seconds Seconds since the last Debezium heartbeat was read.\n# TYPE lpm_kafka_heartbeat_age_seconds gauge\nlpm_kafka_heartbeat_age_seconds {h}");
        }
        let status = self.status(idle_after, stall_after);
        let _ = writeln!(out, "# HELP lpm_kafka_source_status 1 for the source's current status: live (changes arrive), idle (heartbeats only) or stalled.\n# TYPE lpm_kafka_source_status gauge");
        for s in [
            SourceStatus::Live,
            SourceStatus::Idle,
            SourceStatus::Stalled,
        ] {
            let _ = writeln!(
                out,
                "lpm_kafka_source_status{{status=\"{}\"}} {}",
                s.as_str(),
                u8::from(s == status)
            );
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_with_heartbeats_stalled_without() {
        let s = KafkaStats::new(true);
        s.partition("t", 0, |p| {
            p.high = 10;
            p.applied = 10;
        });
        let short = Duration::from_millis(1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.status(short, short), SourceStatus::Stalled);
        s.heartbeat_read();
        assert_eq!(s.status(short, Duration::from_secs(60)), SourceStatus::Idle);
        s.record_read();
        assert_eq!(
            s.status(Duration::from_secs(60), Duration::from_secs(60)),
            SourceStatus::Live
        );
    }

    #[test]
    fn pending_records_and_no_reads_is_stalled_even_with_heartbeats() {
        let s = KafkaStats::new(true);
        s.partition("t", 0, |p| {
            p.high = 10;
            p.applied = 4;
        });
        s.heartbeat_read();
        std::thread::sleep(Duration::from_millis(5));
        let short = Duration::from_millis(1);
        assert_eq!(s.lag(), 6);
        assert_eq!(s.status(short, short), SourceStatus::Stalled);
    }

    #[test]
    fn renders_lag_per_partition() {
        let s = KafkaStats::new(false);
        s.partition("lpm.db.persons_lost", 2, |p| {
            p.high = 100;
            p.applied = 60;
        });
        s.dead_letter("bad_json");
        let mut out = String::new();
        s.render_prometheus(&mut out, Duration::from_secs(10), Duration::from_secs(60));
        assert!(
            out.contains(
                "lpm_kafka_partition_lag{topic=\"lpm.db.persons_lost\",partition=\"2\"} 40"
            ),
            "{out}"
        );
        assert!(
            out.contains("lpm_kafka_dead_letters_total{reason=\"bad_json\"} 1"),
            "{out}"
        );
    }
}
