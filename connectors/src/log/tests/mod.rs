//! The embedded log's tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use lpm_engine::change::{Change, ChangeKind};
use lpm_engine::model::{Person, Responsible, Row};
use lpm_engine::{Feed, FeedItem};

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::frame::{frame, HEADER, MAGIC, TRAILER, VERSION};
use super::segments::retry_interrupted;
use super::writer::{Storage, WriterStart};
use super::*;
use crate::catalog::Catalog;
use crate::debezium::encode::{encode_change, EventSource};
use crate::dump::{DumpFeed, DumpOptions};
use crate::stats::DecodeStats;

fn contact(id: i64, version: i64) -> Row {
    Row::Responsible(Arc::new(Responsible {
        id,
        full_name: format!("Agente {id} Muñoz"),
        agency: "ECU 911".into(),
        phone: None,
        email: Some(format!("a{id}@example.ec")),
        active: id % 2 == 0,
        version,
    }))
}

fn person(id: i64) -> Row {
    Row::Person(Arc::new(Person {
        id,
        full_name: format!("Persona Ñ {id}"),
        age: Some(id % 90),
        gender: "female".into(),
        last_seen_at: 1_710_000_000_000 + id,
        reported_at: 1_710_054_900_000 + id * 100,
        last_seen_place: "Quito".into(),
        latitude: Some(lpm_engine::model::Decimal {
            unscaled: -180_653 - id as i128,
            scale: 6,
        }),
        longitude: None,
        description: None,
        reporter_name: None,
        reporter_phone: None,
        version: 1,
    }))
}

fn source(seq: u64) -> EventSource {
    EventSource::new(
        "lpm",
        "lost_persons_db",
        SEGMENT,
        seq,
        1_710_054_900_000 + seq as i64,
    )
}

/// A record of `changes` (before, after) stamped with `seq`, rows numbered by index.
fn events(seq: u64, changes: &[(Option<Row>, Option<Row>)]) -> Vec<EncodedEvent> {
    let mut out = vec![];
    for (i, (b, a)) in changes.iter().enumerate() {
        let src = source(seq).at_row(i as u32);
        out.extend(encode_change(b.as_ref(), a.as_ref(), &src).expect("encodes"));
    }
    out
}

fn all_records(log: &EmbeddedLog) -> Vec<(RecordAt, LogRecord)> {
    log.records()
        .expect("records")
        .collect::<Result<Vec<_>, _>>()
        .expect("valid")
}

#[test]
fn an_interrupted_step_is_redone_and_other_errors_are_not() {
    let mut calls = 0;
    let r = retry_interrupted(|| {
        calls += 1;
        if calls < 3 {
            Err(io::Error::from(io::ErrorKind::Interrupted))
        } else {
            Ok(calls)
        }
    });
    assert_eq!(r.expect("redone until it succeeds"), 3);
    let mut calls = 0;
    let r: io::Result<()> = retry_interrupted(|| {
        calls += 1;
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    });
    assert_eq!(
        r.expect_err("fails").kind(),
        io::ErrorKind::PermissionDenied
    );
    assert_eq!(calls, 1);
}

