//! Request values shared by the simpod and Infinity endpoints: instants, zones, grains,
//! multi-value filters and Grafana's ad-hoc filters, each parsed into a typed value or an
//! [`ApiError`] naming the field.

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use lpm_engine::series::SeriesKey;
use serde::Deserialize;
use serde_json::Value;

use super::catalog::Dim;
use crate::error::ApiError;

/// The earliest instant accepted (0001-01-01T00:00:00Z).
pub const MIN_MS: i64 = -62_135_596_800_000;
/// The latest instant accepted (9999-12-31T23:59:59.999Z).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// The grain of a time series' points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grain {
    /// Local hours of the zone.
    Hour,
    /// Local days of the zone (midnight to midnight, 23 to 25 hours across DST).
    Day,
}

impl Grain {
    /// The wire name (`hour`, `day`), as in `bucket`.
    pub fn name(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    /// The nominal length, for estimating point counts.
    pub fn nominal_ms(self) -> i64 {
        match self {
            Grain::Hour => 3_600_000,
            Grain::Day => 86_400_000,
        }
    }
}

/// Parses an explicit grain: `hour`/`1h`/`h`, `day`/`1d`/`d`; `auto`, empty or absent is `None`.
pub fn parse_bucket(raw: Option<&str>, field: &str) -> Result<Option<Grain>, ApiError> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(None);
    };
    match raw.to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "hour" | "hourly" | "1h" | "h" => Ok(Some(Grain::Hour)),
        "day" | "daily" | "1d" | "d" => Ok(Some(Grain::Day)),
        _ => Err(ApiError::bad(
            field,
            format!("unknown bucket {raw:?}: expected hour, day or auto"),
        )),
    }
}

/// The grain asked for: the explicit one, else `day` when the interval is at least a day, else
/// `hour` (never finer).
pub fn asked_grain(explicit: Option<Grain>, interval_ms: Option<i64>) -> Grain {
    explicit.unwrap_or(match interval_ms {
        Some(ms) if ms >= Grain::Day.nominal_ms() => Grain::Day,
        _ => Grain::Hour,
    })
}

/// Picks the grain: [`asked_grain`], then `hour` coarsened to `day` when the range would hold
/// more than `max_points`. (The work budget may coarsen it further, see `plan`.)
pub fn choose_grain(
    explicit: Option<Grain>,
    interval_ms: Option<i64>,
    max_points: Option<usize>,
    range: Option<(i64, i64)>,
) -> Grain {
    let grain = asked_grain(explicit, interval_ms);
    match (grain, max_points, range) {
        (Grain::Hour, Some(max), Some((from, to)))
            if estimate_points(from, to, Grain::Hour) > max =>
        {
            Grain::Day
        }
        _ => grain,
    }
}

/// An upper estimate of the number of periods of `grain` meeting `[from, to)`.
fn estimate_points(from: i64, to: i64, grain: Grain) -> usize {
    let span = to.saturating_sub(from).max(0);
    usize::try_from(span / grain.nominal_ms() + 2).unwrap_or(usize::MAX)
}

/// Resolves a zone name: absent, empty, `browser`, `dashboard`, `server` or `default` give
/// `default` (the server's report zone: the browser's zone is not known to the server);
/// `utc` in any case gives UTC; anything else must be an IANA name.
pub fn parse_tz(raw: Option<&str>, default: Tz, field: &str) -> Result<Tz, ApiError> {
    let raw = raw.map(str::trim).unwrap_or_default();
    match raw.to_ascii_lowercase().as_str() {
        "" | "browser" | "dashboard" | "server" | "default" => Ok(default),
        "utc" | "z" | "etc/utc" => Ok(Tz::UTC),
        _ => raw.parse::<Tz>().map_err(|_| {
            ApiError::bad(
                field,
                format!("unknown time zone {raw:?}: expected an IANA name, utc or browser"),
            )
        }),
    }
}

