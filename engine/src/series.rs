//! Time-series facts for the Grafana read API: counts of reports, case openings and case
//! closings per 15-minute UTC bucket and per dimension combination.
//!
//! Why 15 minutes in UTC: every real time-zone offset is a multiple of 15 minutes, so any IANA
//! zone's local hours and days are exact unions of these buckets. The API re-buckets them into
//! the zone and grain a query asks for, so one maintained collection serves every zone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dims::{AgeBand, Gender};
use crate::model::{EpochMs, Priority, Status};

/// The bucket width of [`SeriesKey::bucket`].
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// Which event a fact counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SeriesKind {
    /// A person reported (`persons_lost.reported_at`).
    Reported,
    /// A case opened (`case_cases.opened_at`).
    Opened,
    /// A case closed (`case_cases.closed_at`).
    Closed,
}

impl SeriesKind {
    /// Every kind.
    pub const ALL: [SeriesKind; 3] = [SeriesKind::Reported, SeriesKind::Opened, SeriesKind::Closed];

    /// A stable lower-case name (`reported`, `opened`, `closed`).
    pub fn name(self) -> &'static str {
        match self {
            SeriesKind::Reported => "reported",
            SeriesKind::Opened => "opened",
            SeriesKind::Closed => "closed",
        }
    }
}

/// One fact cell. Ordered by kind, then bucket, so a time range of one kind is one range scan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// What is counted.
    pub kind: SeriesKind,
    /// UTC epoch ms of the bucket start, a multiple of [`BUCKET_MS`].
    pub bucket: EpochMs,
    /// The person's gender (`Unknown` when a case has no person).
    pub gender: Gender,
    /// The person's age band (`Unknown` when a case has no person).
    pub age_band: AgeBand,
    /// The case status (`None` for a reported person without a case).
    pub status: Option<Status>,
    /// The case priority (`None` for a reported person without a case).
    pub priority: Option<Priority>,
}

/// The facts at one tick: `key -> count` (counts are always positive).
pub type Series = BTreeMap<SeriesKey, i64>;

/// The bucket holding `ms`.
pub fn bucket_of(ms: EpochMs) -> EpochMs {
    ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

/// The first key of `kind` at or after `from` (for `Series::range`).
pub fn range_start(kind: SeriesKind, from: EpochMs) -> SeriesKey {
    SeriesKey {
        kind,
        bucket: bucket_of(from),
        gender: Gender::Female,
        age_band: AgeBand::ALL[0],
        status: None,
        priority: None,
    }
}
