//! Defects the schemathesis run of the test command (`xtask/src/schemathesis.rs`
//! against `server/openapi.yaml`) found, each pinned by a test.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::push_service::{PushService, Subscriber};
use support::*;

/// Standard base64 with padding, as some clients (and the schema) allow.
fn standard_base64(url_safe: &str) -> String {
    let mut text: String = url_safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    text
}

/// A subscriber whose keys differ between the two alphabets.
fn subscriber_with_both_alphabets_apart() -> Subscriber {
    let differs = |text: String| text.contains(['-', '_']);
    (0..1000)
        .map(|_| Subscriber::new())
        .find(|s| differs(s.p256dh()) && differs(s.auth_b64()))
        .expect("some random key pair has - or _ in both keys")
}

#[tokio::test]
async fn keys_sent_in_standard_base64_are_stored_in_a_form_pushes_can_use() {
    let state = state(true).await;
    let service = PushService::start().await;
    let subscriber = subscriber_with_both_alphabets_apart();
    let (p256dh, auth) = (
        standard_base64(&subscriber.p256dh()),
        standard_base64(&subscriber.auth_b64()),
    );
    let endpoint = service.subscribe("a", subscriber);
    let body = subscription_json(&endpoint, &p256dh, &auth, &["t"]);
    let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let notify = json!({ "to": { "topic": "t" }, "notification": { "title": "Hello" } }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/notify", Some(&notify), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    deliverer(&state, FAST).round().await.expect("round");
    assert_eq!(service.received().len(), 1, "rejected: {:?}", service.rejected());
    // Possession is proven in either alphabet.
    let lookup = json!({ "endpoint": endpoint, "auth": auth }).to_string();
    let (status, _) = call(&state, "POST", "/v1/subscriptions/lookup", Some(&lookup), None).await;
    assert_eq!(status, StatusCode::OK);
}
