//! Every envelope variant -> one generic [`Event`]: JsonConverter with and without schemas,
//! full envelopes and ExtractNewRecordState-flattened rows (`__op`, `__deleted`), tombstones
//! (also the old `{"schema":null,"payload":null}`), ops c/r/u/d/t, snapshot markers.
//!
//! The envelope kind is decided per topic by its first event; a later event of the other kind is
//! an error, never a silent reinterpretation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use lpm_engine::change::{Coords, Position, SnapshotMark};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::schema::{self, SchemaCache, SchemaInfo};
use super::value::{self, Value};
use crate::catalog::{Catalog, TableDef};
use crate::error::DecodeError;

/// What an event does.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// c / r / u: the row is now `after`.
    Upsert(Vec<Value>),
    /// d, or `__deleted: "true"`.
    Delete,
    /// A null value for the key.
    Tombstone,
    /// t: the table is emptied.
    Truncate,
}

/// One decoded event of a catalogued table, columns in catalog order.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The table definition.
    pub table: Arc<TableDef>,
    /// The primary key (`None` only for truncates).
    pub key: Option<i64>,
    /// What happens.
    pub op: Op,
    /// Source position.
    pub position: Position,
    /// Snapshot marker.
    pub snapshot: SnapshotMark,
    /// The source op as counted in metrics: `c`, `r`, `u`, `d`, `t` or `tombstone`.
    pub code: &'static str,
}

/// The static label of a Debezium op text (`u` for anything else that upserts).
fn op_code(op: &str) -> &'static str {
    match op {
        "c" => "c",
        "r" => "r",
        "d" => "d",
        "t" => "t",
        _ => "u",
    }
}

/// Records that are valid but carry no row change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A topic of a table outside the catalog.
    UnknownTable,
    /// A schema-change topic event (DDL).
    SchemaChange,
    /// A transaction BEGIN/END marker.
    Transaction,
    /// An event kind we do not use (heartbeat, `op: m` message).
    Other,
}

impl Skip {
    /// A stable label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::UnknownTable => "unknown_table",
            Skip::SchemaChange => "schema_change",
            Skip::Transaction => "transaction_marker",
            Skip::Other => "other",
        }
    }
}

/// The outcome of decoding one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A row event.
    Event(Event),
    /// Nothing to apply.
    Skipped(Skip),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Envelope,
    Flattened,
}

/// A value already split by a caller that recognised a cached schema prefix (see `dump.rs`).
pub struct KnownSchema<'a> {
    /// The schema.
    pub schema: Arc<SchemaInfo>,
    /// The payload JSON text (may be followed by the wrapper's closing brace).
    pub payload: &'a str,
}

/// Decodes records; one per worker (it caches schemas and per-topic kinds).
pub struct Decoder {
    catalog: Arc<Catalog>,
    tables: HashMap<String, Arc<TableDef>>,
    schemas: SchemaCache,
    kinds: HashMap<String, Kind>,
}

#[derive(Deserialize)]
struct SourceRaw<'a> {
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
    #[serde(default)]
    pos: Option<i64>,
    #[serde(default)]
    row: Option<i64>,
    #[serde(borrow, default)]
    snapshot: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EnvelopeRaw<'a> {
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<SourceRaw<'a>>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ddl: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
}

