//! `lpm serve --kafka` as a timely cluster of two processes on loopback (docs/scale-out.md).
//!
//! A generated dump (3 partitions per topic: each process owns some partitions of every
//! topic) is produced into the test broker, half before the cluster starts and half while it
//! runs. Process 0 serves the API; process 1 only `/healthz`, `/readyz` and `/metrics`.
//! Checked: the group's committed offsets never run ahead of what the owning process shows as
//! applied; process 0's views equal the reference model (and `oracle.py` when `../shared` is
//! present) and its case reads equal the final rows of cases of both processes' partitions;
//! both processes checkpoint their share of the state at process 0's ticks; kill -9 of
//! process 1 stops process 0 with an error (fail-stop); records re-delivered while it is down;
//! a restarted cluster loads the shares of one common tick, reads exactly the re-delivered
//! records after it, and shows the same views (= `oracle.py`) and case reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use lpm_engine::model::{Row, Table};
use lpm_testkit::gen::{GenOptions, GenTruth};
use serde_json::Value;

use crate::kafka::{
    assert_oracle_views, assert_reference, brokers, committed, count_partitions, dump_under, lpm,
    produce, write_lines, Offsets, Server,
};

/// Two free loopback ports (bound then released: the processes bind them next).
fn two_ports() -> String {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let peers = format!(
        "{},{}",
        a.local_addr().expect("addr"),
        b.local_addr().expect("addr")
    );
    drop((a, b));
    peers
}

/// Starts both processes at once (each waits for the other before it serves).
fn start_cluster(data: [&Path; 2], brokers: &str, prefix: &str, group: &str) -> (Server, Server) {
    let peers = two_ports();
    let spawn = |i: usize| {
        let (data, brokers, prefix, group, peers) = (
            data[i].to_path_buf(),
            brokers.to_string(),
            prefix.to_string(),
            group.to_string(),
            peers.clone(),
        );
        thread::spawn(move || {
            Server::start_with(
                &data,
                &brokers,
                &prefix,
                &group,
                &[
                    "--peers",
                    &peers,
                    "--process",
                    &i.to_string(),
                    // process 0 asks every second (even when its own partitions are quiet)
                    "--checkpoint-interval-s",
                    "1",
                ],
            )
        })
    };
    let (p0, p1) = (spawn(0), spawn(1));
    (
        p0.join().expect("process 0 started"),
        p1.join().expect("process 1 started"),
    )
}

/// `(topic, partition) -> value` of one per-partition gauge on a process's `/metrics`.
fn partition_gauge(server: &Server, name: &str) -> Offsets {
    let mut out = Offsets::new();
    let Ok((200, text)) = server.get("/metrics", "") else {
        return out;
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(t), Some(p), Ok(v)) = (
            label("topic"),
            label("partition").and_then(|p| p.parse::<i32>().ok()),
            value.trim().parse::<f64>(),
        ) {
            out.insert((t, p), v as i64);
        }
    }
    out
}

