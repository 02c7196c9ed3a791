//! A brute-force reference model, written independently of the engine's view code.
//!
//! [`final_rows`] recomputes the visible rows from a whole change list (not incrementally):
//! it first settles the table-wide events (which truncates and snapshot closes take effect,
//! and which keys each close saw re-read), then replays every key's own history on its own.
//! [`views`] turns a row set into the JSON document `oracle.py` prints, with its own band
//! table, gender rule, local-hour arithmetic and half-even rounding. [`compare`] lists the
//! differences between two such documents the way `oracle.py --check --strict` does.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use lpm_engine::model::{Key, Row, Table};
use lpm_engine::{Change, ChangeKind, Coords, Position, SnapshotMark};
use serde_json::{json, Map, Value};

/// The visible rows of every table, by primary key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalRows {
    /// `table -> key -> row`. Tables without rows may be absent.
    pub tables: BTreeMap<Table, BTreeMap<Key, Row>>,
}

impl FinalRows {
    /// Collects rows (e.g. an engine's `RunSummary::rows`); a later row with the same key wins.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = &'a Row>) -> FinalRows {
        let mut out = FinalRows::default();
        for r in rows {
            out.insert(r.clone());
        }
        out
    }

    /// Inserts or replaces a row.
    pub fn insert(&mut self, row: Row) {
        self.tables
            .entry(row.table())
            .or_default()
            .insert(row.key(), row);
    }

    /// The rows of one table (empty if none).
    pub fn table(&self, table: Table) -> impl Iterator<Item = (&Key, &Row)> + '_ {
        self.tables.get(&table).into_iter().flat_map(|m| m.iter())
    }

    /// One row, if visible.
    pub fn get(&self, table: Table, key: Key) -> Option<&Row> {
        self.tables.get(&table).and_then(|m| m.get(&key))
    }

    /// Number of visible rows of `table`.
    pub fn count(&self, table: Table) -> usize {
        self.tables.get(&table).map_or(0, |m| m.len())
    }

    /// Drops empty tables so that equality only depends on the rows.
    pub fn normalized(mut self) -> FinalRows {
        self.tables.retain(|_, m| !m.is_empty());
        self
    }
}

/// Total order of processing: by `seq`, and a record's row event before the table-wide event
/// it triggers (the engine sorts its pending work the same way).
fn order_key(c: &Change) -> (u64, u8) {
    match c {
        Change::Row(r) => (r.position.seq, 0),
        Change::Truncate { position, .. } => (position.seq, 1),
    }
}

/// "Newer than the stored position": coordinates decide when both events carry them,
/// otherwise the ingestion sequence does.
fn is_newer(new: &Position, stored: &Position) -> bool {
    match (&new.coords, &stored.coords) {
        (Some(a), Some(b)) => a > b,
        _ => new.seq > stored.seq,
    }
}

/// `a` happened before `b` (coordinates then seq when both have coordinates, else seq).
fn happened_before(a: &Position, b: &Position) -> bool {
    if let (Some(ca), Some(cb)) = (a.coords, b.coords) {
        if ca != cb {
            return ca < cb;
        }
    }
    a.seq < b.seq
}

/// A table-wide event that took effect, as seen by each key of its table.
#[derive(Clone, Debug)]
enum TableEvent {
    /// A snapshot at `coords` closed; `reread` keys were read by it.
    Sweep {
        coords: Coords,
        reread: BTreeSet<Key>,
    },
}

