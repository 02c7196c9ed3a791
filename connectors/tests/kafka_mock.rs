//! The Kafka source against librdkafka's in-process mock cluster: consumer group, offsets
//! committed only up to the visible tick, dead letters with their reason, and a rebalance
//! that hands a partition to a process that never read it (which then reads it from the
//! beginning). The test plays the engine: it drains the feed on "worker" threads and decides
//! which tick is visible.
#![cfg(feature = "kafka")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lpm_connectors::kafka::{self, KafkaConfig, KafkaSource};
use lpm_connectors::{Catalog, DecodeStats};
use lpm_engine::{Change, Feed, FeedItem, Tick};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

const TOPIC: &str = "lpm.lost_persons_db.responsible_contacts";

fn contact(id: i64, pos: u64) -> String {
    let after = format!(
        r#"{{"id":{id},"full_name":"Contact {id}","agency":"ECU 911","phone":null,"email":null,"active":1,"version":1}}"#
    );
    format!(
        r#"{{"before":null,"after":{after},"source":{{"snapshot":"false","file":"mysql-bin.000001","pos":{pos},"row":0}},"op":"c"}}"#
    )
}

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer")
}

/// Produces `n` contacts spread over `partitions` (by id), plus `bad` undecodable records to
/// partition 0. Returns the records per partition.
fn produce(brokers: &str, n: i64, partitions: i32, bad: usize) -> BTreeMap<i32, i64> {
    let p = producer(brokers);
    let mut per = BTreeMap::new();
    for i in 0..bad {
        let key = format!("{{\"id\":{}}}", 1_000_000 + i);
        p.send(
            BaseRecord::to(TOPIC)
                .partition(0)
                .key(&key)
                .payload("{not json"),
        )
        .expect("send bad");
        *per.entry(0).or_insert(0) += 1;
    }
    for id in 1..=n {
        let part = (id % i64::from(partitions)) as i32;
        let key = format!("{{\"id\":{id}}}");
        let value = contact(id, 1000 + id as u64);
        p.send(
            BaseRecord::to(TOPIC)
                .partition(part)
                .key(&key)
                .payload(&value),
        )
        .expect("send");
        *per.entry(part).or_insert(0) += 1;
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    per
}

/// A source plus the test's stand-in for the engine: worker threads draining the feed, and a
/// visible tick the test controls.
struct Harness {
    source: Arc<KafkaSource>,
    visible: Arc<AtomicU64>,
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Harness {
    fn start(brokers: &str, group: &str) -> Harness {
        let mut cfg = KafkaConfig::new(brokers);
        cfg.group = group.into();
        cfg.heartbeat_topic = None;
        cfg.commit_interval = Duration::from_millis(50);
        cfg.options = vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("heartbeat.interval.ms".into(), "500".into()),
        ];
        let visible = Arc::new(AtomicU64::new(0));
        let v = visible.clone();
        let source = Arc::new(
            kafka::start(
                cfg,
                2,
                Arc::new(Catalog::lpm()),
                Arc::new(DecodeStats::default()),
                Arc::new(move || Some(v.load(Ordering::SeqCst))),
                Box::new(|_, _| {}),
            )
            .expect("start source"),
        );
        let changes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..2)
            .map(|w| {
                let (source, changes, stop) = (source.clone(), changes.clone(), stop.clone());
                std::thread::spawn(move || loop {
                    match source.feed.next(w) {
                        FeedItem::Batch { changes: c, .. } => {
                            changes.lock().expect("lock").extend(c)
                        }
                        FeedItem::Idle { .. } => {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        FeedItem::Control { .. } => {}
                        FeedItem::End => return,
                    }
                })
            })
            .collect();
        Harness {
            source,
            visible,
            changes,
            stop,
            workers,
        }
    }

    fn closed(&self) -> Tick {
        self.source.feed.closed()
    }

    fn rows(&self) -> usize {
        self.changes.lock().expect("lock").len()
    }

    fn stop(self) {
        self.source.stop();
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The group's committed offset per partition of TOPIC (-1 = none).
fn committed(brokers: &str, group: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(TOPIC, p);
    }
    let out = c
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("committed offsets");
    let map = out
        .elements()
        .iter()
        .map(|e| {
            let off = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), off)
        })
        .collect();
    drop(out); // before the consumer: a live list makes dropping the consumer hang
    map
}

