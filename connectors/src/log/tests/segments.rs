//! Segments: rotation, recovery across segments, `verify_after`, `records_after`, retirement,
//! export across segments.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::super::*;
use super::{all_records, events, person};

/// A segment size a few records fill (a record of one person is a few hundred bytes).
const SMALL: u64 = 1024;

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes,
        ..LogOptions::default()
    }
}

/// Appends one person record per id (one record per batch) and returns where each landed.
fn append(dir: &Path, segment_bytes: u64, ids: std::ops::Range<i64>) -> Vec<Appended> {
    let (log, _) = EmbeddedLog::open_opts(dir, &options(segment_bytes)).expect("open");
    let writer = log.into_writer(None).expect("writer");
    ids.map(|id| {
        writer
            .append_with(|seq| events(seq, &[(None, Some(person(id)))]))
            .expect("append")
    })
    .collect()
}

fn segment(dir: &Path, number: u64) -> PathBuf {
    dir.join(segment_name(number))
}

/// The segment files of `dir` with their bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, fs::read(e.path()).expect("read"))
        })
        .collect()
}

fn seqs(log: &EmbeddedLog) -> Vec<u64> {
    all_records(log).iter().map(|(_, r)| r.seq).collect()
}

fn seqs_after(log: &EmbeddedLog, after: u64) -> Vec<u64> {
    log.records_after(after)
        .expect("records")
        .map(|r| r.expect("valid").1.seq)
        .collect()
}

/// The first seq of each segment, from the appends.
fn first_seqs(appended: &[Appended]) -> BTreeMap<u64, u64> {
    let mut first = BTreeMap::new();
    for a in appended {
        first.entry(a.segment).or_insert(a.seq);
    }
    first
}

/// Flips a payload byte of the record at `offset` of `path` (a CRC mismatch there).
fn garble(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset as usize + 20] ^= 0x40;
    fs::write(path, bytes).expect("write");
}

#[test]
fn rotation_creates_segments_and_every_record_reads_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = append(dir.path(), SMALL, 1..31);
    let last_segment = appended.last().expect("appended").segment;
    assert!(last_segment >= 5, "{last_segment} segments for 30 records");
    // records go to increasing segments, each segment starting at offset 0
    assert!(appended.windows(2).all(|w| w[0].at() < w[1].at()));
    for (number, first) in first_seqs(&appended) {
        let a = appended.iter().find(|a| a.seq == first).expect("first");
        assert_eq!((a.segment, a.offset), (number, 0));
    }
    // every sealed segment reached the size, and holds whole records only
    for number in 1..last_segment {
        assert!(
            fs::metadata(segment(dir.path(), number))
                .expect("meta")
                .len()
                >= SMALL
        );
    }
    let (log, rec) = EmbeddedLog::open_opts(dir.path(), &options(SMALL)).expect("reopen");
    assert_eq!(rec.cut, None);
    assert_eq!(rec.records, 30);
    let on_disk = files(dir.path())
        .keys()
        .filter(|n| n.starts_with("lpm-log."))
        .count();
    assert_eq!(rec.segments, on_disk as u64);
    assert!(rec.segments == last_segment || rec.segments == last_segment + 1);
    let records = all_records(&log);
    assert_eq!(
        records
            .iter()
            .map(|(at, r)| (*at, r.seq))
            .collect::<Vec<_>>(),
        appended.iter().map(|a| (a.at(), a.seq)).collect::<Vec<_>>()
    );
    for ((_, r), id) in records.iter().zip(1..) {
        assert_eq!(r.events, events(r.seq, &[(None, Some(person(id)))]));
    }
    let summary = log.segments();
    assert_eq!(
        (summary.segments, summary.first_seq, summary.last_seq),
        (rec.segments, Some(1), Some(30))
    );
    let total: u64 = (1..=rec.segments)
        .map(|n| fs::metadata(segment(dir.path(), n)).expect("meta").len())
        .sum();
    assert_eq!(summary.bytes, total);
}

