//! The work budget of one read request (`/grafana/query`, `/api/v1/rows/{view}`): how many
//! targets, series and points one request may make the server compute and send.
//!
//! Why: the range, the grain, `maxDataPoints` and `split_by` all come from the caller, and
//! their product is what the server would allocate. Without a cap, one request for hourly
//! points from year 1 to 9999 asked for 87 million zero-filled points per series and aborted
//! the process. The caps below are checked before anything proportional to the request is
//! built: a zero-filled series is charged `periods × lines` before its scan; a sparse series
//! (more periods than its zero-fill limit) is scanned with point limits and stops as soon as it
//! would pass them, so what it holds is bounded by the caps, never by the range.
//!
//! Over the budget, an hourly series is served per day when that fits (the answer says so: a
//! notice in the frame's `meta.notices` for simpod, `X-Lpm-Notice` for rows); otherwise the
//! request is a 422 `{error, field}` naming what to change, with the cap in the text.

use super::params::Grain;
use crate::error::ApiError;

/// Points one series may hold: its zero-fill limit and the most periods with data a sparse
/// series may answer. 50 000 hours are about 5.7 years, 50 000 days about 136 years.
pub const MAX_POINTS_PER_SERIES: usize = 50_000;
/// Points one request may hold over all its series (a zero-filled series counts
/// `periods × lines`): about 4 MB of simpod JSON.
pub const MAX_POINTS_PER_REQUEST: usize = 200_000;
/// Series (lines) one request may answer; a split target counts one per value.
pub const MAX_SERIES_PER_REQUEST: usize = 100;
/// Visible targets one `/grafana/query` may carry (hidden and empty ones cost nothing).
pub const MAX_TARGETS_PER_REQUEST: usize = 20;

/// The request fields the budget's errors name.
#[derive(Clone, Debug)]
pub struct Fields {
    /// The range (`range` for simpod, `from` for rows).
    pub range: String,
    /// The target's `split_by`.
    pub split: String,
    /// The targets (what to send fewer of when an unsplit target does not fit).
    pub targets: String,
}

/// What is left of one request's budget. Targets are charged in order.
#[derive(Debug)]
pub struct Budget {
    points_left: usize,
    series_left: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            points_left: MAX_POINTS_PER_REQUEST,
            series_left: MAX_SERIES_PER_REQUEST,
        }
    }
}

impl Budget {
    /// Refuses more than [`MAX_TARGETS_PER_REQUEST`] visible targets (422 naming `field`).
    pub fn check_targets(visible: usize, field: &str) -> Result<(), ApiError> {
        if visible > MAX_TARGETS_PER_REQUEST {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{visible} targets: at most {MAX_TARGETS_PER_REQUEST} per request \
                     (work budget); split the panel"
                ),
            ));
        }
        Ok(())
    }

    /// Points still available to the request.
    pub fn points_left(&self) -> usize {
        self.points_left
    }

    /// Series still available to the request.
    pub fn series_left(&self) -> usize {
        self.series_left
    }

    /// Whether a zero-filled series of `periods × lines` points fits.
    pub fn fits(&self, periods: usize, lines: usize) -> bool {
        periods
            .checked_mul(lines)
            .is_some_and(|p| p <= self.points_left)
    }

    /// Charges an answered series: its lines and its points.
    pub fn charge(&mut self, points: usize, lines: usize) {
        self.points_left = self.points_left.saturating_sub(points);
        self.series_left = self.series_left.saturating_sub(lines);
    }

    /// The 422 for a target of `lines` series when fewer are left.
    pub fn too_many_series(&self, lines: usize, split: bool, fields: &Fields) -> ApiError {
        ApiError::invalid(
            if split {
                &fields.split
            } else {
                &fields.targets
            },
            format!(
                "this target answers {lines} series and {} are left: at most \
                 {MAX_SERIES_PER_REQUEST} series per request (work budget; a split target \
                 counts one per value); split by fewer values or send fewer targets",
                self.series_left
            ),
        )
    }

    /// The 422 for a target whose points do not fit, even per day.
    pub fn too_many_points(&self, split: bool, fields: &Fields) -> ApiError {
        ApiError::invalid(
            if split {
                &fields.split
            } else {
                &fields.targets
            },
            format!(
                "this target's points do not fit in the {} left of the request's budget: at \
                 most {MAX_POINTS_PER_REQUEST} points per request, a zero-filled series counting \
                 periods x lines; narrow the range, split by fewer values or send fewer targets",
                self.points_left
            ),
        )
    }

    /// The 422 for a series with more periods with data than one series may hold, even per
    /// day.
    pub fn range_too_long(fields: &Fields) -> ApiError {
        ApiError::invalid(
            &fields.range,
            format!(
                "the range has more than {MAX_POINTS_PER_SERIES} days with data: at most \
                 {MAX_POINTS_PER_SERIES} points per series (work budget); narrow the range"
            ),
        )
    }
}

