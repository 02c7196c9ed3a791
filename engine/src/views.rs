//! What the views are made of: the keys the dataflow counts ([`Metric`]), the rows it outputs
//! ([`ViewRow`]), and the rendering of one consistent set of rows as [`Views`], the JSON shape
//! `oracle.py --check` reads. Definitions: `docs/views.md` (from `shared/bench/README.md`).

use std::collections::BTreeMap;

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

// re-exported: the API, reports and tests name them through this module
pub use crate::dims::{is_minor, AgeBand, Gender};
use crate::hotspots::cell_key;
pub use crate::hotspots::CellFigures;
use crate::model::{EpochMs, Key, Priority, Status, Table};
use crate::names::ViewName;
use crate::series::SeriesKey;

/// The local hour of an instant: `(hour 0..23, UTC epoch second of the start of that local
/// hour)`. A repeated DST hour gives two distinct starts; offsets that are not whole hours work.
pub fn local_hour(ms: EpochMs, tz: &Tz) -> (u8, i64) {
    let sec = ms.div_euclid(1000);
    match tz.timestamp_opt(sec, 0).single() {
        Some(local) => (
            local.hour() as u8,
            sec - i64::from(local.minute() * 60 + local.second()),
        ),
        // unreachable for a UTC instant, but never panic on input
        None => (0, sec - sec.rem_euclid(3600)),
    }
}

/// Scalar KPIs, each the sum of per-row contributions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kpi {
    /// `persons_lost` rows.
    TotalReports,
    /// Cases open or in progress.
    OpenCases,
    /// Cases found alive, found deceased or closed.
    ClosedCases,
    /// Open cases with no responsible.
    UnassignedOpenCases,
    /// Cases found alive.
    FoundAlive,
    /// Cases with `closed_at` set (the denominator of the mean time to close).
    CasesWithCloseTime,
    /// Sum over those cases of `closed_at - opened_at`, in ms (the numerator).
    CloseMillisSum,
    /// Open cases whose person exists and is a minor.
    OpenMinorCases,
    /// `case_actions` rows.
    ActionsTotal,
    /// Cases whose person does not exist.
    CasesWithoutPerson,
}

/// A key the dataflow counts. Every count-shaped view is a set of these; the dataflow keeps
/// `(metric, count)` for all of them in one arrangement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// `age_group`
    AgeGroup(AgeBand),
    /// `gender`
    Gender(Gender),
    /// `hour_of_day`
    HourOfDay(u8),
    /// `hourly`: UTC epoch second of the local hour's start.
    Hourly(i64),
    /// `cases_by_status`
    CasesByStatus(Status),
    /// `open_by_priority`
    OpenByPriority(Priority),
    /// `row_counts`
    RowCount(Table),
    /// `kpi`
    Kpi(Kpi),
    /// A time-series fact for the Grafana API (not one of the oracle's views).
    Series(SeriesKey),
}

impl Metric {
    /// The view this metric is counted in (`None` for the time-series facts: not a view).
    pub fn view(&self) -> Option<ViewName> {
        Some(match self {
            Metric::AgeGroup(_) => ViewName::AgeGroup,
            Metric::Gender(_) => ViewName::Gender,
            Metric::HourOfDay(_) => ViewName::HourOfDay,
            Metric::Hourly(_) => ViewName::Hourly,
            Metric::CasesByStatus(_) => ViewName::CasesByStatus,
            Metric::OpenByPriority(_) => ViewName::OpenByPriority,
            Metric::RowCount(_) => ViewName::RowCounts,
            Metric::Kpi(_) => ViewName::Kpi,
            Metric::Series(_) => return None,
        })
    }
}

/// One output row of the view dataflow. A view's state at a tick is a set of these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ViewRow {
    /// A counted metric and its count.
    Count(Metric, i64),
    /// One `responsible_load` entry.
    Load {
        /// `responsible_contacts.id`
        id: Key,
        /// Name.
        full_name: String,
        /// Agency.
        agency: String,
        /// Open or in-progress cases assigned to this responsible.
        open_cases: i64,
    },
    /// One `hotspots` cell with at least one report.
    Hotspot {
        /// The H3 cell index.
        cell: u64,
        /// Its figures.
        figures: CellFigures,
    },
}

impl ViewRow {
    /// The view this row belongs to (`None` for the time-series facts).
    pub fn view(&self) -> Option<ViewName> {
        match self {
            ViewRow::Count(m, _) => m.view(),
            ViewRow::Load { .. } => Some(ViewName::ResponsibleLoad),
            ViewRow::Hotspot { .. } => Some(ViewName::Hotspots),
        }
    }
}

