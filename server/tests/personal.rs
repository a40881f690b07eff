//! Personalised `POST /v1/notify`: copy over `{user.*}` traits and
//! `{data.*}` batch data rendered per recipient, fallbacks, a field no
//! recipient has refused, payloads too large for one recipient counted and
//! never sent, and dry runs that write nothing — through `app()` and a
//! local push service that checks the VAPID signature and decrypts each
//! push (RFC 8291) on its own. On SQLite, and on PostgreSQL when
//! `ASKWELL_TEST_POSTGRES_URL` is set (`cargo xtask test` sets it).

mod support;

use std::collections::BTreeMap;

use askwell_server::delivery::DeliveryConfig;
use askwell_server::{AppState, Settings};
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

fn settings() -> Settings {
    Settings {
        admin_token: Some(TOKEN.into()),
        identity_secret: Some(IDENTITY_SECRET.as_bytes().to_vec()),
        endpoints: askwell_server::validate::EndpointPolicy { allow_insecure: true },
        ..Settings::default()
    }
}

async fn put_user(state: &AppState, id: &str, body: Value) {
    let (status, reply) = call(
        state,
        "PUT",
        &format!("/v1/users/{id}"),
        Some(&body.to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

async fn notify(state: &AppState, body: &Value) -> (StatusCode, Value) {
    call(state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await
}

/// A refused request: its code and message.
async fn refused(state: &AppState, body: Value) -> (String, String) {
    let (status, reply) = notify(state, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {reply}");
    (
        reply["error"]["code"].as_str().expect("code").to_owned(),
        reply["error"]["message"].as_str().expect("message").to_owned(),
    )
}

async fn round(state: &AppState) -> usize {
    deliverer(state, DeliveryConfig::default())
        .round()
        .await
        .expect("round")
}

/// Decrypted pushes by subscriber id.
fn pushes(service: &push_service::PushService) -> BTreeMap<String, Value> {
    assert!(service.rejected().is_empty(), "{:?}", service.rejected());
    service
        .received()
        .into_iter()
        .map(|(id, text)| (id, serde_json::from_str(&text).expect("JSON payload")))
        .collect()
}

/// Ada (named, in Paris), Bob (no first name) and a device bound to no
/// one, all on topic `news`.
async fn three_recipients(state: &AppState, service: &push_service::PushService) {
    put_user(
        state,
        "ada",
        json!({ "traits": { "first_name": "Ada", "plan": "pro" } }),
    )
    .await;
    put_user(state, "bob", json!({ "traits": { "plan": "free" } })).await;
    subscribe_device(state, service, "ada-phone", "news", Some("Europe/Paris"), Some("ada")).await;
    subscribe_device(state, service, "bob-laptop", "news", None, Some("bob")).await;
    subscribe_device(state, service, "anon-tablet", "news", None, None).await;
}

#[tokio::test]
async fn each_recipient_gets_their_own_name_and_one_without_it_the_fallback() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    let reply = notify_accepted(
        state,
        json!({
            "to": { "topic": "news" },
            "notification": {
                "title": "Hi {user.first_name|there}!",
                "body": "Your {user.plan} plan has a new feature",
                "url": "/plans/{user.plan|free}",
                "actions": [{ "action": "open", "title": "See {user.plan|it}" }]
            }
        }),
    )
    .await;
    assert_eq!(
        (reply["recipients"].as_i64(), reply["too_large"].as_i64()),
        (Some(3), Some(0)),
        "{reply}"
    );
    assert_eq!(round(state).await, 3);
    let got = pushes(&service);
    let seen: Vec<(&str, &str, &str, &str)> = ["ada-phone", "bob-laptop", "anon-tablet"]
        .iter()
        .map(|id| {
            let push = &got[*id];
            (
                push["title"].as_str().expect("title"),
                push["body"].as_str().expect("body"),
                push["url"].as_str().expect("url"),
                push["actions"][0]["title"].as_str().expect("action"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Hi Ada!", "Your pro plan has a new feature", "/plans/pro", "See pro"),
            (
                "Hi there!",
                "Your free plan has a new feature",
                "/plans/free",
                "See free"
            ),
            ("Hi there!", "Your plan has a new feature", "/plans/free", "See it"),
        ]
    );
    for push in got.values() {
        assert!(push["delivery"]
            .as_str()
            .is_some_and(|d| d.starts_with(reply["id"].as_str().expect("id"))));
        assert!(!push.to_string().contains("{user."), "never a raw placeholder: {push}");
    }
    let counts = notification_counts(state, reply["id"].as_str().expect("id")).await;
    assert_eq!(counts["delivered"], 3, "{counts}");
    // What the person was sent is theirs to export: their own rendering.
    let (status, export) = call(state, "GET", "/v1/users/ada/export", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(
        export["deliveries"][0]["notification"]["payload"]["title"], "Hi Ada!",
        "{export}"
    );
}

#[tokio::test]
async fn a_field_no_recipient_has_is_refused_naming_it_and_nothing_is_enqueued() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    let (code, message) = refused(
        state,
        json!({ "to": { "topic": "news" }, "notification": { "title": "Hi {user.frist_name|there}" } }),
    )
    .await;
    assert_eq!(code, "invalid_notification");
    assert!(
        message.contains("notification.title: none of the 3 recipients has {user.frist_name}"),
        "{message}"
    );
    assert_eq!(state.store.queue_depth().await.expect("depth"), 0);
}

#[tokio::test]
async fn bad_placeholders_and_batches_are_refused_naming_the_field() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let title = |title: &str| json!({ "to": { "all": true }, "notification": { "title": title } });
    let item = |user: &str| json!({ "to": { "user": user }, "data": { "item": "Hat" } });
    let cases = [
        (
            title("{event.item}"),
            "invalid_notification",
            "notification.title: unknown placeholder {event.item}",
        ),
        (
            title("{data.item|it}"),
            "invalid_notification",
            "{data.item} reads per-recipient data: send it as batch[].data",
        ),
        (
            title("{user.first_name}"),
            "invalid_notification",
            "notification.title: would be blank",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi", "url": "https://{user.site}/x" } }),
            "invalid_notification",
            "notification.url: expected an http(s) or relative URL, with placeholders only after the scheme and host",
        ),
        (
            json!({ "to": { "all": true }, "batch": [item("ada")], "notification": { "title": "Hi" } }),
            "invalid_target",
            "to: not with batch",
        ),
        (
            json!({ "batch": [item("ada"), item("bob"), item("ada")], "notification": { "title": "Hi" } }),
            "invalid_target",
            "batch[2].to.user: already in batch[0]",
        ),
        (
            json!({ "batch": [], "notification": { "title": "Hi" } }),
            "invalid_target",
            "batch: 1 to 1000 items",
        ),
        (
            json!({ "batch": vec![item("ada"); 1001], "notification": { "title": "Hi" } }),
            "invalid_target",
            "batch: 1 to 1000 items",
        ),
        (
            json!({ "batch": [{ "to": { "topic": "news" } }], "notification": { "title": "Hi" } }),
            "invalid_target",
            "batch[0].to: expected { user }",
        ),
        (
            json!({ "batch": [{ "to": { "user": "ada" }, "data": { "item": { "name": "Hat" } } }], "notification": { "title": "Hi" } }),
            "invalid_notification",
            "batch[0].data.item: expected a string, number, boolean or null",
        ),
        (
            json!({ "batch": [{ "to": { "user": "ada" }, "data": [1] }], "notification": { "title": "Hi" } }),
            "invalid_notification",
            "batch[0].data: expected an object",
        ),
    ];
    for (body, code, expected) in cases {
        let (got, message) = refused(state, body.clone()).await;
        assert_eq!(got, code, "{body}: {message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(state.store.queue_depth().await.expect("depth"), 0);
}

#[tokio::test]
async fn a_batch_gives_each_user_their_own_data_under_one_notification_and_one_key() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    subscribe_device(state, &service, "ada-laptop", "other", None, Some("ada")).await;
    let body = json!({
        "batch": [
            { "to": { "user": "ada" }, "data": { "item": "Red shoes", "sku": "red 42/eu", "price": 59.5 } },
            { "to": { "user": "bob" }, "data": { "item": "Hat" } },
            { "to": { "user": "nobody" }, "data": { "item": "Scarf" } }
        ],
        "idempotency_key": "restock-2026-12-03",
        "notification": {
            "title": "{data.item} is back, {user.first_name|friend}",
            "body": "Now {data.price|at the usual price}",
            "url": "/products/{data.sku|new}"
        }
    });
    let reply = notify_accepted(state, body.clone()).await;
    assert_eq!(reply["recipients"], 3, "Ada's two devices and Bob's one: {reply}");
    let again = notify_accepted(state, body).await;
    assert_eq!(
        (&again["id"], &again["recipients"]),
        (&reply["id"], &reply["recipients"]),
        "one key: sent once"
    );
    assert_eq!(round(state).await, 3);
    let got = pushes(&service);
    assert_eq!(got.len(), 3, "{got:?}");
    for device in ["ada-phone", "ada-laptop"] {
        assert_eq!(got[device]["title"], "Red shoes is back, Ada");
        assert_eq!(got[device]["body"], "Now 59.5");
        assert_eq!(
            got[device]["url"], "/products/red%2042%2Feu",
            "a value fills its part of the link"
        );
    }
    assert_eq!(got["bob-laptop"]["title"], "Hat is back, friend");
    assert_eq!(got["bob-laptop"]["body"], "Now at the usual price");
    assert_eq!(got["bob-laptop"]["url"], "/products/new");
}

#[tokio::test]
async fn a_payload_too_large_for_one_recipient_is_counted_and_never_sent_nor_cut() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    // 16 values of 200 bytes: 3.2 kB of body for Ada alone.
    let names: Vec<String> = (0..16).map(|i| format!("p{i}")).collect();
    let long: serde_json::Map<String, Value> = names.iter().map(|n| (n.clone(), json!("x".repeat(200)))).collect();
    let body_template: String = names.iter().map(|n| format!("{{data.{n}|}}")).collect();
    let reply = notify_accepted(
        state,
        json!({
            "batch": [{ "to": { "user": "ada" }, "data": long }, { "to": { "user": "bob" }, "data": { "p0": "short" } }],
            "notification": { "title": "Your list", "body": body_template }
        }),
    )
    .await;
    assert_eq!(
        (reply["recipients"].as_i64(), reply["too_large"].as_i64()),
        (Some(2), Some(1)),
        "{reply}"
    );
    assert_eq!(round(state).await, 1);
    let got = pushes(&service);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["bob-laptop"]);
    assert_eq!(got["bob-laptop"]["body"], "short");
    let counts = notification_counts(state, reply["id"].as_str().expect("id")).await;
    assert_eq!(
        (&counts["delivered"], &counts["too_large"]),
        (&json!(1), &json!(1)),
        "{counts}"
    );
}

#[tokio::test]
async fn a_dry_run_says_who_would_get_what_and_writes_nothing() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    let (status, answer) = notify(
        state,
        &json!({
            "to": { "topic": "news" },
            "dry_run": true,
            "notification": { "title": "Hi {user.first_name|there}", "body": "{user.plan|}" }
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["dry_run"], true);
    assert_eq!(answer["recipients"], 3);
    assert_eq!(answer["by_push_service"], json!({ "127.0.0.1": 3 }), "{answer}");
    assert_eq!(answer["defaulted_time_zone"], 2, "only Ada's zone is known");
    assert_eq!(answer["too_large"], 0);
    assert_eq!(answer["fallbacks"], json!({ "user.first_name": 2, "user.plan": 1 }));
    let samples = answer["samples"].as_array().expect("samples");
    let titles: Vec<(&Value, &str)> = samples
        .iter()
        .map(|s| (&s["user"], s["payload"]["title"].as_str().expect("title")))
        .collect();
    assert_eq!(
        titles,
        [
            (&json!("ada"), "Hi Ada"),
            (&json!("bob"), "Hi there"),
            (&Value::Null, "Hi there")
        ]
    );
    assert!(samples
        .iter()
        .all(|s| s["subscription"].is_i64() && s["bytes"].is_u64()));
    assert_eq!(samples[2]["payload"].get("body"), None, "an empty body is left out");
    // A plain notification's dry run counts too, and a batch says who has no device.
    let (status, plain) = notify(
        state,
        &json!({ "to": { "all": true }, "dry_run": true, "notification": { "title": "Sale" } }),
    )
    .await;
    assert_eq!(
        (status, &plain["recipients"], &plain["samples"][0]["payload"]["title"]),
        (StatusCode::OK, &json!(3), &json!("Sale"))
    );
    let (status, batch) = notify(
        state,
        &json!({ "batch": [{ "to": { "user": "ada" } }, { "to": { "user": "nobody" } }], "dry_run": true, "notification": { "title": "Hi" } }),
    )
    .await;
    assert_eq!(
        (status, &batch["recipients"], &batch["batch_users_without_devices"]),
        (StatusCode::OK, &json!(1), &json!(1)),
        "{batch}"
    );
    assert_eq!(state.store.queue_depth().await.expect("depth"), 0, "nothing enqueued");
    assert_eq!(round(state).await, 0);
}

#[tokio::test]
async fn an_ab_test_gives_each_device_its_variant_withholds_the_holdout_and_judges_click_through() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let mut devices = Vec::new();
    for i in 0..240 {
        let name = format!("d{i}");
        let id = subscribe_device(state, &service, &name, "ab", None, None).await;
        devices.push((name, id));
    }
    let reply = notify_accepted(
        state,
        json!({
            "to": { "topic": "ab" },
            "notification": {
                "title": "Bill replied",
                "body": "See the thread",
                "holdout": 0.2,
                "variants": [{ "id": "a" }, { "id": "b", "title": "Bill is waiting for you", "weight": 1 }]
            }
        }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    assert_eq!(
        round(state).await,
        240 - usize::try_from(reply["holdout"].as_u64().expect("holdout")).expect("small")
    );
    // Each device got what the core's assignment of (device, notification) says.
    let arms = [
        askwell::experiment::Arm { id: "a", weight: 1.0 },
        askwell::experiment::Arm { id: "b", weight: 1.0 },
    ];
    let got = pushes(&service);
    let mut groups: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for (name, sub) in &devices {
        let expected = askwell::experiment::assign(&sub.to_string(), &id, 0.2, &arms)
            .label()
            .to_owned();
        let title = got.get(name).map(|p| p["title"].as_str().expect("title"));
        let want = match expected.as_str() {
            "a" => Some("Bill replied"),
            "b" => Some("Bill is waiting for you"),
            _ => None,
        };
        assert_eq!(title, want, "{name} is in {expected}");
        let group = match expected.as_str() {
            "a" => "a",
            "b" => "b",
            _ => "holdout",
        };
        if let Some(push) = got.get(name) {
            groups.entry(group).or_default().push(push);
        } else {
            groups.entry(group).or_default();
        }
    }
    let (a, b) = (groups["a"].len(), groups["b"].len());
    assert_eq!(reply["holdout"], 240 - a - b, "{reply}");
    assert!((20..=75).contains(&(240 - a - b)) && a > 60 && b > 60, "a {a}, b {b}");
    // b is clicked far more often than a: 50% against 10%.
    let mut events = Vec::new();
    for (group, share) in [("a", 10), ("b", 2)] {
        for push in groups[group].iter().step_by(share) {
            events.push(json!({ "type": "notification_clicked", "delivery": push["delivery"] }));
        }
    }
    post_events(state, &events).await;
    let (status, report) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let experiment = &report["experiment"];
    assert_eq!(experiment["baseline"], "a");
    assert_eq!(experiment["holdout"], reply["holdout"]);
    let variants = experiment["variants"].as_array().expect("variants");
    assert_eq!(
        (variants[0]["id"].as_str(), variants[0]["delivered"].as_u64()),
        (Some("a"), Some(a as u64))
    );
    assert_eq!(variants[1]["clicked"].as_u64(), Some(b.div_ceil(2) as u64));
    let verdict = &experiment["comparisons"][0]["verdict"];
    assert_eq!(verdict["outcome"], "better", "{experiment}");
    assert!(
        verdict["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("b beats a on click-through")),
        "{verdict}"
    );
    assert_eq!(report["counts"]["withheld"], reply["holdout"]);
    // Too little data is said as such, never called a winner.
    let small = notify_accepted(
        state,
        json!({ "to": { "topic": "ab" }, "dry_run": null, "notification": { "title": "x", "variants": [{ "id": "a" }, { "id": "b", "title": "y" }] } }),
    )
    .await;
    let (_, report) = call(
        state,
        "GET",
        &format!("/v1/notifications/{}", small["id"].as_str().expect("id")),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        report["experiment"]["comparisons"][0]["verdict"]["outcome"], "need_more_data",
        "{report}"
    );
}

/// A variant may test its buttons too: each device's push carries its own
/// variant's actions (templated like the notification's), and a variant
/// that leaves them out keeps the notification's.
#[tokio::test]
async fn each_variant_carries_its_own_buttons() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    // Forty users, each with one device; all but u1 have a first name.
    let mut devices = Vec::new();
    for i in 0..40 {
        let (name, user) = (format!("d{i}"), format!("u{i}"));
        let traits = if i == 1 {
            json!({})
        } else {
            json!({ "first_name": format!("N{i}") })
        };
        put_user(state, &user, json!({ "traits": traits })).await;
        let id = subscribe_device(state, &service, &name, "thread:bill", None, Some(&user)).await;
        devices.push((name, id));
    }
    let reply = notify_accepted(
        state,
        json!({
            "to": { "topic": "thread:bill" },
            "notification": {
                "title": "Bill replied",
                "actions": [{ "action": "open", "title": "Open" }],
                "variants": [
                    { "id": "a" },
                    { "id": "b", "actions": [
                        { "action": "reply", "title": "Reply, {user.first_name|friend}" },
                        { "action": "askwell:mute-topic", "title": "Mute this thread" }
                    ] },
                    { "id": "c", "actions": [] }
                ]
            }
        }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    assert_eq!(round(state).await, 40);
    let arms = ["a", "b", "c"].map(|id| askwell::experiment::Arm { id, weight: 1.0 });
    let got = pushes(&service);
    let mut seen = BTreeMap::new();
    for (name, sub) in &devices {
        let variant = askwell::experiment::assign(&sub.to_string(), &id, 0.0, &arms)
            .label()
            .to_owned();
        let push = &got[name];
        // No buttons is no `actions` field, as the worker's payload writes it.
        let titles: Vec<&str> = (push
            .get("actions")
            .map(|a| a.as_array().expect("a list"))
            .into_iter()
            .flatten())
        .map(|a| a["title"].as_str().expect("title"))
        .collect();
        let who = if name == "d1" {
            "friend".to_owned()
        } else {
            name.replace('d', "N")
        };
        let want: Vec<String> = match variant.as_str() {
            "a" => vec!["Open".into()],
            "b" => vec![format!("Reply, {who}"), "Mute this thread".into()],
            _ => vec![],
        };
        assert_eq!(titles, want, "{name} is in {variant}: {push}");
        if variant == "b" {
            assert_eq!(push["topic"], "thread:bill", "a mute button says what it mutes: {push}");
        }
        *seen.entry(variant).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "forty devices fall in all three variants: {seen:?}");
}

#[tokio::test]
async fn bad_variants_are_refused_naming_the_field() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let with = |variants: Value, holdout: Value| json!({ "to": { "all": true }, "notification": { "title": "Hi", "variants": variants, "holdout": holdout } });
    for (body, expected) in [
        (
            with(json!([{ "id": "a" }]), Value::Null),
            "notification.variants: 2 to 8 variants",
        ),
        (
            with(json!([{ "id": "a" }, { "id": "a" }]), Value::Null),
            "notification.variants[1].id: already variants[0]'s",
        ),
        (
            with(json!([{ "id": "a" }, { "id": "holdout" }]), Value::Null),
            "notification.variants[1].id: 1 to 32 of",
        ),
        (
            with(json!([{ "id": "a" }, { "id": "b", "weight": 0 }]), Value::Null),
            "notification.variants[1].weight: a number above 0",
        ),
        (
            with(json!([{ "id": "a" }, { "id": "b", "title": " " }]), Value::Null),
            "notification.variants[1].title: not blank",
        ),
        (
            with(json!([{ "id": "a" }, { "id": "b", "title": "{event.x}" }]), Value::Null),
            "notification.variants[1].title: unknown placeholder {event.x}",
        ),
        (
            with(
                json!([{ "id": "a" }, { "id": "b", "url": "https://{user.host}/" }]),
                Value::Null,
            ),
            "notification.variants[1].url: expected an http(s) or relative URL",
        ),
        (
            with(
                json!([{ "id": "a" }, { "id": "b", "actions": [{ "action": "askwell:nope", "title": "x" }] }]),
                Value::Null,
            ),
            "notification.variants[1].actions[0].action: \"askwell:nope\" is not one of Askwell's buttons",
        ),
        (
            with(
                json!([{ "id": "a" }, { "id": "b", "actions": [{ "action": "askwell:mute-topic", "title": "Mute" }] }]),
                Value::Null,
            ),
            "notification.variants[1].actions[0]: askwell:mute-topic needs something to mute",
        ),
        (
            with(
                json!([{ "id": "a" }, { "id": "b", "actions": [{ "action": "go", "title": "{event.x}" }] }]),
                Value::Null,
            ),
            "notification.variants[1].actions[0].title: unknown placeholder {event.x}",
        ),
        (
            with(Value::Null, json!(0.6)),
            "notification.holdout: a share from 0 to 0.5",
        ),
    ] {
        let (code, message) = refused(state, body.clone()).await;
        assert_eq!(code, "invalid_notification", "{body}");
        assert!(message.contains(expected), "{body}: {message}");
    }
}

/// Conversions are a user's events, so a variant counts each user it
/// reached once, however many of their devices got it: three phones of one
/// buyer are one conversion of one person, not three independent trials.
#[tokio::test]
async fn a_users_devices_count_once_in_a_variants_conversion() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let mut devices = Vec::new();
    for i in 0..20 {
        let user = format!("multi{i}");
        put_user(state, &user, json!({ "traits": {} })).await;
        for d in 0..3 {
            let name = format!("{user}-{d}");
            let id = subscribe_device(state, &service, &name, "multi", None, Some(&user)).await;
            devices.push((user.clone(), id));
        }
    }
    let reply = notify_accepted(
        state,
        json!({
            "to": { "topic": "multi" },
            "notification": { "title": "Back in stock", "variants": [{ "id": "a" }, { "id": "b", "title": "It is back" }] },
            "conversion": { "event": "purchased", "within": { "hours": 1 } }
        }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    round(state).await;
    // Every other user buys.
    let events: Vec<Value> = (0..20)
        .step_by(2)
        .map(|i| json!({ "user": format!("multi{i}"), "name": "purchased" }))
        .collect();
    let (status, answer) = call(
        state,
        "POST",
        "/v1/track",
        Some(&json!({ "events": events }).to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let arms = [
        askwell::experiment::Arm { id: "a", weight: 1.0 },
        askwell::experiment::Arm { id: "b", weight: 1.0 },
    ];
    let mut users_of: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (user, sub) in &devices {
        let arm = askwell::experiment::assign(&sub.to_string(), &id, 0.0, &arms)
            .label()
            .to_owned();
        users_of.entry(arm).or_default().insert(user.clone());
    }
    let (_, report) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    for variant in report["experiment"]["variants"].as_array().expect("variants") {
        let users = &users_of[variant["id"].as_str().expect("id")];
        let buyers = users
            .iter()
            .filter(|u| u.trim_start_matches("multi").parse::<u32>().is_ok_and(|n| n % 2 == 0))
            .count();
        assert_eq!(
            (&variant["reachable"], &variant["converted"]),
            (&json!(users.len()), &json!(buyers)),
            "{variant}"
        );
    }
}

#[tokio::test]
async fn a_holdout_measures_whether_the_push_lifts_conversion() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    let mut devices = Vec::new();
    for i in 0..160 {
        let user = format!("u{i}");
        let plan = if i % 4 == 0 { "pro" } else { "free" };
        put_user(state, &user, json!({ "traits": { "plan": plan } })).await;
        let id = subscribe_device(state, &service, &user, "lift", None, Some(&user)).await;
        devices.push((user, id));
    }
    let reply = notify_accepted(
        state,
        json!({
            "to": { "topic": "lift" },
            "notification": { "title": "Your cart misses you", "holdout": 0.3 },
            "conversion": { "event": "purchased", "within": { "hours": 1 } }
        }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    round(state).await;
    let got = pushes(&service);
    // Half of those sent to buy, one in ten of the holdout; three clicked
    // and bought. A purchase by someone else, or of another name, is not one.
    let mut events = Vec::new();
    let (mut sent, mut held) = (0, 0);
    for (user, _) in &devices {
        let buys = if got.contains_key(user) {
            sent += 1;
            sent % 2 == 0
        } else {
            held += 1;
            held % 10 == 0
        };
        if buys {
            events.push(json!({ "user": user, "name": "purchased" }));
        }
        events.push(json!({ "user": user, "name": "viewed" }));
    }
    let clicks: Vec<Value> = got
        .iter()
        .filter(|(user, _)| events.iter().any(|e| e["user"] == **user && e["name"] == "purchased"))
        .take(3)
        .map(|(_, push)| json!({ "type": "notification_clicked", "delivery": push["delivery"] }))
        .collect();
    post_events(state, &clicks).await;
    let (status, answer) = call(
        state,
        "POST",
        "/v1/track",
        Some(&json!({ "events": events }).to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (_, report) = call(state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    let experiment = &report["experiment"];
    assert_eq!(experiment["baseline"], "sent", "{experiment}");
    let conversion = &experiment["conversion"];
    assert_eq!(
        (&conversion["event"], &conversion["within_ms"]),
        (&json!("purchased"), &json!(3_600_000))
    );
    assert_eq!(conversion["holdout"]["reachable"], held, "{conversion}");
    assert_eq!(conversion["holdout"]["converted"], held / 10);
    let variant = &experiment["variants"][0];
    assert_eq!(
        (&variant["reachable"], &variant["converted"]),
        (&json!(sent), &json!(sent / 2)),
        "{variant}"
    );
    assert_eq!(variant["converted_after_click"], 3);
    let lift = &conversion["lift"][0]["verdict"];
    assert_eq!(lift["outcome"], "better", "{lift}");
    assert!(
        lift["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("sent beats holdout on conversion")),
        "{lift}"
    );
    // The same report per plan: the groups add up to the whole.
    let (status, split) = call(
        state,
        "GET",
        &format!("/v1/notifications/{id}?by=trait:plan"),
        None,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{split}");
    let by = &split["experiment"]["by"];
    assert_eq!(by["trait"], "plan");
    let groups = by["groups"].as_array().expect("groups");
    assert_eq!(
        groups.iter().map(|g| g["value"].clone()).collect::<Vec<_>>(),
        [json!("free"), json!("pro")]
    );
    let reached: u64 = groups
        .iter()
        .map(|g| g["report"]["variants"][0]["reachable"].as_u64().expect("reachable"))
        .sum();
    assert_eq!(reached, sent);
    assert_eq!(
        split["experiment"]["variants"], experiment["variants"],
        "the whole is unchanged"
    );
    for query in ["by=plan", "by=trait:pl%20an", "by=trait:plan&x=1", "from=0"] {
        let (status, reply) = call(
            state,
            "GET",
            &format!("/v1/notifications/{id}?{query}"),
            None,
            Some(TOKEN),
        )
        .await;
        assert_eq!(
            (status, &reply["error"]["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_query")),
            "{query}: {reply}"
        );
    }
    // A conversion needs a test to be measured by, and a known shape.
    for (body, expected) in [
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi" }, "conversion": { "event": "purchased" } }),
            "conversion: only with notification.variants or notification.holdout",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi", "holdout": 0.1 }, "conversion": { "event": "bad name" } }),
            "conversion.event: expected an event name",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi", "holdout": 0.1 }, "conversion": { "event": "p", "within": { "weeks": 1 } } }),
            "conversion.within",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi", "holdout": 0.1 }, "conversion": { "event": "p", "within": { "days": 31 } } }),
            "conversion.within: at most 30 days",
        ),
        (
            json!({ "to": { "all": true }, "notification": { "title": "Hi", "holdout": 0.1 }, "conversion": { "event": "p", "in": 1 } }),
            "conversion.\"in\": unknown field",
        ),
    ] {
        let (code, message) = refused(state, body.clone()).await;
        assert_eq!(code, "invalid_notification", "{body}");
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[tokio::test]
async fn the_dashboards_list_and_csv_show_each_notifications_funnel_and_variants() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let service = push_service_for(state).await;
    three_recipients(state, &service).await;
    let plain = notify_accepted(
        state,
        json!({ "to": { "topic": "news" }, "notification": { "title": "=cmd, \"now\"" } }),
    )
    .await;
    let tested = notify_accepted(
        state,
        json!({ "to": { "topic": "news" }, "notification": { "title": "Bill replied",
            "variants": [{ "id": "a" }, { "id": "b", "title": "Bill is waiting" }] } }),
    )
    .await;
    // A journey's send is not listed: journeys have their own report.
    state
        .store
        .notifications_create_many(&[askwell_server::store::NewNotification {
            id: "journey-send".into(),
            idempotency_key: Some("journey:i-1:0".into()),
            payload: r#"{"title":"We miss you"}"#.into(),
            ttl: 60,
            urgency: None,
            topic: None,
            category: None,
            to: askwell_server::store::Recipients::User("ada".into()),
        }])
        .await
        .expect("journey send");
    assert_eq!(round(state).await, 7);
    // The plain one: shown on two devices, clicked on one.
    let plain_id = plain["id"].as_str().expect("id");
    let mut events = Vec::new();
    for (_, text) in service.received() {
        let push: Value = serde_json::from_str(&text).expect("JSON");
        let delivery = push["delivery"].as_str().expect("delivery").to_owned();
        if delivery.starts_with(plain_id) {
            events.push(json!({ "type": "notification_shown", "delivery": delivery }));
            if events.len() == 1 {
                events.push(json!({ "type": "notification_clicked", "delivery": delivery }));
            }
        }
    }
    events.truncate(3);
    post_events(state, &events).await;

    let (status, list) = call(state, "GET", "/v1/notifications", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["notifications"].as_array().expect("list");
    let ids: Vec<&str> = listed.iter().filter_map(|n| n["id"].as_str()).collect();
    assert_eq!(
        ids,
        [tested["id"].as_str().expect("id"), plain_id],
        "newest first, no journey send"
    );
    let first = &listed[1];
    assert_eq!(first["title"], "=cmd, \"now\"");
    assert_eq!(
        (first["topic"].as_str(), first["experiment"].as_bool()),
        (Some("news"), Some(false))
    );
    let counts = &first["counts"];
    assert_eq!(
        (
            counts["delivered"].as_i64(),
            counts["shown"].as_i64(),
            counts["clicked"].as_i64()
        ),
        (Some(3), Some(2), Some(1)),
        "{counts}"
    );
    assert_eq!(listed[0]["experiment"], true);

    let request = axum::http::Request::get("/v1/notifications.csv?limit=10")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(askwell_server::app(state.clone()), request)
        .await
        .expect("response");
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let csv = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "notification,created_ms,title,variant,recipients,delivered,shown,clicked,dismissed,click_through,\
         click_through_low,click_through_high,held,capped,muted,withheld,verdict"
    );
    assert_eq!(
        lines.len(),
        1 + 1 + 2 + 1,
        "the test, its two variants, the plain one: {csv}"
    );
    assert!(lines[1].contains(",Bill replied,all,3,3,"), "{csv}");
    assert!(
        lines[2].contains(",Bill replied,a,") && lines[2].ends_with(",baseline"),
        "{csv}"
    );
    assert!(
        lines[3].contains(",Bill replied,b,") && lines[3].contains("not enough data yet"),
        "{csv}"
    );
    // Quoted, and defused: a spreadsheet shows the title, never runs it.
    assert!(
        lines[4].starts_with(&format!("{plain_id},"))
            && lines[4].contains(r#","'=cmd, ""now""",all,3,3,2,1,0,0.3333,"#),
        "{csv}"
    );
    for bad in ["limit=0", "limit=201", "limit=x", "page=2"] {
        let (status, reply) = call(state, "GET", &format!("/v1/notifications?{bad}"), None, Some(TOKEN)).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{bad}"
        );
    }
}

/// Every URL a push carries is http(s) or relative: the page a click opens
/// (the notification's and each button's) and the images the browser
/// fetches. A `javascript:` or `data:` URL is refused at its own field,
/// literal or templated, in the notification and in a variant alike.
#[tokio::test]
async fn a_script_or_data_url_is_refused_in_every_url_field() {
    let db = inspectable_with(settings()).await;
    let state = &db.state;
    let notification = |extra: Value| {
        let mut notification = json!({ "title": "Hi" });
        for (key, value) in extra.as_object().expect("fields") {
            notification[key] = value.clone();
        }
        json!({ "to": { "all": true }, "notification": notification })
    };
    let button = |field: &str, url: &str| json!([{ "action": "go", "title": "Go", field: url }]);
    for hostile in [
        "javascript:alert(document.domain)",
        " JavaScript:alert(1)",
        "data:text/html,<script>1</script>",
    ] {
        for (extra, field) in [
            (json!({ "url": hostile }), "notification.url"),
            (json!({ "icon": hostile }), "notification.icon"),
            (json!({ "image": hostile }), "notification.image"),
            (json!({ "badge": hostile }), "notification.badge"),
            (
                json!({ "actions": button("url", hostile) }),
                "notification.actions[0].url",
            ),
            (
                json!({ "actions": button("icon", hostile) }),
                "notification.actions[0].icon",
            ),
            (
                json!({ "variants": [{ "id": "a" }, { "id": "b", "actions": button("url", hostile) }] }),
                "notification.variants[1].actions[0].url",
            ),
        ] {
            let body = notification(extra);
            let (code, message) = refused(state, body.clone()).await;
            assert_eq!(code, "invalid_notification", "{body}");
            assert!(
                message.contains(&format!("{field}: expected an http(s) or relative URL")),
                "{body}: {message}"
            );
        }
    }
    for fine in ["/threads/7", "https://example.com/a?b=c#d", "thread/7"] {
        let body = notification(json!({ "url": fine, "icon": fine, "actions": button("url", fine) }));
        let (status, reply) = notify(state, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body} → {reply}");
    }
}
