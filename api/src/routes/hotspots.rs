//! `GET /api/v1/views/hotspots`: reports and open cases per H3 cell, as JSON or as a GeoJSON
//! FeatureCollection of the cells' polygons.
//!
//! Read from the same store snapshot as every other view, so its tick and figures agree with
//! `/api/v1/views` at that tick. Read-only tokens see only cells with at least
//! `--hotspots-min-reports` reports (a cell of one or two reports could locate a person); the
//! threshold is applied here and on the WebSocket's `hotspots` topic, the only places that show
//! cells (`/api/v1/views` leaves the section out).

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lpm_engine::hotspots::parse_cell_key;
use lpm_engine::views::CellFigures;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;
use lpm_service::position::SourcePosition;

/// The hotspots route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/views/hotspots", get(hotspots))
}

/// The accepted values of `format`.
const FORMATS: [&str; 2] = ["json", "geojson"];

/// `?format=json|geojson` of `/api/v1/views/hotspots`.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HotspotsQuery {
    /// `json` (default): the cells' figures by cell; `geojson`: a FeatureCollection of the
    /// cells' polygons with the figures as properties (`application/geo+json`).
    #[param(schema_with = format_schema)]
    pub format: Option<String>,
}

fn format_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input_schema::one_of(&FORMATS, false)
}

/// One cell's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HotspotCell {
    /// Reports located in the cell.
    pub reports: i64,
    /// Open or in-progress cases whose person is in the cell.
    pub open_cases: i64,
    /// Of those, cases whose person is a minor (0 <= age < 18).
    pub open_minor_cases: i64,
}

impl From<CellFigures> for HotspotCell {
    fn from(f: CellFigures) -> HotspotCell {
        HotspotCell {
            reports: f.reports,
            open_cases: f.open_cases,
            open_minor_cases: f.open_minor_cases,
        }
    }
}

/// The `hotspots` view at one tick (`format=json`).
#[derive(Serialize, ToSchema)]
pub struct HotspotsOut {
    /// The engine tick (`null` before the first).
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// Always `hotspots`.
    pub view: String,
    /// The H3 resolution of the cells.
    #[schema(minimum = 0, maximum = 15)]
    pub resolution: u8,
    /// The fewest reports a cell needs to be shown to this caller (0: every cell).
    #[schema(minimum = 0)]
    pub min_reports: i64,
    /// Cells by H3 index in lower-case hex; cells without a report are absent.
    pub value: BTreeMap<String, HotspotCell>,
}

/// `"FeatureCollection"`.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub enum FeatureCollectionType {
    /// The only value.
    FeatureCollection,
}

/// `"Feature"`.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub enum FeatureType {
    /// The only value.
    Feature,
}

/// `"Polygon"`.
#[derive(Serialize, Deserialize, ToSchema, Debug, PartialEq)]
pub enum PolygonType {
    /// The only value.
    Polygon,
}

/// A GeoJSON Polygon (RFC 7946 3.1.6): one closed exterior ring, counter-clockwise.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct CellPolygon {
    /// `Polygon`.
    #[serde(rename = "type")]
    pub kind: PolygonType,
    /// One ring of `[longitude, latitude]` positions, first and last equal.
    #[schema(value_type = Vec<Vec<Vec<f64>>>)]
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

/// The figures of a cell as GeoJSON properties.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct CellProperties {
    /// The H3 index in lower-case hex.
    pub cell: String,
    /// Reports located in the cell.
    pub reports: i64,
    /// Open or in-progress cases whose person is in the cell.
    pub open_cases: i64,
    /// Of those, cases whose person is a minor.
    pub open_minor_cases: i64,
}

/// One cell as a GeoJSON Feature.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct CellFeature {
    /// `Feature`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// The H3 index in lower-case hex.
    pub id: String,
    /// The cell's boundary.
    pub geometry: CellPolygon,
    /// The cell's figures.
    pub properties: CellProperties,
}

/// The `hotspots` view at one tick as a GeoJSON FeatureCollection (`format=geojson`).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct HotspotsGeoJson {
    /// `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    /// The engine tick the cells are read at (a foreign member, RFC 7946 6.1).
    pub tick: Option<u64>,
    /// One feature per shown cell, ordered by cell index.
    pub features: Vec<CellFeature>,
}

/// Whether a cell of `figures` is shown to a caller who needs `min_reports` reports.
pub fn shown(figures: &CellFigures, min_reports: i64) -> bool {
    figures.reports >= min_reports
}