#[test]
fn append_then_reopen_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("open");
    assert_eq!(
        rec,
        Recovery {
            segments: 1,
            ..Recovery::default()
        }
    );
    assert_eq!(log.next_seq(), 1);
    let writer = log.into_writer(None).expect("writer");
    let mut appended = vec![];
    for id in 1..=3 {
        appended.push(
            writer
                .append_with(|seq| events(seq, &[(None, Some(contact(id, 1)))]))
                .expect("append"),
        );
    }
    assert_eq!(
        appended.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(appended[0].offset, 0);
    assert!(appended.windows(2).all(|w| w[0].offset < w[1].offset));
    drop(writer);

    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(rec.records, 3);
    assert_eq!(rec.events, 3);
    assert_eq!(rec.last_seq, Some(3));
    assert_eq!(rec.last_at, Some(appended[2].at()));
    assert_eq!(rec.cut, None);
    assert_eq!(log.next_seq(), 4);
    let mut seen = vec![];
    let n = log
        .replay(|offset, r| seen.push((offset, r.clone())))
        .expect("replay");
    assert_eq!(n, 3);
    for ((offset, r), (a, id)) in seen.iter().zip(appended.iter().zip(1..)) {
        assert_eq!((*offset, r.seq), (a.at(), a.seq));
        assert_eq!(r.events, events(a.seq, &[(None, Some(contact(id, 1)))]));
    }
    // the sequence goes on after a restart
    let writer = log.into_writer(None).expect("writer");
    let a = writer
        .append_with(|seq| events(seq, &[(Some(contact(1, 1)), None)]))
        .expect("append");
    assert_eq!(a.seq, 4);
    drop(writer);
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!((rec.records, rec.events), (4, 5), "delete + tombstone");
    assert_eq!(all_records(&log).len(), 4);
}

#[test]
fn concurrent_appends_are_each_durable_once_in_seq_order() {
    const THREADS: i64 = 8;
    const EACH: i64 = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let batches = Arc::new(AtomicUsize::new(0));
    let (h, b) = (hooked.clone(), batches.clone());
    let hook: DurableHook = Box::new(move |batch| {
        b.fetch_add(1, Ordering::Relaxed);
        h.lock().extend(batch.iter().map(|(seq, r)| (*seq, r.seq)));
    });
    let writer = log.into_writer(Some(hook)).expect("writer");
    let results: Vec<Vec<(i64, Appended)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let writer = writer.clone();
                s.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let id = t * 1000 + i;
                            let a = writer
                                .append_with(|seq| events(seq, &[(None, Some(contact(id, 1)))]))
                                .expect("append");
                            (id, a)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    drop(writer);
    let acked: BTreeMap<i64, Appended> = results.into_iter().flatten().collect();
    assert_eq!(acked.len(), (THREADS * EACH) as usize);
    // each thread saw its own appends in increasing order
    for t in 0..THREADS {
        let mine: Vec<_> = (0..EACH).map(|i| acked[&(t * 1000 + i)].seq).collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
    }

    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(rec.records, (THREADS * EACH) as u64);
    assert_eq!(rec.cut, None);
    let records = all_records(&log);
    // file order = seq order = offset order, and every ack points at its record
    assert!(records
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1.seq < w[1].1.seq));
    let mut ids = BTreeSet::new();
    for (offset, r) in &records {
        assert_eq!(r.events.len(), 1);
        let id: i64 = r.events[0].key["{\"id\":".len()..r.events[0].key.len() - 1]
            .parse()
            .expect("key");
        assert!(ids.insert(id), "id {id} appears once");
        assert_eq!(
            acked[&id],
            Appended {
                segment: offset.segment,
                offset: offset.offset,
                seq: r.seq
            }
        );
        // the events carry their record's seq as source.pos
        assert!(r.events[0]
            .value
            .as_deref()
            .expect("value")
            .contains(&format!("\"pos\":{},", r.seq)));
    }
    // the hook saw every record once, in log order
    let hooked = hooked.lock().clone();
    let in_log: Vec<(u64, u64)> = records.iter().map(|(_, r)| (r.seq, r.seq)).collect();
    assert_eq!(hooked, in_log);
    assert!(batches.load(Ordering::Relaxed) <= records.len());
}

/// Writes `n` one-event records and returns the segment's bytes and each record's offset.
fn log_of(n: u64) -> (tempfile::TempDir, Vec<u8>, Vec<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
    let writer = log.into_writer(None).expect("writer");
    let offsets = (1..=n as i64)
        .map(|id| {
            writer
                .append_with(|seq| events(seq, &[(None, Some(person(id)))]))
                .expect("append")
                .offset
        })
        .collect();
    drop(writer);
    let bytes = fs::read(dir.path().join(SEGMENT)).expect("read");
    (dir, bytes, offsets)
}

