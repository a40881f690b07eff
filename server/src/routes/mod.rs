//! HTTP handlers, named `resource_verb`.

mod events;
mod meta;
mod notifications;
mod preferences;
mod privacy;
mod stats;
pub use events::MAX_BATCH as MAX_EVENTS_BATCH;
#[doc(hidden)]
pub use events::{action_dedup_id, validate_events_json, Judged as JudgedEvents, Rejection as EventRejection};
mod journeys;
pub(crate) mod segments;
mod subscriptions;
mod users;

use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::error::ErrorCode;
use crate::{AppError, AppState};

/// The API routes (no static files).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(meta::health_read))
        .route("/metrics", get(meta::metrics_read))
        .route("/v1/vapid-public-key", get(meta::vapid_public_key_read))
        .route(
            "/v1/subscriptions",
            post(subscriptions::subscriptions_create).delete(subscriptions::subscriptions_delete),
        )
        .route("/v1/subscriptions/lookup", post(subscriptions::subscriptions_lookup))
        .route(
            "/v1/subscriptions/topics",
            post(subscriptions::subscriptions_topics_change),
        )
        .route("/v1/subscriptions/swap", post(subscriptions::subscriptions_swap))
        .route("/v1/preferences", post(preferences::preferences_change))
        .route("/v1/preferences/lookup", post(preferences::preferences_lookup))
        .route("/v1/events", post(events::events_create))
        .route("/v1/stats", get(stats::stats_read))
        .route("/v1/stats.csv", get(stats::stats_csv_read))
        .route(
            "/v1/notify",
            // A batch of 1,000 users with their data is ~150 kB; admin only,
            // and the token is checked before the body is read.
            post(notifications::notifications_create)
                .layer(DefaultBodyLimit::max(crate::personal::MAX_NOTIFY_BODY_BYTES)),
        )
        .route("/v1/notifications", get(notifications::notifications_list))
        .route("/v1/notifications.csv", get(notifications::notifications_csv))
        .route(
            "/v1/notifications/{id}",
            get(notifications::notifications_read).delete(notifications::notifications_cancel),
        )
        .route(
            "/v1/users/{id}",
            get(users::users_read)
                .put(users::users_put)
                .delete(privacy::users_erase),
        )
        .route(
            "/v1/track",
            post(users::track_create).layer(DefaultBodyLimit::max(crate::users::MAX_TRACK_BODY_BYTES)),
        )
        .route("/v1/users/{id}/export", get(privacy::users_export))
        .route(
            "/v1/users/{id}/preferences",
            get(preferences::users_preferences_read).put(preferences::users_preferences_put),
        )
        .route("/v1/segments", get(segments::segments_list))
        .route(
            "/v1/segments/{id}",
            get(segments::segments_read)
                .put(segments::segments_put)
                .delete(segments::segments_delete),
        )
        .route("/v1/journeys", get(journeys::journeys_list))
        .route("/v1/journeys.csv", get(journeys::journeys_csv))
        .route(
            "/v1/journeys/{id}",
            get(journeys::journeys_read)
                .put(journeys::journeys_put)
                .delete(journeys::journeys_delete),
        )
        .route("/v1/devices/{anon_id}", delete(privacy::devices_erase))
        // After the routes: it applies to those already added. axum still
        // sets the `Allow` header.
        .method_not_allowed_fallback(method_not_allowed)
}

/// A path's id: 1 to 200 bytes of UTF-8 without control characters
/// (PostgreSQL text cannot hold NUL), or a 400 naming `field`.
pub(crate) fn path_id(
    path: Result<Path<String>, PathRejection>,
    field: &str,
    code: ErrorCode,
) -> Result<String, AppError> {
    match path {
        Ok(Path(id)) if crate::users::valid_user_id(&id) => Ok(id),
        _ => Err(AppError::invalid(
            code,
            format!("{field}: expected 1 to 200 bytes of UTF-8 without control characters"),
        )),
    }
}

/// The user id of `/v1/users/{id}`.
pub(crate) fn path_user(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    path_id(path, "id", ErrorCode::InvalidUser)
}

/// Fallback for unknown paths: a JSON 404 like every other error.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// Fallback for known paths with another method: a JSON 405 (not axum's empty one).
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Fallback of the static folders: a JSON 404 for a missing file, a JSON 405
/// (with `Allow: GET, HEAD`) for any method but GET and HEAD.
pub async fn static_fallback(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        return AppError::NotFound.into_response();
    }
    let allow = [(header::ALLOW, "GET, HEAD")];
    (allow, AppError::MethodNotAllowed).into_response()
}
