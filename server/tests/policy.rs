//! The delivery policy at claim time (issue "Respect after Yes" §1): caps
//! per person, quiet hours on the recipient's clock, exempt categories,
//! drops, digests, and two workers deciding at once — through the real
//! workers and the honest local push service (it verifies every VAPID
//! signature and decrypts every push), on SQLite and — with
//! `ASKWELL_TEST_POSTGRES_URL` — on PostgreSQL.
//!
//! The workers read the real clock: quiet hours are chosen around the
//! current local time, and the passing of a window is played by moving the
//! held rows' due time with SQL and claiming under a policy whose quiet
//! hours are over.

mod support;

use std::sync::Arc;

use askwell::delivery::DeliveryPolicy;
use askwell_server::delivery::DeliveryConfig;
use askwell_server::store::now_ms;
use askwell_server::{AppState, Settings};
use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};
use support::*;

const DAY_MS: i64 = 86_400_000;

fn policy(json: Value) -> DeliveryPolicy {
    DeliveryPolicy::read(&askwell_server::journeys::core_value(&json)).expect("valid policy")
}

fn settings(policy_json: Value) -> Settings {
    Settings {
        admin_token: Some(TOKEN.into()),
        identity_secret: Some(IDENTITY_SECRET.as_bytes().to_vec()),
        endpoints: askwell_server::validate::EndpointPolicy { allow_insecure: true },
        delivery_policy: policy(policy_json),
        ..Settings::default()
    }
}

/// `state` with another delivery policy (the same database).
fn with_policy(state: &AppState, policy_json: Value) -> AppState {
    let mut other = state.clone();
    other.settings = Arc::new(Settings {
        delivery_policy: policy(policy_json),
        ..(*state.settings).clone()
    });
    other
}

/// Quiet hours from an hour ago to two hours ahead on `zone`'s clock now.
fn quiet_now(zone: &str) -> Value {
    let tz = askwell::journey::zone(zone).expect("zone");
    let now = jiff::Timestamp::now().to_zoned(tz);
    let at = |hours: i64| {
        let t = now.checked_add(jiff::SignedDuration::from_hours(hours)).expect("time");
        format!("{:02}:{:02}", t.hour(), t.minute())
    };
    json!([at(-1), at(2)])
}

async fn notify_id(state: &AppState, body: Value) -> String {
    notify_accepted(state, body).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn to_user(user: &str, title: &str) -> Value {
    json!({ "to": { "user": user }, "notification": { "title": title } })
}

fn count(counts: &Value, status: &str) -> i64 {
    counts[status]
        .as_i64()
        .unwrap_or_else(|| panic!("{status} in {counts}"))
}

async fn round(state: &AppState) -> usize {
    deliverer(state, DeliveryConfig::default())
        .round()
        .await
        .expect("round")
}

#[tokio::test]
async fn over_the_daily_cap_a_push_is_held_and_a_notification_counts_once_per_person() {
    let db = inspectable_with(settings(json!({ "caps": { "day": 2 } }))).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    subscribe_device(state, &service, "phone", "t", Some("Europe/Berlin"), Some("ann")).await;
    subscribe_device(state, &service, "laptop", "t", None, Some("ann")).await;
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        ids.push(notify_id(state, to_user("ann", title)).await);
    }
    let before = now_ms();
    round(state).await;
    // Two notifications, each on both of Ann's devices: 4 pushes, 2 counted.
    assert_eq!(service.received_count(), 4);
    for id in &ids[..2] {
        assert_eq!(count(&notification_counts(state, id).await, "delivered"), 2);
    }
    let third = notification_counts(state, &ids[2]).await;
    assert_eq!((count(&third, "held"), count(&third, "delivered")), (2, 0), "{third}");
    // Held until the first send is a day old, on both devices.
    for (_, due) in state.store.notification_due_times(&ids[2]).await.expect("due") {
        assert!((before + DAY_MS..=now_ms() + DAY_MS).contains(&due), "due {due}");
    }
    let text = metrics_text(state).await;
    assert_eq!(
        metric(&text, "askwell_policy_total{verdict=\"held\"}"),
        Some(2.0),
        "{text}"
    );
    // Claiming again sends nothing: the held rows are not due.
    round(state).await;
    assert_eq!(service.received_count(), 4);
}