fn open_bytes(bytes: &[u8]) -> (tempfile::TempDir, EmbeddedLog, Recovery) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(SEGMENT), bytes).expect("write");
    let (log, rec) =
        EmbeddedLog::open_with(dir.path(), MidLogCorruption::CutAndDrop).expect("open");
    (dir, log, rec)
}

#[test]
fn corruption_before_the_end_is_refused_by_default_and_the_file_left_alone() {
    let (_src, bytes, offsets) = log_of(5);
    let mut mid = bytes.clone();
    mid[offsets[1] as usize + HEADER + 5] ^= 0x40;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(SEGMENT);
    fs::write(&path, &mid).expect("write");
    let err = EmbeddedLog::open(dir.path()).expect_err("a mid-log corruption is refused");
    match &err {
        LogError::CorruptBeforeEnd {
            offset,
            records_dropped,
            reason,
            ..
        } => {
            assert_eq!((*offset, *records_dropped), (offsets[1], 3));
            assert_eq!(reason.label(), "crc_mismatch");
        }
        other => panic!("expected CorruptBeforeEnd, got {other:?}"),
    }
    assert!(err.to_string().contains("--allow-log-cut"), "{err}");
    assert_eq!(fs::read(&path).expect("read"), mid, "nothing was cut");
    let cut_files = fs::read_dir(dir.path())
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains(".cut-"))
        })
        .count();
    assert_eq!(cut_files, 0, "nothing was saved aside either");
    // a torn tail is still cut without asking: it loses nothing acknowledged
    let mut torn = bytes.clone();
    torn.truncate(offsets[4] as usize + 7);
    fs::write(&path, &torn).expect("write");
    let (_log, rec) = EmbeddedLog::open(dir.path()).expect("a torn tail opens");
    assert_eq!(
        (rec.records, rec.cut.map(|c| c.records_dropped)),
        (4, Some(0))
    );
}

#[test]
fn torn_tails_are_cut_at_the_last_good_record() {
    let (_src, bytes, offsets) = log_of(4);
    let last = offsets[3] as usize;
    assert!(bytes.len() - last > 200, "a record is a few hundred bytes");
    // every cut inside the header, then a sample of cuts inside the payload and trailer
    let cuts: BTreeSet<usize> = (last + 1..last + HEADER)
        .chain((last + HEADER..bytes.len()).step_by(37))
        .chain([bytes.len() - 1])
        .collect();
    for at in cuts {
        let (dir, log, rec) = open_bytes(&bytes[..at]);
        let cut = rec.cut.as_ref().unwrap_or_else(|| panic!("cut at {at}"));
        assert_eq!(cut.offset, last as u64, "cut at {at}");
        assert_eq!(cut.bytes_cut, (at - last) as u64);
        assert_eq!(cut.records_dropped, 0);
        let expected = if at - last < HEADER {
            "partial_header"
        } else {
            "short_payload"
        };
        assert_eq!(cut.reason.label(), expected, "cut at {at}");
        assert_eq!(
            (rec.records, rec.last_seq, rec.end),
            (3, Some(3), last as u64)
        );
        assert_eq!(log.len(), last as u64);
        let on_disk = fs::metadata(dir.path().join(SEGMENT)).expect("meta").len();
        assert_eq!(on_disk, last as u64, "truncated on disk");
        let saved = cut.saved_to.as_ref().expect("saved");
        assert_eq!(fs::read(saved).expect("saved tail"), &bytes[last..at]);
    }
    // cutting exactly at a record boundary is a clean log
    let (_dir, _log, rec) = open_bytes(&bytes[..last]);
    assert_eq!((rec.records, rec.cut), (3, None));

    // after a cut, appends continue the sequence and a reopen sees old + new
    let (dir, log, _) = open_bytes(&bytes[..last + 50]);
    assert_eq!(log.next_seq(), 4);
    let writer = log.into_writer(None).expect("writer");
    let a = writer
        .append_with(|seq| events(seq, &[(None, Some(person(99)))]))
        .expect("append");
    assert_eq!(
        a,
        Appended {
            segment: 1,
            offset: last as u64,
            seq: 4
        }
    );
    drop(writer);
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!((rec.records, rec.cut), (4, None));
    let records = all_records(&log);
    assert_eq!(
        records
            .iter()
            .map(|(o, r)| (o.offset, r.seq))
            .collect::<Vec<_>>(),
        offsets[..3]
            .iter()
            .copied()
            .zip(1..)
            .chain([(last as u64, 4)])
            .collect::<Vec<_>>()
    );
    assert_eq!(records[3].1.events, events(4, &[(None, Some(person(99)))]));
}

