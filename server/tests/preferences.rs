//! The preference centre's API (by proof of possession, and for users by
//! the admin token) and its enforcement when a worker claims: muted
//! categories and pauses end a push `muted`, exempt categories still
//! arrive — through the real workers and the honest local push service, on
//! SQLite and — with `ASKWELL_TEST_POSTGRES_URL` — on PostgreSQL.

mod support;

use askwell::delivery::DeliveryPolicy;
use askwell_server::delivery::DeliveryConfig;
use askwell_server::{AppState, Settings};
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

async fn state_with_categories() -> AppState {
    let policy = json!({
        "categories": {
            "security": { "label": "Sign-ins and security", "exempt": true },
            "replies": { "label": "Replies to your messages" },
            "marketing": { "label": "News and offers" }
        }
    });
    let mut state = state(true).await;
    state.settings = std::sync::Arc::new(Settings {
        delivery_policy: DeliveryPolicy::read(&askwell_server::journeys::core_value(&policy)).expect("policy"),
        ..(*state.settings).clone()
    });
    state
}

/// A device of `user` (if any) on the push service; returns its endpoint
/// and auth secret, the proof of possession.
async fn device(
    state: &AppState,
    service: &push_service::PushService,
    id: &str,
    user: Option<&str>,
) -> (String, String) {
    let (_, endpoint, auth) = subscribe_device_keys(state, service, id, "t", None, user).await;
    (endpoint, auth)
}

async fn post(state: &AppState, uri: &str, body: Value) -> (StatusCode, Value) {
    call(state, "POST", uri, Some(&body.to_string()), None).await
}

async fn send(state: &AppState, to: Value, category: &str) -> String {
    let body = json!({ "to": to, "category": category, "notification": { "title": category } });
    notify_accepted(state, body).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn count(counts: &Value, status: &str) -> i64 {
    counts[status]
        .as_i64()
        .unwrap_or_else(|| panic!("{status} in {counts}"))
}

async fn round(state: &AppState) {
    deliverer(state, DeliveryConfig::default())
        .round()
        .await
        .expect("round");
}

#[tokio::test]
async fn a_device_mutes_a_category_by_possession_and_its_pushes_end_muted() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let (status, view) = post(
        &state,
        "/v1/preferences/lookup",
        json!({ "endpoint": endpoint, "auth": auth }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["pause"], Value::Null);
    assert_eq!(view["topics"], json!([{ "name": "t", "on": true }]));
    let marketing = view["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .find(|c| c["name"] == "marketing")
        .cloned();
    assert_eq!(
        marketing,
        Some(json!({ "name": "marketing", "label": "News and offers", "exempt": false, "on": true }))
    );

    let (status, view) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "categories": { "marketing": false } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert!(view["categories"]
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c["name"] == "marketing" && c["on"] == false));

    let offer = send(&state, json!({ "topic": "t" }), "marketing").await;
    let reply = send(&state, json!({ "topic": "t" }), "replies").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &offer).await, "muted"), 1);
    assert_eq!(count(&notification_counts(&state, &reply).await, "delivered"), 1);
    assert_eq!(service.received_count(), 1);
    let text = metrics_text(&state).await;
    assert_eq!(
        metric(&text, "askwell_policy_total{verdict=\"muted\"}"),
        Some(1.0),
        "{text}"
    );

    // Turned back on: the next offer arrives.
    post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "categories": { "marketing": true } }),
    )
    .await;
    let again = send(&state, json!({ "topic": "t" }), "marketing").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &again).await, "delivered"), 1);
}

#[tokio::test]
async fn a_pause_silences_all_but_exempt_categories_until_resumed() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let (status, view) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "pause": { "days": 7 } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let until = view["pause"]["until_ms"].as_i64().expect("until");
    assert!(
        (until - askwell_server::store::now_ms() - 7 * 86_400_000).abs() < 60_000,
        "{view}"
    );
    let reply = send(&state, json!({ "topic": "t" }), "replies").await;
    let sign_in = send(&state, json!({ "topic": "t" }), "security").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &reply).await, "muted"), 1);
    assert_eq!(
        count(&notification_counts(&state, &sign_in).await, "delivered"),
        1,
        "exempt"
    );

    let (_, view) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "pause": { "indefinite": true } }),
    )
    .await;
    assert_eq!(view["pause"], json!({ "indefinite": true }));
    let (_, view) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "pause": null }),
    )
    .await;
    assert_eq!(view["pause"], Value::Null, "resumed");
    let next = send(&state, json!({ "topic": "t" }), "replies").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &next).await, "delivered"), 1);
}

