//! The WebSocket `cases` topic in the modes where lpm does not write the rows itself.
//!
//! Regression (issue 15, bug 1): case notices used to come only from the embedded writer's
//! hook, so with `--capture` or `--kafka` the topic never sent anything. A case written
//! straight into MySQL (captured from the binlog) or produced to Kafka must now be announced
//! after its tick's diff, and so must a later change to its person.

use std::time::Duration;

use serde_json::Value;

use crate::serve::{init_data_dir, wait_until, Server, WsClient};
use crate::support::{self, MysqlSession};

/// Waits until the client has announced `case` at a tick after `after` (any tick if `None`);
/// returns that tick.
fn announced(ws: &WsClient, case: i64, after: Option<u64>, what: &str) -> u64 {
    wait_until(what, Duration::from_secs(60), || {
        let s = ws.state();
        if let Some(e) = &s.ended {
            panic!("the WebSocket stream ended early: {e}");
        }
        match s.cases.get(&case) {
            Some(t) if after.is_none_or(|a| *t > a) => Ok(*t),
            got => Err(format!(
                "case {case} announced at {got:?}, client at tick {:?}, errors {:?}",
                s.tick, s.errors
            )),
        }
    })
}

/// Checks what every client of these tests must hold: no protocol errors, and no `cases`
/// message before the `diff` of its tick.
fn assert_clean(ws: WsClient) {
    let (errors, early) = {
        let s = ws.state();
        (s.errors.clone(), s.cases_before_their_diff.clone())
    };
    ws.close();
    assert!(errors.is_empty(), "stream errors: {errors:?}");
    assert!(
        early.is_empty(),
        "cases before their diff at ticks {early:?}"
    );
}

#[test]
fn cases_topic_announces_cases_captured_from_mysql() {
    let url = support::mysql_url();
    let name = format!("lpm_notice_{}", std::process::id());
    let mut db = MysqlSession::connect(&url);
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
    let migrated = support::lpm(&["migrate", "--mysql", &url, "--database", &name], None);
    assert!(
        migrated.status.success(),
        "lpm migrate: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token = init_data_dir(dir.path());
    let sid = (5_950_000 + std::process::id() % 40_000).to_string();
    let server = Server::start_with(
        dir.path(),
        &[
            "--capture",
            &url,
            "--database",
            &name,
            "--server-id",
            &sid,
            "--heartbeat-ms",
            "200",
        ],
    );
    let ws = WsClient::connect(&server.addr, &token);

    db.q(&format!("USE `{name}`"));
    db.q(
        "INSERT INTO persons_lost (id, full_name, age, gender, last_seen_at, last_seen_place) \
          VALUES (41, 'Lucía Andrade', 9, 'female', '2026-11-20 10:00:00', 'Cuenca')",
    );
    db.q(
        "INSERT INTO case_cases (id, person_id, status, priority) VALUES (71, 41, 'open', 'high')",
    );
    let first = announced(&ws, 71, None, "the captured case on the cases topic");
    // the person's row is part of the case record: changing it announces the case again
    db.q("UPDATE persons_lost SET full_name = 'Lucía Andrade Vega', version = 2 WHERE id = 41");
    announced(
        &ws,
        71,
        Some(first),
        "the case again after its person changed",
    );
    assert_clean(ws);
    drop(server);
    db.q(&format!("DROP DATABASE IF EXISTS `{name}`"));
}

fn brokers() -> String {
    std::env::var("LPM_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "LPM_TEST_KAFKA_BROKERS is not set: start a broker with `bash scripts/tansu.sh start` \
             and export LPM_TEST_KAFKA_BROKERS=$(bash scripts/tansu.sh url)"
        )
    })
}

/// Produces kcat lines into the broker, with the topics renamed under `prefix`.
fn produce(brokers: &str, prefix: &str, lines: &[String], dir: &std::path::Path, file: &str) {
    let renamed: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace(
                "\"lpm.lost_persons_db.",
                &format!("\"{prefix}.lost_persons_db."),
            )
        })
        .collect();
    let path = dir.join(file);
    support::write_dump(&path, &renamed);
    let path = path.to_str().expect("utf-8 path");
    let out = support::lpm(
        &[
            "kafka",
            "produce",
            "--brokers",
            brokers,
            "--partitions",
            "1",
            path,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "lpm kafka produce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn created(row: Value, pos: u64) -> Option<Value> {
    Some(support::envelope("c", Some(row), 1, pos, 0, "false"))
}

#[test]
fn cases_topic_announces_cases_consumed_from_kafka() {
    let brokers = brokers();
    let prefix = support::run_id("n");
    let dir = tempfile::tempdir().expect("tempdir");
    // every topic exists before lpm subscribes: a tombstone for a key that never existed
    let tombstones: Vec<String> = lpm_engine::model::Table::ALL
        .iter()
        .map(|t| support::record(t.name(), 0, 999_999, None))
        .collect();
    produce(&brokers, &prefix, &tombstones, dir.path(), "topics.jsonl");

    let data = dir.path().join("data");
    let token = init_data_dir(&data);
    let server = Server::start_with(
        &data,
        &[
            "--kafka",
            &brokers,
            "--kafka-prefix",
            &prefix,
            "--kafka-group",
            &format!("{prefix}-group"),
            "--kafka-dead-letter-topic",
            &format!("{prefix}.dead-letter"),
            "--kafka-heartbeat-topic",
            "none",
        ],
    );
    let ws = WsClient::connect(&server.addr, &token);

    let person = support::person(41, Some(9), "female", "2024-03-07T10:00:00Z");
    let case = support::case(71, 41, "open", "high", None);
    produce(
        &brokers,
        &prefix,
        &[
            support::record("persons_lost", 1, 41, created(person.clone(), 100)),
            support::record("case_cases", 1, 71, created(case, 200)),
        ],
        dir.path(),
        "case.jsonl",
    );
    let first = announced(&ws, 71, None, "the consumed case on the cases topic");
    let mut renamed = person;
    renamed["full_name"] = "Lucía Andrade Vega".into();
    renamed["version"] = 2.into();
    produce(
        &brokers,
        &prefix,
        &[support::record(
            "persons_lost",
            2,
            41,
            Some(support::envelope("u", Some(renamed), 1, 300, 0, "false")),
        )],
        dir.path(),
        "person.jsonl",
    );
    announced(
        &ws,
        71,
        Some(first),
        "the case again after its person changed",
    );
    assert_clean(ws);
}
