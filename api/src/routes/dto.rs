//! Response bodies shared by the REST routes, and the rules that strip personal data for
//! read-only callers (names, phones, descriptions, free-text notes, exact coordinates; a
//! sighting's reporter, description and coordinates).

use std::sync::Arc;

use lpm_engine::model::{Action, Assignment, Case, Person, Responsible, Sighting};
use lpm_engine::read::CaseDetail;
use lpm_engine::views::{is_minor, AgeBand, Gender};
use lpm_engine::CaseRecord;
use lpm_service::sor::note::LedgerNote;
use serde::Serialize;
use utoipa::ToSchema;

use crate::times::{iso, wall_clock};

/// A person, in full.
#[derive(Serialize, ToSchema)]
pub struct PersonOut {
    /// Id.
    pub id: i64,
    /// Full name.
    pub full_name: String,
    /// Age in years.
    pub age: Option<i64>,
    /// Gender as written.
    pub gender: String,
    /// Last seen, local wall clock (no offset).
    pub last_seen_at: String,
    /// Reported at (UTC).
    pub reported_at: String,
    /// Place last seen.
    pub last_seen_place: String,
    /// Latitude, exact decimal text.
    pub latitude: Option<String>,
    /// Longitude, exact decimal text.
    pub longitude: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Reporter.
    pub reporter_name: Option<String>,
    /// Reporter phone.
    pub reporter_phone: Option<String>,
    /// Row version.
    pub version: i64,
}

impl From<&Person> for PersonOut {
    fn from(p: &Person) -> PersonOut {
        PersonOut {
            id: p.id,
            full_name: p.full_name.clone(),
            age: p.age,
            gender: p.gender.clone(),
            last_seen_at: wall_clock(p.last_seen_at),
            reported_at: iso(p.reported_at),
            last_seen_place: p.last_seen_place.clone(),
            latitude: p.latitude.map(|d| d.to_string()),
            longitude: p.longitude.map(|d| d.to_string()),
            description: p.description.clone(),
            reporter_name: p.reporter_name.clone(),
            reporter_phone: p.reporter_phone.clone(),
            version: p.version,
        }
    }
}

/// A responsible contact. Phone and email only for callers who see personal data.
#[derive(Serialize, ToSchema)]
pub struct ResponsibleOut {
    /// Id.
    pub id: i64,
    /// Name.
    pub full_name: String,
    /// Agency.
    pub agency: String,
    /// Phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether cases can be assigned to it.
    pub active: bool,
    /// Row version.
    pub version: i64,
}

impl ResponsibleOut {
    /// Renders `r`; contact details only when `personal`.
    pub fn new(r: &Responsible, personal: bool) -> ResponsibleOut {
        ResponsibleOut {
            id: r.id,
            full_name: r.full_name.clone(),
            agency: r.agency.clone(),
            phone: r.phone.clone().filter(|_| personal),
            email: r.email.clone().filter(|_| personal),
            active: r.active,
            version: r.version,
        }
    }
}

/// A case with its person and current responsible.
#[derive(Serialize, ToSchema)]
pub struct CaseOut {
    /// Case id.
    pub id: i64,
    /// Row version (send it back with changes).
    pub version: i64,
    /// `open`, `in_progress`, `found_alive`, `found_deceased`, `closed`.
    pub status: String,
    /// `low`, `medium`, `high`, `critical`.
    pub priority: String,
    /// Opened at (UTC).
    pub opened_at: String,
    /// Closed at (UTC).
    pub closed_at: Option<String>,
    /// No responsible assigned.
    pub unassigned: bool,
    /// The person is under 18.
    pub minor: bool,
    /// The person's age band (anonymised dimension).
    pub age_band: String,
    /// The person's gender, normalised (anonymised dimension).
    pub gender: String,
    /// The person id.
    pub person_id: i64,
    /// The person in full; absent for read-only callers or when the person row is missing.
    pub person: Option<PersonOut>,
    /// The current responsible.
    pub responsible: Option<ResponsibleOut>,
    /// Published: the public page and the poster are served.
    pub public: bool,
    /// The public page (`<--public-base-url>/public/cases/{public_id}`) while published; `null`
    /// otherwise and for read-only callers (the page shows the person's name).
    pub public_url: Option<String>,
    /// How many sightings the case has (public ones included), at the same tick: lists show
    /// which cases have news to triage.
    pub sightings: usize,
}

