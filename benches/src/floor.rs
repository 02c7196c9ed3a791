//! The "HashMap floor": the same views as the engine, maintained by hand on one thread with
//! plain hash maps.
//!
//! # Why this is a floor
//! It does the least work any exact, incremental implementation of these views can do on the
//! same pre-decoded [`Change`]s:
//!
//! * **No dataflow.** There are no operators, no timestamps, no progress tracking, no
//!   arrangements (sorted, compacted traces) and no consolidation: every event updates a few
//!   counters in place.
//! * **No exchange.** Nothing is routed between workers; there is no serialisation, no channel
//!   and no shared-state synchronisation.
//! * **One thread.** There is no coordination, and no consistent-read machinery (ticks, the view
//!   store, subscriptions): the result is only read once, at the end.
//!
//! It keeps the engine's semantics where they decide the answer: per `(table, key)` upsert with
//! the engine's position rule ([`Position::freshness`]: re-deliveries and stale replays are
//! dropped, retractions come from the stored row, never from Debezium's `before` image), and
//! the engine's tombstone rule (a tombstone only deletes a row whose `d` was lost). Each view is
//! maintained incrementally: a change retracts the old row's contributions and adds the new
//! row's. The person-dependent KPIs (`cases_without_person`, `open_minor_cases`) use a per-person
//! index of case counts, so a person change costs O(1) as well.
//!
//! What it leaves out: truncates and snapshot sweeps (a re-snapshot retracting rows it did not
//! re-read). The generated workloads contain neither: a truncate makes [`Floor::apply`] fail, and
//! a missing sweep would show up in the final equality check against the engine.
//!
//! The engine's throughput divided by this floor's is the price of being a general,
//! multi-worker dataflow with consistent reads at every tick.

use std::sync::Arc;

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use lpm_engine::change::{Change, ChangeKind, Freshness, Position, RowChange};
use lpm_engine::model::{Case, Key, Person, Priority, Row, Status, Table};
use lpm_engine::views::{AgeBand, Gender, Kpi, Metric, ViewRow, Views};
use rustc_hash::FxHashMap;

/// The stored state of one key: the position of the last applied event and the row, if any.
struct Entry {
    position: Position,
    row: Option<Row>,
}

/// Cases that point at one `person_id`: all of them, and the open ones.
#[derive(Default, Clone, Copy)]
struct CasesOfPerson {
    all: i64,
    open: i64,
}

/// Single-threaded, hash-map based, incrementally maintained views.
pub struct Floor {
    tz: Tz,
    tables: [FxHashMap<Key, Entry>; Table::COUNT],
    age_group: [i64; 7],
    gender: [i64; 4],
    hour_of_day: [i64; 24],
    hourly: FxHashMap<i64, i64>,
    cases_by_status: FxHashMap<Status, i64>,
    open_by_priority: FxHashMap<Priority, i64>,
    row_counts: [i64; Table::COUNT],
    total_reports: i64,
    open_cases: i64,
    closed_cases: i64,
    unassigned_open_cases: i64,
    found_alive: i64,
    cases_with_close_time: i64,
    close_millis_sum: i64,
    open_minor_cases: i64,
    actions_total: i64,
    cases_without_person: i64,
    /// Open cases per `responsible_id`.
    open_by_responsible: FxHashMap<Key, i64>,
    /// Cases per `person_id` (for the person-dependent KPIs).
    cases_by_person: FxHashMap<Key, CasesOfPerson>,
    /// Events applied (the rest were duplicates, stale, or no-ops).
    pub applied: u64,
}

/// A change the floor does not model.
#[derive(Debug)]
pub struct Unsupported(pub &'static str);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the HashMap floor does not model {}", self.0)
    }
}

fn age_index(band: AgeBand) -> usize {
    AgeBand::ALL.iter().position(|b| *b == band).unwrap_or(6)
}

fn gender_index(g: Gender) -> usize {
    Gender::ALL.iter().position(|x| *x == g).unwrap_or(3)
}

fn minor(age: Option<i64>) -> bool {
    matches!(age, Some(0..=17))
}

