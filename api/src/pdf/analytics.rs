//! The analytics reports' data, each from one engine read at one tick.
//!
//! Which rows a period selects (docs/reports.md):
//! - `demographic` and `hourly` count reports: the distinct persons of the cases read whose
//!   `reported_at` falls in the period (local days of the chosen zone, both ends included).
//!   With the whole history selected they equal the `age_group`, `gender` and `hour_of_day`
//!   views whenever every person has a case, as every report filed through lpm does.
//! - `operational` and `sensitive` list open cases (`open`, `in_progress`) whose `opened_at`
//!   falls in the period, as they are at the read's tick.
//! - `hotspots` lists the cells of the `hotspots` view the caller may see (the same cells as
//!   `GET /api/v1/views/hotspots`), the [`TOP_CELLS`] with the most reports; the view counts
//!   every report, so the period does not apply.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Timelike};
use chrono_tz::Tz;
use lpm_engine::model::{Person, Priority};
use lpm_engine::read::CaseDetail;
use lpm_engine::views::{AgeBand, Gender};
use lpm_engine::CaseRecord;
use lpm_reports::{
    CaseLine, CellLine, DateRange, DemographicReport, HotspotsReport, HourlyReport,
    OperationalReport, SensitiveCounts, SensitiveReport, Stamp, TOP_CELLS,
};

use super::params::MAX_DAYS;
use crate::error::{ApiError, ApiResult};

/// What a case without an action for this long counts as (the operational report).
pub const STALE_MS: i64 = 24 * 3_600_000;

/// The five analytics reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Operational alerts.
    Operational,
    /// Age group × gender.
    Demographic,
    /// Hour of day and per day.
    Hourly,
    /// Open cases of minors.
    Sensitive,
    /// The cells with the most reports.
    Hotspots,
}

impl Kind {
    /// Parses the last path segment: `operational.pdf`, …
    pub fn from_file(file: &str) -> Option<Kind> {
        match file.strip_suffix(".pdf")? {
            "operational" => Some(Kind::Operational),
            "demographic" => Some(Kind::Demographic),
            "hourly" => Some(Kind::Hourly),
            "sensitive" => Some(Kind::Sensitive),
            "hotspots" => Some(Kind::Hotspots),
            _ => None,
        }
    }

    /// The download's file name in `lang`.
    pub fn file_name(self, lang: lpm_reports::Lang) -> &'static str {
        use lpm_reports::Lang::{En, Es};
        match (self, lang) {
            (Kind::Operational, Es) => "informe-operativo.pdf",
            (Kind::Operational, En) => "operational-report.pdf",
            (Kind::Demographic, Es) => "informe-demografico.pdf",
            (Kind::Demographic, En) => "demographic-report.pdf",
            (Kind::Hourly, Es) => "informe-horario.pdf",
            (Kind::Hourly, En) => "hourly-report.pdf",
            (Kind::Sensitive, Es) => "informe-menores.pdf",
            (Kind::Sensitive, En) => "minors-report.pdf",
            (Kind::Hotspots, Es) => "informe-celdas.pdf",
            (Kind::Hotspots, En) => "top-cells-report.pdf",
        }
    }
}

/// The distinct persons of `records` (a person with several cases counts once).
fn persons(records: &[CaseRecord]) -> Vec<&Person> {
    let mut seen = BTreeSet::new();
    records
        .iter()
        .filter_map(|r| r.person.as_deref())
        .filter(|p| seen.insert(p.id))
        .collect()
}

/// Age band × gender over the persons of `records` (already selected by `reported_at`).
pub fn demographic(records: &[CaseRecord], stamp: Stamp, range: DateRange) -> DemographicReport {
    let mut counts = vec![vec![0u64; Gender::ALL.len()]; AgeBand::ALL.len()];
    for p in persons(records) {
        let b = AgeBand::ALL
            .iter()
            .position(|b| *b == AgeBand::of(p.age))
            .unwrap_or(AgeBand::ALL.len() - 1);
        let g = Gender::ALL
            .iter()
            .position(|g| *g == Gender::normalise(&p.gender))
            .unwrap_or(Gender::ALL.len() - 1);
        counts[b][g] += 1;
    }
    DemographicReport {
        stamp,
        range,
        bands: AgeBand::ALL.iter().map(|b| b.label().to_string()).collect(),
        genders: Gender::ALL.iter().map(|g| g.label().to_string()).collect(),
        counts,
    }
}