/// Parses an instant: epoch milliseconds (a JSON integer or a string of digits) or an
/// ISO-8601/RFC 3339 text with an offset (`2024-11-03T04:00:00.000Z`).
pub fn parse_instant(value: &Value, field: &str) -> Result<i64, ApiError> {
    let ms = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => parse_instant_text(s.trim()),
        _ => None,
    };
    let ms = ms.ok_or_else(|| {
        ApiError::bad(
            field,
            format!("expected epoch milliseconds or an ISO-8601 instant, got {value}"),
        )
    })?;
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Err(ApiError::bad(field, "instant out of range"));
    }
    Ok(ms)
}

/// The text forms of [`parse_instant`]: digits, RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]<offset>`.
pub(crate) fn parse_instant_text(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    // "2024-11-03 04:00:00Z" and friends
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.timestamp_millis())
}

/// An RFC 3339 text of `ms` in `tz` (`2024-11-03T00:00:00-04:00`, `Z` for UTC).
pub fn iso(ms: i64, tz: &Tz) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => ms.to_string(),
    }
}

/// Parses a non-negative integer that may arrive as a JSON number (possibly fractional) or a
/// string; `None` for null/absent.
pub fn parse_count(value: Option<&Value>, field: &str) -> Result<Option<i64>, ApiError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(n) if n >= 0 => Ok(Some(n)),
        _ => Err(ApiError::bad(field, "expected a non-negative integer")),
    }
}

/// A string parameter that may be absent, null, a string, or a number.
pub fn opt_text(value: Option<&Value>, field: &str) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        // a single-value variable sometimes arrives as a one-element array
        Some(Value::Array(a)) if a.len() == 1 && !a[0].is_null() => opt_text(a.first(), field),
        Some(other) => Err(ApiError::bad(
            field,
            format!("expected a string, got {other}"),
        )),
    }
}

/// Values meaning "no restriction" (Grafana's All option and its usual custom all-values).
fn is_all(v: &str) -> bool {
    matches!(v, "$__all" | "All" | "all" | "*" | ".*" | ".+")
}

/// Splits a multi-value filter: a JSON array of strings, or one string that is comma or
/// pipe separated and possibly wrapped in `{..}` (Grafana's csv, pipe and glob formats).
/// `None` means no restriction: absent, null, empty, or containing an "All" value.
pub fn parse_values(value: Option<&Value>, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    let mut out = Vec::new();
    let mut push_text = |s: &str| {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        for part in s.split([',', '|']) {
            out.push(part.trim().to_string());
        }
    };
    match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => push_text(s),
        Some(Value::Number(n)) => push_text(&n.to_string()),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => push_text(s),
                    Value::Number(n) => push_text(&n.to_string()),
                    other => {
                        return Err(ApiError::bad(
                            field,
                            format!("expected strings, got {other}"),
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(ApiError::bad(
                field,
                format!("expected a string or an array of strings, got {other}"),
            ))
        }
    }
    out.retain(|v| !v.is_empty());
    if out.is_empty() || out.iter().any(|v| is_all(v)) {
        return Ok(None);
    }
    Ok(Some(out))
}

/// Normalises one filter value of `dim`: genders are lower-cased, an age band `60` (a `+` lost
/// to URL decoding) is `60+`; genders and age bands must be known values (422 otherwise).
pub fn normalise_value(dim: Dim, raw: &str, field: &str) -> Result<String, ApiError> {
    let v = raw.trim();
    let v = match dim {
        Dim::Gender => v.to_ascii_lowercase(),
        Dim::AgeBand if v == "60" => "60+".to_string(),
        Dim::AgeBand => v.to_ascii_lowercase(),
        Dim::Status | Dim::Priority => v.to_string(),
    };
    if dim.is_closed() && !dim.known_values().contains(&v.as_str()) {
        return Err(ApiError::invalid(
            field,
            format!(
                "unknown {} {raw:?}: expected one of {}",
                dim.name(),
                dim.known_values().join(", ")
            ),
        ));
    }
    if v.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("empty {} value", dim.name()),
        ));
    }
    Ok(v)
}