impl Floor {
    /// Empty views for hour buckets in `tz`.
    pub fn new(tz: Tz) -> Floor {
        Floor {
            tz,
            tables: Default::default(),
            age_group: [0; 7],
            gender: [0; 4],
            hour_of_day: [0; 24],
            hourly: FxHashMap::default(),
            cases_by_status: FxHashMap::default(),
            open_by_priority: FxHashMap::default(),
            row_counts: [0; Table::COUNT],
            total_reports: 0,
            open_cases: 0,
            closed_cases: 0,
            unassigned_open_cases: 0,
            found_alive: 0,
            cases_with_close_time: 0,
            close_millis_sum: 0,
            open_minor_cases: 0,
            actions_total: 0,
            cases_without_person: 0,
            open_by_responsible: FxHashMap::default(),
            cases_by_person: FxHashMap::default(),
            applied: 0,
        }
    }

    /// Applies one change, in ingestion order.
    pub fn apply(&mut self, change: Change) -> Result<(), Unsupported> {
        match change {
            Change::Row(row) => {
                self.apply_row(row);
                Ok(())
            }
            Change::Truncate { .. } => Err(Unsupported("truncates")),
        }
    }

    fn apply_row(&mut self, change: RowChange) {
        let RowChange {
            table,
            key,
            kind,
            position,
            ..
        } = change;
        let entries = &mut self.tables[table.index()];
        let (old, new) = match entries.get_mut(&key) {
            None => match kind {
                ChangeKind::Upsert(row) => {
                    entries.insert(
                        key,
                        Entry {
                            position,
                            row: Some(row.clone()),
                        },
                    );
                    (None, Some(row))
                }
                ChangeKind::Delete => {
                    entries.insert(
                        key,
                        Entry {
                            position,
                            row: None,
                        },
                    );
                    return;
                }
                ChangeKind::Tombstone => return,
            },
            Some(entry) => match kind {
                // A tombstone only deletes a row whose `d` was compacted away.
                ChangeKind::Tombstone => match entry.row.take() {
                    Some(old) => {
                        entry.position.seq = entry.position.seq.max(position.seq);
                        (Some(old), None)
                    }
                    None => return,
                },
                kind => {
                    if position.freshness(&entry.position) != Freshness::Newer {
                        return;
                    }
                    let new = match kind {
                        ChangeKind::Upsert(row) => Some(row),
                        _ => None,
                    };
                    let old = std::mem::replace(
                        entry,
                        Entry {
                            position,
                            row: new.clone(),
                        },
                    )
                    .row;
                    (old, new)
                }
            },
        };
        self.applied += 1;
        if let Some(old) = &old {
            self.contribute(old, -1);
        }
        if let Some(new) = &new {
            self.contribute(new, 1);
        }
    }

    /// Adds (`s = 1`) or retracts (`s = -1`) one row's contributions to every view.
    fn contribute(&mut self, row: &Row, s: i64) {
        self.row_counts[row.table().index()] += s;
        match row {
            Row::Person(p) => self.person(p, s),
            Row::Case(c) => self.case(c, s),
            Row::Action(_) => self.actions_total += s,
            Row::Assignment(_) | Row::Responsible(_) | Row::Sighting(_) => {}
        }
    }

    fn person(&mut self, p: &Arc<Person>, s: i64) {
        self.total_reports += s;
        self.age_group[age_index(AgeBand::of(p.age))] += s;
        self.gender[gender_index(Gender::normalise(&p.gender))] += s;
        let sec = p.reported_at.div_euclid(1000);
        let (hour, start) = match self.tz.timestamp_opt(sec, 0).single() {
            Some(local) => (
                local.hour() as usize,
                sec - i64::from(local.minute() * 60 + local.second()),
            ),
            None => (0, sec - sec.rem_euclid(3600)),
        };
        self.hour_of_day[hour] += s;
        *self.hourly.entry(start).or_default() += s;
        // The cases pointing at this person gain (or lose) their person.
        let cases = self.cases_by_person.get(&p.id).copied().unwrap_or_default();
        self.cases_without_person -= s * cases.all;
        if minor(p.age) {
            self.open_minor_cases += s * cases.open;
        }
    }

