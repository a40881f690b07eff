//! `POST /v1/notify` (admin) and `GET /v1/notifications/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::extract::{Admin, ApiJson};
use crate::store::{NewNotification, Recipients};
use crate::{AppError, AppState};

/// Largest plaintext every browser accepts (Firefox for Android: 3052 bytes).
pub const MAX_PLAINTEXT: usize = 3052;
/// Room kept for the per-delivery id the workers add.
const DELIVERY_ID_ROOM: usize = 64;
/// Default time a push service keeps an undelivered message: 4 weeks.
const DEFAULT_TTL: u32 = 28 * 24 * 3600;

/// Body of `POST /v1/notify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    to: Target,
    notification: NotificationJson,
    ttl: Option<u32>,
    urgency: Option<String>,
    topic: Option<String>,
    idempotency_key: Option<String>,
}

/// `{ topic }`, `{ user }` or `{ all: true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    topic: Option<String>,
    user: Option<String>,
    all: Option<bool>,
}

/// What the service worker shows; serialised as the push payload.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NotificationJson {
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    badge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renotify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require_interaction: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    silent: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<ActionJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ActionJson {
    action: String,
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

fn recipients(to: Target) -> Result<Recipients, AppError> {
    match (to.topic, to.user, to.all) {
        (Some(topic), None, None) if !topic.is_empty() => Ok(Recipients::Topic(topic)),
        (None, Some(user), None) if !user.is_empty() => Ok(Recipients::User(user)),
        (None, None, Some(true)) => Ok(Recipients::All),
        _ => Err(AppError::invalid(
            "invalid_target",
            "to: expected exactly one of { topic }, { user } or { all: true }",
        )),
    }
}

fn check_headers(req: &NotifyRequest) -> Result<(), AppError> {
    if req.ttl.is_some_and(|ttl| ttl > DEFAULT_TTL) {
        return Err(AppError::invalid(
            "invalid_ttl",
            format!("ttl: at most {DEFAULT_TTL} seconds (4 weeks)"),
        ));
    }
    if req
        .urgency
        .as_deref()
        .is_some_and(|u| !["very-low", "low", "normal", "high"].contains(&u))
    {
        return Err(AppError::invalid(
            "invalid_urgency",
            "urgency: expected very-low, low, normal or high",
        ));
    }
    // RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
    let topic_ok = |t: &str| {
        !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if req.topic.as_deref().is_some_and(|t| !topic_ok(t)) {
        return Err(AppError::invalid(
            "invalid_topic",
            "topic: expected 1 to 32 characters of [A-Za-z0-9_-] (RFC 8030)",
        ));
    }
    if req
        .idempotency_key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 200)
    {
        return Err(AppError::invalid(
            "invalid_idempotency_key",
            "idempotency_key: expected 1 to 200 characters",
        ));
    }
    if req.notification.title.trim().is_empty() {
        return Err(AppError::invalid(
            "invalid_notification",
            "notification.title: required",
        ));
    }
    Ok(())
}

/// The payload JSON with Askwell's marker, checked against the portable size limit.
fn payload(notification: &NotificationJson) -> Result<String, AppError> {
    let mut value =
        serde_json::to_value(notification).map_err(|e| AppError::invalid("invalid_notification", e.to_string()))?;
    if let Value::Object(object) = &mut value {
        object.insert("askwell".into(), json!(1));
    }
    let text = value.to_string();
    if text.len() + DELIVERY_ID_ROOM > MAX_PLAINTEXT {
        let limit = MAX_PLAINTEXT - DELIVERY_ID_ROOM;
        return Err(AppError::PayloadTooLarge(format!(
            "notification: {} bytes of JSON; at most {limit} fit every browser's push limit ({MAX_PLAINTEXT} bytes)",
            text.len()
        )));
    }
    Ok(text)
}

/// `POST /v1/notify` → 202 `{ id, recipients }` once the job and all its
/// deliveries are in the database.
pub async fn notifications_create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    check_headers(&req)?;
    let payload = payload(&req.notification)?;
    let notification = NewNotification {
        id: random_id(),
        idempotency_key: req.idempotency_key,
        payload,
        ttl: req.ttl.unwrap_or(DEFAULT_TTL),
        urgency: req.urgency,
        topic: req.topic,
        to: recipients(req.to)?,
    };
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

/// 128 random bits, hex: unguessable, so delivery ids in payloads cannot be forged.
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
