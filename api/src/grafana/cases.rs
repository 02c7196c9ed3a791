//! The sensitive open cases: where they come from ([`CaseSource`]) and what a row holds.

use lpm_engine::model::{EpochMs, Priority, Status};
use lpm_engine::views::{AgeBand, Gender};

use crate::error::ApiError;

/// An open case that needs care: its person is a minor (`0 <= age < 18`) or its priority is
/// `high` or `critical`, and its status is `open` or `in_progress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensitiveCase {
    /// `case_cases.id`.
    pub case_id: i64,
    /// When the case was opened (UTC epoch ms).
    pub opened_at: EpochMs,
    /// Current status.
    pub status: Status,
    /// Current priority.
    pub priority: Priority,
    /// The person's age, as recorded (garbage ages included).
    pub age: Option<i64>,
    /// The person's normalised gender.
    pub gender: Gender,
    /// Personal data: the person's name (only for callers who see personal data).
    pub full_name: String,
    /// Personal data: where the person was last seen.
    pub last_seen_place: String,
    /// The responsible contact's name, if assigned (staff, not personal data of the person).
    pub responsible: Option<String>,
}

impl SensitiveCase {
    /// Whether the case belongs in the table (the API re-checks what a source returns).
    pub fn is_sensitive(&self) -> bool {
        lpm_engine::dataflow::cases::is_sensitive(&self.status, &self.priority, self.age)
    }

    /// The age band.
    pub fn age_band(&self) -> AgeBand {
        AgeBand::of(self.age)
    }

    /// Labels in dimension order: gender, age band, status, priority.
    pub fn labels(&self) -> [&str; 4] {
        [
            self.gender.label(),
            self.age_band().label(),
            self.status.as_str(),
            self.priority.as_str(),
        ]
    }
}

/// Where the sensitive open cases come from (the engine's case read model, wired by the app).
pub trait CaseSource: Send + Sync {
    /// Every sensitive open case at the last complete tick, in any order.
    fn sensitive_open(&self) -> Result<Vec<SensitiveCase>, ApiError>;
}

/// A fixed list of cases (tests, demos, and a stand-in until the engine is wired).
#[derive(Clone, Debug, Default)]
pub struct StaticCases(pub Vec<SensitiveCase>);

impl CaseSource for StaticCases {
    fn sensitive_open(&self) -> Result<Vec<SensitiveCase>, ApiError> {
        Ok(self.0.clone())
    }
}

/// The display order: critical, high, then others; older cases first; then by id.
pub fn sort_cases(cases: &mut [SensitiveCase]) {
    let rank = |p: &Priority| match p {
        Priority::Critical => 0,
        Priority::High => 1,
        Priority::Medium => 2,
        Priority::Low => 3,
        Priority::Other(_) => 4,
    };
    cases.sort_by(|a, b| {
        (rank(&a.priority), a.opened_at, a.case_id).cmp(&(
            rank(&b.priority),
            b.opened_at,
            b.case_id,
        ))
    });
}
