//! Publishing a case, its public page and its poster, through the app router: publication is a
//! versioned case change, the page needs no sign-in and shows only poster fields (escaped), an
//! unknown, malformed or unpublished id answers the same bytes, the page is rate-limited per
//! client address, and the poster follows the case report's access rules.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};
use support::{request, App, Reply, Who};

const NAME: &str = "<script>alert('x')</script> Ximena Ñuñez";
const REPORTER: &str = "Evaristo Denunciante Público";
const REPORTER_PHONE: &str = "+593 99 555 0101";
const AGENCY_PHONE: &str = "+593 2 600 7000";
const AGENCY_EMAIL: &str = "unidad.reservada@policia.example";
const RESPONSIBLE: &str = "Sargento Reservado Uno";
const NOTES: &str = "Nota interna Quetzal-5521";

async fn publishable(app: &App) -> i64 {
    let resp = app
        .create_responsible(json!({
            "full_name": RESPONSIBLE, "agency": "DINASED", "phone": AGENCY_PHONE, "email": AGENCY_EMAIL,
        }))
        .await;
    let case = app
        .file_report(json!({
            "full_name": NAME, "age": 16, "gender": "female",
            "last_seen_at": "2026-11-20T14:30", "last_seen_place": "Cuenca, Parque Calderón",
            "description": "Chaqueta roja & mochila \"gris\"", "latitude": -2.897, "longitude": -79.004,
            "reporter_name": REPORTER, "reporter_phone": REPORTER_PHONE, "responsible_id": resp,
            "first_action": {"action_type": "note", "notes": NOTES},
        }))
        .await;
    case
}

async fn patch(app: &App, who: Who, case: i64, body: Value) -> Reply {
    app.call(
        who,
        Method::PATCH,
        &format!("/api/v1/cases/{case}"),
        Some(&body.to_string()),
    )
    .await
}

async fn set_public(app: &App, case: i64, public: bool) -> Reply {
    let v = app.case_version(case);
    let r = patch(
        app,
        Who::Responder,
        case,
        json!({"version": v, "public": public}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}

/// `GET path` with no credentials from `ip`.
async fn anonymous(app: &App, path: &str, ip: [u8; 4], accept_language: Option<&str>) -> Reply {
    let mut req = request(Method::GET, path, None);
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 50000))));
    if let Some(l) = accept_language {
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, l.parse().expect("header"));
    }
    app.send(req).await
}

