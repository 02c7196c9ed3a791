//! `Notification`: what a rule produced, as stored in the outbox and rendered for a target.
//!
//! It holds only what a published case's poster may show (the case, its priority and status,
//! the person's name and age) and a link for responders: never a reporter's or sighting
//! witness's name or phone. The rules build it field by field, so nothing else can slip in.

use lpm_engine::model::{EpochMs, Key};
use serde::{Deserialize, Serialize};

/// Which rule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A critical case, or a case of a minor, was filed.
    CaseFiled,
    /// A sighting was reported on a case.
    SightingReported,
    /// An open case had no responsible for the configured time.
    CaseUnassigned,
}

impl Kind {
    /// The name in payloads and in the idempotency key.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CaseFiled => "case_filed",
            Kind::SightingReported => "sighting_reported",
            Kind::CaseUnassigned => "case_unassigned",
        }
    }
}

/// One notification. `id` is stable (derived from the write or the episode that caused it, never
/// from the time it was made), so a re-send after a crash carries the same idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The idempotency key: `case_filed:{case}`, `sighting_reported:{sighting}`,
    /// `case_unassigned:{case}:{version}`.
    pub id: String,
    /// Which rule fired.
    pub kind: Kind,
    /// The case.
    pub case_id: Key,
    /// The case's priority, when the write showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The case's status, when the write showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The person's name, when the write showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_name: Option<String>,
    /// The person's age, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<i64>,
    /// The case in the web UI.
    pub link: String,
    /// When the rule fired (UTC epoch ms).
    pub at_ms: EpochMs,
}

/// The case's page in the web UI under `base` (the `--public-base-url`).
pub fn case_link(base: &str, case_id: Key) -> String {
    format!("{}/#/cases/{case_id}", base.trim_end_matches('/'))
}
