//! What the Grafana API serves: the metric (view) names, the dimensions they can be filtered and
//! split by, and the payload descriptions `/metrics` hands to the simpod query editor.

use lpm_engine::model::{Priority, Status};
use lpm_engine::series::{Margin, MarginDim, SeriesKey, SeriesKind};
use lpm_engine::views::{AgeBand, Gender};
use lpm_engine::ViewName;
use serde_json::{json, Value};

/// A view the API can serve, as a simpod `target` or an Infinity `/rows/{view}` path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// A time series over the facts of one kind (`reports`, `cases_opened`, `cases_closed`).
    Series(SeriesKind),
    /// A table over one of the engine's views (or the sensitive open cases).
    Table(TableView),
}

/// The table views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableView {
    /// `age_group`: persons per age band.
    AgeGroup,
    /// `gender`: persons per normalised gender.
    Gender,
    /// `hour_of_day`: persons per local hour of day (engine zone).
    HourOfDay,
    /// `hourly`: persons per local hour start (engine zone).
    Hourly,
    /// `cases_by_status`: cases per status.
    CasesByStatus,
    /// `open_by_priority`: open cases per priority.
    OpenByPriority,
    /// `responsible_load`: open cases per responsible contact.
    ResponsibleLoad,
    /// `kpi`: the scalar KPIs as one row.
    Kpi,
    /// `sensitive_open_cases`: open cases of minors or of high/critical priority.
    SensitiveOpenCases,
}

impl TableView {
    /// Every table view, in `/metrics` order.
    pub const ALL: [TableView; 9] = [
        TableView::AgeGroup,
        TableView::Gender,
        TableView::HourOfDay,
        TableView::Hourly,
        TableView::CasesByStatus,
        TableView::OpenByPriority,
        TableView::ResponsibleLoad,
        TableView::Kpi,
        TableView::SensitiveOpenCases,
    ];

    /// The engine view this table shows (`None` for the sensitive open cases, read from the
    /// case model).
    pub fn engine_view(self) -> Option<ViewName> {
        Some(match self {
            TableView::AgeGroup => ViewName::AgeGroup,
            TableView::Gender => ViewName::Gender,
            TableView::HourOfDay => ViewName::HourOfDay,
            TableView::Hourly => ViewName::Hourly,
            TableView::CasesByStatus => ViewName::CasesByStatus,
            TableView::OpenByPriority => ViewName::OpenByPriority,
            TableView::ResponsibleLoad => ViewName::ResponsibleLoad,
            TableView::Kpi => ViewName::Kpi,
            TableView::SensitiveOpenCases => return None,
        })
    }

    /// The wire name: the engine view's name, or `sensitive_open_cases`.
    pub fn name(self) -> &'static str {
        self.engine_view()
            .map_or("sensitive_open_cases", ViewName::name)
    }

    fn label(self) -> &'static str {
        match self {
            TableView::AgeGroup => "Persons by age group (table)",
            TableView::Gender => "Persons by gender (table)",
            TableView::HourOfDay => "Reports by local hour of day (table)",
            TableView::Hourly => "Reports per local hour (table)",
            TableView::CasesByStatus => "Cases by status (table)",
            TableView::OpenByPriority => "Open cases by priority (table)",
            TableView::ResponsibleLoad => "Open cases per responsible (table)",
            TableView::Kpi => "KPIs (one-row table)",
            TableView::SensitiveOpenCases => {
                "Sensitive open cases: minors or high/critical (table)"
            }
        }
    }
}

/// The time-series kinds, in `/metrics` order.
pub const SERIES: [SeriesKind; 3] = [SeriesKind::Reported, SeriesKind::Opened, SeriesKind::Closed];

/// The wire name of a time series.
pub fn series_name(kind: SeriesKind) -> &'static str {
    match kind {
        SeriesKind::Reported => "reports",
        SeriesKind::Opened => "cases_opened",
        SeriesKind::Closed => "cases_closed",
    }
}

fn series_label(kind: SeriesKind) -> &'static str {
    match kind {
        SeriesKind::Reported => "Reports per hour/day",
        SeriesKind::Opened => "Cases opened per hour/day",
        SeriesKind::Closed => "Cases closed per hour/day",
    }
}

