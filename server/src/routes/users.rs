//! What the app's backend tells the server about its users (admin):
//! traits and a time zone (`PUT /v1/users/{id}`), what the server knows of
//! one (`GET /v1/users/{id}`), and events (`POST /v1/track`). Validation is
//! `crate::users`, storage `store/users.rs`; journeys read them from there.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::path_user;
use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::store::{now_ms, PutUser, StoredUser};
use crate::{users, AppError, AppState};

/// `PUT /v1/users/{id}` `{ traits, time_zone? }` → 200 `{ id, traits,
/// time_zone }`, merged (a `null` trait is deleted); creates the user.
pub async fn users_put(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, AppError> {
    let id = path_user(path)?;
    let changes = users::user_changes(body)?;
    match state.store.put_user(&id, &changes).await? {
        PutUser::Stored(user) => Ok(Json(
            json!({ "id": user.id, "traits": user.traits, "time_zone": user.time_zone }),
        )),
        PutUser::TooManyTraits { count } => Err(AppError::invalid(
            ErrorCode::InvalidTrait,
            format!(
                "traits: a user holds at most {} traits (this change would leave {count}; delete some with null)",
                users::MAX_TRAITS
            ),
        )),
    }
}

/// `GET /v1/users/{id}` → 200 `{ id, traits, time_zone, devices }`, or a
/// 404 when the server knows nothing of this user.
pub async fn users_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<StoredUser>, AppError> {
    let id = path_user(path)?;
    state.store.user(&id).await?.map(Json).ok_or(AppError::NotFound)
}

/// `POST /v1/track` `{ events: [...] }` → 202 `{ accepted, duplicates }`
/// (`accepted`: stored now; `duplicates`: ids stored before or earlier in
/// the batch). One bad event rejects the whole batch (400 naming it).
pub async fn track_create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let now = now_ms();
    let batch = users::track_batch(body, now)?;
    let stored = state.store.record_user_events(&batch, now).await?;
    let duplicates = batch.len() - stored.len();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": stored.len(), "duplicates": duplicates })),
    ))
}
