//! Column types and values -> the JSON Debezium's MySQL connector writes for them, with its
//! default settings (`decimal.handling.mode=precise`, `time.precision.mode=adaptive_time_microseconds`,
//! `bigint.unsigned.handling.mode=long`, `binary.handling.mode=bytes`), JsonConverter without schemas.
//!
//! Values reach us two ways: typed binlog values (streaming) and text from a `SELECT` (the
//! snapshot, text protocol). Both go through one [`ColumnKind`] so a column encodes the same way
//! whichever path read it; the only deliberate difference is Debezium's own: a TIMESTAMP read by
//! the snapshot (JDBC) drops trailing fraction zeros, a streamed one is padded to the column's
//! precision.
//!
//! | MySQL | Debezium type | JSON |
//! |---|---|---|
//! | TINYINT..BIGINT (TINYINT(1) too), YEAR | INT16/32/64 | number |
//! | FLOAT, DOUBLE | FLOAT32/64 | number |
//! | DECIMAL(p,s) | `Decimal` | base64 of the big-endian two's-complement unscaled value |
//! | CHAR/VARCHAR/TEXT, ENUM, SET, JSON | STRING | string |
//! | BINARY/VARBINARY/BLOB | BYTES | base64 |
//! | BIT(1) / BIT(n>1) | BOOLEAN / `Bits` | bool / base64, little-endian bytes |
//! | DATE | `Date` | days since epoch |
//! | TIME | `MicroTime` | µs |
//! | DATETIME(0-3) / DATETIME(4-6) | `Timestamp` / `MicroTimestamp` | epoch ms / µs of the wall clock read as UTC |
//! | TIMESTAMP | `ZonedTimestamp` | ISO-8601 UTC string |
//!
//! Zero dates (`0000-00-00`) become null. Spatial types are not supported (see [`ColumnKind::Unsupported`]).

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::consts::ColumnType;
use mysql_async::Value;

use crate::debezium::encode::json_str;

/// What Debezium needs to know about a column to encode its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Any integer type; `unsigned` decides how the binlog's raw bits read.
    Int {
        /// Storage width in bytes (1, 2, 3, 4, 8).
        bytes: u8,
        /// UNSIGNED.
        unsigned: bool,
    },
    /// FLOAT / REAL in its 4-byte form.
    Float,
    /// DOUBLE.
    Double,
    /// DECIMAL / NUMERIC with its scale.
    Decimal {
        /// Digits after the point.
        scale: u8,
    },
    /// Character data (CHAR, VARCHAR, TEXT, MariaDB's JSON which is LONGTEXT).
    Text,
    /// Binary data (VARBINARY, BLOB).
    Binary,
    /// BINARY(n): the binlog drops trailing zero bytes, Debezium pads them back.
    FixedBinary {
        /// n.
        len: u16,
    },
    /// BIT(n).
    Bit {
        /// n.
        bits: u16,
    },
    /// DATE.
    Date,
    /// TIME(fsp).
    Time,
    /// DATETIME(fsp).
    DateTime {
        /// Fraction digits.
        fsp: u8,
    },
    /// TIMESTAMP(fsp).
    Timestamp {
        /// Fraction digits.
        fsp: u8,
    },
    /// YEAR.
    Year,
    /// ENUM with its values (the binlog sends the 1-based index).
    Enum(Vec<String>),
    /// SET with its values (the binlog sends a bitmap).
    Set(Vec<String>),
    /// MySQL's binary JSON.
    Json,
    /// A type we do not encode (spatial, vector): values become null, counted.
    Unsupported(String),
}

/// A value that does not fit its column as we understand it (a bug or a type we misread).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: cannot encode {value} as {kind}")]
pub struct ValueError {
    /// Column name.
    pub column: String,
    /// The value, debug-printed.
    pub value: String,
    /// The kind we expected.
    pub kind: String,
}

/// One column of a captured table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// Its kind.
    pub kind: ColumnKind,
}

