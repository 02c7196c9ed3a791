//! `export_kcat`: the kcat dump of a log.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::sync::Arc;

use lpm_engine::change::{Change, ChangeKind};
use lpm_engine::model::Row;
use lpm_engine::{Feed, FeedItem};

use super::super::frame::HEADER;
use super::super::*;
use super::recovery::log_of;
use super::{contact, events, person};
use crate::catalog::Catalog;
use crate::dump::{DumpFeed, DumpOptions};
use crate::stats::DecodeStats;

#[test]
fn export_decodes_to_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
    let writer = log.into_writer(None).expect("writer");
    let transactions: Vec<Vec<(Option<Row>, Option<Row>)>> = vec![
        vec![(None, Some(contact(1, 1))), (None, Some(contact(2, 1)))],
        vec![(None, Some(person(10))), (None, Some(person(11)))],
        vec![(Some(contact(1, 1)), Some(contact(1, 2)))],
        vec![(Some(person(11)), None)],
        vec![(None, Some(person(12)))],
    ];
    for t in &transactions {
        writer.append_with(|seq| events(seq, t)).expect("append");
    }
    drop(writer);

    let dump = dir.path().join("export.jsonl");
    let mut out = io::BufWriter::new(File::create(&dump).expect("create"));
    let summary = export_kcat(dir.path(), &mut out).expect("export");
    drop(out);
    assert_eq!(
        (summary.records, summary.events, summary.tombstones),
        (5, 8, 1)
    );
    assert_eq!(summary.stopped, None);
    let text = fs::read_to_string(&dump).expect("read");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(first["topic"], "lpm.lost_persons_db.responsible_contacts");
    assert_eq!(
        (first["partition"].clone(), first["offset"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(first["key"], "{\"id\":1}");
    // kcat's field order: the dump reader's fast path needs `payload` last
    let line = text.lines().next().expect("a line");
    let at: Vec<usize> = [
        "topic",
        "partition",
        "offset",
        "tstype",
        "ts",
        "broker",
        "key",
        "payload",
    ]
    .iter()
    .map(|k| line.find(&format!("\"{k}\":")).expect("field"))
    .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
    // per-topic offsets from 0
    let offsets: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["topic"].as_str().expect("topic").to_string(),
                v["offset"].as_u64().expect("offset"),
            )
        })
        .collect();
    let persons: Vec<u64> = offsets
        .iter()
        .filter(|(t, _)| t.ends_with("persons_lost"))
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(persons, vec![0, 1, 2, 3, 4], "c, c, d, tombstone, c");

    // the dump reader decodes it into the same final rows, with increasing positions
    let feed = DumpFeed::open(
        &DumpOptions::new(&dump),
        Arc::new(Catalog::lpm()),
        Arc::new(DecodeStats::default()),
    )
    .expect("open dump");
    let mut changes = vec![];
    while let FeedItem::Batch { changes: c, .. } = feed.next(0) {
        changes.extend(c);
    }
    assert_eq!(changes.len(), 8);
    let mut state: BTreeMap<(lpm_engine::model::Table, i64), Row> = BTreeMap::new();
    let mut last = None;
    for change in changes {
        let Change::Row(c) = change else {
            panic!("row changes only")
        };
        let coords = c.position.coords;
        match c.kind {
            ChangeKind::Upsert(row) => {
                let coords = coords.expect("coords");
                assert_eq!(coords.file, 1);
                assert!(last < Some(coords), "positions increase");
                last = Some(coords);
                state.insert((c.table, c.key), row);
            }
            ChangeKind::Delete => {
                state.remove(&(c.table, c.key));
            }
            ChangeKind::Tombstone => {}
        }
    }
    let expected: BTreeMap<_, _> = [contact(1, 2), contact(2, 1), person(10), person(12)]
        .into_iter()
        .map(|r| ((r.table(), r.key()), r))
        .collect();
    assert_eq!(state, expected);
}

#[test]
fn export_stops_at_a_bad_record_without_truncating() {
    let (src, bytes, offsets) = log_of(3);
    let torn = &bytes[..offsets[2] as usize + 15];
    fs::write(src.path().join(SEGMENT), torn).expect("write");
    let mut out = Vec::new();
    let summary = export_kcat(src.path(), &mut out).expect("export");
    assert_eq!(summary.records, 2);
    let stopped = summary.stopped.expect("stopped");
    assert_eq!((stopped.offset, stopped.bytes_cut), (offsets[2], 15));
    assert_eq!(fs::read(src.path().join(SEGMENT)).expect("read"), torn);
    assert_eq!(String::from_utf8(out).expect("utf8").lines().count(), 2);
}

#[test]
fn records_stay_human_readable() {
    let (_src, bytes, offsets) = log_of(1);
    let payload = &bytes[HEADER..bytes.len() - 1];
    let text = std::str::from_utf8(payload).expect("utf8 JSON");
    assert!(
        text.starts_with("{\"seq\":1,\"events\":[{\"topic\":\"lpm.lost_persons_db.persons_lost\"")
    );
    assert_eq!(offsets, vec![0]);
    assert_eq!(*bytes.last().expect("a byte"), b'\n');
}