#[test]
fn a_flipped_payload_byte_is_a_crc_mismatch() {
    let (_src, bytes, offsets) = log_of(5);
    // in the last record: a plain cut
    let mut torn = bytes.clone();
    torn[offsets[4] as usize + HEADER + 20] ^= 0x01;
    let (_dir, _log, rec) = open_bytes(&torn);
    let cut = rec.cut.expect("cut");
    assert_eq!(cut.reason.label(), "crc_mismatch");
    assert_eq!((cut.offset, cut.records_dropped), (offsets[4], 0));
    assert_eq!(rec.records, 4);

    // in the middle: cut there too, and count the valid records dropped with it
    let mut mid = bytes.clone();
    mid[offsets[1] as usize + HEADER + 5] ^= 0x40;
    let (dir, log, rec) = open_bytes(&mid);
    let cut = rec.cut.expect("cut");
    assert!(matches!(cut.reason, CutReason::CrcMismatch { .. }));
    assert_eq!(cut.offset, offsets[1]);
    assert_eq!(cut.bytes_cut, bytes.len() as u64 - offsets[1]);
    assert_eq!(cut.records_dropped, 3);
    assert_eq!(rec.records, 1);
    assert_eq!(
        log.next_seq(),
        6,
        "the seqs of dropped, acknowledged records are not reused"
    );
    assert_eq!(all_records(&log).len(), 1);
    let saved = fs::read(cut.saved_to.expect("saved")).expect("saved tail");
    assert_eq!(saved, &mid[offsets[1] as usize..]);
    assert_eq!(
        fs::metadata(dir.path().join(SEGMENT)).expect("meta").len(),
        offsets[1]
    );
    // nor after a restart, once the dropped records are gone from the segment (found by
    // fuzz/log_recovery: a reopen handed out seq 2 again after a cut that dropped 2-5)
    drop(log);
    let (again, second) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert!(second.cut.is_none());
    assert_eq!(again.next_seq(), 6, "a restart reuses no dropped seq");
}

#[test]
fn bad_framing_and_bad_json_are_cut() {
    let (_src, bytes, offsets) = log_of(2);
    let second = offsets[1] as usize;
    let check = |bytes: &[u8], label: &str| {
        let (_dir, _log, rec) = open_bytes(bytes);
        let cut = rec.cut.expect("cut");
        assert_eq!((cut.reason.label(), cut.offset), (label, offsets[1]));
        assert_eq!(rec.records, 1);
    };
    let mut b = bytes.clone();
    b[second] = 0;
    check(&b, "bad_magic");
    // a zero-filled tail, as after a crash that grew the file but lost the data
    let mut b = bytes[..second].to_vec();
    b.extend(std::iter::repeat_n(0u8, 300));
    check(&b, "bad_magic");
    let mut b = bytes.clone();
    b[second + 2..second + 6].copy_from_slice(&u32::MAX.to_le_bytes());
    check(&b, "too_long");
    let mut b = bytes.clone();
    let end = b.len() - 1;
    b[end] = b' ';
    check(&b, "bad_trailer");
    // a valid frame around a payload that is not a record
    let mut b = bytes[..second].to_vec();
    let payload = b"{\"seq\":3,\"events\":7}";
    b.extend([MAGIC, VERSION]);
    b.extend((payload.len() as u32).to_le_bytes());
    b.extend(crc32fast::hash(payload).to_le_bytes());
    b.extend(payload);
    b.push(TRAILER);
    check(&b, "bad_json");
    // a valid record whose seq goes backwards
    let mut b = bytes[..second].to_vec();
    b.extend(
        frame(&LogRecord {
            seq: 1,
            events: vec![],
            actor: None,
        })
        .expect("frame"),
    );
    check(&b, "seq_not_increasing");
}

