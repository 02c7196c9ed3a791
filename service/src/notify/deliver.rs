//! Delivery: one thread per target takes the oldest notification pending for it, POSTs it
//! with the notification's id as `Idempotency-Key`, and marks it delivered in the outbox only
//! after a 2xx. A failure waits an exponential backoff with jitter, capped, and retries the
//! same notification (targets see them in order, and a down receiver is not flooded).
//!
//! Why a thread with a blocking client (ureq, already in the workspace) and not a tokio task:
//! each target sends one request at a time, the outbox's fsyncs are blocking too, and a
//! thread keeps a slow receiver away from the runtime that serves HTTP.

use std::sync::Arc;
use std::time::Duration;

use super::config::{NotifyConfig, Target};
use super::format::payload;
use super::notification::Notification;
use super::queue::Queue;

/// How long a delivery thread waits for work before checking whether it should stop.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// The wait before attempt `failures + 1`: `base * 2^(failures - 1)`, capped at `max`, then
/// scaled by `0.5 + jitter / 2` (`jitter` in `[0, 1)`), so receivers recovering together are
/// not hit by every sender at once.
pub fn backoff(failures: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A random number in `[0, 1)` for [`backoff`]'s jitter (0.5 when the OS has none to give).
fn jitter() -> f64 {
    match getrandom::u32() {
        Ok(r) => f64::from(r) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// Sends `n` to `target` once: `Ok` on a 2xx, else what went wrong.
fn attempt(agent: &ureq::Agent, target: &Target, n: &Notification) -> Result<(), String> {
    let body = serde_json::to_vec(&payload(&target.kind, n)).map_err(|e| e.to_string())?;
    let resp = agent
        .post(&target.url)
        .header("content-type", "application/json")
        .header("idempotency-key", &n.id)
        .send(&body[..])
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Starts the delivery thread of `target`.
pub fn spawn(
    queue: Arc<Queue>,
    target: Target,
    cfg: &NotifyConfig,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(cfg.timeout))
        .build()
        .into();
    let (base, max) = (cfg.backoff_base, cfg.backoff_max);
    std::thread::Builder::new()
        .name(format!("notify-{}", target.name))
        .spawn(move || run(&queue, &agent, &target, (base, max)))
}

fn run(queue: &Queue, agent: &ureq::Agent, target: &Target, (base, max): (Duration, Duration)) {
    let label = [target.kind.label()];
    let m = queue.metrics().clone();
    // consecutive failures of the notification at the head of this target's queue
    let mut failures: u32 = 0;
    let mut head = String::new();
    while !queue.stopped() {
        let Some(n) = queue.next_for(&target.name, IDLE_WAIT) else {
            continue;
        };
        if n.id != head {
            head.clone_from(&n.id);
            failures = 0;
        }
        if failures > 0 {
            m.retried.with_label_values(&label).inc();
        }
        match attempt(agent, target, &n) {
            Ok(()) => {
                m.sent.with_label_values(&label).inc();
                tracing::info!(target = %target.name, id = %n.id, attempts = failures + 1, "Notification delivered.");
                if let Err(e) = queue.done(&n.id, &target.name) {
                    // it will be sent again (receivers drop it by its key); wait for the disk
                    tracing::error!(error = %e, id = %n.id, "Could not mark a notification delivered.");
                    queue.sleep(max);
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                m.failed.with_label_values(&label).inc();
                let wait = backoff(failures, base, max, jitter());
                tracing::warn!(target = %target.name, id = %n.id, failures, %error, wait_ms = wait.as_millis() as u64, "Notification delivery failed; retrying.");
                queue.sleep(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        // jitter 1.0 (clamped to the top of its range) gives the full wait
        assert_eq!(backoff(1, BASE, MAX, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, BASE, MAX, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(5, BASE, MAX, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(8, BASE, MAX, 1.0), MAX);
        assert_eq!(backoff(u32::MAX, BASE, MAX, 1.0), MAX);
    }

    #[test]
    fn jitter_takes_at_most_half_the_wait_away() {
        assert_eq!(backoff(3, BASE, MAX, 0.0), Duration::from_secs(1));
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
        let w = backoff(3, BASE, MAX, j);
        assert!(
            w >= Duration::from_secs(1) && w <= Duration::from_secs(2),
            "{w:?}"
        );
    }
}
