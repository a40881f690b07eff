//! What the app's backend tells the server about its users, through the API:
//! `PUT /v1/users/{id}` (traits merged, a time zone), `GET /v1/users/{id}`,
//! `POST /v1/track` (events, deduplicated by id), a subscription's time
//! zone — each bad input a 4xx naming its field, concurrent writes that
//! all land, hostile bodies that never reach a 5xx. Runs on SQLite, and on
//! PostgreSQL when the test command provides one.

mod support;

use std::collections::BTreeMap;

use askwell_server::AppState;
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

// RFC 8291 Appendix A's user agent key: a real point on P-256.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

async fn put(state: &AppState, user: &str, body: Value) -> (StatusCode, Value) {
    let uri = format!("/v1/users/{user}");
    call(state, "PUT", &uri, Some(&body.to_string()), Some(TOKEN)).await
}

async fn get(state: &AppState, user: &str) -> (StatusCode, Value) {
    call(state, "GET", &format!("/v1/users/{user}"), None, Some(TOKEN)).await
}

async fn track(state: &AppState, events: Value) -> (StatusCode, Value) {
    let body = json!({ "events": events }).to_string();
    call(state, "POST", "/v1/track", Some(&body), Some(TOKEN)).await
}

/// `(code, message)` of an error answer.
fn error(reply: &Value) -> (&str, &str) {
    (
        reply["error"]["code"].as_str().unwrap_or_default(),
        reply["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// An RFC 3339 time `offset_ms` from now.
fn rfc3339(offset_ms: i64) -> String {
    let at = askwell_server::store::now_ms() + offset_ms;
    jiff::Timestamp::from_millisecond(at).expect("in range").to_string()
}

/// Every dedup id stored, with how often.
async fn stored_ids(state: &AppState) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for event in state.store.user_events_after(0, 1_000_000).await.expect("events") {
        if let Some(id) = event.dedup_id {
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

#[tokio::test]
async fn traits_merge_a_null_deletes_one_and_the_zone_is_set_only_when_given() {
    let state = state(false).await;
    let (status, reply) = put(
        &state,
        "u1",
        json!({ "traits": { "plan": "free", "seats": 1, "beta": true }, "time_zone": "europe/berlin" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply,
        json!({ "id": "u1", "traits": { "beta": true, "plan": "free", "seats": 1 }, "time_zone": "Europe/Berlin" }),
        "the zone in its canonical spelling"
    );
    let (status, reply) = put(
        &state,
        "u1",
        json!({ "traits": { "plan": "pro", "beta": null, "ltv": 99.5 } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply,
        json!({ "id": "u1", "traits": { "ltv": 99.5, "plan": "pro", "seats": 1 }, "time_zone": "Europe/Berlin" }),
        "merged; no time_zone in the body keeps it"
    );
    let (status, reply) = get(&state, "u1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({ "id": "u1", "traits": { "ltv": 99.5, "plan": "pro", "seats": 1 }, "time_zone": "Europe/Berlin", "devices": 0 })
    );
    let (_, reply) = put(&state, "u1", json!({ "traits": {}, "time_zone": null })).await;
    assert_eq!(reply["time_zone"], Value::Null, "null removes the zone: {reply}");
    assert_eq!(reply["traits"]["plan"], "pro", "{{}} changes no trait");
}

#[tokio::test]
async fn an_unknown_user_is_a_json_404_until_a_device_traits_or_an_event_make_them_known() {
    let state = state(false).await;
    let (status, reply) = get(&state, "nobody").await;
    assert_eq!(
        (status, error(&reply).0),
        (StatusCode::NOT_FOUND, "not_found"),
        "{reply}"
    );

    let subscribe = json!({
        "subscription": { "endpoint": "https://push.example.com/send/dev1", "keys": { "p256dh": P256DH, "auth": AUTH } },
        "user": "bound", "userProof": user_proof("bound"),
    });
    let (status, _) = call(&state, "POST", "/v1/subscriptions", Some(&subscribe.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, reply) = get(&state, "bound").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply,
        json!({ "id": "bound", "traits": {}, "time_zone": null, "devices": 1 })
    );

    let (status, reply) = track(&state, json!([{ "user": "shopper", "name": "signed_up" }])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (status, reply) = get(&state, "shopper").await;
    assert_eq!(
        (status, reply),
        (
            StatusCode::OK,
            json!({ "id": "shopper", "traits": {}, "time_zone": null, "devices": 0 })
        ),
        "a tracked event creates the user with no traits"
    );
}

#[tokio::test]
async fn every_validation_error_is_a_400_naming_its_field_and_stores_nothing() {
    let state = state(false).await;
    let put_cases = [
        (
            json!({ "traits": { "plan": { "tier": 2 } } }),
            "invalid_trait",
            "traits.plan: expected a string, number, boolean or null",
        ),
        (
            json!({ "traits": { "tags": ["a", "b"] } }),
            "invalid_trait",
            "traits.tags: expected a string, number, boolean or null",
        ),
        (
            json!({ "traits": { "bio": "x".repeat(201) } }),
            "invalid_trait",
            "traits.bio: a string of at most 200 bytes",
        ),
        (
            json!({ "traits": { "x".repeat(65): 1 } }),
            "invalid_trait",
            "traits: names are 1 to 64 bytes",
        ),
        (
            json!({ "traits": { "": 1 } }),
            "invalid_trait",
            "traits: names are 1 to 64 bytes",
        ),
        (
            json!({ "traits": "plan=pro" }),
            "invalid_trait",
            "traits: expected an object",
        ),
        (
            json!({ "time_zone": "Europe/Berlin" }),
            "invalid_request",
            "traits: required",
        ),
        (
            json!({ "traits": {}, "timezone": "UTC" }),
            "invalid_request",
            "\"timezone\": unknown field",
        ),
        (
            json!({ "traits": {}, "time_zone": "Mars/Olympus" }),
            "invalid_time_zone",
            "time_zone: expected an IANA time zone name",
        ),
        (
            json!({ "traits": {}, "time_zone": "+02:00" }),
            "invalid_time_zone",
            "time_zone: expected an IANA time zone name",
        ),
        (
            json!({ "traits": {}, "time_zone": ["UTC"] }),
            "invalid_time_zone",
            "time_zone: expected an IANA time zone name",
        ),
        (json!(["traits"]), "invalid_request", "body: expected an object"),
    ];
    for (body, code, start) in put_cases {
        let (status, reply) = put(&state, "u1", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        let (got_code, message) = error(&reply);
        assert_eq!(got_code, code, "{body}: {reply}");
        assert!(message.starts_with(start), "{body}: {message}");
    }
    for (uri, what) in [
        (format!("/v1/users/{}", "x".repeat(201)), "201 bytes"),
        ("/v1/users/a%00b".to_owned(), "NUL"),
        ("/v1/users/%FF".to_owned(), "not UTF-8"),
    ] {
        for method in ["PUT", "GET"] {
            let body = (method == "PUT").then(|| json!({ "traits": {} }).to_string());
            let (status, reply) = call(&state, method, &uri, body.as_deref(), Some(TOKEN)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {what}: {reply}");
            assert_eq!(
                error(&reply),
                (
                    "invalid_user",
                    "id: expected 1 to 200 bytes of UTF-8 without control characters"
                ),
                "{method} {what}"
            );
        }
    }

    let good = json!({ "user": "u1", "name": "added_to_cart" });
    let fourth = |field: &str, value: Value| {
        let mut bad = good.clone();
        bad[field] = value;
        json!([good, good, good, bad])
    };
    let track_cases = [
        (
            fourth("name", json!("added to cart")),
            "invalid_event",
            "events[3].name: expected 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            fourth("name", json!("")),
            "invalid_event",
            "events[3].name: expected 1 to 64",
        ),
        (
            fourth("user", json!(42)),
            "invalid_event",
            "events[3].user: expected 1 to 200 bytes",
        ),
        (
            fourth("key", json!("k".repeat(201))),
            "invalid_event",
            "events[3].key: expected 1 to 200 bytes",
        ),
        (
            fourth("id", json!("i".repeat(201))),
            "invalid_event",
            "events[3].id: expected 1 to 200 bytes",
        ),
        (
            fourth("at", json!("31/01/2025")),
            "invalid_event",
            "events[3].at: expected an RFC 3339 time",
        ),
        (
            fourth("at", json!(rfc3339(6 * 60 * 1000))),
            "invalid_event",
            "events[3].at: more than 5 minutes in the future",
        ),
        (
            fourth("properties", json!({ "items": [1, 2] })),
            "invalid_event",
            "events[3].properties.items: expected a string",
        ),
        (
            fourth("properties", json!({ "note": "n".repeat(201) })),
            "invalid_event",
            "events[3].properties.note: a string of at most 200 bytes",
        ),
        (
            fourth(
                "properties",
                Value::Object((0..33).map(|i| (format!("p{i}"), json!(i))).collect()),
            ),
            "invalid_event",
            "events[3].properties: at most 32 names",
        ),
        (
            fourth("userId", json!("u1")),
            "invalid_event",
            "events[3].\"userId\": unknown field",
        ),
        (json!([{ "name": "n" }]), "invalid_event", "events[0].user: required"),
        (json!([]), "invalid_batch", "events: expected 1 to 1000 events"),
        (json!("many"), "invalid_request", "events: required, an array of events"),
    ];
    for (events, code, start) in track_cases {
        let (status, reply) = track(&state, events.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{events}: {reply}");
        let (got_code, message) = error(&reply);
        assert_eq!(got_code, code, "{reply}");
        assert!(message.starts_with(start), "expected {start:?}: {message}");
    }
    assert!(
        state.store.user_events_after(0, 10).await.expect("events").is_empty(),
        "a rejected batch stores none of its good events"
    );
    let (status, _) = get(&state, "u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no rejected PUT created the user");
}

#[tokio::test]
async fn more_than_64_traits_after_the_merge_is_refused_and_changes_nothing() {
    let state = state(false).await;
    let sixty: serde_json::Map<String, Value> = (0..60).map(|i| (format!("t{i}"), json!(i))).collect();
    let (status, _) = put(&state, "u1", json!({ "traits": sixty })).await;
    assert_eq!(status, StatusCode::OK);
    let five: serde_json::Map<String, Value> = (0..5).map(|i| (format!("new{i}"), json!(true))).collect();
    let (status, reply) = put(&state, "u1", json!({ "traits": five, "time_zone": "UTC" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        error(&reply),
        (
            "invalid_trait",
            "traits: a user holds at most 64 traits (this change would leave 65; delete some with null)"
        )
    );
    let (_, user) = get(&state, "u1").await;
    assert_eq!(user["traits"].as_object().map(serde_json::Map::len), Some(60));
    assert_eq!(
        user["time_zone"],
        Value::Null,
        "the zone of a refused change is not set either"
    );
    // Deleting one in the same change makes room.
    let mut room: serde_json::Map<String, Value> = (0..4).map(|i| (format!("new{i}"), json!(true))).collect();
    room.insert("t0".into(), Value::Null);
    let (status, reply) = put(&state, "u1", json!({ "traits": room })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["traits"].as_object().map(serde_json::Map::len), Some(63));
}

#[tokio::test]
async fn the_user_routes_need_the_admin_token() {
    let state = state(false).await;
    let routes = [
        (
            "PUT",
            "/v1/users/u1",
            Some(json!({ "traits": { "plan": "pro" } }).to_string()),
        ),
        ("GET", "/v1/users/u1", None),
        (
            "POST",
            "/v1/track",
            Some(json!({ "events": [{ "user": "u1", "name": "n" }] }).to_string()),
        ),
    ];
    // A server without ASKWELL_ADMIN_TOKEN has no admin API at all.
    let mut settings = (*state.settings).clone();
    settings.admin_token = None;
    let closed = AppState::new(state.store.clone(), askwell_server::VapidKeys::generate(), settings);
    for (method, uri, body) in &routes {
        for (server, token) in [(&state, None), (&state, Some("wrong")), (&closed, Some(TOKEN))] {
            let (status, reply) = call(server, method, uri, body.as_deref(), token).await;
            assert_eq!(
                (status, error(&reply).0),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{method} {uri} {token:?}"
            );
        }
    }
    // The token is checked before the body is read: no one without it makes
    // the server buffer a track body (up to 1 MiB).
    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, _) = call(&state, "POST", "/v1/track", Some(&huge), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(state.store.user_events_after(0, 10).await.expect("events").is_empty());
    let (status, _) = get(&state, "u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_event_with_a_seen_id_is_a_duplicate_across_and_within_batches() {
    let state = state(false).await;
    let at = rfc3339(-60_000);
    let first = json!([
        { "user": "u1", "name": "added_to_cart", "key": "cart-9", "at": at, "properties": { "total": 42.5, "currency": "EUR" }, "id": "evt-1" },
        { "user": "u1", "name": "added_to_cart", "key": "cart-9", "id": "evt-1" },
        { "user": "u1", "name": "viewed" },
        { "user": "u2", "name": "viewed", "id": "evt-2" },
    ]);
    let (status, reply) = track(&state, first).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply, json!({ "accepted": 3, "duplicates": 1 }));
    let again = json!([
        { "user": "u1", "name": "added_to_cart", "id": "evt-1" },
        { "user": "u2", "name": "viewed", "id": "evt-2" },
        { "user": "u1", "name": "viewed" },
        { "user": "u1", "name": "checkout_started", "id": "evt-3" },
    ]);
    let (status, reply) = track(&state, again).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(
        reply,
        json!({ "accepted": 2, "duplicates": 2 }),
        "events without an id are never duplicates"
    );
    let ids = stored_ids(&state).await;
    assert_eq!(
        ids,
        BTreeMap::from([("evt-1".into(), 1), ("evt-2".into(), 1), ("evt-3".into(), 1)])
    );
    let carts = state
        .store
        .user_events_since("u1", "added_to_cart", 0)
        .await
        .expect("events");
    assert_eq!(carts.len(), 1, "{carts:?}");
    let cart = &carts[0];
    let expected_at = at.parse::<jiff::Timestamp>().expect("time").as_millisecond();
    assert_eq!(
        (cart.key.as_deref(), cart.at_ms, cart.properties["currency"].as_str()),
        (Some("cart-9"), expected_at, Some("EUR")),
        "the first of the duplicates is the one stored"
    );
    assert!(cart.received_ms >= cart.at_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_track_batches_with_overlapping_ids_store_each_id_once() {
    let state = state(false).await;
    let mut tasks = tokio::task::JoinSet::new();
    for batch in 0..20 {
        let state = state.clone();
        tasks.spawn(async move {
            // Batch b holds ids 2b..2b+30 mod 50, in an order of its own (odd
            // batches backwards: two transactions taking the same ids in
            // opposite orders), for 5 users; and 2 events without an id.
            let mut ids: Vec<usize> = (batch * 2..batch * 2 + 30).map(|i| i % 50).collect();
            if batch % 2 == 1 {
                ids.reverse();
            }
            let mut events: Vec<Value> = ids
                .iter()
                .map(|i| json!({ "user": format!("u{}", i % 5), "name": "viewed", "key": format!("page-{i}"), "id": format!("evt-{i}") }))
                .collect();
            events.push(json!({ "user": format!("new-{batch}"), "name": "signed_up" }));
            events.push(json!({ "user": "u0", "name": "heartbeat" }));
            track(&state, Value::Array(events)).await
        });
    }
    let (mut accepted, mut duplicates) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (status, reply) = done.expect("task");
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        accepted += reply["accepted"].as_u64().expect("accepted");
        duplicates += reply["duplicates"].as_u64().expect("duplicates");
    }
    // 50 distinct ids plus 2 id-less events per batch; 20 × 32 sent.
    assert_eq!((accepted, duplicates), (50 + 40, 20 * 32 - 90));
    let ids = stored_ids(&state).await;
    assert_eq!(ids.len(), 50);
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    for batch in 0..20 {
        let (status, _) = get(&state, &format!("new-{batch}")).await;
        assert_eq!(status, StatusCode::OK, "every batch created its user");
    }
    let all = state.store.user_events_after(0, 1_000).await.expect("events");
    assert_eq!(all.len(), 90);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_merges_of_one_user_all_land() {
    let state = state(false).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let state = state.clone();
        tasks.spawn(async move {
            let zone = if i % 2 == 0 { "Europe/Berlin" } else { "Asia/Tokyo" };
            put(
                &state,
                "shared",
                json!({ "traits": { format!("t{i}"): i }, "time_zone": zone }),
            )
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, reply) = done.expect("task");
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (_, user) = get(&state, "shared").await;
    let traits = user["traits"].as_object().expect("traits");
    assert_eq!(traits.len(), 20, "no merge lost another's trait: {user}");
    assert!(
        ["Europe/Berlin", "Asia/Tokyo"].contains(&user["time_zone"].as_str().unwrap_or_default()),
        "{user}"
    );
}

#[tokio::test]
async fn hostile_bodies_are_refused_with_a_4xx_never_a_5xx() {
    let state = state(false).await;
    let over_64_kib = json!({ "traits": { "bio": "x".repeat(askwell_server::MAX_BODY_BYTES) } }).to_string();
    let (status, reply) = call(&state, "PUT", "/v1/users/u1", Some(&over_64_kib), Some(TOKEN)).await;
    assert_eq!(
        (status, error(&reply).0),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    let over_1_mib = json!({ "events": [{ "user": "u1", "name": "n", "key": "x".repeat(askwell_server::users::MAX_TRACK_BODY_BYTES) }] }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/track", Some(&over_1_mib), Some(TOKEN)).await;
    assert_eq!(
        (status, error(&reply).0),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    // 1,000 events with properties: more than the API's 64 KiB, within the
    // track route's 1 MiB.
    let full: Vec<Value> = (0..1000)
        .map(|i| json!({ "user": format!("u{}", i % 10), "name": "viewed", "key": format!("page-{i}"), "properties": { "path": format!("/shop/item/{i}"), "ms": i } }))
        .collect();
    let body = json!({ "events": full });
    assert!(body.to_string().len() > askwell_server::MAX_BODY_BYTES);
    let (status, reply) = call(&state, "POST", "/v1/track", Some(&body.to_string()), Some(TOKEN)).await;
    assert_eq!(
        (status, reply),
        (StatusCode::ACCEPTED, json!({ "accepted": 1000, "duplicates": 0 }))
    );
    let one_too_many = json!({ "events": vec![json!({ "user": "u1", "name": "n" }); 1001] }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/track", Some(&one_too_many), Some(TOKEN)).await;
    assert_eq!(
        (status, error(&reply)),
        (
            StatusCode::BAD_REQUEST,
            ("invalid_batch", "events: expected 1 to 1000 events")
        )
    );

    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_traits = format!("{{\"traits\":{{\"a\":{}1{}}}}}", "{\"b\":".repeat(200), "}".repeat(200));
    let nested_properties = format!(
        "{{\"events\":[{{\"user\":\"u\",\"name\":\"n\",\"properties\":{{\"a\":{}1{}}}}}]}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let cases: Vec<(&str, &str, String)> = vec![
        ("PUT", "/v1/users/u1", deep.clone()),
        ("POST", "/v1/track", deep),
        ("PUT", "/v1/users/u1", nested_traits),
        ("POST", "/v1/track", nested_properties),
        ("PUT", "/v1/users/u1", "{\"traits\":".into()),
        ("PUT", "/v1/users/u1", "null".into()),
        ("PUT", "/v1/users/u1", json!({ "traits": null }).to_string()),
        (
            "PUT",
            "/v1/users/u1",
            json!({ "traits": { "n": 1e308 }, "time_zone": "x".repeat(60_000) }).to_string(),
        ),
        ("POST", "/v1/track", json!({ "events": [null] }).to_string()),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u\u{0}", "name": "n" }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u", "name": "n", "at": "9999-12-31T23:59:59Z" }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u", "name": "n", "at": "2025-02-30T00:00:00Z" }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u", "name": "n", "at": "x".repeat(50_000) }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u", "name": "n", "id": "a\u{0}b" }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": "u", "name": "n", "properties": { "a\u{0}": 1 } }] }).to_string(),
        ),
        (
            "POST",
            "/v1/track",
            json!({ "events": [{ "user": ["u"], "name": { "n": 1 } }] }).to_string(),
        ),
        ("POST", "/v1/track", "{\"events\": 1e999}".into()),
    ];
    for (method, uri, body) in cases {
        let (status, reply) = call(&state, method, uri, Some(&body), Some(TOKEN)).await;
        let shown: String = body.chars().take(80).collect();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri} {shown}: {reply}");
        assert!(!error(&reply).1.is_empty(), "{reply}");
    }
    // Far in the past is allowed (an import of last year's orders).
    let (status, reply) = track(
        &state,
        json!([{ "user": "u", "name": "ordered", "at": "1999-12-31T23:59:59.999+01:00" }]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let ordered = state
        .store
        .user_events_since("u", "ordered", i64::MIN)
        .await
        .expect("events");
    assert_eq!(ordered[0].at_ms, 946_681_199_999);
    // NUL inside a trait or property value is JSON text in the store: kept.
    let (status, reply) = put(&state, "u1", json!({ "traits": { "note": "a\u{0}b" } })).await;
    assert_eq!(
        (status, &reply["traits"]["note"]),
        (StatusCode::OK, &json!("a\u{0}b")),
        "{reply}"
    );
    let (status, reply) = call(&state, "PUT", "/v1/users/u1", Some("{\"traits\":{}}"), None).await;
    assert_eq!((status, error(&reply).0), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let request = axum::http::Request::put("/v1/users/u1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::from("{\"traits\":{}}"))
        .expect("request");
    let response = tower::ServiceExt::oneshot(askwell_server::app(state.clone()), request)
        .await
        .expect("response");
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "no Content-Type: application/json"
    );
}

/// A subscription with a zone (as the page sends it) bound to `user`.
fn subscription(endpoint: &str, user: &str, time_zone: Value) -> String {
    json!({
        "subscription": { "endpoint": endpoint, "keys": { "p256dh": P256DH, "auth": AUTH } },
        "user": user, "userProof": user_proof(user), "time_zone": time_zone,
    })
    .to_string()
}

#[tokio::test]
async fn a_subscription_with_an_unknown_time_zone_is_still_stored_without_one() {
    let state = state(false).await;
    let host = "https://push.example.com/send";
    for (i, zone) in [
        json!("Mars/Olympus"),
        json!(""),
        json!("x".repeat(10_000)),
        json!(120),
        json!({ "name": "UTC" }),
        json!("Etc/Unknown"),
        Value::Null,
    ]
    .into_iter()
    .enumerate()
    {
        let body = subscription(&format!("{host}/bad-{i}"), "lost-zones", zone.clone());
        let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&body), None).await;
        assert_eq!(status, StatusCode::CREATED, "{zone}: {reply}");
    }
    assert_eq!(state.store.subscription_count().await.expect("count"), 7);
    assert_eq!(state.store.user_time_zone("lost-zones").await.expect("zone"), None);
    let (_, export) = call(&state, "GET", "/v1/users/lost-zones/export", None, Some(TOKEN)).await;
    let zones: Vec<&Value> = export["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| &s["time_zone"])
        .collect();
    assert!(zones.iter().all(|z| z.is_null()), "{export}");

    // A known zone is stored canonical; the user's newest device's counts,
    // until the backend sets one of the user's own.
    let body = subscription(&format!("{host}/phone"), "traveller", json!("asia/tokyo"));
    assert_eq!(
        call(&state, "POST", "/v1/subscriptions", Some(&body), None).await.0,
        StatusCode::CREATED
    );
    let zone = state.store.user_time_zone("traveller").await.expect("zone");
    assert_eq!(zone.as_deref(), Some("Asia/Tokyo"));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let body = subscription(&format!("{host}/laptop"), "traveller", json!("America/New_York"));
    assert_eq!(
        call(&state, "POST", "/v1/subscriptions", Some(&body), None).await.0,
        StatusCode::CREATED
    );
    let zone = state.store.user_time_zone("traveller").await.expect("zone");
    assert_eq!(zone.as_deref(), Some("America/New_York"));
    // The phone posting again without a zone keeps its stored one (and is
    // now the newest: a later millisecond).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let body = subscription(&format!("{host}/phone"), "traveller", Value::Null);
    assert_eq!(
        call(&state, "POST", "/v1/subscriptions", Some(&body), None).await.0,
        StatusCode::CREATED
    );
    let zone = state.store.user_time_zone("traveller").await.expect("zone");
    assert_eq!(zone.as_deref(), Some("Asia/Tokyo"));
    let (_, reply) = put(
        &state,
        "traveller",
        json!({ "traits": {}, "time_zone": "Europe/Lisbon" }),
    )
    .await;
    assert_eq!(reply["time_zone"], "Europe/Lisbon");
    let zone = state.store.user_time_zone("traveller").await.expect("zone");
    assert_eq!(zone.as_deref(), Some("Europe/Lisbon"), "the user's own zone first");
    let (_, user) = get(&state, "traveller").await;
    assert_eq!(user["devices"], 2);
}