#[tokio::test]
async fn quiet_hours_hold_on_the_recipients_clock_and_exempt_categories_go_now() {
    let zone = "Pacific/Kiritimati";
    let db = inspectable_with(settings(json!({
        "quietHours": quiet_now(zone),
        "categories": {
            "security": { "label": "Sign-ins", "exempt": true },
            "replies": { "label": "Replies" }
        }
    })))
    .await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let quiet = subscribe_device(state, &service, "kiritimati", "t", Some(zone), None).await;
    // 18 or 19 hours behind UTC+14, New York's clock is outside the window.
    let awake = subscribe_device(state, &service, "new-york", "t", Some("America/New_York"), None).await;
    let reply = notify_id(
        state,
        json!({ "to": { "topic": "t" }, "category": "replies", "notification": { "title": "Bill replied" } }),
    )
    .await;
    let security = notify_id(
        state,
        json!({ "to": { "topic": "t" }, "category": "security", "notification": { "title": "New sign-in" } }),
    )
    .await;
    round(state).await;
    let reply_counts = notification_counts(state, &reply).await;
    assert_eq!(
        (count(&reply_counts, "held"), count(&reply_counts, "delivered")),
        (1, 1),
        "{reply_counts}"
    );
    assert_eq!(
        count(&notification_counts(state, &security).await, "delivered"),
        2,
        "exempt: both, now"
    );
    let due = state.store.notification_due_times(&reply).await.expect("due");
    let held_until = due
        .iter()
        .find(|(sub, _)| *sub == quiet)
        .map(|(_, at)| *at)
        .expect("held row");
    assert!(due.iter().all(|(sub, _)| *sub != awake), "New York's was sent");
    // Until the end of the quiet hours on Kiritimati's clock (within the minute).
    let end = askwell::journey::zone(zone)
        .map(|tz| jiff::Timestamp::now().to_zoned(tz))
        .and_then(|now| now.checked_add(jiff::SignedDuration::from_hours(2)).ok())
        .expect("end");
    let end_ms = end.timestamp().as_millisecond();
    assert!(
        (end_ms - 60_000..=end_ms).contains(&held_until),
        "held until {held_until}, quiet ends {end_ms}"
    );
    let received: Vec<String> = service.received().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        received.iter().filter(|id| *id == "kiritimati").count(),
        1,
        "only the exempt push: {received:?}"
    );
}

#[tokio::test]
async fn a_category_that_drops_over_its_cap_ends_the_push_capped() {
    let db = inspectable_with(settings(json!({
        "caps": { "day": 5 },
        "categories": { "marketing": { "label": "Offers", "caps": { "day": 1 }, "overCap": "drop" } }
    })))
    .await;
    let state = &db.state;
    let service = push_service_for(state).await;
    subscribe_device(state, &service, "phone", "t", None, Some("ann")).await;
    let offer =
        |title: &str| json!({ "to": { "user": "ann" }, "category": "marketing", "notification": { "title": title } });
    let first = notify_id(state, offer("Sale")).await;
    let second = notify_id(state, offer("Another sale")).await;
    let reply = notify_id(state, to_user("ann", "Bill replied")).await;
    round(state).await;
    assert_eq!(count(&notification_counts(state, &first).await, "delivered"), 1);
    let dropped = notification_counts(state, &second).await;
    assert_eq!(
        (count(&dropped, "capped"), count(&dropped, "delivered")),
        (1, 0),
        "{dropped}"
    );
    assert_eq!(
        count(&notification_counts(state, &reply).await, "delivered"),
        1,
        "its own caps: the site's still allow"
    );
    let text = metrics_text(state).await;
    assert_eq!(metric(&text, "askwell_policy_total{verdict=\"capped\"}"), Some(1.0));
}