fn path_of(url: &str) -> String {
    let at = url.find("/public/cases/").expect("a public path");
    url[at..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_is_a_versioned_change_and_keeps_its_link() {
    let app = App::start_with(|c| c.public_base_url = "https://lpm.example.org/base".into()).await;
    let case = publishable(&app).await;
    let before = app
        .get(Who::Responder, &format!("/api/v1/cases/{case}"))
        .await;
    assert_eq!(before.json["case"]["public"], false);
    assert_eq!(before.json["case"]["public_url"], Value::Null);
    let v = app.case_version(case);

    // bad input: wrong type, nothing to change, stale version, readers
    let bad = patch(
        &app,
        Who::Responder,
        case,
        json!({"version": v, "public": "yes"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.field(), Some("public"), "{}", bad.text);
    let nothing = patch(&app, Who::Responder, case, json!({"version": v})).await;
    assert_eq!(
        nothing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        nothing.text
    );
    let stale = patch(
        &app,
        Who::Responder,
        case,
        json!({"version": v - 1, "public": true}),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    let reader = patch(
        &app,
        Who::Reader,
        case,
        json!({"version": v, "public": true}),
    )
    .await;
    assert_eq!(reader.status, StatusCode::FORBIDDEN);
    let anon = patch(
        &app,
        Who::Anonymous,
        case,
        json!({"version": v, "public": true}),
    )
    .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);

    let on = set_public(&app, case, true).await;
    assert_eq!(
        on.json["case"]["version"],
        v + 1,
        "versioned like every change"
    );
    assert_eq!(on.json["case"]["public"], true);
    let url = on.json["case"]["public_url"]
        .as_str()
        .expect("a url")
        .to_string();
    let id = url
        .strip_prefix("https://lpm.example.org/base/public/cases/")
        .expect("base + /public/cases/");
    assert_eq!(id.len(), 22);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    // a publication logs no action (the timeline is for what responders did to find someone)
    assert_eq!(on.json["actions"], before.json["actions"]);

    // readers see that it is public, never where (the page shows the name)
    let read = app.get(Who::Reader, &format!("/api/v1/cases/{case}")).await;
    assert_eq!(read.json["case"]["public"], true);
    assert_eq!(read.json["case"]["public_url"], Value::Null);
    let list = app.get(Who::Reader, "/api/v1/cases").await;
    assert!(list.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|c| c["public_url"].is_null()));
    let list = app.get(Who::Responder, "/api/v1/cases").await;
    assert!(list.text.contains(&url), "responders see the url in lists");

    let page = anonymous(&app, &path_of(&url), [10, 9, 0, 1], None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);

    // unpublished: 404; republished: the same link again
    let off = set_public(&app, case, false).await;
    assert_eq!(off.json["case"]["public"], false);
    assert_eq!(off.json["case"]["public_url"], Value::Null);
    let gone = anonymous(&app, &path_of(&url), [10, 9, 0, 1], None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = set_public(&app, case, true).await;
    assert_eq!(again.json["case"]["public_url"], url.as_str());
    let back = anonymous(&app, &path_of(&url), [10, 9, 0, 1], None).await;
    assert_eq!(back.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_page_shows_only_poster_fields_escaped_in_either_language() {
    let app = App::start().await;
    let case = publishable(&app).await;
    let url = set_public(&app, case, true).await.json["case"]["public_url"]
        .as_str()
        .expect("url")
        .to_string();
    let path = path_of(&url);
    let es = anonymous(&app, &path, [10, 9, 0, 2], None).await;
    assert_eq!(es.status, StatusCode::OK);
    let h = |r: &Reply, name: header::HeaderName| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h(&es, header::CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(h(&es, header::CONTENT_SECURITY_POLICY).contains("default-src 'none'"));
    assert_eq!(h(&es, header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(h(&es, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(h(&es, header::CACHE_CONTROL), "no-cache");
    assert!(es.text.contains("<html lang=\"es\">"));
    // escaped, and no script of ours or theirs
    assert!(!es.text.contains("<script"), "{}", es.text);
    assert!(es
        .text
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Ximena Ñuñez"));
    for shown in [
        "16",
        "Cuenca, Parque Calderón",
        "Chaqueta roja &amp; mochila &quot;gris&quot;",
        AGENCY_PHONE,
        "DINASED",
        "2026-11-20 14:30",
    ] {
        assert!(es.text.contains(shown), "{shown} missing");
    }
    for hidden in [
        REPORTER,
        REPORTER_PHONE,
        AGENCY_EMAIL,
        RESPONSIBLE,
        NOTES,
        "2.897",
        "79.004",
    ] {
        assert!(!es.text.contains(hidden), "{hidden} leaked");
    }
    assert!(
        es.text.contains(&format!("action=\"{path}/sightings\"")),
        "the sighting form"
    );
    assert!(es.text.contains("og:title"));
    let en = anonymous(&app, &format!("{path}?lang=en"), [10, 9, 0, 2], None).await;
    assert!(en.text.contains("<html lang=\"en\">") && en.text.contains("Report a sighting"));
    let accept = anonymous(&app, &path, [10, 9, 0, 2], Some("en-GB,en;q=0.9,es;q=0.5")).await;
    assert!(accept.text.contains("<html lang=\"en\">"));
    let ignored = anonymous(
        &app,
        &format!("{path}?lang=fr&utm_source=x"),
        [10, 9, 0, 2],
        None,
    )
    .await;
    assert_eq!(ignored.status, StatusCode::OK);
    assert!(ignored.text.contains("<html lang=\"es\">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_malformed_and_unpublished_ids_answer_the_same_bytes() {
    let app = App::start().await;
    let case = publishable(&app).await;
    let never = publishable(&app).await;
    let url = set_public(&app, case, true).await.json["case"]["public_url"]
        .as_str()
        .expect("url")
        .to_string();
    set_public(&app, case, false).await;
    let unpublished = path_of(&url);
    let paths = [
        unpublished.clone(),
        "/public/cases/AAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "/public/cases/not-an-id".to_string(),
        format!("/public/cases/{never}"),
        format!("/public/cases/{case}"),
        "/public/cases/%3Cscript%3E".to_string(),
    ];
    let mut first: Option<Reply> = None;
    for p in &paths {
        let r = anonymous(&app, p, [10, 9, 0, 3], None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
        let mut headers = r.headers.clone();
        headers.remove(header::DATE);
        match &first {
            None => first = Some(r),
            Some(f) => {
                let mut fh = f.headers.clone();
                fh.remove(header::DATE);
                assert_eq!(r.text, f.text, "{p}: the body differs");
                assert_eq!(headers, fh, "{p}: the headers differ");
            }
        }
    }
    // a case with a public id but never published gets no page either; nor does the poster
    let poster = app
        .get(Who::Responder, &format!("/api/v1/cases/{never}/poster.pdf"))
        .await;
    assert_eq!(poster.status, StatusCode::CONFLICT);
    assert_eq!(poster.json["code"], "not_published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_page_is_rate_limited_per_client_address() {
    let app = App::start().await;
    let limit = lpm_api::public::limiter::RatePolicy::PAGES.max;
    let path = "/public/cases/AAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..limit {
        let r = anonymous(&app, path, [10, 7, 7, 7], None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let over = anonymous(&app, path, [10, 7, 7, 7], None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = over
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    let other = anonymous(&app, path, [10, 7, 7, 8], None).await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "another address has its own budget"
    );
    app.public_clock.advance(Duration::from_secs(61));
    let later = anonymous(&app, path, [10, 7, 7, 7], None).await;
    assert_eq!(later.status, StatusCode::NOT_FOUND, "a new window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poster_is_a_pdf_for_writers_of_a_published_case() {
    let app = App::start().await;
    let case = publishable(&app).await;
    let poster = format!("/api/v1/cases/{case}/poster.pdf");
    let unpublished = app.get(Who::Responder, &poster).await;
    assert_eq!(
        unpublished.status,
        StatusCode::CONFLICT,
        "{}",
        unpublished.text
    );
    assert_eq!(unpublished.json["code"], "not_published");
    set_public(&app, case, true).await;
    for who in [Who::Responder, Who::Admin] {
        let r = app.get(who, &poster).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
        assert!(r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap_or("")
            .contains(&format!("cartel-{case}.pdf")));
        assert!(r.text.starts_with("%PDF"));
    }
    let en = app.get(Who::Responder, &format!("{poster}?lang=en")).await;
    assert!(en.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap_or("")
        .contains(&format!("poster-{case}.pdf")));
    assert_eq!(
        app.get(Who::Reader, &poster).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(Who::Anonymous, &poster).await.status,
        StatusCode::UNAUTHORIZED
    );
    let bad_lang = app.get(Who::Responder, &format!("{poster}?lang=fr")).await;
    assert_eq!(
        (bad_lang.status, bad_lang.field()),
        (StatusCode::BAD_REQUEST, Some("lang"))
    );
    let unknown_param = app.get(Who::Responder, &format!("{poster}?tz=UTC")).await;
    assert_eq!(unknown_param.status, StatusCode::BAD_REQUEST);
    let missing = app
        .get(Who::Responder, "/api/v1/cases/987654321/poster.pdf")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad_id = app.get(Who::Responder, "/api/v1/cases/x/poster.pdf").await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_index_finds_published_cases_from_the_engine() {
    let app = App::start().await;
    let case = publishable(&app).await;
    let url = set_public(&app, case, true).await.json["case"]["public_url"]
        .as_str()
        .expect("url")
        .to_string();
    let id = url.rsplit('/').next().expect("id").to_string();
    // a new index knows nothing the write path told it: its thread must find the case
    let index = lpm_api::public::index::PublicIndex::start(
        app.state.engine.clone(),
        Duration::from_secs(30),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while index.get(&id).is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(index.get(&id), Some(case));
    // and a case published after it started, through the tick subscription
    let later = publishable(&app).await;
    let url2 = set_public(&app, later, true).await.json["case"]["public_url"]
        .as_str()
        .expect("url")
        .to_string();
    let id2 = url2.rsplit('/').next().expect("id").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while index.get(&id2).is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(index.get(&id2), Some(later));
    index.stop();
}

/// `POST path` with `body` as a form (or as `content_type`) and no credentials from `ip`.
async fn post_form(app: &App, path: &str, body: &str, ip: [u8; 4], content_type: &str) -> Reply {
    let mut req = request(Method::POST, path, None);
    *req.body_mut() = axum::body::Body::from(body.to_string());
    req.headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().expect("header"));
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 50000))));
    app.send(req).await
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The status of posting the form `body` to `path` from `ip`.
async fn status(app: &App, path: &str, body: &str, ip: [u8; 4]) -> StatusCode {
    post_form(app, path, body, ip, FORM).await.status
}

/// The case's sightings as a responder sees them, once `count` are visible.
async fn sightings_of(app: &App, case: i64, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = app
            .get(Who::Responder, &format!("/api/v1/cases/{case}"))
            .await;
        let list = r.json["sightings"].as_array().cloned().unwrap_or_default();
        if list.len() >= count || std::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn published_path(app: &App) -> (i64, String) {
    let case = publishable(app).await;
    let url = set_public(app, case, true).await.json["case"]["public_url"]
        .as_str()
        .expect("url")
        .to_string();
    (case, path_of(&url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_sighting_reaches_responders_and_never_readers_or_the_page() {
    let app = App::start().await;
    let (case, path) = published_path(&app).await;
    let action = format!("{path}/sightings");
    let r = post_form(
        &app,
        &action,
        "place=Cuenca%2C+Mercado+10+de+Agosto&seen_at=2026-11-21T09%3A15\
         &description=Con+mochila+gris&contact=%2B593+98+765+4321&website=&lang=en",
        [10, 8, 0, 1],
        FORM,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to = r.headers[header::LOCATION].to_str().expect("location");
    assert_eq!(to, format!("{path}?lang=en&sent=1#sighting"));
    let thanks = anonymous(
        &app,
        to.split('#').next().expect("path"),
        [10, 8, 0, 1],
        None,
    )
    .await;
    assert_eq!(thanks.status, StatusCode::OK);
    assert!(thanks.text.contains("Thank you."), "{}", thanks.text);

    // an e-mail is kept as the reporter's name; no `seen_at` means now
    assert_eq!(
        status(
            &app,
            &action,
            "place=Azogues&description=En+el+bus&contact=vecina%40example.org",
            [10, 8, 0, 1]
        )
        .await,
        StatusCode::SEE_OTHER
    );

    let list = sightings_of(&app, case, 2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let by_place = |p: &str| {
        list.iter()
            .find(|s| s["place"] == p)
            .unwrap_or_else(|| panic!("{p} in {list:?}"))
            .clone()
    };
    let phone = by_place("Cuenca, Mercado 10 de Agosto");
    assert_eq!(phone["source"], "public");
    assert_eq!(phone["seen_at"], "2026-11-21T09:15:00.000");
    assert_eq!(phone["description"], "Con mochila gris");
    assert_eq!(phone["reporter_phone"], "+593 98 765 4321");
    assert_eq!(phone["reporter_name"], Value::Null);
    let mail = by_place("Azogues");
    assert_eq!(mail["reporter_name"], "vecina@example.org");
    assert_eq!(mail["reporter_phone"], Value::Null);
    let now = chrono::Utc::now().naive_utc().and_utc().timestamp_millis();
    let seen = chrono::NaiveDateTime::parse_from_str(
        mail["seen_at"].as_str().expect("seen_at"),
        "%Y-%m-%dT%H:%M:%S%.3f",
    )
    .expect("a wall-clock time")
    .and_utc()
    .timestamp_millis();
    // the server's zone is a few hours from UTC at most; "now" in that wall clock
    assert!((seen - now).abs() < 15 * 3600 * 1000, "{seen} vs {now}");

    // readers: no reporter, no description
    let read = app.get(Who::Reader, &format!("/api/v1/cases/{case}")).await;
    for hidden in ["+593 98 765 4321", "vecina@example.org", "Con mochila gris"] {
        assert!(!read.text.contains(hidden), "{hidden} leaked to readers");
    }
    // the page shows no sighting at all
    let page = anonymous(&app, &path, [10, 8, 0, 2], None).await;
    for hidden in [
        "765 4321",
        "vecina@",
        "Mercado 10 de Agosto",
        "Con mochila gris",
    ] {
        assert!(!page.text.contains(hidden), "{hidden} on the page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_public_sighting_names_the_field_and_keeps_what_was_typed() {
    let app = App::start().await;
    let (case, path) = published_path(&app).await;
    let action = format!("{path}/sightings");
    let cases: [(&str, &str, StatusCode, &[&str]); 5] = [
        (
            "description=Lo+vi+%3Cb%3Ecorriendo%3C%2Fb%3E&place=&lang=es",
            FORM,
            StatusCode::UNPROCESSABLE_ENTITY,
            &[
                "autocomplete=\"off\" value=\"\" aria-invalid=\"true\"",
                "Dónde (es obligatorio)",
                // what was typed is kept, escaped
                "Lo vi &lt;b&gt;corriendo&lt;/b&gt;</textarea>",
            ],
        ),
        (
            "place=Loja&description=x&seen_at=2999-01-01T10%3A00&lang=en",
            "application/x-www-form-urlencoded; charset=UTF-8",
            StatusCode::UNPROCESSABLE_ENTITY,
            &["must not be in the future", "<html lang=\"en\">"],
        ),
        (
            "place=Loja&description=x&seen_at=ayer",
            FORM,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["value=\"ayer\" aria-invalid=\"true\""],
        ),
        (
            r#"{"place":"Loja","description":"x"}"#,
            "application/json",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &["role=\"alert\""],
        ),
        (
            "place=x%00y&description=x",
            FORM,
            StatusCode::UNPROCESSABLE_ENTITY,
            &["caracteres no permitidos"],
        ),
    ];
    for (i, (body, content_type, status, shown)) in cases.into_iter().enumerate() {
        // each from its own address: the limit is 5 per address
        let r = post_form(&app, &action, body, [10, 6, 0, i as u8], content_type).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        for s in shown {
            assert!(r.text.contains(s), "{body}: {s} not in {}", r.text);
        }
        assert!(!r.text.contains("<b>"), "{body}: echoed unescaped");
        assert_eq!(
            r.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{body}"
        );
    }
    // over the size bound: 413 before the form is parsed
    let big = format!(
        "place=Loja&description={}",
        "a".repeat(lpm_api::public::sighting::MAX_BODY)
    );
    let r = post_form(&app, &action, &big, [10, 6, 1, 1], FORM).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    // the honeypot: the same 303 a person gets, nothing stored
    assert_eq!(
        status(
            &app,
            &action,
            "place=Loja&description=spam&website=http%3A%2F%2Fspam.example",
            [10, 6, 1, 2]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    // one good one to know the bad ones had their chance to show up
    assert_eq!(
        status(
            &app,
            &action,
            "place=Gualaceo&description=ok",
            [10, 6, 1, 3]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let list = sightings_of(&app, case, 1).await;
    let places: Vec<&str> = list.iter().filter_map(|s| s["place"].as_str()).collect();
    assert_eq!(places, vec!["Gualaceo"], "only the valid form is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sighting_form_cannot_tell_whether_a_case_exists() {
    let app = App::start().await;
    let (case, path) = published_path(&app).await;
    let never = publishable(&app).await;
    set_public(&app, case, false).await;
    let form = "place=Loja&description=vista";
    let not_found = anonymous(
        &app,
        "/public/cases/AAAAAAAAAAAAAAAAAAAAAA",
        [10, 5, 0, 9],
        None,
    )
    .await
    .text;
    let targets = [
        format!("{path}/sightings"), // unpublished
        "/public/cases/AAAAAAAAAAAAAAAAAAAAAA/sightings".to_string(),
        "/public/cases/not-an-id/sightings".to_string(),
        format!("/public/cases/{never}/sightings"),
        format!("/public/cases/{case}/sightings"),
    ];
    for (i, t) in targets.iter().enumerate() {
        for (body, ct) in [(form, FORM), ("{}", "application/json"), ("", FORM)] {
            let r = post_form(&app, t, body, [10, 5, i as u8, body.len() as u8], ct).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{t} {body}");
            assert_eq!(r.text, not_found, "{t} {body}: the same bytes as any 404");
        }
    }
    // nothing was stored on either case (a 404 answers before any write is submitted)
    for c in [case, never] {
        let r = app.get(Who::Responder, &format!("/api/v1/cases/{c}")).await;
        assert_eq!(r.json["sightings"], json!([]), "case {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_sightings_are_rate_limited_per_client_address() {
    let app = App::start().await;
    let (_, path) = published_path(&app).await;
    let action = format!("{path}/sightings");
    let limit = lpm_api::public::limiter::RatePolicy::SIGHTINGS.max;
    for i in 0..limit {
        // bad forms count too: the limit is on requests, before anything is looked at
        let body = if i % 2 == 0 {
            "place=Loja&description=x"
        } else {
            "place="
        };
        let r = post_form(&app, &action, body, [10, 4, 4, 4], FORM).await;
        assert!(r.status == StatusCode::SEE_OTHER || r.status == StatusCode::UNPROCESSABLE_ENTITY);
    }
    let over = post_form(
        &app,
        &action,
        "place=Loja&description=x",
        [10, 4, 4, 4],
        FORM,
    )
    .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers.get(header::RETRY_AFTER).is_some());
    // unknown ids are limited the same way (no free probing)
    assert_eq!(
        status(
            &app,
            "/public/cases/AAAAAAAAAAAAAAAAAAAAAA/sightings",
            "place=Loja&description=x",
            [10, 4, 4, 4]
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, &action, "place=Loja&description=x", [10, 4, 4, 5]).await,
        StatusCode::SEE_OTHER,
        "another address has its own budget"
    );
    // reading the page is a separate budget
    let page = anonymous(&app, &path, [10, 4, 4, 4], None).await;
    assert_eq!(page.status, StatusCode::OK);
    app.public_clock.advance(Duration::from_secs(601));
    assert_eq!(
        status(&app, &action, "place=Loja&description=x", [10, 4, 4, 4]).await,
        StatusCode::SEE_OTHER,
        "a new window"
    );
}
