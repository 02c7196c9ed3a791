//! The analytics reports: operational alerts, demographic distribution, hour-of-day profile
//! with a daily series, and open cases of minors. Each is a plain struct of numbers and rows
//! that the serving layer fills from one engine read at one tick; here they only become pages.

use chrono::{Datelike, NaiveDate};

use crate::i18n::{Code, Key};
use crate::layout::{Column, Doc};
use crate::stamp::{DateRange, Stamp};
use crate::ReportError;

/// A case as the analytics tables list it.
#[derive(Clone, Debug, Default)]
pub struct CaseLine {
    /// Case id.
    pub id: i64,
    /// Priority code.
    pub priority: String,
    /// Status code.
    pub status: String,
    /// Opened at, UTC epoch ms.
    pub opened_at: i64,
    /// Current responsible's name.
    pub responsible: Option<String>,
    /// The person's name; `None` for callers who may not see personal data.
    pub person: Option<String>,
    /// The person's age.
    pub age: Option<i64>,
    /// The person's gender code.
    pub gender: String,
    /// The latest action, UTC epoch ms.
    pub last_action_at: Option<i64>,
}

/// A new analytics document: title, stamp, zone, period and what the period selects.
pub(crate) fn begin(
    stamp: &Stamp,
    title: Key,
    range: &DateRange,
    selection: Key,
) -> Result<Doc, ReportError> {
    let tr = stamp.tr();
    let title = tr.t(title);
    let footer = format!("lpm · {title} · {}: {}", tr.t(Key::EngineTick), stamp.tick);
    let mut d = Doc::new(title, &stamp.line(), &footer, tr)?;
    d.field(tr.t(Key::TimeZone), stamp.tz.name());
    d.paragraph(&range.line(tr, &stamp.tz));
    d.paragraph(tr.t(selection));
    Ok(d)
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

fn case_table(d: &mut Doc, stamp: &Stamp, rows: &[CaseLine], personal: bool, last_action: bool) {
    let tr = stamp.tr();
    let mut cols = vec![
        Column::right("#", 0.6),
        Column::left(tr.t(Key::Priority), 1.0),
        Column::left(tr.t(Key::Status), 1.1),
        Column::left(tr.t(Key::OpenedAt), 1.4),
        Column::left(tr.t(Key::Responsible), 1.8),
    ];
    if last_action {
        cols.push(Column::left(tr.t(Key::LastAction), 1.4));
    }
    if personal {
        cols.push(Column::left(tr.t(Key::Person), 2.0));
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let mut r = vec![
                c.id.to_string(),
                tr.code(Code::Priority, &c.priority),
                tr.code(Code::Status, &c.status),
                tr.short_instant(c.opened_at, &stamp.tz),
                or_dash(&c.responsible),
            ];
            if last_action {
                r.push(c.last_action_at.map_or_else(
                    || tr.t(Key::Never).to_string(),
                    |t| tr.short_instant(t, &stamp.tz),
                ));
            }
            if personal {
                r.push(or_dash(&c.person));
            }
            r
        })
        .collect();
    d.table(&cols, &body);
}

/// Operational alerts over the open cases.
#[derive(Clone, Debug)]
pub struct OperationalReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The period (cases by `opened_at`).
    pub range: DateRange,
    /// Whether person names may be shown.
    pub personal: bool,
    /// Open cases of high or critical priority.
    pub high: Vec<CaseLine>,
    /// Open cases without a responsible.
    pub unassigned: Vec<CaseLine>,
    /// Open cases without an action in the 24 h before the generation time.
    pub stale: Vec<CaseLine>,
}

