//! Shared test helpers: an app over an in-memory store, JSON requests, and the
//! local push service.
#![allow(dead_code)]

pub mod push_service;

use std::sync::Arc;
use std::time::Duration;

use askwell_server::delivery::{Deliverer, DeliveryConfig};
use askwell_server::outcome::Backoff;
use askwell_server::validate::EndpointPolicy;
use askwell_server::vapid::VapidSigner;
use askwell_server::{app, AppState, Settings, Store, VapidKeys};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token";
/// The identity secret of [`state`]'s server (the app backend's HMAC key).
pub const IDENTITY_SECRET: &str = "test-identity-secret";

/// What the app's backend would send along with `user`.
pub fn user_proof(user: &str) -> String {
    askwell_server::secret::user_proof(IDENTITY_SECRET.as_bytes(), user)
}

/// Delivery settings for tests: small batches, fast retries, loopback allowed.
pub const FAST: DeliveryConfig = DeliveryConfig {
    batch: 512,
    per_origin: 16,
    lease: Duration::from_secs(60),
    timeout: Duration::from_millis(500),
    backoff: Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
        max_attempts: 3,
    },
    allow_insecure: true,
};

/// A fresh, empty store: in-memory SQLite, or — when the test command sets
/// `ASKWELL_TEST_POSTGRES_URL` — a new database on that PostgreSQL server, so
/// the same tests cover both backends.
pub async fn fresh_store() -> Store {
    match postgres_url() {
        Some(admin_url) => Store::connect(&fresh_postgres_database(&admin_url).await)
            .await
            .expect("postgres store"),
        None => Store::in_memory().await.expect("in-memory store"),
    }
}

/// The test PostgreSQL server's URL, if the test command started one.
pub fn postgres_url() -> Option<String> {
    std::env::var("ASKWELL_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Creates an empty database on the server at `admin_url`; returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("askwell_test_{}", askwell_server::secret::random_id());
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to test postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

/// App state over a fresh database; `insecure` allows loopback endpoints.
pub async fn state(insecure: bool) -> AppState {
    let store = fresh_store().await;
    AppState::new(store, VapidKeys::generate(), settings(insecure))
}

/// The settings of [`state`].
pub fn settings(insecure: bool) -> Settings {
    Settings {
        admin_token: Some(TOKEN.into()),
        endpoints: EndpointPolicy {
            allow_insecure: insecure,
        },
        allowed_origins: vec!["https://app.example.com".into()],
        identity_secret: Some(IDENTITY_SECRET.as_bytes().to_vec()),
        trusted_proxies: Vec::new(),
        default_time_zone: None,
        delivery_policy: Default::default(),
    }
}

/// App state over a store a test can also read and write with raw SQL: a
/// SQLite file (an in-memory database is private to its one connection) or
/// a fresh PostgreSQL database.
pub struct Inspectable {
    /// The state over the store.
    pub state: AppState,
    /// The database's URL, for `sqlx::AnyConnection::connect`.
    pub url: String,
    /// Whether it is PostgreSQL.
    pub postgres: bool,
    _dir: Option<tempfile::TempDir>,
}

/// An [`Inspectable`] with `settings`.
pub async fn inspectable_with(settings: Settings) -> Inspectable {
    let (url, postgres, dir) = match postgres_url() {
        Some(admin) => (fresh_postgres_database(&admin).await, true, None),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("askwell.db").display());
            (url, false, Some(dir))
        }
    };
    let store = Store::connect(&url).await.expect("store");
    Inspectable {
        state: AppState::new(store, VapidKeys::generate(), settings),
        url,
        postgres,
        _dir: dir,
    }
}

/// Sends one request through `app(state)`; returns status and JSON body (Null if none).
pub async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `GET /metrics` through `app(state)`: the Prometheus text.
pub async fn metrics_text(state: &AppState) -> String {
    let request = Request::get("/metrics").body(Body::empty()).expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf8")
}

/// The value of the sample `name` (with its labels, if any) in `text`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A deliverer for `state` with fast retries, allowed to reach loopback,
/// under `state`'s delivery policy (as `Server::build` makes it).
pub fn deliverer(state: &AppState, config: DeliveryConfig) -> Arc<Deliverer> {
    let signer = Arc::new(VapidSigner::new(&state.vapid, "mailto:ops@example.com").expect("signer"));
    let config = DeliveryConfig {
        allow_insecure: true,
        ..config
    };
    let deliverer = Deliverer::new(state.store.clone(), signer, state.metrics.clone(), config)
        .expect("deliverer")
        .with_policy(state.settings.delivery_policy.clone(), state.settings.default_zone());
    Arc::new(deliverer)
}

/// A server process that is killed when dropped, so a failing assertion
/// never leaves it running (holding the test runner's output pipe open).
pub struct ServerProcess(pub std::process::Child);

