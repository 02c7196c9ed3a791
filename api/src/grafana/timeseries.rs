//! Time series over the engine's 15-minute UTC facts, re-bucketed into local hours or days of
//! any zone.
//!
//! A query is one range scan over the periods that meet `[from, to)`: of the [`Rollup`] when it
//! filters and splits by at most one dimension (what dashboards ask: totals, one split, one
//! filter), so its cost is the buckets in the range times that dimension's values, flat in the
//! data's size; else of the [`Series`] facts (every combination of the four dimensions per
//! bucket), so its cost is the facts in the range, never the number of rows ingested. Every real zone offset is a multiple of 15 minutes, so each 15-minute bucket lies
//! inside exactly one local hour and one local day. The zone is consulted once per period (the
//! period `[start, end)` of the last fact is cached), not once per fact.

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use lpm_engine::series::{
    range_start, rollup_start, MarginDim, Rollup, Series, SeriesKind, BUCKET_MS,
};
use lpm_engine::views::local_hour;

use super::catalog::Dim;
use super::params::{DimFilter, Grain, MAX_MS, MIN_MS};

/// Local periods (hours or days) of one zone: `start_of` and `next` partition the timeline.
#[derive(Clone, Copy, Debug)]
pub struct Calendar {
    /// The zone.
    pub tz: Tz,
    /// The period.
    pub grain: Grain,
}

impl Calendar {
    /// The UTC instant (epoch ms) at which the local period holding `ms` starts.
    pub fn start_of(&self, ms: i64) -> i64 {
        match self.grain {
            Grain::Hour => local_hour(ms, &self.tz).1 * 1000,
            Grain::Day => match self.tz.timestamp_millis_opt(ms).single() {
                Some(local) => day_start(&self.tz, local.date_naive()).min(ms),
                None => ms - ms.rem_euclid(Grain::Day.nominal_ms()),
            },
        }
    }

    /// The start of the period after the one starting at `start` (always later than `start`).
    pub fn next(&self, start: i64) -> i64 {
        // an hour later is inside the next local hour; 36 hours after a local midnight is
        // inside the next local day (days last 23 to 25 hours)
        let probe = match self.grain {
            Grain::Hour => start + 3_600_000,
            Grain::Day => start + 36 * 3_600_000,
        };
        let next = self.start_of(probe);
        if next > start {
            next
        } else {
            start + self.grain.nominal_ms()
        }
    }
}

/// The first instant of a local date: local midnight, or the end of a DST gap at midnight.
fn day_start(tz: &Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    // probe in 15-minute steps past a gap (a few zones switch at midnight)
    for step in 0..=96 {
        let local = midnight + chrono::Duration::minutes(15 * step);
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.timestamp_millis();
        }
    }
    midnight.and_utc().timestamp_millis()
}

/// What to compute (the grain is in the calendar; the range and the budget are decided by the
/// caller, see [`super::plan`]).
#[derive(Clone, Debug)]
pub struct SeriesQuery {
    /// The facts counted.
    pub kind: SeriesKind,
    /// Local periods of the points.
    pub calendar: Calendar,
    /// Which facts count.
    pub filter: DimFilter,
    /// One line per value of this dimension, or one line in all.
    pub split: Option<Dim>,
}

/// One line of a time series: its split label (if split) and its `(period start, count)`
/// points, ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The split dimension's value.
    pub label: Option<String>,
    /// `(UTC epoch ms of the local period start, count)`, strictly ascending.
    pub points: Vec<(i64, i64)>,
}

/// The whole periods of `cal` meeting `[from, to)`: `[lo, hi)`, the first one possibly starting
/// before `from` and the last one ending after `to`. `None` for an empty range.
pub fn span(cal: &Calendar, from: i64, to: i64) -> Option<(i64, i64)> {
    (from < to).then(|| {
        let lo = cal.start_of(from);
        (lo, cal.next(cal.start_of(to - 1)))
    })
}

