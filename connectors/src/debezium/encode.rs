//! Typed rows -> the Kafka key and value Debezium's MySQL connector would have produced for them.
//!
//! The embedded log (`crate::log`) stores the API's writes as Debezium events so that one decoder
//! serves every source, and so that `lpm log export` output can be replayed by `lpm replay` and
//! checked by `shared/bench/oracle.py` like any topic dump. The shape is Debezium 2.7's MySQL
//! connector with JsonConverter `schemas.enable=false` and default settings
//! (`shared/bench/README.md` lists the conventions, checked against the Debezium sources):
//!
//! - key `{"id":N}`; topic `<prefix>.<db>.<table>`;
//! - value fields in schema order: `before`, `after`, `source`, `op`, `ts_ms`, `ts_us`, `ts_ns`,
//!   `transaction` (null: no transaction metadata by default);
//! - `source` in `io.debezium.connector.mysql.Source` order: `version`, `connector`, `name`,
//!   `ts_ms`, `snapshot`, `db`, `sequence`, `ts_us`, `ts_ns`, `table`, `server_id`, `gtid`,
//!   `file`, `pos`, `row`, `thread`, `query` (the 2.6+ block; the fixture
//!   `debezium-examples/customers-dbz3.0-*` shows the same keys);
//! - columns in DDL order (`data/schema.sql`): DATETIME(3) as `io.debezium.time.Timestamp` (epoch
//!   ms of the wall clock read as UTC), TIMESTAMP(3) as `io.debezium.time.ZonedTimestamp` (UTC
//!   ISO-8601: streamed values are padded to the column's 3 fraction digits, snapshot reads come
//!   from JDBC and drop trailing zeros, as `ISO_OFFSET_DATE_TIME` does), DECIMAL(9,6) in `precise`
//!   mode (base64 of the minimal big-endian two's-complement unscaled value, as Java's
//!   `BigInteger.toByteArray`), TINYINT(1) as 0/1, integers as numbers, text as strings;
//! - a delete is `op:"d"` followed by a tombstone (same key, null value), `tombstones.on.delete`.
//!
//! The envelope `ts_ms` is the connector's processing time in Debezium; here the write and its
//! capture are the same moment, so it equals `source.ts_ms` (and `ts_us`/`ts_ns` are derived).

use std::fmt::Write as _;

use base64::Engine as _;
use lpm_engine::model::{Decimal, Row, Table};

/// The `source.version` we claim: the Debezium release whose output we reproduce.
pub const DEBEZIUM_VERSION: &str = "2.7.0.Final";

/// DECIMAL(9,6): the scale of `latitude`/`longitude`.
const COORD_SCALE: u32 = 6;
/// DECIMAL(9,6): the largest unscaled magnitude plus one (9 digits).
const COORD_LIMIT: i128 = 1_000_000_000;

/// Debezium's `source.snapshot` marker (`io.debezium.connector.SnapshotRecord`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SnapshotFlag {
    /// `"false"`: a streamed event.
    #[default]
    False,
    /// `"true"`: a snapshot read in the middle of the snapshot.
    True,
    /// `"first"`: the first record of the snapshot.
    First,
    /// `"first_in_data_collection"`: the first record of one table's snapshot.
    FirstInDataCollection,
    /// `"last_in_data_collection"`: the last record of one table's snapshot.
    LastInDataCollection,
    /// `"last"`: the last record of the snapshot.
    Last,
    /// `"incremental"`: an incremental-snapshot read.
    Incremental,
}

impl SnapshotFlag {
    /// The text Debezium writes.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotFlag::False => "false",
            SnapshotFlag::True => "true",
            SnapshotFlag::First => "first",
            SnapshotFlag::FirstInDataCollection => "first_in_data_collection",
            SnapshotFlag::LastInDataCollection => "last_in_data_collection",
            SnapshotFlag::Last => "last",
            SnapshotFlag::Incremental => "incremental",
        }
    }

    /// Whether the record is a snapshot read (`op:"r"`, JDBC-formatted timestamps).
    pub fn is_snapshot(self) -> bool {
        self != SnapshotFlag::False
    }
}

/// The Debezium op of a row event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c`: an INSERT.
    Create,
    /// `u`: an UPDATE.
    Update,
    /// `d`: a DELETE.
    Delete,
    /// `r`: a snapshot read.
    Read,
}

impl Op {
    /// The op letter.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }

    /// The op of a change from `before` to `after`: a missing `before` is an insert (a read when
    /// `snapshot` is a snapshot marker), a missing `after` a delete. `None` when both are missing.
    pub fn of(has_before: bool, has_after: bool, snapshot: SnapshotFlag) -> Option<Op> {
        match (has_before, has_after) {
            (false, true) if snapshot.is_snapshot() => Some(Op::Read),
            (false, true) => Some(Op::Create),
            (true, true) => Some(Op::Update),
            (true, false) => Some(Op::Delete),
            (false, false) => None,
        }
    }
}

