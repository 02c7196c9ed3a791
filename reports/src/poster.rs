//! The poster of a published case: one A4 page to print and put up, with the person's name in
//! large type, age, gender, description, where and when they were last seen, whom to call, and
//! a QR code whose content is exactly the case's public URL (its page has a sighting form).
//!
//! It holds only what the public page shows (no reporter, no coordinates, no notes). Everything
//! is black on white (the banner is white on black), so it prints the same on a black-and-white
//! printer or a photocopier. The QR code is drawn as filled rectangles (one per run of dark
//! modules in a row, with a 4-module quiet zone) rather than an image, so no image codec is
//! linked in and it stays sharp at any print size.

use printpdf::{Color, Rgb};
use qrcode::{EcLevel, QrCode};

use crate::fonts::Face;
use crate::i18n::{Code, Key, Lang, Tr};
use crate::layout::{Doc, BODY_W, MARGIN_X, PAGE_W};
use crate::ReportError;

/// What a published case shows the public, on its poster and on its public page: nothing else
/// (no reporter, coordinates, notes or status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicFacts {
    /// The person's name.
    pub full_name: String,
    /// Age in years, if known.
    pub age: Option<i64>,
    /// `persons_lost.gender` as stored (translated when shown).
    pub gender: String,
    /// Physical description.
    pub description: Option<String>,
    /// Where they were last seen.
    pub last_seen_place: String,
    /// When (a local wall-clock time, ms since 1970 read as UTC).
    pub last_seen_at: i64,
    /// The agency in charge, if a responsible is assigned.
    pub agency: Option<String>,
    /// Its phone.
    pub phone: Option<String>,
    /// The public page; the poster's QR code holds it byte for byte.
    pub public_url: String,
}

/// A poster: the public facts of a case in a language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poster {
    /// Language.
    pub lang: Lang,
    /// The case id (the footer names it, so a caller can quote it).
    pub case_id: i64,
    /// What it shows.
    pub facts: PublicFacts,
}

/// The words of a poster (kept here, not in the report table: only the poster uses them).
struct Words {
    title: &'static str,
    banner: &'static str,
    age: &'static str,
    years: &'static str,
    gender: &'static str,
    last_seen: &'static str,
    description: &'static str,
    call: &'static str,
    emergency: &'static str,
    scan: &'static str,
    footer: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Es => Words {
            title: "Persona desaparecida",
            banner: "SE BUSCA",
            age: "Edad",
            years: "años",
            gender: "Género",
            last_seen: "Visto por última vez",
            description: "Descripción",
            call: "Si tiene información, llame a",
            emergency: "la línea de emergencias 911",
            scan: "Escanee para ver el caso y reportar un avistamiento:",
            footer: "Caso",
        },
        Lang::En => Words {
            title: "Missing person",
            banner: "MISSING",
            age: "Age",
            years: "years",
            gender: "Gender",
            last_seen: "Last seen",
            description: "Description",
            call: "If you have information, call",
            emergency: "the emergency line 911",
            scan: "Scan to see the case and report a sighting:",
            footer: "Case",
        },
    }
}

fn black() -> Color {
    Color::Rgb(Rgb {
        r: 0.0,
        g: 0.0,
        b: 0.0,
        icc_profile: None,
    })
}

fn white() -> Color {
    Color::Rgb(Rgb {
        r: 1.0,
        g: 1.0,
        b: 1.0,
        icc_profile: None,
    })
}

/// Side of the QR code on paper, in points (6 cm: a phone reads it from a couple of metres).
const QR_SIDE: f32 = 170.0;
/// The quiet zone the QR specification asks for, in modules.
const QUIET: usize = 4;
/// Description lines printed at most (the rest is on the public page).
const DESCRIPTION_LINES: usize = 7;

