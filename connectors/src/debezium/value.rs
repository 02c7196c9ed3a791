//! Column values: from the raw JSON of one field to a typed [`Value`], by the column's semantic
//! type when the message carries a schema, else by the catalog type. Units are never guessed
//! from magnitudes.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use lpm_engine::model::Decimal;
use serde_json::value::RawValue;

use crate::catalog::ColumnType;

/// A decoded column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// An exact decimal (also BIGINT UNSIGNED beyond `i64`).
    Decimal(Decimal),
    /// A float (FLOAT/DOUBLE columns only; decimals never go through here).
    Float(f64),
    /// A flag (TINYINT(1), BOOLEAN, BIT(1)).
    Bool(bool),
    /// Text.
    Text(String),
    /// An instant, UTC epoch milliseconds (sub-ms digits are dropped).
    Instant(i64),
    /// A local wall-clock time, microseconds since 1970-01-01T00:00 read as UTC.
    WallClock(i64),
    /// Days since the epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// What a message's schema says about one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSchema {
    /// The Connect type (`int64`, `string`, `bytes`, ...).
    pub ty: String,
    /// The semantic name (`io.debezium.time.Timestamp`, `org.apache.kafka.connect.data.Decimal`, ...).
    pub name: Option<String>,
    /// `parameters.scale` for decimals.
    pub scale: Option<u32>,
}

fn bad(detail: impl Into<String>) -> String {
    detail.into()
}

/// The JSON text of a string value, unescaped.
fn string(raw: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    serde_json::from_str::<std::borrow::Cow<'_, str>>(raw)
        .map_err(|e| bad(format!("expected a string: {e}")))
}

/// Exact decimal from decimal text (`-12.5`, `5.16E-4`, `1e3`).
pub fn parse_decimal_text(s: &str) -> Option<Decimal> {
    let s = s.trim();
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut unscaled: i128 = 0;
    for c in int.chars().chain(frac.chars()) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(c as u8 - b'0'))?;
    }
    let mut scale = frac.len() as i32 - exp;
    while scale < 0 {
        unscaled = unscaled.checked_mul(10)?;
        scale += 1;
    }
    Some(Decimal {
        unscaled: if neg { -unscaled } else { unscaled },
        scale: scale as u32,
    })
}

/// Exact decimal from Kafka Connect `Decimal` bytes: big-endian two's complement, unscaled.
pub fn decimal_from_bytes(bytes: &[u8], scale: u32) -> Option<Decimal> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    Some(Decimal { unscaled: v, scale })
}

fn base64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| bad(format!("bad base64: {e}")))
}

/// Epoch milliseconds from ISO-8601 text with 0-9 fraction digits and `Z` or an offset.
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    // no zone: read as UTC (RisingWave-style or `isostring` values)
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    None
}

fn number(raw: &str) -> Option<&str> {
    let c = raw.as_bytes().first()?;
    (c.is_ascii_digit() || *c == b'-').then_some(raw)
}

fn int_text(raw: &str) -> Result<i64, String> {
    raw.parse::<i64>()
        .map_err(|_| bad(format!("expected an integer, got {raw}")))
}

