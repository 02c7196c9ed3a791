//! A4 page layout on top of printpdf's operations: a running header, a footer with
//! "Página N de M", wrapped paragraphs, label/value fields, tables that flow onto further pages
//! with their header row repeated, and bar charts drawn with rectangles.
//!
//! printpdf draws what it is told where it is told; it does not flow text. So this module keeps
//! a cursor (`y`, in points from the bottom) and opens a new page whenever the next block would
//! cross the bottom margin. Page numbers need the page count, so the footers are added when the
//! document is finished. Every text drawn is also recorded per page, so layout tests can check
//! what went where without parsing a PDF.

use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfPage, PdfSaveOptions, Point,
    Polygon, PolygonRing, Pt, Rgb, TextItem, WindingOrder,
};

use crate::fonts::{Face, Fonts};
use crate::i18n::{Key, Tr};
use crate::ReportError;

/// A4 width in points.
pub const PAGE_W: f32 = 595.28;
/// A4 height in points.
pub const PAGE_H: f32 = 841.89;
/// Left and right margin.
pub const MARGIN_X: f32 = 42.0;
const TOP: f32 = PAGE_H - 40.0;
/// The body starts below the running header.
const BODY_TOP: f32 = PAGE_H - 78.0;
/// The body ends above the footer.
const BODY_BOTTOM: f32 = 52.0;
/// Usable width.
pub const BODY_W: f32 = PAGE_W - 2.0 * MARGIN_X;

const BODY_SIZE: f32 = 9.0;
const SMALL_SIZE: f32 = 7.5;
const CELL_SIZE: f32 = 8.0;
const CELL_PAD: f32 = 3.0;

/// Colours used by the layout (greys and one blue).
fn grey(v: f32) -> Color {
    Color::Rgb(Rgb {
        r: v,
        g: v,
        b: v,
        icc_profile: None,
    })
}

fn blue() -> Color {
    Color::Rgb(Rgb {
        r: 0.16,
        g: 0.38,
        b: 0.66,
        icc_profile: None,
    })
}

/// Horizontal alignment of a table column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text starts at the left edge.
    Left,
    /// Text ends at the right edge (numbers).
    Right,
}

/// A table column: its title, its share of the body width and its alignment.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header text.
    pub title: String,
    /// Relative width (the widths of a table are normalised to the body width).
    pub weight: f32,
    /// Alignment.
    pub align: Align,
}

impl Column {
    /// A left-aligned column.
    pub fn left(title: &str, weight: f32) -> Column {
        Column {
            title: title.to_string(),
            weight,
            align: Align::Left,
        }
    }

    /// A right-aligned (numeric) column.
    pub fn right(title: &str, weight: f32) -> Column {
        Column {
            title: title.to_string(),
            weight,
            align: Align::Right,
        }
    }
}

/// One page being built: its drawing operations and, for tests, every text drawn on it.
#[derive(Default)]
pub struct Page {
    ops: Vec<Op>,
    /// The texts drawn on this page, in drawing order.
    pub texts: Vec<String>,
}

/// A document being laid out.
pub struct Doc {
    doc: PdfDocument,
    regular: FontId,
    bold: FontId,
    fonts: std::rc::Rc<Fonts>,
    tr: Tr,
    /// Running header: the report title.
    title: String,
    /// Running header, second line (generated-at and tick).
    stamp: String,
    /// Footer, left side.
    footer: String,
    pages: Vec<Page>,
    y: f32,
}

impl Doc {
    /// A new document with one empty page. `title` and `stamp` repeat on every page.
    pub fn new(title: &str, stamp: &str, footer: &str, tr: Tr) -> Result<Doc, ReportError> {
        let fonts = Fonts::get()?;
        let mut doc = PdfDocument::new(title);
        let regular = doc.add_font(fonts.face(Face::Regular));
        let bold = doc.add_font(fonts.face(Face::Bold));
        let mut d = Doc {
            doc,
            regular,
            bold,
            fonts,
            tr,
            title: title.to_string(),
            stamp: stamp.to_string(),
            footer: footer.to_string(),
            pages: Vec::new(),
            y: BODY_TOP,
        };
        d.new_page();
        Ok(d)
    }

