//! JSON Schema pieces for the OpenAPI document that say exactly what the input validators
//! accept. The contract tests (`scripts/contract.sh`, schemathesis) generate requests from the
//! document: a schema looser than its validator makes valid-looking requests fail, a stricter
//! one makes invalid-looking requests pass, and both are reported. So each piece here mirrors
//! one rule of a validator, and the validators cite the piece they must agree with.
//!
//! Text rules count Unicode scalar values (`chars()`), as JSON Schema's `maxLength` counts code
//! points, and "blank" means only the characters Rust's `str::trim` removes (Unicode
//! `White_Space`), spelled out because regex dialects disagree on `\s`.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// The characters `str::trim` removes (Unicode `White_Space`), as a regex class body.
pub const WHITESPACE: &str =
    "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// A string that is not blank: it holds at least one character `trim` keeps.
pub fn not_blank_pattern() -> String {
    format!("[^{WHITESPACE}]")
}

fn string(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .max_length(Some(max))
}

/// Required text: not blank, at most `max` characters (counted before trimming).
pub fn required_text(max: usize) -> RefOr<Schema> {
    string(max)
        .min_length(Some(1))
        .pattern(Some(not_blank_pattern()))
        .into()
}

/// Text that may be null (unchanged), but when given is not blank and at most `max`
/// characters.
pub fn nullable_required_text(max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .min_length(Some(1))
        .pattern(Some(not_blank_pattern()))
        .into()
}

/// An e-mail address: at most `max` characters, holding an `@` unless blank (none); or null.
pub fn email(max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .pattern(Some(format!("(^[{WHITESPACE}]*$)|@")))
        .into()
}

/// Optional text: at most `max` characters, `null` or blank meaning "none".
pub fn optional_text(max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .into()
}

/// One of `values`, exactly.
pub fn one_of(values: &[&str], nullable: bool) -> RefOr<Schema> {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    let mut values: Vec<serde_json::Value> = values.iter().map(|v| (*v).into()).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(ty)
        .enum_values(Some(values))
        .into()
}

/// A comma-separated list of `values`: items are trimmed and blank ones skipped, so `""` is
/// the empty list.
pub fn csv_of(values: &[&str]) -> RefOr<Schema> {
    let item = values
        .iter()
        .map(|v| v.replace('+', "\\+"))
        .collect::<Vec<_>>()
        .join("|");
    let w = format!("[{WHITESPACE}]*");
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(format!("^({w}({item})?{w},)*{w}({item})?{w}$")))
        .into()
}

/// An instant: epoch milliseconds, or RFC 3339 (ISO-8601 with an offset).
pub fn instant() -> RefOr<Schema> {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .into()
}

fn blank() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(format!("^[{WHITESPACE}]*$")))
}

/// One of `values`, or blank (the default).
pub fn one_of_or_blank<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> RefOr<Schema> {
    use utoipa::openapi::schema::AnyOfBuilder;
    let values: Vec<serde_json::Value> = values.into_iter().map(|v| v.as_ref().into()).collect();
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some(values)),
        )
        .item(blank())
        .into()
}

/// An IANA zone name as `chrono-tz` knows it (exact), or blank (the default).
pub fn zone_or_blank() -> RefOr<Schema> {
    one_of_or_blank(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))
}

/// A report language: `es` or `en` in any case, surrounded by blanks or not; blank is `es`.
pub fn lang() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(format!(
            "^[{WHITESPACE}]*([Ee][SsNn])?[{WHITESPACE}]*$"
        )))
        .into()
}

/// A calendar date `YYYY-MM-DD`, or blank (none).
pub fn date_or_blank() -> RefOr<Schema> {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, SchemaFormat};
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
        )
        .item(blank())
        .into()
}

/// The status names.
pub const STATUSES: [&str; 5] = [
    "open",
    "in_progress",
    "found_alive",
    "found_deceased",
    "closed",
];
/// The priority names.
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// Genders.
pub const GENDERS: [&str; 4] = ["female", "male", "other", "unknown"];
/// Age bands.
pub const AGE_BANDS: [&str; 7] = ["0-11", "12-17", "18-29", "30-44", "45-59", "60+", "unknown"];
/// Loggable action types.
pub const ACTION_TYPES: [&str; 4] = ["note", "search", "call", "sighting"];

#[cfg(test)]
mod tests {
    use super::WHITESPACE;

    /// Reads the class body: single-letter escapes, `\uXXXX`, literal spaces and `a-b` ranges.
    fn class_chars(body: &str) -> Vec<char> {
        let mut singles = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let (c, tail) = if let Some(t) = rest.strip_prefix("\\u") {
                let code = u32::from_str_radix(&t[..4], 16).expect("hex");
                (char::from_u32(code).expect("scalar"), &t[4..])
            } else if let Some(t) = rest.strip_prefix('\\') {
                let c = match &t[..1] {
                    "t" => '\t',
                    "n" => '\n',
                    "v" => '\u{b}',
                    "f" => '\u{c}',
                    "r" => '\r',
                    other => panic!("unexpected escape {other}"),
                };
                (c, &t[1..])
            } else {
                let c = rest.chars().next().expect("char");
                (c, &rest[c.len_utf8()..])
            };
            singles.push(c);
            rest = tail;
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < singles.len() {
            if i + 2 < singles.len() && singles[i + 1] == '-' {
                out.extend(singles[i]..=singles[i + 2]);
                i += 3;
            } else {
                out.push(singles[i]);
                i += 1;
            }
        }
        out.sort_unstable();
        out
    }

    /// The class is exactly what `trim` removes (`char::is_whitespace`), over every scalar.
    #[test]
    fn whitespace_class_is_what_trim_removes() {
        let trimmed: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(class_chars(WHITESPACE), trimmed);
    }
}