/// Where an event comes from: the connector's names and the binlog coordinates it carries.
///
/// The decoder orders events by `(file number, pos, row)`, the number being the digits that end
/// `file`; the embedded log uses `file = "lpm-log.000001"`, `pos` = record sequence number and
/// `row` = index within the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSource {
    /// `topic.prefix` (`source.name`), e.g. `lpm`.
    pub prefix: String,
    /// The database, e.g. `lost_persons_db`.
    pub db: String,
    /// `source.server_id` (0 for snapshot reads in real captures).
    pub server_id: u32,
    /// Binlog file name, e.g. `mysql-bin.000003`.
    pub file: String,
    /// Position of the rows event in `file`.
    pub pos: u64,
    /// Row index inside the rows event.
    pub row: u32,
    /// Commit time, UTC epoch milliseconds (`source.ts_ms`, also the envelope's and the Kafka
    /// record's timestamp).
    pub ts_ms: i64,
    /// The snapshot marker.
    pub snapshot: SnapshotFlag,
    /// `source.gtid` (`"<server uuid>:<n>"`), `None` without GTIDs.
    pub gtid: Option<String>,
    /// `source.thread`, the MySQL connection id; `None` for snapshot reads.
    pub thread: Option<u64>,
}

impl EventSource {
    /// A streamed-event source with no GTID and no thread.
    pub fn new(
        prefix: impl Into<String>,
        db: impl Into<String>,
        file: impl Into<String>,
        pos: u64,
        ts_ms: i64,
    ) -> EventSource {
        EventSource {
            prefix: prefix.into(),
            db: db.into(),
            server_id: 1,
            file: file.into(),
            pos,
            row: 0,
            ts_ms,
            snapshot: SnapshotFlag::False,
            gtid: None,
            thread: None,
        }
    }

    /// The same source at another row index.
    pub fn at_row(&self, row: u32) -> EventSource {
        EventSource {
            row,
            ..self.clone()
        }
    }

    /// The topic of `table`: `<prefix>.<db>.<table>`.
    pub fn topic(&self, table: Table) -> String {
        self.topic_of(table.name())
    }

    /// The topic of a table named `table` in `db`.
    pub fn topic_of(&self, table: &str) -> String {
        format!("{}.{}.{}", self.prefix, self.db, table)
    }
}

/// One Kafka record as Debezium would produce it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncodedEvent {
    /// `<prefix>.<db>.<table>`.
    pub topic: String,
    /// The key JSON text, `{"id":N}`.
    pub key: String,
    /// The value JSON text; `None` for a tombstone.
    pub value: Option<String>,
    /// The record timestamp, UTC epoch milliseconds (kcat's `ts`).
    pub ts_ms: i64,
}

impl EncodedEvent {
    /// Whether this is a tombstone (null value).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A row change that has no Debezium encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Neither a before nor an after image.
    #[error("a change needs a before or an after row")]
    NoRow,
    /// Before and after belong to different tables.
    #[error("before is a {before} row but after is a {after} row")]
    TableMismatch {
        /// The before image's table.
        before: Table,
        /// The after image's table.
        after: Table,
    },
    /// Debezium emits a primary-key change as delete + tombstone + create, never as one update.
    #[error("{table}: the key changes from {before} to {after}; encode a delete and a create")]
    KeyChanged {
        /// The table.
        table: Table,
        /// The old key.
        before: i64,
        /// The new key.
        after: i64,
    },
    /// A value MySQL would not store as is in its column (e.g. more than 6 decimals in DECIMAL(9,6)).
    #[error("{table}.{column}: {value} does not fit the column")]
    OutOfRange {
        /// The table.
        table: Table,
        /// The column.
        column: &'static str,
        /// The value as text.
        value: String,
    },
}

/// Encodes one row change: `before`/`after` as in Debezium (`None` before an insert or read,
/// `None` after a delete). The op follows from which images are present and from
/// `source.snapshot` (see [`Op::of`]). A delete's tombstone is not included; see
/// [`encode_change`] for the full record sequence.
pub fn encode(
    before: Option<&Row>,
    after: Option<&Row>,
    source: &EventSource,
) -> Result<EncodedEvent, EncodeError> {
    let op =
        Op::of(before.is_some(), after.is_some(), source.snapshot).ok_or(EncodeError::NoRow)?;
    let row = after.or(before).ok_or(EncodeError::NoRow)?;
    let (table, key) = (row.table(), row.key());
    if let (Some(b), Some(a)) = (before, after) {
        if b.table() != a.table() {
            return Err(EncodeError::TableMismatch {
                before: b.table(),
                after: a.table(),
            });
        }
        if b.key() != a.key() {
            return Err(EncodeError::KeyChanged {
                table,
                before: b.key(),
                after: a.key(),
            });
        }
    }
    let snapshot = source.snapshot.is_snapshot();
    let image = |r: Option<&Row>| match r {
        Some(r) => row_json(r, snapshot),
        None => Ok("null".to_string()),
    };
    let (before, after) = (image(before)?, image(after)?);
    Ok(EncodedEvent {
        topic: source.topic(table),
        key: key_json(key),
        value: Some(envelope(
            &before,
            &after,
            source,
            table.name(),
            op,
            source.ts_ms,
        )),
        ts_ms: source.ts_ms,
    })
}