/// Storage that fails its `n`-th fsync.
struct FailingSync {
    syncs: usize,
    fail_at: usize,
}

impl Storage for FailingSync {
    fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn rotate(&mut self, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.syncs += 1;
        if self.syncs == self.fail_at {
            Err(io::Error::other("EIO"))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_failed_fsync_poisons_the_writer() {
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let h = hooked.clone();
    let hook: DurableHook =
        Box::new(move |batch| h.lock().extend(batch.into_iter().map(|(s, _)| s)));
    let writer = LogWriter::spawn(
        Box::new(FailingSync {
            syncs: 0,
            fail_at: 2,
        }),
        PathBuf::from("test-log"),
        WriterStart {
            segment: 1,
            end: 0,
            next_seq: 1,
            last_seq: None,
            segment_bytes: u64::MAX,
        },
        Some(hook),
    )
    .expect("writer");
    let first = writer.append(vec![]).expect("first append is durable");
    assert_eq!(first.seq, 1);
    let second = writer.append(vec![]);
    assert!(
        matches!(&second, Err(LogError::Io { source, .. }) if source.to_string() == "EIO"),
        "{second:?}"
    );
    for _ in 0..3 {
        assert!(matches!(writer.append(vec![]), Err(LogError::Io { .. })));
    }
    assert_eq!(*hooked.lock(), vec![1], "no hook after a failure");
}

#[test]
fn a_failed_build_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
    let writer = log.into_writer(None).expect("writer");
    let err = writer.try_append_with(|_| Err::<Vec<EncodedEvent>, _>(LogError::Closed));
    assert!(matches!(err, Err(LogError::Closed)));
    let a = writer.append(vec![]).expect("append");
    assert_eq!(
        a,
        Appended {
            segment: 1,
            offset: 0,
            seq: 1
        }
    );
}

#[test]
fn a_gap_in_segment_numbers_is_refused_and_a_later_first_segment_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("lpm-log.000001"), b"").expect("write");
    fs::write(dir.path().join("lpm-log.000003"), b"").expect("write");
    let err = EmbeddedLog::open(dir.path()).expect_err("a gap is refused");
    assert!(
        matches!(&err, LogError::SegmentGap { missing, .. } if missing == "lpm-log.000002"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("lpm-log.000002 is missing"),
        "{err}"
    );
    // a log whose first segments were retired starts at a later number
    fs::remove_file(dir.path().join("lpm-log.000001")).expect("remove");
    fs::write(dir.path().join("lpm-log.000002"), b"").expect("write");
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("no gap");
    assert_eq!(rec.segments, 2);
    assert_eq!(log.path(), dir.path().join("lpm-log.000003"));
    // copies and other names are not segments
    for name in ["lpm-log.000004.cut-0", "lpm-log.4", "lpm-log.00004"] {
        fs::write(dir.path().join(name), b"x").expect("write");
    }
    assert_eq!(EmbeddedLog::open(dir.path()).expect("open").1.segments, 2);
}

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

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn writer_is_send_sync() {
    assert_send_sync::<LogWriter>();
}
