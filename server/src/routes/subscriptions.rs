//! Subscriptions: create/update, look up, change topics, delete, swap.
//! Everything after creation is proven by possession of the endpoint and its
//! `auth` secret, which only the browser (and we) know.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::ApiJson;
use crate::store::{Attribution, NewSubscription, StoredSubscription, Swap, TopicsChange, Upsert};
use crate::{validate, AppError, AppState};

/// `PushSubscription.toJSON()` as browsers send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionJson {
    endpoint: String,
    #[serde(rename = "expirationTime")]
    expiration_time: Option<f64>,
    keys: KeysJson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysJson {
    p256dh: String,
    auth: String,
}

/// Body of `POST /v1/subscriptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    subscription: SubscriptionJson,
    user: Option<String>,
    /// The app backend's proof that this device belongs to `user`
    /// (hex HMAC-SHA256 of the user id, see [`crate::secret::user_proof`]).
    #[serde(rename = "userProof")]
    user_proof: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    /// What the person reads for each topic ("Replies from Bill"), shown
    /// by the preference centre; keys must be among `topics`.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// The page's anonymous device id, for the funnel.
    anon: Option<String>,
    /// The prompt that won this subscription, for the funnel.
    prompt: Option<String>,
    /// Its variant.
    variant: Option<String>,
    /// The device's IANA time zone (the page's
    /// `Intl.DateTimeFormat().resolvedOptions().timeZone`), for journeys.
    /// Any value is accepted: one the bundled tz database does not know (or
    /// not a string) is stored as NULL — a subscriber is never lost over a
    /// zone name.
    time_zone: Option<Value>,
}

/// Proof of possession: the endpoint and its auth secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Possession {
    pub(super) endpoint: String,
    pub(super) auth: String,
}

/// Body of `POST /v1/subscriptions/topics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsRequest {
    endpoint: String,
    auth: String,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    /// Labels of topics in `add` (as in `POST /v1/subscriptions`).
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Body of `POST /v1/subscriptions/swap` (from `pushsubscriptionchange`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    old: Possession,
    subscription: SubscriptionJson,
}

fn checked(
    state: &AppState,
    sub: &SubscriptionJson,
    user: Option<String>,
    topics: Vec<String>,
    time_zone: Option<&Value>,
) -> Result<NewSubscription, AppError> {
    // Stored as the URL parser writes it: another spelling of one endpoint
    // (`HTTPS://HOST:443/…`) is the same device, and must meet the guards
    // that hold an endpoint to its first subscriber.
    let endpoint = String::from(validate::endpoint(&sub.endpoint, state.settings.endpoints)?);
    validate::p256dh(&sub.keys.p256dh)?;
    validate::auth(&sub.keys.auth)?;
    validate::topics("topics", &topics)?;
    if user
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.len() > 200 || u.chars().any(char::is_control))
    {
        return Err(AppError::invalid(
            ErrorCode::InvalidUser,
            "user: expected 1 to 200 printable characters",
        ));
    }
    let expiration_ms = sub
        .expiration_time
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| t as i64);
    Ok(NewSubscription {
        endpoint,
        p256dh: validate::canonical_base64(&sub.keys.p256dh),
        auth: validate::canonical_base64(&sub.keys.auth),
        user,
        expiration_ms,
        topics,
        time_zone: time_zone.and_then(Value::as_str).and_then(crate::users::time_zone),
    })
}

pub(super) async fn possessed(state: &AppState, endpoint: &str, auth: &str) -> Result<StoredSubscription, AppError> {
    let canonical = validate::canonical_endpoint(endpoint);
    let mut found = state.store.subscription_find(&canonical, auth).await?;
    if found.is_none() && canonical != endpoint {
        // A row stored as sent, before endpoints were stored canonically,
        // stays reachable by the device that holds it (to delete it, say).
        found = state.store.subscription_find(endpoint, auth).await?;
    }
    found.ok_or(AppError::UnknownSubscription)
}

fn describe(sub: &StoredSubscription) -> Value {
    json!({ "id": sub.id, "user": sub.user, "topics": sub.topics })
}

