//! Every word a report prints, in Spanish (the default) and English, plus the month and day
//! names and the date formats. The table is one macro invocation so a key cannot exist in one
//! language and be missing in the other; unknown codes (a status lpm has never seen) are
//! printed verbatim rather than guessed.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use chrono_tz::Tz;

use crate::note::ActionNote;

/// The language of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Spanish (the default: lpm's users work in Spanish).
    #[default]
    Es,
    /// English.
    En,
}

impl Lang {
    /// Both languages.
    pub const ALL: [Lang; 2] = [Lang::Es, Lang::En];

    /// Parses `es` or `en` (the `lang` query parameter).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `es` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }
}

macro_rules! keys {
    ($($name:ident => $es:literal, $en:literal;)*) => {
        /// A translatable word or phrase.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Key { $($name),* }

        impl Key {
            /// Every key (for the completeness test).
            pub const ALL: &'static [Key] = &[$(Key::$name),*];

            /// The text in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Key::$name, Lang::Es) => $es, (Key::$name, Lang::En) => $en,)*
                }
            }
        }
    };
}

keys! {
    // page furniture
    Page => "Página", "Page";
    Of => "de", "of";
    GeneratedAt => "Generado", "Generated";
    EngineTick => "Tick del motor", "Engine tick";
    TimeZone => "Zona horaria", "Time zone";
    Period => "Periodo", "Period";
    AllTime => "todo el historial", "all time";
    From => "desde", "from";
    To => "hasta", "to";
    Continued => "(continuación)", "(continued)";
    NoRows => "Sin registros.", "No rows.";
    Total => "Total", "Total";
    Count => "Cantidad", "Count";
    Yes => "sí", "yes";
    No => "no", "no";
    None => "ninguno", "none";
    Unknown => "desconocido", "unknown";
    // case report
    CaseReportTitle => "Informe del caso", "Case report";
    PersonSection => "Persona", "Person";
    CaseSection => "Caso", "Case";
    ResponsibleSection => "Responsable actual", "Current responsible";
    HistorySection => "Historial de responsables", "Responsible history";
    ActionsSection => "Acciones", "Actions";
    SightingsSection => "Avistamientos", "Sightings";
    SeenAt => "Visto", "Seen at";
    Source => "Fuente", "Source";
    SourceResponder => "equipo de respuesta", "responder";
    SourcePublic => "ciudadanía", "public";
    Reporter => "Reportado por", "Reported by";
    PersonMissing => "La persona de este caso no existe.", "This case's person does not exist.";
    Unassigned => "Sin responsable asignado.", "No responsible assigned.";
    FullName => "Nombre completo", "Full name";
    Age => "Edad", "Age";
    Years => "años", "years";
    Gender => "Género", "Gender";
    LastSeenAt => "Visto por última vez", "Last seen";
    LastSeenPlace => "Lugar", "Place";
    Coordinates => "Coordenadas", "Coordinates";
    Description => "Descripción", "Description";
    ReporterName => "Denunciante", "Reported by";
    ReporterPhone => "Teléfono del denunciante", "Reporter phone";
    ReportedAt => "Denunciado", "Reported at";
    PersonId => "Id de persona", "Person id";
    CaseId => "Id del caso", "Case id";
    Version => "Versión", "Version";
    Status => "Estado", "Status";
    Priority => "Prioridad", "Priority";
    OpenedAt => "Abierto", "Opened at";
    ClosedAt => "Cerrado", "Closed at";
    Minor => "Menor de edad", "Minor";
    AgeBand => "Grupo de edad", "Age group";
    Agency => "Institución", "Agency";
    Phone => "Teléfono", "Phone";
    Email => "Correo", "E-mail";
    Active => "Activo", "Active";
    Responsible => "Responsable", "Responsible";
    AssignedAt => "Asignado", "Assigned at";
    UnassignedAt => "Desasignado", "Unassigned at";
    Current => "vigente", "current";
    Date => "Fecha", "Date";
    ActionType => "Tipo", "Type";
    By => "Realizado por", "By";
    Notes => "Notas", "Notes";
    // analytics
    OperationalTitle => "Alertas operativas", "Operational alerts";
    DemographicTitle => "Distribución demográfica", "Demographic distribution";
    HourlyTitle => "Perfil horario y serie diaria", "Hour-of-day profile and daily series";
    SensitiveTitle => "Casos abiertos de menores de edad", "Open cases of minors";
    HighOpen => "Casos abiertos de prioridad alta o crítica", "Open high or critical priority cases";
    UnassignedOpen => "Casos abiertos sin responsable", "Unassigned open cases";
    StaleOpen => "Casos abiertos sin acciones en las últimas 24 h", "Open cases with no action in the last 24 h";
    Summary => "Resumen", "Summary";
    Person => "Persona", "Person";
    LastAction => "Última acción", "Last action";
    Never => "nunca", "never";
    SelectionOpened => "Casos cuyo opened_at cae en el periodo, en su estado en el tick indicado.", "Cases whose opened_at falls in the period, as they are at the stamped tick.";
    SelectionReported => "Denuncias (personas) cuyo reported_at cae en el periodo.", "Reports (persons) whose reported_at falls in the period.";
    ByAgeBand => "Denuncias por grupo de edad", "Reports by age group";
    ByGender => "Denuncias por género", "Reports by gender";
    AgeByGender => "Grupo de edad × género", "Age group × gender";
    Hour => "Hora", "Hour";
    ByHour => "Denuncias por hora del día", "Reports by hour of day";
    ByDay => "Denuncias por día", "Reports by day";
    Day => "Día", "Day";
    Reports => "Denuncias", "Reports";
    OpenMinors => "Casos abiertos de menores", "Open cases of minors";
    HotspotsTitle => "Celdas con más denuncias", "Top cells by reports";
    SelectionHotspots => "Celdas H3 de la vista hotspots en el tick indicado (todas las denuncias con coordenadas; el periodo no aplica), las de más denuncias primero.", "H3 cells of the hotspots view at the stamped tick (every report with coordinates; the period does not apply), most reports first.";
    Resolution => "Resolución H3", "H3 resolution";
    MinReports => "Denuncias mínimas por celda mostrada", "Fewest reports of a shown cell";
    CellsShown => "Celdas mostradas", "Cells shown";
    CellsListed => "Las de más denuncias", "Top by reports";
    Cell => "Celda", "Cell";
    Latitude => "Latitud", "Latitude";
    Longitude => "Longitud", "Longitude";
    OpenCases => "Casos abiertos", "Open cases";
    CountsOnly => "Con un token de solo lectura este informe muestra solo cantidades (datos personales).", "With a read-only token this report shows counts only (personal data).";
    // statuses
    StatusOpen => "abierto", "open";
    StatusInProgress => "en curso", "in progress";
    StatusFoundAlive => "encontrado con vida", "found alive";
    StatusFoundDeceased => "encontrado sin vida", "found deceased";
    StatusClosed => "cerrado", "closed";
    // priorities
    PriorityLow => "baja", "low";
    PriorityMedium => "media", "medium";
    PriorityHigh => "alta", "high";
    PriorityCritical => "crítica", "critical";
    // genders
    GenderFemale => "femenino", "female";
    GenderMale => "masculino", "male";
    GenderOther => "otro", "other";
    GenderUnknown => "no indicado", "not stated";
    // action types
    ActionNote => "nota", "note";
    ActionSearch => "búsqueda", "search";
    ActionCall => "llamada", "call";
    ActionSighting => "avistamiento", "sighting";
    ActionStatusChange => "cambio de estado", "status change";
    ActionAssignment => "asignación", "assignment";
    ActionPriorityChange => "cambio de prioridad", "priority change";
    // age bands
    BandUnknown => "edad desconocida", "age unknown";
}