/// A cell's boundary as a closed GeoJSON ring, exterior counter-clockwise (RFC 7946 3.1.6),
/// from h3o's vertices. `None` for a key that is not a cell (never from the engine).
///
/// The orientation is checked with the signed (shoelace) area rather than assumed from H3's
/// vertex order, so a distorted cell cannot come out clockwise. Cells crossing the
/// antimeridian are not split (none is near the areas lpm serves).
pub fn cell_ring(key: &str) -> Option<Vec<[f64; 2]>> {
    let cell = parse_cell_key(key)?;
    let mut ring: Vec<[f64; 2]> = cell.boundary().iter().map(|v| [v.lng(), v.lat()]).collect();
    if signed_area(&ring) < 0.0 {
        ring.reverse();
    }
    let first = *ring.first()?;
    ring.push(first);
    Some(ring)
}

/// Twice the signed area of an open ring in the (x, y) plane: positive when counter-clockwise.
pub fn signed_area(ring: &[[f64; 2]]) -> f64 {
    ring.iter()
        .zip(ring.iter().cycle().skip(1))
        .map(|(a, b)| a[0] * b[1] - b[0] * a[1])
        .sum()
}

fn geojson(tick: Option<u64>, cells: &BTreeMap<String, HotspotCell>) -> HotspotsGeoJson {
    let features = cells
        .iter()
        .filter_map(|(key, f)| {
            Some(CellFeature {
                kind: FeatureType::Feature,
                id: key.clone(),
                geometry: CellPolygon {
                    kind: PolygonType::Polygon,
                    coordinates: vec![cell_ring(key)?],
                },
                properties: CellProperties {
                    cell: key.clone(),
                    reports: f.reports,
                    open_cases: f.open_cases,
                    open_minor_cases: f.open_minor_cases,
                },
            })
        })
        .collect();
    HotspotsGeoJson {
        kind: FeatureCollectionType::FeatureCollection,
        tick,
        features,
    }
}

/// The `hotspots` view.
#[utoipa::path(get, path = "/api/v1/views/hotspots", tag = "views",
    params(HotspotsQuery),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The cells at one tick (read-only tokens: only cells with at least --hotspots-min-reports reports)",
            content((HotspotsOut = "application/json"), (HotspotsGeoJson = "application/geo+json"))),
        (status = 400, description = "An unknown parameter or format", body = ErrorBody),
        (status = 404, description = "The engine does not maintain the hotspots view", body = ErrorBody)))]
pub async fn hotspots(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
    Query(q): Query<HotspotsQuery>,
) -> ApiResult<Response> {
    let format = q.format.as_deref().unwrap_or("json");
    if !FORMATS.contains(&format) {
        return Err(ApiError::BadRequest {
            field: Some("format".into()),
            message: "expected json or geojson".into(),
        });
    }
    let store = state.engine.store();
    if !store.hotspots() {
        return Err(ApiError::NotFound(
            "view hotspots (the engine runs without it)".into(),
        ));
    }
    let (tick, views) = store.read_shared();
    let min_reports = state.config.hotspots.min_reports_for(&who);
    let cells: BTreeMap<String, HotspotCell> = views
        .hotspots
        .iter()
        .flatten()
        .filter(|(_, f)| shown(f, min_reports))
        .map(|(k, f)| (k.clone(), HotspotCell::from(*f)))
        .collect();
    if format == "geojson" {
        let body = serde_json::to_vec(&geojson(tick, &cells))
            .map_err(|e| ApiError::Internal(format!("geojson did not serialise: {e}")))?;
        return Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response());
    }
    let positions = tick.map(|t| state.position_at(t)).into_iter().collect();
    Ok(axum::Json(HotspotsOut {
        tick,
        positions,
        view: lpm_engine::ViewName::Hotspots.name().to_string(),
        resolution: u8::from(state.config.hotspots.resolution),
        min_reports,
        value: cells,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_is_closed_counter_clockwise_and_is_h3os_boundary() {
        let key = "8766d33abffffff";
        let ring = cell_ring(key).expect("a cell");
        assert_eq!(ring.first(), ring.last());
        let open = &ring[..ring.len() - 1];
        assert!(signed_area(open) > 0.0, "counter-clockwise");
        let cell = parse_cell_key(key).expect("a cell");
        let mut h3o: Vec<[f64; 2]> = cell.boundary().iter().map(|v| [v.lng(), v.lat()]).collect();
        if h3o != open {
            h3o.reverse();
        }
        assert_eq!(h3o, open, "the ring is h3o's boundary, in some direction");
    }

    #[test]
    fn the_shoelace_sign_follows_the_direction() {
        let ccw = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(signed_area(&ccw) > 0.0);
        let mut cw = ccw;
        cw.reverse();
        assert!(signed_area(&cw) < 0.0);
    }
}
