//! Privacy controls through the API: erasing a user or a device (one
//! transaction, counts returned, idempotent), exporting a user, the admin
//! token and id checks, erasures racing with subscribes — and a scan of every
//! table and text column of the schema for the erased ids. Runs on SQLite,
//! and on PostgreSQL when the test command provides one.

mod support;

use std::collections::BTreeSet;

use askwell_server::{AppState, Settings};
use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection, Row};
use support::*;

// RFC 8291 Appendix A's user agent key: a real point on P-256.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

/// A subscription of `user` (with its proof) from device `anon`, if any.
fn subscription(endpoint: &str, user: Option<&str>, anon: Option<&str>, topics: &[&str]) -> String {
    let mut body = json!({
        "subscription": { "endpoint": endpoint, "keys": { "p256dh": P256DH, "auth": AUTH } },
        "topics": topics,
    });
    if let Some(user) = user {
        body["user"] = user.into();
        body["userProof"] = user_proof(user).into();
    }
    if let Some(anon) = anon {
        body["anon"] = anon.into();
        body["prompt"] = "reply".into();
        body["variant"] = "a".into();
        // The page's zone (Intl.DateTimeFormat().resolvedOptions().timeZone).
        body["time_zone"] = "Asia/Tokyo".into();
    }
    body.to_string()
}