#[tokio::test]
async fn held_pushes_of_one_topic_go_out_as_one_digest_with_their_count() {
    let zone = "Europe/Berlin";
    let db = inspectable_with(settings(json!({ "quietHours": quiet_now(zone) }))).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    subscribe_device(state, &service, "phone", "t", Some(zone), Some("ann")).await;
    let reply = |n: usize| {
        json!({
            "to": { "user": "ann" }, "topic": "thread-bill",
            "notification": { "title": format!("Bill: message {n}"), "digest": { "title": "{count} new replies from Bill", "body": "Open the thread" } }
        })
    };
    let mut replies = Vec::new();
    for n in 1..=3 {
        replies.push(notify_id(state, reply(n)).await);
    }
    let other = notify_id(state, to_user("ann", "Your order shipped")).await;
    round(state).await;
    assert_eq!(service.received_count(), 0, "quiet hours");
    // The window opens: the held rows fall due, claimed under a policy
    // whose quiet hours are over.
    let mut conn = AnyConnection::connect(&db.url).await.expect("raw connection");
    sqlx::query("UPDATE deliveries SET next_attempt_ms = 0 WHERE status = 'held'")
        .execute(&mut conn)
        .await
        .expect("release");
    let morning = with_policy(state, json!({ "caps": { "day": 10 } }));
    round(&morning).await;
    let received = service.received();
    assert_eq!(received.len(), 2, "one digest and the other push: {received:?}");
    let payloads: Vec<Value> = received
        .iter()
        .map(|(_, text)| serde_json::from_str(text).expect("JSON"))
        .collect();
    let digest = payloads.iter().find(|p| p["count"] == 3).expect("a digest");
    assert_eq!(digest["title"], "3 new replies from Bill");
    assert_eq!(digest["body"], "Open the thread");
    assert!(digest.get("digest").is_none(), "the digest texts stay on the server");
    assert!(payloads
        .iter()
        .any(|p| p["title"] == "Your order shipped" && p.get("count").is_none()));
    for id in &replies[..2] {
        assert_eq!(count(&notification_counts(state, id).await, "collapsed"), 1);
    }
    assert_eq!(count(&notification_counts(state, &replies[2]).await, "delivered"), 1);
    assert_eq!(count(&notification_counts(state, &other).await, "delivered"), 1);
}

#[tokio::test]
async fn two_workers_deciding_at_once_never_send_past_the_cap() {
    let db = inspectable_with(settings(json!({ "caps": { "day": 3 } }))).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    subscribe_device(state, &service, "phone", "t", None, Some("ann")).await;
    for n in 0..12 {
        notify_id(state, to_user("ann", &format!("n{n}"))).await;
    }
    let config = DeliveryConfig {
        batch: 2,
        ..DeliveryConfig::default()
    };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let worker = deliverer(state, config);
            tokio::spawn(async move { while worker.round().await.expect("round") > 0 {} })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(service.received_count(), 3, "the cap holds across workers");
}

#[tokio::test]
async fn categories_and_digests_are_checked_naming_the_field() {
    let db = inspectable_with(settings(json!({
        "categories": { "replies": { "label": "Replies" }, "marketing": { "label": "Offers" } }
    })))
    .await;
    let state = &db.state;
    for (body, expected) in [
        (
            json!({ "to": { "all": true }, "category": "replys", "notification": { "title": "x" } }),
            "category: \"replys\" is not in the delivery policy (expected one of: marketing, replies)",
        ),
        (
            json!({ "to": { "all": true }, "category": "bad name", "notification": { "title": "x" } }),
            "category: expected 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "x", "digest": { "title": " " } } }),
            "notification.digest.title: required",
        ),
    ] {
        let (status, reply) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(message.starts_with(expected), "{message}");
    }
}

