//! Health, metrics and the VAPID public key.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::{AppError, AppState};

/// `GET /healthz`: the process is up and the database answers.
pub async fn health_read(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let schema = state.store.schema_version().await?;
    Ok(Json(json!({ "status": "ok", "schema": schema })))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics_read(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let depth = state.store.queue_depth().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(depth),
    ))
}

/// `GET /v1/vapid-public-key`: the key browsers pass to `pushManager.subscribe`.
pub async fn vapid_public_key_read(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "publicKey": state.vapid.public_key_base64() }))
}
