//! Concurrent requests on one subscription: a browser's worker swapping to
//! a new endpoint while its page subscribes that endpoint, a topic change
//! while the device unsubscribes, two topic changes at once. SQLite runs
//! one writer at a time; on PostgreSQL (the test command runs this suite
//! there too) these used to end in 500s: a UNIQUE or foreign-key violation,
//! or a deadlock with a fan-out. No 5xx, and nothing stored twice.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::push_service::{PushService, Subscriber};
use support::*;

/// Rounds per test: each is one race, so a window of a few statements is
/// hit at least once on a two-core machine.
const ROUNDS: usize = 30;

fn keys() -> (String, String) {
    let subscriber = Subscriber::new();
    (subscriber.p256dh(), subscriber.auth_b64())
}

fn spawn_call(
    state: &askwell_server::AppState,
    method: &'static str,
    path: &'static str,
    body: Value,
    token: bool,
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let state = state.clone();
    tokio::spawn(async move { call(&state, method, path, Some(&body.to_string()), token.then_some(TOKEN)).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swap_racing_the_page_and_a_fan_out_never_fails() {
    let state = state(true).await;
    let service = PushService::start().await;
    for round in 0..ROUNDS {
        let (old_p256dh, old_auth) = keys();
        let old = format!("{}/push/old-{round}", service.origin);
        let (status, reply) = call(
            &state,
            "POST",
            "/v1/subscriptions",
            Some(&subscription_json(&old, &old_p256dh, &old_auth, &["race"])),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        // The browser replaced the subscription: the worker swaps to the
        // new one while the page, which saw it too, posts it.
        let (p256dh, auth) = keys();
        let new = format!("{}/push/new-{round}", service.origin);
        let subscription =
            json!({ "endpoint": new, "expirationTime": null, "keys": { "p256dh": p256dh, "auth": auth } });
        let swap = spawn_call(
            &state,
            "POST",
            "/v1/subscriptions/swap",
            json!({ "old": { "endpoint": old, "auth": old_auth }, "subscription": subscription }),
            false,
        );
        let page = spawn_call(
            &state,
            "POST",
            "/v1/subscriptions",
            json!({ "subscription": subscription, "topics": ["race"] }),
            false,
        );
        let fan_out = spawn_call(
            &state,
            "POST",
            "/v1/notify",
            json!({ "to": { "topic": "race" }, "notification": { "title": "hi" } }),
            true,
        );
        for (what, task) in [("swap", swap), ("page", page), ("notify", fan_out)] {
            let (status, reply) = task.await.expect("task");
            assert!(status.is_success(), "round {round}, {what}: {status} {reply}");
        }
        let stored = state
            .store
            .subscription_find(&new, &auth)
            .await
            .expect("find")
            .expect("the new endpoint is stored");
        assert_eq!(stored.topics, ["race"], "round {round}");
    }
    let count = state.store.subscription_count().await.expect("count");
    assert_eq!(count, ROUNDS as i64, "one subscription per browser, never two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_change_racing_an_unsubscribe_is_a_404_never_a_500() {
    let state = state(true).await;
    let service = PushService::start().await;
    for round in 0..ROUNDS {
        let (p256dh, auth) = keys();
        let endpoint = format!("{}/push/gone-{round}", service.origin);
        let (status, reply) = call(
            &state,
            "POST",
            "/v1/subscriptions",
            Some(&subscription_json(&endpoint, &p256dh, &auth, &["a"])),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        let change = spawn_call(
            &state,
            "POST",
            "/v1/subscriptions/topics",
            json!({ "endpoint": endpoint, "auth": auth, "add": ["b", "c"], "remove": [] }),
            false,
        );
        let delete = spawn_call(
            &state,
            "DELETE",
            "/v1/subscriptions",
            json!({ "endpoint": endpoint, "auth": auth }),
            false,
        );
        let (status, reply) = change.await.expect("task");
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "round {round}, topics: {status} {reply}"
        );
        let (status, reply) = delete.await.expect("task");
        assert!(status.is_success(), "round {round}, delete: {status} {reply}");
    }
    assert_eq!(state.store.subscription_count().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_topic_changes_at_once_never_pass_the_topic_limit() {
    let state = state(true).await;
    let service = PushService::start().await;
    let limit = askwell_server::validate::MAX_TOPICS;
    for round in 0..ROUNDS / 3 {
        let (p256dh, auth) = keys();
        let endpoint = format!("{}/push/full-{round}", service.origin);
        let held: Vec<String> = (0..limit - 10).map(|i| format!("held-{i}")).collect();
        let body = json!({
            "subscription": { "endpoint": endpoint, "expirationTime": null, "keys": { "p256dh": p256dh, "auth": auth } },
            "topics": held,
        });
        let (status, reply) = call(&state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        // Each adds 6: either alone fits, both together would hold limit + 2.
        let tasks: Vec<_> = ["x", "y"]
            .into_iter()
            .map(|prefix| {
                let add: Vec<String> = (0..6).map(|i| format!("{prefix}-{i}")).collect();
                let state = state.clone();
                let body = json!({ "endpoint": endpoint, "auth": auth, "add": add, "remove": [] }).to_string();
                tokio::spawn(async move { call(&state, "POST", "/v1/subscriptions/topics", Some(&body), None).await })
            })
            .collect();
        for task in tasks {
            let (status, reply) = task.await.expect("task");
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "round {round}: {status} {reply}"
            );
        }
        let stored = state
            .store
            .subscription_find(&endpoint, &auth)
            .await
            .expect("find")
            .expect("stored");
        assert!(
            stored.topics.len() <= limit,
            "round {round}: {} topics, over the limit of {limit}",
            stored.topics.len()
        );
    }
}

/// Two servers sweeping the same journey step at once (each entered the
/// same inactive users, so each enqueues the same sends under the same
/// idempotency keys): both batches answer the first notifications, and
/// each user is sent one. On PostgreSQL the second batch used to fail the
/// UNIQUE key, and the sweep with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_batches_of_sends_with_the_same_keys_at_once_enqueue_each_once() {
    use askwell_server::store::{NewNotification, Recipients};
    let state = state(true).await;
    let service = PushService::start().await;
    let users: Vec<String> = (0..40).map(|i| format!("swept-{i}")).collect();
    for user in &users {
        subscribe_device(&state, &service, user, "none", None, Some(user)).await;
    }
    for round in 0..ROUNDS / 3 {
        let batch = |server: &str| -> Vec<NewNotification> {
            users
                .iter()
                .map(|user| NewNotification {
                    id: format!("{server}-{round}-{user}"),
                    idempotency_key: Some(format!("journey:{round}:{user}:0")),
                    payload: r#"{"title":"We miss you"}"#.to_owned(),
                    ttl: 60,
                    urgency: None,
                    topic: None,
                    category: None,
                    to: Recipients::User(user.clone()),
                })
                .collect()
        };
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|server| {
                let (store, batch) = (state.store.clone(), batch(server));
                tokio::spawn(async move { store.notifications_create_many(&batch).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task").expect("no database error"));
        }
        assert_eq!(
            answers[0], answers[1],
            "round {round}: both answer the first notifications"
        );
        assert!(
            answers[0].iter().all(|(_, recipients)| *recipients == 1),
            "round {round}: {:?}",
            answers[0]
        );
    }
}

/// Two admins (or a deploy script run twice) creating one segment at once:
/// one of them created it, the other replaced it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_puts_of_a_new_segment_at_once_create_it_once() {
    let state = state(true).await;
    for round in 0..ROUNDS {
        let path = format!("/v1/segments/pro-{round}");
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (state, path) = (state.clone(), path.clone());
                let body = json!({ "where": { "trait": "plan", "equals": "pro" } }).to_string();
                tokio::spawn(async move { call(&state, "PUT", &path, Some(&body), Some(TOKEN)).await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            let (status, reply) = task.await.expect("task");
            assert_eq!(status, StatusCode::OK, "round {round}: {reply}");
            created += usize::from(reply["created"] == true);
        }
        assert_eq!(created, 1, "round {round}: created once, then replaced");
    }
}
