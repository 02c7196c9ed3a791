//! `/healthz` (the process answers) and `/readyz` (state rebuilt from the log and the engine
//! caught up with it; 503 before that and while shutting down). With `--mysql` the body also
//! says whether MySQL answers (`"mysql": {"up": …}`), without failing readiness: reads are
//! served from the engine either way.

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
    let mut body = serde_json::json!({
        "ready": ready,
        "tick": state.engine.store().tick(),
        "stopping": state.health.is_stopping(),
    });
    // a cluster process: where it sits, and the tick complete on every process
    if let Some(c) = &state.config.cluster {
        body["cluster"] = serde_json::json!({
            "process": c.process,
            "processes": c.processes,
            "completed_tick": state.engine.completed(),
        });
    }
    // MySQL down stops writes, not reads: reported here, readiness unchanged
    if let Some(m) = &state.mysql {
        body["mysql"] = m.health().json();
    }
    let body = Json(body);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
