//! One function per view, each reading like a query over the current rows.
//!
//! Count-shaped views return a collection of [`Metric`] keys, one per contributing row (a diff
//! of +1 adds the row, -1 removes it); [`counts`] turns all of them into `(metric, count)` with
//! a single arrangement. Sums (the time-to-close numerator) use weighted diffs (`explode`).

use std::sync::Arc;

use chrono_tz::Tz;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::CountTotal;
use differential_dataflow::trace::implementations::ValSpine;
use h3o::Resolution;
use serde::{Deserialize, Serialize};

use crate::dims::{is_minor, AgeBand, Gender};
use crate::hotspots::{cell_of, CellFigures};
use crate::model::{Action, Assignment, Case, Key, Person, Responsible, Table};
use crate::series::{bucket_of, SeriesKey, SeriesKind};
use crate::tick::{Coll, Tick};
use crate::views::{local_hour, Kpi, Metric, ViewRow};

/// Persons arranged by id, shared by the person joins.
pub type PersonsById<'s> = Arranged<'s, TraceAgent<ValSpine<Key, Arc<Person>, Tick, isize>>>;

/// `age_group`: one `AgeGroup(band)` per person.
pub fn age_group<'s>(persons: Coll<'s, Arc<Person>>) -> Coll<'s, Metric> {
    persons.map(|p| Metric::AgeGroup(AgeBand::of(p.age)))
}

/// `gender`: one `Gender(normalised)` per person.
pub fn gender<'s>(persons: Coll<'s, Arc<Person>>) -> Coll<'s, Metric> {
    persons.map(|p| Metric::Gender(Gender::normalise(&p.gender)))
}

/// `hour_of_day` and `hourly`: the local hour of `reported_at` in `tz`, and that hour's start.
pub fn hours<'s>(persons: Coll<'s, Arc<Person>>, tz: Tz) -> Coll<'s, Metric> {
    persons.flat_map(move |p| {
        let (hour, start) = local_hour(p.reported_at, &tz);
        [Metric::HourOfDay(hour), Metric::Hourly(start)]
    })
}

/// `kpi.total_reports` and `row_counts.persons_lost`.
pub fn person_totals<'s>(persons: Coll<'s, Arc<Person>>) -> Coll<'s, Metric> {
    persons.flat_map(|_| {
        [
            Metric::Kpi(Kpi::TotalReports),
            Metric::RowCount(Table::PersonsLost),
        ]
    })
}

/// Everything that depends on one case alone: `cases_by_status`, `open_by_priority`, and the
/// open / closed / unassigned / found-alive / time-to-close KPIs. The time-to-close sum is a
/// weighted diff, so it stays exact under retractions.
pub fn case_metrics<'s>(cases: Coll<'s, Arc<Case>>) -> Coll<'s, Metric> {
    cases.explode(|c| {
        let open = c.status.is_open();
        let close = c.closed_at.map(|closed| (closed - c.opened_at) as isize);
        [
            Some((Metric::CasesByStatus(c.status.clone()), 1)),
            Some((Metric::RowCount(Table::CaseCases), 1)),
            open.then(|| (Metric::OpenByPriority(c.priority.clone()), 1)),
            open.then_some((Metric::Kpi(Kpi::OpenCases), 1)),
            (open && c.responsible_id.is_none())
                .then_some((Metric::Kpi(Kpi::UnassignedOpenCases), 1)),
            c.status
                .is_closed()
                .then_some((Metric::Kpi(Kpi::ClosedCases), 1)),
            (c.status == crate::model::Status::FoundAlive)
                .then_some((Metric::Kpi(Kpi::FoundAlive), 1)),
            close.map(|_| (Metric::Kpi(Kpi::CasesWithCloseTime), 1)),
            close.map(|ms| (Metric::Kpi(Kpi::CloseMillisSum), ms)),
        ]
        .into_iter()
        .flatten()
    })
}

