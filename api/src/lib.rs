//! lpm-api: the HTTP face of lpm. [`router`] is the whole app, testable without a socket:
//! REST under `/api/v1`, the Grafana data-source protocol under `/grafana`, the WebSocket diff
//! stream, Prometheus metrics, health, auth, and the responder web UI ([`web`]) at `/`.
#![deny(missing_docs)]

pub mod auth;
pub mod cells;
pub mod error;
pub mod extract;
pub mod grafana;
pub mod headers;
pub mod health;
pub mod hub;
pub mod input_schema;
pub mod json_integer;
pub mod listen;
pub mod memory_limit;
pub mod metrics;
pub mod openapi;
pub mod pdf;
pub mod public;
pub mod recent;
pub mod routes;
pub mod server;
pub mod state;
pub mod stream;
pub mod times;
pub mod web;
pub mod wire;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

pub use error::{ApiError, ApiResult};
pub use state::{ApiConfig, AppState, Health};

/// The router of a cluster process other than 0 (`--peers`, `--process N`): `/healthz`,
/// `/readyz` (its partitions caught up) and `/metrics` (its source, its engine share); every
/// other route answers 404 naming process 0, which holds the views and serves the API.
pub fn follower_router(state: AppState) -> Router {
    let process = state.config.cluster.map_or(0, |c| c.process);
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(move || async move {
            ApiError::NotFound(format!(
                "route (this is process {process} of a cluster: it serves only /healthz, /readyz \
                 and /metrics; process 0 serves the API)"
            ))
        })
        .layer(axum::middleware::map_response(headers::protect))
        .with_state(state)
        .merge(
            Router::new()
                .route("/metrics", get(metrics::serve_metrics))
                .with_state(metrics),
        )
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(routes::cases::router())
        .merge(routes::sightings::router())
        .merge(routes::responsibles::router())
        .merge(routes::views::router())
        .merge(routes::hotspots::router())
        .merge(routes::engine::router())
        .merge(routes::reports::router())
        .merge(auth::router())
        .merge(grafana::router())
        .merge(web::router())
        .merge(public::router())
        .route("/api/v1/stream", get(stream::handler))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::map_response(headers::protect));
    let metrics = state.metrics.clone();
    let tracked = api.route_layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        metrics::track,
    ));
    tracked.with_state(state).merge(
        Router::new()
            .route("/metrics", get(metrics::serve_metrics))
            .with_state(metrics),
    )
}