/// Settles the table-wide events of one table, in processing order: the truncate in force at
/// the end, and every accepted snapshot close (keyed by the order of the closing record).
fn table_events(
    sorted: &[&Change],
    table: Table,
) -> (Option<Position>, BTreeMap<(u64, u8), TableEvent>) {
    let mut truncate: Option<Position> = None;
    let mut events = BTreeMap::new();
    let mut closed: Option<Coords> = None;
    for (i, c) in sorted.iter().enumerate() {
        match c {
            // a truncate only moves forward
            Change::Truncate { table: t, position }
                if *t == table && truncate.is_none_or(|old| happened_before(&old, position)) =>
            {
                truncate = Some(*position);
            }
            // a table's own close marker, or the snapshot's `last` record (of any table), which
            // closes every table the snapshot read before it
            Change::Row(r)
                if (r.table == table && r.snapshot.closes_table())
                    || r.snapshot == SnapshotMark::Last =>
            {
                let Some(coords) = r.position.coords else {
                    continue;
                };
                if closed.is_some_and(|c| c >= coords) {
                    continue;
                }
                // every blocking-snapshot read at exactly these coordinates, up to and
                // including the closing record itself
                let reread: BTreeSet<Key> = sorted[..=i]
                    .iter()
                    .filter_map(|c| match c {
                        Change::Row(x)
                            if x.table == table
                                && x.snapshot.marks()
                                && x.position.coords == Some(coords) =>
                        {
                            Some(x.key)
                        }
                        _ => None,
                    })
                    .collect();
                if r.table != table && reread.is_empty() {
                    continue; // the snapshot read nothing of this table: not covered by it
                }
                closed = Some(coords);
                events.insert(order_key(c), TableEvent::Sweep { coords, reread });
            }
            _ => {}
        }
    }
    (truncate, events)
}

/// Computes the visible rows after applying `changes` (in `seq` order), from scratch.
pub fn final_rows(changes: &[Change]) -> FinalRows {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| order_key(c));
    let mut out = FinalRows::default();
    for table in Table::ALL {
        let (truncate, sweeps) = table_events(&sorted, table);
        // every key's own history, in processing order
        let mut histories: BTreeMap<Key, Vec<(u64, u8)>> = BTreeMap::new();
        for c in &sorted {
            if let Change::Row(r) = c {
                if r.table == table {
                    histories.entry(r.key).or_default().push(order_key(c));
                }
            }
        }
        let by_order: BTreeMap<(u64, u8), &lpm_engine::RowChange> = sorted
            .iter()
            .filter_map(|c| match c {
                Change::Row(r) if r.table == table => Some((order_key(c), r)),
                _ => None,
            })
            .collect();
        for (key, own) in histories {
            // merge the key's events with the sweeps of its table
            let mut timeline: Vec<((u64, u8), Option<&TableEvent>)> =
                own.into_iter().map(|k| (k, None)).collect();
            timeline.extend(sweeps.iter().map(|(k, e)| (*k, Some(e))));
            timeline.sort_by_key(|(k, e)| (*k, e.is_some()));
            let mut stored: Option<(Position, Option<Row>)> = None;
            for (k, ev) in timeline {
                match ev {
                    Some(TableEvent::Sweep { coords, reread }) => {
                        if let Some((pos, row)) = &mut stored {
                            let older = pos.coords.is_some_and(|c| c < *coords);
                            if older && !reread.contains(&key) {
                                *row = None;
                            }
                        }
                    }
                    None => {
                        let Some(rc) = by_order.get(&k) else { continue };
                        stored = step(stored, rc);
                    }
                }
            }
            if let Some((pos, Some(row))) = stored {
                let hidden = truncate.is_some_and(|t| happened_before(&pos, &t));
                if !hidden {
                    out.insert(row);
                }
            }
        }
    }
    out
}

/// One key's state after one of its own events.
fn step(
    stored: Option<(Position, Option<Row>)>,
    rc: &lpm_engine::RowChange,
) -> Option<(Position, Option<Row>)> {
    match (&rc.kind, stored) {
        // a tombstone only removes a row that is still there; it is never "newer"
        (ChangeKind::Tombstone, Some((mut pos, Some(_)))) => {
            pos.seq = pos.seq.max(rc.position.seq);
            Some((pos, None))
        }
        (ChangeKind::Tombstone, s) => s,
        (ChangeKind::Upsert(row), None) => Some((rc.position, Some(row.clone()))),
        (ChangeKind::Delete, None) => Some((rc.position, None)),
        (kind, Some((pos, row))) => {
            if is_newer(&rc.position, &pos) {
                let new = match kind {
                    ChangeKind::Upsert(r) => Some(r.clone()),
                    _ => None,
                };
                Some((rc.position, new))
            } else {
                Some((pos, row))
            }
        }
    }
}

