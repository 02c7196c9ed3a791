//! From a decoded [`Event`] of one of lpm's six tables to the engine's typed [`Change`].

use std::sync::Arc;

use lpm_engine::change::{Change, ChangeKind, RowChange};
use lpm_engine::model::{
    Action, Assignment, Case, Decimal, Person, Priority, Responsible, Row, Sighting,
    SightingSource, Status, Table,
};

use super::envelope::{Event, Op};
use super::value::Value;
use crate::catalog::TableDef;
use crate::error::DecodeError;

struct Cols<'a> {
    def: &'a TableDef,
    values: Vec<Value>,
}

fn bad(column: &str, detail: &str) -> DecodeError {
    DecodeError::BadValue {
        column: column.into(),
        detail: detail.into(),
    }
}

impl Cols<'_> {
    fn take(&mut self, name: &str) -> Value {
        match self.def.column(name) {
            Some(i) => std::mem::replace(&mut self.values[i], Value::Null),
            None => Value::Null,
        }
    }

    fn req<T>(&mut self, name: &str, f: impl Fn(Value) -> Option<T>) -> Result<T, DecodeError> {
        match self.take(name) {
            Value::Null => Err(DecodeError::NullInNotNull {
                column: name.into(),
            }),
            v => f(v).ok_or_else(|| bad(name, "unexpected type")),
        }
    }

    fn opt<T>(
        &mut self,
        name: &str,
        f: impl Fn(Value) -> Option<T>,
    ) -> Result<Option<T>, DecodeError> {
        match self.take(name) {
            Value::Null => Ok(None),
            v => f(v).map(Some).ok_or_else(|| bad(name, "unexpected type")),
        }
    }
}

fn int(v: Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(n),
        Value::Bool(b) => Some(i64::from(b)),
        Value::Decimal(d) if d.scale == 0 => i64::try_from(d.unscaled).ok(),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn instant(v: Value) -> Option<i64> {
    match v {
        Value::Instant(ms) => Some(ms),
        _ => None,
    }
}

fn wall_clock_ms(v: Value) -> Option<i64> {
    match v {
        Value::WallClock(us) => Some(us.div_euclid(1000)),
        _ => None,
    }
}

fn decimal(v: Value) -> Option<Decimal> {
    match v {
        Value::Decimal(d) => Some(d),
        Value::Int(n) => Some(Decimal {
            unscaled: i128::from(n),
            scale: 0,
        }),
        _ => None,
    }
}

fn flag(v: Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(b),
        Value::Int(n) => Some(n != 0),
        _ => None,
    }
}

fn build(table: Table, c: &mut Cols<'_>) -> Result<Row, DecodeError> {
    Ok(match table {
        Table::PersonsLost => Row::Person(Arc::new(Person {
            id: c.req("id", int)?,
            full_name: c.req("full_name", text)?,
            age: c.opt("age", int)?,
            gender: c.req("gender", text)?,
            last_seen_at: c.req("last_seen_at", wall_clock_ms)?,
            reported_at: c.req("reported_at", instant)?,
            last_seen_place: c.req("last_seen_place", text)?,
            latitude: c.opt("latitude", decimal)?,
            longitude: c.opt("longitude", decimal)?,
            description: c.opt("description", text)?,
            reporter_name: c.opt("reporter_name", text)?,
            reporter_phone: c.opt("reporter_phone", text)?,
            version: c.opt("version", int)?.unwrap_or(1),
        })),
        Table::CaseCases => Row::Case(Arc::new(Case {
            id: c.req("id", int)?,
            person_id: c.req("person_id", int)?,
            status: Status::parse(&c.req("status", text)?),
            priority: Priority::parse(&c.req("priority", text)?),
            responsible_id: c.opt("responsible_id", int)?,
            opened_at: c.req("opened_at", instant)?,
            closed_at: c.opt("closed_at", instant)?,
            version: c.opt("version", int)?.unwrap_or(1),
            // migration 0003: absent from dumps of the original schema, which are not published
            public: c.opt("public", flag)?.unwrap_or(false),
            public_id: c.opt("public_id", text)?,
        })),
        Table::CaseActions => Row::Action(Arc::new(Action {
            id: c.req("id", int)?,
            case_id: c.req("case_id", int)?,
            action_type: c.req("action_type", text)?,
            notes: c.opt("notes", text)?,
            responsible_id: c.opt("responsible_id", int)?,
            responsible_name: c.opt("responsible_name", text)?,
            created_at: c.req("created_at", instant)?,
        })),
        Table::CaseResponsibleHistory => Row::Assignment(Arc::new(Assignment {
            id: c.req("id", int)?,
            case_id: c.req("case_id", int)?,
            responsible_id: c.req("responsible_id", int)?,
            assigned_at: c.req("assigned_at", instant)?,
            unassigned_at: c.opt("unassigned_at", instant)?,
        })),
        Table::CaseSightings => Row::Sighting(Arc::new(Sighting {
            id: c.req("id", int)?,
            case_id: c.req("case_id", int)?,
            seen_at: c.req("seen_at", wall_clock_ms)?,
            place: c.req("place", text)?,
            latitude: c.opt("latitude", decimal)?,
            longitude: c.opt("longitude", decimal)?,
            description: c.opt("description", text)?,
            reporter_name: c.opt("reporter_name", text)?,
            reporter_phone: c.opt("reporter_phone", text)?,
            source: SightingSource::parse(&c.req("source", text)?),
            created_at: c.req("created_at", instant)?,
            version: c.opt("version", int)?.unwrap_or(1),
        })),
        Table::ResponsibleContacts => Row::Responsible(Arc::new(Responsible {
            id: c.req("id", int)?,
            full_name: c.req("full_name", text)?,
            agency: c.req("agency", text)?,
            phone: c.opt("phone", text)?,
            email: c.opt("email", text)?,
            active: c.opt("active", flag)?.unwrap_or(true),
            version: c.opt("version", int)?.unwrap_or(1),
        })),
    })
}

