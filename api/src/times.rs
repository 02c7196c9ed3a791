//! Times as the API reads and writes them: instants (UTC, ISO-8601 with milliseconds) and
//! local wall-clock times (ms since 1970 read as UTC, the way MySQL's DATETIME columns hold
//! `last_seen_at` and `seen_at`). Shared by the REST routes and the public sighting form.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone};
use chrono_tz::Tz;

use crate::error::ApiError;

/// How far in the future a reported time (`seen_at`) may be: clocks of phones and servers
/// disagree a little.
pub const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// An instant as ISO-8601 UTC with milliseconds.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A wall-clock time (ms since 1970 read as UTC) as ISO-8601 without an offset.
pub fn wall_clock(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Parses an instant: epoch milliseconds, or RFC 3339 / ISO-8601 with an offset.
pub fn parse_instant(field: &str, text: &str) -> Result<i64, ApiError> {
    crate::grafana::params::parse_instant_text(text.trim()).ok_or_else(|| {
        ApiError::bad(
            field,
            "expected epoch milliseconds or an ISO-8601 time with an offset",
        )
    })
}

/// Parses a local wall-clock time: ISO-8601 without offset is taken as is; with an offset (or
/// `Z`) it is converted to the wall clock of `tz`.
pub fn parse_wall_clock(field: &str, text: &str, tz: &Tz) -> Result<i64, ApiError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        let local = tz.from_utc_datetime(&t.naive_utc()).naive_local();
        return Ok(local.and_utc().timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(ApiError::invalid(
        field,
        "expected a local time like 2026-11-20T14:30 (or ISO-8601 with an offset)",
    ))
}

/// The wall clock of `tz` at the instant `now_ms`, as [`parse_wall_clock`] stores times.
pub fn wall_clock_now(tz: &chrono_tz::Tz, now_ms: i64) -> i64 {
    match chrono::DateTime::from_timestamp_millis(now_ms) {
        Some(t) => tz
            .from_utc_datetime(&t.naive_utc())
            .naive_local()
            .and_utc()
            .timestamp_millis(),
        None => now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_parse_with_and_without_offsets() {
        let tz: Tz = "America/Guayaquil".parse().expect("tz");
        let naive = parse_wall_clock("f", "2026-11-20T14:30", &tz).expect("naive");
        assert_eq!(wall_clock(naive), "2026-11-20T14:30:00.000");
        // 19:30Z is 14:30 in Guayaquil (UTC-5)
        let z = parse_wall_clock("f", "2026-11-20T19:30:00Z", &tz).expect("zoned");
        assert_eq!(z, naive);
        assert!(parse_wall_clock("f", "yesterday", &tz).is_err());
    }

    #[test]
    fn instants_parse_as_epoch_ms_or_rfc3339() {
        assert_eq!(parse_instant("f", "1000").ok(), Some(1000));
        assert_eq!(parse_instant("f", "1970-01-01T00:00:01Z").ok(), Some(1000));
        assert!(parse_instant("f", "nope").is_err());
    }
}
