//! The embedded log's tests: shared helpers here, one file per area.

mod export;
mod recovery;
mod segments;
mod writer;

use std::sync::Arc;

use lpm_engine::model::{Person, Responsible, Row};

use super::*;
use crate::debezium::encode::{encode_change, EventSource};

pub(super) fn contact(id: i64, version: i64) -> Row {
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

pub(super) fn person(id: i64) -> Row {
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
pub(super) fn events(seq: u64, changes: &[(Option<Row>, Option<Row>)]) -> Vec<EncodedEvent> {
    let mut out = vec![];
    for (i, (b, a)) in changes.iter().enumerate() {
        let src = source(seq).at_row(i as u32);
        out.extend(encode_change(b.as_ref(), a.as_ref(), &src).expect("encodes"));
    }
    out
}

pub(super) fn all_records(log: &EmbeddedLog) -> Vec<(RecordAt, LogRecord)> {
    log.records()
        .expect("records")
        .collect::<Result<Vec<_>, _>>()
        .expect("valid")
}