/// Decodes one field. `schema` is the field's schema when the message carries one.
pub fn decode(
    raw: &RawValue,
    ty: ColumnType,
    schema: Option<&FieldSchema>,
) -> Result<Value, String> {
    let raw = raw.get();
    if raw == "null" {
        return Ok(Value::Null);
    }
    let semantic = schema.and_then(|s| s.name.as_deref());
    let is_str = raw.starts_with('"');
    match ty {
        ColumnType::Int | ColumnType::Year => match raw {
            "true" => Ok(Value::Int(1)),
            "false" => Ok(Value::Int(0)),
            _ if is_str => Ok(Value::Int(int_text(&string(raw)?)?)),
            _ => Ok(Value::Int(int_text(raw)?)),
        },
        ColumnType::Flag => match raw {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad(format!("expected 0, 1, true or false, got {raw}"))),
        },
        ColumnType::Decimal { scale } => decode_decimal(raw, scale, schema),
        ColumnType::Float => match number(raw) {
            Some(n) => n
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|e| bad(e.to_string())),
            None => Err(bad(format!("expected a number, got {raw}"))),
        },
        ColumnType::Text => {
            if is_str {
                Ok(Value::Text(string(raw)?.into_owned()))
            } else {
                // JSON columns may arrive as nested JSON; keep their text
                Ok(Value::Text(raw.to_string()))
            }
        }
        ColumnType::DateTime { fsp } => {
            if is_str {
                let s = string(raw)?;
                return parse_instant(&s)
                    .map(|ms| Value::WallClock(ms * 1000))
                    .ok_or_else(|| bad(format!("bad datetime {s}")));
            }
            let n = int_text(raw)?;
            let micros = match semantic {
                Some("io.debezium.time.Timestamp")
                | Some("org.apache.kafka.connect.data.Timestamp") => n.checked_mul(1000),
                Some("io.debezium.time.MicroTimestamp") => Some(n),
                Some("io.debezium.time.NanoTimestamp") => Some(n.div_euclid(1000)),
                Some(other) => {
                    return Err(bad(format!(
                        "unexpected semantic type {other} for a DATETIME"
                    )))
                }
                // Debezium's mapping by precision: DATETIME(0-3) in ms, (4-6) in µs
                None if fsp <= 3 => n.checked_mul(1000),
                None => Some(n),
            };
            micros
                .map(Value::WallClock)
                .ok_or_else(|| bad("datetime out of range"))
        }
        ColumnType::Timestamp => {
            if is_str {
                let s = string(raw)?;
                return parse_instant(&s)
                    .map(Value::Instant)
                    .ok_or_else(|| bad(format!("bad timestamp {s}")));
            }
            let n = int_text(raw)?;
            match semantic {
                Some("org.apache.kafka.connect.data.Timestamp")
                | Some("io.debezium.time.Timestamp") => Ok(Value::Instant(n)),
                Some("io.debezium.time.MicroTimestamp") => Ok(Value::Instant(n.div_euclid(1000))),
                Some("io.debezium.time.NanoTimestamp") => {
                    Ok(Value::Instant(n.div_euclid(1_000_000)))
                }
                _ => Err(bad(
                    "a number for a TIMESTAMP column needs a schema naming its unit",
                )),
            }
        }
        ColumnType::Date => {
            if is_str {
                let s = string(raw)?;
                let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|e| bad(format!("bad date {s}: {e}")))?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| bad("epoch"))?;
                return Ok(Value::Date((d - epoch).num_days() as i32));
            }
            Ok(Value::Date(int_text(raw)? as i32))
        }
        ColumnType::Time => {
            let n = int_text(raw)?;
            match semantic {
                Some("org.apache.kafka.connect.data.Time") | Some("io.debezium.time.Time") => {
                    Ok(Value::Time(n * 1000))
                }
                Some("io.debezium.time.NanoTime") => Ok(Value::Time(n / 1000)),
                _ => Ok(Value::Time(n)),
            }
        }
        ColumnType::Bytes => {
            if raw == "true" || raw == "false" {
                return Ok(Value::Bool(raw == "true"));
            }
            Ok(Value::Bytes(base64(&string(raw)?)?))
        }
    }
}

