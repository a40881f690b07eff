//! Journeys survive `kill -9` between steps: many users mid-journey, the
//! server killed while it enqueues and delivers their reminders, restarted —
//! every due step is enqueued exactly once and reaches its user.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use askwell_server::Store;
use serde_json::{json, Value};
use support::push_service::{PushService, Reply, Subscriber};

const USERS: usize = 1_500;
const TOKEN: &str = "journey-crash-token";

fn start_server(data_dir: &std::path::Path) -> (support::ServerProcess, String) {
    support::start_server_process(data_dir, &[("ASKWELL_ADMIN_TOKEN", TOKEN)])
}

async fn send(method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, url).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let reply: Value = response.json().await.expect("json");
    assert!(status.is_success(), "{status}: {reply}");
    reply
}

/// Each user's subscription, bound to them, at the test push service.
async fn users(store: &Store, service: &PushService) {
    let mut subs = Vec::new();
    for i in 0..USERS {
        let subscriber = Subscriber::new();
        let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
        let endpoint = service.subscribe(&format!("u{i}"), subscriber);
        let reply = Reply {
            status: 201,
            retry_after: None,
            delay: Duration::from_millis(2),
        };
        service.reply(&format!("u{i}"), &[reply]);
        subs.push(askwell_server::store::NewSubscription {
            endpoint,
            p256dh,
            auth,
            user: Some(format!("u{i}")),
            expiration_ms: None,
            topics: Vec::new(),
            time_zone: None,
        });
    }
    store.subscriptions_import(&subs).await.expect("import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_journey_steps_sends_every_due_step_once() {
    let data = tempfile::tempdir().expect("data dir");
    let service = PushService::start().await;
    let store = Store::open_in_dir(data.path()).await.expect("store");
    users(&store, &service).await;
    drop(store);

    let (mut first, base) = start_server(data.path());
    service.expect_server_key(support::server_public_key(&base).await);
    let journey = json!({
        "entry": { "event": "added_to_cart", "keyed": true },
        "steps": [
            { "wait": { "seconds": 1 } },
            { "send": { "title": "first {event.key}" } },
            { "wait": { "seconds": 1 } },
            { "send": { "title": "second {event.key}" } }
        ]
    });
    send(reqwest::Method::PUT, &format!("{base}/v1/journeys/cart"), Some(journey)).await;
    let events: Vec<Value> = (0..USERS)
        .map(|i| json!({ "user": format!("u{i}"), "name": "added_to_cart", "key": format!("k{i}") }))
        .collect();
    for chunk in events.chunks(1_000) {
        send(
            reqwest::Method::POST,
            &format!("{base}/v1/track"),
            Some(json!({ "events": chunk })),
        )
        .await;
    }
    let started = Instant::now();
    while service.received_count() < USERS / 4 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    let at_kill = service.received_count();
    assert!(
        at_kill < 2 * USERS,
        "the kill should land mid-journey ({at_kill} received)"
    );

    let (mut second, base) = start_server(data.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    let report = loop {
        let reply = send(reqwest::Method::GET, &format!("{base}/v1/journeys/cart"), None).await;
        let report = reply["report"].clone();
        if report["deliveries"]["delivered"] == 2 * USERS || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    second.kill().expect("stop");
    second.wait().expect("reap");

    assert_eq!(report["states"], json!({ "completed": USERS }), "{report}");
    assert_eq!(
        report["steps"],
        json!([
            { "step": 1, "sent": USERS, "withheld": 0, "failed": 0 },
            { "step": 3, "sent": USERS, "withheld": 0, "failed": 0 }
        ]),
        "each step enqueued once per user"
    );
    assert_eq!(report["deliveries"], json!({ "delivered": 2 * USERS }), "{report}");
    let mut titles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut received = 0;
    for (who, body) in service.received() {
        let payload: Value = serde_json::from_str(&body).expect("payload");
        titles
            .entry(who)
            .or_default()
            .insert(payload["title"].as_str().unwrap_or_default().to_owned());
        received += 1;
    }
    assert_eq!(titles.len(), USERS, "every user was reached");
    for (who, got) in &titles {
        let key = who.trim_start_matches('u');
        let want: BTreeSet<String> = [format!("first k{key}"), format!("second k{key}")].into();
        assert_eq!(got, &want, "{who}");
    }
    println!(
        "journey crash test: {USERS} users × 2 steps, killed after {at_kill} pushes, all {} steps enqueued once after restart; {} pushes re-sent (in flight at the kill)",
        2 * USERS,
        received - 2 * USERS
    );
}
