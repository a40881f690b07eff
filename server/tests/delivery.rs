//! Delivery against the honest local push service: it verifies every VAPID JWT
//! and decrypts every body independently, and answers as each test tells it.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::push_service::{decrypt_with, PushService, Reply, Subscriber};
use support::*;

/// Subscribes `ids` to `topic` through the API; returns the push service.
async fn subscribed(state: &askwell_server::AppState, ids: &[&str], topic: &str) -> PushService {
    let service = PushService::start().await;
    service.expect_server_key(base64_decode(&state.vapid.public_key_base64()));
    for id in ids {
        let subscriber = Subscriber::new();
        let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
        let endpoint = service.subscribe(id, subscriber);
        let (status, _) = call(
            state,
            "POST",
            "/v1/subscriptions",
            Some(&subscription_json(&endpoint, &p256dh, &auth, &[topic])),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    service
}

async fn notify(state: &askwell_server::AppState, body: Value) -> (String, i64) {
    let (status, reply) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    (
        reply["id"].as_str().expect("id").to_owned(),
        reply["recipients"].as_i64().expect("recipients"),
    )
}

async fn counts(state: &askwell_server::AppState, id: &str) -> Value {
    call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN))
        .await
        .1["counts"]
        .clone()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64")
}

#[test]
fn the_independent_decryptor_reproduces_rfc_8291_appendix_a() {
    let secret =
        p256::SecretKey::from_slice(&base64_decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).expect("key");
    let auth = base64_decode("BTBZMqHH6r4Tts7J_aSIgg");
    let body = base64_decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );
    assert_eq!(
        decrypt_with(&secret, &auth, &body).as_deref(),
        Ok("When I grow up, I want to be a watermelon")
    );
}