impl ColumnKind {
    /// From `information_schema.COLUMNS` (`DATA_TYPE`, `COLUMN_TYPE`, `NUMERIC_SCALE`,
    /// `DATETIME_PRECISION`, `CHARACTER_SET_NAME`), for the snapshot.
    pub fn from_information_schema(
        data_type: &str,
        column_type: &str,
        scale: Option<u64>,
        fsp: Option<u64>,
        charset: Option<&str>,
    ) -> ColumnKind {
        let unsigned = column_type.contains("unsigned");
        let fsp = fsp.unwrap_or(0).min(6) as u8;
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" => ColumnKind::Int { bytes: 1, unsigned },
            "smallint" => ColumnKind::Int { bytes: 2, unsigned },
            "mediumint" => ColumnKind::Int { bytes: 3, unsigned },
            "int" | "integer" => ColumnKind::Int { bytes: 4, unsigned },
            "bigint" => ColumnKind::Int { bytes: 8, unsigned },
            "float" => ColumnKind::Float,
            "double" | "real" | "double precision" => ColumnKind::Double,
            "decimal" | "numeric" => ColumnKind::Decimal {
                scale: scale.unwrap_or(0).min(255) as u8,
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                if charset.is_none() || charset == Some("binary") {
                    ColumnKind::Binary
                } else {
                    ColumnKind::Text
                }
            }
            "binary" => ColumnKind::FixedBinary {
                len: parse_width(column_type).unwrap_or(1),
            },
            "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ColumnKind::Binary,
            "bit" => ColumnKind::Bit {
                bits: parse_width(column_type).unwrap_or(1),
            },
            "date" => ColumnKind::Date,
            "time" => ColumnKind::Time,
            "datetime" => ColumnKind::DateTime { fsp },
            "timestamp" => ColumnKind::Timestamp { fsp },
            "year" => ColumnKind::Year,
            "enum" => ColumnKind::Enum(parse_values(column_type)),
            "set" => ColumnKind::Set(parse_values(column_type)),
            "json" => ColumnKind::Json,
            other => ColumnKind::Unsupported(other.to_string()),
        }
    }

    /// From a binlog TABLE_MAP column: its real type, metadata bytes, signedness, charset and
    /// the ENUM/SET values from the FULL row metadata.
    pub fn from_binlog(
        ty: ColumnType,
        meta: &[u8],
        unsigned: bool,
        charset: u16,
        values: Option<Vec<String>>,
    ) -> ColumnKind {
        use ColumnType::*;
        let fsp = meta.first().copied().unwrap_or(0).min(6);
        match ty {
            MYSQL_TYPE_TINY => ColumnKind::Int { bytes: 1, unsigned },
            MYSQL_TYPE_SHORT => ColumnKind::Int { bytes: 2, unsigned },
            MYSQL_TYPE_INT24 => ColumnKind::Int { bytes: 3, unsigned },
            MYSQL_TYPE_LONG => ColumnKind::Int { bytes: 4, unsigned },
            MYSQL_TYPE_LONGLONG => ColumnKind::Int { bytes: 8, unsigned },
            MYSQL_TYPE_FLOAT => ColumnKind::Float,
            MYSQL_TYPE_DOUBLE => ColumnKind::Double,
            MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => ColumnKind::Decimal {
                scale: meta.get(1).copied().unwrap_or(0),
            },
            MYSQL_TYPE_STRING if charset == 63 => ColumnKind::FixedBinary {
                len: fixed_string_len(meta),
            },
            MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB => {
                // charset 63 is `binary`; 0 means the metadata did not say (treat as text)
                if charset == 63 {
                    ColumnKind::Binary
                } else {
                    ColumnKind::Text
                }
            }
            MYSQL_TYPE_BIT => ColumnKind::Bit {
                bits: u16::from(meta.get(1).copied().unwrap_or(0)) * 8
                    + u16::from(meta.first().copied().unwrap_or(0)),
            },
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => ColumnKind::Date,
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => ColumnKind::Time,
            MYSQL_TYPE_DATETIME => ColumnKind::DateTime { fsp: 0 },
            MYSQL_TYPE_DATETIME2 => ColumnKind::DateTime { fsp },
            MYSQL_TYPE_TIMESTAMP => ColumnKind::Timestamp { fsp: 0 },
            MYSQL_TYPE_TIMESTAMP2 => ColumnKind::Timestamp { fsp },
            MYSQL_TYPE_YEAR => ColumnKind::Year,
            MYSQL_TYPE_ENUM => ColumnKind::Enum(values.unwrap_or_default()),
            MYSQL_TYPE_SET => ColumnKind::Set(values.unwrap_or_default()),
            MYSQL_TYPE_JSON => ColumnKind::Json,
            other => ColumnKind::Unsupported(format!("{other:?}")),
        }
    }

    fn name(&self) -> String {
        format!("{self:?}")
    }
}

