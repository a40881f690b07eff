//! `POST /v1/notify` (admin), `GET` and `DELETE /v1/notifications/{id}`;
//! what a notification may hold and how it becomes a push is
//! [`crate::notification`], when it is due [`crate::store::Schedule`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::notification::NotifyRequest;
use crate::personal::Outcome;
use crate::store::now_ms;
use crate::{AppError, AppState};

/// `POST /v1/notify` → 202 `{ id, recipients, scheduled, defaulted_time_zone,
/// too_large }` once the job and all its deliveries are in the database,
/// each due when `deliver` says on its recipient's clock, each with its own
/// payload when the copy is personal (see [`crate::personal`]); with
/// `dry_run`, 200 and what would happen, nothing written.
pub async fn notifications_create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(mut req): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    super::segments::resolve(&state, &mut req.to).await?;
    let prepared = req.prepare_send(now_ms())?;
    crate::respect::known_category(
        &state.settings.delivery_policy,
        prepared.notification.category.as_deref(),
        "category",
        ErrorCode::InvalidNotification,
    )?;
    let created = if crate::personal::needs_rendering(&prepared) {
        let id = prepared.notification.id.clone();
        match crate::personal::send(&state, prepared).await? {
            Outcome::DryRun(answer) => return Ok((StatusCode::OK, Json(answer))),
            Outcome::Created(created) => (id, created),
        }
    } else {
        let created = state
            .store
            .notification_create_scheduled(
                &prepared.notification,
                &prepared.schedule,
                &state.settings.default_zone(),
            )
            .await?;
        (prepared.notification.id, created)
    };
    let (prepared_id, created) = created;
    // A repeated idempotency key answers the first notification (its id,
    // not the one just prepared) and enqueues nothing: counted once.
    if created.id == prepared_id {
        state
            .metrics
            .count_scheduled(u64::try_from(created.scheduled).unwrap_or(0));
    }
    if created.scheduled < created.recipients - created.too_large - created.holdout {
        state.wake.notify_waiters();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": created.id,
            "recipients": created.recipients,
            "scheduled": created.scheduled,
            "defaulted_time_zone": created.defaulted_time_zone,
            "too_large": created.too_large,
            "holdout": created.holdout,
        })),
    ))
}

/// `GET /v1/notifications/{id}` → per-status counts.
pub async fn notifications_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let id = notification_id(path)?;
    let by = crate::variants::breakdown(query.as_deref())?;
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    let mut answer = json!({ "id": id, "counts": counts });
    if let Some(experiment) = crate::variants::experiment(&state, &id, by.as_deref()).await? {
        answer["experiment"] = experiment;
    }
    Ok(Json(answer))
}

/// `DELETE /v1/notifications/{id}` → 200 `{ id, counts }` after cancelling
/// every delivery not sent yet (see [`crate::Store::notification_cancel`]
/// for one a worker holds at that moment). Repeating it changes nothing.
pub async fn notifications_cancel(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = notification_id(path)?;
    let cancelled = state.store.notification_cancel(&id).await?.ok_or(AppError::NotFound)?;
    state.metrics.count_cancelled(cancelled);
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(json!({ "id": id, "counts": counts })))
}

/// The id of `/v1/notifications/{id}`. No notification has one that is not
/// a valid path id (ours are 32 hex digits), so another is a 404 like any
/// unknown id, without asking the database (PostgreSQL text cannot hold NUL).
fn notification_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    match path {
        Ok(Path(id)) if crate::users::valid_user_id(&id) => Ok(id),
        _ => Err(AppError::NotFound),
    }
}
