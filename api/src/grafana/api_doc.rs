//! The OpenAPI description of the Grafana routes' bodies and parameters. The handlers read
//! lenient JSON (Grafana's plugins send values as strings, numbers or one-element arrays, and
//! multi-values as arrays or `a,b` / `a|b` / `{a,b}` texts), so these types only describe what
//! is accepted, with the parsing rules of [`super::params`] spelled as JSON Schema; the contract
//! tests check the two agree.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::catalog::{Dim, View, BUCKET_OPTIONS, SPLIT_OPTIONS};
use super::params::{MAX_MS, MIN_MS};
use crate::input_schema::WHITESPACE;

/// `[Aa][Bb]..`: `word` in any ASCII case (the parsers compare `to_ascii_lowercase`).
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else if "+.*$|{}()[]\\^?".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn escape(word: &str) -> String {
    word.chars()
        .map(|c| {
            if "+.*$|{}()[]\\^?".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn string_matching(pattern: String) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
}

/// One word of `words` (ASCII case-insensitive when `any`), blanks around it allowed.
fn word(words: &[&str], any: bool, blank_too: bool) -> String {
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| if any { any_case(w) } else { escape(w) })
        .collect();
    let optional = if blank_too { "?" } else { "" };
    format!(
        "^[{WHITESPACE}]*({}){optional}[{WHITESPACE}]*$",
        alternatives.join("|")
    )
}

/// One word of `words`, or blank.
fn word_or_blank(words: &[&str], any: bool) -> String {
    word(words, any, true)
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null))
}

/// A single-valued knob as `opt_text` reads it: in JSON a string, a one-element array of one,
/// or null; in a query string the text.
fn knob(pattern: String, json: bool) -> RefOr<Schema> {
    if !json {
        return string_matching(pattern).into();
    }
    AnyOfBuilder::new()
        .item(string_matching(pattern.clone()))
        .item(
            ArrayBuilder::new()
                .items(string_matching(pattern))
                .min_items(Some(1))
                .max_items(Some(1)),
        )
        .item(null())
        .into()
}

fn bucket_of(json: bool) -> RefOr<Schema> {
    let mut words: Vec<&str> = BUCKET_OPTIONS.to_vec();
    words.extend(["hourly", "1h", "h", "daily", "1d", "d"]);
    knob(word_or_blank(&words, true), json)
}

/// `bucket`: `auto`, `hour`, `day` (also `hourly`, `1h`, `h`, `daily`, `1d`, `d`), any case;
/// blank is `auto`.
pub fn bucket() -> RefOr<Schema> {
    bucket_of(true)
}

/// [`bucket`] as a query parameter.
pub fn bucket_param() -> RefOr<Schema> {
    bucket_of(false)
}

/// `split_by`: `none` (or blank) or a dimension name, exactly.
pub fn split_by() -> RefOr<Schema> {
    knob(word_or_blank(&SPLIT_OPTIONS, false), true)
}

/// [`split_by`] as a query parameter.
pub fn split_by_param() -> RefOr<Schema> {
    knob(word_or_blank(&SPLIT_OPTIONS, false), false)
}

/// `tz`: an IANA zone name (exact), or `UTC`/`Z`/`Etc/UTC`, `dashboard`, `browser`, `server`,
/// `default` in any case; blank is the dashboard's zone.
pub fn tz() -> RefOr<Schema> {
    tz_of(true)
}

/// [`tz`] as a query parameter.
pub fn tz_param() -> RefOr<Schema> {
    tz_of(false)
}

fn tz_of(json: bool) -> RefOr<Schema> {
    let specials = [
        "browser",
        "dashboard",
        "server",
        "default",
        "utc",
        "z",
        "etc/utc",
    ];
    let names: Vec<Value> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| z.name().into())
        .collect();
    let named = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(names));
    let any = AnyOfBuilder::new()
        .item(named)
        .item(string_matching(word_or_blank(&specials, true)));
    if json { any.item(null()) } else { any }.into()
}

/// An instant: epoch milliseconds (a number, or a string of digits) or RFC 3339, within the
/// years 1 to 9999; blank or null is none.
pub fn instant() -> RefOr<Schema> {
    instant_of(true)
}

/// [`instant`] as a query parameter.
pub fn instant_param() -> RefOr<Schema> {
    instant_of(false)
}

