//! A test oracle for Grafana's `toDataFrame` (`packages/grafana-data/src/dataframe/
//! processDataFrame.ts`): which branch a `/query` response element takes, and whether it is
//! well formed for that branch (`shared/grafana.md` 3a, 3g).

use serde_json::Value;

/// The `toDataFrame` branch an element lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Has `fields`: a data frame DTO.
    Frame,
    /// `type: "docs"`: legacy JSON documents.
    Docs,
    /// Has `datapoints` or `target`: a legacy time series.
    TimeSeries,
    /// Has `data` and `schema`: frame JSON.
    FrameJson,
    /// Has `data` without `schema`: a graph series.
    GraphSeries,
    /// Has `columns`: a legacy table.
    Table,
    /// A plain array: one row per object.
    Array,
}

/// `toDataFrame`'s dispatch order: `fields`, `type == "docs"`, `datapoints`/`target`,
/// `data` (+`schema`), `columns`, array; anything else is "Unsupported data format".
pub fn to_data_frame_kind(value: &Value) -> Result<Kind, String> {
    match value {
        Value::Object(o) => {
            if o.contains_key("fields") {
                Ok(Kind::Frame)
            } else if o.get("type").and_then(Value::as_str) == Some("docs") {
                Ok(Kind::Docs)
            } else if o.contains_key("datapoints") || o.contains_key("target") {
                Ok(Kind::TimeSeries)
            } else if o.contains_key("data") {
                Ok(if o.contains_key("schema") {
                    Kind::FrameJson
                } else {
                    Kind::GraphSeries
                })
            } else if o.contains_key("columns") {
                Ok(Kind::Table)
            } else {
                Err(format!("Unsupported data format: {value}"))
            }
        }
        Value::Array(_) => Ok(Kind::Array),
        other => Err(format!("Unsupported data format: {other}")),
    }
}

fn is_integer(v: &Value) -> bool {
    v.as_i64().is_some() || v.as_u64().is_some()
}

/// A time series element: `target` a string; `datapoints` `[[finite value, integer epoch
/// ms], ...]` with strictly ascending times (the single time field of the frame); `tags`, if
/// any, an object of strings; `meta`, if any, a `QueryResultMeta` whose `notices` are
/// `{severity: info|warning|error, text}`.
pub fn check_time_series(value: &Value) -> Result<(), String> {
    let target = value.get("target").and_then(Value::as_str);
    if target.is_none_or(str::is_empty) {
        return Err(format!("time series without a target name: {value}"));
    }
    let points = value
        .get("datapoints")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("datapoints is not an array: {value}"))?;
    let mut last: Option<i64> = None;
    for p in points {
        let pair = p
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| format!("datapoint is not a [value, time] pair: {p}"))?;
        let finite = pair[0].as_f64().is_some_and(f64::is_finite);
        if !finite {
            return Err(format!("datapoint value is not a finite number: {p}"));
        }
        if !is_integer(&pair[1]) {
            return Err(format!("datapoint time is not integer epoch ms: {p}"));
        }
        let t = pair[1]
            .as_i64()
            .ok_or_else(|| format!("time out of range: {p}"))?;
        if last.is_some_and(|l| l >= t) {
            return Err(format!("datapoint times are not strictly ascending at {p}"));
        }
        last = Some(t);
    }
    if let Some(tags) = value.get("tags") {
        let ok = tags
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string));
        if !ok {
            return Err(format!("tags must be an object of strings: {tags}"));
        }
    }
    if let Some(meta) = value.get("meta") {
        check_meta(meta)?;
    }
    Ok(())
}

/// `QueryResultMeta` as far as we send it: an object whose `notices`, if any, are
/// `[{severity: "info"|"warning"|"error", text: non-empty string}]`.
fn check_meta(meta: &Value) -> Result<(), String> {
    let object = meta
        .as_object()
        .ok_or_else(|| format!("meta is not an object: {meta}"))?;
    let Some(notices) = object.get("notices") else {
        return Ok(());
    };
    let notices = notices
        .as_array()
        .ok_or_else(|| format!("meta.notices is not an array: {meta}"))?;
    for n in notices {
        let severity = n.get("severity").and_then(Value::as_str);
        let text = n.get("text").and_then(Value::as_str);
        let ok = matches!(severity, Some("info" | "warning" | "error"))
            && text.is_some_and(|t| !t.is_empty());
        if !ok {
            return Err(format!("bad notice {n}"));
        }
    }
    Ok(())
}

