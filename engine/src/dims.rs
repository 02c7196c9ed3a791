//! The dimensions persons are counted and filtered by: age band, normalised gender, minor.
//! The views, the time-series facts and the case predicates all group by these, so they live
//! apart from each of them.

use serde::{Deserialize, Serialize};

/// Age bands of the `age_group` view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    /// 0..=11
    Child,
    /// 12..=17
    Teen,
    /// 18..=29
    YoungAdult,
    /// 30..=44
    Adult,
    /// 45..=59
    MiddleAged,
    /// 60..=120
    Senior,
    /// NULL, negative or above 120.
    Unknown,
}

impl AgeBand {
    /// All bands, in display order.
    pub const ALL: [AgeBand; 7] = [
        AgeBand::Child,
        AgeBand::Teen,
        AgeBand::YoungAdult,
        AgeBand::Adult,
        AgeBand::MiddleAged,
        AgeBand::Senior,
        AgeBand::Unknown,
    ];

    /// The band of an age. Garbage ages (negative, above 120) are `Unknown`.
    pub fn of(age: Option<i64>) -> AgeBand {
        match age {
            Some(0..=11) => AgeBand::Child,
            Some(12..=17) => AgeBand::Teen,
            Some(18..=29) => AgeBand::YoungAdult,
            Some(30..=44) => AgeBand::Adult,
            Some(45..=59) => AgeBand::MiddleAged,
            Some(60..=120) => AgeBand::Senior,
            _ => AgeBand::Unknown,
        }
    }

    /// The label used in JSON.
    pub fn label(self) -> &'static str {
        match self {
            AgeBand::Child => "0-11",
            AgeBand::Teen => "12-17",
            AgeBand::YoungAdult => "18-29",
            AgeBand::Adult => "30-44",
            AgeBand::MiddleAged => "45-59",
            AgeBand::Senior => "60+",
            AgeBand::Unknown => "unknown",
        }
    }
}

/// Whether an age makes the person a minor (`0 <= age < 18`; a garbage negative age does not).
pub fn is_minor(age: Option<i64>) -> bool {
    matches!(age, Some(0..=17))
}

/// Normalised gender of the `gender` view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gender {
    /// `female`
    Female,
    /// `male`
    Male,
    /// `other`
    Other,
    /// `unknown`, and anything not recognised after trimming and lower-casing.
    Unknown,
}

impl Gender {
    /// All genders, in display order.
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Other, Gender::Unknown];

    /// Trims, lower-cases and maps unrecognised values to `Unknown`.
    pub fn normalise(raw: &str) -> Gender {
        let g = raw.trim();
        if g.eq_ignore_ascii_case("female") {
            Gender::Female
        } else if g.eq_ignore_ascii_case("male") {
            Gender::Male
        } else if g.eq_ignore_ascii_case("other") {
            Gender::Other
        } else {
            Gender::Unknown
        }
    }

    /// The label used in JSON.
    pub fn label(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_match_the_definition() {
        let cases = [
            (None, "unknown"),
            (Some(-1), "unknown"),
            (Some(0), "0-11"),
            (Some(11), "0-11"),
            (Some(12), "12-17"),
            (Some(17), "12-17"),
            (Some(18), "18-29"),
            (Some(29), "18-29"),
            (Some(30), "30-44"),
            (Some(44), "30-44"),
            (Some(45), "45-59"),
            (Some(59), "45-59"),
            (Some(60), "60+"),
            (Some(120), "60+"),
            (Some(121), "unknown"),
            (Some(999), "unknown"),
        ];
        for (age, label) in cases {
            assert_eq!(AgeBand::of(age).label(), label, "age {age:?}");
        }
        assert!(
            is_minor(Some(0))
                && is_minor(Some(17))
                && !is_minor(Some(18))
                && !is_minor(Some(-1))
                && !is_minor(None)
        );
    }

    #[test]
    fn gender_is_trimmed_and_lower_cased() {
        assert_eq!(Gender::normalise(" Male "), Gender::Male);
        assert_eq!(Gender::normalise("FEMALE"), Gender::Female);
        assert_eq!(Gender::normalise("F"), Gender::Unknown);
        assert_eq!(Gender::normalise(""), Gender::Unknown);
    }
}
