//! PostgreSQL at scale: two server processes on one database share a fan-out
//! (`FOR UPDATE SKIP LOCKED`) and no subscription gets the push twice.
//! Needs `ASKWELL_TEST_POSTGRES_URL` (the test command starts a local cluster).

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use askwell_server::{Store, VapidKeys};
use serde_json::{json, Value};
use support::push_service::PushService;
use support::slow_subscribers;

const SUBSCRIPTIONS: usize = 2000;
const TOKEN: &str = "pg-test-token";

fn start_server(database_url: &str, vapid_key: &str) -> (support::ServerProcess, String) {
    let data = tempfile::tempdir().expect("data dir").keep();
    let envs = [
        ("ASKWELL_DATABASE_URL", database_url),
        ("ASKWELL_VAPID_PRIVATE_KEY", vapid_key),
        ("ASKWELL_ADMIN_TOKEN", TOKEN),
    ];
    support::start_server_process(&data, &envs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_fan_out_without_double_sending() {
    let Some(admin_url) = support::postgres_url() else {
        eprintln!("skipped: set ASKWELL_TEST_POSTGRES_URL (cargo xtask test starts a local PostgreSQL)");
        return;
    };
    let database_url = support::fresh_postgres_database(&admin_url).await;
    let store = Store::connect(&database_url).await.expect("postgres store");
    let service = PushService::start().await;
    let keys = VapidKeys::generate();
    use base64::Engine;
    service.expect_server_key(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(keys.public_key_base64())
            .expect("b64"),
    );
    slow_subscribers(&store, &service, SUBSCRIPTIONS, "news", Duration::from_millis(2)).await;

    let (mut a, base_a) = start_server(&database_url, keys.private_key_base64());
    let (mut b, _) = start_server(&database_url, keys.private_key_base64());
    let client = reqwest::Client::new();
    let started = Instant::now();
    let reply: Value = client
        .post(format!("{base_a}/v1/notify"))
        .bearer_auth(TOKEN)
        .json(&json!({ "to": { "topic": "news" }, "notification": { "title": "Release 2.0 is out" } }))
        .send()
        .await
        .expect("notify")
        .json()
        .await
        .expect("json");
    assert_eq!(reply["recipients"], SUBSCRIPTIONS);
    let id = reply["id"].as_str().expect("id");
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts: Value = client
            .get(format!("{base_a}/v1/notifications/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("counts")
            .json()
            .await
            .expect("json");
        if counts["counts"]["delivered"] == SUBSCRIPTIONS || Instant::now() > deadline {
            break counts["counts"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    for child in [&mut a, &mut b] {
        child.kill().expect("stop");
        child.wait().expect("reap");
    }
    assert_eq!(counts["delivered"], SUBSCRIPTIONS, "{counts}");
    assert_eq!(service.rejected(), Vec::<String>::new());
    let mut per_subscriber: HashMap<String, usize> = HashMap::new();
    for (who, _) in service.received() {
        *per_subscriber.entry(who).or_default() += 1;
    }
    assert_eq!(per_subscriber.len(), SUBSCRIPTIONS);
    assert!(
        per_subscriber.values().all(|n| *n == 1),
        "a subscription got the push twice"
    );
    println!(
        "postgres: two processes delivered {SUBSCRIPTIONS} pushes once each in {:.1} s",
        elapsed.as_secs_f64()
    );
}
