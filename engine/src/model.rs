//! Typed rows of the six source tables (`schema.sql`) and the small enums the views key on.
//!
//! Rows are immutable once decoded and travel through the dataflow behind an [`Arc`], so the
//! upsert state, the join arrangements and the case read model share one allocation per row
//! version instead of cloning strings at every operator.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Primary-key value. Every table of the schema has a `BIGINT id` key.
pub type Key = i64;

/// An instant as UTC epoch milliseconds (MySQL `TIMESTAMP`, Debezium `ZonedTimestamp`).
pub type EpochMs = i64;

/// A local wall-clock time as milliseconds since 1970-01-01T00:00 *read as if it were UTC*
/// (MySQL `DATETIME`, Debezium `io.debezium.time.Timestamp`). It is not an instant.
pub type WallClockMs = i64;

/// The six source tables, in the alphabetical order Debezium snapshots them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    /// `case_actions`
    CaseActions,
    /// `case_cases`
    CaseCases,
    /// `case_responsible_history`
    CaseResponsibleHistory,
    /// `case_sightings`
    CaseSightings,
    /// `persons_lost`
    PersonsLost,
    /// `responsible_contacts`
    ResponsibleContacts,
}

impl Table {
    /// How many tables there are: the length of every per-table array.
    pub const COUNT: usize = 6;

    /// Every table, in snapshot order.
    pub const ALL: [Table; Table::COUNT] = [
        Table::CaseActions,
        Table::CaseCases,
        Table::CaseResponsibleHistory,
        Table::CaseSightings,
        Table::PersonsLost,
        Table::ResponsibleContacts,
    ];

    /// The MySQL table name (the last segment of the Debezium topic).
    pub fn name(self) -> &'static str {
        match self {
            Table::CaseActions => "case_actions",
            Table::CaseCases => "case_cases",
            Table::CaseResponsibleHistory => "case_responsible_history",
            Table::CaseSightings => "case_sightings",
            Table::PersonsLost => "persons_lost",
            Table::ResponsibleContacts => "responsible_contacts",
        }
    }

    /// Parses a MySQL table name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the aggregate views count this table. `case_sightings` is decoded, stored and
    /// shown in case details, but no view (not even `row_counts`) reads it: the oracle and the
    /// views' contract predate it, and a sighting must not change any figure they agree on.
    pub fn in_views(self) -> bool {
        self != Table::CaseSightings
    }

    /// A dense index 0..[`Table::COUNT`], for per-table arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An exact decimal: `unscaled * 10^-scale`. Never aggregated through `f64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Decimal {
    /// The unscaled integer value.
    pub unscaled: i128,
    /// Digits after the decimal point.
    pub scale: u32,
}

impl Decimal {
    /// Rescales to `scale` digits if that loses nothing; `None` if it would round.
    pub fn rescale(self, scale: u32) -> Option<Decimal> {
        if scale >= self.scale {
            let f = 10i128.checked_pow(scale - self.scale)?;
            Some(Decimal {
                unscaled: self.unscaled.checked_mul(f)?,
                scale,
            })
        } else {
            let f = 10i128.checked_pow(self.scale - scale)?;
            (self.unscaled % f == 0).then_some(Decimal {
                unscaled: self.unscaled / f,
                scale,
            })
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.unscaled < 0;
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let (int, frac) = if digits.len() > scale {
            digits.split_at(digits.len() - scale)
        } else {
            ("0", digits.as_str())
        };
        let sign = if neg { "-" } else { "" };
        if scale == 0 {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{frac:0>scale$}")
        }
    }
}

/// Case status. The five known values are interned; anything else is kept verbatim so the
/// `cases_by_status` view can show it as its own key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// `open`
    Open,
    /// `in_progress`
    InProgress,
    /// `found_alive`
    FoundAlive,
    /// `found_deceased`
    FoundDeceased,
    /// `closed`
    Closed,
    /// Any other text.
    Other(Box<str>),
}