fn instant_of(json: bool) -> RefOr<Schema> {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
    // a query string carries text: a fraction there is not a number the parser takes
    let number = if json { Type::Number } else { Type::Integer };
    let any = AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(number))
                .minimum(Some(MIN_MS as f64))
                .maximum(Some(MAX_MS as f64)),
        )
        .item(string_matching(format!(
            "^[{WHITESPACE}]*([0-9]{{1,14}}|-[0-9]{{1,13}})?[{WHITESPACE}]*$"
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        );
    if json { any.item(null()) } else { any }.into()
}

/// A point budget: a non-negative count (a number, fractions dropped, or a string of digits);
/// 0, blank or null is none.
pub fn count() -> RefOr<Schema> {
    count_of(true)
}

/// [`count`] as a query parameter.
pub fn count_param() -> RefOr<Schema> {
    count_of(false)
}

fn count_of(json: bool) -> RefOr<Schema> {
    let number = if json {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Number))
            .exclusive_minimum(Some(-1.0))
    } else {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .minimum(Some(0.0))
    };
    let any = AnyOfBuilder::new()
        .item(number)
        .item(string_matching(format!(
            "^[{WHITESPACE}]*(\\+?[0-9]{{1,18}})?[{WHITESPACE}]*$"
        )));
    if json { any.item(null()) } else { any }.into()
}

/// The "no restriction" values a multi-value filter may hold.
const ALL_VALUES: [&str; 6] = ["$__all", "All", "all", "*", ".*", ".+"];

/// A multi-value filter of a closed dimension: a text of `items` separated by `,` or `|`,
/// optionally in `{..}`, or holding an "All" value (then anything else goes); an array of such
/// texts; or null.
fn closed_filter(items: &[String], json: bool) -> RefOr<Schema> {
    let w = format!("[{WHITESPACE}]*");
    let item = format!("{w}({})?{w}", items.join("|"));
    let list = format!("{item}([,|]{item})*");
    let all = ALL_VALUES.map(escape).join("|");
    let known = format!("^{w}(\\{{{list}\\}}|{list}){w}$");
    // an "All" part: a whole part of the text, whose `{..}` is stripped only when it both
    // starts and ends with them
    let rest = "[\\s\\S]*";
    let part_all = format!("({rest}[,|])?{w}({all}){w}([,|]{rest})?");
    let has_all = format!("^{w}{part_all}$|^{w}\\{{{part_all}\\}}{w}$");
    let text = || {
        AnyOfBuilder::new()
            .item(string_matching(known.clone()))
            .item(string_matching(has_all.clone()))
    };
    let any = AnyOfBuilder::new()
        .item(text())
        .item(ArrayBuilder::new().items(text()));
    if json { any.item(null()) } else { any }.into()
}

/// `gender` filter: `female`, `male`, `other`, `unknown` in any case.
pub fn gender_filter() -> RefOr<Schema> {
    gender_of(true)
}

/// [`gender_filter`] as a query parameter (repeat it for several).
pub fn gender_param() -> RefOr<Schema> {
    gender_of(false)
}

fn gender_of(json: bool) -> RefOr<Schema> {
    let items: Vec<String> = Dim::Gender
        .known_values()
        .iter()
        .map(|v| any_case(v))
        .collect();
    closed_filter(&items, json)
}

/// `age_band` filter: `0-11` ... `60+` (or `60`, a `+` lost to URL decoding), `unknown` in any
/// case.
pub fn age_band_filter() -> RefOr<Schema> {
    age_band_of(true)
}

/// [`age_band_filter`] as a query parameter (repeat it for several).
pub fn age_band_param() -> RefOr<Schema> {
    age_band_of(false)
}

fn age_band_of(json: bool) -> RefOr<Schema> {
    let mut items: Vec<String> = Dim::AgeBand
        .known_values()
        .iter()
        .map(|v| any_case(v))
        .collect();
    items.push("60".into());
    closed_filter(&items, json)
}

/// `status` / `priority` filter: any texts (a string, a number, or an array of them).
pub fn open_filter() -> RefOr<Schema> {
    let scalar =
        || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Number]));
    AnyOfBuilder::new()
        .item(scalar())
        .item(ArrayBuilder::new().items(scalar()))
        .item(null())
        .into()
}

/// [`open_filter`] as a query parameter (repeat it for several).
pub fn open_param() -> RefOr<Schema> {
    let text = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    AnyOfBuilder::new()
        .item(text())
        .item(ArrayBuilder::new().items(text()))
        .into()
}

/// A view name in a path (`/api/v1/rows/{view}`).
pub fn view_name() -> RefOr<Schema> {
    let names: Vec<Value> = View::all().map(|v| v.name().into()).collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(names))
        .into()
}