#[test]
fn seqs_continue_across_segments_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = append(dir.path(), SMALL, 1..8);
    let second = append(dir.path(), SMALL, 8..15);
    // a larger size after a restart keeps the segments and goes on in the active one
    let third = append(dir.path(), 1 << 20, 15..18);
    let all: Vec<Appended> = first.iter().chain(&second).chain(&third).copied().collect();
    assert_eq!(
        all.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..18).collect::<Vec<_>>()
    );
    assert!(all.windows(2).all(|w| w[0].at() < w[1].at()));
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(seqs(&log), (1..18).collect::<Vec<_>>());
    assert_eq!((rec.last_seq, log.next_seq()), (Some(17), 18));
    // the writer's summary agrees with the opened log's
    let opened = log.segments();
    let writer = log.into_writer(None).expect("writer");
    assert_eq!(writer.segments().expect("summary"), opened);
    assert_eq!(writer.path(), segment(dir.path(), opened.segments));
}

#[test]
fn a_torn_tail_in_the_last_segment_is_cut_and_the_others_are_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = append(dir.path(), SMALL, 1..12);
    let last = appended.last().expect("appended");
    // the writer may have rotated after the last batch: make sure it is the last segment
    let _ = fs::remove_file(segment(dir.path(), last.segment + 1));
    let before = files(dir.path());
    let path = segment(dir.path(), last.segment);
    let len = fs::metadata(&path).expect("meta").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(last.offset + 30)
        .expect("tear");
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("a torn tail opens");
    let cut = rec.cut.expect("cut");
    assert_eq!(
        (cut.segment.clone(), cut.offset, cut.bytes_cut),
        (path.clone(), last.offset, 30)
    );
    assert_eq!((cut.records_dropped, cut.moved_aside.len()), (0, 0));
    assert_eq!(log.next_seq(), last.seq);
    assert_eq!(seqs(&log), (1..last.seq).collect::<Vec<_>>());
    let after = files(dir.path());
    for (name, bytes) in &before {
        if *name != path.file_name().expect("name").to_string_lossy() {
            assert_eq!(after.get(name), Some(bytes), "{name} untouched");
        }
    }
    assert!(len > last.offset + 30);
}

/// Four or more segments of a few records each; returns the appends.
fn four_segments(dir: &Path) -> Vec<Appended> {
    let appended = append(dir, SMALL, 1..12);
    assert!(appended.last().expect("appended").segment >= 4);
    appended
}

#[test]
fn a_bad_record_in_a_middle_segment_is_refused_or_cut_with_later_segments_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let in_two: Vec<&Appended> = appended.iter().filter(|a| a.segment == 2).collect();
    assert!(in_two.len() >= 2, "{in_two:?}");
    let bad = in_two[1];
    garble(&segment(dir.path(), 2), bad.offset);
    let dropped = appended.iter().filter(|a| a.seq > bad.seq).count() as u64;
    let before = files(dir.path());

    let err = EmbeddedLog::open(dir.path()).expect_err("refused");
    match &err {
        LogError::CorruptBeforeEnd {
            path,
            offset,
            records_dropped,
            ..
        } => assert_eq!(
            (path.clone(), *offset, *records_dropped),
            (segment(dir.path(), 2), bad.offset, dropped)
        ),
        other => panic!("expected CorruptBeforeEnd, got {other:?}"),
    }
    assert_eq!(files(dir.path()), before, "a refusal touches nothing");

    let opts = LogOptions {
        on_mid_log: MidLogCorruption::CutAndDrop,
        ..options(SMALL)
    };
    let (log, rec) = EmbeddedLog::open_opts(dir.path(), &opts).expect("cut");
    let cut = rec.cut.expect("cut");
    assert_eq!(
        (cut.segment.clone(), cut.offset, cut.records_dropped),
        (segment(dir.path(), 2), bad.offset, dropped)
    );
    assert_eq!(rec.segments, 2);
    let last_number = before
        .keys()
        .filter(|n| n.starts_with("lpm-log.") && !n.contains(".cut-"))
        .count() as u64;
    assert_eq!(cut.moved_aside.len() as u64, last_number - 2);
    for (number, aside) in (3..=last_number).zip(&cut.moved_aside) {
        assert!(!segment(dir.path(), number).exists());
        let name = format!("{}.cut-0", segment_name(number));
        assert_eq!(aside, &dir.path().join(&name));
        assert_eq!(
            Some(&fs::read(aside).expect("moved")),
            before.get(&segment_name(number))
        );
    }
    let saved = fs::read(cut.saved_to.expect("saved")).expect("saved tail");
    assert_eq!(saved, before[&segment_name(2)][bad.offset as usize..]);
    let moved_bytes: u64 = cut
        .moved_aside
        .iter()
        .map(|p| fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(cut.bytes_cut, saved.len() as u64 + moved_bytes);
    // the dropped, acknowledged seqs are never handed out again, not even after a restart
    let last_seq = appended.last().expect("appended").seq;
    assert_eq!(log.next_seq(), last_seq + 1);
    assert_eq!(seqs(&log), (1..bad.seq).collect::<Vec<_>>());
    drop(log);
    let next = append(dir.path(), SMALL, 100..101);
    assert_eq!(
        (next[0].seq, next[0].segment, next[0].offset),
        (last_seq + 1, 2, bad.offset)
    );
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(rec.cut, None);
    let mut expected: Vec<u64> = (1..bad.seq).collect();
    expected.push(last_seq + 1);
    assert_eq!(seqs(&log), expected);
}