impl OperationalReport {
    /// Laid out.
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let mut d = begin(s, Key::OperationalTitle, &self.range, Key::SelectionOpened)?;
        d.heading(tr.t(Key::Summary));
        let sections = [
            (Key::HighOpen, &self.high, false),
            (Key::UnassignedOpen, &self.unassigned, false),
            (Key::StaleOpen, &self.stale, true),
        ];
        for (k, rows, _) in &sections {
            d.field(tr.t(*k), &rows.len().to_string());
        }
        for (k, rows, last) in sections {
            d.heading(&format!("{} ({})", tr.t(k), rows.len()));
            case_table(&mut d, s, rows, self.personal, last);
        }
        Ok(d)
    }

    /// The PDF bytes.
    pub fn render(&self) -> Result<Vec<u8>, ReportError> {
        Ok(self.layout()?.into_pdf())
    }
}

/// Reports by age band × gender.
#[derive(Clone, Debug)]
pub struct DemographicReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The period (reports by `reported_at`).
    pub range: DateRange,
    /// Age band labels, in display order (`0-11` … `unknown`).
    pub bands: Vec<String>,
    /// Gender codes, in display order.
    pub genders: Vec<String>,
    /// `counts[band][gender]`.
    pub counts: Vec<Vec<u64>>,
}

impl DemographicReport {
    /// Laid out.
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let mut d = begin(
            s,
            Key::DemographicTitle,
            &self.range,
            Key::SelectionReported,
        )?;
        let cell = |b: usize, g: usize| -> u64 {
            self.counts
                .get(b)
                .and_then(|r| r.get(g))
                .copied()
                .unwrap_or(0)
        };
        let band_totals: Vec<u64> = (0..self.bands.len())
            .map(|b| (0..self.genders.len()).map(|g| cell(b, g)).sum())
            .collect();
        let gender_totals: Vec<u64> = (0..self.genders.len())
            .map(|g| (0..self.bands.len()).map(|b| cell(b, g)).sum())
            .collect();
        let total: u64 = band_totals.iter().sum();
        d.heading(tr.t(Key::Summary));
        d.field(tr.t(Key::Reports), &total.to_string());

        d.heading(tr.t(Key::AgeByGender));
        let mut cols = vec![Column::left(tr.t(Key::AgeBand), 1.6)];
        for g in &self.genders {
            cols.push(Column::right(&tr.code(Code::Gender, g), 1.0));
        }
        cols.push(Column::right(tr.t(Key::Total), 1.0));
        let mut rows: Vec<Vec<String>> = self
            .bands
            .iter()
            .enumerate()
            .map(|(b, label)| {
                let mut r = vec![tr.code(Code::AgeBand, label)];
                r.extend((0..self.genders.len()).map(|g| cell(b, g).to_string()));
                r.push(band_totals[b].to_string());
                r
            })
            .collect();
        let mut last = vec![tr.t(Key::Total).to_string()];
        last.extend(gender_totals.iter().map(u64::to_string));
        last.push(total.to_string());
        rows.push(last);
        d.table(&cols, &rows);

        let by_band: Vec<(String, u64)> = self
            .bands
            .iter()
            .zip(&band_totals)
            .map(|(l, n)| (tr.code(Code::AgeBand, l), *n))
            .collect();
        d.bar_chart(tr.t(Key::ByAgeBand), &by_band);
        let by_gender: Vec<(String, u64)> = self
            .genders
            .iter()
            .zip(&gender_totals)
            .map(|(g, n)| (tr.code(Code::Gender, g), *n))
            .collect();
        d.bar_chart(tr.t(Key::ByGender), &by_gender);
        Ok(d)
    }

    /// The PDF bytes.
    pub fn render(&self) -> Result<Vec<u8>, ReportError> {
        Ok(self.layout()?.into_pdf())
    }
}

/// Reports by local hour of day and by local day.
#[derive(Clone, Debug)]
pub struct HourlyReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The period (reports by `reported_at`).
    pub range: DateRange,
    /// Reports per local hour 0..23.
    pub by_hour: [u64; 24],
    /// Reports per local day, every day of the period in order (zeros included).
    pub by_day: Vec<(NaiveDate, u64)>,
}

