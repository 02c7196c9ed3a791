//! The Grafana read API: the simpod JSON data-source protocol under `/grafana` and flat rows
//! for the Infinity plugin under `/api/v1/rows/{view}` (`shared/grafana.md` 3a, 3b, 3f).
//!
//! Wire it with [`router`]: it is a `Router<S>` for any app state `S` that provides
//! [`GrafanaState`] and [`AuthState`] through `FromRef`. Every route
//! needs a valid caller ([`Caller`](crate::auth::Caller): a session or an API token, read-only
//! tokens included).
//!
//! # Routes
//!
//! | route | answer |
//! |---|---|
//! | `GET /grafana`, `GET /grafana/` | `{status:"ok", tick}` ("Save & test") |
//! | `POST /grafana/metrics` | every view with its payloads (below) |
//! | `POST /grafana/search` | the view names (SimpleJSON compatibility) |
//! | `POST /grafana/metric-payload-options` | `[{value, label}]` of payload `name` |
//! | `POST /grafana/query` | one element per visible target; several for a split series |
//! | `POST /grafana/variable` | `[{__text, __value}]` |
//! | `POST /grafana/tag-keys`, `/tag-values` | ad-hoc filter keys and values |
//! | `GET`/`POST /api/v1/rows/{view}` | a JSON array of flat row objects |
//!
//! # Metrics (views)
//!
//! - **Time series** `reports`, `cases_opened`, `cases_closed`: counts of persons reported, of
//!   cases opened and of cases closed per local hour or day. In `/query` each line is
//!   `{target, refId, datapoints: [[count, epoch_ms], ...], tags?}`, points strictly ascending,
//!   the time being the UTC instant at which the local period starts. Payloads: `bucket`
//!   (`auto`|`hour`|`day`), `tz` (`dashboard`|`server`|`UTC`|IANA; its options come from
//!   `/metric-payload-options`), the multi-selects `gender`, `age_band`, `status`, `priority`,
//!   and `split_by` (`none`|`gender`|`age_band`|`status`|`priority`: one line per value, named
//!   `"<metric> <value>"`, with `tags: {<dimension>: <value>}`). A report's status and priority
//!   are those of its person's case (`none` if it has none).
//! - **Tables** `age_group`, `gender`, `hour_of_day`, `hourly`, `cases_by_status`,
//!   `open_by_priority`, `responsible_load`, `kpi` (one row) and `sensitive_open_cases`, as
//!   `{type:"table", refId, columns:[{text, type}], rows}`. They are the engine's exact views
//!   at the last complete tick: the time range and the dimension filters do not apply to them
//!   (the views are whole-state counts), except that `hourly` keeps only the hours in the range
//!   and `sensitive_open_cases` honours the dimension filters. `hour_of_day` and `hourly` are in
//!   the engine's report zone.
//! - **`sensitive_open_cases`**: open/in-progress cases of minors (`0 <= age < 18`) or of
//!   high/critical priority, from a [`CaseSource`], critical first, then oldest first. Callers
//!   who do not see personal data (read-only tokens) get `case_id, opened_at, status, priority,
//!   age_band, gender, responsible`; others also get `age, full_name, last_seen_place`.
//!
//! # Filters
//!
//! Payload / parameter filters take one value or several: a JSON array, or a string that is
//! comma or pipe separated, optionally in `{..}` (Grafana's csv, pipe and glob formats). Empty,
//! `All`, `$__all`, `*` and `.*` mean no restriction. Genders (case-insensitive) and age bands
//! (`0-11` ... `60+`, `unknown`; a bare `60` is `60+`, since `+` decodes to a space in URLs) must
//! be known values (422 otherwise); statuses and priorities may be any text. Ad-hoc filters
//! support `=`, `!=`, `=|`, `!=|` (Grafana 11 multi-value) and `=~` / `!~` limited to
//! alternations of literal values (`female|male`, `^(open|in_progress)$`, `.*`; no regex
//! engine); any other operator, key or pattern is a 422 naming `filters`. All filters combine
//! with AND.
//!
//! # Bucketing and zones
//!
//! The engine keeps facts per 15-minute UTC bucket. Every real offset is a multiple of 15
//! minutes, so each bucket lies in one local hour and one local day of any zone, and a query
//! regroups them exactly: hours and days follow DST (a fall-back day has 25 hours, a
//! spring-forward day 23), and half- or quarter-hour zones work (Asia/Kathmandu hours start at
//! :15 UTC). The zone is the payload's `tz`, else the request's `timezone`: an IANA name, `utc`,
//! or `browser`/empty, which means the server's report zone (`GrafanaState::default_tz`),
//! since the browser's zone never reaches the server. The grain is the explicit `bucket`, else
//! `day` when `intervalMs >= 1 day`, else `hour` (never finer); an hourly series that would
//! exceed `maxDataPoints` is coarsened to days. Periods are whole: the first may start before
//! `range.from` and the last end after `range.to`, so every point is a complete count. When
//! the range holds at most `maxDataPoints` periods (10 000 without it; 50 000, or `max_points`,
//! for rows; never more than [`MAX_POINTS_PER_SERIES`]), every period gets a point, zeros
//! included, so Grafana draws no false gaps; otherwise only periods with data are sent. A
//! missing range (or, for rows, a missing `from` or `to`) means from the first or to the last
//! data there is.
//!
//! Each query is one range scan over the facts of its kind (`Series` is ordered by kind, then
//! bucket), so it costs O(facts in the range + points), whatever the number of rows ingested
//! (a status or priority split adds one counting pass, below); the zone is consulted once per
//! period, not per fact.
//!
//! # Work budget
//!
//! One request may not make the server compute or send more than (`budget.rs`, the only place
//! these numbers live; each 422 repeats its cap):
//!
//! | cap | value | over it |
//! |---|---|---|
//! | [`MAX_TARGETS_PER_REQUEST`] visible simpod targets | 20 | 422 naming `targets` |
//! | [`MAX_SERIES_PER_REQUEST`] series (a split target counts one per value) | 100 | 422 naming the target's `split_by` (`targets` unsplit) |
//! | [`MAX_POINTS_PER_SERIES`] points per series (zero-fill limit, and periods with data of a sparse series) | 50 000 | hours served as days, else 422 naming `range` (rows: `from`) |
//! | [`MAX_POINTS_PER_REQUEST`] points over all series (a zero-filled series counts periods x lines) | 200 000 | hours served as days, else 422 naming `split_by` (`targets` unsplit) |
//!
//! The number of lines is counted before any is built (a status or priority split counts the
//! values present in the range in one bounded pass), a zero-filled series is charged before
//! its scan, and a sparse series' scan stops at the first point over the caps, so what a
//! request allocates is bounded by the caps whatever its range, `maxDataPoints` or `split_by`.
//! Targets are charged in order. When the budget serves hours as days, or an explicit `bucket:
//! hour` is served as days because of `maxDataPoints`, the answer says so: every simpod element
//! of that target carries `meta: {notices: [{severity: "info", text}]}` (shown on the panel),
//! and rows carry an `X-Lpm-Notice` header; rows always carry the grain served in
//! `X-Lpm-Bucket` (`hour` or `day`).
//!
//! # Infinity rows
//!
//! `/api/v1/rows/{view}?from=&to=&bucket=&tz=&gender=&age_band=&status=&priority=&split_by=
//! &max_points=` (or a POST of the same fields as JSON). `from`/`to` are epoch ms (`${__from}`,
//! `${__to}`) or ISO-8601. Time series rows are `{time, time_iso, value}` plus the split
//! dimension's key; count views are `{key, count}`; `hourly` is `{time, time_iso, count}`; `kpi`
//! is one object; `responsible_load` is `{id, full_name, agency, open_cases}`; sensitive cases
//! have the table's columns (`opened_at` plus `opened_at_iso`). `time_iso` is RFC 3339 in the
//! requested zone. Unknown view: 404; bad `from`/`to`/`tz`/`bucket`: 400 naming it.
//!
//! Every data answer carries the engine tick in `X-Lpm-Tick`; before the first tick, data
//! routes answer 503 with `Retry-After`.