#[tokio::test]
async fn the_apps_backend_mutes_a_category_for_every_device_of_a_user() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    device(&state, &service, "phone", Some("ann")).await;
    device(&state, &service, "laptop", Some("ann")).await;
    let body = json!({ "categories": { "replies": false } }).to_string();
    let (status, view) = call(&state, "PUT", "/v1/users/ann/preferences", Some(&body), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        view["topics"],
        json!([]),
        "a user has no topics of their own, only muted ones"
    );
    let (status, read) = call(&state, "GET", "/v1/users/ann/preferences", None, Some(TOKEN)).await;
    assert_eq!((status, &read), (StatusCode::OK, &view));
    let (status, _) = call(&state, "GET", "/v1/users/ann/preferences", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reply = send(&state, json!({ "user": "ann" }), "replies").await;
    let offer = send(&state, json!({ "user": "ann" }), "marketing").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &reply).await, "muted"), 2);
    assert_eq!(count(&notification_counts(&state, &offer).await, "delivered"), 2);
    // The export shows it; erasing Ann removes it.
    let (status, export) = call(&state, "GET", "/v1/users/ann/export", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(
        export["preferences"],
        json!([{ "subject": "user:ann", "muted": ["replies"], "muted_topics": [], "paused_until": null }])
    );
    let (status, _) = call(&state, "DELETE", "/v1/users/ann", None, Some(TOKEN)).await;
    assert!(status.is_success(), "{status}");
    let (_, read) = call(&state, "GET", "/v1/users/ann/preferences", None, Some(TOKEN)).await;
    assert!(
        read["categories"]
            .as_array()
            .expect("list")
            .iter()
            .all(|c| c["on"] == true),
        "{read}"
    );
}