/// The value of a row event: `before`/`after` are JSON images (`null` when absent), `ts_ms` the
/// envelope's processing time (Debezium's clock when it handled the event).
pub fn envelope(
    before: &str,
    after: &str,
    source: &EventSource,
    table: &str,
    op: Op,
    ts_ms: i64,
) -> String {
    let mut value = String::with_capacity(before.len() + after.len() + 512);
    let _ = write!(
        value,
        "{{\"before\":{before},\"after\":{after},\"source\":{},\"op\":\"{}\",\"ts_ms\":{},\
         \"ts_us\":{},\"ts_ns\":{},\"transaction\":null}}",
        source_json(source, table),
        op.code(),
        ts_ms,
        ts_ms.saturating_mul(1_000),
        ts_ms.saturating_mul(1_000_000),
    );
    value
}

/// The value of a truncate event (`op:"t"`): no `before`/`after`, and a null Kafka key.
pub fn truncate_envelope(source: &EventSource, table: &str, ts_ms: i64) -> String {
    format!(
        "{{\"source\":{},\"op\":\"t\",\"ts_ms\":{},\"ts_us\":{},\"ts_ns\":{},\"transaction\":null}}",
        source_json(source, table),
        ts_ms,
        ts_ms.saturating_mul(1_000),
        ts_ms.saturating_mul(1_000_000),
    )
}

/// The delete event of `before` followed by its tombstone, as Debezium writes them with the
/// default `tombstones.on.delete=true`.
pub fn encode_delete(before: &Row, source: &EventSource) -> Result<[EncodedEvent; 2], EncodeError> {
    let delete = encode(Some(before), None, source)?;
    let tombstone = EncodedEvent {
        topic: delete.topic.clone(),
        key: delete.key.clone(),
        value: None,
        ts_ms: delete.ts_ms,
    };
    Ok([delete, tombstone])
}

/// Every record Debezium writes for one row change: one event, plus the tombstone after a delete.
pub fn encode_change(
    before: Option<&Row>,
    after: Option<&Row>,
    source: &EventSource,
) -> Result<Vec<EncodedEvent>, EncodeError> {
    match (before, after) {
        (Some(b), None) => Ok(encode_delete(b, source)?.into()),
        _ => Ok(vec![encode(before, after, source)?]),
    }
}

/// The key JSON: `{"id":N}`.
pub fn key_json(id: i64) -> String {
    format!("{{\"id\":{id}}}")
}

fn source_json(s: &EventSource, table: &str) -> String {
    let gtid = s.gtid.as_deref().map_or_else(|| "null".into(), json_str);
    let thread = s.thread.map_or_else(|| "null".into(), |t| t.to_string());
    format!(
        "{{\"version\":\"{DEBEZIUM_VERSION}\",\"connector\":\"mysql\",\"name\":{},\"ts_ms\":{},\
         \"snapshot\":\"{}\",\"db\":{},\"sequence\":null,\"ts_us\":{},\"ts_ns\":{},\"table\":{},\
         \"server_id\":{},\"gtid\":{gtid},\"file\":{},\"pos\":{},\"row\":{},\"thread\":{thread},\
         \"query\":null}}",
        json_str(&s.prefix),
        s.ts_ms,
        s.snapshot.as_str(),
        json_str(&s.db),
        s.ts_ms.saturating_mul(1_000),
        s.ts_ms.saturating_mul(1_000_000),
        json_str(table),
        s.server_id,
        json_str(&s.file),
        s.pos,
        s.row,
    )
}

/// A JSON string literal (Jackson and serde_json escape the same characters: quotes,
/// backslashes and control characters; non-ASCII stays UTF-8).
pub fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn opt_str(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "null".into(), json_str)
}

fn opt_int(n: Option<i64>) -> String {
    n.map_or_else(|| "null".into(), |n| n.to_string())
}

