//! The funnel through the API: event ingestion (validation with reasons,
//! deduplication, sendBeacon's text/plain, synthetic data kept apart) and
//! `GET /v1/stats` over events, real deliveries and clicks attributed to the
//! prompt that won the subscription. Runs on SQLite, and on PostgreSQL when
//! the test command provides one.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::push_service::{PushService, Subscriber};
use support::*;
use tower::ServiceExt;

// RFC 8291 Appendix A's user agent key: a real point on P-256.
const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

fn now() -> i64 {
    askwell_server::store::now_ms()
}

async fn post_events(state: &askwell_server::AppState, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    call(state, "POST", "/v1/events", Some(&body.to_string()), token).await
}

fn event(id: &str, kind: &str, variant: &str, anon: &str, at: i64) -> Value {
    json!({ "id": id, "type": kind, "prompt": "reply", "variant": variant, "trigger": "message_sent", "anon": anon, "at": at })
}

#[tokio::test]
async fn ingestion_keeps_valid_events_and_explains_each_rejection() {
    let state = state(true).await;
    let t = now();
    let batch = json!({ "events": [
        event("ok1", "prompt_shown", "a", "d1", t),
        event("future", "prompt_shown", "a", "d1", t + 3_600_000),
        { "id": "c0", "type": "conversion", "anon": "d1", "at": t },
        { "id": "srv", "type": "notification_delivered", "delivery": "n:1", "at": t },
        { "id": "long", "type": "prompt_shown", "prompt": "x".repeat(201) },
        { "id": "c1", "type": "conversion", "name": "replied", "prompt": "reply", "variant": "a", "anon": "d1", "at": t },
    ] });
    let (status, reply) = post_events(&state, batch.clone(), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["stored"].as_u64()),
        (Some(2), Some(2))
    );
    let reasons: Vec<&str> = reply["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["message"].as_str().expect("message"))
        .collect();
    assert_eq!(
        reasons,
        [
            "events[1].at: in the future",
            "events[2].name: a conversion needs a name",
            "events[3].type: notification_delivered is recorded by the server",
            "events[4].prompt: at most 200 characters",
        ]
    );
    let (_, again) = post_events(&state, batch, None).await;
    assert_eq!(again["stored"].as_u64(), Some(0), "deduplicated by id");
}

#[tokio::test]
async fn beacons_may_send_text_plain_and_synthetic_data_needs_the_admin_token() {
    let state = state(true).await;
    let body = json!({ "events": [event("b1", "prompt_dismissed", "a", "d1", now())] }).to_string();
    let request = Request::post("/v1/events")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(body))
        .expect("request");
    let response = askwell_server::app(state.clone())
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let _ = response.into_body().collect().await;

    let synthetic = json!({ "synthetic": true, "events": [event("s1", "prompt_shown", "a", "sim1", now())] });
    let (status, reply) = post_events(&state, synthetic.clone(), None).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = post_events(&state, synthetic, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (_, real) = stats(&state, "").await;
    let (_, simulated) = stats(&state, "?dataset=synthetic").await;
    assert_eq!(real["dataset"], "real");
    assert_eq!(
        variant(&real, "a")["counts"]["prompt_shown"].as_i64(),
        None,
        "synthetic never counts as real"
    );
    assert_eq!(variant(&real, "a")["counts"]["prompt_dismissed"].as_i64(), Some(1));
    assert_eq!(variant(&simulated, "a")["counts"]["prompt_shown"].as_i64(), Some(1));
}

async fn stats(state: &askwell_server::AppState, query: &str) -> (StatusCode, Value) {
    call(state, "GET", &format!("/v1/stats{query}"), None, Some(TOKEN)).await
}

fn variant<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["prompts"][0]["variants"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["variant"] == id))
        .unwrap_or(&Value::Null)
}

