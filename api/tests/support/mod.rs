//! A whole lpm app in-process: the real `AppState` (auth store, engine, embedded system of record,
//! metrics, WebSocket hub) in a temporary directory, assembled like `server::run` does but
//! without a socket, driven with `router(state).oneshot(request)`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use lpm_api::auth::{AuthState, AuthStore, PasswordCost, Role};
use lpm_api::hub::Hub;
use lpm_api::metrics::Metrics;
use lpm_api::{ApiConfig, AppState, Health};
use lpm_connectors::DecodeStats;
use lpm_engine::{Engine, EngineConfig, PushFeed};
use lpm_service::sor::EmbeddedSor;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The admin's name and password.
pub const ADMIN: (&str, &str) = ("admin", "admin-password");
/// The responder's name and password.
pub const RESPONDER: (&str, &str) = ("resp", "responder-password");

/// Who sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// No credentials.
    Anonymous,
    /// The read-only API token (`Authorization: Bearer`).
    Reader,
    /// A responder's session cookie.
    Responder,
    /// An admin's session cookie.
    Admin,
}

impl Who {
    /// Every caller, in matrix column order.
    pub const ALL: [Who; 4] = [Who::Anonymous, Who::Reader, Who::Responder, Who::Admin];

    /// The column header.
    pub fn label(self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::Reader => "reader",
            Who::Responder => "responder",
            Who::Admin => "admin",
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text (lossy UTF-8).
    pub text: String,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
}

impl Reply {
    /// The `field` of a `{error, field}` body.
    pub fn field(&self) -> Option<&str> {
        self.json.get("field").and_then(Value::as_str)
    }

    /// Whether the body has the error shape `{error: string, field: string|null}`.
    pub fn is_error_body(&self) -> bool {
        self.json.get("error").is_some_and(Value::is_string)
            && self
                .json
                .get("field")
                .is_some_and(|f| f.is_string() || f.is_null())
    }
}

/// The running app.
pub struct App {
    /// The data directory (auth.json, log/).
    pub dir: tempfile::TempDir,
    /// The state every handler sees.
    pub state: AppState,
    /// `lpm_api::router(state)`.
    pub router: Router,
    /// A read-only API token.
    pub reader_token: String,
    /// `lpm_session=...` of the admin.
    pub admin_cookie: String,
    /// `lpm_session=...` of the responder.
    pub responder_cookie: String,
    /// The clock of the public routes' rate limits.
    pub public_clock: Arc<lpm_api::auth::ManualClock>,
    engine: Option<Engine>,
    uniq: AtomicU64,
}

/// Builds a request; a body is sent as JSON.
pub fn request(method: Method, uri: &str, body: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(text) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::from(text.to_string())
        }
        None => Body::empty(),
    };
    let mut req = b.body(body).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40000))));
    req
}