#[test]
fn a_torn_tail_in_an_earlier_segment_is_mid_log_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let path = segment(dir.path(), 1);
    let len = fs::metadata(&path).expect("meta").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len - 5)
        .expect("tear");
    let later = appended.iter().filter(|a| a.segment > 1).count() as u64;
    match EmbeddedLog::open(dir.path()) {
        Err(LogError::CorruptBeforeEnd {
            records_dropped,
            reason,
            ..
        }) => {
            assert_eq!(records_dropped, later);
            assert_eq!(reason.label(), "short_payload");
        }
        other => panic!("expected CorruptBeforeEnd, got {other:?}"),
    }
}

#[test]
fn an_empty_last_segment_after_a_crash_at_rotation_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = append(dir.path(), 1 << 20, 1..6);
    assert!(appended.iter().all(|a| a.segment == 1));
    // the crash came after the next segment was created, before anything was written to it
    fs::write(segment(dir.path(), 2), b"").expect("create");
    for verify_after in [0, 3, 1000] {
        let opts = LogOptions {
            verify_after,
            ..options(1 << 20)
        };
        let (log, rec) = EmbeddedLog::open_opts(dir.path(), &opts).expect("opens");
        assert_eq!(rec.cut, None);
        assert_eq!((rec.segments, rec.segments_skipped, rec.end), (2, 0, 0));
        assert_eq!(
            (rec.last_seq, log.next_seq()),
            (Some(5), 6),
            "verify_after {verify_after}"
        );
    }
    let next = append(dir.path(), 1 << 20, 6..7);
    assert_eq!((next[0].segment, next[0].offset, next[0].seq), (2, 0, 6));
    let (log, _) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(seqs(&log), (1..7).collect::<Vec<_>>());
}

#[test]
fn verify_after_skips_scanning_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let first = first_seqs(&appended);
    // garble the last record of segment 1: a mid-log corruption a full scan finds
    let last_of_one = appended.iter().rfind(|a| a.segment == 1).expect("one");
    assert!(
        last_of_one.offset > 0,
        "not the first record, which open reads"
    );
    garble(&segment(dir.path(), 1), last_of_one.offset);
    let before = files(dir.path());
    let checkpoint = first[&3] - 1;
    let opts = |verify_after| LogOptions {
        verify_after,
        ..options(SMALL)
    };
    let (log, rec) = EmbeddedLog::open_opts(dir.path(), &opts(checkpoint)).expect("skips");
    assert_eq!((rec.segments_skipped, rec.cut), (2, None));
    assert_eq!(files(dir.path()), before, "nothing cut");
    let last = appended.last().expect("appended").seq;
    assert_eq!(log.next_seq(), last + 1);
    assert_eq!(
        seqs_after(&log, checkpoint),
        (checkpoint + 1..=last).collect::<Vec<_>>()
    );
    assert_eq!(
        log.segments().first_seq,
        Some(1),
        "the first seq is read, not scanned"
    );
    // reading from the start reaches the bad record: it was never verified
    let err = log.records().expect("records").find_map(Result::err);
    assert!(matches!(err, Some(LogError::Corrupt { .. })), "{err:?}");
    drop(log);
    // one seq lower and segment 2 must be scanned, but segment 1 still need not be
    let (_, rec) = EmbeddedLog::open_opts(dir.path(), &opts(checkpoint - 1)).expect("skips one");
    assert_eq!(rec.segments_skipped, 1);
    // verifying everything finds it
    assert!(matches!(
        EmbeddedLog::open_opts(dir.path(), &opts(0)),
        Err(LogError::CorruptBeforeEnd { .. })
    ));
    assert!(matches!(
        EmbeddedLog::open_opts(dir.path(), &opts(first[&2] - 2)),
        Err(LogError::CorruptBeforeEnd { .. })
    ));
}

