//! `GET /api/v1/views/hotspots`: reports and open cases per H3 cell, as JSON, as a GeoJSON
//! FeatureCollection of the cells' polygons, or as flat rows with each cell's center (what
//! Grafana's Geomap panel reads through Infinity).
//!
//! Read from the same store snapshot as every other view, so its tick and figures agree with
//! `/api/v1/views` at that tick. Read-only tokens see only cells with at least
//! `--hotspots-min-reports` reports (a cell of one or two reports could locate a person), and
//! coarser cells when `--hotspots-reader-resolution` is set ([`crate::cells`]); both apply here,
//! on the WebSocket's `hotspots` topic and in the PDF, the only places that show cells
//! (`/api/v1/views` leaves the section out).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lpm_engine::hotspots::{cell_center, parse_cell_key};
use lpm_engine::views::CellFigures;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::cells::CellView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;
use lpm_service::position::SourcePosition;

/// The hotspots route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/views/hotspots", get(hotspots))
}

/// The accepted values of `format`.
const FORMATS: [&str; 3] = ["json", "geojson", "rows"];

/// `?format=json|geojson|rows` of `/api/v1/views/hotspots`.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HotspotsQuery {
    /// `json` (default): the cells' figures by cell; `geojson`: a FeatureCollection of the
    /// cells' polygons with the figures as properties (`application/geo+json`); `rows`: a JSON
    /// array of flat rows, one per cell with its center (Grafana Infinity / Geomap), the tick in
    /// `X-Lpm-Tick`.
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
    /// The H3 resolution of the cells this caller sees (read-only tokens: the readers'
    /// resolution when one is configured).
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

/// A cell's GeoJSON geometry: a Polygon (RFC 7946 3.1.6), or a MultiPolygon of two parts for
/// a cell that crosses the antimeridian (RFC 7946 3.1.9: split so that every part stays within
/// [-180, 180]). Every ring is closed and counter-clockwise.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "type", content = "coordinates")]
pub enum CellGeometry {
    /// One ring of `[longitude, latitude]` positions, first and last equal.
    Polygon(Vec<Vec<[f64; 2]>>),
    /// Two polygons of one ring each: the part west of +180° and the part east of -180°.
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
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
    /// The cell's boundary: `{"type": "Polygon", "coordinates": [ring]}`, or
    /// `{"type": "MultiPolygon", "coordinates": [[ring], [ring]]}` for a cell that crosses the
    /// antimeridian; a ring is `[[longitude, latitude], ...]`, closed, counter-clockwise.
    #[schema(value_type = Object)]
    pub geometry: CellGeometry,
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

/// One cell as a flat row (`format=rows`): what Grafana's Geomap panel places by `lat`/`lon`.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq)]
pub struct HotspotRow {
    /// The H3 index in lower-case hex.
    pub cell: String,
    /// Latitude of the cell's center (h3o), degrees.
    pub lat: f64,
    /// Longitude of the cell's center (h3o), degrees.
    pub lon: f64,
    /// Reports located in the cell.
    pub reports: i64,
    /// Open or in-progress cases whose person is in the cell.
    pub open_cases: i64,
    /// Of those, cases whose person is a minor.
    pub open_minor_cases: i64,
}

/// The cells `who` may see at one tick, by cell key, and what it sees of the view: every cell
/// for people who see personal data; only cells of at least `--hotspots-min-reports` reports,
/// at `--hotspots-reader-resolution` if set, for read-only tokens. The route, the stream and
/// the analytics PDF all show what this returns. `None` when the engine runs without the view.
pub fn visible_cells(
    state: &AppState,
    who: &crate::auth::Principal,
) -> Option<(Option<u64>, CellView, BTreeMap<String, HotspotCell>)> {
    let store = state.engine.store();
    if !store.hotspots() {
        return None;
    }
    let (tick, views) = store.read_shared();
    let view = state.config.hotspots.view_for(who);
    let cells = views
        .hotspots
        .iter()
        .flatten()
        .filter(|(k, f)| parse_cell_key(k).is_some_and(|c| view.shows(u64::from(c), f)))
        .map(|(k, f)| (k.clone(), HotspotCell::from(*f)))
        .collect();
    Some((tick, view, cells))
}

/// The rows of `cells` with their centers, in cell order; keys that are not cells are left
/// out (never from the engine).
pub fn rows(cells: &BTreeMap<String, HotspotCell>) -> Vec<HotspotRow> {
    cells
        .iter()
        .filter_map(|(key, f)| {
            let (lat, lon) = cell_center(parse_cell_key(key)?);
            Some(HotspotRow {
                cell: key.clone(),
                lat,
                lon,
                reports: f.reports,
                open_cases: f.open_cases,
                open_minor_cases: f.open_minor_cases,
            })
        })
        .collect()
}

/// What an `application/json` answer holds, for the OpenAPI document: the view
/// (`format=json`, the default) or its rows (`format=rows`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum HotspotsJson {
    /// `format=json`.
    View(HotspotsOut),
    /// `format=rows`.
    Rows(Vec<HotspotRow>),
}