const STATUSES: [&str; 5] = [
    "open",
    "in_progress",
    "found_alive",
    "found_deceased",
    "closed",
];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];
const GENDERS: [&str; 4] = ["female", "male", "other", "unknown"];
/// Upper bounds (inclusive) of the age bands, in order; anything else is `unknown`.
const BANDS: [(i64, &str); 6] = [
    (11, "0-11"),
    (17, "12-17"),
    (29, "18-29"),
    (44, "30-44"),
    (59, "45-59"),
    (120, "60+"),
];

fn band(age: Option<i64>) -> &'static str {
    match age {
        Some(a) if a >= 0 => BANDS
            .iter()
            .find(|(hi, _)| a <= *hi)
            .map_or("unknown", |(_, l)| *l),
        _ => "unknown",
    }
}

fn gender(raw: &str) -> &'static str {
    let g = raw.trim().to_lowercase();
    GENDERS
        .iter()
        .find(|x| **x == g)
        .copied()
        .unwrap_or("unknown")
}

/// `(local hour, UTC epoch second of the local hour's start)` by offset arithmetic.
fn hour_of(ms: i64, tz: Tz) -> (i64, i64) {
    let sec = ms.div_euclid(1000);
    let offset = chrono::DateTime::from_timestamp(sec, 0)
        .map(|utc| {
            tz.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc()
        })
        .unwrap_or(0);
    let local = sec + i64::from(offset);
    (
        local.rem_euclid(86_400) / 3600,
        sec - local.rem_euclid(3600),
    )
}

/// `sum_ms / n` in hours, rounded half-even to 6 decimals from exact integers.
fn mean_hours_half_even(sum_ms: i128, n: i128) -> Option<f64> {
    if n == 0 {
        return None;
    }
    // value * 1e6 = sum_ms * 1e6 / (n * 3.6e6) = sum_ms / (3.6 n) = 10 sum_ms / (36 n)
    let (num, den) = (sum_ms * 10, n * 36);
    let mut q = num.div_euclid(den);
    let twice_rem = 2 * num.rem_euclid(den);
    if twice_rem > den || (twice_rem == den && q.rem_euclid(2) == 1) {
        q += 1;
    }
    let text = format!(
        "{}{}.{:06}",
        if q < 0 { "-" } else { "" },
        q.abs() / 1_000_000,
        q.abs() % 1_000_000
    );
    text.parse().ok()
}

fn bump(m: &mut Map<String, Value>, k: &str) {
    let n = m.get(k).and_then(Value::as_i64).unwrap_or(0);
    m.insert(k.to_string(), json!(n + 1));
}

fn zeros<'a>(keys: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
    keys.into_iter()
        .map(|k| (k.to_string(), json!(0)))
        .collect()
}