/// A JSON object as `(field, raw value)` pairs, borrowed from the text.
struct RawRow<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawRow<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRow<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(16);
                while let Some((k, raw)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    v.push((k, raw));
                }
                Ok(RawRow(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawRow<'_> {
    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

fn json_err(part: &'static str, e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        part,
        detail: e.to_string(),
    }
}

fn str_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

fn snapshot_mark(raw: Option<&RawValue>, op: &str) -> SnapshotMark {
    let text = raw.map(|r| r.get()).unwrap_or("null");
    let mark = match text {
        "null" | "false" | "\"false\"" => SnapshotMark::Streamed,
        "true" | "\"true\"" => SnapshotMark::Middle,
        "\"first\"" => SnapshotMark::First,
        "\"first_in_data_collection\"" => SnapshotMark::FirstInTable,
        "\"last_in_data_collection\"" => SnapshotMark::LastInTable,
        "\"last\"" => SnapshotMark::Last,
        "\"incremental\"" => SnapshotMark::Incremental,
        _ => SnapshotMark::Middle,
    };
    // `r` is a snapshot read even when the marker is missing
    if mark == SnapshotMark::Streamed && op == "r" {
        SnapshotMark::Middle
    } else {
        mark
    }
}

fn coords(
    file: Option<&str>,
    pos: Option<i64>,
    row: Option<i64>,
    snapshot: SnapshotMark,
) -> Option<Coords> {
    let file = file?;
    let digits = file.len() - file.bytes().rev().take_while(u8::is_ascii_digit).count();
    let number = file[digits..].parse::<u32>().ok()?;
    Some(Coords {
        file: number,
        pos: u64::try_from(pos?).ok()?,
        row: u32::try_from(row.unwrap_or(0)).ok()?,
        streamed: !snapshot.is_snapshot(),
    })
}

/// The table name of a topic `<prefix>.<db>.<table>`.
pub fn table_of_topic(topic: &str) -> &str {
    topic.rsplit('.').next().unwrap_or(topic)
}

impl Decoder {
    /// A decoder over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Decoder {
        Decoder {
            catalog,
            tables: HashMap::new(),
            schemas: SchemaCache::default(),
            kinds: HashMap::new(),
        }
    }

    /// The schema cache, for callers that split schema prefixes themselves.
    pub fn schemas(&mut self) -> &mut SchemaCache {
        &mut self.schemas
    }

    fn table(&mut self, name: &str) -> Option<Arc<TableDef>> {
        if let Some(t) = self.tables.get(name) {
            return Some(t.clone());
        }
        let t = Arc::new(self.catalog.table(name)?.clone());
        self.tables.insert(name.to_string(), t.clone());
        Some(t)
    }

    /// Decodes one record: `key` and `value` are the JSON texts (`None` for a null value).
    pub fn decode(
        &mut self,
        topic: &str,
        key: Option<&str>,
        value: Option<&str>,
        seq: u64,
    ) -> Result<Decoded, DecodeError> {
        let Some(value) = value else {
            return self.tombstone(topic, key, seq);
        };
        let bytes = value.as_bytes();
        if bytes.starts_with(b"{\"schema\":") || bytes.starts_with(b"{\"payload\":") {
            if let Some((len, schema)) = self.schemas.lookup(bytes) {
                return self.decode_payload(topic, key, Some(&schema), &value[len..], seq);
            }
            return self.decode_wrapped(topic, key, value, seq);
        }
        self.decode_payload(topic, key, None, value, seq)
    }

    /// Decodes a payload whose schema the caller already recognised.
    pub fn decode_known(
        &mut self,
        topic: &str,
        key: Option<&str>,
        known: KnownSchema<'_>,
        seq: u64,
    ) -> Result<Decoded, DecodeError> {
        self.decode_payload(topic, key, Some(&known.schema), known.payload, seq)
    }

    /// `{"schema": ..., "payload": ...}` seen for the first time: parse, and remember the prefix.
    fn decode_wrapped(
        &mut self,
        topic: &str,
        key: Option<&str>,
        value: &str,
        seq: u64,
    ) -> Result<Decoded, DecodeError> {
        #[derive(Deserialize)]
        struct Wrapped<'a> {
            #[serde(borrow)]
            schema: Option<&'a RawValue>,
            #[serde(borrow)]
            payload: Option<&'a RawValue>,
        }
        let w: Wrapped<'_> = serde_json::from_str(value).map_err(|e| json_err("value", e))?;
        let Some(payload) = w.payload else {
            // the pre-KAFKA-3832 tombstone: {"schema":null,"payload":null}
            return self.tombstone(topic, key, seq);
        };
        let schema = w.schema.and_then(|s| schema::parse(s.get())).map(Arc::new);
        if let (Some(raw_schema), Some(info)) = (w.schema, &schema) {
            let prefix = format!("{{\"schema\":{},\"payload\":", raw_schema.get());
            if value.starts_with(&prefix) {
                self.schemas.insert(prefix.as_bytes(), info.clone());
            }
        }
        self.decode_payload(topic, key, schema.as_deref(), payload.get(), seq)
    }

    fn tombstone(
        &mut self,
        topic: &str,
        key: Option<&str>,
        seq: u64,
    ) -> Result<Decoded, DecodeError> {
        let Some(table) = self.table(table_of_topic(topic)) else {
            return Ok(Decoded::Skipped(Skip::UnknownTable));
        };
        let key = key.ok_or_else(|| DecodeError::MissingKey("tombstone without a key".into()))?;
        let id = parse_key(key, &table)?;
        Ok(Decoded::Event(Event {
            table,
            key: Some(id),
            op: Op::Tombstone,
            position: Position { coords: None, seq },
            snapshot: SnapshotMark::Streamed,
            code: "tombstone",
        }))
    }

    fn decode_payload(
        &mut self,
        topic: &str,
        key: Option<&str>,
        schema: Option<&SchemaInfo>,
        payload: &str,
        seq: u64,
    ) -> Result<Decoded, DecodeError> {
        // `payload` may be followed by the wrapper's closing brace: read one value only.
        let mut de = serde_json::Deserializer::from_str(payload);
        let Some(table) = self.table(table_of_topic(topic)) else {
            let env = EnvelopeRaw::deserialize(&mut de).map_err(|e| json_err("value", e))?;
            return Ok(Decoded::Skipped(if env.ddl.is_some() {
                Skip::SchemaChange
            } else if env.status.is_some() {
                Skip::Transaction
            } else {
                Skip::UnknownTable
            }));
        };
        // The payload decides envelope vs flattened (a schema can be stale, fixture flink-cdc);
        // the schema only supplies field types.
        let env = EnvelopeRaw::deserialize(&mut de).map_err(|e| json_err("value", e))?;
        let is_envelope = env.op.is_some()
            && (env.after.is_some() || env.before.is_some() || env.source.is_some());
        let Some(op) = env.op.as_deref().filter(|_| is_envelope) else {
            let mut de = serde_json::Deserializer::from_str(payload);
            let row = RawRow::deserialize(&mut de).map_err(|e| json_err("value", e))?;
            self.check_kind(topic, Kind::Flattened)?;
            return flattened(table, key, row, schema, seq).map(Decoded::Event);
        };
        self.check_kind(topic, Kind::Envelope)?;
        let (file, pos, row, snap_raw) = match &env.source {
            Some(s) => (s.file.as_deref(), s.pos, s.row, s.snapshot),
            None => (None, None, None, None),
        };
        let snapshot = snapshot_mark(snap_raw, op);
        let position = Position {
            coords: coords(file, pos, row, snapshot),
            seq,
        };
        let fields = schema.map(|s| &s.fields);
        let code = op_code(op);
        let (op, image) = match op {
            "c" | "r" | "u" => {
                let after = env
                    .after
                    .ok_or_else(|| DecodeError::MissingAfter(op.into()))?;
                (Op::Upsert(decode_row(&table, after, fields)?), Some(after))
            }
            "d" => (Op::Delete, env.before),
            "t" => {
                return Ok(Decoded::Event(Event {
                    table,
                    key: None,
                    op: Op::Truncate,
                    position,
                    snapshot,
                    code,
                }))
            }
            "m" => return Ok(Decoded::Skipped(Skip::Other)),
            other => return Err(DecodeError::UnknownOp(other.into())),
        };
        let id = match key {
            Some(k) if k != "null" => parse_key(k, &table)?,
            _ => key_from_image(image, &table)?,
        };
        Ok(Decoded::Event(Event {
            table,
            key: Some(id),
            op,
            position,
            snapshot,
            code,
        }))
    }

    fn check_kind(&mut self, topic: &str, kind: Kind) -> Result<(), DecodeError> {
        match self.kinds.get(topic) {
            Some(k) if *k != kind => Err(DecodeError::EnvelopeMismatch(topic.into())),
            Some(_) => Ok(()),
            None => {
                self.kinds.insert(topic.to_string(), kind);
                Ok(())
            }
        }
    }
}

