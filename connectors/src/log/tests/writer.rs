//! Appends, group commit, the durable hook, poisoning.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::super::segments::retry_interrupted;
use super::super::writer::{Storage, WriterStart};
use super::super::*;
use super::{all_records, contact, events};

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

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn writer_is_send_sync() {
    assert_send_sync::<LogWriter>();
}
