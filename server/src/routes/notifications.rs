//! `POST /v1/notify` (admin) and `GET /v1/notifications/{id}`; what a
//! notification may hold and how it becomes a push is [`crate::notification`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::extract::{Admin, ApiJson};
use crate::notification::NotifyRequest;
use crate::{AppError, AppState};

/// `POST /v1/notify` → 202 `{ id, recipients }` once the job and all its
/// deliveries are in the database.
pub async fn notifications_create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let notification = req.prepare()?;
    let (id, recipients) = state.store.notification_create(&notification).await?;
    state.wake.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "recipients": recipients })),
    ))
}

/// `GET /v1/notifications/{id}` → per-status counts.
pub async fn notifications_read(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(json!({ "id": id, "counts": counts })))
}
