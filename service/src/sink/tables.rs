//! The sink's tables: one `agg_<view>` table per view, keyed by the view's natural key, and the
//! mapping of rendered [`Views`] to their rows ([`image`]).
//!
//! The rows are built from the rendered views (not from raw view rows), so the tables hold
//! exactly what `GET /api/v1/views` shows: every fixed key (zero or not), `hourly` without zero
//! hours, `mean_hours_to_close` rounded as the API rounds it, `NULL` when it has no value.

use std::collections::BTreeMap;

use lpm_engine::views::Views;
use lpm_engine::ViewName;

/// One SQL value of a sink row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// `BIGINT`
    Int(i64),
    /// `VARCHAR`
    Text(String),
    /// `DECIMAL(30,6)` as its exact decimal text; `None` is `NULL`.
    Decimal(Option<String>),
}

impl Cell {
    /// The value to bind.
    pub fn to_sql(&self) -> mysql_async::Value {
        match self {
            Cell::Int(n) => mysql_async::Value::Int(*n),
            Cell::Text(s) => mysql_async::Value::Bytes(s.as_bytes().to_vec()),
            Cell::Decimal(Some(d)) => mysql_async::Value::Bytes(d.as_bytes().to_vec()),
            Cell::Decimal(None) => mysql_async::Value::NULL,
        }
    }
}

/// The type of a key column, for reading keys back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `BIGINT` / `TINYINT`
    Int,
    /// `VARCHAR`
    Text,
}

/// One aggregate table.
#[derive(Debug)]
pub struct AggTable {
    /// The view it mirrors.
    pub view: &'static str,
    /// The table name.
    pub name: &'static str,
    /// The primary key column and its SQL type.
    pub key: (&'static str, &'static str),
    /// How the key reads back.
    pub key_kind: KeyKind,
    /// The other columns and their SQL types.
    pub columns: &'static [(&'static str, &'static str)],
}

const LABEL: &str = "VARCHAR(191) NOT NULL";
const COUNT: &str = "BIGINT NOT NULL";

/// Every aggregate table, in the order of `VIEW_NAMES`.
pub const TABLES: [AggTable; 9] = [
    AggTable {
        view: ViewName::AgeGroup.name(),
        name: "agg_age_group",
        key: ("age_group", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("persons", COUNT)],
    },
    AggTable {
        view: ViewName::Gender.name(),
        name: "agg_gender",
        key: ("gender", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("persons", COUNT)],
    },
    AggTable {
        view: ViewName::HourOfDay.name(),
        name: "agg_hour_of_day",
        key: ("hour_of_day", "TINYINT NOT NULL"),
        key_kind: KeyKind::Int,
        columns: &[("persons", COUNT)],
    },
    AggTable {
        view: ViewName::Hourly.name(),
        name: "agg_hourly",
        key: ("hour_start", "BIGINT NOT NULL"),
        key_kind: KeyKind::Int,
        columns: &[("persons", COUNT)],
    },
    AggTable {
        view: ViewName::CasesByStatus.name(),
        name: "agg_cases_by_status",
        key: ("status", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("cases", COUNT)],
    },
    AggTable {
        view: ViewName::OpenByPriority.name(),
        name: "agg_open_by_priority",
        key: ("priority", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("cases", COUNT)],
    },
    AggTable {
        view: ViewName::ResponsibleLoad.name(),
        name: "agg_responsible_load",
        key: ("responsible_id", "BIGINT NOT NULL"),
        key_kind: KeyKind::Int,
        columns: &[
            ("full_name", "VARCHAR(255) NOT NULL"),
            ("agency", "VARCHAR(255) NOT NULL"),
            ("open_cases", COUNT),
        ],
    },
    AggTable {
        view: ViewName::Kpi.name(),
        name: "agg_kpi",
        key: ("name", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("value", "DECIMAL(30,6) NULL")],
    },
    AggTable {
        view: ViewName::RowCounts.name(),
        name: "agg_row_counts",
        key: ("table_name", LABEL),
        key_kind: KeyKind::Text,
        columns: &[("row_count", COUNT)],
    },
];