#[test]
fn records_after_does_not_open_earlier_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let first = first_seqs(&appended);
    let last = appended.last().expect("appended").seq;
    let (log, _) = EmbeddedLog::open(dir.path()).expect("open");
    for after in [
        0,
        1,
        first[&2] - 1,
        first[&2],
        first[&3] + 1,
        last - 1,
        last,
        last + 5,
    ] {
        assert_eq!(
            seqs_after(&log, after),
            (after + 1..=last).collect::<Vec<_>>(),
            "after {after}"
        );
    }
    assert_eq!(log.records().expect("records").count() as u64, last);
    // segments 1 and 2 go away (or rot) once nobody needs them
    fs::remove_file(segment(dir.path(), 1)).expect("remove");
    fs::write(segment(dir.path(), 2), vec![0u8; 300]).expect("garble");
    for after in [first[&3] - 1, first[&3], last] {
        assert_eq!(
            seqs_after(&log, after),
            (after + 1..=last).collect::<Vec<_>>(),
            "after {after}"
        );
    }
    // reading from before them fails: the test can see a segment being opened
    assert!(log
        .records_after(first[&3] - 2)
        .expect("records")
        .any(|r| r.is_err()));
    assert!(log.records().expect("records").any(|r| r.is_err()));
}

#[test]
fn retire_through_removes_only_covered_segments_that_are_not_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let first = first_seqs(&appended);
    let last = appended.last().expect("appended").seq;
    let sizes: BTreeMap<u64, u64> = (1..=2)
        .map(|n| (n, fs::metadata(segment(dir.path(), n)).expect("meta").len()))
        .collect();
    // a seq inside segment 3 covers segments 1 and 2 only
    let summary = retire_through(dir.path(), first[&3], None).expect("retire");
    assert_eq!(summary.segments, 2);
    assert_eq!(summary.records, first[&3] - 1);
    assert_eq!(summary.bytes, sizes.values().sum::<u64>());
    assert_eq!(summary.next_seq_floor, Some(first[&3]));
    assert!(!segment(dir.path(), 1).exists() && !segment(dir.path(), 2).exists());
    assert!(segment(dir.path(), 3).exists());
    // nothing more is covered
    assert_eq!(
        retire_through(dir.path(), first[&3], None)
            .expect("again")
            .segments,
        0
    );
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("opens after retirement");
    assert_eq!(rec.cut, None);
    assert_eq!(seqs(&log), (first[&3]..=last).collect::<Vec<_>>());
    assert_eq!(log.segments().first_seq, Some(first[&3]));
    drop(log);
    let next = append(dir.path(), SMALL, 50..51);
    assert_eq!(next[0].seq, last + 1);
    // a seq past everything still keeps the last segment, and the floor keeps the seqs
    let summary = retire_through(dir.path(), u64::MAX, None).expect("retire all");
    assert!(summary.segments >= 1);
    let (log, rec) = EmbeddedLog::open(dir.path()).expect("opens");
    assert_eq!(rec.segments, 1);
    assert!(log.next_seq() >= last + 2, "no seq handed out twice");
}