#[test]
fn a_bad_policy_file_is_a_startup_error_naming_the_file_and_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("policy.json");
    std::fs::write(&file, r#"{ "caps": { "day": 0 }, "quietHours": ["22:00"] }"#).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env("ASKWELL_DELIVERY_POLICY", &file)
        .env("RUST_LOG", "error")
        .output()
        .expect("run askwell-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "policy.json: invalid delivery policy",
        "caps.day: expected a positive integer",
        "quietHours: expected",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
}

#[tokio::test]
async fn the_stats_flag_a_category_whose_pushes_are_mostly_dismissed() {
    let db = inspectable_with(settings(json!({
        "fatigue": { "dismissed": 0.6, "minimum": 4 },
        "categories": { "marketing": { "label": "Offers" }, "replies": { "label": "Replies" } }
    })))
    .await;
    let state = &db.state;
    let service = push_service_for(state).await;
    for i in 0..5 {
        subscribe_device(state, &service, &format!("d{i}"), "t", None, None).await;
    }
    let offer =
        |title: &str| json!({ "to": { "topic": "t" }, "category": "marketing", "notification": { "title": title } });
    notify_id(state, offer("Sale")).await;
    notify_id(
        state,
        json!({ "to": { "topic": "t" }, "category": "replies", "notification": { "title": "Bill replied" } }),
    )
    .await;
    round(state).await;
    // Four of the five offers dismissed without a click, one clicked; the
    // replies all clicked.
    let mut events = Vec::new();
    let mut dismissed = 0;
    for (_, text) in service.received() {
        let payload: Value = serde_json::from_str(&text).expect("JSON");
        let kind = if payload["title"] == "Sale" && dismissed < 4 {
            dismissed += 1;
            "notification_dismissed"
        } else {
            "notification_clicked"
        };
        events.push(json!({ "type": kind, "delivery": payload["delivery"] }));
    }
    let body = json!({ "events": events }).to_string();
    let (status, reply) = call(state, "POST", "/v1/events", Some(&body), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let (status, report) = call(state, "GET", "/v1/stats", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let fatigue = report["fatigue"].as_array().expect("fatigue");
    let row = |name: &str| fatigue.iter().find(|r| r["name"] == name).cloned().expect(name);
    assert_eq!(
        row("marketing"),
        json!({ "kind": "category", "name": "marketing", "delivered": 5, "clicked": 1, "dismissed": 4, "unsubscribed": 0, "flagged": "dismissed", "paused": false })
    );
    assert_eq!(row("replies")["flagged"], Value::Null);
    assert_eq!(
        report["paused_categories"],
        json!([]),
        "flagged, but no fatigue.pause: nothing pauses"
    );
    let next = notify_id(state, offer("Another sale")).await;
    round(state).await;
    assert_eq!(count(&notification_counts(state, &next).await, "delivered"), 5);
}

/// Five devices get an offer and a reply; four of the offers are dismissed
/// without a click, every reply is clicked.
async fn tire_of_offers(state: &AppState, service: &push_service::PushService) {
    for i in 0..5 {
        subscribe_device(state, service, &format!("d{i}"), "t", None, None).await;
    }
    notify_id(state, offer("Sale")).await;
    notify_id(state, reply("Bill replied")).await;
    round(state).await;
    let mut events = Vec::new();
    let mut dismissed = 0;
    for (_, text) in service.received() {
        let payload: Value = serde_json::from_str(&text).expect("JSON");
        let kind = if payload["title"] == "Sale" && dismissed < 4 {
            dismissed += 1;
            "notification_dismissed"
        } else {
            "notification_clicked"
        };
        events.push(json!({ "type": kind, "delivery": payload["delivery"] }));
    }
    let body = json!({ "events": events }).to_string();
    let (status, answer) = call(state, "POST", "/v1/events", Some(&body), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

fn offer(title: &str) -> Value {
    json!({ "to": { "topic": "t" }, "category": "marketing", "notification": { "title": title } })
}

fn reply(title: &str) -> Value {
    json!({ "to": { "topic": "t" }, "category": "replies", "notification": { "title": title } })
}

#[tokio::test]
async fn a_tiring_category_named_in_fatigue_pause_is_paused_at_claim_while_others_still_go() {
    let db = inspectable_with(settings(json!({
        "fatigue": { "dismissed": 0.6, "minimum": 4, "window": { "days": 7 }, "pause": ["marketing"] },
        "categories": { "marketing": { "label": "Offers" }, "replies": { "label": "Replies" } }
    })))
    .await;
    let state = &db.state;
    let service = push_service_for(state).await;
    tire_of_offers(state, &service).await;
    let before = service.received().len();
    let paused = notify_id(state, offer("Another sale")).await;
    let answered = notify_id(state, reply("Bill replied again")).await;
    round(state).await;
    let counts = notification_counts(state, &paused).await;
    assert_eq!(
        (count(&counts, "paused"), count(&counts, "delivered")),
        (5, 0),
        "{counts}"
    );
    assert_eq!(count(&notification_counts(state, &answered).await, "delivered"), 5);
    let titles: Vec<String> = service.received()[before..]
        .iter()
        .map(|(_, text)| {
            serde_json::from_str::<Value>(text).expect("JSON")["title"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        titles,
        vec!["Bill replied again"; 5],
        "only the replies reached the push service"
    );

    let (status, report) = call(state, "GET", "/v1/stats", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["paused_categories"], json!(["marketing"]));
    let fatigue = report["fatigue"].as_array().expect("fatigue");
    let row = |name: &str| fatigue.iter().find(|r| r["name"] == name).cloned().expect(name);
    assert_eq!(
        (row("marketing")["flagged"].clone(), row("marketing")["paused"].clone()),
        (json!("dismissed"), json!(true))
    );
    assert_eq!(row("replies")["paused"], json!(false));
    let text = metrics_text(state).await;
    assert_eq!(metric(&text, "askwell_policy_total{verdict=\"paused\"}"), Some(5.0));
    assert_eq!(
        metric(&text, "askwell_category_paused{category=\"marketing\"}"),
        Some(1.0)
    );
    let paused_today: i64 = report["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|day| day["statuses"]["paused"].as_i64())
        .sum();
    assert_eq!(paused_today, 5, "the dashboard's deliveries chart counts them");
}

#[tokio::test]
async fn a_paused_category_resumes_by_itself_once_its_window_has_passed() {
    // The window is judged on notifications created in it: one created
    // longer ago than the window no longer counts, so the category goes
    // again without anything stored or anyone resetting it.
    let db = inspectable_with(settings(json!({
        "fatigue": { "dismissed": 0.6, "minimum": 4, "window": { "seconds": 2 }, "pause": ["marketing"] },
        "categories": { "marketing": { "label": "Offers" }, "replies": { "label": "Replies" } }
    })))
    .await;
    let state = &db.state;
    let service = push_service_for(state).await;
    tire_of_offers(state, &service).await;
    let paused = notify_id(state, offer("Another sale")).await;
    round(state).await;
    assert_eq!(count(&notification_counts(state, &paused).await, "paused"), 5);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let resumed = notify_id(state, offer("A later sale")).await;
    round(state).await;
    assert_eq!(count(&notification_counts(state, &resumed).await, "delivered"), 5);
}

#[test]
fn a_pause_naming_an_exempt_or_unknown_category_is_refused_at_start() {
    let err = DeliveryPolicy::read(&askwell_server::journeys::core_value(&json!({
        "categories": { "security": { "label": "Sign-ins", "exempt": true } },
        "fatigue": { "pause": ["security", "offers"] }
    })))
    .expect_err("refused")
    .to_string();
    assert!(err.contains("fatigue.pause[0]: \"security\" is exempt"), "{err}");
    assert!(err.contains("fatigue.pause[1]: \"offers\" is not a category"), "{err}");
}
