//! Builds the per-worker dataflow: inputs -> upsert -> per-table collections -> views and the
//! case read model. Owns which arrangements are shared.
//!
//! ```text
//! changes (by key) ─┐
//!                   ├─ upsert ─ rows ─┬─ persons ──┬─ age_group, gender, hours ──────────┐
//! controls (bcast) ─┘                 │            └─ persons_by_id ─┐                   │
//!                                     ├─ cases ────── cases_by_person ⋈ ─ person KPIs ───┤
//!                                     │            └─ case metrics ──────────────────────┼─ count_total ─┐
//!                                     ├─ actions, history, responsibles ─ row counts ────┘               ├─ views sink (worker 0)
//!                                     ├─ responsibles + open cases ─ responsible_load reduce ────────────┤
//!                   (optional) persons + case ⋈ person ─ H3 cell ─ hotspots reduce ───────────────────┤
//!                                     └─ case read model (records, actions, history, sightings) ─ changed ids ┘
//! ```

pub mod cases;
pub mod sink;
pub mod upsert;
pub mod views;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use chrono_tz::Tz;
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::Probe;
use timely::dataflow::{InputHandleVec, ProbeHandle};
use timely::worker::Worker;

use crate::change::RowChange;
use crate::model::Row;
use crate::store::ViewStore;
use crate::tick::{Coll, Tick};
use crate::upsert::UpsertState;

pub use cases::CaseRecord;
pub use upsert::Control;

/// Traces of the case read model, held by the worker loop for reads.
pub struct CaseTraces {
    /// `case id -> CaseRecord`.
    pub records: differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::ValSpine<i64, CaseRecord, Tick, isize>,
    >,
    /// `case id -> action`.
    pub actions: differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::ValSpine<
            i64,
            Arc<crate::model::Action>,
            Tick,
            isize,
        >,
    >,
    /// `case id -> history row`.
    pub history: differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::ValSpine<
            i64,
            Arc<crate::model::Assignment>,
            Tick,
            isize,
        >,
    >,
    /// `case id -> sighting`.
    pub sightings: differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::ValSpine<
            i64,
            Arc<crate::model::Sighting>,
            Tick,
            isize,
        >,
    >,
}

/// What the worker loop keeps of a built dataflow.
pub struct Built {
    /// Row events with their tick, routed by key inside the dataflow.
    pub changes: InputHandleVec<Tick, (RowChange, Tick)>,
    /// Truncates and snapshot closes with their tick, broadcast inside the dataflow.
    pub controls: InputHandleVec<Tick, (Control, Tick)>,
    /// Passes a tick once every view and the read model have it.
    pub probe: ProbeHandle<Tick>,
    /// The read model, if enabled.
    pub cases: Option<CaseTraces>,
}

/// Dataflow options.
#[derive(Clone, Debug)]
pub struct DataflowConfig {
    /// Zone for the hour views.
    pub tz: Tz,
    /// Whether to maintain the case read model.
    pub case_model: bool,
    /// Where checkpoint images go ([`crate::checkpoint`]); `None`: requests are ignored.
    pub images: Option<crate::checkpoint::ImageSink>,
    /// The H3 resolutions the `hotspots` view is built at (one reduce each); empty: not built.
    pub hotspots: Vec<h3o::Resolution>,
    /// How many workers, from worker 0 on, hold the case read model: every worker in one
    /// process, process 0's in a cluster (the process that serves reads).
    pub case_holders: usize,
}

fn only<'s, T: Clone + Ord + std::fmt::Debug + 'static>(
    rows: &Coll<'s, Row>,
    pick: fn(Row) -> Option<T>,
) -> Coll<'s, T> {
    rows.clone().flat_map(pick)
}

/// Builds the dataflow on `worker`.
pub fn build(
    worker: &mut Worker,
    config: &DataflowConfig,
    state: Rc<RefCell<UpsertState>>,
    store: Arc<ViewStore>,
) -> Built {
    let tz = config.tz;
    let case_model = config.case_model;
    let images = config.images.clone();
    let hotspots = config.hotspots.clone();
    let case_holders = config.case_holders;
    worker.dataflow_named::<Tick, _, _>("lpm", move |scope| {
        let (changes_in, changes) = scope.new_input::<(RowChange, Tick)>();
        let (controls_in, controls) = scope.new_input::<(Control, Tick)>();
        let rows = upsert::render(changes, controls.broadcast(), state, images);

        let persons = only(&rows, |r| {
            if let Row::Person(p) = r {
                Some(p)
            } else {
                None
            }
        });
        let cases = only(&rows, |r| if let Row::Case(c) = r { Some(c) } else { None });
        let actions = only(&rows, |r| {
            if let Row::Action(a) = r {
                Some(a)
            } else {
                None
            }
        });
        let history = only(&rows, |r| {
            if let Row::Assignment(h) = r {
                Some(h)
            } else {
                None
            }
        });
        let responsibles = only(&rows, |r| {
            if let Row::Responsible(x) = r {
                Some(x)
            } else {
                None
            }
        });
        // sightings feed the case read model only: no view counts them
        let sightings = only(&rows, |r| {
            if let Row::Sighting(x) = r {
                Some(x)
            } else {
                None
            }
        });

        let persons_by_id = persons
            .clone()
            .map(|p| (p.id, p))
            .arrange_by_key_named("persons_by_id");
        let with_person = views::cases_with_person(cases.clone(), persons_by_id);

        let metrics = views::age_group(persons.clone())
            .concat(views::gender(persons.clone()))
            .concat(views::hours(persons.clone(), tz))
            .concat(views::series(
                persons.clone(),
                with_person.clone(),
                cases.clone(),
            ))
            .concat(views::person_totals(persons.clone()))
            .concat(views::case_metrics(cases.clone()))
            .concat(views::person_kpis(cases.clone(), with_person.clone()))
            .concat(views::action_totals(actions.clone()))
            .concat(views::other_row_counts(
                history.clone(),
                responsibles.clone(),
            ));
        let mut view_rows = views::counts(metrics)
            .concat(views::responsible_load(responsibles.clone(), cases.clone()));
        for res in hotspots {
            view_rows =
                view_rows.concat(views::hotspots(persons.clone(), with_person.clone(), res));
        }
        let model = case_model.then(|| {
            cases::render(
                cases,
                with_person,
                responsibles,
                cases::Children {
                    actions,
                    history,
                    sightings,
                },
                case_holders,
            )
        });
        // the changed case ids go with the views, so each tick's notices travel with its diff
        let changed = model.as_ref().map(cases::changed);
        let (probe, _) = sink::render(view_rows, changed, store, scope.index() == 0).probe();

        let traces = model.map(|model| {
            model.records.stream.clone().probe_with(&probe);
            model.actions.stream.clone().probe_with(&probe);
            model.history.stream.clone().probe_with(&probe);
            model.sightings.stream.clone().probe_with(&probe);
            CaseTraces {
                records: model.records.trace,
                actions: model.actions.trace,
                history: model.history.trace,
                sightings: model.sightings.trace,
            }
        });

        Built {
            changes: changes_in,
            controls: controls_in,
            probe,
            cases: traces,
        }
    })
}