/// Checks that the app's backend vouched for binding this device to `user`.
fn proven_user(state: &AppState, user: Option<&str>, proof: Option<&str>) -> Result<(), AppError> {
    let Some(user) = user else { return Ok(()) };
    let Some(secret) = state.settings.identity_secret.as_deref() else {
        return Err(AppError::IdentityUnproven(
            "user: binding a device to a user needs ASKWELL_IDENTITY_SECRET on the server and a userProof from the app's backend",
        ));
    };
    match proof {
        Some(proof) if crate::secret::user_proven(secret, user, proof) => Ok(()),
        Some(_) => Err(AppError::IdentityUnproven(
            "userProof: does not match user (expected hex HMAC-SHA256 of the user id with ASKWELL_IDENTITY_SECRET)",
        )),
        None => Err(AppError::IdentityUnproven(
            "userProof: required with user (hex HMAC-SHA256 of the user id, made by the app's backend)",
        )),
    }
}

/// `POST /v1/subscriptions` → 201 `{ id, created }`. The same endpoint again
/// (proven by the same auth secret) updates it; under another auth secret it
/// is a 409 and nothing changes. A `user` needs its `userProof` (403).
pub async fn subscriptions_create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let labels = validate::topic_labels(&req.labels, &req.topics)?;
    let new = checked(&state, &req.subscription, req.user, req.topics, req.time_zone.as_ref())?;
    proven_user(&state, new.user.as_deref(), req.user_proof.as_deref())?;
    let attribution = Attribution {
        anon: req.anon,
        prompt: req.prompt,
        variant: req.variant,
    };
    for (field, value) in [
        ("anon", &attribution.anon),
        ("prompt", &attribution.prompt),
        ("variant", &attribution.variant),
    ] {
        // Control characters: PostgreSQL text cannot hold NUL (a 500 otherwise).
        if value
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.len() > 200 || v.chars().any(char::is_control))
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidAttribution,
                format!("{field}: expected 1 to 200 printable characters"),
            ));
        }
    }
    let (id, created) = match state.store.subscription_upsert(&new).await? {
        Upsert::Created(id) => (id, true),
        Upsert::Updated(id) => (id, false),
        Upsert::HeldByAnother => return Err(AppError::SubscriptionHeld),
    };
    if attribution != Attribution::default() {
        state.store.subscription_attribute(id, &attribution).await?;
    }
    state.store.subscription_topic_labels_set(id, &labels).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "created": created }))))
}

/// `POST /v1/subscriptions/lookup` → what the server knows about this subscription.
pub async fn subscriptions_lookup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Possession>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(describe(&possessed(&state, &req.endpoint, &req.auth).await?)))
}

/// `POST /v1/subscriptions/topics` `{ endpoint, auth, add, remove }` → `{ topics }`.
pub async fn subscriptions_topics_change(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TopicsRequest>,
) -> Result<Json<Value>, AppError> {
    validate::topics("add", &req.add)?;
    validate::topics("remove", &req.remove)?;
    let labels = validate::topic_labels(&req.labels, &req.add)?;
    let sub = possessed(&state, &req.endpoint, &req.auth).await?;
    let topics = match state
        .store
        .subscription_topics_change(sub.id, &req.add, &req.remove, validate::MAX_TOPICS)
        .await?
    {
        TopicsChange::Changed(topics) => topics,
        TopicsChange::Gone => return Err(AppError::UnknownSubscription),
        TopicsChange::OverLimit => {
            return Err(AppError::invalid(
                ErrorCode::InvalidTopic,
                format!("add: a subscription holds at most {} topics", validate::MAX_TOPICS),
            ))
        }
    };
    state.store.subscription_topic_labels_set(sub.id, &labels).await?;
    Ok(Json(json!({ "topics": topics })))
}

/// `DELETE /v1/subscriptions` `{ endpoint, auth }` → 204.
pub async fn subscriptions_delete(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Possession>,
) -> Result<StatusCode, AppError> {
    let sub = possessed(&state, &req.endpoint, &req.auth).await?;
    state.store.subscription_delete(sub.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/subscriptions/swap` `{ old: { endpoint, auth }, subscription }` →
/// 201 `{ id }`, keeping topics and user.
pub async fn subscriptions_swap(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SwapRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let old = possessed(&state, &req.old.endpoint, &req.old.auth).await?;
    let new = checked(&state, &req.subscription, None, Vec::new(), None)?;
    let id = match state.store.subscription_swap(old.id, &new).await? {
        Swap::Done(id) => id,
        Swap::Held => return Err(AppError::SubscriptionHeld),
        Swap::Gone => return Err(AppError::UnknownSubscription),
    };
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}
