//! A notification from its request to the payload the workers push: the
//! checks and the payload building behind both `POST /v1/notify` and the
//! CLI's `send`, so the two refuse the same input with the same words.
//!
//! The payload is the core's [`PushPayload`] (the type the service worker
//! reads back with `PushPayload::read`), serialised by its `serde` impl, plus
//! the app's `data`: a value passed through untouched. `data` stays out of
//! `PushPayload` because the worker already keeps the whole raw payload as
//! the notification's `data`; a field for it would only add a copy to the
//! worker's bundle.

use askwell::model::{PushAction, PushPayload};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::push::Urgency;
use crate::secret::random_id;
use crate::store::{NewNotification, Recipients};
use crate::AppError;

/// Largest plaintext every browser accepts (Firefox for Android: 3052 bytes).
pub const MAX_PLAINTEXT: usize = 3052;
/// Room kept for the per-delivery id the workers add
/// (`,"delivery":"<32 hex>:<row id>"`).
const DELIVERY_ID_ROOM: usize = 64;
/// Default time a push service keeps an undelivered message: 4 weeks, the
/// longest it may ask for (RFC 8030 §5.2 leaves the cap to the service;
/// FCM's is 4 weeks).
pub const DEFAULT_TTL: u32 = 28 * 24 * 3600;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Body of `POST /v1/notify`; the CLI's `send` builds one too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// Who receives it.
    pub to: Target,
    /// What the service worker shows.
    pub notification: NotificationRequest,
    /// Seconds the push service keeps it (default [`DEFAULT_TTL`]).
    pub ttl: Option<u32>,
    /// RFC 8030 urgency, as text: an unknown one is `invalid_urgency` naming
    /// the field, not serde's generic `invalid_request`.
    pub urgency: Option<String>,
    /// RFC 8030 topic (replaces an undelivered message with the same topic).
    pub topic: Option<String>,
    /// Repeating it returns the first notification instead of sending twice.
    pub idempotency_key: Option<String>,
}

/// `{ topic }`, `{ user }` or `{ all: true }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Subscribers of this topic.
    pub topic: Option<String>,
    /// This app user's subscriptions.
    pub user: Option<String>,
    /// Every subscription.
    pub all: Option<bool>,
}

/// `notification` of the request. Every optional field may be `null` (the
/// OpenAPI file allows it), which means absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationRequest {
    /// Title (required, not blank).
    pub title: String,
    /// Body text.
    pub body: Option<String>,
    /// Icon URL.
    pub icon: Option<String>,
    /// Large image URL.
    pub image: Option<String>,
    /// Monochrome badge URL.
    pub badge: Option<String>,
    /// Page opened on click.
    pub url: Option<String>,
    /// Replaces an earlier notification with the same tag.
    pub tag: Option<String>,
    /// Alert again when replacing a tagged notification.
    pub renotify: Option<bool>,
    /// Stay until the user acts.
    pub require_interaction: Option<bool>,
    /// No sound or vibration.
    pub silent: Option<bool>,
    /// Buttons.
    #[serde(default)]
    pub actions: Vec<ActionRequest>,
    /// The app's own value, pushed as is.
    pub data: Option<Value>,
}

/// A button of the request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Action id.
    pub action: String,
    /// Label.
    pub title: String,
    /// Icon URL.
    pub icon: Option<String>,
    /// Page opened when this button is clicked.
    pub url: Option<String>,
}

/// What is stored and pushed: the worker's payload and the app's `data`
/// beside it, in one JSON object.
#[derive(Serialize)]
struct PushBody<'a> {
    #[serde(flatten)]
    payload: &'a PushPayload,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

impl NotifyRequest {
    /// Checks the request and builds the notification to enqueue, under a
    /// new random id. The checks run in a fixed order (headers, title, size,
    /// recipients), so an input with several faults always names the same one.
    ///
    /// # Errors
    /// `invalid_*` naming the field, or `payload_too_large`.
    pub fn prepare(self) -> Result<NewNotification, AppError> {
        let ttl = ttl(self.ttl)?;
        let urgency = urgency(self.urgency.as_deref())?;
        check_topic(self.topic.as_deref())?;
        check_idempotency_key(self.idempotency_key.as_deref())?;
        let payload = payload_text(self.notification)?;
        Ok(NewNotification {
            id: random_id(),
            idempotency_key: self.idempotency_key,
            payload,
            ttl,
            urgency,
            topic: self.topic,
            to: recipients(self.to)?,
        })
    }
}

impl NotificationRequest {
    /// The worker's payload (absent options and flags take the reader's
    /// defaults) and the app's `data`.
    fn into_payload(self) -> (PushPayload, Option<Value>) {
        let actions = self
            .actions
            .into_iter()
            .map(|a| PushAction {
                action: a.action,
                title: a.title,
                icon: a.icon,
                url: a.url,
            })
            .collect();
        let payload = PushPayload {
            title: self.title,
            body: self.body.unwrap_or_default(),
            icon: self.icon,
            image: self.image,
            badge: self.badge,
            url: self.url,
            tag: self.tag,
            renotify: self.renotify.unwrap_or(false),
            require_interaction: self.require_interaction.unwrap_or(false),
            silent: self.silent.unwrap_or(false),
            actions,
            delivery: None,
        };
        (payload, self.data)
    }
}

