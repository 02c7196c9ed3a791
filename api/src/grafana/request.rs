//! Pieces every Grafana handler shares: a lenient JSON body extractor, the per-view knobs
//! (grain, zone, filters, split) read from a payload or a parameter map, and the response
//! wrapper that adds `X-Lpm-Tick`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono_tz::Tz;
use lpm_engine::Tick;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::cases::{CaseSource, SensitiveCase};
use super::catalog::Dim;
use super::params::{opt_text, parse_bucket, parse_tz, DimFilter, Grain};
use crate::error::ApiError;

/// The response header carrying the engine tick the data was read at.
pub const TICK_HEADER: HeaderName = HeaderName::from_static("x-lpm-tick");

/// A JSON body that tolerates a missing `Content-Type` and an empty body (read as `{}`), as
/// sent by Grafana's `/metrics` and `/tag-keys` calls. Errors name the field (422) or are a 400
/// for malformed JSON.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    field: None,
                    message: e.body_text(),
                }
            }
        })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let Json(crate::extract::Object(value)) =
            Json::<crate::extract::Object<T>>::from_bytes(body)?;
        Ok(JsonBody(value))
    }
}

/// A list of objects that may come as `null` (Grafana sends `"filters": null` at times): read
/// as empty. An item that is an array of field values
/// (which serde's derived structs would take, in field order) is refused like any other wrong
/// type (schemathesis: `"targets": [[null, null]]` was answered 200).
pub fn nullable_objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Option::<Vec<crate::extract::Object<T>>>::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|crate::extract::Object(item)| item)
        .collect())
}

/// A simpod payload: an object, a JSON text of one (older plugin versions), or empty.
pub fn payload_map(value: &Value, field: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        Value::String(s) => serde_json::from_str::<Map<String, Value>>(s)
            .map_err(|e| ApiError::invalid(field, format!("payload is not a JSON object: {e}"))),
        other => Err(ApiError::invalid(
            field,
            format!("expected an object, got {other}"),
        )),
    }
}

/// The knobs of one view read from a payload or parameter map.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// An explicit grain.
    pub bucket: Option<Grain>,
    /// The zone of the periods and of `*_iso` times.
    pub tz: Tz,
    /// One line per value of this dimension.
    pub split: Option<Dim>,
    /// Dimension filters (the map's, ANDed with what the caller added before).
    pub filter: DimFilter,
}

/// Reads `bucket`, `tz` (or `timezone`), `split_by` and the dimension filters from `map`.
/// `field` turns a key into the name reported in errors. A `tz` of `dashboard` (or none) is
/// `fallback`; `server` is `server`.
pub fn read_knobs(
    map: &Map<String, Value>,
    field: &dyn Fn(&str) -> String,
    fallback: Tz,
    server: Tz,
    base: DimFilter,
) -> Result<Knobs, ApiError> {
    let bucket = parse_bucket(
        opt_text(map.get("bucket"), &field("bucket"))?.as_deref(),
        &field("bucket"),
    )?;
    let (tz_key, tz_raw) = match map.get("tz") {
        Some(v) if !v.is_null() => ("tz", opt_text(Some(v), &field("tz"))?),
        _ => (
            "timezone",
            opt_text(map.get("timezone"), &field("timezone"))?,
        ),
    };
    // `timezone` loses to `tz`, but a present one must still be a zone: a request never
    // carries a field the server would refuse on its own
    if tz_key == "tz" {
        if let Some(other) = opt_text(map.get("timezone"), &field("timezone"))? {
            if !other.trim().eq_ignore_ascii_case("server") {
                parse_tz(Some(&other), fallback, &field("timezone"))?;
            }
        }
    }
    let tz = match tz_raw.as_deref().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("server") => server,
        other => parse_tz(other, fallback, &field(tz_key))?,
    };
    let split = match opt_text(map.get("split_by"), &field("split_by"))?
        .as_deref()
        .map(str::trim)
    {
        None | Some("" | "none") => None,
        Some(s) => Some(Dim::parse(s).ok_or_else(|| {
            ApiError::invalid(
                field("split_by"),
                format!(
                    "unknown split_by {s:?}: expected none, gender, age_band, status or priority"
                ),
            )
        })?),
    };
    let mut filter = base;
    filter.add_values(|d| map.get(d.name()).cloned(), |d| field(d.name()))?;
    Ok(Knobs {
        bucket,
        tz,
        split,
        filter,
    })
}

/// A JSON response with `X-Lpm-Tick` when the tick is known. The body is written straight to
/// the response bytes (large answers need not be a `Value` tree first).
pub fn with_tick(tick: Option<Tick>, body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    if let Some(t) = tick {
        response
            .headers_mut()
            .insert(TICK_HEADER, HeaderValue::from(t));
    }
    response
}

/// 503 until the engine has completed its first tick (an empty answer would look like "no
/// data" on a dashboard).
pub fn require_tick(tick: Option<Tick>) -> Result<Tick, ApiError> {
    tick.ok_or_else(|| ApiError::Unavailable {
        message: "the engine has not completed its first tick yet".into(),
        retry_after: 1,
    })
}

/// Fetches the sensitive cases off the async threads (the source may wait on the engine).
pub async fn fetch_sensitive(source: Arc<dyn CaseSource>) -> Result<Vec<SensitiveCase>, ApiError> {
    tokio::task::spawn_blocking(move || source.sensitive_open())
        .await
        .map_err(|e| ApiError::Internal(format!("case source task failed: {e}")))?
}
