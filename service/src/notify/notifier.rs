//! `Notifier`: the running notifications of `lpm serve`: the outbox, one delivery thread per
//! target and the "left unassigned" check. Writes call [`Notifier::record`] after they commit
//! and before they answer, so an acknowledged write's notification is on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lpm_engine::model::EpochMs;
use lpm_engine::{CasePredicate, EngineHandle};
use parking_lot::Mutex;

use super::config::NotifyConfig;
use super::deliver;
use super::metrics::NotifyMetrics;
use super::outbox::{OutboxError, OUTBOX_FILE};
use super::queue::Queue;
use super::rules::{on_write, Candidate, RuleConfig, Unassigned};
use crate::sor::Committed;

/// Why notifications could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The outbox.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// Registering the metrics.
    #[error("notification metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Starting a thread.
    #[error("starting a notification thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Running notifications.
pub struct Notifier {
    queue: Arc<Queue>,
    rules: RuleConfig,
    base_url: String,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn now_ms() -> EpochMs {
    chrono::Utc::now().timestamp_millis()
}

/// How often the unassigned rule looks: a quarter of its threshold, between 1 s and 1 min.
fn check_every(after: Duration) -> Duration {
    (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

impl Notifier {
    /// Opens the outbox in `data_dir` and starts delivering to `cfg.targets`; `None` when no
    /// target is configured (notifications are off). `engine` is read by the unassigned rule.
    pub fn start(
        cfg: NotifyConfig,
        data_dir: &Path,
        engine: EngineHandle,
        registry: &prometheus::Registry,
    ) -> Result<Option<Arc<Notifier>>, NotifyError> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let metrics = NotifyMetrics::new(registry)?;
        let path = data_dir.join(OUTBOX_FILE);
        let (queue, opened) = Queue::open(&path, cfg.targets.clone(), metrics)?;
        if opened.torn_bytes > 0 || opened.bad_lines > 0 {
            tracing::warn!(path = %path.display(), torn_bytes = opened.torn_bytes, bad_lines = opened.bad_lines, "The notification outbox had a torn or unreadable line; it was skipped.");
        }
        tracing::info!(
            targets = cfg.targets.len(),
            notifications = opened.notifications,
            "Notifications are on."
        );
        let queue = Arc::new(queue);
        let mut threads = Vec::new();
        for t in &cfg.targets {
            threads.push(deliver::spawn(queue.clone(), t.clone(), &cfg)?);
        }
        if let Some(after) = cfg.rules.unassigned_after {
            let mut memory = Unassigned::default();
            for n in queue.history() {
                memory.seed(&n);
            }
            let (q, base) = (queue.clone(), cfg.base_url.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("notify-unassigned".into())
                    .spawn(move || watch_unassigned(&q, &engine, memory, after, &base))?,
            );
        }
        Ok(Some(Arc::new(Notifier {
            queue,
            rules: cfg.rules,
            base_url: cfg.base_url,
            threads: Mutex::new(threads),
        })))
    }

    /// Puts the notification `committed` produces (if any rule fires) in the outbox, durably.
    /// Called after the write committed and before it is acknowledged.
    pub fn record(&self, candidate: &Candidate, committed: &Committed) -> Result<(), OutboxError> {
        if let Some(n) = on_write(&self.rules, candidate, committed, &self.base_url, now_ms()) {
            let id = n.id.clone();
            if self.queue.add(n)? {
                tracing::debug!(%id, "Notification queued.");
            }
        }
        Ok(())
    }

    /// Stops delivering and waits for the threads (at most one attempt's timeout). Pending
    /// notifications stay in the outbox for the next start.
    pub fn stop(&self) {
        self.queue.stop();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

/// The unassigned rule's loop: every [`check_every`], the open cases without a responsible.
fn watch_unassigned(
    queue: &Queue,
    engine: &EngineHandle,
    mut memory: Unassigned,
    after: Duration,
    base_url: &str,
) {
    let open_unassigned: CasePredicate =
        Arc::new(|r| r.case.status.is_open() && r.case.responsible_id.is_none());
    while !queue.stopped() {
        match engine.cases(open_unassigned.clone(), Duration::from_secs(5)) {
            Ok((_tick, cases)) => {
                for n in memory.check(&cases, after, base_url, now_ms()) {
                    if let Err(e) = queue.add(n) {
                        tracing::error!(error = %e, "Could not queue an unassigned-case notification.");
                    }
                }
            }
            // not ready yet (starting) or stopping: try again next round
            Err(e) => tracing::debug!(error = %e, "Unassigned check skipped."),
        }
        queue.sleep(check_every(after));
    }
}
