//! The `hotspots` view's geometry: which H3 cell a report falls in, and the per-cell figures.
//!
//! The cell of a report is the H3 cell, at the configured resolution, of its (latitude,
//! longitude), each taken as the nearest IEEE-754 double of the exact decimal the source holds
//! (`shared/bench/README.md`, the `hotspots` row). The conversion is exact, never through a
//! decimal-to-float shortcut that could round twice: see [`to_f64`].

use h3o::LatLng;
/// Re-exported so that configuration code names the resolution without depending on h3o.
pub use h3o::{CellIndex, Resolution};
use serde::{Deserialize, Serialize};

use crate::model::{Decimal, Person};

/// The resolution used when none is configured (`--hotspots-resolution`): cells of ~5 km².
pub const DEFAULT_RESOLUTION: Resolution = Resolution::Seven;

/// The figures of one cell: what the dataflow outputs per cell and the JSON value of its key.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct CellFigures {
    /// `persons_lost` rows located in the cell.
    pub reports: i64,
    /// Open or in-progress cases whose person is in the cell.
    pub open_cases: i64,
    /// Of those, the cases whose person is a minor (`0 <= age < 18`).
    pub open_minor_cases: i64,
}

/// A resolution from its number (0..=15); `None` outside that range.
pub fn resolution(n: u8) -> Option<Resolution> {
    Resolution::try_from(n).ok()
}

/// The nearest double of an exact decimal.
///
/// When the unscaled value and the power of ten are both exactly representable (|unscaled| <
/// 2^53, scale <= 22: always so for `DECIMAL(9,6)`), one IEEE division of two exact operands is
/// correctly rounded, so it *is* the nearest double. Otherwise the decimal's exact text goes
/// through `str::parse`, which Rust also rounds correctly.
pub fn to_f64(d: Decimal) -> Option<f64> {
    const EXACT: i128 = 1 << 53;
    if d.unscaled.abs() < EXACT && d.scale <= 22 {
        let den = 10f64.powi(d.scale as i32);
        return Some(d.unscaled as f64 / den);
    }
    d.to_string().parse().ok()
}

/// The H3 cell of a point given as exact decimals; `None` if a coordinate is not finite.
pub fn cell_at(lat: Decimal, lng: Decimal, res: Resolution) -> Option<CellIndex> {
    let ll = LatLng::new(to_f64(lat)?, to_f64(lng)?).ok()?;
    Some(ll.to_cell(res))
}

/// The cell a report falls in; `None` when either coordinate is NULL (such reports are in no
/// cell, and their cases in no cell's figures).
pub fn cell_of(p: &Person, res: Resolution) -> Option<CellIndex> {
    cell_at(p.latitude?, p.longitude?, res)
}

/// A cell's key on every interface: its index in lower-case hex (`8766d33abffffff`).
pub fn cell_key(cell: u64) -> String {
    format!("{cell:x}")
}

/// A cell's center as (latitude, longitude) in degrees: where a map that draws points (Grafana's
/// Geomap) puts the cell.
pub fn cell_center(cell: CellIndex) -> (f64, f64) {
    let c = LatLng::from(cell);
    (c.lat(), c.lng())
}

/// The cell of a key written by [`cell_key`]; `None` for anything that is not a valid cell.
pub fn parse_cell_key(key: &str) -> Option<CellIndex> {
    let raw = u64::from_str_radix(key, 16).ok()?;
    CellIndex::try_from(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(unscaled: i128, scale: u32) -> Decimal {
        Decimal { unscaled, scale }
    }

    #[test]
    fn decimals_become_their_nearest_double() {
        for (d, text) in [
            (dec(-180_653, 6), "-0.180653"),
            (dec(-78_467_838, 6), "-78.467838"),
            (dec(1, 6), "0.000001"),
            (dec(90_000_000, 6), "90.000000"),
            (
                dec(123_456_789_012_345_678_901_234_567, 25),
                "12.3456789012345678901234567",
            ),
        ] {
            let want: f64 = text.parse().expect("literal");
            assert_eq!(to_f64(d).map(f64::to_bits), Some(want.to_bits()), "{text}");
        }
    }

    #[test]
    fn quito_at_resolution_7_is_the_cell_h3_gives() {
        // h3.latlng_to_cell(-0.180653, -78.467838, 7) with Uber's library
        let cell = cell_at(dec(-180_653, 6), dec(-78_467_838, 6), Resolution::Seven)
            .expect("a finite point");
        assert_eq!(cell_key(u64::from(cell)), "8766d33abffffff");
        assert_eq!(parse_cell_key("8766d33abffffff"), Some(cell));
        assert_eq!(parse_cell_key("not hex"), None);
        // the center is near the point the cell was made from, and inside the cell itself
        let (lat, lng) = cell_center(cell);
        assert!(
            (lat + 0.180653).abs() < 0.02 && (lng + 78.467838).abs() < 0.02,
            "{lat} {lng}"
        );
        assert_eq!(
            cell_at(
                dec((lat * 1e6).round() as i128, 6),
                dec((lng * 1e6).round() as i128, 6),
                Resolution::Seven
            ),
            Some(cell)
        );
    }

    #[test]
    fn a_report_without_both_coordinates_is_in_no_cell() {
        let mut p = Person {
            latitude: Some(dec(-180_653, 6)),
            ..Person::default()
        };
        assert_eq!(cell_of(&p, DEFAULT_RESOLUTION), None);
        p.longitude = Some(dec(-78_467_838, 6));
        assert!(cell_of(&p, DEFAULT_RESOLUTION).is_some());
    }
}