fn flattened(
    table: Arc<TableDef>,
    key: Option<&str>,
    row: RawRow<'_>,
    schema: Option<&SchemaInfo>,
    seq: u64,
) -> Result<Event, DecodeError> {
    let deleted = row.get("__deleted").and_then(str_of);
    let op = row.get("__op").and_then(str_of);
    if deleted.is_none() && op.is_none() {
        return Err(DecodeError::FlattenedWithoutDeletes);
    }
    let is_delete = deleted.as_deref() == Some("true") || op.as_deref() == Some("d");
    let snap_raw = row
        .get("__source_snapshot")
        .or_else(|| row.get("__snapshot"));
    let snapshot = snapshot_mark(snap_raw, op.as_deref().unwrap_or(""));
    let int = |name: &str| row.get(name).and_then(|r| r.get().parse::<i64>().ok());
    let file = row.get("__source_file").and_then(str_of);
    let position = Position {
        coords: coords(
            file.as_deref(),
            int("__source_pos"),
            int("__source_row"),
            snapshot,
        ),
        seq,
    };
    let id = match key {
        Some(k) if k != "null" => parse_key(k, &table)?,
        _ => row
            .get(&table.primary_key)
            .and_then(|r| pk_value(r, &table))
            .ok_or_else(|| DecodeError::MissingKey("no key and no primary-key column".into()))?,
    };
    let code = if is_delete {
        "d"
    } else {
        op_code(op.as_deref().unwrap_or("u"))
    };
    let op = if is_delete {
        Op::Delete
    } else {
        Op::Upsert(columns(&table, &row, schema.map(|s| &s.fields))?)
    };
    Ok(Event {
        table,
        key: Some(id),
        op,
        position,
        snapshot,
        code,
    })
}