/// The page's `POST /v1/subscriptions` after `anon` said yes to variant
/// `variant` of prompt "reply": the server records `subscribed` from it.
async fn subscribe_after(state: &askwell_server::AppState, anon: &str, variant: &str) {
    use sha2::Digest;
    // The same device posts the same keys every time.
    use base64::Engine;
    let auth = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(anon.as_bytes())[..16]);
    let body = json!({
        "subscription": { "endpoint": format!("https://push.example.com/send/{anon}"), "keys": { "p256dh": P256DH, "auth": auth } },
        "anon": anon, "prompt": "reply", "variant": variant,
    });
    let (status, reply) = call(state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

/// Two devices subscribe after variant "b"; a push is delivered to both and
/// one click comes back from a worker that knows only the delivery id.
async fn deliver_and_click(state: &askwell_server::AppState, devices: [&str; 2]) {
    let service = PushService::start().await;
    for device in devices {
        let subscriber = Subscriber::new();
        let (p256dh, auth) = (subscriber.p256dh(), subscriber.auth_b64());
        let endpoint = service.subscribe(device, subscriber);
        let body = json!({
            "subscription": { "endpoint": endpoint, "keys": { "p256dh": p256dh, "auth": auth } },
            "topics": ["t"], "anon": device, "prompt": "reply", "variant": "b",
        });
        let (status, _) = call(state, "POST", "/v1/subscriptions", Some(&body.to_string()), None).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let notify = json!({ "to": { "topic": "t" }, "notification": { "title": "Bill replied" } });
    let (status, _) = call(state, "POST", "/v1/notify", Some(&notify.to_string()), Some(TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    deliverer(state, FAST).round().await.expect("round");
    let received = service.received();
    assert_eq!(received.len(), 2);
    let payload: Value = serde_json::from_str(&received[0].1).expect("payload");
    let click = json!({ "events": [{ "type": "notification_clicked", "delivery": payload["delivery"] }] });
    let (status, _) = post_events(state, click, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn forged_subscribed_events_cannot_decide_an_experiment() {
    let state = state(true).await;
    let t = now() - 60_000;
    let mut events = Vec::new();
    for i in 0..50 {
        events.push(event(&format!("a{i}"), "prompt_shown", "a", &format!("a-dev{i}"), t));
        events.push(event(&format!("b{i}"), "prompt_shown", "b", &format!("b-dev{i}"), t));
    }
    let (status, _) = post_events(&state, json!({ "events": events }), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let forged: Vec<Value> = (0..50)
        .map(|i| event(&format!("f{i}"), "subscribed", "b", &format!("b-dev{i}"), t))
        .chain([event("u1", "unsubscribed", "a", "a-dev1", t)])
        .collect();
    let (status, reply) = post_events(&state, json!({ "events": forged }), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "events[0].type: subscribed is recorded by the server"
    );
    subscribe_after(&state, "a-dev3", "a").await;
    // The page posts its subscription again on every visit: still one.
    subscribe_after(&state, "a-dev3", "a").await;
    let (_, report) = stats(&state, "").await;
    assert_eq!(variant(&report, "a")["counts"]["subscribed"].as_i64(), Some(1));
    assert_eq!(variant(&report, "b")["counts"]["subscribed"].as_i64(), None);
    let verdict = report["prompts"][0]["comparisons"][0]["verdict"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(verdict.starts_with("not enough data"), "{verdict}");
}

#[tokio::test]
async fn stats_count_the_funnel_per_variant_with_a_verdict() {
    let state = state(true).await;
    let (status, _) = call(&state, "GET", "/v1/stats", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, reply) = stats(&state, "?from=oops").await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );

    // 400 impressions per arm: a converts 2%, b 10%.
    let t = now() - 60_000;
    let mut events = Vec::new();
    for i in 0..400 {
        events.push(event(&format!("a{i}"), "prompt_shown", "a", &format!("a-dev{i}"), t));
        events.push(event(&format!("b{i}"), "prompt_shown", "b", &format!("b-dev{i}"), t));
        if i % 50 == 0 {
            subscribe_after(&state, &format!("a-dev{i}"), "a").await;
        }
        if i % 10 == 0 {
            // Two of b's subscribers get a real push below.
            if i >= 20 {
                subscribe_after(&state, &format!("b-dev{i}"), "b").await;
            }
            events.push(event(&format!("bg{i}"), "native_granted", "b", &format!("b-dev{i}"), t));
        }
    }
    // 1,000 events from one test client: past a page's budget, so as the admin.
    for chunk in events.chunks(100) {
        let (status, reply) = post_events(&state, json!({ "events": chunk }), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    }
    deliver_and_click(&state, ["b-dev0", "b-dev10"]).await;

    let (status, report) = stats(&state, "").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (a, b) = (variant(&report, "a"), variant(&report, "b"));
    assert_eq!(a["counts"]["prompt_shown"].as_i64(), Some(400));
    assert_eq!(a["counts"]["subscribed"].as_i64(), Some(8));
    assert_eq!(b["counts"]["subscribed"].as_i64(), Some(40));
    assert_eq!(b["opt_in"]["rate"].as_f64(), Some(0.1));
    // Delivered by the server and clicked in a worker: both attributed to b.
    assert_eq!(b["counts"]["notification_delivered"].as_i64(), Some(2));
    assert_eq!(b["counts"]["notification_clicked"].as_i64(), Some(1));
    assert_eq!(b["click_through"]["rate"].as_f64(), Some(0.5));
    assert_eq!(report["native"]["granted"].as_i64(), Some(40));
    let verdicts: Vec<&str> = report["prompts"][0]["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .map(|c| c["verdict"]["text"].as_str().expect("text"))
        .collect();
    assert_eq!(verdicts[0], "b beats a on opt-in, p < 0.001", "{verdicts:?}");
    let days = report["prompts"][0]["daily"].as_array().expect("daily");
    assert_eq!(days.iter().map(|d| d["shown"].as_i64().unwrap_or(0)).sum::<i64>(), 800);
    let delivered: i64 = report["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["statuses"]["delivered"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(delivered, 2);

    // A range before any of it is empty, not an error.
    let (status, empty) = stats(&state, &format!("?from={}&to={}", t - 10 * 86_400_000, t - 86_400_000)).await;
    assert_eq!(
        (status, empty["prompts"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

/// `GET /v1/stats.csv` with the admin token: status, headers and body text.
async fn stats_csv(state: &askwell_server::AppState, query: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut request = Request::get(format!("/v1/stats.csv{query}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = askwell_server::app(state.clone())
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, kind, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn stats_export_as_csv_one_row_per_variant_with_page_text_defused() {
    let state = state(true).await;
    let (status, _, _) = stats_csv(&state, "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = stats_csv(&state, "?dataset=fake", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("dataset:"), "{body}");

    let t = now() - 60_000;
    let mut events = vec![
        event("x1", "prompt_shown", "a", "d1", t),
        event("x2", "prompt_shown", "a", "d2", t),
        event("x4", "prompt_shown", "b", "d3", t),
    ];
    subscribe_after(&state, "d2", "a").await;
    // Any page may send events: a prompt id made to run in a spreadsheet.
    let mut hostile = event("x5", "prompt_shown", "a", "d4", t);
    hostile["prompt"] = json!("=HYPERLINK(\"http://evil.example\",\"x\")");
    events.push(hostile);
    let (status, reply) = post_events(&state, json!({ "events": events }), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");

    let (status, kind, csv) = stats_csv(&state, "", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 4, "a header and three variants:\n{csv}");
    let header: Vec<&str> = rows[0].split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let reply_a: Vec<&str> = rows
        .iter()
        .map(|r| r.split(',').collect::<Vec<_>>())
        .find(|r| r[at("prompt")] == "reply" && r[at("variant")] == "a")
        .expect("reply × a");
    assert_eq!(reply_a[at("prompt_shown")], "2");
    assert_eq!(reply_a[at("subscribed")], "1");
    assert_eq!(reply_a[at("opt_in")], "0.5000");
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        "the hostile id is quoted and cannot run:\n{csv}"
    );
}