#[test]
fn offsets_are_committed_only_up_to_the_visible_tick_and_bad_records_are_dead_lettered() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 3, 1).expect("topic");
    cluster
        .create_topic("lpm.dead-letter", 1, 1)
        .expect("dlq topic");
    let brokers = cluster.bootstrap_servers();
    let per = produce(&brokers, 600, 3, 2);
    let h = Harness::start(&brokers, "g-visible");
    wait_until("all records read", Duration::from_secs(30), || {
        h.rows() == 600
    });
    let closed = h.closed();
    assert!(closed >= 1);
    // nothing visible: nothing committed, whatever was read
    std::thread::sleep(Duration::from_millis(300));
    let none = committed(&brokers, "g-visible", 3);
    assert!(
        none.values().all(|o| *o < 0),
        "committed before visible: {none:?}"
    );
    // tick 1 visible: exactly its offsets, never more than was read by then
    h.visible.store(1, Ordering::SeqCst);
    let at1 = h.source.position_at(1);
    wait_until("tick 1 committed", Duration::from_secs(10), || {
        let c = committed(&brokers, "g-visible", 3);
        at1.offsets.iter().all(|(_, p, o)| c.get(p) == Some(o))
    });
    let c1 = committed(&brokers, "g-visible", 3);
    for (p, off) in &c1 {
        let read = at1
            .offsets
            .iter()
            .find(|(_, q, _)| q == p)
            .map_or(-1, |x| x.2);
        assert!(
            *off <= read,
            "partition {p}: committed {off} > tick-1 position {read}"
        );
    }
    // everything visible: everything committed
    h.visible.store(closed, Ordering::SeqCst);
    wait_until("all committed", Duration::from_secs(10), || {
        committed(&brokers, "g-visible", 3)
            == per
                .iter()
                .map(|(p, n)| (*p, *n))
                .collect::<BTreeMap<_, _>>()
    });
    // dead letters: the two bad records, with their reason and origin in headers
    let dlq: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dlq consumer");
    dlq.subscribe(&["lpm.dead-letter"]).expect("subscribe");
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while letters.len() < 2 && Instant::now() < deadline {
        if let Some(Ok(m)) = dlq.poll(Duration::from_millis(100)) {
            let mut hs = BTreeMap::new();
            if let Some(headers) = m.headers() {
                for hd in headers.iter() {
                    let v = hd.value.map(|v| String::from_utf8_lossy(v).to_string());
                    hs.insert(hd.key.to_string(), v.unwrap_or_default());
                }
            }
            letters.push((m.payload().map(<[u8]>::to_vec), hs));
        }
    }
    drop(dlq);
    assert_eq!(letters.len(), 2, "dead letters: {letters:?}");
    for (payload, hs) in &letters {
        assert_eq!(
            payload.as_deref(),
            Some(&b"{not json"[..]),
            "payload kept byte for byte"
        );
        assert_eq!(hs.get("lpm.topic").map(String::as_str), Some(TOPIC));
        assert_eq!(hs.get("lpm.partition").map(String::as_str), Some("0"));
        assert!(
            hs.get("lpm.reason").is_some_and(|r| !r.is_empty()),
            "{hs:?}"
        );
        assert!(
            hs.contains_key("lpm.error") && hs.contains_key("lpm.offset"),
            "{hs:?}"
        );
    }
    assert_eq!(h.source.stats.dead_letters().values().sum::<u64>(), 2);
    h.stop();
}

#[test]
fn a_partition_handed_over_by_a_rebalance_is_read_from_the_beginning() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 4, 1).expect("topic");
    cluster
        .create_topic("lpm.dead-letter", 1, 1)
        .expect("dlq topic");
    let brokers = cluster.bootstrap_servers();
    let a = Harness::start(&brokers, "g-rebalance");
    let b = Harness::start(&brokers, "g-rebalance");
    // both members joined and got partitions before anything is produced
    wait_until("both members assigned", Duration::from_secs(40), || {
        let assigned = |h: &Harness| h.source.assigned() > 0;
        assigned(&a) && assigned(&b) && a.source.assigned() + b.source.assigned() == 4
    });
    produce(&brokers, 400, 4, 0);
    // both members share the partitions; together they read everything once
    wait_until(
        "both members read their share",
        Duration::from_secs(40),
        || a.rows() + b.rows() == 400 && a.rows() > 0 && b.rows() > 0,
    );
    let (ta, tb) = (a.closed(), b.closed());
    a.visible.store(ta, Ordering::SeqCst);
    b.visible.store(tb, Ordering::SeqCst);
    let before = a.rows();
    assert!(
        before < 400,
        "a read every partition before b left: {before}"
    );
    // b leaves: a gets b's partitions, which it never read, so it reads them from the start
    // (not from b's committed offsets: the engine has no state for them)
    b.stop();
    wait_until("a holds every row", Duration::from_secs(40), || {
        a.rows() == 400
    });
    let mut ids: Vec<i64> = a
        .changes
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|c| match c {
            Change::Row(r) => Some(r.key),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 400, "every contact exactly once in a's changes");
    assert!(a.source.stats.rebalances.load(Ordering::Relaxed) >= 2);
    a.stop();
}
