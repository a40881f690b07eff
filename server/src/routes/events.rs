//! `POST /v1/events`: batched funnel and notification events from pages and
//! workers. Public, so strictly validated and bounded; duplicates (same id)
//! are stored once; no IP address or user agent is kept.
//!
//! A batch is judged event by event: valid events are stored even when
//! others are rejected (the answer lists each rejection with its reason), so
//! one bad event never makes a page drop its good ones. A batch with no valid
//! event is a 400.

use askwell::model::EventKind;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::{is_admin, ApiBytes, ClientAddress};
use crate::secret::random_id;
use crate::store::{now_ms, Event};
use crate::{AppError, AppState};

/// Most events in one batch.
pub const MAX_BATCH: usize = 100;
/// Tolerated client clock skew into the future.
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// Oldest accepted event (offline pages flush late, but not months late).
const MAX_AGE_MS: i64 = 30 * 24 * 3600 * 1000;
/// Longest id, name or label.
const MAX_TEXT: usize = 200;

/// Body of `POST /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    events: Vec<Value>,
    /// Simulated data, kept apart from real stats; needs the admin token.
    #[serde(default)]
    synthetic: bool,
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
    name: Option<String>,
    at: Option<i64>,
}

/// Why one event was rejected.
#[doc(hidden)]
#[derive(Debug)]
pub struct Rejection {
    /// Its index in the batch.
    pub index: usize,
    /// `events[i].field: why`.
    pub message: String,
}

fn validate(i: usize, raw: Value, now: i64, synthetic: bool) -> Result<Event, Rejection> {
    let reject = |message: String| Rejection {
        index: i,
        message: format!("events[{i}]{message}"),
    };
    let e: EventJson = serde_json::from_value(raw).map_err(|err| reject(format!(": {err}")))?;
    let Some(kind) = EventKind::parse(&e.kind) else {
        return Err(reject(format!(".type: unknown event type {:?}", e.kind)));
    };
    // The server records these from what it stores (a subscription posted
    // after a prompt, a deletion, a push service's 201), so no client can
    // claim them; only simulations, with the admin token, post them as
    // synthetic data.
    if kind.recorded_by_server() && !synthetic {
        return Err(reject(format!(".type: {} is recorded by the server", e.kind)));
    }
    if kind == EventKind::Conversion && e.name.as_deref().is_none_or(str::is_empty) {
        return Err(reject(".name: a conversion needs a name".into()));
    }
    let at = e.at.unwrap_or(now);
    if at > now + MAX_FUTURE_MS {
        return Err(reject(".at: in the future".into()));
    }
    if at < now - MAX_AGE_MS {
        return Err(reject(".at: older than 30 days".into()));
    }
    for (field, value) in [
        ("id", &e.id),
        ("prompt", &e.prompt),
        ("variant", &e.variant),
        ("trigger", &e.trigger),
        ("anon", &e.anon),
        ("delivery", &e.delivery),
        ("action", &e.action),
        ("name", &e.name),
    ] {
        if value.as_deref().is_some_and(|v| v.len() > MAX_TEXT) {
            return Err(reject(format!(".{field}: at most {MAX_TEXT} characters")));
        }
        // PostgreSQL text cannot hold NUL (the whole batch would fail with a
        // 500); no id or label needs a control character.
        if value.as_deref().is_some_and(|v| v.chars().any(char::is_control)) {
            return Err(reject(format!(".{field}: control characters are not allowed")));
        }
    }
    Ok(Event {
        id: e.id.unwrap_or_else(random_id),
        kind,
        prompt: e.prompt,
        variant: e.variant,
        trigger: e.trigger,
        anon_id: e.anon,
        delivery: e.delivery,
        action: e.action.filter(|a| !a.is_empty()),
        name: e.name,
        synthetic,
        at_ms: at,
    })
}

/// Parses the body as JSON whatever its `Content-Type`: `navigator.sendBeacon`
/// sends strings as `text/plain`, the one type that needs no CORS preflight.
fn parse(body: &[u8]) -> Result<EventsRequest, AppError> {
    serde_json::from_slice(body).map_err(|err| {
        let code = if err.is_data() {
            ErrorCode::InvalidRequest
        } else {
            ErrorCode::InvalidJson
        };
        AppError::invalid(code, err.to_string())
    })
}

/// Parses and judges a body as [`events_create`] does, minus the rate limit
/// and the database: the events to store and the rejected ones. Public only
/// for the `events` fuzz target (fuzz/), so it drives the handler's own code.
///
/// # Errors
/// What the handler answers for the whole batch (bad JSON or shape, a
/// synthetic batch without the admin token, an empty or oversized batch).
#[doc(hidden)]
pub fn validate_events_json(body: &[u8], now: i64, admin: bool) -> Result<(Vec<Event>, Vec<Rejection>), AppError> {
    let req = parse(body)?;
    if req.synthetic && !admin {
        return Err(AppError::Unauthorized);
    }
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(AppError::invalid(
            ErrorCode::InvalidBatch,
            format!("events: expected 1 to {MAX_BATCH} events"),
        ));
    }
    let (mut events, mut rejected) = (Vec::new(), Vec::new());
    for (i, raw) in req.events.into_iter().enumerate() {
        match validate(i, raw, now, req.synthetic) {
            Ok(event) => events.push(event),
            Err(rejection) => rejected.push(rejection),
        }
    }
    Ok((events, rejected))
}

/// `POST /v1/events` `{ events: [...] }` → 202 `{ accepted, stored, rejected }`
/// (`stored` < `accepted` when some ids were already stored; `rejected`
/// lists `{ index, message }` for events that were not accepted).
pub async fn events_create(
    State(state): State<AppState>,
    client: ClientAddress,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let admin = is_admin(&headers, &state);
    let (events, rejected) = validate_events_json(&body, now_ms(), admin)?;
    // Every valid event costs the client one token (a request at least one),
    // so batch size buys nothing; the admin token (simulations) is not limited.
    if !admin {
        state
            .limiter
            .take(client.0, events.len().max(1))
            .map_err(|refused| AppError::RateLimited {
                retry_after_secs: refused.retry_after_secs,
            })?;
    }
    if events.is_empty() {
        let first = rejected.into_iter().next().map(|r| r.message);
        return Err(AppError::invalid(ErrorCode::InvalidEvent, first.unwrap_or_default()));
    }
    let stored = state.store.events_insert(&events).await?;
    state.metrics.count_events(stored);
    let rejected: Vec<Value> = rejected
        .into_iter()
        .map(|r| json!({ "index": r.index, "message": r.message }))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": events.len(), "stored": stored, "rejected": rejected })),
    ))
}
