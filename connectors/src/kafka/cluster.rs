//! A Kafka source as one process of a timely cluster (`lpm serve --kafka --peers ...`).
//!
//! Three things change from one process:
//! - **Partitions are assigned, not balanced.** Every process computes the same map
//!   `partition -> process` ([`ClusterShare::process_of`]) and `assign`s its own partitions;
//!   it never joins the consumer group's rebalancing (the group only stores committed
//!   offsets). A rebalance inside a cluster would move a partition between processes while
//!   the other still holds records of it in flight, so the partition's order could break.
//! - **Ticks follow the wall clock.** A tick is `unix time / tick interval`, and a process
//!   with nothing to read still advances its input to the clock's tick. timely's frontier is
//!   the minimum over every worker of every process, so one process numbering ticks by its own
//!   record count would hold every other process's records back while it has none.
//! - **Commits follow the cluster's frontier** (the caller's `visible`: the engine's
//!   [`completed`](lpm_engine::EngineHandle::completed) tick), since the views live on
//!   process 0 but a tick is complete only once every process has applied it.

use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lpm_engine::Tick;

use super::KafkaError;

/// This process's place in a cluster, for the Kafka source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterShare {
    /// This process (0-based).
    pub process: usize,
    /// Processes in the cluster.
    pub processes: usize,
    /// Worker threads per process (the same on every process).
    pub workers: usize,
}

impl ClusterShare {
    /// The process that reads `partition` of `topic`: consecutive partitions of a topic go to
    /// consecutive processes, so a topic with at least as many partitions as processes is
    /// spread over all of them.
    pub fn process_of(&self, topic: &str, partition: i32) -> usize {
        spread(topic, partition) % self.processes.max(1)
    }

    /// The worker (0-based, in this process) that decodes `partition` of `topic`.
    pub fn worker_of(&self, topic: &str, partition: i32) -> usize {
        (spread(topic, partition) / self.processes.max(1)) % self.workers.max(1)
    }

    /// The global index of this process's first worker (timely numbers workers process by
    /// process).
    pub fn first_worker(&self) -> usize {
        self.process * self.workers.max(1)
    }
}

/// A topic's hash plus the partition: fixed for a topic name on every process (FxHash has no
/// random seed).
pub(crate) fn spread(topic: &str, partition: i32) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    topic.hash(&mut h);
    (h.finish() as usize).wrapping_add(partition.max(0) as usize)
}

/// The tick the wall clock is in: `unix ms / interval ms`, the same on every process whose
/// clock agrees (a clock behind the others only delays when its own records show).
pub(crate) fn clock_tick(interval: Duration) -> Tick {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ms / (interval.as_millis().max(1) as u64)
}

/// The topics a subscription names: exact names, and `^`-anchored regular expressions (the
/// form [`KafkaConfig::subscription`](super::KafkaConfig::subscription) writes, which
/// librdkafka matches when it subscribes; here the process matches them itself).
pub(crate) struct Selection {
    exact: Vec<String>,
    patterns: Vec<regex::Regex>,
}

impl Selection {
    pub(crate) fn new(subscription: &[String]) -> Result<Selection, KafkaError> {
        let mut s = Selection {
            exact: Vec::new(),
            patterns: Vec::new(),
        };
        for entry in subscription {
            if entry.starts_with('^') {
                let re = regex::Regex::new(entry).map_err(|e| {
                    KafkaError::Config(format!("topic pattern {entry:?} is not a regex: {e}"))
                })?;
                s.patterns.push(re);
            } else {
                s.exact.push(entry.clone());
            }
        }
        Ok(s)
    }

    pub(crate) fn matches(&self, topic: &str) -> bool {
        self.exact.iter().any(|t| t == topic) || self.patterns.iter().any(|p| p.is_match(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_one_process_and_consecutive_ones_spread() {
        let shares: Vec<ClusterShare> = (0..3)
            .map(|process| ClusterShare {
                process,
                processes: 3,
                workers: 2,
            })
            .collect();
        for topic in ["lpm.lost_persons_db.persons_lost", "x.y.case_cases"] {
            let owners: Vec<usize> = (0..6).map(|p| shares[0].process_of(topic, p)).collect();
            // the same answer on every process
            for s in &shares {
                assert_eq!(
                    owners,
                    (0..6).map(|p| s.process_of(topic, p)).collect::<Vec<_>>()
                );
            }
            // 6 partitions over 3 processes: two each
            for process in 0..3 {
                assert_eq!(owners.iter().filter(|&&o| o == process).count(), 2);
            }
            // a process's two partitions go to its two workers
            for s in &shares {
                let mut workers: Vec<usize> = (0..6)
                    .filter(|&p| s.process_of(topic, p) == s.process)
                    .map(|p| s.worker_of(topic, p))
                    .collect();
                workers.sort_unstable();
                assert_eq!(workers, vec![0, 1]);
            }
        }
        assert_eq!(shares[2].first_worker(), 4);
    }

    #[test]
    fn selection_matches_names_and_anchored_patterns() {
        let s = Selection::new(&[
            "^lpm\\.db\\.(persons_lost|case_cases)$".into(),
            "__debezium-heartbeat.lpm".into(),
        ])
        .expect("valid");
        assert!(s.matches("lpm.db.persons_lost"));
        assert!(s.matches("__debezium-heartbeat.lpm"));
        assert!(!s.matches("lpm.db.persons_lost2"));
        assert!(!s.matches("xlpm.db.case_cases"));
        assert!(Selection::new(&["^(".into()]).is_err());
    }

    #[test]
    fn the_clock_tick_moves_with_the_interval() {
        let a = clock_tick(Duration::from_millis(20));
        let b = clock_tick(Duration::from_secs(1));
        assert!(a > 1_000_000_000 && b > 1_000_000_000 / 20, "{a} {b}");
        assert!(a / 50 >= b - 1 && a / 50 <= b + 1);
    }
}