#[test]
fn retire_into_an_archive_moves_the_segments_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir.path());
    let first = first_seqs(&appended);
    let before = files(dir.path());
    let archive = dir.path().join("archive").join("log");
    let summary = retire_through(dir.path(), first[&3] - 1, Some(&archive)).expect("retire");
    assert_eq!(summary.segments, 2);
    assert_eq!(
        summary.archived,
        vec![archive.join(segment_name(1)), archive.join(segment_name(2))]
    );
    for n in 1..=2 {
        assert_eq!(
            fs::read(archive.join(segment_name(n))).expect("archived"),
            before[&segment_name(n)]
        );
    }
    // one seq less, and segment 2 holds a record above it: kept
    let dir2 = tempfile::tempdir().expect("tempdir");
    let appended = four_segments(dir2.path());
    let first = first_seqs(&appended);
    assert_eq!(
        retire_through(dir2.path(), first[&3] - 2, None)
            .expect("retire")
            .segments,
        1
    );
}

#[test]
fn a_running_writer_retires_all_but_its_segment_and_keeps_seqs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = EmbeddedLog::open_opts(dir.path(), &options(SMALL)).expect("open");
    let writer = log.into_writer(None).expect("writer");
    let mut last = None;
    for id in 0..9 {
        last = Some(
            writer
                .append_with(|seq| events(seq, &[(None, Some(person(id)))]))
                .expect("append"),
        );
        let summary = writer.retire_through(u64::MAX, None).expect("retire");
        let remaining = writer.segments().expect("summary");
        assert!(remaining.segments >= 1);
        assert!(summary.segments <= 1 + u64::from(id == 0));
        assert!(writer.path().exists(), "the active segment stays");
    }
    let last = last.expect("appended");
    drop(writer);
    let (log, _) = EmbeddedLog::open(dir.path()).expect("reopen");
    assert_eq!(log.next_seq(), last.seq + 1);
}

/// Writes the same transactions to a log with tiny segments and to one without rotation.
fn twin_logs(n: i64) -> (tempfile::TempDir, tempfile::TempDir) {
    let (small, large) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = append(small.path(), SMALL, 1..n + 1);
    let b = append(large.path(), u64::MAX, 1..n + 1);
    assert!(a.last().expect("a").segment > 3);
    assert_eq!(b.last().expect("b").segment, 1);
    (small, large)
}

fn export(dir: &Path, after: u64) -> (ExportSummary, String) {
    let mut out = Vec::new();
    let summary = export_kcat_after(dir, after, &mut out).expect("export");
    (summary, String::from_utf8(out).expect("utf8"))
}

#[test]
fn export_across_segments_equals_export_without_rotation() {
    let (small, large) = twin_logs(12);
    let (a, text_a) = export(small.path(), 0);
    let (b, text_b) = export(large.path(), 0);
    assert_eq!(text_a, text_b);
    assert_eq!(
        (a.records, a.events, a.stopped.clone()),
        (b.records, b.events, None)
    );
    assert!(a.segments > 3);
    // the tail after a seq: the same events, offsets from 0 again
    let (tail, text) = export(small.path(), 7);
    assert_eq!(tail.records, 5);
    assert_eq!(text, export(large.path(), 7).1);
    let payloads = |t: &str| -> Vec<serde_json::Value> {
        t.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["payload"].clone())
            .collect()
    };
    assert_eq!(payloads(&text), payloads(&text_a)[7..].to_vec());
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    assert_eq!(first["offset"], 0);
    // read-only and stopping at a bad record of an earlier segment, reporting what follows
    let garbled = segment(small.path(), 2);
    let mut bytes = fs::read(&garbled).expect("read");
    bytes[30] ^= 0x40;
    fs::write(&garbled, &bytes).expect("write");
    let (stopped, _) = export(small.path(), 0);
    let report = stopped.stopped.expect("stopped");
    assert_eq!((report.segment, report.offset), (garbled.clone(), 0));
    assert!(report.records_dropped > 0);
    assert_eq!(
        fs::read(&garbled).expect("read"),
        bytes,
        "nothing truncated"
    );
}

/// `(topic, offset)` of every line of a dump.
fn topic_offsets(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["topic"].as_str().expect("topic").to_string(),
                v["offset"].as_u64().expect("offset"),
            )
        })
        .collect()
}

