//! The engine's row model (`lpm_engine::model`) to and from MySQL rows of `schema.sql`.
//!
//! Times: every session runs with `time_zone = '+00:00'`, so a `TIMESTAMP(3)` value is written
//! and read as UTC and maps to [`EpochMs`] one to one. `last_seen_at` is a `DATETIME(3)` wall
//! clock ([`lpm_engine::model::WallClockMs`]), as is a sighting's `seen_at`: the same calendar fields, no zone. Both travel as
//! binary-protocol `Value::Date`, so no text formatting or parsing is involved.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike};
use lpm_engine::model::{
    Action, Assignment, Case, Decimal, EpochMs, Key, Person, Priority, Responsible, Row, Sighting,
    Status,
};
use mysql_async::prelude::Queryable;
use mysql_async::Value;

use super::error::MysqlError;

/// Columns of `case_cases`, in the order [`case_of`] reads them.
pub const CASE_COLUMNS: &str =
    "id, person_id, status, priority, responsible_id, opened_at, closed_at, version, public, public_id";
/// Columns of `responsible_contacts`, in the order [`responsible_of`] reads them.
pub const RESPONSIBLE_COLUMNS: &str = "id, full_name, agency, phone, email, active, version";
/// Columns of `case_responsible_history`, in the order [`assignment_of`] reads them.
pub const ASSIGNMENT_COLUMNS: &str = "id, case_id, responsible_id, assigned_at, unassigned_at";

/// Milliseconds since the epoch (or a wall clock read as UTC) as a `DATE`/`TIMESTAMP` value.
pub fn time_value(ms: i64) -> Result<Value, MysqlError> {
    let t = DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| MysqlError::Data(format!("time {ms} ms is out of range")))?;
    let year = u16::try_from(t.year())
        .map_err(|_| MysqlError::Data(format!("year {} cannot be stored", t.year())))?;
    Ok(Value::Date(
        year,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.timestamp_subsec_micros(),
    ))
}

fn opt_time_value(ms: Option<i64>) -> Result<Value, MysqlError> {
    ms.map_or(Ok(Value::NULL), time_value)
}

fn opt_text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::NULL, |s| Value::from(s.as_str()))
}

fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::NULL, Value::Int)
}

fn decimal(d: &Option<Decimal>) -> Value {
    d.map_or(Value::NULL, |d| Value::from(d.to_string()))
}

/// Reads the columns of one row in order, naming the table in errors.
struct Cols {
    table: &'static str,
    values: std::vec::IntoIter<Option<Value>>,
}

impl Cols {
    fn new(table: &'static str, row: mysql_async::Row) -> Cols {
        Cols::of(table, row.unwrap_raw())
    }

    fn of(table: &'static str, values: Vec<Option<Value>>) -> Cols {
        Cols {
            table,
            values: values.into_iter(),
        }
    }

    fn next(&mut self) -> Result<Value, MysqlError> {
        self.values
            .next()
            .flatten()
            .ok_or_else(|| MysqlError::Data(format!("{}: missing column", self.table)))
    }

    fn bad(&self, what: &str, v: &Value) -> MysqlError {
        MysqlError::Data(format!("{}: {what} expected, got {v:?}", self.table))
    }

    fn opt_int(&mut self) -> Result<Option<i64>, MysqlError> {
        match self.next()? {
            Value::NULL => Ok(None),
            Value::Int(i) => Ok(Some(i)),
            Value::UInt(u) => i64::try_from(u)
                .map(Some)
                .map_err(|_| self.bad("a BIGINT", &Value::UInt(u))),
            Value::Bytes(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| self.bad("an integer", &Value::Bytes(b.clone()))),
            v => Err(self.bad("an integer", &v)),
        }
    }

    fn int(&mut self) -> Result<i64, MysqlError> {
        self.opt_int()?
            .ok_or_else(|| self.bad("a non-null integer", &Value::NULL))
    }

    fn opt_text(&mut self) -> Result<Option<String>, MysqlError> {
        match self.next()? {
            Value::NULL => Ok(None),
            Value::Bytes(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|e| MysqlError::Data(format!("{}: invalid UTF-8: {e}", self.table))),
            v => Err(self.bad("text", &v)),
        }
    }