/// The declared byte length of a CHAR/BINARY column from its TABLE_MAP metadata (the same
/// packing mysql_common decodes: lengths above 255 borrow two bits of the type byte).
fn fixed_string_len(meta: &[u8]) -> u16 {
    match meta {
        [b0, b1, ..] if (b0 & 0x30) != 0x30 => {
            u16::from(*b1) | ((u16::from(b0 & 0x30) ^ 0x30) << 4)
        }
        [_, b1, ..] => u16::from(*b1),
        _ => 0,
    }
}

/// `bit(12)` -> 12.
fn parse_width(column_type: &str) -> Option<u16> {
    let open = column_type.find('(')?;
    let close = column_type[open..].find(')')? + open;
    column_type[open + 1..close].trim().parse().ok()
}

/// `enum('a','b''c')` -> `["a", "b'c"]`.
fn parse_values(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = column_type[open + 1..].trim_end_matches(')');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars().peekable();
    let mut inside = false;
    while let Some(c) = chars.next() {
        match (inside, c) {
            (false, '\'') => inside = true,
            (true, '\'') if chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            (true, '\'') => {
                inside = false;
                out.push(std::mem::take(&mut cur));
            }
            (true, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (true, c) => cur.push(c),
            _ => {}
        }
    }
    out
}

fn bad(column: &str, kind: &ColumnKind, value: impl std::fmt::Debug) -> ValueError {
    let mut v = format!("{value:?}");
    // at most 80 bytes, cut on a character boundary (`truncate` panics inside one)
    let cut = (0..=v.len().min(80))
        .rev()
        .find(|&i| v.is_char_boundary(i))
        .unwrap_or(0);
    v.truncate(cut);
    ValueError {
        column: column.to_string(),
        value: v,
        kind: kind.name(),
    }
}

fn b64(bytes: &[u8]) -> String {
    json_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A float as Jackson prints it closely enough to read back the same number (`1.0`, not `1`).
fn float_json(x: f64, shortest: String) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if shortest.contains(['.', 'e', 'E']) {
        shortest
    } else if x.abs() >= 1e16 {
        // Rust prints a large float with all its digits (309 for f64::MAX), which JSON
        // readers, serde_json included, refuse as out of range; the exponent form is exact
        format!("{x:e}")
    } else {
        format!("{shortest}.0")
    }
}

/// The JSON of a value read from the binlog.
pub fn binlog_json(column: &str, kind: &ColumnKind, value: &Value) -> Result<String, ValueError> {
    use ColumnKind as K;
    if matches!(value, Value::NULL) {
        return Ok("null".into());
    }
    let err = || bad(column, kind, value);
    Ok(match (kind, value) {
        (K::Int { bytes, unsigned }, Value::Int(n)) => int_json(*n, *bytes, *unsigned),
        (K::Int { .. }, Value::UInt(n)) => (*n as i64).to_string(),
        (K::Float, Value::Float(f)) => float_json(f64::from(*f), f.to_string()),
        (K::Float, Value::Double(f)) => {
            // narrowed first: a double beyond the float range is infinite as a float
            let f = *f as f32;
            float_json(f64::from(f), f.to_string())
        }
        (K::Double, Value::Double(f)) => float_json(*f, f.to_string()),
        (K::Double, Value::Float(f)) => float_json(f64::from(*f), f.to_string()),
        (K::Decimal { scale }, Value::Bytes(b)) => {
            let text = std::str::from_utf8(b).map_err(|_| err())?;
            decimal_json(text, *scale).ok_or_else(err)?
        }
        (K::Text | K::Json, Value::Bytes(b)) => json_str(&String::from_utf8_lossy(b)),
        (K::Binary, Value::Bytes(b)) => b64(b),
        (K::FixedBinary { len }, Value::Bytes(b)) => {
            let mut padded = b.clone();
            if padded.len() < usize::from(*len) {
                padded.resize(usize::from(*len), 0);
            }
            b64(&padded)
        }
        (K::Bit { bits }, Value::Bytes(b)) => bit_json(b, *bits),
        (K::Date, Value::Date(y, m, d, ..)) => date_json(i32::from(*y), *m, *d),
        (K::DateTime { fsp }, Value::Date(y, mo, d, h, mi, s, us)) => {
            datetime_json(i32::from(*y), *mo, *d, *h, *mi, *s, *us, *fsp)
        }
        (K::Time, Value::Time(neg, days, h, m, s, us)) => {
            time_json(*neg, *days, *h, *m, *s, *us).to_string()
        }
        (K::Timestamp { fsp }, Value::Bytes(b)) => {
            // "secs" or "secs.micros" (mysql_common's TIMESTAMP2 form)
            let text = std::str::from_utf8(b).map_err(|_| err())?;
            let (secs, micros) = match text.split_once('.') {
                Some((s, f)) => (s, f.parse::<u32>().map_err(|_| err())?),
                None => (text, 0),
            };
            let secs: i64 = secs.parse().map_err(|_| err())?;
            json_str(&zoned(secs, micros, *fsp, false).ok_or_else(err)?)
        }
        (K::Timestamp { fsp }, Value::Int(secs)) => {
            json_str(&zoned(*secs, 0, *fsp, false).ok_or_else(err)?)
        }
        (K::Year, Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<i32>().ok())
            .ok_or_else(err)?
            .to_string(),
        (K::Year, Value::Int(y)) => y.to_string(),
        (K::Enum(values), Value::Int(i)) => match usize::try_from(*i) {
            Ok(0) => json_str(""),
            Ok(i) => json_str(values.get(i - 1).ok_or_else(err)?),
            Err(_) => return Err(err()),
        },
        (K::Set(values), Value::Bytes(b)) => {
            // little-endian bitmap, bit i = values[i]
            let mut picked = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if b.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0) {
                    picked.push(v.as_str());
                }
            }
            json_str(&picked.join(","))
        }
        (K::Unsupported(_), _) => "null".into(),
        _ => return Err(err()),
    })
}

