//! The views, all at one tick, with the source position that tick covers.

use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::state::AppState;
pub use lpm_service::position::{Coverage, PartitionOffset, SourcePosition};

/// The view routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/views", get(all_views))
        .route("/api/v1/views/{name}", get(one_view))
}

/// Every view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewsOut {
    /// The engine tick (`null` before the first).
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The views, in the shape of `oracle.py`.
    #[schema(value_type = Object)]
    pub views: serde_json::Value,
}

/// One view at one tick.
#[derive(Serialize, ToSchema)]
pub struct ViewOut {
    /// The engine tick.
    pub tick: Option<u64>,
    /// Source positions the tick covers.
    pub positions: Vec<SourcePosition>,
    /// The view name.
    pub view: String,
    /// Its value: an object of counts, or for `responsible_load` an array of rows.
    pub value: serde_json::Value,
}

/// The view names (defined once, in the engine).
pub const VIEW_NAMES: [&str; 9] = lpm_engine::ViewName::NAMES;

/// `{name}` of `/api/v1/views/{name}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ViewName {
    /// The view.
    #[param(schema_with = view_name_schema)]
    pub name: String,
}

fn view_name_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::input_schema::one_of(&VIEW_NAMES, false)
}

fn snapshot(state: &AppState) -> ApiResult<(Option<u64>, Vec<SourcePosition>, serde_json::Value)> {
    let (tick, views) = state.engine.store().read_shared();
    let positions = tick.map(|t| state.position_at(t)).into_iter().collect();
    let mut json = serde_json::to_value(&*views)
        .map_err(|e| ApiError::Internal(format!("views did not serialise: {e}")))?;
    // cells are shown by their own route, which applies the readers' threshold
    if let Some(all) = json.as_object_mut() {
        all.remove(lpm_engine::ViewName::Hotspots.name());
    }
    Ok((tick, positions, json))
}

/// Every view.
#[utoipa::path(get, path = "/api/v1/views", tag = "views",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "Every view at one tick", body = ViewsOut)))]
pub async fn all_views(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
) -> ApiResult<axum::Json<ViewsOut>> {
    let (tick, positions, views) = snapshot(&state)?;
    Ok(axum::Json(ViewsOut {
        tick,
        positions,
        views,
    }))
}

/// One view by name.
#[utoipa::path(get, path = "/api/v1/views/{name}", tag = "views",
    params(ViewName),
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The view at one tick", body = ViewOut),
        (status = 404, description = "No such view", body = ErrorBody)))]
pub async fn one_view(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(_who): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ViewOut>> {
    if !VIEW_NAMES.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!("view {name}")));
    }
    let (tick, positions, mut views) = snapshot(&state)?;
    let value = views
        .get_mut(&name)
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    Ok(axum::Json(ViewOut {
        tick,
        positions,
        view: name,
        value,
    }))
}
