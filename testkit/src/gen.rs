//! A deterministic generator of Debezium 2.x MySQL change streams, written as a `kcat -C -J`
//! topic dump (one JSON object per line: topic, partition, offset, tstype, ts, broker, key,
//! payload).
//!
//! It simulates a small lost-persons database over time and keeps that database as the ground
//! truth ([`GenTruth::rows`]), independent of the dump: if a consumer of the dump disagrees with
//! `reference::views(&truth.rows, tz)`, either the consumer or the encoding is wrong. The
//! encoding follows the conventions in `shared/bench/README.md` (snapshot markers, binlog
//! coordinates that restart `pos` in every file, ZonedTimestamp/Timestamp/Decimal types,
//! deletes followed by tombstones, re-deliveries after connector restarts).
//!
//! Everything depends only on [`GenOptions`]: the same options give the same bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use lpm_engine::model::{
    Action, Assignment, Case, Decimal, Key, Person, Priority, Responsible, Row, Sighting,
    SightingSource, Status, Table,
};
// Every dump is a function of this exact stream (the seeds named in docs and tests), which is
// why it is `lpm_engine::rng`'s splitmix64 and not a crate's generator.
use lpm_engine::rng::SplitMix64 as Rng;

use crate::reference::FinalRows;

/// How DECIMAL(9,6) columns are encoded (Debezium `decimal.handling.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalMode {
    /// base64 of the minimal big-endian two's-complement unscaled bytes.
    Precise,
    /// A JSON number in Java `Double.toString` form.
    Double,
    /// A plain string with 6 decimals.
    String,
}

/// Line order of the dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// One global stream in binlog order (re-deliveries where the restart happened).
    Binlog,
    /// Grouped by topic, then partition, offsets ascending (what a backlog dump looks like).
    Partition,
}

/// Generator options.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Number of lost-person reports.
    pub persons: usize,
    /// Random seed.
    pub seed: u64,
    /// Wrap keys and values in JsonConverter `{"schema":..,"payload":..}` envelopes.
    pub schemas: bool,
    /// DECIMAL encoding.
    pub decimal: DecimalMode,
    /// Fraction of streamed records that a connector restart re-delivers.
    pub duplicate_rate: f64,
    /// Fraction of reports made before the connector started (their state is snapshotted).
    pub snapshot_frac: f64,
    /// Partitions per topic.
    pub partitions: u32,
    /// Line order.
    pub order: Order,
    /// Local time zone of the source system (wall clocks, daily cycle, DST).
    pub tz: Tz,
    /// First local day of reports.
    pub start: NaiveDate,
    /// Number of days with reports.
    pub days: u32,
    /// Write `case_sightings` rows (inserts, corrections, deletes). They come from their own
    /// random stream, so every other row is the same with or without them.
    pub sightings: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            persons: 1000,
            seed: 1,
            schemas: true,
            decimal: DecimalMode::Precise,
            duplicate_rate: 0.005,
            snapshot_frac: 0.1,
            partitions: 3,
            order: Order::Binlog,
            tz: chrono_tz::America::Guayaquil,
            start: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap_or_default(),
            days: 28,
            sightings: true,
        }
    }
}

/// What the simulation ended with.
#[derive(Clone, Debug, Default)]
pub struct GenTruth {
    /// The simulated database at the end: the answer any correct consumer must reach.
    pub rows: FinalRows,
    /// Lines written (tombstones and re-deliveries included).
    pub records: u64,
    /// Snapshot reads (`op:"r"`).
    pub snapshot_records: u64,
    /// Tombstones.
    pub tombstones: u64,
    /// Re-delivered records.
    pub redelivered: u64,
    /// Binlog files used.
    pub binlog_files: u32,
}

/// Writes the dump for `opts` to `out` and returns the simulated final database.
pub fn generate(opts: &GenOptions, out: &mut impl Write) -> io::Result<GenTruth> {
    let mut sim = Sim::new(opts);
    let mut em = Emitter::new(opts, out);
    sim.run(&mut em)?;
    em.finish()?;
    Ok(GenTruth {
        rows: sim.db.final_rows(),
        records: em.records,
        snapshot_records: em.snapshot_records,
        tombstones: em.tombstones,
        redelivered: em.redelivered,
        binlog_files: em.file - FIRST_FILE + 1,
    })
}

// ---------------------------------------------------------------------------------------------
// randomness

/// The delay distributions only the generator needs, on the shared stream.
trait Delays {
    fn expo(&mut self, mean: f64) -> i64;
    fn lognorm(&mut self, median: f64, sigma: f64) -> i64;
}

impl Delays for Rng {
    /// Exponential with the given mean (ms).
    fn expo(&mut self, mean: f64) -> i64 {
        (-(1.0 - self.unit()).ln() * mean) as i64
    }
    /// Log-normal with the given median (ms): resolution delays have a long tail.
    fn lognorm(&mut self, median: f64, sigma: f64) -> i64 {
        let (u1, u2) = (1.0 - self.unit(), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (median * (sigma * z).exp()) as i64
    }
}

// ---------------------------------------------------------------------------------------------
// value encodings

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A JSON string literal (serde_json escapes quotes, backslashes and control characters and
/// leaves non-ASCII text as is, like Jackson and kcat).
fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn opt_str(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "null".into(), jstr)
}

fn opt_num(n: Option<i64>) -> String {
    n.map_or_else(|| "null".into(), |n| n.to_string())
}

/// `io.debezium.time.ZonedTimestamp` text. Streamed values carry 3 fraction digits; snapshot
/// values come from JDBC's `ISO_OFFSET_DATE_TIME`, which drops trailing zeros.
fn zts(ms: i64, snapshot: bool) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return "null".into();
    };
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if !snapshot {
        return format!("\"{base}.{frac:03}Z\"");
    }
    let digits = format!("{frac:03}");
    match digits.trim_end_matches('0') {
        "" => format!("\"{base}Z\""),
        d => format!("\"{base}.{d}Z\""),
    }
}

fn opt_zts(ms: Option<i64>, snapshot: bool) -> String {
    ms.map_or_else(|| "null".into(), |ms| zts(ms, snapshot))
}