    /// The words of this document's language.
    pub fn tr(&self) -> Tr {
        self.tr
    }

    /// Pages so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page with the running header.
    pub fn new_page(&mut self) {
        self.pages.push(Page::default());
        let (title, stamp) = (self.title.clone(), self.stamp.clone());
        self.text_at(MARGIN_X, TOP, 13.0, Face::Bold, &title, grey(0.1));
        self.text_at(
            MARGIN_X,
            TOP - 14.0,
            SMALL_SIZE,
            Face::Regular,
            &stamp,
            grey(0.35),
        );
        self.hline(TOP - 22.0, 0.6, grey(0.6));
        self.y = BODY_TOP;
    }

    /// Makes room for `h` points, opening a new page if the body has less left.
    /// Returns whether a page was opened.
    pub fn ensure(&mut self, h: f32) -> bool {
        if self.y - h < BODY_BOTTOM {
            self.new_page();
            true
        } else {
            false
        }
    }

    /// Width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32, face: Face) -> f32 {
        self.fonts.width(text, size, face)
    }

    fn font(&self, face: Face) -> FontId {
        match face {
            Face::Regular => self.regular.clone(),
            Face::Bold => self.bold.clone(),
        }
    }

    /// Draws `text` with its baseline at `(x, y)`.
    pub fn text_at(&mut self, x: f32, y: f32, size: f32, face: Face, text: &str, col: Color) {
        if text.is_empty() {
            return;
        }
        let font = self.font(face);
        let page = self.page();
        page.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor { col },
            Op::SetFontSize {
                size: Pt(size),
                font: font.clone(),
            },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::WriteText {
                items: vec![TextItem::Text(text.to_string())],
                font,
            },
            Op::EndTextSection,
        ]);
        page.texts.push(text.to_string());
    }

    /// A filled rectangle with its lower-left corner at `(x, y)`.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, col: Color) {
        let p = |x: f32, y: f32| LinePoint {
            p: Point { x: Pt(x), y: Pt(y) },
            bezier: false,
        };
        self.page().ops.extend([
            Op::SaveGraphicsState,
            Op::SetFillColor { col },
            Op::DrawPolygon {
                polygon: Polygon {
                    rings: vec![PolygonRing {
                        points: vec![p(x, y), p(x + w, y), p(x + w, y + h), p(x, y + h)],
                    }],
                    mode: PaintMode::Fill,
                    winding_order: WindingOrder::NonZero,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    /// A horizontal rule across the body at height `y`.
    pub fn hline(&mut self, y: f32, thickness: f32, col: Color) {
        self.line(MARGIN_X, y, PAGE_W - MARGIN_X, y, thickness, col);
    }

    fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, thickness: f32, col: Color) {
        let p = |x: f32, y: f32| LinePoint {
            p: Point { x: Pt(x), y: Pt(y) },
            bezier: false,
        };
        self.page().ops.extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor { col },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: Line {
                    points: vec![p(x0, y0), p(x1, y1)],
                    is_closed: false,
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    /// Breaks `text` into lines no wider than `max` (explicit newlines kept; a word longer
    /// than a line is cut).
    pub fn wrap(&self, text: &str, size: f32, face: Face, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in para.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate, size, face) <= max {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // the word alone may still be too wide: cut it by characters
                let mut piece = String::new();
                for c in word.chars() {
                    piece.push(c);
                    if self.width(&piece, size, face) > max && piece.chars().count() > 1 {
                        piece.pop();
                        lines.push(std::mem::take(&mut piece));
                        piece.push(c);
                    }
                }
                line = piece;
            }
            lines.push(line);
        }
        while lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// A section heading (kept with at least a few lines of what follows).
    pub fn heading(&mut self, text: &str) {
        self.ensure(60.0);
        self.y -= 8.0;
        self.text_at(MARGIN_X, self.y - 11.0, 11.0, Face::Bold, text, blue());
        self.y -= 17.0;
    }

    /// A wrapped paragraph.
    pub fn paragraph(&mut self, text: &str) {
        let lines = self.wrap(text, BODY_SIZE, Face::Regular, BODY_W);
        for l in lines {
            self.ensure(12.0);
            self.text_at(
                MARGIN_X,
                self.y - 9.0,
                BODY_SIZE,
                Face::Regular,
                &l,
                grey(0.1),
            );
            self.y -= 12.0;
        }
        self.y -= 3.0;
    }

    /// A `label: value` row; the value wraps in its own column, which starts after the label
    /// when the label is longer than the usual label column.
    pub fn field(&mut self, label: &str, value: &str) {
        let label_w = (self.width(label, BODY_SIZE, Face::Bold) + 14.0).max(150.0);
        let lines = self.wrap(value, BODY_SIZE, Face::Regular, BODY_W - label_w);
        self.ensure(12.0);
        self.text_at(
            MARGIN_X,
            self.y - 9.0,
            BODY_SIZE,
            Face::Bold,
            label,
            grey(0.25),
        );
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                self.ensure(12.0);
            }
            self.text_at(
                MARGIN_X + label_w,
                self.y - 9.0,
                BODY_SIZE,
                Face::Regular,
                l,
                grey(0.05),
            );
            self.y -= 12.0;
        }
    }

    /// Vertical space.
    pub fn gap(&mut self, h: f32) {
        self.y -= h;
    }

    fn column_x(columns: &[Column]) -> Vec<(f32, f32)> {
        let total: f32 = columns.iter().map(|c| c.weight.max(0.01)).sum();
        let mut x = MARGIN_X;
        columns
            .iter()
            .map(|c| {
                let w = BODY_W * c.weight.max(0.01) / total;
                let r = (x, w);
                x += w;
                r
            })
            .collect()
    }

    fn table_header(&mut self, columns: &[Column], xs: &[(f32, f32)]) {
        let h = CELL_SIZE + 2.0 * CELL_PAD + 2.0;
        self.rect(MARGIN_X, self.y - h, BODY_W, h, grey(0.88));
        for (c, (x, w)) in columns.iter().zip(xs) {
            let tx = match c.align {
                Align::Left => x + CELL_PAD,
                Align::Right => x + w - CELL_PAD - self.width(&c.title, CELL_SIZE, Face::Bold),
            };
            let title = c.title.clone();
            self.text_at(
                tx,
                self.y - h + CELL_PAD + 2.5,
                CELL_SIZE,
                Face::Bold,
                &title,
                grey(0.1),
            );
        }
        self.y -= h;
    }

    /// A table; rows wrap inside their cells, and when a row does not fit the table goes on
    /// on a new page under a repeated header row. An empty table prints "no rows".
    pub fn table(&mut self, columns: &[Column], rows: &[Vec<String>]) {
        let xs = Self::column_x(columns);
        let line_h = CELL_SIZE + 2.5;
        let header_h = CELL_SIZE + 2.0 * CELL_PAD + 2.0;
        self.ensure(header_h + line_h + 2.0 * CELL_PAD);
        self.table_header(columns, &xs);
        if rows.is_empty() {
            let none = self.tr.t(Key::NoRows);
            self.text_at(
                MARGIN_X + CELL_PAD,
                self.y - CELL_PAD - CELL_SIZE,
                CELL_SIZE,
                Face::Regular,
                none,
                grey(0.35),
            );
            self.y -= line_h + 2.0 * CELL_PAD;
        }
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<Vec<String>> = columns
                .iter()
                .zip(&xs)
                .enumerate()
                .map(|(j, (_, (_, w)))| {
                    let text = row.get(j).map(String::as_str).unwrap_or("");
                    self.wrap(text, CELL_SIZE, Face::Regular, w - 2.0 * CELL_PAD)
                })
                .collect();
            let n = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = n as f32 * line_h + 2.0 * CELL_PAD;
            if self.ensure(h) {
                self.table_header(columns, &xs);
            }
            if i % 2 == 1 {
                self.rect(MARGIN_X, self.y - h, BODY_W, h, grey(0.96));
            }
            for ((c, (x, w)), lines) in columns.iter().zip(&xs).zip(&cells) {
                for (k, l) in lines.iter().enumerate() {
                    let tx = match c.align {
                        Align::Left => x + CELL_PAD,
                        Align::Right => x + w - CELL_PAD - self.width(l, CELL_SIZE, Face::Regular),
                    };
                    let ty = self.y - CELL_PAD - CELL_SIZE - k as f32 * line_h;
                    self.text_at(tx, ty, CELL_SIZE, Face::Regular, l, grey(0.05));
                }
            }
            self.y -= h;
        }
        self.hline(self.y, 0.4, grey(0.7));
        self.y -= 8.0;
    }

    /// A vertical bar chart: one bar per `(label, value)`, the value printed above the bar
    /// and the label below it (every k-th label when there are too many to fit).
    pub fn bar_chart(&mut self, title: &str, bars: &[(String, u64)]) {
        let chart_h = 130.0;
        let label_h = 24.0;
        self.ensure(chart_h + label_h + 24.0);
        self.text_at(
            MARGIN_X,
            self.y - 10.0,
            BODY_SIZE,
            Face::Bold,
            title,
            grey(0.2),
        );
        self.y -= 18.0;
        let base = self.y - chart_h;
        let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        let n = bars.len().max(1) as f32;
        let slot = BODY_W / n;
        let bar_w = (slot * 0.7).max(1.0);
        let widest = bars
            .iter()
            .map(|(l, _)| self.width(l, SMALL_SIZE, Face::Regular))
            .fold(0.0f32, f32::max);
        let every = ((widest + 4.0) / slot).ceil().max(1.0) as usize;
        self.line(MARGIN_X, base, PAGE_W - MARGIN_X, base, 0.6, grey(0.4));
        for (i, (label, v)) in bars.iter().enumerate() {
            let x = MARGIN_X + i as f32 * slot + (slot - bar_w) / 2.0;
            let h = (chart_h - 14.0) * (*v as f32) / (max as f32);
            if *v > 0 {
                self.rect(x, base, bar_w, h.max(0.5), blue());
            }
            let vs = v.to_string();
            if self.width(&vs, SMALL_SIZE, Face::Regular) <= slot || i % every == 0 {
                let vw = self.width(&vs, SMALL_SIZE, Face::Regular);
                self.text_at(
                    x + bar_w / 2.0 - vw / 2.0,
                    base + h + 3.0,
                    SMALL_SIZE,
                    Face::Regular,
                    &vs,
                    grey(0.2),
                );
            }
            if i % every == 0 {
                let lw = self.width(label, SMALL_SIZE, Face::Regular);
                self.text_at(
                    x + bar_w / 2.0 - lw / 2.0,
                    base - 10.0,
                    SMALL_SIZE,
                    Face::Regular,
                    label,
                    grey(0.2),
                );
            }
        }
        self.y = base - label_h;
    }

    /// Adds the footers (needs the page count) and returns the pages.
    fn numbered(mut self) -> (PdfDocument, Vec<Page>) {
        let total = self.pages.len();
        let pages = std::mem::take(&mut self.pages);
        let mut out = Vec::with_capacity(total);
        let tr = self.tr;
        let footer = self.footer.clone();
        for (i, page) in pages.into_iter().enumerate() {
            self.pages = vec![page];
            self.hline(BODY_BOTTOM - 12.0, 0.4, grey(0.7));
            self.text_at(
                MARGIN_X,
                BODY_BOTTOM - 24.0,
                SMALL_SIZE,
                Face::Regular,
                &footer,
                grey(0.35),
            );
            let n = format!("{} {} {} {}", tr.t(Key::Page), i + 1, tr.t(Key::Of), total);
            let w = self.width(&n, SMALL_SIZE, Face::Regular);
            self.text_at(
                PAGE_W - MARGIN_X - w,
                BODY_BOTTOM - 24.0,
                SMALL_SIZE,
                Face::Regular,
                &n,
                grey(0.2),
            );
            out.append(&mut self.pages);
        }
        (self.doc, out)
    }

    /// The finished pages (with footers), without producing a PDF: for layout tests.
    pub fn into_pages(self) -> Vec<Page> {
        self.numbered().1
    }

    /// The PDF bytes.
    pub fn into_pdf(self) -> Vec<u8> {
        let (mut doc, pages) = self.numbered();
        let pages = pages
            .into_iter()
            .map(|p| PdfPage::new(Mm(210.0), Mm(297.0), p.ops))
            .collect();
        doc.with_pages(pages);
        doc.save(&PdfSaveOptions::default(), &mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn doc(lang: Lang) -> Doc {
        Doc::new("Título", "sello", "pie", Tr::new(lang)).expect("doc")
    }

    #[test]
    fn a_long_table_flows_onto_new_pages_with_the_header_repeated() {
        let mut d = doc(Lang::Es);
        let cols = [Column::left("Columna A", 1.0), Column::right("Número", 1.0)];
        let rows: Vec<Vec<String>> = (0..150)
            .map(|i| vec![format!("fila {i}"), i.to_string()])
            .collect();
        d.table(&cols, &rows);
        let pages = d.into_pages();
        assert!(pages.len() >= 3, "150 rows fit on {} pages", pages.len());
        for (i, p) in pages.iter().enumerate() {
            assert!(
                p.texts.iter().any(|t| t == "Columna A"),
                "page {i} has no header row"
            );
            assert!(
                p.texts.iter().any(|t| t == "Título"),
                "page {i} has no title"
            );
        }
        // every row exactly once, in order
        let seen: Vec<&String> = pages
            .iter()
            .flat_map(|p| p.texts.iter())
            .filter(|t| t.starts_with("fila "))
            .collect();
        assert_eq!(seen.len(), 150);
        assert_eq!(seen[149], "fila 149");
    }

    #[test]
    fn every_page_is_numbered_n_of_m_in_the_document_language() {
        for (lang, word, of) in [(Lang::Es, "Página", "de"), (Lang::En, "Page", "of")] {
            let mut d = doc(lang);
            for i in 0..200 {
                d.paragraph(&format!("párrafo {i}"));
            }
            let pages = d.into_pages();
            let m = pages.len();
            assert!(m >= 3);
            for (i, p) in pages.iter().enumerate() {
                let want = format!("{word} {} {of} {m}", i + 1);
                assert!(
                    p.texts.contains(&want),
                    "page {i} lacks {want:?}: {:?}",
                    p.texts
                );
            }
        }
    }

    #[test]
    fn long_cells_and_paragraphs_wrap_within_their_width() {
        let d = doc(Lang::Es);
        let text = "búsqueda en el río ".repeat(30);
        let lines = d.wrap(&text, 9.0, Face::Regular, 200.0);
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(d.width(l, 9.0, Face::Regular) <= 200.0, "{l:?} too wide");
        }
        let joined = lines.join(" ");
        assert_eq!(
            joined.split_whitespace().count(),
            text.split_whitespace().count()
        );
        // one unbreakable word is cut rather than overflowing
        let long = "x".repeat(400);
        for l in d.wrap(&long, 9.0, Face::Regular, 100.0) {
            assert!(d.width(&l, 9.0, Face::Regular) <= 100.0);
        }
    }

    #[test]
    fn an_empty_table_says_so_and_the_pdf_starts_with_the_magic() {
        let mut d = doc(Lang::En);
        d.table(&[Column::left("A", 1.0)], &[]);
        d.bar_chart("chart", &[("a".into(), 3), ("b".into(), 0)]);
        let pdf = d.into_pdf();
        assert!(pdf.starts_with(b"%PDF-"));
        let mut d = doc(Lang::En);
        d.table(&[Column::left("A", 1.0)], &[]);
        assert!(d.into_pages()[0].texts.iter().any(|t| t == "No rows."));
    }
}
