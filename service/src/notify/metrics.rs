//! `lpm_notifications_*`: delivery outcomes per target kind (`webhook`, `slack`, `telegram`:
//! bounded, never a URL or an id).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::register;

/// The notification instruments.
#[derive(Clone)]
pub struct NotifyMetrics {
    /// `lpm_notifications_sent_total{target}`: deliveries a target answered 2xx.
    pub sent: IntCounterVec,
    /// `lpm_notifications_failed_total{target}`: attempts that failed (error, timeout, non-2xx).
    pub failed: IntCounterVec,
    /// `lpm_notifications_retried_total{target}`: attempts after a failed one.
    pub retried: IntCounterVec,
    /// `lpm_notifications_pending{target}`: notifications in the outbox not yet delivered.
    pub pending: IntGaugeVec,
}

impl NotifyMetrics {
    /// Creates the instruments and registers them in `r`.
    pub fn new(r: &Registry) -> Result<NotifyMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str| {
            register(r, IntCounterVec::new(Opts::new(name, help), &["target"])?)
        };
        Ok(NotifyMetrics {
            sent: counter(
                "lpm_notifications_sent_total",
                "Notifications a target answered 2xx.",
            )?,
            failed: counter(
                "lpm_notifications_failed_total",
                "Notification delivery attempts that failed (error, timeout or non-2xx).",
            )?,
            retried: counter(
                "lpm_notifications_retried_total",
                "Notification delivery attempts after a failed one.",
            )?,
            pending: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lpm_notifications_pending",
                        "Notifications in the outbox not yet delivered, per target.",
                    ),
                    &["target"],
                )?,
            )?,
        })
    }
}
