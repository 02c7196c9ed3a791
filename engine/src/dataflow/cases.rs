//! The case read model: each case with its person and current responsible, plus its actions,
//! responsible history and sightings, all arranged by case id so one worker answers for a whole
//! case.

use std::sync::Arc;

use differential_dataflow::hashable::Hashable;
use differential_dataflow::operators::arrange::arrangement::arrange_core;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::{ValBatcher, ValSpine};
use differential_dataflow::ExchangeData;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;

use crate::dims::is_minor;
use crate::model::{
    Action, Assignment, Case, Key, Person, Priority, Responsible, Sighting, Status,
};
use crate::tick::{Coll, Tick};

/// A case joined with its person and its current responsible (either may be missing).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case row.
    pub case: Arc<Case>,
    /// The person with `id = case.person_id`, if it exists.
    pub person: Option<Arc<Person>>,
    /// The responsible with `id = case.responsible_id`, if assigned and it exists.
    pub responsible: Option<Arc<Responsible>>,
}

impl CaseRecord {
    /// The person's age, if the person exists and has one.
    pub fn age(&self) -> Option<i64> {
        self.person.as_ref().and_then(|p| p.age)
    }

    /// Whether the case's person exists and is a minor (`0 <= age < 18`).
    pub fn is_minor(&self) -> bool {
        is_minor(self.age())
    }

    /// Whether the case needs care: see [`is_sensitive`].
    pub fn is_sensitive(&self) -> bool {
        is_sensitive(&self.case.status, &self.case.priority, self.age())
    }
}

/// The sensitive-case rule (the Grafana `sensitive_open_cases` table and the case lists): the
/// case is open or in progress, and its person is a minor or its priority is high or critical.
/// Kept apart from [`CaseRecord`] for rows that carry only these three fields.
pub fn is_sensitive(status: &Status, priority: &Priority, age: Option<i64>) -> bool {
    status.is_open() && (is_minor(age) || priority.is_urgent())
}

/// An arrangement keyed by case id.
pub type ByCase<'s, V> = Arranged<'s, TraceAgent<ValSpine<Key, V, Tick, isize>>>;

/// The child rows of a case (each row names its case by `case_id`).
pub struct Children<'s> {
    /// `case_actions` rows.
    pub actions: Coll<'s, Arc<Action>>,
    /// `case_responsible_history` rows.
    pub history: Coll<'s, Arc<Assignment>>,
    /// `case_sightings` rows.
    pub sightings: Coll<'s, Arc<Sighting>>,
}

/// The read model's four arrangements.
pub struct CaseModel<'s> {
    /// `case id -> CaseRecord`.
    pub records: ByCase<'s, CaseRecord>,
    /// `case id -> action`.
    pub actions: ByCase<'s, Arc<Action>>,
    /// `case id -> responsible history row`.
    pub history: ByCase<'s, Arc<Assignment>>,
    /// `case id -> sighting`.
    pub sightings: ByCase<'s, Arc<Sighting>>,
}

/// Arranges `(case id, value)` on the first `holders` workers only (by case id), instead of
/// differential's default of every worker.
///
/// Why: in a cluster (`--peers`) only process 0 serves, and its reads ask its own workers
/// (global indices `0..holders`), so the read model must live there; the joins that build it
/// still run on every worker of every process. In one process `holders` is every worker, so
/// this is differential's own arrangement.
fn arrange_on<'s, V: ExchangeData>(
    pairs: Coll<'s, (Key, V)>,
    name: &str,
    holders: usize,
) -> ByCase<'s, V> {
    let holders = holders.max(1) as u64;
    let by_case = Exchange::new(move |u: &((Key, V), Tick, isize)| (u.0).0.hashed() % holders);
    arrange_core::<_, _, ValBatcher<Key, V, Tick, isize>, _>(
        pairs.inner,
        by_case,
        name,
        ValBatcher::new,
    )
}