    fn case(&mut self, c: &Arc<Case>, s: i64) {
        let open = c.status.is_open();
        *self.cases_by_status.entry(c.status.clone()).or_default() += s;
        if open {
            self.open_cases += s;
            *self.open_by_priority.entry(c.priority.clone()).or_default() += s;
            match c.responsible_id {
                Some(r) => *self.open_by_responsible.entry(r).or_default() += s,
                None => self.unassigned_open_cases += s,
            }
        }
        if c.status.is_closed() {
            self.closed_cases += s;
        }
        if c.status == Status::FoundAlive {
            self.found_alive += s;
        }
        if let Some(closed) = c.closed_at {
            self.cases_with_close_time += s;
            self.close_millis_sum += s * (closed - c.opened_at);
        }
        let index = self.cases_by_person.entry(c.person_id).or_default();
        index.all += s;
        if open {
            index.open += s;
        }
        let person = self.tables[Table::PersonsLost.index()]
            .get(&c.person_id)
            .and_then(|e| e.row.as_ref());
        match person {
            Some(Row::Person(p)) => {
                if open && minor(p.age) {
                    self.open_minor_cases += s;
                }
            }
            _ => self.cases_without_person += s,
        }
    }

    /// The views, rendered exactly as the engine renders its view rows.
    pub fn views(&self) -> Views {
        let mut rows: Vec<ViewRow> = Vec::new();
        let mut count = |m: Metric, n: i64| {
            if n != 0 {
                rows.push(ViewRow::Count(m, n));
            }
        };
        for (band, n) in AgeBand::ALL.iter().zip(self.age_group) {
            count(Metric::AgeGroup(*band), n);
        }
        for (g, n) in Gender::ALL.iter().zip(self.gender) {
            count(Metric::Gender(*g), n);
        }
        for (h, n) in self.hour_of_day.iter().enumerate() {
            count(Metric::HourOfDay(h as u8), *n);
        }
        for (start, n) in &self.hourly {
            count(Metric::Hourly(*start), *n);
        }
        for (status, n) in &self.cases_by_status {
            count(Metric::CasesByStatus(status.clone()), *n);
        }
        for (p, n) in &self.open_by_priority {
            count(Metric::OpenByPriority(p.clone()), *n);
        }
        for (t, n) in Table::ALL.iter().zip(self.row_counts) {
            if !t.in_views() {
                continue;
            }
            count(Metric::RowCount(*t), n);
        }
        for (k, n) in [
            (Kpi::TotalReports, self.total_reports),
            (Kpi::OpenCases, self.open_cases),
            (Kpi::ClosedCases, self.closed_cases),
            (Kpi::UnassignedOpenCases, self.unassigned_open_cases),
            (Kpi::FoundAlive, self.found_alive),
            (Kpi::CasesWithCloseTime, self.cases_with_close_time),
            (Kpi::CloseMillisSum, self.close_millis_sum),
            (Kpi::OpenMinorCases, self.open_minor_cases),
            (Kpi::ActionsTotal, self.actions_total),
            (Kpi::CasesWithoutPerson, self.cases_without_person),
        ] {
            count(Metric::Kpi(k), n);
        }
        for e in self.tables[Table::ResponsibleContacts.index()].values() {
            if let Some(Row::Responsible(r)) = &e.row {
                rows.push(ViewRow::Load {
                    id: r.id,
                    full_name: r.full_name.clone(),
                    agency: r.agency.clone(),
                    open_cases: self.open_by_responsible.get(&r.id).copied().unwrap_or(0),
                });
            }
        }
        Views::from_rows(&rows)
    }
}

/// Runs the floor over pre-decoded batches (in tick order, ingestion order inside each).
pub fn run(batches: Vec<(u64, Vec<Change>)>, tz: Tz) -> Result<(Views, u64), Unsupported> {
    let mut floor = Floor::new(tz);
    for (_tick, changes) in batches {
        for change in changes {
            floor.apply(change)?;
        }
    }
    Ok((floor.views(), floor.applied))
}
