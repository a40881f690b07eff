//! Segments (`POST /v1/notify` `to: { where }`): the parity table — every
//! condition evaluated by the core ([`Segment::matches`], the reference)
//! and by the store's SQL over the same users and devices gives the same
//! devices — on SQLite and, when `ASKWELL_TEST_POSTGRES_URL` is set
//! (`cargo xtask test` sets it), on PostgreSQL; then the route: a segment
//! send, its dry run, and bad conditions named by their path.

mod support;

use std::collections::BTreeMap;

use askwell::sorted::SortedMap;

use askwell::segment::{Facts, Scalar, Segment};
use askwell_server::store::{
    now_ms, NewSubscription, NewUserEvent, Recipients, Traits, Upsert, UserChanges, ZoneChange,
};
use askwell_server::Store;
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

/// A device: its name, its user's traits (`None`: bound to no user) and topics.
type Device = (&'static str, Option<(&'static str, Value)>, &'static [&'static str]);

fn devices() -> Vec<Device> {
    vec![
        (
            "ada-phone",
            Some((
                "ada",
                json!({ "plan": "pro", "orders": 12, "beta": true, "email": "a@example.com" }),
            )),
            &["news", "deals-eu"],
        ),
        (
            "ada-laptop",
            Some((
                "ada",
                json!({ "plan": "pro", "orders": 12, "beta": true, "email": "a@example.com" }),
            )),
            &["news"],
        ),
        (
            "bob-phone",
            Some(("bob", json!({ "plan": "free", "orders": "12" }))),
            &["deals-us"],
        ),
        (
            "cy-tablet",
            Some(("cy", json!({ "plan": "team", "orders": 3.5, "beta": false }))),
            &[],
        ),
        ("dee-phone", Some(("dee", json!({}))), &["news"]),
        ("anon-1", None, &["news"]),
        ("anon-2", None, &["odd_100%", "a?b", "[x]"]),
    ]
}

fn scalars(traits: &Value) -> SortedMap<Scalar> {
    let Value::Object(map) = traits else {
        return SortedMap::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let scalar = match v {
                Value::String(s) => Scalar::Text(s.clone()),
                Value::Number(n) => Scalar::Number(n.as_f64()?),
                Value::Bool(b) => Scalar::Bool(*b),
                _ => return None,
            };
            Some((k.clone(), scalar))
        })
        .collect()
}

const DAY: i64 = 24 * 3600 * 1000;

/// Each device's push endpoint: by browser, in the cases the browser
/// condition must tell apart.
fn endpoint(name: &str) -> String {
    match name {
        "ada-phone" => "https://fcm.googleapis.com/fcm/send/ada-phone".into(),
        "ada-laptop" => "https://updates.push.services.mozilla.com/wpush/v2/ada-laptop".into(),
        "bob-phone" => "https://web.push.apple.com/bob-phone".into(),
        "cy-tablet" => "https://wns2-par02p.notify.windows.com/w/?token=cy".into(),
        "dee-phone" => "https://FCM.googleapis.com/fcm/send/dee-phone".into(),
        "anon-1" => "https://push.example/fcm.googleapis.com/anon-1".into(),
        _ => format!("https://evil.example/{name}.notify.windows.com/"),
    }
}

/// How many days ago each device subscribed.
fn age_days(name: &str) -> i64 {
    match name {
        "ada-phone" => 40,
        "ada-laptop" => 2,
        "bob-phone" => 10,
        "cy-tablet" => 0,
        _ => 20,
    }
}

/// Each user's events: (name, days ago).
fn events(user: &str) -> &'static [(&'static str, i64)] {
    match user {
        "ada" => &[("purchased", 1), ("purchased", 12), ("purchased", 25), ("opened", 1)],
        "bob" => &[("opened", 20), ("purchased", 45)],
        "cy" => &[("purchased", 3)],
        _ => &[],
    }
}

/// What the core is told of device `name` at `now`.
struct Known {
    traits: SortedMap<Scalar>,
    topics: Vec<String>,
    events: Vec<(String, i64)>,
    endpoint: String,
    subscribed_ms: i64,
}

