//! A one-minute window of what the metrics loop sees: completed ticks and freshness samples.
//!
//! Prometheus histograms are cumulative since start, so they cannot say "freshness p99 now"
//! without a query engine. The engine page (`GET /api/v1/engine`) wants exactly that, so the
//! metrics loop also records here, bounded in time and in samples.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How far back the window reaches.
pub const WINDOW: Duration = Duration::from_secs(60);
/// At most this many samples of each kind are kept (a burst cannot grow memory).
const MAX_SAMPLES: usize = 4096;

/// Recent ticks and freshness samples.
#[derive(Debug, Default)]
pub struct RecentWindow {
    inner: Mutex<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    ticks: VecDeque<(Instant, u64)>,
    freshness: VecDeque<(Instant, f64)>,
}

/// The window's summary.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RecentSummary {
    /// Ticks completed per second over the window (0 when fewer than two samples).
    pub ticks_per_second: f64,
    /// Median source-commit-to-visible delay over the window, seconds.
    pub freshness_p50: Option<f64>,
    /// 99th percentile of the same.
    pub freshness_p99: Option<f64>,
    /// How many freshness samples the percentiles come from.
    pub freshness_samples: usize,
}

fn trim<T>(q: &mut VecDeque<(Instant, T)>, now: Instant) {
    while q.len() > MAX_SAMPLES || q.front().is_some_and(|(at, _)| now - *at > WINDOW) {
        q.pop_front();
    }
}

impl RecentWindow {
    /// Records that `tick` is the last complete tick now (repeats are ignored).
    pub fn tick(&self, tick: u64) {
        self.tick_at(Instant::now(), tick);
    }

    fn tick_at(&self, now: Instant, tick: u64) {
        let mut s = self.inner.lock();
        if s.ticks.back().is_some_and(|(_, t)| *t >= tick) {
            return;
        }
        s.ticks.push_back((now, tick));
        trim(&mut s.ticks, now);
    }

    /// Records one freshness sample, seconds.
    pub fn freshness(&self, seconds: f64) {
        self.freshness_at(Instant::now(), seconds);
    }

    fn freshness_at(&self, now: Instant, seconds: f64) {
        let mut s = self.inner.lock();
        s.freshness.push_back((now, seconds));
        trim(&mut s.freshness, now);
    }

    /// The summary over the last [`WINDOW`].
    pub fn summary(&self) -> RecentSummary {
        self.summary_at(Instant::now())
    }

    fn summary_at(&self, now: Instant) -> RecentSummary {
        let mut s = self.inner.lock();
        trim(&mut s.ticks, now);
        trim(&mut s.freshness, now);
        let ticks_per_second = match (s.ticks.front(), s.ticks.back()) {
            (Some((t0, k0)), Some((t1, k1))) if t1 > t0 => {
                (k1 - k0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        };
        let mut values: Vec<f64> = s.freshness.iter().map(|(_, v)| *v).collect();
        values.sort_by(f64::total_cmp);
        RecentSummary {
            ticks_per_second,
            freshness_p50: quantile(&values, 0.5),
            freshness_p99: quantile(&values, 0.99),
            freshness_samples: values.len(),
        }
    }
}

/// Nearest-rank quantile of sorted `values`.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_rate_and_percentiles_over_the_window() {
        let w = RecentWindow::default();
        let t0 = Instant::now();
        w.tick_at(t0, 10);
        w.tick_at(t0 + Duration::from_secs(2), 20);
        w.tick_at(t0 + Duration::from_secs(2), 20); // a repeat is not a new sample
        for i in 1..=100 {
            w.freshness_at(t0 + Duration::from_secs(2), i as f64 / 1000.0);
        }
        let s = w.summary_at(t0 + Duration::from_secs(2));
        assert_eq!(s.ticks_per_second, 5.0);
        assert_eq!(s.freshness_p50, Some(0.05));
        assert_eq!(s.freshness_p99, Some(0.099));
        assert_eq!(s.freshness_samples, 100);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let w = RecentWindow::default();
        let t0 = Instant::now();
        w.tick_at(t0, 1);
        w.freshness_at(t0, 9.0);
        w.tick_at(t0 + WINDOW + Duration::from_secs(1), 2);
        let s = w.summary_at(t0 + WINDOW + Duration::from_secs(1));
        assert_eq!(s.ticks_per_second, 0.0, "one sample left: no rate");
        assert_eq!((s.freshness_p99, s.freshness_samples), (None, 0));
    }

    #[test]
    fn samples_are_bounded() {
        let w = RecentWindow::default();
        let t0 = Instant::now();
        for _ in 0..(MAX_SAMPLES + 10) {
            w.freshness_at(t0, 1.0);
        }
        assert_eq!(w.summary_at(t0).freshness_samples, MAX_SAMPLES);
    }
}