/// The notice of a grain coarser than the one asked for, or `None` when nothing needs saying:
/// an automatic grain coarsened for `maxDataPoints` is what "auto" means. `by_budget` says the
/// budget (not `maxDataPoints`) did it.
pub fn coarsening_notice(
    asked: Grain,
    explicit: bool,
    served: Grain,
    by_budget: bool,
) -> Option<String> {
    if served == asked || !(explicit || by_budget) {
        return None;
    }
    let why = if by_budget {
        format!(
            "the {} points would pass the work budget (at most {MAX_POINTS_PER_SERIES} points \
             per series, {MAX_POINTS_PER_REQUEST} per request)",
            asked.name()
        )
    } else {
        format!("the {} points would pass maxDataPoints", asked.name())
    };
    Some(format!(
        "bucket {} served as {}: {why}",
        asked.name(),
        served.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields {
            range: "range".into(),
            split: "targets[0].payload.split_by".into(),
            targets: "targets".into(),
        }
    }

    #[test]
    fn points_fit_up_to_the_request_cap() {
        let mut b = Budget::default();
        assert!(b.fits(MAX_POINTS_PER_SERIES, 4), "exactly the cap");
        assert!(!b.fits(MAX_POINTS_PER_REQUEST + 1, 1), "one over");
        assert!(!b.fits(usize::MAX, 2), "no overflow");
        b.charge(MAX_POINTS_PER_REQUEST - 1, 1);
        assert!(b.fits(1, 1) && !b.fits(2, 1) && !b.fits(1, 2));
        assert_eq!(b.series_left(), MAX_SERIES_PER_REQUEST - 1);
    }

    #[test]
    fn targets_up_to_the_cap() {
        assert!(Budget::check_targets(MAX_TARGETS_PER_REQUEST, "targets").is_ok());
        let e =
            Budget::check_targets(MAX_TARGETS_PER_REQUEST + 1, "targets").expect_err("one over");
        assert_eq!(e.status(), 422);
        assert!(e.to_string().contains(&MAX_TARGETS_PER_REQUEST.to_string()));
    }

    #[test]
    fn errors_name_the_field_and_the_cap() {
        let b = Budget::default();
        let f = fields();
        let e = b.too_many_series(7, true, &f);
        assert!(
            format!("{e:?}").contains("targets[0].payload.split_by"),
            "{e:?}"
        );
        assert!(e.to_string().contains("100 series"), "{e}");
        let e = b.too_many_points(false, &f);
        assert!(format!("{e:?}").contains("\"targets\""), "{e:?}");
        assert!(e.to_string().contains("200000 points"), "{e}");
        let e = Budget::range_too_long(&f);
        assert!(format!("{e:?}").contains("\"range\""), "{e:?}");
        assert!(e.to_string().contains("50000 points per series"), "{e}");
    }

    #[test]
    fn notices_only_when_something_changed_that_was_not_auto() {
        use Grain::{Day, Hour};
        assert_eq!(coarsening_notice(Hour, false, Hour, false), None);
        assert_eq!(coarsening_notice(Hour, false, Day, false), None, "auto");
        assert!(
            coarsening_notice(Hour, true, Day, false).is_some_and(|n| n.contains("maxDataPoints"))
        );
        assert!(coarsening_notice(Hour, false, Day, true).is_some_and(|n| n.contains("50000")));
    }
}
