//! The SSRF guard end to end (README, *Security model*, outbound: no proxies;
//! public hosts on port 443 only, checked again at send time).
//!
//! Every test in this binary runs with `HTTPS_PROXY`, `HTTP_PROXY` and
//! `ALL_PROXY` pointing at a local listener that counts connections. The
//! variables are set once, before any push client is built, and are
//! process-wide — which is why these tests have a test binary of their own.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use askwell_server::delivery::{Deliverer, DeliveryConfig};
use askwell_server::store::{NewSubscription, StatusCounts};
use askwell_server::vapid::VapidSigner;
use askwell_server::AppState;
use axum::http::StatusCode;
use serde_json::json;
use support::push_service::{PushService, Subscriber};
use support::*;

/// A loopback TCP listener that accepts, counts and drops every connection.
struct Sink {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
        let addr = listener.local_addr().expect("local address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(connection);
            }
        });
        Sink { addr, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The proxy every test sees in its environment. Each test calls this first,
/// so the variables are in place before any `Deliverer` builds its client.
fn proxy() -> &'static Sink {
    static PROXY: OnceLock<Sink> = OnceLock::new();
    PROXY.get_or_init(|| {
        let proxy = Sink::start();
        let url = format!("http://{}", proxy.addr);
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            std::env::set_var(name, &url);
        }
        // An inherited NO_PROXY=localhost would hide the proxy from the old client.
        for name in ["NO_PROXY", "no_proxy"] {
            std::env::remove_var(name);
        }
        proxy
    })
}

/// A deliverer built here, not with `support::deliverer`, which always allows
/// insecure endpoints.
fn deliverer(state: &AppState, allow_insecure: bool) -> Arc<Deliverer> {
    let signer = Arc::new(VapidSigner::new(&state.vapid, "mailto:ops@example.com").expect("signer"));
    let config = DeliveryConfig { allow_insecure, ..FAST };
    Arc::new(Deliverer::new(state.store.clone(), signer, state.metrics.clone(), config).expect("deliverer"))
}

/// Stores a subscription to topic `t` straight through the store, bypassing
/// validation, as a row written before the current checks would be.
/// `keys` are the subscriber's `(p256dh, auth)`.
async fn store_subscription(state: &AppState, endpoint: &str, (p256dh, auth): (String, String)) {
    let sub = NewSubscription {
        endpoint: endpoint.to_owned(),
        p256dh,
        auth,
        user: None,
        expiration_ms: None,
        topics: vec!["t".into()],
        time_zone: None,
    };
    state.store.subscription_upsert(&sub).await.expect("store subscription");
}

/// Fresh subscriber keys, for endpoints nothing will decrypt at.
fn keys() -> (String, String) {
    let subscriber = Subscriber::new();
    (subscriber.p256dh(), subscriber.auth_b64())
}

/// Notifies topic `t`, runs one delivery round, returns the delivery counts.
async fn notify_and_deliver(state: &AppState, deliverer: &Arc<Deliverer>) -> StatusCounts {
    let body = json!({ "to": { "topic": "t" }, "notification": { "title": "x" } }).to_string();
    let (status, reply) = call(state, "POST", "/v1/notify", Some(&body), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["id"].as_str().expect("notification id").to_owned();
    deliverer.round().await.expect("round");
    state
        .store
        .notification_counts(&id)
        .await
        .expect("counts")
        .expect("notification exists")
}

#[tokio::test]
async fn proxy_variables_are_ignored_and_pushes_go_straight_to_the_push_service() {
    let proxy = proxy();
    let state = state(true).await;
    let service = PushService::start().await;
    let subscriber = Subscriber::new();
    let keys = (subscriber.p256dh(), subscriber.auth_b64());
    let endpoint = service.subscribe("direct", subscriber);
    store_subscription(&state, &endpoint, keys).await;
    let counts = notify_and_deliver(&state, &deliverer(&state, true)).await;
    assert_eq!(counts.delivered, 1, "{counts:?}");
    assert_eq!(service.received_count(), 1);
    assert_eq!(proxy.hits(), 0, "the proxy was contacted");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_not_reached_through_a_proxy() {
    let proxy = proxy();
    let state = state(false).await;
    store_subscription(&state, "https://localhost/push/old", keys()).await;
    let counts = notify_and_deliver(&state, &deliverer(&state, false)).await;
    // The resolver refuses 127.0.0.1/::1: a transport error, retried later.
    assert_eq!((counts.delivered, counts.retrying), (0, 1), "{counts:?}");
    assert_eq!(proxy.hits(), 0, "the request went through the proxy, past the resolver");
}

#[tokio::test]
async fn an_old_row_with_a_non_public_ip_literal_endpoint_is_never_contacted_and_fails() {
    let proxy = proxy();
    let sink = Sink::start();
    let state = state(false).await;
    let port = sink.addr.port();
    let endpoints = [
        format!("https://127.0.0.1:{port}/push/a"),
        format!("https://[::ffff:127.0.0.1]:{port}/push/b"),
        // The default port, so only the literal's address refuses it.
        "https://127.0.0.1/push/c".to_owned(),
        "https://[::1]/push/d".to_owned(),
    ];
    for endpoint in &endpoints {
        store_subscription(&state, endpoint, keys()).await;
    }
    let counts = notify_and_deliver(&state, &deliverer(&state, false)).await;
    assert_eq!(sink.hits(), 0, "the loopback listener was contacted");
    assert_eq!(proxy.hits(), 0, "the proxy was contacted");
    assert_eq!(
        (counts.failed, counts.delivered, counts.retrying),
        (4, 0, 0),
        "{counts:?}"
    );
    // Failed, not pruned: the subscription may be fine; only this server refuses it.
    assert_eq!(state.store.subscription_count().await.expect("count"), 4);
}
