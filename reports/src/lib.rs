//! lpm's PDF reports. Plain data structs in ([`CaseReport`], [`OperationalReport`],
//! [`DemographicReport`], [`HourlyReport`], [`SensitiveReport`], [`HotspotsReport`]), A4 PDF
//! bytes out.
//!
//! The crate knows nothing of HTTP or of the engine: the serving layer reads the engine once,
//! at one tick, fills these structs and calls `render`. Every report is in Spanish by default
//! or in English ([`Lang`]), states when it was generated (UTC and the chosen time zone) and
//! the engine tick its numbers come from, and numbers its pages "Página N de M".
//! Text is set in DejaVu Sans, embedded (`fonts/LICENSE`).
#![deny(missing_docs)]

pub mod analytics;
pub mod case;
pub mod fonts;
pub mod hotspots;
pub mod i18n;
pub mod layout;
pub mod note;
pub mod poster;
pub mod stamp;

pub use analytics::{
    CaseLine, DemographicReport, HourlyReport, OperationalReport, SensitiveCounts, SensitiveReport,
};
pub use case::{
    ActionLine, CaseInfo, CaseReport, HistoryLine, PersonInfo, ResponsibleInfo, SightingLine,
};
pub use hotspots::{CellLine, HotspotsReport, TOP_CELLS};
pub use i18n::{Lang, Tr};
pub use note::ActionNote;
pub use poster::{Poster, PublicFacts};
pub use stamp::{DateRange, Stamp};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The embedded font did not parse (a broken build, never input).
    #[error("the embedded font could not be parsed")]
    Font,
    /// The poster's URL does not fit in a QR code (thousands of bytes: a misconfigured
    /// `--public-base-url`).
    #[error("the QR code cannot hold the URL: {0}")]
    Qr(String),
}
