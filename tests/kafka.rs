//! `lpm serve --kafka` against a Kafka-protocol broker in its own process (tansu, started by
//! `scripts/tansu.sh`; the test command exports `LPM_TEST_KAFKA_BROKERS`).
//!
//! A generated dump (3 partitions per topic, snapshot, duplicates, deletes) is produced into the
//! broker with its keys and partitions; `lpm serve -w 2` consumes it while the second half is
//! still being produced; it is killed with SIGKILL mid-stream and restarted. Throughout, the
//! group's committed offsets never run ahead of the offsets the views cover; at the end the
//! views equal the reference model's (and `oracle.py`'s when `../shared` is present), and the
//! undecodable records are in the dead-letter topic, counted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lpm_testkit::gen::{generate, GenOptions};
use lpm_testkit::reference;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use serde_json::Value;

const TZ: &str = "America/Guayaquil";
pub(crate) fn brokers() -> String {
    let b = std::env::var("LPM_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "LPM_TEST_KAFKA_BROKERS is not set: start a broker with `bash scripts/tansu.sh start` \
             and export LPM_TEST_KAFKA_BROKERS=$(bash scripts/tansu.sh url) (scripts/test.sh does both)"
        )
    });
    if std::net::TcpStream::connect_timeout(
        &b.parse()
            .unwrap_or_else(|e| panic!("LPM_TEST_KAFKA_BROKERS={b}: {e}")),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!("no broker listens on {b}: run `bash scripts/tansu.sh start`");
    }
    b
}

