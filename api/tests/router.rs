//! Router tests: every route of `lpm_api::router`, driven in-process with `oneshot` against a real
//! `AppState` (engine, embedded log, auth store) in a temporary directory.
//!
//! - the happy paths (report -> case lifecycle -> views; responsibles; auth; Grafana),
//! - bad input on every write route (malformed JSON, wrong types, unknown enum values, unknown
//!   and missing fields, oversized bodies, stale versions, unknown ids, invalid transitions):
//!   always a 4xx with `{error, field}` naming the field, never a 500,
//! - the authorization matrix (every route x anonymous, reader token, responder, admin),
//! - that a read-only token never sees a personal value, on every read route and the stream.
//!
//! Run with `cargo test --release -p lpm-api --test router`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use support::{request, App, Reply, Who};

// Personal values seeded into the reports, responsibles and actions. The reader-privacy tests
// search every reader response for them.
const PERSON_NAME: &str = "Zoraida Quintanilla Privada";
const PERSON_SURNAME: &str = "Quintanilla";
const PLACE: &str = "Pasaje Escondido 4417";
const DESCRIPTION: &str = "Chaqueta turquesa con bolsillos remendados";
const REPORTER_NAME: &str = "Evaristo Denunciante";
const REPORTER_PHONE: &str = "+593 99 271 8281";
const LATITUDE: f64 = -0.123457;
const LATITUDE_TEXT: &str = "0.123457";
const LONGITUDE: f64 = -78.654321;
const LONGITUDE_TEXT: &str = "78.654321";
const MINOR_NAME: &str = "Benjamin Ocultado Menor";
const MINOR_PLACE: &str = "Parque Reservado Norte";
const RESP_PHONE: &str = "+593 2 314 1592";
const RESP_EMAIL: &str = "oficial.reservado@policia.example";
const ACTION_NOTES: &str = "Vecina Quetzalina lo vio cerca del rio";
const FIRST_ACTION_NOTES: &str = "Busqueda inicial con perros Rastreo-7731";
// A sighting: readers see when and its source; its place, reporter, description and coordinates
// are personal data (as a person's last-seen place is).
const SIGHTING_PLACE: &str = "Esquina Avistada 12";
const SIGHTING_DESCRIPTION: &str = "Gorra verde Avistamiento-9911";
const SIGHTING_REPORTER: &str = "Rigoberta Testigo Reservada";
const SIGHTING_PHONE: &str = "+593 98 555 0101";

/// Every personal value the seed writes.
const PERSONAL: [&str; 19] = [
    PERSON_NAME,
    PERSON_SURNAME,
    PLACE,
    DESCRIPTION,
    REPORTER_NAME,
    REPORTER_PHONE,
    LATITUDE_TEXT,
    LONGITUDE_TEXT,
    MINOR_NAME,
    MINOR_PLACE,
    RESP_PHONE,
    RESP_EMAIL,
    ACTION_NOTES,
    FIRST_ACTION_NOTES,
    "Ocultado",
    SIGHTING_PLACE,
    SIGHTING_DESCRIPTION,
    SIGHTING_REPORTER,
    SIGHTING_PHONE,
];

/// A sighting of the seeded case, with every personal field set.
fn sighting_body() -> Value {
    json!({
        "seen_at": "2026-11-20T16:45",
        "place": SIGHTING_PLACE,
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
        "description": SIGHTING_DESCRIPTION,
        "reporter_name": SIGHTING_REPORTER,
        "reporter_phone": SIGHTING_PHONE,
    })
}

/// A valid report body, for mutating into bad ones.
fn report_body() -> Value {
    json!({
        "full_name": PERSON_NAME,
        "age": 34,
        "gender": "female",
        "last_seen_at": "2026-11-20T14:30",
        "last_seen_place": PLACE,
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
        "description": DESCRIPTION,
        "reporter_name": REPORTER_NAME,
        "reporter_phone": REPORTER_PHONE,
        "priority": "high",
    })
}

/// What the seed created.
struct Seeded {
    /// Active responsible with phone and email, assigned to `case`.
    resp: i64,
    /// Another active responsible.
    other: i64,
    /// An inactive responsible.
    inactive: i64,
    /// The adult's case (assigned to `resp`, with a first action and a logged action).
    case: i64,
    /// The minor's case (unassigned).
    minor_case: i64,
    /// The public id of `case`, which the seed publishes.
    public_id: String,
}