/// One `responsible_load` entry in the JSON output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadEntry {
    /// `responsible_contacts.id`
    pub id: Key,
    /// Name.
    pub full_name: String,
    /// Agency.
    pub agency: String,
    /// Open or in-progress cases assigned.
    pub open_cases: i64,
}

/// The `kpi` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KpiValues {
    /// `persons_lost` rows.
    pub total_reports: i64,
    /// Open or in-progress cases.
    pub open_cases: i64,
    /// Found alive, found deceased or closed cases.
    pub closed_cases: i64,
    /// Open cases with no responsible.
    pub unassigned_open_cases: i64,
    /// Found-alive cases.
    pub found_alive: i64,
    /// Mean hours from opened to closed over cases with `closed_at`, rounded half-even to 6
    /// decimals from the exact millisecond sum; `None` with no such case.
    pub mean_hours_to_close: Option<f64>,
    /// Open cases of minors.
    pub open_minor_cases: i64,
    /// `case_actions` rows.
    pub actions_total: i64,
    /// Cases whose person does not exist.
    pub cases_without_person: i64,
}

/// All views at one tick, in the JSON shape of `oracle.py` (sorted keys via `BTreeMap`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Views {
    /// Persons by age band.
    pub age_group: BTreeMap<String, i64>,
    /// Open cases by priority.
    pub open_by_priority: BTreeMap<String, i64>,
    /// Cases by status.
    pub cases_by_status: BTreeMap<String, i64>,
    /// Persons by normalised gender.
    pub gender: BTreeMap<String, i64>,
    /// Persons by local hour of day.
    pub hour_of_day: BTreeMap<String, i64>,
    /// Persons by local hour start (UTC epoch seconds); non-zero keys only.
    pub hourly: BTreeMap<String, i64>,
    /// Scalar KPIs.
    pub kpi: KpiValues,
    /// Open cases per responsible, every responsible, sorted by id.
    pub responsible_load: Vec<LoadEntry>,
    /// Rows per table.
    pub row_counts: BTreeMap<String, i64>,
    /// Reports and open cases per H3 cell (key: the cell in lower-case hex), cells with a
    /// report only, at every resolution the view is kept at (a cell's index names its
    /// resolution: `lpm serve` keeps a coarser one for read-only tokens when configured). `None` when the view is off, and then absent from the JSON, so the other
    /// views' output is byte-identical with or without the feature compiled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotspots: Option<BTreeMap<String, CellFigures>>,
}

/// `sum_ms / (n * 3_600_000)` rounded half-even to 6 decimals, exactly (no float until the end).
pub fn mean_hours(sum_ms: i64, n: i64) -> Option<f64> {
    if n <= 0 {
        return None;
    }
    let num = i128::from(sum_ms) * 1_000_000;
    let den = i128::from(n) * 3_600_000;
    let (mut q, r) = (num.div_euclid(den), num.rem_euclid(den));
    if 2 * r > den || (2 * r == den && q % 2 != 0) {
        q += 1;
    }
    Some(q as f64 / 1_000_000.0)
}

impl Default for Views {
    /// Every view of an empty input.
    fn default() -> Views {
        Views::from_rows(std::iter::empty())
    }
}