/// Waits until process 0's views equal the reference model of the whole dump, and returns them.
fn settle(server: &Server, token: &str, truth: &GenTruth, tz: chrono_tz::Tz, what: &str) -> Value {
    let expected = lpm_testkit::reference::views(&truth.rows, tz);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let views = server.views(token).map(|(v, _)| v);
        if let Some(v) = &views {
            if lpm_testkit::reference::compare(&expected, v).is_empty() {
                return v.clone();
            }
        }
        if Instant::now() > deadline {
            let v = views.unwrap_or(Value::Null);
            assert_reference(what, truth, tz, &v);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Every case of the final rows, read from process 0 (whichever process's partitions hold
/// it): its version and its number of actions.
fn assert_case_reads(server: &Server, token: &str, truth: &GenTruth) {
    let tables = &truth.rows.tables;
    let mut actions: BTreeMap<i64, usize> = BTreeMap::new();
    for row in tables
        .get(&Table::CaseActions)
        .into_iter()
        .flat_map(|t| t.values())
    {
        if let Row::Action(a) = row {
            *actions.entry(a.case_id).or_default() += 1;
        }
    }
    let cases: Vec<_> = tables
        .get(&Table::CaseCases)
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|r| {
            if let Row::Case(c) = r {
                Some(c.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(cases.len() > 20, "the dump holds cases");
    for c in cases.iter().step_by(cases.len() / 20) {
        let (status, body) = server
            .get(&format!("/api/v1/cases/{}", c.id), token)
            .expect("case read");
        assert_eq!(status, 200, "case {}: {body}", c.id);
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            v["case"]["version"].as_i64(),
            Some(c.version),
            "case {}: {body}",
            c.id
        );
        let n = v["actions"].as_array().map_or(0, Vec::len);
        assert_eq!(
            n,
            actions.get(&c.id).copied().unwrap_or(0),
            "case {} actions",
            c.id
        );
    }
}

#[test]
fn a_two_process_cluster_serves_the_oracle_views_commits_behind_them_and_stops_together() {
    let brokers = brokers();
    let run = crate::support::run_id("cl");
    let (prefix, group) = (run.clone(), format!("{run}-group"));
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = GenOptions {
        seed: 23,
        persons: 1500,
        partitions: 3,
        ..GenOptions::default()
    };
    let (truth, text, lines) = dump_under(&opts, &prefix);
    let mut per_partition = Offsets::new();
    count_partitions(&lines, &mut per_partition);
    let (first, second) = lines.split_at(lines.len() / 2);
    let (f1, f2) = (
        dir.path().join("first.jsonl"),
        dir.path().join("second.jsonl"),
    );
    write_lines(&f1, first);
    write_lines(&f2, second);
    produce(&brokers, &f1, 3);

    let data: Vec<_> = (0..2)
        .map(|i| dir.path().join(format!("data{i}")))
        .collect();
    for d in &data {
        std::fs::create_dir_all(d).expect("data dir");
    }
    let token = lpm(&[
        "token",
        "create",
        "cluster-test",
        "--data-dir",
        data[0].to_str().expect("path"),
    ]);
    let (mut p0, mut p1) = start_cluster([&data[0], &data[1]], &brokers, &prefix, &group);

    // process 1 serves its health and metrics, not the API
    let (status, body) = p1.get("/api/v1/views", &token).expect("process 1");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("process 0 serves the API"), "{body}");
    let (status, body) = p1.get("/healthz", "").expect("process 1 healthz");
    assert_eq!(status, 200, "{body}");

    // a WebSocket client on process 0 follows the views and the case notices from here on
    let ws = crate::serve::WsClient::connect(&p0.addr, &token);

    // the second half arrives while the cluster runs; commits never pass what is applied
    let producing = {
        let (brokers, f2) = (brokers.clone(), f2.clone());
        thread::spawn(move || produce(&brokers, &f2, 3))
    };
    let parts: Vec<(String, i32)> = per_partition.keys().cloned().collect();
    let mut checked = 0;
    while !producing.is_finished() || checked < 3 {
        let c = committed(&brokers, &group, &parts);
        let mut applied = partition_gauge(&p0, "lpm_kafka_partition_applied_offset");
        applied.extend(partition_gauge(&p1, "lpm_kafka_partition_applied_offset"));
        for (tp, off) in &c {
            let a = applied.get(tp).copied().unwrap_or(0);
            assert!(
                *off <= a,
                "{tp:?}: committed {off} ran ahead of the applied {a}"
            );
        }
        checked += 1;
        thread::sleep(Duration::from_millis(100));
    }
    producing.join().expect("producer");

    // both processes read a share: every partition is assigned to exactly one of them
    settle(&p0, &token, &truth, opts.tz, "cluster");
    // the last records may change no view (re-deliveries): wait until every partition's end
    // is applied (the gauges are published every 100 ms), then the views are final
    let (own0, own1) = crate::serve::wait_until(
        "every partition applied to its end",
        Duration::from_secs(60),
        || {
            let own0 = partition_gauge(&p0, "lpm_kafka_partition_applied_offset");
            let own1 = partition_gauge(&p1, "lpm_kafka_partition_applied_offset");
            let done = per_partition
                .iter()
                .all(|(tp, n)| own0.get(tp).or(own1.get(tp)) == Some(n));
            if done {
                Ok((own0, own1))
            } else {
                Err(format!("process 0 {own0:?}, process 1 {own1:?}"))
            }
        },
    );
    let views = settle(&p0, &token, &truth, opts.tz, "cluster");
    assert!(!own0.is_empty() && !own1.is_empty(), "{own0:?} {own1:?}");
    for tp in per_partition.keys() {
        assert!(
            own0.contains_key(tp) != own1.contains_key(tp),
            "{tp:?} read by exactly one process: {own0:?} {own1:?}"
        );
        let total = own0.get(tp).or(own1.get(tp)).copied();
        assert_eq!(total, Some(per_partition[tp]), "{tp:?} applied to its end");
    }
    for p in [&p0, &p1] {
        let (status, body) = p.get("/readyz", "").expect("readyz");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["cluster"]["processes"], 2, "{body}");
    }
    assert_case_reads(&p0, &token, &truth);
    // the WebSocket reached the same views, a whole tick at a time, with each tick's case
    // notices after (never before) its diff (a cluster's ticks follow the clock, so the
    // store's tick moves on without changes: wait for the views, not for a tick)
    let expected = lpm_testkit::reference::views(&truth.rows, opts.tz);
    crate::serve::wait_until(
        "the WebSocket views to equal the reference",
        Duration::from_secs(30),
        || {
            let s = ws.state();
            match s.current() {
                Some(v) if lpm_testkit::reference::compare(&expected, v).is_empty() => Ok(()),
                Some(v) => Err(format!(
                    "{} differences",
                    lpm_testkit::reference::compare(&expected, v).len()
                )),
                None => Err("no snapshot".into()),
            }
        },
    );
    {
        let s = ws.state();
        assert!(s.errors.is_empty(), "WebSocket: {:?}", s.errors);
        assert!(
            s.cases_before_their_diff.is_empty(),
            "{:?}",
            s.cases_before_their_diff
        );
        assert!(!s.cases.is_empty(), "case notices arrived");
    }
    ws.close();
    assert_oracle_views("lpm serve --kafka --peers", dir.path(), &text, &views);

    // every checkpoint requested from here on covers everything: wait until both processes
    // have written their share of one
    let before = p0
        .metric("lpm_checkpoint_last_tick", &token)
        .expect("process 0's checkpoint gauge");
    crate::serve::wait_until(
        "both processes to checkpoint their share after the views settled",
        Duration::from_secs(60),
        || {
            let t0 = p0.metric("lpm_checkpoint_last_tick", &token).unwrap_or(0.0);
            let t1 = p1.metric("lpm_checkpoint_last_tick", "").unwrap_or(0.0);
            if t0 > before && t1 > before {
                Ok(())
            } else {
                Err(format!("before {before}, process 0 {t0}, process 1 {t1}"))
            }
        },
    );

    // fail-stop: kill -9 of process 1 makes process 0 exit with an error
    p1.kill9();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = p0.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "process 0 still runs after process 1 died"
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1), "process 0's exit: {status}");
    // nothing committed past the topics' ends
    for (tp, off) in committed(&brokers, &group, &parts) {
        assert!(off <= per_partition[&tp], "{tp:?}: committed {off}");
    }

    // while it is down, the second half is delivered again (a producer's retry: the same
    // records at new offsets, which change no view)
    produce(&brokers, &f2, 3);

    // a restarted cluster loads each process's share of one common tick, reads only the
    // records after it (the re-delivered ones, on whichever process owns their partition),
    // and shows the same views and case reads
    drop((p0, p1));
    let (p0, p1) = start_cluster([&data[0], &data[1]], &brokers, &prefix, &group);
    settle(&p0, &token, &truth, opts.tz, "cluster after the restart");
    assert_case_reads(&p0, &token, &truth);
    for (i, p, t) in [(0, &p0, token.as_str()), (1, &p1, "")] {
        let restored = p.metric("lpm_recovery_restored_entries", t);
        let fallbacks = p.metric("lpm_recovery_fallbacks_total", t);
        assert!(
            restored.is_some_and(|n| n > 0.0),
            "process {i} loaded its share: restored {restored:?}"
        );
        assert_eq!(
            fallbacks,
            Some(0.0),
            "process {i} found no checkpoint unusable"
        );
    }
    crate::serve::wait_until(
        "the two processes to replay exactly the re-delivered records",
        Duration::from_secs(60),
        || {
            // records read since this start (`lpm_recovery_replayed_records` counts only
            // those read before the process became ready)
            let r0 = p0.metric("lpm_kafka_records_total", &token);
            let r1 = p1.metric("lpm_kafka_records_total", "");
            match (r0, r1) {
                (Some(a), Some(b)) if a + b == second.len() as f64 => Ok(()),
                _ => Err(format!(
                    "replayed {r0:?} + {r1:?}, re-delivered {}",
                    second.len()
                )),
            }
        },
    );
    let views = settle(
        &p0,
        &token,
        &truth,
        opts.tz,
        "cluster after the re-delivery",
    );
    assert_oracle_views(
        "lpm serve --kafka --peers, restarted from checkpoints",
        dir.path(),
        &text,
        &views,
    );
}