#[tokio::test]
async fn delivers_signed_and_encrypted_pushes_to_a_topic() {
    let state = state(true).await;
    let service = subscribed(&state, &["a", "b", "c"], "thread:bill").await;
    let (id, recipients) = notify(&state, json!({ "to": { "topic": "thread:bill" }, "notification": { "title": "Bill replied", "body": "See you at 6", "url": "/chat" }, "urgency": "high", "topic": "bill" })).await;
    assert_eq!(recipients, 3);
    deliverer(&state, FAST).round().await.expect("round");
    assert_eq!(service.rejected(), Vec::<String>::new());
    let received = service.received();
    assert_eq!(received.len(), 3);
    for (_, plaintext) in &received {
        let payload: Value = serde_json::from_str(plaintext).expect("JSON payload");
        assert_eq!(
            (
                payload["askwell"].as_i64(),
                payload["title"].as_str(),
                payload["url"].as_str()
            ),
            (Some(1), Some("Bill replied"), Some("/chat"))
        );
        assert!(
            payload["delivery"].as_str().is_some_and(|d| d.starts_with(&id)),
            "delivery id in {payload}"
        );
    }
    assert_eq!(counts(&state, &id).await["delivered"], 3);
    let delivery: Value = serde_json::from_str(&received[0].1).expect("json");
    let click =
        json!({ "events": [{ "type": "notification_clicked", "delivery": delivery["delivery"], "action": "reply" }] });
    let (status, _) = call(&state, "POST", "/v1/events", Some(&click.to_string()), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let forged = json!({ "events": [{ "type": "notification_clicked", "delivery": "not-the-id:1" }] });
    call(&state, "POST", "/v1/events", Some(&forged.to_string()), None).await;
    let counts = counts(&state, &id).await;
    assert_eq!(
        (counts["delivered"].as_i64(), counts["clicked"].as_i64()),
        (Some(3), Some(1)),
        "the click is recorded once, the forged one ignored"
    );
}

#[tokio::test]
async fn gone_subscriptions_are_pruned_at_once() {
    let state = state(true).await;
    let service = subscribed(&state, &["gone", "missing", "ok"], "t").await;
    service.reply("gone", &[Reply::status(410)]);
    service.reply("missing", &[Reply::status(404)]);
    let (id, _) = notify(
        &state,
        json!({ "to": { "topic": "t" }, "notification": { "title": "x" } }),
    )
    .await;
    deliverer(&state, FAST).round().await.expect("round");
    let counts = counts(&state, &id).await;
    assert_eq!(
        (counts["pruned"].as_i64(), counts["delivered"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(state.store.subscription_count().await.expect("count"), 1);
}

/// The workers write outcomes in groups (every answer that came in while
/// the last write ran, in one transaction): a round of 300 answers of four
/// kinds arriving together still records each one as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_of_many_mixed_answers_records_each_one() {
    let state = state(true).await;
    let ids: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let service = subscribed(&state, &names, "t").await;
    for (i, id) in ids.iter().enumerate() {
        match i % 4 {
            0 => service.reply(id, &[Reply::status(410)]),
            1 => service.reply(id, &[Reply::status(503)]),
            2 => service.reply(id, &[Reply::status(413)]),
            _ => {}
        }
    }
    let (id, _) = notify(
        &state,
        json!({ "to": { "topic": "t" }, "notification": { "title": "x" } }),
    )
    .await;
    deliverer(&state, FAST).round().await.expect("round");
    let counts = counts(&state, &id).await;
    assert_eq!(
        (
            counts["pruned"].as_i64(),
            counts["retrying"].as_i64(),
            counts["failed"].as_i64(),
            counts["delivered"].as_i64()
        ),
        (Some(75), Some(75), Some(75), Some(75)),
        "{counts}"
    );
    assert_eq!(state.store.subscription_count().await.expect("count"), 225);
    assert_eq!(
        state.store.queue_depth().await.expect("depth"),
        75,
        "only the retries wait"
    );
}

#[tokio::test]
async fn retries_after_429_and_5xx_then_delivers_and_gives_up_on_413() {
    let state = state(true).await;
    let service = subscribed(&state, &["busy", "flaky", "huge"], "t").await;
    service.reply(
        "busy",
        &[Reply {
            status: 429,
            retry_after: Some(0),
            delay: Duration::ZERO,
        }],
    );
    service.reply("flaky", &[Reply::status(503), Reply::status(500)]);
    service.reply("huge", &[Reply::status(413)]);
    let (id, _) = notify(
        &state,
        json!({ "to": { "topic": "t" }, "notification": { "title": "x" } }),
    )
    .await;
    let deliverer = deliverer(&state, FAST);
    deliverer.round().await.expect("first round");
    assert_eq!(counts(&state, &id).await["retrying"], 2);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        deliverer.round().await.expect("round");
    }
    let counts = counts(&state, &id).await;
    assert_eq!(
        (
            counts["delivered"].as_i64(),
            counts["failed"].as_i64(),
            counts["retrying"].as_i64()
        ),
        (Some(2), Some(1), Some(0))
    );
    let mut got: Vec<String> = service.received().into_iter().map(|(who, _)| who).collect();
    got.sort();
    assert_eq!(got, vec!["busy", "flaky"], "413 is never retried");
}

#[tokio::test]
async fn gives_up_after_the_attempt_limit_and_on_timeouts_retries() {
    let state = state(true).await;
    let service = subscribed(&state, &["down", "slow"], "t").await;
    service.reply(
        "down",
        &[
            Reply::status(500),
            Reply::status(500),
            Reply::status(500),
            Reply::status(500),
        ],
    );
    service.reply(
        "slow",
        &[Reply {
            status: 201,
            retry_after: None,
            delay: Duration::from_secs(2),
        }],
    );
    let (id, _) = notify(
        &state,
        json!({ "to": { "topic": "t" }, "notification": { "title": "x" } }),
    )
    .await;
    let deliverer = deliverer(&state, FAST);
    for _ in 0..12 {
        deliverer.round().await.expect("round");
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let counts = counts(&state, &id).await;
    assert_eq!(
        (counts["failed"].as_i64(), counts["delivered"].as_i64()),
        (Some(1), Some(1)),
        "{counts}"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_does_not_send_twice() {
    let state = state(true).await;
    let service = subscribed(&state, &["a", "b"], "t").await;
    let body =
        json!({ "to": { "topic": "t" }, "notification": { "title": "once" }, "idempotency_key": "order-42-shipped" });
    let first = notify(&state, body.clone()).await;
    let second = notify(&state, body).await;
    assert_eq!(first, second);
    deliverer(&state, FAST).round().await.expect("round");
    deliverer(&state, FAST).round().await.expect("round");
    assert_eq!(service.received().len(), 2);
}

#[tokio::test]
async fn sends_to_a_user_and_to_everyone() {
    let state = state(true).await;
    let service = PushService::start().await;
    for (id, user) in [("u1-phone", Some("u1")), ("u1-laptop", Some("u1")), ("anon", None)] {
        let subscriber = Subscriber::new();
        let body = json!({ "subscription": { "endpoint": format!("{}/push/{id}", service.origin), "keys": { "p256dh": subscriber.p256dh(), "auth": subscriber.auth_b64() } }, "user": user, "userProof": user.map(user_proof) });
        service.subscribe(id, subscriber);
        call(&state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
    }
    assert_eq!(
        notify(
            &state,
            json!({ "to": { "user": "u1" }, "notification": { "title": "x" } })
        )
        .await
        .1,
        2
    );
    assert_eq!(
        notify(
            &state,
            json!({ "to": { "all": true }, "notification": { "title": "x" } })
        )
        .await
        .1,
        3
    );
    deliverer(&state, FAST).round().await.expect("round");
    assert_eq!(service.received().len(), 5);
}

/// Two callers retrying one send at the same moment (a client's timeout and
/// its retry, two instances behind a load balancer) must both get the first
/// notification: on PostgreSQL both transactions used to find no row for
/// the new key, both inserted, and the second failed the UNIQUE constraint
/// with a 500. Covers the one-statement path and the rendered one (a
/// holdout makes every delivery rendered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_with_one_new_idempotency_key_answer_one_notification() {
    let state = state(true).await;
    let ids: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let _service = subscribed(&state, &ids, "t").await;
    for (key, notification) in [
        ("race-plain", json!({ "title": "once" })),
        ("race-rendered", json!({ "title": "once", "holdout": 0.5 })),
    ] {
        let body = json!({ "to": { "topic": "t" }, "notification": notification, "idempotency_key": key }).to_string();
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let (state, body) = (state.clone(), body.clone());
                tokio::spawn(async move { call(&state, "POST", "/v1/notify", Some(&body), Some(TOKEN)).await })
            })
            .collect();
        let mut answered = std::collections::BTreeSet::new();
        for call in calls {
            let (status, reply) = call.await.expect("task");
            assert_eq!(status, StatusCode::ACCEPTED, "{key}: {reply}");
            assert_eq!(reply["recipients"], 40, "{key}: {reply}");
            answered.insert(reply["id"].as_str().expect("id").to_owned());
        }
        assert_eq!(
            answered.len(),
            1,
            "{key}: every caller gets the first notification: {answered:?}"
        );
        let id = answered.first().expect("an id");
        let counts = counts(&state, id).await;
        let total: i64 = counts
            .as_object()
            .expect("counts")
            .values()
            .filter_map(Value::as_i64)
            .sum();
        assert_eq!(total, 40, "{key}: one delivery per device, never two: {counts}");
    }
}