/// A cell's boundary as GeoJSON (RFC 7946), from h3o's vertices; `None` for a key that is
/// not a cell (never from the engine).
///
/// The orientation is checked with the signed (shoelace) area rather than assumed from H3's
/// vertex order, so a distorted cell cannot come out clockwise. A cell whose boundary crosses
/// the antimeridian (an edge spanning more than 180° of longitude) is unwrapped to one side,
/// cut at 180° and returned as a MultiPolygon of its two parts, each within [-180, 180]: drawn
/// as one polygon it would wrap around the whole world. (The two cells per resolution that
/// contain a pole are not special-cased: no report lpm serves is near one.)
pub fn cell_geometry(key: &str) -> Option<CellGeometry> {
    let cell = parse_cell_key(key)?;
    let mut ring: Vec<[f64; 2]> = cell.boundary().iter().map(|v| [v.lng(), v.lat()]).collect();
    let crosses = ring
        .iter()
        .zip(ring.iter().cycle().skip(1))
        .any(|(a, b)| (a[0] - b[0]).abs() > 180.0);
    if crosses {
        for p in &mut ring {
            if p[0] < 0.0 {
                p[0] += 360.0;
            }
        }
    }
    if signed_area(&ring) < 0.0 {
        ring.reverse();
    }
    if !crosses {
        return Some(CellGeometry::Polygon(vec![closed(ring)?]));
    }
    let west = clip_at_180(&ring, |x| x <= 180.0);
    let east: Vec<[f64; 2]> = clip_at_180(&ring, |x| x >= 180.0)
        .into_iter()
        .map(|[x, y]| [x - 360.0, y])
        .collect();
    Some(CellGeometry::MultiPolygon(vec![
        vec![closed(west)?],
        vec![closed(east)?],
    ]))
}

/// An open ring closed by repeating its first position.
fn closed(mut ring: Vec<[f64; 2]>) -> Option<Vec<[f64; 2]>> {
    let first = *ring.first()?;
    ring.push(first);
    Some(ring)
}

