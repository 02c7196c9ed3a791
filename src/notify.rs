//! `lpm serve --notify-*` flags: notifications to webhooks, Slack and Telegram
//! (docs/configuration.md, docs/runbook.md "Notifications").

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use lpm_service::notify::{NotifyConfig, RuleConfig, Target, TargetKind};

/// The rule names `--notify-rules` takes.
const RULES: [&str; 3] = ["case_filed", "sighting_reported", "case_unassigned"];

/// Notification options of `lpm serve`; notifications are off unless a target is given.
#[derive(Args, Clone, Debug)]
pub struct NotifyOptions {
    /// POST each notification as JSON (id, kind, case_id, priority, status, person, link, text)
    /// to this URL, with its id as `Idempotency-Key`; repeat it or separate URLs with commas.
    #[arg(long, env = "LPM_NOTIFY_WEBHOOK", value_delimiter = ',')]
    notify_webhook: Vec<String>,
    /// Post each notification to this Slack incoming webhook (`{"text": ...}`).
    #[arg(long, env = "LPM_NOTIFY_SLACK_URL")]
    notify_slack_url: Option<String>,
    /// Post each notification to this Telegram Bot API `sendMessage` URL
    /// (`https://api.telegram.org/bot<token>/sendMessage`); needs --notify-telegram-chat-id.
    #[arg(long, env = "LPM_NOTIFY_TELEGRAM_URL")]
    notify_telegram_url: Option<String>,
    /// The Telegram chat the messages go to (a group's id is negative: `-100...`).
    #[arg(long, env = "LPM_NOTIFY_TELEGRAM_CHAT_ID", allow_hyphen_values = true)]
    notify_telegram_chat_id: Option<String>,
    /// Which rules notify, comma-separated: `case_filed` (a critical case or a minor's case
    /// filed), `sighting_reported`, `case_unassigned` (see --notify-unassigned-after-s).
    #[arg(
        long,
        env = "LPM_NOTIFY_RULES",
        value_delimiter = ',',
        default_value = "case_filed,sighting_reported,case_unassigned"
    )]
    notify_rules: Vec<String>,
    /// Notify once when an open case has had no responsible for this many seconds since it
    /// opened.
    #[arg(long, env = "LPM_NOTIFY_UNASSIGNED_AFTER_S", default_value_t = 1800)]
    notify_unassigned_after_s: u64,
    /// The longest wait between two delivery attempts of a failing notification, in seconds
    /// (waits start at half a second and double).
    #[arg(long, env = "LPM_NOTIFY_BACKOFF_MAX_S", default_value_t = 300)]
    notify_backoff_max_s: u64,
    /// One delivery attempt gives up after this many ms.
    #[arg(long, env = "LPM_NOTIFY_TIMEOUT_MS", default_value_t = 10_000)]
    notify_timeout_ms: u64,
}

/// `http://` or `https://` and something after it.
fn check_url(flag: &str, url: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() => Ok(url.to_string()),
        _ => bail!("{flag}: expected a URL starting with http:// or https://, got {url:?}"),
    }
}