/// The table holding, per sink, the last tick written and the source position it covers.
pub const STATE_TABLE: &str = "agg_sink_state";

/// `CREATE TABLE IF NOT EXISTS` for every table (binary collation: keys compare as the API's
/// strings do).
pub fn create_statements() -> Vec<String> {
    let mut out: Vec<String> = TABLES
        .iter()
        .map(|t| {
            let mut cols = vec![format!("`{}` {}", t.key.0, t.key.1)];
            cols.extend(t.columns.iter().map(|(c, ty)| format!("`{c}` {ty}")));
            format!(
                "CREATE TABLE IF NOT EXISTS `{}` ({}, PRIMARY KEY (`{}`)) \
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                t.name,
                cols.join(", "),
                t.key.0
            )
        })
        .collect();
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS `{STATE_TABLE}` (\
         `sink_id` VARCHAR(191) NOT NULL PRIMARY KEY, \
         `tick` BIGINT UNSIGNED NOT NULL, \
         `position` TEXT NOT NULL, \
         `rows` BIGINT NOT NULL, \
         `updated_at` TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) \
         ON UPDATE CURRENT_TIMESTAMP(3)) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    ));
    out
}

/// Every sink row at one tick: `(table index in TABLES, key) -> other columns`.
pub type Image = BTreeMap<(usize, Cell), Vec<Cell>>;

/// The rows of every aggregate table for `views`.
pub fn image(views: &Views) -> Image {
    let mut rows = Image::new();
    let counts = |rows: &mut Image, table: usize, map: &BTreeMap<String, i64>, numeric: bool| {
        for (label, n) in map {
            let key = if numeric {
                match label.parse::<i64>() {
                    Ok(k) => Cell::Int(k),
                    Err(_) => {
                        // the engine renders these keys from integers; never panic on it
                        tracing::warn!(table = TABLES[table].name, key = %label, "A numeric view key did not parse; row left out.");
                        continue;
                    }
                }
            } else {
                Cell::Text(label.clone())
            };
            rows.insert((table, key), vec![Cell::Int(*n)]);
        }
    };
    counts(&mut rows, 0, &views.age_group, false);
    counts(&mut rows, 1, &views.gender, false);
    counts(&mut rows, 2, &views.hour_of_day, true);
    counts(&mut rows, 3, &views.hourly, true);
    counts(&mut rows, 4, &views.cases_by_status, false);
    counts(&mut rows, 5, &views.open_by_priority, false);
    for e in &views.responsible_load {
        rows.insert(
            (6, Cell::Int(e.id)),
            vec![
                Cell::Text(e.full_name.clone()),
                Cell::Text(e.agency.clone()),
                Cell::Int(e.open_cases),
            ],
        );
    }
    for (name, value) in kpi_values(views) {
        rows.insert((7, Cell::Text(name.into())), vec![Cell::Decimal(value)]);
    }
    counts(&mut rows, 8, &views.row_counts, false);
    rows
}

/// Each KPI as exact decimal text (`None` = `NULL`).
fn kpi_values(views: &Views) -> [(&'static str, Option<String>); 9] {
    let k = &views.kpi;
    let int = |n: i64| Some(n.to_string());
    [
        ("total_reports", int(k.total_reports)),
        ("open_cases", int(k.open_cases)),
        ("closed_cases", int(k.closed_cases)),
        ("unassigned_open_cases", int(k.unassigned_open_cases)),
        ("found_alive", int(k.found_alive)),
        // already rounded to 6 decimals by the engine; {:.6} prints those digits back
        (
            "mean_hours_to_close",
            k.mean_hours_to_close.map(|h| format!("{h:.6}")),
        ),
        ("open_minor_cases", int(k.open_minor_cases)),
        ("actions_total", int(k.actions_total)),
        ("cases_without_person", int(k.cases_without_person)),
    ]
}

/// What one transaction changes in one table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TableChanges {
    /// Rows to insert or overwrite: key, then the other columns.
    pub upserts: Vec<(Cell, Vec<Cell>)>,
    /// Keys to delete.
    pub deletes: Vec<Cell>,
}