impl Views {
    /// Renders a consistent set of view rows. Every fixed key is present, zero or not.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a ViewRow>) -> Views {
        let zeros = |labels: &mut dyn Iterator<Item = String>| {
            labels.map(|l| (l, 0)).collect::<BTreeMap<_, _>>()
        };
        let mut v = Views {
            age_group: zeros(&mut AgeBand::ALL.iter().map(|b| b.label().to_string())),
            gender: zeros(&mut Gender::ALL.iter().map(|g| g.label().to_string())),
            hour_of_day: zeros(&mut (0..24).map(|h: u8| h.to_string())),
            hourly: BTreeMap::new(),
            cases_by_status: zeros(&mut Status::KNOWN.iter().map(|s| s.as_str().to_string())),
            open_by_priority: zeros(&mut Priority::KNOWN.iter().map(|p| p.as_str().to_string())),
            row_counts: zeros(
                &mut Table::ALL
                    .iter()
                    .filter(|t| t.in_views())
                    .map(|t| t.name().to_string()),
            ),
            responsible_load: Vec::new(),
            hotspots: None,
            kpi: KpiValues {
                total_reports: 0,
                open_cases: 0,
                closed_cases: 0,
                unassigned_open_cases: 0,
                found_alive: 0,
                mean_hours_to_close: None,
                open_minor_cases: 0,
                actions_total: 0,
                cases_without_person: 0,
            },
        };
        let (mut close_n, mut close_sum) = (0, 0);
        for row in rows {
            match row {
                ViewRow::Count(metric, n) => {
                    let n = *n;
                    match metric {
                        Metric::AgeGroup(b) => {
                            *v.age_group.entry(b.label().into()).or_default() += n
                        }
                        Metric::Gender(g) => *v.gender.entry(g.label().into()).or_default() += n,
                        Metric::HourOfDay(h) => {
                            *v.hour_of_day.entry(h.to_string()).or_default() += n
                        }
                        Metric::Hourly(s) => *v.hourly.entry(s.to_string()).or_default() += n,
                        Metric::CasesByStatus(s) => {
                            *v.cases_by_status.entry(s.as_str().into()).or_default() += n
                        }
                        Metric::OpenByPriority(p) => {
                            *v.open_by_priority.entry(p.as_str().into()).or_default() += n
                        }
                        Metric::RowCount(t) => {
                            *v.row_counts.entry(t.name().into()).or_default() += n
                        }
                        Metric::Kpi(k) => match k {
                            Kpi::TotalReports => v.kpi.total_reports += n,
                            Kpi::OpenCases => v.kpi.open_cases += n,
                            Kpi::ClosedCases => v.kpi.closed_cases += n,
                            Kpi::UnassignedOpenCases => v.kpi.unassigned_open_cases += n,
                            Kpi::FoundAlive => v.kpi.found_alive += n,
                            Kpi::CasesWithCloseTime => close_n += n,
                            Kpi::CloseMillisSum => close_sum += n,
                            Kpi::OpenMinorCases => v.kpi.open_minor_cases += n,
                            Kpi::ActionsTotal => v.kpi.actions_total += n,
                            Kpi::CasesWithoutPerson => v.kpi.cases_without_person += n,
                        },
                        Metric::Series(_) => {}
                    }
                }
                ViewRow::Load {
                    id,
                    full_name,
                    agency,
                    open_cases,
                } => v.responsible_load.push(LoadEntry {
                    id: *id,
                    full_name: full_name.clone(),
                    agency: agency.clone(),
                    open_cases: *open_cases,
                }),
                ViewRow::Hotspot { cell, figures } => {
                    v.hotspots
                        .get_or_insert_default()
                        .insert(cell_key(*cell), *figures);
                }
            }
        }
        v.hourly.retain(|_, n| *n != 0);
        v.responsible_load.sort_by_key(|e| e.id);
        v.kpi.mean_hours_to_close = mean_hours(close_sum, close_n);
        v
    }

    /// Marks the `hotspots` view as maintained: present (maybe empty) when `on`. Rows alone
    /// cannot say so, since a maintained view with no located report has no row.
    pub fn with_hotspots(mut self, on: bool) -> Views {
        if on {
            self.hotspots.get_or_insert_default();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hour_across_new_york_fall_back() {
        let tz: Tz = "America/New_York".parse().expect("tz");
        // 2024-11-03 05:30Z = 01:30 EDT, 06:30Z = 01:30 EST: same local hour, two starts.
        let a = local_hour(1_730_611_800_000, &tz);
        let b = local_hour(1_730_615_400_000, &tz);
        assert_eq!((a.0, b.0), (1, 1));
        assert_eq!(a.1, 1_730_610_000);
        assert_eq!(b.1, 1_730_613_600);
    }

    #[test]
    fn local_hour_with_a_half_hour_offset() {
        let tz: Tz = "Asia/Kolkata".parse().expect("tz");
        // 00:10Z is 05:40 IST; the hour started at 05:00 IST = 23:30Z the day before.
        let (h, start) = local_hour(600_000, &tz);
        assert_eq!((h, start), (5, -1800));
    }

    #[test]
    fn mean_hours_rounds_half_even() {
        assert_eq!(mean_hours(0, 0), None);
        assert_eq!(mean_hours(3_600_000, 1), Some(1.0));
        // 1 ms / 1 case = 2.777...e-7 h -> 0.0
        assert_eq!(mean_hours(1, 1), Some(0.0));
        // 1.8 ms = 5e-7 h exactly: half-even rounds to 0.000000; 5.4 ms = 1.5e-6 -> 0.000002
        assert_eq!(mean_hours(9, 5), Some(0.0));
        assert_eq!(mean_hours(27, 5), Some(0.000002));
    }
}
