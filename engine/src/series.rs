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

/// One value of one dimension, or all of them: what a [`RollupKey`] totals.
///
/// The variant order groups a bucket range of one dimension together (see [`RollupKey`]);
/// `Start` sorts before every value so it can bound a range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Margin {
    /// The lower bound of a range (never stored).
    Start,
    /// Every fact of the bucket.
    Total,
    /// The facts of one gender.
    Gender(Gender),
    /// The facts of one age band.
    AgeBand(AgeBand),
    /// The facts of one status (`None`: reports without a case).
    Status(Option<Status>),
    /// The facts of one priority (`None`: reports without a case).
    Priority(Option<Priority>),
}

/// Which part of the rollup a [`Margin`] lives in: the first component of the order, so the
/// buckets of one dimension over a time range are one contiguous range of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarginDim {
    /// [`Margin::Total`]
    Total,
    /// [`Margin::Gender`]
    Gender,
    /// [`Margin::AgeBand`]
    AgeBand,
    /// [`Margin::Status`]
    Status,
    /// [`Margin::Priority`]
    Priority,
}

/// A key of the [`Rollup`]: kind, dimension, bucket, value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    /// What is counted.
    pub kind: SeriesKind,
    /// Which dimension `margin` is a value of.
    pub dim: MarginDim,
    /// UTC epoch ms of the bucket start.
    pub bucket: EpochMs,
    /// The value totalled.
    pub margin: Margin,
}

/// The facts summed per (kind, bucket) and per single-dimension value: what a query that
/// filters or splits by at most one dimension reads, so its cost is the number of buckets in
/// its range times that dimension's values, whatever the number of persons. (The facts
/// themselves hold every combination of the four dimensions per bucket, which grows with the
/// data: a 7-day query over them walked about 16x more facts at 1M persons than at 10k.)
pub type Rollup = BTreeMap<RollupKey, i64>;

/// The first key of `dim` of `kind` at or after bucket `from`.
pub fn rollup_start(kind: SeriesKind, dim: MarginDim, from: EpochMs) -> RollupKey {
    RollupKey {
        kind,
        dim,
        bucket: bucket_of(from),
        margin: Margin::Start,
    }
}

/// Adds `delta` to every margin of `fact` (a fact's count changed by `delta`), dropping
/// margins that reach zero so the rollup holds only buckets with data, like the facts.
pub fn roll(rollup: &mut Rollup, fact: &SeriesKey, delta: i64) {
    if delta == 0 {
        return;
    }
    let margins = [
        (MarginDim::Total, Margin::Total),
        (MarginDim::Gender, Margin::Gender(fact.gender)),
        (MarginDim::AgeBand, Margin::AgeBand(fact.age_band)),
        (MarginDim::Status, Margin::Status(fact.status.clone())),
        (MarginDim::Priority, Margin::Priority(fact.priority.clone())),
    ];
    for (dim, margin) in margins {
        let key = RollupKey {
            kind: fact.kind,
            dim,
            bucket: fact.bucket,
            margin,
        };
        let n = rollup.entry(key.clone()).or_insert(0);
        *n += delta;
        if *n == 0 {
            rollup.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(kind: SeriesKind, bucket: i64, gender: Gender, status: Option<Status>) -> SeriesKey {
        SeriesKey {
            kind,
            bucket,
            gender,
            age_band: AgeBand::Adult,
            status,
            priority: None,
        }
    }

    /// The rollup equals the facts summed by brute force, after inserts, changes and removals.
    #[test]
    fn rollup_is_the_sum_of_the_facts() {
        let facts = [
            (
                fact(SeriesKind::Opened, 0, Gender::Female, Some(Status::Open)),
                3,
            ),
            (
                fact(SeriesKind::Opened, 0, Gender::Male, Some(Status::Open)),
                2,
            ),
            (fact(SeriesKind::Opened, BUCKET_MS, Gender::Male, None), 5),
            (
                fact(SeriesKind::Closed, 0, Gender::Male, Some(Status::Closed)),
                1,
            ),
        ];
        let mut rollup = Rollup::new();
        for (k, n) in &facts {
            roll(&mut rollup, k, *n);
        }
        let get = |r: &Rollup, kind, dim, bucket, margin| {
            r.get(&RollupKey {
                kind,
                dim,
                bucket,
                margin,
            })
            .copied()
        };
        let total = get(
            &rollup,
            SeriesKind::Opened,
            MarginDim::Total,
            0,
            Margin::Total,
        );
        assert_eq!(total, Some(5));
        let male = Margin::Gender(Gender::Male);
        assert_eq!(
            get(
                &rollup,
                SeriesKind::Opened,
                MarginDim::Gender,
                0,
                male.clone()
            ),
            Some(2)
        );
        let open = Margin::Status(Some(Status::Open));
        assert_eq!(
            get(
                &rollup,
                SeriesKind::Opened,
                MarginDim::Status,
                0,
                open.clone()
            ),
            Some(5)
        );
        // one dimension's range over two buckets holds that dimension only
        let lo = rollup_start(SeriesKind::Opened, MarginDim::Gender, 0);
        let hi = rollup_start(SeriesKind::Opened, MarginDim::Gender, 2 * BUCKET_MS);
        let seen: Vec<(i64, Margin, i64)> = rollup
            .range(lo..hi)
            .map(|(k, n)| (k.bucket, k.margin.clone(), *n))
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, Margin::Gender(Gender::Female), 3),
                (0, male.clone(), 2),
                (BUCKET_MS, male.clone(), 5),
            ]
        );
        // removing every fact empties the rollup
        for (k, n) in &facts {
            roll(&mut rollup, k, -n);
        }
        assert!(rollup.is_empty(), "{rollup:?}");
    }
}
