//! Every route through `app().oneshot(...)`, without sockets, including bad
//! inputs: each is a 4xx with `{ error: { code, message } }` and stores nothing.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;

// RFC 8291 Appendix A's user agent keys: a real point on P-256.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const ENDPOINT: &str = "https://push.example.com/send/abc";

#[tokio::test]
async fn health_metrics_and_vapid_key() {
    let state = state(false).await;
    let (status, body) = call(&state, "GET", "/healthz", None, None).await;
    // The newest migration: one file per version in migrations/sqlite.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("migrations dir")
        .count();
    let newest = i64::try_from(migrations).expect("count");
    assert_eq!((status, body["schema"].as_i64()), (StatusCode::OK, Some(newest)));
    let (status, body) = call(&state, "GET", "/v1/vapid-public-key", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["publicKey"], state.vapid.public_key_base64());
    let text = metrics_text(&state).await;
    assert!(text.contains("askwell_queue_depth 0"), "{text}");
    for counter in [
        "askwell_scheduled_deliveries_total",
        "askwell_cancelled_deliveries_total",
        "askwell_journey_entries_total",
        "askwell_journey_sends_total",
    ] {
        assert_eq!(metric(&text, counter), Some(0.0), "{counter} starts at 0: {text}");
        assert!(text.contains(&format!("# TYPE {counter} counter\n")), "{text}");
    }
}

