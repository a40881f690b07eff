//! One push payload: what `POST /v1/notify` enqueues and the deliverer
//! encrypts (with its `delivery` id) is read back by the service worker's
//! own reader, `askwell::model::PushPayload::read`, field by field.

mod support;

use askwell::model::{classify_push, Incoming, PushAction, PushPayload};
use askwell::value::Value as CoreValue;
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::push_service::{PushService, Subscriber};
use support::*;

/// The worker's view of a parsed JSON push (the browser's `JSON.parse` and
/// the glue's conversion to the core's value tree).
fn core_value(value: Value) -> CoreValue {
    match value {
        Value::Null => CoreValue::Null,
        Value::Bool(b) => CoreValue::Bool(b),
        Value::Number(n) => CoreValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => CoreValue::String(s),
        Value::Array(items) => CoreValue::Array(items.into_iter().map(core_value).collect()),
        Value::Object(members) => CoreValue::Object(members.into_iter().map(|(k, v)| (k, core_value(v))).collect()),
    }
}

/// Notifies one subscriber with `notification`; returns the notification id
/// and the exact plaintext the push service decrypted.
async fn pushed(notification: Value) -> (String, String) {
    let state = state(true).await;
    let service = PushService::start().await;
    let subscriber = Subscriber::new();
    let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
    let endpoint = service.subscribe("a", subscriber);
    let subscription = subscription_json(&endpoint, &p256dh, &auth, &["t"]);
    let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&subscription), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let body = json!({ "to": { "topic": "t" }, "notification": notification }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/notify", Some(&body), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    deliverer(&state, FAST).round().await.expect("round");
    let mut received = service.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", service.rejected());
    let id = reply["id"].as_str().expect("id").to_owned();
    (id, received.remove(0).1)
}

#[tokio::test]
async fn every_field_notify_pushes_reads_back_through_the_workers_reader() {
    let data = json!({ "thread": "bill", "unread": [1, 2.5], "muted": false });
    let (id, plaintext) = pushed(json!({
        "title": "Bill replied", "body": "Friday it is!", "icon": "/img/bill.png", "image": "/img/photo.jpg",
        "badge": "/img/badge.png", "url": "/chat/bill", "tag": "thread:bill",
        "renotify": true, "requireInteraction": true, "silent": true,
        "actions": [
            { "action": "reply", "title": "Reply", "icon": "/img/reply.png", "url": "/chat/bill#reply" },
            { "action": "askwell:mute-topic", "title": "Mute", "confirm": "Muted: replies from Bill" }
        ],
        "data": data,
    }))
    .await;
    let raw: Value = serde_json::from_str(&plaintext).expect("the push is JSON");
    let value = core_value(raw.clone());
    // Exhaustive: a field added to PushPayload fails to compile here until
    // this test says what the server sends for it.
    let PushPayload {
        title,
        body,
        icon,
        image,
        badge,
        url,
        tag,
        renotify,
        require_interaction,
        silent,
        actions,
        delivery,
        topic,
        category,
    } = PushPayload::read(&value).expect("the worker reads what the server pushed");
    assert_eq!(title, "Bill replied");
    assert_eq!(body, "Friday it is!");
    assert_eq!(icon.as_deref(), Some("/img/bill.png"));
    assert_eq!(image.as_deref(), Some("/img/photo.jpg"));
    assert_eq!(badge.as_deref(), Some("/img/badge.png"));
    assert_eq!(url.as_deref(), Some("/chat/bill"));
    assert_eq!(tag.as_deref(), Some("thread:bill"));
    assert!(renotify && require_interaction && silent);
    assert_eq!(
        actions,
        [
            PushAction {
                action: "reply".into(),
                title: "Reply".into(),
                icon: Some("/img/reply.png".into()),
                url: Some("/chat/bill#reply".into()),
                hours: None,
                confirm: None,
            },
            PushAction {
                action: "askwell:mute-topic".into(),
                title: "Mute".into(),
                icon: None,
                url: None,
                hours: None,
                confirm: Some("Muted: replies from Bill".into()),
            },
        ]
    );
    // What the mute button turns off: the topic it was sent to (no category given).
    assert_eq!((topic.as_deref(), category), (Some("t"), None));
    let delivery = delivery.expect("a delivery id, for click and dismissal reports");
    let (notification, row) = delivery.split_once(':').expect("notification:delivery");
    assert_eq!(notification, id);
    assert!(row.parse::<i64>().is_ok(), "{delivery}");
    // The worker shows it and keeps the raw payload, the app's data in it.
    match classify_push(Some(value), "fallback") {
        Incoming::Show(shown, kept) => {
            assert_eq!(shown.title, "Bill replied");
            assert_eq!(kept.get("data"), Some(&core_value(data)));
        }
        Incoming::Ignore => panic!("an Askwell push left to the app: {plaintext}"),
    }
}

#[tokio::test]
async fn a_minimal_notification_pushes_only_the_marker_the_title_and_the_delivery() {
    let (_, plaintext) = pushed(json!({ "title": "Hi", "body": null, "url": null, "actions": [] })).await;
    let raw: Value = serde_json::from_str(&plaintext).expect("the push is JSON");
    let mut keys: Vec<&str> = raw.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["askwell", "delivery", "title"], "{plaintext}");
    let payload = PushPayload::read(&core_value(raw.clone())).expect("readable");
    assert_eq!(
        payload,
        PushPayload {
            title: "Hi".into(),
            delivery: raw["delivery"].as_str().map(str::to_owned),
            ..PushPayload::default()
        }
    );
}
