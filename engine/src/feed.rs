//! [`PushFeed`]: a [`Feed`] that live sources push decoded changes into, one tick per push.
//!
//! All batches go to worker 0; the dataflow's upsert operator routes each change to the worker
//! that owns its key, so nothing is lost by feeding one worker. The other workers only learn how
//! far time has advanced. A push blocks while too many ticks wait, so a fast producer (startup
//! replay of a large log) cannot grow memory without bound.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::change::Change;
use crate::dataflow::Control;
use crate::runtime::{Feed, FeedItem};
use crate::tick::Tick;

/// What one queued tick carries.
enum Queued {
    Changes(Vec<Change>),
    Control(Control),
}

struct Inner {
    queue: VecDeque<(Tick, Queued)>,
    next_tick: Tick,
    closed: bool,
}

/// A push-based feed. Share it as `Arc<PushFeed>` between the producer and the engine.
pub struct PushFeed {
    inner: Mutex<Inner>,
    drained: Condvar,
    max_queued: usize,
}

impl PushFeed {
    /// A feed that lets at most `max_queued` ticks wait for the engine.
    pub fn new(max_queued: usize) -> PushFeed {
        PushFeed {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                next_tick: 1,
                closed: false,
            }),
            drained: Condvar::new(),
            max_queued: max_queued.max(1),
        }
    }

    /// Queues `changes` as the next tick and returns it; the changes are visible once the
    /// engine's store reaches that tick. Blocks while the queue is full. `None` once closed.
    pub fn push(&self, changes: Vec<Change>) -> Option<Tick> {
        self.enqueue(Queued::Changes(changes))
    }

    /// Queues a table-wide `control` (a restored cut, a checkpoint request) as the next tick,
    /// after every change pushed before it; as [`push`](Self::push) otherwise.
    pub fn push_control(&self, control: Control) -> Option<Tick> {
        self.enqueue(Queued::Control(control))
    }

    fn enqueue(&self, item: Queued) -> Option<Tick> {
        let mut inner = self.inner.lock();
        while inner.queue.len() >= self.max_queued && !inner.closed {
            self.drained.wait_for(&mut inner, Duration::from_millis(50));
        }
        if inner.closed {
            return None;
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        inner.queue.push_back((tick, item));
        Some(tick)
    }

    /// The tick the next push will get (every earlier tick has been handed out).
    pub fn next_tick(&self) -> Tick {
        self.inner.lock().next_tick
    }

    /// Ends the input: the engine finishes the queued ticks and stops.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.drained.notify_all();
    }
}

impl Feed for PushFeed {
    fn next(&self, worker: usize) -> FeedItem {
        let mut inner = self.inner.lock();
        if worker == 0 {
            if let Some((tick, item)) = inner.queue.pop_front() {
                self.drained.notify_all();
                return match item {
                    Queued::Changes(changes) => FeedItem::Batch { tick, changes },
                    Queued::Control(control) => FeedItem::Control { tick, control },
                };
            }
        }
        if inner.closed && (worker != 0 || inner.queue.is_empty()) {
            return FeedItem::End;
        }
        FeedItem::Idle {
            tick: inner.next_tick,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_increase_and_only_worker_zero_gets_batches() {
        let feed = PushFeed::new(8);
        assert_eq!(feed.push(Vec::new()), Some(1));
        assert_eq!(feed.push(Vec::new()), Some(2));
        assert!(matches!(feed.next(1), FeedItem::Idle { tick: 3 }));
        assert!(matches!(feed.next(0), FeedItem::Batch { tick: 1, .. }));
        assert!(matches!(feed.next(0), FeedItem::Batch { tick: 2, .. }));
        assert!(matches!(feed.next(0), FeedItem::Idle { tick: 3 }));
        feed.close();
        assert!(matches!(feed.next(0), FeedItem::End));
        assert!(matches!(feed.next(1), FeedItem::End));
        assert_eq!(feed.push(Vec::new()), None);
    }

    #[test]
    fn a_full_queue_blocks_the_producer_until_drained() {
        let feed = std::sync::Arc::new(PushFeed::new(1));
        feed.push(Vec::new());
        let f2 = feed.clone();
        let t = std::thread::spawn(move || f2.push(Vec::new()));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!t.is_finished());
        assert!(matches!(feed.next(0), FeedItem::Batch { tick: 1, .. }));
        assert_eq!(t.join().ok().flatten(), Some(2));
    }
}
