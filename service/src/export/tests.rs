//! The export of a log whose first segments were retired: a checkpoint's rows, then the tail,
//! replayed through the engine as `lpm replay` does, equal the full history's replay and the
//! running server; deleted keys and rows hidden by a truncate stay out; no usable checkpoint,
//! or one older than the retained log, is refused.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lpm_connectors::debezium::encode::{encode_change, EncodedEvent, EventSource};
use lpm_connectors::log::{
    export_kcat, retire_through, segment_name, EmbeddedLog, LogOptions, LogWriter,
};
use lpm_connectors::{Catalog, DecodeStats, DumpFeed, DumpOptions};
use lpm_engine::change::{Coords, Position};
use lpm_engine::checkpoint::{StoredEntry, TableMeta};
use lpm_engine::model::{Key, Person, Row, Table};
use lpm_engine::views::ViewRow;
use lpm_engine::{Engine, EngineConfig};
use serde_json::Value;

use super::{embedded_log, ExportError, Exported};
use crate::checkpoint::file::{self, Manifest, StateWriter};
use crate::checkpoint::store::{state_name, CheckpointDir};
use crate::checkpoint::tests::{checkpoint, copy_dir, history, tail};
use crate::pipeline::tests::{config, start_ready_with};
use crate::position::SourcePosition;
use crate::sor::{DATABASE, LOG_DIR, LOG_FILE, PREFIX};

// ---------------------------------------------------------------------------------------------
// helpers

/// What `lpm replay` computes from a dump: the views (as a subscriber's snapshot holds them)
/// and every final row, sorted.
fn replay(dump: &Path) -> (Vec<ViewRow>, Vec<Row>) {
    let stats = Arc::new(DecodeStats::default());
    let feed = Arc::new(
        DumpFeed::open(
            &DumpOptions::new(dump),
            Arc::new(Catalog::lpm()),
            stats.clone(),
        )
        .expect("open the dump"),
    );
    let engine = Engine::start(
        EngineConfig {
            workers: 2,
            tz: chrono_tz::UTC,
            collect_rows: true,
            ..EngineConfig::default()
        },
        feed.clone(),
    )
    .expect("engine");
    let store = engine.handle().store().clone();
    assert!(store.wait_finished(Duration::from_secs(60)), "replay ends");
    let (_, views) = store.snapshot();
    let mut rows = engine.join().expect("join").rows;
    rows.sort();
    assert_eq!(stats.errors_total(), 0, "every line decodes");
    (views, rows)
}

