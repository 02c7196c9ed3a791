//! Route tests: request bodies shaped as Grafana 10/11 sends them, every `/query` element run
//! through the `toDataFrame` oracle, Infinity row requests with `${__from}`/`${__to}` values,
//! and counts checked against the engine's own views. The data goes through a real engine.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use lpm_engine::model::{Case, Person, Priority, Responsible, Row, Status, Table};
use lpm_engine::views::Gender;
use lpm_engine::{
    Change, ChangeKind, Engine, EngineConfig, Feed, FeedItem, Position, RowChange, SnapshotMark,
    ViewStore, Views,
};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::budget::{
    MAX_POINTS_PER_REQUEST, MAX_POINTS_PER_SERIES, MAX_SERIES_PER_REQUEST, MAX_TARGETS_PER_REQUEST,
};
use super::{router, GrafanaState, SensitiveCase, StaticCases};
use crate::auth::{AuthState, AuthStore, Principal, Role, Via, SESSION_COOKIE};
use lpm_testkit::grafana_frames::{check_response, Kind};

const H: i64 = 3_600_000;
/// 2024-03-04T00:00:00Z: the general data starts here.
const BASE: i64 = 1_709_510_400_000;
/// 2024-11-03T00:00 EDT = 04:00Z: New York's fall-back day (25 hours, to 05:00Z on the 4th).
const NY_DAY: i64 = 1_730_606_400_000;
/// 2024-06-01T00:00:00Z (05:45 in Kathmandu).
const KTM: i64 = 1_717_200_000_000;
/// Persons reported: 30 with cases, 1 without, 25 on the New York day, 4 around `KTM`.
const TOTAL_REPORTS: i64 = 60;
/// General cases with `closed_at` (status found_alive, found_deceased or closed).
const CLOSED_CASES: i64 = 15;

// ---------------------------------------------------------------------------------------------
// Data: a tiny engine run
// ---------------------------------------------------------------------------------------------

fn person(id: i64, reported_at: i64, gender: &str, age: Option<i64>) -> Row {
    Row::Person(Arc::new(Person {
        id,
        full_name: format!("Persona {id}"),
        age,
        gender: gender.into(),
        last_seen_at: reported_at,
        reported_at,
        last_seen_place: "Quito".into(),
        version: 1,
        ..Default::default()
    }))
}

fn case(id: i64, person_id: i64, status: &str, priority: &str, opened_at: i64) -> Case {
    Case {
        id,
        person_id,
        status: Status::parse(status),
        priority: Priority::parse(priority),
        responsible_id: None,
        opened_at,
        closed_at: None,
        version: 1,
        public: false,
        public_id: None,
    }
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (id, name, agency) in [
        (1, "Ana Torres", "ECU 911"),
        (2, "Luis Vera", "Cruz Roja"),
        (3, "Marta Ruiz", "Policia Nacional"),
    ] {
        rows.push(Row::Responsible(Arc::new(Responsible {
            id,
            full_name: name.into(),
            agency: agency.into(),
            phone: None,
            email: None,
            active: true,
            version: 1,
        })));
    }
    let genders = ["female", "male", " Male ", "other", "unknown", "F"];
    let ages = [
        Some(5),
        Some(15),
        Some(25),
        Some(35),
        Some(50),
        Some(70),
        None,
        Some(-1),
    ];
    let statuses = [
        "open",
        "in_progress",
        "found_alive",
        "found_deceased",
        "closed",
        "open",
    ];
    let priorities = ["low", "medium", "high", "critical"];
    for i in 1..=30i64 {
        let reported = BASE + i * 11_820_000; // every 3 h 17 min
        let u = i as usize;
        rows.push(person(i, reported, genders[u % 6], ages[u % 8]));
        let mut c = case(
            100 + i,
            i,
            statuses[u % 6],
            priorities[u % 4],
            reported + 600_000,
        );
        c.responsible_id = [None, Some(1), Some(2), Some(3)][u % 4];
        if matches!(u % 6, 2..=4) {
            c.closed_at = Some(c.opened_at + i * 2 * H);
        }
        rows.push(Row::Case(Arc::new(c)));
    }
    // a report without a case, and a case without a person
    rows.push(person(31, BASE + H, "female", Some(40)));
    rows.push(Row::Case(Arc::new(case(
        200, 999, "open", "critical", BASE,
    ))));
    // one report in every UTC hour of New York's 25-hour fall-back day
    for k in 0..25 {
        rows.push(person(
            1001 + k,
            NY_DAY + 30 * 60_000 + k * H,
            "female",
            Some(30),
        ));
    }
    // Kathmandu (+05:45): two reports in the local hour 05:00, two in 06:00
    for (k, offset) in [0, 14 * 60_000, 15 * 60_000, 60 * 60_000]
        .into_iter()
        .enumerate()
    {
        rows.push(person(2001 + k as i64, KTM + offset, "male", Some(20)));
    }
    rows
}

/// Hands all changes to worker 0 at tick 1, then ends.
struct OnceFeed(Mutex<Option<Vec<Change>>>);

impl Feed for OnceFeed {
    fn next(&self, _worker: usize) -> FeedItem {
        match self.0.lock().ok().and_then(|mut c| c.take()) {
            Some(changes) => FeedItem::Batch { tick: 1, changes },
            None => FeedItem::End,
        }
    }
}

fn engine_store() -> Arc<ViewStore> {
    store_of(rows())
}

/// Runs `rows` through a one-worker engine and returns its store.
fn store_of(rows: Vec<Row>) -> Arc<ViewStore> {
    let changes = rows
        .into_iter()
        .enumerate()
        .map(|(seq, row)| {
            Change::Row(RowChange {
                table: row.table(),
                key: row.key(),
                kind: ChangeKind::Upsert(row),
                position: Position {
                    coords: None,
                    seq: seq as u64 + 1,
                },
                snapshot: SnapshotMark::Streamed,
            })
        })
        .collect();
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, Arc::new(OnceFeed(Mutex::new(Some(changes)))))
        .expect("engine starts");
    let store = engine.handle().store().clone();
    engine.join().expect("engine finishes");
    assert!(store.tick().is_some(), "the engine published a tick");
    store
}

// ---------------------------------------------------------------------------------------------
// App: the Grafana router over the engine's store, with real auth
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct App {
    grafana: GrafanaState,
    auth: AuthState,
}

impl FromRef<App> for GrafanaState {
    fn from_ref(app: &App) -> GrafanaState {
        app.grafana.clone()
    }
}

impl FromRef<App> for AuthState {
    fn from_ref(app: &App) -> AuthState {
        app.auth.clone()
    }
}

fn sensitive_cases() -> Vec<SensitiveCase> {
    let c = |case_id, status: &str, priority: &str, age, gender, opened_at| SensitiveCase {
        case_id,
        opened_at,
        status: Status::parse(status),
        priority: Priority::parse(priority),
        age,
        gender,
        full_name: format!("Nombre Sensible {case_id}"),
        last_seen_place: "Parque El Ejido".into(),
        responsible: Some("Ana Torres".into()),
    };
    vec![
        c(1, "open", "low", Some(12), Gender::Female, BASE + 5 * H),
        c(
            2,
            "in_progress",
            "critical",
            Some(40),
            Gender::Male,
            BASE + 9 * H,
        ),
        c(3, "open", "low", Some(40), Gender::Female, BASE), // not sensitive
        c(4, "found_alive", "high", Some(10), Gender::Female, BASE), // closed
        c(5, "open", "medium", Some(-1), Gender::Other, BASE), // garbage age: not a minor
        c(6, "open", "high", None, Gender::Male, BASE + H),
        c(
            7,
            "open",
            "critical",
            Some(16),
            Gender::Female,
            BASE + 2 * H,
        ),
    ]
}