pub(crate) fn lpm(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lpm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lpm");
    assert!(
        out.status.success(),
        "lpm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Next offset per (topic, partition).
pub(crate) type Offsets = BTreeMap<(String, i32), i64>;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Server {
    fn start(data: &Path, brokers: &str, prefix: &str, group: &str) -> Server {
        Server::start_with(data, brokers, prefix, group, &[])
    }

    pub(crate) fn start_with(
        data: &Path,
        brokers: &str,
        prefix: &str,
        group: &str,
        extra: &[&str],
    ) -> Server {
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let mut child = Command::new(env!("CARGO_BIN_EXE_lpm"))
            .args(["serve", "--listen", "127.0.0.1:0", "-w", "2", "--tz", TZ])
            .arg("--data-dir")
            .arg(data)
            .args([
                "--kafka",
                brokers,
                "--kafka-prefix",
                prefix,
                "--kafka-group",
                group,
            ])
            .args([
                "--kafka-dead-letter-topic",
                &format!("{prefix}.dead-letter"),
            ])
            .args(["--kafka-heartbeat-topic", "none"])
            .args(extra)
            .env("LPM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn lpm serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("lpm serve printed its address");
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default().to_string();
                return Server { child, addr };
            }
        }
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> Result<(u16, String), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut r = agent
            .get(format!("http://{}{path}", self.addr))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// `name value` of one `/metrics` sample.
    pub(crate) fn metric(&self, name: &str, token: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics", token).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// `(views, offsets per (topic, partition))` at one tick.
    pub(crate) fn views(&self, token: &str) -> Option<(Value, Offsets)> {
        let (status, body) = self.get("/api/v1/views", token).ok()?;
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        let mut offsets = BTreeMap::new();
        for p in v["positions"].as_array()? {
            for o in p["offsets"].as_array().into_iter().flatten() {
                offsets.insert(
                    (
                        o["topic"].as_str()?.to_string(),
                        o["partition"].as_i64()? as i32,
                    ),
                    o["offset"].as_i64()?,
                );
            }
        }
        Some((v["views"].clone(), offsets))
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, and the clean exit it must make (the shutdown checkpoint included).
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("reap");
        assert!(status.success(), "lpm serve did not exit cleanly: {status}");
    }

    /// Waits until the views cover `want` records per partition (absent = 0), and returns them.
    fn caught_up(&self, token: &str, want: &Offsets, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let got = self.views(token);
            if let Some((views, applied)) = &got {
                if want
                    .iter()
                    .all(|(tp, n)| *n == 0 || applied.get(tp) == Some(n))
                {
                    return views.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not caught up; applied {:?}, want {want:?}",
                got.map(|g| g.1)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generated dump: what the generator wrote, the dump as written, and its lines under our own
/// topic prefix (the broker outlives test runs).
pub(crate) fn dump_under(
    opts: &GenOptions,
    prefix: &str,
) -> (lpm_testkit::gen::GenTruth, String, Vec<String>) {
    let mut dump = Vec::new();
    let truth = generate(opts, &mut dump).expect("generate");
    let text = String::from_utf8(dump).expect("utf8");
    let lines = text
        .lines()
        .map(|l| {
            l.replace(
                "\"lpm.lost_persons_db.",
                &format!("\"{prefix}.lost_persons_db."),
            )
        })
        .collect();
    (truth, text, lines)
}

/// The group's committed offsets for `parts` (absent = none committed).
pub(crate) fn committed(
    brokers: &str,
    group: &str,
    parts: &[(String, i32)],
) -> BTreeMap<(String, i32), i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let out = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let mut map = BTreeMap::new();
    for e in out.elements() {
        if let Offset::Offset(o) = e.offset() {
            map.insert((e.topic().to_string(), e.partition()), o);
        }
    }
    drop(out); // before the consumer (a live list makes its drop hang)
    map
}

/// `lpm kafka produce` of a dump file into topics of `partitions` partitions; returns its
/// report.
pub(crate) fn produce(brokers: &str, file: &Path, partitions: u32) -> String {
    let report = lpm(&[
        "kafka",
        "produce",
        "--brokers",
        brokers,
        "--partitions",
        &partitions.to_string(),
        file.to_str().expect("path"),
    ]);
    assert!(report.contains("\"records\""), "{report}");
    report
}

/// Generates a dump of 200 persons (seed `seed`) under `prefix` into `dir` and produces it
/// on two partitions; returns how many records it holds.
fn produce_generated(brokers: &str, dir: &Path, prefix: &str, seed: u64) -> i64 {
    let opts = GenOptions {
        seed,
        persons: 200,
        partitions: 2,
        ..GenOptions::default()
    };
    let (_, _, lines) = dump_under(&opts, prefix);
    let file = dir.join(format!("dump-{seed}.jsonl"));
    write_lines(&file, &lines);
    produce(brokers, &file, 2);
    lines.len() as i64
}

pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).expect("create");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

#[test]
fn kafka_source_survives_kill_9_commits_only_what_is_applied_and_matches_the_oracle() {
    let brokers = brokers();
    let run = crate::support::run_id("t");
    let (prefix, group) = (run.clone(), format!("{run}-group"));
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = GenOptions {
        seed: 7,
        persons: 2500,
        partitions: 3,
        ..GenOptions::default()
    };
    let (truth, text, lines) = dump_under(&opts, &prefix);
    let mut per_partition = Offsets::new();
    count_partitions(&lines, &mut per_partition);
    // every topic gets all 3 partitions (the produce step sizes topics from the dump)
    for t in lpm_engine::model::Table::ALL.map(|t| t.name()) {
        for p in 0..3 {
            per_partition
                .entry((format!("{prefix}.lost_persons_db.{t}"), p))
                .or_insert(0);
        }
    }
    // two undecodable records, first in partition 0 of persons_lost
    let bad_topic = format!("{prefix}.lost_persons_db.persons_lost");
    let bad: Vec<String> = (0..2)
        .map(|i| {
            serde_json::json!({"topic": bad_topic, "partition": 0, "key": format!("{{\"id\":{}}}", 900_000 + i), "payload": "{broken json"})
                .to_string()
        })
        .collect();
    *per_partition.entry((bad_topic.clone(), 0)).or_default() += 2;
    let (first, second) = lines.split_at(lines.len() / 2);
    let mut first_with_bad = bad.clone();
    first_with_bad.extend_from_slice(first);
    // the first produce creates every topic with 3 partitions (the rest only appends)
    let f1 = dir.path().join("first.jsonl");
    let f2 = dir.path().join("second.jsonl");
    write_lines(&f1, &first_with_bad);
    write_lines(&f2, second);
    produce(&brokers, &f1, 3);

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let token = lpm(&[
        "token",
        "create",
        "kafka-test",
        "--data-dir",
        data.to_str().expect("p"),
    ]);
    let mut server = Server::start(&data, &brokers, &prefix, &group);

    // produce the second half while lpm consumes; watch commits vs applied; kill -9 mid-way
    let producing = {
        let (brokers, f2) = (brokers.clone(), f2.clone());
        thread::spawn(move || produce(&brokers, &f2, 3))
    };
    let parts: Vec<(String, i32)> = per_partition.keys().cloned().collect();
    let mut checks = 0;
    let mut killed_at = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while killed_at.is_none() {
        assert!(
            Instant::now() < deadline,
            "lpm never applied half of the records"
        );
        // committed first, then the views: applied offsets only grow, so this order makes
        // "committed <= applied" a fair check
        let c = committed(&brokers, &group, &parts);
        if let Some((_, applied)) = server.views(&token) {
            for (tp, off) in &c {
                let a = applied.get(tp).copied().unwrap_or(0);
                assert!(
                    *off <= a,
                    "{tp:?}: committed {off} ran ahead of the views' offset {a}"
                );
            }
            checks += 1;
            let applied_total: i64 = applied.values().sum();
            if applied_total > lines.len() as i64 * 6 / 10 {
                server.kill9();
                killed_at = Some(applied_total);
            }
        }
        thread::sleep(Duration::from_millis(30));
    }
    assert!(checks >= 2, "commits were checked {checks} times");
    let produced = producing.join().expect("producer thread");
    assert!(produced.contains("\"records\""), "{produced}");
    // after the kill: what was committed is still at most what the total holds
    let after_kill = committed(&brokers, &group, &parts);
    for (tp, off) in &after_kill {
        assert!(
            *off <= per_partition[tp],
            "{tp:?}: committed {off} beyond the topic's end"
        );
    }

    // restart: the state is rebuilt from the beginning of the topics
    let server = Server::start(&data, &brokers, &prefix, &group);
    let deadline = Instant::now() + Duration::from_secs(120);
    let views = loop {
        assert!(
            Instant::now() < deadline,
            "lpm did not catch up after the restart"
        );
        if let Some((views, applied)) = server.views(&token) {
            let done = per_partition
                .iter()
                .all(|(tp, n)| *n == 0 || applied.get(tp) == Some(n));
            if done {
                break views;
            }
        }
        thread::sleep(Duration::from_millis(50));
    };
    let expected = reference::views(&truth.rows, opts.tz);
    let diffs = reference::compare(&expected, &views);
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
    assert_oracle_views("lpm serve --kafka", dir.path(), &text, &views);
    // dead letters counted on /metrics
    let (_, metrics) = server.get("/metrics", &token).expect("metrics");
    let dead: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("lpm_kafka_dead_letters_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        dead, 2.0,
        "dead letters after the restart (re-read from the start): {metrics}"
    );
    assert!(
        metrics.contains("lpm_kafka_partition_lag{"),
        "per-partition lag exported"
    );
    assert!(killed_at.is_some());
}

/// Regression (issue 15): with `--kafka --sink` the sink stored `{"source":"none"}` as the
/// position of the tick it wrote (its position function knew the embedded log and the capture,
/// not Kafka), so after a restart its "wait until the engine covers what I wrote" guard passed
/// at once. It must store the Kafka offsets the written tick covers.
#[test]
fn kafka_sink_stores_the_offsets_its_tick_covers() {
    let brokers = brokers();
    let run = crate::support::run_id("s");
    let (prefix, group) = (run.clone(), format!("{run}-group"));
    let dir = tempfile::tempdir().expect("tempdir");
    let total = produce_generated(&brokers, dir.path(), &prefix, 11);

    let mut db = crate::sink::SinkDb::create("kafka");
    let url = db.url(None);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let token = lpm(&[
        "token",
        "create",
        "kafka-sink-test",
        "--data-dir",
        data.to_str().expect("p"),
    ]);
    let server = Server::start_with(&data, &brokers, &prefix, &group, &["--sink", &url]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let read = server.views(&token).map(|(_, o)| o.values().sum::<i64>());
        let stored = db.state();
        if let (Some(read), Some((_, position, _))) = (read, &stored) {
            let stored_total: i64 = position["offsets"]
                .as_array()
                .map(|a| a.iter().filter_map(|o| o["offset"].as_i64()).sum())
                .unwrap_or(0);
            if read >= total && stored_total >= total {
                assert_eq!(position["source"], "kafka", "{position}");
                let topics: Vec<&str> = position["offsets"]
                    .as_array()
                    .expect("offsets")
                    .iter()
                    .filter_map(|o| o["topic"].as_str())
                    .collect();
                assert!(topics.iter().all(|t| t.starts_with(&prefix)), "{position}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the sink never stored the offsets of all {total} records: stored {stored:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    drop(server);

    // Restart with a stored position ahead of the topics in one partition (what a restarted
    // engine looks like while it re-reads): the sink must write nothing, neither its state nor
    // rows, until the engine has read past it, then reconcile.
    let (_, stored, _) = db.state().expect("stored state");
    let mut ahead = stored.clone();
    let entries = ahead["offsets"].as_array_mut().expect("offsets");
    let busiest = entries
        .iter_mut()
        .max_by_key(|o| o["offset"].as_i64().unwrap_or(0))
        .expect("an offset");
    let (topic, partition) = (
        busiest["topic"].as_str().expect("topic").to_string(),
        busiest["partition"].as_i64().expect("partition") as i32,
    );
    let target = busiest["offset"].as_i64().expect("offset") + 5;
    busiest["offset"] = target.into();
    let tampered = db.tamper(&ahead);
    let server = Server::start_with(&data, &brokers, &prefix, &group, &["--sink", &url]);
    let behind = |server: &Server| -> bool {
        server
            .views(&token)
            .and_then(|(_, o)| o.get(&(topic.clone(), partition)).copied())
            .is_none_or(|read| read < target)
    };
    // the engine re-reads everything there is, which stays behind the tampered partition
    let deadline = Instant::now() + Duration::from_secs(60);
    while server
        .views(&token)
        .map(|(v, _)| v.as_object().map_or(0, |o| o.len()))
        != Some(9)
        || server.metric("lpm_sink_waiting", &token) != Some(1.0)
    {
        assert!(Instant::now() < deadline, "the restarted sink never waited");
        thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..10 {
        assert!(
            behind(&server),
            "the engine read past offsets never produced"
        );
        assert_eq!(
            db.state().map(|s| s.1),
            Some(ahead.clone()),
            "the sink wrote its state while behind"
        );
        assert_eq!(db.views(), tampered, "the sink wrote rows while behind");
        thread::sleep(Duration::from_millis(200));
    }
    // more records: the engine reads past the stored position, the sink reconciles
    produce_generated(&brokers, dir.path(), &prefix, 12);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let caught_up = !behind(&server);
        let converged = caught_up
            && db.state().is_some_and(|(_, p, _)| {
                p["offsets"].as_array().is_some_and(|a| {
                    a.iter().any(|o| {
                        o["topic"] == topic.as_str()
                            && o["partition"] == partition
                            && o["offset"].as_i64() >= Some(target)
                    })
                })
            })
            && server.views(&token).map(|(v, _)| v) == Some(db.views());
        if converged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink never converged after the engine covered the stored position"
        );
        thread::sleep(Duration::from_millis(200));
    }
    drop(server);
}

/// Records per (topic, partition) in kcat lines.
pub(crate) fn count_partitions(lines: &[String], into: &mut Offsets) {
    for l in lines {
        let v: Value = serde_json::from_str(l).expect("dump line");
        let key = (
            v["topic"].as_str().expect("topic").to_string(),
            v["partition"].as_i64().expect("partition") as i32,
        );
        *into.entry(key).or_default() += 1;
    }
}

/// Asserts `views` equal `oracle.py`'s views of the dump `text` (written into `dir`), when
/// `../shared` is present; says so loudly when it is not.
pub(crate) fn assert_oracle_views(what: &str, dir: &Path, text: &str, views: &Value) {
    let Some(script) = crate::support::oracle_script() else {
        eprintln!(
            "NOTE: ../shared/bench/oracle.py not found: compared with the reference model only"
        );
        return;
    };
    let raw = dir.join("raw.jsonl");
    std::fs::write(&raw, text).expect("write raw dump");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&raw)
        .args(["--tz", TZ])
        .output()
        .expect("oracle.py");
    assert!(
        out.status.success(),
        "oracle.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).expect("oracle json");
    crate::serve::assert_same_views(what, ("oracle.py", &oracle), ("lpm", views));
}

/// Asserts `views` equal the reference model of the whole dump.
pub(crate) fn assert_reference(
    what: &str,
    truth: &lpm_testkit::gen::GenTruth,
    tz: chrono_tz::Tz,
    views: &Value,
) {
    let expected = reference::views(&truth.rows, tz);
    let diffs = reference::compare(&expected, views);
    assert!(
        diffs.is_empty(),
        "{what}: {} differences, first: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
}

/// Checkpoints of `lpm serve --kafka`: a restart loads the newest checkpoint and reads each
/// partition from its offsets (only the records produced after it); the views equal the
/// reference model of the whole dump. A checkpoint whose offsets the broker no longer serves
/// (here: past the end, as after a topic is recreated) is refused, counted, and the topics are
/// re-read from the beginning, to the same views.
#[test]
fn kafka_restarts_from_checkpoints_and_rereads_only_when_offsets_are_gone() {
    let brokers = brokers();
    let run = crate::support::run_id("ck");
    let (prefix, group) = (run.clone(), format!("{run}-group"));
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = GenOptions {
        seed: 11,
        persons: 800,
        partitions: 2,
        ..GenOptions::default()
    };
    let (truth, _, lines) = dump_under(&opts, &prefix);
    let (first, second) = lines.split_at(lines.len() * 2 / 3);
    let f1 = dir.path().join("first.jsonl");
    let f2 = dir.path().join("second.jsonl");
    write_lines(&f1, first);
    write_lines(&f2, second);
    produce(&brokers, &f1, 2);
    let mut want = Offsets::new();
    count_partitions(first, &mut want);

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let token = lpm(&[
        "token",
        "create",
        "ck",
        "--data-dir",
        data.to_str().expect("p"),
    ]);
    let flags = [
        "--checkpoint-every-changes",
        "500",
        "--checkpoint-interval-s",
        "1",
    ];
    let mut a = Server::start_with(&data, &brokers, &prefix, &group, &flags);
    a.caught_up(&token, &want, "the first part");
    a.terminate();

    produce(&brokers, &f2, 2);
    count_partitions(second, &mut want);
    let mut b = Server::start_with(&data, &brokers, &prefix, &group, &flags);
    let views = b.caught_up(&token, &want, "after a restart from the checkpoint");
    let restored = b
        .metric("lpm_recovery_restored_entries", &token)
        .unwrap_or(0.0);
    let replayed = b
        .metric("lpm_recovery_replayed_records", &token)
        .unwrap_or(-1.0);
    assert!(restored > 0.0, "the restart loaded a checkpoint");
    assert_eq!(b.metric("lpm_recovery_fallbacks_total", &token), Some(0.0));
    assert!(
        replayed >= 0.0 && replayed <= second.len() as f64,
        "after the checkpoint only the {} records produced since were read, not {replayed}",
        second.len()
    );
    assert_reference("restart from a checkpoint", &truth, opts.tz, &views);
    b.terminate();

    // the newest checkpoint's offsets moved past the partitions' ends: refused, re-read all
    let newest = crate::checkpoints::newest_manifest(&data);
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(&newest).expect("manifest")).expect("JSON");
    for o in m["position"]["offsets"].as_array_mut().expect("offsets") {
        o["offset"] = Value::from(1_000_000_000_i64);
    }
    std::fs::write(&newest, m.to_string()).expect("rewrite the manifest");
    let c = Server::start_with(&data, &brokers, &prefix, &group, &flags);
    let views = c.caught_up(&token, &want, "after a refused checkpoint");
    assert_eq!(c.metric("lpm_recovery_fallbacks_total", &token), Some(1.0));
    assert_eq!(c.metric("lpm_recovery_restored_entries", &token), Some(0.0));
    assert_reference(
        "re-read after a refused checkpoint",
        &truth,
        opts.tz,
        &views,
    );
}