pub(crate) mod api_doc;
mod budget;
mod cases;
mod catalog;
pub(crate) mod params;
mod plan;
pub(crate) mod protocol;
mod request;
pub(crate) mod rows;
mod tables;
mod timeseries;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use chrono_tz::Tz;
use lpm_engine::ViewStore;

use crate::auth::AuthState;

pub use budget::{
    MAX_POINTS_PER_REQUEST, MAX_POINTS_PER_SERIES, MAX_SERIES_PER_REQUEST, MAX_TARGETS_PER_REQUEST,
};
pub use cases::{CaseSource, SensitiveCase, StaticCases};
pub use catalog::{Dim, TableView, View};
pub use request::TICK_HEADER;
pub use rows::{BUCKET_HEADER, NOTICE_HEADER};

/// What the Grafana routes read.
#[derive(Clone)]
pub struct GrafanaState {
    /// The engine's views and time-series facts.
    pub store: Arc<ViewStore>,
    /// The server's report zone (`REPORT_LOCAL_TZ`): used for Grafana's `browser` zone and
    /// when no zone is given.
    pub default_tz: Tz,
    /// Where the sensitive open cases come from.
    pub cases: Arc<dyn CaseSource>,
}

impl std::fmt::Debug for GrafanaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrafanaState")
            .field("default_tz", &self.default_tz)
            .finish_non_exhaustive()
    }
}

/// The Grafana routes (`/grafana/...` and `/api/v1/rows/{view}`), to merge into the app router:
/// `app.merge(grafana::router())` with `impl FromRef<AppState> for GrafanaState`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    GrafanaState: FromRef<S>,
    AuthState: FromRef<S>,
{
    Router::new()
        .route("/grafana", get(protocol::health))
        .route("/grafana/", get(protocol::health))
        .route("/grafana/metrics", post(protocol::metrics))
        .route("/grafana/search", post(protocol::search))
        .route(
            "/grafana/metric-payload-options",
            post(protocol::payload_options),
        )
        .route("/grafana/query", post(protocol::query))
        .route("/grafana/variable", post(protocol::variable))
        .route("/grafana/tag-keys", post(protocol::tag_keys))
        .route("/grafana/tag-values", post(protocol::tag_values))
        .route(
            "/api/v1/rows/{view}",
            get(rows::get_rows).post(rows::post_rows),
        )
}