impl CaseOut {
    /// Renders a case record with its sighting count; `personal` decides whether the person
    /// (and the public URL) is included; `public_base` is `--public-base-url`.
    pub fn new(rec: &CaseRecord, sightings: usize, personal: bool, public_base: &str) -> CaseOut {
        let c: &Case = &rec.case;
        let age = rec.person.as_ref().and_then(|p| p.age);
        CaseOut {
            id: c.id,
            version: c.version,
            status: c.status.as_str().to_string(),
            priority: c.priority.as_str().to_string(),
            opened_at: iso(c.opened_at),
            closed_at: c.closed_at.map(iso),
            unassigned: c.responsible_id.is_none(),
            minor: is_minor(age),
            age_band: AgeBand::of(age).label().to_string(),
            gender: rec
                .person
                .as_ref()
                .map_or(Gender::Unknown, |p| Gender::normalise(&p.gender))
                .label()
                .to_string(),
            person_id: c.person_id,
            person: rec
                .person
                .as_deref()
                .filter(|_| personal)
                .map(PersonOut::from),
            responsible: rec
                .responsible
                .as_deref()
                .map(|r| ResponsibleOut::new(r, personal)),
            public: c.public,
            public_url: c
                .public_id
                .as_deref()
                .filter(|_| c.public && personal)
                .map(|id| crate::public::public_url(public_base, id)),
            sightings,
        }
    }
}

/// An action on a case. Notes are free text and may hold personal data: only for callers who
/// see it.
#[derive(Serialize, ToSchema)]
pub struct ActionOut {
    /// Id.
    pub id: i64,
    /// `note`, `search`, `call`, `sighting`, `status_change`, `assignment`.
    pub action_type: String,
    /// Notes as stored: free text, only for callers who see personal data.
    pub notes: Option<String>,
    /// The note lpm wrote itself on a `status_change` or `assignment` action, as data for
    /// clients to render in their language (`notes` holds its stored text); absent on a note a
    /// person typed. Shown to every caller: status codes and the responsible's name are not
    /// personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<NoteOut>,
    /// Who did it.
    pub responsible_id: Option<i64>,
    /// Their name at the time.
    pub responsible_name: Option<String>,
    /// When (UTC).
    pub created_at: String,
}

/// A note lpm wrote on its own action ([`LedgerNote`]).
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoteOut {
    /// The case's status changed.
    StatusChange {
        /// The old status code.
        from: String,
        /// The new status code.
        to: String,
    },
    /// The case was assigned.
    Assignment {
        /// The responsible's name at the time.
        responsible_name: String,
        /// `manual` (a person chose) or `auto` (auto-assignment chose, `--auto-assign`).
        mode: AssignMode,
    },
}

/// Who chose the responsible of an assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignMode {
    /// A person (the case's form or the assign route).
    Manual,
    /// Auto-assignment.
    Auto,
}

impl From<LedgerNote> for NoteOut {
    fn from(n: LedgerNote) -> NoteOut {
        match n {
            LedgerNote::StatusChange { from, to } => NoteOut::StatusChange { from, to },
            LedgerNote::Assignment {
                responsible_name,
                auto,
            } => NoteOut::Assignment {
                responsible_name,
                mode: if auto {
                    AssignMode::Auto
                } else {
                    AssignMode::Manual
                },
            },
        }
    }
}

