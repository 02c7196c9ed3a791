//! The dataflow's last operator: routes every view update to worker 0 and hands each tick to
//! the [`ViewStore`] there once it is complete on every worker, so the store only ever holds
//! whole ticks.

use std::collections::BTreeMap;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

use crate::store::ViewStore;
use crate::tick::{Coll, Tick};
use crate::views::ViewRow;

/// Sends every view update to worker 0 and applies each tick there once it is complete.
/// Returns the routed stream, for probing.
pub fn render<'s>(
    views: Coll<'s, ViewRow>,
    store: Arc<ViewStore>,
    leader: bool,
) -> StreamVec<'s, Tick, ()> {
    views
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_| 0),
            "views.sink",
            move |_cap, _info| {
                // keyed by each update's own time: one message may carry several times
                let mut stash: BTreeMap<Tick, Vec<(ViewRow, isize)>> = BTreeMap::new();
                move |(input, frontier), _output| {
                    input.for_each(|_cap, data| {
                        for (row, t, d) in data.drain(..) {
                            stash.entry(t).or_default().push((row, d));
                        }
                    });
                    while let Some(entry) = stash.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        let tick = *entry.key();
                        store.apply(tick, entry.remove());
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