/// `{view}` of `/api/v1/rows/{view}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct ViewPath {
    /// The view.
    #[param(schema_with = view_name)]
    pub view: String,
}

/// The query of `GET /api/v1/rows/{view}`: the knobs, a range and a point budget. A repeated
/// parameter is a multi value; other parameters are ignored.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct RowsQuery {
    /// Start: epoch ms or RFC 3339 (default: the first data).
    #[param(schema_with = instant_param)]
    pub from: Option<String>,
    /// End, not before `from` (default: the last data).
    #[param(schema_with = instant_param)]
    pub to: Option<String>,
    /// `auto` (default), `hour` or `day`.
    #[param(schema_with = bucket_param)]
    pub bucket: Option<String>,
    /// The zone of the periods and of `time_iso` (default: the server's).
    #[param(schema_with = tz_param)]
    pub tz: Option<String>,
    /// One row group per value of this dimension.
    #[param(schema_with = split_by_param)]
    pub split_by: Option<String>,
    /// Only these genders.
    #[param(schema_with = gender_param)]
    pub gender: Option<String>,
    /// Only these age bands.
    #[param(schema_with = age_band_param)]
    pub age_band: Option<String>,
    /// Only these statuses (any text).
    #[param(schema_with = open_param)]
    pub status: Option<String>,
    /// Only these priorities (any text).
    #[param(schema_with = open_param)]
    pub priority: Option<String>,
    /// Zero-fill at most this many periods (default 50 000).
    #[param(schema_with = count_param)]
    pub max_points: Option<String>,
}

/// A metric name, or blank/null (the target is skipped).
pub fn metric_or_blank() -> RefOr<Schema> {
    let names: Vec<&str> = View::all().map(View::name).collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(word_or_blank(&names, false)))
        .into()
}

/// The view knobs shared by a target's payload and the rows request.
#[derive(Serialize, ToSchema)]
pub struct Knobs {
    /// `auto` (default), `hour` or `day`.
    #[schema(schema_with = bucket)]
    pub bucket: Option<String>,
    /// The zone of the periods and of `*_iso` times (default: the dashboard's).
    #[schema(schema_with = tz)]
    pub tz: Option<String>,
    /// The zone, under Grafana's name (used when `tz` is absent or null).
    #[schema(schema_with = tz)]
    pub timezone: Option<String>,
    /// One line (or row group) per value of this dimension.
    #[schema(schema_with = split_by)]
    pub split_by: Option<String>,
    /// Only these genders.
    #[schema(schema_with = gender_filter)]
    pub gender: Option<String>,
    /// Only these age bands.
    #[schema(schema_with = age_band_filter)]
    pub age_band: Option<String>,
    /// Only these statuses (any text).
    #[schema(schema_with = open_filter)]
    pub status: Option<String>,
    /// Only these priorities (any text).
    #[schema(schema_with = open_filter)]
    pub priority: Option<String>,
}

/// `POST /api/v1/rows/{view}`: the knobs, a range and a point budget; other keys are ignored.
#[derive(Serialize, ToSchema)]
pub struct RowsRequest {
    /// Start of the range (default: the first data).
    #[schema(schema_with = instant)]
    pub from: Option<String>,
    /// End of the range (default: the last data; not before `from`).
    #[schema(schema_with = instant)]
    pub to: Option<String>,
    /// Zero-fill at most this many periods (default 50 000).
    #[schema(schema_with = count)]
    pub max_points: Option<String>,
    /// `max_points` under Grafana's name.
    #[serde(rename = "maxDataPoints")]
    #[schema(schema_with = count)]
    pub max_data_points: Option<String>,
    /// `auto` (default), `hour` or `day`.
    #[schema(schema_with = bucket)]
    pub bucket: Option<String>,
    /// The zone of the periods and of `*_iso` times (default: the server's).
    #[schema(schema_with = tz)]
    pub tz: Option<String>,
    /// The zone, under Grafana's name (used when `tz` is absent or null).
    #[schema(schema_with = tz)]
    pub timezone: Option<String>,
    /// One row group per value of this dimension.
    #[schema(schema_with = split_by)]
    pub split_by: Option<String>,
    /// Only these genders.
    #[schema(schema_with = gender_filter)]
    pub gender: Option<String>,
    /// Only these age bands.
    #[schema(schema_with = age_band_filter)]
    pub age_band: Option<String>,
    /// Only these statuses (any text).
    #[schema(schema_with = open_filter)]
    pub status: Option<String>,
    /// Only these priorities (any text).
    #[schema(schema_with = open_filter)]
    pub priority: Option<String>,
}