async fn subscribe(state: &AppState, endpoint: &str, user: Option<&str>, anon: Option<&str>, topics: &[&str]) {
    let body = subscription(endpoint, user, anon, topics);
    let (status, reply) = call(state, "POST", "/v1/subscriptions", Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

async fn notify(state: &AppState, to: Value, title: &str) -> String {
    let body = json!({ "to": to, "notification": { "title": title } }).to_string();
    let (status, reply) = call(state, "POST", "/v1/notify", Some(&body), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    reply["id"].as_str().expect("id").to_owned()
}

async fn post_events(state: &AppState, events: Vec<Value>) {
    let body = json!({ "events": events }).to_string();
    let (status, reply) = call(state, "POST", "/v1/events", Some(&body), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["rejected"], json!([]), "{reply}");
}

/// What the app's backend tells about `user`: traits and a zone, then events.
async fn tell(state: &AppState, user: &str, events: &[&str]) {
    let traits =
        json!({ "traits": { "plan": "pro", "email": format!("{user}@example.com") }, "time_zone": "Europe/Berlin" });
    let uri = format!("/v1/users/{user}");
    let (status, reply) = call(state, "PUT", &uri, Some(&traits.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let events: Vec<Value> = events
        .iter()
        .map(|name| json!({ "user": user, "name": name, "key": format!("{user}-cart"), "id": format!("{user}-{name}"), "properties": { "note": format!("for {user}") } }))
        .collect();
    let (status, reply) = call(
        state,
        "POST",
        "/v1/track",
        Some(&json!({ "events": events }).to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

fn prompt_event(id: &str, kind: &str, anon: &str) -> Value {
    json!({ "id": id, "type": kind, "prompt": "reply", "variant": "a", "trigger": "message_sent", "anon": anon })
}

async fn inspectable() -> Inspectable {
    inspectable_with(Settings {
        admin_token: Some(TOKEN.into()),
        identity_secret: Some(IDENTITY_SECRET.as_bytes().to_vec()),
        ..Settings::default()
    })
    .await
}

/// Where a needle was found: `(table, column, rows)`.
type Hits = Vec<(String, String, i64)>;

/// Raw SQL over the whole schema, listed from the database itself so a
/// table added later is scanned too.
struct Scanner {
    conn: AnyConnection,
    /// `(table, text columns, integer columns)` of every table.
    tables: Vec<(String, Vec<String>, Vec<String>)>,
}

impl Scanner {
    async fn open(db: &Inspectable) -> Self {
        let mut conn = AnyConnection::connect(&db.url).await.expect("raw connection");
        let list = if db.postgres {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        } else {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        };
        let names: Vec<String> = sqlx::query_scalar(list).fetch_all(&mut conn).await.expect("tables");
        let columns = if db.postgres {
            "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1"
        } else {
            "SELECT name, type FROM pragma_table_info($1)"
        };
        let mut tables = Vec::new();
        for table in names {
            let rows = sqlx::query(columns)
                .bind(&table)
                .fetch_all(&mut conn)
                .await
                .expect("columns");
            let (mut texts, mut ints) = (Vec::new(), Vec::new());
            for row in rows {
                let (name, kind): (String, String) = (row.get("name"), row.get::<String, _>("type").to_lowercase());
                if kind.contains("text") || kind.contains("char") {
                    texts.push(name);
                } else if kind.contains("int") {
                    ints.push(name);
                }
            }
            tables.push((table, texts, ints));
        }
        Self { conn, tables }
    }

    fn table_names(&self) -> BTreeSet<&str> {
        self.tables.iter().map(|(t, _, _)| t.as_str()).collect()
    }

    fn text_columns(&self) -> usize {
        self.tables.iter().map(|(_, texts, _)| texts.len()).sum()
    }

    /// Every text column of every table holding `needle` anywhere in it.
    async fn text(&mut self, needle: &str) -> Hits {
        let mut hits = Vec::new();
        for (table, texts, _) in &self.tables {
            for column in texts {
                let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" LIKE $1");
                let n: i64 = sqlx::query_scalar(&sql)
                    .bind(format!("%{needle}%"))
                    .fetch_one(&mut self.conn)
                    .await
                    .expect("scan");
                if n > 0 {
                    hits.push((table.clone(), column.clone(), n));
                }
            }
        }
        hits
    }

    /// Every integer column named `column` of every table holding `value`.
    async fn int(&mut self, column: &str, value: i64) -> Hits {
        let mut hits = Vec::new();
        for (table, _, ints) in &self.tables {
            if ints.iter().any(|c| c == column) {
                let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\" = $1");
                let n: i64 = sqlx::query_scalar(&sql)
                    .bind(value)
                    .fetch_one(&mut self.conn)
                    .await
                    .expect("scan");
                if n > 0 {
                    hits.push((table.clone(), column.to_owned(), n));
                }
            }
        }
        hits
    }

    /// Ids of the subscriptions whose endpoint contains `needle`.
    async fn subscriptions_to(&mut self, needle: &str) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM subscriptions WHERE endpoint LIKE $1 ORDER BY id")
            .bind(format!("%{needle}%"))
            .fetch_all(&mut self.conn)
            .await
            .expect("subscriptions")
    }

    /// `(subscription id, "notification:delivery")` of every delivery to an endpoint containing `needle`.
    async fn deliveries_to(&mut self, needle: &str) -> Vec<(i64, String)> {
        let rows = sqlx::query("SELECT d.subscription_id, d.notification_id, d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE s.endpoint LIKE $1 ORDER BY d.id")
            .bind(format!("%{needle}%"))
            .fetch_all(&mut self.conn)
            .await
            .expect("deliveries");
        rows.iter()
            .map(|r| {
                (
                    r.get("subscription_id"),
                    format!("{}:{}", r.get::<String, _>("notification_id"), r.get::<i64, _>("id")),
                )
            })
            .collect()
    }
}

/// alice: a signed-in phone (device `dev-alice-phone`, won by a prompt), a
/// laptop subscription no prompt won, and the phone's second, anonymous
/// subscription (signed out); bob: one device. Notifications to alice, to
/// bob, and one to a topic both follow; events from both devices and from
/// the worker (clicks without a device id).
async fn two_users(state: &AppState, scanner: &mut Scanner) {
    let host = "https://push.example.com/send";
    subscribe(
        state,
        &format!("{host}/alice-phone"),
        Some("alice"),
        Some("dev-alice-phone"),
        &["news", "thread-1"],
    )
    .await;
    subscribe(state, &format!("{host}/alice-laptop"), Some("alice"), None, &["news"]).await;
    subscribe(
        state,
        &format!("{host}/alice-phone-anonymous"),
        None,
        Some("dev-alice-phone"),
        &["offers"],
    )
    .await;
    subscribe(
        state,
        &format!("{host}/bob-phone"),
        Some("bob"),
        Some("dev-bob-phone"),
        &["news"],
    )
    .await;
    post_events(
        state,
        vec![
            prompt_event("alice-e1", "prompt_shown", "dev-alice-phone"),
            prompt_event("alice-e2", "prompt_accepted", "dev-alice-phone"),
            prompt_event("bob-e1", "prompt_shown", "dev-bob-phone"),
            json!({ "type": "conversion", "name": "replied", "anon": "dev-alice-phone" }),
        ],
    )
    .await;
    notify(state, json!({ "user": "alice" }), "Hi alice, Bill replied").await;
    notify(state, json!({ "user": "bob" }), "Hi bob").await;
    notify(state, json!({ "topic": "news" }), "Today's news").await;
    // The worker reports clicks by delivery only.
    let mut clicks = Vec::new();
    for needle in ["alice-laptop", "alice-phone", "bob-phone"] {
        for (_, delivery) in scanner.deliveries_to(needle).await {
            clicks.push(json!({ "type": "notification_clicked", "delivery": delivery }));
        }
    }
    post_events(state, clicks).await;
    // A journey each of them enters: their instances hold the user id, the
    // cart key and the event's properties.
    let journey = json!({
        "entry": { "event": "added_to_cart", "keyed": true },
        "steps": [{ "wait": { "hours": 1 } }, { "send": { "title": "Your cart" } }]
    });
    let (status, reply) = call(
        state,
        "PUT",
        "/v1/journeys/cart",
        Some(&journey.to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    tell(state, "alice", &["added_to_cart", "checkout_started"]).await;
    tell(state, "bob", &["added_to_cart"]).await;
    let runner = askwell_server::journeys::Runner::new(state.store.clone(), jiff::tz::TimeZone::UTC);
    let tick = runner.tick(askwell_server::store::now_ms()).await.expect("tick");
    assert_eq!(tick.entered, 2);
}

/// What identifies alice: her user id, device id and endpoints (all contain "alice").
const ALICE: [&str; 2] = ["alice", "dev-alice-phone"];

#[tokio::test]
async fn erasing_a_user_leaves_no_trace_in_any_table() {
    let db = inspectable().await;
    let state = &db.state;
    let mut scanner = Scanner::open(&db).await;
    // The scan covers the whole schema, not a list that could fall behind it.
    let expected = [
        "askwell_schema",
        "deliveries",
        "events",
        "notifications",
        "journey_instances",
        "journey_sends",
        "subscription_topics",
        "subscriptions",
        "user_events",
        "users",
    ];
    assert!(
        scanner.table_names().is_superset(&expected.into()),
        "{:?}",
        scanner.table_names()
    );
    assert!(scanner.text_columns() >= 25, "{} text columns", scanner.text_columns());
    two_users(state, &mut scanner).await;
    let alice_deliveries = scanner.deliveries_to("alice").await;
    let alice_subscriptions = scanner.subscriptions_to("alice").await;
    assert_eq!(
        (alice_deliveries.len(), alice_subscriptions.len()),
        (4, 3),
        "{alice_deliveries:?}"
    );

    // Before: the scan finds alice everywhere she is (so it would find leftovers).
    let before: BTreeSet<String> = scanner
        .text("alice")
        .await
        .into_iter()
        .map(|(t, c, _)| format!("{t}.{c}"))
        .collect();
    for place in [
        "subscriptions.endpoint",
        "subscriptions.user_id",
        "subscriptions.anon_id",
        "deliveries.anon_id",
        "events.anon_id",
        "events.id",
        "notifications.payload",
        "users.id",
        "users.traits",
        "user_events.user_id",
        "user_events.event_key",
        "user_events.properties",
        "user_events.dedup_id",
        "journey_instances.user_id",
        "journey_instances.instance_key",
        "journey_instances.event",
    ] {
        assert!(before.contains(place), "{place} not in {before:?}");
    }

    let (status, reply) = call(state, "DELETE", "/v1/users/alice", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // 3 subscriptions (the anonymous one is the same phone's), 4 topics, her 4
    // deliveries (user ×2, news ×2), events: 3 posted by the phone, its 2
    // server-recorded `subscribed` and 4 clicks; the notification only she
    // got; her traits and the 2 events her backend tracked.
    let removed = json!({ "subscriptions": 3, "topics": 4, "deliveries": 4, "events": 9, "notifications": 1, "users": 1, "user_events": 2, "journeys": 1 });
    assert_eq!(reply, json!({ "removed": removed }));

    for needle in ALICE {
        assert_eq!(scanner.text(needle).await, Hits::new(), "{needle} left behind");
    }
    for (_, delivery) in &alice_deliveries {
        assert_eq!(scanner.text(delivery).await, Hits::new(), "delivery {delivery}");
    }
    for subscription in alice_subscriptions {
        let hits = scanner.int("subscription_id", subscription).await;
        assert_eq!(hits, Hits::new(), "subscription {subscription}");
    }
    // bob keeps everything: his subscription, both his deliveries, his 4
    // events (shown, subscribed, 2 clicks), the topic notification, his
    // traits and tracked event.
    let (_, bob) = call(state, "GET", "/v1/users/bob/export", None, Some(TOKEN)).await;
    let count = |list: &str| bob[list].as_array().map(Vec::len);
    assert_eq!(
        (
            count("subscriptions"),
            count("deliveries"),
            count("events"),
            count("tracked_events")
        ),
        (Some(1), Some(2), Some(4), Some(1)),
        "{bob}"
    );
    assert_eq!(bob["traits"]["email"], "bob@example.com", "{bob}");
    let (status, _) = call(state, "GET", "/v1/users/alice", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing known of alice any more");
    let news = vec![("notifications".to_owned(), "payload".to_owned(), 1)];
    assert_eq!(scanner.text("Today's news").await, news);
    // Idempotent: again, nothing left to remove.
    let (status, again) = call(state, "DELETE", "/v1/users/alice", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let zero = json!({ "subscriptions": 0, "topics": 0, "deliveries": 0, "events": 0, "notifications": 0, "users": 0, "user_events": 0, "journeys": 0 });
    assert_eq!(again, json!({ "removed": zero }));
}

#[tokio::test]
async fn erasing_a_device_removes_its_subscriptions_events_and_delivery_copies() {
    let db = inspectable().await;
    let state = &db.state;
    let mut scanner = Scanner::open(&db).await;
    two_users(state, &mut scanner).await;
    let (status, reply) = call(state, "DELETE", "/v1/devices/dev-alice-phone", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // Both of the phone's subscriptions (3 topics), its 2 deliveries (the
    // user notification and news), 3 posted + 2 subscribed + 2 attributed clicks.
    // The account's traits and tracked events are not the device's: they stay.
    let removed = json!({ "subscriptions": 2, "topics": 3, "deliveries": 2, "events": 7, "notifications": 0, "users": 0, "user_events": 0, "journeys": 0 });
    assert_eq!(reply, json!({ "removed": removed }));
    assert_eq!(scanner.text("dev-alice-phone").await, Hits::new());
    assert_eq!(scanner.text("alice-phone").await, Hits::new(), "the phone's endpoints");
    // The laptop stays alice's, with its deliveries and its click.
    let (_, alice) = call(state, "GET", "/v1/users/alice/export", None, Some(TOKEN)).await;
    let endpoints: Vec<&str> = alice["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .filter_map(|s| s["endpoint"].as_str())
        .collect();
    assert_eq!(endpoints, ["https://push.example.com/send/alice-laptop"]);
    assert_eq!(alice["deliveries"].as_array().map(Vec::len), Some(2), "{alice}");
    assert_eq!(
        alice["events"].as_array().map(Vec::len),
        Some(2),
        "the laptop's clicks: {alice}"
    );
    assert_eq!(alice["tracked_events"].as_array().map(Vec::len), Some(2), "{alice}");
    assert_eq!(alice["traits"]["plan"], "pro", "{alice}");
}

#[tokio::test]
async fn the_export_holds_everything_about_the_user_but_no_key() {
    let db = inspectable().await;
    let state = &db.state;
    let mut scanner = Scanner::open(&db).await;
    two_users(state, &mut scanner).await;
    let (status, export) = call(state, "GET", "/v1/users/alice/export", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["user"], "alice");
    let subscriptions = export["subscriptions"].as_array().expect("subscriptions");
    let phone = &subscriptions[0];
    assert_eq!(phone["endpoint"], "https://push.example.com/send/alice-phone");
    assert_eq!(phone["topics"], json!(["news", "thread-1"]));
    assert_eq!(
        phone["attribution"],
        json!({ "anon": "dev-alice-phone", "prompt": "reply", "variant": "a" })
    );
    assert!(phone["created"].as_i64().is_some_and(|t| t > 0), "{phone}");
    assert_eq!(
        phone["time_zone"], "Asia/Tokyo",
        "the device's zone, as its page sent it"
    );
    assert_eq!(subscriptions[1]["time_zone"], Value::Null, "{export}");
    // What her backend told: traits, her zone, the events tracked for her (not bob's).
    assert_eq!(
        (&export["traits"], &export["time_zone"]),
        (
            &json!({ "email": "alice@example.com", "plan": "pro" }),
            &json!("Europe/Berlin")
        )
    );
    let tracked = export["tracked_events"].as_array().expect("tracked events");
    let names: Vec<&str> = tracked.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["added_to_cart", "checkout_started"]);
    assert_eq!(tracked[0]["key"], "alice-cart");
    // The journey she entered (the cart journey of `two_users`), not bob's.
    let journeys = export["journeys"].as_array().expect("journeys");
    assert_eq!(journeys.len(), 1, "{export}");
    assert_eq!(
        (&journeys[0]["journey"], &journeys[0]["key"], &journeys[0]["state"]),
        (&json!("cart"), &json!("alice-cart"), &json!("waiting"))
    );
    assert_eq!(journeys[0]["event"], json!({ "note": "for alice" }));
    assert_eq!(tracked[0]["id"], "alice-added_to_cart");
    assert_eq!(tracked[0]["properties"], json!({ "note": "for alice" }));
    assert!(tracked[0]["seq"].as_i64() < tracked[1]["seq"].as_i64(), "{tracked:?}");
    assert!(tracked[0]["at"].as_i64().is_some_and(|t| t > 0) && tracked[0]["received"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(
        subscriptions[1]["attribution"],
        json!({ "anon": null, "prompt": null, "variant": null })
    );
    // Only her own subscriptions: the phone's anonymous one is not bound to her.
    assert_eq!(subscriptions.len(), 2);
    let deliveries = export["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 4);
    let titles: BTreeSet<&str> = deliveries
        .iter()
        .filter_map(|d| d["notification"]["payload"]["title"].as_str())
        .collect();
    assert_eq!(titles, BTreeSet::from(["Hi alice, Bill replied", "Today's news"]));
    assert!(
        deliveries
            .iter()
            .all(|d| d["clicked"].as_i64().is_some() && d["status"] == "queued"),
        "{deliveries:?}"
    );
    let events = export["events"].as_array().expect("events");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "notification_clicked").count(),
        4,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"prompt_shown") && kinds.contains(&"conversion"),
        "{kinds:?}"
    );
    // Keys are credentials, not the person's data: never exported.
    let text = export.to_string();
    assert!(!text.contains(P256DH) && !text.contains(AUTH), "{text}");
    // An unknown user: nothing stored, empty lists.
    let (status, nobody) = call(state, "GET", "/v1/users/nobody/export", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        nobody,
        json!({ "user": "nobody", "traits": {}, "time_zone": null, "subscriptions": [], "deliveries": [], "events": [], "tracked_events": [], "journeys": [], "preferences": [] })
    );
}

#[tokio::test]
async fn privacy_routes_need_the_admin_token_and_ids_of_1_to_200_characters() {
    let state = state(false).await;
    for (method, uri) in [
        ("DELETE", "/v1/users/alice"),
        ("GET", "/v1/users/alice/export"),
        ("DELETE", "/v1/devices/d1"),
    ] {
        for token in [None, Some("wrong")] {
            let (status, reply) = call(&state, method, uri, None, token).await;
            assert_eq!(
                (status, &reply["error"]["code"]),
                (StatusCode::UNAUTHORIZED, &json!("unauthorized")),
                "{uri}"
            );
        }
    }
    let long = "x".repeat(201);
    let cases = [
        (
            "DELETE",
            format!("/v1/users/{long}"),
            "invalid_user",
            "id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "GET",
            format!("/v1/users/{long}/export"),
            "invalid_user",
            "id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "DELETE",
            format!("/v1/devices/{long}"),
            "invalid_anon_id",
            "anon_id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "DELETE",
            "/v1/users/%FF".into(),
            "invalid_user",
            "id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        // NUL: PostgreSQL text cannot hold it (this was a 500 there).
        (
            "DELETE",
            "/v1/users/a%00b".into(),
            "invalid_user",
            "id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "GET",
            "/v1/users/%00/export".into(),
            "invalid_user",
            "id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "DELETE",
            "/v1/devices/d%0A1".into(),
            "invalid_anon_id",
            "anon_id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
        (
            "DELETE",
            "/v1/devices/%C3".into(),
            "invalid_anon_id",
            "anon_id: expected 1 to 200 bytes of UTF-8 without control characters",
        ),
    ];
    for (method, uri, code, message) in cases {
        let (status, reply) = call(&state, method, &uri, None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {reply}");
        assert_eq!(reply, json!({ "error": { "code": code, "message": message } }), "{uri}");
    }
    // 200 bytes is fine, percent-encoded ids are decoded; unknown ones remove nothing.
    for uri in [
        format!("/v1/users/{}", "x".repeat(200)),
        "/v1/devices/caf%C3%A9%2F1".into(),
    ] {
        let (status, reply) = call(&state, "DELETE", &uri, None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {reply}");
        assert_eq!(reply["removed"]["subscriptions"], 0);
    }
    let (status, reply) = call(&state, "POST", "/v1/users/alice", None, Some(TOKEN)).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!("method_not_allowed"))
    );
}

/// One request of the race: erase the user, erase one of their devices,
/// fan out to them, (twice as often) post one of six subscriptions again,
/// track an event for them or merge a trait.
async fn racer(state: AppState, round: usize, i: usize) -> (StatusCode, Value) {
    let anon = format!("dev-carol-{}", i % 3);
    let endpoint = format!("https://push.example.com/send/carol-{round}-{}", i % 6);
    let notify = |to: Value| json!({ "to": to, "notification": { "title": "Hi carol" } }).to_string();
    let (method, uri, body, token) = match i % 7 {
        0 => ("DELETE", "/v1/users/carol".to_owned(), None, Some(TOKEN)),
        5 => {
            let events =
                json!({ "events": [{ "user": "carol", "name": "viewed", "id": format!("carol-{round}-{}", i % 4) }] });
            ("POST", "/v1/track".to_owned(), Some(events.to_string()), Some(TOKEN))
        }
        6 => {
            let traits = json!({ "traits": { format!("t{}", i % 3): i } });
            (
                "PUT",
                "/v1/users/carol".to_owned(),
                Some(traits.to_string()),
                Some(TOKEN),
            )
        }
        1 => ("DELETE", format!("/v1/devices/{anon}"), None, Some(TOKEN)),
        2 => (
            "POST",
            "/v1/notify".to_owned(),
            Some(notify(json!({ "topic": "news" }))),
            Some(TOKEN),
        ),
        _ => {
            let body = subscription(&endpoint, Some("carol"), Some(&anon), &["news"]);
            ("POST", "/v1/subscriptions".to_owned(), Some(body), None)
        }
    };
    call(&state, method, &uri, body.as_deref(), token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasures_racing_with_subscribes_and_fan_outs_never_fail() {
    let state = state(false).await;
    for round in 0..4 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..35 {
            tasks.spawn(racer(state.clone(), round, i));
        }
        while let Some(done) = tasks.join_next().await {
            let (status, reply) = done.expect("task");
            assert!(status.is_success(), "{status}: {reply}");
        }
    }
    // After one more erasure nothing of carol's is left.
    let (status, _) = call(&state, "DELETE", "/v1/users/carol", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, export) = call(&state, "GET", "/v1/users/carol/export", None, Some(TOKEN)).await;
    assert_eq!(
        export,
        json!({ "user": "carol", "traits": {}, "time_zone": null, "subscriptions": [], "deliveries": [], "events": [], "tracked_events": [], "journeys": [], "preferences": [] })
    );
    assert_eq!(state.store.subscription_count().await.expect("count"), 0);
    assert_eq!(
        state.store.queue_depth().await.expect("queue"),
        0,
        "nothing left to send"
    );
}
