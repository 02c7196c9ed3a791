//! `GET /api/v1/views/hotspots` and the stream's `hotspots` topic through the whole app: who
//! may read it, the readers' threshold, exact figures after a status change, and the GeoJSON
//! (closed rings, counter-clockwise exteriors, h3o's boundaries).

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use axum::http::{header, Method, StatusCode};
use lpm_api::cells::CellView;
use lpm_api::stream::{serve_client, Client, Timing, Topics};
use lpm_engine::hotspots::{cell_at, parse_cell_key, Resolution};
use parking_lot::Mutex;
use serde_json::{json, Value};
use support::{App, Who};

/// Quito: six reports here (one of them a minor, one of the cases later closed).
const QUITO: (f64, f64) = (-0.180653, -78.467838);
/// Guayaquil: two reports.
const GUAYAQUIL: (f64, f64) = (-2.170998, -79.922359);
/// `h3.latlng_to_cell(-0.180653, -78.467838, 7)` (Uber's library).
const QUITO_CELL: &str = "8766d33abffffff";

fn report(n: usize, at: Option<(f64, f64)>, age: i64) -> Value {
    let mut body = json!({
        "full_name": format!("Persona Celda {n}"),
        "age": age,
        "gender": "female",
        "last_seen_at": "2026-11-20T14:30",
        "last_seen_place": "Plaza",
    });
    if let Some((lat, lng)) = at {
        body["latitude"] = json!(lat);
        body["longitude"] = json!(lng);
    }
    body
}

