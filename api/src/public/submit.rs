//! `POST /public/cases/{public_id}/sightings`: the public page's "report a sighting" form,
//! stored as a `public` sighting of the case for responders to triage.
//!
//! The order decides what a stranger can learn: the per-address limit first
//! ([`super::limiter::RatePolicy::SIGHTINGS`]), then the id (an unknown, malformed or
//! unpublished id answers the one 404 page whatever the form holds), then the form. A stored
//! sighting answers 303 to the page with a thank-you (post/redirect/get: reloading the answer
//! does not send it twice); a refused form answers 422 with the page again, the field named
//! and what was typed kept. A filled-in honeypot field gets the same 303 a person gets, and
//! nothing is stored. The sender's contact goes to `reporter_phone` when it is a phone number,
//! else to `reporter_name`; the page never shows either.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lpm_engine::model::SightingSource;
use lpm_service::sor::ledger::{Command, NewSighting};

use super::page::{FormState, Problem};
use super::sighting::{self, SightingError, MAX_BODY};
use super::{not_found, page_response, public_path, published, request_language, too_many};
use crate::auth::{client_key, ClientAddr};
use crate::error::ApiError;
use crate::extract::Path;
use crate::state::AppState;
use crate::times::{wall_clock_now, FUTURE_SKEW_MS};

/// The ledger's actor for sightings from the public page.
pub const ACTOR: &str = "public page";

/// The route (see the module doc).
pub async fn post_sighting(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(public_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(wait) = state.public.sightings.check(&client_key(addr)) {
        return too_many(wait);
    }
    let Some((case_id, facts)) = published(&state, &public_id).await else {
        return not_found();
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        let lang = request_language(None, &headers);
        let form = FormState::Refused {
            problem: Problem::TooLarge,
            typed: Default::default(),
        };
        return page_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &facts,
            &public_id,
            lang,
            &form,
        );
    };
    let lang = request_language(sighting::lang(&body).as_deref(), &headers);
    let refuse = |status: StatusCode, problem: Problem| {
        let form = FormState::Refused {
            problem,
            typed: sighting::typed(&body),
        };
        page_response(status, &facts, &public_id, lang, &form)
    };
    if !is_form(&headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Problem::Field {
                field: "content-type",
                message: "expected application/x-www-form-urlencoded",
            },
        );
    }
    let tz = state.config.tz;
    let now = wall_clock_now(&tz, chrono::Utc::now().timestamp_millis());
    let form = match sighting::parse(&body, &tz) {
        Ok(f) => f,
        Err(SightingError::Bot) => {
            tracing::info!(
                case_id,
                "A public sighting filled the honeypot field: dropped."
            );
            return sent(&public_id, lang);
        }
        Err(SightingError::TooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, Problem::TooLarge)
        }
        Err(SightingError::Invalid { field, message }) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                Problem::Field { field, message },
            )
        }
    };
    let seen_at = form.seen_at.unwrap_or(now);
    if seen_at > now + FUTURE_SKEW_MS {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            Problem::Field {
                field: "seen_at",
                message: "must not be in the future",
            },
        );
    }
    let (reporter_name, reporter_phone) = match form.contact {
        Some(c) if sighting::is_phone(&c) => (None, Some(c)),
        c => (c, None),
    };
    let cmd = Command::AddSighting {
        case_id,
        sighting: Box::new(NewSighting {
            seen_at,
            place: form.place,
            latitude: None,
            longitude: None,
            description: Some(form.description),
            reporter_name,
            reporter_phone,
            source: SightingSource::Public,
        }),
    };
    let written: Result<_, ApiError> = async {
        state.refuse_writes_when_stopping()?;
        Ok(state.writer()?.submit(cmd, ACTOR.into()).await?)
    }
    .await;
    match written {
        // counted by `lpm_http_requests_total{route,status}` (303, 422, 429, 503)
        Ok(_) => sent(&public_id, lang),
        // deleted since the lookup: the same 404 as any unknown id
        Err(ApiError::NotFound(_)) => not_found(),
        Err(ApiError::Unprocessable { field, message }) => {
            tracing::warn!(case_id, ?field, %message, "The log refused a public sighting.");
            refuse(StatusCode::UNPROCESSABLE_ENTITY, Problem::Unavailable)
        }
        Err(e) => {
            tracing::warn!(case_id, error = %e, "A public sighting could not be written.");
            let mut r = refuse(StatusCode::SERVICE_UNAVAILABLE, Problem::Unavailable);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
    }
}

/// Browsers post the form as `application/x-www-form-urlencoded` (with or without a charset).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// 303 to the page with its thank-you, in the sender's language.
fn sent(public_id: &str, lang: lpm_reports::Lang) -> Response {
    let to = format!(
        "{}?lang={}&sent=1#sighting",
        public_path(public_id),
        lang.code()
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