fn known(device: &Device, now: i64) -> Known {
    let (name, user, topics) = device;
    Known {
        traits: user.as_ref().map(|(_, t)| scalars(t)).unwrap_or_default(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        events: user
            .as_ref()
            .map(|(u, _)| {
                events(u)
                    .iter()
                    .map(|(n, d)| ((*n).to_owned(), now - d * DAY))
                    .collect()
            })
            .unwrap_or_default(),
        endpoint: endpoint(name),
        subscribed_ms: now - age_days(name) * DAY,
    }
}

fn core_matches(segment: &Segment, known: &Known, id: i64, now: i64) -> bool {
    segment.matches(&Facts {
        traits: &known.traits,
        topics: &known.topics,
        events: &known.events,
        device: id,
        endpoint: &known.endpoint,
        subscribed_ms: known.subscribed_ms,
        now_ms: now,
    })
}

/// Stores the devices (and their users' traits); their subscription ids by name.
async fn seed(store: &Store) -> BTreeMap<&'static str, i64> {
    let mut ids = BTreeMap::new();
    for (name, user, topics) in devices() {
        let sub = NewSubscription {
            endpoint: endpoint(name),
            p256dh: format!("p256dh-{name}"),
            auth: format!("auth-{name}"),
            user: user.as_ref().map(|(u, _)| (*u).to_owned()),
            expiration_ms: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            time_zone: None,
        };
        let Upsert::Created(id) = store.subscription_upsert(&sub).await.expect("upsert") else {
            panic!("{name}: new");
        };
        ids.insert(name, id);
        if let Some((user, traits)) = user {
            let traits: Traits = serde_json::from_value(traits).expect("traits");
            let changes = UserChanges {
                traits,
                time_zone: ZoneChange::Keep,
            };
            store.put_user(user, &changes).await.expect("put user");
        }
    }
    let now = now_ms();
    let mut batch = Vec::new();
    for user in ["ada", "bob", "cy"] {
        for (i, (name, days)) in events(user).iter().enumerate() {
            batch.push(NewUserEvent {
                user: user.to_owned(),
                name: (*name).to_owned(),
                key: None,
                at_ms: now - days * DAY,
                properties: Traits::new(),
                dedup_id: Some(format!("{user}-{i}")),
            });
        }
    }
    store.record_user_events(&batch, now).await.expect("events");
    ids
}

/// Backdates each device's subscription by [`age_days`].
async fn backdate(url: &str, ids: &BTreeMap<&'static str, i64>, now: i64) {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("raw connection");
    for (name, id) in ids {
        sqlx::query("UPDATE subscriptions SET created_ms = $1 WHERE id = $2")
            .bind(now - age_days(name) * DAY)
            .bind(*id)
            .execute(&mut conn)
            .await
            .expect("backdate");
    }
}