struct Fixture {
    app: App,
    reader: String,
    responder: String,
    _dir: tempfile::TempDir,
}

fn auth_state() -> (AuthState, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = AuthStore::open(dir.path()).expect("auth store");
    let token = store.create_token("grafana", "test").expect("token").token;
    let auth = AuthState::new(Arc::new(store), false);
    let session = auth
        .sessions
        .create(Principal {
            name: "responder".into(),
            role: Role::Responder,
            via: Via::Session,
        })
        .expect("session");
    (auth, token, session, dir)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (auth, reader, responder, dir) = auth_state();
        Fixture {
            app: App {
                grafana: GrafanaState {
                    store: engine_store(),
                    default_tz: chrono_tz::America::Guayaquil,
                    cases: Arc::new(StaticCases(sensitive_cases())),
                },
                auth,
            },
            reader,
            responder,
            _dir: dir,
        }
    })
}

fn views() -> Arc<Views> {
    fixture().app.grafana.store.read_shared().1
}

#[derive(Clone, Copy)]
enum Who {
    Reader,
    Responder,
    Nobody,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    /// The body's size on the wire.
    bytes: usize,
}

async fn send_to(app: App, method: &str, uri: &str, body: Option<&str>, who: Who) -> Reply {
    let f = fixture();
    let mut req = Request::builder().method(method).uri(uri);
    match who {
        Who::Reader => {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", f.reader));
        }
        Who::Responder => {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={}", f.responder));
        }
        Who::Nobody => {}
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let router: Router = router::<App>().with_state(app);
    let res = router.oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status,
        headers,
        bytes: bytes.len(),
        body,
    }
}

async fn send(method: &str, uri: &str, body: Option<Value>, who: Who) -> Reply {
    let text = body.map(|b| b.to_string());
    send_to(fixture().app.clone(), method, uri, text.as_deref(), who).await
}

async fn post(uri: &str, body: Value) -> Reply {
    send("POST", uri, Some(body), Who::Reader).await
}

async fn get(uri: &str) -> Reply {
    send("GET", uri, None, Who::Reader).await
}

/// Asserts `status` and that the error names `field`.
fn assert_error(r: &Reply, status: u16, field: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["field"], json!(field), "{}", r.body);
}

/// A query body as Grafana 11 sends it for a dashboard panel.
fn grafana_body(timezone: &str, from: &str, to: &str, targets: Value) -> Value {
    json!({
        "app": "dashboard",
        "requestId": "SQR108",
        "timezone": timezone,
        "range": {"from": from, "to": to, "raw": {"from": "now-6h", "to": "now"}},
        "rangeRaw": {"from": "now-6h", "to": "now"},
        "interval": "1m",
        "intervalMs": 60000,
        "maxDataPoints": 1101,
        "targets": targets,
        "scopedVars": {
            "__interval": {"text": "1m", "value": "1m"},
            "__interval_ms": {"text": "60000", "value": 60000}
        },
        "startTime": 1_730_700_000_000i64,
        "dashboardUID": "lpm-analysts",
        "panelId": 4,
        "publicDashboardAccessToken": "",
        "filters": [],
        "liveStreaming": false,
        "skipQueryCache": false,
        "somethingGrafana12Adds": {"nested": [1, 2]}
    })
}

fn target(ref_id: &str, metric: &str, payload: Value) -> Value {
    json!({
        "refId": ref_id,
        "datasource": {"type": "simpod-json-datasource", "uid": "lpm-simpod"},
        "editorMode": "builder",
        "target": metric,
        "payload": payload,
        "hide": false
    })
}

/// Runs a `/query` and checks every element with the `toDataFrame` oracle.
async fn query(body: Value) -> Value {
    let r = post("/grafana/query", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers.contains_key("x-lpm-tick"));
    check_response(&r.body).unwrap_or_else(|e| panic!("{e}"));
    r.body
}

/// All of 2024 (every fact of the data set), daily in the default zone.
async fn all_of_2024(metric: &str, payload: Value) -> Value {
    let mut body = grafana_body(
        "browser",
        "2024-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.000Z",
        json!([target("A", metric, payload)]),
    );
    body["intervalMs"] = json!(86_400_000);
    query(body).await
}

fn points(element: &Value) -> Vec<(i64, i64)> {
    element["datapoints"]
        .as_array()
        .expect("datapoints")
        .iter()
        .map(|p| (p[1].as_i64().expect("time"), p[0].as_i64().expect("value")))
        .collect()
}

fn total(element: &Value) -> i64 {
    points(element).iter().map(|(_, n)| n).sum()
}

/// `{tag value: total}` of a split answer.
fn totals_by(answer: &Value, dim: &str) -> BTreeMap<String, i64> {
    answer
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let label = e["tags"][dim].as_str().expect("tag").to_string();
            (label, total(e))
        })
        .collect()
}

fn nonzero(m: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    m.iter()
        .filter(|(_, n)| **n != 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Protocol routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_route_needs_a_caller() {
    let routes = [
        ("GET", "/grafana"),
        ("GET", "/grafana/"),
        ("POST", "/grafana/metrics"),
        ("POST", "/grafana/search"),
        ("POST", "/grafana/metric-payload-options"),
        ("POST", "/grafana/query"),
        ("POST", "/grafana/variable"),
        ("POST", "/grafana/tag-keys"),
        ("POST", "/grafana/tag-values"),
        ("GET", "/api/v1/rows/reports"),
        ("POST", "/api/v1/rows/reports"),
    ];
    for (method, uri) in routes {
        let body = (method == "POST").then(|| json!({}));
        let r = send(method, uri, body.clone(), Who::Nobody).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let r = send(method, uri, body, Who::Reader).await;
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
    }
}

#[tokio::test]
async fn save_and_test_answers_200() {
    for uri in ["/grafana", "/grafana/"] {
        let r = get(uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["status"], "ok");
    }
}

#[tokio::test]
async fn metrics_lists_every_view_with_payloads() {
    // Grafana sends `{}` first, then the builder state when a payload has reloadMetric
    for body in [
        Some(json!({})),
        Some(json!({"metric": "reports", "payload": {"bucket": "day"}})),
        None,
    ] {
        let r = send("POST", "/grafana/metrics", body, Who::Reader).await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.body.as_array().expect("array");
        let names: Vec<&str> = list.iter().filter_map(|m| m["value"].as_str()).collect();
        assert_eq!(
            names,
            [
                "reports",
                "cases_opened",
                "cases_closed",
                "age_group",
                "gender",
                "hour_of_day",
                "hourly",
                "cases_by_status",
                "open_by_priority",
                "responsible_load",
                "kpi",
                "sensitive_open_cases"
            ]
        );
        let payloads: Vec<&str> = list[0]["payloads"]
            .as_array()
            .expect("payloads")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            payloads,
            ["bucket", "tz", "gender", "age_band", "status", "priority", "split_by"]
        );
        for m in list {
            for p in m["payloads"].as_array().expect("payloads") {
                let ty = p["type"].as_str().expect("type");
                assert!(["select", "multi-select"].contains(&ty));
            }
        }
    }
    let r = post("/grafana/search", json!({"target": ""})).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(12));
}

