//! The dataflow's last operator: routes every view update and every changed case id to worker
//! 0 and hands each tick to the [`ViewStore`] there once it is complete on every worker, so the
//! store only ever holds whole ticks, and a tick's case notices travel with its view diff.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

use crate::model::Key;
use crate::store::ViewStore;
use crate::tick::{Coll, Tick};
use crate::views::ViewRow;

/// What reaches the sink: a view row update, or the id of a case whose record changed.
/// (Serialisable: timely's exchange may cross processes.)
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Out {
    Row(ViewRow),
    Case(Key),
}

/// One tick's updates, gathered on worker 0 until the tick is complete.
#[derive(Default)]
struct Pending {
    rows: Vec<(ViewRow, isize)>,
    cases: Vec<Key>,
}

/// Sends every view update and changed case id to worker 0 and applies each tick there once
/// it is complete. `cases` holds one entry per changed case-model entry (a case may come
/// several times, and with either sign: any update at a tick means the case changed).
/// Returns the routed stream, for probing.
pub fn render<'s>(
    views: Coll<'s, ViewRow>,
    cases: Option<Coll<'s, Key>>,
    store: Arc<ViewStore>,
    leader: bool,
) -> StreamVec<'s, Tick, ()> {
    let mut all = views.map(Out::Row);
    if let Some(cases) = cases {
        all = all.concat(cases.map(Out::Case));
    }
    all.inner
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_| 0),
            "views.sink",
            move |_cap, _info| {
                // keyed by each update's own time: one message may carry several times
                let mut stash: BTreeMap<Tick, Pending> = BTreeMap::new();
                move |(input, frontier), _output| {
                    input.for_each(|_cap, data| {
                        for (out, t, d) in data.drain(..) {
                            let pending = stash.entry(t).or_default();
                            match out {
                                Out::Row(row) => pending.rows.push((row, d)),
                                Out::Case(id) => pending.cases.push(id),
                            }
                        }
                    });
                    while let Some(entry) = stash.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        let tick = *entry.key();
                        let Pending { rows, mut cases } = entry.remove();
                        cases.sort_unstable();
                        cases.dedup();
                        store.apply(tick, rows, cases);
                    }
                    // ticks without view changes are complete too; only worker 0 holds the data
                    if leader {
                        let through = frontier.frontier().first().and_then(|t| t.checked_sub(1));
                        store.advance(through, frontier.is_empty());
                    }
                }
            },
        )
}