    fn text(&mut self) -> Result<String, MysqlError> {
        self.opt_text()?
            .ok_or_else(|| self.bad("non-null text", &Value::NULL))
    }

    fn opt_time(&mut self) -> Result<Option<EpochMs>, MysqlError> {
        match self.next()? {
            Value::NULL => Ok(None),
            Value::Date(y, mo, d, h, mi, s, us) => {
                chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
                    .and_then(|date| {
                        date.and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us)
                    })
                    .map(|t| Some(t.and_utc().timestamp_millis()))
                    .ok_or_else(|| self.bad("a valid time", &Value::Date(y, mo, d, h, mi, s, us)))
            }
            v => Err(self.bad("a time", &v)),
        }
    }

    fn time(&mut self) -> Result<EpochMs, MysqlError> {
        self.opt_time()?
            .ok_or_else(|| self.bad("a non-null time", &Value::NULL))
    }
}

/// A `case_cases` row read with [`CASE_COLUMNS`].
pub fn case_of(row: mysql_async::Row) -> Result<Case, MysqlError> {
    let mut c = Cols::new("case_cases", row);
    Ok(Case {
        id: c.int()?,
        person_id: c.int()?,
        status: Status::parse(&c.text()?),
        priority: Priority::parse(&c.text()?),
        responsible_id: c.opt_int()?,
        opened_at: c.time()?,
        closed_at: c.opt_time()?,
        version: c.int()?,
        public: c.int()? != 0,
        public_id: c.opt_text()?,
    })
}

/// A `responsible_contacts` row read with [`RESPONSIBLE_COLUMNS`].
pub fn responsible_of(row: mysql_async::Row) -> Result<Responsible, MysqlError> {
    let mut c = Cols::new("responsible_contacts", row);
    Ok(Responsible {
        id: c.int()?,
        full_name: c.text()?,
        agency: c.text()?,
        phone: c.opt_text()?,
        email: c.opt_text()?,
        active: c.int()? != 0,
        version: c.int()?,
    })
}

/// A `(responsible_id, COUNT(*))` row.
pub fn id_and_count(row: mysql_async::Row) -> Result<(Key, i64), MysqlError> {
    let mut c = Cols::new("case_cases", row);
    Ok((c.int()?, c.int()?))
}

/// A `(responsible_id, MAX(assigned_at))` row.
pub fn id_and_time(row: mysql_async::Row) -> Result<(Key, EpochMs), MysqlError> {
    let mut c = Cols::new("case_responsible_history", row);
    Ok((c.int()?, c.time()?))
}

/// A `case_responsible_history` row read with [`ASSIGNMENT_COLUMNS`].
pub fn assignment_of(row: mysql_async::Row) -> Result<Assignment, MysqlError> {
    let mut c = Cols::new("case_responsible_history", row);
    Ok(Assignment {
        id: c.int()?,
        case_id: c.int()?,
        responsible_id: c.int()?,
        assigned_at: c.time()?,
        unassigned_at: c.opt_time()?,
    })
}

fn person_values(p: &Person) -> Result<Vec<Value>, MysqlError> {
    Ok(vec![
        Value::Int(p.id),
        Value::from(p.full_name.as_str()),
        opt_int(p.age),
        Value::from(p.gender.as_str()),
        time_value(p.last_seen_at)?,
        time_value(p.reported_at)?,
        Value::from(p.last_seen_place.as_str()),
        decimal(&p.latitude),
        decimal(&p.longitude),
        opt_text(&p.description),
        opt_text(&p.reporter_name),
        opt_text(&p.reporter_phone),
        Value::Int(p.version),
    ])
}

fn case_values(c: &Case) -> Result<Vec<Value>, MysqlError> {
    Ok(vec![
        Value::Int(c.id),
        Value::Int(c.person_id),
        Value::from(c.status.as_str()),
        Value::from(c.priority.as_str()),
        opt_int(c.responsible_id),
        time_value(c.opened_at)?,
        opt_time_value(c.closed_at)?,
        Value::Int(c.version),
        Value::Int(i64::from(c.public)),
        opt_text(&c.public_id),
    ])
}