/// Exports `data_dir` into `path`.
fn export_to(data_dir: &Path, path: &Path) -> Result<Exported, ExportError> {
    let out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    embedded_log(data_dir, out)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// The Debezium value of a dump line.
fn value(line: &Value) -> Value {
    serde_json::from_str(line["payload"].as_str().expect("a payload")).expect("json")
}

/// Appends one record per transaction, its events stamped as the embedded system of record
/// stamps them (`sor::EmbeddedSor::submit_at`): `pos` = seq, `row` = index.
fn append(writer: &LogWriter, transactions: &[Vec<(Option<Row>, Option<Row>)>]) {
    for t in transactions {
        writer
            .append_with(|seq| {
                let source = EventSource::new(PREFIX, DATABASE, LOG_FILE, seq, 1_790_000_000_000);
                let mut events: Vec<EncodedEvent> = Vec::new();
                for (i, (before, after)) in t.iter().enumerate() {
                    let src = source.at_row(i as u32);
                    events.extend(
                        encode_change(before.as_ref(), after.as_ref(), &src).expect("encodes"),
                    );
                }
                events
            })
            .expect("append");
    }
}

fn person(id: Key, age: i64) -> Row {
    Row::Person(Arc::new(Person {
        id,
        full_name: format!("Persona {id}"),
        age: Some(age),
        gender: "female".into(),
        last_seen_at: 1_710_000_000_000 + id,
        reported_at: 1_710_054_900_000 + id * 3_600_000,
        last_seen_place: "Quito".into(),
        latitude: None,
        longitude: None,
        description: None,
        reporter_name: None,
        reporter_phone: None,
        version: 1,
    }))
}

/// The position of event `row` of log record `pos`, as the decoder gives it.
fn at(pos: u64, row: u32, seq: u64) -> Position {
    Position {
        coords: Some(Coords {
            file: 1,
            pos,
            row,
            streamed: true,
        }),
        seq,
    }
}

/// Publishes checkpoint `number` of `data_dir` holding `entries` of persons_lost under `meta`,
/// covering the log up to `log_seq`.
fn publish(data_dir: &Path, number: u64, log_seq: u64, meta: TableMeta, entries: &[StoredEntry]) {
    let dir = CheckpointDir::open(data_dir).expect("checkpoint dir");
    let temp = dir.temp_state(number);
    let metas = Table::ALL
        .iter()
        .map(|&t| {
            (
                t,
                if t == Table::PersonsLost {
                    meta
                } else {
                    TableMeta::default()
                },
            )
        })
        .collect();
    let mut w = StateWriter::create(&temp, metas).expect("state");
    w.entries(Table::PersonsLost, entries).expect("entries");
    let (state_bytes, state_crc32) = w.finish().expect("finish");
    let manifest = Manifest {
        format: file::FORMAT,
        number,
        tick: 1,
        taken_at_ms: 1_790_000_000_000,
        position: SourcePosition::EmbeddedLog { log_seq },
        ingest_seq: 100,
        workers: 1,
        entries: [("persons_lost".to_string(), entries.len() as u64)].into(),
        state_file: state_name(number),
        state_bytes,
        state_crc32,
        duration_ms: 1,
        history: Vec::new(),
        origin: String::new(),
    };
    dir.publish(&manifest).expect("publish");
}

/// A log in `data_dir/log` with one segment per record (every batch rotates): persons 3 and 6
/// (record 1), then 1, 2, 4, 5 (record 2), person 1 at age 30 (record 3), person 2 deleted
/// (record 4), and the tail: 4 at age 50, 5 deleted, 7 created, 2 created again, 3 at age 33
/// (records 5 to 9).
fn hand_made_log(data_dir: &Path) {
    let options = LogOptions {
        segment_bytes: 1,
        ..LogOptions::default()
    };
    let (log, _) = EmbeddedLog::open_opts(&data_dir.join(LOG_DIR), &options).expect("open");
    let writer = log.into_writer(None).expect("writer");
    let p = person;
    append(
        &writer,
        &[
            vec![(None, Some(p(3, 3))), (None, Some(p(6, 6)))],
            vec![
                (None, Some(p(1, 1))),
                (None, Some(p(2, 2))),
                (None, Some(p(4, 4))),
                (None, Some(p(5, 5))),
            ],
            vec![(Some(p(1, 1)), Some(p(1, 30)))],
            vec![(Some(p(2, 2)), None)],
            vec![(Some(p(4, 4)), Some(p(4, 50)))],
            vec![(Some(p(5, 5)), None)],
            vec![(None, Some(p(7, 7)))],
            vec![(None, Some(p(2, 20)))],
            vec![(Some(p(3, 3)), Some(p(3, 33)))],
        ],
    );
}

/// The state after record 4 of [`hand_made_log`], with a truncate cut after record 1 (the
/// embedded log writes no truncates: the cut is made by hand): 3 and 6 hidden, 2 deleted.
fn hand_made_state() -> (TableMeta, Vec<StoredEntry>) {
    let meta = TableMeta {
        truncated_before: Some(at(1, 9, 3)),
        last_closed: None,
    };
    let entry = |key, position, row| StoredEntry { key, position, row };
    let entries = vec![
        entry(5, at(2, 3, 6), Some(person(5, 5))),
        entry(3, at(1, 0, 1), Some(person(3, 3))),
        entry(1, at(3, 0, 7), Some(person(1, 30))),
        entry(6, at(1, 1, 2), Some(person(6, 6))),
        entry(2, at(4, 0, 8), None),
        entry(4, at(2, 2, 5), Some(person(4, 4))),
    ];
    (meta, entries)
}

// ---------------------------------------------------------------------------------------------
// a hand-made checkpoint: what the snapshot holds, where it sits, and what replays from it

#[test]
fn a_checkpoint_stands_in_for_retired_records_without_its_hidden_or_deleted_rows() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path();
    hand_made_log(data);
    let (meta, entries) = hand_made_state();
    publish(data, 1, 4, meta, &entries);
    let log_dir = data.join(LOG_DIR);

    // while record 1 is there the export is the log itself, byte for byte
    let full = root.path().join("full.jsonl");
    let exported = export_to(data, &full).expect("export");
    assert_eq!(exported.snapshot, None);
    assert_eq!(exported.log.records, 9);
    let mut alone = Vec::new();
    export_kcat(&log_dir, &mut alone).expect("export_kcat");
    assert_eq!(std::fs::read(&full).expect("read"), alone);

    let summary = retire_through(&log_dir, 4, None).expect("retire");
    assert_eq!(summary.segments, 4);
    assert!(!log_dir.join(segment_name(1)).exists());

    let dump = root.path().join("dump.jsonl");
    let exported = export_to(data, &dump).expect("export");
    let snapshot = exported.snapshot.expect("a snapshot part");
    assert_eq!(
        (snapshot.checkpoint, snapshot.log_seq, snapshot.rows),
        (1, 4, 3)
    );
    assert_eq!((snapshot.deleted, snapshot.hidden), (1, 2));
    assert_eq!(exported.log.records, 5);

    let lines = lines(&dump);
    let values: Vec<Value> = lines
        .iter()
        .filter(|l| !l["payload"].is_null())
        .map(value)
        .collect();
    // the snapshot: the visible rows by key, as reads at the checkpoint's position
    let reads: Vec<(i64, i64, String)> = values
        .iter()
        .take_while(|v| v["op"] == "r")
        .map(|v| {
            assert_eq!(v["before"], Value::Null);
            assert_eq!(
                (v["source"]["file"].as_str(), v["source"]["pos"].as_u64()),
                (Some(LOG_FILE), Some(4)),
                "{v}"
            );
            assert_eq!(v["source"]["row"], 0);
            (
                v["after"]["id"].as_i64().expect("id"),
                v["after"]["age"].as_i64().expect("age"),
                v["source"]["snapshot"]
                    .as_str()
                    .expect("marker")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        reads,
        vec![
            (1, 30, "first".to_string()),
            (4, 4, "true".to_string()),
            (5, 5, "last".to_string())
        ]
    );
    // then the tail, streamed, after the checkpoint's position
    let tail: Vec<&Value> = values.iter().skip(reads.len()).collect();
    assert!(tail.iter().all(|v| v["op"] != "r"));
    assert!(tail.iter().all(|v| v["source"]["pos"].as_u64() > Some(4)));
    assert_eq!(tail.len(), 5);
    // one topic, offsets 0.. across both parts (the delete's tombstone included)
    let offsets: Vec<u64> = lines
        .iter()
        .map(|l| l["offset"].as_u64().expect("offset"))
        .collect();
    assert_eq!(offsets, (0..lines.len() as u64).collect::<Vec<_>>());

    // replayed: the tail wins over the snapshot; 5 is deleted, 2 comes back; 6 (hidden) stays
    // hidden, 3 (hidden) is back only because the tail wrote it again
    let (_, rows) = replay(&dump);
    let ages: Vec<(Key, Option<i64>)> = rows
        .iter()
        .map(|r| match r {
            Row::Person(p) => (p.id, p.age),
            other => panic!("only persons: {other:?}"),
        })
        .collect();
    assert_eq!(
        ages,
        vec![
            (1, Some(30)),
            (2, Some(20)),
            (3, Some(33)),
            (4, Some(50)),
            (7, Some(7))
        ]
    );
    // the same rows as the whole history minus what the cut hides (6; 3 was rewritten after)
    let (_, all_rows) = replay(&full);
    let without_6: Vec<Row> = all_rows.into_iter().filter(|r| r.key() != 6).collect();
    assert_eq!(rows, without_6);
}

#[test]
fn no_usable_checkpoint_or_one_older_than_the_retained_log_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path();
    hand_made_log(data);
    let log_dir = data.join(LOG_DIR);
    retire_through(&log_dir, 4, None).expect("retire");
    let dump = root.path().join("dump.jsonl");

    // no checkpoint at all
    let err = export_to(data, &dump).expect_err("refused");
    assert!(
        matches!(err, ExportError::NoCheckpoint { first: 5, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("starts at record 5") && text.contains("there is none"),
        "{text}"
    );

    // one that does not verify: named, with why
    let (meta, entries) = hand_made_state();
    publish(data, 1, 4, meta, &entries);
    let state = CheckpointDir::open(data)
        .expect("dir")
        .path()
        .join(state_name(1));
    let mut bytes = std::fs::read(&state).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&state, bytes).expect("write");
    let text = export_to(data, &dump).expect_err("refused").to_string();
    assert!(
        text.contains("checkpoint-000000000001.json") && text.contains("crc"),
        "{text}"
    );

    // a valid one that covers records up to 2 only: 3 and 4 are in neither
    publish(data, 2, 2, TableMeta::default(), &[]);
    let err = export_to(data, &dump).expect_err("refused");
    assert!(
        matches!(
            err,
            ExportError::TailMissing {
                number: 2,
                log_seq: 2,
                first: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("records 3 to 4"), "{err}");

    // a newer one that covers them: exported
    let (meta, entries) = hand_made_state();
    publish(data, 3, 4, meta, &entries);
    let exported = export_to(data, &dump).expect("export");
    assert_eq!(exported.snapshot.map(|s| s.checkpoint), Some(3));
}

// ---------------------------------------------------------------------------------------------
// a real server's checkpoint, then updates, deletes and new keys, then retirement

/// The rows of persons_lost, case_cases and case_actions in the checkpoint at `state`.
fn checkpointed(state: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    file::read(
        state,
        |_| Ok(()),
        |_, entries| {
            rows.extend(entries.into_iter().filter_map(|e| e.row));
            Ok(())
        },
    )
    .expect("read the checkpoint");
    rows.sort();
    rows
}

/// Writes to the log of `data_dir` (no server running) what the API cannot: deletes of
/// checkpointed persons, cases and actions, a person deleted then created again, an update,
/// and a new person. Returns how many records were appended.
fn deletes_and_updates_after(data_dir: &Path, state: &Path) -> usize {
    let rows = checkpointed(state);
    let of = |t: Table| -> Vec<&Row> { rows.iter().filter(|r| r.table() == t).collect() };
    let (persons, cases, actions) = (
        of(Table::PersonsLost),
        of(Table::CaseCases),
        of(Table::CaseActions),
    );
    assert!(persons.len() > 20 && cases.len() > 20 && actions.len() > 20);
    let older = |r: &Row| -> Row {
        let Row::Person(p) = r else {
            panic!("a person")
        };
        Row::Person(Arc::new(Person {
            age: Some(p.age.unwrap_or(0) + 1),
            ..Person::clone(p)
        }))
    };
    let new_id = persons.iter().map(|r| r.key()).max().unwrap_or(0) + 1000;
    let mut transactions = vec![
        // deletes of checkpointed keys, one record holding several
        vec![
            (Some(persons[0].clone()), None),
            (Some(cases[0].clone()), None),
            (Some(actions[0].clone()), None),
        ],
        vec![(Some(persons[1].clone()), Some(older(persons[1])))],
        vec![(Some(persons[2].clone()), None)],
        vec![(None, Some(persons[2].clone()))],
        vec![(None, Some(person(new_id, 41)))],
    ];
    for &r in cases.iter().skip(1).step_by(5).take(5) {
        transactions.push(vec![(Some(r.clone()), None)]);
    }
    for &r in persons.iter().skip(3).step_by(7).take(5) {
        transactions.push(vec![(Some(r.clone()), Some(older(r)))]);
    }
    let options = LogOptions {
        segment_bytes: 16 * 1024,
        ..LogOptions::default()
    };
    let (log, _) = EmbeddedLog::open_opts(&data_dir.join(LOG_DIR), &options).expect("open");
    let writer = log.into_writer(None).expect("writer");
    append(&writer, &transactions);
    transactions.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_after_retirement_replays_to_the_views_of_the_full_history_and_the_server() {
    let root = tempfile::tempdir().expect("tempdir");
    let small = |dir: &Path| {
        let mut cfg = config(dir);
        cfg.source = crate::source::SourceConfig::Embedded {
            allow_log_cut: false,
            segment_bytes: 16 * 1024,
        };
        cfg
    };
    let a_dir = root.path().join("a");
    let a = start_ready_with(small(&a_dir)).await;
    history(&a).await;
    let manifest = checkpoint(&a).await;
    tail(&a, 1).await;
    // the server's state now, and the same data dir as a crash would leave it
    let c_dir = root.path().join("c");
    copy_dir(&a_dir, &c_dir, true);
    let (_, a_views) = a.engine().store().snapshot();
    a.stop().await;

    // the API's writes after the checkpoint replay the same from a snapshot as in full
    let log_dir = c_dir.join(LOG_DIR);
    let retire_copy = root.path().join("r");
    copy_dir(&c_dir, &retire_copy, true);
    retire_through(
        &retire_copy.join(LOG_DIR),
        manifest.position.log_seq(),
        None,
    )
    .expect("retire");
    let first = root.path().join("first.jsonl");
    assert!(export_to(&retire_copy, &first)
        .expect("export")
        .snapshot
        .is_some());
    let (first_views, _) = replay(&first);
    assert_eq!(first_views, a_views, "snapshot + API tail = the server");

    // then deletes, updates and new keys of the checkpoint's rows
    let state = CheckpointDir::open(&c_dir)
        .expect("dir")
        .path()
        .join(&manifest.state_file);
    let appended = deletes_and_updates_after(&c_dir, &state);

    let full = root.path().join("full.jsonl");
    let exported = export_to(&c_dir, &full).expect("full export");
    assert_eq!(exported.snapshot, None, "record 1 is still there");
    let retired = retire_through(&log_dir, manifest.position.log_seq(), None).expect("retire");
    assert!(retired.segments > 0, "{retired:?}");
    assert!(!log_dir.join(segment_name(1)).exists());
    let dump = root.path().join("dump.jsonl");
    let exported = export_to(&c_dir, &dump).expect("export");
    let snapshot = exported.snapshot.clone().expect("a snapshot part");
    assert_eq!(snapshot.checkpoint, manifest.number);
    assert_eq!(snapshot.log_seq, manifest.position.log_seq());
    assert!(snapshot.rows > 500, "{snapshot:?}");
    assert!(exported.log.records > appended as u64, "{exported:?}");

    let (full_views, full_rows) = replay(&full);
    let (views, rows) = replay(&dump);
    assert!(!views.is_empty());
    assert_eq!(
        rows, full_rows,
        "rows: snapshot + tail vs the whole history"
    );
    assert_eq!(
        views, full_views,
        "views: snapshot + tail vs the whole history"
    );
    assert_ne!(views, a_views, "the deletes and updates show");

    // a server on that data dir (the checkpoint, then the tail) shows the same
    let b = start_ready_with(small(&c_dir)).await;
    let (_, b_views) = b.engine().store().snapshot();
    assert_eq!(views, b_views, "views: the export's replay vs the server");
    b.stop().await;
}