fn recipients(to: Target) -> Result<Recipients, AppError> {
    match (to.topic, to.user, to.all) {
        (Some(topic), None, None) if !topic.is_empty() => Ok(Recipients::Topic(topic)),
        (None, Some(user), None) if !user.is_empty() => Ok(Recipients::User(user)),
        (None, None, Some(true)) => Ok(Recipients::All),
        _ => Err(AppError::invalid(
            ErrorCode::InvalidTarget,
            "to: expected exactly one of { topic }, { user } or { all: true }",
        )),
    }
}

fn ttl(ttl: Option<u32>) -> Result<u32, AppError> {
    match ttl {
        Some(ttl) if ttl > DEFAULT_TTL => Err(AppError::invalid(
            ErrorCode::InvalidTtl,
            format!("ttl: at most {DEFAULT_TTL} seconds (4 weeks)"),
        )),
        ttl => Ok(ttl.unwrap_or(DEFAULT_TTL)),
    }
}

fn urgency(text: Option<&str>) -> Result<Option<Urgency>, AppError> {
    let Some(text) = text else { return Ok(None) };
    Urgency::parse(text).map(Some).ok_or_else(|| {
        AppError::invalid(
            ErrorCode::InvalidUrgency,
            "urgency: expected very-low, low, normal or high",
        )
    })
}

/// RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
fn check_topic(topic: Option<&str>) -> Result<(), AppError> {
    let valid = |t: &str| {
        !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if topic.is_some_and(|t| !valid(t)) {
        return Err(AppError::invalid(
            ErrorCode::InvalidTopic,
            "topic: expected 1 to 32 characters of [A-Za-z0-9_-] (RFC 8030)",
        ));
    }
    Ok(())
}

fn check_idempotency_key(key: Option<&str>) -> Result<(), AppError> {
    if key.is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY) {
        return Err(AppError::invalid(
            ErrorCode::InvalidIdempotencyKey,
            format!("idempotency_key: expected 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(())
}

/// The payload JSON (Askwell's marker included), checked for a title and
/// against the portable size limit.
fn payload_text(notification: NotificationRequest) -> Result<String, AppError> {
    // The worker's reader refuses a blank title too (`PushPayload::read`);
    // refusing it here keeps a useless push from reaching every device.
    if notification.title.trim().is_empty() {
        return Err(AppError::invalid(
            ErrorCode::InvalidNotification,
            "notification.title: required",
        ));
    }
    let (payload, data) = notification.into_payload();
    let body = PushBody {
        payload: &payload,
        data: data.as_ref(),
    };
    let text =
        serde_json::to_string(&body).map_err(|e| AppError::invalid(ErrorCode::InvalidNotification, e.to_string()))?;
    if text.len() + DELIVERY_ID_ROOM > MAX_PLAINTEXT {
        let limit = MAX_PLAINTEXT - DELIVERY_ID_ROOM;
        return Err(AppError::PayloadTooLarge(format!(
            "notification: {} bytes of JSON; at most {limit} fit every browser's push limit ({MAX_PLAINTEXT} bytes)",
            text.len()
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(notification: serde_json::Value) -> NotifyRequest {
        serde_json::from_value(serde_json::json!({ "to": { "all": true }, "notification": notification }))
            .expect("a request")
    }

    #[test]
    fn absent_and_null_fields_are_left_out_of_the_payload() {
        let prepared = request(serde_json::json!({ "title": "Hi", "body": null, "icon": null, "actions": [] }))
            .prepare()
            .expect("valid");
        assert_eq!(prepared.payload, r#"{"askwell":1,"title":"Hi"}"#);
        assert_eq!((prepared.ttl, prepared.urgency), (DEFAULT_TTL, None));
    }

    #[test]
    fn the_app_data_is_passed_through_beside_the_fields() {
        let prepared = request(serde_json::json!({ "title": "Hi", "url": "/x", "data": { "thread": [1, "a"] } }))
            .prepare()
            .expect("valid");
        let value: Value = serde_json::from_str(&prepared.payload).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({ "askwell": 1, "title": "Hi", "url": "/x", "data": { "thread": [1, "a"] } })
        );
    }

    #[test]
    fn every_urgency_is_accepted_by_its_wire_name() {
        for urgency in Urgency::ALL {
            let req = NotifyRequest {
                urgency: Some(urgency.as_str().to_owned()),
                ..request(serde_json::json!({ "title": "Hi" }))
            };
            assert_eq!(req.prepare().expect("valid").urgency, Some(urgency));
        }
    }
}