fn decode_decimal(raw: &str, scale: u32, schema: Option<&FieldSchema>) -> Result<Value, String> {
    let exact = |d: Decimal| Value::Decimal(d.rescale(scale).unwrap_or(d));
    if raw.starts_with('{') {
        // io.debezium.data.VariableScaleDecimal
        #[derive(serde::Deserialize)]
        struct Vsd<'a> {
            scale: u32,
            #[serde(borrow)]
            value: std::borrow::Cow<'a, str>,
        }
        let v: Vsd<'_> = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        return decimal_from_bytes(&base64(&v.value)?, v.scale)
            .map(Value::Decimal)
            .ok_or_else(|| bad("bad decimal bytes"));
    }
    if let Some(n) = number(raw) {
        // double mode, or JsonConverter decimal.format=NUMERIC: exact from the text
        return parse_decimal_text(n)
            .map(exact)
            .ok_or_else(|| bad(format!("bad decimal {n}")));
    }
    let s = string(raw)?;
    let as_bytes = match schema {
        Some(f)
            if f.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal")
                || f.ty == "bytes" =>
        {
            true
        }
        Some(f) if f.ty == "string" => false,
        // Without a schema: string mode writes `toPlainString`, which has a '.' for any scale
        // above 0 (and may have a sign); base64 never contains '.' or '-'.
        _ => !(s.contains('.') || s.starts_with('-')),
    };
    if as_bytes {
        // The scale comes from our DDL: a schema's can be stale (fixture flink-cdc).
        decimal_from_bytes(&base64(&s)?, scale)
            .map(exact)
            .ok_or_else(|| bad("bad decimal bytes"))
    } else {
        parse_decimal_text(&s)
            .map(exact)
            .ok_or_else(|| bad(format!("bad decimal {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).expect("raw")
    }

    fn dec(u: i128, scale: u32) -> Value {
        Value::Decimal(Decimal { unscaled: u, scale })
    }

    #[test]
    fn precise_decimals_from_base64() {
        let d6 = ColumnType::Decimal { scale: 6 };
        assert_eq!(decode(&raw("\"/T5T\""), d6, None), Ok(dec(-180653, 6)));
        let d4 = ColumnType::Decimal { scale: 4 };
        assert_eq!(decode(&raw("\"EtaH\""), d4, None), Ok(dec(1234567, 4)));
        let d0 = ColumnType::Decimal { scale: 0 };
        assert_eq!(
            decode(&raw("\"AP//////////\""), d0, None),
            Ok(dec(18446744073709551615, 0))
        );
        assert_eq!(decode(&raw("\"AVo=\""), d0, None), Ok(dec(346, 0)));
    }

    #[test]
    fn double_and_string_decimals_are_exact() {
        let d6 = ColumnType::Decimal { scale: 6 };
        assert_eq!(decode(&raw("5.16E-4"), d6, None), Ok(dec(516, 6)));
        assert_eq!(decode(&raw("-0.180653"), d6, None), Ok(dec(-180653, 6)));
        assert_eq!(decode(&raw("\"-0.180653\""), d6, None), Ok(dec(-180653, 6)));
        assert_eq!(
            decode(&raw("\"12.000000\""), d6, None),
            Ok(dec(12_000_000, 6))
        );
        let d0 = ColumnType::Decimal { scale: 0 };
        assert_eq!(
            decode(&raw("18446744073709551615"), d0, None),
            Ok(dec(18446744073709551615, 0))
        );
    }

    #[test]
    fn schema_decides_decimal_encoding() {
        let d2 = ColumnType::Decimal { scale: 2 };
        let s = FieldSchema {
            ty: "string".into(),
            name: None,
            scale: None,
        };
        assert_eq!(decode(&raw("\"1234\""), d2, Some(&s)), Ok(dec(123400, 2)));
        let b = FieldSchema {
            ty: "bytes".into(),
            name: Some("org.apache.kafka.connect.data.Decimal".into()),
            scale: Some(2),
        };
        assert_eq!(decode(&raw("\"AQ==\""), d2, Some(&b)), Ok(dec(1, 2)));
    }

    #[test]
    fn zoned_timestamps_with_any_fraction() {
        let t = ColumnType::Timestamp;
        assert_eq!(
            decode(&raw("\"2024-03-07T13:43:07Z\""), t, None),
            Ok(Value::Instant(1709818987000))
        );
        assert_eq!(
            decode(&raw("\"2024-03-07T13:43:07.55Z\""), t, None),
            Ok(Value::Instant(1709818987550))
        );
        assert_eq!(
            decode(&raw("\"2024-03-07T13:43:07.550Z\""), t, None),
            Ok(Value::Instant(1709818987550))
        );
        assert_eq!(
            decode(&raw("\"2024-03-07T13:43:07.550123456Z\""), t, None),
            Ok(Value::Instant(1709818987550))
        );
        assert_eq!(
            decode(&raw("\"2024-03-07T08:43:07.5-05:00\""), t, None),
            Ok(Value::Instant(1709818987500))
        );
        assert!(
            decode(&raw("1709818987550"), t, None).is_err(),
            "no unit without a schema"
        );
    }

    #[test]
    fn datetimes_by_semantic_type_or_precision() {
        let dt3 = ColumnType::DateTime { fsp: 3 };
        let dt6 = ColumnType::DateTime { fsp: 6 };
        assert_eq!(
            decode(&raw("1595008822123"), dt3, None),
            Ok(Value::WallClock(1595008822123000))
        );
        assert_eq!(
            decode(&raw("1595008822123456"), dt6, None),
            Ok(Value::WallClock(1595008822123456))
        );
        let micro = FieldSchema {
            ty: "int64".into(),
            name: Some("io.debezium.time.MicroTimestamp".into()),
            scale: None,
        };
        assert_eq!(
            decode(&raw("1595008822123456"), dt3, Some(&micro)),
            Ok(Value::WallClock(1595008822123456))
        );
        let nano = FieldSchema {
            ty: "int64".into(),
            name: Some("io.debezium.time.NanoTimestamp".into()),
            scale: None,
        };
        assert_eq!(
            decode(&raw("1595008822123456789"), dt3, Some(&nano)),
            Ok(Value::WallClock(1595008822123456))
        );
    }

    #[test]
    fn flags_accept_ints_and_booleans() {
        for (r, v) in [("1", true), ("0", false), ("true", true), ("false", false)] {
            assert_eq!(decode(&raw(r), ColumnType::Flag, None), Ok(Value::Bool(v)));
        }
        assert!(decode(&raw("2"), ColumnType::Flag, None).is_err());
    }

    #[test]
    fn dates_as_days_or_text() {
        assert_eq!(
            decode(&raw("18460"), ColumnType::Date, None),
            Ok(Value::Date(18460))
        );
        assert_eq!(
            decode(&raw("\"2020-07-17\""), ColumnType::Date, None),
            Ok(Value::Date(18460))
        );
    }
}