impl NotifyOptions {
    /// The notification configuration (no targets: off).
    pub fn config(&self) -> anyhow::Result<NotifyConfig> {
        let mut targets = Vec::new();
        let webhooks: Vec<&String> = self
            .notify_webhook
            .iter()
            .filter(|u| !u.trim().is_empty())
            .collect();
        for (i, url) in webhooks.into_iter().enumerate() {
            targets.push(Target {
                name: format!("webhook-{}", i + 1),
                kind: TargetKind::Webhook,
                url: check_url("--notify-webhook", url)?,
            });
        }
        if let Some(url) = &self.notify_slack_url {
            targets.push(Target {
                name: "slack".into(),
                kind: TargetKind::Slack,
                url: check_url("--notify-slack-url", url)?,
            });
        }
        match (&self.notify_telegram_url, &self.notify_telegram_chat_id) {
            (Some(url), Some(chat_id)) if !chat_id.trim().is_empty() => targets.push(Target {
                name: "telegram".into(),
                kind: TargetKind::Telegram {
                    chat_id: chat_id.trim().to_string(),
                },
                url: check_url("--notify-telegram-url", url)?,
            }),
            (Some(_), _) => {
                bail!("--notify-telegram-url needs --notify-telegram-chat-id (the chat to post to)")
            }
            (None, Some(_)) => {
                bail!("--notify-telegram-chat-id needs --notify-telegram-url")
            }
            (None, None) => {}
        }
        let rules: Vec<&str> = self
            .notify_rules
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .collect();
        if let Some(bad) = rules.iter().find(|r| !RULES.contains(r)) {
            bail!("--notify-rules: unknown rule {bad:?}; expected some of {RULES:?}");
        }
        Ok(NotifyConfig {
            targets,
            rules: RuleConfig {
                case_filed: rules.contains(&"case_filed"),
                sighting_reported: rules.contains(&"sighting_reported"),
                unassigned_after: rules
                    .contains(&"case_unassigned")
                    .then(|| Duration::from_secs(self.notify_unassigned_after_s.max(1))),
            },
            backoff_max: Duration::from_secs(self.notify_backoff_max_s.max(1)),
            timeout: Duration::from_millis(self.notify_timeout_ms.max(100)),
            ..NotifyConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        notify: NotifyOptions,
    }

    fn config(args: &[&str]) -> anyhow::Result<NotifyConfig> {
        let mut argv = vec!["lpm"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.notify.config()
    }

    #[test]
    fn without_a_target_notifications_are_off() {
        let cfg = config(&[]).expect("parses");
        assert!(!cfg.enabled());
        assert_eq!(cfg.rules, RuleConfig::default());
        assert_eq!(cfg.backoff_max, Duration::from_secs(300));
    }

    #[test]
    fn every_target_is_named_by_its_position_and_kind() {
        let cfg = config(&[
            "--notify-webhook",
            "http://a.example/hook,https://b.example/hook",
            "--notify-slack-url",
            "https://hooks.slack.example/T/B/X",
            "--notify-telegram-url",
            "https://api.telegram.example/bot1/sendMessage",
            "--notify-telegram-chat-id",
            "-100200",
        ])
        .expect("parses");
        let names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["webhook-1", "webhook-2", "slack", "telegram"]);
        assert_eq!(cfg.targets[1].url, "https://b.example/hook");
        assert_eq!(
            cfg.targets[3].kind,
            TargetKind::Telegram {
                chat_id: "-100200".into()
            }
        );
    }

    #[test]
    fn telegram_needs_both_its_url_and_its_chat() {
        let e = config(&[
            "--notify-telegram-url",
            "https://t.example/bot1/sendMessage",
        ])
        .expect_err("no chat id");
        assert!(e.to_string().contains("--notify-telegram-chat-id"), "{e}");
        let e = config(&["--notify-telegram-chat-id", "5"]).expect_err("no url");
        assert!(e.to_string().contains("--notify-telegram-url"), "{e}");
    }

    #[test]
    fn a_url_without_a_scheme_or_an_unknown_rule_is_refused() {
        let e = config(&["--notify-webhook", "hooks.example"]).expect_err("no scheme");
        assert!(e.to_string().contains("--notify-webhook"), "{e}");
        let e = config(&["--notify-rules", "case_filed,case_closed"]).expect_err("unknown rule");
        assert!(e.to_string().contains("case_closed"), "{e}");
    }

    #[test]
    fn rules_left_out_are_off() {
        let cfg = config(&[
            "--notify-rules",
            "sighting_reported",
            "--notify-unassigned-after-s",
            "60",
        ])
        .expect("parses");
        assert_eq!(
            cfg.rules,
            RuleConfig {
                case_filed: false,
                sighting_reported: true,
                unassigned_after: None,
            }
        );
        let cfg = config(&["--notify-unassigned-after-s", "60"]).expect("parses");
        assert_eq!(cfg.rules.unassigned_after, Some(Duration::from_secs(60)));
    }
}