impl TableChanges {
    /// Rows written (upserted + deleted).
    pub fn len(&self) -> usize {
        self.upserts.len() + self.deletes.len()
    }

    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// The rows that differ from `old` to `new`, per table (index in [`TABLES`]).
pub fn diff(old: &Image, new: &Image) -> Vec<TableChanges> {
    let mut out: Vec<TableChanges> = TABLES.iter().map(|_| TableChanges::default()).collect();
    for ((t, key), values) in new {
        if old.get(&(*t, key.clone())) != Some(values) {
            out[*t].upserts.push((key.clone(), values.clone()));
        }
    }
    for (t, key) in old.keys() {
        if !new.contains_key(&(*t, key.clone())) {
            out[*t].deletes.push(key.clone());
        }
    }
    out
}

/// A full reconcile: every row of `new` upserted, and every key of `present` (what the tables
/// hold now) that `new` lacks deleted.
pub fn reconcile(present: &[Vec<Cell>], new: &Image) -> Vec<TableChanges> {
    let mut out: Vec<TableChanges> = TABLES.iter().map(|_| TableChanges::default()).collect();
    for ((t, key), values) in new {
        out[*t].upserts.push((key.clone(), values.clone()));
    }
    for (t, keys) in present.iter().enumerate() {
        for key in keys {
            if !new.contains_key(&(t, key.clone())) {
                out[t].deletes.push(key.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpm_engine::model::{Priority, Status, Table};
    use lpm_engine::views::{AgeBand, Gender, Kpi, Metric, ViewRow};

    fn views(rows: &[ViewRow]) -> Views {
        Views::from_rows(rows.iter())
    }

    fn sample() -> Vec<ViewRow> {
        vec![
            ViewRow::Count(Metric::AgeGroup(AgeBand::Teen), 3),
            ViewRow::Count(Metric::Gender(Gender::Female), 2),
            ViewRow::Count(Metric::HourOfDay(14), 5),
            ViewRow::Count(Metric::Hourly(1_794_000_000), 4),
            ViewRow::Count(Metric::CasesByStatus(Status::Open), 7),
            ViewRow::Count(Metric::OpenByPriority(Priority::High), 1),
            ViewRow::Count(Metric::RowCount(Table::PersonsLost), 9),
            ViewRow::Count(Metric::Kpi(Kpi::TotalReports), 9),
            ViewRow::Count(Metric::Kpi(Kpi::CasesWithCloseTime), 3),
            ViewRow::Count(Metric::Kpi(Kpi::CloseMillisSum), 3_600_001),
            ViewRow::Load {
                id: 4,
                full_name: "Ana".into(),
                agency: "ECU 911".into(),
                open_cases: 2,
            },
        ]
    }

    #[test]
    fn image_has_every_fixed_key_and_the_api_values() {
        let img = image(&views(&sample()));
        let get = |t: usize, k: Cell| img.get(&(t, k)).cloned();
        assert_eq!(get(0, Cell::Text("12-17".into())), Some(vec![Cell::Int(3)]));
        assert_eq!(get(0, Cell::Text("60+".into())), Some(vec![Cell::Int(0)]));
        assert_eq!(
            get(1, Cell::Text("unknown".into())),
            Some(vec![Cell::Int(0)])
        );
        assert_eq!(get(2, Cell::Int(14)), Some(vec![Cell::Int(5)]));
        assert_eq!(get(2, Cell::Int(23)), Some(vec![Cell::Int(0)]));
        assert_eq!(get(3, Cell::Int(1_794_000_000)), Some(vec![Cell::Int(4)]));
        assert_eq!(get(4, Cell::Text("open".into())), Some(vec![Cell::Int(7)]));
        assert_eq!(get(5, Cell::Text("high".into())), Some(vec![Cell::Int(1)]));
        assert_eq!(
            get(6, Cell::Int(4)),
            Some(vec![
                Cell::Text("Ana".into()),
                Cell::Text("ECU 911".into()),
                Cell::Int(2)
            ])
        );
        // 3 600 001 ms over 3 cases = 0.3333334 h, rounded half-even to 6 decimals
        assert_eq!(
            get(7, Cell::Text("mean_hours_to_close".into())),
            Some(vec![Cell::Decimal(Some("0.333333".into()))])
        );
        assert_eq!(
            get(7, Cell::Text("total_reports".into())),
            Some(vec![Cell::Decimal(Some("9".into()))])
        );
        assert_eq!(
            get(8, Cell::Text("persons_lost".into())),
            Some(vec![Cell::Int(9)])
        );
        // 7 + 4 + 24 + 1 + statuses + priorities + 1 + 9 + 5: one per fixed key, hourly non-zero
        let v = views(&sample());
        let expected = v.age_group.len()
            + v.gender.len()
            + v.hour_of_day.len()
            + v.hourly.len()
            + v.cases_by_status.len()
            + v.open_by_priority.len()
            + v.responsible_load.len()
            + 9
            + v.row_counts.len();
        assert_eq!(img.len(), expected);
    }

    #[test]
    fn no_close_time_is_null() {
        let img = image(&views(&[]));
        assert_eq!(
            img.get(&(7, Cell::Text("mean_hours_to_close".into()))),
            Some(&vec![Cell::Decimal(None)])
        );
        assert!(
            !img.keys().any(|(t, _)| *t == 3),
            "no hourly rows when empty"
        );
    }

    #[test]
    fn diff_upserts_changed_rows_and_deletes_rows_that_left() {
        let before = image(&views(&sample()));
        let mut rows = sample();
        rows.retain(|r| !matches!(r, ViewRow::Count(Metric::Hourly(_), _)));
        rows.push(ViewRow::Count(Metric::Hourly(1_794_003_600), 1));
        rows.retain(|r| !matches!(r, ViewRow::Count(Metric::Gender(_), _)));
        rows.push(ViewRow::Count(Metric::Gender(Gender::Female), 3));
        let after = image(&views(&rows));
        let d = diff(&before, &after);
        assert_eq!(
            d[1].upserts,
            vec![(Cell::Text("female".into()), vec![Cell::Int(3)])]
        );
        assert_eq!(
            d[3].upserts,
            vec![(Cell::Int(1_794_003_600), vec![Cell::Int(1)])]
        );
        assert_eq!(d[3].deletes, vec![Cell::Int(1_794_000_000)]);
        let written: usize = d.iter().map(TableChanges::len).sum();
        assert_eq!(written, 3);
        assert!(diff(&after, &after).iter().all(TableChanges::is_empty));
    }

    #[test]
    fn reconcile_rewrites_everything_and_deletes_strays() {
        let now = image(&views(&sample()));
        let mut present: Vec<Vec<Cell>> = TABLES.iter().map(|_| Vec::new()).collect();
        present[3] = vec![Cell::Int(1), Cell::Int(1_794_000_000)];
        present[6] = vec![Cell::Int(99)];
        let r = reconcile(&present, &now);
        assert_eq!(r[3].deletes, vec![Cell::Int(1)]);
        assert_eq!(r[6].deletes, vec![Cell::Int(99)]);
        let upserts: usize = r.iter().map(|c| c.upserts.len()).sum();
        assert_eq!(upserts, now.len());
    }

    #[test]
    fn every_view_has_one_table() {
        let names: Vec<&str> = TABLES.iter().map(|t| t.view).collect();
        assert_eq!(names, lpm_engine::ViewName::NAMES.to_vec());
        assert_eq!(create_statements().len(), TABLES.len() + 1);
    }
}