/// A table element: `columns` `[{text, type: time|string|number}]`, every row an array of
/// the same length, each cell of its column's type (or null); time cells integer epoch ms.
pub fn check_table(value: &Value) -> Result<(), String> {
    let columns = value
        .get("columns")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("columns is not an array: {value}"))?;
    let mut types = Vec::new();
    for c in columns {
        let text = c.get("text").and_then(Value::as_str);
        let ty = c.get("type").and_then(Value::as_str);
        match (text, ty) {
            (Some(t), Some(ty @ ("time" | "string" | "number"))) if !t.is_empty() => types.push(ty),
            _ => return Err(format!("bad column {c}")),
        }
    }
    let rows = value
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("rows is not an array: {value}"))?;
    for row in rows {
        let cells = row
            .as_array()
            .ok_or_else(|| format!("row is not an array: {row}"))?;
        if cells.len() != types.len() {
            return Err(format!(
                "row has {} cells for {} columns: {row}",
                cells.len(),
                types.len()
            ));
        }
        for (cell, ty) in cells.iter().zip(&types) {
            let ok = cell.is_null()
                || match *ty {
                    "time" => is_integer(cell),
                    "number" => cell.as_f64().is_some_and(f64::is_finite),
                    _ => cell.is_string(),
                };
            if !ok {
                return Err(format!("cell {cell} is not a {ty}"));
            }
        }
    }
    Ok(())
}

/// Dispatches and validates one `/query` response element.
pub fn check_element(value: &Value) -> Result<Kind, String> {
    let kind = to_data_frame_kind(value)?;
    match kind {
        Kind::TimeSeries => check_time_series(value)?,
        Kind::Table => check_table(value)?,
        other => return Err(format!("unexpected branch {other:?} for {value}")),
    }
    Ok(kind)
}

/// Validates a whole `/query` answer: a JSON array of valid elements; returns their kinds.
pub fn check_response(value: &Value) -> Result<Vec<Kind>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("/query answer is not an array: {value}"))?
        .iter()
        .map(check_element)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatch_follows_grafana_order() {
        assert_eq!(
            to_data_frame_kind(&json!({"fields": [], "datapoints": []})),
            Ok(Kind::Frame)
        );
        assert_eq!(
            to_data_frame_kind(&json!({"target": "x", "columns": []})),
            Ok(Kind::TimeSeries)
        );
        assert_eq!(
            to_data_frame_kind(&json!({"data": [], "schema": {}})),
            Ok(Kind::FrameJson)
        );
        assert_eq!(
            to_data_frame_kind(&json!({"data": []})),
            Ok(Kind::GraphSeries)
        );
        assert_eq!(
            to_data_frame_kind(&json!({"type": "table", "columns": []})),
            Ok(Kind::Table)
        );
        assert_eq!(to_data_frame_kind(&json!([{"a": 1}])), Ok(Kind::Array));
        assert!(to_data_frame_kind(&json!({"rows": []})).is_err());
        assert!(to_data_frame_kind(&json!(3)).is_err());
    }

    #[test]
    fn catches_malformed_series_and_tables() {
        let ok = json!({"target": "a", "datapoints": [[1, 1000], [2.5, 2000]]});
        assert_eq!(check_element(&ok), Ok(Kind::TimeSeries));
        let noticed = json!({"target": "a", "datapoints": [],
            "meta": {"notices": [{"severity": "info", "text": "served per day"}]}});
        assert_eq!(check_element(&noticed), Ok(Kind::TimeSeries));
        for bad in [
            json!({"target": "a", "datapoints": [[1, 2000], [2, 1000]]}),
            json!({"target": "a", "datapoints": [[1, 1000], [2, 1000]]}),
            json!({"target": "a", "datapoints": [[1000, "x"]]}),
            json!({"target": "a", "datapoints": [[1, 1000.5]]}),
            json!({"target": "a", "datapoints": [[null, 1000]]}),
            json!({"target": "a", "datapoints": [[1, 1000]], "tags": {"g": 1}}),
            json!({"datapoints": [[1, 1000]]}),
            json!({"target": "a", "datapoints": [], "meta": []}),
            json!({"target": "a", "datapoints": [], "meta": {"notices": [{"text": "x"}]}}),
            json!({"target": "a", "datapoints": [],
                   "meta": {"notices": [{"severity": "loud", "text": "x"}]}}),
        ] {
            assert!(check_element(&bad).is_err(), "{bad}");
        }
        let table = json!({"type": "table", "columns": [{"text": "k", "type": "string"},
            {"text": "n", "type": "number"}], "rows": [["a", 1], ["b", null]]});
        assert_eq!(check_element(&table), Ok(Kind::Table));
        for bad in [
            json!({"columns": [{"text": "k", "type": "string"}], "rows": [["a", 1]]}),
            json!({"columns": [{"text": "k", "type": "number"}], "rows": [["a"]]}),
            json!({"columns": [{"text": "k", "type": "bool"}], "rows": []}),
            json!({"columns": [{"text": "t", "type": "time"}], "rows": [[1.5]]}),
        ] {
            assert!(check_element(&bad).is_err(), "{bad}");
        }
    }
}
