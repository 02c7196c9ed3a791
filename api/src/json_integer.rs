//! Integers in JSON bodies. JSON numbers carry no integer type: `7.0` is the number 7, JSON
//! Schema's `integer` (which the OpenAPI document uses) accepts it, and clients that compute
//! numbers in floating point send it. serde's `i64` refuses it; these read any number that is a
//! whole value within the `i64` range, and still refuse `7.5`, `1e300` and non-numbers with a
//! message serde reports under the field's path.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

struct Whole;

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // 2^63 is exact in f64; every whole f64 below it converts exactly
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// `#[serde(deserialize_with = "crate::json_integer::whole")]` for an `i64`.
pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Whole)
}

#[derive(Deserialize)]
struct Wrapped(#[serde(deserialize_with = "whole")] i64);

/// `#[serde(default, deserialize_with = "crate::json_integer::optional")]` for an
/// `Option<i64>` (`null` is `None`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

/// A whole number written as URL text (a path segment, a query value): digits with an optional
/// sign, and optionally a fraction of zeros (`169.0`), which JSON Schema's `integer` allows and
/// schema-driven clients send. `1e2`, `7.5`, `inf` and out-of-range numbers are refused.
pub fn parse_text(text: &str) -> Option<i64> {
    let whole = match text.split_once('.') {
        Some((whole, zeros)) if zeros.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => text,
    };
    let digits = whole.strip_prefix(['+', '-']).unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

fn text_to<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    parse_text(&text)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| de::Error::custom(format!("expected an integer in range, got {text:?}")))
}

/// `#[serde(deserialize_with = "crate::json_integer::text")]` for an integer read from URL text.
pub fn text<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    text_to(d)
}

/// `#[serde(default, deserialize_with = "crate::json_integer::optional_text")]` for an
/// `Option` of an integer read from URL text.
pub fn optional_text<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    text_to(d).map(Some)
}

/// A path id (`/api/v1/cases/{id}`) read with [`parse_text`]: `Path(PathId(id))`.
#[derive(Clone, Copy, Debug)]
pub struct PathId(pub i64);

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PathId, D::Error> {
        text_to(d).map(PathId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Body {
        #[serde(deserialize_with = "whole")]
        version: i64,
        #[serde(default, deserialize_with = "optional")]
        age: Option<i64>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_any_spelling() {
        for (text, version, age) in [
            (r#"{"version": 3}"#, 3, None),
            (r#"{"version": 3.0, "age": 12.0}"#, 3, Some(12)),
            (r#"{"version": -2e3, "age": null}"#, -2000, None),
            (r#"{"version": 9223372036854775807}"#, i64::MAX, None),
        ] {
            let body = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((body.version, body.age), (version, age), "{text}");
        }
    }

    #[test]
    fn url_text_integers() {
        for (text, n) in [
            ("169", 169),
            ("169.0", 169),
            ("-3.00", -3),
            ("+4", 4),
            ("0", 0),
        ] {
            assert_eq!(parse_text(text), Some(n), "{text}");
        }
        for text in [
            "",
            "1e2",
            "7.5",
            "inf",
            "NaN",
            "-",
            ".0",
            "1.0.0",
            "9223372036854775808",
            " 1",
        ] {
            assert_eq!(parse_text(text), None, "{text}");
        }
    }

    #[test]
    fn fractions_huge_numbers_and_text_are_refused() {
        for text in [
            r#"{"version": 3.5}"#,
            r#"{"version": 1e300}"#,
            r#"{"version": 9223372036854775808}"#,
            r#"{"version": "3"}"#,
            r#"{"version": 1, "age": 0.5}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