impl std::ops::Deref for ServerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real `askwell-server` binary on an ephemeral port (test
/// settings: loopback push endpoints allowed, quiet logs) with extra `envs`;
/// returns the process and its base URL.
pub fn start_server_process(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> (ServerProcess, String) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2", "--data-dir"])
        .arg(data_dir)
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env("ASKWELL_ALLOW_INSECURE_ENDPOINTS", "1")
        .env("RUST_LOG", "error")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().expect("start askwell-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_once("listening on ")
                .map(|(_, u)| u.trim_end_matches('/').to_owned())
        })
        .expect("listening line");
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (ServerProcess(child), url)
}

/// The VAPID public key (raw P-256 point) a running server at `base` signs
/// with, for the test push service to verify its JWTs against.
pub async fn server_public_key(base: &str) -> Vec<u8> {
    use base64::Engine;
    let key: Value = reqwest::get(format!("{base}/v1/vapid-public-key"))
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["publicKey"].as_str().expect("key"))
        .expect("b64")
}

/// The subscription JSON a browser would post.
pub fn subscription_json(endpoint: &str, p256dh: &str, auth: &str, topics: &[&str]) -> String {
    serde_json::json!({
        "subscription": { "endpoint": endpoint, "expirationTime": null, "keys": { "p256dh": p256dh, "auth": auth } },
        "topics": topics,
    })
    .to_string()
}

/// Stores `n` subscriptions to `topic`, each registered with `service` as
/// `s0`, `s1`, … and answering 201 after `delay` (so a fan-out takes a while).
pub async fn slow_subscribers(
    store: &Store,
    service: &push_service::PushService,
    n: usize,
    topic: &str,
    delay: Duration,
) {
    for i in 0..n {
        let subscriber = push_service::Subscriber::new();
        let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
        let endpoint = service.subscribe(&format!("s{i}"), subscriber);
        let reply = push_service::Reply {
            status: 201,
            retry_after: None,
            delay,
        };
        service.reply(&format!("s{i}"), &[reply]);
        let sub = askwell_server::store::NewSubscription {
            endpoint,
            p256dh,
            auth,
            user: None,
            expiration_ms: None,
            topics: vec![topic.into()],
            time_zone: None,
        };
        store.subscription_upsert(&sub).await.expect("subscribe");
    }
}

/// A subscriber `id` of the push service, subscribed through the API to
/// `topic` with the device zone `zone` and bound to `user`; returns its
/// subscription id.
pub async fn subscribe_device(
    state: &AppState,
    service: &push_service::PushService,
    id: &str,
    topic: &str,
    zone: Option<&str>,
    user: Option<&str>,
) -> i64 {
    subscribe_device_keys(state, service, id, topic, zone, user).await.0
}

/// [`subscribe_device`], returning `(subscription id, endpoint, auth)`:
/// the endpoint and auth secret are the device's proof of possession.
pub async fn subscribe_device_keys(
    state: &AppState,
    service: &push_service::PushService,
    id: &str,
    topic: &str,
    zone: Option<&str>,
    user: Option<&str>,
) -> (i64, String, String) {
    let subscriber = push_service::Subscriber::new();
    let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
    let endpoint = service.subscribe(id, subscriber);
    let mut body = serde_json::json!({
        "subscription": { "endpoint": endpoint, "expirationTime": null, "keys": { "p256dh": p256dh, "auth": auth } },
        "topics": [topic],
        "time_zone": zone,
    });
    if let Some(user) = user {
        body["user"] = serde_json::json!(user);
        body["userProof"] = serde_json::json!(user_proof(user));
    }
    let (status, reply) = call(state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let id = state
        .store
        .subscription_find(&endpoint, &auth)
        .await
        .expect("find")
        .expect("stored")
        .id;
    (id, endpoint, auth)
}

pub async fn push_service_for(state: &AppState) -> push_service::PushService {
    let service = push_service::PushService::start().await;
    service.expect_server_key(base64_decode(&state.vapid.public_key_base64()));
    service
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64")
}

/// Posts `events` to `POST /v1/events` as a page or worker would (in
/// batches of 50), each batch accepted.
pub async fn post_events(state: &AppState, events: &[Value]) {
    for chunk in events.chunks(50) {
        let body = serde_json::json!({ "events": chunk }).to_string();
        let (status, answer) = call(state, "POST", "/v1/events", Some(&body), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
}

/// `POST /v1/notify` that must be accepted: the 202 body.
pub async fn notify_accepted(state: &AppState, body: Value) -> Value {
    let (status, reply) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body} → {reply}");
    reply
}

pub async fn notification_counts(state: &AppState, id: &str) -> Value {
    let (status, reply) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["counts"].clone()
}
