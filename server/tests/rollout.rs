//! Push A/B tests with a rollout, on a stepped clock: the variants go to a
//! test share; the rest waits; the decision sends the rest the winner only
//! on a significant verdict, else the baseline and says so. Run on SQLite
//! and, by the test command, on PostgreSQL.

mod support;

use std::collections::BTreeMap;

use askwell_server::delivery::DeliveryConfig;
use askwell_server::rollout::decide_due;
use askwell_server::store::now_ms;
use askwell_server::{AppState, Settings};
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

const HOUR_MS: i64 = 3600 * 1000;

fn settings() -> Settings {
    Settings {
        admin_token: Some(TOKEN.into()),
        identity_secret: Some(IDENTITY_SECRET.as_bytes().to_vec()),
        endpoints: askwell_server::validate::EndpointPolicy { allow_insecure: true },
        ..Settings::default()
    }
}

async fn round(state: &AppState) -> usize {
    deliverer(state, DeliveryConfig::default())
        .round()
        .await
        .expect("round")
}

async fn report(state: &AppState, id: &str) -> Value {
    let (status, report) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// `n` devices on `topic`; every fifth bound to a user with a first name.
/// Returns (push-service id, subscription id) of each.
async fn devices(state: &AppState, service: &push_service::PushService, topic: &str, n: usize) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("{topic}-{i}");
        let user = (i % 5 == 0).then(|| format!("{topic}-user-{i}"));
        if let Some(user) = &user {
            let body = json!({ "traits": { "first_name": format!("Name{i}") } }).to_string();
            let (status, reply) = call(state, "PUT", &format!("/v1/users/{user}"), Some(&body), Some(TOKEN)).await;
            assert_eq!(status, StatusCode::OK, "{reply}");
        }
        let id = subscribe_device(state, service, &name, topic, None, user.as_deref()).await;
        out.push((name, id));
    }
    out
}

/// Decrypted pushes by push-service id, the newest of each.
fn titles(service: &push_service::PushService) -> BTreeMap<String, String> {
    assert!(service.rejected().is_empty(), "{:?}", service.rejected());
    service
        .received()
        .into_iter()
        .map(|(id, text)| {
            let payload: Value = serde_json::from_str(&text).expect("JSON payload");
            (id, payload["title"].as_str().expect("title").to_owned())
        })
        .collect()
}

/// Posts a click for every `every`-th of `pushes` (decrypted payloads).
async fn click(state: &AppState, pushes: &[Value], every: usize) {
    let events: Vec<Value> = pushes
        .iter()
        .step_by(every)
        .map(|push| json!({ "type": "notification_clicked", "delivery": push["delivery"] }))
        .collect();
    post_events(state, &events).await;
}

fn test_body(topic: &str, b_title: &str) -> Value {
    json!({
        "to": { "topic": topic },
        "notification": {
            "title": "Bill replied",
            "variants": [{ "id": "a" }, { "id": "b", "title": b_title }]
        },
        "rollout": { "test_share": 0.3, "decide_after": { "hours": 1 } }
    })
}

