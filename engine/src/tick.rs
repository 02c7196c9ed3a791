//! Logical time. Every module that builds or reads the dataflow names its time through these
//! two types, kept in a module of their own so that none of them has to import another for it.

use differential_dataflow::VecCollection;

/// Logical time: the ingestion tick.
pub type Tick = u64;

/// A collection at ticks with integer multiplicities.
pub type Coll<'s, D> = VecCollection<'s, Tick, D, isize>;

/// What a source knew at each recent tick (its position: a log sequence, a binlog coordinate,
/// Kafka offsets), bounded to the newest `keep` ticks. Every source keeps its positions in one
/// of these, so "where did the source stand at tick T" has one answer and one code path: the
/// value recorded at the newest tick at or below T (ticks without a recorded value, such as a
/// snapshot chunk that cannot be resumed from, inherit the previous one).
#[derive(Clone, Debug)]
pub struct TickMap<V> {
    at: std::collections::BTreeMap<Tick, V>,
    keep: usize,
}

impl<V> TickMap<V> {
    /// An empty map that keeps the newest `keep` ticks (at least one).
    pub fn new(keep: usize) -> TickMap<V> {
        TickMap {
            at: std::collections::BTreeMap::new(),
            keep: keep.max(1),
        }
    }

    /// Records `value` at `tick`, forgetting the oldest ticks beyond the bound.
    pub fn record(&mut self, tick: Tick, value: V) {
        self.at.insert(tick, value);
        while self.at.len() > self.keep {
            self.at.pop_first();
        }
    }

    /// The value at the newest recorded tick at or below `tick`.
    pub fn at(&self, tick: Tick) -> Option<&V> {
        self.at.range(..=tick).next_back().map(|(_, v)| v)
    }

    /// The newest recorded value.
    pub fn last(&self) -> Option<&V> {
        self.at.last_key_value().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::TickMap;

    #[test]
    fn a_tick_sees_the_newest_value_at_or_below_it() {
        let mut m = TickMap::new(10);
        assert_eq!(m.at(5), None);
        m.record(2, "a");
        m.record(4, "b");
        assert_eq!(m.at(1), None);
        assert_eq!(m.at(2), Some(&"a"));
        assert_eq!(m.at(3), Some(&"a"));
        assert_eq!(m.at(9), Some(&"b"));
        assert_eq!(m.last(), Some(&"b"));
    }

    #[test]
    fn old_ticks_are_forgotten_beyond_the_bound() {
        let mut m = TickMap::new(2);
        for t in 1..=5 {
            m.record(t, t * 10);
        }
        assert_eq!(m.at(3), None);
        assert_eq!(m.at(4), Some(&40));
        assert_eq!(m.at(7), Some(&50));
    }
}