/// Which columns a decoded row keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowShape {
    /// Every column (for the case read model, `--rows`, serving).
    #[default]
    Full,
    /// Only what the views read; free text (descriptions, notes, names of persons and
    /// reporters, phones, e-mails, places, coordinates) is dropped at decode time. Views are
    /// unchanged; memory per person drops by more than half.
    ViewsOnly,
    /// [`RowShape::ViewsOnly`] that keeps a person's coordinates: what the views read when the
    /// `hotspots` view (H3 cells of the coordinates) is on.
    ViewsWithCoordinates,
}

/// [`views_only`], keeping a person's latitude and longitude.
pub fn views_with_coordinates(row: Row) -> Row {
    match row {
        Row::Person(p) => {
            let (latitude, longitude) = (p.latitude, p.longitude);
            match views_only(Row::Person(p)) {
                Row::Person(lean) => Row::Person(Arc::new(Person {
                    latitude,
                    longitude,
                    ..Arc::unwrap_or_clone(lean)
                })),
                other => other,
            }
        }
        other => views_only(other),
    }
}

/// Drops the columns no view reads (see [`RowShape::ViewsOnly`]).
pub fn views_only(row: Row) -> Row {
    match row {
        Row::Person(p) => {
            let p = Arc::unwrap_or_clone(p);
            Row::Person(Arc::new(Person {
                full_name: String::new(),
                last_seen_place: String::new(),
                latitude: None,
                longitude: None,
                description: None,
                reporter_name: None,
                reporter_phone: None,
                ..p
            }))
        }
        Row::Action(a) => {
            let a = Arc::unwrap_or_clone(a);
            Row::Action(Arc::new(Action {
                action_type: String::new(),
                notes: None,
                responsible_name: None,
                ..a
            }))
        }
        Row::Responsible(r) => {
            let r = Arc::unwrap_or_clone(r);
            Row::Responsible(Arc::new(Responsible {
                phone: None,
                email: None,
                ..r
            }))
        }
        Row::Sighting(s) => {
            let s = Arc::unwrap_or_clone(s);
            Row::Sighting(Arc::new(Sighting {
                place: String::new(),
                latitude: None,
                longitude: None,
                description: None,
                reporter_name: None,
                reporter_phone: None,
                ..s
            }))
        }
        other => other,
    }
}

/// Maps an event of one of lpm's tables to a [`Change`] with all columns; `Ok(None)` for
/// other tables.
pub fn to_change(event: Event) -> Result<Option<Change>, DecodeError> {
    to_change_shaped(event, RowShape::Full)
}