#[tokio::test]
async fn a_significant_winner_goes_to_the_rest_once_the_wait_is_over() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let devices = devices(state, &service, "ro", 400).await;
    let sent_at = now_ms();
    let reply = notify_accepted(state, test_body("ro", "{user.first_name|Friend}, Bill is waiting")).await;
    let id = reply["id"].as_str().expect("id").to_owned();
    // Who is tested is the core's draw of (device, notification).
    let tested: Vec<&(String, i64)> = devices
        .iter()
        .filter(|(_, sub)| askwell::experiment::in_share(&sub.to_string(), &id, 0.3))
        .collect();
    let rest = devices.len() - tested.len();
    assert!((80..=160).contains(&tested.len()), "tested {}", tested.len());
    let counts = notification_counts(state, &id).await;
    assert_eq!(counts["awaiting_winner"], rest, "{counts}");
    assert_eq!(round(state).await, tested.len(), "only the test share is sent");
    assert_eq!(round(state).await, 0, "the rest waits");

    // b is clicked far more often than a: 50% against 5%.
    let arms = [
        askwell::experiment::Arm { id: "a", weight: 1.0 },
        askwell::experiment::Arm { id: "b", weight: 1.0 },
    ];
    let received: BTreeMap<String, Value> = service
        .received()
        .into_iter()
        .map(|(who, text)| (who, serde_json::from_str(&text).expect("JSON")))
        .collect();
    let mut by_arm: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (name, sub) in &tested {
        let arm = askwell::experiment::assign(&sub.to_string(), &id, 0.0, &arms)
            .label()
            .to_owned();
        let push = received.get(name).expect("a tested device got its push").clone();
        by_arm.entry(if arm == "a" { "a" } else { "b" }).or_default().push(push);
    }
    click(state, &by_arm["a"], 20).await;
    click(state, &by_arm["b"], 2).await;

    // Not due yet: nothing is decided, nothing more sent.
    assert_eq!(decide_due(state, sent_at + HOUR_MS / 2).await.expect("decide"), 0);
    assert_eq!(report(state, &id).await["experiment"]["rollout"]["decided"], false);
    // Due: b won, and the rest gets b, rendered for each recipient.
    assert_eq!(decide_due(state, now_ms() + HOUR_MS).await.expect("decide"), 1);
    assert_eq!(
        decide_due(state, now_ms() + 2 * HOUR_MS).await.expect("decide"),
        0,
        "decided once"
    );
    let answer = report(state, &id).await;
    let rollout = &answer["experiment"]["rollout"];
    assert_eq!(rollout["decision"]["variant"], "b", "{rollout}");
    assert_eq!(rollout["decision"]["winner"], true, "{rollout}");
    assert!(
        rollout["decision"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("b beats a on click-through") && t.ends_with("the rest got b")),
        "{rollout}"
    );
    assert_eq!(answer["counts"]["awaiting_winner"], 0, "{answer}");
    assert_eq!(round(state).await, rest);
    let titles = titles(&service);
    for (i, (name, sub)) in devices.iter().enumerate() {
        if askwell::experiment::in_share(&sub.to_string(), &id, 0.3) {
            continue;
        }
        let want = if i % 5 == 0 {
            format!("Name{i}, Bill is waiting")
        } else {
            "Friend, Bill is waiting".to_owned()
        };
        assert_eq!(titles.get(name), Some(&want), "{name} is in the rest");
    }
    // The test's report is the test share's alone; the rest is beside it.
    let answer = report(state, &id).await;
    let experiment = &answer["experiment"];
    let delivered: u64 = experiment["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter_map(|v| v["delivered"].as_u64())
        .sum();
    assert_eq!(delivered, tested.len() as u64, "{experiment}");
    assert_eq!(experiment["rollout"]["rest"]["delivered"], rest, "{experiment}");
    assert_eq!(answer["counts"]["delivered"], devices.len(), "{answer}");
}

#[tokio::test]
async fn without_a_significant_winner_the_rest_gets_the_baseline_and_the_report_says_why() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let devices = devices(state, &service, "even", 120).await;
    let reply = notify_accepted(state, test_body("even", "Bill is waiting")).await;
    let id = reply["id"].as_str().expect("id").to_owned();
    let tested = round(state).await;
    // No clicks at all: no evidence either way.
    assert_eq!(decide_due(state, now_ms() + HOUR_MS + 1000).await.expect("decide"), 1);
    let rollout = report(state, &id).await["experiment"]["rollout"].clone();
    assert_eq!(
        (
            rollout["decision"]["variant"].as_str(),
            rollout["decision"]["winner"].as_bool()
        ),
        (Some("a"), Some(false)),
        "{rollout}"
    );
    let text = rollout["decision"]["text"].as_str().expect("text");
    assert!(
        text.starts_with("no winner: ") && text.ends_with("the rest got a, the baseline"),
        "{text}"
    );
    assert_eq!(round(state).await, devices.len() - tested);
    let titles = titles(&service);
    for (name, sub) in &devices {
        if !askwell::experiment::in_share(&sub.to_string(), &id, 0.3) {
            assert_eq!(titles.get(name).map(String::as_str), Some("Bill replied"), "{name}");
        }
    }
}

#[tokio::test]
async fn a_rollout_cancelled_before_its_decision_sends_the_rest_nothing() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    devices(state, &service, "gone", 40).await;
    let reply = notify_accepted(state, test_body("gone", "Bill is waiting")).await;
    let id = reply["id"].as_str().expect("id").to_owned();
    let (status, cancelled) = call(state, "DELETE", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["counts"]["awaiting_winner"], 0, "{cancelled}");
    assert_eq!(decide_due(state, now_ms() + 2 * HOUR_MS).await.expect("decide"), 1);
    let answer = report(state, &id).await;
    assert!(
        answer["experiment"]["rollout"]["decision"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("cancelled before the decision")),
        "{answer}"
    );
    assert_eq!(round(state).await, 0);
    assert_eq!(answer["counts"]["cancelled"], 40, "{answer}");
}

#[tokio::test]
async fn a_dry_run_counts_the_test_share_and_bad_rollouts_are_refused() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    devices(state, &service, "dry", 50).await;
    let mut body = test_body("dry", "Bill is waiting");
    body["dry_run"] = json!(true);
    let (status, answer) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (test, rest) = (
        answer["rollout"]["test"].as_u64().expect("test"),
        answer["rollout"]["rest"].as_u64().expect("rest"),
    );
    assert_eq!(test + rest, 50, "{answer}");
    for (change, code, start) in [
        (
            json!({ "rollout": { "test_share": 0.3, "decide_after": { "hours": 1 } }, "notification": { "title": "x" } }),
            "invalid_notification",
            "rollout: only with notification.variants",
        ),
        (
            json!({ "rollout": { "test_share": 0, "decide_after": { "hours": 1 } } }),
            "invalid_notification",
            "rollout.test_share",
        ),
        (
            json!({ "rollout": { "test_share": 0.3, "decide_after": { "hours": 1 }, "metric": "conversion" } }),
            "invalid_notification",
            "rollout.metric",
        ),
        (
            json!({ "deliver": { "local_time": "09:00" } }),
            "invalid_schedule",
            "rollout: not with deliver.local_time",
        ),
    ] {
        let mut body = test_body("dry", "Bill is waiting");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let (status, reply) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert!(
            reply["error"]["message"].as_str().is_some_and(|m| m.starts_with(start)),
            "{reply}"
        );
    }
}