impl View {
    /// Every view: the time series, then the tables.
    pub fn all() -> impl Iterator<Item = View> {
        SERIES
            .into_iter()
            .map(View::Series)
            .chain(TableView::ALL.into_iter().map(View::Table))
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            View::Series(k) => series_name(k),
            View::Table(t) => t.name(),
        }
    }

    /// Parses a wire name (exact, after trimming).
    pub fn parse(name: &str) -> Option<View> {
        let name = name.trim();
        View::all().find(|v| v.name() == name)
    }
}

/// A dimension of the time-series facts (and of the sensitive cases table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    /// The person's normalised gender.
    Gender,
    /// The person's age band.
    AgeBand,
    /// The case status (`none` for a report without a case).
    Status,
    /// The case priority (`none` for a report without a case).
    Priority,
}

/// The label of a missing status or priority (a report whose person has no case).
pub const NONE_LABEL: &str = "none";

impl Dim {
    /// Every dimension, in tag-key order.
    pub const ALL: [Dim; 4] = [Dim::Gender, Dim::AgeBand, Dim::Status, Dim::Priority];

    /// The wire name (tag key, payload name, query parameter).
    pub fn name(self) -> &'static str {
        match self {
            Dim::Gender => "gender",
            Dim::AgeBand => "age_band",
            Dim::Status => "status",
            Dim::Priority => "priority",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.name() == name.trim())
    }

    /// A dense index 0..4.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The fixed values, in display order (statuses and priorities may also have other values).
    pub fn known_values(self) -> Vec<&'static str> {
        match self {
            Dim::Gender => Gender::ALL.iter().map(|g| g.label()).collect(),
            Dim::AgeBand => AgeBand::ALL.iter().map(|b| b.label()).collect(),
            Dim::Status => Status::KNOWN.iter().map(status_label).collect(),
            Dim::Priority => Priority::KNOWN.iter().map(priority_label).collect(),
        }
    }

    /// Whether the values form a closed set (anything else is rejected).
    pub fn is_closed(self) -> bool {
        matches!(self, Dim::Gender | Dim::AgeBand)
    }

    /// This dimension's label of a fact.
    pub fn label_of(self, key: &SeriesKey) -> &str {
        match self {
            Dim::Gender => key.gender.label(),
            Dim::AgeBand => key.age_band.label(),
            Dim::Status => key.status.as_ref().map_or(NONE_LABEL, Status::as_str),
            Dim::Priority => key.priority.as_ref().map_or(NONE_LABEL, Priority::as_str),
        }
    }

    /// This dimension's part of the rollup.
    pub fn margin_dim(self) -> MarginDim {
        match self {
            Dim::Gender => MarginDim::Gender,
            Dim::AgeBand => MarginDim::AgeBand,
            Dim::Status => MarginDim::Status,
            Dim::Priority => MarginDim::Priority,
        }
    }

    /// This dimension's label of a rollup margin, like [`Dim::label_of`] of a fact with that
    /// value (`""` for a margin of another dimension, never asked for: a rollup range holds
    /// one dimension).
    pub fn label_of_margin(self, margin: &Margin) -> &str {
        match (self, margin) {
            (Dim::Gender, Margin::Gender(g)) => g.label(),
            (Dim::AgeBand, Margin::AgeBand(b)) => b.label(),
            (Dim::Status, Margin::Status(s)) => s.as_ref().map_or(NONE_LABEL, Status::as_str),
            (Dim::Priority, Margin::Priority(p)) => p.as_ref().map_or(NONE_LABEL, Priority::as_str),
            _ => "",
        }
    }

    /// The rank of a label in display order: known values first, anything else after.
    pub fn rank(self, label: &str) -> usize {
        self.known_values()
            .iter()
            .position(|v| *v == label)
            .unwrap_or(usize::MAX)
    }
}

fn status_label(s: &Status) -> &'static str {
    match s {
        Status::Open => "open",
        Status::InProgress => "in_progress",
        Status::FoundAlive => "found_alive",
        Status::FoundDeceased => "found_deceased",
        Status::Closed => "closed",
        Status::Other(_) => NONE_LABEL,
    }
}

fn priority_label(p: &Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Critical => "critical",
        Priority::Other(_) => NONE_LABEL,
    }
}

