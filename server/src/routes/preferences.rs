//! The preference centre's API: what a device (proven by its endpoint and
//! auth secret, no login) or, for the app's backend, a user (admin) turned
//! off — categories muted, a pause of everything but exempt categories.
//! Enforced when a worker claims (see [`crate::respect`]).
//!
//! - `POST /v1/preferences/lookup` `{ endpoint, auth }` → the device's view.
//! - `POST /v1/preferences` `{ endpoint, auth, categories?, pause? }` → the
//!   same, after the change.
//! - `GET` / `PUT /v1/users/{id}/preferences` (admin) `{ categories?, pause? }`.
//!
//! `categories` maps names to on (`true`) or off (`false`), merged into what
//! is stored; `pause` is `{ "hours" | "days": n }`, `{ "indefinite": true }`
//! or `null` (resume); absent leaves it as it is.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::path_user;
use super::subscriptions::{possessed, Possession};
use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::store::{device_subject, now_ms, user_subject, Preferences, PAUSED_INDEFINITELY};
use crate::validate;
use crate::{AppError, AppState};

/// Longest pause: a year (longer is "indefinite").
const MAX_PAUSE_HOURS: i64 = 366 * 24;

/// Body of `POST /v1/preferences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceChange {
    endpoint: String,
    auth: String,
    #[serde(default)]
    categories: Option<Map<String, Value>>,
    #[serde(default)]
    topics: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    pause: Option<Value>,
}

/// Body of `PUT /v1/users/{id}/preferences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    categories: Option<Map<String, Value>>,
    #[serde(default)]
    topics: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    pause: Option<Value>,
}

/// Tells `"pause": null` (resume: `Some(Null)`) from no `pause` (`None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `POST /v1/preferences/lookup` → the device's preferences.
pub async fn preferences_lookup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Possession>,
) -> Result<Json<Value>, AppError> {
    let sub = possessed(&state, &req.endpoint, &req.auth).await?;
    let subject = device_subject(sub.id);
    let stored = state.store.preferences_get(&subject).await?;
    let labels = state.store.subscription_topic_labels(sub.id).await?;
    Ok(Json(view(&state, &stored, Some((&sub.topics, &labels)))))
}

/// `POST /v1/preferences` → the device's preferences after the change.
pub async fn preferences_change(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<DeviceChange>,
) -> Result<Json<Value>, AppError> {
    let sub = possessed(&state, &req.endpoint, &req.auth).await?;
    let subject = device_subject(sub.id);
    let wanted = Change {
        categories: req.categories.as_ref(),
        topics: req.topics.as_ref(),
        pause: req.pause.as_ref(),
    };
    let changed = change(&state, &subject, wanted).await?;
    let labels = state.store.subscription_topic_labels(sub.id).await?;
    Ok(Json(view(&state, &changed, Some((&sub.topics, &labels)))))
}

/// `GET /v1/users/{id}/preferences` (admin) → the user's preferences.
pub async fn users_preferences_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = path_user(path)?;
    let stored = state.store.preferences_get(&user_subject(&id)).await?;
    Ok(Json(view(&state, &stored, None)))
}

/// `PUT /v1/users/{id}/preferences` (admin) → after the change.
pub async fn users_preferences_put(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<UserChange>,
) -> Result<Json<Value>, AppError> {
    let id = path_user(path)?;
    let wanted = Change {
        categories: req.categories.as_ref(),
        topics: req.topics.as_ref(),
        pause: req.pause.as_ref(),
    };
    let changed = change(&state, &user_subject(&id), wanted).await?;
    Ok(Json(view(&state, &changed, None)))
}

/// What a request asks to change (each absent member: unchanged).
struct Change<'a> {
    categories: Option<&'a Map<String, Value>>,
    topics: Option<&'a Map<String, Value>>,
    pause: Option<&'a Value>,
}

/// Checks a change whole (every bad field named), then stores it merged
/// into what `subject` had.
async fn change(state: &AppState, subject: &str, wanted: Change<'_>) -> Result<Preferences, AppError> {
    let now = now_ms();
    let mut problems = Vec::new();
    let toggles = wanted
        .categories
        .map(|c| read_categories(state, c, &mut problems))
        .unwrap_or_default();
    let topic_toggles = wanted.topics.map(|t| read_topics(t, &mut problems)).unwrap_or_default();
    let paused = wanted.pause.map(|p| read_pause(p, now, &mut problems));
    if !problems.is_empty() {
        return Err(AppError::invalid(ErrorCode::InvalidPreferences, problems.join("; ")));
    }
    // Merged with what is stored inside the store's transaction: two
    // changes at once both count.
    let changed = state
        .store
        .preferences_update(subject, |mut preferences| {
            switch(&mut preferences.muted, toggles);
            switch(&mut preferences.muted_topics, topic_toggles);
            if preferences.muted_topics.len() > validate::MAX_TOPICS {
                return Err(AppError::invalid(
                    ErrorCode::InvalidPreferences,
                    format!("topics: at most {} turned off", validate::MAX_TOPICS),
                ));
            }
            if preferences.muted.len() > askwell::delivery::MAX_CATEGORIES {
                // Without categories in the policy any name is taken: bound
                // what one device or user can make the server keep.
                return Err(AppError::invalid(
                    ErrorCode::InvalidPreferences,
                    format!("categories: at most {} turned off", askwell::delivery::MAX_CATEGORIES),
                ));
            }
            if let Some(paused) = paused.flatten() {
                preferences.paused_until_ms = paused;
            }
            Ok(preferences)
        })
        .await??;
    Ok(changed)
}

