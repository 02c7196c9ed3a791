//! Tables over the engine's views, built once as columns and rows and rendered either as a
//! simpod table (`{type:"table", columns, rows}`) or as Infinity's flat row objects.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use lpm_engine::model::{Priority, Status};
use lpm_engine::views::{AgeBand, Gender};
use lpm_engine::Views;
use serde_json::{json, Map, Value};

use super::cases::{sort_cases, SensitiveCase};
use super::catalog::TableView;
use super::params::{iso, DimFilter};

/// A column's Grafana type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// Epoch milliseconds.
    Time,
    /// Text.
    String,
    /// A number (or null).
    Number,
}

impl ColType {
    fn name(self) -> &'static str {
        match self {
            ColType::Time => "time",
            ColType::String => "string",
            ColType::Number => "number",
        }
    }
}

/// A column: its Grafana header, its key in Infinity rows, and its type.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The header in Grafana tables.
    pub text: &'static str,
    /// The key in flat rows.
    pub key: &'static str,
    /// The type.
    pub kind: ColType,
}

const fn col(text: &'static str, key: &'static str, kind: ColType) -> Column {
    Column { text, key, kind }
}

/// A built table: every row has one value per column.
#[derive(Clone, Debug)]
pub struct TableData {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

impl TableData {
    /// The simpod/Grafana table shape.
    pub fn to_grafana(&self, ref_id: &str) -> Value {
        json!({
            "type": "table",
            "refId": ref_id,
            "columns": self.columns.iter()
                .map(|c| json!({"text": c.text, "type": c.kind.name()}))
                .collect::<Vec<_>>(),
            "rows": self.rows,
        })
    }

    /// Flat objects keyed by the columns' row keys; a time column `k` also gets `k_iso`.
    pub fn to_rows(&self, tz: &Tz) -> Vec<Value> {
        self.rows
            .iter()
            .map(|row| {
                let mut obj = Map::new();
                for (c, v) in self.columns.iter().zip(row) {
                    if c.kind == ColType::Time {
                        let text = v
                            .as_i64()
                            .map_or(Value::Null, |ms| Value::String(iso(ms, tz)));
                        obj.insert(format!("{}_iso", c.key), text);
                    }
                    obj.insert(c.key.to_string(), v.clone());
                }
                Value::Object(obj)
            })
            .collect()
    }
}

/// What a table may depend on besides the views.
pub struct TableCtx<'a> {
    /// The query's range (only `hourly` is restricted by it).
    pub range: Option<(i64, i64)>,
    /// Dimension filters (only `sensitive_open_cases` has the dimensions).
    pub filter: &'a DimFilter,
    /// Whether the caller sees personal data (names, places, exact ages).
    pub personal: bool,
    /// The sensitive cases (fetched only for `sensitive_open_cases`).
    pub cases: &'a [SensitiveCase],
}

/// A `{key, count}` table of a count view: `order` first, then any other keys (sorted).
fn counts(text: &'static str, map: &BTreeMap<String, i64>, order: &[&str]) -> TableData {
    let mut rows: Vec<Vec<Value>> = order
        .iter()
        .map(|k| vec![json!(k), json!(map.get(*k).copied().unwrap_or(0))])
        .collect();
    rows.extend(
        map.iter()
            .filter(|(k, _)| !order.contains(&k.as_str()))
            .map(|(k, n)| vec![json!(k), json!(n)]),
    );
    TableData {
        columns: vec![
            col(text, "key", ColType::String),
            col("count", "count", ColType::Number),
        ],
        rows,
    }
}

