//! What each caller may see of the `hotspots` view: the cells at one resolution, of at least so
//! many reports. People who see personal data get the fine cells, every one; read-only tokens
//! get cells of at least `--hotspots-min-reports` reports, at `--hotspots-reader-resolution`
//! when that is set (coarser cells, so a dashboard shared with the public cannot narrow a
//! report down to a few streets).
//!
//! The engine keeps the view at both resolutions as two exact views (one reduce each), so the
//! coarse cells are not a sum of fine ones drawn at serving time: their rows stream as diffs
//! like any other, and each equals `oracle.py --hotspots R` at its own resolution. (H3 cells
//! do not nest exactly: the cell at 5 of a point is not always the parent of its cell at 7,
//! so the two are computed from the points, not from each other.)

use lpm_engine::hotspots::{CellIndex, Resolution, DEFAULT_RESOLUTION};
use lpm_engine::views::CellFigures;

use crate::auth::Principal;

/// The `hotspots` view's serving options.
#[derive(Clone, Copy, Debug)]
pub struct HotspotsConfig {
    /// H3 resolution of the cells (`--hotspots-resolution`).
    pub resolution: Resolution,
    /// Read-only tokens see only cells with at least this many reports
    /// (`--hotspots-min-reports`): a cell of one or two reports could locate a person.
    pub min_reports: i64,
    /// The resolution read-only tokens see (`--hotspots-reader-resolution`), no finer than
    /// `resolution` ([`HotspotsConfig::check`]); `None`: the same cells as everyone.
    pub reader_resolution: Option<Resolution>,
}

impl Default for HotspotsConfig {
    fn default() -> HotspotsConfig {
        HotspotsConfig {
            resolution: DEFAULT_RESOLUTION,
            min_reports: 5,
            reader_resolution: None,
        }
    }
}

/// A reader resolution finer than the view's: readers would see more than the people who see
/// everything.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--hotspots-reader-resolution ({reader}) must not be finer than --hotspots-resolution ({fine}): read-only tokens see the same cells or coarser ones"
)]
pub struct FinerReaderResolution {
    /// The reader resolution asked for.
    pub reader: u8,
    /// The view's resolution.
    pub fine: u8,
}

impl HotspotsConfig {
    /// Refuses a reader resolution finer than the view's.
    pub fn check(&self) -> Result<(), FinerReaderResolution> {
        match self.reader_resolution {
            Some(r) if r > self.resolution => Err(FinerReaderResolution {
                reader: u8::from(r),
                fine: u8::from(self.resolution),
            }),
            _ => Ok(()),
        }
    }

    /// The resolutions the engine keeps the view at: the configured one, then the readers'
    /// when it is coarser (the same one twice would count every report twice in one map).
    pub fn resolutions(&self) -> Vec<Resolution> {
        let mut out = vec![self.resolution];
        out.extend(self.reader_resolution.filter(|r| *r < self.resolution));
        out
    }

    /// What `who` sees: every cell at the view's resolution for people who see personal data;
    /// cells of `min_reports` or more, at the readers' resolution if set, for read-only tokens.
    pub fn view_for(&self, who: &Principal) -> CellView {
        if who.sees_personal_data() {
            CellView {
                resolution: self.resolution,
                min_reports: 0,
            }
        } else {
            CellView {
                resolution: self.reader_resolution.unwrap_or(self.resolution),
                min_reports: self.min_reports,
            }
        }
    }
}

/// What one caller sees of the `hotspots` view. Every route, stream and report that shows
/// cells filters through [`CellView::shows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CellView {
    /// The resolution of the cells shown.
    pub resolution: Resolution,
    /// The fewest reports a shown cell holds (0: every cell).
    pub min_reports: i64,
}

impl CellView {
    /// Whether the cell `cell` with `figures` is shown. A row is judged on its own, so a
    /// client applying filtered diffs holds exactly the filtered state: a cell falling under
    /// the threshold arrives as its old row's removal.
    pub fn shows(&self, cell: u64, figures: &CellFigures) -> bool {
        figures.reports >= self.min_reports
            && CellIndex::try_from(cell).is_ok_and(|c| c.resolution() == self.resolution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(fine: Resolution, reader: Option<Resolution>) -> HotspotsConfig {
        HotspotsConfig {
            resolution: fine,
            min_reports: 5,
            reader_resolution: reader,
        }
    }

    #[test]
    fn readers_get_the_same_or_a_coarser_resolution() {
        let c = config(Resolution::Seven, None);
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.resolutions(), vec![Resolution::Seven]);
        let c = config(Resolution::Seven, Some(Resolution::Seven));
        assert_eq!(c.resolutions(), vec![Resolution::Seven]);
        let c = config(Resolution::Seven, Some(Resolution::Five));
        assert_eq!(c.check(), Ok(()));
        assert_eq!(c.resolutions(), vec![Resolution::Seven, Resolution::Five]);
        let err = config(Resolution::Seven, Some(Resolution::Eight))
            .check()
            .expect_err("finer is refused");
        assert!(err.to_string().contains("--hotspots-reader-resolution (8)"));
    }

    #[test]
    fn a_view_shows_cells_of_its_resolution_and_threshold_only() {
        let quito = lpm_engine::hotspots::parse_cell_key("8766d33abffffff").expect("a cell");
        let coarse = quito.parent(Resolution::Five).expect("a parent");
        let f = |reports| CellFigures {
            reports,
            ..CellFigures::default()
        };
        let view = CellView {
            resolution: Resolution::Five,
            min_reports: 5,
        };
        assert!(view.shows(u64::from(coarse), &f(5)));
        assert!(!view.shows(u64::from(coarse), &f(4)));
        assert!(!view.shows(u64::from(quito), &f(50)), "a finer cell");
        assert!(!view.shows(0, &f(50)), "not a cell");
    }
}