/// The codes lpm stores and the key of each; anything else prints verbatim.
const CODES: &[(&str, Key)] = &[
    ("status:open", Key::StatusOpen),
    ("status:in_progress", Key::StatusInProgress),
    ("status:found_alive", Key::StatusFoundAlive),
    ("status:found_deceased", Key::StatusFoundDeceased),
    ("status:closed", Key::StatusClosed),
    ("priority:low", Key::PriorityLow),
    ("priority:medium", Key::PriorityMedium),
    ("priority:high", Key::PriorityHigh),
    ("priority:critical", Key::PriorityCritical),
    ("gender:female", Key::GenderFemale),
    ("gender:male", Key::GenderMale),
    ("gender:other", Key::GenderOther),
    ("gender:unknown", Key::GenderUnknown),
    ("action:note", Key::ActionNote),
    ("action:search", Key::ActionSearch),
    ("action:call", Key::ActionCall),
    ("action:sighting", Key::ActionSighting),
    ("action:status_change", Key::ActionStatusChange),
    ("action:assignment", Key::ActionAssignment),
    ("action:priority_change", Key::ActionPriorityChange),
    ("band:unknown", Key::BandUnknown),
];

/// The kinds of coded values a report translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `case_cases.status`.
    Status,
    /// `case_cases.priority`.
    Priority,
    /// `persons_lost.gender` (normalised or raw: it is trimmed and lower-cased first).
    Gender,
    /// `case_actions.action_type`.
    Action,
    /// An age band label (`0-11` … `60+`, `unknown`).
    AgeBand,
}

