//! Sightings of a case's missing person: `POST /api/v1/cases/{id}/sightings` (responders and
//! admins). The write itself ([`Command::AddSighting`]) takes its source as a field, so the
//! public case page can reuse it with `public`.

use axum::response::Response;
use axum::routing::post;
use axum::Router;
use lpm_engine::model::SightingSource;
use serde::Deserialize;
use utoipa::ToSchema;

use super::cases::{
    coordinate, long_text_schema, opt_text, optional_name_schema, phone_schema, place_schema, text,
    write_case,
};
use crate::auth::RequireWriter;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::json_integer::PathId;
use crate::state::AppState;
use crate::times::{parse_wall_clock, wall_clock_now, FUTURE_SKEW_MS};
use lpm_service::sor::ledger::{Command, NewSighting};

/// The sighting routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/cases/{id}/sightings", post(add_sighting))
}

/// A sighting of the case's person.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SightingIn {
    /// When the person was seen: ISO-8601 with an offset (converted to the server's zone), or a
    /// local wall-clock time without one (`2026-11-20T14:30`). Not in the future (5 minutes of
    /// clock skew are allowed).
    #[schema(format = DateTime)]
    pub seen_at: String,
    /// Where (not blank, at most 255 characters).
    #[schema(schema_with = place_schema)]
    pub place: String,
    /// Latitude, -90..90, at most 6 decimals; give both coordinates or neither.
    #[serde(default)]
    #[schema(minimum = -90, maximum = 90, multiple_of = 0.000001)]
    pub latitude: Option<f64>,
    /// Longitude, -180..180, at most 6 decimals; give both coordinates or neither.
    #[serde(default)]
    #[schema(minimum = -180, maximum = 180, multiple_of = 0.000001)]
    pub longitude: Option<f64>,
    /// What was seen (at most 10 000 characters; blank means none).
    #[serde(default)]
    #[schema(schema_with = long_text_schema)]
    pub description: Option<String>,
    /// Who reported it (at most 200 characters; blank means none). Never shown to readers.
    #[serde(default)]
    #[schema(schema_with = optional_name_schema)]
    pub reporter_name: Option<String>,
    /// Their phone (at most 40 characters; blank means none). Never shown to readers.
    #[serde(default)]
    #[schema(schema_with = phone_schema)]
    pub reporter_phone: Option<String>,
}

impl SightingIn {
    /// Checks every field and builds the write, with `source` (the route decides it) and
    /// `now_ms` (the instant `seen_at` must not be after, in `tz`'s wall clock).
    pub fn validate(
        self,
        tz: &chrono_tz::Tz,
        now_ms: i64,
        source: SightingSource,
    ) -> ApiResult<NewSighting> {
        let seen_at = parse_wall_clock("seen_at", &self.seen_at, tz)?;
        if seen_at > wall_clock_now(tz, now_ms) + FUTURE_SKEW_MS {
            return Err(ApiError::invalid("seen_at", "must not be in the future"));
        }
        let latitude = coordinate("latitude", self.latitude, 90.0)?;
        let longitude = coordinate("longitude", self.longitude, 180.0)?;
        match (latitude, longitude) {
            (Some(_), None) => {
                return Err(ApiError::invalid(
                    "longitude",
                    "give both coordinates or neither",
                ))
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "latitude",
                    "give both coordinates or neither",
                ))
            }
            _ => {}
        }
        Ok(NewSighting {
            seen_at,
            place: text("place", self.place, 255)?,
            latitude,
            longitude,
            description: opt_text("description", self.description, 10_000)?,
            reporter_name: opt_text("reporter_name", self.reporter_name, 200)?,
            reporter_phone: opt_text("reporter_phone", self.reporter_phone, 40)?,
            source,
        })
    }
}

/// Add a sighting to a case (source `responder`).
/// Responders and admins; a read-only token gets 403. The answer is the case with its
/// `sightings`, newest first.
#[utoipa::path(post, path = "/api/v1/cases/{id}/sightings", request_body = SightingIn,
    params(("id" = i64, Path, description = "Case id")), tag = "cases",
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "The case with the new sighting", body = super::dto::CaseDetailOut,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 202, description = "Written, not yet visible: poll the Location", body = super::cases::Accepted,
            headers(("Location" = String, description = "`/api/v1/cases/{id}`"))),
        (status = 400, description = "Malformed JSON, not `application/json`, or a bad id", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 422, description = "A rule broken; `field` names it", body = ErrorBody),
        (status = 503, description = "Shutting down or the log refuses writes", body = ErrorBody)))]
pub async fn add_sighting(
    axum::extract::State(state): axum::extract::State<AppState>,
    RequireWriter(who): RequireWriter,
    Path(PathId(id)): Path<PathId>,
    Json(body): Json<SightingIn>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp_millis();
    let sighting = body.validate(&state.config.tz, now, SightingSource::Responder)?;
    let cmd = Command::AddSighting {
        case_id: id,
        sighting: Box::new(sighting),
    };
    write_case(&state, who.name, cmd, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(seen_at: &str) -> SightingIn {
        SightingIn {
            seen_at: seen_at.into(),
            place: " Quitumbe ".into(),
            latitude: None,
            longitude: None,
            description: None,
            reporter_name: Some(" ".into()),
            reporter_phone: None,
        }
    }

    #[test]
    fn seen_at_may_not_be_in_the_future_beyond_the_skew() {
        let tz: chrono_tz::Tz = "America/Guayaquil".parse().expect("tz");
        // 2026-11-20T19:30Z is 14:30 in Guayaquil
        let now = 1_795_203_000_000;
        let ok = input("2026-11-20T14:34")
            .validate(&tz, now, SightingSource::Responder)
            .expect("within the skew");
        assert_eq!((ok.place.as_str(), ok.reporter_name), ("Quitumbe", None));
        let err = input("2026-11-20T14:36")
            .validate(&tz, now, SightingSource::Responder)
            .expect_err("future");
        assert!(err.to_string().contains("future"), "{err}");
    }
}