/// Java `Double.toString`: positional for 1e-3 <= |x| < 1e7, else `d.dddE<n>`; shortest digits.
fn java_double(x: f64) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    if (1e-3..1e7).contains(&x.abs()) {
        let s = format!("{x}");
        return if s.contains('.') { s } else { s + ".0" };
    }
    let s = format!("{x:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

/// A DECIMAL(9,6) value in the chosen mode.
fn decimal(d: Option<Decimal>, mode: DecimalMode) -> String {
    let Some(d) = d else { return "null".into() };
    match mode {
        DecimalMode::Precise => {
            // minimal two's complement, as Java's BigInteger.toByteArray
            let bytes = d.unscaled.to_be_bytes();
            let mut start = 0;
            while start < bytes.len() - 1 {
                let (b, next) = (bytes[start], bytes[start + 1]);
                if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
                    start += 1;
                } else {
                    break;
                }
            }
            jstr(&base64::engine::general_purpose::STANDARD.encode(&bytes[start..]))
        }
        DecimalMode::Double => java_double(d.unscaled as f64 / 10f64.powi(d.scale as i32)),
        DecimalMode::String => jstr(&d.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// schemas (Kafka Connect JsonConverter layout)

/// Column kinds, for the schema and the encoding.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    I64,
    I32,
    I16,
    Str,
    /// DATETIME(3): io.debezium.time.Timestamp
    Dts,
    /// TIMESTAMP(3): io.debezium.time.ZonedTimestamp
    Zts,
    /// DECIMAL(9,6)
    Dec,
}

const EPOCH: &str = "\"1970-01-01T00:00:00Z\"";

/// `(column, kind, optional, schema default)` in `schema.sql` order.
fn columns(t: Table) -> &'static [(&'static str, Kind, bool, Option<&'static str>)] {
    use Kind::*;
    match t {
        Table::ResponsibleContacts => &[
            ("id", I64, false, None),
            ("full_name", Str, false, None),
            ("agency", Str, false, None),
            ("phone", Str, true, None),
            ("email", Str, true, None),
            ("active", I16, false, Some("1")),
            ("version", I32, false, Some("1")),
        ],
        Table::PersonsLost => &[
            ("id", I64, false, None),
            ("full_name", Str, false, None),
            ("age", I16, true, None),
            ("gender", Str, false, None),
            ("last_seen_at", Dts, false, None),
            ("reported_at", Zts, false, Some(EPOCH)),
            ("last_seen_place", Str, false, None),
            ("latitude", Dec, true, None),
            ("longitude", Dec, true, None),
            ("description", Str, true, None),
            ("reporter_name", Str, true, None),
            ("reporter_phone", Str, true, None),
            ("version", I32, false, Some("1")),
        ],
        Table::CaseCases => &[
            ("id", I64, false, None),
            ("person_id", I64, false, None),
            ("status", Str, false, None),
            ("priority", Str, false, None),
            ("responsible_id", I64, true, None),
            ("opened_at", Zts, false, Some(EPOCH)),
            ("closed_at", Zts, true, None),
            ("version", I32, false, Some("1")),
        ],
        Table::CaseActions => &[
            ("id", I64, false, None),
            ("case_id", I64, false, None),
            ("action_type", Str, false, None),
            ("notes", Str, true, None),
            ("responsible_id", I64, true, None),
            ("responsible_name", Str, true, None),
            ("created_at", Zts, false, Some(EPOCH)),
        ],
        Table::CaseResponsibleHistory => &[
            ("id", I64, false, None),
            ("case_id", I64, false, None),
            ("responsible_id", I64, false, None),
            ("assigned_at", Zts, false, Some(EPOCH)),
            ("unassigned_at", Zts, true, None),
        ],
        Table::CaseSightings => &[
            ("id", I64, false, None),
            ("case_id", I64, false, None),
            ("seen_at", Dts, false, None),
            ("place", Str, false, None),
            ("latitude", Dec, true, None),
            ("longitude", Dec, true, None),
            ("description", Str, true, None),
            ("reporter_name", Str, true, None),
            ("reporter_phone", Str, true, None),
            ("source", Str, false, None),
            ("created_at", Zts, false, Some(EPOCH)),
            ("version", I32, false, Some("1")),
        ],
    }
}

fn field(ty: &str, optional: bool, name: &str) -> String {
    format!("{{\"type\":\"{ty}\",\"optional\":{optional},\"field\":\"{name}\"}}")
}

fn column_schema(
    name: &str,
    kind: Kind,
    optional: bool,
    default: Option<&str>,
    mode: DecimalMode,
) -> String {
    let ty = match kind {
        Kind::I64 | Kind::Dts => "int64",
        Kind::I32 => "int32",
        Kind::I16 => "int16",
        Kind::Str | Kind::Zts => "string",
        Kind::Dec => match mode {
            DecimalMode::Precise => "bytes",
            DecimalMode::Double => "double",
            DecimalMode::String => "string",
        },
    };
    let mut s = format!("{{\"type\":\"{ty}\",\"optional\":{optional}");
    match kind {
        Kind::Dts => s.push_str(",\"name\":\"io.debezium.time.Timestamp\",\"version\":1"),
        Kind::Zts => s.push_str(",\"name\":\"io.debezium.time.ZonedTimestamp\",\"version\":1"),
        Kind::Dec if mode == DecimalMode::Precise => s.push_str(
            ",\"name\":\"org.apache.kafka.connect.data.Decimal\",\"version\":1,\
             \"parameters\":{\"scale\":\"6\",\"connect.decimal.precision\":\"9\"}",
        ),
        _ => {}
    }
    if let Some(d) = default {
        s.push_str(&format!(",\"default\":{d}"));
    }
    s.push_str(&format!(",\"field\":\"{name}\"}}"));
    s
}

const PREFIX: &str = "lpm.lost_persons_db";

fn key_schema(t: Table) -> String {
    format!(
        "{{\"type\":\"struct\",\"fields\":[{}],\"optional\":false,\"name\":\"{PREFIX}.{t}.Key\"}}",
        field("int64", false, "id")
    )
}

/// The `Envelope` schema of a table's values.
fn envelope_schema(t: Table, mode: DecimalMode) -> String {
    let cols: Vec<String> = columns(t)
        .iter()
        .map(|(n, k, o, d)| column_schema(n, *k, *o, *d, mode))
        .collect();
    let row = |f: &str| {
        format!(
            "{{\"type\":\"struct\",\"fields\":[{}],\"optional\":true,\"name\":\"{PREFIX}.{t}.Value\",\"field\":\"{f}\"}}",
            cols.join(",")
        )
    };
    let source = [
        field("string", false, "version"),
        field("string", false, "connector"),
        field("string", false, "name"),
        field("int64", false, "ts_ms"),
        "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,\
         \"parameters\":{\"allowed\":\"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental\"},\
         \"default\":\"false\",\"field\":\"snapshot\"}"
            .to_string(),
        field("string", false, "db"),
        field("string", true, "sequence"),
        field("int64", true, "ts_us"),
        field("int64", true, "ts_ns"),
        field("string", true, "table"),
        field("int64", false, "server_id"),
        field("string", true, "gtid"),
        field("string", false, "file"),
        field("int64", false, "pos"),
        field("int32", false, "row"),
        field("int64", true, "thread"),
        field("string", true, "query"),
    ]
    .join(",");
    let txn = format!(
        "{{\"type\":\"struct\",\"fields\":[{},{},{}],\"optional\":true,\"name\":\"event.block\",\"version\":1,\"field\":\"transaction\"}}",
        field("string", false, "id"),
        field("int64", false, "total_order"),
        field("int64", false, "data_collection_order")
    );
    format!(
        "{{\"type\":\"struct\",\"fields\":[{},{},{{\"type\":\"struct\",\"fields\":[{source}],\"optional\":false,\
         \"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}},{},{},{},{},{txn}],\
         \"optional\":false,\"name\":\"{PREFIX}.{t}.Envelope\",\"version\":2}}",
        row("before"),
        row("after"),
        field("string", false, "op"),
        field("int64", true, "ts_ms"),
        field("int64", true, "ts_us"),
        field("int64", true, "ts_ns"),
    )
}

/// A row's JSON in column order. `snapshot` selects the JDBC timestamp format.
fn row_json(row: &Row, snapshot: bool, mode: DecimalMode) -> String {
    let z = |ms: i64| zts(ms, snapshot);
    let values: Vec<String> = match row {
        Row::Responsible(r) => vec![
            r.id.to_string(),
            jstr(&r.full_name),
            jstr(&r.agency),
            opt_str(&r.phone),
            opt_str(&r.email),
            i16::from(r.active).to_string(),
            r.version.to_string(),
        ],
        Row::Person(p) => vec![
            p.id.to_string(),
            jstr(&p.full_name),
            opt_num(p.age),
            jstr(&p.gender),
            p.last_seen_at.to_string(),
            z(p.reported_at),
            jstr(&p.last_seen_place),
            decimal(p.latitude, mode),
            decimal(p.longitude, mode),
            opt_str(&p.description),
            opt_str(&p.reporter_name),
            opt_str(&p.reporter_phone),
            p.version.to_string(),
        ],
        Row::Case(c) => vec![
            c.id.to_string(),
            c.person_id.to_string(),
            jstr(c.status.as_str()),
            jstr(c.priority.as_str()),
            opt_num(c.responsible_id),
            z(c.opened_at),
            opt_zts(c.closed_at, snapshot),
            c.version.to_string(),
        ],
        Row::Action(a) => vec![
            a.id.to_string(),
            a.case_id.to_string(),
            jstr(&a.action_type),
            opt_str(&a.notes),
            opt_num(a.responsible_id),
            opt_str(&a.responsible_name),
            z(a.created_at),
        ],
        Row::Assignment(h) => vec![
            h.id.to_string(),
            h.case_id.to_string(),
            h.responsible_id.to_string(),
            z(h.assigned_at),
            opt_zts(h.unassigned_at, snapshot),
        ],
        Row::Sighting(x) => vec![
            x.id.to_string(),
            x.case_id.to_string(),
            x.seen_at.to_string(),
            jstr(&x.place),
            decimal(x.latitude, mode),
            decimal(x.longitude, mode),
            opt_str(&x.description),
            opt_str(&x.reporter_name),
            opt_str(&x.reporter_phone),
            jstr(x.source.as_str()),
            z(x.created_at),
            x.version.to_string(),
        ],
    };
    let body: Vec<String> = columns(row.table())
        .iter()
        .zip(values)
        .map(|((name, ..), v)| format!("\"{name}\":{v}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Kafka's default partitioner hash (murmur2, seed 0x9747b28c) over the serialized key bytes.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

// ---------------------------------------------------------------------------------------------
// the emitter: binlog coordinates, records, restarts

const FIRST_FILE: u32 = 3;
const FIRST_POS: u64 = 157;
const MAX_FILE_BYTES: u64 = 256 * 1024;
const SERVER_UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

/// One row change inside a statement.
struct RowOp {
    before: Option<Row>,
    after: Option<Row>,
}

impl RowOp {
    fn row(&self) -> Option<&Row> {
        self.after.as_ref().or(self.before.as_ref())
    }
}

/// A record as the connector produced it, kept so that a restart can re-deliver it.
#[derive(Clone)]
struct Rec {
    table: Table,
    id: Key,
    /// The envelope up to and including `op`; `None` for a tombstone.
    body: Option<String>,
    /// `source.ts_ms`: processing lags behind it.
    src_ms: i64,
}

struct Emitter<'w, W: Write> {
    opts: GenOptions,
    out: &'w mut W,
    rng: Rng,
    key_schemas: Vec<String>,
    value_schemas: Vec<String>,
    offsets: BTreeMap<(Table, u32), u64>,
    buckets: BTreeMap<(Table, u32), Vec<u8>>,
    history: VecDeque<Rec>,
    file: u32,
    pos: u64,
    gtid: u64,
    env_us: i64,
    records: u64,
    snapshot_records: u64,
    tombstones: u64,
    redelivered: u64,
}

impl<'w, W: Write> Emitter<'w, W> {
    fn new(opts: &GenOptions, out: &'w mut W) -> Self {
        Emitter {
            opts: opts.clone(),
            out,
            rng: Rng::new(opts.seed ^ 0xE1),
            key_schemas: Table::ALL.iter().map(|t| key_schema(*t)).collect(),
            value_schemas: Table::ALL
                .iter()
                .map(|t| envelope_schema(*t, opts.decimal))
                .collect(),
            offsets: BTreeMap::new(),
            buckets: BTreeMap::new(),
            history: VecDeque::new(),
            file: FIRST_FILE,
            pos: FIRST_POS,
            gtid: 0,
            env_us: 0,
            records: 0,
            snapshot_records: 0,
            tombstones: 0,
            redelivered: 0,
        }
    }

    /// Writes one Kafka record; the envelope timestamps are fresh (a re-delivery gets new ones).
    fn write(&mut self, rec: &Rec) -> io::Result<()> {
        let lag_us = self.rng.range(15_000, 480_000);
        self.env_us = (self.env_us + self.rng.range(5, 60)).max(rec.src_ms * 1000 + lag_us);
        let key = format!("{{\"id\":{}}}", rec.id);
        let key = if self.opts.schemas {
            format!(
                "{{\"schema\":{},\"payload\":{key}}}",
                self.key_schemas[rec.table.index()]
            )
        } else {
            key
        };
        let partition = (murmur2(key.as_bytes()) & 0x7fff_ffff) % self.opts.partitions.max(1);
        let offset = self.offsets.entry((rec.table, partition)).or_insert(0);
        let payload = match &rec.body {
            None => "null".to_string(),
            Some(body) => {
                let env = format!(
                    "{body},\"ts_ms\":{},\"ts_us\":{},\"ts_ns\":{},\"transaction\":null}}",
                    self.env_us / 1000,
                    self.env_us,
                    self.env_us * 1000
                );
                let value = if self.opts.schemas {
                    format!(
                        "{{\"schema\":{},\"payload\":{env}}}",
                        self.value_schemas[rec.table.index()]
                    )
                } else {
                    env
                };
                jstr(&value)
            }
        };
        let line = format!(
            "{{\"topic\":\"{PREFIX}.{}\",\"partition\":{partition},\"offset\":{offset},\"tstype\":\"create\",\
             \"ts\":{},\"broker\":{},\"key\":{},\"payload\":{payload}}}\n",
            rec.table,
            self.env_us / 1000 + 1 + self.rng.range(0, 2),
            partition % 3 + 1,
            jstr(&key),
        );
        *offset += 1;
        self.records += 1;
        match self.opts.order {
            Order::Binlog => self.out.write_all(line.as_bytes()),
            Order::Partition => {
                self.buckets
                    .entry((rec.table, partition))
                    .or_default()
                    .extend_from_slice(line.as_bytes());
                Ok(())
            }
        }
    }

    fn source(&self, t: Table, src_ms: i64, mark: &str, row: usize, thread: Option<u64>) -> String {
        let (server, gtid, thread) = match thread {
            Some(th) => (
                184_054,
                format!("\"{SERVER_UUID}:{}\"", self.gtid),
                th.to_string(),
            ),
            None => (0, "null".into(), "null".into()),
        };
        format!(
            "{{\"version\":\"2.7.3.Final\",\"connector\":\"mysql\",\"name\":\"lpm\",\"ts_ms\":{src_ms},\
             \"snapshot\":\"{mark}\",\"db\":\"lost_persons_db\",\"sequence\":null,\"ts_us\":{},\"ts_ns\":{},\
             \"table\":\"{t}\",\"server_id\":{server},\"gtid\":{gtid},\"file\":\"mysql-bin.{:06}\",\
             \"pos\":{},\"row\":{row},\"thread\":{thread},\"query\":null}}",
            src_ms * 1000,
            src_ms * 1_000_000,
            self.file,
            self.pos
        )
    }

    /// Binlog bookkeeping of one committed transaction; emits its records when `streaming`.
    /// Each statement is one rows event: its rows share `pos` and number `row` from 0.
    fn transaction(&mut self, t_ms: i64, stmts: &[Vec<RowOp>], streaming: bool) -> io::Result<()> {
        // files rotate past a size limit (and now and then on a FLUSH LOGS); pos restarts
        if self.pos > MAX_FILE_BYTES || self.rng.chance(0.002) {
            self.file += 1;
            self.pos = FIRST_POS;
        }
        self.gtid += 1;
        self.pos += 150; // GTID, BEGIN query and table-map events
        let thread = 1000 + self.rng.below(120);
        let mut emitted = 0;
        for stmt in stmts {
            let mut size = 40;
            for (i, op) in stmt.iter().enumerate() {
                let Some(row) = op.row() else { continue };
                let (t, id) = (row.table(), row.key());
                let json = |r: &Option<Row>| {
                    r.as_ref()
                        .map_or_else(|| "null".into(), |r| row_json(r, false, self.opts.decimal))
                };
                let (before, after) = (json(&op.before), json(&op.after));
                size += before.len() as u64 / 2 + after.len() as u64 / 2 + 8;
                let letter = match (&op.before, &op.after) {
                    (None, _) => "c",
                    (_, None) => "d",
                    _ => "u",
                };
                if !streaming {
                    continue;
                }
                let source = self.source(t, t_ms, "false", i, Some(thread));
                let body = format!("{{\"before\":{before},\"after\":{after},\"source\":{source},\"op\":\"{letter}\"");
                let mut recs = vec![Rec {
                    table: t,
                    id,
                    body: Some(body),
                    src_ms: t_ms,
                }];
                if op.after.is_none() {
                    recs.push(Rec {
                        table: t,
                        id,
                        body: None,
                        src_ms: t_ms,
                    });
                    self.tombstones += 1;
                }
                for rec in recs {
                    self.write(&rec)?;
                    self.history.push_back(rec);
                    emitted += 1;
                }
            }
            self.pos += size.min(8192);
        }
        self.pos += 31; // XID
        while self.history.len() > 64 || self.history.front().is_some_and(|r| r.body.is_none()) {
            self.history.pop_front();
        }
        // a connector restart resends what followed its last committed offset
        let mean_resend = 10.5;
        for _ in 0..emitted {
            if self.rng.chance(self.opts.duplicate_rate / mean_resend) {
                let mut n = (1 + self.rng.below(20) as usize).min(self.history.len());
                // a restart resumes at an event: a delete is resent with its tombstone
                if self.history[self.history.len() - n].body.is_none() {
                    n += 1;
                }
                let resend: Vec<Rec> = self
                    .history
                    .iter()
                    .skip(self.history.len() - n)
                    .cloned()
                    .collect();
                for rec in &resend {
                    self.write(rec)?;
                }
                self.redelivered += n as u64;
                break;
            }
        }
        Ok(())
    }

    /// The initial snapshot: every row of every table, tables in alphabetical order, each by
    /// primary key, all at the current binlog coordinate with `row` 0.
    fn snapshot(&mut self, t_ms: i64, db: &Db) -> io::Result<()> {
        let tables: Vec<(Table, Vec<Row>)> = Table::ALL
            .iter()
            .map(|t| (*t, db.rows(*t)))
            .filter(|(_, rows)| !rows.is_empty())
            .collect();
        let mut read_ms = t_ms + 1500;
        for (ti, (t, rows)) in tables.iter().enumerate() {
            for (i, row) in rows.iter().enumerate() {
                let (first, last) = (i == 0, i + 1 == rows.len());
                let mark = if last && ti + 1 == tables.len() {
                    "last"
                } else if first && ti == 0 {
                    "first"
                } else if last {
                    "last_in_data_collection"
                } else if first {
                    "first_in_data_collection"
                } else {
                    "true"
                };
                read_ms += self.rng.range(0, 1);
                let source = self.source(*t, read_ms, mark, 0, None);
                let body = format!(
                    "{{\"before\":null,\"after\":{},\"source\":{source},\"op\":\"r\"",
                    row_json(row, true, self.opts.decimal)
                );
                self.write(&Rec {
                    table: *t,
                    id: row.key(),
                    body: Some(body),
                    src_ms: read_ms,
                })?;
                self.snapshot_records += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        for bytes in std::mem::take(&mut self.buckets).values() {
            self.out.write_all(bytes)?;
        }
        self.out.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// the simulated database

#[derive(Default)]
struct Db {
    rows: [BTreeMap<Key, Row>; Table::COUNT],
    /// case id -> its action, history and sighting ids (for deletes and reassignment)
    actions_of: BTreeMap<Key, Vec<Key>>,
    history_of: BTreeMap<Key, Vec<Key>>,
    sightings_of: BTreeMap<Key, Vec<Key>>,
}

impl Db {
    fn get(&self, t: Table, id: Key) -> Option<&Row> {
        self.rows[t.index()].get(&id)
    }
    fn rows(&self, t: Table) -> Vec<Row> {
        self.rows[t.index()].values().cloned().collect()
    }
    fn apply(&mut self, op: &RowOp) {
        if let Some(row) = &op.after {
            self.rows[row.table().index()].insert(row.key(), row.clone());
        } else if let Some(row) = &op.before {
            self.rows[row.table().index()].remove(&row.key());
        }
    }
    fn final_rows(&self) -> FinalRows {
        FinalRows::from_rows(self.rows.iter().flat_map(|m| m.values()))
    }
    fn case(&self, id: Key) -> Option<Case> {
        match self.get(Table::CaseCases, id) {
            Some(Row::Case(c)) => Some((**c).clone()),
            _ => None,
        }
    }
    fn person(&self, id: Key) -> Option<Person> {
        match self.get(Table::PersonsLost, id) {
            Some(Row::Person(p)) => Some((**p).clone()),
            _ => None,
        }
    }
    fn contact(&self, id: Key) -> Option<Responsible> {
        match self.get(Table::ResponsibleContacts, id) {
            Some(Row::Responsible(r)) => Some((**r).clone()),
            _ => None,
        }
    }
}

fn create(after: Row) -> RowOp {
    RowOp {
        before: None,
        after: Some(after),
    }
}

/// An update or delete of the stored row `t/id` (`None` if it is gone).
fn change(db: &Db, t: Table, id: Key, after: Option<Row>) -> Option<RowOp> {
    let before = db.get(t, id)?.clone();
    Some(RowOp {
        before: Some(before),
        after,
    })
}

/// Something that happens later to a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    Report,
    ContactUpdate,
    Assign(Key),
    Progress(Key),
    Act(Key),
    Reassign(Key),
    Escalate(Key),
    Resolve(Key),
    Correct(Key),
    Delete(Key, Key),
    Relink(Key),
    Sight(Key),
    FixSighting(Key),
}

const FIRST_NAMES: &[&str] = &[
    "José", "María", "Luis", "Ana", "Jorge", "Lucía", "Andrés", "Sofía", "Raúl", "Inés", "Óscar",
    "Begoña",
];
const SURNAMES: &[&str] = &[
    "Núñez",
    "Peña",
    "Zambrano",
    "Muñoz",
    "Cedeño",
    "Briones",
    "Ibáñez",
    "Chávez",
    "Quiñónez",
    "Andrade",
];
const PLACES: &[&str] = &[
    "Parque Seminario, Guayaquil",
    "Terminal Quitumbe, Quito",
    "Malecón 2000",
    "Mercado 10 de Agosto, Cuenca",
];
const AGENCIES: &[&str] = &[
    "Policia Nacional",
    "ECU 911",
    "Cruz Roja",
    "Fiscalia",
    "Bomberos",
];
const MESSY_GENDERS: &[&str] = &[" Male ", "Female", "F", "", "MALE", "otro", " female"];

/// Pending tasks by time (ties in scheduling order); nothing after the window is kept.
struct Agenda {
    tasks: BinaryHeap<Reverse<(i64, u64, Task)>>,
    seq: u64,
    end_ms: i64,
}

impl Agenda {
    fn push(&mut self, at: i64, task: Task) {
        if at < self.end_ms {
            self.seq += 1;
            self.tasks.push(Reverse((at, self.seq, task)));
        }
    }
}

struct Sim {
    opts: GenOptions,
    rng: Rng,
    /// Sightings draw only from this stream (see [`GenOptions::sightings`]).
    sightings_rng: Rng,
    db: Db,
    next_id: [Key; Table::COUNT],
    agenda: Agenda,
    arrivals: VecDeque<i64>,
    start_ms: i64,
    end_ms: i64,
}

impl Sim {
    fn new(opts: &GenOptions) -> Sim {
        let tz = opts.tz;
        let midnight = opts.start.and_hms_opt(0, 0, 0).unwrap_or_default();
        let start_ms = tz
            .from_local_datetime(&midnight)
            .earliest()
            .map_or(0, |t| t.timestamp_millis());
        let end_ms = start_ms + i64::from(opts.days.max(1)) * DAY;
        let mut sim = Sim {
            opts: opts.clone(),
            rng: Rng::new(opts.seed),
            sightings_rng: Rng::new(opts.seed ^ 0x5167_4715),
            db: Db::default(),
            next_id: [0; Table::COUNT],
            agenda: Agenda {
                tasks: BinaryHeap::new(),
                seq: 0,
                end_ms,
            },
            arrivals: VecDeque::new(),
            start_ms,
            end_ms,
        };
        sim.arrivals = sim.plan_arrivals().into();
        sim
    }

    fn offset_ms(&self, ms: i64) -> i64 {
        chrono::DateTime::from_timestamp_millis(ms).map_or(0, |t| {
            i64::from(
                self.opts
                    .tz
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1000
        })
    }

    /// Report times: a local daily cycle (night trough, evening peak, weekend bump) by
    /// rejection sampling, plus a few reports around every DST change in the window.
    fn plan_arrivals(&mut self) -> Vec<i64> {
        let n = self.opts.persons;
        let span = (self.end_ms - self.start_ms) as u64;
        let mut out = Vec::with_capacity(n);
        let mut transitions = Vec::new();
        let mut t = self.start_ms;
        while t + HOUR < self.end_ms {
            if self.offset_ms(t) != self.offset_ms(t + HOUR) {
                transitions.push(t + HOUR);
            }
            t += HOUR;
        }
        for tr in &transitions {
            for _ in 0..(n / 100).clamp(2, 20).min(n) {
                out.push(
                    (tr + self.rng.range(-2 * HOUR, 2 * HOUR))
                        .clamp(self.start_ms, self.end_ms - 1),
                );
            }
        }
        while out.len() < n {
            let t = self.start_ms + self.rng.below(span) as i64;
            let local =
                chrono::DateTime::from_timestamp_millis(t + self.offset_ms(t)).unwrap_or_default();
            let hour = local.hour() as f64;
            let mut w =
                0.25 + 0.75 * (((hour - 19.0) / 24.0 * std::f64::consts::TAU).cos() * 0.5 + 0.5);
            if local.weekday().number_from_monday() >= 6 {
                w *= 1.25;
            }
            if self.rng.unit() * 1.25 < w {
                out.push(t);
            }
        }
        out.truncate(n);
        out.sort_unstable();
        out
    }

    /// A new AUTO_INCREMENT id; now and then a gap (rolled-back inserts).
    fn new_id(&mut self, t: Table) -> Key {
        let gap = if self.rng.chance(0.03) {
            self.rng.range(1, 3)
        } else {
            0
        };
        self.next_id[t.index()] += 1 + gap;
        self.next_id[t.index()]
    }

    fn name(&mut self) -> String {
        format!(
            "{} {} {}",
            self.rng.pick(FIRST_NAMES),
            self.rng.pick(SURNAMES),
            self.rng.pick(SURNAMES)
        )
    }

    fn run<W: Write>(&mut self, em: &mut Emitter<'_, W>) -> io::Result<()> {
        let n = self.arrivals.len();
        let frac = self.opts.snapshot_frac;
        let in_snapshot = if frac <= 0.0 {
            0
        } else {
            ((frac * n as f64).ceil() as usize).min(n)
        };
        // the connector starts just before the first report it streams
        let connector_start = if frac <= 0.0 {
            i64::MIN
        } else if in_snapshot >= n {
            self.end_ms
        } else {
            self.arrivals[in_snapshot] - 1
        };
        let mut streaming = false;
        self.seed_contacts(em, connector_start <= self.start_ms - 21 * DAY)?;
        if connector_start <= self.start_ms - 21 * DAY {
            streaming = true;
        }
        self.agenda
            .push(self.start_ms - 20 * DAY, Task::ContactUpdate);
        for t in self.arrivals.clone() {
            self.agenda.push(t, Task::Report);
        }
        while let Some(Reverse((t, _, task))) = self.agenda.tasks.pop() {
            if !streaming && t >= connector_start {
                em.snapshot(connector_start, &self.db)?;
                streaming = true;
            }
            let stmts = self.step(t, task);
            if !stmts.is_empty() {
                for op in stmts.iter().flatten() {
                    self.db.apply(op);
                }
                em.transaction(t, &stmts, streaming)?;
            }
        }
        if !streaming {
            em.snapshot(connector_start.min(self.end_ms), &self.db)?;
        }
        Ok(())
    }

    /// Contacts are seeded by one multi-row INSERT three weeks before the first report.
    fn seed_contacts<W: Write>(
        &mut self,
        em: &mut Emitter<'_, W>,
        streaming: bool,
    ) -> io::Result<()> {
        let n = (self.opts.persons / 20).clamp(4, 50);
        let mut stmt = Vec::new();
        for i in 0..n {
            let id = self.new_id(Table::ResponsibleContacts);
            let name = format!(
                "{} {}",
                ["Cap.", "Sgto.", "Dra.", "Lcdo."][i % 4],
                self.name()
            );
            let email = (!self.rng.chance(0.2)).then(|| format!("agent{id}@example.ec"));
            stmt.push(create(Row::Responsible(Arc::new(Responsible {
                id,
                full_name: name,
                agency: AGENCIES[i % AGENCIES.len()].into(),
                phone: Some(format!("+5939{:08}", self.rng.below(100_000_000))),
                email,
                active: true,
                version: 1,
            }))));
        }
        for op in &stmt {
            self.db.apply(op);
        }
        em.transaction(self.start_ms - 21 * DAY, &[stmt], streaming)
    }

    fn age(&mut self) -> Option<i64> {
        let r = self.rng.unit();
        if r < 0.04 {
            None
        } else if r < 0.05 {
            Some(*self.rng.pick(&[-1, 121, 150, 999]))
        } else if r < 0.10 {
            Some(
                *self
                    .rng
                    .pick(&[0, 11, 12, 17, 18, 29, 30, 44, 45, 59, 60, 120]),
            )
        } else if r < 0.45 {
            Some(self.rng.range(12, 29))
        } else {
            Some(self.rng.range(0, 95))
        }
    }

    fn gender(&mut self) -> String {
        if self.rng.chance(0.02) {
            return self.rng.pick(MESSY_GENDERS).to_string();
        }
        self.rng
            .pick(&["female", "male", "female", "male", "other", "unknown"])
            .to_string()
    }

    fn coordinate(&mut self, lo: i64, hi: i64) -> Option<Decimal> {
        if self.rng.chance(0.03) {
            return None;
        }
        // a few values right at the equator exercise Java's E-notation doubles
        let unscaled = if self.rng.chance(0.02) {
            self.rng.range(-999, 999)
        } else {
            self.rng.range(lo, hi)
        };
        Some(Decimal {
            unscaled: i128::from(unscaled),
            scale: 6,
        })
    }

    fn action(
        &mut self,
        case_id: Key,
        kind: &str,
        notes: String,
        who: Option<&Responsible>,
        t: i64,
    ) -> RowOp {
        let id = self.new_id(Table::CaseActions);
        self.db.actions_of.entry(case_id).or_default().push(id);
        create(Row::Action(Arc::new(Action {
            id,
            case_id,
            action_type: kind.into(),
            notes: Some(notes),
            responsible_id: who.map(|r| r.id),
            responsible_name: who.map(|r| r.full_name.clone()),
            created_at: t,
        })))
    }

    fn pick_contact(&mut self) -> Option<Responsible> {
        let active: Vec<Responsible> = self
            .db
            .rows(Table::ResponsibleContacts)
            .into_iter()
            .filter_map(|r| match r {
                Row::Responsible(r) if r.active => Some((*r).clone()),
                _ => None,
            })
            .collect();
        (!active.is_empty()).then(|| self.rng.pick(&active).clone())
    }

    /// The statements of the transaction `task` runs at `t` (empty if it no longer applies).
    fn step(&mut self, t: i64, task: Task) -> Vec<Vec<RowOp>> {
        match task {
            Task::Report => self.report(t),
            Task::ContactUpdate => {
                self.agenda
                    .push(t + self.rng.expo(2.0 * DAY as f64), Task::ContactUpdate);
                let ids: Vec<Key> = self.db.rows[Table::ResponsibleContacts.index()]
                    .keys()
                    .copied()
                    .collect();
                let Some(mut c) = self.db.contact(*self.rng.pick(&ids)) else {
                    return vec![];
                };
                match self.rng.below(4) {
                    0 => c.phone = Some(format!("+5939{:08}", self.rng.below(100_000_000))),
                    1 => c.email = None,
                    2 => c.full_name = format!("Tnte. {}", c.full_name),
                    _ => c.active = !c.active,
                }
                c.version += 1;
                stmt(change(
                    &self.db,
                    Table::ResponsibleContacts,
                    c.id,
                    Some(Row::Responsible(Arc::new(c))),
                ))
            }
            Task::Assign(id) => {
                let Some(mut case) = self
                    .db
                    .case(id)
                    .filter(|c| c.status.is_open() && c.responsible_id.is_none())
                else {
                    return vec![];
                };
                let Some(who) = self.pick_contact() else {
                    return vec![];
                };
                if self.rng.chance(0.85) {
                    self.agenda
                        .push(t + self.rng.expo(2.0 * HOUR as f64), Task::Progress(id));
                }
                if self.rng.chance(0.12) {
                    self.agenda
                        .push(t + self.rng.range(2 * HOUR, 3 * DAY), Task::Reassign(id));
                }
                case.responsible_id = Some(who.id);
                case.version += 1;
                self.assign(t, case, &who, None)
            }
            Task::Reassign(id) => {
                let Some(mut case) = self
                    .db
                    .case(id)
                    .filter(|c| c.status.is_open() && c.responsible_id.is_some())
                else {
                    return vec![];
                };
                let Some(who) = self.pick_contact() else {
                    return vec![];
                };
                case.responsible_id = Some(who.id);
                case.version += 1;
                let close = self.close_history(id, t);
                self.assign(t, case, &who, close)
            }
            Task::Progress(id) => {
                let Some(mut case) = self.db.case(id).filter(|c| c.status == Status::Open) else {
                    return vec![];
                };
                case.status = Status::InProgress;
                case.version += 1;
                let who = case.responsible_id.and_then(|r| self.db.contact(r));
                let note = self.action(
                    id,
                    "status_change",
                    "Estado: open -> in_progress".into(),
                    who.as_ref(),
                    t,
                );
                let upd = change(
                    &self.db,
                    Table::CaseCases,
                    id,
                    Some(Row::Case(Arc::new(case))),
                );
                vec![upd.into_iter().collect(), vec![note]]
            }
            Task::Act(id) => {
                let Some(case) = self.db.case(id) else {
                    return vec![];
                };
                let kind = *self.rng.pick(&["note", "search", "call", "sighting"]);
                let who = case.responsible_id.and_then(|r| self.db.contact(r));
                let text = *self.rng.pick(&[
                    "Búsqueda en la zona \"norte\"",
                    "Llamada al reportante",
                    "Posible avistamiento\ncerca del río",
                ]);
                vec![vec![self.action(id, kind, text.into(), who.as_ref(), t)]]
            }
            Task::Escalate(id) => {
                let Some(mut case) = self.db.case(id).filter(|c| c.status.is_open()) else {
                    return vec![];
                };
                case.priority = match case.priority {
                    Priority::Low => Priority::Medium,
                    Priority::Medium => Priority::High,
                    _ => Priority::Critical,
                };
                case.version += 1;
                stmt(change(
                    &self.db,
                    Table::CaseCases,
                    id,
                    Some(Row::Case(Arc::new(case))),
                ))
            }
            Task::Resolve(id) => {
                let Some(mut case) = self.db.case(id).filter(|c| c.status.is_open()) else {
                    return vec![];
                };
                let r = self.rng.unit();
                case.status = if r < 0.78 {
                    Status::FoundAlive
                } else if r < 0.82 {
                    Status::FoundDeceased
                } else {
                    Status::Closed
                };
                case.closed_at = Some(t);
                case.version += 1;
                let who = case.responsible_id.and_then(|r| self.db.contact(r));
                let note = self.action(
                    id,
                    "status_change",
                    format!("Estado: {}", case.status.as_str()),
                    who.as_ref(),
                    t,
                );
                let mut stmts = vec![change(
                    &self.db,
                    Table::CaseCases,
                    id,
                    Some(Row::Case(Arc::new(case))),
                )
                .into_iter()
                .collect()];
                stmts.extend(self.close_history(id, t).map(|op| vec![op]));
                stmts.push(vec![note]);
                stmts
            }
            Task::Correct(id) => {
                let Some(mut p) = self.db.person(id) else {
                    return vec![];
                };
                match self.rng.below(3) {
                    0 => {
                        p.age = match p.age {
                            None => self.age().or(Some(33)),
                            Some(a) if self.rng.chance(0.3) => Some((a % 10) * 10 + a / 10 % 10),
                            Some(_) if self.rng.chance(0.2) => {
                                *self.rng.pick(&[None, Some(-1), Some(999)])
                            }
                            Some(a) => Some(a + self.rng.range(-3, 3)),
                        }
                    }
                    1 => p.gender = self.gender(),
                    _ => {
                        p.description = Some(format!(
                            "{} (actualizado)",
                            p.description.unwrap_or_default()
                        ))
                    }
                }
                p.version += 1;
                stmt(change(
                    &self.db,
                    Table::PersonsLost,
                    id,
                    Some(Row::Person(Arc::new(p))),
                ))
            }
            Task::Delete(person, case) => {
                let mut stmts = Vec::new();
                if !self.rng.chance(0.12) {
                    let actions = self.db.actions_of.remove(&case).unwrap_or_default();
                    stmts.push(
                        actions
                            .iter()
                            .filter_map(|a| change(&self.db, Table::CaseActions, *a, None))
                            .collect(),
                    );
                    let seen = self.db.sightings_of.remove(&case).unwrap_or_default();
                    stmts.push(
                        seen.iter()
                            .filter_map(|x| change(&self.db, Table::CaseSightings, *x, None))
                            .collect(),
                    );
                    let hist = self.db.history_of.remove(&case).unwrap_or_default();
                    stmts.push(
                        hist.iter()
                            .filter_map(|h| {
                                change(&self.db, Table::CaseResponsibleHistory, *h, None)
                            })
                            .collect(),
                    );
                    stmts.push(
                        change(&self.db, Table::CaseCases, case, None)
                            .into_iter()
                            .collect(),
                    );
                }
                stmts.push(
                    change(&self.db, Table::PersonsLost, person, None)
                        .into_iter()
                        .collect(),
                );
                stmts.retain(|s: &Vec<RowOp>| !s.is_empty());
                stmts
            }
            Task::Sight(id) => self.sight(id, t),
            Task::FixSighting(id) => self.fix_sighting(id),
            Task::Relink(id) => {
                let Some(mut case) = self.db.case(id) else {
                    return vec![];
                };
                // an earlier, possibly deleted or never existing person id
                case.person_id = self
                    .rng
                    .range(1, self.next_id[Table::PersonsLost.index()] + 2);
                case.version += 1;
                stmt(change(
                    &self.db,
                    Table::CaseCases,
                    id,
                    Some(Row::Case(Arc::new(case))),
                ))
            }
        }
    }

    /// Assigns `case` (already updated) to `who`: the case update, a new history row and an
    /// `assignment` action, after closing the previous history row if `close` is given.
    fn assign(
        &mut self,
        t: i64,
        case: Case,
        who: &Responsible,
        close: Option<RowOp>,
    ) -> Vec<Vec<RowOp>> {
        let id = case.id;
        let hid = self.new_id(Table::CaseResponsibleHistory);
        self.db.history_of.entry(id).or_default().push(hid);
        let hist = create(Row::Assignment(Arc::new(Assignment {
            id: hid,
            case_id: id,
            responsible_id: who.id,
            assigned_at: t,
            unassigned_at: None,
        })));
        let note = self.action(
            id,
            "assignment",
            format!("Caso asignado a {} ({})", who.full_name, who.agency),
            Some(who),
            t,
        );
        let mut stmts: Vec<Vec<RowOp>> = vec![change(
            &self.db,
            Table::CaseCases,
            id,
            Some(Row::Case(Arc::new(case))),
        )
        .into_iter()
        .collect()];
        stmts.extend(close.map(|op| vec![op]));
        stmts.push(vec![hist]);
        stmts.push(vec![note]);
        stmts
    }

    /// Sets `unassigned_at` on the case's open history row, if any.
    fn close_history(&mut self, case: Key, t: i64) -> Option<RowOp> {
        let open = self.db.history_of.get(&case)?.iter().rev().find_map(|h| {
            match self.db.get(Table::CaseResponsibleHistory, *h) {
                Some(Row::Assignment(a)) if a.unassigned_at.is_none() => Some((**a).clone()),
                _ => None,
            }
        })?;
        let closed = Assignment {
            unassigned_at: Some(t),
            ..open
        };
        change(
            &self.db,
            Table::CaseResponsibleHistory,
            closed.id,
            Some(Row::Assignment(Arc::new(closed))),
        )
    }

    /// A report: person + case (+ an intake note), and the script of what happens later.
    fn report(&mut self, t: i64) -> Vec<Vec<RowOp>> {
        let pid = self.new_id(Table::PersonsLost);
        let cid = self.new_id(Table::CaseCases);
        let age = self.age();
        let seen = t - self.rng.range(10 * 60_000, 36 * HOUR);
        let description = match self.rng.below(4) {
            0 => None,
            1 => Some("Vestía camiseta roja y \"jeans\"\nllevaba mochila".to_string()),
            _ => Some(format!("Persona de {} años aprox.", age.unwrap_or(30))),
        };
        let person = Person {
            id: pid,
            full_name: self.name(),
            age,
            gender: self.gender(),
            last_seen_at: seen + self.offset_ms(seen),
            reported_at: t,
            last_seen_place: self.rng.pick(PLACES).to_string(),
            latitude: self.coordinate(-4_999_999, 1_499_999),
            longitude: self.coordinate(-80_999_999, -75_200_000),
            description,
            reporter_name: (!self.rng.chance(0.1)).then(|| self.name()),
            reporter_phone: (!self.rng.chance(0.3))
                .then(|| format!("09{:08}", self.rng.below(100_000_000))),
            version: 1,
        };
        let prio_roll = self.rng.unit()
            + if matches!(age, Some(0..=17) | Some(65..=120)) {
                0.35
            } else {
                0.0
            };
        let (priority, scale) = match prio_roll {
            x if x < 0.25 => (Priority::Low, 4.0),
            x if x < 0.65 => (Priority::Medium, 2.0),
            x if x < 0.9 => (Priority::High, 1.0),
            _ => (Priority::Critical, 0.5),
        };
        let case = Case {
            id: cid,
            person_id: pid,
            status: Status::Open,
            priority,
            responsible_id: None,
            opened_at: t,
            closed_at: None,
            version: 1,
            public: false,
            public_id: None,
        };
        let mut stmts = vec![
            vec![create(Row::Person(Arc::new(person)))],
            vec![create(Row::Case(Arc::new(case)))],
        ];
        if self.rng.chance(0.4) {
            stmts.push(vec![self.action(
                cid,
                "note",
                "Reporte recibido".into(),
                None,
                t,
            )]);
        }
        // the script
        if self.rng.chance(0.92) {
            self.agenda
                .push(t + self.rng.expo(scale * HOUR as f64), Task::Assign(cid));
        }
        if self.rng.chance(0.9) {
            self.agenda.push(
                t + HOUR + self.rng.lognorm(scale * 20.0 * HOUR as f64, 1.0),
                Task::Resolve(cid),
            );
        }
        while self.rng.chance(0.7) {
            self.agenda
                .push(t + self.rng.range(HOUR, 5 * DAY), Task::Act(cid));
        }
        if self.rng.chance(0.05) {
            self.agenda
                .push(t + self.rng.range(HOUR, 2 * DAY), Task::Escalate(cid));
        }
        if self.rng.chance(0.15) {
            let n = if self.rng.chance(0.25) { 2 } else { 1 };
            for _ in 0..n {
                self.agenda
                    .push(t + self.rng.range(HOUR, 3 * DAY), Task::Correct(pid));
            }
        }
        if self.rng.chance(0.02) {
            self.agenda
                .push(t + self.rng.range(HOUR, 4 * DAY), Task::Delete(pid, cid));
        }
        if self.rng.chance(0.01) {
            self.agenda
                .push(t + self.rng.range(HOUR, 4 * DAY), Task::Relink(cid));
        }
        if self.opts.sightings {
            self.script_sightings(t, cid);
        }
        stmts
    }

    /// About a third of the cases get sightings; some are corrected or withdrawn later.
    fn script_sightings(&mut self, t: i64, case: Key) {
        let r = &mut self.sightings_rng;
        if !r.chance(0.35) {
            return;
        }
        for _ in 0..r.range(1, 3) {
            let at = t + r.range(HOUR / 2, 3 * DAY);
            self.agenda.push(at, Task::Sight(case));
        }
        if r.chance(0.3) {
            let at = t + r.range(DAY, 4 * DAY);
            self.agenda.push(at, Task::FixSighting(case));
        }
    }

    /// A new sighting of the case's person (none once the case is gone).
    fn sight(&mut self, case: Key, t: i64) -> Vec<Vec<RowOp>> {
        if self.db.case(case).is_none() {
            return vec![];
        }
        // ids without the main stream's gaps: the other tables' ids stay as they were
        self.next_id[Table::CaseSightings.index()] +=
            1 + i64::from(self.sightings_rng.chance(0.05));
        let id = self.next_id[Table::CaseSightings.index()];
        let seen = t - self.sightings_rng.range(5 * 60_000, 6 * HOUR);
        let seen_at = seen + self.offset_ms(seen);
        let r = &mut self.sightings_rng;
        let coordinates = r.chance(0.7);
        let coordinate = |r: &mut Rng, lo: i64, hi: i64| {
            coordinates.then(|| Decimal {
                unscaled: i128::from(r.range(lo, hi)),
                scale: 6,
            })
        };
        let sighting = Sighting {
            id,
            case_id: case,
            seen_at,
            place: r.pick(PLACES).to_string(),
            latitude: coordinate(r, -4_999_999, 1_499_999),
            longitude: coordinate(r, -80_999_999, -75_200_000),
            description: r
                .chance(0.6)
                .then(|| "Caminaba \"sola\"\ncerca del parque".to_string()),
            reporter_name: r.chance(0.5).then(|| format!("Testigo {id}")),
            reporter_phone: r
                .chance(0.4)
                .then(|| format!("09{:08}", r.below(100_000_000))),
            source: if r.chance(0.5) {
                SightingSource::Public
            } else {
                SightingSource::Responder
            },
            created_at: t,
            version: 1,
        };
        self.db.sightings_of.entry(case).or_default().push(id);
        stmt(Some(create(Row::Sighting(Arc::new(sighting)))))
    }

    /// Corrects the case's latest sighting (a new description, version + 1), or withdraws it.
    fn fix_sighting(&mut self, case: Key) -> Vec<Vec<RowOp>> {
        let Some(&id) = self.db.sightings_of.get(&case).and_then(|v| v.last()) else {
            return vec![];
        };
        let Some(Row::Sighting(old)) = self.db.get(Table::CaseSightings, id) else {
            return vec![];
        };
        let old = Sighting::clone(old);
        if self.sightings_rng.chance(0.3) {
            if let Some(ids) = self.db.sightings_of.get_mut(&case) {
                ids.pop();
            }
            return stmt(change(&self.db, Table::CaseSightings, id, None));
        }
        let fixed = Sighting {
            description: Some("Confirmado por la familia".into()),
            version: old.version + 1,
            ..old
        };
        stmt(change(
            &self.db,
            Table::CaseSightings,
            id,
            Some(Row::Sighting(Arc::new(fixed))),
        ))
    }
}

/// A transaction of one single-row statement (none if the row is gone).
fn stmt(op: Option<RowOp>) -> Vec<Vec<RowOp>> {
    op.map(|op| vec![vec![op]]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let d = |u: i128| {
            Some(Decimal {
                unscaled: u,
                scale: 6,
            })
        };
        assert_eq!(decimal(d(-180_653), DecimalMode::Precise), "\"/T5T\"");
        assert_eq!(decimal(d(128), DecimalMode::Precise), "\"AIA=\"");
        assert_eq!(decimal(d(516), DecimalMode::Double), "5.16E-4");
        assert_eq!(decimal(d(-78_500_000), DecimalMode::Double), "-78.5");
        assert_eq!(decimal(d(-5), DecimalMode::String), "\"-0.000005\"");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(
            zts(1_709_819_000_550, false),
            "\"2024-03-07T13:43:20.550Z\""
        );
        assert_eq!(zts(1_709_819_000_550, true), "\"2024-03-07T13:43:20.55Z\"");
        assert_eq!(zts(1_709_819_000_000, true), "\"2024-03-07T13:43:20Z\"");
    }

    #[test]
    fn murmur2_matches_kafka() {
        // values from Kafka's UtilsTest.testMurmur2
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
    }

    #[test]
    fn same_options_same_bytes() {
        let opts = GenOptions {
            persons: 50,
            schemas: false,
            ..GenOptions::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ta = generate(&opts, &mut a).expect("gen");
        let tb = generate(&opts, &mut b).expect("gen");
        assert_eq!(a, b);
        assert_eq!(ta.rows, tb.rows);
        assert!(ta.records > 50);
    }
}
