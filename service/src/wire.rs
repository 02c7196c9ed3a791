//! The views on the wire: one view row as a `(view, key, value)` triple, and the messages of
//! `GET /api/v1/stream` (docs/api.md has the protocol). Here, and not in lpm-api, so that Rust
//! clients of the protocol (the serve and soak benches, the end-to-end tests) parse it with the
//! server's own types and turn rows back into `Views` without depending on the HTTP crate.
//!
//! A row is `{"view":"age_group","key":"0-11","value":12}`; `responsible_load` rows carry
//! `{"full_name","agency","open_cases"}` as value; `kpi` rows are the raw sums; `hotspots` rows
//! (only when the view is on) are keyed by the cell in hex and carry
//! `{"reports","open_cases","open_minor_cases"}`.

use lpm_engine::hotspots::{cell_key, parse_cell_key};
use lpm_engine::model::{Priority, Status, Table};
use lpm_engine::views::{AgeBand, Gender, Kpi, Metric, ViewRow};
use lpm_engine::{Tick, ViewName};
use serde::{Deserialize, Serialize};

/// One view row on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireRow {
    /// The view.
    pub view: String,
    /// The key within the view.
    pub key: String,
    /// The count, or an object for `responsible_load`.
    pub value: serde_json::Value,
}

const KPIS: [(Kpi, &str); 10] = [
    (Kpi::TotalReports, "total_reports"),
    (Kpi::OpenCases, "open_cases"),
    (Kpi::ClosedCases, "closed_cases"),
    (Kpi::UnassignedOpenCases, "unassigned_open_cases"),
    (Kpi::FoundAlive, "found_alive"),
    (Kpi::CasesWithCloseTime, "cases_with_close_time"),
    (Kpi::CloseMillisSum, "close_millis_sum"),
    (Kpi::OpenMinorCases, "open_minor_cases"),
    (Kpi::ActionsTotal, "actions_total"),
    (Kpi::CasesWithoutPerson, "cases_without_person"),
];

/// A view row on the wire (`None` for rows that are not views: the time-series facts).
pub fn to_wire(row: &ViewRow) -> Option<WireRow> {
    let view = row.view()?.name().to_string();
    let (key, value): (String, serde_json::Value) = match row {
        ViewRow::Count(m, n) => {
            let key = match m {
                Metric::AgeGroup(b) => b.label().to_string(),
                Metric::Gender(g) => g.label().to_string(),
                Metric::HourOfDay(h) => h.to_string(),
                Metric::Hourly(s) => s.to_string(),
                Metric::CasesByStatus(s) => s.as_str().to_string(),
                Metric::OpenByPriority(p) => p.as_str().to_string(),
                Metric::RowCount(t) => t.name().to_string(),
                Metric::Kpi(k) => KPIS.iter().find(|(x, _)| x == k)?.1.to_string(),
                Metric::Series(_) => return None,
            };
            (key, (*n).into())
        }
        ViewRow::Load {
            id,
            full_name,
            agency,
            open_cases,
        } => (
            id.to_string(),
            serde_json::json!({"full_name": full_name, "agency": agency, "open_cases": open_cases}),
        ),
        ViewRow::Hotspot { cell, figures } => {
            (cell_key(*cell), serde_json::to_value(figures).ok()?)
        }
    };
    Some(WireRow { view, key, value })
}

/// The inverse of [`to_wire`] (clients in Rust, and the tests, rebuild `Views` with it).
pub fn from_wire(w: &WireRow) -> Option<ViewRow> {
    let n = || w.value.as_i64();
    let m = match ViewName::parse(&w.view)? {
        ViewName::AgeGroup => {
            Metric::AgeGroup(AgeBand::ALL.into_iter().find(|b| b.label() == w.key)?)
        }
        ViewName::Gender => Metric::Gender(Gender::ALL.into_iter().find(|g| g.label() == w.key)?),
        ViewName::HourOfDay => Metric::HourOfDay(w.key.parse().ok()?),
        ViewName::Hourly => Metric::Hourly(w.key.parse().ok()?),
        ViewName::CasesByStatus => Metric::CasesByStatus(Status::parse(&w.key)),
        ViewName::OpenByPriority => Metric::OpenByPriority(Priority::parse(&w.key)),
        ViewName::RowCounts => Metric::RowCount(Table::from_name(&w.key)?),
        ViewName::Kpi => Metric::Kpi(KPIS.iter().find(|(_, s)| *s == w.key)?.0),
        ViewName::ResponsibleLoad => {
            return Some(ViewRow::Load {
                id: w.key.parse().ok()?,
                full_name: w.value.get("full_name")?.as_str()?.to_string(),
                agency: w.value.get("agency")?.as_str()?.to_string(),
                open_cases: w.value.get("open_cases")?.as_i64()?,
            })
        }
        ViewName::Hotspots => {
            return Some(ViewRow::Hotspot {
                cell: u64::from(parse_cell_key(&w.key)?),
                figures: serde_json::from_value(w.value.clone()).ok()?,
            })
        }
    };
    Some(ViewRow::Count(m, n()?))
}

/// A change on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireChange {
    /// The row.
    pub row: WireRow,
    /// +1 added, -1 removed.
    pub diff: i64,
}

/// A server message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole view state at `tick`.
    Snapshot {
        /// Tick.
        tick: Tick,
        /// Rows.
        rows: Vec<WireRow>,
    },
    /// One tick's consolidated changes.
    Diff {
        /// Tick.
        tick: Tick,
        /// Changes.
        changes: Vec<WireChange>,
    },
    /// Cases written at `tick` (now visible).
    Cases {
        /// Tick.
        tick: Tick,
        /// Case ids.
        changed: Vec<i64>,
    },
    /// Still here.
    Heartbeat {
        /// The current tick.
        tick: Option<Tick>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpm_engine::views::CellFigures;

    #[test]
    fn every_view_row_round_trips_through_the_wire_form() {
        let mut rows = vec![
            ViewRow::Count(Metric::HourOfDay(23), 4),
            ViewRow::Count(Metric::Hourly(1_790_000_000), 2),
            ViewRow::Count(Metric::CasesByStatus(Status::Other("lost".into())), 1),
            ViewRow::Count(Metric::OpenByPriority(Priority::Critical), 3),
            ViewRow::Load {
                id: 7,
                full_name: "Ana Peña".into(),
                agency: "ECU 911".into(),
                open_cases: 0,
            },
            ViewRow::Hotspot {
                cell: 0x8766d33abffffff,
                figures: CellFigures {
                    reports: 3,
                    open_cases: 2,
                    open_minor_cases: 1,
                },
            },
        ];
        rows.extend(AgeBand::ALL.map(|b| ViewRow::Count(Metric::AgeGroup(b), 1)));
        rows.extend(Gender::ALL.map(|g| ViewRow::Count(Metric::Gender(g), 2)));
        rows.extend(Table::ALL.map(|t| ViewRow::Count(Metric::RowCount(t), 5)));
        rows.extend(KPIS.map(|(k, _)| ViewRow::Count(Metric::Kpi(k), -9)));
        for row in rows {
            let wire = to_wire(&row).expect("a view row has a wire form");
            let text = serde_json::to_string(&wire).expect("json");
            let back: WireRow = serde_json::from_str(&text).expect("parse");
            assert_eq!(from_wire(&back), Some(row));
        }
    }

    #[test]
    fn series_facts_are_not_sent() {
        let key = lpm_engine::series::range_start(lpm_engine::series::SeriesKind::Opened, 0);
        assert_eq!(to_wire(&ViewRow::Count(Metric::Series(key), 1)), None);
    }
}
