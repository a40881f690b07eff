//! The durable outbox survives `kill -9` mid fan-out: after a restart every
//! subscription ends with exactly one delivery recorded as delivered.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use askwell_server::Store;
use serde_json::{json, Value};
use support::push_service::PushService;
use support::slow_subscribers;

const SUBSCRIPTIONS: usize = 5000;
const TOKEN: &str = "crash-test-token";

fn start_server(data_dir: &std::path::Path) -> (support::ServerProcess, String) {
    // The default lease (120 s): a restarted single instance must not wait
    // for its dead predecessor's claims to run out.
    support::start_server_process(data_dir, &[("ASKWELL_ADMIN_TOKEN", TOKEN)])
}

async fn post(url: &str, body: Value) -> Value {
    let client = reqwest::Client::new();
    let response = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    response.json().await.expect("json")
}

async fn counts(base: &str, id: &str) -> Value {
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}/v1/notifications/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    response.json::<Value>().await.expect("json")["counts"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_fan_out_loses_nothing_and_records_each_delivery_once() {
    let data = tempfile::tempdir().expect("data dir");
    let service = PushService::start().await;
    let store = Store::open_in_dir(data.path()).await.expect("store");
    // Each push takes a moment, so the kill lands mid fan-out.
    slow_subscribers(&store, &service, SUBSCRIPTIONS, "all-hands", Duration::from_millis(3)).await;
    drop(store);

    let (mut first, base) = start_server(data.path());
    service.expect_server_key(support::server_public_key(&base).await);
    let started = Instant::now();
    let reply = post(
        &format!("{base}/v1/notify"),
        json!({ "to": { "topic": "all-hands" }, "notification": { "title": "Offsite moved to Friday" } }),
    )
    .await;
    assert_eq!(reply["recipients"], SUBSCRIPTIONS);
    let id = reply["id"].as_str().expect("id").to_owned();
    while service.received_count() < SUBSCRIPTIONS / 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    let at_kill = service.received_count();
    assert!(
        at_kill < SUBSCRIPTIONS,
        "the kill should land mid fan-out ({at_kill} sent)"
    );

    let (mut second, base) = start_server(data.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let final_counts = loop {
        let counts = counts(&base, &id).await;
        if counts["delivered"] == SUBSCRIPTIONS || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    second.kill().expect("stop");
    second.wait().expect("reap");
    assert_eq!(final_counts["delivered"], SUBSCRIPTIONS, "{final_counts}");
    for status in ["queued", "retrying", "failed", "pruned"] {
        assert_eq!(final_counts[status], 0, "{status}: {final_counts}");
    }
    assert_eq!(service.rejected(), Vec::<String>::new());
    let mut per_subscriber: HashMap<String, usize> = HashMap::new();
    for (who, _) in service.received() {
        *per_subscriber.entry(who).or_default() += 1;
    }
    assert_eq!(per_subscriber.len(), SUBSCRIPTIONS, "every subscriber got the push");
    let duplicates: usize = per_subscriber.values().map(|n| n - 1).sum();
    println!(
        "crash test: {SUBSCRIPTIONS} deliveries, killed after {at_kill}, all recorded once after restart in {:.1} s; {duplicates} re-sent (in flight at the kill)",
        elapsed.as_secs_f64()
    );
}