/// Time-series facts for the Grafana API: one `Reported` fact per person (with the dimensions
/// of its case when it has one; the schema gives every report exactly one case) and one
/// `Opened` / `Closed` fact per case, each in its 15-minute UTC bucket.
pub fn series<'s>(
    persons: Coll<'s, Arc<Person>>,
    with_person: Coll<'s, (Arc<Case>, Arc<Person>)>,
    cases: Coll<'s, Arc<Case>>,
) -> Coll<'s, Metric> {
    // persons that have a case are counted from the join, the rest on their own
    let joined_persons = with_person.clone().map(|(_, p)| p);
    let alone = persons.concat(joined_persons.clone().negate()).map(|p| {
        Metric::Series(series_fact(
            SeriesKind::Reported,
            p.reported_at,
            Some(&p),
            None,
        ))
    });
    let reported = with_person.clone().map(|(c, p)| {
        Metric::Series(series_fact(
            SeriesKind::Reported,
            p.reported_at,
            Some(&p),
            Some(&c),
        ))
    });
    // cases count once each: with their person's dimensions when it exists
    let without_person = cases.concat(with_person.clone().map(|(c, _)| c).negate());
    let case_facts = with_person
        .map(|(c, p)| (c, Some(p)))
        .concat(without_person.map(|c| (c, None)))
        .flat_map(|(c, p)| case_facts(&c, p.as_deref()));
    alone.concat(reported).concat(case_facts)
}

/// The `Opened` fact of a case and, once closed, its `Closed` fact.
fn case_facts(c: &Case, p: Option<&Person>) -> impl Iterator<Item = Metric> {
    let opened = series_fact(SeriesKind::Opened, c.opened_at, p, Some(c));
    let closed = c
        .closed_at
        .map(|at| series_fact(SeriesKind::Closed, at, p, Some(c)));
    std::iter::once(opened).chain(closed).map(Metric::Series)
}

fn series_fact(kind: SeriesKind, at: i64, p: Option<&Person>, c: Option<&Case>) -> SeriesKey {
    SeriesKey {
        kind,
        bucket: bucket_of(at),
        gender: p.map_or(Gender::Unknown, |p| Gender::normalise(&p.gender)),
        age_band: AgeBand::of(p.and_then(|p| p.age)),
        status: c.map(|c| c.status.clone()),
        priority: c.map(|c| c.priority.clone()),
    }
}

/// Cases joined to their person (cases whose person is missing are absent).
pub fn cases_with_person<'s>(
    cases: Coll<'s, Arc<Case>>,
    persons: PersonsById<'s>,
) -> Coll<'s, (Arc<Case>, Arc<Person>)> {
    cases
        .map(|c| (c.person_id, c))
        .arrange_by_key_named("cases_by_person")
        .join_core(persons, |_pid, c, p| Some((c.clone(), p.clone())))
}

/// `kpi.open_minor_cases` and `kpi.cases_without_person`: every case counts as "without
/// person" unless the join found its person.
pub fn person_kpis<'s>(
    cases: Coll<'s, Arc<Case>>,
    with_person: Coll<'s, (Arc<Case>, Arc<Person>)>,
) -> Coll<'s, Metric> {
    let matched = with_person
        .clone()
        .map(|_| Metric::Kpi(Kpi::CasesWithoutPerson))
        .negate();
    let all = cases.map(|_| Metric::Kpi(Kpi::CasesWithoutPerson));
    let minors = with_person
        .filter(|(c, p)| c.status.is_open() && is_minor(p.age))
        .map(|_| Metric::Kpi(Kpi::OpenMinorCases));
    all.concat(matched).concat(minors)
}

/// `kpi.actions_total` and `row_counts.case_actions`.
pub fn action_totals<'s>(actions: Coll<'s, Arc<Action>>) -> Coll<'s, Metric> {
    actions.flat_map(|_| {
        [
            Metric::Kpi(Kpi::ActionsTotal),
            Metric::RowCount(Table::CaseActions),
        ]
    })
}