/// Builds the read model. `with_person` is the cases-persons join the KPIs already compute; the
/// cases it lacks are the ones without a person. The four arrangements live on the first
/// `holders` workers ([`arrange_on`]).
pub fn render<'s>(
    cases: Coll<'s, Arc<Case>>,
    with_person: Coll<'s, (Arc<Case>, Arc<Person>)>,
    responsibles: Coll<'s, Arc<Responsible>>,
    children: Children<'s>,
    holders: usize,
) -> CaseModel<'s> {
    let Children {
        actions,
        history,
        sightings,
    } = children;
    let matched = with_person.clone().map(|(c, _)| c);
    let without_person = cases.concat(matched.negate()).map(|c| (c, None));
    let case_person = with_person
        .map(|(c, p)| (c, Some(p)))
        .concat(without_person);

    // left join on the current responsible
    let by_responsible = case_person
        .clone()
        .flat_map(|(c, p)| c.responsible_id.map(|rid| (rid, (c, p))))
        .arrange_by_key_named("cases_by_responsible");
    let responsibles_by_id = responsibles
        .map(|r| (r.id, r))
        .arrange_by_key_named("responsibles_by_id");
    let assigned = by_responsible.join_core(responsibles_by_id, |_rid, (c, p), r| {
        Some(CaseRecord {
            case: c.clone(),
            person: p.clone(),
            responsible: Some(r.clone()),
        })
    });
    let assigned_plain = assigned.clone().map(|rec| (rec.case, rec.person));
    let unassigned = case_person
        .concat(assigned_plain.negate())
        .map(|(case, person)| CaseRecord {
            case,
            person,
            responsible: None,
        });
    let records = arrange_on(
        assigned.concat(unassigned).map(|rec| (rec.case.id, rec)),
        "case_records_by_id",
        holders,
    );

    CaseModel {
        records,
        actions: arrange_on(actions.map(|a| (a.case_id, a)), "actions_by_case", holders),
        history: arrange_on(history.map(|h| (h.case_id, h)), "history_by_case", holders),
        sightings: arrange_on(
            sightings.map(|s| (s.case_id, s)),
            "sightings_by_case",
            holders,
        ),
    }
}

/// The ids of the cases whose record, actions, history or sightings change, read from the arrangements'
/// batches: an update that is undone within its tick (a duplicate, a replay, a value written
/// back) is consolidated away there and names no case. A case comes once per changed entry and
/// with either sign; the views sink deduplicates.
pub fn changed<'s>(model: &CaseModel<'s>) -> Coll<'s, Key> {
    let records = model.records.clone().flat_map_ref(|id, _| Some(*id));
    let actions = model.actions.clone().flat_map_ref(|id, _| Some(*id));
    let history = model.history.clone().flat_map_ref(|id, _| Some(*id));
    let sightings = model.sightings.clone().flat_map_ref(|id, _| Some(*id));
    records.concat(actions).concat(history).concat(sightings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status, priority: Priority, age: Option<i64>) -> CaseRecord {
        CaseRecord {
            case: Arc::new(Case {
                id: 1,
                person_id: 1,
                status,
                priority,
                responsible_id: None,
                opened_at: 0,
                closed_at: None,
                version: 1,
                public: false,
                public_id: None,
            }),
            person: age.map(|age| {
                Arc::new(Person {
                    id: 1,
                    full_name: "Persona".into(),
                    age: Some(age),
                    gender: "female".into(),
                    last_seen_at: 0,
                    reported_at: 0,
                    last_seen_place: "Quito".into(),
                    version: 1,
                    ..Default::default()
                })
            }),
            responsible: None,
        }
    }

    #[test]
    fn sensitive_means_open_and_a_minor_or_urgent() {
        assert!(record(Status::Open, Priority::Low, Some(17)).is_sensitive());
        assert!(record(Status::InProgress, Priority::High, Some(40)).is_sensitive());
        assert!(record(Status::Open, Priority::Critical, None).is_sensitive());
        assert!(!record(Status::Open, Priority::Medium, Some(18)).is_sensitive());
        assert!(!record(Status::Open, Priority::Low, None).is_sensitive());
        assert!(!record(Status::Closed, Priority::Critical, Some(5)).is_sensitive());
        assert!(!record(Status::FoundAlive, Priority::Low, Some(5)).is_sensitive());
        assert!(record(Status::Open, Priority::Low, Some(5)).is_minor());
        assert!(!record(Status::Open, Priority::Low, Some(-1)).is_minor());
    }
}