impl Status {
    /// The five known statuses, in display order.
    pub const KNOWN: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::FoundAlive,
        Status::FoundDeceased,
        Status::Closed,
    ];

    /// Interns a status text.
    pub fn parse(s: &str) -> Status {
        match s {
            "open" => Status::Open,
            "in_progress" => Status::InProgress,
            "found_alive" => Status::FoundAlive,
            "found_deceased" => Status::FoundDeceased,
            "closed" => Status::Closed,
            other => Status::Other(other.into()),
        }
    }

    /// The text as stored in MySQL.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::FoundAlive => "found_alive",
            Status::FoundDeceased => "found_deceased",
            Status::Closed => "closed",
            Status::Other(s) => s,
        }
    }

    /// `open` or `in_progress`: the case still needs work.
    pub fn is_open(&self) -> bool {
        matches!(self, Status::Open | Status::InProgress)
    }

    /// `found_alive`, `found_deceased` or `closed`.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            Status::FoundAlive | Status::FoundDeceased | Status::Closed
        )
    }
}

/// Case priority, interned like [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
    /// Any other text.
    Other(Box<str>),
}

impl Priority {
    /// The four known priorities, in display order.
    pub const KNOWN: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Critical,
    ];

    /// Interns a priority text.
    pub fn parse(s: &str) -> Priority {
        match s {
            "low" => Priority::Low,
            "medium" => Priority::Medium,
            "high" => Priority::High,
            "critical" => Priority::Critical,
            other => Priority::Other(other.into()),
        }
    }

    /// `high` or `critical`: what the operational alerts and the sensitive-case rule call
    /// urgent.
    pub fn is_urgent(&self) -> bool {
        matches!(self, Priority::High | Priority::Critical)
    }

    /// The text as stored in MySQL.
    pub fn as_str(&self) -> &str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
            Priority::Other(s) => s,
        }
    }
}

/// `persons_lost`: one lost-person report. `Default` (id 0, empty text, no optional field,
/// version 0) lets a test or a fuzz target name only the fields it cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Primary key.
    pub id: Key,
    /// Full name.
    pub full_name: String,
    /// Age in years; `None` when unknown. Garbage values are kept (the views band them `unknown`).
    pub age: Option<i64>,
    /// Gender as written (the views normalise it).
    pub gender: String,
    /// When the person was last seen, local wall clock.
    pub last_seen_at: WallClockMs,
    /// When the report was filed (an instant).
    pub reported_at: EpochMs,
    /// Where the person was last seen.
    pub last_seen_place: String,
    /// Latitude, exact.
    pub latitude: Option<Decimal>,
    /// Longitude, exact.
    pub longitude: Option<Decimal>,
    /// Free-text description.
    pub description: Option<String>,
    /// Who filed the report.
    pub reporter_name: Option<String>,
    /// The reporter's phone.
    pub reporter_phone: Option<String>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// `case_cases`: the case a report opens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Case {
    /// Primary key.
    pub id: Key,
    /// `persons_lost.id` (the person may not exist).
    pub person_id: Key,
    /// Current status.
    pub status: Status,
    /// Current priority.
    pub priority: Priority,
    /// Current responsible, if assigned.
    pub responsible_id: Option<Key>,
    /// When the case was opened.
    pub opened_at: EpochMs,
    /// When the case left open/in_progress.
    pub closed_at: Option<EpochMs>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Published: the public case page and the poster are served (`case_cases.public`,
    /// migration 0003; absent from older dumps, which read as not published).
    pub public: bool,
    /// The unguessable id of the public page, kept once generated so an unpublished and
    /// republished case, or a reprinted poster, keeps its link.
    pub public_id: Option<String>,
}

/// `case_actions`: something a responder did on a case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Action {
    /// Primary key.
    pub id: Key,
    /// The case.
    pub case_id: Key,
    /// `note`, `search`, `call`, `sighting`, `status_change`, `assignment`, ...
    pub action_type: String,
    /// Free text.
    pub notes: Option<String>,
    /// Who acted.
    pub responsible_id: Option<Key>,
    /// Their name at the time (denormalised).
    pub responsible_name: Option<String>,
    /// When.
    pub created_at: EpochMs,
}

/// Who reported a sighting: a responder through the API, or the public through the case page.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SightingSource {
    /// `responder`
    Responder,
    /// `public`
    Public,
    /// Any other text (kept verbatim, like [`Status::Other`]).
    Other(Box<str>),
}

impl SightingSource {
    /// Interns a source text.
    pub fn parse(s: &str) -> SightingSource {
        match s {
            "responder" => SightingSource::Responder,
            "public" => SightingSource::Public,
            other => SightingSource::Other(other.into()),
        }
    }

    /// The text as stored in MySQL.
    pub fn as_str(&self) -> &str {
        match self {
            SightingSource::Responder => "responder",
            SightingSource::Public => "public",
            SightingSource::Other(s) => s,
        }
    }
}