/// `io.debezium.time.ZonedTimestamp` of a TIMESTAMP(3) instant: three fraction digits for
/// streamed events (the binlog path pads to the column's precision); for snapshot reads the
/// JDBC path's `ISO_OFFSET_DATE_TIME`, which drops trailing zeros (and the point when the
/// fraction is zero). Seconds are always printed.
pub fn zoned_timestamp(ms: i64, snapshot: bool) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    let digits = format!("{:03}", ms.rem_euclid(1000));
    let frac = if snapshot {
        digits.trim_end_matches('0')
    } else {
        &digits
    };
    Some(if frac.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{frac}Z")
    })
}

fn zts(table: Table, column: &'static str, ms: i64, snapshot: bool) -> Result<String, EncodeError> {
    zoned_timestamp(ms, snapshot)
        .map(|s| json_str(&s))
        .ok_or_else(|| EncodeError::OutOfRange {
            table,
            column,
            value: ms.to_string(),
        })
}

fn opt_zts(
    table: Table,
    column: &'static str,
    ms: Option<i64>,
    snapshot: bool,
) -> Result<String, EncodeError> {
    ms.map_or_else(|| Ok("null".into()), |ms| zts(table, column, ms, snapshot))
}

/// Kafka Connect `Decimal` bytes: the unscaled value as a minimal big-endian two's-complement
/// integer (Java's `BigInteger.toByteArray`: a sign byte only when the top bit would lie).
pub fn decimal_bytes(unscaled: i128) -> Vec<u8> {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// A DECIMAL(9,6) value in `decimal.handling.mode=precise`: base64 of [`decimal_bytes`] at the
/// column's scale. A value with more digits than the column holds is an error, not a rounding.
fn coordinate(
    table: Table,
    column: &'static str,
    d: Option<Decimal>,
) -> Result<String, EncodeError> {
    let Some(d) = d else {
        return Ok("null".into());
    };
    let out_of_range = || EncodeError::OutOfRange {
        table,
        column,
        value: d.to_string(),
    };
    let d = d.rescale(COORD_SCALE).ok_or_else(out_of_range)?;
    if d.unscaled.abs() >= COORD_LIMIT {
        return Err(out_of_range());
    }
    let text = base64::engine::general_purpose::STANDARD.encode(decimal_bytes(d.unscaled));
    Ok(json_str(&text))
}

/// The row image as JSON, columns in DDL order.
fn row_json(row: &Row, snapshot: bool) -> Result<String, EncodeError> {
    let t = row.table();
    let cols: Vec<(&str, String)> = match row {
        Row::Responsible(r) => vec![
            ("id", r.id.to_string()),
            ("full_name", json_str(&r.full_name)),
            ("agency", json_str(&r.agency)),
            ("phone", opt_str(&r.phone)),
            ("email", opt_str(&r.email)),
            ("active", i32::from(r.active).to_string()),
            ("version", r.version.to_string()),
        ],
        Row::Person(p) => vec![
            ("id", p.id.to_string()),
            ("full_name", json_str(&p.full_name)),
            ("age", opt_int(p.age)),
            ("gender", json_str(&p.gender)),
            ("last_seen_at", p.last_seen_at.to_string()),
            (
                "reported_at",
                zts(t, "reported_at", p.reported_at, snapshot)?,
            ),
            ("last_seen_place", json_str(&p.last_seen_place)),
            ("latitude", coordinate(t, "latitude", p.latitude)?),
            ("longitude", coordinate(t, "longitude", p.longitude)?),
            ("description", opt_str(&p.description)),
            ("reporter_name", opt_str(&p.reporter_name)),
            ("reporter_phone", opt_str(&p.reporter_phone)),
            ("version", p.version.to_string()),
        ],
        Row::Case(c) => vec![
            ("id", c.id.to_string()),
            ("person_id", c.person_id.to_string()),
            ("status", json_str(c.status.as_str())),
            ("priority", json_str(c.priority.as_str())),
            ("responsible_id", opt_int(c.responsible_id)),
            ("opened_at", zts(t, "opened_at", c.opened_at, snapshot)?),
            ("closed_at", opt_zts(t, "closed_at", c.closed_at, snapshot)?),
            ("version", c.version.to_string()),
            ("public", i32::from(c.public).to_string()),
            ("public_id", opt_str(&c.public_id)),
        ],
        Row::Action(a) => vec![
            ("id", a.id.to_string()),
            ("case_id", a.case_id.to_string()),
            ("action_type", json_str(&a.action_type)),
            ("notes", opt_str(&a.notes)),
            ("responsible_id", opt_int(a.responsible_id)),
            ("responsible_name", opt_str(&a.responsible_name)),
            ("created_at", zts(t, "created_at", a.created_at, snapshot)?),
        ],
        Row::Assignment(h) => vec![
            ("id", h.id.to_string()),
            ("case_id", h.case_id.to_string()),
            ("responsible_id", h.responsible_id.to_string()),
            (
                "assigned_at",
                zts(t, "assigned_at", h.assigned_at, snapshot)?,
            ),
            (
                "unassigned_at",
                opt_zts(t, "unassigned_at", h.unassigned_at, snapshot)?,
            ),
        ],
        Row::Sighting(s) => vec![
            ("id", s.id.to_string()),
            ("case_id", s.case_id.to_string()),
            ("seen_at", s.seen_at.to_string()),
            ("place", json_str(&s.place)),
            ("latitude", coordinate(t, "latitude", s.latitude)?),
            ("longitude", coordinate(t, "longitude", s.longitude)?),
            ("description", opt_str(&s.description)),
            ("reporter_name", opt_str(&s.reporter_name)),
            ("reporter_phone", opt_str(&s.reporter_phone)),
            ("source", json_str(s.source.as_str())),
            ("created_at", zts(t, "created_at", s.created_at, snapshot)?),
            ("version", s.version.to_string()),
        ],
    };
    let mut out = String::with_capacity(256);
    out.push('{');
    for (i, (name, value)) in cols.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":{value}");
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lpm_engine::change::{Change, ChangeKind, Coords};
    use lpm_engine::model::{
        Action, Assignment, Case, Person, Priority, Responsible, Sighting, SightingSource, Status,
    };
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    use serde::Deserializer as _;

    use super::*;
    use crate::catalog::Catalog;
    use crate::debezium::{rows, Decoded, Decoder};

    fn dec(unscaled: i128) -> Option<Decimal> {
        Some(Decimal { unscaled, scale: 6 })
    }

    /// Edge rows of every table: NULLs, negative decimals, accents, ms fractions 0/100/123.
    fn rows() -> Vec<Row> {
        let t0 = 1_710_054_900_000; // 2024-03-10T07:15:00.000Z
        vec![
            Row::Person(Arc::new(Person {
                id: 1,
                full_name: "María José Peña Núñez".into(),
                age: Some(7),
                gender: "female".into(),
                last_seen_at: t0 - 5 * 3_600_000 + 123,
                reported_at: t0 + 123,
                last_seen_place: "Parque El Ejido, \"entrada\" norte\nQuito".into(),
                latitude: dec(-180_653),
                longitude: dec(-78_467_834),
                description: Some("Lleva mochila azul; habla español y kichwa ñ á é".into()),
                reporter_name: Some("José Álvarez".into()),
                reporter_phone: Some("+593 99 123 4567".into()),
                version: 3,
            })),
            Row::Person(Arc::new(Person {
                id: 9_007_199_254_740_993,
                full_name: "Ñandú".into(),
                age: None,
                gender: "".into(),
                last_seen_at: -86_400_000,
                reported_at: t0 + 100,
                last_seen_place: "".into(),
                latitude: None,
                longitude: dec(0),
                description: None,
                reporter_name: None,
                reporter_phone: None,
                version: 1,
            })),
            Row::Person(Arc::new(Person {
                id: 3,
                full_name: "Edge".into(),
                age: Some(-1),
                gender: "other".into(),
                last_seen_at: 0,
                reported_at: t0,
                last_seen_place: "x".into(),
                latitude: dec(999_999_999),
                longitude: dec(-999_999_999),
                description: Some("\u{1}\t\\".into()),
                reporter_name: None,
                reporter_phone: None,
                version: 2_147_483_647,
            })),
            Row::Case(Arc::new(Case {
                id: 10,
                person_id: 1,
                status: Status::InProgress,
                priority: Priority::Critical,
                responsible_id: Some(4),
                opened_at: t0 + 100,
                closed_at: None,
                version: 2,
                public: false,
                public_id: None,
            })),
            Row::Case(Arc::new(Case {
                id: 11,
                person_id: 404,
                status: Status::Other("archivado".into()),
                priority: Priority::Other("urgentísimo".into()),
                responsible_id: None,
                opened_at: t0,
                closed_at: Some(t0 + 86_400_123),
                version: 1,
                public: true,
                public_id: Some("q3VnpP0eTt2oKx9Lh1mWbA".into()),
            })),
            Row::Action(Arc::new(Action {
                id: 20,
                case_id: 10,
                action_type: "note".into(),
                notes: Some("Búsqueda en la quebrada; sin novedad.".into()),
                responsible_id: Some(4),
                responsible_name: Some("Sgto. Ángel Muñoz".into()),
                created_at: t0 + 123,
            })),
            Row::Action(Arc::new(Action {
                id: 21,
                case_id: 10,
                action_type: "call".into(),
                notes: None,
                responsible_id: None,
                responsible_name: None,
                created_at: t0,
            })),
            Row::Assignment(Arc::new(Assignment {
                id: 30,
                case_id: 10,
                responsible_id: 4,
                assigned_at: t0 + 100,
                unassigned_at: Some(t0 + 7_200_000),
            })),
            Row::Assignment(Arc::new(Assignment {
                id: 31,
                case_id: 10,
                responsible_id: 5,
                assigned_at: t0 + 7_200_000,
                unassigned_at: None,
            })),
            Row::Responsible(Arc::new(Responsible {
                id: 4,
                full_name: "Ángel Muñoz".into(),
                agency: "Policía Nacional".into(),
                phone: Some("911".into()),
                email: Some("angel@example.ec".into()),
                active: true,
                version: 5,
            })),
            Row::Responsible(Arc::new(Responsible {
                id: 5,
                full_name: "Inés".into(),
                agency: "ECU 911".into(),
                phone: None,
                email: None,
                active: false,
                version: 1,
            })),
            Row::Sighting(Arc::new(Sighting {
                id: 40,
                case_id: 10,
                seen_at: t0 - 3_600_000 + 123,
                place: "Terminal Quitumbe, andén \"3\"".into(),
                latitude: dec(-290_000),
                longitude: dec(-78_550_000),
                description: Some("Con chompa roja; caminaba sola".into()),
                reporter_name: Some("Rosa Añazco".into()),
                reporter_phone: Some("+593 98 765 4321".into()),
                source: SightingSource::Public,
                created_at: t0 + 100,
                version: 2,
            })),
            Row::Sighting(Arc::new(Sighting {
                id: 41,
                case_id: 11,
                seen_at: 0,
                place: "x".into(),
                source: SightingSource::Responder,
                created_at: t0,
                version: 1,
                ..Sighting::default()
            })),
        ]
    }

    fn source(pos: u64, row: u32) -> EventSource {
        EventSource {
            row,
            ..EventSource::new(
                "lpm",
                "lost_persons_db",
                "lpm-log.000001",
                pos,
                1_710_054_900_123,
            )
        }
    }

    fn decode(decoder: &mut Decoder, e: &EncodedEvent, seq: u64) -> Change {
        let decoded = decoder
            .decode(&e.topic, Some(&e.key), e.value.as_deref(), seq)
            .unwrap_or_else(|err| panic!("decoding {e:?}: {err}"));
        let Decoded::Event(event) = decoded else {
            panic!("skipped: {e:?}")
        };
        rows::to_change(event)
            .expect("maps to a change")
            .expect("an lpm table")
    }

    fn coords(pos: u64, row: u32) -> Option<Coords> {
        Some(Coords {
            file: 1,
            pos,
            row,
            streamed: true,
        })
    }

    #[test]
    fn every_table_round_trips_through_the_decoder() {
        let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
        for (i, row) in rows().iter().enumerate() {
            let (pos, r) = (100 + i as u64, i as u32 % 3);
            let src = source(pos, r);
            // insert
            let e = encode(None, Some(row), &src).expect("encodes");
            assert_eq!(e.topic, format!("lpm.lost_persons_db.{}", row.table()));
            assert_eq!(e.key, format!("{{\"id\":{}}}", row.key()));
            let Change::Row(c) = decode(&mut decoder, &e, 1) else {
                panic!("not a row change")
            };
            assert_eq!(c.kind, ChangeKind::Upsert(row.clone()), "{e:?}");
            assert_eq!((c.table, c.key), (row.table(), row.key()));
            assert_eq!(c.position.coords, coords(pos, r));
            // update (before = after is legal: only excluded columns changed)
            let e = encode(Some(row), Some(row), &src.at_row(r + 1)).expect("encodes");
            let Change::Row(c) = decode(&mut decoder, &e, 2) else {
                panic!("not a row change")
            };
            assert_eq!(c.kind, ChangeKind::Upsert(row.clone()));
            assert_eq!(c.position.coords, coords(pos, r + 1));
            // delete, then its tombstone
            let [d, t] = encode_delete(row, &src).expect("encodes");
            let Change::Row(c) = decode(&mut decoder, &d, 3) else {
                panic!("not a row change")
            };
            assert_eq!((c.kind, c.key), (ChangeKind::Delete, row.key()));
            assert_eq!(c.position.coords, coords(pos, r));
            assert!(t.is_tombstone() && t.key == d.key && t.topic == d.topic);
            let Change::Row(c) = decode(&mut decoder, &t, 4) else {
                panic!("not a row change")
            };
            assert_eq!((c.kind, c.key), (ChangeKind::Tombstone, row.key()));
        }
    }

    #[test]
    fn snapshot_reads_round_trip_with_jdbc_timestamps() {
        let mut decoder = Decoder::new(Arc::new(Catalog::lpm()));
        for row in rows() {
            let src = EventSource {
                snapshot: SnapshotFlag::True,
                server_id: 0,
                ..source(7, 0)
            };
            let e = encode(None, Some(&row), &src).expect("encodes");
            let value = e.value.as_deref().expect("a value");
            assert!(value.contains("\"op\":\"r\"") && value.contains("\"snapshot\":\"true\""));
            let Change::Row(c) = decode(&mut decoder, &e, 1) else {
                panic!("not a row change")
            };
            assert_eq!(c.kind, ChangeKind::Upsert(row.clone()));
            assert!(c.snapshot.is_snapshot());
            assert_eq!(
                c.position.coords.map(|c| c.streamed),
                Some(false),
                "a read is not streamed"
            );
        }
    }

    #[test]
    fn column_encodings_match_debezium_defaults() {
        let rows = rows();
        let e = encode(None, Some(&rows[0]), &source(1, 0)).expect("encodes");
        let v: serde_json::Value =
            serde_json::from_str(e.value.as_deref().expect("a value")).expect("json");
        let after = &v["after"];
        assert_eq!(after["latitude"], "/T5T", "-0.180653 -> fd 3e 53");
        assert_eq!(after["reported_at"], "2024-03-10T07:15:00.123Z");
        assert_eq!(
            after["last_seen_at"],
            1_710_054_900_000i64 - 5 * 3_600_000 + 123
        );
        assert_eq!(after["age"], 7);
        assert_eq!(after["full_name"], "María José Peña Núñez");
        assert!(
            e.value.as_deref().expect("a value").contains("Peña"),
            "non-ASCII stays UTF-8"
        );
        assert_eq!(v["before"], serde_json::Value::Null);
        assert_eq!(v["op"], "c");
        assert_eq!(v["transaction"], serde_json::Value::Null);
        assert_eq!(v["ts_ms"], 1_710_054_900_123i64);
        assert_eq!(v["ts_us"], 1_710_054_900_123_000i64);
        let e = encode(None, Some(&rows[9]), &source(1, 0)).expect("encodes");
        let v: serde_json::Value =
            serde_json::from_str(e.value.as_deref().expect("a value")).expect("json");
        assert_eq!(
            v["after"]["active"], 1,
            "TINYINT(1) is an int, not a boolean"
        );
        // streamed ZonedTimestamps keep 3 digits; snapshot reads drop trailing zeros
        let t0 = 1_710_054_900_000;
        assert_eq!(
            zoned_timestamp(t0, false).as_deref(),
            Some("2024-03-10T07:15:00.000Z")
        );
        assert_eq!(
            zoned_timestamp(t0 + 100, false).as_deref(),
            Some("2024-03-10T07:15:00.100Z")
        );
        assert_eq!(
            zoned_timestamp(t0, true).as_deref(),
            Some("2024-03-10T07:15:00Z")
        );
        assert_eq!(
            zoned_timestamp(t0 + 100, true).as_deref(),
            Some("2024-03-10T07:15:00.1Z")
        );
        assert_eq!(
            zoned_timestamp(t0 + 120, true).as_deref(),
            Some("2024-03-10T07:15:00.12Z")
        );
        assert_eq!(
            zoned_timestamp(-1, false).as_deref(),
            Some("1969-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        let b64 = |u: i128| base64::engine::general_purpose::STANDARD.encode(decimal_bytes(u));
        assert_eq!(b64(-180_653), "/T5T");
        assert_eq!(b64(1_234_567), "EtaH");
        assert_eq!(b64(346), "AVo=");
        assert_eq!(decimal_bytes(0), vec![0]);
        assert_eq!(decimal_bytes(127), vec![0x7f]);
        assert_eq!(decimal_bytes(128), vec![0x00, 0x80]);
        assert_eq!(decimal_bytes(-128), vec![0x80]);
        assert_eq!(decimal_bytes(-129), vec![0xff, 0x7f]);
        assert_eq!(decimal_bytes(-1), vec![0xff]);
        for u in [
            -999_999_999i128,
            -65_536,
            -1,
            0,
            1,
            255,
            65_535,
            999_999_999,
        ] {
            let back = crate::debezium::value::decimal_from_bytes(&decimal_bytes(u), 6);
            assert_eq!(back.map(|d| d.unscaled), Some(u));
        }
    }

    #[test]
    fn decimals_are_rescaled_to_the_column_or_refused() {
        let person = |lat: Decimal| {
            let Row::Person(p) = &rows()[0] else {
                unreachable!()
            };
            Row::Person(Arc::new(Person {
                latitude: Some(lat),
                ..Person::clone(p)
            }))
        };
        // -0.18 at scale 2 is stored as -0.180000
        let e = encode(
            None,
            Some(&person(Decimal {
                unscaled: -18,
                scale: 2,
            })),
            &source(1, 0),
        )
        .expect("encodes");
        let v: serde_json::Value =
            serde_json::from_str(e.value.as_deref().expect("a value")).expect("json");
        let expected = base64::engine::general_purpose::STANDARD.encode(decimal_bytes(-180_000));
        assert_eq!(v["after"]["latitude"], expected.as_str());
        for bad in [
            Decimal {
                unscaled: 1,
                scale: 7,
            },
            Decimal {
                unscaled: 1_000_000_000,
                scale: 6,
            },
        ] {
            assert!(matches!(
                encode(None, Some(&person(bad)), &source(1, 0)),
                Err(EncodeError::OutOfRange {
                    column: "latitude",
                    ..
                })
            ));
        }
    }

    #[test]
    fn invalid_changes_are_errors() {
        let rows = rows();
        assert_eq!(encode(None, None, &source(1, 0)), Err(EncodeError::NoRow));
        assert!(matches!(
            encode(Some(&rows[0]), Some(&rows[3]), &source(1, 0)),
            Err(EncodeError::TableMismatch { .. })
        ));
        assert!(matches!(
            encode(Some(&rows[0]), Some(&rows[1]), &source(1, 0)),
            Err(EncodeError::KeyChanged { .. })
        ));
        let all = encode_change(Some(&rows[0]), None, &source(1, 0)).expect("encodes");
        assert_eq!(all.len(), 2);
        assert!(all[1].is_tombstone());
        assert_eq!(
            encode_change(None, Some(&rows[0]), &source(1, 0))
                .expect("encodes")
                .len(),
            1
        );
    }

    /// The keys of a JSON object, in text order.
    fn keys(json: &str) -> Vec<String> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = vec![];
                while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    out.push(k);
                }
                Ok(out)
            }
        }
        serde_json::Deserializer::from_str(json)
            .deserialize_map(Keys)
            .expect("an object")
    }

    fn kind(v: &serde_json::Value) -> &'static str {
        match v {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "bool",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Array(_) => "array",
            serde_json::Value::Object(_) => "object",
        }
    }

    #[test]
    fn source_block_matches_a_real_mysql_capture() {
        // Debezium 3.0.1 MySQL connector, schemas off: the same source block as 2.6/2.7.
        let fixture = include_str!(
            "../../tests/fixtures/debezium/debezium-examples/customers-dbz3.0-engine-schema-exclude.jsonl"
        );
        let streamed = fixture
            .lines()
            .find(|l| l.contains("\"op\":\"u\""))
            .expect("the fixture has an update");
        let real: serde_json::Value = serde_json::from_str(streamed).expect("json");
        let src = EventSource {
            thread: Some(102),
            server_id: 223_344,
            ..source(1041, 0)
        };
        let rows = rows();
        let ours = encode(Some(&rows[0]), Some(&rows[0]), &src).expect("encodes");
        let ours_text = ours.value.as_deref().expect("a value");
        let ours: serde_json::Value = serde_json::from_str(ours_text).expect("json");
        // field names, in order (serde_json's map is sorted, so read the order from the text)
        let source_text = |text: &str| {
            let at = text.find("\"source\":").expect("a source") + "\"source\":".len();
            let mut de =
                serde_json::Deserializer::from_str(&text[at..]).into_iter::<serde_json::Value>();
            let v = de.next().expect("a value").expect("json");
            let end = at + de.byte_offset();
            assert!(v.is_object());
            text[at..end].to_string()
        };
        assert_eq!(keys(&source_text(ours_text)), keys(&source_text(streamed)));
        // each field has the same JSON type
        for (k, v) in real["source"].as_object().expect("object") {
            assert_eq!(kind(&ours["source"][k]), kind(v), "source.{k}");
        }
        assert_eq!(ours["source"]["connector"], "mysql");
        assert_eq!(ours["source"]["snapshot"], "false");
        assert_eq!(ours["source"]["file"], "lpm-log.000001");
        // the envelope has the same fields (3.0 moved `transaction` before `op`; 2.7 has it last)
        let mut a = keys(ours_text);
        let mut b = keys(streamed);
        assert_eq!(
            a,
            [
                "before",
                "after",
                "source",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns",
                "transaction"
            ]
        );
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for k in ["op", "ts_ms", "ts_us", "ts_ns", "transaction"] {
            assert_eq!(kind(&ours[k]), kind(&real[k]), "{k}");
        }
    }

    #[test]
    fn columns_follow_the_catalog_order() {
        let catalog = Catalog::lpm();
        for row in rows() {
            let table = catalog.table(row.table().name()).expect("catalogued");
            let json = row_json(&row, false).expect("encodes");
            let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            assert_eq!(keys(&json), names, "{}", row.table());
        }
    }
}
