//! Journeys through the API with a stepped clock: definitions PUT, events
//! tracked, the runner ticked at chosen times, and what the outbox holds
//! read back. Runs on SQLite, and on PostgreSQL when the test command
//! provides one.

mod support;

use askwell_server::journeys::Runner;
use askwell_server::AppState;
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn abandoned_cart() -> Value {
    json!({
        "entry": { "event": "added_to_cart", "keyed": true },
        "exitOn": [{ "event": "purchased", "sameKey": true }],
        "steps": [
            { "wait": { "hours": 1 } },
            { "send": { "title": "Still thinking about {event.item|your cart}?", "url": "/cart/{event.key}" } }
        ]
    })
}

async fn put_journey(state: &AppState, id: &str, definition: &Value) -> (StatusCode, Value) {
    call(
        state,
        "PUT",
        &format!("/v1/journeys/{id}"),
        Some(&definition.to_string()),
        Some(TOKEN),
    )
    .await
}

async fn subscribe(state: &AppState, user: &str) {
    let body = json!({
        "subscription": { "endpoint": format!("https://push.example.com/send/{user}"), "keys": { "p256dh": P256DH, "auth": AUTH } },
        "user": user, "userProof": user_proof(user),
    });
    let (status, reply) = call(state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

/// An event `offset_ms` from now (RFC 3339).
fn at(offset_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(askwell_server::store::now_ms() + offset_ms)
        .expect("in range")
        .to_string()
}

async fn track(state: &AppState, events: Value) {
    let body = json!({ "events": events }).to_string();
    let (status, reply) = call(state, "POST", "/v1/track", Some(&body), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

fn runner(state: &AppState) -> Runner {
    Runner::new(state.store.clone(), jiff::tz::TimeZone::UTC)
}

/// The titles waiting in the outbox, by recipient endpoint (claims them).
async fn outbox(state: &AppState) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = state
        .store
        .deliveries_claim(1_000, 60_000)
        .await
        .expect("claim")
        .into_iter()
        .map(|d| {
            let payload: Value = serde_json::from_str(&d.payload).expect("JSON payload");
            let user = d.endpoint.rsplit('/').next().unwrap_or_default().to_owned();
            (user, payload["title"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    found.sort();
    found
}

async fn report(state: &AppState, id: &str) -> Value {
    let (status, reply) = call(state, "GET", &format!("/v1/journeys/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["report"].clone()
}

#[tokio::test]
async fn an_abandoned_cart_is_reminded_an_hour_later_unless_that_cart_was_bought() {
    let state = state(false).await;
    let (status, reply) = put_journey(&state, "abandoned-cart", &abandoned_cart()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply, json!({ "id": "abandoned-cart", "version": 1, "changed": true }));
    for user in ["alice", "bob"] {
        subscribe(&state, user).await;
    }
    track(
        &state,
        json!([
            { "user": "alice", "name": "added_to_cart", "key": "cart-1", "properties": { "item": "red shoes" } },
            { "user": "bob", "name": "added_to_cart", "key": "cart-2" },
            { "user": "bob", "name": "purchased", "key": "cart-9" },
        ]),
    )
    .await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    let tick = runner.tick(now).await.expect("tick");
    assert_eq!((tick.events, tick.entered, tick.sent), (3, 2, 0));
    track(
        &state,
        json!([{ "user": "bob", "name": "purchased", "key": "cart-2", "at": at(1_000) }]),
    )
    .await;
    runner.tick(now + 30 * MINUTE).await.expect("tick");
    assert_eq!(outbox(&state).await, [], "nothing before the hour");
    let tick = runner.tick(now + HOUR + 1_000).await.expect("tick");
    assert_eq!(tick.sent, 1);
    assert_eq!(
        outbox(&state).await,
        [("alice".to_owned(), "Still thinking about red shoes?".to_owned())]
    );
    let report = report(&state, "abandoned-cart").await;
    assert_eq!(report["entered"], 2, "{report}");
    assert_eq!(report["states"], json!({ "completed": 1, "event": 1 }), "{report}");
    assert_eq!(report["exited_by"], json!({ "purchased": 1 }), "{report}");
    assert_eq!(
        report["steps"],
        json!([{ "step": 1, "sent": 1, "withheld": 0, "failed": 0 }])
    );
    let sent_to = &report["conversion"]["sent_to"];
    assert_eq!(
        (sent_to["entered"].clone(), sent_to["converted"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(sent_to["rate"]["rate"], 0.5);
    assert_eq!(report["conversion"]["difference"], Value::Null, "no holdout entrants");
    assert_eq!(report["conversion"]["verdict"]["outcome"], "need_more_data");
    assert_eq!(report["clicked"], 0);
    let request = axum::http::Request::get("/v1/journeys.csv")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(askwell_server::app(state.clone()), request)
        .await
        .expect("response");
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let csv = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("journey,version,entered,holdout,waiting,completed,exited_by_event"),
        "{csv}"
    );
    assert_eq!(
        lines[1], "abandoned-cart,1,2,0,0,1,1,0,0,1,0,0,0,0,1,0.5000,0,,need_more_data",
        "{csv}"
    );
}

#[tokio::test]
async fn two_servers_ticking_at_once_send_each_step_once() {
    let db = inspectable_with(settings(false)).await;
    let state = db.state.clone();
    put_journey(&state, "abandoned-cart", &abandoned_cart()).await;
    let users: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    let mut events = Vec::new();
    for user in &users {
        subscribe(&state, user).await;
        events.push(json!({ "user": user, "name": "added_to_cart", "key": format!("cart-{user}") }));
    }
    track(&state, Value::Array(events)).await;
    let now = askwell_server::store::now_ms();
    let (a, b) = (runner(&state), runner(&state));
    let (x, y) = tokio::join!(a.tick(now), b.tick(now));
    assert_eq!(x.expect("a").entered + y.expect("b").entered, 30);
    let later = now + HOUR;
    let (x, y) = tokio::join!(a.tick(later), b.tick(later));
    let (x, y) = (x.expect("a"), y.expect("b"));
    assert_eq!(x.sent + y.sent, 30, "{x:?} {y:?}");
    // Replaying every event (the cursor rewound, as after a crash before it
    // moved) enters no one twice and sends nothing more.
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("raw connection");
    sqlx::query("UPDATE journey_cursor SET seq = 0, lease_until_ms = 0")
        .execute(&mut conn)
        .await
        .expect("rewind");
    let (x, y) = tokio::join!(a.tick(later + 2 * MINUTE), b.tick(later + 2 * MINUTE));
    let (x, y) = (x.expect("a"), y.expect("b"));
    assert_eq!(
        (x.events + y.events, x.entered + y.entered, x.sent + y.sent),
        (30, 0, 0)
    );
    assert_eq!(outbox(&state).await.len(), 30, "one reminder each");
}

#[tokio::test]
async fn an_edit_applies_to_new_entrants_while_waiting_users_finish_their_version() {
    let state = state(false).await;
    put_journey(&state, "abandoned-cart", &abandoned_cart()).await;
    for user in ["alice", "bob"] {
        subscribe(&state, user).await;
    }
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    track(
        &state,
        json!([{ "user": "alice", "name": "added_to_cart", "key": "c1" }]),
    )
    .await;
    runner.tick(now).await.expect("tick");
    let mut edited = abandoned_cart();
    edited["steps"][1]["send"]["title"] = json!("Your cart misses you");
    let (status, reply) = put_journey(&state, "abandoned-cart", &edited).await;
    assert_eq!(
        (status, reply["version"].clone()),
        (StatusCode::OK, json!(2)),
        "{reply}"
    );
    let (_, same) = put_journey(&state, "abandoned-cart", &edited).await;
    assert_eq!(same, json!({ "id": "abandoned-cart", "version": 2, "changed": false }));
    track(&state, json!([{ "user": "bob", "name": "added_to_cart", "key": "c2" }])).await;
    runner.tick(now + 1_000).await.expect("tick");
    runner.tick(now + 2 * HOUR).await.expect("tick");
    assert_eq!(
        outbox(&state).await,
        [
            ("alice".to_owned(), "Still thinking about your cart?".to_owned()),
            ("bob".to_owned(), "Your cart misses you".to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_inactive_user_is_sent_to_once_per_absence() {
    let state = state(false).await;
    let journey = json!({
        "entry": { "inactive": { "days": 7 } },
        "steps": [{ "send": { "title": "We miss you, {user.name|friend}" } }]
    });
    put_journey(&state, "we-miss-you", &journey).await;
    subscribe(&state, "carol").await;
    let (status, _) = call(
        &state,
        "PUT",
        "/v1/users/carol",
        Some(r#"{"traits":{"name":"Carol"}}"#),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    track(
        &state,
        json!([{ "user": "carol", "name": "visit", "at": at(-8 * DAY) }]),
    )
    .await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    runner.tick(now).await.expect("tick");
    runner.tick(now + 2 * MINUTE).await.expect("tick");
    assert_eq!(
        outbox(&state).await,
        [("carol".to_owned(), "We miss you, Carol".to_owned())]
    );
}

#[tokio::test]
async fn a_bad_definition_is_one_400_naming_every_field() {
    let state = state(false).await;
    let bad = json!({ "entry": { "event": "x", "once": "key" }, "steps": [{ "send": { "title": "{user.name}" } }, { "nap": 1 }] });
    let (status, reply) = put_journey(&state, "bad", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_journey");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    for field in ["entry.once", "steps[0].send.title", "steps[1]"] {
        assert!(message.contains(field), "{field} not in {message}");
    }
    let other_id = json!({ "id": "other", "entry": { "event": "x" }, "steps": [{ "exit": true }] });
    let (status, reply) = put_journey(&state, "mine", &other_id).await;
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_journey"))
    );
    let (status, _) = put_journey(&state, "no%20spaces", &abandoned_cart()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &state,
        "PUT",
        "/v1/journeys/j",
        Some(&abandoned_cart().to_string()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&state, "GET", "/v1/journeys", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_a_journey_ends_its_waiting_users_and_sends_nothing_more() {
    let state = state(false).await;
    put_journey(&state, "abandoned-cart", &abandoned_cart()).await;
    subscribe(&state, "alice").await;
    track(
        &state,
        json!([{ "user": "alice", "name": "added_to_cart", "key": "c1" }]),
    )
    .await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    runner.tick(now).await.expect("tick");
    let (status, reply) = call(&state, "DELETE", "/v1/journeys/abandoned-cart", None, Some(TOKEN)).await;
    assert_eq!(
        (status, reply),
        (StatusCode::OK, json!({ "id": "abandoned-cart", "ended": 1 }))
    );
    runner.tick(now + 2 * HOUR).await.expect("tick");
    assert_eq!(outbox(&state).await, []);
    let (status, _) = call(&state, "GET", "/v1/journeys/abandoned-cart", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&state, "DELETE", "/v1/journeys/abandoned-cart", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(&state, "GET", "/v1/journeys", None, Some(TOKEN)).await;
    assert_eq!(list, json!({ "journeys": [] }));
}

#[tokio::test]
async fn journeys_load_from_a_file_at_start_all_checked_before_any_is_stored() {
    let state = state(false).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("journeys.json");
    let mut cart = abandoned_cart();
    cart["id"] = json!("abandoned-cart");
    let welcome =
        json!({ "id": "welcome", "entry": { "event": "signed_up" }, "steps": [{ "send": { "title": "Welcome" } }] });
    std::fs::write(&path, json!([cart, welcome]).to_string()).expect("write");
    let load = askwell_server::journeys::load_file;
    assert_eq!(load(&state.store, &path).await, Ok(2));
    assert_eq!(load(&state.store, &path).await, Ok(2), "reloading is harmless");
    let (_, list) = call(&state, "GET", "/v1/journeys", None, Some(TOKEN)).await;
    let versions: Vec<(String, i64)> = list["journeys"]
        .as_array()
        .expect("list")
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap_or_default().to_owned(),
                j["version"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(versions, [("abandoned-cart".to_owned(), 1), ("welcome".to_owned(), 1)]);

    let bad = json!([{ "id": "fine", "entry": { "event": "e" }, "steps": [{ "exit": true }] },
                     { "id": "broken", "entry": { "event": "e" }, "steps": [{ "wait": { "weeks": 1 } }] },
                     { "entry": { "event": "e" }, "steps": [{ "exit": true }] }]);
    std::fs::write(&path, bad.to_string()).expect("write");
    let error = load(&state.store, &path).await.expect_err("invalid");
    assert!(
        error.contains("[1] invalid journey: steps[0].wait.weeks: unknown field"),
        "{error}"
    );
    assert!(error.contains("[2] id: required"), "{error}");
    let (_, list) = call(&state, "GET", "/v1/journeys", None, Some(TOKEN)).await;
    assert_eq!(
        list["journeys"].as_array().map(Vec::len),
        Some(2),
        "nothing stored from the bad file"
    );
    std::fs::write(&path, "{}").expect("write");
    assert!(load(&state.store, &path)
        .await
        .expect_err("object")
        .contains("expected an array"));
}

/// Ticks the runner from `from` to `to` every `step` ms (a stepped clock).
async fn run_clock(runner: &Runner, from: i64, to: i64, step: i64) {
    let mut now = from;
    while now <= to {
        runner.tick(now).await.expect("tick");
        now += step;
    }
}

#[tokio::test]
async fn onboarding_sends_day_0_1_and_3_and_stops_at_activation() {
    let state = state(false).await;
    let journey = json!({
        "entry": { "event": "signed_up" },
        "exitOn": [{ "event": "activated" }],
        "steps": [
            { "send": { "title": "Welcome, {user.name|friend}" } },
            { "wait": { "days": 1 } }, { "send": { "title": "Day 1" } },
            { "wait": { "days": 2 } }, { "send": { "title": "Day 3" } }
        ]
    });
    put_journey(&state, "onboarding", &journey).await;
    for user in ["ann", "ben"] {
        subscribe(&state, user).await;
    }
    track(
        &state,
        json!([{ "user": "ann", "name": "signed_up" }, { "user": "ben", "name": "signed_up" }]),
    )
    .await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    runner.tick(now).await.expect("tick");
    assert_eq!(outbox(&state).await.len(), 2, "day 0 at once, to both");
    run_clock(&runner, now, now + DAY + HOUR, HOUR).await;
    track(&state, json!([{ "user": "ben", "name": "activated", "at": at(0) }])).await;
    run_clock(&runner, now + DAY + HOUR, now + 4 * DAY, HOUR).await;
    assert_eq!(
        outbox(&state).await,
        [
            ("ann".to_owned(), "Day 1".to_owned()),
            ("ann".to_owned(), "Day 3".to_owned()),
            ("ben".to_owned(), "Day 1".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_milestone_is_sent_on_the_tenth_order_only() {
    let state = state(false).await;
    let journey = json!({
        "entry": { "event": "order_placed", "nth": 10 },
        "steps": [{ "send": { "title": "Your 10th order!" } }]
    });
    put_journey(&state, "tenth-order", &journey).await;
    subscribe(&state, "cara").await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    for order in 1..=12 {
        track(
            &state,
            json!([{ "user": "cara", "name": "order_placed", "key": format!("o{order}") }]),
        )
        .await;
        runner.tick(now).await.expect("tick");
    }
    assert_eq!(
        outbox(&state).await,
        [("cara".to_owned(), "Your 10th order!".to_owned())]
    );
}

#[tokio::test]
async fn continue_watching_is_sent_at_seven_pm_on_the_viewers_clock_unless_finished() {
    let state = state(false).await;
    let journey = json!({
        "entry": { "event": "episode_started", "keyed": true },
        "steps": [
            { "waitFor": { "event": "episode_finished", "sameKey": true, "timeout": { "days": 1 }, "onEvent": "exit" } },
            { "send": { "title": "Continue {event.show|watching}?", "deliver": { "at": "19:00" } } }
        ]
    });
    put_journey(&state, "continue-watching", &journey).await;
    for (user, zone) in [
        ("kiri", "Pacific/Kiritimati"),
        ("pago", "Pacific/Pago_Pago"),
        ("done", "Europe/Berlin"),
    ] {
        subscribe(&state, user).await;
        let body = json!({ "traits": {}, "time_zone": zone }).to_string();
        let (status, _) = call(&state, "PUT", &format!("/v1/users/{user}"), Some(&body), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
    }
    track(
        &state,
        json!([
            { "user": "kiri", "name": "episode_started", "key": "ep-1", "properties": { "show": "Dark" } },
            { "user": "pago", "name": "episode_started", "key": "ep-1", "properties": { "show": "Dark" } },
            { "user": "done", "name": "episode_started", "key": "ep-1" },
            { "user": "done", "name": "episode_finished", "key": "ep-1" },
        ]),
    )
    .await;
    let runner = runner(&state);
    let now = askwell_server::store::now_ms();
    // Each reminder lands at 19:00 on its viewer's clock, once the day has passed.
    let mut sent_at = std::collections::BTreeMap::new();
    let mut clock = now;
    while clock <= now + 3 * DAY {
        runner.tick(clock).await.expect("tick");
        for (user, title) in outbox(&state).await {
            sent_at.entry(user).or_insert((title, clock));
        }
        clock += 15 * MINUTE;
    }
    assert_eq!(
        sent_at.keys().collect::<Vec<_>>(),
        ["kiri", "pago"],
        "the finished episode is not reminded"
    );
    for (user, zone) in [("kiri", "Pacific/Kiritimati"), ("pago", "Pacific/Pago_Pago")] {
        let (title, at_ms) = &sent_at[user];
        assert_eq!(title, "Continue Dark?");
        let local = jiff::Timestamp::from_millisecond(*at_ms)
            .expect("in range")
            .to_zoned(jiff::tz::TimeZone::get(zone).expect("zone"));
        // Swept every 15 minutes: due at 19:00 local, run by 19:15.
        assert_eq!(local.hour(), 19, "{user} at {local}");
        assert!(*at_ms >= now + DAY, "{user}: not before the day passed");
    }
}

#[tokio::test]
async fn the_demos_five_journeys_load() {
    let state = state(false).await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/journeys.json");
    assert_eq!(askwell_server::journeys::load_file(&state.store, &file).await, Ok(5));
}

#[tokio::test]
async fn metrics_count_each_entry_and_each_send_once_even_when_events_are_replayed() {
    let db = inspectable_with(settings(false)).await;
    let state = db.state.clone();
    let journey = json!({
        "entry": { "event": "signed_up" },
        "steps": [{ "send": { "title": "Welcome" } }, { "wait": { "days": 1 } }, { "send": { "title": "Day 1" } }]
    });
    put_journey(&state, "onboarding", &journey).await;
    for user in ["ann", "ben"] {
        subscribe(&state, user).await;
    }
    track(
        &state,
        json!([{ "user": "ann", "name": "signed_up" }, { "user": "ben", "name": "signed_up" }]),
    )
    .await;
    let runner = runner(&state).with_metrics(state.metrics.clone());
    let counted = |text: &str| {
        (
            metric(text, "askwell_journey_entries_total"),
            metric(text, "askwell_journey_sends_total"),
        )
    };
    let now = askwell_server::store::now_ms();
    let tick = runner.tick(now).await.expect("tick");
    assert_eq!((tick.entered, tick.sent), (2, 2));
    assert_eq!(counted(&metrics_text(&state).await), (Some(2.0), Some(2.0)));
    // A replay (the cursor rewound, as after a crash) enters no one again.
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("raw connection");
    sqlx::query("UPDATE journey_cursor SET seq = 0, lease_until_ms = 0")
        .execute(&mut conn)
        .await
        .expect("rewind");
    runner.tick(now + MINUTE).await.expect("tick");
    assert_eq!(counted(&metrics_text(&state).await), (Some(2.0), Some(2.0)));
    let tick = runner.tick(now + DAY + MINUTE).await.expect("tick");
    assert_eq!((tick.due, tick.sent), (2, 2));
    assert_eq!(counted(&metrics_text(&state).await), (Some(2.0), Some(4.0)));
}
