//! `NotifyConfig`: where notifications go and when they are retried (`lpm serve
//! --notify-*`, docs/configuration.md).

use std::time::Duration;

use super::rules::RuleConfig;

/// The payload shape a target takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// Our own JSON: every field of the notification plus `text`.
    Webhook,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// The Telegram Bot API `sendMessage`: `{"chat_id": ..., "text": ...}`.
    Telegram {
        /// The chat to post to.
        chat_id: String,
    },
}

impl TargetKind {
    /// The `target` label of the metrics (bounded: one per kind).
    pub fn label(&self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
            TargetKind::Telegram { .. } => "telegram",
        }
    }
}

/// One place notifications are delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its name in the outbox's delivered-markers: `webhook-1`, `webhook-2`, `slack`,
    /// `telegram`. Positional, not derived from the URL, so changing a URL (a rotated Slack
    /// hook) sends what was pending to the new one.
    pub name: String,
    /// The payload shape.
    pub kind: TargetKind,
    /// Where to POST (configuration, so tests point it at a local receiver).
    pub url: String,
}

/// Notifications: off when `targets` is empty.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// Where to deliver.
    pub targets: Vec<Target>,
    /// Which rules run.
    pub rules: RuleConfig,
    /// The first retry waits about this long; each further one doubles it.
    pub backoff_base: Duration,
    /// No retry waits longer than this.
    pub backoff_max: Duration,
    /// One delivery attempt (connect, send, answer) gives up after this long.
    pub timeout: Duration,
    /// The base of the case links (`--public-base-url`); empty: the server's bound address.
    pub base_url: String,
}

/// Half a second: a receiver that dropped one request is usually back at once.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Five minutes: a receiver down for hours is still tried a dozen times an hour.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Ten seconds: Slack and Telegram answer in well under one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            targets: Vec::new(),
            rules: RuleConfig::default(),
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            timeout: DEFAULT_TIMEOUT,
            base_url: String::new(),
        }
    }
}

impl NotifyConfig {
    /// Whether any target is configured.
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }
}