/// The starts of the periods of `[lo, hi)` when there are at most `limit` of them, else `None`.
/// At most `limit + 1` steps: a span that must hold more periods (no local hour lasts 2 hours,
/// no local day 2 days) is refused without walking it, so a range of ten thousand years costs
/// nothing.
pub fn period_starts(cal: &Calendar, (lo, hi): (i64, i64), limit: usize) -> Option<Vec<i64>> {
    let longest = 2 * cal.grain.nominal_ms();
    let at_least = u64::try_from(hi.saturating_sub(lo) / longest).unwrap_or(0);
    if at_least > limit as u64 {
        return None;
    }
    let mut starts = Vec::new();
    let mut t = lo;
    while t < hi {
        if starts.len() == limit {
            return None;
        }
        starts.push(t);
        t = cal.next(t);
    }
    Some(starts)
}

/// The first and last bucket of a kind, as a range (two tree descents).
pub fn data_bounds(series: &Series, kind: SeriesKind) -> Option<(i64, i64)> {
    let mut all = series.range(range_start(kind, MIN_MS)..range_start(kind, MAX_MS));
    let first = all.next()?.0.bucket;
    let last = all.next_back().map_or(first, |(k, _)| k.bucket);
    Some((first, last + BUCKET_MS))
}

/// The one dimension a query filters or splits by (`Some(None)`: none at all), when it touches
/// at most one and the [`Rollup`] can answer it; `None` when only the facts can.
fn rollup_dim(q: &SeriesQuery) -> Option<Option<Dim>> {
    let mut dims: Vec<Dim> = q.filter.restricted().collect();
    if let Some(d) = q.split.filter(|d| !dims.contains(d)) {
        dims.push(d);
    }
    match dims.as_slice() {
        [] => Some(None),
        [d] => Some(Some(*d)),
        _ => None,
    }
}

/// The counts `q` sums over the buckets `[lo, hi)`, in bucket order, each with its split label
/// (`""` without a split) and already filtered: read from the rollup when [`rollup_dim`] allows,
/// else from the facts.
fn counts<'a>(
    series: &'a Series,
    rollup: &'a Rollup,
    q: &'a SeriesQuery,
    (lo, hi): (i64, i64),
) -> Box<dyn Iterator<Item = (i64, &'a str, i64)> + 'a> {
    let (lo, hi) = (lo.max(MIN_MS), hi.min(MAX_MS));
    match rollup_dim(q) {
        Some(None) => {
            let t = MarginDim::Total;
            let range = rollup_start(q.kind, t, lo)..rollup_start(q.kind, t, hi);
            Box::new(rollup.range(range).map(|(k, &n)| (k.bucket, "", n)))
        }
        Some(Some(dim)) => {
            let m = dim.margin_dim();
            let range = rollup_start(q.kind, m, lo)..rollup_start(q.kind, m, hi);
            Box::new(rollup.range(range).filter_map(move |(k, &n)| {
                let label = dim.label_of_margin(&k.margin);
                let shown = if q.split.is_some() { label } else { "" };
                q.filter.allows(dim, label).then_some((k.bucket, shown, n))
            }))
        }
        None => {
            let range = range_start(q.kind, lo)..range_start(q.kind, hi);
            Box::new(series.range(range).filter_map(move |(key, &n)| {
                let label = q.split.map_or("", |d| d.label_of(key));
                q.filter.allows_key(key).then_some((key.bucket, label, n))
            }))
        }
    }
}

/// How many lines `q` answers over the periods `span` (`None`: an empty range), counted up to
/// `limit + 1` (what [`finish`] returns): one without a split; else the split dimension's known
/// values the filter allows, plus the other values (`none`, statuses or priorities outside the
/// known ones) present in the range. Only an open dimension (status, priority) needs a pass
/// over the facts; it stops as soon as the count passes `limit`.
pub fn count_lines(
    series: &Series,
    rollup: &Rollup,
    q: &SeriesQuery,
    span: Option<(i64, i64)>,
    limit: usize,
) -> usize {
    let Some(dim) = q.split else { return 1 };
    let known = dim.known_values();
    let allowed_known = known.iter().filter(|v| q.filter.allows(dim, v)).count();
    let Some(span) = span.filter(|_| !dim.is_closed()) else {
        return allowed_known;
    };
    let mut others: Vec<&str> = Vec::new();
    for (_, label, _) in counts(series, rollup, q, span) {
        if allowed_known + others.len() > limit {
            break;
        }
        if !known.contains(&label) && !others.contains(&label) {
            others.push(label);
        }
    }
    allowed_known + others.len()
}

/// Why a scan stopped before the end of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// One line would hold more points than its limit.
    Line,
    /// All lines together would hold more points than their limit.
    Total,
}