/// The primary key from a key JSON text: `{"id":1}`, `{"schema":..,"payload":{"id":1}}`, or a bare number.
pub fn parse_key(key: &str, table: &TableDef) -> Result<i64, DecodeError> {
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        payload: &'a RawValue,
    }
    let text = if key.starts_with("{\"schema\":") {
        serde_json::from_str::<Wrapped<'_>>(key)
            .map_err(|e| json_err("key", e))?
            .payload
            .get()
    } else {
        key
    };
    if let Ok(n) = text.trim().parse::<i64>() {
        return Ok(n);
    }
    let row: RawRow<'_> = serde_json::from_str(text).map_err(|e| json_err("key", e))?;
    let raw = row
        .get(&table.primary_key)
        .or_else(|| (row.0.len() == 1).then(|| row.0[0].1));
    raw.and_then(|r| r.get().parse::<i64>().ok())
        .ok_or_else(|| {
            DecodeError::MissingKey(format!(
                "key {key:.80} has no integer {}",
                table.primary_key
            ))
        })
}

/// A primary-key value as `i64`, decoded by the key column's type.
fn pk_value(raw: &RawValue, table: &TableDef) -> Option<i64> {
    if let Ok(n) = raw.get().parse::<i64>() {
        return Some(n);
    }
    let ty = table.columns.get(table.column(&table.primary_key)?)?.ty;
    match value::decode(raw, ty, None).ok()? {
        Value::Int(n) => Some(n),
        Value::Decimal(d) if d.scale == 0 => i64::try_from(d.unscaled).ok(),
        _ => None,
    }
}

fn key_from_image(image: Option<&RawValue>, table: &TableDef) -> Result<i64, DecodeError> {
    let image = image.ok_or_else(|| DecodeError::MissingKey("no key and no row image".into()))?;
    let row: RawRow<'_> = serde_json::from_str(image.get()).map_err(|e| json_err("value", e))?;
    row.get(&table.primary_key)
        .and_then(|r| pk_value(r, table))
        .ok_or_else(|| DecodeError::MissingKey(format!("row has no integer {}", table.primary_key)))
}

fn decode_row(
    table: &TableDef,
    raw: &RawValue,
    fields: Option<&HashMap<String, value::FieldSchema>>,
) -> Result<Vec<Value>, DecodeError> {
    let row: RawRow<'_> = serde_json::from_str(raw.get()).map_err(|e| json_err("value", e))?;
    columns(table, &row, fields)
}

fn columns(
    table: &TableDef,
    row: &RawRow<'_>,
    fields: Option<&HashMap<String, value::FieldSchema>>,
) -> Result<Vec<Value>, DecodeError> {
    let mut out = Vec::with_capacity(table.columns.len());
    for col in &table.columns {
        let v = match row.get(&col.name) {
            Some(raw) => value::decode(raw, col.ty, fields.and_then(|f| f.get(&col.name)))
                .map_err(|detail| DecodeError::BadValue {
                    column: col.name.clone(),
                    detail,
                })?,
            None => Value::Null,
        };
        if v == Value::Null && !col.nullable {
            return Err(DecodeError::NullInNotNull {
                column: col.name.clone(),
            });
        }
        out.push(v);
    }
    Ok(out)
}
