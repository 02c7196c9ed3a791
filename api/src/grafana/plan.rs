//! One time-series target answered within its request's [`Budget`]: the grain is decided, the
//! facts are scanned under the store's lock with point limits, and the zero-filling happens
//! after the lock is released.
//!
//! The decision, in order, for the grain asked (after `maxDataPoints`) and then, if that was
//! hours, for days:
//! - **zero-filled** when the range holds at most the fill limit of periods (`maxDataPoints`,
//!   10 000 without it for simpod, 50 000 for rows; never more than
//!   [`MAX_POINTS_PER_SERIES`]): it costs `periods × lines`, known before the scan, and is
//!   served if that fits in the request's points;
//! - **sparse** otherwise (only periods with data): the scan stops as soon as one line passes
//!   [`MAX_POINTS_PER_SERIES`] or all lines pass the request's points left.
//!
//! The first that fits is served; if none does, the request is a 422 naming the range (a line
//! had too many periods with data, even per day) or the split / targets (the request's points
//! ran out). The number of lines is counted first (an open dimension's values are counted in
//! one bounded pass), so a split over more values than the request may answer is refused
//! before any line is built.

use chrono_tz::Tz;
use lpm_engine::series::{Rollup, Series, SeriesKind};
use lpm_engine::Tick;
use lpm_engine::ViewStore;

use super::budget::{coarsening_notice, Budget, Fields, MAX_POINTS_PER_SERIES};
use super::catalog::Dim;
use super::params::{DimFilter, Grain, MAX_MS, MIN_MS};
use super::timeseries::{
    count_lines, data_bounds, finish, period_starts, scan, span, Calendar, Line, Overflow,
    ScanLimits, SeriesQuery,
};
use crate::error::ApiError;

/// One series target as the request asks for it.
#[derive(Clone, Debug)]
pub struct SeriesAsk {
    /// The facts counted.
    pub kind: SeriesKind,
    /// Start (UTC epoch ms); `None` for the data's first bucket.
    pub from: Option<i64>,
    /// End, exclusive; `None` for the end of the data's last bucket.
    pub to: Option<i64>,
    /// The zone of the periods.
    pub tz: Tz,
    /// The grain asked for: the explicit `bucket`, else the one `intervalMs` gives.
    pub asked: Grain,
    /// Whether `bucket` was explicit.
    pub explicit: bool,
    /// The grain after `maxDataPoints` (hours coarsened to days when they would pass it).
    pub grain: Grain,
    /// Which facts count.
    pub filter: DimFilter,
    /// One line per value of this dimension.
    pub split: Option<Dim>,
    /// Zero-fill when the range holds at most this many periods (capped by
    /// [`MAX_POINTS_PER_SERIES`]).
    pub fill_limit: usize,
}

/// A served series target.
#[derive(Debug)]
pub struct SeriesAnswer {
    /// The tick the facts were read at.
    pub tick: Option<Tick>,
    /// The lines, in display order.
    pub lines: Vec<Line>,
    /// The grain served.
    pub grain: Grain,
    /// What the client should be told (a grain coarser than asked), if anything.
    pub notice: Option<String>,
}

/// One grain the target may be served at.
struct Plan {
    query: SeriesQuery,
    /// Whole periods of the range; `None` when it is empty.
    span: Option<(i64, i64)>,
    /// The period starts when the range is zero-filled (at most the fill limit of them).
    starts: Option<Vec<i64>>,
}

/// Answers `ask` and charges it to `budget`; a 422 naming a field of `fields` when it does not
/// fit.
pub fn answer(
    store: &ViewStore,
    ask: &SeriesAsk,
    budget: &mut Budget,
    fields: &Fields,
) -> Result<SeriesAnswer, ApiError> {
    let (from, to) = match (ask.from, ask.to) {
        (Some(from), Some(to)) => (from, to),
        (from, to) => match store.with_series(|_, s, _| data_bounds(s, ask.kind)) {
            Some((first, end)) => (from.unwrap_or(first), to.unwrap_or(end)),
            None => (0, 0),
        },
    };
    let (from, to) = (from.clamp(MIN_MS, MAX_MS), to.clamp(MIN_MS, MAX_MS));
    let fill_limit = ask.fill_limit.min(MAX_POINTS_PER_SERIES);
    let grains: &[Grain] = match ask.grain {
        Grain::Hour => &[Grain::Hour, Grain::Day],
        Grain::Day => &[Grain::Day],
    };
    // the period walks (at most `fill_limit` steps each) happen outside the store's lock
    let plans: Vec<Plan> = grains
        .iter()
        .map(|&grain| {
            let calendar = Calendar { tz: ask.tz, grain };
            let span = span(&calendar, from, to);
            Plan {
                query: SeriesQuery {
                    kind: ask.kind,
                    calendar,
                    filter: ask.filter.clone(),
                    split: ask.split,
                },
                span,
                starts: span.and_then(|s| period_starts(&calendar, s, fill_limit)),
            }
        })
        .collect();
    let (tick, served) =
        store.with_series(|t, series, rollup| (t, choose(series, rollup, &plans, budget, fields)));
    let (i, lines) = served?;
    let plan = &plans[i];
    let lines = finish(lines, &plan.query, plan.starts.as_deref());
    let points = lines.iter().map(|l| l.points.len()).sum();
    budget.charge(points, lines.len());
    let grain = plan.query.calendar.grain;
    Ok(SeriesAnswer {
        tick,
        lines,
        grain,
        notice: coarsening_notice(ask.asked, ask.explicit, grain, i > 0),
    })
}

/// Why the last plan did not fit.
enum Refusal {
    Points,
    Range,
}

/// Picks the first plan that fits and scans it (under the store's lock): its index and its
/// sparse lines.
fn choose(
    series: &Series,
    rollup: &Rollup,
    plans: &[Plan],
    budget: &Budget,
    fields: &Fields,
) -> Result<(usize, Vec<Line>), ApiError> {
    let split = plans.first().is_some_and(|p| p.query.split.is_some());
    // the last plan is the coarsest, so its span holds every other plan's
    let widest = plans.last().and_then(|p| p.span);
    let lines = plans.first().map_or(1, |p| {
        count_lines(series, rollup, &p.query, widest, budget.series_left())
    });
    if lines > budget.series_left() {
        return Err(budget.too_many_series(lines, split, fields));
    }
    if widest.is_none() {
        // an empty range (every plan's span is empty alike): only the lines `finish` adds
        return Ok((0, Vec::new()));
    }
    let mut refusal = Refusal::Points;
    for (i, plan) in plans.iter().enumerate() {
        // every span is empty alike (checked above), so none is skipped here
        let Some(span) = plan.span else { continue };
        if let Some(starts) = &plan.starts {
            // zero-filled: its cost is known before the scan
            if !budget.fits(starts.len(), lines) {
                refusal = Refusal::Points;
                continue;
            }
        }
        let limits = ScanLimits {
            line: MAX_POINTS_PER_SERIES,
            total: budget.points_left(),
        };
        match scan(series, rollup, &plan.query, span, limits) {
            Ok(scanned) => return Ok((i, scanned)),
            Err(Overflow::Line) => refusal = Refusal::Range,
            Err(Overflow::Total) => refusal = Refusal::Points,
        }
    }
    Err(match refusal {
        Refusal::Range => Budget::range_too_long(fields),
        Refusal::Points => budget.too_many_points(split, fields),
    })
}
