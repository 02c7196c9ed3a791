//! What every report states about itself: when it was generated (UTC and the chosen time
//! zone), the engine tick its numbers come from, its language, and the period it covers.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone};
use chrono_tz::Tz;

use crate::i18n::{Key, Lang, Tr};

/// When and from which tick a report was made, and how to print it.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// Generation time, UTC epoch milliseconds.
    pub generated_at_ms: i64,
    /// The zone dates and times are printed in.
    pub tz: Tz,
    /// The engine tick every number of the report was read at.
    pub tick: u64,
    /// The language.
    pub lang: Lang,
}

impl Stamp {
    /// The words of the report's language.
    pub fn tr(&self) -> Tr {
        Tr::new(self.lang)
    }

    /// `Generado: lunes, … 14:30:05 (America/Guayaquil) · 2026-11-23T19:30:05Z (UTC) · Tick del motor: 42`.
    pub fn line(&self) -> String {
        let tr = self.tr();
        let utc = DateTime::from_timestamp_millis(self.generated_at_ms)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default();
        format!(
            "{}: {} ({}) · {utc} (UTC) · {}: {}",
            tr.t(Key::GeneratedAt),
            tr.long_instant(self.generated_at_ms, &self.tz),
            self.tz.name(),
            tr.t(Key::EngineTick),
            self.tick
        )
    }
}

/// An inclusive range of local dates in a time zone; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DateRange {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
}

/// The instant a local day starts in `tz` (the first existing local time at or after
/// midnight, for zones whose clocks skip midnight).
pub fn day_start(day: NaiveDate, tz: &Tz) -> i64 {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or_else(
            || midnight.and_utc().timestamp_millis(),
            |t| t.timestamp_millis(),
        )
}

impl DateRange {
    /// `[start of from, start of the day after to)` as UTC epoch ms; `None` for an open end.
    pub fn bounds(&self, tz: &Tz) -> (Option<i64>, Option<i64>) {
        (
            self.from.map(|d| day_start(d, tz)),
            self.to.and_then(|d| d.succ_opt()).map(|d| day_start(d, tz)),
        )
    }

    /// Whether the instant `ms` falls in the range (read in `tz`).
    pub fn contains(&self, ms: i64, tz: &Tz) -> bool {
        let (lo, hi) = self.bounds(tz);
        lo.is_none_or(|lo| ms >= lo) && hi.is_none_or(|hi| ms < hi)
    }

    /// `Periodo: desde 2026-11-01 hasta 2026-11-20 (America/Guayaquil)` or `… todo el historial`.
    pub fn line(&self, tr: Tr, tz: &Tz) -> String {
        let body = match (self.from, self.to) {
            (None, None) => tr.t(Key::AllTime).to_string(),
            (from, to) => {
                let mut parts = Vec::new();
                if let Some(f) = from {
                    parts.push(format!("{} {f}", tr.t(Key::From)));
                }
                if let Some(t) = to {
                    parts.push(format!("{} {t}", tr.t(Key::To)));
                }
                format!("{} ({})", parts.join(" "), tz.name())
            }
        };
        format!("{}: {body}", tr.t(Key::Period))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_covers_whole_local_days_inclusive() {
        let tz: Tz = "America/Guayaquil".parse().expect("tz");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let r = DateRange {
            from: d("2026-11-20"),
            to: d("2026-11-20"),
        };
        // 2026-11-20T05:00Z is local midnight (UTC-5)
        let start = 1_795_150_800_000;
        assert_eq!(r.bounds(&tz), (Some(start), Some(start + 86_400_000)));
        assert!(r.contains(start, &tz));
        assert!(r.contains(start + 86_399_999, &tz));
        assert!(!r.contains(start - 1, &tz));
        assert!(!r.contains(start + 86_400_000, &tz));
        assert!(DateRange::default().contains(0, &tz));
    }

    #[test]
    fn the_stamp_names_both_zones_and_the_tick() {
        let s = Stamp {
            generated_at_ms: 1_795_462_205_000,
            tz: "America/Guayaquil".parse().expect("tz"),
            tick: 42,
            lang: Lang::Es,
        };
        let l = s.line();
        assert!(
            l.contains("lunes, 23 de noviembre de 2026, 14:30:05 (America/Guayaquil)"),
            "{l}"
        );
        assert!(l.contains("2026-11-23T19:30:05Z (UTC)"), "{l}");
        assert!(l.contains("Tick del motor: 42"), "{l}");
    }
}
