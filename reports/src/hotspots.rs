//! The top-cells report: the H3 cells of the `hotspots` view with the most reports, each with
//! its center, at one tick. The serving layer picks the cells the caller may see (read-only
//! tokens: only cells of at least `--hotspots-min-reports` reports, at
//! `--hotspots-reader-resolution` if set) and ranks them; here they
//! only become a page.

use crate::analytics::begin;
use crate::i18n::Key;
use crate::layout::{Column, Doc};
use crate::stamp::{DateRange, Stamp};
use crate::ReportError;

/// How many cells the table lists: enough to name the places that need attention, few enough
/// for one page.
pub const TOP_CELLS: usize = 10;

/// One cell as the table lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellLine {
    /// The H3 index in lower-case hex (the key of every interface).
    pub cell: String,
    /// Latitude of the cell's center, degrees.
    pub lat: f64,
    /// Longitude of the cell's center, degrees.
    pub lon: f64,
    /// Reports located in the cell.
    pub reports: i64,
    /// Open or in-progress cases whose person is in the cell.
    pub open_cases: i64,
    /// Of those, cases whose person is a minor.
    pub open_minor_cases: i64,
}

/// The cells with the most reports.
#[derive(Clone, Debug)]
pub struct HotspotsReport {
    /// Generation time, zone, tick, language.
    pub stamp: Stamp,
    /// The H3 resolution of the cells.
    pub resolution: u8,
    /// The fewest reports a cell needs to be shown to the caller (0: every cell).
    pub min_reports: i64,
    /// How many cells the caller may see in all.
    pub cells_shown: usize,
    /// At most [`TOP_CELLS`] cells, most reports first.
    pub top: Vec<CellLine>,
}

/// A coordinate with the six decimals lpm stores (about 0.1 m).
pub fn degrees(v: f64) -> String {
    format!("{v:.6}")
}

impl HotspotsReport {
    /// Laid out.
    pub fn layout(&self) -> Result<Doc, ReportError> {
        let s = &self.stamp;
        let tr = s.tr();
        let mut d = begin(
            s,
            Key::HotspotsTitle,
            &DateRange::default(),
            Key::SelectionHotspots,
        )?;
        d.heading(tr.t(Key::Summary));
        d.field(tr.t(Key::Resolution), &self.resolution.to_string());
        d.field(tr.t(Key::MinReports), &self.min_reports.to_string());
        d.field(tr.t(Key::CellsShown), &self.cells_shown.to_string());
        d.heading(&format!("{} ({})", tr.t(Key::CellsListed), self.top.len()));
        let body: Vec<Vec<String>> = self
            .top
            .iter()
            .map(|c| {
                vec![
                    c.cell.clone(),
                    degrees(c.lat),
                    degrees(c.lon),
                    c.reports.to_string(),
                    c.open_cases.to_string(),
                    c.open_minor_cases.to_string(),
                ]
            })
            .collect();
        d.table(
            &[
                Column::left(tr.t(Key::Cell), 1.6),
                Column::right(tr.t(Key::Latitude), 1.1),
                Column::right(tr.t(Key::Longitude), 1.2),
                Column::right(tr.t(Key::Reports), 0.9),
                Column::right(tr.t(Key::OpenCases), 1.0),
                Column::right(tr.t(Key::OpenMinors), 1.4),
            ],
            &body,
        );
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

    #[test]
    fn the_table_lists_each_cell_with_its_center_and_figures_in_both_languages() {
        let line = CellLine {
            cell: "8766d33abffffff".into(),
            lat: -0.180_653_4,
            lon: -78.467_838,
            reports: 6,
            open_cases: 5,
            open_minor_cases: 1,
        };
        for (lang, title) in [
            (Lang::Es, "Celdas con más denuncias"),
            (Lang::En, "Top cells by reports"),
        ] {
            let r = HotspotsReport {
                stamp: Stamp {
                    generated_at_ms: 1_795_462_205_000,
                    tz: chrono_tz::UTC,
                    tick: 9,
                    lang,
                },
                resolution: 7,
                min_reports: 5,
                cells_shown: 1,
                top: vec![line.clone()],
            };
            let t: Vec<String> = r
                .layout()
                .expect("layout")
                .into_pages()
                .into_iter()
                .flat_map(|p| p.texts)
                .collect();
            for w in [
                title,
                "8766d33abffffff",
                "-0.180653",
                "-78.467838",
                "6",
                "5",
                "1",
            ] {
                assert!(t.iter().any(|x| x == w), "{w} missing: {t:?}");
            }
            assert!(r.render().expect("pdf").starts_with(b"%PDF-"));
        }
    }
}
