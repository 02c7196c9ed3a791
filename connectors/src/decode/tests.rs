use parking_lot::Mutex;
use std::time::Duration;

use super::*;
use crate::catalog::Catalog;

/// Keeps what each dead letter says, for the assertions.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, String, u64, String)>>);

impl DeadLetters for Kept {
    fn write(&self, l: &DeadLetter<'_>) {
        let mut kept = self.0.lock();
        kept.push((l.reason.into(), l.source.into(), l.seq, l.record_line()));
    }

    fn flush(&self, _: Duration) -> bool {
        true
    }
}

fn path() -> (DecodePath, Arc<DecodeStats>, Arc<Kept>) {
    let stats = Arc::new(DecodeStats::default());
    let kept = Arc::new(Kept::default());
    let path = DecodePath::new("capture", stats.clone(), kept.clone());
    (path, stats, kept)
}

const TOPIC: &str = "lpm.db.responsible_contacts";
const CONTACT: &str = r#"{"before":null,"after":{"id":1,"full_name":"A","agency":"ECU 911","phone":null,"email":null,"active":1,"version":1},"source":{"snapshot":"false","file":"mysql-bin.000001","pos":4,"row":0},"op":"c"}"#;

fn kv<'a>(key: &'a [u8], value: &'a [u8]) -> KeyValue<'a> {
    KeyValue {
        topic: TOPIC,
        partition: None,
        offset: None,
        key: Some(key),
        value: Some(value),
    }
}

#[test]
fn a_decodable_record_is_a_change_and_no_dead_letter() {
    let (path, stats, kept) = path();
    let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
    let change = path.record(&mut decoder, kv(br#"{"id":1}"#, CONTACT.as_bytes()), 1);
    assert!(matches!(change, Some(Change::Row(_))), "{change:?}");
    assert_eq!(stats.errors_total(), 0);
    assert_eq!(stats.records.load(Relaxed), 1);
    assert!(kept.0.lock().is_empty());
}

#[test]
fn an_undecodable_record_is_counted_and_dead_lettered_with_its_reason() {
    let (path, stats, kept) = path();
    let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
    let bad = CONTACT.replace(r#""full_name":"A","#, "");
    assert!(path
        .record(&mut decoder, kv(br#"{"id":1}"#, bad.as_bytes()), 9)
        .is_none());
    assert!(path
        .record(&mut decoder, kv(br#"{"id":1}"#, b"\xff{"), 10)
        .is_none());
    assert_eq!(
        stats.error_counts(),
        vec![("invalid_json", 1), ("null_in_not_null", 1)]
    );
    let kept = kept.0.lock();
    let reasons: Vec<_> = kept
        .iter()
        .map(|k| (k.0.as_str(), k.1.as_str(), k.2))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("null_in_not_null", "capture", 9),
            ("invalid_json", "capture", 10)
        ]
    );
    let record: serde_json::Value = serde_json::from_str(&kept[0].3).expect("kcat line");
    assert_eq!(
        record["payload"],
        bad.as_str(),
        "the value is kept verbatim"
    );
    assert_eq!(record["topic"], TOPIC);
}

#[test]
fn a_skipped_record_is_counted_as_skipped_not_rejected() {
    let (path, stats, kept) = path();
    let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
    let change = path.record(
        &mut decoder,
        KeyValue {
            topic: "lpm.db.not_ours",
            ..kv(br#"{"id":1}"#, CONTACT.as_bytes())
        },
        1,
    );
    assert!(change.is_none());
    assert_eq!(stats.errors_total(), 0);
    assert_eq!(stats.skipped_counts().len(), 1);
    assert!(kept.0.lock().is_empty());
}

#[test]
fn a_dump_line_is_dead_lettered_verbatim() {
    let (path, stats, kept) = path();
    let e = DecodeError::BadRecord("EOF".into());
    assert!(path.accept(Err(e), 4, Raw::Line(b"{not json")).is_none());
    assert_eq!(stats.error_counts(), vec![("bad_record", 1)]);
    let kept = kept.0.lock();
    assert_eq!(kept[0].3, "{not json");
}
