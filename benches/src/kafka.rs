//! Kafka source throughput, side by side with two baselines in the same run, against a broker
//! process on loopback (`LPM_TEST_KAFKA_BROKERS`; `bash scripts/tansu.sh start` starts tansu).
//! librdkafka's mock cluster is not usable here: it keeps about 5 MB per partition and drops
//! older records, so a large dump cannot be read back from the beginning.
//!
//! 1. **floor**: a bare rdkafka `BaseConsumer` reading every record of the partitions (assigned,
//!    no group; connected and metadata fetched before the clock starts) and copying key and value
//!    out, as the source does. Nothing is decoded.
//! 2. **lpm kafka**: `lpm_connectors::kafka::start` + the engine with 2 workers: from the
//!    moment the group assigns the partitions to the moment the views cover every offset.
//! 3. **lpm replay**: the same records from a dump file through the same engine (`DumpFeed`),
//!    i.e. what the dataflow costs without Kafka.
//!
//! Records/s = records ÷ seconds; medians of `LPM_BENCH_KAFKA_RUNS` (3) runs each, ratios
//! against the floor. Size: `LPM_BENCH_KAFKA_PERSONS` (20 000 reports, 3 partitions per topic).

/// The allocator `lpm serve` runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod machine;
mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lpm_connectors::kafka::{self, KafkaConfig};
use lpm_connectors::{Catalog, DecodeStats, DumpFeed, DumpOptions};
use lpm_engine::{Engine, EngineConfig};
use lpm_testkit::gen::{generate, GenOptions};
use machine::{cpu_model, load_average};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use report::{env_usize, f2, median};

const PARTITIONS: i32 = 3;

fn topic(prefix: &str, t: &str) -> String {
    format!("{prefix}.lost_persons_db.{t}")
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        ..EngineConfig::default()
    }
}

/// Seconds for a bare consumer to read `total` records.
fn floor(brokers: &str, prefix: &str, total: u64) -> Result<f64, String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-floor")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for t in lpm_engine::model::Table::ALL.map(|t| t.name()) {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&topic(prefix, t), p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    // connected and metadata known before the clock starts, as the source is when assigned
    c.fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    c.assign(&tpl).map_err(|e| e.to_string())?;
    drop(tpl);
    let (mut n, mut bytes) = (0u64, 0usize);
    while n < total {
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("floor: read {n} of {total}"));
        }
        let polled = c.poll(Duration::from_millis(100));
        if let Some(Err(e)) = &polled {
            eprintln!("floor: {e}");
        }
        if let Some(Ok(m)) = polled {
            let key = m.key().map(<[u8]>::to_vec);
            let value = m.payload().map(<[u8]>::to_vec);
            bytes += key.map_or(0, |k| k.len()) + value.map_or(0, |v| v.len());
            n += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(bytes);
    Ok(secs)
}

