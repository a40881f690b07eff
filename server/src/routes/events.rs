//! `POST /v1/events`: batched funnel and notification events from pages and
//! workers. Public, so strictly validated and bounded; duplicates (same id)
//! are stored once; no IP address or user agent is kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{ApiJson, ClientAddress};
use crate::store::{now_ms, Event};
use crate::{AppError, AppState};

/// Most events in one batch.
pub const MAX_BATCH: usize = 100;
/// Tolerated client clock skew into the future.
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// Oldest accepted event (offline pages flush late, but not months late).
const MAX_AGE_MS: i64 = 30 * 24 * 3600 * 1000;

/// Event types the funnel knows.
pub const TYPES: &[&str] = &[
    "prompt_shown",
    "prompt_accepted",
    "prompt_dismissed",
    "native_granted",
    "native_denied",
    "native_dismissed",
    "subscribed",
    "unsubscribed",
    "notification_shown",
    "notification_clicked",
    "notification_dismissed",
    "conversion",
];

/// Body of `POST /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    events: Vec<EventJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventJson {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    prompt: Option<String>,
    variant: Option<String>,
    trigger: Option<String>,
    anon: Option<String>,
    delivery: Option<String>,
    action: Option<String>,
    at: Option<i64>,
}

fn short(field: &str, value: &Option<String>) -> Result<(), AppError> {
    if value.as_deref().is_some_and(|v| v.len() > 200) {
        return Err(AppError::invalid(
            "invalid_event",
            format!("{field}: at most 200 characters"),
        ));
    }
    Ok(())
}

fn validate(i: usize, e: EventJson, now: i64) -> Result<Event, AppError> {
    if !TYPES.contains(&e.kind.as_str()) {
        return Err(AppError::invalid(
            "invalid_event",
            format!("events[{i}].type: unknown event type {:?}", e.kind),
        ));
    }
    let at = e.at.unwrap_or(now);
    if at > now + MAX_FUTURE_MS {
        return Err(AppError::invalid(
            "invalid_event",
            format!("events[{i}].at: in the future"),
        ));
    }
    if at < now - MAX_AGE_MS {
        return Err(AppError::invalid(
            "invalid_event",
            format!("events[{i}].at: older than 30 days"),
        ));
    }
    for (field, value) in [
        ("id", &e.id),
        ("prompt", &e.prompt),
        ("variant", &e.variant),
        ("trigger", &e.trigger),
        ("anon", &e.anon),
        ("delivery", &e.delivery),
        ("action", &e.action),
    ] {
        short(&format!("events[{i}].{field}"), value)?;
    }
    Ok(Event {
        id: e.id.unwrap_or_else(super::notifications::random_id),
        kind: e.kind,
        prompt: e.prompt,
        variant: e.variant,
        trigger: e.trigger,
        anon_id: e.anon,
        delivery: e.delivery,
        action: e.action.filter(|a| !a.is_empty()),
        at_ms: at,
    })
}

/// `POST /v1/events` `{ events: [...] }` → 202 `{ accepted, stored }`
/// (`stored` < `accepted` when some ids were already stored).
pub async fn events_create(
    State(state): State<AppState>,
    client: ClientAddress,
    ApiJson(req): ApiJson<EventsRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    if !state.limiter.allow(client.0) {
        return Err(AppError::RateLimited);
    }
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(AppError::invalid(
            "invalid_batch",
            format!("events: expected 1 to {MAX_BATCH} events"),
        ));
    }
    let now = now_ms();
    let events = req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| validate(i, e, now))
        .collect::<Result<Vec<_>, _>>()?;
    let stored = state.store.events_insert(&events).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": events.len(), "stored": stored })),
    ))
}
