//! Many clients at once against the real server process over real HTTP:
//! 16 concurrent clients × 1,000 subscribes and 16 × 200 event batches, on
//! SQLite (and PostgreSQL when the test command provides one). Every request
//! must succeed (no 5xx, nothing "database is locked") and every row must be
//! stored afterwards. Throughput and p99 are printed, not asserted (timings
//! belong to benchmarks, not to tests that flake).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;

const CLIENTS: usize = 16;
const SUBSCRIBES_PER_CLIENT: usize = 1000;
const BATCHES_PER_CLIENT: usize = 200;
const EVENTS_PER_BATCH: usize = 5;
const TOKEN: &str = "load-test-token";
// RFC 8291 Appendix A's user agent key: a real point on P-256.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

/// What one kind of request did under load.
struct Run {
    ok: usize,
    failures: Vec<String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn report(&mut self, what: &str, backend: &str) {
        self.latencies.sort();
        let p = |q: f64| {
            let i = ((self.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.latencies.get(i).copied().unwrap_or_default().as_secs_f64() * 1000.0
        };
        println!(
            "load ({backend}): {} {what} from {CLIENTS} clients in {:.2} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.ok as f64 / self.elapsed.as_secs_f64(),
            p(0.5),
            p(0.99),
            self.failures.len()
        );
    }
}

/// Runs `per_client` requests from each of `CLIENTS` tasks; `body(client, i)`
/// makes request `i` of a client.
async fn hammer(
    url: String,
    per_client: usize,
    admin: bool,
    body: impl Fn(usize, usize) -> String + Send + Sync + Copy + 'static,
) -> Run {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let url = url.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut failures, mut latencies) = (0, Vec::new(), Vec::with_capacity(per_client));
            for i in 0..per_client {
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body(client, i));
                if admin {
                    request = request.bearer_auth(TOKEN);
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) if response.status().is_success() => ok += 1,
                    Ok(response) => {
                        let status = response.status();
                        failures.push(format!("{status} {}", response.text().await.unwrap_or_default()));
                    }
                    Err(err) => failures.push(err.to_string()),
                }
                latencies.push(sent.elapsed());
            }
            (ok, failures, latencies)
        });
    }
    let mut run = Run {
        ok: 0,
        failures: Vec::new(),
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        let (ok, failures, latencies) = done.expect("client task");
        run.ok += ok;
        run.failures.extend(failures);
        run.latencies.extend(latencies);
    }
    run.elapsed = started.elapsed();
    run
}

fn subscription(client: usize, i: usize) -> String {
    use base64::Engine;
    // A distinct 16-byte auth secret per subscription.
    let secret = ((client as u128) << 64 | i as u128).to_be_bytes();
    let auth = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    json!({
        "subscription": {
            "endpoint": format!("https://push.example.com/send/c{client}-s{i}"),
            "keys": { "p256dh": P256DH, "auth": auth },
        },
        "topics": ["news", format!("client:{client}")],
    })
    .to_string()
}

fn batch(client: usize, i: usize) -> String {
    let now = askwell_server::store::now_ms();
    let events: Vec<_> = (0..EVENTS_PER_BATCH)
        .map(|e| {
            json!({ "id": format!("c{client}-b{i}-e{e}"), "type": "prompt_shown", "prompt": "reply",
                    "variant": "a", "anon": format!("d{client}-{i}"), "at": now })
        })
        .collect();
    json!({ "events": events }).to_string()
}

async fn count(database_url: &str, table: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.expect("connect");
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .expect("count")
}

async fn concurrent_writers_lose_nothing(database_url: Option<String>, backend: &str) {
    let data = tempfile::tempdir().expect("data dir");
    let mut envs = vec![("ASKWELL_ADMIN_TOKEN", TOKEN)];
    if let Some(url) = &database_url {
        envs.push(("ASKWELL_DATABASE_URL", url));
    }
    let (mut server, base) = support::start_server_process(data.path(), &envs);

    let mut subscribes = hammer(
        format!("{base}/v1/subscriptions"),
        SUBSCRIBES_PER_CLIENT,
        false,
        subscription,
    )
    .await;
    subscribes.report("subscribes", backend);
    // Public pages are rate-limited per client; the admin token lifts that,
    // so this measures the write path, not the limiter.
    let mut batches = hammer(format!("{base}/v1/events"), BATCHES_PER_CLIENT, true, batch).await;
    batches.report("event batches", backend);
    server.kill().expect("stop");
    server.wait().expect("reap");

    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data.path().join("askwell.db").display()));
    let first_failures: Vec<_> = subscribes.failures.iter().chain(&batches.failures).take(3).collect();
    assert_eq!(
        subscribes.failures.len() + batches.failures.len(),
        0,
        "failed requests, e.g. {first_failures:?}"
    );
    assert_eq!(
        count(&url, "subscriptions").await,
        (CLIENTS * SUBSCRIBES_PER_CLIENT) as i64
    );
    assert_eq!(
        count(&url, "subscription_topics").await,
        (2 * CLIENTS * SUBSCRIBES_PER_CLIENT) as i64
    );
    assert_eq!(
        count(&url, "events").await,
        (CLIENTS * BATCHES_PER_CLIENT * EVENTS_PER_BATCH) as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_clients_lose_no_subscription_and_no_event() {
    match support::postgres_url() {
        Some(admin) => {
            let url = support::fresh_postgres_database(&admin).await;
            concurrent_writers_lose_nothing(Some(url), "PostgreSQL").await;
        }
        None => concurrent_writers_lose_nothing(None, "SQLite").await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscription_posted_by_sixteen_tabs_at_once_is_stored_once() {
    let data = tempfile::tempdir().expect("data dir");
    let database_url = match support::postgres_url() {
        Some(admin) => Some(support::fresh_postgres_database(&admin).await),
        None => None,
    };
    let mut envs = vec![];
    if let Some(url) = &database_url {
        envs.push(("ASKWELL_DATABASE_URL", url.as_str()));
    }
    let (_server, base) = support::start_server_process(data.path(), &envs);
    let url = format!("{base}/v1/subscriptions");
    // Every tab of one browser posts the same subscription, each with its own topic.
    let mut run = hammer(url, 20, false, |client, i| {
        let mut body: serde_json::Value = serde_json::from_str(&subscription(0, 0)).expect("json");
        body["topics"] = json!([format!("tab:{client}:{i}")]);
        body.to_string()
    })
    .await;
    run.report("posts of one subscription", "same endpoint");
    assert_eq!(run.failures, Vec::<String>::new());
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data.path().join("askwell.db").display()));
    assert_eq!(count(&url, "subscriptions").await, 1);
    assert_eq!(count(&url, "subscription_topics").await, (CLIENTS * 20) as i64);
}