/// Reports by local hour and by local day over the persons of `records`. The days run over
/// the whole period, or from the first to the last report when an end is open.
pub fn hourly(records: &[CaseRecord], stamp: Stamp, range: DateRange) -> ApiResult<HourlyReport> {
    let tz = stamp.tz;
    let mut by_hour = [0u64; 24];
    let mut by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for p in persons(records) {
        if let Some(t) = DateTime::from_timestamp_millis(p.reported_at) {
            let local = t.with_timezone(&tz);
            by_hour[local.hour() as usize % 24] += 1;
            *by_day.entry(local.date_naive()).or_default() += 1;
        }
    }
    let first = range.from.or_else(|| by_day.keys().next().copied());
    let last = range.to.or_else(|| by_day.keys().next_back().copied());
    let mut days = Vec::new();
    if let (Some(first), Some(last)) = (first, last) {
        if (last - first).num_days() >= MAX_DAYS {
            return Err(ApiError::bad(
                "from",
                format!("the daily series covers at most {MAX_DAYS} days: narrow the period"),
            ));
        }
        let mut d = first;
        while d <= last {
            days.push((d, by_day.get(&d).copied().unwrap_or(0)));
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
    }
    Ok(HourlyReport {
        stamp,
        range,
        by_hour,
        by_day: days,
    })
}

fn line(r: &CaseRecord, personal: bool, last_action_at: Option<i64>) -> CaseLine {
    let c = &r.case;
    CaseLine {
        id: c.id,
        priority: c.priority.as_str().to_string(),
        status: c.status.as_str().to_string(),
        opened_at: c.opened_at,
        responsible: r.responsible.as_ref().map(|x| x.full_name.clone()),
        person: r
            .person
            .as_ref()
            .filter(|_| personal)
            .map(|p| p.full_name.clone()),
        age: r.person.as_ref().and_then(|p| p.age),
        gender: r
            .person
            .as_ref()
            .map_or(Gender::Unknown, |p| Gender::normalise(&p.gender))
            .label()
            .to_string(),
        last_action_at,
    }
}

fn by_opened(mut v: Vec<CaseLine>) -> Vec<CaseLine> {
    v.sort_by_key(|c| (c.opened_at, c.id));
    v
}

/// Operational alerts over open cases (already selected by status and `opened_at`), at
/// `now` (the generation time, for "no action in the last 24 h").
pub fn operational(
    details: &[CaseDetail],
    stamp: Stamp,
    range: DateRange,
    personal: bool,
    now: i64,
) -> OperationalReport {
    let lines: Vec<(CaseLine, &CaseDetail)> = details
        .iter()
        .filter(|d| d.record.case.status.is_open())
        .map(|d| {
            let last = d.actions.iter().map(|a| a.created_at).max();
            (line(&d.record, personal, last), d)
        })
        .collect();
    let pick = |f: &dyn Fn(&CaseDetail, &CaseLine) -> bool| {
        by_opened(
            lines
                .iter()
                .filter(|(l, d)| f(d, l))
                .map(|(l, _)| l.clone())
                .collect(),
        )
    };
    OperationalReport {
        high: pick(&|d, _| d.record.case.priority.is_urgent()),
        unassigned: pick(&|d, _| d.record.case.responsible_id.is_none()),
        stale: pick(&|_, l| l.last_action_at.is_none_or(|t| t < now - STALE_MS)),
        stamp,
        range,
        personal,
    }
}

/// Open cases of minors (already selected by status, age and `opened_at`); names only when
/// `personal`.
pub fn sensitive(
    records: &[CaseRecord],
    stamp: Stamp,
    range: DateRange,
    personal: bool,
) -> SensitiveReport {
    let minors: Vec<&CaseRecord> = records
        .iter()
        .filter(|r| r.case.status.is_open() && r.is_minor())
        .collect();
    let by_band = [AgeBand::Child, AgeBand::Teen]
        .iter()
        .map(|b| {
            let n = minors
                .iter()
                .filter(|r| AgeBand::of(r.person.as_ref().and_then(|p| p.age)) == *b)
                .count() as u64;
            (b.label().to_string(), n)
        })
        .collect();
    let mut by_priority: Vec<(String, u64)> = Priority::KNOWN
        .iter()
        .map(|p| (p.as_str().to_string(), 0))
        .collect();
    for r in &minors {
        let code = r.case.priority.as_str();
        match by_priority.iter_mut().find(|(p, _)| p == code) {
            Some((_, n)) => *n += 1,
            None => by_priority.push((code.to_string(), 1)),
        }
    }
    SensitiveReport {
        counts: SensitiveCounts {
            total: minors.len() as u64,
            by_band,
            by_priority,
        },
        cases: personal.then(|| by_opened(minors.iter().map(|r| line(r, true, None)).collect())),
        stamp,
        range,
    }
}

/// The top-cells report over the cells the caller may see (`cells`, any order): the
/// [`TOP_CELLS`] with the most reports, ties by cell key so the table is the same on every read.
pub fn hotspots(
    mut cells: Vec<CellLine>,
    stamp: Stamp,
    resolution: u8,
    min_reports: i64,
) -> HotspotsReport {
    let cells_shown = cells.len();
    cells.sort_by(|a, b| b.reports.cmp(&a.reports).then_with(|| a.cell.cmp(&b.cell)));
    cells.truncate(TOP_CELLS);
    HotspotsReport {
        stamp,
        resolution,
        min_reports,
        cells_shown,
        top: cells,
    }
}

/// Whether a record's case was opened in the period.
pub fn opened_in(r: &CaseRecord, range: &DateRange, tz: &Tz) -> bool {
    range.contains(r.case.opened_at, tz)
}

/// Whether a record's person was reported in the period.
pub fn reported_in(r: &CaseRecord, range: &DateRange, tz: &Tz) -> bool {
    r.person
        .as_ref()
        .is_some_and(|p| range.contains(p.reported_at, tz))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lpm_engine::model::{Action, Case, Status};

    use super::*;

    const H: i64 = 3_600_000;

    fn rec(
        id: i64,
        age: Option<i64>,
        gender: &str,
        at: i64,
        status: Status,
        prio: Priority,
    ) -> CaseRecord {
        CaseRecord {
            case: Arc::new(Case {
                id,
                person_id: id,
                status,
                priority: prio,
                responsible_id: (id % 2 == 0).then_some(1),
                opened_at: at,
                closed_at: None,
                version: 1,
                public: false,
                public_id: None,
            }),
            person: Some(Arc::new(Person {
                id,
                full_name: format!("Persona {id}"),
                age,
                gender: gender.into(),
                last_seen_at: at,
                reported_at: at,
                last_seen_place: "Quito".into(),
                version: 1,
                ..Default::default()
            })),
            responsible: None,
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            generated_at_ms: 100 * H,
            tz: chrono_tz::UTC,
            tick: 1,
            lang: lpm_reports::Lang::Es,
        }
    }

    #[test]
    fn demographic_and_hourly_count_each_person_once() {
        let a = rec(1, Some(5), "Female ", 3 * H, Status::Open, Priority::High);
        let b = rec(2, None, "x", 27 * H, Status::Closed, Priority::Low);
        // the same person in a second case
        let mut a2 = a.clone();
        a2.case = Arc::new(Case {
            id: 9,
            ..(*a.case).clone()
        });
        let recs = vec![a, b, a2];
        let d = demographic(&recs, stamp(), DateRange::default());
        assert_eq!(d.counts[0][0], 1, "0-11 female");
        assert_eq!(d.counts[6][3], 1, "unknown age, unknown gender");
        assert_eq!(d.counts.iter().flatten().sum::<u64>(), 2);
        let h = hourly(&recs, stamp(), DateRange::default()).expect("hourly");
        assert_eq!((h.by_hour[3], h.by_hour[3 + 24 - 24]), (2, 2));
        assert_eq!(h.by_day.len(), 2, "two consecutive days");
        assert_eq!(h.by_day.iter().map(|d| d.1).sum::<u64>(), 2);
    }

    #[test]
    fn operational_sorts_cases_into_alerts() {
        let mut fresh = rec(
            2,
            Some(30),
            "male",
            90 * H,
            Status::Open,
            Priority::Critical,
        );
        fresh.case = Arc::new(Case {
            responsible_id: Some(1),
            ..(*fresh.case).clone()
        });
        let old = rec(
            3,
            Some(30),
            "male",
            10 * H,
            Status::InProgress,
            Priority::Low,
        );
        let closed = rec(5, Some(30), "male", 10 * H, Status::Closed, Priority::High);
        let detail = |r: CaseRecord, action_at: Option<i64>| CaseDetail {
            tick: 1,
            actions: action_at
                .map(|t| {
                    Arc::new(Action {
                        id: 1,
                        case_id: r.case.id,
                        action_type: "note".into(),
                        notes: None,
                        responsible_id: None,
                        responsible_name: None,
                        created_at: t,
                    })
                })
                .into_iter()
                .collect(),
            history: Vec::new(),
            sightings: Vec::new(),
            record: r,
        };
        let ds = vec![
            detail(fresh, Some(99 * H)),
            detail(old, Some(50 * H)),
            detail(closed, None),
        ];
        let r = operational(&ds, stamp(), DateRange::default(), false, 100 * H);
        assert_eq!(r.high.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            r.unassigned.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(r.stale.iter().map(|c| c.id).collect::<Vec<_>>(), vec![3]);
        assert!(
            r.high.iter().all(|c| c.person.is_none()),
            "no names for readers"
        );
    }

    #[test]
    fn sensitive_counts_open_minors_and_hides_names_without_access() {
        let recs = vec![
            rec(1, Some(5), "female", H, Status::Open, Priority::High),
            rec(2, Some(17), "male", H, Status::InProgress, Priority::Low),
            rec(3, Some(18), "male", H, Status::Open, Priority::Low),
            rec(4, Some(-1), "male", H, Status::Open, Priority::Low),
            rec(5, Some(9), "male", H, Status::Closed, Priority::Low),
        ];
        let r = sensitive(&recs, stamp(), DateRange::default(), false);
        assert_eq!(r.counts.total, 2);
        assert_eq!(
            r.counts.by_band,
            vec![("0-11".into(), 1), ("12-17".into(), 1)]
        );
        assert!(r.cases.is_none());
        let r = sensitive(&recs, stamp(), DateRange::default(), true);
        let names: Vec<_> = r
            .cases
            .iter()
            .flatten()
            .filter_map(|c| c.person.clone())
            .collect();
        assert_eq!(
            names,
            vec!["Persona 1".to_string(), "Persona 2".to_string()]
        );
    }

    #[test]
    fn kinds_parse_only_known_pdf_names() {
        assert_eq!(Kind::from_file("hourly.pdf"), Some(Kind::Hourly));
        assert_eq!(Kind::from_file("hourly"), None);
        assert_eq!(Kind::from_file("weekly.pdf"), None);
        assert_eq!(Kind::from_file("hotspots.pdf"), Some(Kind::Hotspots));
    }

    #[test]
    fn hotspots_lists_the_ten_cells_with_most_reports_ties_by_cell() {
        let cells: Vec<CellLine> = (0..13)
            .map(|i| CellLine {
                cell: format!("87{i:02}"),
                reports: [3, 9, 1, 9, 4, 4, 7, 2, 8, 6, 5, 4, 10][i as usize],
                ..CellLine::default()
            })
            .collect();
        let r = hotspots(cells, stamp(), 7, 0);
        assert_eq!(r.cells_shown, 13);
        let got: Vec<(String, i64)> = r.top.iter().map(|c| (c.cell.clone(), c.reports)).collect();
        let want: Vec<(String, i64)> = [
            ("8712", 10),
            ("8701", 9),
            ("8703", 9),
            ("8708", 8),
            ("8706", 7),
            ("8709", 6),
            ("8710", 5),
            ("8704", 4),
            ("8705", 4),
            ("8711", 4),
        ]
        .iter()
        .map(|(c, n)| (c.to_string(), *n))
        .collect();
        assert_eq!(got, want);
    }
}
