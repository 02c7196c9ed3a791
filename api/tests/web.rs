//! The web UI routes, driven in-process like `router.rs`: `/` and every `/assets/...` file with
//! its content type and security headers, conditional requests (ETag -> 304), unknown assets,
//! and that unknown `/api/...` paths still answer the API's JSON 404. The i18n key checks are
//! unit tests in `api/src/web/i18n_tests.rs`.
//!
//! Run with `cargo test --release -p lpm-api --test web`.

mod support;

use axum::http::{header, HeaderValue, Method, StatusCode};
use lpm_api::web::{ASSETS, CSP};
use support::{request, App, Who};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_every_asset_have_their_type_and_security_headers() {
    let app = App::start().await;
    let index = app.get(Who::Anonymous, "/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(
        index.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(index
        .text
        .contains(r#"<script type="module" src="/assets/app.js">"#));
    assert!(
        !index.text.contains("<script>") && !index.text.contains(" style="),
        "no inline script or style: the CSP would block them"
    );
    for a in ASSETS {
        let uri = if a.name == "index.html" {
            "/".to_string()
        } else {
            format!("/assets/{}", a.name)
        };
        let r = app.get(Who::Anonymous, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.headers[header::CONTENT_TYPE], a.content_type, "{uri}");
        assert_eq!(r.headers[header::CONTENT_SECURITY_POLICY], CSP, "{uri}");
        assert_eq!(
            r.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{uri}"
        );
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache", "{uri}");
        assert_eq!(r.text.as_bytes(), a.body, "{uri}");
        let etag = r.headers[header::ETAG].to_str().expect("etag").to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{uri}: {etag}"
        );
    }
    let js = app.get(Who::Anonymous, "/assets/app.js").await;
    assert_eq!(
        js.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let css = app.get(Who::Anonymous, "/assets/app.css").await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_forbids_inline_script_and_framing() {
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(CSP.contains(part), "{part}");
    }
    assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_etag_answers_304_and_a_stale_one_the_file() {
    let app = App::start().await;
    let first = app.get(Who::Anonymous, "/assets/i18n.js").await;
    let etag = first.headers[header::ETAG].clone();
    let mut again = request(Method::GET, "/assets/i18n.js", None);
    again
        .headers_mut()
        .insert(header::IF_NONE_MATCH, etag.clone());
    let r = app.send(again).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.text.is_empty());
    assert_eq!(r.headers[header::ETAG], etag);
    let mut stale = request(Method::GET, "/assets/i18n.js", None);
    stale
        .headers_mut()
        .insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0-0\""));
    let r = app.send(stale).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, first.text);
    // different files, different tags
    let other = app.get(Who::Anonymous, "/assets/app.js").await;
    assert_ne!(other.headers[header::ETAG], etag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_assets_and_api_paths_are_json_404s() {
    let app = App::start().await;
    for uri in [
        "/assets/nope.js",
        "/assets/..%2Fmod.rs",
        "/api/v1/nope",
        "/api/v2/cases",
        "/api/v1/cases/1/nope",
        "/api",
    ] {
        let r = app.get(Who::Responder, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.is_error_body(), "{uri}: {}", r.text);
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("application/json")),
            "{uri}"
        );
    }
    // the API is untouched: a known route still answers JSON
    let s = app.get(Who::Responder, "/api/v1/session").await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.json["user"], "resp");
}
