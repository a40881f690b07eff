//! Segments (`POST /v1/notify` `to: { where }`): the parity table — every
//! condition evaluated by the core ([`Segment::matches`], the reference)
//! and by the store's SQL over the same users and devices gives the same
//! devices — on SQLite and, when `ASKWELL_TEST_POSTGRES_URL` is set
//! (`cargo xtask test` sets it), on PostgreSQL; then the route: a segment
//! send, its dry run, and bad conditions named by their path.

mod support;

use std::collections::BTreeMap;

use askwell::segment::{Scalar, Segment};
use askwell_server::store::{NewSubscription, Recipients, Traits, Upsert, UserChanges, ZoneChange};
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

fn scalars(traits: &Value) -> BTreeMap<String, Scalar> {
    let Value::Object(map) = traits else {
        return BTreeMap::new();
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

/// Stores the devices (and their users' traits); their subscription ids by name.
async fn seed(store: &Store) -> BTreeMap<&'static str, i64> {
    let mut ids = BTreeMap::new();
    for (name, user, topics) in devices() {
        let sub = NewSubscription {
            endpoint: format!("https://push.example/{name}"),
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
    ids
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
];

#[tokio::test]
async fn the_store_sql_and_the_core_agree_on_every_condition_of_the_table() {
    let store = fresh_store().await;
    let ids = seed(&store).await;
    let devices = devices();
    for json in TABLE {
        let value: Value = serde_json::from_str(json).expect("JSON");
        let segment = Segment::read(&askwell_server::journeys::core_value(&value), "to.where").expect(json);
        let expected: Vec<i64> = devices
            .iter()
            .filter(|(_, user, topics)| {
                let traits = user.as_ref().map(|(_, t)| scalars(t)).unwrap_or_default();
                let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
                segment.matches(&traits, &topics)
            })
            .map(|(name, _, _)| ids[name])
            .collect();
        let found = store.recipients(&Recipients::Where(segment.clone())).await.expect(json);
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
            devices
                .iter()
                .filter(|(_, user, topics)| {
                    let traits = user.as_ref().map(|(_, t)| scalars(t)).unwrap_or_default();
                    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
                    segment.matches(&traits, &topics)
                })
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
