//! Privacy controls (admin): erase everything stored about a user or a
//! device, export what is stored about a user. What counts as whose is the
//! store's module doc (`store/privacy.rs`); the README's "Privacy: erase and
//! export" says it for operators.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{path_id, path_user};
use crate::error::ErrorCode;
use crate::extract::Admin;
use crate::store::UserExport;
use crate::{AppError, AppState};

/// `DELETE /v1/users/{id}` → 200 `{ removed: { subscriptions, topics,
/// deliveries, events, notifications } }`, in one transaction. An unknown
/// user is a 200 with zeros: a retried erasure succeeds.
pub async fn users_erase(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let user = path_user(path)?;
    let removed = state.store.user_erase(&user).await?;
    // Counts only: the id itself stays out of the logs too.
    tracing::info!(?removed, "erased a user");
    Ok(Json(json!({ "removed": removed })))
}

/// `DELETE /v1/devices/{anon_id}` → 200 `{ removed: … }` like [`users_erase`].
pub async fn devices_erase(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let anon = path_id(path, "anon_id", ErrorCode::InvalidAnonId)?;
    let removed = state.store.device_erase(&anon).await?;
    tracing::info!(?removed, "erased a device");
    Ok(Json(json!({ "removed": removed })))
}

/// `GET /v1/users/{id}/export` → 200 `{ user, subscriptions, deliveries,
/// events }` (an unknown user: empty lists).
pub async fn users_export(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<UserExport>, AppError> {
    let user = path_user(path)?;
    Ok(Json(state.store.user_export(&user).await?))
}
