//! The embedded fonts (DejaVu Sans, Bitstream Vera licence: `reports/fonts/LICENSE`), parsed
//! once per process, and text width measurement from their glyph advances.
//!
//! The fonts are compiled into the binary so a report looks, and extracts, the same on every
//! machine: no system font lookup, and accents and ñ are always covered.

use std::rc::Rc;

use printpdf::ParsedFont;

use crate::ReportError;

const REGULAR_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// Regular or bold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
}

/// Both faces, parsed.
pub struct Fonts {
    regular: ParsedFont,
    bold: ParsedFont,
}

thread_local! {
    // printpdf's parsed fonts hold `Rc`s (neither Send nor Sync), so each thread that renders
    // parses them once and keeps them; the server renders on its blocking pool, whose threads
    // are reused.
    static FONTS: Option<Rc<Fonts>> = Fonts::parse().map(Rc::new);
}

impl Fonts {
    fn parse() -> Option<Fonts> {
        let regular = ParsedFont::from_bytes(REGULAR_TTF, 0, &mut Vec::new())?;
        let bold = ParsedFont::from_bytes(BOLD_TTF, 0, &mut Vec::new())?;
        Some(Fonts { regular, bold })
    }

    /// This thread's fonts, parsed on its first use.
    pub fn get() -> Result<Rc<Fonts>, ReportError> {
        FONTS.with(|f| f.clone()).ok_or(ReportError::Font)
    }

    /// One face.
    pub fn face(&self, face: Face) -> &ParsedFont {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
        }
    }

    /// Width of `text` at `size` points (sum of glyph advances; no kerning, as printpdf writes
    /// none either).
    pub fn width(&self, text: &str, size: f32, face: Face) -> f32 {
        let f = self.face(face);
        let upm = f32::from(f.font_metrics.units_per_em.max(1));
        // glyphs without an outline (the space) are missing from printpdf's decoded glyph
        // records and report no advance: take the font's space width for them
        let space = f.get_space_width().unwrap_or(0) as u32;
        let units: u32 = text
            .chars()
            .map(|c| {
                match f
                    .lookup_glyph_index(c as u32)
                    .map(|g| u32::from(f.get_horizontal_advance(g)))
                {
                    Some(0) | None if c.is_whitespace() => space,
                    Some(w) => w,
                    None => 0,
                }
            })
            .sum();
        units as f32 * size / upm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fonts_cover_spanish_letters_and_widths_grow_with_text() {
        let fonts = Fonts::get().expect("fonts");
        for face in [Face::Regular, Face::Bold] {
            for c in "áéíóúÁÉÍÓÚñÑüÜ¿¡·×–".chars() {
                assert!(
                    fonts.face(face).lookup_glyph_index(c as u32).is_some(),
                    "{c} missing in {face:?}"
                );
            }
        }
        let a = fonts.width("Muñoz", 10.0, Face::Regular);
        let b = fonts.width("Muñoz Peñalver", 10.0, Face::Regular);
        assert!(a > 10.0 && b > a, "{a} {b}");
        assert!(fonts.width("Muñoz", 10.0, Face::Bold) > a);
        // a space has a width (DejaVu Sans: 651/2048 em)
        let space =
            fonts.width("a b", 10.0, Face::Regular) - fonts.width("ab", 10.0, Face::Regular);
        assert!((space - 3.18).abs() < 0.05, "space is {space} pt");
    }
}