/// `case_sightings`: someone saw the missing person of a case. `Default` (id 0, empty text,
/// source `responder`) lets tests name only the fields they care about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sighting {
    /// Primary key.
    pub id: Key,
    /// The case.
    pub case_id: Key,
    /// When the person was seen, local wall clock (like [`Person::last_seen_at`]).
    pub seen_at: WallClockMs,
    /// Where.
    pub place: String,
    /// Latitude, exact.
    pub latitude: Option<Decimal>,
    /// Longitude, exact.
    pub longitude: Option<Decimal>,
    /// Free text.
    pub description: Option<String>,
    /// Who reported it (never shown to readers).
    pub reporter_name: Option<String>,
    /// Their phone (never shown to readers).
    pub reporter_phone: Option<String>,
    /// `responder` or `public`.
    pub source: SightingSource,
    /// When it was recorded (an instant).
    pub created_at: EpochMs,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Default for Sighting {
    fn default() -> Sighting {
        Sighting {
            id: 0,
            case_id: 0,
            seen_at: 0,
            place: String::new(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: None,
            reporter_phone: None,
            source: SightingSource::Responder,
            created_at: 0,
            version: 0,
        }
    }
}

/// `case_responsible_history`: one assignment period of a case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Assignment {
    /// Primary key.
    pub id: Key,
    /// The case.
    pub case_id: Key,
    /// The responsible.
    pub responsible_id: Key,
    /// Start of the period.
    pub assigned_at: EpochMs,
    /// End of the period; `None` while current.
    pub unassigned_at: Option<EpochMs>,
}

/// `responsible_contacts`: an agent who can be assigned cases.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Responsible {
    /// Primary key.
    pub id: Key,
    /// Full name.
    pub full_name: String,
    /// Agency, e.g. `ECU 911`.
    pub agency: String,
    /// Phone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Whether the contact takes new cases (TINYINT(1)).
    pub active: bool,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One row of any table. Cheap to clone: the payload is shared.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Row {
    /// A `persons_lost` row.
    Person(Arc<Person>),
    /// A `case_cases` row.
    Case(Arc<Case>),
    /// A `case_actions` row.
    Action(Arc<Action>),
    /// A `case_responsible_history` row.
    Assignment(Arc<Assignment>),
    /// A `responsible_contacts` row.
    Responsible(Arc<Responsible>),
    /// A `case_sightings` row (last, so rows stored before it keep their variant index).
    Sighting(Arc<Sighting>),
}

impl Row {
    /// The table this row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Row::Person(_) => Table::PersonsLost,
            Row::Case(_) => Table::CaseCases,
            Row::Action(_) => Table::CaseActions,
            Row::Assignment(_) => Table::CaseResponsibleHistory,
            Row::Responsible(_) => Table::ResponsibleContacts,
            Row::Sighting(_) => Table::CaseSightings,
        }
    }

    /// The row's primary key.
    pub fn key(&self) -> Key {
        match self {
            Row::Person(r) => r.id,
            Row::Case(r) => r.id,
            Row::Action(r) => r.id,
            Row::Assignment(r) => r.id,
            Row::Responsible(r) => r.id,
            Row::Sighting(r) => r.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_display_and_rescale() {
        let d = Decimal {
            unscaled: -180653,
            scale: 6,
        };
        assert_eq!(d.to_string(), "-0.180653");
        assert_eq!(
            Decimal {
                unscaled: 5,
                scale: 3
            }
            .to_string(),
            "0.005"
        );
        assert_eq!(
            Decimal {
                unscaled: 346,
                scale: 0
            }
            .to_string(),
            "346"
        );
        assert_eq!(
            Decimal {
                unscaled: 516,
                scale: 6
            }
            .rescale(8),
            Some(Decimal {
                unscaled: 51600,
                scale: 8
            })
        );
        assert_eq!(
            Decimal {
                unscaled: 51600,
                scale: 8
            }
            .rescale(6),
            Some(Decimal {
                unscaled: 516,
                scale: 6
            })
        );
        assert_eq!(
            Decimal {
                unscaled: 51601,
                scale: 8
            }
            .rescale(6),
            None
        );
    }

    #[test]
    fn status_round_trips() {
        for s in Status::KNOWN {
            assert_eq!(Status::parse(s.as_str()), s);
        }
        assert_eq!(Status::parse("weird").as_str(), "weird");
        assert!(
            Status::InProgress.is_open() && !Status::Closed.is_open() && Status::Closed.is_closed()
        );
    }
}