#[tokio::test]
async fn payload_options_per_name() {
    let r = post(
        "/grafana/metric-payload-options",
        json!({"metric": "reports", "payload": {"bucket": "hour"}, "name": "tz"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let values: Vec<&str> = r
        .body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o["value"].as_str())
        .collect();
    for v in [
        "dashboard",
        "server",
        "UTC",
        "America/New_York",
        "Asia/Kathmandu",
    ] {
        assert!(values.contains(&v), "{v}");
    }
    let r = post(
        "/grafana/metric-payload-options",
        json!({"metric": "reports", "payload": {}, "name": "age_band"}),
    )
    .await;
    assert_eq!(
        r.body,
        json!([
            {"value": "0-11", "label": "0-11"}, {"value": "12-17", "label": "12-17"},
            {"value": "18-29", "label": "18-29"}, {"value": "30-44", "label": "30-44"},
            {"value": "45-59", "label": "45-59"}, {"value": "60+", "label": "60+"},
            {"value": "unknown", "label": "unknown"}
        ])
    );
    let r = post(
        "/grafana/metric-payload-options",
        json!({"metric": "reports", "payload": {}, "name": "colour"}),
    )
    .await;
    assert_error(&r, 422, "name");
    let r = post(
        "/grafana/metric-payload-options",
        json!({"metric": "nope", "name": "tz"}),
    )
    .await;
    assert_error(&r, 422, "metric");
}

#[tokio::test]
async fn grafana_11_panel_request_with_hidden_target() {
    let body = grafana_body(
        "America/New_York",
        "2024-11-03T04:00:00.000Z",
        "2024-11-04T05:00:00.000Z",
        json!([
            target("A", "reports", json!({"bucket": "hour"})),
            target("B", "age_group", json!({})),
            {"refId": "C", "target": "cases_opened", "payload": {}, "hide": true},
            {"refId": "D", "target": "", "payload": ""},
            {"refId": "E", "datasource": {"type": "simpod-json-datasource", "uid": "x"},
             "target": "reports", "payload": "{\"bucket\":\"day\"}"}
        ]),
    );
    let answer = query(body).await;
    let kinds = check_response(&answer).expect("valid frames");
    assert_eq!(kinds, [Kind::TimeSeries, Kind::Table, Kind::TimeSeries]);
    let refs: Vec<&str> = answer
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["refId"].as_str())
        .collect();
    assert_eq!(refs, ["A", "B", "E"]);
}

#[tokio::test]
async fn fall_back_day_in_new_york_sums_25_local_hours() {
    let body = grafana_body(
        "America/New_York",
        "2024-11-03T04:00:00.000Z",
        "2024-11-04T05:00:00.000Z",
        json!([
            target("day", "reports", json!({"bucket": "day"})),
            target("hour", "reports", json!({"bucket": "hour"})),
        ]),
    );
    let answer = query(body).await;
    assert_eq!(points(&answer[0]), [(NY_DAY, 25)]);
    let hours = points(&answer[1]);
    assert_eq!(hours.len(), 25);
    assert!(hours.iter().all(|(_, n)| *n == 1));
    assert_eq!(hours[0].0, NY_DAY);
    assert_eq!(hours[24].0, NY_DAY + 24 * H);
    // intervalMs >= 1 day picks days without an explicit bucket
    let mut body = grafana_body(
        "America/New_York",
        "2024-11-01T04:00:00.000Z",
        "2024-11-06T05:00:00.000Z",
        json!([target("A", "reports", json!({}))]),
    );
    body["intervalMs"] = json!(86_400_000);
    body["interval"] = json!("1d");
    let days = points(&query(body).await[0]);
    // Nov 1..5, zero-filled; the 3rd starts at 04:00Z, the 4th at 05:00Z (EST)
    let starts: Vec<i64> = days.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        starts,
        [
            NY_DAY - 48 * H,
            NY_DAY - 24 * H,
            NY_DAY,
            NY_DAY + 25 * H,
            NY_DAY + 49 * H
        ]
    );
    assert_eq!(days[2].1, 25);
}

#[tokio::test]
async fn kathmandu_hours_start_at_quarter_past() {
    let body = grafana_body(
        "Asia/Kathmandu",
        "2024-05-31T23:00:00.000Z",
        "2024-06-01T02:00:00.000Z",
        json!([
            target("A", "reports", json!({"bucket": "hour"})),
            target("B", "reports", json!({"bucket": "day"})),
        ]),
    );
    let answer = query(body).await;
    let m = 60_000;
    assert_eq!(
        points(&answer[0]),
        [
            (KTM - 105 * m, 0),
            (KTM - 45 * m, 2),
            (KTM + 15 * m, 2),
            (KTM + 75 * m, 0)
        ]
    );
    assert!(points(&answer[0])
        .iter()
        .all(|(t, _)| t.rem_euclid(H) == 15 * m));
    // the local day began at 18:15Z
    assert_eq!(points(&answer[1]), [(KTM - 345 * m, 4)]);
}

#[tokio::test]
async fn browser_utc_and_iana_zones() {
    let run = |tz: &'static str| async move {
        let body = grafana_body(
            tz,
            "2024-03-04T00:00:00.000Z",
            "2024-03-10T00:00:00.000Z",
            json!([target("A", "reports", json!({"bucket": "day"}))]),
        );
        points(&query(body).await[0])
    };
    let browser = run("browser").await;
    assert_eq!(browser, run("America/Guayaquil").await);
    assert_eq!(browser, run("").await);
    assert!(browser.iter().all(|(t, _)| t.rem_euclid(24 * H) == 5 * H));
    let utc = run("utc").await;
    assert!(utc.iter().all(|(t, _)| t.rem_euclid(24 * H) == 0));
    assert_eq!(
        utc.iter().map(|(_, n)| n).sum::<i64>(),
        browser.iter().map(|(_, n)| n).sum::<i64>()
    );
    // the payload's tz beats the dashboard's; "dashboard" defers to it
    let body = grafana_body(
        "utc",
        "2024-11-03T04:00:00.000Z",
        "2024-11-04T05:00:00.000Z",
        json!([
            target(
                "A",
                "reports",
                json!({"bucket": "day", "tz": "America/New_York"})
            ),
            target("B", "reports", json!({"bucket": "day", "tz": "dashboard"})),
        ]),
    );
    let answer = query(body).await;
    assert_eq!(points(&answer[0]), [(NY_DAY, 25)]);
    assert_eq!(
        points(&answer[1]),
        [(NY_DAY - 4 * H, 20), (NY_DAY + 20 * H, 5)]
    );
}

#[tokio::test]
async fn series_totals_equal_the_views() {
    let v = views();
    assert_eq!(v.kpi.total_reports, TOTAL_REPORTS);
    let reports = all_of_2024("reports", json!({})).await;
    assert_eq!(total(&reports[0]), v.kpi.total_reports);
    assert_eq!(
        points(&reports[0]).len(),
        367,
        "zero-filled local days 2023-12-31..2024-12-31"
    );

    let by_gender = all_of_2024("reports", json!({"split_by": "gender"})).await;
    assert_eq!(totals_by(&by_gender, "gender"), v.gender);
    let by_band = all_of_2024("reports", json!({"split_by": "age_band"})).await;
    assert_eq!(totals_by(&by_band, "age_band"), v.age_group);

    let opened = all_of_2024("cases_opened", json!({"split_by": "status"})).await;
    assert_eq!(
        nonzero(&totals_by(&opened, "status")),
        nonzero(&v.cases_by_status)
    );
    let open = all_of_2024(
        "cases_opened",
        json!({"status": ["open", "in_progress"], "split_by": "priority"}),
    )
    .await;
    assert_eq!(totals_by(&open, "priority"), v.open_by_priority);
    let opened = all_of_2024("cases_opened", json!({})).await;
    assert_eq!(total(&opened[0]), v.row_counts["case_cases"]);
    let closed = all_of_2024("cases_closed", json!({})).await;
    assert_eq!(total(&closed[0]), CLOSED_CASES);

    // no range at all: every fact there is
    let mut body = grafana_body("utc", "", "", json!([target("A", "reports", json!({}))]));
    body.as_object_mut().expect("object").remove("range");
    let answer = query(body).await;
    assert_eq!(total(&answer[0]), TOTAL_REPORTS);
}

