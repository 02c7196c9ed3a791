//! `/healthz` (the process answers) and `/readyz` (state rebuilt from the log and the engine
//! caught up with it; 503 before that and while shutting down).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use crate::state::AppState;

/// `GET /healthz`.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ready = state.health.is_ready();
    let body = Json(serde_json::json!({
        "ready": ready,
        "tick": state.engine.store().tick(),
        "stopping": state.health.is_stopping(),
    }));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