/// One dimension's restriction: the values it must be one of (if any) and must not be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rule {
    include: Option<Vec<String>>,
    exclude: Vec<String>,
}

impl Rule {
    fn allows(&self, label: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|inc| inc.iter().any(|v| v == label))
            && !self.exclude.iter().any(|v| v == label)
    }
}

/// Restrictions on the four dimensions, combined with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DimFilter {
    rules: [Rule; 4],
}

impl DimFilter {
    /// Restricts `dim` to `values` (intersected with any earlier restriction).
    pub fn include(&mut self, dim: Dim, values: Vec<String>) {
        let rule = &mut self.rules[dim.index()];
        rule.include = Some(match rule.include.take() {
            None => values,
            Some(old) => old.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }

    /// Excludes `values` of `dim`.
    pub fn exclude(&mut self, dim: Dim, values: Vec<String>) {
        self.rules[dim.index()].exclude.extend(values);
    }

    /// Whether `dim` may take `label`.
    pub fn allows(&self, dim: Dim, label: &str) -> bool {
        self.rules[dim.index()].allows(label)
    }

    /// The dimensions this filter restricts at all.
    pub fn restricted(&self) -> impl Iterator<Item = Dim> + '_ {
        Dim::ALL
            .into_iter()
            .filter(|d| self.rules[d.index()] != Rule::default())
    }

    /// Whether a fact passes every restriction.
    pub fn allows_key(&self, key: &SeriesKey) -> bool {
        Dim::ALL
            .into_iter()
            .all(|d| self.allows(d, d.label_of(key)))
    }

    /// Adds the payload / parameter filters: for each dimension, a multi value read by `get`.
    pub fn add_values(
        &mut self,
        get: impl Fn(Dim) -> Option<Value>,
        field_of: impl Fn(Dim) -> String,
    ) -> Result<(), ApiError> {
        for dim in Dim::ALL {
            let field = field_of(dim);
            if let Some(values) = parse_values(get(dim).as_ref(), &field)? {
                let values = values
                    .iter()
                    .map(|v| normalise_value(dim, v, &field))
                    .collect::<Result<Vec<_>, _>>()?;
                self.include(dim, values);
            }
        }
        Ok(())
    }

    /// Adds Grafana ad-hoc filters (422 naming `filters` for keys or operators not supported).
    pub fn add_adhoc(&mut self, filters: &[AdhocFilter]) -> Result<(), ApiError> {
        for (i, f) in filters.iter().enumerate() {
            let bad = |msg: String| ApiError::invalid("filters", format!("filters[{i}]: {msg}"));
            let Some(dim) = Dim::parse(&f.key) else {
                return Err(bad(format!(
                    "unknown key {:?}: expected gender, age_band, status or priority",
                    f.key
                )));
            };
            let one = || -> Result<String, ApiError> {
                match &f.value {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(bad(format!("expected a string value, got {other}"))),
                }
            };
            let many = || -> Result<Vec<String>, ApiError> {
                match &f.values {
                    Some(vs) if !vs.is_empty() => vs
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Ok(s.clone()),
                            Value::Number(n) => Ok(n.to_string()),
                            other => Err(bad(format!("expected string values, got {other}"))),
                        })
                        .collect(),
                    _ => Ok(vec![one()?]),
                }
            };
            let norm = |vals: Vec<String>| -> Result<Vec<String>, ApiError> {
                vals.iter()
                    .map(|v| normalise_value(dim, v, "filters"))
                    .collect()
            };
            match f.operator.trim() {
                "=" | "" => self.include(dim, norm(vec![one()?])?),
                "!=" => self.exclude(dim, norm(vec![one()?])?),
                "=|" => self.include(dim, norm(many()?)?),
                "!=|" => self.exclude(dim, norm(many()?)?),
                op @ ("=~" | "!~") => {
                    let Value::String(pattern) = &f.value else {
                        return Err(bad(format!("a regex is a string, got {}", f.value)));
                    };
                    match regex_alternatives(pattern) {
                        Some(Alternatives::Any) if op == "=~" => {}
                        Some(Alternatives::Any) => self.include(dim, Vec::new()),
                        Some(Alternatives::Literals(vals)) if op == "=~" => {
                            self.include(dim, norm(vals)?)
                        }
                        Some(Alternatives::Literals(vals)) => self.exclude(dim, norm(vals)?),
                        None => {
                            return Err(bad(format!(
                                "regex {pattern:?} is not supported: use `a|b|c` alternatives \
                                 of literal values"
                            )))
                        }
                    }
                }
                op => {
                    return Err(bad(format!(
                        "operator {op:?} is not supported: use =, !=, =~, !~, =| or !=|"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Whether a row with these labels (gender, age band, status, priority) passes.
    pub fn allows_labels(&self, labels: [&str; 4]) -> bool {
        Dim::ALL
            .into_iter()
            .zip(labels)
            .all(|(d, l)| self.allows(d, l))
    }
}

/// A Grafana ad-hoc filter (`{key, operator, value}`; Grafana ≥ 11.1 adds `values` for the
/// multi-value operators `=|` and `!=|`). Unknown fields (`condition`, `keyLabel`) are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AdhocFilter {
    /// The tag key.
    #[serde(default)]
    pub key: String,
    /// `=`, `!=`, `=~`, `!~`, `=|`, `!=|`.
    #[serde(default)]
    pub operator: String,
    /// The value (or the pattern of a regex operator).
    #[serde(default)]
    pub value: Value,
    /// The values of a multi-value operator.
    #[serde(default)]
    pub values: Option<Vec<Value>>,
}

/// What a regex filter value means, when it is a plain alternation.
#[derive(Debug, PartialEq, Eq)]
enum Alternatives {
    /// `.*`: anything.
    Any,
    /// `a|b|c` of literal values.
    Literals(Vec<String>),
}

/// Reads `^(a|b\+)$`-style patterns as literal alternatives; `None` for real regexes. An
/// unescaped `+` is taken literally (so `60+` is the age band, not "6 then zeros").
fn regex_alternatives(pattern: &str) -> Option<Alternatives> {
    let mut p = pattern.trim();
    p = p.strip_prefix('^').unwrap_or(p);
    if p.ends_with('$') && !p.ends_with("\\$") {
        p = &p[..p.len() - 1];
    }
    if let Some(inner) = p
        .strip_prefix("(?:")
        .or_else(|| p.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
    {
        p = inner;
    }
    if matches!(p, ".*" | ".+") {
        return Some(Alternatives::Any);
    }
    let mut alts = vec![String::new()];
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars.next()?;
                if escaped.is_ascii_alphanumeric() {
                    return None; // \d, \w, \s ...
                }
                alts.last_mut()?.push(escaped);
            }
            '|' => alts.push(String::new()),
            '.' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => return None,
            c => alts.last_mut()?.push(c),
        }
    }
    Some(Alternatives::Literals(alts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants_in_every_accepted_form() {
        let ms = 1_730_606_400_000;
        for v in [
            json!(ms),
            json!("1730606400000"),
            json!("2024-11-03T04:00:00Z"),
            json!("2024-11-03T04:00:00.000Z"),
            json!("2024-11-03T00:00:00-04:00"),
            json!(1_730_606_400_000.0),
        ] {
            assert_eq!(parse_instant(&v, "from").ok(), Some(ms), "{v}");
        }
        for v in [
            json!("now-6h"),
            json!(null),
            json!(true),
            json!("2024-11-03"),
        ] {
            let e = parse_instant(&v, "from").expect_err("bad instant");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn zones() {
        let def = chrono_tz::America::Guayaquil;
        assert_eq!(parse_tz(Some("browser"), def, "tz").ok(), Some(def));
        assert_eq!(parse_tz(None, def, "tz").ok(), Some(def));
        assert_eq!(parse_tz(Some("utc"), def, "tz").ok(), Some(Tz::UTC));
        assert_eq!(
            parse_tz(Some("Asia/Kathmandu"), def, "tz").ok(),
            Some(chrono_tz::Asia::Kathmandu)
        );
        assert!(parse_tz(Some("Mars/Olympus"), def, "tz").is_err());
    }

    #[test]
    fn grain_choice() {
        let day = 86_400_000;
        assert_eq!(choose_grain(None, Some(60_000), None, None), Grain::Hour);
        assert_eq!(choose_grain(None, Some(day), None, None), Grain::Day);
        assert_eq!(
            choose_grain(Some(Grain::Hour), None, Some(100), Some((0, 30 * day))),
            Grain::Day
        );
        assert_eq!(
            choose_grain(Some(Grain::Hour), None, Some(1101), Some((0, 30 * day))),
            Grain::Hour
        );
        assert_eq!(parse_bucket(Some("1d"), "b").ok(), Some(Some(Grain::Day)));
        assert!(parse_bucket(Some("week"), "b").is_err());
    }

    #[test]
    fn multi_values_in_grafana_formats() {
        let want = Some(vec!["female".to_string(), "male".to_string()]);
        for v in [
            json!(["female", "male"]),
            json!("female,male"),
            json!("{female,male}"),
            json!("female|male"),
            json!(" female , male "),
        ] {
            assert_eq!(parse_values(Some(&v), "g").ok(), Some(want.clone()), "{v}");
        }
        for v in [
            json!(null),
            json!(""),
            json!([]),
            json!("$__all"),
            json!(["All"]),
        ] {
            assert_eq!(parse_values(Some(&v), "g").ok(), Some(None), "{v}");
        }
        assert!(parse_values(Some(&json!({"a": 1})), "g").is_err());
    }

    #[test]
    fn regex_alternatives_are_literal_only() {
        let lit = |v: &[&str]| {
            Some(Alternatives::Literals(
                v.iter().map(|s| s.to_string()).collect(),
            ))
        };
        assert_eq!(regex_alternatives("female|male"), lit(&["female", "male"]));
        assert_eq!(
            regex_alternatives("^(open|in_progress)$"),
            lit(&["open", "in_progress"])
        );
        assert_eq!(regex_alternatives("60\\+|0-11"), lit(&["60+", "0-11"]));
        assert_eq!(regex_alternatives("60+"), lit(&["60+"]));
        assert_eq!(regex_alternatives(".*"), Some(Alternatives::Any));
        assert_eq!(regex_alternatives("fe.*"), None);
        assert_eq!(regex_alternatives("\\d+"), None);
    }

    #[test]
    fn adhoc_filters_combine_with_and() {
        let f = |key: &str, op: &str, value: Value| AdhocFilter {
            key: key.into(),
            operator: op.into(),
            value,
            values: None,
        };
        let mut filter = DimFilter::default();
        filter
            .add_adhoc(&[
                f("gender", "=~", json!("female|male")),
                f("gender", "!=", json!("Male")),
                f("status", "!~", json!("^(closed|found_deceased)$")),
            ])
            .expect("valid filters");
        assert!(filter.allows(Dim::Gender, "female"));
        assert!(!filter.allows(Dim::Gender, "male"));
        assert!(!filter.allows(Dim::Gender, "other"));
        assert!(filter.allows(Dim::Status, "open") && !filter.allows(Dim::Status, "closed"));
        for bad in [
            f("age", "=", json!("x")),
            f("gender", "<", json!("x")),
            f("gender", "=~", json!("fe.*")),
            f("gender", "=", json!("robot")),
        ] {
            let e = DimFilter::default()
                .add_adhoc(&[bad])
                .expect_err("unsupported filter");
            assert_eq!(e.status(), 422);
            assert!(format!("{e:?}").contains("\"filters\""), "{e:?}");
        }
    }
}