impl Poster {
    /// The laid-out page (tests read its texts).
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let w = words(self.lang);
        let tr = Tr::new(self.lang);
        let footer = format!("{} {}", w.footer, self.case_id);
        let mut d = Doc::new(w.title, &self.facts.public_url, &footer, tr)?;
        let mut y = 770.0;
        // banner: white on black, centred
        d.rect(MARGIN_X, y - 58.0, BODY_W, 58.0, black());
        let bw = d.width(w.banner, 40.0, Face::Bold);
        d.text_at(
            (PAGE_W - bw) / 2.0,
            y - 44.0,
            40.0,
            Face::Bold,
            w.banner,
            white(),
        );
        y -= 96.0;
        for line in d.wrap(&self.facts.full_name, 30.0, Face::Bold, BODY_W) {
            d.text_at(MARGIN_X, y, 30.0, Face::Bold, &line, black());
            y -= 36.0;
        }
        y -= 6.0;
        let age = match self.facts.age {
            Some(a) => format!("{a} {}", w.years),
            None => tr.t(Key::Unknown).to_string(),
        };
        let facts = [
            (w.age, age),
            (w.gender, tr.code(Code::Gender, &self.facts.gender)),
            (
                w.last_seen,
                format!(
                    "{}, {}",
                    self.facts.last_seen_place,
                    tr.wall_clock(self.facts.last_seen_at)
                ),
            ),
        ];
        for (label, value) in facts {
            let label = format!("{label}:");
            let lw = d.width(&label, 14.0, Face::Bold) + 6.0;
            let lines = d.wrap(&value, 14.0, Face::Regular, BODY_W - lw);
            d.text_at(MARGIN_X, y, 14.0, Face::Bold, &label, black());
            for l in lines {
                d.text_at(MARGIN_X + lw, y, 14.0, Face::Regular, &l, black());
                y -= 19.0;
            }
        }
        if let Some(desc) = self
            .facts
            .description
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            y -= 4.0;
            d.text_at(
                MARGIN_X,
                y,
                14.0,
                Face::Bold,
                &format!("{}:", w.description),
                black(),
            );
            y -= 18.0;
            let mut lines = d.wrap(desc, 12.0, Face::Regular, BODY_W);
            if lines.len() > DESCRIPTION_LINES {
                lines.truncate(DESCRIPTION_LINES);
                if let Some(last) = lines.last_mut() {
                    last.push_str(" …");
                }
            }
            for l in lines {
                d.text_at(MARGIN_X, y, 12.0, Face::Regular, &l, black());
                y -= 16.0;
            }
        }
        // whom to call: the agency's phone, else the emergency line
        y -= 10.0;
        d.hline(y + 12.0, 1.5, black());
        d.text_at(
            MARGIN_X,
            y - 6.0,
            14.0,
            Face::Regular,
            &format!("{}:", w.call),
            black(),
        );
        let contact = match (&self.facts.agency, &self.facts.phone) {
            (Some(a), Some(p)) => format!("{a}: {p}"),
            (None, Some(p)) => p.clone(),
            _ => w.emergency.to_string(),
        };
        for l in d.wrap(&contact, 22.0, Face::Bold, BODY_W) {
            y -= 30.0;
            d.text_at(MARGIN_X, y, 22.0, Face::Bold, &l, black());
        }
        // the QR code, bottom right, above the footer; the URL beside it for those who type
        let bottom = 70.0;
        let x = PAGE_W - MARGIN_X - QR_SIDE;
        self.qr(&mut d, x, bottom)?;
        let text_w = BODY_W - QR_SIDE - 16.0;
        let mut ty = bottom + QR_SIDE - 20.0;
        for l in d.wrap(w.scan, 12.0, Face::Bold, text_w) {
            d.text_at(MARGIN_X, ty, 12.0, Face::Bold, &l, black());
            ty -= 16.0;
        }
        for l in d.wrap(&self.facts.public_url, 10.0, Face::Regular, text_w) {
            d.text_at(MARGIN_X, ty, 10.0, Face::Regular, &l, black());
            ty -= 13.0;
        }
        Ok(d)
    }

    /// Draws the QR code of [`Poster::public_url`] with its lower-left corner at `(x, y)`.
    fn qr(&self, d: &mut Doc, x: f32, y: f32) -> Result<(), ReportError> {
        let code =
            QrCode::with_error_correction_level(self.facts.public_url.as_bytes(), EcLevel::M)
                .map_err(|e| ReportError::Qr(e.to_string()))?;
        let n = code.width();
        let colors = code.to_colors();
        let module = QR_SIDE / (n + 2 * QUIET) as f32;
        let origin = (x + QUIET as f32 * module, y + QUIET as f32 * module);
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if colors[row * n + col] != qrcode::Color::Dark {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < n && colors[row * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                // rows run top to bottom, PDF y bottom to top; a hair of overlap downwards so
                // no light seam shows between rows when rasterised
                let top = origin.1 + (n - row) as f32 * module;
                d.rect(
                    origin.0 + start as f32 * module,
                    top - module - 0.05,
                    (col - start) as f32 * module,
                    module + 0.05,
                    black(),
                );
            }
        }
        Ok(())
    }

    /// The PDF bytes.
    pub fn render(&self) -> Result<Vec<u8>, ReportError> {
        Ok(self.layout()?.into_pdf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poster(lang: Lang) -> Poster {
        Poster {
            lang,
            case_id: 42,
            facts: PublicFacts {
                full_name: "María José Peña Núñez".into(),
                age: Some(15),
                gender: "female".into(),
                description: Some("Cabello castaño, chaqueta azul, mochila con cañón.".into()),
                last_seen_place: "Quito, La Mariscal".into(),
                last_seen_at: 1_763_649_000_000,
                agency: Some("DINASED".into()),
                phone: Some("+593 2 123 4567".into()),
                public_url: "https://lpm.example.org/public/cases/q3VnpP0eTt2oKx9Lh1mWbA".into(),
            },
        }
    }

    #[test]
    fn one_page_with_the_poster_fields_in_either_language() {
        for (lang, banner, age) in [
            (Lang::Es, "SE BUSCA", "15 años"),
            (Lang::En, "MISSING", "15 years"),
        ] {
            let pages = poster(lang).layout().expect("layout").into_pages();
            assert_eq!(pages.len(), 1);
            let texts = &pages[0].texts;
            for want in [
                banner,
                "María José Peña Núñez",
                age,
                "DINASED: +593 2 123 4567",
            ] {
                assert!(
                    texts.iter().any(|t| t == want),
                    "{want:?} missing: {texts:?}"
                );
            }
            assert!(texts.iter().any(|t| t.contains("Quito, La Mariscal")));
        }
    }

    #[test]
    fn without_an_agency_phone_it_names_the_emergency_line() {
        let mut p = poster(Lang::Es);
        (p.facts.agency, p.facts.phone) = (None, None);
        let texts = p.layout().expect("layout").into_pages().remove(0).texts;
        assert!(texts.iter().any(|t| t.contains("911")), "{texts:?}");
    }

    #[test]
    fn it_renders_a_pdf_and_refuses_a_url_too_long_for_a_qr_code() {
        let bytes = poster(Lang::Es).render().expect("pdf");
        assert!(bytes.starts_with(b"%PDF"));
        let mut long = poster(Lang::Es);
        long.facts.public_url = format!("https://x/{}", "a".repeat(5000));
        assert!(matches!(long.render(), Err(ReportError::Qr(_))));
    }
}