#[tokio::test]
async fn split_lines_carry_tags_and_follow_filters() {
    let answer = all_of_2024(
        "reports",
        json!({"split_by": "gender", "gender": ["female", "male"]}),
    )
    .await;
    let lines = answer.as_array().expect("array");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["target"], "reports female");
    assert_eq!(lines[0]["tags"], json!({"gender": "female"}));
    assert_eq!(lines[1]["tags"], json!({"gender": "male"}));
}

#[tokio::test]
async fn payload_filters_in_every_grafana_format() {
    let v = views();
    let want = v.gender["female"] + v.gender["male"];
    for value in [
        json!(["female", "male"]),
        json!("female,male"),
        json!("{female,male}"),
        json!("female|male"),
        json!(["Female", " male "]),
    ] {
        let answer = all_of_2024("reports", json!({"gender": value})).await;
        assert_eq!(total(&answer[0]), want, "{value}");
    }
    for all in [json!("$__all"), json!([]), json!(""), json!(null)] {
        let answer = all_of_2024("reports", json!({"gender": all})).await;
        assert_eq!(total(&answer[0]), TOTAL_REPORTS, "{all}");
    }
    // filters combine with AND
    let answer = all_of_2024("reports", json!({"gender": "female", "age_band": "30-44"})).await;
    assert_eq!(total(&answer[0]), 25 + 1); // the New York day + person 31
    let body = grafana_body(
        "utc",
        "2024-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
        json!([target("A", "reports", json!({"gender": "robot"}))]),
    );
    let r = post("/grafana/query", body).await;
    assert_error(&r, 422, "targets[0].payload.gender");
}