fn action_values(a: &Action) -> Result<Vec<Value>, MysqlError> {
    Ok(vec![
        Value::Int(a.id),
        Value::Int(a.case_id),
        Value::from(a.action_type.as_str()),
        opt_text(&a.notes),
        opt_int(a.responsible_id),
        opt_text(&a.responsible_name),
        time_value(a.created_at)?,
    ])
}

fn assignment_values(h: &Assignment) -> Result<Vec<Value>, MysqlError> {
    Ok(vec![
        Value::Int(h.id),
        Value::Int(h.case_id),
        Value::Int(h.responsible_id),
        time_value(h.assigned_at)?,
        opt_time_value(h.unassigned_at)?,
    ])
}

fn sighting_values(s: &Sighting) -> Result<Vec<Value>, MysqlError> {
    Ok(vec![
        Value::Int(s.id),
        Value::Int(s.case_id),
        time_value(s.seen_at)?,
        Value::from(s.place.as_str()),
        decimal(&s.latitude),
        decimal(&s.longitude),
        opt_text(&s.description),
        opt_text(&s.reporter_name),
        opt_text(&s.reporter_phone),
        Value::from(s.source.as_str()),
        time_value(s.created_at)?,
        Value::Int(s.version),
    ])
}

fn responsible_values(r: &Responsible) -> Vec<Value> {
    vec![
        Value::Int(r.id),
        Value::from(r.full_name.as_str()),
        Value::from(r.agency.as_str()),
        opt_text(&r.phone),
        opt_text(&r.email),
        Value::Int(i64::from(r.active)),
        Value::Int(r.version),
    ]
}

const INSERT_PERSON: &str = "INSERT INTO persons_lost (id, full_name, age, gender, last_seen_at, \
     reported_at, last_seen_place, latitude, longitude, description, reporter_name, \
     reporter_phone, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_CASE: &str = "INSERT INTO case_cases (id, person_id, status, priority, \
     responsible_id, opened_at, closed_at, version, public, public_id) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_ACTION: &str = "INSERT INTO case_actions (id, case_id, action_type, notes, \
     responsible_id, responsible_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
const INSERT_ASSIGNMENT: &str = "INSERT INTO case_responsible_history (id, case_id, \
     responsible_id, assigned_at, unassigned_at) VALUES (?, ?, ?, ?, ?)";
const INSERT_SIGHTING: &str = "INSERT INTO case_sightings (id, case_id, seen_at, place, \
     latitude, longitude, description, reporter_name, reporter_phone, source, created_at, \
     version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_RESPONSIBLE: &str = "INSERT INTO responsible_contacts (id, full_name, agency, phone, \
     email, active, version) VALUES (?, ?, ?, ?, ?, ?, ?)";
// updates set every column but the id, then match the id (and the version read under the lock)
const UPDATE_PERSON: &str = "UPDATE persons_lost SET full_name = ?, age = ?, gender = ?, \
     last_seen_at = ?, reported_at = ?, last_seen_place = ?, latitude = ?, longitude = ?, \
     description = ?, reporter_name = ?, reporter_phone = ?, version = ? WHERE id = ? AND version = ?";
const UPDATE_CASE: &str = "UPDATE case_cases SET person_id = ?, status = ?, priority = ?, \
     responsible_id = ?, opened_at = ?, closed_at = ?, version = ?, public = ?, public_id = ? \
     WHERE id = ? AND version = ?";
const UPDATE_RESPONSIBLE: &str = "UPDATE responsible_contacts SET full_name = ?, agency = ?, \
     phone = ?, email = ?, active = ?, version = ? WHERE id = ? AND version = ?";
const UPDATE_ASSIGNMENT: &str = "UPDATE case_responsible_history SET case_id = ?, \
     responsible_id = ?, assigned_at = ?, unassigned_at = ? WHERE id = ? AND unassigned_at IS NULL";

/// `values` without the leading id, then `id` and `guard` for the `WHERE`.
fn update_params(mut values: Vec<Value>, guard: Option<i64>) -> Vec<Value> {
    let id = values.remove(0);
    values.push(id);
    if let Some(g) = guard {
        values.push(Value::Int(g));
    }
    values
}