#[tokio::test]
async fn metrics_count_scheduled_deliveries_once_and_cancelled_ones_as_they_are_cancelled() {
    let state = state(false).await;
    for (i, auth) in [AUTH, OTHER_AUTH].into_iter().enumerate() {
        let body = subscription_json(&format!("{ENDPOINT}/{i}"), P256DH, auth, &["promo"]);
        let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let later = json!({
        "to": { "topic": "promo" }, "notification": { "title": "Sale" },
        "deliver": { "local_time": "09:00" }, "idempotency_key": "sale-1",
    })
    .to_string();
    let mut id = String::new();
    // A repeated idempotency key answers the first notification: counted once.
    for _ in 0..2 {
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&later), Some(TOKEN)).await;
        assert_eq!(
            (status, reply["scheduled"].as_i64()),
            (StatusCode::ACCEPTED, Some(2)),
            "{reply}"
        );
        id = reply["id"].as_str().expect("id").to_owned();
    }
    let now = json!({ "to": { "topic": "promo" }, "notification": { "title": "Now" } }).to_string();
    let (status, _) = call(&state, "POST", "/v1/notify", Some(&now), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let text = metrics_text(&state).await;
    assert_eq!(
        (
            metric(&text, "askwell_scheduled_deliveries_total"),
            metric(&text, "askwell_cancelled_deliveries_total"),
            metric(&text, "askwell_queue_depth"),
        ),
        (Some(2.0), Some(0.0), Some(4.0)),
        "{text}"
    );
    let uri = format!("/v1/notifications/{id}");
    for _ in 0..2 {
        let (status, reply) = call(&state, "DELETE", &uri, None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (status, _) = call(&state, "DELETE", "/v1/notifications/unknown", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = metrics_text(&state).await;
    assert_eq!(
        (
            metric(&text, "askwell_cancelled_deliveries_total"),
            metric(&text, "askwell_queue_depth"),
        ),
        (Some(2.0), Some(2.0)),
        "the second DELETE had nothing left to cancel: {text}"
    );
}

/// A client that disconnects drops its request's future wherever it is
/// (hyper does so); the server must stay writable whatever await it was in.
/// Before the fix, a subscribe dropped while its transaction began left the
/// connection inside `BEGIN IMMEDIATE`: the next writes failed (500, then
/// "database is locked" for everyone) — what the browser tests met in CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_midway_by_their_clients_leave_the_server_writable() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let state = state(false).await;
    for attempt in 0..120u32 {
        let body = subscription_json(&format!("{ENDPOINT}/dropped-{attempt}"), P256DH, AUTH, &[]);
        let request = Request::post("/v1/subscriptions")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        poll_then_drop(askwell_server::app(state.clone()).oneshot(request), attempt % 24 + 1);
        let next = subscription_json(&format!("{ENDPOINT}/next-{attempt}"), P256DH, AUTH, &[]);
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            call(&state, "POST", "/v1/subscriptions", Some(&next), None),
        )
        .await;
        let status = answer.as_ref().map(|(status, _)| *status);
        assert_eq!(status, Ok(StatusCode::CREATED), "attempt {attempt}: {answer:?}");
    }
}

/// Polls `future` `polls` times, 100 µs apart (SQLite's worker threads move
/// on meanwhile), then drops it, as hyper drops a gone client's request.
fn poll_then_drop<F: std::future::Future>(future: F, polls: u32) {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..polls {
        if future.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}

#[tokio::test]
async fn subscribing_twice_updates_instead_of_duplicating() {
    let state = state(false).await;
    let body = subscription_json(ENDPOINT, P256DH, AUTH, &["thread:1"]);
    let (status, first) = call(&state, "POST", "/v1/subscriptions", Some(&body), None).await;
    assert_eq!((status, first["created"].as_bool()), (StatusCode::CREATED, Some(true)));
    let again = subscription_json(ENDPOINT, P256DH, AUTH, &["thread:2"]);
    let (status, second) = call(&state, "POST", "/v1/subscriptions", Some(&again), None).await;
    assert_eq!(
        (status, second["id"].clone(), second["created"].as_bool()),
        (StatusCode::CREATED, first["id"].clone(), Some(false))
    );
    assert_eq!(state.store.subscription_count().await.expect("count"), 1);
    let lookup = json!({ "endpoint": ENDPOINT, "auth": AUTH }).to_string();
    let (status, found) = call(&state, "POST", "/v1/subscriptions/lookup", Some(&lookup), None).await;
    assert_eq!(
        (status, found["topics"].clone()),
        (StatusCode::OK, json!(["thread:1", "thread:2"]))
    );
}

#[tokio::test]
async fn topic_changes_and_deletion_need_the_auth_secret() {
    let state = state(false).await;
    call(
        &state,
        "POST",
        "/v1/subscriptions",
        Some(&subscription_json(ENDPOINT, P256DH, AUTH, &["a"])),
        None,
    )
    .await;
    let change = json!({ "endpoint": ENDPOINT, "auth": AUTH, "add": ["b"], "remove": ["a"] }).to_string();
    let (status, body) = call(&state, "POST", "/v1/subscriptions/topics", Some(&change), None).await;
    assert_eq!((status, body["topics"].clone()), (StatusCode::OK, json!(["b"])));
    let forged = json!({ "endpoint": ENDPOINT, "auth": "AAAAAAAAAAAAAAAAAAAAAA" }).to_string();
    let (status, body) = call(&state, "DELETE", "/v1/subscriptions", Some(&forged), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_subscription"))
    );
    let real = json!({ "endpoint": ENDPOINT, "auth": AUTH }).to_string();
    let (status, _) = call(&state, "DELETE", "/v1/subscriptions", Some(&real), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(state.store.subscription_count().await.expect("count"), 0);
}

const OTHER_AUTH: &str = "AAAAAAAAAAAAAAAAAAAAAA";

async fn lookup_topics(
    state: &askwell_server::AppState,
    endpoint: &str,
    auth: &str,
) -> (StatusCode, serde_json::Value) {
    let lookup = json!({ "endpoint": endpoint, "auth": auth }).to_string();
    let (status, found) = call(state, "POST", "/v1/subscriptions/lookup", Some(&lookup), None).await;
    (status, found["topics"].clone())
}

#[tokio::test]
async fn reposting_a_known_endpoint_with_another_auth_secret_cannot_take_it_over() {
    let state = state(false).await;
    let real = subscription_json(ENDPOINT, P256DH, AUTH, &["thread:1"]);
    call(&state, "POST", "/v1/subscriptions", Some(&real), None).await;
    let attacker = subscription_json(ENDPOINT, P256DH, OTHER_AUTH, &["spam"]);
    let (status, body) = call(&state, "POST", "/v1/subscriptions", Some(&attacker), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("subscription_exists")),
        "{body}"
    );
    assert_eq!(
        lookup_topics(&state, ENDPOINT, AUTH).await,
        (StatusCode::OK, json!(["thread:1"])),
        "the real browser keeps its keys and topics"
    );
    assert_eq!(
        lookup_topics(&state, ENDPOINT, OTHER_AUTH).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn another_spelling_of_a_known_endpoint_is_the_same_endpoint() {
    // `HTTPS://PUSH.EXAMPLE.COM:443/…` is where the same device's pushes go:
    // stored as its own row, it would dodge the guard above (the attacker's
    // user and topics delivered to the victim's browser) and double every
    // push. Endpoints are stored and looked up as the URL parser writes them.
    let state = state(false).await;
    let real = subscription_json(ENDPOINT, P256DH, AUTH, &["thread:1"]);
    call(&state, "POST", "/v1/subscriptions", Some(&real), None).await;
    let respelt = ENDPOINT.replacen("https://push.example.com/", "HTTPS://Push.Example.COM:443/", 1);
    assert_ne!(respelt, ENDPOINT);
    let attacker = subscription_json(&respelt, P256DH, OTHER_AUTH, &["spam"]);
    let (status, body) = call(&state, "POST", "/v1/subscriptions", Some(&attacker), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("subscription_exists")),
        "{body}"
    );
    assert_eq!(
        lookup_topics(&state, &respelt, AUTH).await,
        (StatusCode::OK, json!(["thread:1"])),
        "the device is found under either spelling"
    );
    // The same push service and path: a root dot, an empty query.
    for other in [
        ENDPOINT.replacen("push.example.com/", "push.example.com./", 1),
        format!("{ENDPOINT}?"),
    ] {
        let attacker = subscription_json(&other, P256DH, OTHER_AUTH, &["spam"]);
        let (status, body) = call(&state, "POST", "/v1/subscriptions", Some(&attacker), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{other}: {body}");
    }
    // A fragment is never sent: `…#1`, `…#2` would be rows for one device.
    let fragment = subscription_json(&format!("{ENDPOINT}#1"), P256DH, OTHER_AUTH, &["spam"]);
    let (status, body) = call(&state, "POST", "/v1/subscriptions", Some(&fragment), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_endpoint")),
        "{body}"
    );
}

#[tokio::test]
async fn swapping_onto_someone_elses_endpoint_is_refused() {
    let state = state(false).await;
    let victim = subscription_json(ENDPOINT, P256DH, AUTH, &["thread:1"]);
    call(&state, "POST", "/v1/subscriptions", Some(&victim), None).await;
    let own = "https://push.example.com/send/attacker";
    call(
        &state,
        "POST",
        "/v1/subscriptions",
        Some(&subscription_json(own, P256DH, OTHER_AUTH, &[])),
        None,
    )
    .await;
    let swap = json!({ "old": { "endpoint": own, "auth": OTHER_AUTH }, "subscription": { "endpoint": ENDPOINT, "keys": { "p256dh": P256DH, "auth": OTHER_AUTH } } });
    let (status, body) = call(&state, "POST", "/v1/subscriptions/swap", Some(&swap.to_string()), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("subscription_exists")),
        "{body}"
    );
    assert_eq!(
        lookup_topics(&state, ENDPOINT, AUTH).await,
        (StatusCode::OK, json!(["thread:1"]))
    );
}

#[tokio::test]
async fn binding_a_device_to_a_user_needs_the_backends_proof() {
    let state = state(false).await;
    let with = |user: &str, proof: Option<String>, endpoint: &str| {
        let mut body = json!({ "subscription": { "endpoint": endpoint, "keys": { "p256dh": P256DH, "auth": AUTH } }, "user": user });
        if let Some(proof) = proof {
            body["userProof"] = proof.into();
        }
        body.to_string()
    };
    for (proof, expected) in [
        (None, "userProof: required with user"),
        (Some(user_proof("mallory")), "userProof: does not match user"),
        (Some("00".repeat(32)), "userProof: does not match user"),
    ] {
        let (status, body) = call(
            &state,
            "POST",
            "/v1/subscriptions",
            Some(&with("alice", proof, ENDPOINT)),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("identity_unproven")),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(expected), "{message}");
    }
    assert_eq!(
        state.store.subscription_count().await.expect("count"),
        0,
        "nothing stored"
    );
    let (status, _) = call(
        &state,
        "POST",
        "/v1/subscriptions",
        Some(&with("alice", Some(user_proof("alice")), ENDPOINT)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, found) = call(
        &state,
        "POST",
        "/v1/subscriptions/lookup",
        Some(&json!({ "endpoint": ENDPOINT, "auth": AUTH }).to_string()),
        None,
    )
    .await;
    assert_eq!(found["user"].as_str(), Some("alice"));

    // A server without ASKWELL_IDENTITY_SECRET binds no one.
    let mut settings = (*state.settings).clone();
    settings.identity_secret = None;
    let unconfigured =
        askwell_server::AppState::new(state.store.clone(), askwell_server::VapidKeys::generate(), settings);
    let other = "https://push.example.com/send/other";
    let (status, body) = call(
        &unconfigured,
        "POST",
        "/v1/subscriptions",
        Some(&with("alice", Some(user_proof("alice")), other)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("ASKWELL_IDENTITY_SECRET"));
}

#[tokio::test]
async fn swapping_an_endpoint_keeps_topics_and_user() {
    let state = state(false).await;
    let first = json!({ "subscription": { "endpoint": ENDPOINT, "keys": { "p256dh": P256DH, "auth": AUTH } }, "user": "u1", "userProof": user_proof("u1"), "topics": ["t"] });
    let (_, created) = call(&state, "POST", "/v1/subscriptions", Some(&first.to_string()), None).await;
    let new_endpoint = "https://push.example.com/send/new";
    let swap = json!({ "old": { "endpoint": ENDPOINT, "auth": AUTH }, "subscription": { "endpoint": new_endpoint, "keys": { "p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAAAA" } } });
    let (status, body) = call(&state, "POST", "/v1/subscriptions/swap", Some(&swap.to_string()), None).await;
    assert_eq!(
        (status, body["id"].clone()),
        (StatusCode::CREATED, created["id"].clone())
    );
    let lookup = json!({ "endpoint": new_endpoint, "auth": "AAAAAAAAAAAAAAAAAAAAAA" }).to_string();
    let (_, found) = call(&state, "POST", "/v1/subscriptions/lookup", Some(&lookup), None).await;
    assert_eq!(
        (found["user"].as_str(), found["topics"].clone()),
        (Some("u1"), json!(["t"]))
    );
}

#[tokio::test]
async fn bad_subscriptions_are_rejected_with_a_reason_and_nothing_is_stored() {
    let state = state(false).await;
    let mut off_curve = base64_decode(P256DH);
    off_curve[64] ^= 1;
    let off_curve = base64_encode(&off_curve);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "invalid_json"),
        ("{}".into(), "invalid_request"),
        (
            json!({ "subscription": { "endpoint": ENDPOINT, "keys": { "p256dh": P256DH } } }).to_string(),
            "invalid_request",
        ),
        (
            subscription_json("http://push.example.com/x", P256DH, AUTH, &[]),
            "invalid_endpoint",
        ),
        (
            subscription_json("https://127.0.0.1/x", P256DH, AUTH, &[]),
            "invalid_endpoint",
        ),
        (
            subscription_json("https://169.254.169.254/latest", P256DH, AUTH, &[]),
            "invalid_endpoint",
        ),
        (
            subscription_json("https://10.1.2.3/x", P256DH, AUTH, &[]),
            "invalid_endpoint",
        ),
        (subscription_json(ENDPOINT, &off_curve, AUTH, &[]), "invalid_keys"),
        (subscription_json(ENDPOINT, "BAAA", AUTH, &[]), "invalid_keys"),
        (subscription_json(ENDPOINT, P256DH, "c2hvcnQ", &[]), "invalid_keys"),
        (subscription_json(ENDPOINT, P256DH, AUTH, &[""]), "invalid_topic"),
    ];
    for (body, code) in cases {
        let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&body), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply["error"]["code"].as_str(), Some(code), "{body}: {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let huge = "x".repeat(askwell_server::MAX_BODY_BYTES + 1);
    let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&huge), None).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    assert_eq!(state.store.subscription_count().await.expect("count"), 0);
}