async fn plan_of(url: &str, id: &str) -> String {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("raw connection");
    sqlx::query_scalar("SELECT rollout FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .expect("plan")
}

#[tokio::test]
async fn a_batchs_data_waiting_for_the_decision_is_erased_with_its_user_and_dropped_once_decided() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let mut devices = Vec::new();
    for i in 0..40 {
        let user = format!("coded-{i}");
        let sub = subscribe_device(state, &service, &user, "none", None, Some(&user)).await;
        devices.push((user, sub));
    }
    let batch: Vec<Value> = devices
        .iter()
        .map(|(user, _)| json!({ "to": { "user": user }, "data": { "code": format!("secret-{user}") } }))
        .collect();
    let reply = notify_accepted(
        state,
        json!({
            "batch": batch,
            "notification": { "title": "Your code", "body": "{data.code}",
                "variants": [{ "id": "a" }, { "id": "b", "title": "Your code is inside" }] },
            "rollout": { "test_share": 0.3, "decide_after": { "hours": 1 } }
        }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    let rest: Vec<&String> = devices
        .iter()
        .filter(|(_, sub)| !askwell::experiment::in_share(&sub.to_string(), &id, 0.3))
        .map(|(user, _)| user)
        .collect();
    assert!(rest.len() > 10, "{}", rest.len());
    let plan = plan_of(&db.url, &id).await;
    assert!(
        plan.contains(&format!("\"secret-{}\"", rest[0])),
        "the rest's data waits in the plan"
    );
    // Erasing a waiting user erases their data there too.
    let (status, answer) = call(state, "DELETE", &format!("/v1/users/{}", rest[0]), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let plan = plan_of(&db.url, &id).await;
    assert!(!plan.contains(&format!("\"secret-{}\"", rest[0])), "{plan}");
    assert!(
        plan.contains(&format!("\"secret-{}\"", rest[1])),
        "the others' stays: {plan}"
    );
    round(state).await;
    assert_eq!(decide_due(state, now_ms() + HOUR_MS + 1000).await.expect("decide"), 1);
    // Used, then gone: the decided plan keeps no batch data.
    let plan = plan_of(&db.url, &id).await;
    assert!(!plan.contains("secret-"), "{plan}");
    round(state).await;
    let bodies: BTreeMap<String, String> = service
        .received()
        .into_iter()
        .map(|(who, text)| {
            let payload: Value = serde_json::from_str(&text).expect("JSON");
            (who, payload["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(
        bodies.get(rest[1].as_str()),
        Some(&format!("secret-{}", rest[1])),
        "rendered from the plan"
    );
    assert_eq!(bodies.get(rest[0].as_str()), None, "the erased user's device is gone");
}

#[tokio::test]
async fn a_rollout_that_cannot_be_decided_is_closed_and_does_not_hold_up_the_next() {
    use sqlx::Connection as _;
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    devices(state, &service, "two", 60).await;
    let broken = notify_accepted(state, test_body("two", "Bill is waiting")).await;
    let broken = broken["id"].as_str().expect("id").to_owned();
    let fine = notify_accepted(state, test_body("two", "Bill is waiting")).await;
    let fine = fine["id"].as_str().expect("id").to_owned();
    // A plan this version cannot read (written by another, or damaged).
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("raw connection");
    sqlx::query("UPDATE notifications SET rollout = '{\"arms\": 3}' WHERE id = $1")
        .bind(&broken)
        .execute(&mut conn)
        .await
        .expect("damage");
    let waiting = notification_counts(state, &broken).await["awaiting_winner"]
        .as_i64()
        .expect("n");
    assert!(waiting > 0);
    assert_eq!(decide_due(state, now_ms() + HOUR_MS + 1000).await.expect("decide"), 2);
    let report = |id: String| async move {
        let (_, answer) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
        answer
    };
    let closed = report(broken.clone()).await;
    assert!(
        closed["experiment"]["rollout"]["decision"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("the rollout could not be decided (its plan: ")),
        "{closed}"
    );
    assert_eq!(closed["counts"]["failed"], waiting, "{closed}");
    assert_eq!(closed["counts"]["awaiting_winner"], 0, "{closed}");
    let decided = report(fine).await;
    assert_eq!(
        decided["experiment"]["rollout"]["decision"]["variant"], "a",
        "{decided}"
    );
}
