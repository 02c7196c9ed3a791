//! Publishing a case: its public page (`GET /public/cases/{public_id}`, no sign-in), the index
//! that finds it, the per-address rate limits, and the sighting form's validation.
//!
//! What a stranger can learn: a page exists only for a published case, under a 128-bit random
//! id ([`lpm_service::sor::public_id`]). An unknown id, a malformed one and the id of a case
//! that is not (or no longer) published all answer the same 404 page, byte for byte, so the
//! page cannot be used to find out whether a case exists. Requests are rate-limited per client
//! address ([`limiter::RatePolicy::PAGES`]). The page shows only what the poster shows
//! ([`lpm_reports::PublicFacts`]); see docs/public-pages.md.

pub mod index;
pub mod limiter;
pub mod page;
pub mod side;
pub mod sighting;
pub mod submit;

pub use side::Public;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lpm_engine::read::CaseDetail;
use lpm_reports::PublicFacts;
use lpm_service::sor::public_id;

use crate::auth::{client_key, ClientAddr};
use crate::extract::Path;
use crate::state::AppState;

/// `<base>/public/cases/{public_id}`: the link a case is shared by.
pub fn public_url(base: &str, public_id: &str) -> String {
    format!("{}/public/cases/{public_id}", base.trim_end_matches('/'))
}

/// The path of a case's page (also the prefix of its sighting form's action).
pub fn public_path(public_id: &str) -> String {
    format!("/public/cases/{public_id}")
}

/// The public routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/public/cases/{public_id}", get(case_page))
        .route(
            "/public/cases/{public_id}/sightings",
            axum::routing::post(submit::post_sighting),
        )
}

/// Headers of every public page: no script at all, styles inline only, forms post here only,
/// never framed, no referrer (the id in the URL is the secret).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// A public page with the headers above.
pub fn html(status: StatusCode, body: String, cache: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// The 404 every unknown, malformed or unpublished id gets.
pub fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page::not_found().to_string(),
        "no-store",
    )
}

/// The 429 a client over its rate limit gets.
pub fn too_many(wait: std::time::Duration) -> Response {
    let mut r = html(
        StatusCode::TOO_MANY_REQUESTS,
        page::too_many().to_string(),
        "no-store",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    r
}

/// What the page and the poster of `d` show, when `d` is published under `public_id` and its
/// person exists.
pub fn facts(d: &CaseDetail, public_id: &str, base: &str) -> Option<PublicFacts> {
    let c = &d.record.case;
    if !c.public || c.public_id.as_deref() != Some(public_id) {
        return None;
    }
    let p = d.record.person.as_ref()?;
    let r = d.record.responsible.as_ref();
    Some(PublicFacts {
        full_name: p.full_name.clone(),
        age: p.age,
        gender: p.gender.clone(),
        description: p.description.clone(),
        last_seen_place: p.last_seen_place.clone(),
        last_seen_at: p.last_seen_at,
        agency: r.map(|r| r.agency.clone()),
        phone: r.and_then(|r| r.phone.clone()),
        public_url: public_url(base, public_id),
    })
}

/// The case id and page facts of a well-formed, indexed, published `public_id`, read at the
/// current tick.
pub async fn published(state: &AppState, public_id: &str) -> Option<(i64, PublicFacts)> {
    if !public_id::well_formed(public_id) {
        return None;
    }
    let case_id = state.public.index.get(public_id)?;
    let st = state.clone();
    let detail = state
        .blocking(move || {
            st.engine
                .case(case_id, st.config.read_timeout)
                .map_err(crate::state::engine_error)
        })
        .await
        .ok()??;
    facts(&detail, public_id, &state.config.public_base_url).map(|f| (case_id, f))
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The page of `facts` in the request's language, with `form`; `public_id` names the form's
/// action.
pub fn page_response(
    status: StatusCode,
    facts: &PublicFacts,
    public_id: &str,
    lang: lpm_reports::Lang,
    form: &page::FormState,
) -> Response {
    let action = format!("{}/sightings", public_path(public_id));
    let mut r = html(status, page::render(facts, &action, lang, form), "no-cache");
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    r
}

/// The language of a request: `lang` (query or form field), then `Accept-Language`.
pub fn request_language(lang: Option<&str>, headers: &HeaderMap) -> lpm_reports::Lang {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    page::language(lang, accept)
}

/// The public page of a published case (no sign-in; see the module doc). Not in the OpenAPI
/// document, which describes the JSON API: like the web UI, this is a page for people
/// (docs/public-pages.md).
pub async fn case_page(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(public_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(wait) = state.public.pages.check(&client_key(addr)) {
        return too_many(wait);
    }
    let Some((_, facts)) = published(&state, &public_id).await else {
        return not_found();
    };
    let lang = request_language(query_param(query.as_deref(), "lang").as_deref(), &headers);
    // `?sent=1` is where a stored sighting redirects to (post/redirect/get)
    let form = if query_param(query.as_deref(), "sent").as_deref() == Some("1") {
        page::FormState::Sent
    } else {
        page::FormState::Empty
    };
    page_response(StatusCode::OK, &facts, &public_id, lang, &form)
}