#[tokio::test]
async fn notify_needs_the_admin_token_and_valid_input() {
    let state = state(false).await;
    let good = json!({ "to": { "topic": "t" }, "notification": { "title": "Bill replied" } }).to_string();
    for token in [None, Some("wrong")] {
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&good), token).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    let cases = [
        (
            json!({ "to": {}, "notification": { "title": "x" } }),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({ "to": { "topic": "t", "all": true }, "notification": { "title": "x" } }),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": " " } }),
            StatusCode::BAD_REQUEST,
            "invalid_notification",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x" }, "urgency": "asap" }),
            StatusCode::BAD_REQUEST,
            "invalid_urgency",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x" }, "topic": "has spaces" }),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x" }, "ttl": 99_999_999 }),
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x", "colour": "red" } }),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x", "body": "y".repeat(3100) } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "payload_too_large",
        ),
    ];
    for (body, expected, code) in cases {
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (expected, Some(code)),
            "{body}"
        );
    }
    let (status, reply) = call(&state, "POST", "/v1/notify", Some(&good), Some(TOKEN)).await;
    assert_eq!((status, reply["recipients"].as_i64()), (StatusCode::ACCEPTED, Some(0)));
    let (status, _) = call(&state, "GET", "/v1/notifications/nope", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let state = state(false).await;
    for (origin, allowed) in [("https://app.example.com", true), ("https://evil.example", false)] {
        let request = axum::http::Request::builder()
            .method("OPTIONS")
            .uri("/v1/subscriptions")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = tower::ServiceExt::oneshot(askwell_server::app(state.clone()), request)
            .await
            .expect("response");
        let header = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(header.as_deref() == Some(origin), allowed, "{origin}");
    }
}