impl ActionOut {
    fn new(a: &Action, personal: bool) -> ActionOut {
        ActionOut {
            id: a.id,
            action_type: a.action_type.clone(),
            note: LedgerNote::of(a).map(NoteOut::from),
            notes: a.notes.clone().filter(|_| personal),
            responsible_id: a.responsible_id,
            responsible_name: a.responsible_name.clone(),
            created_at: iso(a.created_at),
        }
    }
}

/// One row of a case's responsible history.
#[derive(Serialize, ToSchema)]
pub struct HistoryOut {
    /// Id.
    pub id: i64,
    /// The responsible.
    pub responsible_id: i64,
    /// Assigned at (UTC).
    pub assigned_at: String,
    /// Unassigned at (UTC); `null` while current.
    pub unassigned_at: Option<String>,
}

impl From<&Assignment> for HistoryOut {
    fn from(h: &Assignment) -> HistoryOut {
        HistoryOut {
            id: h.id,
            responsible_id: h.responsible_id,
            assigned_at: iso(h.assigned_at),
            unassigned_at: h.unassigned_at.map(iso),
        }
    }
}

/// A sighting of the case's person. Readers (no personal data) get when, where and from which
/// source only: the reporter's name and phone, the description and the exact coordinates are
/// left out (absent keys), as the person is left out of [`CaseOut`].
#[derive(Serialize, ToSchema)]
pub struct SightingOut {
    /// Id.
    pub id: i64,
    /// When the person was seen, local wall clock (no offset).
    pub seen_at: String,
    /// Where; only for callers who see personal data (like a person's last-seen place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Latitude, exact decimal text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<String>,
    /// Longitude, exact decimal text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<String>,
    /// What was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter_name: Option<String>,
    /// Their phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter_phone: Option<String>,
    /// `responder` or `public`.
    pub source: String,
    /// When it was recorded (UTC).
    pub created_at: String,
    /// Row version.
    pub version: i64,
}

impl SightingOut {
    /// Renders `s`; place, reporter, description and coordinates only when `personal`.
    pub fn new(s: &Sighting, personal: bool) -> SightingOut {
        let keep = |v: &Option<String>| v.clone().filter(|_| personal);
        SightingOut {
            id: s.id,
            seen_at: wall_clock(s.seen_at),
            place: Some(s.place.clone()).filter(|_| personal),
            latitude: s.latitude.filter(|_| personal).map(|d| d.to_string()),
            longitude: s.longitude.filter(|_| personal).map(|d| d.to_string()),
            description: keep(&s.description),
            reporter_name: keep(&s.reporter_name),
            reporter_phone: keep(&s.reporter_phone),
            source: s.source.as_str().to_string(),
            created_at: iso(s.created_at),
            version: s.version,
        }
    }
}

/// A case with its timeline, at one tick.
#[derive(Serialize, ToSchema)]
pub struct CaseDetailOut {
    /// The engine tick this read reflects.
    pub tick: u64,
    /// The case.
    pub case: CaseOut,
    /// Actions, oldest first.
    pub actions: Vec<ActionOut>,
    /// Responsible history, oldest first.
    pub history: Vec<HistoryOut>,
    /// Sightings, newest first (by `seen_at`).
    pub sightings: Vec<SightingOut>,
}

impl CaseDetailOut {
    /// Renders a detail read (`public_base`: see [`CaseOut::new`]).
    pub fn new(d: &CaseDetail, personal: bool, public_base: &str) -> CaseDetailOut {
        CaseDetailOut {
            tick: d.tick,
            case: CaseOut::new(&d.record, d.sightings.len(), personal, public_base),
            actions: d
                .actions
                .iter()
                .map(|a: &Arc<Action>| ActionOut::new(a, personal))
                .collect(),
            history: d.history.iter().map(|h| HistoryOut::from(&**h)).collect(),
            sightings: d
                .sightings
                .iter()
                .map(|s| SightingOut::new(s, personal))
                .collect(),
        }
    }
}