async fn seed(app: &App) -> Seeded {
    let resp = app
        .create_responsible(json!({
            "full_name": "Oficial Visible Uno",
            "agency": "DINASED",
            "phone": RESP_PHONE,
            "email": RESP_EMAIL,
        }))
        .await;
    let other = app
        .create_responsible(json!({"full_name": "Oficial Visible Dos", "agency": "ECU 911"}))
        .await;
    let inactive = app
        .create_responsible(
            json!({"full_name": "Oficial Retirado", "agency": "DINASED", "active": false}),
        )
        .await;
    let mut body = report_body();
    body["responsible_id"] = json!(resp);
    body["first_action"] = json!({"action_type": "search", "notes": FIRST_ACTION_NOTES});
    let case = app.file_report(body).await;
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{case}/actions"),
            Some(&json!({"action_type": "sighting", "notes": ACTION_NOTES}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{case}/sightings"),
            Some(&sighting_body().to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let minor_case = app
        .file_report(json!({
            "full_name": MINOR_NAME,
            "age": 12,
            "gender": "male",
            "last_seen_at": "2026-11-21T09:15:00-05:00",
            "last_seen_place": MINOR_PLACE,
        }))
        .await;
    let published = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/cases/{case}"),
            Some(&json!({"version": app.case_version(case), "public": true}).to_string()),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.text);
    let url = published.json["case"]["public_url"]
        .as_str()
        .unwrap_or_default();
    let public_id = url.rsplit('/').next().unwrap_or_default().to_string();
    assert_eq!(public_id.len(), 22, "{url}");
    Seeded {
        resp,
        other,
        inactive,
        case,
        minor_case,
        public_id,
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Anyone, without credentials.
    Public,
    /// Any valid credentials.
    Read,
    /// Responders and admins.
    Write,
    /// Admins only.
    Admin,
    /// Any valid credentials, then a WebSocket upgrade (which a plain request lacks).
    Stream,
    /// Anyone, without credentials, posting an HTML form (`application/x-www-form-urlencoded`);
    /// success is a 303 to the page that thanks them.
    PublicForm,
}

/// One route of the router, with a request that succeeds for a caller who has the right.
struct Route {
    method: Method,
    /// The route as the router declares it.
    template: &'static str,
    /// The URI to call; `{case}`, `{case_v}`, `{other_resp}`, `{spare}`, `{spare_v}`,
    /// `{token_id}` and `{uniq}` are filled in just before the call.
    uri: &'static str,
    body: Option<&'static str>,
    access: Access,
}

/// Every route the router serves.
#[rustfmt::skip]
fn routes() -> Vec<Route> {
    use Access::*;
    let r = |method: &str, template: &'static str, uri: &'static str, body: Option<&'static str>, access| Route {
        method: Method::from_bytes(method.as_bytes()).expect("method"),
        template,
        uri,
        body,
        access,
    };
    vec![
        r("GET", "/healthz", "/healthz", None, Public),
        r("GET", "/readyz", "/readyz", None, Public),
        r("GET", "/metrics", "/metrics", None, Public),
        r("GET", "/", "/", None, Public),
        r("GET", "/assets/{name}", "/assets/app.js", None, Public),
        r("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, Public),
        r("POST", "/api/v1/session", "/api/v1/session", Some(r#"{"username":"resp","password":"responder-password"}"#), Public),
        r("GET", "/api/v1/session", "/api/v1/session", None, Read),
        r("DELETE", "/api/v1/session", "/api/v1/session", None, Public),
        r("POST", "/api/v1/reports", "/api/v1/reports", Some(r#"{"full_name":"Matrix Person","gender":"other","last_seen_at":"2026-11-20T10:00","last_seen_place":"Matrix"}"#), Write),
        r("GET", "/api/v1/cases", "/api/v1/cases", None, Read),
        r("GET", "/api/v1/cases/{id}", "/api/v1/cases/{case}", None, Read),
        r("PATCH", "/api/v1/cases/{id}", "/api/v1/cases/{case}", Some(r#"{"version":{case_v},"priority":"critical"}"#), Write),
        r("POST", "/api/v1/cases/{id}/assignment", "/api/v1/cases/{case}/assignment", Some(r#"{"version":{case_v},"responsible_id":{other_resp}}"#), Write),
        r("POST", "/api/v1/cases/{id}/actions", "/api/v1/cases/{case}/actions", Some(r#"{"action_type":"note","notes":"matrix"}"#), Write),
        r("POST", "/api/v1/cases/{id}/sightings", "/api/v1/cases/{case}/sightings", Some(r#"{"seen_at":"2026-11-20T15:00","place":"Matrix"}"#), Write),
        r("GET", "/api/v1/responsibles", "/api/v1/responsibles", None, Read),
        r("POST", "/api/v1/responsibles", "/api/v1/responsibles", Some(r#"{"full_name":"Matrix Contact","agency":"Matrix"}"#), Write),
        r("PATCH", "/api/v1/responsibles/{id}", "/api/v1/responsibles/{spare}", Some(r#"{"version":{spare_v},"active":true}"#), Write),
        r("DELETE", "/api/v1/responsibles/{id}", "/api/v1/responsibles/{spare}?version={spare_v}", None, Write),
        r("PUT", "/api/v1/responsibles/{id}/user", "/api/v1/responsibles/{spare}/user", Some(r#"{"user":"resp"}"#), Admin),
        r("GET", "/api/v1/views", "/api/v1/views", None, Read),
        // the case report holds personal data: like a write, readers get 403
        r("GET", "/api/v1/cases/{id}/report.pdf", "/api/v1/cases/{case}/report.pdf", None, Write),
        r("GET", "/api/v1/cases/{id}/poster.pdf", "/api/v1/cases/{case}/poster.pdf", None, Write),
        r("GET", "/public/cases/{public_id}", "/public/cases/{public_id}", None, Public),
        r("POST", "/public/cases/{public_id}/sightings", "/public/cases/{public_id}/sightings", Some("place=Matrix&description=seen"), PublicForm),
        r("GET", "/api/v1/reports/{kind}.pdf", "/api/v1/reports/demographic.pdf", None, Read),
        r("GET", "/api/v1/views/{name}", "/api/v1/views/kpi", None, Read),
        r("GET", "/api/v1/views/hotspots", "/api/v1/views/hotspots?format=geojson", None, Read),
        r("GET", "/api/v1/engine", "/api/v1/engine", None, Read),
        r("GET", "/api/v1/stream", "/api/v1/stream", None, Stream),
        r("GET", "/api/v1/users", "/api/v1/users", None, Admin),
        r("POST", "/api/v1/users", "/api/v1/users", Some(r#"{"username":"user{uniq}","password":"long-enough-password","role":"responder"}"#), Admin),
        r("GET", "/api/v1/tokens", "/api/v1/tokens", None, Admin),
        r("POST", "/api/v1/tokens", "/api/v1/tokens", Some(r#"{"label":"matrix"}"#), Admin),
        r("DELETE", "/api/v1/tokens/{id}", "/api/v1/tokens/{token_id}", None, Admin),
        r("GET", "/grafana", "/grafana", None, Read),
        r("GET", "/grafana/", "/grafana/", None, Read),
        r("POST", "/grafana/metrics", "/grafana/metrics", Some("{}"), Read),
        r("POST", "/grafana/search", "/grafana/search", Some("{}"), Read),
        r("POST", "/grafana/metric-payload-options", "/grafana/metric-payload-options", Some(r#"{"metric":"reports","name":"gender"}"#), Read),
        r("POST", "/grafana/query", "/grafana/query", Some(r#"{"targets":[{"refId":"A","target":"kpi"},{"refId":"B","target":"reports"}]}"#), Read),
        r("POST", "/grafana/variable", "/grafana/variable", Some(r#"{"payload":{"target":"gender"}}"#), Read),
        r("POST", "/grafana/tag-keys", "/grafana/tag-keys", Some("{}"), Read),
        r("POST", "/grafana/tag-values", "/grafana/tag-values", Some(r#"{"key":"gender"}"#), Read),
        r("GET", "/api/v1/rows/{view}", "/api/v1/rows/kpi", None, Read),
        r("POST", "/api/v1/rows/{view}", "/api/v1/rows/reports", Some(r#"{"bucket":"day"}"#), Read),
    ]
}

/// Fills the placeholders of a route's URI or body from the current state.
fn fill(app: &App, seeded: &Seeded, spare: i64, text: &str) -> String {
    let mut out = text.to_string();
    if out.contains("{case_v}") {
        out = out.replace("{case_v}", &app.case_version(seeded.case).to_string());
    }
    if out.contains("{other_resp}") {
        let other = if app.case_responsible(seeded.case) == Some(seeded.resp) {
            seeded.other
        } else {
            seeded.resp
        };
        out = out.replace("{other_resp}", &other.to_string());
    }
    if out.contains("{spare_v}") {
        out = out.replace("{spare_v}", &app.responsible_version(spare).to_string());
    }
    if out.contains("{token_id}") {
        let token = app
            .state
            .auth
            .store
            .create_token("to-revoke", "test")
            .expect("token");
        out = out.replace("{token_id}", &token.id);
    }
    if out.contains("{uniq}") {
        out = out.replace("{uniq}", &app.uniq().to_string());
    }
    out.replace("{case}", &seeded.case.to_string())
        .replace("{spare}", &spare.to_string())
        .replace("{public_id}", &seeded.public_id)
}

// ---------------------------------------------------------------------------------------------
// OpenAPI, health, metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_lists_every_rest_route() {
    let app = App::start().await;
    let r = app.get(Who::Anonymous, "/api/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = &r.json;
    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3."), "openapi version {version}");
    assert!(doc["info"]["title"].is_string());

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|k| ["get", "post", "patch", "put", "delete"].contains(&k.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    // every route of the API is documented: all of /api/v1 and /grafana
    let served: BTreeSet<(String, String)> = routes()
        .iter()
        .filter(|r| r.template.starts_with("/api/v1/") || r.template.starts_with("/grafana"))
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .collect();
    assert_eq!(
        documented, served,
        "the OpenAPI paths (left) must be the API routes the router serves (right)"
    );

    // the credentials each operation declares are the authorization matrix's: public routes
    // none, every other route the session cookie or a token, and a 401 for neither; the
    // matrix (`authorization_matrix_covers_every_route_and_caller`) checks the server agrees
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "lpm_session");
    assert_eq!(schemes["token"]["scheme"], "bearer");
    for route in routes()
        .iter()
        .filter(|r| r.template.starts_with("/api/v1/") || r.template.starts_with("/grafana"))
    {
        let op = &doc["paths"][route.template][route.method.as_str().to_lowercase()];
        let security = op["security"].as_array().map(Vec::len).unwrap_or(0);
        let has_401 = op["responses"].get("401").is_some();
        if route.access == Access::Public {
            assert_eq!(security, 0, "{} {} is public", route.method, route.template);
        } else {
            assert_eq!(
                security, 2,
                "{} {}: session or token",
                route.method, route.template
            );
            assert!(
                has_401,
                "{} {} documents no 401",
                route.method, route.template
            );
        }
        if matches!(route.access, Access::Write | Access::Admin) {
            assert!(
                op["responses"].get("403").is_some(),
                "{} {} documents no 403 for read-only tokens",
                route.method,
                route.template
            );
        }
    }
    // the bounds the server applies (`per_page` 1-200, `page` from 1)
    let list = &doc["paths"]["/api/v1/cases"]["get"]["parameters"];
    let param = |name: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("parameter {name}"))
    };
    assert_eq!(param("per_page")["schema"]["minimum"], 1);
    assert_eq!(param("per_page")["schema"]["maximum"], 200);
    assert_eq!(param("page")["schema"]["minimum"], 1);
    assert_eq!(param("page")["schema"]["maximum"], 1_000_000_000);
    // the stateful links use OpenAPI's names (utoipa writes them in snake case)
    let link = &doc["paths"]["/api/v1/reports"]["post"]["responses"]["201"]["links"]["GetCase"];
    assert_eq!(link["operationId"], "get_case", "{link}");

    // every schema reference resolves
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        assert!(schemas.contains_key(name), "dangling $ref {reference}");
    }
    // every documented operation declares its responses and the path parameters it has
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op["responses"].as_object().is_some_and(|m| !m.is_empty()),
            "{method} {path} has no responses"
        );
        if path.contains('{') {
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                // `{kind}.pdf`: the name is what the braces hold
                let name = seg.trim_start_matches('{').split('}').next().unwrap_or(seg);
                assert!(
                    params.contains(&name),
                    "{method} {path} lacks parameter {name}"
                );
            }
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer_without_credentials() {
    let app = App::start().await;
    let r = app.get(Who::Anonymous, "/healthz").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );

    let r = app.get(Who::Anonymous, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["ready"], true);
    assert_eq!(r.json["stopping"], false);

    app.state.health.set_stopping();
    let r = app.get(Who::Anonymous, "/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.json["ready"], false);
    assert_eq!(r.json["stopping"], true);

    // a request on a matched route is counted by its template, never by its raw path
    let _ = app.get(Who::Reader, "/api/v1/cases/424242").await;
    let r = app.get(Who::Anonymous, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let ctype = r.headers.get(header::CONTENT_TYPE).expect("content type");
    assert!(ctype.to_str().is_ok_and(|c| c.starts_with("text/plain")));
    assert!(r.text.contains("lpm_http_requests_total"), "{}", r.text);
    assert!(r.text.contains("/api/v1/cases/{id}"), "{}", r.text);
    assert!(!r.text.contains("424242"), "raw ids must not become labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_4xx() {
    let app = App::start().await;
    for who in Who::ALL {
        let r = app.get(who, "/api/v1/nothing-here").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who:?}: {}", r.text);
        assert!(r.is_error_body(), "{}", r.text);
        let r = app
            .call(who, Method::PUT, "/api/v1/cases", Some("{}"))
            .await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{who:?}: {}",
            r.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_without_upgrade_headers_is_a_4xx() {
    let app = App::start().await;
    seed(&app).await;
    let r = app.get(Who::Anonymous, "/api/v1/stream").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    for who in [Who::Reader, Who::Responder, Who::Admin] {
        let r = app.get(who, "/api/v1/stream").await;
        assert!(
            r.status.is_client_error(),
            "{who:?}: {} {}",
            r.status,
            r.text
        );
        // upgrade headers present, but no connection to upgrade (no hyper server)
        let mut req = app.authorize(request(Method::GET, "/api/v1/stream", None), who);
        let h = req.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let r = app.send(req).await;
        assert!(
            r.status.is_client_error(),
            "{who:?}: {} {}",
            r.status,
            r.text
        );
    }
    let r = app.get(Who::Reader, "/api/v1/stream?topics=gossip").await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text);
    let r = app.get(Who::Reader, "/api/v1/stream?since=yesterday").await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text);
}

// ---------------------------------------------------------------------------------------------
// Successful flows

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_goes_through_its_whole_lifecycle() {
    let app = App::start().await;
    let a = app
        .create_responsible(json!({
            "full_name": "Ana Responsable",
            "agency": "DINASED",
            "phone": RESP_PHONE,
            "email": RESP_EMAIL,
        }))
        .await;
    let b = app
        .create_responsible(json!({"full_name": "Bruno Responsable", "agency": "ECU 911"}))
        .await;

    // file a report with a first responsible and a first action
    let mut body = report_body();
    body["responsible_id"] = json!(a);
    body["first_action"] = json!({"action_type": "search", "notes": FIRST_ACTION_NOTES});
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            "/api/v1/reports",
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let case = &r.json["case"];
    let id = case["id"].as_i64().expect("id");
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/cases/{id}").as_str())
    );
    assert!(r.json["tick"].is_u64());
    assert_eq!(case["status"], "open");
    assert_eq!(case["priority"], "high");
    assert_eq!(case["version"], 1);
    assert_eq!(case["closed_at"], Value::Null);
    assert_eq!(case["unassigned"], false);
    assert_eq!(case["minor"], false);
    assert_eq!(case["age_band"], "30-44");
    assert_eq!(case["gender"], "female");
    let person = &case["person"];
    assert_eq!(person["full_name"], PERSON_NAME);
    assert_eq!(person["age"], 34);
    assert_eq!(person["last_seen_at"], "2026-11-20T14:30:00.000");
    assert_eq!(person["last_seen_place"], PLACE);
    assert_eq!(person["latitude"], "-0.123457");
    assert_eq!(person["longitude"], "-78.654321");
    assert_eq!(person["description"], DESCRIPTION);
    assert_eq!(person["reporter_name"], REPORTER_NAME);
    assert_eq!(person["reporter_phone"], REPORTER_PHONE);
    assert_eq!(case["responsible"]["id"], a);
    assert_eq!(case["responsible"]["phone"], RESP_PHONE);
    let types = |detail: &Value| -> Vec<String> {
        detail["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|x| x["action_type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(types(&r.json), ["assignment", "search"]);
    assert_eq!(r.json["actions"][1]["notes"], FIRST_ACTION_NOTES);
    assert_eq!(r.json["actions"][1]["responsible_id"], a);
    let history = r.json["history"].as_array().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["responsible_id"], a);
    assert_eq!(history[0]["unassigned_at"], Value::Null);

    // a second, unassigned report of a minor
    let minor = app
        .file_report(json!({
            "full_name": MINOR_NAME, "age": 12, "gender": "MALE",
            "last_seen_at": "2026-11-21T09:15:00-05:00", "last_seen_place": MINOR_PLACE,
            "priority": "low",
        }))
        .await;

    // the list shows both; every filter narrows it
    let r = app.get(Who::Responder, "/api/v1/cases").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["total"], 2);
    assert_eq!(r.json["page"], 1);
    assert_eq!(r.json["per_page"], 50);
    assert!(r.json["tick"].is_u64());
    let ids = |r: &Reply| -> Vec<i64> {
        r.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["id"].as_i64())
            .collect()
    };
    assert_eq!(ids(&r), [minor, id], "newest first by default");
    let by_a = format!("responsible_id={a}");
    let by_b = format!("responsible_id={b}");
    for (query, expected) in [
        ("status=open", vec![minor, id]),
        ("status=in_progress,closed", vec![]),
        ("priority=high", vec![id]),
        ("priority=low,critical", vec![minor]),
        (by_a.as_str(), vec![id]),
        (by_b.as_str(), vec![]),
        ("unassigned=true", vec![minor]),
        ("unassigned=false", vec![id]),
        ("age_band=30-44", vec![id]),
        ("age_band=0-11,12-17", vec![minor]),
        ("gender=male", vec![minor]),
        ("gender=female,other", vec![id]),
        ("minor=true", vec![minor]),
        ("minor=false", vec![id]),
        ("q=quintanilla", vec![id]),
        ("q=RESERVADO", vec![minor]),
        ("q=nobody", vec![]),
        ("opened_from=0", vec![minor, id]),
        ("opened_to=0", vec![]),
        (
            "opened_from=2000-01-01T00:00:00Z&opened_to=2999-01-01T00:00:00Z",
            vec![minor, id],
        ),
        ("sort=id&order=asc", vec![id, minor]),
        ("sort=age&order=asc", vec![minor, id]),
        ("sort=status&order=desc", vec![minor, id]),
        ("sort=id&per_page=1&page=2", vec![id]),
        ("page=3&per_page=1", vec![]),
    ] {
        let r = app
            .get(Who::Responder, &format!("/api/v1/cases?{query}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        assert_eq!(ids(&r), expected, "{query}");
    }

    // the detail read
    let r = app
        .get(Who::Responder, &format!("/api/v1/cases/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["case"]["person"]["full_name"], PERSON_NAME);
    assert_eq!(types(&r.json), ["assignment", "search"]);

    // status: open -> in_progress -> found_alive (closed_at set) -> open (closed_at cleared)
    let patch = |version: i64, body: Value| {
        let mut body = body;
        body["version"] = json!(version);
        body.to_string()
    };
    let uri = format!("/api/v1/cases/{id}");
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &uri,
            Some(&patch(1, json!({"status": "in_progress"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["case"]["status"], "in_progress");
    assert_eq!(r.json["case"]["version"], 2);
    assert_eq!(r.json["case"]["closed_at"], Value::Null);
    assert_eq!(
        types(&r.json).last().map(String::as_str),
        Some("status_change")
    );
    let r = app
        .call(
            Who::Admin,
            Method::PATCH,
            &uri,
            Some(&patch(
                2,
                json!({"status": "found_alive", "priority": "critical"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["case"]["status"], "found_alive");
    assert_eq!(r.json["case"]["priority"], "critical");
    assert_eq!(r.json["case"]["version"], 3);
    assert!(r.json["case"]["closed_at"].is_string(), "{}", r.text);
    let r = app.get(Who::Responder, "/api/v1/views/kpi").await;
    assert_eq!(r.json["value"]["found_alive"], 1, "{}", r.text);
    assert_eq!(r.json["value"]["closed_cases"], 1, "{}", r.text);
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &uri,
            Some(&patch(3, json!({"status": "open"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["case"]["status"], "open");
    assert_eq!(r.json["case"]["closed_at"], Value::Null);
    assert_eq!(r.json["case"]["version"], 4);

    // assign: the open history row is closed, a new one opened, an assignment action logged
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{id}/assignment"),
            Some(&json!({"version": 4, "responsible_id": b}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["case"]["responsible"]["id"], b);
    assert_eq!(r.json["case"]["version"], 5);
    let history = r.json["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{}", r.text);
    assert_eq!(history[0]["responsible_id"], a);
    assert!(history[0]["unassigned_at"].is_string(), "{}", r.text);
    assert_eq!(history[1]["responsible_id"], b);
    assert_eq!(history[1]["unassigned_at"], Value::Null);
    let last = r.json["actions"].as_array().and_then(|a| a.last()).cloned();
    let last = last.expect("an action");
    assert_eq!(last["action_type"], "assignment");
    assert_eq!(last["responsible_id"], b);

    // log an action: it joins the timeline
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{id}/actions"),
            Some(&json!({"action_type": "call", "notes": ACTION_NOTES}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let last = r.json["actions"].as_array().and_then(|a| a.last()).cloned();
    let last = last.expect("an action");
    assert_eq!(last["action_type"], "call");
    assert_eq!(last["notes"], ACTION_NOTES);
    assert_eq!(
        last["responsible_id"], b,
        "defaults to the case's responsible"
    );
    let actions_total = r.json["actions"].as_array().map_or(0, Vec::len);
    let detail_tick = r.json["tick"].as_u64().expect("tick");
    assert_eq!(
        types(&r.json),
        [
            "assignment",
            "search",
            "status_change",
            "status_change",
            "status_change",
            "assignment",
            "call"
        ]
    );

    // the notes lpm wrote itself come as data, to every caller; the stored text stays in
    // `notes`, which readers do not get
    let notes_as_data = |detail: &Value| -> Vec<Value> {
        detail["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["note"].clone())
            .collect()
    };
    let changes = [
        ("open", "in_progress"),
        ("in_progress", "found_alive"),
        ("found_alive", "open"),
    ]
    .map(|(from, to)| json!({"kind": "status_change", "from": from, "to": to}));
    let as_responder = notes_as_data(&r.json);
    assert_eq!(as_responder[2..5], changes, "{}", r.text);
    assert_eq!(as_responder[1], Value::Null, "a typed note has no `note`");
    assert_eq!(as_responder[0]["kind"], "assignment");
    assert_eq!(
        as_responder[0]["responsible_name"], r.json["actions"][0]["responsible_name"],
        "{}",
        r.text
    );
    assert_eq!(r.json["actions"][2]["notes"], "open -> in_progress");
    let as_reader = app.get(Who::Reader, &uri).await;
    assert_eq!(as_reader.status, StatusCode::OK, "{}", as_reader.text);
    assert_eq!(notes_as_data(&as_reader.json)[2..5], changes);
    assert!(
        as_reader.json["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|a| a["notes"].is_null()),
        "{}",
        as_reader.text
    );

    // the views reflect all of it, tagged with the tick and the source position
    let r = app.get(Who::Reader, "/api/v1/views").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let tick = r.json["tick"].as_u64().expect("tick");
    assert!(tick >= detail_tick);
    let positions = r.json["positions"].as_array().expect("positions");
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0]["source"], "embedded-log");
    assert!(
        positions[0]["log_seq"].as_u64().is_some_and(|s| s >= 9),
        "{}",
        r.text
    );
    let views = &r.json["views"];
    assert_eq!(views["kpi"]["total_reports"], 2);
    assert_eq!(views["kpi"]["open_cases"], 2);
    assert_eq!(views["kpi"]["closed_cases"], 0);
    assert_eq!(views["kpi"]["unassigned_open_cases"], 1);
    assert_eq!(views["kpi"]["open_minor_cases"], 1);
    assert_eq!(views["kpi"]["actions_total"], actions_total);
    assert_eq!(views["cases_by_status"]["open"], 2);
    assert_eq!(views["open_by_priority"]["critical"], 1);
    assert_eq!(views["open_by_priority"]["low"], 1);
    assert_eq!(views["gender"]["female"], 1);
    assert_eq!(views["gender"]["male"], 1);
    assert_eq!(views["age_group"]["30-44"], 1);
    assert_eq!(views["age_group"]["12-17"], 1);
    let load: BTreeMap<i64, i64> = views["responsible_load"]
        .as_array()
        .expect("responsible_load")
        .iter()
        .map(|e| {
            (
                e["id"].as_i64().unwrap_or(-1),
                e["open_cases"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(load, BTreeMap::from([(a, 0), (b, 1)]));
    for name in [
        "age_group",
        "gender",
        "hour_of_day",
        "hourly",
        "cases_by_status",
        "open_by_priority",
        "responsible_load",
        "kpi",
        "row_counts",
    ] {
        let r = app.get(Who::Reader, &format!("/api/v1/views/{name}")).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text);
        assert_eq!(r.json["view"], name);
        assert!(r.json["tick"].is_u64(), "{name}: {}", r.text);
        assert!(r.json["positions"].is_array(), "{name}: {}", r.text);
        assert!(!r.json["value"].is_null(), "{name}: {}", r.text);
    }
    let r = app.get(Who::Reader, "/api/v1/views/kpi").await;
    assert_eq!(r.json["value"]["total_reports"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responsibles_are_created_listed_updated_and_deactivated() {
    let app = App::start().await;
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            "/api/v1/responsibles",
            Some(
                &json!({"full_name": "  Carla Contacto ", "agency": "DINASED",
                    "phone": RESP_PHONE, "email": RESP_EMAIL})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_i64().expect("id");
    assert_eq!(r.json["full_name"], "Carla Contacto", "trimmed");
    assert_eq!(r.json["phone"], RESP_PHONE);
    assert_eq!(r.json["email"], RESP_EMAIL);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["version"], 1);

    let r = app.get(Who::Responder, "/api/v1/responsibles").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.json["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[0]["email"], RESP_EMAIL);
    assert_eq!(items[0]["open_cases"], 0);

    let uri = format!("/api/v1/responsibles/{id}");
    let r = app
        .call(
            Who::Admin,
            Method::PATCH,
            &uri,
            Some(&json!({"version": 1, "agency": "ECU 911", "email": ""}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["agency"], "ECU 911");
    assert_eq!(r.json["full_name"], "Carla Contacto", "unchanged");
    assert_eq!(r.json["phone"], RESP_PHONE, "unchanged");
    assert!(
        r.json.get("email").is_none(),
        "an empty email clears it: {}",
        r.text
    );
    assert_eq!(r.json["version"], 2);

    let r = app
        .call(
            Who::Responder,
            Method::DELETE,
            &format!("{uri}?version=2"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["active"], false);
    assert_eq!(r.json["version"], 3);

    let r = app
        .get(Who::Responder, "/api/v1/responsibles?active=true")
        .await;
    assert_eq!(r.json["items"], json!([]), "{}", r.text);
    let r = app
        .get(Who::Responder, "/api/v1/responsibles?active=false")
        .await;
    assert_eq!(r.json["items"][0]["id"], id, "{}", r.text);
    assert_eq!(r.json["items"][0]["active"], false);

    // reactivation through PATCH
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &uri,
            Some(&json!({"version": 3, "active": true}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_users_and_tokens_work_through_the_app_router() {
    let app = App::start().await;
    let r = app.get(Who::Responder, "/api/v1/session").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["user"], "resp");
    assert_eq!(r.json["role"], "responder");
    assert_eq!(r.json["can_write"], true);
    let r = app.get(Who::Reader, "/api/v1/session").await;
    assert_eq!(r.json["role"], "reader");
    assert_eq!(r.json["sees_personal_data"], false);

    // a new responder signs in and writes
    let r = app
        .call(
            Who::Admin,
            Method::POST,
            "/api/v1/users",
            Some(r#"{"username":"nuevo","password":"nuevo-password","role":"responder"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let cookie = app.sign_in("nuevo", "nuevo-password").await;
    let req = support::authorize_with(
        request(
            Method::POST,
            "/api/v1/responsibles",
            Some(r#"{"full_name":"De Nuevo","agency":"X"}"#),
        ),
        Who::Responder,
        "",
        &cookie,
    );
    assert_eq!(app.send(req).await.status, StatusCode::CREATED);
    let r = app.get(Who::Admin, "/api/v1/users").await;
    assert!(
        r.text.contains("nuevo") && !r.text.contains("password_hash"),
        "{}",
        r.text
    );

    // a new token reads, and stops reading once revoked
    let r = app
        .call(
            Who::Admin,
            Method::POST,
            "/api/v1/tokens",
            Some(r#"{"label":"analista"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.json["token"].as_str().expect("token").to_string();
    let token_id = r.json["id"].as_str().expect("id").to_string();
    let as_token = |uri: &str| {
        support::authorize_with(request(Method::GET, uri, None), Who::Reader, &token, "")
    };
    assert_eq!(
        app.send(as_token("/api/v1/views")).await.status,
        StatusCode::OK
    );
    let r = app
        .call(
            Who::Admin,
            Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.send(as_token("/api/v1/views")).await.status,
        StatusCode::UNAUTHORIZED
    );

    // sign-out ends the session
    let cookie = app.sign_in(RESPONDER_USER, RESPONDER_PW).await;
    let req = support::authorize_with(
        request(Method::DELETE, "/api/v1/session", None),
        Who::Responder,
        "",
        &cookie,
    );
    assert_eq!(app.send(req).await.status, StatusCode::NO_CONTENT);
    let req = support::authorize_with(
        request(Method::GET, "/api/v1/session", None),
        Who::Responder,
        "",
        &cookie,
    );
    assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);

    // bad credentials
    let r = app
        .call(
            Who::Anonymous,
            Method::POST,
            "/api/v1/session",
            Some(r#"{"username":"resp","password":"wrong-password"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let mut req = request(Method::GET, "/api/v1/views", None);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer lpm_000000000000_not-a-real-token"),
    );
    assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
}

const RESPONDER_USER: &str = support::RESPONDER.0;
const RESPONDER_PW: &str = support::RESPONDER.1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_routes_answer_with_the_tick() {
    let app = App::start().await;
    seed(&app).await;
    let r = app.get(Who::Reader, "/grafana/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
    assert!(r.headers.contains_key("x-lpm-tick"));

    let r = app
        .call(
            Who::Reader,
            Method::POST,
            "/grafana/query",
            Some(
                &json!({
                    "range": {"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"},
                    "maxDataPoints": 100,
                    "targets": [
                        {"refId": "A", "target": "kpi"},
                        {"refId": "B", "target": "reports", "payload": {"bucket": "day"}},
                        {"refId": "C", "target": "sensitive_open_cases"},
                        {"refId": "D", "target": "kpi", "hide": true},
                    ]
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.headers.contains_key("x-lpm-tick"));
    let out = r.json.as_array().expect("array");
    assert_eq!(out.len(), 3, "{}", r.text);
    assert_eq!(out[0]["type"], "table");
    assert_eq!(out[1]["target"], "reports");
    let sensitive_rows = out[2]["rows"].as_array().expect("rows");
    // the minor's case and the adult's high-priority case are both sensitive
    assert_eq!(sensitive_rows.len(), 2, "{}", r.text);

    let r = app.get(Who::Reader, "/api/v1/rows/kpi").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json[0]["total_reports"], 2, "{}", r.text);
    let r = app
        .call(
            Who::Reader,
            Method::POST,
            "/api/v1/rows/reports",
            Some(r#"{"bucket":"day","split_by":"gender"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let total: i64 = r
        .json
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|x| x["value"].as_i64())
        .sum();
    assert_eq!(total, 2, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// One bad request and what it must answer.
struct Bad {
    what: String,
    method: Method,
    uri: String,
    body: Option<String>,
    /// Acceptable statuses.
    statuses: &'static [u16],
    /// The field the error must name (`None`: no requirement).
    field: Option<&'static str>,
}

const S400: &[u16] = &[400];
const S404: &[u16] = &[404];
const S422: &[u16] = &[422];
/// A type error or a structural error: 400 or 422, as long as the field is named.
const S4XX: &[u16] = &[400, 422];

fn bad(
    what: impl Into<String>,
    method: &Method,
    uri: &str,
    body: Option<String>,
    statuses: &'static [u16],
    field: Option<&'static str>,
) -> Bad {
    Bad {
        what: what.into(),
        method: method.clone(),
        uri: uri.to_string(),
        body,
        statuses,
        field,
    }
}

/// A copy of `base` with `key` set (`Value::Null` removes it); keys may be `a.b`.
fn with(base: &Value, key: &str, v: Value) -> String {
    let mut out = base.clone();
    let (parent, leaf) = match key.split_once('.') {
        Some((p, l)) => (&mut out[p], l),
        None => (&mut out, key),
    };
    match (v, parent.as_object_mut()) {
        (Value::Null, Some(m)) => {
            m.remove(leaf);
        }
        (v, Some(m)) => {
            m.insert(leaf.to_string(), v);
        }
        (_, None) => panic!("{key}: parent is not an object"),
    }
    out.to_string()
}

/// Sends every case as `who` and returns a readable list of failures.
async fn run_bad(app: &App, who: Who, cases: &[Bad]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let r = app
            .call(who, c.method.clone(), &c.uri, c.body.as_deref())
            .await;
        let mut problems = Vec::new();
        if r.status.is_server_error() {
            problems.push("a 5xx".to_string());
        }
        if !c.statuses.contains(&r.status.as_u16()) {
            problems.push(format!(
                "status {} not in {:?}",
                r.status.as_u16(),
                c.statuses
            ));
        }
        if !r.is_error_body() {
            problems.push("the body is not {error, field}".to_string());
        }
        if let Some(field) = c.field {
            if r.field() != Some(field) {
                problems.push(format!("field {:?} instead of {field:?}", r.field()));
            }
        }
        if !problems.is_empty() {
            let body = c.body.as_deref().unwrap_or("");
            let body: String = body.chars().take(120).collect();
            failures.push(format!(
                "{}: {} {} {body}\n      -> {}: {}",
                c.what,
                c.method,
                c.uri,
                problems.join("; "),
                r.text.chars().take(300).collect::<String>()
            ));
        }
    }
    failures
}

// The tables below are kept one case per line.

#[rustfmt::skip]
fn report_bad_cases(s: &Seeded) -> Vec<Bad> {
    let post = Method::POST;
    let uri = "/api/v1/reports";
    let base = report_body();
    let b = |what: &str, body: String, statuses, field| bad(what, &post, uri, Some(body), statuses, field);
    let long = |n: usize| "x".repeat(n);
    vec![
        b("malformed JSON", r#"{"full_name": "x","#.into(), S400, None),
        b("empty body", String::new(), S400, None),
        b("trailing garbage", format!("{base} x"), S400, None),
        b("not an object", "[1, 2]".into(), S4XX, None),
        b("null body", "null".into(), S4XX, None),
        b("age as text", with(&base, "age", json!("ten")), S4XX, Some("age")),
        b("age as float", with(&base, "age", json!(1.5)), S4XX, Some("age")),
        b("age too large for i64", with(&base, "age", json!(1e30)), S4XX, Some("age")),
        b("full_name as number", with(&base, "full_name", json!(5)), S4XX, Some("full_name")),
        b("latitude as text", with(&base, "latitude", json!("north")), S4XX, Some("latitude")),
        b("responsible_id as text", with(&base, "responsible_id", json!("one")), S4XX, Some("responsible_id")),
        b("first_action as text", with(&base, "first_action", json!("note")), S4XX, Some("first_action")),
        b("first_action.notes as number", with(&base, "first_action", json!({"action_type": "note", "notes": 7})), S4XX, Some("first_action.notes")),
        b("unknown priority", with(&base, "priority", json!("urgent")), S422, Some("priority")),
        b("unknown gender", with(&base, "gender", json!("x")), S422, Some("gender")),
        b("unknown first action type", with(&base, "first_action", json!({"action_type": "dance"})), S422, Some("first_action.action_type")),
        b("unknown field", with(&base, "nickname", json!("Z")), S4XX, Some("nickname")),
        b("missing full_name", with(&base, "full_name", Value::Null), S4XX, Some("full_name")),
        b("missing gender", with(&base, "gender", Value::Null), S4XX, Some("gender")),
        b("missing last_seen_at", with(&base, "last_seen_at", Value::Null), S4XX, Some("last_seen_at")),
        b("missing last_seen_place", with(&base, "last_seen_place", Value::Null), S4XX, Some("last_seen_place")),
        b("age below 0", with(&base, "age", json!(-1)), S422, Some("age")),
        b("age above 150", with(&base, "age", json!(200)), S422, Some("age")),
        b("blank full_name", with(&base, "full_name", json!("   ")), S422, Some("full_name")),
        b("full_name too long", with(&base, "full_name", json!(long(201))), S422, Some("full_name")),
        // the limits count the text as sent, as the OpenAPI maxLength does (found by schemathesis)
        b("full_name over 200 characters counting its blanks", with(&base, "full_name", json!(format!("{}  ", long(199)))), S422, Some("full_name")),
        b("description of 10 001 blanks", with(&base, "description", json!(" ".repeat(10_001))), S422, Some("description")),
        // 5e-324 has 324 decimals; a tolerance on the binary value took it for 0
        b("latitude 5e-324", with(&base, "latitude", json!(5e-324)), S422, Some("latitude")),
        b("longitude 1e-7", with(&base, "longitude", json!(1e-7)), S422, Some("longitude")),
        b("place too long", with(&base, "last_seen_place", json!(long(256))), S422, Some("last_seen_place")),
        b("description too long", with(&base, "description", json!(long(10_001))), S422, Some("description")),
        b("reporter_phone too long", with(&base, "reporter_phone", json!(long(41))), S422, Some("reporter_phone")),
        b("unparseable last_seen_at", with(&base, "last_seen_at", json!("yesterday")), S422, Some("last_seen_at")),
        b("latitude out of range", with(&base, "latitude", json!(91.0)), S422, Some("latitude")),
        b("longitude out of range", with(&base, "longitude", json!(-180.5)), S422, Some("longitude")),
        b("latitude with 7 decimals", with(&base, "latitude", json!(1.1234567)), S422, Some("latitude")),
        b("unknown responsible", with(&base, "responsible_id", json!(999_999)), S422, Some("responsible_id")),
        b("inactive responsible", with(&base, "responsible_id", json!(s.inactive)), S422, Some("responsible_id")),
        b("unknown first action responsible", with(&base, "first_action", json!({"action_type": "note", "responsible_id": 999_999})), S422, Some("first_action.responsible_id")),
    ]
}

#[rustfmt::skip]
fn case_bad_cases(app: &App, s: &Seeded) -> Vec<Bad> {
    let v = app.case_version(s.case);
    let (patch, post) = (Method::PATCH, Method::POST);
    let case_uri = format!("/api/v1/cases/{}", s.case);
    let assign_uri = format!("/api/v1/cases/{}/assignment", s.case);
    let action_uri = format!("/api/v1/cases/{}/actions", s.case);
    let sighting_uri = format!("/api/v1/cases/{}/sightings", s.case);
    let g = |what: &str, body: String, statuses, field| bad(what, &post, &sighting_uri, Some(body), statuses, field);
    let sighting = sighting_body();
    let p = |what: &str, body: String, statuses, field| bad(what, &patch, &case_uri, Some(body), statuses, field);
    let a = |what: &str, body: String, statuses, field| bad(what, &post, &assign_uri, Some(body), statuses, field);
    let x = |what: &str, body: String, statuses, field| bad(what, &post, &action_uri, Some(body), statuses, field);
    let patch_base = json!({"version": v, "status": "in_progress"});
    let assign_base = json!({"version": v, "responsible_id": s.other});
    let action_base = json!({"action_type": "note", "notes": "n"});
    vec![
        // PATCH /cases/{id}
        p("malformed JSON", "{version: 1}".into(), S400, None),
        p("empty body", String::new(), S400, None),
        p("version as text", with(&patch_base, "version", json!("1")), S4XX, Some("version")),
        p("version as float", with(&patch_base, "version", json!(1.5)), S4XX, Some("version")),
        p("status as number", with(&patch_base, "status", json!(5)), S4XX, Some("status")),
        p("priority as list", with(&patch_base, "priority", json!(["high"])), S4XX, Some("priority")),
        p("unknown status", with(&patch_base, "status", json!("lost")), S422, Some("status")),
        p("unknown priority", with(&patch_base, "priority", json!("urgent")), S422, Some("priority")),
        p("unknown field", with(&patch_base, "closed_at", json!("2026-01-01")), S4XX, Some("closed_at")),
        p("missing version", with(&patch_base, "version", Value::Null), S4XX, Some("version")),
        p("nothing to change", json!({"version": v}).to_string(), S422, Some("status")),
        bad("non-numeric id", &patch, "/api/v1/cases/abc", Some(patch_base.to_string()), S400, Some("path")),
        bad("id beyond i64", &patch, "/api/v1/cases/99999999999999999999", Some(patch_base.to_string()), S400, Some("path")),
        // POST /cases/{id}/assignment
        a("malformed JSON", "{\"version\": }".into(), S400, None),
        a("responsible_id as text", with(&assign_base, "responsible_id", json!("x")), S4XX, Some("responsible_id")),
        a("missing responsible_id", with(&assign_base, "responsible_id", Value::Null), S4XX, Some("responsible_id")),
        a("missing version", with(&assign_base, "version", Value::Null), S4XX, Some("version")),
        a("unknown field", with(&assign_base, "reason", json!("r")), S4XX, Some("reason")),
        a("inactive responsible", with(&assign_base, "responsible_id", json!(s.inactive)), S422, Some("responsible_id")),
        a("unknown responsible", with(&assign_base, "responsible_id", json!(999_999)), S422, Some("responsible_id")),
        a("already assigned to it", with(&assign_base, "responsible_id", json!(s.resp)), S422, Some("responsible_id")),
        // POST /cases/{id}/actions
        x("malformed JSON", "not json".into(), S400, None),
        x("unknown action type", with(&action_base, "action_type", json!("dance")), S422, Some("action_type")),
        x("action type reserved for the system", with(&action_base, "action_type", json!("status_change")), S422, Some("action_type")),
        x("missing action_type", with(&action_base, "action_type", Value::Null), S4XX, Some("action_type")),
        x("notes as number", with(&action_base, "notes", json!(5)), S4XX, Some("notes")),
        x("unknown field", with(&action_base, "when", json!("now")), S4XX, Some("when")),
        x("notes too long", with(&action_base, "notes", json!("n".repeat(10_001))), S422, Some("notes")),
        x("unknown responsible", with(&action_base, "responsible_id", json!(999_999)), S422, Some("responsible_id")),
        x("inactive responsible", with(&action_base, "responsible_id", json!(s.inactive)), S422, Some("responsible_id")),
        // POST /cases/{id}/sightings
        g("malformed JSON", "{\"place\": }".into(), S400, None),
        g("missing seen_at", with(&sighting, "seen_at", Value::Null), S4XX, Some("seen_at")),
        g("seen_at not a time", with(&sighting, "seen_at", json!("yesterday")), S422, Some("seen_at")),
        g("seen_at in the future", with(&sighting, "seen_at", json!("2999-01-01T00:00")), S422, Some("seen_at")),
        g("missing place", with(&sighting, "place", Value::Null), S4XX, Some("place")),
        g("blank place", with(&sighting, "place", json!("   ")), S422, Some("place")),
        g("place too long", with(&sighting, "place", json!("p".repeat(256))), S422, Some("place")),
        g("latitude without longitude", with(&sighting, "longitude", Value::Null), S422, Some("longitude")),
        g("longitude without latitude", with(&sighting, "latitude", Value::Null), S422, Some("latitude")),
        g("latitude out of range", with(&sighting, "latitude", json!(91.0)), S422, Some("latitude")),
        g("longitude too precise", with(&sighting, "longitude", json!(-78.1234567)), S422, Some("longitude")),
        g("description too long", with(&sighting, "description", json!("d".repeat(10_001))), S422, Some("description")),
        g("reporter_name too long", with(&sighting, "reporter_name", json!("n".repeat(201))), S422, Some("reporter_name")),
        g("reporter_phone too long", with(&sighting, "reporter_phone", json!("9".repeat(41))), S422, Some("reporter_phone")),
        g("source is not the caller's to choose", with(&sighting, "source", json!("public")), S4XX, Some("source")),
    ]
}

#[rustfmt::skip]
fn responsible_bad_cases(app: &App, s: &Seeded) -> Vec<Bad> {
    let (post, patch, delete) = (Method::POST, Method::PATCH, Method::DELETE);
    let v = app.responsible_version(s.other);
    let one = format!("/api/v1/responsibles/{}", s.other);
    let create = json!({"full_name": "Nuevo Contacto", "agency": "DINASED"});
    let update = json!({"version": v, "agency": "ECU 911"});
    let c = |what: &str, body: String, statuses, field| bad(what, &post, "/api/v1/responsibles", Some(body), statuses, field);
    let u = |what: &str, body: String, statuses, field| bad(what, &patch, &one, Some(body), statuses, field);
    vec![
        c("malformed JSON", "{\"full_name\"".into(), S400, None),
        c("full_name as number", with(&create, "full_name", json!(5)), S4XX, Some("full_name")),
        c("active as text", with(&create, "active", json!("yes")), S4XX, Some("active")),
        c("unknown field", with(&create, "rank", json!("captain")), S4XX, Some("rank")),
        c("missing full_name", with(&create, "full_name", Value::Null), S4XX, Some("full_name")),
        c("missing agency", with(&create, "agency", Value::Null), S4XX, Some("agency")),
        c("blank full_name", with(&create, "full_name", json!(" ")), S422, Some("full_name")),
        c("version when creating", with(&create, "version", json!(1)), S422, Some("version")),
        c("not an email", with(&create, "email", json!("nope")), S422, Some("email")),
        c("phone too long", with(&create, "phone", json!("1".repeat(41))), S422, Some("phone")),
        c("agency over 120 characters counting its blanks", with(&create, "agency", json!(format!("{} ", "a".repeat(120)))), S422, Some("agency")),
        c("phone of 41 blanks", with(&create, "phone", json!(" ".repeat(41))), S422, Some("phone")),
        u("malformed JSON", "{".into(), S400, None),
        u("missing version", with(&update, "version", Value::Null), S4XX, Some("version")),
        u("version as text", with(&update, "version", json!("1")), S4XX, Some("version")),
        u("not an email", with(&update, "email", json!("x")), S422, Some("email")),
        u("blank agency", with(&update, "agency", json!("")), S422, Some("agency")),
        u("unknown field", with(&update, "id", json!(3)), S4XX, Some("id")),
        bad("delete without version", &delete, &one, None, S400, Some("version")),
        bad("delete with text version", &delete, &format!("{one}?version=abc"), None, S400, Some("version")),
        bad("delete with unknown parameter", &delete, &format!("{one}?version={v}&force=1"), None, S400, Some("force")),
        bad("non-numeric id", &patch, "/api/v1/responsibles/x", Some(update.to_string()), S400, Some("path")),
    ]
}

#[rustfmt::skip]
fn query_bad_cases() -> Vec<Bad> {
    let get = Method::GET;
    let q = |what: &str, query: &str, statuses, field| bad(what, &get, &format!("/api/v1/cases?{query}"), None, statuses, field);
    let g = |what: &str, uri: &str, statuses, field| bad(what, &get, uri, None, statuses, field);
    vec![
        q("unknown status", "status=lost", S422, Some("status")),
        q("unknown priority", "priority=urgent", S422, Some("priority")),
        q("unknown age band", "age_band=99", S422, Some("age_band")),
        q("unknown gender", "gender=x", S422, Some("gender")),
        q("per_page 0", "per_page=0", S422, Some("per_page")),
        q("per_page 201", "per_page=201", S422, Some("per_page")),
        q("per_page as text", "per_page=many", S400, Some("per_page")),
        q("negative page", "page=-1", S400, Some("page")),
        q("page 0", "page=0", S422, Some("page")),
        q("page past the documented maximum", "page=1000000001", S422, Some("page")),
        q("page past usize", "page=11139954080645147262976", S400, Some("page")),
        q("page with a fraction", "page=1.5", S400, Some("page")),
        q("responsible_id in exponent form", "responsible_id=1e2", S400, Some("responsible_id")),
        q("unknown sort", "sort=name", S422, Some("sort")),
        q("unknown order", "order=up", S422, Some("order")),
        q("unparseable opened_from", "opened_from=yesterday", S400, Some("opened_from")),
        q("unparseable opened_to", "opened_to=soon", S400, Some("opened_to")),
        q("responsible_id as text", "responsible_id=ana", S400, Some("responsible_id")),
        q("unassigned not a bool", "unassigned=maybe", S400, Some("unassigned")),
        q("minor not a bool", "minor=2", S400, Some("minor")),
        q("unknown parameter", "colour=red", S400, Some("colour")),
        g("responsibles: active not a bool", "/api/v1/responsibles?active=maybe", S400, Some("active")),
        g("responsibles: unknown parameter", "/api/v1/responsibles?agency=x", S400, Some("agency")),
        g("unknown view", "/api/v1/views/nope", S404, None),
        g("rows: unknown view", "/api/v1/rows/nope", S404, None),
        g("rows: a view that is not UTF-8", "/api/v1/rows/age_g%80", S400, Some("path")),
        g("rows: unparseable from", "/api/v1/rows/reports?from=yesterday", S400, Some("from")),
        g("rows: to before from", "/api/v1/rows/reports?from=2000&to=1000", S400, Some("to")),
        g("rows: unknown zone", "/api/v1/rows/reports?tz=Mars/Olympus", S400, Some("tz")),
        g("rows: unknown bucket", "/api/v1/rows/reports?bucket=week", S400, Some("bucket")),
        g("rows: unknown gender", "/api/v1/rows/reports?gender=x", S422, Some("gender")),
        g("rows: unknown split", "/api/v1/rows/reports?split_by=colour", S422, Some("split_by")),
        g("rows: unknown timezone beside an empty tz", "/api/v1/rows/reports?tz=&timezone=AAA", S400, Some("timezone")),
    ]
}

#[rustfmt::skip]
fn grafana_bad_cases() -> Vec<Bad> {
    let post = Method::POST;
    let g = |what: &str, uri: &str, body: &str, statuses, field| bad(what, &post, uri, Some(body.to_string()), statuses, field);
    vec![
        g("query: malformed JSON", "/grafana/query", "{\"targets\": [", S400, None),
        g("query: targets as text", "/grafana/query", r#"{"targets":"kpi"}"#, S4XX, Some("targets")),
        g("query: unknown metric", "/grafana/query", r#"{"targets":[{"target":"nope"}]}"#, S422, Some("targets[0].target")),
        g("query: bad range", "/grafana/query", r#"{"range":{"from":"x","to":"y"},"targets":[]}"#, S400, Some("range.from")),
        g("query: range to before from", "/grafana/query", r#"{"range":{"from":2000,"to":1000},"targets":[]}"#, S400, Some("range.to")),
        g("query: unknown zone", "/grafana/query", r#"{"timezone":"Mars/Olympus","targets":[]}"#, S400, Some("timezone")),
        g("query: unknown split", "/grafana/query", r#"{"targets":[{"target":"reports","payload":{"split_by":"x"}}]}"#, S422, Some("targets[0].payload.split_by")),
        g("query: bad ad-hoc operator", "/grafana/query", r#"{"targets":[],"filters":[{"key":"gender","operator":"<","value":"x"}]}"#, S422, Some("filters")),
        g("payload options: unknown payload", "/grafana/metric-payload-options", r#"{"name":"nope"}"#, S422, Some("name")),
        g("payload options: unknown metric", "/grafana/metric-payload-options", r#"{"metric":"nope","name":"gender"}"#, S422, Some("metric")),
        g("variable: unknown", "/grafana/variable", r#"{"payload":{"target":"nope"}}"#, S422, Some("payload.target")),
        g("tag values: unknown key", "/grafana/tag-values", r#"{"key":"colour"}"#, S422, Some("key")),
        g("tag values: key as number", "/grafana/tag-values", r#"{"key":5}"#, S4XX, Some("key")),
        g("tag values: body a string", "/grafana/tag-values", r#""targets""#, S422, Some("body")),
        g("query: a regex filter value as a number", "/grafana/query", r#"{"targets":[],"filters":[{"key":"priority","operator":"=~","value":0}]}"#, S422, Some("filters")),
        g("rows: from as object", "/api/v1/rows/reports", r#"{"from":{}}"#, S400, Some("from")),
        g("rows: maxDataPoints not a count beside max_points", "/api/v1/rows/reports", r#"{"max_points":"","maxDataPoints":"x"}"#, S400, Some("maxDataPoints")),
        g("query: range as an array", "/grafana/query", r#"{"range":[null,null],"targets":[]}"#, S4XX, Some("range")),
        g("rows: split_by as [null]", "/api/v1/rows/reports", r#"{"split_by":[null]}"#, S400, Some("split_by")),
        g("rows: unknown timezone beside a valid tz", "/api/v1/rows/reports", r#"{"tz":"UTC","timezone":"AAA"}"#, S400, Some("timezone")),
        g("rows: body not an object", "/api/v1/rows/reports", "[1]", S4XX, None),
    ]
}

#[rustfmt::skip]
fn auth_bad_cases() -> Vec<Bad> {
    let post = Method::POST;
    let a = |what: &str, uri: &str, body: &str, statuses, field| bad(what, &post, uri, Some(body.to_string()), statuses, field);
    vec![
        a("session: malformed JSON", "/api/v1/session", "{\"username\"", S400, None),
        a("session: not an object", "/api/v1/session", "\"resp\"", S400, None),
        a("session: username as number", "/api/v1/session", r#"{"username":5,"password":"x"}"#, S400, Some("username")),
        a("session: missing password", "/api/v1/session", r#"{"username":"resp"}"#, S400, Some("password")),
        a("session: unknown field", "/api/v1/session", r#"{"username":"resp","password":"responder-password","remember":true}"#, S400, Some("remember")),
        a("users: malformed JSON", "/api/v1/users", "{", S400, None),
        a("users: unknown role", "/api/v1/users", r#"{"username":"x1","password":"long-enough","role":"root"}"#, S422, Some("role")),
        a("users: role as number", "/api/v1/users", r#"{"username":"x1","password":"long-enough","role":1}"#, S400, Some("role")),
        a("users: missing role", "/api/v1/users", r#"{"username":"x1","password":"long-enough"}"#, S400, Some("role")),
        a("users: short password", "/api/v1/users", r#"{"username":"x1","password":"short","role":"admin"}"#, S422, Some("password")),
        a("users: bad name", "/api/v1/users", r#"{"username":"X 1","password":"long-enough","role":"admin"}"#, S422, Some("username")),
        a("users: duplicate", "/api/v1/users", r#"{"username":"resp","password":"long-enough","role":"admin"}"#, S422, Some("username")),
        a("tokens: missing label", "/api/v1/tokens", "{}", S400, Some("label")),
        a("tokens: label as number", "/api/v1/tokens", r#"{"label":5}"#, S400, Some("label")),
        a("tokens: blank label", "/api/v1/tokens", r#"{"label":"  "}"#, S422, Some("label")),
        bad("tokens: revoke unknown", &Method::DELETE, "/api/v1/tokens/nope", None, S404, None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field_and_never_a_500() {
    let app = App::start().await;
    let s = seed(&app).await;
    let case_version = app.case_version(s.case);
    let other_version = app.responsible_version(s.other);

    let mut failures = Vec::new();
    failures.extend(run_bad(&app, Who::Responder, &report_bad_cases(&s)).await);
    failures.extend(run_bad(&app, Who::Responder, &case_bad_cases(&app, &s)).await);
    failures.extend(run_bad(&app, Who::Responder, &responsible_bad_cases(&app, &s)).await);
    failures.extend(run_bad(&app, Who::Responder, &query_bad_cases()).await);
    failures.extend(run_bad(&app, Who::Reader, &grafana_bad_cases()).await);
    failures.extend(run_bad(&app, Who::Admin, &auth_bad_cases()).await);

    // a JSON body without the JSON content type
    for uri in ["/api/v1/reports", "/api/v1/responsibles"] {
        let mut req = app.authorize(
            request(Method::POST, uri, Some(&report_body().to_string())),
            Who::Responder,
        );
        req.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let r = app.send(req).await;
        if !(r.status.is_client_error() && r.is_error_body()) {
            failures.push(format!("{uri} as text/plain -> {} {}", r.status, r.text));
        }
    }

    // nothing was written by any of them
    let r = app.get(Who::Responder, "/api/v1/cases").await;
    if r.json["total"] != 2 {
        failures.push(format!("bad reports created cases: {}", r.text));
    }
    if app.case_version(s.case) != case_version {
        failures.push("a bad case write changed the case".into());
    }
    if app.responsible_version(s.other) != other_version {
        failures.push("a bad responsible write changed it".into());
    }
    assert!(
        failures.is_empty(),
        "{} bad requests were mishandled:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_nested_field_is_named_with_its_path() {
    let app = App::start().await;
    seed(&app).await;
    let base = report_body();
    let cases = [
        bad(
            "missing first_action.action_type",
            &Method::POST,
            "/api/v1/reports",
            Some(with(&base, "first_action", json!({"notes": "n"}))),
            S4XX,
            Some("first_action.action_type"),
        ),
        bad(
            "unknown field in first_action",
            &Method::POST,
            "/api/v1/reports",
            Some(with(
                &base,
                "first_action",
                json!({"action_type": "note", "colour": 1}),
            )),
            S4XX,
            Some("first_action.colour"),
        ),
    ];
    let failures = run_bad(&app, Who::Responder, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_answer_413_on_every_body_route() {
    let app = App::start().await;
    let s = seed(&app).await;
    let limit = app.state.config.max_body_bytes;
    let big = |prefix: &str| format!("{{{prefix}\"description\":\"{}\"}}", "x".repeat(limit + 10));
    let routes = [
        (Who::Responder, Method::POST, "/api/v1/reports".to_string()),
        (
            Who::Responder,
            Method::PATCH,
            format!("/api/v1/cases/{}", s.case),
        ),
        (
            Who::Responder,
            Method::POST,
            format!("/api/v1/cases/{}/assignment", s.case),
        ),
        (
            Who::Responder,
            Method::POST,
            format!("/api/v1/cases/{}/actions", s.case),
        ),
        (
            Who::Responder,
            Method::POST,
            "/api/v1/responsibles".to_string(),
        ),
        (
            Who::Responder,
            Method::PATCH,
            format!("/api/v1/responsibles/{}", s.other),
        ),
        (Who::Anonymous, Method::POST, "/api/v1/session".to_string()),
        (Who::Admin, Method::POST, "/api/v1/users".to_string()),
        (Who::Admin, Method::POST, "/api/v1/tokens".to_string()),
        (Who::Reader, Method::POST, "/grafana/query".to_string()),
        (Who::Reader, Method::POST, "/grafana/variable".to_string()),
        (Who::Reader, Method::POST, "/grafana/tag-values".to_string()),
        (
            Who::Reader,
            Method::POST,
            "/grafana/metric-payload-options".to_string(),
        ),
        (
            Who::Reader,
            Method::POST,
            "/api/v1/rows/reports".to_string(),
        ),
    ];
    let mut failures = Vec::new();
    for (who, method, uri) in &routes {
        let r = app.call(*who, method.clone(), uri, Some(&big(""))).await;
        if r.status != StatusCode::PAYLOAD_TOO_LARGE || !r.is_error_body() {
            failures.push(format!(
                "{method} {uri}: {} {}",
                r.status,
                r.text.chars().take(200).collect::<String>()
            ));
        }
    }
    // a body of exactly the limit is read (and then judged on its content)
    let fill = limit - r#"{"description":""}"#.len();
    let exact = format!("{{\"description\":\"{}\"}}", "x".repeat(fill));
    assert_eq!(exact.len(), limit);
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            "/api/v1/reports",
            Some(&exact),
        )
        .await;
    if r.status == StatusCode::PAYLOAD_TOO_LARGE || !r.status.is_client_error() {
        failures.push(format!(
            "a body of exactly {limit} bytes: {} {}",
            r.status, r.text
        ));
    }
    // a large body without a Content-Length (streamed) is cut off too
    let stream = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 8192]))),
    );
    let mut req = request(Method::POST, "/api/v1/reports", None);
    *req.body_mut() = axum::body::Body::from_stream(stream);
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let r = app.send(app.authorize(req, Who::Responder)).await;
    if r.status != StatusCode::PAYLOAD_TOO_LARGE {
        failures.push(format!("a streamed 160 KiB body: {} {}", r.status, r.text));
    }
    assert!(
        failures.is_empty(),
        "oversized bodies:\n  {}",
        failures.join("\n  ")
    );
}

/// JSON numbers carry no integer type: `34.0` is 34, and JSON Schema's `integer` (the OpenAPI
/// document's) accepts it. Found by schemathesis: a version sent as `258072.0` was a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_numbers_written_with_a_fraction_are_integers() {
    let app = App::start().await;
    let resp = app
        .create_responsible(json!({"full_name": "Oficial Decimal", "agency": "DINASED"}))
        .await;
    let mut body = report_body();
    body["age"] = json!(34.0);
    body["responsible_id"] = json!(resp as f64);
    let case = app.file_report(body).await;
    let r = app
        .get(Who::Responder, &format!("/api/v1/cases/{case}"))
        .await;
    assert_eq!(r.json["case"]["person"]["age"], 34, "{}", r.text);
    assert_eq!(r.json["case"]["responsible"]["id"], resp, "{}", r.text);
    // in a URL too (found by schemathesis: `/api/v1/responsibles/169.0` and
    // `?responsible_id=169.0` were 400s while the document says `integer`)
    let r = app
        .get(Who::Responder, &format!("/api/v1/cases/{case}.0"))
        .await;
    assert_eq!(r.json["case"]["id"], case, "{}", r.text);
    let r = app
        .get(
            Who::Responder,
            &format!("/api/v1/cases?responsible_id={resp}.0&page=1.0&per_page=50.00"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["items"][0]["id"], case, "{}", r.text);
    let v = app.case_version(case) as f64;
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/cases/{case}"),
            Some(&json!({"version": v, "priority": "critical"}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = app.responsible_version(resp) as f64;
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/responsibles/{resp}"),
            Some(&json!({"version": v, "phone": "+593 2 000 0000"}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // a fraction is still refused, naming the field
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/responsibles/{resp}"),
            Some(&json!({"version": 1.5}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["field"], "version", "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_versions_answer_409_with_the_current_version() {
    let app = App::start().await;
    let s = seed(&app).await;
    // move both rows past version 1
    let v = app.case_version(s.case);
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/cases/{}", s.case),
            Some(&json!({"version": v, "priority": "medium"}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let case_v = app.case_version(s.case);
    let rv = app.responsible_version(s.other);
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/responsibles/{}", s.other),
            Some(&json!({"version": rv, "agency": "ECU 911 Quito"}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resp_v = app.responsible_version(s.other);

    let stale = [
        (
            Method::PATCH,
            format!("/api/v1/cases/{}", s.case),
            Some(json!({"version": case_v - 1, "status": "in_progress"}).to_string()),
            case_v,
        ),
        (
            Method::PATCH,
            format!("/api/v1/cases/{}", s.case),
            Some(json!({"version": case_v + 7, "priority": "low"}).to_string()),
            case_v,
        ),
        (
            Method::PATCH,
            format!("/api/v1/cases/{}", s.case),
            Some(json!({"version": -1, "priority": "low"}).to_string()),
            case_v,
        ),
        (
            Method::POST,
            format!("/api/v1/cases/{}/assignment", s.case),
            Some(json!({"version": case_v - 1, "responsible_id": s.other}).to_string()),
            case_v,
        ),
        (
            Method::PATCH,
            format!("/api/v1/responsibles/{}", s.other),
            Some(json!({"version": resp_v - 1, "agency": "X"}).to_string()),
            resp_v,
        ),
        (
            Method::DELETE,
            format!("/api/v1/responsibles/{}?version={}", s.other, resp_v - 1),
            None,
            resp_v,
        ),
    ];
    for (method, uri, body, current) in stale {
        let r = app
            .call(Who::Responder, method.clone(), &uri, body.as_deref())
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{method} {uri} {body:?}: {}",
            r.text
        );
        assert_eq!(
            r.json["current_version"], current,
            "{method} {uri}: {}",
            r.text
        );
        assert_eq!(r.field(), Some("version"), "{}", r.text);
        assert!(r.is_error_body(), "{}", r.text);
    }
    assert_eq!(
        app.case_version(s.case),
        case_v,
        "a stale write changed the case"
    );
    assert_eq!(app.responsible_version(s.other), resp_v);

    // the current version still works
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{}/assignment", s.case),
            Some(&json!({"version": case_v, "responsible_id": s.other}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A responder adds sightings; the case lists them newest first (by when the person was seen,
/// not when they were written), with every field, and the views do not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_are_listed_newest_first_and_move_no_view() {
    let app = App::start().await;
    let s = seed(&app).await;
    let before = app.get(Who::Responder, "/api/v1/views").await;
    let uri = format!("/api/v1/cases/{}/sightings", s.case);
    // seen earlier than the seeded one (16:45), written later
    let r = app
        .call(
            Who::Admin,
            Method::POST,
            &uri,
            Some(r#"{"seen_at":"2026-11-20T15:10:00-05:00","place":"  Plaza Grande  "}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/cases/{}", s.case).as_str())
    );
    let list = r.json["sightings"].as_array().expect("sightings").clone();
    let places: Vec<&str> = list.iter().filter_map(|x| x["place"].as_str()).collect();
    assert_eq!(places, [SIGHTING_PLACE, "Plaza Grande"], "{}", r.text);
    let first = &list[0];
    assert_eq!(first["seen_at"], "2026-11-20T16:45:00.000");
    assert_eq!(first["source"], "responder");
    assert_eq!(first["version"], 1);
    assert_eq!(first["reporter_name"], SIGHTING_REPORTER);
    assert_eq!(first["reporter_phone"], SIGHTING_PHONE);
    assert_eq!(first["description"], SIGHTING_DESCRIPTION);
    assert_eq!(first["latitude"], "-0.123457");
    assert_eq!(first["longitude"], "-78.654321");
    assert_eq!(list[1]["seen_at"], "2026-11-20T15:10:00.000");
    assert!(list[1].get("reporter_name").is_none(), "{}", r.text);
    // a sighting is not an action, and no view counts it
    let after = app.get(Who::Responder, "/api/v1/views").await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["tick", "positions"] {
            if let Some(m) = v.as_object_mut() {
                m.remove(k);
            }
        }
        v
    };
    assert_eq!(strip(&before.json), strip(&after.json));
    assert!(after.json["views"]["row_counts"]
        .get("case_sightings")
        .is_none());
    // the count, in the case and in lists (readers too: a count names nobody), at the same tick
    assert_eq!(r.json["case"]["sightings"], 2, "{}", r.text);
    for who in [Who::Responder, Who::Reader] {
        let page = app.get(who, "/api/v1/cases?per_page=200").await;
        let items = page.json["items"].as_array().expect("items");
        let count = |id: i64| {
            items
                .iter()
                .find(|c| c["id"] == id)
                .map(|c| c["sightings"].clone())
        };
        assert_eq!(count(s.case), Some(json!(2)), "{}", page.text);
        assert!(
            items
                .iter()
                .filter(|c| c["id"] != s.case)
                .all(|c| c["sightings"] == 0),
            "{}",
            page.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_answer_404() {
    let app = App::start().await;
    let s = seed(&app).await;
    let missing = 999_999;
    let cases = [
        (Method::GET, format!("/api/v1/cases/{missing}"), None),
        (Method::GET, "/api/v1/cases/-1".to_string(), None),
        (
            Method::PATCH,
            format!("/api/v1/cases/{missing}"),
            Some(json!({"version": 1, "status": "in_progress"}).to_string()),
        ),
        (
            Method::POST,
            format!("/api/v1/cases/{missing}/assignment"),
            Some(json!({"version": 1, "responsible_id": s.other}).to_string()),
        ),
        (
            Method::POST,
            format!("/api/v1/cases/{missing}/actions"),
            Some(json!({"action_type": "note"}).to_string()),
        ),
        (
            Method::POST,
            format!("/api/v1/cases/{missing}/sightings"),
            Some(json!({"seen_at": "2026-11-20T15:00", "place": "X"}).to_string()),
        ),
        (
            Method::PATCH,
            format!("/api/v1/responsibles/{missing}"),
            Some(json!({"version": 1, "agency": "X"}).to_string()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/responsibles/{missing}?version=1"),
            None,
        ),
        (Method::GET, "/api/v1/views/nope".to_string(), None),
        (Method::GET, "/api/v1/rows/nope".to_string(), None),
        (
            Method::DELETE,
            "/api/v1/tokens/0123456789ab".to_string(),
            None,
        ),
    ];
    for (method, uri, body) in cases {
        let who = if uri.contains("tokens") {
            Who::Admin
        } else {
            Who::Responder
        };
        let r = app.call(who, method.clone(), &uri, body.as_deref()).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            r.text
        );
        assert!(r.is_error_body(), "{method} {uri}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transitions_and_inactive_responsibles_answer_422() {
    let app = App::start().await;
    let s = seed(&app).await;
    let uri = format!("/api/v1/cases/{}", s.case);
    let patch =
        |status: &str| json!({"version": app.case_version(s.case), "status": status}).to_string();
    let r = app
        .call(Who::Responder, Method::PATCH, &uri, Some(&patch("closed")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for to in ["in_progress", "found_alive", "found_deceased"] {
        let r = app
            .call(Who::Responder, Method::PATCH, &uri, Some(&patch(to)))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "closed -> {to}: {}",
            r.text
        );
        assert_eq!(r.field(), Some("status"), "{}", r.text);
    }
    // a closed case cannot be assigned
    let body = json!({"version": app.case_version(s.case), "responsible_id": s.other});
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("{uri}/assignment"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // reopened, it can; but not to an inactive responsible
    let r = app
        .call(Who::Responder, Method::PATCH, &uri, Some(&patch("open")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = json!({"version": app.case_version(s.case), "responsible_id": s.inactive});
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("{uri}/assignment"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.field(), Some("responsible_id"), "{}", r.text);

    // deactivating the current responsible blocks new assignments to it, not reads
    let v = app.responsible_version(s.other);
    let r = app
        .call(
            Who::Responder,
            Method::DELETE,
            &format!("/api/v1/responsibles/{}?version={v}", s.other),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = json!({"version": app.case_version(s.case), "responsible_id": s.other});
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("{uri}/assignment"),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.field(), Some("responsible_id"), "{}", r.text);
    let r = app.get(Who::Reader, &uri).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// Authorization

/// What a caller must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 2xx.
    Success,
    /// Exactly this status.
    Status(u16),
    /// A 4xx other than 401 and 403 (the WebSocket upgrade is missing).
    NoUpgrade,
}

impl Expect {
    fn of(access: Access, who: Who) -> Expect {
        match (access, who) {
            (Access::Public, _) => Expect::Success,
            (Access::PublicForm, _) => Expect::Status(303),
            (_, Who::Anonymous) => Expect::Status(401),
            (Access::Read, _) => Expect::Success,
            (Access::Stream, _) => Expect::NoUpgrade,
            (Access::Write, Who::Reader) => Expect::Status(403),
            (Access::Write, _) => Expect::Success,
            (Access::Admin, Who::Admin) => Expect::Success,
            (Access::Admin, _) => Expect::Status(403),
        }
    }

    fn accepts(self, status: StatusCode) -> bool {
        match self {
            Expect::Success => status.is_success(),
            Expect::Status(s) => status.as_u16() == s,
            Expect::NoUpgrade => {
                status.is_client_error() && status.as_u16() != 401 && status.as_u16() != 403
            }
        }
    }

    fn label(self) -> String {
        match self {
            Expect::Success => "2xx".into(),
            Expect::Status(s) => s.to_string(),
            Expect::NoUpgrade => "4xx".into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_covers_every_route_and_caller() {
    let app = App::start().await;
    let seeded = seed(&app).await;
    let spare = app
        .create_responsible(json!({"full_name": "Spare Contact", "agency": "Spare"}))
        .await;
    let routes = routes();
    let mut table = Vec::new();
    let mut failed = false;
    for r in &routes {
        let mut cells = Vec::new();
        for who in Who::ALL {
            let expect = Expect::of(r.access, who);
            let uri = fill(&app, &seeded, spare, r.uri);
            let body = r.body.map(|b| fill(&app, &seeded, spare, b));
            // a fresh session per call: DELETE /api/v1/session ends the one it is sent with
            let cookie = match who {
                Who::Admin => app.sign_in(support::ADMIN.0, support::ADMIN.1).await,
                Who::Responder => app.sign_in(RESPONDER_USER, RESPONDER_PW).await,
                _ => String::new(),
            };
            let mut req = request(r.method.clone(), &uri, body.as_deref());
            if r.access == Access::PublicForm {
                req.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            let req = support::authorize_with(req, who, &app.reader_token, &cookie);
            let reply = app.send(req).await;
            let ok = expect.accepts(reply.status) && !reply.status.is_server_error();
            failed |= !ok;
            cells.push(if ok {
                format!("{}", reply.status.as_u16())
            } else {
                format!("{}!={}", reply.status.as_u16(), expect.label())
            });
            if !ok {
                eprintln!(
                    "{} {} as {}: {} {}",
                    r.method,
                    uri,
                    who.label(),
                    reply.status,
                    reply.text.chars().take(200).collect::<String>()
                );
            }
        }
        table.push((format!("{} {}", r.method, r.template), cells));
    }
    let width = table.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = format!("{:width$}", "route");
    for who in Who::ALL {
        out.push_str(&format!(" {:>10}", who.label()));
    }
    for (name, cells) in &table {
        out.push_str(&format!("\n{name:width$}"));
        for c in cells {
            out.push_str(&format!(" {c:>10}"));
        }
    }
    // shown by the harness when the test fails, or with --nocapture
    println!("authorization matrix (got!=want):\n{out}");
    assert!(!failed, "authorization matrix (got!=want):\n{out}");
    // every route of the router is in the matrix: an unknown path is a 404, not a route
    assert_eq!(
        routes.len(),
        47,
        "update the matrix when routes change:\n{out}"
    );
}

/// An app with a seeded case and a spare contact, the OpenAPI document it serves, and the routes
/// whose operation documents a request body (with that body's schema entry).
async fn documented_bodies() -> (App, Seeded, i64, Vec<(Route, Value)>) {
    let app = App::start().await;
    let seeded = seed(&app).await;
    let spare = app
        .create_responsible(json!({"full_name": "Spare Contact", "agency": "Spare"}))
        .await;
    let doc = app.get(Who::Anonymous, "/api/v1/openapi.json").await.json;
    let routes = routes()
        .into_iter()
        .filter_map(|r| {
            let body = doc["paths"][r.template][r.method.as_str().to_lowercase()]
                .get("requestBody")?
                .clone();
            Some((r, body))
        })
        .collect();
    (app, seeded, spare, routes)
}

/// `method uri` with `body` (none: no body at all) as a freshly signed-in admin.
async fn as_admin(app: &App, method: &Method, uri: &str, body: Option<&str>) -> Reply {
    let cookie = app.sign_in(support::ADMIN.0, support::ADMIN.1).await;
    let req = support::authorize_with(
        request(method.clone(), uri, body),
        Who::Admin,
        &app.reader_token,
        &cookie,
    );
    app.send(req).await
}

/// What the OpenAPI document says of a body is what the server does with a missing one: a body
/// it calls required is refused when absent (schemathesis' ST201 found `POST /api/v1/rows/{view}`
/// answering 200 to an empty POST while the document required a body), and an optional one is
/// read as `{}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_body_is_refused_exactly_where_the_document_requires_one() {
    let (app, seeded, spare, routes) = documented_bodies().await;
    let (mut checked, mut wrong) = (0, Vec::new());
    for (r, body) in &routes {
        let required = body["required"].as_bool().unwrap_or(false);
        let uri = fill(&app, &seeded, spare, r.uri);
        let reply = as_admin(&app, &r.method, &uri, None).await;
        let refused = reply.status.is_client_error()
            && reply.status != StatusCode::UNAUTHORIZED
            && reply.status != StatusCode::FORBIDDEN;
        if required != refused {
            wrong.push(format!(
                "{} {}: the body is {} but no body got {}: {}",
                r.method,
                r.template,
                if required { "required" } else { "optional" },
                reply.status,
                reply.text.chars().take(200).collect::<String>()
            ));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 10, "only {checked} routes document a body");
}

/// Every JSON body is an object: serde's derived structs would also take an array of the
/// field values in order, which schemathesis found `POST /grafana/query` answering 200 to
/// (`[null, null]`). Every route that documents a body refuses one with a 422 naming `body`
/// (the Grafana discovery routes document none: they ignore what is sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_is_refused_where_an_object_is_expected() {
    let (app, seeded, spare, with_body) = documented_bodies().await;
    let mut wrong = Vec::new();
    for (r, _) in &with_body {
        let uri = fill(&app, &seeded, spare, r.uri);
        for body in ["[null, null]", "[]", r#"["x", 1, true]"#] {
            let reply = as_admin(&app, &r.method, &uri, Some(body)).await;
            let field = reply.json["field"].as_str().unwrap_or_default().to_string();
            let ok = reply.status == StatusCode::UNPROCESSABLE_ENTITY && field == "body"
                || reply.status == StatusCode::BAD_REQUEST;
            if !ok {
                wrong.push(format!(
                    "{} {} with {body}: {} {}",
                    r.method,
                    r.template,
                    reply.status,
                    reply.text.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    // and inside: a query's targets and filters are objects too (`"targets": [[null, null]]`
    // was answered 200)
    for body in [
        json!({"targets": [[null, null]]}),
        json!({"targets": [{"target": "kpi"}], "filters": [["gender", "=", "female"]]}),
        json!({"targets": [{"target": "kpi"}], "adhocFilters": [[]]}),
    ] {
        let text = body.to_string();
        let r = app
            .call(Who::Reader, Method::POST, "/grafana/query", Some(&text))
            .await;
        if r.status != StatusCode::UNPROCESSABLE_ENTITY {
            wrong.push(format!(
                "POST /grafana/query with {body}: {} {}",
                r.status, r.text
            ));
        }
    }
    assert!(with_body.len() >= 12, "{} routes", with_body.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Reader privacy

/// The personal values found in `text`.
fn leaks(text: &str) -> Vec<&'static str> {
    PERSONAL
        .iter()
        .copied()
        .filter(|p| text.contains(p))
        .collect()
}

/// Every read a reader can make, as (method, uri, body).
fn read_walk(s: &Seeded) -> Vec<(Method, String, Option<String>)> {
    let mut walk = vec![
        (Method::GET, "/api/v1/cases".to_string(), None),
        (
            Method::GET,
            "/api/v1/cases?status=open&sort=age&order=asc".to_string(),
            None,
        ),
        (Method::GET, "/api/v1/cases?minor=true".to_string(), None),
        (Method::GET, format!("/api/v1/cases/{}", s.case), None),
        (Method::GET, format!("/api/v1/cases/{}", s.minor_case), None),
        (Method::GET, "/api/v1/views".to_string(), None),
        (Method::GET, "/api/v1/responsibles".to_string(), None),
        (Method::GET, "/api/v1/session".to_string(), None),
        (Method::GET, "/grafana/".to_string(), None),
        (
            Method::POST,
            "/grafana/metrics".to_string(),
            Some("{}".into()),
        ),
        (
            Method::POST,
            "/grafana/search".to_string(),
            Some("{}".into()),
        ),
        (
            Method::POST,
            "/grafana/tag-keys".to_string(),
            Some("{}".into()),
        ),
    ];
    for v in [
        "age_group",
        "gender",
        "hour_of_day",
        "hourly",
        "cases_by_status",
        "open_by_priority",
        "responsible_load",
        "kpi",
        "row_counts",
    ] {
        walk.push((Method::GET, format!("/api/v1/views/{v}"), None));
    }
    let grafana_views = [
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
        "sensitive_open_cases",
    ];
    for v in grafana_views {
        walk.push((Method::GET, format!("/api/v1/rows/{v}"), None));
        walk.push((
            Method::GET,
            format!("/api/v1/rows/{v}?split_by=gender&bucket=day"),
            None,
        ));
        walk.push((
            Method::POST,
            format!("/api/v1/rows/{v}"),
            Some(r#"{"split_by":"age_band","tz":"UTC"}"#.into()),
        ));
    }
    let targets: Vec<Value> = grafana_views
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"refId": format!("R{i}"), "target": v}))
        .collect();
    walk.push((
        Method::POST,
        "/grafana/query".to_string(),
        Some(json!({"targets": targets}).to_string()),
    ));
    walk.push((
        Method::POST,
        "/grafana/query".to_string(),
        Some(
            json!({"targets": [{"refId": "S", "target": "sensitive_open_cases",
                "payload": {"split_by": "gender"}}]})
            .to_string(),
        ),
    ));
    for name in [
        "gender",
        "age_band",
        "status",
        "priority",
        "bucket",
        "split_by",
        "view",
        "responsible",
    ] {
        walk.push((
            Method::POST,
            "/grafana/variable".to_string(),
            Some(json!({"payload": {"target": name}}).to_string()),
        ));
    }
    for key in ["gender", "age_band", "status", "priority"] {
        walk.push((
            Method::POST,
            "/grafana/tag-values".to_string(),
            Some(json!({"key": key}).to_string()),
        ));
        walk.push((
            Method::POST,
            "/grafana/metric-payload-options".to_string(),
            Some(json!({"metric": "reports", "name": key}).to_string()),
        ));
    }
    walk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_responses_contain_no_personal_values() {
    let app = App::start().await;
    let s = seed(&app).await;

    // control: a responder does see the seeded values, so their absence below means something
    let mut seen = String::new();
    for (method, uri, body) in read_walk(&s) {
        let r = app
            .call(Who::Responder, method, &uri, body.as_deref())
            .await;
        seen.push_str(&r.text);
    }
    let r = app.get(Who::Responder, "/api/v1/responsibles").await;
    seen.push_str(&r.text);
    let missing: Vec<&str> = PERSONAL
        .iter()
        .copied()
        .filter(|p| !seen.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "the responder should see every seeded value; missing {missing:?}"
    );

    let mut failures = Vec::new();
    for (method, uri, body) in read_walk(&s) {
        let r = app
            .call(Who::Reader, method.clone(), &uri, body.as_deref())
            .await;
        if !r.status.is_success() {
            failures.push(format!("{method} {uri}: {} {}", r.status, r.text));
            continue;
        }
        let found = leaks(&r.text);
        if !found.is_empty() {
            failures.push(format!(
                "{method} {uri} leaks {found:?}: {}",
                r.text.chars().take(400).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "reader leaks:\n  {}",
        failures.join("\n  ")
    );

    // structurally: no person, no notes, no contact details, no exact ages
    let r = app
        .get(Who::Reader, &format!("/api/v1/cases/{}", s.case))
        .await;
    assert_eq!(r.json["case"]["person"], Value::Null, "{}", r.text);
    assert_eq!(r.json["case"]["age_band"], "30-44");
    for a in r.json["actions"].as_array().expect("actions") {
        assert_eq!(a["notes"], Value::Null, "{}", r.text);
    }
    // sightings: when and the source; no place, reporter, description or coordinates
    let sightings = r.json["sightings"].as_array().expect("sightings");
    assert_eq!(sightings.len(), 1, "{}", r.text);
    let keys: BTreeSet<&str> = sightings[0]
        .as_object()
        .expect("sighting")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "seen_at", "source", "created_at", "version"]),
        "{}",
        r.text
    );
    let responsible = r.json["case"]["responsible"]
        .as_object()
        .expect("responsible");
    assert!(!responsible.contains_key("phone") && !responsible.contains_key("email"));
    let r = app
        .get(Who::Reader, "/api/v1/rows/sensitive_open_cases")
        .await;
    let rows = r.json.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{}", r.text);
    for row in rows {
        let keys: BTreeSet<&str> = row
            .as_object()
            .expect("row")
            .keys()
            .map(String::as_str)
            .collect();
        for personal in ["full_name", "last_seen_place", "age"] {
            assert!(!keys.contains(personal), "reader row has {personal}: {row}");
        }
    }

    // a Bearer header is judged alone: a reader token next to a responder cookie stays a reader
    let mut req = app.authorize(
        request(Method::GET, &format!("/api/v1/cases/{}", s.case), None),
        Who::Responder,
    );
    let bearer = HeaderValue::from_str(&format!("Bearer {}", app.reader_token)).expect("header");
    req.headers_mut().insert(header::AUTHORIZATION, bearer);
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(leaks(&r.text).is_empty(), "{}", r.text);
    let mut req = app.authorize(
        request(
            Method::POST,
            &format!("/api/v1/cases/{}/actions", s.case),
            Some(r#"{"action_type":"note"}"#),
        ),
        Who::Responder,
    );
    let bearer = HeaderValue::from_str(&format!("Bearer {}", app.reader_token)).expect("header");
    req.headers_mut().insert(header::AUTHORIZATION, bearer);
    assert_eq!(app.send(req).await.status, StatusCode::FORBIDDEN);
    // another scheme is no credential at all, even next to a valid cookie
    let mut req = app.authorize(request(Method::GET, "/api/v1/views", None), Who::Responder);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic cmVzcDpyZXNwb25kZXItcGFzc3dvcmQ="),
    );
    assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);

    // text search would reveal whether a name exists: refused outright
    let r = app.get(Who::Reader, "/api/v1/cases?q=quintanilla").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.get(Who::Reader, "/api/v1/cases?q=").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

/// Serves `app`'s router on a loopback port (for WebSocket clients): its address and task.
async fn serve_on_loopback(app: &App) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    (addr, server)
}

/// A client may send pongs and a close, not megabytes: a message above the stream's bound
/// closes the connection instead of being buffered (tungstenite alone would take 64 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_closes_a_client_that_sends_a_large_message() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let app = App::start().await;
    seed(&app).await;
    let (addr, server) = serve_on_loopback(&app).await;
    let connect = || async {
        let url = format!("ws://{addr}/api/v1/stream");
        let mut req = url.as_str().into_client_request().expect("request");
        let bearer = format!("Bearer {}", app.reader_token);
        req.headers_mut()
            .insert("authorization", bearer.parse().expect("header"));
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("reader connects");
        ws
    };
    // a small message is a sign of life and keeps the connection
    let mut small = connect().await;
    small
        .send(Message::text("x".repeat(1000)))
        .await
        .expect("sent");
    // a large one ends it: the stream closes (a close frame, an error or the end)
    let mut large = connect().await;
    let _ = large.send(Message::text("x".repeat(100 * 1024))).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match large.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "the server kept a client that sent 100 KiB"
    );
    // the small client is still served: it still gets frames (its snapshot, then heartbeats)
    let next = tokio::time::timeout(Duration::from_secs(10), small.next()).await;
    assert!(
        matches!(next, Ok(Some(Ok(Message::Text(_))))),
        "the small client was dropped: {next:?}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_stream_snapshot_contains_no_personal_values() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let app = App::start().await;
    let s = seed(&app).await;
    let (addr, server) = serve_on_loopback(&app).await;

    let url = format!("ws://{addr}/api/v1/stream");
    // no credentials: the handshake is refused
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "an anonymous client must not connect");

    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.reader_token)
            .parse()
            .expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("reader connects");
    let first = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("a first message")
        .expect("open")
        .expect("message");
    let Message::Text(text) = first else {
        panic!("expected a text frame, got {first:?}")
    };
    let snapshot: Value = serde_json::from_str(text.as_str()).expect("json");
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert!(snapshot["rows"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(leaks(text.as_str()).is_empty(), "stream leaks: {text}");

    // a write shows up as a diff and a case notice, neither with personal values
    let r = app
        .call(
            Who::Responder,
            Method::POST,
            &format!("/api/v1/cases/{}/actions", s.case),
            Some(&json!({"action_type": "note", "notes": ACTION_NOTES}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut saw_case = false;
    while !saw_case {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message after the write")
            .expect("open")
            .expect("message");
        if let Message::Text(text) = msg {
            assert!(leaks(text.as_str()).is_empty(), "stream leaks: {text}");
            let v: Value = serde_json::from_str(text.as_str()).expect("json");
            saw_case = v["type"] == "cases"
                && v["changed"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!(s.case)));
        }
    }
    let _ = ws.close(None).await;
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// Probes beyond the table: ordering, shutdown, concurrency, unusual text

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorting_by_priority_descending_puts_the_most_urgent_first() {
    let app = App::start().await;
    let mut ids = BTreeMap::new();
    // filed out of priority order, so opening time cannot produce the expected order by chance
    for p in ["critical", "low", "medium", "high"] {
        let id = app
            .file_report(json!({
                "full_name": format!("Persona {p}"), "gender": "unknown",
                "last_seen_at": "2026-11-20T10:00", "last_seen_place": "Quito", "priority": p,
            }))
            .await;
        ids.insert(p, id);
    }
    let urgent_first = vec![ids["critical"], ids["high"], ids["medium"], ids["low"]];
    let mut least_first = urgent_first.clone();
    least_first.reverse();
    for (query, expected) in [
        ("sort=priority", &urgent_first),
        ("sort=priority&order=desc", &urgent_first),
        ("sort=priority&order=asc", &least_first),
    ] {
        let r = app
            .get(Who::Reader, &format!("/api/v1/cases?{query}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let got: Vec<i64> = r.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["id"].as_i64())
            .collect();
        assert_eq!(&got, expected, "{query} (ids by priority: {ids:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_answer_503_while_stopping() {
    let app = App::start().await;
    let s = seed(&app).await;
    app.state.health.set_stopping();
    let writes = [
        (
            Method::POST,
            "/api/v1/reports".to_string(),
            report_body().to_string(),
        ),
        (
            Method::POST,
            format!("/api/v1/cases/{}/actions", s.case),
            json!({"action_type": "note"}).to_string(),
        ),
        (
            Method::POST,
            "/api/v1/responsibles".to_string(),
            json!({"full_name": "Tarde", "agency": "X"}).to_string(),
        ),
    ];
    for (method, uri, body) in writes {
        let r = app
            .call(Who::Responder, method.clone(), &uri, Some(&body))
            .await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {uri} while stopping: {}",
            r.text
        );
        assert!(r.headers.contains_key(header::RETRY_AFTER));
    }
    // reads keep working while in-flight requests finish
    let r = app.get(Who::Reader, "/api/v1/views").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_with_one_version_let_exactly_one_through() {
    let app = App::start().await;
    let s = seed(&app).await;
    let v = app.case_version(s.case);
    let uri = format!("/api/v1/cases/{}", s.case);
    let mut tasks = Vec::new();
    for (i, p) in ["low", "medium", "high", "critical"]
        .iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let who = if i % 2 == 0 {
            Who::Responder
        } else {
            Who::Admin
        };
        let req = app.authorize(
            request(
                Method::PATCH,
                &uri,
                Some(&json!({"version": v, "priority": p}).to_string()),
            ),
            who,
        );
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let response = router.oneshot(req).await.expect("infallible");
            support::read(response).await
        }));
    }
    let mut statuses = BTreeMap::new();
    for t in tasks {
        let r = t.await.expect("task");
        if r.status == StatusCode::CONFLICT {
            assert_eq!(r.json["current_version"], v + 1, "{}", r.text);
        }
        *statuses.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 1), (409, 7)]));
    assert_eq!(app.case_version(s.case), v + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_text_and_edge_coordinates_round_trip() {
    let app = App::start().await;
    let names = [
        ("Niño José Ñandú 🧭", "Niño José Ñandú 🧭"),
        (
            r#"quote " backslash \ tab	end"#,
            r#"quote " backslash \ tab	end"#,
        ),
        ("line\nbreak", "line\nbreak"),
        ("nul \u{0} inside", "nul \u{0} inside"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("  padded  ", "padded"),
    ];
    let long_name = "ñ".repeat(200);
    let coordinates = [
        (90.0, 180.0, "90.000000", "180.000000"),
        (-90.0, -180.0, "-90.000000", "-180.000000"),
        (0.0, -0.0, "0.000000", "0.000000"),
        (0.000001, -0.000001, "0.000001", "-0.000001"),
        (89.999999, -179.999999, "89.999999", "-179.999999"),
        (12.5, -7.25, "12.500000", "-7.250000"),
    ];
    let mut failures = Vec::new();
    let cases = names
        .iter()
        .map(|(n, want)| (n.to_string(), want.to_string()))
        .chain([(long_name.clone(), long_name.clone())])
        .zip(coordinates.iter().cycle());
    for ((name, want), (lat, lon, lat_text, lon_text)) in cases {
        let body = json!({
            "full_name": name, "gender": "other", "last_seen_at": "2026-11-20T10:00",
            "last_seen_place": name, "latitude": lat, "longitude": lon, "description": name,
        });
        let r = app
            .call(
                Who::Responder,
                Method::POST,
                "/api/v1/reports",
                Some(&body.to_string()),
            )
            .await;
        if r.status != StatusCode::CREATED {
            failures.push(format!("{name:?}: {} {}", r.status, r.text));
            continue;
        }
        let id = r.json["case"]["id"].as_i64().expect("id");
        let r = app
            .get(Who::Responder, &format!("/api/v1/cases/{id}"))
            .await;
        let person = &r.json["case"]["person"];
        for (field, expected) in [
            ("full_name", want.as_str()),
            ("last_seen_place", want.as_str()),
            ("description", want.as_str()),
            ("latitude", lat_text),
            ("longitude", lon_text),
        ] {
            if person[field] != expected {
                failures.push(format!(
                    "{name:?}: {field} came back as {} (want {expected:?})",
                    person[field]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "round trips:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_rejections_use_the_json_error_body() {
    let app = App::start().await;
    seed(&app).await;
    for uri in ["/api/v1/stream", "/api/v1/stream?topics=gossip"] {
        let r = app.get(Who::Reader, uri).await;
        assert!(r.status.is_client_error(), "{uri}: {} {}", r.status, r.text);
        assert!(
            r.is_error_body(),
            "{uri}: {} answers {:?}, not {{error, field}}",
            r.status,
            r.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_not_yet_visible_answers_202_with_a_readable_location() {
    // no wait at all: the write answers before the engine shows it, unless it already does
    let app = App::start_with(|c| c.visible_timeout = Duration::ZERO).await;
    let mut accepted = 0;
    for i in 0..5 {
        let r = app
            .call(
                Who::Responder,
                Method::POST,
                "/api/v1/reports",
                Some(&with(
                    &report_body(),
                    "full_name",
                    json!(format!("Persona {i}")),
                )),
            )
            .await;
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::ACCEPTED,
            "{} {}",
            r.status,
            r.text
        );
        let location = r
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("a Location")
            .to_string();
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
            assert_eq!(r.json["visible"], false, "{}", r.text);
            assert!(
                r.json["tick"].is_u64() && r.json["id"].is_i64(),
                "{}",
                r.text
            );
            assert_eq!(location, format!("/api/v1/cases/{}", r.json["id"]));
        }
        // the Location becomes readable
        let mut status = StatusCode::NOT_FOUND;
        for _ in 0..200 {
            status = app.get(Who::Responder, &location).await.status;
            if status == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, StatusCode::OK, "{location}");
    }
    println!("{accepted} of 5 writes answered 202");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_app_answers_reads_before_any_write() {
    // `App::start` waits for the engine's first, empty tick, as `server::run` does for /readyz
    let app = App::start_with(|c| c.read_timeout = Duration::from_secs(2)).await;
    let mut failures = Vec::new();
    for uri in [
        "/api/v1/views",
        "/api/v1/views/kpi",
        "/api/v1/responsibles",
        "/api/v1/cases",
        "/api/v1/cases/1",
    ] {
        let r = app.get(Who::Reader, uri).await;
        let want_ok = !uri.ends_with("/1");
        let ok = if want_ok {
            r.status == StatusCode::OK
        } else {
            r.status == StatusCode::NOT_FOUND
        };
        if !ok {
            failures.push(format!("{uri}: {} {}", r.status, r.text));
        }
    }
    assert!(
        failures.is_empty(),
        "reads of an empty app:\n  {}",
        failures.join("\n  ")
    );
}

/// `GET path` over a real socket; returns the status code.
async fn http_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: lpm\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_becomes_ready_without_a_first_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = lpm_api::server::ServeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        workers: 1,
        demo: false,
        demo_every: Duration::from_secs(3600),
        secure_cookies: false,
        api: lpm_api::ApiConfig::default(),
        kafka: None,
        capture: None,
        mysql: None,
        sink: None,
        allow_log_cut: false,
        log_segment_bytes: lpm_connectors::log::DEFAULT_SEGMENT_BYTES,
        http: Default::default(),
        checkpoint: Default::default(),
        notify: Default::default(),
        auto_assign: None,
        cluster: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = tokio::spawn(lpm_api::server::run(
        cfg,
        async move {
            let _ = stop_rx.await;
        },
        move |addr| {
            let _ = addr_tx.send(addr);
        },
    ));
    let addr = tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("task")
        .expect("the server listens");
    let mut last = None;
    for _ in 0..100 {
        last = http_status(addr, "/readyz").await;
        if last == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    assert_eq!(last, Some(200), "/readyz of a fresh, empty data directory");
}

/// The engine page's document: sizes that follow the data, for a reader too.
#[tokio::test]
async fn engine_report_shows_state_and_arrangement_sizes() {
    let app = App::start().await;
    let before = app.get(Who::Reader, "/api/v1/engine").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let rows_of = |v: &Value, name: &str| -> i64 {
        v["arrangements"]
            .as_array()
            .expect("arrangements")
            .iter()
            .filter(|a| a["name"] == name)
            .map(|a| a["records"].as_i64().expect("records"))
            .sum()
    };
    let records_before = rows_of(&before.json, "case_records_by_id");
    for i in 0..3 {
        app.file_report(json!({
            "full_name": format!("Engine Page {i}"), "gender": "female",
            "last_seen_at": "2026-11-20T10:00", "last_seen_place": "Quito"
        }))
        .await;
    }
    // the workers publish their tallies after each batch: poll briefly
    let mut after = before;
    for _ in 0..100 {
        after = app.get(Who::Reader, "/api/v1/engine").await;
        if rows_of(&after.json, "case_records_by_id") >= records_before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = &after.json;
    assert!(v["workers"].as_u64().expect("workers") >= 1);
    assert!(v["tick"].as_u64().is_some(), "{v}");
    assert!(
        rows_of(v, "case_records_by_id") >= records_before + 3,
        "three new cases are three more updates in the case arrangement: {v}"
    );
    let persons = v["upsert"]["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == "persons_lost")
        .expect("persons_lost")["rows"]
        .as_u64()
        .expect("rows");
    assert!(persons >= 3, "{v}");
    assert!(v["upsert"]["applied"].as_u64().expect("applied") >= 6);
    let sources = v["sources"].as_array().expect("sources");
    assert_eq!(sources[0]["source"], "embedded-log", "{v}");
    assert!(v["arrangements"]
        .as_array()
        .expect("arrangements")
        .iter()
        .all(|a| a["batches"].as_i64().expect("batches") >= 0
            && a["records"].as_i64().expect("records") >= 0));
}

/// Linking a contact's user: a malformed name is a 422 naming `user`, a well-formed name that
/// is nobody's a 404 (like an unknown contact), an existing user 200.
#[tokio::test]
async fn linking_a_contact_to_a_user_names_what_is_wrong() {
    let app = App::start().await;
    let s = seed(&app).await;
    let path = format!("/api/v1/responsibles/{}/user", s.other);
    let put = |body: &'static str| app.call(Who::Admin, Method::PUT, &path, Some(body));
    for bad in [r#"{"user": ""}"#, r#"{"user": "Not A Name"}"#] {
        let r = put(bad).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert_eq!(r.json["field"], "user", "{}", r.text);
    }
    let r = put(r#"{"user": "nobody.here"}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = put(r#"{"user": "resp"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["user"], "resp");
}