#[tokio::test]
async fn serves_the_site_and_the_package() {
    let site = tempfile::tempdir().expect("site dir");
    let pkg = tempfile::tempdir().expect("pkg dir");
    std::fs::write(site.path().join("index.html"), "<h1>demo</h1>").expect("write");
    std::fs::write(pkg.path().join("askwell_bg.wasm"), b"\0asm").expect("write");
    let mut state = state(false).await;
    state.files = askwell_server::StaticFiles {
        site: Some(site.path().into()),
        pkg: Some(pkg.path().into()),
    };
    let request = axum::http::Request::get("/pkg/askwell_bg.wasm")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(askwell_server::app(state.clone()), request)
        .await
        .expect("response");
    assert_eq!(response.headers()["content-type"], "application/wasm");
    let (status, reply) = call(&state, "GET", "/missing.html", None, None).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn events_are_validated_deduplicated_and_mark_clicks() {
    let state = state(true).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let bad = [
        (json!({ "events": [] }), "invalid_batch"),
        (
            json!({ "events": vec![json!({ "type": "prompt_shown" }); 101] }),
            "invalid_batch",
        ),
        (json!({ "events": [{ "type": "prompt_exploded" }] }), "invalid_event"),
        (
            json!({ "events": [{ "type": "prompt_shown", "at": now + 3_600_000 }] }),
            "invalid_event",
        ),
        (
            json!({ "events": [{ "type": "prompt_shown", "ip": "1.2.3.4" }] }),
            "invalid_event",
        ),
        (json!({ "events": "many" }), "invalid_request"),
    ];
    for (body, code) in bad {
        let (status, reply) = call(&state, "POST", "/v1/events", Some(&body.to_string()), None).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    let batch = json!({ "events": [
        { "id": "e1", "type": "prompt_shown", "prompt": "reply", "variant": "a", "trigger": "message_sent", "anon": "x", "at": now },
        { "id": "e2", "type": "prompt_accepted", "prompt": "reply", "variant": "a", "anon": "x", "at": now }
    ] })
    .to_string();
    let (status, reply) = call(&state, "POST", "/v1/events", Some(&batch), None).await;
    assert_eq!((status, reply["stored"].as_u64()), (StatusCode::ACCEPTED, Some(2)));
    let (_, again) = call(&state, "POST", "/v1/events", Some(&batch), None).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["stored"].as_u64()),
        (Some(2), Some(0)),
        "deduplicated by id"
    );
}

#[tokio::test]
async fn nul_and_control_characters_are_refused_not_a_500_on_postgresql() {
    let state = state(false).await;
    let events = json!({ "events": [{ "type": "prompt_shown", "prompt": "a\u{0}b" }] }).to_string();
    let (status, body) = call(&state, "POST", "/v1/events", Some(&events), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["message"],
        "events[0].prompt: control characters are not allowed"
    );
    for (field, value) in [("user", "al\u{0}ice"), ("anon", "d\u{0}"), ("variant", "a\nb")] {
        let mut sub: serde_json::Value =
            serde_json::from_str(&subscription_json(ENDPOINT, P256DH, AUTH, &[])).expect("json");
        sub[field] = value.into();
        if field == "user" {
            sub["userProof"] = user_proof(value).into();
        }
        let (status, body) = call(&state, "POST", "/v1/subscriptions", Some(&sub.to_string()), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
    }
    assert_eq!(state.store.subscription_count().await.expect("count"), 0);
}
