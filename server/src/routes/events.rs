//! `POST /v1/events`: batched funnel and notification events from pages and
//! workers. Public, so strictly validated and bounded; duplicates (same id)
//! are stored once; no IP address or user agent is kept.
//!
//! A batch is judged event by event: valid events are stored even when
//! others are rejected (the answer lists each rejection with its reason), so
//! one bad event never makes a page drop its good ones. A batch with no valid
//! event is a 400.
//!
//! `action` events are what a page forwards for a signed-in user (its config's
//! `forward`): name, time, an optional key, and the user with the app
//! backend's proof (`userProof`, as for binding a subscription). A proven one
//! is stored as that user's event (`user_events`, where journeys read it),
//! not in the funnel; one without a valid proof is rejected like any bad
//! event. Its dedup id is derived from the user and the page's event id
//! ([`action_dedup_id`]), so a retried batch stores it once.
//!
//! `traits` events are a signed-in user's traits (`identify(id, { proof,
//! traits })`): the user, the proof as for actions, and `traits` checked as
//! `PUT /v1/users/{id}` checks them. A proven one is merged into the user
//! ([`crate::store::Store::put_user`]: `null` deletes one; created if new);
//! a merge that would leave more than 64 traits is rejected for that event
//! (with the count), like an unproven one, and changes nothing.

use askwell::model::EventKind;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::{is_admin, ApiBytes, ClientAddress};
use crate::secret::{random_id, user_proven};
use crate::store::{now_ms, Event, NewUserEvent, PutUser, Traits, UserChanges, ZoneChange};
use crate::users::{page_traits, valid_user_id, MAX_TRAITS};
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
    /// `action` events only: what it is about (the page's entity id).
    key: Option<String>,
    /// `action` events only: the signed-in user.
    user: Option<String>,
    /// `action` and `traits` events only: the app backend's proof for `user`.
    #[serde(rename = "userProof")]
    user_proof: Option<String>,
    /// `traits` events only: the user's traits to merge.
    traits: Option<Value>,
}

/// A batch judged: what to store where, and what was rejected.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Judged {
    /// Funnel and notification events (the `events` table).
    pub events: Vec<Event>,
    /// Proven forwarded actions: the users' events (`user_events`).
    pub actions: Vec<NewUserEvent>,
    /// Proven traits, to merge into their users, in batch order.
    pub traits: Vec<UserTraits>,
    /// The rejected events, in batch order.
    pub rejected: Vec<Rejection>,
}

/// A proven `traits` event.
#[doc(hidden)]
#[derive(Debug)]
pub struct UserTraits {
    /// Its index in the batch (a merge past the limit rejects it).
    pub index: usize,
    /// The app's user id.
    pub user: String,
    /// Checked as `PUT /v1/users/{id}` checks them (`null` deletes).
    pub traits: Traits,
}