/// `range` of a query.
#[derive(Serialize, ToSchema)]
pub struct QueryRange {
    /// Start: epoch ms or RFC 3339 (both `from` and `to`, or neither).
    #[schema(schema_with = instant)]
    pub from: Option<String>,
    /// End, not before `from`.
    #[schema(schema_with = instant)]
    pub to: Option<String>,
}

/// One panel query.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryTarget {
    /// Grafana's query id (`A`, `B`, ...).
    pub ref_id: Option<String>,
    /// The metric: a view name; blank or null skips the target.
    #[schema(schema_with = metric_or_blank)]
    pub target: Option<String>,
    /// The view knobs (an object; older plugins send it as a JSON text).
    pub payload: Option<Knobs>,
    /// `true` skips the target.
    pub hide: Option<bool>,
}

/// The schema of [`QueryTarget`], as JSON, from the one utoipa generated: a visible target's
/// payload must hold valid knobs, while a skipped one's (hidden, or without a metric) is never
/// read, so anything goes there. utoipa's types cannot say "this field depends on that one".
pub fn query_target(generated: &Value) -> Value {
    let props = &generated["properties"];
    let names: Vec<&str> = View::all().map(View::name).collect();
    let visible = json!({"type": "object", "required": ["target"], "properties": {
        "refId": props["refId"],
        "target": {"type": "string", "pattern": word(&names, false, false)},
        "payload": props["payload"],
        "hide": {"anyOf": [{"type": "null"}, {"const": false}]}}});
    let no_metric = json!({"type": "object", "properties": {
        "refId": props["refId"],
        "target": {"type": ["string", "null"], "pattern": word(&[], false, true)},
        "payload": {},
        "hide": {"type": ["boolean", "null"]}}});
    let hidden = json!({"type": "object", "required": ["hide"], "properties": {
        "refId": props["refId"],
        "target": {"type": ["string", "null"]},
        "payload": {},
        "hide": {"const": true}}});
    json!({"description": generated["description"], "anyOf": [visible, no_metric, hidden]})
}

/// A Grafana ad-hoc filter: `{key, operator, value, values}` (other fields are ignored).
/// - `=`, `!=` (a blank operator is `=`): one `value`;
/// - `=|`, `!=|`: `values` (or, when absent or empty, `value`);
/// - `=~`, `!~`: `value` is `.*`/`.+` or an alternation of literal values (`a|b`,
///   `^(a|b)$`), no other regex.
///
/// Genders and age bands must be known values (any case); statuses and priorities any
/// non-blank text or number.
#[derive(Serialize)]
pub struct AdhocFilterDoc;

/// A placeholder: utoipa's schema types cannot hold `const` or an empty-array `enum`, so
/// [`crate::openapi::spec`] puts [`adhoc_filter`]'s JSON in its place.
impl utoipa::PartialSchema for AdhocFilterDoc {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .into()
    }
}

impl ToSchema for AdhocFilterDoc {}