/// The JSON of a value read as text by the snapshot's `SELECT` (session time zone UTC).
pub fn text_json(
    column: &str,
    kind: &ColumnKind,
    text: Option<&[u8]>,
) -> Result<String, ValueError> {
    use ColumnKind as K;
    let Some(raw) = text else {
        return Ok("null".into());
    };
    let err = || bad(column, kind, String::from_utf8_lossy(raw));
    // binary kinds carry raw bytes, not text
    match kind {
        K::Binary | K::FixedBinary { .. } => return Ok(b64(raw)),
        K::Bit { bits } => return Ok(bit_json(raw, *bits)),
        K::Unsupported(_) => return Ok("null".into()),
        _ => {}
    }
    let t = std::str::from_utf8(raw).map_err(|_| err())?;
    Ok(match kind {
        K::Int { .. } => {
            if let Ok(n) = t.parse::<i64>() {
                n.to_string()
            } else {
                // BIGINT UNSIGNED above i64::MAX: Debezium's `long` mode keeps the low 64 bits
                (t.parse::<u64>().map_err(|_| err())? as i64).to_string()
            }
        }
        K::Float => {
            let f: f32 = t.parse().map_err(|_| err())?;
            float_json(f64::from(f), f.to_string())
        }
        K::Double => {
            let f: f64 = t.parse().map_err(|_| err())?;
            float_json(f, f.to_string())
        }
        K::Decimal { scale } => decimal_json(t, *scale).ok_or_else(err)?,
        K::Text | K::Json | K::Enum(_) | K::Set(_) => json_str(t),
        K::Year => t.parse::<i32>().map_err(|_| err())?.to_string(),
        K::Date => {
            let (y, m, d) = parse_date(t).ok_or_else(err)?;
            date_json(y, m, d)
        }
        K::DateTime { fsp } => {
            let (date, time) = t.split_once(' ').ok_or_else(err)?;
            let (y, mo, d) = parse_date(date).ok_or_else(err)?;
            let (neg, h, mi, s, us) = parse_time(time).ok_or_else(err)?;
            if neg || h > 23 {
                return Err(err());
            }
            datetime_json(y, mo, d, h as u8, mi, s, us, *fsp)
        }
        K::Time => {
            let (neg, h, mi, s, us) = parse_time(t).ok_or_else(err)?;
            let micros = (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000
                + i64::from(us);
            (if neg { -micros } else { micros }).to_string()
        }
        K::Timestamp { .. } => {
            if t.starts_with("0000-00-00") {
                return Ok("null".into());
            }
            let (date, time) = t.split_once(' ').ok_or_else(err)?;
            let (y, mo, d) = parse_date(date).ok_or_else(err)?;
            let (_, h, mi, s, us) = parse_time(time).ok_or_else(err)?;
            let secs = NaiveDate::from_ymd_opt(y, u32::from(mo), u32::from(d))
                .and_then(|d| d.and_hms_opt(h, u32::from(mi), u32::from(s)))
                .ok_or_else(err)?
                .and_utc()
                .timestamp();
            json_str(&zoned(secs, us, 6, true).ok_or_else(err)?)
        }
        // raw-byte kinds returned above
        K::Binary | K::FixedBinary { .. } | K::Bit { .. } | K::Unsupported(_) => "null".into(),
    })
}

/// Integers: the binlog hands signed bits; UNSIGNED columns re-read them at their width.
fn int_json(n: i64, bytes: u8, unsigned: bool) -> String {
    if !unsigned || n >= 0 {
        return n.to_string();
    }
    let bits = u32::from(bytes.clamp(1, 8)) * 8;
    if bits >= 64 {
        return n.to_string(); // `long` mode: BIGINT UNSIGNED keeps the two's-complement bits
    }
    ((n as u64) & ((1u64 << bits) - 1)).to_string()
}

/// BIT(1) is a boolean; wider BITs are bytes in little-endian order (Debezium's `Bits`).
fn bit_json(big_endian: &[u8], bits: u16) -> String {
    if bits <= 1 {
        return (big_endian.iter().any(|b| *b != 0)).to_string();
    }
    let mut le = big_endian.to_vec();
    le.reverse();
    b64(&le)
}

fn date_json(y: i32, m: u8, d: u8) -> String {
    if y == 0 || m == 0 || d == 0 {
        return "null".into();
    }
    NaiveDate::from_ymd_opt(y, u32::from(m), u32::from(d))
        .map(|date| (date - NaiveDate::default()).num_days().to_string())
        .unwrap_or_else(|| "null".into())
}

#[allow(clippy::too_many_arguments)]
fn datetime_json(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, fsp: u8) -> String {
    if y == 0 || mo == 0 || d == 0 {
        return "null".into();
    }
    let t: Option<NaiveDateTime> = NaiveDate::from_ymd_opt(y, u32::from(mo), u32::from(d))
        .and_then(|date| date.and_hms_micro_opt(u32::from(h), u32::from(mi), u32::from(s), us));
    match t {
        Some(t) if fsp <= 3 => t.and_utc().timestamp_millis().to_string(),
        Some(t) => t.and_utc().timestamp_micros().to_string(),
        None => "null".into(),
    }
}

fn time_json(neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32) -> i64 {
    let secs = i64::from(days) * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
    let micros = secs * 1_000_000 + i64::from(us);
    if neg {
        -micros
    } else {
        micros
    }
}

/// `2020-07-17` -> (2020, 7, 17).
fn parse_date(t: &str) -> Option<(i32, u8, u8)> {
    let mut it = t.splitn(3, '-');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// `[-]HHH:MM:SS[.ffffff]` -> (negative, hours, minutes, seconds, micros).
fn parse_time(t: &str) -> Option<(bool, u32, u8, u8, u32)> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (hms, frac) = match t.split_once('.') {
        Some((a, b)) => (a, b),
        None => (t, ""),
    };
    let mut it = hms.splitn(3, ':');
    let h = it.next()?.parse().ok()?;
    let m = it.next()?.parse().ok()?;
    let s = it.next()?.parse().ok()?;
    let micros = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000000".chars()).take(6).collect();
        digits.parse().ok()?
    };
    Some((neg, h, m, s, micros))
}

