//! Notifications (issue 18): rules turn committed writes and case states into notifications,
//! which are written durably to an outbox before delivery and delivered at least once to the
//! configured webhooks (generic JSON, Slack, Telegram) with retries, backoff and an
//! idempotency key.
//!
//! ```text
//! write committed ─ rules::on_write ─┐
//!                                    ├─ queue (outbox: append + fsync) ─ deliver (thread per target)
//! engine cases ─ rules::Unassigned ──┘        ▲ delivered-marker after 2xx ──┘  POST, Idempotency-Key
//! ```
//!
//! | file | owns |
//! |---|---|
//! | `notification` | the `Notification` (its fields are all a receiver sees) |
//! | `rules` | which writes and case states notify (pure) |
//! | `config` | targets, rules, backoff |
//! | `format` | the body per target kind |
//! | `outbox` | the durable file: adds, delivered-markers, torn-line recovery |
//! | `queue` | the outbox under a lock, the delivery wake-up, the pending gauge |
//! | `deliver` | the per-target thread: POST, backoff with jitter, markers |
//! | `metrics` | `lpm_notifications_*` |
//! | `notifier` | starting and stopping it all; the unassigned check |

pub mod config;
pub mod deliver;
pub mod format;
pub mod metrics;
pub mod notification;
pub mod notifier;
pub mod outbox;
pub mod queue;
pub mod rules;

pub use config::{NotifyConfig, Target, TargetKind};
pub use notification::{Kind, Notification};
pub use notifier::{Notifier, NotifyError};
pub use rules::{Candidate, RuleConfig};