/// `row_counts` of the two remaining tables.
pub fn other_row_counts<'s>(
    history: Coll<'s, Arc<Assignment>>,
    responsibles: Coll<'s, Arc<Responsible>>,
) -> Coll<'s, Metric> {
    history
        .map(|_| Metric::RowCount(Table::CaseResponsibleHistory))
        .concat(responsibles.map(|_| Metric::RowCount(Table::ResponsibleContacts)))
}

/// Counts every metric: `(metric, count)` as a [`ViewRow`], one arrangement for all.
pub fn counts<'s>(metrics: Coll<'s, Metric>) -> Coll<'s, ViewRow> {
    metrics
        .count_total()
        .map(|(m, n)| ViewRow::Count(m, n as i64))
}

/// `responsible_load`: every responsible with the number of open cases assigned to it, zero
/// included. A reduce per responsible id over its contact row and its open cases.
pub fn responsible_load<'s>(
    responsibles: Coll<'s, Arc<Responsible>>,
    cases: Coll<'s, Arc<Case>>,
) -> Coll<'s, ViewRow> {
    let contacts = responsibles.map(|r| (r.id, Some((r.full_name.clone(), r.agency.clone()))));
    let assigned = cases.flat_map(|c| {
        c.status
            .is_open()
            .then_some(c.responsible_id)
            .flatten()
            .map(|rid| (rid, None))
    });
    contacts
        .concat(assigned)
        .reduce_named("view.responsible_load", |_id, input, out| {
            let mut open = 0;
            let mut who = None;
            for (v, n) in input {
                match v {
                    None => open += *n,
                    Some(named) => who = Some(named),
                }
            }
            if let Some((name, agency)) = who {
                out.push(((name.clone(), agency.clone(), open as i64), 1isize));
            }
        })
        .map(|(id, (full_name, agency, open_cases))| ViewRow::Load {
            id,
            full_name,
            agency,
            open_cases,
        })
}

/// What one row adds to a `hotspots` cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum CellPart {
    /// A located report.
    Report,
    /// An open case of a located person.
    Open,
    /// An open case of a located minor.
    OpenMinor,
}

/// `hotspots`: per H3 cell at `res`, the located reports, the open cases of located persons and
/// those of minors; cells without a report are absent. Cases reach their person's cell through
/// the shared case-person join, so a moved person, a status change or a delete retracts exactly
/// the old contributions. One reduce per cell turns the parts into one row.
pub fn hotspots<'s>(
    persons: Coll<'s, Arc<Person>>,
    with_person: Coll<'s, (Arc<Case>, Arc<Person>)>,
    res: Resolution,
) -> Coll<'s, ViewRow> {
    let reports =
        persons.flat_map(move |p| cell_of(&p, res).map(|c| (u64::from(c), CellPart::Report)));
    let cases = with_person.flat_map(move |(c, p)| {
        let cell = c
            .status
            .is_open()
            .then(|| cell_of(&p, res))
            .flatten()
            .map(u64::from);
        let minor = is_minor(p.age);
        cell.into_iter().flat_map(move |cell| {
            [
                Some((cell, CellPart::Open)),
                minor.then_some((cell, CellPart::OpenMinor)),
            ]
            .into_iter()
            .flatten()
        })
    });
    reports
        .concat(cases)
        .reduce_named("view.hotspots", |_cell, input, out| {
            let mut f = CellFigures::default();
            for (part, n) in input {
                let n = *n as i64;
                match part {
                    CellPart::Report => f.reports += n,
                    CellPart::Open => f.open_cases += n,
                    CellPart::OpenMinor => f.open_minor_cases += n,
                }
            }
            if f.reports > 0 {
                out.push((f, 1isize));
            }
        })
        .map(|(cell, figures)| ViewRow::Hotspot { cell, figures })
}