/// The `bucket` payload / parameter options.
pub const BUCKET_OPTIONS: [&str; 3] = ["auto", "hour", "day"];

/// The `split_by` payload / parameter options.
pub const SPLIT_OPTIONS: [&str; 5] = ["none", "gender", "age_band", "status", "priority"];

/// The special `tz` payload values (before the IANA names).
pub const TZ_SPECIAL: [(&str, &str); 3] = [
    ("dashboard", "Dashboard time zone"),
    ("server", "Server zone (REPORT_LOCAL_TZ)"),
    ("UTC", "UTC"),
];

/// Every IANA zone name chrono-tz knows, sorted.
pub fn tz_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    names.sort_unstable();
    names
}

fn options(values: &[&str]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|v| json!({"value": v, "label": v}))
            .collect(),
    )
}

/// The options of the payload `name`, for `/metric-payload-options`; `None` for an unknown name.
pub fn payload_options(name: &str) -> Option<Value> {
    Some(match name {
        "bucket" => options(&BUCKET_OPTIONS),
        "split_by" => options(&SPLIT_OPTIONS),
        "tz" => Value::Array(
            TZ_SPECIAL
                .iter()
                .map(|(v, l)| json!({"value": v, "label": l}))
                .chain(
                    tz_names()
                        .into_iter()
                        .map(|n| json!({"value": n, "label": n})),
                )
                .collect(),
        ),
        other => options(&Dim::parse(other)?.known_values()),
    })
}

fn dim_payload(dim: Dim, only: Option<&[&str]>) -> Value {
    let values = only.map_or_else(|| dim.known_values(), <[&str]>::to_vec);
    json!({
        "name": dim.name(),
        "label": dim.name().replace('_', " "),
        "type": "multi-select",
        "placeholder": "all",
        "width": 30,
        "options": options(&values),
    })
}

/// The payloads of a time series: grain, zone, filters and split.
fn series_payloads() -> Vec<Value> {
    let mut p = vec![
        json!({
            "name": "bucket",
            "label": "bucket",
            "type": "select",
            "placeholder": "auto (from the interval)",
            "width": 20,
            "options": options(&BUCKET_OPTIONS),
        }),
        // no inline options: the editor asks /metric-payload-options (every IANA zone)
        json!({
            "name": "tz",
            "label": "time zone",
            "type": "select",
            "placeholder": "dashboard",
            "width": 30,
        }),
    ];
    p.extend(Dim::ALL.into_iter().map(|d| dim_payload(d, None)));
    p.push(json!({
        "name": "split_by",
        "label": "split by",
        "type": "select",
        "placeholder": "none",
        "width": 20,
        "options": options(&SPLIT_OPTIONS),
    }));
    p
}

/// The `/metrics` answer: one entry per view with its payloads.
pub fn metrics() -> Value {
    let series = SERIES.into_iter().map(|k| {
        json!({"value": series_name(k), "label": series_label(k), "payloads": series_payloads()})
    });
    let tables = TableView::ALL.into_iter().map(|t| {
        let payloads = match t {
            TableView::SensitiveOpenCases => vec![
                dim_payload(Dim::Gender, None),
                dim_payload(Dim::AgeBand, None),
                dim_payload(Dim::Status, Some(&["open", "in_progress"])),
                dim_payload(Dim::Priority, None),
            ],
            _ => Vec::new(),
        };
        json!({"value": t.name(), "label": t.label(), "payloads": payloads})
    });
    Value::Array(series.chain(tables).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in View::all() {
            assert_eq!(View::parse(v.name()), Some(v));
        }
        assert_eq!(View::all().count(), 12);
        assert_eq!(View::parse("nope"), None);
        for d in Dim::ALL {
            assert_eq!(Dim::parse(d.name()), Some(d));
        }
    }

    #[test]
    fn every_select_payload_has_options() {
        let Value::Array(metrics) = metrics() else {
            panic!("not an array")
        };
        for m in metrics {
            for p in m["payloads"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                assert!(payload_options(name).is_some(), "{name}");
                assert!(p.get("options").is_some() || name == "tz", "{name}");
            }
        }
        let tz = payload_options("tz").unwrap_or_default();
        assert!(tz.as_array().is_some_and(|a| a.len() > 400));
    }
}