/// Six reports in Quito (the first a minor), two in Guayaquil, one without coordinates; then
/// the second Quito case is closed. Returns the Guayaquil cell.
async fn seed(app: &App) -> String {
    let mut quito_cases = Vec::new();
    for n in 0..6 {
        let age = if n == 0 { 12 } else { 40 };
        quito_cases.push(app.file_report(report(n, Some(QUITO), age)).await);
    }
    for n in 6..8 {
        app.file_report(report(n, Some(GUAYAQUIL), 15)).await;
    }
    app.file_report(report(8, None, 9)).await;
    let closed = quito_cases[1];
    let body = json!({"version": app.case_version(closed), "status": "found_alive"}).to_string();
    let r = app
        .call(
            Who::Responder,
            Method::PATCH,
            &format!("/api/v1/cases/{closed}"),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(Who::Admin, "/api/v1/views/hotspots").await;
    let cells = r.json["value"].as_object().expect("cells").clone();
    cells
        .keys()
        .find(|k| k.as_str() != QUITO_CELL)
        .expect("a second cell")
        .clone()
}

/// The ids of the features a reader's GeoJSON holds.
async fn reader_feature_ids(app: &App) -> Vec<String> {
    let r = app
        .get(Who::Reader, "/api/v1/views/hotspots?format=geojson")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect()
}

fn figures(reports: i64, open: i64, minors: i64) -> Value {
    json!({"reports": reports, "open_cases": open, "open_minor_cases": minors})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_see_every_cell_and_readers_only_cells_of_k_reports() {
    let app = App::start().await;
    let guayaquil = seed(&app).await;

    let r = app.get(Who::Anonymous, "/api/v1/views/hotspots").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    for who in [Who::Responder, Who::Admin] {
        let r = app.get(who, "/api/v1/views/hotspots").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["view"], "hotspots");
        assert_eq!(r.json["resolution"], 7);
        assert_eq!(r.json["min_reports"], 0);
        assert!(r.json["tick"].is_u64(), "{}", r.text);
        // the closed case left its cell's open cases; the report without coordinates is nowhere
        let want = json!({QUITO_CELL: figures(6, 5, 1), guayaquil.as_str(): figures(2, 2, 2)});
        assert_eq!(r.json["value"], want, "{}", r.text);
    }

    // default k = 5: Quito (6 reports) is shown, Guayaquil (2) is not
    let r = app.get(Who::Reader, "/api/v1/views/hotspots").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["min_reports"], 5);
    assert_eq!(r.json["value"], json!({QUITO_CELL: figures(6, 5, 1)}));
    assert_eq!(reader_feature_ids(&app).await, vec![QUITO_CELL]);

    // the cells are not in the all-views document, so no route shows them unfiltered
    let r = app.get(Who::Reader, "/api/v1/views").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["views"].get("hotspots").is_none(), "{}", r.text);
    assert_eq!(r.json["views"]["kpi"]["total_reports"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_have_each_cells_center_and_the_figures_of_the_json_view_at_its_tick() {
    let app = App::start().await;
    let guayaquil = seed(&app).await;
    for (who, want_cells) in [
        (
            Who::Responder,
            vec![QUITO_CELL.to_string(), guayaquil.clone()],
        ),
        // the readers' threshold (5) applies to rows as to every other format
        (Who::Reader, vec![QUITO_CELL.to_string()]),
    ] {
        let view = app.get(who, "/api/v1/views/hotspots").await;
        let r = app.get(who, "/api/v1/views/hotspots?format=rows").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let tick = r
            .headers
            .get("x-lpm-tick")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert_eq!(
            tick,
            view.json["tick"].as_u64(),
            "the same tick as the view"
        );
        let rows = r.json.as_array().expect("an array of rows");
        let mut cells: Vec<String> = rows
            .iter()
            .filter_map(|row| row["cell"].as_str().map(str::to_string))
            .collect();
        cells.sort();
        let mut want_cells = want_cells;
        want_cells.sort();
        assert_eq!(cells, want_cells, "{}", r.text);
        for row in rows {
            let key = row["cell"].as_str().expect("cell");
            let cell = parse_cell_key(key).expect("a cell");
            let center = h3o::LatLng::from(cell);
            let close = |v: &Value, want: f64| {
                v.as_f64()
                    .is_some_and(|x| (x - want).abs() <= 1e-12 * want.abs().max(1.0))
            };
            assert!(close(&row["lat"], center.lat()), "{row}");
            assert!(close(&row["lon"], center.lng()), "{row}");
            let f = &view.json["value"][key];
            for k in ["reports", "open_cases", "open_minor_cases"] {
                assert_eq!(row[k], f[k], "{key} {k}");
            }
        }
    }
    // Quito's center is in Quito
    let r = app
        .get(Who::Reader, "/api/v1/views/hotspots?format=rows")
        .await;
    let q = &r.json[0];
    assert!(
        (q["lat"].as_f64().unwrap_or(9.0) - QUITO.0).abs() < 0.02,
        "{q}"
    );
    assert!(
        (q["lon"].as_f64().unwrap_or(9.0) - QUITO.1).abs() < 0.02,
        "{q}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readers_threshold_is_configurable() {
    let app = App::start_with(|c| c.hotspots.min_reports = 2).await;
    let guayaquil = seed(&app).await;
    let r = app.get(Who::Reader, "/api/v1/views/hotspots").await;
    assert_eq!(r.json["min_reports"], 2);
    let cells: Vec<&String> = r.json["value"].as_object().expect("cells").keys().collect();
    let mut want = [QUITO_CELL.to_string(), guayaquil];
    want.sort();
    assert_eq!(cells, want.iter().collect::<Vec<_>>());
}

/// The same positions within a unit in the last place: the server writes each double's
/// shortest round-trip digits, but serde_json's default parser (no `float_roundtrip`) may read
/// them back one ulp off.
fn same_ring(a: &[[f64; 2]], b: &[[f64; 2]]) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(1.0);
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(p, q)| close(p[0], q[0]) && close(p[1], q[1]))
}

/// Twice the signed area of an open ring: positive when counter-clockwise.
fn signed_area(ring: &[[f64; 2]]) -> f64 {
    ring.iter()
        .zip(ring.iter().cycle().skip(1))
        .map(|(a, b)| a[0] * b[1] - b[0] * a[1])
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geojson_rings_are_closed_counter_clockwise_h3o_boundaries() {
    let app = App::start().await;
    seed(&app).await;
    let r = app
        .get(Who::Responder, "/api/v1/views/hotspots?format=geojson")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/geo+json")
    );
    assert_eq!(r.json["type"], "FeatureCollection");
    let features = r.json["features"].as_array().expect("features");
    assert_eq!(features.len(), 2, "{}", r.text);
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Polygon");
        let key = f["id"].as_str().expect("id");
        assert_eq!(f["properties"]["cell"], key);
        assert!(f["properties"]["reports"].as_i64().is_some_and(|n| n > 0));
        let rings = f["geometry"]["coordinates"].as_array().expect("rings");
        assert_eq!(rings.len(), 1, "one exterior ring, no holes");
        let ring: Vec<[f64; 2]> = serde_json::from_value(rings[0].clone()).expect("positions");
        assert!(ring.len() >= 7, "a hexagon and its closing point: {ring:?}");
        assert_eq!(ring.first(), ring.last(), "closed");
        let open = &ring[..ring.len() - 1];
        assert!(signed_area(open) > 0.0, "counter-clockwise: {ring:?}");
        let cell = parse_cell_key(key).expect("a cell index");
        let mut boundary: Vec<[f64; 2]> =
            cell.boundary().iter().map(|v| [v.lng(), v.lat()]).collect();
        if !same_ring(&boundary, open) {
            boundary.reverse();
        }
        assert!(
            same_ring(&boundary, open),
            "h3o's boundary of {key}: {boundary:?} != {open:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_formats_and_unknown_parameters_are_400() {
    let app = App::start().await;
    for uri in [
        "/api/v1/views/hotspots?format=kml",
        "/api/v1/views/hotspots?resolution=9",
    ] {
        let r = app.get(Who::Responder, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text);
        assert!(r.is_error_body(), "{}", r.text);
    }
    // an empty engine: the view exists and has no cell
    let r = app.get(Who::Responder, "/api/v1/views/hotspots").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["value"], json!({}));
}

/// The first frame the stream sends a client of `topics`.
async fn first_frame(app: &App, topics: Topics) -> Value {
    frames_until(app, topics, async {}, |f| !f.is_empty())
        .await
        .remove(0)
}

/// The frames the stream sends a client of `topics` while `meanwhile` runs, until `done`
/// holds of them (or 10 s pass, and then the test fails).
async fn frames_until(
    app: &App,
    topics: Topics,
    meanwhile: impl std::future::Future<Output = ()>,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let frames: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = {
        let frames = frames.clone();
        futures_util::sink::unfold((), move |(), m: Message| {
            let frames = frames.clone();
            async move {
                if let Message::Text(t) = m {
                    frames.lock().push(t.to_string());
                }
                Ok::<(), std::convert::Infallible>(())
            }
        })
    };
    let client = Client { topics };
    let timing = Timing {
        heartbeat: Duration::from_secs(60),
        send_timeout: Duration::from_secs(5),
        pong_timeout: Duration::from_secs(120),
    };
    let run = serve_client(
        app.state.hub.clone(),
        client,
        None,
        timing,
        Box::pin(sink),
        futures_util::stream::pending::<Result<Message, axum::Error>>(),
        || {},
    );
    let collect = async {
        let client = tokio::spawn(run);
        meanwhile.await;
        for _ in 0..200 {
            let parsed = parse(&frames.lock());
            if done(&parsed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.abort();
    };
    collect.await;
    let parsed = parse(&frames.lock());
    assert!(done(&parsed), "the frames never got there: {parsed:?}");
    parsed
}

fn parse(frames: &[String]) -> Vec<Value> {
    frames
        .iter()
        .map(|f| serde_json::from_str(f).expect("json"))
        .collect()
}

fn hotspot_keys(snapshot: &Value) -> Vec<String> {
    snapshot["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["view"] == "hotspots")
        .filter_map(|r| r["key"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_cells_on_the_hotspots_topic_with_the_readers_threshold() {
    let app = App::start().await;
    let guayaquil = seed(&app).await;
    let cells = |min_reports| CellView {
        resolution: Resolution::Seven,
        min_reports,
    };
    let topics = |views, hotspots| Topics {
        views,
        cases: false,
        hotspots,
    };
    // the default topics carry no cell: their messages are unchanged by the view
    let views_only = first_frame(&app, topics(true, None)).await;
    assert_eq!(views_only["type"], "snapshot");
    assert!(hotspot_keys(&views_only).is_empty(), "{views_only}");
    assert!(!views_only["rows"].as_array().expect("rows").is_empty());

    let everyone = first_frame(&app, topics(false, Some(cells(0)))).await;
    let mut want = vec![QUITO_CELL.to_string(), guayaquil];
    want.sort();
    assert_eq!(hotspot_keys(&everyone), want);
    let rows = everyone["rows"].as_array().expect("rows");
    assert!(rows.iter().all(|r| r["view"] == "hotspots"), "{everyone}");
    let quito = rows
        .iter()
        .find(|r| r["key"] == QUITO_CELL)
        .expect("the Quito row");
    assert_eq!(quito["value"], figures(6, 5, 1));

    let reader = first_frame(&app, topics(false, Some(cells(5)))).await;
    assert_eq!(hotspot_keys(&reader), vec![QUITO_CELL.to_string()]);
}

/// A point 4 km south of the Quito point: another cell at resolution 7, the same at 5.
const QUITO_SOUTH: (f64, f64) = (-0.216, -78.49);

/// The cell of a `(latitude, longitude)` given with 6 decimals, as `DECIMAL(9,6)` stores it.
fn cell_of(at: (f64, f64), res: Resolution) -> String {
    let dec = |x: f64| lpm_engine::model::Decimal {
        unscaled: (x * 1e6).round() as i128,
        scale: 6,
    };
    let cell = cell_at(dec(at.0), dec(at.1), res).expect("a finite point");
    format!("{:x}", u64::from(cell))
}

/// The rows of `view` a frame (snapshot or diff) carries: `(key, value, diff)`.
fn cell_rows(frame: &Value) -> Vec<(String, Value, i64)> {
    let rows = frame["rows"]
        .as_array()
        .or_else(|| frame["changes"].as_array())
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            let row = if r.get("row").is_some() { &r["row"] } else { r };
            (row["view"] == "hotspots").then(|| {
                (
                    row["key"].as_str().unwrap_or_default().to_string(),
                    row["value"].clone(),
                    r["diff"].as_i64().unwrap_or(1),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_coarser_cells_when_configured_on_every_route() {
    let app = App::start_with(|c| c.hotspots.reader_resolution = Some(Resolution::Five)).await;
    let guayaquil = seed(&app).await;
    let (quito5, south7) = (
        cell_of(QUITO, Resolution::Five),
        cell_of(QUITO_SOUTH, Resolution::Seven),
    );
    assert_ne!(
        south7, QUITO_CELL,
        "the test point must leave the Quito cell at 7"
    );
    assert_eq!(
        cell_of(QUITO_SOUTH, Resolution::Five),
        quito5,
        "and stay in it at 5"
    );
    assert_ne!(cell_of(GUAYAQUIL, Resolution::Five), quito5);

    // people who see personal data: the fine cells, as without the setting
    let r = app.get(Who::Responder, "/api/v1/views/hotspots").await;
    assert_eq!(r.json["resolution"], 7);
    let want = json!({QUITO_CELL: figures(6, 5, 1), guayaquil.as_str(): figures(2, 2, 2)});
    assert_eq!(r.json["value"], want, "{}", r.text);

    // readers: the resolution-5 cells of at least 5 reports, in every format
    let r = app.get(Who::Reader, "/api/v1/views/hotspots").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["resolution"], 5);
    assert_eq!(r.json["min_reports"], 5);
    assert_eq!(r.json["value"], json!({quito5.as_str(): figures(6, 5, 1)}));
    assert_eq!(reader_feature_ids(&app).await, vec![quito5.as_str()]);
    let r = app
        .get(Who::Reader, "/api/v1/views/hotspots?format=rows")
        .await;
    let cells: Vec<&str> = r
        .json
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|c| c["cell"].as_str())
        .collect();
    assert_eq!(cells, vec![quito5.as_str()], "{}", r.text);

    // the stream: a reader's snapshot and diffs carry the coarse cell only, a responder's the
    // fine cells only; a report 4 km away moves the coarse cell from 6 to 7 reports and adds
    // a fine cell
    let reader = Topics {
        views: false,
        cases: false,
        hotspots: Some(CellView {
            resolution: Resolution::Five,
            min_reports: 5,
        }),
    };
    let responder = Topics {
        hotspots: Some(CellView {
            resolution: Resolution::Seven,
            min_reports: 0,
        }),
        ..reader
    };
    let coarse_seven = |frames: &[Value]| {
        frames
            .iter()
            .flat_map(cell_rows)
            .any(|(k, v, d)| k == quito5 && d > 0 && v["reports"] == 7)
    };
    let fine_new = |frames: &[Value]| {
        frames
            .iter()
            .flat_map(cell_rows)
            .any(|(k, _, d)| k == south7 && d > 0)
    };
    let reader_frames = frames_until(
        &app,
        reader,
        async {
            app.file_report(report(20, Some(QUITO_SOUTH), 40)).await;
        },
        coarse_seven,
    )
    .await;
    let rows: Vec<_> = reader_frames.iter().flat_map(cell_rows).collect();
    assert!(rows.iter().all(|(k, _, _)| *k == quito5), "{rows:?}");
    assert!(
        rows.iter()
            .any(|(_, v, d)| *d > 0 && *v == figures(7, 6, 1)),
        "{rows:?}"
    );
    let responder_frames = frames_until(&app, responder, async {}, fine_new).await;
    let rows: Vec<_> = responder_frames.iter().flat_map(cell_rows).collect();
    assert!(rows.iter().all(|(k, _, _)| *k != quito5), "{rows:?}");
}