#[tokio::test]
async fn bad_changes_are_refused_naming_every_field_and_change_nothing() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let (status, reply) = post(
        &state,
        "/v1/preferences",
        json!({
            "endpoint": endpoint, "auth": auth,
            "categories": { "security": false, "replys": false, "replies": "off", "bad name": false },
            "pause": { "weeks": 1 }
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_preferences");
    let message = reply["error"]["message"].as_str().expect("message");
    for expected in [
        "categories.security: exempt (it always arrives), so it cannot be turned off",
        "categories.replys: not in the delivery policy (expected one of: marketing, replies, security)",
        "categories.replies: expected true (on) or false (off)",
        "categories.bad name: a category name",
        "pause: expected null (resume)",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    let (_, view) = post(
        &state,
        "/v1/preferences/lookup",
        json!({ "endpoint": endpoint, "auth": auth }),
    )
    .await;
    assert!(
        view["categories"]
            .as_array()
            .expect("list")
            .iter()
            .all(|c| c["on"] == true),
        "{view}"
    );
    for pause in [
        json!({ "days": 0 }),
        json!({ "days": 400 }),
        json!({ "hours": 1.5 }),
        json!("week"),
        json!({ "indefinite": false }),
    ] {
        let (status, reply) = post(
            &state,
            "/v1/preferences",
            json!({ "endpoint": endpoint, "auth": auth, "pause": pause }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{pause} → {reply}");
    }
    // Without the auth secret, nothing is shown or changed.
    let (status, reply) = post(
        &state,
        "/v1/preferences/lookup",
        json!({ "endpoint": endpoint, "auth": "AAAAAAAAAAAAAAAAAAAAAA" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, _) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": "x", "categories": { "replies": false } }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "colour": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_journeys_send_carries_its_category_and_a_muted_one_is_not_sent() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    device(&state, &service, "phone", Some("ann")).await;
    let journey = |category: &str| {
        json!({ "entry": { "event": "signed_up" }, "steps": [{ "send": { "title": "Our news", "category": category } }] })
            .to_string()
    };
    let (status, reply) = call(&state, "PUT", "/v1/journeys/news", Some(&journey("newz")), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("steps[0].send.category: \"newz\" is not in the delivery policy")),
        "{reply}"
    );
    let (status, reply) = call(
        &state,
        "PUT",
        "/v1/journeys/news",
        Some(&journey("marketing")),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let off = json!({ "categories": { "marketing": false } }).to_string();
    let (status, reply) = call(&state, "PUT", "/v1/users/ann/preferences", Some(&off), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let track = json!({ "events": [{ "user": "ann", "name": "signed_up" }] }).to_string();
    let (status, reply) = call(&state, "POST", "/v1/track", Some(&track), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let runner = askwell_server::journeys::Runner::new(state.store.clone(), jiff::tz::TimeZone::UTC);
    let tick = runner.tick(askwell_server::store::now_ms()).await.expect("tick");
    assert_eq!(tick.sent, 1, "{tick:?}");
    round(&state).await;
    assert_eq!(service.received_count(), 0, "marketing is off for Ann");
    let text = metrics_text(&state).await;
    assert_eq!(
        metric(&text, "askwell_policy_total{verdict=\"muted\"}"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn without_categories_in_the_policy_any_name_mutes_but_at_most_64() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    for batch in 0..2 {
        let names: serde_json::Map<String, Value> = (0..32).map(|i| (format!("c{batch}-{i}"), json!(false))).collect();
        let (status, reply) = post(
            &state,
            "/v1/preferences",
            json!({ "endpoint": endpoint, "auth": auth, "categories": names }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (status, reply) = post(
        &state,
        "/v1/preferences",
        json!({ "endpoint": endpoint, "auth": auth, "categories": { "one-more": false } }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"]["message"], "categories: at most 64 turned off");
    let (_, view) = post(
        &state,
        "/v1/preferences/lookup",
        json!({ "endpoint": endpoint, "auth": auth }),
    )
    .await;
    assert_eq!(
        view["categories"].as_array().map(Vec::len),
        Some(64),
        "nothing more was kept"
    );
}

#[tokio::test]
async fn concurrent_changes_of_one_device_lose_nothing() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (state, endpoint, auth) = (state.clone(), endpoint.clone(), auth.clone());
        tasks.spawn(async move {
            let body = json!({ "endpoint": endpoint, "auth": auth, "categories": { format!("c{i}"): false } });
            post(&state, "/v1/preferences", body).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, reply) = done.expect("task");
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let (_, view) = post(
        &state,
        "/v1/preferences/lookup",
        json!({ "endpoint": endpoint, "auth": auth }),
    )
    .await;
    assert_eq!(
        view["categories"].as_array().map(Vec::len),
        Some(24),
        "every change kept: {view}"
    );
}

/// One tap from the notification, as Askwell's worker does it: it reads the
/// push with the core's reader, asks the core what the mute button changes,
/// adds the proof of possession it holds, and posts it. The next push to
/// that topic ends muted; another topic still arrives.
#[tokio::test]
async fn the_mute_button_of_a_real_push_mutes_its_topic_and_another_topic_still_arrives() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let (status, reply) = post(
        &state,
        "/v1/subscriptions/topics",
        json!({ "endpoint": endpoint, "auth": auth, "add": ["thread:42"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let to_thread = |title: &str| {
        json!({
            "to": { "topic": "thread:42" }, "category": "replies",
            "notification": { "title": title, "actions": [
                { "action": askwell::one_tap::MUTE, "title": "Mute this thread", "confirm": "Muted: replies from Bill" },
                { "action": askwell::one_tap::SNOOZE, "title": "Pause for a day", "hours": 24 }
            ] }
        })
    };
    notify_accepted(&state, to_thread("Bill replied")).await;
    round(&state).await;
    let received = service.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", service.rejected());
    let pushed: Value = serde_json::from_str(&received[0].1).expect("JSON");
    let pushed = askwell_server::journeys::core_value(&pushed);
    let payload = askwell::model::PushPayload::read(&pushed).expect("the worker reads it");
    let tap = payload.tap(askwell::one_tap::MUTE).expect("a mute");
    assert_eq!(tap.confirmation, "Muted: replies from Bill");
    let (status, view) = post(&state, "/v1/preferences", worker_request(&tap, &endpoint, &auth)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        view["topics"],
        json!([{ "name": "t", "on": true }, { "name": "thread:42", "on": false }])
    );

    let muted = notify_accepted(&state, to_thread("Bill again")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let other = send(&state, json!({ "topic": "t" }), "replies").await;
    round(&state).await;
    assert_eq!(count(&notification_counts(&state, &muted).await, "muted"), 1);
    assert_eq!(count(&notification_counts(&state, &other).await, "delivered"), 1);
    assert_eq!(service.received_count(), 2, "the first push and the other topic's");

    // The snooze button of the same push pauses everything for its hours.
    let tap = payload.tap(askwell::one_tap::SNOOZE).expect("a snooze");
    assert_eq!(tap.confirmation, "Paused for a day");
    let (status, view) = post(&state, "/v1/preferences", worker_request(&tap, &endpoint, &auth)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let until = view["pause"]["until_ms"].as_i64().expect("paused");
    assert!(
        (until - askwell_server::store::now_ms() - 86_400_000).abs() < 60_000,
        "{view}"
    );
}

/// A push to a topic is meant for the devices on it when it goes out, not
/// only when it was queued: a device that left the topic meanwhile (a held
/// push, a rollout's rest deciding hours later) is not sent it, even in an
/// exempt category, and the push ends `muted` (the person turned it off).
#[tokio::test]
async fn a_device_that_leaves_a_topic_before_its_push_goes_out_is_not_sent_it() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (endpoint, auth) = device(&state, &service, "phone", None).await;
    let topics = |change: Value| {
        let mut body = json!({ "endpoint": endpoint, "auth": auth });
        body.as_object_mut()
            .expect("object")
            .extend(change.as_object().expect("object").clone());
        body
    };
    let (status, reply) = post(
        &state,
        "/v1/subscriptions/topics",
        topics(json!({ "add": ["thread:7"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let reply_to_thread = send(&state, json!({ "topic": "thread:7" }), "replies").await;
    let security_to_thread = send(&state, json!({ "topic": "thread:7" }), "security").await;
    let to_other = send(&state, json!({ "topic": "t" }), "replies").await;

    let (status, reply) = post(
        &state,
        "/v1/subscriptions/topics",
        topics(json!({ "remove": ["thread:7"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    round(&state).await;
    let counts = notification_counts(&state, &reply_to_thread).await;
    assert_eq!(count(&counts, "muted"), 1, "{counts}");
    assert_eq!(
        count(&notification_counts(&state, &security_to_thread).await, "muted"),
        1
    );
    assert_eq!(count(&notification_counts(&state, &to_other).await, "delivered"), 1);
    assert_eq!(service.received_count(), 1, "only the topic it is still on");
}

/// The same for a push to a segment (`to: { where }`): its audience is
/// judged again when it goes out, so a device that left a topic the segment
/// names (a scheduled send, a held push) is not sent it and ends `muted`,
/// while one still matching is.
#[tokio::test]
async fn a_device_that_leaves_a_segments_topic_before_its_push_goes_out_is_not_sent_it() {
    let state = state_with_categories().await;
    let service = push_service_for(&state).await;
    let (leaving, leaving_auth) = device(&state, &service, "leaving", None).await;
    let (staying, staying_auth) = device(&state, &service, "staying", None).await;
    for (endpoint, auth) in [(&leaving, &leaving_auth), (&staying, &staying_auth)] {
        let body = json!({ "endpoint": endpoint, "auth": auth, "add": ["thread:7"] });
        let (status, reply) = post(&state, "/v1/subscriptions/topics", body).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let to_segment = send(
        &state,
        json!({ "where": { "all": [{ "topic": "thread:*" }, { "not": { "topic": "muted:*" } }] } }),
        "security",
    )
    .await;

    let body = json!({ "endpoint": leaving, "auth": leaving_auth, "remove": ["thread:7"] });
    let (status, reply) = post(&state, "/v1/subscriptions/topics", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    round(&state).await;
    let counts = notification_counts(&state, &to_segment).await;
    assert_eq!(count(&counts, "muted"), 1, "{counts}");
    assert_eq!(count(&counts, "delivered"), 1, "{counts}");
    assert_eq!(service.received_count(), 1, "only the device still in the segment");
}

#[tokio::test]
async fn askwells_buttons_are_checked_when_a_push_is_queued() {
    let state = state_with_categories().await;
    let cases = [
        (
            json!({ "all": true }),
            json!({ "action": "askwell:mute-topic", "title": "Mute" }),
            "needs something to mute",
        ),
        (
            json!({ "topic": "t" }),
            json!({ "action": "askwell:unsubscribe", "title": "Stop" }),
            "is not one of Askwell's buttons",
        ),
        (
            json!({ "topic": "t" }),
            json!({ "action": "askwell:snooze", "title": "Later", "hours": 0 }),
            ".hours: 1 to 8784",
        ),
        (
            json!({ "topic": "t" }),
            json!({ "action": "askwell:snooze", "title": "Later", "hours": 9000 }),
            ".hours: 1 to 8784",
        ),
        (
            json!({ "topic": "t" }),
            json!({ "action": "reply", "title": "Reply", "hours": 2 }),
            ".hours: only for askwell:snooze",
        ),
        (
            json!({ "topic": "t" }),
            json!({ "action": "reply", "title": "Reply", "confirm": "Done" }),
            ".confirm: only for Askwell's buttons",
        ),
    ];
    for (to, action, expected) in cases {
        let body = json!({ "to": to, "notification": { "title": "t", "actions": [action] } });
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
        assert_eq!(reply["error"]["code"], "invalid_notification", "{reply}");
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with("notification.actions[0]") && message.contains(expected),
            "{message}"
        );
    }
    // To everyone, a category is what the mute turns off.
    let body = json!({
        "to": { "all": true }, "category": "marketing",
        "notification": { "title": "Sale", "actions": [{ "action": "askwell:mute-topic", "title": "No more offers" }] }
    });
    notify_accepted(&state, body).await;
}

/// What the worker posts for `tap`: its change and the proof of possession.
fn worker_request(tap: &askwell::one_tap::Tap, endpoint: &str, auth: &str) -> Value {
    let mut change = serde_value(&tap.change);
    change["endpoint"] = json!(endpoint);
    change["auth"] = json!(auth);
    change
}

/// The core's value as JSON (what the worker's `JSON.stringify` sends).
fn serde_value(value: &askwell::value::Value) -> Value {
    use askwell::value::Value as Core;
    match value {
        Core::Null => Value::Null,
        Core::Bool(b) => json!(b),
        // As `JSON.stringify` writes them: 24, not 24.0.
        Core::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => json!(*n as i64),
        Core::Number(n) => json!(n),
        Core::String(s) => json!(s),
        Core::Array(items) => Value::Array(items.iter().map(serde_value).collect()),
        Core::Object(members) => Value::Object(members.iter().map(|(k, v)| (k.clone(), serde_value(v))).collect()),
    }
}

/// Topic labels come from the page (the prompt's `topicLabel`) with the
/// subscription or a topic added later, and the preference centre shows
/// them; a bad label is a 400 naming it, and the request stores nothing.
#[tokio::test]
async fn topics_carry_the_labels_the_page_sent_and_bad_labels_change_nothing() {
    let state = state(false).await;
    let endpoint = "https://push.example.com/labels";
    let (p256dh, auth) = (
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "BTBZMqHH6r4Tts7J_aSIgg",
    );
    let subscription = json!({ "endpoint": endpoint, "keys": { "p256dh": p256dh, "auth": auth } });
    let possession = json!({ "endpoint": endpoint, "auth": auth });
    let long = "x".repeat(askwell_server::validate::MAX_TOPIC_LABEL_LEN + 1);
    for (labels, field) in [
        (
            json!({ "thread:ann": "Replies from Ann" }),
            "labels.thread:ann: not one of",
        ),
        (json!({ "thread:bill": " " }), "labels.thread:bill: expected 1 to 120"),
        (json!({ "thread:bill": "Bill\u{0}" }), "labels.thread:bill: expected"),
        (json!({ "thread:bill": long }), "labels.thread:bill: expected"),
    ] {
        let body = json!({ "subscription": subscription, "topics": ["thread:bill"], "labels": labels });
        let (status, answer) = post(&state, "/v1/subscriptions", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{message}");
        assert_eq!(
            state.store.subscription_count().await.expect("count"),
            0,
            "nothing stored"
        );
    }
    let body = json!({ "subscription": subscription, "topics": ["thread:bill", "news"], "labels": { "thread:bill": "Replies from Bill" } });
    assert_eq!(post(&state, "/v1/subscriptions", body).await.0, StatusCode::CREATED);
    let add = json!({ "endpoint": endpoint, "auth": auth, "add": ["show:42"], "labels": { "show:42": "New episodes of Dark" } });
    assert_eq!(post(&state, "/v1/subscriptions/topics", add).await.0, StatusCode::OK);
    let bad = json!({ "endpoint": endpoint, "auth": auth, "add": ["show:7"], "labels": { "show:8": "Nope" } });
    let (status, answer) = post(&state, "/v1/subscriptions/topics", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, view) = post(&state, "/v1/preferences/lookup", possession).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        view["topics"],
        json!([
            { "name": "news", "on": true },
            { "name": "show:42", "label": "New episodes of Dark", "on": true },
            { "name": "thread:bill", "label": "Replies from Bill", "on": true },
        ]),
        "show:7 was not added either"
    );
    // The page's core reads this answer into the centre's switches.
    let centre =
        askwell::preference_centre::Centre::read(&askwell_server::journeys::core_value(&view)).expect("centre");
    let labels: Vec<&str> = centre.topics.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["news", "New episodes of Dark", "Replies from Bill"]);
}