/// Writes one planned row: an `INSERT` for a new row, an `UPDATE … WHERE id = ? AND version = ?`
/// (the closing of an assignment: `AND unassigned_at IS NULL`) for a changed one. An update that
/// matches no row means the row changed under our lock, which must not happen: an error.
pub async fn write(
    conn: &mut impl Queryable,
    before: Option<&Row>,
    after: &Row,
) -> Result<(), MysqlError> {
    let (sql, params) = match (before, after) {
        (None, Row::Person(p)) => (INSERT_PERSON, person_values(p)?),
        (None, Row::Case(c)) => (INSERT_CASE, case_values(c)?),
        (None, Row::Action(a)) => (INSERT_ACTION, action_values(a)?),
        (None, Row::Assignment(h)) => (INSERT_ASSIGNMENT, assignment_values(h)?),
        (None, Row::Responsible(r)) => (INSERT_RESPONSIBLE, responsible_values(r)),
        (None, Row::Sighting(x)) => (INSERT_SIGHTING, sighting_values(x)?),
        (Some(Row::Person(old)), Row::Person(p)) => (
            UPDATE_PERSON,
            update_params(person_values(p)?, Some(old.version)),
        ),
        (Some(Row::Case(old)), Row::Case(c)) => (
            UPDATE_CASE,
            update_params(case_values(c)?, Some(old.version)),
        ),
        (Some(Row::Responsible(old)), Row::Responsible(r)) => (
            UPDATE_RESPONSIBLE,
            update_params(responsible_values(r), Some(old.version)),
        ),
        (Some(Row::Assignment(_)), Row::Assignment(h)) => (
            UPDATE_ASSIGNMENT,
            update_params(assignment_values(h)?, None),
        ),
        (Some(b), a) => {
            return Err(MysqlError::Data(format!(
                "a plan changes a {} row into a {} row",
                b.table(),
                a.table()
            )))
        }
    };
    let result = conn.exec_iter(sql, params).await?;
    let affected = result.affected_rows();
    result.drop_result().await?;
    if before.is_some() && affected != 1 {
        return Err(MysqlError::Data(format!(
            "{} {} changed although it was locked",
            after.table(),
            after.key()
        )));
    }
    Ok(())
}

/// Every contact, by id.
pub async fn all_responsibles(
    conn: &mut impl Queryable,
) -> Result<Vec<Arc<Responsible>>, MysqlError> {
    let rows: Vec<mysql_async::Row> = conn
        .query(format!(
            "SELECT {RESPONSIBLE_COLUMNS} FROM responsible_contacts ORDER BY id"
        ))
        .await?;
    rows.into_iter()
        .map(|r| responsible_of(r).map(Arc::new))
        .collect()
}

/// One contact.
pub async fn one_responsible(
    conn: &mut impl Queryable,
    id: Key,
) -> Result<Option<Responsible>, MysqlError> {
    let row: Option<mysql_async::Row> = conn
        .exec_first(
            format!("SELECT {RESPONSIBLE_COLUMNS} FROM responsible_contacts WHERE id = ?"),
            (id,),
        )
        .await?;
    row.map(responsible_of).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_travel_as_utc_calendar_fields_with_milliseconds() {
        // 2026-11-20T14:30:00.123Z
        let ms = 1_795_185_000_123;
        assert_eq!(
            time_value(ms).expect("in range"),
            Value::Date(2026, 11, 20, 14, 30, 0, 123_000)
        );
        let mut c = Cols::of(
            "t",
            vec![
                Some(Value::Date(2026, 11, 20, 14, 30, 0, 123_000)),
                Some(Value::NULL),
            ],
        );
        assert_eq!(c.time().expect("time"), ms);
        assert_eq!(c.opt_time().expect("null"), None);
    }

    #[test]
    fn updates_put_the_id_and_the_read_version_last() {
        let p = update_params(
            vec![Value::Int(7), Value::from("a"), Value::Int(3)],
            Some(2),
        );
        assert_eq!(
            p,
            vec![
                Value::from("a"),
                Value::Int(3),
                Value::Int(7),
                Value::Int(2)
            ]
        );
    }
}
