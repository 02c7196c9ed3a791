//! Arrangement sizes, read from differential's own log (`"differential/arrange"`).
//!
//! Each spine reports its batches: a `Batch` adds one batch of `length` updates, a completed
//! `Merge` turns two batches into one of `complete` updates, a `Drop` removes one. Summing
//! those per operator gives the batches and updates every arrangement holds now, the figure a
//! data engineer needs to see where memory goes. The operator's name comes from timely's
//! `Operates` event, logged when the operator is built (`arrange_by_key_named("cases_by_id")`
//! shows as `Arrange: cases_by_id`), so both loggers must be registered before the dataflow is.
//!
//! Timely flushes every registered logger at the end of each `step`, so the figures trail the
//! dataflow by at most one step. Counting is a hash-map update per log event; there are a few
//! per batch of input, not per record.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
use timely::logging::{TimelyEvent, TimelyEventBuilder};

/// One arrangement's size on one worker, or summed over workers by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrangementSize {
    /// The operator's name without timely's `Arrange: ` prefix (`cases_by_id`, `Reduce`).
    pub name: String,
    /// How many operators of this name were summed (several `count_total`s share a name).
    pub operators: usize,
    /// Updates held in the spine's batches (not yet compacted away).
    pub records: i64,
    /// Batches held.
    pub batches: i64,
}

/// Per-worker tallies, fed by the two loggers.
#[derive(Debug, Default)]
pub struct Tally {
    names: HashMap<usize, String>,
    sizes: HashMap<usize, (i64, i64)>,
    changed: bool,
}

impl Tally {
    fn apply(&mut self, event: &DifferentialEvent) {
        let (operator, records, batches) = match event {
            DifferentialEvent::Batch(b) => (b.operator, to_i64(b.length), 1),
            DifferentialEvent::Merge(m) => match m.complete {
                Some(n) => (
                    m.operator,
                    to_i64(n) - to_i64(m.length1) - to_i64(m.length2),
                    -1,
                ),
                None => return,
            },
            DifferentialEvent::Drop(d) => (d.operator, -to_i64(d.length), -1),
            _ => return,
        };
        let entry = self.sizes.entry(operator).or_default();
        entry.0 += records;
        entry.1 += batches;
        self.changed = true;
    }

    /// The sizes if they changed since the last call (publishing is then skipped on idle steps).
    pub fn take_changed(&mut self) -> Option<Vec<ArrangementSize>> {
        std::mem::take(&mut self.changed).then(|| self.snapshot())
    }

    /// The sizes on this worker, one entry per name, sorted by name.
    pub fn snapshot(&self) -> Vec<ArrangementSize> {
        let per_operator = self
            .sizes
            .iter()
            .map(|(op, (records, batches))| ArrangementSize {
                name: self
                    .names
                    .get(op)
                    .map_or("unnamed", String::as_str)
                    .to_string(),
                operators: 1,
                records: *records,
                batches: *batches,
            });
        // on one worker, operators of one name are distinct operators: count them all
        by_name(per_operator, |a, b| a + b)
    }
}

/// Sums sizes by name, combining operator counts with `operators`; sorted by name.
fn by_name(
    sizes: impl IntoIterator<Item = ArrangementSize>,
    operators: impl Fn(usize, usize) -> usize,
) -> Vec<ArrangementSize> {
    let mut by_name: HashMap<String, ArrangementSize> = HashMap::new();
    for s in sizes {
        match by_name.get_mut(&s.name) {
            Some(e) => {
                e.operators = operators(e.operators, s.operators);
                e.records += s.records;
                e.batches += s.batches;
            }
            None => {
                by_name.insert(s.name.clone(), s);
            }
        }
    }
    let mut out: Vec<_> = by_name.into_values().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sums per-worker snapshots by name.
pub fn merge(per_worker: impl IntoIterator<Item = Vec<ArrangementSize>>) -> Vec<ArrangementSize> {
    // every worker builds the same operators: count them once
    by_name(per_worker.into_iter().flatten(), usize::max)
}

/// Registers both loggers on `worker`; call before building the dataflow.
pub fn register(worker: &mut timely::worker::Worker) -> Rc<RefCell<Tally>> {
    let tally = Rc::new(RefCell::new(Tally::default()));
    let Some(mut registry) = worker.log_register() else {
        return tally;
    };
    let names = tally.clone();
    registry.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
        if let Some(events) = data {
            for (_, event) in events.iter() {
                if let TimelyEvent::Operates(op) = event {
                    let name = op.name.strip_prefix("Arrange: ").unwrap_or(&op.name);
                    names.borrow_mut().names.insert(op.id, name.to_string());
                }
            }
        }
    });
    let sizes = tally.clone();
    registry.insert::<DifferentialEventBuilder, _>("differential/arrange", move |_time, data| {
        if let Some(events) = data {
            let mut t = sizes.borrow_mut();
            for (_, event) in events.iter() {
                t.apply(event);
            }
        }
    });
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::logging::{BatchEvent, DropEvent, MergeEvent};

    #[test]
    fn batches_merges_and_drops_balance() {
        let mut t = Tally::default();
        t.names.insert(7, "cases_by_id".into());
        t.apply(
            &BatchEvent {
                operator: 7,
                length: 10,
            }
            .into(),
        );
        t.apply(
            &BatchEvent {
                operator: 7,
                length: 4,
            }
            .into(),
        );
        let start = MergeEvent {
            operator: 7,
            scale: 1,
            length1: 10,
            length2: 4,
            complete: None,
        };
        t.apply(&start.into());
        assert_eq!(t.snapshot()[0].records, 14, "a merge start changes nothing");
        let done = MergeEvent {
            operator: 7,
            scale: 1,
            length1: 10,
            length2: 4,
            complete: Some(11),
        };
        t.apply(&done.into());
        let s = &t.snapshot()[0];
        assert_eq!(
            (s.name.as_str(), s.records, s.batches),
            ("cases_by_id", 11, 1)
        );
        t.apply(
            &DropEvent {
                operator: 7,
                length: 11,
            }
            .into(),
        );
        assert_eq!((t.snapshot()[0].records, t.snapshot()[0].batches), (0, 0));
    }

    #[test]
    fn merge_sums_workers_and_counts_operators_once() {
        let w = |records| {
            vec![ArrangementSize {
                name: "a".into(),
                operators: 2,
                records,
                batches: 1,
            }]
        };
        let m = merge([w(3), w(4)]);
        assert_eq!(
            m,
            vec![ArrangementSize {
                name: "a".into(),
                operators: 2,
                records: 7,
                batches: 2
            }]
        );
    }
}
