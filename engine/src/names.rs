//! The names of the views, defined once. REST paths, WebSocket rows, the Grafana catalog, the
//! MySQL sink's tables and Prometheus labels all spell a view through [`ViewName`], so a view
//! added or renamed here is added or renamed everywhere (and a `match` on it that forgets one
//! does not compile).

/// One of the views the engine maintains (the sections of [`crate::Views`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViewName {
    /// `age_group`: persons per age band.
    AgeGroup,
    /// `gender`: persons per normalised gender.
    Gender,
    /// `hour_of_day`: persons per local hour of day.
    HourOfDay,
    /// `hourly`: persons per local hour start.
    Hourly,
    /// `cases_by_status`: cases per status.
    CasesByStatus,
    /// `open_by_priority`: open cases per priority.
    OpenByPriority,
    /// `responsible_load`: open cases per responsible.
    ResponsibleLoad,
    /// `kpi`: the scalar KPIs.
    Kpi,
    /// `row_counts`: rows per table.
    RowCounts,
    /// `hotspots`: reports and open cases per H3 cell. Optional (on with a configured
    /// resolution), so it is not in [`ViewName::ALL`], the views every engine maintains: with
    /// it off, every list of views stays as it was.
    Hotspots,
}

impl ViewName {
    /// Every view, in the order the API lists them.
    pub const ALL: [ViewName; 9] = [
        ViewName::AgeGroup,
        ViewName::Gender,
        ViewName::HourOfDay,
        ViewName::Hourly,
        ViewName::CasesByStatus,
        ViewName::OpenByPriority,
        ViewName::ResponsibleLoad,
        ViewName::Kpi,
        ViewName::RowCounts,
    ];

    /// Every view's name, in the order of [`ViewName::ALL`] (for tables of `&str`).
    pub const NAMES: [&'static str; 9] = {
        let mut names = [""; 9];
        let mut i = 0;
        while i < names.len() {
            names[i] = ViewName::ALL[i].name();
            i += 1;
        }
        names
    };

    /// The name on every interface: the JSON key of [`crate::Views`], the REST path segment,
    /// the WebSocket row's `view`, the sink's `agg_<name>` table.
    pub const fn name(self) -> &'static str {
        match self {
            ViewName::AgeGroup => "age_group",
            ViewName::Gender => "gender",
            ViewName::HourOfDay => "hour_of_day",
            ViewName::Hourly => "hourly",
            ViewName::CasesByStatus => "cases_by_status",
            ViewName::OpenByPriority => "open_by_priority",
            ViewName::ResponsibleLoad => "responsible_load",
            ViewName::Kpi => "kpi",
            ViewName::RowCounts => "row_counts",
            ViewName::Hotspots => "hotspots",
        }
    }

    /// The view with this exact name.
    pub fn parse(name: &str) -> Option<ViewName> {
        ViewName::ALL
            .into_iter()
            .chain([ViewName::Hotspots])
            .find(|v| v.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_the_keys_of_the_views_json() {
        for v in ViewName::ALL {
            assert_eq!(ViewName::parse(v.name()), Some(v));
        }
        assert_eq!(ViewName::parse("sensitive_open_cases"), None);
        assert_eq!(ViewName::parse("hotspots"), Some(ViewName::Hotspots));
        assert!(!ViewName::ALL.contains(&ViewName::Hotspots));
        let json = serde_json::to_value(crate::Views::default()).expect("views json");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut names = ViewName::NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(keys, names);
    }
}
