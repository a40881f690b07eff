//! Page actions forwarded for a signed-in user (`POST /v1/events` events of
//! type `action`, from a page's config `forward`): stored as the user's
//! events (`user_events`, where journeys read them) only with the app
//! backend's proof, once however often a page sends its batch again, never
//! in the anonymous funnel; an unproven, forged or malformed one is rejected
//! with a reason and stored nowhere. A signed-in user's traits (events of
//! type `traits`, from `identify(id, { proof, traits })`) are merged into
//! the user under the same proof. Runs on SQLite, and on PostgreSQL when
//! the test command provides one.

mod support;

use askwell_server::routes::action_dedup_id;
use askwell_server::AppState;
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

fn now() -> i64 {
    askwell_server::store::now_ms()
}

async fn post_events(state: &AppState, events: Value) -> (StatusCode, Value) {
    let body = json!({ "events": events }).to_string();
    call(state, "POST", "/v1/events", Some(&body), None).await
}

/// A forwarded action as a page sends it: name, time, key, the user and proof.
fn action(id: &str, user: &str, name: &str, key: Option<&str>, at: i64) -> Value {
    let mut event =
        json!({ "id": id, "type": "action", "name": name, "user": user, "userProof": user_proof(user), "at": at });
    if let Some(key) = key {
        event["key"] = json!(key);
    }
    event
}

