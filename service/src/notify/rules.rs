//! Which committed writes and which case states produce a notification. Pure: no I/O, no clock
//! (the caller passes `now`), so every rule is unit-tested here.
//!
//! - **case filed**: a new report whose case is `critical` or whose person is a minor;
//! - **sighting reported**: any sighting added to a case (from responders or the public page);
//! - **case unassigned**: an open case without a responsible `unassigned_after` after it was
//!   opened, once per episode (an episode ends when the case is assigned or closed).
//!
//! Privacy: a [`Candidate`] is taken from the command *before* the write and keeps only the
//! person's name and age; a reporter's or witness's contact never reaches a notification.

use std::collections::HashMap;
use std::time::Duration;

use lpm_engine::dims::is_minor;
use lpm_engine::model::{EpochMs, Key, Priority, Row};
use lpm_engine::CaseRecord;

use super::notification::{case_link, Kind, Notification};
use crate::sor::ledger::Command;
use crate::sor::Committed;

/// Which rules run (`--notify-rules`, `--notify-unassigned-after`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    /// A critical case or a minor's case filed.
    pub case_filed: bool,
    /// A sighting reported.
    pub sighting_reported: bool,
    /// An open case without a responsible this long after it opened; `None` turns it off.
    pub unassigned_after: Option<Duration>,
}

/// Thirty minutes: long enough for a dispatcher to assign during a busy shift, short enough
/// that a forgotten case is noticed the same hour.
pub const DEFAULT_UNASSIGNED_AFTER: Duration = Duration::from_secs(30 * 60);

impl Default for RuleConfig {
    fn default() -> RuleConfig {
        RuleConfig {
            case_filed: true,
            sighting_reported: true,
            unassigned_after: Some(DEFAULT_UNASSIGNED_AFTER),
        }
    }
}

/// What a write may notify about, taken from its command before it runs (the command moves
/// into the system of record): only the fields a notification may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// A new report: the person's name and age (the case row comes from the commit).
    Report {
        /// Full name.
        person_name: String,
        /// Age, if known.
        age: Option<i64>,
    },
    /// A new sighting.
    Sighting,
    /// Nothing any rule looks at.
    Nothing,
}

impl Candidate {
    /// The candidate of `cmd`.
    pub fn of(cmd: &Command) -> Candidate {
        match cmd {
            Command::CreateReport(r) => Candidate::Report {
                person_name: r.full_name.clone(),
                age: r.age,
            },
            Command::AddSighting { .. } => Candidate::Sighting,
            _ => Candidate::Nothing,
        }
    }
}

/// The notification a committed write produces under `rules`, if any.
pub fn on_write(
    rules: &RuleConfig,
    candidate: &Candidate,
    committed: &Committed,
    base_url: &str,
    now: EpochMs,
) -> Option<Notification> {
    match candidate {
        Candidate::Report { person_name, age } if rules.case_filed => {
            let Some(Row::Case(case)) = &committed.row else {
                return None;
            };
            if case.priority != Priority::Critical && !is_minor(*age) {
                return None;
            }
            Some(Notification {
                id: format!("{}:{}", Kind::CaseFiled.as_str(), case.id),
                kind: Kind::CaseFiled,
                case_id: case.id,
                priority: Some(case.priority.as_str().to_string()),
                status: Some(case.status.as_str().to_string()),
                person_name: Some(person_name.clone()),
                age: *age,
                link: case_link(base_url, case.id),
                at_ms: now,
            })
        }
        Candidate::Sighting if rules.sighting_reported => Some(Notification {
            id: format!("{}:{}", Kind::SightingReported.as_str(), committed.id),
            kind: Kind::SightingReported,
            case_id: committed.case_id,
            priority: None,
            status: None,
            person_name: None,
            age: None,
            link: case_link(base_url, committed.case_id),
            at_ms: now,
        }),
        _ => None,
    }
}

/// The "left unassigned" rule's memory: which cases were notified in their current episode
/// (case id -> the notification's id). Seeded from the outbox at start, so a restart does not
/// notify an episode twice.
#[derive(Debug, Default)]
pub struct Unassigned {
    notified: HashMap<Key, String>,
}

impl Unassigned {
    /// Remembers that `n` was made (a `CaseUnassigned` read back from the outbox).
    pub fn seed(&mut self, n: &Notification) {
        if n.kind == Kind::CaseUnassigned {
            self.notified.insert(n.case_id, n.id.clone());
        }
    }