impl HourlyReport {
    /// Laid out.
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let mut d = begin(s, Key::HourlyTitle, &self.range, Key::SelectionReported)?;
        let total: u64 = self.by_hour.iter().sum();
        d.heading(tr.t(Key::Summary));
        d.field(tr.t(Key::Reports), &total.to_string());

        d.heading(tr.t(Key::ByHour));
        let bars: Vec<(String, u64)> = self
            .by_hour
            .iter()
            .enumerate()
            .map(|(h, n)| (h.to_string(), *n))
            .collect();
        d.bar_chart(tr.t(Key::ByHour), &bars);
        let rows: Vec<Vec<String>> = self
            .by_hour
            .iter()
            .enumerate()
            .map(|(h, n)| vec![format!("{h:02}:00–{h:02}:59"), n.to_string()])
            .collect();
        d.table(
            &[
                Column::left(tr.t(Key::Hour), 1.0),
                Column::right(tr.t(Key::Reports), 1.0),
            ],
            &rows,
        );

        d.heading(tr.t(Key::ByDay));
        let bars: Vec<(String, u64)> = self
            .by_day
            .iter()
            .map(|(day, n)| (format!("{}/{}", day.day(), day.month()), *n))
            .collect();
        d.bar_chart(tr.t(Key::ByDay), &bars);
        let rows: Vec<Vec<String>> = self
            .by_day
            .iter()
            .map(|(day, n)| vec![day.to_string(), tr.short_day(*day), n.to_string()])
            .collect();
        d.table(
            &[
                Column::left(tr.t(Key::Date), 1.0),
                Column::left(tr.t(Key::Day), 1.2),
                Column::right(tr.t(Key::Reports), 1.0),
            ],
            &rows,
        );
        Ok(d)
    }

    /// The PDF bytes.
    pub fn render(&self) -> Result<Vec<u8>, ReportError> {
        Ok(self.layout()?.into_pdf())
    }
}

/// Counts of open cases of minors, shown to every caller.
#[derive(Clone, Debug, Default)]
pub struct SensitiveCounts {
    /// Open cases whose person is 0 <= age < 18.
    pub total: u64,
    /// By age band label (`0-11`, `12-17`).
    pub by_band: Vec<(String, u64)>,
    /// By priority code.
    pub by_priority: Vec<(String, u64)>,
}

/// Open cases of minors.
#[derive(Clone, Debug)]
pub struct SensitiveReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The period (cases by `opened_at`).
    pub range: DateRange,
    /// Counts (everyone).
    pub counts: SensitiveCounts,
    /// The cases with names, only for callers who may see personal data.
    pub cases: Option<Vec<CaseLine>>,
}