/// One valid event and where it goes.
enum Valid {
    Funnel(Event),
    Action(NewUserEvent),
    Traits(UserTraits),
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

fn validate(i: usize, raw: Value, now: i64, synthetic: bool, secret: Option<&[u8]>) -> Result<Valid, Rejection> {
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
        ("key", &e.key),
        ("user", &e.user),
        ("userProof", &e.user_proof),
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
    if kind == EventKind::Action {
        return action(e, at, synthetic, secret).map(Valid::Action).map_err(reject);
    }
    if kind == EventKind::Traits {
        return user_traits(i, e, synthetic, secret).map(Valid::Traits).map_err(reject);
    }
    for (field, present, only) in [
        ("key", e.key.is_some(), "action"),
        ("user", e.user.is_some(), "action and traits"),
        ("userProof", e.user_proof.is_some(), "action and traits"),
        ("traits", e.traits.is_some(), "traits"),
    ] {
        if present {
            return Err(reject(format!(".{field}: only {only} events have this")));
        }
    }
    Ok(Valid::Funnel(Event {
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
    }))
}

/// A forwarded action (lengths and control characters already checked), or
/// what is wrong with it (`.field: why`). Only the user with a valid proof,
/// the name, the key and the time: nothing else of the action is taken.
fn action(e: EventJson, at: i64, synthetic: bool, secret: Option<&[u8]>) -> Result<NewUserEvent, String> {
    if synthetic {
        return Err(".type: action events are never synthetic".into());
    }
    refuse_foreign(&e, &["traits"], "an action event (id, name, key, at, user, userProof)")?;
    let name = e
        .name
        .filter(|n| askwell::model::is_event_name(n))
        .ok_or(".name: expected 1 to 64 of A-Z a-z 0-9 _ . : -")?;
    let user = proven_user(
        e.user,
        e.user_proof.as_deref(),
        secret,
        "an action",
        "forwarding actions",
    )?;
    Ok(NewUserEvent {
        dedup_id: e.id.as_deref().map(|id| action_dedup_id(&user, id)),
        user,
        name,
        key: e.key.filter(|k| !k.is_empty()),
        at_ms: at,
        properties: Traits::new(),
    })
}

/// A `traits` event (lengths and control characters already checked), or
/// what is wrong with it: only the proven user and the traits are taken.
fn user_traits(index: usize, e: EventJson, synthetic: bool, secret: Option<&[u8]>) -> Result<UserTraits, String> {
    if synthetic {
        return Err(".type: traits events are never synthetic".into());
    }
    refuse_foreign(&e, &["name", "key"], "a traits event (id, at, user, userProof, traits)")?;
    let traits = page_traits(e.traits.ok_or(".traits: required with a traits event")?).map_err(|m| format!(".{m}"))?;
    let user = proven_user(e.user, e.user_proof.as_deref(), secret, "traits", "sending traits")?;
    Ok(UserTraits { index, user, traits })
}

/// A user's event (action, traits) carries none of the funnel's fields
/// (prompt, variant, trigger, anon, delivery, action) nor the `also` fields
/// of the other user kind; the first present one is named (`.anon: not
/// part of {what}`).
fn refuse_foreign(e: &EventJson, also: &[&str], what: &str) -> Result<(), String> {
    let present = [
        ("prompt", e.prompt.is_some()),
        ("variant", e.variant.is_some()),
        ("trigger", e.trigger.is_some()),
        ("anon", e.anon.is_some()),
        ("delivery", e.delivery.is_some()),
        ("action", e.action.is_some()),
        ("traits", e.traits.is_some()),
        ("name", e.name.is_some()),
        ("key", e.key.is_some()),
    ];
    let funnel = &present[..6];
    let other = present[6..].iter().filter(|(field, _)| also.contains(field));
    match funnel.iter().chain(other).find(|(_, is)| *is) {
        Some((field, _)) => Err(format!(".{field}: not part of {what}")),
        None => Ok(()),
    }
}

/// The event's `user` when `proof` is the app backend's for it, or why not
/// (`with`: "an action", "traits"; `doing`: what needs the secret).
fn proven_user(
    user: Option<String>,
    proof: Option<&str>,
    secret: Option<&[u8]>,
    with: &str,
    doing: &str,
) -> Result<String, String> {
    let user = user
        .filter(|u| valid_user_id(u))
        .ok_or_else(|| format!(".user: required with {with} (1 to 200 bytes without control characters)"))?;
    let Some(secret) = secret else {
        return Err(format!(
            ".userProof: {doing} needs ASKWELL_IDENTITY_SECRET on the server"
        ));
    };
    match proof {
        Some(proof) if user_proven(secret, &user, proof) => Ok(user),
        Some(_) => Err(
            ".userProof: does not match user (expected hex HMAC-SHA256 of the user id with ASKWELL_IDENTITY_SECRET)"
                .into(),
        ),
        None => Err(format!(".userProof: required with {with} (made by the app's backend)")),
    }
}

/// The dedup id of a forwarded action: `page:` and 32 hex digits of
/// SHA-256(user, NUL, the page's event id). Namespaced, so a page can never
/// claim an id the app's backend uses with `POST /v1/track` (nor another
/// user's); hashed, so the device's anonymous id, which the page's event ids
/// start with, is not stored with the user.
pub fn action_dedup_id(user: &str, id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(user.as_bytes())
        .chain_update([0])
        .chain_update(id.as_bytes())
        .finalize();
    let mut out = String::with_capacity(5 + 32);
    out.push_str("page:");
    for byte in &digest[..16] {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    out
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
/// and the database: the events to store (funnel events and proven actions,
/// checked against `identity_secret`) and the rejected ones. Public only
/// for the `events` fuzz target (fuzz/), so it drives the handler's own code.
///
/// # Errors
/// What the handler answers for the whole batch (bad JSON or shape, a
/// synthetic batch without the admin token, an empty or oversized batch).
#[doc(hidden)]
pub fn validate_events_json(
    body: &[u8],
    now: i64,
    admin: bool,
    identity_secret: Option<&[u8]>,
) -> Result<Judged, AppError> {
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
    let mut judged = Judged::default();
    for (i, raw) in req.events.into_iter().enumerate() {
        match validate(i, raw, now, req.synthetic, identity_secret) {
            Ok(Valid::Funnel(event)) => judged.events.push(event),
            Ok(Valid::Action(action)) => judged.actions.push(action),
            Ok(Valid::Traits(traits)) => judged.traits.push(traits),
            Err(rejection) => judged.rejected.push(rejection),
        }
    }
    Ok(judged)
}

/// `POST /v1/events` `{ events: [...] }` → 202 `{ accepted, stored, rejected }`
/// (`stored` < `accepted` when some ids were already stored; `rejected`
/// lists `{ index, message }` for events that were not accepted). Funnel
/// events and actions are two writes, funnel first, then one merge per
/// `traits` event; a failure of any is a 500 and the page sends the batch
/// again, which stores nothing twice (a merge again is the same merge). A
/// merge past the trait limit is that event's rejection: a batch of only
/// such is a 400, as a batch with no valid event.
pub async fn events_create(
    State(state): State<AppState>,
    client: ClientAddress,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let admin = is_admin(&headers, &state);
    let now = now_ms();
    let secret = state.settings.identity_secret.as_deref();
    let Judged {
        events,
        actions,
        traits,
        mut rejected,
    } = validate_events_json(&body, now, admin, secret)?;
    let mut accepted = events.len() + actions.len() + traits.len();
    // Every valid event costs the client one token (a request at least one),
    // so batch size buys nothing; the admin token (simulations) is not limited.
    if !admin {
        state
            .limiter
            .take(client.0, accepted.max(1))
            .map_err(|refused| AppError::RateLimited {
                retry_after_secs: refused.retry_after_secs,
            })?;
    }
    if accepted == 0 {
        let first = rejected.into_iter().next().map(|r| r.message);
        return Err(AppError::invalid(ErrorCode::InvalidEvent, first.unwrap_or_default()));
    }
    let mut stored = state.store.events_insert(&events).await?;
    state.metrics.count_events(stored);
    if !actions.is_empty() {
        stored += state.store.record_user_events(&actions, now).await?.len() as u64;
    }
    for UserTraits { index, user, traits } in traits {
        let changes = UserChanges {
            traits,
            time_zone: ZoneChange::Keep,
        };
        match state.store.put_user(&user, &changes).await? {
            PutUser::Stored(_) => stored += 1,
            PutUser::TooManyTraits { count } => {
                accepted -= 1;
                rejected.push(Rejection {
                    index,
                    message: format!(
                        "events[{index}].traits: the user would have {count} traits, at most {MAX_TRAITS}; nothing changed"
                    ),
                });
            }
        }
    }
    rejected.sort_by_key(|r| r.index);
    if accepted == 0 {
        let first = rejected.into_iter().next().map(|r| r.message);
        return Err(AppError::invalid(ErrorCode::InvalidEvent, first.unwrap_or_default()));
    }
    let rejected: Vec<Value> = rejected
        .into_iter()
        .map(|r| json!({ "index": r.index, "message": r.message }))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": accepted, "stored": stored, "rejected": rejected })),
    ))
}