const TABLE: &[&str] = &[
    r#"{ "trait": "plan", "equals": "pro" }"#,
    r#"{ "trait": "plan", "in": ["pro", "team"] }"#,
    r#"{ "trait": "plan", "in": ["PRO"] }"#,
    r#"{ "trait": "orders", "equals": 12 }"#,
    r#"{ "trait": "orders", "equals": "12" }"#,
    r#"{ "trait": "orders", "gte": 10 }"#,
    r#"{ "trait": "orders", "lte": 3.5 }"#,
    r#"{ "trait": "orders", "gte": -1 }"#,
    r#"{ "trait": "beta", "equals": true }"#,
    r#"{ "trait": "beta", "equals": false }"#,
    r#"{ "trait": "beta", "in": [true, "yes", 1] }"#,
    r#"{ "trait": "email", "exists": true }"#,
    r#"{ "trait": "plan", "exists": true }"#,
    r#"{ "not": { "trait": "plan", "equals": "pro" } }"#,
    r#"{ "not": { "trait": "orders", "gte": 10 } }"#,
    r#"{ "not": { "trait": "missing", "exists": true } }"#,
    r#"{ "topic": "news" }"#,
    r#"{ "topic": "deals-*" }"#,
    r#"{ "topic": "*-eu" }"#,
    r#"{ "topic": "NEWS" }"#,
    r#"{ "topic": "odd_100%" }"#,
    r#"{ "topic": "odd_1%" }"#,
    r#"{ "topic": "a?b" }"#,
    r#"{ "topic": "axb" }"#,
    r#"{ "topic": "[x]" }"#,
    r#"{ "topic": "x" }"#,
    r#"{ "topic": "*" }"#,
    r#"{ "not": { "topic": "news" } }"#,
    r#"{ "all": [] }"#,
    r#"{ "any": [] }"#,
    r#"{ "not": { "any": [] } }"#,
    r#"{ "all": [{ "topic": "news" }, { "not": { "trait": "plan", "exists": true } }] }"#,
    r#"{ "any": [{ "trait": "orders", "gte": 10 }, { "topic": "deals-*" }, { "trait": "beta", "equals": false }] }"#,
    r#"{ "all": [{ "any": [{ "trait": "plan", "equals": "pro" }, { "trait": "plan", "equals": "team" }] }, { "not": { "all": [{ "topic": "deals-eu" }] } }] }"#,
    r#"{ "active_within": { "days": 7 } }"#,
    r#"{ "active_within": { "days": 30 } }"#,
    r#"{ "not": { "active_within": { "days": 7 } } }"#,
    r#"{ "inactive_for": { "days": 14 } }"#,
    r#"{ "inactive_for": { "days": 2 } }"#,
    r#"{ "not": { "inactive_for": { "days": 14 } } }"#,
    r#"{ "event": "purchased", "within": { "days": 30 } }"#,
    r#"{ "event": "purchased", "within": { "days": 30 }, "at_least": 2 }"#,
    r#"{ "event": "purchased", "within": { "days": 30 }, "at_least": 1, "at_most": 1 }"#,
    r#"{ "event": "purchased", "within": { "days": 30 }, "at_least": 0, "at_most": 0 }"#,
    r#"{ "not": { "event": "opened", "within": { "days": 7 } } }"#,
    r#"{ "subscribed_for": { "days": 7 } }"#,
    r#"{ "subscribed_for": { "days": 30 } }"#,
    r#"{ "not": { "subscribed_for": { "days": 1 } } }"#,
    r#"{ "browser": "chrome" }"#,
    r#"{ "browser": "firefox" }"#,
    r#"{ "browser": "safari" }"#,
    r#"{ "browser": "edge" }"#,
    r#"{ "not": { "browser": "chrome" } }"#,
    r#"{ "bucket": [0, 50] }"#,
    r#"{ "bucket": [50, 100] }"#,
    r#"{ "bucket": [3, 5] }"#,
    r#"{ "not": { "bucket": [0, 50] } }"#,
    r#"{ "all": [{ "trait": "plan", "exists": true }, { "inactive_for": { "days": 7 } }, { "not": { "browser": "safari" } }] }"#,
];

#[tokio::test]
async fn the_store_sql_and_the_core_agree_on_every_condition_of_the_table() {
    let db = inspectable_with(askwell_server::Settings::default()).await;
    let store = db.state.store.clone();
    let ids = seed(&store).await;
    let now = now_ms();
    backdate(&db.url, &ids, now).await;
    let devices = devices();
    for json in TABLE {
        let value: Value = serde_json::from_str(json).expect("JSON");
        let segment = Segment::read(&askwell_server::journeys::core_value(&value), "to.where").expect(json);
        let expected: Vec<i64> = devices
            .iter()
            .filter(|device| core_matches(&segment, &known(device, now), ids[device.0], now))
            .map(|(name, _, _)| ids[name])
            .collect();
        let audience = askwell_server::store::Audience::read(&value, "to.where").expect(json);
        let found = store.recipients(&Recipients::Where(audience)).await.expect(json);
        let got: Vec<i64> = found.iter().map(|r| r.subscription_id).collect();
        let names = |list: &[i64]| -> Vec<&str> {
            list.iter()
                .filter_map(|id| ids.iter().find(|(_, v)| *v == id).map(|(k, _)| *k))
                .collect()
        };
        assert_eq!(names(&got), names(&expected), "{json}");
    }
}

#[tokio::test]
async fn the_table_is_not_trivial() {
    // Guards the parity test against a table where everything matches
    // everything or nothing: the core's answers vary.
    let devices = devices();
    let sizes: Vec<usize> = TABLE
        .iter()
        .map(|json| {
            let value: Value = serde_json::from_str(json).expect("JSON");
            let segment = Segment::read(&askwell_server::journeys::core_value(&value), "w").expect(json);
            let now = 1_000 * DAY;
            devices
                .iter()
                .enumerate()
                .filter(|(i, device)| core_matches(&segment, &known(device, now), *i as i64 + 1, now))
                .count()
        })
        .collect();
    assert!(sizes.contains(&0) && sizes.contains(&devices.len()));
    assert!(
        sizes.iter().filter(|n| (1..devices.len()).contains(*n)).count() >= TABLE.len() / 2,
        "{sizes:?}"
    );
}