/// `io.debezium.time.ZonedTimestamp`: UTC ISO-8601. Streamed values are padded to the column's
/// `fsp` digits; snapshot (JDBC) values drop trailing zeros and the point.
pub fn zoned(secs: i64, micros: u32, fsp: u8, snapshot: bool) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(secs, micros.min(999_999) * 1000)?;
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let digits = format!("{:06}", micros.min(999_999));
    let frac = if snapshot {
        digits.trim_end_matches('0').to_string()
    } else {
        digits[..usize::from(fsp.min(6))].to_string()
    };
    Some(if frac.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{frac}Z")
    })
}

/// A decimal's text (`-123.4567`) at `scale` -> Kafka Connect `Decimal` bytes, base64 JSON string.
/// Any precision (DECIMAL(65, s) does not fit an i128).
pub fn decimal_json(text: &str, scale: u8) -> Option<String> {
    let (neg, digits) = decimal_digits(text, scale)?;
    Some(b64(&twos_complement(neg, &digits)))
}

/// The unscaled digits of `text` at `scale` (padding or checking the fraction).
fn decimal_digits(text: &str, scale: u8) -> Option<(bool, Vec<u8>)> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > usize::from(scale)
        && frac.as_bytes()[usize::from(scale)..]
            .iter()
            .any(|b| *b != b'0')
    {
        return None; // more digits than the column holds: refuse rather than round
    }
    let mut digits = Vec::with_capacity(int.len() + usize::from(scale));
    for b in int.bytes().chain(frac.bytes().take(usize::from(scale))) {
        if !b.is_ascii_digit() {
            return None;
        }
        digits.push(b - b'0');
    }
    digits.extend(std::iter::repeat_n(
        0,
        usize::from(scale).saturating_sub(frac.len()),
    ));
    Some((neg, digits))
}

