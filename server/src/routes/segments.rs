//! Named segments (admin): `PUT /v1/segments/{id}` `{ where }` stores a
//! condition ([`askwell::segment`]), `GET /v1/segments` and
//! `GET /v1/segments/{id}` show them with how many devices each reaches
//! now, `DELETE /v1/segments/{id}` removes one. `POST /v1/notify`
//! `to: { segment }` sends to one ([`resolve`]).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::path_id;
use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::notification::Target;
use crate::store::{now_ms, Audience, Recipients, StoredSegment};
use crate::{AppError, AppState};

fn segment_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let id = path_id(path, "id", ErrorCode::InvalidTarget)?;
    if askwell::journey::is_name(&id) {
        Ok(id)
    } else {
        Err(AppError::invalid(
            ErrorCode::InvalidTarget,
            "id: expected 1 to 64 of A-Z a-z 0-9 _ . : -",
        ))
    }
}

/// A condition as the core reads it, or `invalid_target` naming every bad
/// field under `path`.
fn checked(condition: &Value, path: &str) -> Result<Recipients, AppError> {
    Audience::read(condition, path)
        .map(Recipients::Where)
        .map_err(|problems| AppError::invalid(ErrorCode::InvalidTarget, problems.to_string()))
}

async fn shown(state: &AppState, segment: StoredSegment) -> Result<Value, AppError> {
    let recipients = state
        .store
        .recipient_count(&checked(&segment.condition, "where")?)
        .await?;
    Ok(json!({
        "id": segment.id,
        "where": segment.condition,
        "updated_ms": segment.updated_ms,
        "recipients": recipients,
    }))
}

/// `PUT /v1/segments/{id}` `{ where }` → 200 `{ id, where, updated_ms,
/// recipients, created }`; a bad condition is a 400 naming its path.
pub async fn segments_put(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, AppError> {
    let id = segment_id(path)?;
    let condition = match body {
        Value::Object(mut members) if members.len() == 1 && members.contains_key("where") => {
            members.remove("where").unwrap_or(Value::Null)
        }
        _ => {
            return Err(AppError::invalid(
                ErrorCode::InvalidTarget,
                "expected { \"where\": condition } (see POST /v1/notify's to.where)",
            ))
        }
    };
    checked(&condition, "where")?;
    let updated_ms = now_ms();
    let created = state.store.segment_put(&id, &condition, updated_ms).await?;
    // What was written, not read back: a DELETE right after it is no 404 here.
    let stored = StoredSegment {
        id,
        condition,
        updated_ms,
    };
    let mut answer = shown(&state, stored).await?;
    answer["created"] = Value::Bool(created);
    Ok(Json(answer))
}

/// `GET /v1/segments` → `{ segments: [{ id, where, updated_ms, recipients }] }`.
pub async fn segments_list(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let mut segments = Vec::new();
    for stored in state.store.segments_list().await? {
        segments.push(shown(&state, stored).await?);
    }
    Ok(Json(json!({ "segments": segments })))
}

/// `GET /v1/segments/{id}` → `{ id, where, updated_ms, recipients }`.
pub async fn segments_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = segment_id(path).map_err(|_| AppError::NotFound)?;
    let stored = state.store.segment_get(&id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(shown(&state, stored).await?))
}

/// `DELETE /v1/segments/{id}` → 200 `{ id, deleted: true }`, 404 if none.
/// Notifications already sent to it keep their recipients.
pub async fn segments_delete(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = segment_id(path).map_err(|_| AppError::NotFound)?;
    if !state.store.segment_delete(&id).await? {
        return Err(AppError::NotFound);
    }
    Ok(Json(json!({ "id": id, "deleted": true })))
}

/// `to: { segment }` of `POST /v1/notify`: replaced by the stored
/// condition (as `to: { where }`), read when the notification is enqueued;
/// an unknown name is `invalid_target`.
///
/// # Errors
/// As said; the database's.
pub async fn resolve(state: &AppState, to: &mut Target) -> Result<(), AppError> {
    let Some(name) = to.segment.take() else { return Ok(()) };
    if to.condition.is_some() {
        return Err(AppError::invalid(
            ErrorCode::InvalidTarget,
            "to: expected exactly one of { topic }, { user }, { all: true }, { where } or { segment }",
        ));
    }
    let unknown = || {
        AppError::invalid(
            ErrorCode::InvalidTarget,
            "to.segment: no segment with this id (PUT /v1/segments/{id} first)",
        )
    };
    if !askwell::journey::is_name(&name) {
        return Err(unknown());
    }
    let stored = state.store.segment_get(&name).await?.ok_or_else(unknown)?;
    to.condition = Some(stored.condition);
    Ok(())
}
