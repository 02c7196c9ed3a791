//! The embedded log's start-up path: [`EmbeddedLog::open`] scanning a segment made of framed
//! records, torn or corrupt ones and raw garbage: a torn tail is cut; corruption before the end
//! is refused with the file untouched, then opened with `CutAndDrop` (the operator's
//! `--allow-log-cut`), which cuts it at the first bad record; then the
//! recovered log replayed, exported as a kcat dump (decoded again by the dump decoder),
//! appended to and reopened.
//!
//! The input is a list of chunks `mode: u8, length: u16 LE, bytes`. By `mode % 4` a chunk is a
//! record framed around `bytes` as its JSON payload (0), raw bytes (1), a framed record with a
//! wrong CRC (2) or without its trailer byte (3); the target computes lengths and CRCs, which a
//! mutation would almost never get right. Checks, besides "no panic":
//! - the segment keeps exactly the bytes before the cut, and the cut bytes are saved verbatim;
//! - replay gives the counted records, in increasing `seq`, ending at `last_seq`;
//! - `next_seq` is above every `seq` seen, and a reopen finds a clean log with the same records;
//! - the export has one line per event and stops nowhere; an append after recovery survives a
//!   reopen with the `seq` it was given.
#![no_main]

use std::fs;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use lpm_connectors::fuzzing::KcatLineDecoder;
use lpm_connectors::log::{
    export_kcat, EmbeddedLog, EncodedEvent, LogError, MidLogCorruption, SEGMENT,
};
use lpm_connectors::Catalog;

static CATALOG: LazyLock<Arc<Catalog>> = LazyLock::new(|| Arc::new(Catalog::lpm()));

/// Frames `payload` as the log does: magic, version, length, CRC, payload, trailer.
fn frame(payload: &[u8], crc_delta: u32, trailer: bool) -> Vec<u8> {
    let mut out = vec![0xFA, 1];
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(
        &crc32fast::hash(payload)
            .wrapping_add(crc_delta)
            .to_le_bytes(),
    );
    out.extend_from_slice(payload);
    if trailer {
        out.push(b'\n');
    }
    out
}

fn segment(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let [mode, lo, hi, rest @ ..] = data {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let bytes = &rest[..len];
        match mode % 4 {
            0 => out.extend(frame(bytes, 0, true)),
            1 => out.extend_from_slice(bytes),
            2 => out.extend(frame(bytes, 1, true)),
            _ => out.extend(frame(bytes, 0, false)),
        }
        data = &rest[len..];
    }
    out
}

/// `(seq, events)` of every record, in log order.
fn replay(log: &EmbeddedLog) -> Vec<(u64, usize)> {
    let mut seen = Vec::new();
    log.replay(|_, record| seen.push((record.seq, record.events.len())))
        .expect("a recovered log replays");
    seen
}

fn check(dir: &Path, bytes: &[u8]) {
    let path = dir.join(SEGMENT);
    fs::write(&path, bytes).expect("write the segment");
    // the default refuses corruption before the end, leaving the file as it was; the
    // operator's `--allow-log-cut` (CutAndDrop) then recovers any segment
    let (log, recovery) = match EmbeddedLog::open(dir) {
        Ok(opened) => opened,
        Err(LogError::CorruptBeforeEnd {
            offset,
            records_dropped,
            ..
        }) => {
            assert!(records_dropped > 0, "a refusal drops valid records");
            assert!(offset < bytes.len() as u64);
            assert_eq!(
                fs::read(&path).expect("read"),
                bytes,
                "a refusal leaves the file"
            );
            EmbeddedLog::open_with(dir, MidLogCorruption::CutAndDrop)
                .expect("CutAndDrop recovers any segment")
        }
        Err(e) => panic!("open failed: {e}"),
    };
    let kept = fs::read(&path).expect("read the segment");
    assert_eq!(
        kept.len() as u64,
        recovery.end,
        "the segment ends at the recovered end"
    );
    assert_eq!(&kept[..], &bytes[..kept.len()], "recovery keeps a prefix");
    match &recovery.cut {
        None => assert_eq!(kept.len(), bytes.len(), "nothing cut without a cut report"),
        Some(cut) => {
            assert_eq!(cut.offset, recovery.end);
            assert_eq!(cut.bytes_cut, (bytes.len() - kept.len()) as u64);
            let saved = cut.saved_to.as_ref().expect("the cut is saved");
            let saved = fs::read(saved).expect("read the saved tail");
            assert_eq!(
                &saved[..],
                &bytes[kept.len()..],
                "the cut bytes are saved verbatim"
            );
        }
    }
    let records = replay(&log);
    assert_eq!(records.len() as u64, recovery.records);
    assert_eq!(
        records.iter().map(|(_, n)| *n as u64).sum::<u64>(),
        recovery.events
    );
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "seq increases");
    assert_eq!(records.last().map(|(s, _)| *s), recovery.last_seq);
    let next_seq = log.next_seq();
    assert!(
        records.iter().all(|(s, _)| *s < next_seq),
        "next_seq is fresh"
    );

    let mut dump = Vec::new();
    let summary = export_kcat(dir, &mut dump).expect("export");
    assert!(
        summary.stopped.is_none(),
        "the recovered log exports to its end"
    );
    assert_eq!(summary.records, recovery.records);
    let mut decoder = KcatLineDecoder::new(CATALOG.clone());
    let mut lines = 0u64;
    for (i, line) in dump.split(|b| *b == b'\n').enumerate() {
        if !line.is_empty() {
            lines += 1;
            let _ = decoder.decode(line, i as u64 + 1);
        }
    }
    assert_eq!(lines, summary.events);

    let (again, second) = EmbeddedLog::open(dir).expect("reopen");
    assert!(second.cut.is_none(), "a recovered log reopens clean");
    assert_eq!(second.records, recovery.records);
    assert_eq!(second.end, recovery.end);
    assert!(
        again.next_seq() >= next_seq,
        "a restart never hands out a seq again ({} after {next_seq})",
        again.next_seq()
    );
    drop(again);

    // appending after recovery: the record keeps its seq across a reopen
    let writer = log.into_writer(None).expect("writer");
    let appended = writer.append_with(|seq| {
        vec![EncodedEvent {
            topic: "lpm.lost_persons_db.responsible_contacts".into(),
            key: format!("{{\"id\":{}}}", seq % 1000),
            value: None,
            ts_ms: 0,
        }]
    });
    drop(writer);
    if let Ok(appended) = appended {
        assert_eq!(appended.offset, recovery.end);
        let (after, third) = EmbeddedLog::open(dir).expect("reopen after the append");
        assert!(third.cut.is_none(), "an appended record reads back");
        assert_eq!(third.records, recovery.records + 1);
        assert_eq!(third.last_seq, Some(appended.seq));
        assert!(after.next_seq() > appended.seq);
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = segment(data);
    // tmpfs when there is one: the log fsyncs, and a disk would make each run take milliseconds
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    check(dir.path(), &bytes);
});