#[tokio::test]
async fn adhoc_filters_apply_to_every_series() {
    let v = views();
    let run = |filters: Value| async move {
        let mut body = grafana_body(
            "browser",
            "2024-01-01T00:00:00.000Z",
            "2025-01-01T00:00:00.000Z",
            json!([target("A", "reports", json!({"bucket": "day"}))]),
        );
        body["filters"] = filters;
        let r = post("/grafana/query", body).await;
        (r.status, r.body)
    };
    let (_, body) = run(json!([{"key": "gender", "operator": "=", "value": "female"}])).await;
    assert_eq!(total(&body[0]), v.gender["female"]);
    let (_, body) = run(json!([{"key": "gender", "operator": "!=", "value": "female"}])).await;
    assert_eq!(total(&body[0]), TOTAL_REPORTS - v.gender["female"]);
    let (_, body) = run(json!([
        {"key": "gender", "operator": "=~", "value": "^(female|male)$", "condition": ""},
        {"key": "age_band", "operator": "!~", "value": "60\\+|unknown"}
    ]))
    .await;
    let (_, check) = run(json!([
        {"key": "gender", "operator": "=|", "value": "", "values": ["female", "male"]},
        {"key": "age_band", "operator": "!=|", "value": "", "values": ["60+", "unknown"]}
    ]))
    .await;
    assert_eq!(total(&body[0]), total(&check[0]));
    assert!(total(&body[0]) > 0 && total(&body[0]) < v.gender["female"] + v.gender["male"]);
    // SimpleJSON's adhocFilters name and a null filters field
    let mut b = grafana_body(
        "browser",
        "2024-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.000Z",
        json!([target("A", "reports", json!({}))]),
    );
    b["filters"] = Value::Null;
    b["adhocFilters"] = json!([{"key": "gender", "operator": "=", "value": "male"}]);
    let answer = query(b).await;
    assert_eq!(total(&answer[0]), v.gender["male"]);
    for bad in [
        json!([{"key": "gender", "operator": "<", "value": "x"}]),
        json!([{"key": "gender", "operator": "=~", "value": "fe.*"}]),
        json!([{"key": "colour", "operator": "=", "value": "red"}]),
    ] {
        let (status, body) = run(bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(body["field"], "filters", "{bad}");
    }
}

#[tokio::test]
async fn max_data_points_coarsens_and_limits_zero_filling() {
    let mut body = grafana_body(
        "browser",
        "2024-03-01T05:00:00.000Z",
        "2024-03-31T05:00:00.000Z",
        json!([target("A", "reports", json!({"bucket": "hour"}))]),
    );
    body["maxDataPoints"] = json!(100);
    let p = points(&query(body.clone()).await[0]);
    assert_eq!(p.len(), 30, "720 hours > 100 points: coarsened to 30 days");
    assert!(p.windows(2).all(|w| w[1].0 - w[0].0 == 24 * H));
    assert_eq!(p.iter().map(|(_, n)| n).sum::<i64>(), 31);
    // a day budget below the range: only days with data are sent
    body["maxDataPoints"] = json!(10);
    let p = points(&query(body).await[0]);
    assert!(p.len() <= 10 && p.iter().all(|(_, n)| *n > 0), "{p:?}");
    assert_eq!(p.iter().map(|(_, n)| n).sum::<i64>(), 31);
}

#[tokio::test]
async fn query_errors_name_the_field() {
    let t = |metric: &str| json!([target("A", metric, json!({}))]);
    let r = post(
        "/grafana/query",
        grafana_body(
            "utc",
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
            t("nope"),
        ),
    )
    .await;
    assert_error(&r, 422, "targets[0].target");
    let r = post(
        "/grafana/query",
        grafana_body(
            "Mars/Olympus",
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
            t("reports"),
        ),
    )
    .await;
    assert_error(&r, 400, "timezone");
    let r = post(
        "/grafana/query",
        grafana_body("utc", "yesterday", "2024-01-02T00:00:00Z", t("reports")),
    )
    .await;
    assert_error(&r, 400, "range.from");
    let r = post(
        "/grafana/query",
        grafana_body(
            "utc",
            "2024-01-03T00:00:00Z",
            "2024-01-02T00:00:00Z",
            t("reports"),
        ),
    )
    .await;
    assert_error(&r, 400, "range.to");
    let bad_payload = |payload: Value| {
        grafana_body(
            "utc",
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
            json!([target("A", "reports", payload)]),
        )
    };
    let r = post("/grafana/query", bad_payload(json!({"tz": "Nowhere/Land"}))).await;
    assert_error(&r, 400, "targets[0].payload.tz");
    let r = post("/grafana/query", bad_payload(json!({"bucket": "week"}))).await;
    assert_error(&r, 400, "targets[0].payload.bucket");
    let r = post("/grafana/query", bad_payload(json!({"split_by": "colour"}))).await;
    assert_error(&r, 422, "targets[0].payload.split_by");
    let r = post("/grafana/query", json!({"targets": "reports"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["field"], "targets");
    let r = send_to(
        fixture().app.clone(),
        "POST",
        "/grafana/query",
        Some("{\"targets\": ["),
        Who::Reader,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_table_view_is_a_valid_table() {
    let names = [
        "age_group",
        "gender",
        "hour_of_day",
        "hourly",
        "cases_by_status",
        "open_by_priority",
        "responsible_load",
        "kpi",
        "sensitive_open_cases",
    ];
    let targets: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| target(&format!("T{i}"), n, json!({})))
        .collect();
    let body = grafana_body(
        "browser",
        "2024-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.000Z",
        json!(targets),
    );
    let answer = query(body).await;
    let kinds = check_response(&answer).expect("valid");
    assert_eq!(kinds, vec![Kind::Table; names.len()]);
    let v = views();
    let table = |i: usize| -> BTreeMap<String, i64> {
        answer[i]["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r[0].as_str().expect("key").to_string(),
                    r[1].as_i64().expect("n"),
                )
            })
            .collect()
    };
    assert_eq!(table(0), v.age_group);
    assert_eq!(answer[0]["rows"][0][0], "0-11");
    assert_eq!(answer[0]["rows"][5][0], "60+");
    assert_eq!(table(1), v.gender);
    assert_eq!(table(2), v.hour_of_day);
    assert_eq!(answer[2]["rows"][10][0], "10", "hours in numeric order");
    let hourly: i64 = answer[3]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[1].as_i64().expect("n"))
        .sum();
    assert_eq!(hourly, TOTAL_REPORTS);
    assert_eq!(answer[3]["columns"][0]["type"], "time");
    assert_eq!(table(4), v.cases_by_status);
    assert_eq!(table(5), v.open_by_priority);
    assert_eq!(answer[6]["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        answer[6]["rows"][0],
        json!([1, "Ana Torres", "ECU 911", v.responsible_load[0].open_cases])
    );
    assert_eq!(answer[7]["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(answer[7]["columns"][0]["text"], "total_reports");
    assert_eq!(answer[7]["rows"][0][0], json!(TOTAL_REPORTS));
    // hourly keeps only the hours in range
    let body = grafana_body(
        "browser",
        "2024-11-03T04:00:00.000Z",
        "2024-11-04T05:00:00.000Z",
        json!([target("A", "hourly", json!({}))]),
    );
    let answer = query(body).await;
    assert_eq!(answer[0]["rows"].as_array().map(Vec::len), Some(25));
}

#[tokio::test]
async fn sensitive_cases_hide_personal_data_from_read_only_tokens() {
    let body = grafana_body(
        "browser",
        "2024-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.000Z",
        json!([target("A", "sensitive_open_cases", json!({}))]),
    );
    let reader = post("/grafana/query", body.clone()).await;
    check_response(&reader.body).expect("valid");
    let columns = |b: &Value| -> Vec<String> {
        b[0]["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["text"].as_str().expect("text").to_string())
            .collect()
    };
    assert_eq!(
        columns(&reader.body),
        [
            "case_id",
            "opened_at",
            "status",
            "priority",
            "age_band",
            "gender",
            "responsible"
        ]
    );
    assert!(!reader.body.to_string().contains("Nombre Sensible"));
    assert!(!reader.body.to_string().contains("Ejido"));
    // critical first, then oldest; the non-sensitive cases 3, 4 and 5 are dropped
    let ids: Vec<i64> = reader.body[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[0].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [7, 2, 6, 1]);

    let responder = send("POST", "/grafana/query", Some(body), Who::Responder).await;
    assert_eq!(responder.status, StatusCode::OK);
    check_response(&responder.body).expect("valid");
    assert!(columns(&responder.body).contains(&"full_name".to_string()));
    assert!(responder.body.to_string().contains("Nombre Sensible 7"));

    // payload and ad-hoc filters apply to the rows
    let mut body = grafana_body(
        "browser",
        "2024-01-01T00:00:00.000Z",
        "2025-01-01T00:00:00.000Z",
        json!([target(
            "A",
            "sensitive_open_cases",
            json!({"age_band": "0-11,12-17"})
        )]),
    );
    body["filters"] = json!([{"key": "gender", "operator": "=", "value": "female"}]);
    let answer = query(body).await;
    let ids: Vec<i64> = answer[0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[0].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [7, 1]);
}

#[tokio::test]
async fn variables_in_string_and_object_form() {
    let texts = |b: &Value| -> Vec<String> {
        b.as_array()
            .expect("array")
            .iter()
            .map(|o| o["__value"].as_str().expect("value").to_string())
            .collect()
    };
    let range = json!({"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z",
                       "raw": {"from": "now-1d", "to": "now"}});
    let r = post(
        "/grafana/variable",
        json!({"payload": {"target": "gender"}, "range": range}),
    )
    .await;
    assert_eq!(texts(&r.body), ["female", "male", "other", "unknown"]);
    assert_eq!(r.body[0], json!({"__text": "female", "__value": "female"}));
    let r = post(
        "/grafana/variable",
        json!({"payload": "status", "range": range}),
    )
    .await;
    assert_eq!(
        texts(&r.body),
        [
            "open",
            "in_progress",
            "found_alive",
            "found_deceased",
            "closed"
        ]
    );
    let r = post("/grafana/variable", json!({"payload": {"target": "tz"}})).await;
    assert!(texts(&r.body).contains(&"Asia/Kathmandu".to_string()));
    let r = post("/grafana/variable", json!({"payload": {"target": "view"}})).await;
    assert_eq!(texts(&r.body).len(), 12);
    let r = post(
        "/grafana/variable",
        json!({"payload": {"target": "responsible"}}),
    )
    .await;
    assert_eq!(r.body[0], json!({"__text": "Ana Torres", "__value": "1"}));
    let r = post(
        "/grafana/variable",
        json!({"payload": {"target": "colour"}}),
    )
    .await;
    assert_error(&r, 422, "payload.target");
}

#[tokio::test]
async fn tag_keys_and_values() {
    // Grafana sends its options object: current filters and the time range
    let r = post(
        "/grafana/tag-keys",
        json!({"filters": [{"key": "gender", "operator": "=", "value": "female"}],
               "timeRange": {"from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z"}}),
    )
    .await;
    assert_eq!(
        r.body,
        json!([
            {"type": "string", "text": "gender"},
            {"type": "string", "text": "age_band"},
            {"type": "string", "text": "status"},
            {"type": "string", "text": "priority"}
        ])
    );
    let r = post(
        "/grafana/tag-values",
        json!({"key": "priority", "filters": []}),
    )
    .await;
    assert_eq!(
        r.body,
        json!([{"text": "low"}, {"text": "medium"}, {"text": "high"}, {"text": "critical"}])
    );
    let r = post("/grafana/tag-values", json!({"key": "colour"})).await;
    assert_error(&r, 422, "key");
    let r = post("/grafana/tag-values", json!({})).await;
    assert_error(&r, 422, "key");
}

#[tokio::test]
async fn no_tick_yet_is_a_503() {
    let mut app = fixture().app.clone();
    app.grafana.store = ViewStore::new();
    let body = grafana_body(
        "utc",
        "2024-01-01T00:00:00Z",
        "2024-01-02T00:00:00Z",
        json!([target("A", "reports", json!({}))]),
    )
    .to_string();
    let r = send_to(
        app.clone(),
        "POST",
        "/grafana/query",
        Some(&body),
        Who::Reader,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    let r = send_to(app, "GET", "/api/v1/rows/kpi", None, Who::Reader).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

// ---------------------------------------------------------------------------------------------
// Infinity rows
// ---------------------------------------------------------------------------------------------

fn keys(row: &Value) -> Vec<String> {
    row.as_object()
        .expect("flat object")
        .keys()
        .cloned()
        .collect()
}

/// The root is an array of flat objects with the same keys.
fn assert_flat_rows(body: &Value) -> Vec<String> {
    let rows = body.as_array().expect("array at the root");
    let first = rows.first().map(keys).unwrap_or_default();
    for r in rows {
        assert_eq!(keys(r), first, "stable keys");
        for v in r.as_object().expect("object").values() {
            assert!(!v.is_object() && !v.is_array(), "flat: {r}");
        }
    }
    first
}

#[tokio::test]
async fn infinity_series_rows_with_from_to_macros() {
    // ${__from} / ${__to} are interpolated as epoch ms
    let uri = |from: i64, to: i64, rest: &str| {
        format!("/api/v1/rows/reports?from={from}&to={to}&bucket=day&tz=America/New_York{rest}")
    };
    let r = get(&uri(NY_DAY, NY_DAY + 25 * H, "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers.contains_key("x-lpm-tick"));
    assert_eq!(
        r.body,
        json!([{"time": NY_DAY, "time_iso": "2024-11-03T00:00:00-04:00", "value": 25}])
    );
    // another range: same keys, ascending times, zeros included
    let r = get(&uri(NY_DAY - 72 * H, NY_DAY + 72 * H, "")).await;
    assert_eq!(assert_flat_rows(&r.body), ["time", "time_iso", "value"]);
    let times: Vec<i64> = r
        .body
        .as_array()
        .expect("rows")
        .iter()
        .map(|o| o["time"].as_i64().expect("time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(times.len(), 6, "Oct 31 to Nov 5");
    // ISO-8601 from/to, as `${__from:date:iso}` gives them
    let r2 = get(
        "/api/v1/rows/reports?from=2024-11-03T04:00:00.000Z&to=2024-11-04T05:00:00.000Z\
         &bucket=day&tz=America/New_York",
    )
    .await;
    assert_eq!(r2.body[0]["value"], 25);
    // split: the dimension is a column, rows by time then value
    let r = get(&uri(NY_DAY, NY_DAY + 25 * H, "&split_by=gender")).await;
    assert_eq!(
        assert_flat_rows(&r.body),
        ["gender", "time", "time_iso", "value"]
    );
    let genders: Vec<&str> = r
        .body
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|o| o["gender"].as_str())
        .collect();
    assert_eq!(genders, ["female", "male", "other", "unknown"]);
    assert_eq!(r.body[0]["value"], 25);
}

#[tokio::test]
async fn infinity_filters_repeat_csv_and_post() {
    let base = format!(
        "/api/v1/rows/reports?from={BASE}&to={}&bucket=day",
        BASE + 10 * 24 * H
    );
    let csv = get(&format!("{base}&gender=female,male&age_band=60")).await;
    let repeated = get(&format!("{base}&gender=female&gender=male&age_band=60%2B")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert_eq!(csv.body, repeated.body);
    let post_body = json!({"from": BASE, "to": BASE + 10 * 24 * H, "bucket": "day",
                           "gender": ["female", "male"], "age_band": "60+"});
    let posted = post("/api/v1/rows/reports", post_body).await;
    assert_eq!(posted.body, csv.body);
    let sum: i64 = csv
        .body
        .as_array()
        .expect("rows")
        .iter()
        .map(|o| o["value"].as_i64().expect("value"))
        .sum();
    let all = all_of_2024(
        "reports",
        json!({"gender": "female,male", "age_band": "60+"}),
    )
    .await;
    assert_eq!(sum, total(&all[0]));
}

#[tokio::test]
async fn infinity_table_rows() {
    let v = views();
    let r = get("/api/v1/rows/age_group").await;
    assert_eq!(assert_flat_rows(&r.body), ["count", "key"]);
    let got: BTreeMap<String, i64> = r
        .body
        .as_array()
        .expect("rows")
        .iter()
        .map(|o| {
            (
                o["key"].as_str().expect("key").into(),
                o["count"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(got, v.age_group);
    let r = get("/api/v1/rows/kpi").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    assert_eq!(r.body[0]["total_reports"], json!(TOTAL_REPORTS));
    assert_eq!(r.body[0]["open_minor_cases"], json!(v.kpi.open_minor_cases));
    let r = get("/api/v1/rows/responsible_load").await;
    assert_eq!(
        assert_flat_rows(&r.body),
        ["agency", "full_name", "id", "open_cases"]
    );
    let r = get(&format!(
        "/api/v1/rows/hourly?from={NY_DAY}&to={}&tz=UTC",
        NY_DAY + 25 * H
    ))
    .await;
    assert_eq!(assert_flat_rows(&r.body), ["count", "time", "time_iso"]);
    assert_eq!(r.body.as_array().map(Vec::len), Some(25));
    assert_eq!(r.body[0]["time_iso"], "2024-11-03T04:00:00Z");

    let reader = get("/api/v1/rows/sensitive_open_cases").await;
    assert_eq!(
        assert_flat_rows(&reader.body),
        [
            "age_band",
            "case_id",
            "gender",
            "opened_at",
            "opened_at_iso",
            "priority",
            "responsible",
            "status"
        ]
    );
    let responder = send(
        "GET",
        "/api/v1/rows/sensitive_open_cases?gender=female",
        None,
        Who::Responder,
    )
    .await;
    assert!(assert_flat_rows(&responder.body).contains(&"full_name".to_string()));
    assert_eq!(responder.body.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn infinity_errors_name_the_parameter() {
    let r = get("/api/v1/rows/nope?from=0&to=1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("nope")));
    // an uninterpolated macro
    let r = get("/api/v1/rows/reports?from=%24%7B__from%7D&to=1").await;
    assert_error(&r, 400, "from");
    let r = get("/api/v1/rows/reports?from=0&to=soon").await;
    assert_error(&r, 400, "to");
    let r = get("/api/v1/rows/reports?from=10&to=0").await;
    assert_error(&r, 400, "to");
    let r = get("/api/v1/rows/reports?from=0&to=1&tz=Mars/Olympus").await;
    assert_error(&r, 400, "tz");
    let r = get("/api/v1/rows/reports?from=0&to=1&bucket=fortnight").await;
    assert_error(&r, 400, "bucket");
    let r = get("/api/v1/rows/reports?from=0&to=1&gender=robot").await;
    assert_error(&r, 422, "gender");
}

#[test]
fn fixture_counts_are_what_the_tests_assume() {
    let v = views();
    assert_eq!(v.kpi.total_reports, TOTAL_REPORTS);
    assert_eq!(v.row_counts[Table::CaseCases.name()], 31);
    assert_eq!(v.kpi.cases_without_person, 1);
}

// ---------------------------------------------------------------------------------------------
// Work budget: no request makes the server build more than the caps (issue 14)
// ---------------------------------------------------------------------------------------------

const DAY: i64 = 24 * H;
/// 1950-01-01T00:00:00Z: the dense data starts here.
const DENSE_START: i64 = -631_152_000_000;
/// Days of the dense data, each with a report at 01:00 UTC: one more than a series may hold.
const DENSE_DAYS: i64 = MAX_POINTS_PER_SERIES as i64 + 1;
/// The first days also have a report at 13:00 UTC: more hours with data than a series may hold,
/// in fewer days than it may hold.
const DOUBLE_DAYS: i64 = MAX_POINTS_PER_SERIES as i64 / 2 + 1;
/// Cases with statuses of their own: more values than a request may split into.
const ODD_STATUSES: i64 = MAX_SERIES_PER_REQUEST as i64 + 20;
/// 1970-01-01 and 2100-01-01 (the range of issue 14's requests), in epoch ms.
const Y1970: i64 = 0;
const Y2100: i64 = 4_102_444_800_000;

fn dense_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut id = 0;
    for d in 0..DENSE_DAYS {
        let hours: &[i64] = if d < DOUBLE_DAYS { &[1, 13] } else { &[1] };
        for hour in hours {
            id += 1;
            rows.push(person(
                id,
                DENSE_START + d * DAY + hour * H,
                "female",
                Some(30),
            ));
        }
    }
    for k in 0..ODD_STATUSES {
        let status = format!("odd_{k}");
        rows.push(Row::Case(Arc::new(case(
            1_000_000 + k,
            k + 1,
            &status,
            "low",
            DENSE_START + k * DAY,
        ))));
    }
    rows
}

/// The Grafana routes over the dense data (same callers as [`fixture`]).
fn dense_app() -> App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App {
        grafana: GrafanaState {
            store: store_of(dense_rows()),
            default_tz: chrono_tz::UTC,
            cases: Arc::new(StaticCases(Vec::new())),
        },
        auth: fixture().app.auth.clone(),
    })
    .clone()
}

async fn dense(method: &str, uri: &str, body: Option<Value>) -> Reply {
    let text = body.map(|b| b.to_string());
    send_to(dense_app(), method, uri, text.as_deref(), Who::Reader).await
}

/// Reports of the dense data from 1970 on (each in an hour of its own).
fn dense_reports_since_1970() -> i64 {
    let first = (Y1970 - DENSE_START) / DAY;
    2 * (DOUBLE_DAYS - first) + (DENSE_DAYS - DOUBLE_DAYS)
}

/// Issue 14's first request: every hour from year 1 to 9999, a billion points allowed.
fn all_of_time() -> Value {
    json!({
        "range": {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
        "intervalMs": 1,
        "maxDataPoints": 1_000_000_000,
        "targets": [{"refId": "A", "target": "reports"}]
    })
}

/// Issue 14's second request: ten targets split by age band over 1970-2100.
fn ten_split_targets() -> Value {
    let targets: Vec<Value> = (0..10)
        .map(|i| {
            json!({"refId": format!("T{i}"), "target": "reports",
                   "payload": {"split_by": "age_band"}})
        })
        .collect();
    json!({
        "range": {"from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
        "intervalMs": 1,
        "maxDataPoints": 1_000_000_000,
        "targets": targets
    })
}

/// Issue 14's third request: rows per hour over 1970-2100, a billion points allowed.
const HOURS_1970_2100: &str =
    "/api/v1/rows/reports?from=0&to=4102444800000&bucket=hour&max_points=1000000000";

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn notice(element: &Value) -> Option<&str> {
    element["meta"]["notices"][0]["text"].as_str()
}

fn error_text(r: &Reply) -> &str {
    r.body["error"].as_str().unwrap_or_default()
}

fn row_values(body: &Value) -> Vec<(i64, i64)> {
    body.as_array()
        .expect("rows")
        .iter()
        .map(|o| {
            (
                o["time"].as_i64().expect("time"),
                o["value"].as_i64().expect("value"),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_hour_of_all_time_is_bounded() {
    // little data: the hours with data, not 87 million zero-filled hours
    let r = post("/grafana/query", all_of_time()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    check_response(&r.body).unwrap_or_else(|e| panic!("{e}"));
    let p = points(&r.body[0]);
    assert!(p.iter().all(|(_, n)| *n > 0), "sparse: {p:?}");
    assert_eq!(total(&r.body[0]), TOTAL_REPORTS);
    assert!(r.bytes < 64 * 1024, "{} bytes", r.bytes);
    // more days with data than a series may hold, even per day: a 422 naming the range
    let r = dense("POST", "/grafana/query", Some(all_of_time())).await;
    assert_error(&r, 422, "range");
    assert!(
        error_text(&r).contains("50000 points per series"),
        "{}",
        r.body
    );
    assert!(r.bytes < 1024, "{} bytes", r.bytes);
}

#[tokio::test]
async fn ten_split_targets_over_130_years_are_bounded() {
    let r = post("/grafana/query", ten_split_targets()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    check_response(&r.body).unwrap_or_else(|e| panic!("{e}"));
    let elements = r.body.as_array().expect("array");
    assert_eq!(elements.len(), 10 * 7);
    assert!(elements
        .iter()
        .all(|e| points(e).iter().all(|(_, n)| *n > 0)));
    let all: i64 = elements.iter().map(total).sum();
    assert_eq!(all, 10 * TOTAL_REPORTS);
    assert!(r.bytes < 256 * 1024, "{} bytes", r.bytes);
    // dense data: the hours with data since 1970 pass the series cap, and 130 years of
    // zero-filled days x 7 age bands pass the request's points
    assert!(dense_reports_since_1970() > MAX_POINTS_PER_SERIES as i64);
    assert!(7 * (Y2100 - Y1970) / DAY > MAX_POINTS_PER_REQUEST as i64);
    let r = dense("POST", "/grafana/query", Some(ten_split_targets())).await;
    assert_error(&r, 422, "targets[0].payload.split_by");
    assert!(error_text(&r).contains("200000 points"), "{}", r.body);
    assert!(r.bytes < 1024, "{} bytes", r.bytes);
}

#[tokio::test]
async fn rows_per_hour_over_130_years_are_bounded() {
    let r = get(HOURS_1970_2100).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows = row_values(&r.body);
    assert!(rows.iter().all(|(_, n)| *n > 0), "sparse");
    assert_eq!(rows.iter().map(|(_, n)| n).sum::<i64>(), TOTAL_REPORTS);
    assert_eq!(header(&r, "x-lpm-bucket"), Some("hour"));
    assert_eq!(header(&r, "x-lpm-notice"), None);
    assert!(r.bytes < 64 * 1024, "{} bytes", r.bytes);
    // dense data: more hours with data than a series may hold, so days, and the answer says so
    let r = dense("GET", HOURS_1970_2100, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-lpm-bucket"), Some("day"));
    let text = header(&r, "x-lpm-notice").expect("a notice");
    assert!(
        text.contains("hour") && text.contains("work budget"),
        "{text}"
    );
    // every day of 1970-2100 (within the series cap), zeros included
    let rows = row_values(&r.body);
    assert_eq!(rows.len() as i64, (Y2100 - Y1970) / DAY);
    assert!(rows.windows(2).all(|w| w[1].0 - w[0].0 == DAY));
    assert_eq!(
        rows.iter().map(|(_, n)| n).sum::<i64>(),
        dense_reports_since_1970()
    );
    assert!(r.bytes < 5 * 1024 * 1024, "{} bytes", r.bytes);
}

#[tokio::test]
async fn zero_filling_stops_at_the_series_cap() {
    let body = |hours: i64| {
        json!({
            "range": {"from": BASE, "to": BASE + hours * H},
            "timezone": "utc",
            "maxDataPoints": 1_000_000_000,
            "targets": [target("A", "reports", json!({"bucket": "hour"}))]
        })
    };
    let cap = MAX_POINTS_PER_SERIES as i64;
    // exactly the cap: every hour, zeros included
    let answer = query(body(cap)).await;
    let p = points(&answer[0]);
    assert_eq!(p.len() as i64, cap);
    assert!(p.windows(2).all(|w| w[1].0 - w[0].0 == H));
    assert_eq!(total(&answer[0]), TOTAL_REPORTS);
    assert!(answer[0].get("meta").is_none());
    // one over: only the hours with data, whatever maxDataPoints allows
    let answer = query(body(cap + 1)).await;
    let p = points(&answer[0]);
    assert!(p.len() < 100 && p.iter().all(|(_, n)| *n > 0), "{p:?}");
    assert_eq!(total(&answer[0]), TOTAL_REPORTS);
    // rows: the same cap on max_points
    let uri = |hours: i64| {
        format!(
            "/api/v1/rows/reports?from={BASE}&to={}&bucket=hour&tz=UTC&max_points=1000000000",
            BASE + hours * H
        )
    };
    let r = get(&uri(cap)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(row_values(&r.body).len() as i64, cap);
    let r = get(&uri(cap + 1)).await;
    assert!(row_values(&r.body).iter().all(|(_, n)| *n > 0));
}

#[tokio::test]
async fn request_points_cap_edges() {
    // a split by age band (7 lines) and one more line, zero-filled per day: 8 x days points
    let body = |days: i64| {
        json!({
            "range": {"from": BASE, "to": BASE + days * DAY},
            "timezone": "utc",
            "maxDataPoints": MAX_POINTS_PER_SERIES,
            "targets": [
                target("A", "reports", json!({"bucket": "day", "split_by": "age_band"})),
                target("B", "cases_opened", json!({"bucket": "day"})),
            ]
        })
    };
    let days = MAX_POINTS_PER_REQUEST as i64 / 8;
    let answer = query(body(days)).await;
    let elements = answer.as_array().expect("array");
    assert_eq!(elements.len(), 8);
    assert!(elements.iter().all(|e| points(e).len() as i64 == days));
    let r = post("/grafana/query", body(days + 1)).await;
    assert_error(&r, 422, "targets");
    assert!(error_text(&r).contains("200000 points"), "{}", r.body);
    // rows: one series of 7 lines
    let uri = |days: i64| {
        format!(
            "/api/v1/rows/reports?from={BASE}&to={}&bucket=day&tz=UTC&split_by=age_band",
            BASE + days * DAY
        )
    };
    let days = MAX_POINTS_PER_REQUEST as i64 / 7;
    let r = get(&uri(days)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(7 * days as usize));
    let r = get(&uri(days + 1)).await;
    assert_error(&r, 422, "split_by");
    assert!(error_text(&r).contains("200000 points"), "{}", r.body);
}

#[tokio::test]
async fn the_budget_serves_hours_as_days_and_says_so() {
    // five zero-filled hourly targets of five years: the fifth no longer fits per hour
    let hours = 5 * 8_760;
    let targets: Vec<Value> = (0..5)
        .map(|i| target(&format!("T{i}"), "reports", json!({})))
        .collect();
    let mut body = grafana_body("utc", "", "", json!(targets));
    body["range"] = json!({"from": BASE, "to": BASE + hours * H});
    body["maxDataPoints"] = json!(MAX_POINTS_PER_SERIES);
    let answer = query(body).await;
    let elements = answer.as_array().expect("array");
    for e in &elements[..4] {
        let p = points(e);
        assert_eq!(p.len() as i64, hours);
        assert!(e.get("meta").is_none(), "{}", e["meta"]);
    }
    let p = points(&elements[4]);
    assert!(p.windows(2).all(|w| w[1].0 - w[0].0 == DAY));
    assert_eq!(total(&elements[4]), TOTAL_REPORTS);
    let text = notice(&elements[4]).expect("a notice");
    assert!(text.contains("work budget"), "{text}");
    // rows: hours of 7 lines over five years pass the request's points, days do not
    let r = get(&format!(
        "/api/v1/rows/reports?from={BASE}&to={}&bucket=hour&tz=UTC&split_by=age_band",
        BASE + hours * H
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(header(&r, "x-lpm-bucket"), Some("day"));
    assert!(header(&r, "x-lpm-notice").is_some_and(|t| t.contains("work budget")));
    // an explicit hour served per day for maxDataPoints is said too; an automatic one is not
    let mut body = grafana_body(
        "utc",
        "2024-03-01T00:00:00Z",
        "2024-03-31T00:00:00Z",
        json!([
            target("A", "reports", json!({"bucket": "hour"})),
            target("B", "reports", json!({}))
        ]),
    );
    body["maxDataPoints"] = json!(100);
    let answer = query(body).await;
    assert!(notice(&answer[0]).is_some_and(|t| t.contains("maxDataPoints")));
    assert_eq!(notice(&answer[1]), None);
}

#[tokio::test]
async fn series_cap_edges() {
    let body = |split: usize, unsplit: usize| {
        let targets: Vec<Value> = (0..split)
            .map(|i| target(&format!("S{i}"), "reports", json!({"split_by": "age_band"})))
            .chain((0..unsplit).map(|i| target(&format!("U{i}"), "reports", json!({}))))
            .collect();
        grafana_body(
            "utc",
            "2024-03-04T00:00:00Z",
            "2024-03-05T00:00:00Z",
            json!(targets),
        )
    };
    let split = MAX_SERIES_PER_REQUEST / 7;
    let rest = MAX_SERIES_PER_REQUEST - 7 * split;
    let answer = query(body(split, rest)).await;
    assert_eq!(
        answer.as_array().map(Vec::len),
        Some(MAX_SERIES_PER_REQUEST)
    );
    let r = post("/grafana/query", body(split, rest + 1)).await;
    assert_error(&r, 422, "targets");
    assert!(error_text(&r).contains("100 series"), "{}", r.body);
    let r = post("/grafana/query", body(split + 1, 0)).await;
    assert_error(&r, 422, &format!("targets[{split}].payload.split_by"));
    // statuses are open-ended: the values present are counted before any line is built
    let r = dense(
        "POST",
        "/grafana/query",
        Some(json!({"targets": [target("A", "reports", json!({"split_by": "status"}))]})),
    )
    .await;
    assert_error(&r, 422, "targets[0].payload.split_by");
    let r = dense(
        "GET",
        "/api/v1/rows/reports?split_by=status&bucket=day",
        None,
    )
    .await;
    assert_error(&r, 422, "split_by");
    assert!(r.bytes < 1024, "{} bytes", r.bytes);
}

#[tokio::test]
async fn targets_cap_edges() {
    let body = |visible: usize| {
        let mut targets: Vec<Value> = (0..visible)
            .map(|i| target(&format!("K{i}"), "kpi", json!({})))
            .collect();
        // hidden and empty targets cost nothing
        targets.push(json!({"refId": "H", "target": "reports", "hide": true}));
        targets.push(json!({"refId": "E", "target": ""}));
        grafana_body(
            "utc",
            "2024-03-04T00:00:00Z",
            "2024-03-05T00:00:00Z",
            json!(targets),
        )
    };
    let answer = query(body(MAX_TARGETS_PER_REQUEST)).await;
    assert_eq!(
        answer.as_array().map(Vec::len),
        Some(MAX_TARGETS_PER_REQUEST)
    );
    let r = post("/grafana/query", body(MAX_TARGETS_PER_REQUEST + 1)).await;
    assert_error(&r, 422, "targets");
    assert!(error_text(&r).contains("at most 20"), "{}", r.body);
}

#[tokio::test]
async fn empty_ranges_answer_empty_lines() {
    // from == to, and a kind without any fact (the dense data has no closed case)
    let r = get(&format!(
        "/api/v1/rows/reports?from={BASE}&to={BASE}&split_by=gender"
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!([]));
    let r = dense("GET", "/api/v1/rows/cases_closed", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!([]));
    let answer = query(json!({
        "range": {"from": BASE, "to": BASE},
        "targets": [target("A", "reports", json!({"split_by": "gender"}))]
    }))
    .await;
    assert_eq!(answer.as_array().map(Vec::len), Some(4));
    assert!(answer
        .as_array()
        .expect("array")
        .iter()
        .all(|e| points(e).is_empty()));
    let r = dense(
        "POST",
        "/grafana/query",
        Some(json!({"targets": [target("A", "cases_closed", json!({}))]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    assert_eq!(points(&r.body[0]), vec![]);
}

#[test]
fn dense_fixture_is_what_the_budget_tests_assume() {
    let store = dense_app().grafana.store;
    let (_, views) = store.read_shared();
    assert_eq!(views.kpi.total_reports, DENSE_DAYS + DOUBLE_DAYS);
    let odd = views
        .cases_by_status
        .keys()
        .filter(|k| k.starts_with("odd_"))
        .count();
    assert_eq!(odd as i64, ODD_STATUSES);
}