/// The views of a row set, in `oracle.py`'s JSON shape.
pub fn views(rows: &FinalRows, tz: Tz) -> Value {
    let mut age_group = zeros(BANDS.iter().map(|(_, l)| *l).chain(["unknown"]));
    let mut genders = zeros(GENDERS);
    let hour_names: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let mut hour_of_day = zeros(hour_names.iter().map(String::as_str));
    let mut hourly = Map::new();
    let mut persons: BTreeMap<Key, Option<i64>> = BTreeMap::new();
    for (_, r) in rows.table(Table::PersonsLost) {
        let Row::Person(p) = r else { continue };
        persons.insert(p.id, p.age);
        bump(&mut age_group, band(p.age));
        bump(&mut genders, gender(&p.gender));
        let (h, start) = hour_of(p.reported_at, tz);
        bump(&mut hour_of_day, &h.to_string());
        bump(&mut hourly, &start.to_string());
    }
    let mut by_status = zeros(STATUSES);
    let mut by_priority = zeros(PRIORITIES);
    let mut load: BTreeMap<Key, i64> = BTreeMap::new();
    let (mut open, mut closed, mut unassigned, mut alive, mut minors, mut orphans) =
        (0, 0, 0, 0, 0, 0);
    let (mut close_sum, mut close_n) = (0i128, 0i128);
    for (_, r) in rows.table(Table::CaseCases) {
        let Row::Case(c) = r else { continue };
        let status = c.status.as_str();
        bump(&mut by_status, status);
        let is_open = status == "open" || status == "in_progress";
        if is_open {
            open += 1;
            bump(&mut by_priority, c.priority.as_str());
            match c.responsible_id {
                None => unassigned += 1,
                Some(id) => *load.entry(id).or_default() += 1,
            }
        }
        if ["found_alive", "found_deceased", "closed"].contains(&status) {
            closed += 1;
        }
        if status == "found_alive" {
            alive += 1;
        }
        match persons.get(&c.person_id) {
            None => orphans += 1,
            Some(Some(age)) if is_open && (0..18).contains(age) => minors += 1,
            Some(_) => {}
        }
        if let Some(at) = c.closed_at {
            close_sum += i128::from(at) - i128::from(c.opened_at);
            close_n += 1;
        }
    }
    let responsible_load: Vec<Value> = rows
        .table(Table::ResponsibleContacts)
        .filter_map(|(id, r)| match r {
            Row::Responsible(x) => Some(json!({
                "id": id, "full_name": x.full_name, "agency": x.agency,
                "open_cases": load.get(id).copied().unwrap_or(0),
            })),
            _ => None,
        })
        .collect();
    // sightings are in the rows (case details) but in no view, `row_counts` included
    let row_counts: Map<String, Value> = Table::ALL
        .iter()
        .filter(|t| t.in_views())
        .map(|t| (t.name().to_string(), json!(rows.count(*t))))
        .collect();
    json!({
        "age_group": age_group,
        "gender": genders,
        "hour_of_day": hour_of_day,
        "hourly": hourly,
        "cases_by_status": by_status,
        "open_by_priority": by_priority,
        "responsible_load": responsible_load,
        "kpi": {
            "total_reports": rows.count(Table::PersonsLost),
            "open_cases": open,
            "closed_cases": closed,
            "unassigned_open_cases": unassigned,
            "found_alive": alive,
            "mean_hours_to_close": mean_hours_half_even(close_sum, close_n),
            "open_minor_cases": minors,
            "actions_total": rows.count(Table::CaseActions),
            "cases_without_person": orphans,
        },
        "row_counts": row_counts,
    })
}