/// Builds a table view.
pub fn build(view: TableView, views: &Views, ctx: &TableCtx<'_>) -> TableData {
    match view {
        TableView::AgeGroup => {
            let order: Vec<_> = AgeBand::ALL.iter().map(|b| b.label()).collect();
            counts("age_band", &views.age_group, &order)
        }
        TableView::Gender => {
            let order: Vec<_> = Gender::ALL.iter().map(|g| g.label()).collect();
            counts("gender", &views.gender, &order)
        }
        TableView::HourOfDay => {
            let order: Vec<String> = (0..24).map(|h: u8| h.to_string()).collect();
            let order: Vec<&str> = order.iter().map(String::as_str).collect();
            counts("hour", &views.hour_of_day, &order)
        }
        TableView::CasesByStatus => {
            let known = Status::KNOWN;
            let order: Vec<_> = known.iter().map(Status::as_str).collect();
            counts("status", &views.cases_by_status, &order)
        }
        TableView::OpenByPriority => {
            let known = Priority::KNOWN;
            let order: Vec<_> = known.iter().map(Priority::as_str).collect();
            counts("priority", &views.open_by_priority, &order)
        }
        TableView::Hourly => hourly(views, ctx.range),
        TableView::ResponsibleLoad => TableData {
            columns: vec![
                col("id", "id", ColType::Number),
                col("full_name", "full_name", ColType::String),
                col("agency", "agency", ColType::String),
                col("open_cases", "open_cases", ColType::Number),
            ],
            rows: views
                .responsible_load
                .iter()
                .map(|e| {
                    vec![
                        json!(e.id),
                        json!(e.full_name),
                        json!(e.agency),
                        json!(e.open_cases),
                    ]
                })
                .collect(),
        },
        TableView::Kpi => kpi(views),
        TableView::SensitiveOpenCases => sensitive(ctx),
    }
}

/// `hourly`: `(local hour start, count)` ascending, restricted to the range when there is one.
fn hourly(views: &Views, range: Option<(i64, i64)>) -> TableData {
    let mut rows: Vec<(i64, i64)> = views
        .hourly
        .iter()
        .filter_map(|(k, n)| Some((k.parse::<i64>().ok()?.checked_mul(1000)?, *n)))
        .filter(|(t, _)| range.is_none_or(|(from, to)| from <= *t && *t < to))
        .collect();
    rows.sort_unstable();
    TableData {
        columns: vec![
            col("time", "time", ColType::Time),
            col("count", "count", ColType::Number),
        ],
        rows: rows
            .into_iter()
            .map(|(t, n)| vec![json!(t), json!(n)])
            .collect(),
    }
}

fn kpi(views: &Views) -> TableData {
    let k = &views.kpi;
    let cells: [(&'static str, Value); 9] = [
        ("total_reports", json!(k.total_reports)),
        ("open_cases", json!(k.open_cases)),
        ("closed_cases", json!(k.closed_cases)),
        ("unassigned_open_cases", json!(k.unassigned_open_cases)),
        ("found_alive", json!(k.found_alive)),
        ("mean_hours_to_close", json!(k.mean_hours_to_close)),
        ("open_minor_cases", json!(k.open_minor_cases)),
        ("actions_total", json!(k.actions_total)),
        ("cases_without_person", json!(k.cases_without_person)),
    ];
    TableData {
        columns: cells
            .iter()
            .map(|(name, _)| col(name, name, ColType::Number))
            .collect(),
        rows: vec![cells.into_iter().map(|(_, v)| v).collect()],
    }
}

/// The sensitive open cases; without personal data, the name, place and exact age are left out.
fn sensitive(ctx: &TableCtx<'_>) -> TableData {
    let mut cases: Vec<SensitiveCase> = ctx
        .cases
        .iter()
        .filter(|c| c.is_sensitive() && ctx.filter.allows_labels(c.labels()))
        .cloned()
        .collect();
    sort_cases(&mut cases);
    let mut columns = vec![
        col("case_id", "case_id", ColType::Number),
        col("opened_at", "opened_at", ColType::Time),
        col("status", "status", ColType::String),
        col("priority", "priority", ColType::String),
        col("age_band", "age_band", ColType::String),
        col("gender", "gender", ColType::String),
        col("responsible", "responsible", ColType::String),
    ];
    if ctx.personal {
        columns.extend([
            col("age", "age", ColType::Number),
            col("full_name", "full_name", ColType::String),
            col("last_seen_place", "last_seen_place", ColType::String),
        ]);
    }
    let rows = cases
        .iter()
        .map(|c| {
            let mut row = vec![
                json!(c.case_id),
                json!(c.opened_at),
                json!(c.status.as_str()),
                json!(c.priority.as_str()),
                json!(c.age_band().label()),
                json!(c.gender.label()),
                json!(c.responsible),
            ];
            if ctx.personal {
                row.extend([json!(c.age), json!(c.full_name), json!(c.last_seen_place)]);
            }
            row
        })
        .collect();
    TableData { columns, rows }
}
