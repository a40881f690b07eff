//! HTTP handlers, named `resource_verb`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::{AppError, AppState};

/// The API routes (no static files).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health_read))
        .route("/v1/vapid-public-key", get(vapid_public_key_read))
}

/// `GET /healthz`: the process is up and the database answers.
async fn health_read(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let schema = state.store.schema_version().await?;
    Ok(Json(json!({ "status": "ok", "schema": schema })))
}

/// `GET /v1/vapid-public-key`: the key browsers pass to `pushManager.subscribe`.
async fn vapid_public_key_read(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "publicKey": state.vapid.public_key_base64() }))
}

/// Fallback for unknown paths: a JSON 404 like every other error.
pub async fn not_found() -> AppError {
    AppError::NotFound
}
