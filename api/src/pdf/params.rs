//! The query parameters of the PDF routes: `lang`, `tz`, `from` and `to`, each checked with a
//! 400 that names it.

use chrono::NaiveDate;
use chrono_tz::Tz;
use lpm_reports::{DateRange, Lang};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};

/// The longest daily series a report draws (the hourly report lists every day of its period).
pub const MAX_DAYS: i64 = 1_000;

/// `?lang=es|en&tz=…` of the case report.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseReportQuery {
    /// `es` (default) or `en`.
    #[param(schema_with = crate::input_schema::lang)]
    pub lang: Option<String>,
    /// IANA zone for dates (default: the server's `--tz`).
    #[param(schema_with = crate::input_schema::zone_or_blank)]
    pub tz: Option<String>,
}

/// `?lang=es|en` of the poster (its times are the wall-clock times as reported: no zone).
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PosterQuery {
    /// `es` (default) or `en`.
    #[param(schema_with = crate::input_schema::lang)]
    pub lang: Option<String>,
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD&lang=es|en&tz=…` of the analytics reports.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// First day included, in `tz` (default: no lower bound).
    #[param(schema_with = crate::input_schema::date_or_blank)]
    pub from: Option<String>,
    /// Last day included, in `tz` (default: no upper bound); not before `from`, and at most
    /// 1000 days after it (400 otherwise).
    #[param(schema_with = crate::input_schema::date_or_blank)]
    pub to: Option<String>,
    /// `es` (default) or `en`.
    #[param(schema_with = crate::input_schema::lang)]
    pub lang: Option<String>,
    /// IANA zone of the dates and of the printed times (default: the server's `--tz`).
    #[param(schema_with = crate::input_schema::zone_or_blank)]
    pub tz: Option<String>,
}

/// Parsed and checked parameters.
#[derive(Clone, Copy, Debug)]
pub struct ReportParams {
    /// Language.
    pub lang: Lang,
    /// Zone.
    pub tz: Tz,
    /// Period.
    pub range: DateRange,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses `lang` (default Spanish).
pub fn lang(v: &Option<String>) -> ApiResult<Lang> {
    match blank(v) {
        None => Ok(Lang::Es),
        Some(s) => Lang::parse(s).ok_or_else(|| ApiError::bad("lang", "expected es or en")),
    }
}

/// Parses `tz` (default `default`).
pub fn tz(v: &Option<String>, default: Tz) -> ApiResult<Tz> {
    match blank(v) {
        None => Ok(default),
        Some(s) => s.parse::<Tz>().map_err(|_| {
            ApiError::bad("tz", "expected an IANA time zone such as America/Guayaquil")
        }),
    }
}

fn date(field: &str, v: &Option<String>) -> ApiResult<Option<NaiveDate>> {
    blank(v)
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::bad(field, "expected a date YYYY-MM-DD"))
        })
        .transpose()
}

impl CaseReportQuery {
    /// Checks the parameters.
    pub fn parse(&self, default_tz: Tz) -> ApiResult<(Lang, Tz)> {
        Ok((lang(&self.lang)?, tz(&self.tz, default_tz)?))
    }
}

impl AnalyticsQuery {
    /// Checks the parameters: dates, `to` not before `from`, a period of at most
    /// [`MAX_DAYS`] days.
    pub fn parse(&self, default_tz: Tz) -> ApiResult<ReportParams> {
        let range = DateRange {
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
        };
        if let (Some(f), Some(t)) = (range.from, range.to) {
            if t < f {
                return Err(ApiError::bad("to", "`to` is before `from`"));
            }
            if (t - f).num_days() >= MAX_DAYS {
                return Err(ApiError::bad(
                    "from",
                    format!("a period covers at most {MAX_DAYS} days"),
                ));
            }
        }
        Ok(ReportParams {
            lang: lang(&self.lang)?,
            tz: tz(&self.tz, default_tz)?,
            range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: &str, to: &str, lang: &str, tz: &str) -> AnalyticsQuery {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        AnalyticsQuery {
            from: s(from),
            to: s(to),
            lang: s(lang),
            tz: s(tz),
        }
    }

    fn field(r: ApiResult<ReportParams>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { field, .. }) => field,
            _ => None,
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        let utc = chrono_tz::UTC;
        assert_eq!(
            field(q("2026-13-01", "", "", "").parse(utc)),
            Some("from".into())
        );
        assert_eq!(
            field(q("", "yesterday", "", "").parse(utc)),
            Some("to".into())
        );
        assert_eq!(
            field(q("2026-11-02", "2026-11-01", "", "").parse(utc)),
            Some("to".into())
        );
        assert_eq!(field(q("", "", "fr", "").parse(utc)), Some("lang".into()));
        assert_eq!(
            field(q("", "", "", "Mars/Olympus").parse(utc)),
            Some("tz".into())
        );
        assert_eq!(
            field(q("1900-01-01", "2026-01-01", "", "").parse(utc)),
            Some("from".into())
        );
        let ok = q("2026-11-01", "2026-11-01", "en", "Europe/Madrid")
            .parse(utc)
            .expect("valid");
        assert_eq!(ok.lang, Lang::En);
        assert_eq!(ok.tz.name(), "Europe/Madrid");
        let d = q("", "", "", "")
            .parse(chrono_tz::America::Guayaquil)
            .expect("defaults");
        assert_eq!((d.lang, d.tz.name()), (Lang::Es, "America/Guayaquil"));
        assert_eq!(d.range, DateRange::default());
    }
}
