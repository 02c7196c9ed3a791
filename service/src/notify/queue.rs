//! `Queue`: the outbox shared by the writers that add to it and the delivery threads that
//! take from it, with the wake-up between them and the pending gauge kept current.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::config::Target;
use super::metrics::NotifyMetrics;
use super::notification::Notification;
use super::outbox::{Opened, Outbox, OutboxError};

/// The outbox under one lock, and a signal for delivery threads.
pub struct Queue {
    outbox: Mutex<Outbox>,
    wake: Condvar,
    stop: AtomicBool,
    targets: Vec<Target>,
    metrics: NotifyMetrics,
}

impl Queue {
    /// Opens the outbox at `path` for `targets`.
    pub fn open(
        path: &Path,
        targets: Vec<Target>,
        metrics: NotifyMetrics,
    ) -> Result<(Queue, Opened), OutboxError> {
        let (outbox, opened) = Outbox::open(path)?;
        let q = Queue {
            outbox: Mutex::new(outbox),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            targets,
            metrics,
        };
        q.update_pending(&q.outbox.lock());
        Ok((q, opened))
    }

    fn update_pending(&self, outbox: &Outbox) {
        let by_name = outbox.pending_by_target();
        for t in &self.targets {
            self.metrics
                .pending
                .with_label_values(&[t.kind.label()])
                .set(0);
        }
        for t in &self.targets {
            let n = by_name.get(t.name.as_str()).copied().unwrap_or(0);
            let g = self.metrics.pending.with_label_values(&[t.kind.label()]);
            g.add(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Every notification ever added, oldest first.
    pub fn history(&self) -> Vec<Notification> {
        self.outbox.lock().history().to_vec()
    }

    /// Adds `n` for every target, durably, and wakes the delivery threads; `false` when its id
    /// was already added.
    pub fn add(&self, n: Notification) -> Result<bool, OutboxError> {
        let names: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        let mut outbox = self.outbox.lock();
        let added = outbox.add(n, &names)?;
        if added {
            self.update_pending(&outbox);
            self.wake.notify_all();
        }
        Ok(added)
    }

    /// Marks `id` delivered to `target`, durably.
    pub fn done(&self, id: &str, target: &str) -> Result<(), OutboxError> {
        let mut outbox = self.outbox.lock();
        outbox.done(id, target)?;
        self.update_pending(&outbox);
        Ok(())
    }

    /// The oldest notification pending for `target`, waiting up to `wait` for one; `None` on
    /// timeout or stop.
    pub fn next_for(&self, target: &str, wait: Duration) -> Option<Notification> {
        let deadline = Instant::now() + wait;
        let mut outbox = self.outbox.lock();
        loop {
            if self.stopped() {
                return None;
            }
            if let Some(n) = outbox.next_for(target) {
                return Some(n.clone());
            }
            if self.wake.wait_until(&mut outbox, deadline).timed_out() {
                return None;
            }
        }
    }

    /// Sleeps `d`, or less when stopping.
    pub fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut outbox = self.outbox.lock();
        while !self.stopped() {
            if self.wake.wait_until(&mut outbox, deadline).timed_out() {
                return;
            }
        }
    }

    /// Asks every thread waiting here to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _guard = self.outbox.lock();
        self.wake.notify_all();
    }

    /// Whether [`Queue::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The instruments.
    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }
}