    /// Checks every case in `cases` (all of them: a case missing from the list has ended its
    /// episode) at `now`; cases open and unassigned for `after` since they opened, and not yet
    /// notified in this episode, produce a notification.
    pub fn check(
        &mut self,
        cases: &[CaseRecord],
        after: Duration,
        base_url: &str,
        now: EpochMs,
    ) -> Vec<Notification> {
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let waiting: HashMap<Key, &CaseRecord> = cases
            .iter()
            .filter(|r| r.case.status.is_open() && r.case.responsible_id.is_none())
            .map(|r| (r.case.id, r))
            .collect();
        // an episode ends when the case is assigned or closed
        self.notified.retain(|id, _| waiting.contains_key(id));
        let mut out = Vec::new();
        let mut due: Vec<&CaseRecord> = waiting
            .values()
            .filter(|r| now.saturating_sub(r.case.opened_at) >= after_ms)
            .filter(|r| !self.notified.contains_key(&r.case.id))
            .copied()
            .collect();
        due.sort_by_key(|r| r.case.id);
        for r in due {
            let case = &r.case;
            let n = Notification {
                id: format!(
                    "{}:{}:{}",
                    Kind::CaseUnassigned.as_str(),
                    case.id,
                    case.version
                ),
                kind: Kind::CaseUnassigned,
                case_id: case.id,
                priority: Some(case.priority.as_str().to_string()),
                status: Some(case.status.as_str().to_string()),
                person_name: r.person.as_ref().map(|p| p.full_name.clone()),
                age: r.age(),
                link: case_link(base_url, case.id),
                at_ms: now,
            };
            self.notified.insert(case.id, n.id.clone());
            out.push(n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lpm_engine::model::{Case, Person, Sighting, SightingSource, Status};

    use super::*;
    use crate::sor::Visibility;

    const BASE: &str = "https://lpm.example.org";

    fn case(id: Key, priority: Priority, responsible: Option<Key>) -> Case {
        Case {
            id,
            person_id: id,
            status: Status::Open,
            priority,
            responsible_id: responsible,
            opened_at: 1_000,
            closed_at: None,
            version: 1,
            public: false,
            public_id: None,
        }
    }

    fn committed(id: Key, case_id: Key, row: Option<Row>) -> Committed {
        Committed {
            id,
            case_id,
            version: Some(1),
            seq: 1,
            tick: 1,
            row,
            visibility: Visibility::AtTick,
        }
    }

    fn report(age: Option<i64>) -> Candidate {
        Candidate::Report {
            person_name: "Ana Pérez".into(),
            age,
        }
    }

    fn filed(priority: Priority, age: Option<i64>) -> Option<Notification> {
        let c = committed(7, 7, Some(Row::Case(Arc::new(case(7, priority, None)))));
        on_write(&RuleConfig::default(), &report(age), &c, BASE, 5)
    }

    #[test]
    fn a_critical_case_filed_notifies_with_the_poster_fields_only() {
        let n = filed(Priority::Critical, Some(40)).expect("a critical case notifies");
        assert_eq!(n.id, "case_filed:7");
        assert_eq!(n.kind, Kind::CaseFiled);
        assert_eq!(n.priority.as_deref(), Some("critical"));
        assert_eq!(n.status.as_deref(), Some("open"));
        assert_eq!(n.person_name.as_deref(), Some("Ana Pérez"));
        assert_eq!(n.age, Some(40));
        assert_eq!(n.link, "https://lpm.example.org/#/cases/7");
    }

    #[test]
    fn a_minor_case_filed_notifies_and_an_ordinary_one_does_not() {
        assert!(filed(Priority::Low, Some(12)).is_some());
        assert!(filed(Priority::High, Some(30)).is_none());
        assert!(filed(Priority::Medium, None).is_none());
    }

    #[test]
    fn rules_turned_off_produce_nothing() {
        let off = RuleConfig {
            case_filed: false,
            sighting_reported: false,
            unassigned_after: None,
        };
        let c = committed(
            7,
            7,
            Some(Row::Case(Arc::new(case(7, Priority::Critical, None)))),
        );
        assert!(on_write(&off, &report(None), &c, BASE, 5).is_none());
        assert!(on_write(&off, &Candidate::Sighting, &committed(3, 7, None), BASE, 5).is_none());
    }

    #[test]
    fn a_sighting_notifies_under_the_sighting_id_and_carries_no_witness_contact() {
        let sighting = Sighting {
            id: 3,
            case_id: 7,
            place: "Parque El Ejido".into(),
            reporter_name: Some("Walter Witness".into()),
            reporter_phone: Some("+593 99 123 4567".into()),
            source: SightingSource::Public,
            ..Sighting::default()
        };
        let c = committed(3, 7, Some(Row::Sighting(Arc::new(sighting))));
        let n = on_write(&RuleConfig::default(), &Candidate::Sighting, &c, BASE, 5)
            .expect("a sighting notifies");
        assert_eq!(n.id, "sighting_reported:3");
        assert_eq!(n.case_id, 7);
        let json = serde_json::to_string(&n).expect("serialises");
        assert!(!json.contains("Walter"), "{json}");
        assert!(!json.contains("123 4567"), "{json}");
        assert!(!json.contains("Ejido"), "{json}");
    }

    #[test]
    fn the_candidate_of_a_report_keeps_no_reporter_contact() {
        let cmd = Command::CreateReport(Box::new(crate::sor::ledger::NewReport {
            full_name: "Ana Pérez".into(),
            age: Some(9),
            gender: "female".into(),
            last_seen_at: 0,
            last_seen_place: "Quito".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: Some("Rita Reporter".into()),
            reporter_phone: Some("+593 98 765 4321".into()),
            priority: Priority::Low,
            responsible_id: None,
            first_action: None,
            reported_at: None,
        }));
        let cand = Candidate::of(&cmd);
        assert_eq!(cand, report(Some(9)));
        assert!(!format!("{cand:?}").contains("Rita"));
    }

    fn record(c: Case, name: &str, age: Option<i64>) -> CaseRecord {
        CaseRecord {
            person: Some(Arc::new(Person {
                id: c.person_id,
                full_name: name.into(),
                age,
                gender: "female".into(),
                last_seen_at: 0,
                reported_at: 0,
                last_seen_place: "Quito".into(),
                latitude: None,
                longitude: None,
                description: None,
                reporter_name: Some("Rita Reporter".into()),
                reporter_phone: Some("+593 98 765 4321".into()),
                version: 1,
            })),
            case: Arc::new(c),
            responsible: None,
        }
    }

    const AFTER: Duration = Duration::from_secs(60);

    #[test]
    fn an_unassigned_case_notifies_once_per_episode() {
        let mut u = Unassigned::default();
        let open = vec![record(case(1, Priority::High, None), "Ana", Some(9))];
        // opened at 1 000 ms: not yet due at 60 999, due at 61 000
        assert!(u.check(&open, AFTER, BASE, 60_999).is_empty());
        let n = u.check(&open, AFTER, BASE, 61_000);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].id, "case_unassigned:1:1");
        assert_eq!(n[0].person_name.as_deref(), Some("Ana"));
        assert!(!serde_json::to_string(&n[0]).expect("json").contains("Rita"));
        // the same episode: nothing more, even after a version change
        let mut bumped = case(1, Priority::Critical, None);
        bumped.version = 2;
        assert!(u
            .check(
                &[record(bumped.clone(), "Ana", Some(9))],
                AFTER,
                BASE,
                90_000
            )
            .is_empty());
        // assigned ends the episode; unassigned again starts a new one
        let mut assigned = bumped.clone();
        assigned.responsible_id = Some(4);
        assert!(u
            .check(&[record(assigned, "Ana", Some(9))], AFTER, BASE, 91_000)
            .is_empty());
        bumped.version = 4;
        let again = u.check(&[record(bumped, "Ana", Some(9))], AFTER, BASE, 92_000);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, "case_unassigned:1:4");
    }

    #[test]
    fn closed_and_assigned_cases_never_notify_as_unassigned() {
        let mut u = Unassigned::default();
        let mut closed = case(1, Priority::High, None);
        closed.status = Status::Closed;
        let assigned = case(2, Priority::High, Some(4));
        let cases = [record(closed, "A", None), record(assigned, "B", None)];
        assert!(u.check(&cases, AFTER, BASE, 1_000_000).is_empty());
    }

    #[test]
    fn a_seeded_episode_is_not_notified_again_after_a_restart() {
        let mut first = Unassigned::default();
        let open = vec![record(case(1, Priority::High, None), "Ana", None)];
        let made = first.check(&open, AFTER, BASE, 100_000);
        let mut restarted = Unassigned::default();
        restarted.seed(&made[0]);
        assert!(restarted.check(&open, AFTER, BASE, 200_000).is_empty());
    }
}
