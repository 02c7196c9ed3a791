//! The case report: person (every field), case, current responsible, responsible history and
//! every action with who did it and its notes. It holds personal data; the serving layer only
//! renders it for callers who may see that.

use crate::i18n::{Code, Key};
use crate::layout::{Column, Doc};
use crate::note::ActionNote;
use crate::stamp::Stamp;
use crate::ReportError;

/// The lost person, every field.
#[derive(Clone, Debug, Default)]
pub struct PersonInfo {
    /// Id.
    pub id: i64,
    /// Full name.
    pub full_name: String,
    /// Age in years.
    pub age: Option<i64>,
    /// Gender as stored (translated when it is a known code).
    pub gender: String,
    /// Last seen, local wall clock (ms since 1970 read as UTC; not an instant).
    pub last_seen_at: i64,
    /// Where.
    pub last_seen_place: String,
    /// Latitude, exact decimal text.
    pub latitude: Option<String>,
    /// Longitude, exact decimal text.
    pub longitude: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Who reported.
    pub reporter_name: Option<String>,
    /// Their phone.
    pub reporter_phone: Option<String>,
    /// Reported at, UTC epoch ms.
    pub reported_at: i64,
    /// Row version.
    pub version: i64,
}

/// The case.
#[derive(Clone, Debug, Default)]
pub struct CaseInfo {
    /// Id.
    pub id: i64,
    /// Status code (`open`, …).
    pub status: String,
    /// Priority code (`low`, …).
    pub priority: String,
    /// Opened at, UTC epoch ms.
    pub opened_at: i64,
    /// Closed at, UTC epoch ms.
    pub closed_at: Option<i64>,
    /// Row version.
    pub version: i64,
    /// The person is under 18.
    pub minor: bool,
    /// Age band label (`0-11` … `unknown`).
    pub age_band: String,
}

/// A responsible contact.
#[derive(Clone, Debug, Default)]
pub struct ResponsibleInfo {
    /// Id.
    pub id: i64,
    /// Name.
    pub full_name: String,
    /// Agency.
    pub agency: String,
    /// Phone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Takes new cases.
    pub active: bool,
}

/// One row of the responsible history.
#[derive(Clone, Debug, Default)]
pub struct HistoryLine {
    /// Row id.
    pub id: i64,
    /// The responsible.
    pub responsible_id: i64,
    /// Their name, when known.
    pub responsible_name: Option<String>,
    /// Start, UTC epoch ms.
    pub assigned_at: i64,
    /// End, UTC epoch ms; `None` while current.
    pub unassigned_at: Option<i64>,
}

/// One action on the case.
#[derive(Clone, Debug, Default)]
pub struct ActionLine {
    /// Id.
    pub id: i64,
    /// When, UTC epoch ms.
    pub created_at: i64,
    /// Type code (`note`, `search`, …).
    pub action_type: String,
    /// Who did it (id), as the API shows it.
    pub responsible_id: Option<i64>,
    /// Their name at the time, as the API shows it.
    pub responsible_name: Option<String>,
    /// Notes as stored (free text), for callers who may see them.
    pub notes: Option<String>,
    /// The ledger's own note (a status change, an assignment) as data, printed in the report's
    /// language instead of `notes`; `None` for a note a person typed.
    pub note: Option<ActionNote>,
}

/// One sighting of the case's person (the report is for responders: reporters included).
#[derive(Clone, Debug, Default)]
pub struct SightingLine {
    /// Id.
    pub id: i64,
    /// When the person was seen, local wall clock.
    pub seen_at: i64,
    /// Where.
    pub place: String,
    /// Latitude, exact decimal text.
    pub latitude: Option<String>,
    /// Longitude, exact decimal text.
    pub longitude: Option<String>,
    /// What was seen.
    pub description: Option<String>,
    /// Who reported it.
    pub reporter_name: Option<String>,
    /// Their phone.
    pub reporter_phone: Option<String>,
    /// `responder` or `public`.
    pub source: String,
}

/// Everything the case report shows, read at one tick.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The case.
    pub case: CaseInfo,
    /// The person, if the row exists.
    pub person: Option<PersonInfo>,
    /// The current responsible.
    pub responsible: Option<ResponsibleInfo>,
    /// Responsible history, oldest first.
    pub history: Vec<HistoryLine>,
    /// Actions, oldest first.
    pub actions: Vec<ActionLine>,
    /// Sightings, newest first.
    pub sightings: Vec<SightingLine>,
}