/// Point limits of one scan.
#[derive(Clone, Copy, Debug)]
pub struct ScanLimits {
    /// Points of one line.
    pub line: usize,
    /// Points of all lines.
    pub total: usize,
}

/// Scans the facts of `q` over the periods `[lo, hi)` (the only part that needs the store's
/// lock): one sparse line per split value seen, points only for periods with data. Stops with
/// [`Overflow`] as soon as a point would pass `limits`, so what it allocates is bounded by
/// them, whatever the range.
pub fn scan(
    series: &Series,
    rollup: &Rollup,
    q: &SeriesQuery,
    span: (i64, i64),
    limits: ScanLimits,
) -> Result<Vec<Line>, Overflow> {
    let cal = q.calendar;
    let mut lines: Vec<(&str, Vec<(i64, i64)>)> = Vec::new();
    let mut total = 0usize;
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    for (bucket, label, n) in counts(series, rollup, q, span) {
        if bucket < start || bucket >= end {
            start = cal.start_of(bucket);
            end = cal.next(start);
        }
        let points = match lines.iter().position(|(l, _)| *l == label) {
            Some(i) => &mut lines[i].1,
            None => {
                lines.push((label, Vec::new()));
                &mut lines.last_mut().expect("just pushed").1
            }
        };
        match points.last_mut() {
            Some((t, c)) if *t == start => *c += n,
            _ => {
                if points.len() >= limits.line {
                    return Err(Overflow::Line);
                }
                if total >= limits.total {
                    return Err(Overflow::Total);
                }
                total += 1;
                points.push((start, n));
            }
        }
    }
    Ok(lines
        .into_iter()
        .map(|(label, points)| Line {
            label: q.split.map(|_| label.to_string()),
            points,
        })
        .collect())
}