/// Seconds from the partitions' assignment to views covering all `total` records.
fn lpm_kafka(brokers: &str, prefix: &str, group: &str, total: u64) -> Result<f64, String> {
    let mut cfg = KafkaConfig::new(brokers);
    cfg.group = group.into();
    cfg.topics = kafka::TopicSelection::Debezium {
        prefix: prefix.into(),
        database: "lost_persons_db".into(),
    };
    cfg.dead_letter_topic = format!("{prefix}.dead-letter");
    cfg.heartbeat_topic = None;
    let store_slot: Arc<std::sync::OnceLock<Arc<lpm_engine::ViewStore>>> = Arc::default();
    let slot = store_slot.clone();
    let source = kafka::start(
        cfg,
        2,
        Arc::new(Catalog::lpm()),
        Arc::new(DecodeStats::default()),
        Arc::new(move || slot.get().and_then(|s| s.tick())),
        Box::new(|_, _| {}),
    )
    .map_err(|e| e.to_string())?;
    let engine = Engine::start(engine_config(), source.feed.clone()).map_err(|e| e.to_string())?;
    let store = engine.handle().store().clone();
    let _ = store_slot.set(store.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    while source.assigned() == 0 {
        if Instant::now() > deadline {
            return Err("no assignment".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    loop {
        let applied: i64 = store
            .tick()
            .map(|t| source.position_at(t).offsets.iter().map(|o| o.2).sum())
            .unwrap_or(0);
        if applied as u64 >= total {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("lpm kafka: applied {applied} of {total}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = started.elapsed().as_secs_f64();
    source.stop();
    engine.join().map_err(|e| e.to_string())?;
    Ok(secs)
}

/// Seconds for the same records from a dump through the same engine.
fn lpm_replay(path: &std::path::Path) -> Result<f64, String> {
    let mut opts = DumpOptions::new(path);
    opts.workers = 2;
    let feed = Arc::new(
        DumpFeed::open(
            &opts,
            Arc::new(Catalog::lpm()),
            Arc::new(DecodeStats::default()),
        )
        .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    let engine = Engine::start(engine_config(), feed.clone()).map_err(|e| e.to_string())?;
    engine.join().map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    match feed.read_error() {
        Some(e) => Err(e.to_string()),
        None => Ok(secs),
    }
}

fn main() {
    let persons = env_usize("LPM_BENCH_KAFKA_PERSONS", 20_000);
    let runs = env_usize("LPM_BENCH_KAFKA_RUNS", 3).max(1);
    let dir = std::env::temp_dir().join(format!("lpm-bench-kafka-{}", std::process::id()));
    let fail = |e: String| -> ! {
        eprintln!("bench kafka: ERROR: {e}");
        std::process::exit(1);
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e.to_string()));
    let dump = dir.join("changes.jsonl");
    let opts = GenOptions {
        seed: 11,
        persons,
        partitions: PARTITIONS as u32,
        ..GenOptions::default()
    };
    let brokers = std::env::var("LPM_BENCH_KAFKA_BROKERS")
        .or_else(|_| std::env::var("LPM_TEST_KAFKA_BROKERS"))
        .unwrap_or_else(|_| {
            fail("set LPM_TEST_KAFKA_BROKERS (bash scripts/tansu.sh start; bash scripts/tansu.sh url)".into())
        });
    // our own topic names: the broker outlives bench runs
    let prefix = format!("bench{}", std::process::id());
    let truth = {
        let mut text = Vec::new();
        let truth = generate(&opts, &mut text).unwrap_or_else(|e| fail(e.to_string()));
        let text = String::from_utf8(text).unwrap_or_else(|e| fail(e.to_string()));
        let renamed = text.replace(
            "\"lpm.lost_persons_db.",
            &format!("\"{prefix}.lost_persons_db."),
        );
        std::fs::write(&dump, renamed).unwrap_or_else(|e| fail(e.to_string()));
        truth
    };
    let produced = kafka::produce_dump(&brokers, &dump, Some(PARTITIONS), &[])
        .unwrap_or_else(|e| fail(e.to_string()));
    let total = produced.records;
    eprintln!(
        "bench kafka: {total} records ({} lines generated) in {brokers}",
        truth.records
    );

    let groups = AtomicU64::new(0);
    let measure = |name: &str, f: &mut dyn FnMut() -> Result<f64, String>| -> Vec<f64> {
        (0..runs)
            .map(|i| {
                let s = f().unwrap_or_else(|e| fail(format!("{name}: {e}")));
                eprintln!("bench kafka: {name} run {}: {:.3} s", i + 1, s);
                total as f64 / s
            })
            .collect()
    };
    let floor_rates = measure("floor", &mut || floor(&brokers, &prefix, total));
    let kafka_rates = measure("lpm kafka", &mut || {
        let g = groups.fetch_add(1, Ordering::Relaxed);
        lpm_kafka(&brokers, &prefix, &format!("{prefix}-{g}"), total)
    });
    let replay_rates = measure("lpm replay", &mut || lpm_replay(&dump));
    let _ = std::fs::remove_dir_all(&dir);

    let floor_med = median(&floor_rates).unwrap_or(f64::NAN);
    let row = |name: &str, what: &str, rates: &[f64]| {
        let m = median(rates).unwrap_or(f64::NAN);
        let each: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        format!(
            "| {name} | {what} | {m:.0} | {} | {} |",
            f2(m / floor_med),
            each.join(", ")
        )
    };
    let lines = [
        "## kafka".to_string(),
        String::new(),
        format!(
            "{total} records ({persons} reports, {PARTITIONS} partitions per topic) in a tansu broker process on loopback; \
             2 engine workers; cores: {}; CPU: {}; load: {}. Medians of {runs} runs.",
            report::cores(),
            cpu_model(),
            load_average()
        ),
        String::new(),
        "| path | what is timed | records/s (median) | × floor | each run |".into(),
        "|---|---|---:|---:|---|".into(),
        row("floor: bare rdkafka consumer", "assign → every record copied out", &floor_rates),
        row("lpm kafka source + engine", "assignment → views cover every offset", &kafka_rates),
        row("lpm replay (same records from a file)", "start → engine finished", &replay_rates),
    ];
    println!("{}", lines.join("\n"));
}
