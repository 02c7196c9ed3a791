//! The Grafana read API end to end: arbitrary requests to every `/grafana/*` route and to
//! `/api/v1/rows/{view}` (GET with a query string, POST with a JSON body), through the real
//! router, extractors and auth, over views a small engine run computed once at start-up. This
//! covers the request parsing (`request.rs`, `params.rs`: instants, zones, buckets, multi-value
//! and ad-hoc filters) and the point/grain planning and series scan behind it (`timeseries.rs`).
//!
//! Input: the first byte picks the route, the caller (a responder session or a read-only
//! one) and whether a `Content-Type` is sent; the rest is split at the first NUL into the path
//! tail/query (rows routes) and the body. Checks, besides "no panic" and libFuzzer's time and
//! memory limits: no 5xx; every 4xx is a JSON `{"error": "..", "field": ..}` and a 422 names
//! its field; every 2xx is JSON.
#![no_main]

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use lpm_api::auth::{AuthState, AuthStore, ManualClock, Principal, Role, Via, SESSION_COOKIE};
use lpm_api::grafana::{router, GrafanaState, SensitiveCase, StaticCases};
use lpm_engine::model::{Case, Person, Priority, Responsible, Row, Status};
use lpm_engine::runtime::{Engine, EngineConfig, Feed, FeedItem};
use lpm_engine::views::Gender;
use lpm_engine::{Change, ChangeKind, Position, RowChange, SnapshotMark};
use serde_json::Value;
use tower::ServiceExt;

const H: i64 = 3_600_000;
/// 2024-11-01T00:00:00Z: the data spans New York's fall-back day (2024-11-03).
const BASE: i64 = 1_730_419_200_000;

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (id, name) in [(1, "Ana Torres"), (2, "Luis Vera")] {
        rows.push(Row::Responsible(Arc::new(Responsible {
            id,
            full_name: name.into(),
            agency: "ECU 911".into(),
            phone: None,
            email: None,
            active: true,
            version: 1,
        })));
    }
    let genders = ["female", "male", "other", "unknown", " Male "];
    let ages = [Some(5), Some(15), Some(30), Some(70), None, Some(-1)];
    let statuses = ["open", "in_progress", "found_alive", "closed", "escalated"];
    let priorities = ["low", "medium", "high", "critical"];
    for i in 1..=40i64 {
        let u = i as usize;
        let reported = BASE + i * 7 * H / 3;
        rows.push(Row::Person(Arc::new(Person {
            id: i,
            full_name: format!("Persona {i}"),
            age: ages[u % ages.len()],
            gender: genders[u % genders.len()].into(),
            last_seen_at: reported - H,
            reported_at: reported,
            last_seen_place: "Quito".into(),
            version: 1,
            ..Default::default()
        })));
        rows.push(Row::Case(Arc::new(Case {
            id: 100 + i,
            person_id: i,
            status: Status::parse(statuses[u % statuses.len()]),
            priority: Priority::parse(priorities[u % priorities.len()]),
            responsible_id: [None, Some(1), Some(2)][u % 3],
            opened_at: reported + 600_000,
            closed_at: (u % 5 >= 2).then_some(reported + 30 * H),
            version: 1,
            public: false,
            public_id: None,
        })));
    }
    rows
}

/// Hands every change to worker 0 at tick 1, then ends.
struct OnceFeed(Mutex<Option<Vec<Change>>>);

impl Feed for OnceFeed {
    fn next(&self, _worker: usize) -> FeedItem {
        match self.0.lock().ok().and_then(|mut c| c.take()) {
            Some(changes) => FeedItem::Batch { tick: 1, changes },
            None => FeedItem::End,
        }
    }
}

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

struct Fixture {
    router: Router,
    /// Session ids: a responder (sees personal data) and a read-only caller.
    sessions: [String; 2],
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let changes = rows()
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
    let dir = tempfile::tempdir().expect("temp dir");
    let auth_store = AuthStore::open(dir.path()).expect("auth store");
    let auth = AuthState::with_clock(Arc::new(auth_store), false, Arc::new(ManualClock::new()));
    let session = |name: &str, role| {
        auth.sessions
            .create(Principal {
                name: name.into(),
                role,
                via: Via::Session,
            })
            .expect("session")
    };
    let sessions = [
        session("responder", Role::Responder),
        session("reader", Role::Reader),
    ];
    let cases = vec![SensitiveCase {
        case_id: 7,
        opened_at: BASE + 5 * H,
        status: Status::parse("open"),
        priority: Priority::parse("critical"),
        age: Some(12),
        gender: Gender::Female,
        full_name: "Nombre Sensible".into(),
        last_seen_place: "Parque El Ejido".into(),
        responsible: None,
    }];
    let app = App {
        grafana: GrafanaState {
            store,
            default_tz: chrono_tz::America::Guayaquil,
            cases: Arc::new(StaticCases(cases)),
        },
        auth,
    };
    // One blocking-pool thread for the whole run, started here: `fetch_sensitive` reads the
    // case source on it. Left to tokio's defaults, an idle pool thread exits after 10 s and the
    // next request starts a new one; libFuzzer's per-input leak check then sees that thread's
    // start-up allocations (made during the input, owned by a thread LeakSanitizer may not have
    // registered yet) as a leak of the input. The thread is the harness's, not the API's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::from_secs(365 * 24 * 3600))
        .build()
        .expect("runtime");
    runtime
        .block_on(async { tokio::task::spawn_blocking(|| ()).await })
        .expect("the blocking pool starts");
    Fixture {
        // the whole app's fallback: a path no route takes (`/api/v1/rows/` without a view)
        // answers the JSON 404 that `lpm_api::router` gives, not axum's empty one
        router: router::<App>()
            .fallback(|| async { lpm_api::ApiError::NotFound("route".into()) })
            .with_state(app),
        sessions,
        runtime,
        _dir: dir,
    }
});

/// `(method, path)` of the routes; the rows routes take the view and query from the input.
const ROUTES: [(&str, &str); 10] = [
    ("POST", "/grafana/query"),
    ("POST", "/grafana/query"),
    ("POST", "/grafana/query"),
    ("GET", "/api/v1/rows/"),
    ("GET", "/api/v1/rows/"),
    ("POST", "/api/v1/rows/"),
    ("POST", "/grafana/variable"),
    ("POST", "/grafana/metric-payload-options"),
    ("POST", "/grafana/tag-values"),
    ("GET", "/grafana"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[usize::from(selector) % ROUTES.len()];
    let session = &FIXTURE.sessions[usize::from(selector / 16) % 2];
    let (tail, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let uri = if path.ends_with('/') {
        let Ok(tail) = std::str::from_utf8(tail) else {
            return;
        };
        format!("{path}{tail}")
    } else {
        path.to_string()
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, format!("{SESSION_COOKIE}={session}"));
    if selector & 0x80 == 0 {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    // not a request a client could send (bad URI): nothing to test
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let (status, bytes) = FIXTURE.runtime.block_on(async {
        let response = FIXTURE
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !status.is_server_error(),
        "{method} {path}: {status} for {:?}: {text}",
        String::from_utf8_lossy(rest)
    );
    let json: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: the answer is not JSON ({e}): {text}"));
    if status.is_client_error() {
        assert!(
            json.get("error").is_some_and(Value::is_string),
            "{status} without an error message: {text}"
        );
        assert!(
            json.get("field").is_some(),
            "{status} without a field: {text}"
        );
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(
                json.get("field").is_some_and(Value::is_string),
                "a 422 names its field: {text}"
            );
        }
    }
});