/// The `hotspots` view of a row set at H3 resolution `res`, in `oracle.py --hotspots RES`'s
/// shape: `{cell hex: {reports, open_cases, open_minor_cases}}`, cells with a report only.
///
/// Written from the definition, apart from the engine's dataflow (no join, no reduce: one pass
/// over persons, one over cases). The cell itself comes from h3o, as in the engine (the
/// reference does not re-implement H3), but each coordinate goes through the decimal's exact
/// text and `str::parse`, not through the engine's integer-division shortcut, so the two
/// conversions check each other.
pub fn hotspots(rows: &FinalRows, res: h3o::Resolution) -> Value {
    let mut cell_of: BTreeMap<Key, (String, Option<i64>)> = BTreeMap::new();
    let mut cells: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for (_, r) in rows.table(Table::PersonsLost) {
        let Row::Person(p) = r else { continue };
        let (Some(lat), Some(lng)) = (p.latitude, p.longitude) else {
            continue;
        };
        let (Ok(lat), Ok(lng)) = (lat.to_string().parse(), lng.to_string().parse()) else {
            continue;
        };
        let Ok(ll) = h3o::LatLng::new(lat, lng) else {
            continue;
        };
        let cell = format!("{:x}", u64::from(ll.to_cell(res)));
        cells.entry(cell.clone()).or_default()[0] += 1;
        cell_of.insert(p.id, (cell, p.age));
    }
    for (_, r) in rows.table(Table::CaseCases) {
        let Row::Case(c) = r else { continue };
        if !["open", "in_progress"].contains(&c.status.as_str()) {
            continue;
        }
        if let Some((cell, age)) = cell_of.get(&c.person_id) {
            let figures = cells.entry(cell.clone()).or_default();
            figures[1] += 1;
            if age.is_some_and(|a| (0..18).contains(&a)) {
                figures[2] += 1;
            }
        }
    }
    cells
        .into_iter()
        .map(|(cell, [reports, open, minors])| {
            (
                cell,
                json!({"reports": reports, "open_cases": open, "open_minor_cases": minors}),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}

const COUNT_SECTIONS: [&str; 7] = [
    "age_group",
    "gender",
    "hour_of_day",
    "hourly",
    "cases_by_status",
    "open_by_priority",
    "row_counts",
];

/// Differences between an expected and an actual views document, as readable lines.
///
/// Count maps treat a missing key as 0; `responsible_load` is matched by `id`;
/// `mean_hours_to_close` may differ by 1e-6. Every section and kpi of `expected` must exist.
pub fn compare(expected: &Value, actual: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let (Some(exp), Some(act)) = (expected.as_object(), actual.as_object()) else {
        return vec!["not both JSON objects".into()];
    };
    for (section, e) in exp {
        let Some(a) = act.get(section) else {
            diffs.push(format!("{section}: missing in actual"));
            continue;
        };
        if COUNT_SECTIONS.contains(&section.as_str()) {
            let (em, am) = (e.as_object(), a.as_object());
            let Some((em, am)) = em.zip(am) else {
                diffs.push(format!("{section}: not an object"));
                continue;
            };
            let keys: BTreeSet<&String> = em.keys().chain(am.keys()).collect();
            for k in keys {
                let (x, y) = (
                    em.get(k).unwrap_or(&json!(0)).clone(),
                    am.get(k).unwrap_or(&json!(0)).clone(),
                );
                if x.as_i64() != y.as_i64() || x.as_i64().is_none() {
                    diffs.push(format!("{section}[{k}]: expected {x} actual {y}"));
                }
            }
        } else if section == "responsible_load" {
            let index = |v: &Value| -> BTreeMap<i64, Value> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| Some((x.get("id")?.as_i64()?, x.clone())))
                    .collect()
            };
            let (em, am) = (index(e), index(a));
            for (id, x) in &em {
                match am.get(id) {
                    None => diffs.push(format!("responsible_load id {id}: missing in actual")),
                    Some(y) if x != y => {
                        diffs.push(format!("responsible_load id {id}: expected {x} actual {y}"))
                    }
                    Some(_) => {}
                }
            }
            for id in am.keys().filter(|id| !em.contains_key(id)) {
                diffs.push(format!("responsible_load id {id}: not expected"));
            }
        } else if section == "kpi" {
            for (k, x) in e.as_object().into_iter().flatten() {
                let Some(y) = a.get(k) else {
                    diffs.push(format!("kpi.{k}: missing in actual"));
                    continue;
                };
                let same = match (k.as_str(), x.as_f64(), y.as_f64()) {
                    ("mean_hours_to_close", Some(p), Some(q)) => (p - q).abs() <= 1e-6,
                    _ => x == y || (x.as_i64().is_some() && x.as_i64() == y.as_i64()),
                };
                if !same {
                    diffs.push(format!("kpi.{k}: expected {x} actual {y}"));
                }
            }
        } else if e != a {
            diffs.push(format!("{section}: expected {e} actual {a}"));
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_and_genders() {
        assert_eq!(band(None), "unknown");
        assert_eq!(band(Some(-1)), "unknown");
        assert_eq!(band(Some(0)), "0-11");
        assert_eq!(band(Some(12)), "12-17");
        assert_eq!(band(Some(120)), "60+");
        assert_eq!(band(Some(121)), "unknown");
        assert_eq!(gender(" Male "), "male");
        assert_eq!(gender("F"), "unknown");
    }

    #[test]
    fn rounding_is_half_even() {
        assert_eq!(mean_hours_half_even(0, 0), None);
        assert_eq!(mean_hours_half_even(3_600_000, 1), Some(1.0));
        assert_eq!(mean_hours_half_even(9, 5), Some(0.0));
        assert_eq!(mean_hours_half_even(27, 5), Some(0.000002));
        assert_eq!(mean_hours_half_even(-3_600_000, 2), Some(-0.5));
    }

    #[test]
    fn hours_across_fall_back() {
        let tz: Tz = "America/New_York".parse().expect("tz");
        assert_eq!(hour_of(1_730_611_800_000, tz), (1, 1_730_610_000));
        assert_eq!(hour_of(1_730_615_400_000, tz), (1, 1_730_613_600));
        let kolkata: Tz = "Asia/Kolkata".parse().expect("tz");
        assert_eq!(hour_of(600_000, kolkata), (5, -1800));
    }
}