/// Reads a response whole.
pub async fn read(response: axum::response::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

impl App {
    /// Starts an empty app with an admin, a responder and a reader token.
    pub async fn start() -> App {
        App::start_with(|_| {}).await
    }

    /// Like [`App::start`], with `tune` applied to the serving options.
    pub async fn start_with(tune: impl FnOnce(&mut ApiConfig)) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuthStore::open_with_cost(dir.path(), PasswordCost::Fast).expect("auth store");
        store
            .add_user(ADMIN.0, ADMIN.1, Role::Admin, "test")
            .expect("admin");
        store
            .add_user(RESPONDER.0, RESPONDER.1, Role::Responder, "test")
            .expect("responder");
        let reader_token = store.create_token("grafana", "test").expect("token").token;
        let auth = AuthState::new(Arc::new(store), false);

        let mut config = ApiConfig {
            // the two shared CI cores can be slow: a write should answer 200/201, not 202
            visible_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            ..ApiConfig::default()
        };
        tune(&mut config);
        let stats = Arc::new(DecodeStats::default());
        let feed = Arc::new(PushFeed::new(8));
        let engine = Engine::start(
            EngineConfig {
                workers: 2,
                case_model: true,
                // as `lpm serve`, which always keeps the view at its configured resolution
                hotspots: config.hotspots.resolutions(),
                ..Default::default()
            },
            feed.clone(),
        )
        .expect("engine");
        let (sor, _opened) = EmbeddedSor::open(
            &dir.path().join("log"),
            lpm_connectors::log::LogOptions::default(),
            feed,
            (
                stats.clone(),
                Arc::new(lpm_connectors::dead_letter::Discard),
            ),
            lpm_service::sor::Resume::default(),
            |_| {},
        )
        .expect("embedded log");
        let handle = engine.handle();
        let metrics = Arc::new(Metrics::new(stats).expect("metrics"));
        // ready once the engine has completed its first (empty) tick, as `server::run` waits
        assert!(
            handle.store().wait_for(0, Duration::from_secs(30)),
            "the engine never completed its first tick"
        );
        let health = Arc::new(Health::default());
        health.set_ready();
        let hub = Hub::start(handle.store().clone(), 1024);
        let public_clock = Arc::new(lpm_api::auth::ManualClock::new());
        let public = lpm_api::public::Public::with_clock(
            handle.clone(),
            config.read_timeout,
            public_clock.clone(),
        );
        let state = AppState {
            engine: handle,
            source: lpm_service::source::Source::Embedded(Arc::new(sor)),
            mysql: None,
            auth,
            metrics,
            config: Arc::new(config),
            health,
            hub,
            checkpoints: None,
            public,
            notifier: None,
            auto_assign: None,
        };
        let router = lpm_api::router(state.clone());
        let mut app = App {
            dir,
            state,
            router,
            reader_token,
            admin_cookie: String::new(),
            responder_cookie: String::new(),
            public_clock,
            engine: Some(engine),
            uniq: AtomicU64::new(0),
        };
        app.admin_cookie = app.sign_in(ADMIN.0, ADMIN.1).await;
        app.responder_cookie = app.sign_in(RESPONDER.0, RESPONDER.1).await;
        app
    }

    /// A number not handed out before (for unique names).
    pub fn uniq(&self) -> u64 {
        self.uniq.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends a request as is.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.expect("infallible");
        read(response).await
    }

    /// Signs in; returns the `Cookie` header value (`lpm_session=...`).
    pub async fn sign_in(&self, user: &str, password: &str) -> String {
        let body = json!({"username": user, "password": password}).to_string();
        let reply = self
            .send(request(Method::POST, "/api/v1/session", Some(&body)))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "sign-in: {}", reply.text);
        let set = reply
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie");
        set.split(';').next().expect("cookie pair").to_string()
    }

    /// Adds `who`'s credentials to `req` (the cached sessions).
    pub fn authorize(&self, req: Request<Body>, who: Who) -> Request<Body> {
        let cookie = match who {
            Who::Admin => self.admin_cookie.clone(),
            Who::Responder => self.responder_cookie.clone(),
            _ => String::new(),
        };
        authorize_with(req, who, &self.reader_token, &cookie)
    }

    /// Sends `method uri` with an optional JSON body as `who`.
    pub async fn call(&self, who: Who, method: Method, uri: &str, body: Option<&str>) -> Reply {
        self.send(self.authorize(request(method, uri, body), who))
            .await
    }

    /// `GET uri` as `who`.
    pub async fn get(&self, who: Who, uri: &str) -> Reply {
        self.call(who, Method::GET, uri, None).await
    }

    /// Creates a responsible contact as the responder; returns its id.
    pub async fn create_responsible(&self, body: Value) -> i64 {
        let r = self
            .call(
                Who::Responder,
                Method::POST,
                "/api/v1/responsibles",
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "responsible: {}", r.text);
        r.json["id"].as_i64().expect("responsible id")
    }

    /// Files a report as the responder; returns the case id.
    pub async fn file_report(&self, body: Value) -> i64 {
        let r = self
            .call(
                Who::Responder,
                Method::POST,
                "/api/v1/reports",
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "report: {}", r.text);
        r.json["case"]["id"].as_i64().expect("case id")
    }

    /// The case's current version in the system of record.
    /// The embedded system of record (every test app has one).
    fn sor(&self) -> &lpm_service::sor::EmbeddedSor {
        self.state
            .source
            .embedded()
            .map(|s| s.as_ref())
            .expect("test apps use the embedded log")
    }

    pub fn case_version(&self, id: i64) -> i64 {
        self.sor()
            .with_ledger(|l| l.case(id).map(|c| c.version))
            .expect("case exists")
    }

    /// The case's current responsible in the system of record.
    pub fn case_responsible(&self, id: i64) -> Option<i64> {
        self.sor()
            .with_ledger(|l| l.case(id).and_then(|c| c.responsible_id))
    }

    /// The responsible's current version in the system of record.
    pub fn responsible_version(&self, id: i64) -> i64 {
        self.sor()
            .responsible(id)
            .map(|r| r.version)
            .expect("responsible exists")
    }
}

/// Adds credentials for `who`: the token as a Bearer header, or `cookie` as a `Cookie` header.
pub fn authorize_with(
    mut req: Request<Body>,
    who: Who,
    token: &str,
    cookie: &str,
) -> Request<Body> {
    let headers = req.headers_mut();
    match who {
        Who::Anonymous => {}
        Who::Reader => {
            let v = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
            headers.insert(header::AUTHORIZATION, v);
        }
        Who::Responder | Who::Admin => {
            let v = HeaderValue::from_str(cookie).expect("header");
            headers.insert(header::COOKIE, v);
        }
    }
    req
}

impl Drop for App {
    fn drop(&mut self) {
        // the public index's thread holds an engine handle
        self.state.public.index.stop();
        // close the engine's input; the workers stop once the last handle is gone
        if let Some(sor) = self.state.source.embedded() {
            sor.close();
        }
        drop(self.engine.take());
    }
}