/// The part of an open ring on the side of longitude 180 that `keep` accepts
/// (Sutherland-Hodgman against one line): an edge that changes side gains the point where it
/// meets 180. Clipping keeps the ring's direction.
fn clip_at_180(ring: &[[f64; 2]], keep: impl Fn(f64) -> bool) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(ring.len() + 2);
    for (a, b) in ring.iter().zip(ring.iter().cycle().skip(1)) {
        let (a_in, b_in) = (keep(a[0]), keep(b[0]));
        if a_in {
            out.push(*a);
        }
        if a_in != b_in {
            let t = (180.0 - a[0]) / (b[0] - a[0]);
            out.push([180.0, a[1] + t * (b[1] - a[1])]);
        }
    }
    out
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
                geometry: cell_geometry(key)?,
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
        (status = 200, description = "The cells at one tick (read-only tokens: only cells with at least --hotspots-min-reports reports, at --hotspots-reader-resolution if set)",
            content((HotspotsJson = "application/json"), (HotspotsGeoJson = "application/geo+json")),
            headers(("X-Lpm-Tick" = u64, description = "`format=rows`: the engine tick the rows were read at"))),
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
            message: "expected json, geojson or rows".into(),
        });
    }
    let (tick, view, cells) = visible_cells(&state, &who)
        .ok_or_else(|| ApiError::NotFound("view hotspots (the engine runs without it)".into()))?;
    if format == "geojson" {
        let body = serde_json::to_vec(&geojson(tick, &cells))
            .map_err(|e| ApiError::Internal(format!("geojson did not serialise: {e}")))?;
        return Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response());
    }
    if format == "rows" {
        let mut response = axum::Json(rows(&cells)).into_response();
        if let Some(t) = tick {
            response
                .headers_mut()
                .insert(crate::grafana::TICK_HEADER, HeaderValue::from(t));
        }
        return Ok(response);
    }
    let positions = tick.map(|t| state.position_at(t)).into_iter().collect();
    Ok(axum::Json(HotspotsOut {
        tick,
        positions,
        view: lpm_engine::ViewName::Hotspots.name().to_string(),
        resolution: u8::from(view.resolution),
        min_reports: view.min_reports,
        value: cells,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use lpm_engine::hotspots::{cell_at, cell_key, Resolution};
    use lpm_engine::model::Decimal;

    use super::*;

    fn one_ring(g: CellGeometry) -> Vec<[f64; 2]> {
        match g {
            CellGeometry::Polygon(mut rings) if rings.len() == 1 => rings.remove(0),
            other => panic!("not a one-ring polygon: {other:?}"),
        }
    }

    #[test]
    fn a_ring_is_closed_counter_clockwise_and_is_h3os_boundary() {
        let key = "8766d33abffffff";
        let ring = one_ring(cell_geometry(key).expect("a cell"));
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

    /// The resolution-7 cell holding (0, 179.9999): h3o puts some of its vertices east of
    /// -180 and some west of 180.
    const FIJI_CELL: &str = "877eb5722ffffff";

    #[test]
    fn a_cell_across_the_antimeridian_is_split_in_two_parts_within_180() {
        let near = cell_at(
            Decimal {
                unscaled: 0,
                scale: 6,
            },
            Decimal {
                unscaled: 179_999_900,
                scale: 6,
            },
            Resolution::Seven,
        )
        .expect("a cell");
        assert_eq!(cell_key(u64::from(near)), FIJI_CELL);
        let raw: Vec<f64> = near.boundary().iter().map(|v| v.lng()).collect();
        assert!(
            raw.iter().any(|x| *x > 179.0) && raw.iter().any(|x| *x < -179.0),
            "the cell really crosses: {raw:?}"
        );
        let parts = match cell_geometry(FIJI_CELL).expect("a cell") {
            CellGeometry::MultiPolygon(parts) => parts,
            other => panic!("not split: {other:?}"),
        };
        assert_eq!(parts.len(), 2, "west and east of the antimeridian");
        let mut area = 0.0;
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.len(), 1, "one ring, no holes");
            let ring = &part[0];
            assert!(ring.len() >= 4, "{ring:?}");
            assert_eq!(ring.first(), ring.last(), "closed");
            assert!(
                ring.iter()
                    .all(|p| (-180.0..=180.0).contains(&p[0]) && (-90.0..=90.0).contains(&p[1])),
                "within the world: {ring:?}"
            );
            let open = &ring[..ring.len() - 1];
            let a = signed_area(open);
            assert!(a > 0.0, "counter-clockwise: {ring:?}");
            area += a;
            // the west part ends at +180, the east part starts at -180
            let edge = if i == 0 { 180.0 } else { -180.0 };
            assert_eq!(
                open.iter().filter(|p| p[0] == edge).count(),
                2,
                "two points on the cut: {ring:?}"
            );
        }
        // the parts add up to the whole cell, unwrapped to one side
        let whole: Vec<[f64; 2]> = raw
            .iter()
            .zip(near.boundary().iter())
            .map(|(x, v)| [if *x < 0.0 { x + 360.0 } else { *x }, v.lat()])
            .collect();
        let whole = signed_area(&whole).abs();
        assert!(
            (area - whole).abs() < 1e-9 * whole.max(1.0),
            "{area} != {whole}"
        );
    }

    #[test]
    fn rows_carry_each_cells_center_and_figures() {
        let mut cells = BTreeMap::new();
        let f = HotspotCell {
            reports: 6,
            open_cases: 5,
            open_minor_cases: 1,
        };
        cells.insert("8766d33abffffff".to_string(), f);
        cells.insert("not a cell".to_string(), f);
        let rows = rows(&cells);
        assert_eq!(rows.len(), 1, "only cells");
        let r = &rows[0];
        assert_eq!((r.reports, r.open_cases, r.open_minor_cases), (6, 5, 1));
        let (lat, lon) = cell_center(parse_cell_key(&r.cell).expect("a cell"));
        assert_eq!((r.lat, r.lon), (lat, lon));
        assert!((r.lat + 0.18).abs() < 0.02 && (r.lon + 78.47).abs() < 0.02);
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