/// As [`to_change`], keeping the columns `shape` asks for.
pub fn to_change_shaped(event: Event, shape: RowShape) -> Result<Option<Change>, DecodeError> {
    let Some(table) = Table::from_name(&event.table.name) else {
        return Ok(None);
    };
    let Event {
        table: def,
        key,
        op,
        position,
        snapshot,
        ..
    } = event;
    let key = match (op, key) {
        (Op::Truncate, _) => return Ok(Some(Change::Truncate { table, position })),
        (op, Some(key)) => (op, key),
        (_, None) => return Err(DecodeError::MissingKey("row event without a key".into())),
    };
    let (op, key) = key;
    let kind = match op {
        Op::Upsert(values) => {
            let row = build(table, &mut Cols { def: &def, values })?;
            if row.key() != key {
                return Err(DecodeError::MissingKey(format!(
                    "key {key} does not match the row's id {}",
                    row.key()
                )));
            }
            ChangeKind::Upsert(match shape {
                RowShape::Full => row,
                RowShape::ViewsOnly => views_only(row),
                RowShape::ViewsWithCoordinates => views_with_coordinates(row),
            })
        }
        Op::Delete => ChangeKind::Delete,
        Op::Tombstone => ChangeKind::Tombstone,
        Op::Truncate => return Ok(Some(Change::Truncate { table, position })),
    };
    Ok(Some(Change::Row(RowChange {
        table,
        key,
        kind,
        position,
        snapshot,
    })))
}

fn iso_ms(ms: i64) -> serde_json::Value {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => serde_json::Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        None => serde_json::Value::from(ms),
    }
}