/// The schema of [`AdhocFilterDoc`], as JSON.
pub fn adhoc_filter() -> Value {
    let w = format!("[{WHITESPACE}]*");
    let word = |p: &str| format!("^{w}({p}){w}$");
    let ops_one = format!("^{w}(=|!=)?{w}$");
    let ops_many = word("=\\||!=\\|");
    let ops_regex = word("=~|!~");
    let not_blank = crate::input_schema::not_blank_pattern();
    let special = "\\.\\*\\?\\(\\)\\[\\]\\{\\}\\^\\$\\|\\\\";
    let any_regex = "\\.[*+]";
    let mut branches = Vec::new();
    for dim in Dim::ALL {
        let key = json!({"type": "string", "pattern": word(dim.name())});
        let (one, alternative): (Value, String) = if dim.is_closed() {
            let mut items: Vec<String> = dim.known_values().iter().map(|v| any_case(v)).collect();
            if dim == Dim::AgeBand {
                items.push("60".into());
            }
            let item = items.join("|");
            let mut one = json!({"type": "string", "pattern": word(&item)});
            if dim == Dim::AgeBand {
                one = json!({"anyOf": [one, {"const": 60}]});
            }
            (one, format!("{w}({item}){w}"))
        } else {
            let one =
                json!({"anyOf": [{"type": "string", "pattern": not_blank}, {"type": "number"}]});
            (
                one,
                format!("[^{special}]*[^{special}{WHITESPACE}][^{special}]*"),
            )
        };
        let alternation = format!("{alternative}(\\|{alternative})*");
        let regex = format!(
            "^{w}(\\^?)(\\((\\?:)?({alternation}|{any_regex})\\)|{alternation}|{any_regex})(\\$?){w}$"
        );
        let no_values = json!({"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]});
        branches.push(json!({"type": "object", "required": ["key", "value"],
            "properties": {"key": key, "operator": {"type": "string", "pattern": ops_one}, "value": one}}));
        branches.push(
            json!({"type": "object", "required": ["key", "operator", "values"],
            "properties": {"key": key, "operator": {"type": "string", "pattern": ops_many},
                "values": {"type": "array", "minItems": 1, "items": one}}}),
        );
        branches.push(
            json!({"type": "object", "required": ["key", "operator", "value"],
            "properties": {"key": key, "operator": {"type": "string", "pattern": ops_many},
                "value": one, "values": no_values}}),
        );
        branches.push(
            json!({"type": "object", "required": ["key", "operator", "value"],
            "properties": {"key": key, "operator": {"type": "string", "pattern": ops_regex},
                "value": {"type": "string", "pattern": regex}}}),
        );
    }
    json!({"anyOf": branches})
}

/// `POST /grafana/query`. Unknown fields (`app`, `requestId`, `scopedVars`, ...) are ignored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequestDoc {
    /// The dashboard's range.
    pub range: Option<QueryRange>,
    /// The panel's interval in ms (a day or more picks daily points).
    #[schema(schema_with = count)]
    pub interval_ms: Option<String>,
    /// The panel's point budget.
    #[schema(schema_with = count)]
    pub max_data_points: Option<String>,
    /// `browser`, `utc`, an IANA name, or empty.
    #[schema(schema_with = tz)]
    pub timezone: Option<String>,
    /// The panel's queries.
    pub targets: Option<Vec<QueryTarget>>,
    /// Ad-hoc filters.
    pub filters: Option<Vec<AdhocFilterDoc>>,
    /// Ad-hoc filters under SimpleJSON's older name.
    pub adhoc_filters: Option<Vec<AdhocFilterDoc>>,
}

/// `POST /grafana/metric-payload-options`.
#[derive(Serialize, ToSchema)]
pub struct PayloadOptionsDoc {
    /// The current metric (a view name, or blank).
    #[schema(schema_with = metric_or_blank)]
    pub metric: Option<String>,
    /// The payload whose options are wanted.
    #[schema(schema_with = payload_name)]
    pub name: String,
}

fn payload_name() -> RefOr<Schema> {
    string_matching(word(
        &[
            "bucket", "split_by", "tz", "gender", "age_band", "status", "priority",
        ],
        false,
        false,
    ))
    .into()
}

/// `POST /grafana/variable`: the variable's name in `payload` (a text, or an object's
/// `target`, `variable`, `name` or `query`) or in `target`.
#[derive(Serialize, ToSchema)]
pub struct VariableRequestDoc {
    /// `{target: name}` or the name itself.
    #[schema(schema_with = variable_payload)]
    pub payload: String,
    /// The name (raw mode of older plugin versions).
    pub target: Option<String>,
}

fn variable_name() -> String {
    word(
        &[
            "view",
            "views",
            "metric",
            "metrics",
            "tz",
            "timezone",
            "bucket",
            "split_by",
            "responsible",
            "gender",
            "age_band",
            "status",
            "priority",
        ],
        false,
        false,
    )
}

fn variable_payload() -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(string_matching(variable_name()))
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Object))
                .property("target", string_matching(variable_name()))
                .required("target"),
        )
        .into()
}

/// `POST /grafana/tag-values`.
#[derive(Serialize, ToSchema)]
pub struct TagValuesDoc {
    /// `gender`, `age_band`, `status` or `priority`.
    #[schema(schema_with = dim_key)]
    pub key: String,
}

fn dim_key() -> RefOr<Schema> {
    let names: Vec<&str> = Dim::ALL.iter().map(|d| d.name()).collect();
    string_matching(word(&names, false, false)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ad-hoc filter schema keeps the keywords utoipa's types would drop.
    #[test]
    fn adhoc_filter_schema_parses() {
        let text = adhoc_filter().to_string();
        assert!(text.contains("anyOf") && text.contains("=~|!~"), "{text}");
        assert!(text.contains(r#""maxItems":0"#), "{text}");
        assert!(text.contains(r#""minItems":1"#), "{text}");
    }
}