#[test]
fn an_export_into_a_writer_numbers_offsets_on_from_its_earlier_lines() {
    let (small, _large) = twin_logs(12);
    let person_topic = "lpm.lost_persons_db.persons_lost";
    let mut out = Vec::new();
    let mut writer = KcatWriter::new(&mut out);
    // three lines written before the tail (a checkpoint's rows): two persons, one contact
    let earlier = |topic: &str, id: i64| EncodedEvent {
        topic: topic.into(),
        key: format!("{{\"id\":{id}}}"),
        value: Some("{}".into()),
        ts_ms: 1,
    };
    for e in [
        earlier(person_topic, 100),
        earlier("lpm.lost_persons_db.responsible_contacts", 1),
        earlier(person_topic, 101),
    ] {
        writer.event(&e).expect("write");
    }
    assert_eq!(writer.next_offset(person_topic), 2);
    let summary = export_kcat_into(small.path(), 7, &mut writer).expect("export");
    assert_eq!(summary.records, 5);
    assert_eq!(writer.next_offset(person_topic), 7);
    drop(writer);
    let text = String::from_utf8(out).expect("utf8");
    let offsets = topic_offsets(&text);
    let persons: Vec<u64> = offsets
        .iter()
        .filter(|(t, _)| t == person_topic)
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(persons, (0..7).collect::<Vec<_>>(), "{text}");
    // the tail's lines are export_kcat_after's, but for their offsets
    let tail: Vec<&str> = text.lines().skip(3).collect();
    let (_, alone) = export(small.path(), 7);
    let strip = |l: &str| {
        let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
        v["offset"] = 0.into();
        v
    };
    assert_eq!(
        tail.iter().map(|l| strip(l)).collect::<Vec<_>>(),
        alone.lines().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn first_retained_seq_follows_retirement_and_the_floor() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(first_retained_seq(&dir.path().join("missing")).is_err());
    let appended = append(dir.path(), SMALL, 1..13);
    assert_eq!(first_retained_seq(dir.path()).expect("first"), 1);
    let first = first_seqs(&appended);
    let (&second_segment, &second_first) = first.iter().nth(1).expect("two segments");
    retire_through(dir.path(), second_first - 1, None).expect("retire");
    assert!(!segment(dir.path(), 1).exists());
    assert!(segment(dir.path(), second_segment).exists());
    assert_eq!(first_retained_seq(dir.path()).expect("first"), second_first);
    // only an empty segment left: the floor says where the next record goes
    let empty = tempfile::tempdir().expect("tempdir");
    fs::write(segment(empty.path(), 5), b"").expect("write");
    assert_eq!(first_retained_seq(empty.path()).expect("first"), 1);
    fs::write(
        empty.path().join(super::super::segments::SEQ_FLOOR),
        b"42\n",
    )
    .expect("write");
    assert_eq!(first_retained_seq(empty.path()).expect("first"), 42);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any segment size, any number of appends in any number of runs: a reopen reads the same
    /// records in the same order with contiguous seqs, and the export does not depend on the
    /// segment size.
    #[test]
    fn any_segment_size_reads_back_the_same_records(
        segment_bytes in 0u64..3000,
        runs in proptest::collection::vec(0i64..6, 1..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = tempfile::tempdir().expect("tempdir");
        let mut next_id = 0;
        let mut appended = Vec::new();
        for n in runs {
            appended.extend(append(dir.path(), segment_bytes, next_id..next_id + n));
            append(one.path(), u64::MAX, next_id..next_id + n);
            next_id += n;
        }
        let (log, rec) = EmbeddedLog::open_opts(dir.path(), &options(segment_bytes)).expect("reopen");
        prop_assert_eq!(rec.cut, None);
        let records = all_records(&log);
        prop_assert_eq!(
            records.iter().map(|(at, r)| (*at, r.seq)).collect::<Vec<_>>(),
            appended.iter().map(|a| (a.at(), a.seq)).collect::<Vec<_>>()
        );
        prop_assert_eq!(
            records.iter().map(|(_, r)| r.seq).collect::<Vec<_>>(),
            (1..=appended.len() as u64).collect::<Vec<_>>()
        );
        prop_assert_eq!(export(dir.path(), 0).1, export(one.path(), 0).1);
    }
}