/// A row as JSON with MySQL column names: instants as ISO-8601 UTC with milliseconds, DATETIME
/// as Debezium's epoch milliseconds, decimals as exact strings (the `--rows` output).
pub fn row_to_json(row: &Row) -> serde_json::Value {
    use serde_json::json;
    let dec = |d: &Option<Decimal>| d.map(|d| d.to_string());
    let opt_iso = |t: Option<i64>| t.map(iso_ms).unwrap_or(serde_json::Value::Null);
    match row {
        Row::Person(p) => json!({
            "id": p.id, "full_name": p.full_name, "age": p.age, "gender": p.gender,
            "last_seen_at": p.last_seen_at, "reported_at": iso_ms(p.reported_at),
            "last_seen_place": p.last_seen_place, "latitude": dec(&p.latitude), "longitude": dec(&p.longitude),
            "description": p.description, "reporter_name": p.reporter_name, "reporter_phone": p.reporter_phone,
            "version": p.version,
        }),
        Row::Case(c) => json!({
            "id": c.id, "person_id": c.person_id, "status": c.status.as_str(), "priority": c.priority.as_str(),
            "responsible_id": c.responsible_id, "opened_at": iso_ms(c.opened_at), "closed_at": opt_iso(c.closed_at),
            "version": c.version, "public": i32::from(c.public), "public_id": c.public_id,
        }),
        Row::Action(a) => json!({
            "id": a.id, "case_id": a.case_id, "action_type": a.action_type, "notes": a.notes,
            "responsible_id": a.responsible_id, "responsible_name": a.responsible_name,
            "created_at": iso_ms(a.created_at),
        }),
        Row::Assignment(h) => json!({
            "id": h.id, "case_id": h.case_id, "responsible_id": h.responsible_id,
            "assigned_at": iso_ms(h.assigned_at), "unassigned_at": opt_iso(h.unassigned_at),
        }),
        Row::Responsible(r) => json!({
            "id": r.id, "full_name": r.full_name, "agency": r.agency, "phone": r.phone, "email": r.email,
            "active": i32::from(r.active), "version": r.version,
        }),
        Row::Sighting(s) => json!({
            "id": s.id, "case_id": s.case_id, "seen_at": s.seen_at, "place": s.place,
            "latitude": dec(&s.latitude), "longitude": dec(&s.longitude), "description": s.description,
            "reporter_name": s.reporter_name, "reporter_phone": s.reporter_phone,
            "source": s.source.as_str(), "created_at": iso_ms(s.created_at), "version": s.version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lpm_engine::change::{Change, ChangeKind};
    use lpm_engine::model::{Decimal, Person, Row, SightingSource, Table};

    use super::{to_change, to_change_shaped, views_with_coordinates, RowShape};
    use crate::catalog::Catalog;
    use crate::debezium::{Decoded, Decoder};

    /// A `case_sightings` insert as Debezium's MySQL connector writes it with schemas off:
    /// `seen_at` DATETIME(3) as wall-clock epoch ms, `created_at` as ZonedTimestamp, one
    /// coordinate as decimal text and one as precise base64.
    const SIGHTING: &str = r#"{"before":null,"after":{"id":7,"case_id":42,"seen_at":1795193100123,"place":"Terminal Quitumbe","latitude":"-0.290000","longitude":"+1FsEA==","description":"Chompa roja","reporter_name":"Rosa","reporter_phone":"0998765432","source":"public","created_at":"2026-11-20T21:50:00.500Z","version":2},"source":{"version":"2.7.0.Final","connector":"mysql","name":"lpm","ts_ms":1795225800500,"snapshot":"false","db":"lost_persons_db","table":"case_sightings","server_id":1,"file":"mysql-bin.000003","pos":4242,"row":0},"op":"c","ts_ms":1795225800600}"#;

    fn decode(value: &str, shape: RowShape) -> Change {
        let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
        let decoded = decoder
            .decode(
                "lpm.lost_persons_db.case_sightings",
                Some(r#"{"id":7}"#),
                Some(value),
                1,
            )
            .expect("decodes");
        let Decoded::Event(event) = decoded else {
            panic!("skipped")
        };
        to_change_shaped(event, shape)
            .expect("maps")
            .expect("an lpm table")
    }

    #[test]
    fn a_debezium_sighting_decodes_to_a_typed_row() {
        let Change::Row(rc) = decode(SIGHTING, RowShape::Full) else {
            panic!("a row change")
        };
        assert_eq!((rc.table, rc.key), (Table::CaseSightings, 7));
        let ChangeKind::Upsert(Row::Sighting(s)) = rc.kind else {
            panic!("a sighting upsert: {:?}", rc.kind)
        };
        assert_eq!(s.case_id, 42);
        assert_eq!(s.seen_at, 1_795_193_100_123, "wall clock, not shifted");
        assert_eq!(s.place, "Terminal Quitumbe");
        let dec = |unscaled| Some(Decimal { unscaled, scale: 6 });
        assert_eq!((s.latitude, s.longitude), (dec(-290_000), dec(-78_550_000)));
        assert_eq!(s.reporter_name.as_deref(), Some("Rosa"));
        assert_eq!(s.reporter_phone.as_deref(), Some("0998765432"));
        assert_eq!(s.source, SightingSource::Public);
        assert_eq!(s.created_at, 1_795_211_400_500);
        assert_eq!(s.version, 2);
    }

    #[test]
    fn views_with_coordinates_keeps_only_the_coordinates_of_the_free_columns() {
        let place = |unscaled| Some(Decimal { unscaled, scale: 6 });
        let person = Row::Person(Arc::new(Person {
            full_name: "Ana".into(),
            description: Some("gorra roja".into()),
            latitude: place(-180_653),
            longitude: place(-78_467_838),
            ..Person::default()
        }));
        let Row::Person(p) = views_with_coordinates(person) else {
            panic!("a person")
        };
        assert_eq!(
            (p.latitude, p.longitude),
            (place(-180_653), place(-78_467_838))
        );
        assert_eq!((p.full_name.as_str(), p.description.as_deref()), ("", None));
    }

    #[test]
    fn a_sighting_without_place_is_rejected_and_views_only_drops_free_text() {
        let bad = SIGHTING.replace(r#""place":"Terminal Quitumbe","#, r#""place":null,"#);
        let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
        let err = decoder
            .decode(
                "lpm.lost_persons_db.case_sightings",
                Some(r#"{"id":7}"#),
                Some(&bad),
                1,
            )
            .map_err(|e| e.to_string())
            .and_then(|d| match d {
                Decoded::Event(event) => to_change(event).map(|_| ()).map_err(|e| e.to_string()),
                _ => Ok(()),
            })
            .expect_err("place is NOT NULL");
        assert!(err.contains("place"), "{err}");

        let Change::Row(rc) = decode(SIGHTING, RowShape::ViewsOnly) else {
            panic!("a row change")
        };
        let ChangeKind::Upsert(Row::Sighting(s)) = rc.kind else {
            panic!("a sighting upsert")
        };
        assert_eq!((s.case_id, s.place.as_str()), (42, ""));
        assert!(s.reporter_name.is_none() && s.reporter_phone.is_none());
    }
}