impl SensitiveReport {
    /// Laid out.
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let mut d = begin(s, Key::SensitiveTitle, &self.range, Key::SelectionOpened)?;
        d.heading(tr.t(Key::Summary));
        d.field(tr.t(Key::OpenMinors), &self.counts.total.to_string());
        let rows: Vec<Vec<String>> = self
            .counts
            .by_band
            .iter()
            .map(|(b, n)| vec![tr.code(Code::AgeBand, b), n.to_string()])
            .collect();
        d.table(
            &[
                Column::left(tr.t(Key::AgeBand), 2.0),
                Column::right(tr.t(Key::Count), 1.0),
            ],
            &rows,
        );
        let rows: Vec<Vec<String>> = self
            .counts
            .by_priority
            .iter()
            .map(|(p, n)| vec![tr.code(Code::Priority, p), n.to_string()])
            .collect();
        d.table(
            &[
                Column::left(tr.t(Key::Priority), 2.0),
                Column::right(tr.t(Key::Count), 1.0),
            ],
            &rows,
        );
        match &self.cases {
            None => d.paragraph(tr.t(Key::CountsOnly)),
            Some(cases) => {
                d.heading(&format!("{} ({})", tr.t(Key::OpenMinors), cases.len()));
                let body: Vec<Vec<String>> = cases
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.to_string(),
                            or_dash(&c.person),
                            c.age.map_or_else(|| "—".into(), |a| a.to_string()),
                            tr.code(Code::Gender, &c.gender),
                            tr.code(Code::Priority, &c.priority),
                            tr.code(Code::Status, &c.status),
                            tr.short_instant(c.opened_at, &s.tz),
                            or_dash(&c.responsible),
                        ]
                    })
                    .collect();
                d.table(
                    &[
                        Column::right("#", 0.6),
                        Column::left(tr.t(Key::Person), 2.2),
                        Column::right(tr.t(Key::Age), 0.6),
                        Column::left(tr.t(Key::Gender), 1.0),
                        Column::left(tr.t(Key::Priority), 0.9),
                        Column::left(tr.t(Key::Status), 1.0),
                        Column::left(tr.t(Key::OpenedAt), 1.4),
                        Column::left(tr.t(Key::Responsible), 1.6),
                    ],
                    &body,
                );
            }
        }
        Ok(d)
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

    fn stamp(lang: Lang) -> Stamp {
        Stamp {
            generated_at_ms: 1_795_462_205_000,
            tz: "America/Guayaquil".parse().expect("tz"),
            tick: 9,
            lang,
        }
    }

    fn texts(d: Doc) -> Vec<String> {
        d.into_pages().into_iter().flat_map(|p| p.texts).collect()
    }

    #[test]
    fn demographic_totals_add_up_and_labels_are_translated() {
        let r = DemographicReport {
            stamp: stamp(Lang::Es),
            range: DateRange::default(),
            bands: vec!["0-11".into(), "unknown".into()],
            genders: vec!["female".into(), "male".into()],
            counts: vec![vec![1, 2], vec![3, 4]],
        };
        let t = texts(r.layout().expect("layout"));
        for w in ["femenino", "masculino", "edad desconocida", "10", "Total"] {
            assert!(t.iter().any(|x| x == w), "{w} missing: {t:?}");
        }
        // column totals 4 and 6, row totals 3 and 7
        for w in ["4", "6", "3", "7"] {
            assert!(t.iter().any(|x| x == w), "{w} missing");
        }
        assert!(r.render().expect("pdf").starts_with(b"%PDF-"));
    }

    #[test]
    fn sensitive_counts_only_has_no_names() {
        let line = CaseLine {
            id: 5,
            person: Some("Niña Núñez".into()),
            age: Some(9),
            ..CaseLine::default()
        };
        let mut r = SensitiveReport {
            stamp: stamp(Lang::En),
            range: DateRange::default(),
            counts: SensitiveCounts {
                total: 1,
                by_band: vec![("0-11".into(), 1)],
                by_priority: vec![("high".into(), 1)],
            },
            cases: Some(vec![line]),
        };
        assert!(texts(r.layout().expect("layout"))
            .iter()
            .any(|t| t == "Niña Núñez"));
        r.cases = None;
        let t = texts(r.layout().expect("layout"));
        assert!(!t.iter().any(|t| t.contains("Núñez")));
        assert!(t.iter().any(|t| t.contains("counts only")));
    }

    #[test]
    fn hourly_lists_every_hour_and_day() {
        let days: Vec<(NaiveDate, u64)> = (1..=40)
            .filter_map(|i| {
                NaiveDate::from_ymd_opt(2026, 10, 1)?.checked_add_days(chrono::Days::new(i))
            })
            .map(|d| (d, 2))
            .collect();
        let r = HourlyReport {
            stamp: stamp(Lang::En),
            range: DateRange::default(),
            by_hour: [1; 24],
            by_day: days,
        };
        let t = texts(r.layout().expect("layout"));
        assert!(t.iter().any(|x| x == "23:00–23:59"));
        assert!(t.iter().any(|x| x == "2026-11-10"));
        assert!(t.iter().any(|x| x == "Tue 10 Nov 2026"));
    }
}