/// Decimal digits -> minimal big-endian two's complement (Java's `BigInteger.toByteArray`).
fn twos_complement(neg: bool, digits: &[u8]) -> Vec<u8> {
    // magnitude in base 256, big-endian
    let mut mag: Vec<u8> = vec![0];
    for d in digits {
        let mut carry = u32::from(*d);
        for byte in mag.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let is_zero = mag.iter().all(|b| *b == 0);
    // one spare byte so the sign bit has room
    mag.insert(0, 0);
    if neg && !is_zero {
        for b in mag.iter_mut() {
            *b = !*b;
        }
        for b in mag.iter_mut().rev() {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            if !overflow {
                break;
            }
        }
    }
    let mut start = 0;
    while start + 1 < mag.len() {
        let (b, next) = (mag[start], mag[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    mag[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debezium::encode::decimal_bytes;

    #[test]
    fn big_decimals_match_the_i128_encoder_and_the_fixture() {
        for v in [
            0i128,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            51_507_351,
            -33_868_820,
            i64::MAX as i128,
            i64::MIN as i128,
            10i128.pow(30) + 7,
            -(10i128.pow(30) + 7),
        ] {
            let text = v.to_string();
            let (neg, digits) = decimal_digits(&text, 0).expect("digits");
            assert_eq!(twos_complement(neg, &digits), decimal_bytes(v), "{v}");
        }
        // flink-cdc full_types fixture: DECIMAL(8,4) 123.4567 -> "EtaH", NUMERIC(6,0) 346 -> "AVo=",
        // DECIMAL(65,1) 34567892.1 -> "FJqkSQ=="
        assert_eq!(decimal_json("123.4567", 4).as_deref(), Some("\"EtaH\""));
        assert_eq!(decimal_json("346", 0).as_deref(), Some("\"AVo=\""));
        assert_eq!(
            decimal_json("34567892.1", 1).as_deref(),
            Some("\"FJqkSQ==\"")
        );
        // binlog-capture.md: DECIMAL(9,6)
        assert_eq!(
            decimal_json("51.507351", 6).as_deref(),
            Some("\"AxHwlw==\"")
        );
        assert_eq!(
            decimal_json("-33.868820", 6).as_deref(),
            Some("\"/fsz7A==\"")
        );
        assert_eq!(decimal_json("-0.000001", 6).as_deref(), Some("\"/w==\""));
        // padding and refusal
        assert_eq!(decimal_json("1.5", 3), decimal_json("1.500", 3));
        assert_eq!(decimal_json("1.2345", 3), None);
        assert_eq!(decimal_json("1x", 0), None);
    }

    /// Found by fuzz/capture_values (AddressSanitizer run): a DECIMAL text whose fraction had a
    /// multi-byte character past the scale was sliced inside that character and panicked.
    #[test]
    fn a_decimal_text_with_a_multibyte_character_past_the_scale_is_refused() {
        // the scale's byte index falls inside the two bytes of 'п'
        assert_eq!(decimal_json("1.\u{43f}0", 1), None);
        assert_eq!(decimal_json("1.0\u{43f}0", 2), None);
        assert_eq!(decimal_json("1.0\u{43f}", 1), None);
        assert!(decimal_json("1.50", 1).is_some());
    }

    #[test]
    fn sixty_five_digit_decimals_encode() {
        let text = "9".repeat(65);
        let json = decimal_json(&text, 0).expect("encodes");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(json.trim_matches('"'))
            .expect("base64");
        assert_eq!(bytes[0] & 0x80, 0, "positive");
        assert_eq!(bytes.len(), 28); // 2^215 < 10^65 - 1 < 2^216, plus a sign byte
        let neg = decimal_json(&format!("-{text}"), 0).expect("encodes");
        assert_ne!(neg, json);
    }

    #[test]
    fn times_follow_debezium_defaults() {
        // flink-cdc full_types: date 18460, time 64822000000, datetime(3) ms, datetime(6) µs
        assert_eq!(date_json(2020, 7, 17), "18460");
        assert_eq!(time_json(false, 0, 18, 0, 22, 0), 64_822_000_000);
        assert_eq!(
            datetime_json(2020, 7, 17, 18, 0, 22, 123_000, 3),
            "1595008822123"
        );
        assert_eq!(
            datetime_json(2020, 7, 17, 18, 0, 22, 123_456, 6),
            "1595008822123456"
        );
        assert_eq!(date_json(0, 0, 0), "null");
        assert_eq!(
            zoned(1_594_994_422, 0, 0, false).as_deref(),
            Some("2020-07-17T14:00:22Z")
        );
        assert_eq!(
            zoned(1_709_287_872, 345_000, 3, false).as_deref(),
            Some("2024-03-01T10:11:12.345Z")
        );
        assert_eq!(
            zoned(1_709_287_872, 300_000, 3, false).as_deref(),
            Some("2024-03-01T10:11:12.300Z")
        );
        assert_eq!(
            zoned(1_709_287_872, 300_000, 3, true).as_deref(),
            Some("2024-03-01T10:11:12.3Z")
        );
    }

    #[test]
    fn text_and_binlog_paths_agree() {
        let cases: Vec<(ColumnKind, Value, &[u8])> = vec![
            (
                ColumnKind::Int {
                    bytes: 1,
                    unsigned: true,
                },
                Value::Int(-1),
                b"255",
            ),
            (
                ColumnKind::Int {
                    bytes: 4,
                    unsigned: true,
                },
                Value::Int(-1),
                b"4294967295",
            ),
            (
                ColumnKind::Int {
                    bytes: 8,
                    unsigned: false,
                },
                Value::Int(i64::MIN),
                b"-9223372036854775808",
            ),
            (ColumnKind::Float, Value::Float(123.102), b"123.102"),
            (ColumnKind::Double, Value::Double(404.4443), b"404.4443"),
            (ColumnKind::Double, Value::Double(1.0), b"1"),
            (
                ColumnKind::Decimal { scale: 6 },
                Value::Bytes(b"-33.868820".to_vec()),
                b"-33.868820",
            ),
            (
                ColumnKind::Text,
                Value::Bytes("Ñandú \"x\"".into()),
                "Ñandú \"x\"".as_bytes(),
            ),
            (ColumnKind::Binary, Value::Bytes(vec![0x10]), &[0x10]),
            (ColumnKind::Bit { bits: 1 }, Value::Bytes(vec![0]), &[0]),
            (
                ColumnKind::Bit { bits: 16 },
                Value::Bytes(vec![1, 2]),
                &[1, 2],
            ),
            (
                ColumnKind::Date,
                Value::Date(2020, 7, 17, 0, 0, 0, 0),
                b"2020-07-17",
            ),
            (
                ColumnKind::DateTime { fsp: 3 },
                Value::Date(2024, 2, 28, 23, 59, 58, 999_000),
                b"2024-02-28 23:59:58.999",
            ),
            (
                ColumnKind::Time,
                Value::Time(true, 1, 2, 3, 4, 500_000),
                b"-26:03:04.500000",
            ),
            (ColumnKind::Year, Value::Bytes(b"2021".to_vec()), b"2021"),
            (
                ColumnKind::Enum(vec!["red".into(), "white".into()]),
                Value::Int(1),
                b"red",
            ),
            (
                ColumnKind::Set(vec!["a".into(), "b".into(), "c".into()]),
                Value::Bytes(vec![0b011]),
                b"a,b",
            ),
        ];
        for (kind, v, text) in cases {
            let a = binlog_json("c", &kind, &v).expect("binlog");
            let b = text_json("c", &kind, Some(text)).expect("text");
            assert_eq!(a, b, "{kind:?}");
        }
        assert_eq!(
            text_json("c", &ColumnKind::Bit { bits: 1 }, Some(&[1])).as_deref(),
            Ok("true")
        );
        assert_eq!(
            text_json("c", &ColumnKind::Double, Some(b"1")).as_deref(),
            Ok("1.0")
        );
    }

    #[test]
    fn timestamps_differ_only_as_debezium_does() {
        let kind = ColumnKind::Timestamp { fsp: 3 };
        let streamed =
            binlog_json("t", &kind, &Value::Bytes(b"1709287872.300000".to_vec())).expect("ok");
        let read = text_json("t", &kind, Some(b"2024-03-01 10:11:12.300")).expect("ok");
        assert_eq!(streamed, "\"2024-03-01T10:11:12.300Z\"");
        assert_eq!(read, "\"2024-03-01T10:11:12.3Z\"");
    }

    #[test]
    fn information_schema_types_parse() {
        assert_eq!(
            ColumnKind::from_information_schema("int", "int(10) unsigned", None, None, None),
            ColumnKind::Int {
                bytes: 4,
                unsigned: true
            }
        );
        assert_eq!(
            ColumnKind::from_information_schema(
                "enum",
                "enum('red','it''s')",
                None,
                None,
                Some("utf8mb4")
            ),
            ColumnKind::Enum(vec!["red".into(), "it's".into()])
        );
        assert_eq!(
            ColumnKind::from_information_schema("bit", "bit(64)", None, None, None),
            ColumnKind::Bit { bits: 64 }
        );
        assert_eq!(
            ColumnKind::from_information_schema(
                "varchar",
                "varchar(10)",
                None,
                None,
                Some("utf8mb4")
            ),
            ColumnKind::Text
        );
        assert_eq!(
            ColumnKind::from_information_schema("datetime", "datetime(3)", None, Some(3), None),
            ColumnKind::DateTime { fsp: 3 }
        );
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let kind = ColumnKind::Decimal { scale: 2 };
        assert!(text_json("d", &kind, Some(b"abc")).is_err());
        assert!(binlog_json("d", &kind, &Value::Int(3)).is_err());
        assert!(text_json("x", &ColumnKind::Date, Some(b"20-")).is_err());
        assert!(binlog_json("e", &ColumnKind::Enum(vec![]), &Value::Int(4)).is_err());
    }

    #[test]
    fn an_error_quoting_a_long_value_cuts_it_between_characters() {
        // Found by fuzz/capture_values: the quoted value was cut at byte 80, which panicked
        // when that byte fell inside a multi-byte character.
        let value = format!("{}é tail", "x".repeat(78)); // Debug adds a quote: é spans 79-80
        let e = bad("c", &ColumnKind::Json, &value);
        assert!(e.value.len() <= 80, "{}", e.value);
        assert!(e.value.starts_with("\"xxx"), "{}", e.value);
    }

    #[test]
    fn huge_doubles_are_written_with_an_exponent() {
        // Found by fuzz/binlog_rows: f64::MIN was written as 309 digits and ".0", which
        // serde_json refuses ("number out of range"), so the record would not decode.
        for x in [f64::MIN, f64::MAX, -1e300, 1e16, 123_456_789e10] {
            let json = binlog_json("d", &ColumnKind::Double, &Value::Double(x)).expect("a double");
            let back: f64 = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, x, "{json}");
        }
        assert_eq!(
            binlog_json("d", &ColumnKind::Double, &Value::Double(1234.0)),
            Ok("1234.0".to_string())
        );
    }

    #[test]
    fn a_double_beyond_float_range_is_null_not_infinity() {
        // Found by fuzz/capture_values: a DOUBLE value for a FLOAT column was checked as a
        // double but printed as a float, so 1e300 became `inf.0`, which is not JSON.
        for x in [1e300, -1e300, f64::MAX] {
            assert_eq!(
                binlog_json("f", &ColumnKind::Float, &Value::Double(x)),
                Ok("null".to_string()),
                "{x:e}"
            );
        }
        assert_eq!(
            binlog_json("f", &ColumnKind::Float, &Value::Double(1.5)),
            Ok("1.5".to_string())
        );
    }
}