#[tokio::test]
async fn a_segment_send_reaches_its_devices_and_a_bad_condition_is_named() {
    let db = inspectable_with(askwell_server::Settings {
        admin_token: Some(TOKEN.into()),
        ..askwell_server::Settings::default()
    })
    .await;
    let state = &db.state;
    seed(&state.store).await;
    let pro = json!({ "trait": "plan", "in": ["pro", "team"] });
    let (status, dry) = call(
        state,
        "POST",
        "/v1/notify",
        Some(
            &json!({ "to": { "where": pro }, "dry_run": true, "notification": { "title": "For {user.plan} plans" } })
                .to_string(),
        ),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["recipients"], 3, "Ada's two devices and Cy's: {dry}");
    let sent = notify_accepted(
        state,
        json!({ "to": { "where": pro }, "notification": { "title": "For {user.plan} plans" } }),
    )
    .await;
    assert_eq!(sent["recipients"], 3);
    let plain = notify_accepted(
        state,
        json!({ "to": { "where": { "topic": "news" } }, "notification": { "title": "News" } }),
    )
    .await;
    assert_eq!(plain["recipients"], 4, "the plain path too (one INSERT … SELECT)");
    for (body, expected) in [
        (
            json!({ "to": { "where": { "trait": "plan" } } }),
            "to.where.trait: expected exactly one of equals, in, exists, gte, lte",
        ),
        (
            json!({ "to": { "where": { "all": [{ "topic": "a" }, { "trait": "x", "gte": "ten" }] } } }),
            "to.where.all[1].gte: expected a number",
        ),
        (
            json!({ "to": { "where": { "topic": "a" }, "all": true } }),
            "to: expected exactly one of",
        ),
    ] {
        let mut body = body;
        body["notification"] = json!({ "title": "Hi" });
        let (status, reply) = call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_target");
        assert!(
            reply["error"]["message"].as_str().is_some_and(|m| m.contains(expected)),
            "{body}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_named_segment_is_stored_counted_sent_to_and_deleted() {
    let db = inspectable_with(askwell_server::Settings {
        admin_token: Some(TOKEN.into()),
        ..askwell_server::Settings::default()
    })
    .await;
    let state = &db.state;
    seed(&state.store).await;
    let put = |body: Value| async move {
        call(
            state,
            "PUT",
            "/v1/segments/big-spenders",
            Some(&body.to_string()),
            Some(TOKEN),
        )
        .await
    };
    let (status, created) = put(json!({ "where": { "trait": "orders", "gte": 10 } })).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        (&created["created"], &created["recipients"]),
        (&json!(true), &json!(2)),
        "{created}"
    );
    let (status, replaced) = put(json!({ "where": { "trait": "orders", "gte": 3 } })).await;
    assert_eq!(
        (status, &replaced["created"], &replaced["recipients"]),
        (StatusCode::OK, &json!(false), &json!(3))
    );
    for (body, expected) in [
        (
            json!({ "where": { "trait": "orders" } }),
            "where.trait: expected exactly one of",
        ),
        (
            json!({ "trait": "orders", "gte": 3 }),
            "expected { \"where\": condition }",
        ),
    ] {
        let (status, reply) = put(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert!(
            reply["error"]["message"].as_str().is_some_and(|m| m.contains(expected)),
            "{body}: {reply}"
        );
    }
    let (_, list) = call(state, "GET", "/v1/segments", None, Some(TOKEN)).await;
    assert_eq!(
        list["segments"][0]["where"],
        json!({ "trait": "orders", "gte": 3 }),
        "the bad PUTs changed nothing: {list}"
    );
    let sent = notify_accepted(
        state,
        json!({ "to": { "segment": "big-spenders" }, "notification": { "title": "Thanks" } }),
    )
    .await;
    assert_eq!(sent["recipients"], 3);
    let (status, reply) = call(
        state,
        "POST",
        "/v1/notify",
        Some(&json!({ "to": { "segment": "nobody-named-this" }, "notification": { "title": "Hi" } }).to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_target")),
        "{reply}"
    );
    let (status, _) = call(state, "DELETE", "/v1/segments/big-spenders", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(state, "GET", "/v1/segments/big-spenders", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(state, "DELETE", "/v1/segments/big-spenders", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