impl Code {
    fn prefix(self) -> &'static str {
        match self {
            Code::Status => "status",
            Code::Priority => "priority",
            Code::Gender => "gender",
            Code::Action => "action",
            Code::AgeBand => "band",
        }
    }
}

/// Words and dates in one language.
#[derive(Clone, Copy, Debug)]
pub struct Tr {
    /// The language.
    pub lang: Lang,
}

const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS_ES: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];
const DAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl Tr {
    /// Words in `lang`.
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The text of `key`.
    pub fn t(self, key: Key) -> &'static str {
        key.text(self.lang)
    }

    /// A note the system wrote on its own action, in the reader's language: a status change as
    /// `Abierto → En curso`, an assignment as the name alone (the action type column already
    /// says "asignación"). The web UI renders the API's `note` field the same way
    /// (`actionNote` in `page-case.js`).
    pub fn action_note(self, note: &ActionNote) -> String {
        match note {
            ActionNote::StatusChange { from, to } => format!(
                "{} \u{2192} {}",
                self.code(Code::Status, from),
                self.code(Code::Status, to)
            ),
            ActionNote::Assignment { responsible_name } => responsible_name.clone(),
        }
    }

    /// A coded value in words (verbatim when the code is unknown).
    pub fn code(self, kind: Code, raw: &str) -> String {
        let norm = raw.trim().to_lowercase();
        let wanted = format!("{}:{norm}", kind.prefix());
        match CODES.iter().find(|(c, _)| *c == wanted) {
            Some((_, k)) => self.t(*k).to_string(),
            None => raw.to_string(),
        }
    }

    /// The name of month 1..=12.
    pub fn month(self, m: u32) -> &'static str {
        let i = (m.clamp(1, 12) - 1) as usize;
        match self.lang {
            Lang::Es => MONTHS_ES[i],
            Lang::En => MONTHS_EN[i],
        }
    }

    /// The name of a weekday (0 = Monday).
    pub fn weekday(self, d: u32) -> &'static str {
        let i = (d % 7) as usize;
        match self.lang {
            Lang::Es => DAYS_ES[i],
            Lang::En => DAYS_EN[i],
        }
    }

    /// A date in words: `lunes, 23 de noviembre de 2026` / `Monday, 23 November 2026`.
    pub fn long_date(self, d: NaiveDate) -> String {
        let wd = self.weekday(d.weekday().num_days_from_monday());
        let m = self.month(d.month());
        match self.lang {
            Lang::Es => format!("{wd}, {} de {m} de {}", d.day(), d.year()),
            Lang::En => format!("{wd}, {} {m} {}", d.day(), d.year()),
        }
    }

    /// A short day label for series: `lun 23 nov` / `Mon 23 Nov`.
    pub fn short_day(self, d: NaiveDate) -> String {
        let wd: String = self
            .weekday(d.weekday().num_days_from_monday())
            .chars()
            .take(3)
            .collect();
        let m: String = self.month(d.month()).chars().take(3).collect();
        format!("{wd} {} {m} {}", d.day(), d.year())
    }

    /// An instant in words, in `tz`: `lunes, 23 de noviembre de 2026, 14:30:05`.
    pub fn long_instant(self, ms: i64, tz: &Tz) -> String {
        match DateTime::from_timestamp_millis(ms) {
            Some(t) => {
                let l = t.with_timezone(tz);
                format!(
                    "{}, {:02}:{:02}:{:02}",
                    self.long_date(l.date_naive()),
                    l.hour(),
                    l.minute(),
                    l.second()
                )
            }
            None => self.t(Key::Unknown).to_string(),
        }
    }

    /// An instant in `tz` for tables: `2026-11-23 14:30`.
    pub fn short_instant(self, ms: i64, tz: &Tz) -> String {
        match DateTime::from_timestamp_millis(ms) {
            Some(t) => t.with_timezone(tz).format("%Y-%m-%d %H:%M").to_string(),
            None => self.t(Key::Unknown).to_string(),
        }
    }

    /// A wall-clock time (ms since 1970 read as UTC, not an instant): `2026-11-23 14:30`.
    pub fn wall_clock(self, ms: i64) -> String {
        match DateTime::from_timestamp_millis(ms) {
            Some(t) => t.naive_utc().format("%Y-%m-%d %H:%M").to_string(),
            None => self.t(Key::Unknown).to_string(),
        }
    }

    /// `sí`/`no`, `yes`/`no`.
    pub fn yes_no(self, b: bool) -> &'static str {
        self.t(if b { Key::Yes } else { Key::No })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_key() {
        for lang in Lang::ALL {
            for key in Key::ALL {
                let t = key.text(lang);
                assert!(!t.trim().is_empty(), "{key:?} is empty in {lang:?}");
            }
        }
        // the table is not one language twice: most phrases differ
        let same = Key::ALL
            .iter()
            .filter(|k| k.text(Lang::Es) == k.text(Lang::En))
            .count();
        assert!(same * 10 < Key::ALL.len(), "{same} keys are not translated");
    }

    #[test]
    fn every_known_code_is_translated_in_both_languages() {
        let codes: [(Code, &[&str]); 5] = [
            (
                Code::Status,
                &[
                    "open",
                    "in_progress",
                    "found_alive",
                    "found_deceased",
                    "closed",
                ],
            ),
            (Code::Priority, &["low", "medium", "high", "critical"]),
            (Code::Gender, &["female", "male", "other", "unknown"]),
            (
                Code::Action,
                &[
                    "note",
                    "search",
                    "call",
                    "sighting",
                    "status_change",
                    "assignment",
                ],
            ),
            (Code::AgeBand, &["unknown"]),
        ];
        for (kind, list) in codes {
            for raw in list {
                let es = Tr::new(Lang::Es).code(kind, raw);
                let en = Tr::new(Lang::En).code(kind, raw);
                assert_ne!(es, *raw, "{kind:?} {raw} untranslated in Spanish");
                assert!(!en.contains('_'), "{kind:?} {raw} untranslated in English");
            }
        }
        assert_eq!(Tr::new(Lang::Es).code(Code::Status, "weird"), "weird");
        assert_eq!(Tr::new(Lang::Es).code(Code::Gender, " Female "), "femenino");
    }

    /// The ledger's own notes print in the report's language.
    #[test]
    fn ledger_notes_are_rendered_in_the_language() {
        let (es, en) = (Tr::new(Lang::Es), Tr::new(Lang::En));
        let change = |from: &str, to: &str| ActionNote::StatusChange {
            from: from.into(),
            to: to.into(),
        };
        assert_eq!(
            es.action_note(&change("open", "in_progress")),
            format!(
                "{} \u{2192} {}",
                es.t(Key::StatusOpen),
                es.t(Key::StatusInProgress)
            )
        );
        assert_eq!(
            en.action_note(&change("in_progress", "found_alive")),
            format!(
                "{} \u{2192} {}",
                en.t(Key::StatusInProgress),
                en.t(Key::StatusFoundAlive)
            )
        );
        assert_ne!(
            es.action_note(&change("open", "closed")),
            en.action_note(&change("open", "closed"))
        );
        // an unknown code prints verbatim rather than vanishing
        assert_eq!(
            en.action_note(&change("open", "archived")),
            format!("{} \u{2192} archived", en.t(Key::StatusOpen))
        );
        let assigned = ActionNote::Assignment {
            responsible_name: "Ana Pérez".into(),
        };
        assert_eq!(en.action_note(&assigned), "Ana Pérez");
        assert_eq!(es.action_note(&assigned), "Ana Pérez");
    }

    #[test]
    fn dates_use_the_language_month_and_day_names() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        assert_eq!(
            Tr::new(Lang::Es).long_date(d),
            "lunes, 23 de noviembre de 2026"
        );
        assert_eq!(Tr::new(Lang::En).long_date(d), "Monday, 23 November 2026");
        assert_eq!(Tr::new(Lang::Es).short_day(d), "lun 23 nov 2026");
        let tz: Tz = "America/Guayaquil".parse().expect("tz");
        // 2026-11-23T19:30:05Z is 14:30:05 in Guayaquil
        let ms = 1_795_462_205_000;
        assert_eq!(
            Tr::new(Lang::En).long_instant(ms, &tz),
            "Monday, 23 November 2026, 14:30:05"
        );
        for lang in Lang::ALL {
            for m in 1..=12 {
                assert!(!Tr::new(lang).month(m).is_empty());
            }
        }
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