fn reasons(reply: &Value) -> Vec<String> {
    reply["rejected"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| r["message"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every stored user event as `(user, name, key, at, dedup id)`.
async fn user_events(state: &AppState) -> Vec<(String, String, Option<String>, i64, Option<String>)> {
    let events = state.store.user_events_after(0, 1_000_000).await.expect("user events");
    assert!(
        events.iter().all(|e| e.properties.is_empty()),
        "no properties: {events:?}"
    );
    events
        .into_iter()
        .map(|e| (e.user, e.name, e.key, e.at_ms, e.dedup_id))
        .collect()
}

#[tokio::test]
async fn a_proven_action_is_the_users_event_stored_once_however_often_the_batch_is_sent() {
    let state = state(false).await;
    let t = now() - 1_000;
    let batch = json!([
        action("dev1-1-1", "u1", "added_to_cart", Some("cart-9"), t),
        { "id": "dev1-1-2", "type": "prompt_shown", "prompt": "reply", "variant": "a", "trigger": "added_to_cart", "anon": "dev1", "at": t },
    ]);
    let (status, reply) = post_events(&state, batch.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply, json!({ "accepted": 2, "stored": 2, "rejected": [] }));
    let expected = vec![(
        "u1".to_owned(),
        "added_to_cart".to_owned(),
        Some("cart-9".to_owned()),
        t,
        Some(action_dedup_id("u1", "dev1-1-1")),
    )];
    assert_eq!(user_events(&state).await, expected);

    for _retry in 0..2 {
        let (status, reply) = post_events(&state, batch.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply["stored"], 0, "a retried batch stores nothing twice: {reply}");
    }
    assert_eq!(user_events(&state).await, expected, "still once");

    let (_, user) = call(&state, "GET", "/v1/users/u1", None, Some(TOKEN)).await;
    assert_eq!(user["id"], "u1", "the user exists now: {user}");
    // Only the action reached user_events: the funnel event is not a user's.
    let removed = state.store.user_erase("u1").await.expect("erase");
    let removed = serde_json::to_value(removed).expect("counts");
    assert_eq!(removed["user_events"], 1, "{removed}");
}

#[tokio::test]
async fn page_ids_never_collide_with_the_backends_or_another_users() {
    let state = state(false).await;
    let t = now();
    // The backend tracks "evt-1" first; a page that reuses the id cannot
    // make it a duplicate, nor can a page of another user sending the same id.
    let track = json!({ "events": [{ "user": "u1", "name": "purchased", "id": "evt-1" }] }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/track", Some(&track), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (_, reply) = post_events(
        &state,
        json!([
            action("evt-1", "u1", "added_to_cart", None, t),
            action("evt-1", "u2", "added_to_cart", None, t)
        ]),
    )
    .await;
    assert_eq!(reply, json!({ "accepted": 2, "stored": 2, "rejected": [] }));
    let track = json!({ "events": [{ "user": "u1", "name": "purchased", "id": action_dedup_id("u1", "evt-1") }] });
    let (_, reply) = call(&state, "POST", "/v1/track", Some(&track.to_string()), Some(TOKEN)).await;
    assert_eq!(
        reply["duplicates"], 1,
        "the namespaced id is the page's (documented): {reply}"
    );
    let names: Vec<(String, String)> = user_events(&state)
        .await
        .into_iter()
        .map(|(user, name, ..)| (user, name))
        .collect();
    assert_eq!(
        names,
        [("u1", "purchased"), ("u1", "added_to_cart"), ("u2", "added_to_cart")]
            .map(|(u, n)| (u.to_owned(), n.to_owned()))
    );
}

#[tokio::test]
async fn an_unproven_or_forged_action_is_rejected_with_a_reason_and_stored_nowhere() {
    let state = state(false).await;
    let t = now();
    let mut unproven = action("d-1", "mallory", "added_to_cart", None, t);
    unproven.as_object_mut().expect("object").remove("userProof");
    let mut forged = action("d-2", "alice", "added_to_cart", None, t);
    forged["userProof"] = json!(user_proof("mallory"));
    let mut uppercase = action("d-3", "alice", "added_to_cart", None, t);
    uppercase["userProof"] = json!(format!(" {} ", user_proof("alice").to_uppercase()));
    let batch = json!([
        unproven,
        forged,
        { "id": "d-4", "type": "action", "name": "added_to_cart", "userProof": user_proof("alice"), "at": t },
        uppercase,
    ]);
    let (status, reply) = post_events(&state, batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["stored"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        reasons(&reply),
        [
            "events[0].userProof: required with an action (made by the app's backend)",
            "events[1].userProof: does not match user (expected hex HMAC-SHA256 of the user id with ASKWELL_IDENTITY_SECRET)",
            "events[2].user: required with an action (1 to 200 bytes without control characters)",
        ],
        "a proof is compared as secrets are: case and surrounding spaces do not matter"
    );
    let stored = user_events(&state).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, "alice");
    let (status, _) = call(&state, "GET", "/v1/users/mallory", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no user row was made for the forger");

    // A batch of only forged actions is refused whole.
    let mut alone = action("d-5", "alice", "added_to_cart", None, t);
    alone["userProof"] = json!("0".repeat(64));
    let (status, reply) = post_events(&state, json!([alone])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_event");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("events[0].userProof: does not match user")),
        "{reply}"
    );
    assert_eq!(user_events(&state).await.len(), 1);
}

#[tokio::test]
async fn without_an_identity_secret_no_action_is_taken() {
    let proven = state(false).await;
    let settings = askwell_server::Settings {
        identity_secret: None,
        ..(*proven.settings).clone()
    };
    let state = AppState::new(proven.store.clone(), askwell_server::VapidKeys::generate(), settings);
    let (status, reply) = post_events(&state, json!([action("d-1", "u1", "added_to_cart", None, now())])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "events[0].userProof: forwarding actions needs ASKWELL_IDENTITY_SECRET on the server"
    );
    assert!(user_events(&state).await.is_empty());
}

#[tokio::test]
async fn hostile_action_events_get_a_4xx_and_never_a_5xx() {
    let state = state(false).await;
    let t = now();
    let with = |field: &str, value: Value| {
        let mut event = action("d-1", "u1", "added_to_cart", Some("k"), t);
        event[field] = value;
        event
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("name", json!("two words")), "events[0].name: expected 1 to 64"),
        (with("name", json!("x".repeat(65))), "events[0].name: expected 1 to 64"),
        (with("name", json!("")), "events[0].name: expected 1 to 64"),
        (with("name", Value::Null), "events[0].name: expected 1 to 64"),
        (with("key", json!("k".repeat(201))), "events[0].key: at most 200"),
        (with("key", json!("a\u{0}b")), "events[0].key: control characters"),
        (with("user", json!("u\u{0}1")), "events[0].user: control characters"),
        (with("user", json!("u".repeat(201))), "events[0].user: at most 200"),
        (with("user", json!(17)), "events[0]: invalid type"),
        (with("userProof", json!(["a"])), "events[0]: invalid type"),
        (
            with("userProof", json!("f".repeat(10_000))),
            "events[0].userProof: at most 200",
        ),
        (with("at", json!(t + 3_600_000)), "events[0].at: in the future"),
        (
            with("at", json!(t - 40 * 24 * 3_600_000)),
            "events[0].at: older than 30 days",
        ),
        (
            with("prompt", json!("reply")),
            "events[0].prompt: not part of an action event",
        ),
        (
            with("anon", json!("dev1")),
            "events[0].anon: not part of an action event",
        ),
        (
            with("properties", json!({ "total": 1 })),
            "events[0]: unknown field `properties`",
        ),
        (
            json!({ "type": "prompt_shown", "prompt": "p", "user": "u1", "userProof": user_proof("u1") }),
            "events[0].user: only action and traits events have this",
        ),
        (
            json!({ "type": "conversion", "name": "replied", "key": "k" }),
            "events[0].key: only action events have this",
        ),
    ];
    for (event, expected) in cases {
        let (status, reply) = post_events(&state, json!([event])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{event}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(expected), "{event}: {message}");
    }
    let synthetic = json!({ "synthetic": true, "events": [action("d-1", "u1", "added_to_cart", None, t)] });
    let (status, reply) = call(&state, "POST", "/v1/events", Some(&synthetic.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "events[0].type: action events are never synthetic"
    );
    for body in ["{\"events\": [{\"type\": \"action\"", "[]", "{\"events\": 3}"] {
        let (status, reply) = call(&state, "POST", "/v1/events", Some(body), None).await;
        assert!(status.is_client_error(), "{body}: {status} {reply}");
    }
    let many: Vec<Value> = (0..101)
        .map(|i| action(&format!("d-{i}"), "u1", "added_to_cart", None, t))
        .collect();
    let (status, reply) = post_events(&state, json!(many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_batch");
    assert!(user_events(&state).await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn concurrent_copies_of_one_batch_store_each_action_once() {
    let state = state(false).await;
    let t = now();
    let batch: Vec<Value> = (0..10)
        .map(|i| {
            action(
                &format!("dev-{i}"),
                "u1",
                "viewed_item",
                Some(&format!("item-{i}")),
                t + i,
            )
        })
        .collect();
    let batch = json!(batch);
    let posts = (0..8).map(|_| {
        let (state, batch) = (state.clone(), batch.clone());
        tokio::spawn(async move { post_events(&state, batch).await })
    });
    let mut stored = 0;
    for post in posts {
        let (status, reply) = post.await.expect("task");
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        stored += reply["stored"].as_u64().unwrap_or_default();
    }
    assert_eq!(stored, 10, "the copies stored 10 between them");
    let keys: Vec<Option<String>> = user_events(&state).await.into_iter().map(|e| e.2).collect();
    assert_eq!(keys, (0..10).map(|i| Some(format!("item-{i}"))).collect::<Vec<_>>());
}

/// A user's traits as a page sends them (`identify(id, { proof, traits })`).
fn traits_event(id: &str, user: &str, traits: Value) -> Value {
    json!({ "id": id, "type": "traits", "user": user, "userProof": user_proof(user), "at": now(), "traits": traits })
}

async fn user_of(state: &AppState, user: &str) -> (StatusCode, Value) {
    call(state, "GET", &format!("/v1/users/{user}"), None, Some(TOKEN)).await
}

#[tokio::test]
async fn proven_traits_are_merged_into_the_user_and_null_deletes_one() {
    let state = state(false).await;
    let (status, reply) = post_events(
        &state,
        json!([traits_event(
            "d-1",
            "u1",
            json!({ "plan": "pro", "seats": 3, "trial": true })
        )]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["stored"].as_u64()),
        (Some(1), Some(1))
    );
    let (status, user) = user_of(&state, "u1").await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["traits"], json!({ "plan": "pro", "seats": 3, "trial": true }));

    // A change merges: a value sets one, null deletes one, the others stay;
    // the same batch again is the same merge.
    let batch = json!([
        traits_event("d-2", "u1", json!({ "plan": "team", "trial": null })),
        { "id": "d-3", "type": "prompt_shown", "prompt": "p", "anon": "dev1", "at": now() },
    ]);
    for _ in 0..2 {
        let (status, reply) = post_events(&state, batch.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        assert_eq!(reply["rejected"], json!([]), "{reply}");
    }
    let (_, user) = user_of(&state, "u1").await;
    assert_eq!(user["traits"], json!({ "plan": "team", "seats": 3 }));
    assert!(user_events(&state).await.is_empty(), "traits are no user event");
}

#[tokio::test]
async fn unproven_or_forged_traits_are_rejected_and_change_nothing() {
    let state = state(false).await;
    let (status, _) = post_events(&state, json!([traits_event("d-0", "alice", json!({ "plan": "pro" }))])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut unproven = traits_event("d-1", "alice", json!({ "plan": "free" }));
    unproven.as_object_mut().expect("object").remove("userProof");
    let mut forged = traits_event("d-2", "alice", json!({ "plan": "free" }));
    forged["userProof"] = json!(user_proof("mallory"));
    let mut mallory = traits_event("d-3", "mallory", json!({ "plan": "free" }));
    mallory["userProof"] = json!("0".repeat(64));
    let batch = json!([
        unproven,
        forged,
        mallory,
        { "id": "d-4", "type": "prompt_shown", "prompt": "p", "anon": "dev1", "at": now() },
    ]);
    let (status, reply) = post_events(&state, batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(
        reasons(&reply),
        [
            "events[0].userProof: required with traits (made by the app's backend)",
            "events[1].userProof: does not match user (expected hex HMAC-SHA256 of the user id with ASKWELL_IDENTITY_SECRET)",
            "events[2].userProof: does not match user (expected hex HMAC-SHA256 of the user id with ASKWELL_IDENTITY_SECRET)",
        ]
    );
    let (_, user) = user_of(&state, "alice").await;
    assert_eq!(user["traits"], json!({ "plan": "pro" }), "unchanged");
    let (status, _) = user_of(&state, "mallory").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no user row was made for the forger");

    let settings = askwell_server::Settings {
        identity_secret: None,
        ..(*state.settings).clone()
    };
    let unsigned = AppState::new(state.store.clone(), askwell_server::VapidKeys::generate(), settings);
    let (status, reply) = post_events(
        &unsigned,
        json!([traits_event("d-5", "alice", json!({ "plan": "free" }))]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "events[0].userProof: sending traits needs ASKWELL_IDENTITY_SECRET on the server"
    );
    let (_, user) = user_of(&state, "alice").await;
    assert_eq!(user["traits"], json!({ "plan": "pro" }));
}

#[tokio::test]
async fn hostile_traits_get_a_rejection_or_a_4xx_and_never_a_5xx() {
    let state = state(false).await;
    let with = |traits: Value| traits_event("d-1", "u1", traits);
    let many =
        |from: usize| -> Value { Value::Object((from..from + 64).map(|i| (format!("t{i}"), json!(i))).collect()) };
    let mut too_many = many(100);
    too_many["one-more"] = json!(1);
    let mut extra = with(json!({ "plan": "pro" }));
    extra["name"] = json!("added_to_cart");
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({ "plan": "x".repeat(201) })),
            "events[0].traits.plan: a string of at most 200 bytes",
        ),
        (
            with(json!({ "tags": ["a"] })),
            "events[0].traits.tags: expected a string, number, boolean or null",
        ),
        (
            with(json!({ "o": { "a": 1 } })),
            "events[0].traits.o: expected a string, number, boolean or null",
        ),
        (with(json!({ "": 1 })), "events[0].traits: names are 1 to 64 bytes"),
        (
            with(json!({ "a\u{0}b": 1 })),
            "events[0].traits: names are 1 to 64 bytes",
        ),
        (
            with(json!({ "n".repeat(65): 1 })),
            "events[0].traits: names are 1 to 64 bytes",
        ),
        (with(too_many), "events[0].traits: at most 64 names"),
        (with(json!({})), "events[0].traits: expected at least one trait"),
        (with(json!("plan")), "events[0].traits: expected an object"),
        (with(json!([1])), "events[0].traits: expected an object"),
        (with(Value::Null), "events[0].traits: required with a traits event"),
        (extra, "events[0].name: not part of a traits event"),
        (
            json!({ "type": "prompt_shown", "prompt": "p", "traits": { "plan": "pro" } }),
            "events[0].traits: only traits events have this",
        ),
        (
            json!({ "type": "action", "name": "x", "user": "u1", "userProof": user_proof("u1"), "traits": { "plan": "pro" } }),
            "events[0].traits: not part of an action event",
        ),
    ];
    for (event, expected) in cases {
        let (status, reply) = post_events(&state, json!([event])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{event}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(expected), "{event}: {message}");
    }
    let (status, _) = user_of(&state, "u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    // 64 traits fit; 64 more would leave 128: that event is rejected with
    // the count, the rest of the batch stored, the user unchanged.
    let (status, reply) = post_events(&state, json!([with(many(0))])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let batch = json!([
        { "id": "d-2", "type": "prompt_shown", "prompt": "p", "anon": "dev1", "at": now() },
        traits_event("d-3", "u1", many(64)),
    ]);
    let (status, reply) = post_events(&state, batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["accepted"], 1, "{reply}");
    assert_eq!(
        reasons(&reply),
        ["events[1].traits: the user would have 128 traits, at most 64; nothing changed"]
    );
    let (status, reply) = post_events(&state, json!([traits_event("d-4", "u1", many(64))])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "alone: the batch is refused, {reply}");
    assert_eq!(reply["error"]["code"], "invalid_event");
    let (_, user) = user_of(&state, "u1").await;
    assert_eq!(user["traits"], many(0), "unchanged");

    let synthetic = json!({ "synthetic": true, "events": [with(json!({ "plan": "pro" }))] });
    let (status, reply) = call(&state, "POST", "/v1/events", Some(&synthetic.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "events[0].type: traits events are never synthetic"
    );
}