/// Finishes a scan: one line per split value the filter allows (known values always, others
/// when seen), in display order; points sorted and, when `fill` holds the period starts (the
/// caller passes them only when they are within its zero-fill limit), zero-filled over every
/// period.
pub fn finish(mut lines: Vec<Line>, q: &SeriesQuery, fill: Option<&[i64]>) -> Vec<Line> {
    match q.split {
        None if lines.is_empty() => lines.push(Line {
            label: None,
            points: Vec::new(),
        }),
        None => {}
        Some(dim) => {
            for v in dim.known_values() {
                if q.filter.allows(dim, v) && !lines.iter().any(|l| l.label.as_deref() == Some(v)) {
                    lines.push(Line {
                        label: Some(v.to_string()),
                        points: Vec::new(),
                    });
                }
            }
            lines.sort_by(|a, b| {
                let (a, b) = (a.label.as_deref(), b.label.as_deref());
                let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                (dim.rank(a), a).cmp(&(dim.rank(b), b))
            });
        }
    }
    for line in &mut lines {
        line.points.sort_unstable();
        line.points.dedup_by(|b, a| {
            // merge equal starts (only possible in zones with odd historical offsets)
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        if let Some(starts) = fill {
            line.points = merge_zeros(starts, &line.points);
        }
    }
    lines
}

/// `points` with a zero at every start in `starts` that has no point.
fn merge_zeros(starts: &[i64], points: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(starts.len().max(points.len()));
    let (mut i, mut j) = (0, 0);
    while i < starts.len() || j < points.len() {
        match (starts.get(i), points.get(j)) {
            (Some(&s), Some(&(t, n))) if s == t => {
                out.push((t, n));
                i += 1;
                j += 1;
            }
            (Some(&s), Some(&(t, _))) if s < t => {
                out.push((s, 0));
                i += 1;
            }
            (Some(&s), None) => {
                out.push((s, 0));
                i += 1;
            }
            (_, Some(&p)) => {
                out.push(p);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpm_engine::model::Status;
    use lpm_engine::series::SeriesKey;
    use lpm_engine::views::{AgeBand, Gender};

    const H: i64 = 3_600_000;

    #[test]
    fn new_york_fall_back_day_has_25_hours() {
        let cal = Calendar {
            tz: chrono_tz::America::New_York,
            grain: Grain::Day,
        };
        // 2024-11-03 00:00 EDT = 04:00Z; the next midnight (EST) is 05:00Z on the 4th
        let start = 1_730_606_400_000;
        assert_eq!(cal.start_of(start + 10 * H), start);
        assert_eq!(cal.next(start), start + 25 * H);
        let hours = Calendar {
            grain: Grain::Hour,
            ..cal
        };
        let mut t = start;
        let mut n = 0;
        while t < start + 25 * H {
            t = hours.next(t);
            n += 1;
        }
        assert_eq!(n, 25);
    }

    #[test]
    fn spring_forward_day_has_23_hours() {
        let cal = Calendar {
            tz: chrono_tz::America::New_York,
            grain: Grain::Day,
        };
        // 2024-03-10 00:00 EST = 05:00Z
        let start = 1_710_046_800_000;
        assert_eq!(cal.next(start), start + 23 * H);
    }

    #[test]
    fn kathmandu_hours_start_at_quarter_past_utc() {
        let cal = Calendar {
            tz: chrono_tz::Asia::Kathmandu,
            grain: Grain::Hour,
        };
        // 2024-01-01 00:00Z = 05:45 NPT: the local hour began at 05:00 NPT = 23:15Z
        let t0 = 1_704_067_200_000;
        assert_eq!(cal.start_of(t0), t0 - 45 * 60_000);
        assert_eq!(cal.next(t0 - 45 * 60_000), t0 + 15 * 60_000);
        let days = Calendar {
            grain: Grain::Day,
            ..cal
        };
        // local midnight = 18:15Z the day before
        assert_eq!(days.start_of(t0), t0 - (5 * H + 45 * 60_000));
    }

    #[test]
    fn period_starts_stop_at_the_limit() {
        let cal = Calendar {
            tz: Tz::UTC,
            grain: Grain::Hour,
        };
        let starts = period_starts(&cal, (0, 10 * H), 10).expect("exactly the limit");
        assert_eq!(starts.len(), 10);
        assert_eq!(period_starts(&cal, (0, 11 * H), 10), None);
        // ten thousand years are refused without walking them
        assert_eq!(period_starts(&cal, (MIN_MS, MAX_MS), 50_000), None);
    }

    fn rollup_of(series: &Series) -> Rollup {
        let mut rollup = Rollup::new();
        for (key, &n) in series {
            lpm_engine::series::roll(&mut rollup, key, n);
        }
        rollup
    }

    /// Every query a dashboard can make of at most one dimension (none; a split; an include or
    /// exclude filter; both on the same dimension), answered from the rollup, equals the same
    /// query answered from the facts (forced by restrictions on two other dimensions that remove
    /// nothing), over random facts in two zones and both grains.
    #[test]
    fn the_rollup_answers_what_the_facts_answer() {
        use lpm_engine::model::Priority;
        use lpm_engine::rng::SplitMix64;
        let statuses = ["open", "in_progress", "closed", "odd"].map(Status::parse);
        let priorities = ["low", "high", "weird"].map(Priority::parse);
        for seed in 0..20u64 {
            let mut rng = SplitMix64::new(seed);
            let mut series = Series::new();
            for _ in 0..300 {
                let key = SeriesKey {
                    kind: *rng.pick(&SeriesKind::ALL),
                    bucket: rng.range(0, 24 * 8) * BUCKET_MS,
                    gender: *rng.pick(&Gender::ALL),
                    age_band: *rng.pick(&AgeBand::ALL),
                    status: rng.chance(0.8).then(|| rng.pick(&statuses).clone()),
                    priority: rng.chance(0.8).then(|| rng.pick(&priorities).clone()),
                };
                *series.entry(key).or_insert(0) += rng.range(1, 4);
            }
            let rollup = rollup_of(&series);
            let mut asked = 0;
            for dim in Dim::ALL {
                let values: Vec<String> = match dim {
                    Dim::Status => statuses.iter().map(|s| s.as_str().to_string()).collect(),
                    Dim::Priority => priorities.iter().map(|p| p.as_str().to_string()).collect(),
                    _ => dim.known_values().iter().map(|s| s.to_string()).collect(),
                };
                let one = vec![values[seed as usize % values.len()].clone()];
                let mut filters = vec![(DimFilter::default(), None)];
                let mut include = DimFilter::default();
                include.include(dim, one.clone());
                let mut exclude = DimFilter::default();
                exclude.exclude(dim, one);
                filters.push((DimFilter::default(), Some(dim)));
                filters.push((include.clone(), None));
                filters.push((include, Some(dim)));
                filters.push((exclude, Some(dim)));
                for (filter, split) in filters {
                    for tz in [Tz::UTC, Tz::Asia__Kathmandu] {
                        for grain in [Grain::Hour, Grain::Day] {
                            let q = SeriesQuery {
                                kind: *rng.pick(&SeriesKind::ALL),
                                calendar: Calendar { tz, grain },
                                filter: filter.clone(),
                                split,
                            };
                            assert!(rollup_dim(&q).is_some(), "{q:?}");
                            let mut forced = q.clone();
                            for step in [1, 2] {
                                let other = Dim::ALL[(dim.index() + step) % 4];
                                forced.filter.exclude(other, vec!["no such value".into()]);
                            }
                            assert!(rollup_dim(&forced).is_none());
                            let span = (rng.range(-4, 24 * 8) * BUCKET_MS, 24 * 9 * BUCKET_MS);
                            let big = ScanLimits {
                                line: 100_000,
                                total: 100_000,
                            };
                            let from_rollup = scan(&series, &rollup, &q, span, big).expect("fits");
                            let from_facts =
                                scan(&series, &rollup, &forced, span, big).expect("fits");
                            assert_eq!(
                                finish(from_rollup, &q, None),
                                finish(from_facts, &q, None),
                                "seed {seed}: {q:?}"
                            );
                            assert_eq!(
                                count_lines(&series, &rollup, &q, Some(span), 100),
                                count_lines(&series, &rollup, &forced, Some(span), 100),
                            );
                            asked += 1;
                        }
                    }
                }
            }
            assert_eq!(asked, 4 * 5 * 4);
        }
    }

    fn fact(bucket: i64, status: &str) -> SeriesKey {
        SeriesKey {
            kind: SeriesKind::Reported,
            bucket,
            gender: Gender::Female,
            age_band: AgeBand::Adult,
            status: Some(Status::parse(status)),
            priority: None,
        }
    }

    #[test]
    fn scans_stop_at_their_limits_and_lines_are_counted_first() {
        let mut series = Series::new();
        for h in 0..10 {
            series.insert(fact(h * H, &format!("s{}", h % 3)), 1);
        }
        let rollup = rollup_of(&series);
        let q = SeriesQuery {
            kind: SeriesKind::Reported,
            calendar: Calendar {
                tz: Tz::UTC,
                grain: Grain::Hour,
            },
            filter: DimFilter::default(),
            split: None,
        };
        let span = (0, 10 * H);
        let limits = |line, total| ScanLimits { line, total };
        let scanned = scan(&series, &rollup, &q, span, limits(10, 10)).expect("at the limits");
        assert_eq!(scanned[0].points.len(), 10);
        assert_eq!(
            scan(&series, &rollup, &q, span, limits(9, 10)).err(),
            Some(Overflow::Line)
        );
        assert_eq!(
            scan(&series, &rollup, &q, span, limits(10, 9)).err(),
            Some(Overflow::Total)
        );
        let by_status = SeriesQuery {
            split: Some(Dim::Status),
            ..q
        };
        // the five known statuses, then s0, s1 and s2
        assert_eq!(
            count_lines(&series, &rollup, &by_status, Some(span), 100),
            8
        );
        assert_eq!(
            count_lines(&series, &rollup, &by_status, Some(span), 6),
            7,
            "stops"
        );
        assert_eq!(count_lines(&series, &rollup, &by_status, None, 100), 5);
    }

    #[test]
    fn zeros_merge_in_order() {
        assert_eq!(
            merge_zeros(&[0, 10, 20], &[(10, 5), (30, 1)]),
            vec![(0, 0), (10, 5), (20, 0), (30, 1)]
        );
    }
}