fn who(id: Option<i64>, name: Option<&str>, none: &str) -> String {
    match (id, name) {
        (Some(id), Some(n)) => format!("{n} (#{id})"),
        (Some(id), None) => format!("#{id}"),
        (None, Some(n)) => n.to_string(),
        (None, None) => none.to_string(),
    }
}

impl CaseReport {
    /// The report as a laid-out document (for tests and for [`CaseReport::render`]).
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let tz = &s.tz;
        let title = format!("{} #{}", tr.t(Key::CaseReportTitle), self.case.id);
        let footer = format!("lpm · {title} · {}: {}", tr.t(Key::EngineTick), s.tick);
        let mut d = Doc::new(&title, &s.line(), &footer, tr)?;
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());

        d.heading(tr.t(Key::PersonSection));
        match &self.person {
            Some(p) => {
                d.field(tr.t(Key::FullName), &p.full_name);
                d.field(
                    tr.t(Key::Age),
                    &p.age.map_or_else(
                        || tr.t(Key::Unknown).to_string(),
                        |a| format!("{a} {}", tr.t(Key::Years)),
                    ),
                );
                d.field(tr.t(Key::Gender), &tr.code(Code::Gender, &p.gender));
                d.field(tr.t(Key::LastSeenAt), &tr.wall_clock(p.last_seen_at));
                d.field(tr.t(Key::LastSeenPlace), &p.last_seen_place);
                let coords = match (&p.latitude, &p.longitude) {
                    (Some(a), Some(b)) => format!("{a}, {b}"),
                    (a, b) => format!("{}, {}", opt(a), opt(b)),
                };
                d.field(tr.t(Key::Coordinates), &coords);
                d.field(tr.t(Key::Description), &opt(&p.description));
                d.field(tr.t(Key::ReporterName), &opt(&p.reporter_name));
                d.field(tr.t(Key::ReporterPhone), &opt(&p.reporter_phone));
                d.field(tr.t(Key::ReportedAt), &tr.short_instant(p.reported_at, tz));
                d.field(tr.t(Key::PersonId), &p.id.to_string());
                d.field(tr.t(Key::Version), &p.version.to_string());
            }
            None => d.paragraph(tr.t(Key::PersonMissing)),
        }

        d.heading(tr.t(Key::CaseSection));
        let c = &self.case;
        d.field(tr.t(Key::CaseId), &c.id.to_string());
        d.field(tr.t(Key::Status), &tr.code(Code::Status, &c.status));
        d.field(tr.t(Key::Priority), &tr.code(Code::Priority, &c.priority));
        d.field(tr.t(Key::OpenedAt), &tr.short_instant(c.opened_at, tz));
        d.field(
            tr.t(Key::ClosedAt),
            &c.closed_at
                .map_or_else(|| "—".to_string(), |t| tr.short_instant(t, tz)),
        );
        d.field(tr.t(Key::Minor), tr.yes_no(c.minor));
        d.field(tr.t(Key::AgeBand), &tr.code(Code::AgeBand, &c.age_band));
        d.field(tr.t(Key::Version), &c.version.to_string());

        d.heading(tr.t(Key::ResponsibleSection));
        match &self.responsible {
            Some(r) => {
                d.field(tr.t(Key::FullName), &format!("{} (#{})", r.full_name, r.id));
                d.field(tr.t(Key::Agency), &r.agency);
                d.field(tr.t(Key::Phone), &opt(&r.phone));
                d.field(tr.t(Key::Email), &opt(&r.email));
                d.field(tr.t(Key::Active), tr.yes_no(r.active));
            }
            None => d.paragraph(tr.t(Key::Unassigned)),
        }

        d.heading(&format!(
            "{} ({})",
            tr.t(Key::HistorySection),
            self.history.len()
        ));
        let rows: Vec<Vec<String>> = self
            .history
            .iter()
            .map(|h| {
                vec![
                    h.id.to_string(),
                    who(
                        Some(h.responsible_id),
                        h.responsible_name.as_deref(),
                        tr.t(Key::None),
                    ),
                    tr.short_instant(h.assigned_at, tz),
                    h.unassigned_at.map_or_else(
                        || tr.t(Key::Current).to_string(),
                        |t| tr.short_instant(t, tz),
                    ),
                ]
            })
            .collect();
        d.table(
            &[
                Column::right("#", 0.5),
                Column::left(tr.t(Key::Responsible), 3.0),
                Column::left(tr.t(Key::AssignedAt), 1.6),
                Column::left(tr.t(Key::UnassignedAt), 1.6),
            ],
            &rows,
        );

        d.heading(&format!(
            "{} ({})",
            tr.t(Key::ActionsSection),
            self.actions.len()
        ));
        let rows: Vec<Vec<String>> = self
            .actions
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    tr.short_instant(a.created_at, tz),
                    tr.code(Code::Action, &a.action_type),
                    who(
                        a.responsible_id,
                        a.responsible_name.as_deref(),
                        tr.t(Key::None),
                    ),
                    match (&a.note, &a.notes) {
                        (Some(note), _) => tr.action_note(note),
                        (None, Some(typed)) => typed.clone(),
                        (None, None) => String::new(),
                    },
                ]
            })
            .collect();
        d.table(
            &[
                Column::right("#", 0.5),
                Column::left(tr.t(Key::Date), 1.4),
                Column::left(tr.t(Key::ActionType), 1.6),
                Column::left(tr.t(Key::By), 1.8),
                Column::left(tr.t(Key::Notes), 3.4),
            ],
            &rows,
        );
        self.sightings_table(&mut d);
        Ok(d)
    }

    /// The sightings, newest first: when, where (with coordinates), source, reporter, what.
    fn sightings_table(&self, d: &mut Doc) {
        let tr = self.stamp.tr();
        d.heading(&format!(
            "{} ({})",
            tr.t(Key::SightingsSection),
            self.sightings.len()
        ));
        let rows: Vec<Vec<String>> = self
            .sightings
            .iter()
            .map(|s| {
                let place = match (&s.latitude, &s.longitude) {
                    (Some(a), Some(b)) => format!("{} ({a}, {b})", s.place),
                    _ => s.place.clone(),
                };
                let source = match s.source.as_str() {
                    "responder" => tr.t(Key::SourceResponder).to_string(),
                    "public" => tr.t(Key::SourcePublic).to_string(),
                    other => other.to_string(),
                };
                let reporter = [s.reporter_name.as_deref(), s.reporter_phone.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ");
                vec![
                    s.id.to_string(),
                    tr.wall_clock(s.seen_at),
                    place,
                    source,
                    reporter,
                    s.description.clone().unwrap_or_default(),
                ]
            })
            .collect();
        d.table(
            &[
                Column::right("#", 0.5),
                Column::left(tr.t(Key::SeenAt), 1.4),
                Column::left(tr.t(Key::LastSeenPlace), 2.0),
                Column::left(tr.t(Key::Source), 1.1),
                Column::left(tr.t(Key::Reporter), 1.6),
                Column::left(tr.t(Key::Description), 2.1),
            ],
            &rows,
        );
    }

    /// The PDF bytes.
    pub fn render(&self) -> Result<Vec<u8>, ReportError> {
        Ok(self.layout()?.into_pdf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn report(lang: Lang, actions: usize) -> CaseReport {
        CaseReport {
            stamp: Stamp {
                generated_at_ms: 1_795_462_205_000,
                tz: "America/Guayaquil".parse().expect("tz"),
                tick: 7,
                lang,
            },
            case: CaseInfo {
                id: 12,
                status: "in_progress".into(),
                priority: "critical".into(),
                opened_at: 1_795_400_000_000,
                age_band: "30-44".into(),
                ..CaseInfo::default()
            },
            person: Some(PersonInfo {
                full_name: "Íñigo Muñoz Peñalver".into(),
                gender: "male".into(),
                last_seen_place: "Logroño".into(),
                ..PersonInfo::default()
            }),
            responsible: None,
            history: vec![HistoryLine {
                id: 1,
                responsible_id: 3,
                responsible_name: Some("Ana Pérez".into()),
                assigned_at: 1_795_400_000_000,
                unassigned_at: None,
            }],
            actions: (0..actions)
                .map(|i| ActionLine {
                    id: i as i64 + 1,
                    action_type: "search".into(),
                    notes: Some(format!("búsqueda en el río, tramo {i}")),
                    ..ActionLine::default()
                })
                .collect(),
            sightings: Vec::new(),
        }
    }

    fn texts(r: &CaseReport) -> Vec<String> {
        r.layout()
            .expect("layout")
            .into_pages()
            .into_iter()
            .flat_map(|p| p.texts)
            .collect()
    }

    #[test]
    fn words_follow_the_language_and_every_action_is_listed() {
        let es = texts(&report(Lang::Es, 80));
        assert!(es.iter().any(|t| t == "en curso"));
        assert!(es.iter().any(|t| t == "crítica"));
        assert!(es.iter().any(|t| t == "búsqueda"));
        assert!(es.iter().any(|t| t == "Íñigo Muñoz Peñalver"));
        for i in 0..80 {
            let note = format!("búsqueda en el río, tramo {i}");
            assert!(es.contains(&note), "{note} missing");
        }
        let en = texts(&report(Lang::En, 1));
        assert!(en.iter().any(|t| t == "in progress"));
        assert!(en.iter().any(|t| t == "critical"));
        assert!(en.iter().any(|t| t == "search"));
        assert!(en.iter().any(|t| t == "No responsible assigned."));
    }

    /// The ledger's own notes (a status change, an assignment), given as data, print in the
    /// report's language; a typed note prints as typed (see `Tr::action_note`).
    #[test]
    fn ledger_notes_print_in_the_language() {
        let with_ledger_notes = |lang| {
            let mut r = report(lang, 0);
            r.actions = vec![
                ActionLine {
                    id: 1,
                    action_type: "assignment".into(),
                    notes: Some("Asignado a / assigned to Ana Pérez".into()),
                    note: Some(ActionNote::Assignment {
                        responsible_name: "Ana Pérez".into(),
                    }),
                    ..ActionLine::default()
                },
                ActionLine {
                    id: 2,
                    action_type: "status_change".into(),
                    notes: Some("open -> in_progress".into()),
                    note: Some(ActionNote::StatusChange {
                        from: "open".into(),
                        to: "in_progress".into(),
                    }),
                    ..ActionLine::default()
                },
                ActionLine {
                    id: 3,
                    action_type: "note".into(),
                    notes: Some("Llamó la madre -> sin novedad".into()),
                    ..ActionLine::default()
                },
            ];
            texts(&r)
        };
        let es = with_ledger_notes(Lang::Es);
        assert!(
            es.iter().any(|t| t == "abierto \u{2192} en curso"),
            "{es:?}"
        );
        let en = with_ledger_notes(Lang::En);
        assert!(
            en.iter().any(|t| t == "open \u{2192} in progress"),
            "{en:?}"
        );
        for t in es.iter().chain(&en) {
            assert!(
                !t.contains("open -> in") && !t.contains("assigned to"),
                "the stored form is not printed: {t}"
            );
        }
        assert!(
            es.iter().any(|t| t == "Llamó la madre -> sin novedad"),
            "a typed note prints as typed: {es:?}"
        );
    }

    /// The sightings table: counted in its heading, the source translated, the reporter shown
    /// (the report is only for callers who see personal data).
    #[test]
    fn sightings_are_listed_with_source_and_reporter() {
        let with_sighting = |lang| {
            let mut r = report(lang, 0);
            r.sightings = vec![SightingLine {
                id: 7,
                place: "Quitumbe".into(),
                reporter_name: Some("Rosa".into()),
                source: "public".into(),
                ..SightingLine::default()
            }];
            texts(&r)
        };
        let es = with_sighting(Lang::Es);
        assert!(es.iter().any(|t| t == "Avistamientos (1)"), "{es:?}");
        assert!(es.iter().any(|t| t == "ciudadanía"), "{es:?}");
        assert!(es.iter().any(|t| t == "Quitumbe") && es.iter().any(|t| t == "Rosa"));
        let en = with_sighting(Lang::En);
        assert!(en.iter().any(|t| t == "Sightings (1)"), "{en:?}");
        assert!(en.iter().any(|t| t == "public"), "{en:?}");
    }

    #[test]
    fn many_actions_take_more_than_one_page() {
        let pages = report(Lang::Es, 80).layout().expect("layout").into_pages();
        assert!(pages.len() >= 2);
        let n = pages.len();
        assert!(pages[n - 1].texts.contains(&format!("Página {n} de {n}")));
    }
}