/// Applies `toggles` to the sorted list of names turned off: `false` adds
/// a name, `true` removes it.
fn switch(off: &mut Vec<String>, toggles: Vec<(String, bool)>) {
    for (name, on) in toggles {
        off.retain(|m| *m != name);
        if !on {
            off.push(name);
        }
    }
    off.sort_unstable();
}

/// `{ name: bool }`: names the policy knows (any valid name when it names
/// none), never an exempt one (sign-ins must arrive).
fn read_categories(
    state: &AppState,
    categories: &Map<String, Value>,
    problems: &mut Vec<String>,
) -> Vec<(String, bool)> {
    let policy = &state.settings.delivery_policy;
    let mut out = Vec::new();
    for (name, value) in categories {
        let at = format!("categories.{name}");
        let Some(on) = value.as_bool() else {
            problems.push(format!("{at}: expected true (on) or false (off)"));
            continue;
        };
        if !askwell::delivery::is_category(name) {
            problems.push(format!("{at}: a category name is 1 to 64 of A-Z a-z 0-9 _ . : -"));
        } else if !policy.categories.is_empty() && !policy.categories.contains_key(name) {
            let known: Vec<&str> = policy.categories.keys().map(String::as_str).collect();
            problems.push(format!(
                "{at}: not in the delivery policy (expected one of: {})",
                known.join(", ")
            ));
        } else if policy.rules_for(Some(name)).exempt && !on {
            problems.push(format!("{at}: exempt (it always arrives), so it cannot be turned off"));
        } else {
            out.push((name.clone(), on));
        }
    }
    if categories.len() > askwell::delivery::MAX_CATEGORIES {
        problems.push(format!("categories: at most {}", askwell::delivery::MAX_CATEGORIES));
    }
    out
}

/// `{ topic: bool }`: any topic name a subscription could hold (muting one
/// this device is not subscribed to yet is allowed: it stays off when a
/// prompt adds it later).
fn read_topics(topics: &Map<String, Value>, problems: &mut Vec<String>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (name, value) in topics {
        let at = format!("topics.{name}");
        match value.as_bool() {
            None => problems.push(format!("{at}: expected true (on) or false (off)")),
            Some(_) if !validate::is_topic(name) => problems.push(format!(
                "{at}: a topic is 1 to {} printable characters",
                validate::MAX_TOPIC_LEN
            )),
            Some(on) => out.push((name.clone(), on)),
        }
    }
    if topics.len() > validate::MAX_TOPICS {
        problems.push(format!("topics: at most {}", validate::MAX_TOPICS));
    }
    out
}

/// `pause`: `Some(Some(until))` to set, `Some(None)` to resume, `None` on a
/// problem (recorded).
fn read_pause(value: &Value, now: i64, problems: &mut Vec<String>) -> Option<Option<i64>> {
    const EXPECTED: &str =
        "pause: expected null (resume), { \"hours\": n }, { \"days\": n } (up to a year) or { \"indefinite\": true }";
    let Value::Object(members) = value else {
        if value.is_null() {
            return Some(None);
        }
        problems.push(EXPECTED.to_owned());
        return None;
    };
    let hours = match (members.len(), members.iter().next()) {
        (1, Some((key, Value::Bool(true)))) if key == "indefinite" => return Some(Some(PAUSED_INDEFINITELY)),
        (1, Some((key, n))) if key == "hours" => n.as_i64(),
        (1, Some((key, n))) if key == "days" => n.as_i64().map(|d| d.saturating_mul(24)),
        _ => None,
    };
    match hours {
        Some(h) if (1..=MAX_PAUSE_HOURS).contains(&h) => Some(Some(now + h * 3_600_000)),
        _ => {
            problems.push(EXPECTED.to_owned());
            None
        }
    }
}

/// A device's topics, and the labels of those that have one (`(topic,
/// label)`, sorted by topic).
type DeviceTopics<'a> = (&'a [String], &'a [(String, String)]);

/// What the preference centre shows: every category of the policy (label,
/// on, exempt) and any other muted one, the pause, and a device's topics.
fn view(state: &AppState, preferences: &Preferences, topics: Option<DeviceTopics<'_>>) -> Value {
    let policy = &state.settings.delivery_policy;
    let mut categories: Vec<Value> = policy
        .categories
        .iter()
        .map(|(name, c)| {
            json!({ "name": name, "label": c.label, "exempt": c.rules.exempt, "on": !preferences.muted.contains(name) })
        })
        .collect();
    for name in preferences.muted.iter().filter(|m| !policy.categories.contains_key(*m)) {
        categories.push(json!({ "name": name, "label": name, "exempt": false, "on": false }));
    }
    let pause = match preferences.paused_until_ms {
        Some(PAUSED_INDEFINITELY) => json!({ "indefinite": true }),
        Some(until) if until > now_ms() => json!({ "until_ms": until }),
        _ => Value::Null,
    };
    // A device's topics, each on unless muted, then any other muted topic;
    // a user has no topics of their own, only the muted ones.
    let muted = &preferences.muted_topics;
    let (subscribed, labels) = topics.unwrap_or_default();
    let label_of = |name: &String| {
        labels
            .binary_search_by(|(topic, _)| topic.cmp(name))
            .ok()
            .map(|i| labels[i].1.as_str())
    };
    let listed: Vec<Value> = subscribed
        .iter()
        .map(|name| match label_of(name) {
            Some(label) => json!({ "name": name, "label": label, "on": !muted.contains(name) }),
            None => json!({ "name": name, "on": !muted.contains(name) }),
        })
        .chain(
            muted
                .iter()
                .filter(|m| !subscribed.contains(m))
                .map(|name| json!({ "name": name, "on": false })),
        )
        .collect();
    json!({ "categories": categories, "topics": listed, "pause": pause })
}
