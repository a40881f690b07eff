//! Scheduled notifications (`POST /v1/notify` `deliver`) and cancellation
//! (`DELETE /v1/notifications/{id}`), against the honest local push service,
//! on SQLite and — with `ASKWELL_TEST_POSTGRES_URL` — on PostgreSQL.
//!
//! The server has no injectable clock: due times are read back from the
//! store (`notification_due_times`) and compared with the core's rule
//! evaluated just before and just after the request; what is sent when is
//! proved with `at` a second or two ahead and the real workers.

mod support;

use std::sync::Arc;
use std::time::Duration;

use askwell::journey::{zone, Deliver, LocalTime};
use askwell_server::store::now_ms;
use askwell_server::{AppState, Settings, Stop};
use axum::http::StatusCode;
use serde_json::{json, Value};
use support::*;

/// A test state whose default zone is `default_zone`.
async fn state_in(default_zone: &str) -> AppState {
    let mut state = state(true).await;
    let settings = Settings {
        default_time_zone: Some(zone(default_zone).expect("a zone")),
        ..(*state.settings).clone()
    };
    state.settings = Arc::new(settings);
    state
}

fn time(text: &str) -> LocalTime {
    LocalTime::parse(text).expect("HH:MM")
}

/// `rule` from `from_ms` in `zone_name`.
fn next(rule: Deliver, from_ms: i64, zone_name: &str) -> i64 {
    let zone = zone(zone_name).expect("a zone");
    i64::try_from(rule.next(u64::try_from(from_ms).expect("positive"), &zone)).expect("in range")
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).expect("in range").to_string()
}

/// The due time of subscription `sub` among `times`.
fn due_of(times: &[(i64, i64)], sub: i64) -> i64 {
    times
        .iter()
        .find(|(s, _)| *s == sub)
        .map(|(_, due)| *due)
        .unwrap_or_else(|| panic!("no delivery to {sub} in {times:?}"))
}

/// Runs `workers` delivery loops until the returned stop is raised.
fn run_workers(state: &AppState, workers: usize, config: askwell_server::delivery::DeliveryConfig) -> Stop {
    let stop = Stop::new();
    for _ in 0..workers {
        let deliverer = deliverer(state, config);
        tokio::spawn(deliverer.run(state.wake.clone(), stop.clone()));
    }
    stop
}

/// Waits (at most `limit`) until `done` holds for the notification's counts.
async fn wait_for(state: &AppState, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let counts = notification_counts(state, id).await;
        if done(&counts) {
            return counts;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {counts}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn count(counts: &Value, status: &str) -> i64 {
    counts[status]
        .as_i64()
        .unwrap_or_else(|| panic!("{status} in {counts}"))
}

#[tokio::test]
async fn each_recipient_is_due_at_nine_on_its_own_clock_and_the_answer_counts_them() {
    let state = state_in("Asia/Kolkata").await;
    let service = push_service_for(&state).await;
    // kim's backend set her zone; her device's own zone comes second.
    let (status, reply) = call(
        &state,
        "PUT",
        "/v1/users/kim",
        Some(&json!({ "traits": {}, "time_zone": "Pacific/Kiritimati" }).to_string()),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let kim = subscribe_device(&state, &service, "kim", "tz", Some("Asia/Tokyo"), Some("kim")).await;
    let ny = subscribe_device(&state, &service, "ny", "tz", Some("America/New_York"), None).await;
    let nowhere = subscribe_device(&state, &service, "nowhere", "tz", None, None).await;

    let before = now_ms();
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "tz" }, "notification": { "title": "Good morning" }, "deliver": { "local_time": "09:00" } }),
    )
    .await;
    let after = now_ms();
    let id = reply["id"].as_str().expect("id");
    assert_eq!(
        (&reply["recipients"], &reply["scheduled"], &reply["defaulted_time_zone"]),
        (&json!(3), &json!(3), &json!(1)),
        "{reply}"
    );

    let nine = Deliver::At(time("09:00"));
    let times = state.store.notification_due_times(id).await.expect("due times");
    let mut seen = Vec::new();
    for (sub, zone) in [
        (kim, "Pacific/Kiritimati"),
        (ny, "America/New_York"),
        (nowhere, "Asia/Kolkata"),
    ] {
        let due = due_of(&times, sub);
        let expected = [next(nine, before, zone), next(nine, after, zone)];
        assert!(expected.contains(&due), "{zone}: {due} not in {expected:?}");
        assert!(due > after && due <= after + 24 * 3_600_000, "{zone}: within a day");
        let local = jiff::Timestamp::from_millisecond(due)
            .expect("in range")
            .to_zoned(askwell::journey::zone(zone).expect("zone"));
        assert_eq!(
            (local.hour(), local.minute(), local.second()),
            (9, 0, 0),
            "{zone}: {local}"
        );
        seen.push(due);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 3, "three different instants: {times:?}");

    let counts = notification_counts(&state, id).await;
    assert_eq!(
        (count(&counts, "scheduled"), count(&counts, "queued")),
        (3, 0),
        "{counts}"
    );
    let claimed = deliverer(&state, FAST).round().await.expect("round");
    assert_eq!((claimed, service.received_count()), (0, 0), "nothing is due yet");
}

#[tokio::test]
async fn a_scheduled_delivery_is_not_sent_before_its_time_and_is_sent_after() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    for id in ["a", "b"] {
        subscribe_device(&state, &service, id, "soon", None, None).await;
    }
    let stop = run_workers(&state, 2, FAST);
    let at = now_ms() + 2_000;
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "soon" }, "notification": { "title": "In two seconds" }, "deliver": { "at": rfc3339(at) } }),
    )
    .await;
    assert_eq!(
        (&reply["recipients"], &reply["scheduled"], &reply["defaulted_time_zone"]),
        (&json!(2), &json!(2), &json!(0)),
        "{reply}"
    );
    let id = reply["id"].as_str().expect("id").to_owned();
    // Half a second before it is due: nothing sent, both still scheduled.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(service.received_count(), 0);
    assert_eq!(count(&notification_counts(&state, &id).await, "scheduled"), 2);
    // The idle workers poll at least every second: sent soon after.
    let counts = wait_for(&state, &id, Duration::from_secs(10), |c| c["delivered"] == 2).await;
    assert!(now_ms() >= at);
    assert_eq!((service.received_count(), count(&counts, "scheduled")), (2, 0));
    stop.raise();
}

#[tokio::test]
async fn a_window_sends_now_inside_it_and_at_its_next_start_outside() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    // A window from an hour before the current UTC hour to two hours after:
    // UTC is inside it, Dhaka (UTC+6, no DST) outside.
    let hour = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).hour();
    let (start, end) = (
        format!("{:02}:00", (hour + 23) % 24),
        format!("{:02}:00", (hour + 2) % 24),
    );
    let utc = subscribe_device(&state, &service, "utc", "w", Some("UTC"), None).await;
    let dhaka = subscribe_device(&state, &service, "dhaka", "w", Some("Asia/Dhaka"), None).await;

    let before = now_ms();
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "w" }, "notification": { "title": "Open hours" }, "deliver": { "window": [start, end] } }),
    )
    .await;
    let after = now_ms();
    assert_eq!(
        (&reply["recipients"], &reply["scheduled"], &reply["defaulted_time_zone"]),
        (&json!(2), &json!(1), &json!(0)),
        "{reply}"
    );
    let id = reply["id"].as_str().expect("id");
    let times = state.store.notification_due_times(id).await.expect("due times");
    let inside = due_of(&times, utc);
    assert!((before..=after).contains(&inside), "due now: {inside}");
    let rule = Deliver::Within(time(&start), time(&end));
    let outside = due_of(&times, dhaka);
    assert!(
        [next(rule, before, "Asia/Dhaka"), next(rule, after, "Asia/Dhaka")].contains(&outside),
        "{outside}"
    );
    let local = jiff::Timestamp::from_millisecond(outside)
        .expect("in range")
        .to_zoned(askwell::journey::zone("Asia/Dhaka").expect("zone"));
    assert_eq!(format!("{:02}:{:02}", local.hour(), local.minute()), start);

    // The one inside is sent now; the other waits for its window.
    deliverer(&state, FAST).round().await.expect("round");
    let received: Vec<String> = service.received().into_iter().map(|(who, _)| who).collect();
    assert_eq!(received, ["utc"]);
    let counts = notification_counts(&state, id).await;
    assert_eq!(
        (count(&counts, "delivered"), count(&counts, "scheduled")),
        (1, 1),
        "{counts}"
    );

    // With `at`: not before it, then the window (here: inside it at `at`).
    let at = now_ms() + 600_000;
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "w" }, "notification": { "title": "Later" }, "deliver": { "at": rfc3339(at), "window": [start, end] } }),
    )
    .await;
    let times = state
        .store
        .notification_due_times(reply["id"].as_str().expect("id"))
        .await
        .expect("due times");
    assert_eq!(due_of(&times, utc), at);
    assert_eq!(due_of(&times, dhaka), next(rule, at, "Asia/Dhaka"));
    assert_eq!(reply["scheduled"], 2);
}

#[tokio::test]
async fn cancelling_before_the_due_time_sends_nothing_and_counts_the_cancelled() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    for id in ["a", "b", "c"] {
        subscribe_device(&state, &service, id, "promo", None, None).await;
    }
    let at = now_ms() + 1_000;
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "promo" }, "notification": { "title": "Sale" }, "deliver": { "at": rfc3339(at) } }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    let uri = format!("/v1/notifications/{id}");

    let (status, reply) = call(&state, "DELETE", &uri, None, None).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
    );
    let (status, reply) = call(&state, "DELETE", &uri, None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["id"], id);
    let cancelled = &reply["counts"];
    assert_eq!(
        (
            count(cancelled, "cancelled"),
            count(cancelled, "scheduled"),
            count(cancelled, "queued")
        ),
        (3, 0, 0),
        "{reply}"
    );

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let claimed = deliverer(&state, FAST).round().await.expect("round");
    assert_eq!(
        (claimed, service.received_count()),
        (0, 0),
        "nothing sent after its due time"
    );
    assert_eq!(notification_counts(&state, &id).await, *cancelled);
    // Again: nothing left to cancel, the same counts.
    let (status, again) = call(&state, "DELETE", &uri, None, Some(TOKEN)).await;
    assert_eq!((status, &again["counts"]), (StatusCode::OK, cancelled));

    // The stats count them too (the day's statuses).
    let (status, stats) = call(&state, "GET", "/v1/stats", None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let day = stats["deliveries"]
        .as_array()
        .and_then(|days| days.last())
        .expect("today");
    assert_eq!(day["statuses"]["cancelled"], 3, "{day}");

    // A scheduled one shows as scheduled in the stats.
    let later = notify_accepted(
        &state,
        json!({ "to": { "topic": "promo" }, "notification": { "title": "Tomorrow" }, "deliver": { "local_time": "09:00" } }),
    )
    .await;
    assert_eq!(later["scheduled"], 3);
    let (_, stats) = call(&state, "GET", "/v1/stats", None, Some(TOKEN)).await;
    let day = stats["deliveries"].as_array().and_then(|d| d.last()).expect("today");
    assert_eq!(
        (&day["statuses"]["scheduled"], &day["statuses"]["queued"]),
        (&json!(3), &Value::Null),
        "{day}"
    );
}

#[tokio::test]
async fn a_cancel_racing_the_workers_ends_every_delivery_once_as_sent_or_cancelled() {
    const N: usize = 200;
    let state = state(true).await;
    let service = push_service_for(&state).await;
    slow_subscribers(&state.store, &service, N, "race", Duration::from_millis(50)).await;
    let config = askwell_server::delivery::DeliveryConfig { batch: 20, ..FAST };
    let stop = run_workers(&state, 2, config);
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "race" }, "notification": { "title": "Race" } }),
    )
    .await;
    let id = reply["id"].as_str().expect("id").to_owned();
    // Cancel once the workers are sending: several admins at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.received_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancels: Vec<_> = (0..4)
        .map(|_| {
            let (state, uri) = (state.clone(), format!("/v1/notifications/{id}"));
            tokio::spawn(async move { call(&state, "DELETE", &uri, None, Some(TOKEN)).await })
        })
        .collect();
    for cancel in cancels {
        let (status, reply) = cancel.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let total = |c: &Value| count(c, "delivered") + count(c, "cancelled");
    let n = i64::try_from(N).expect("small");
    let counts = wait_for(&state, &id, Duration::from_secs(30), |c| total(c) == n).await;
    stop.raise();
    assert_eq!(
        (
            count(&counts, "queued"),
            count(&counts, "retrying"),
            count(&counts, "failed")
        ),
        (0, 0, 0),
        "{counts}"
    );
    let (delivered, cancelled) = (count(&counts, "delivered"), count(&counts, "cancelled"));
    assert!(delivered >= 1 && cancelled >= 1, "the cancel came mid-way: {counts}");
    // Sent means received, once; cancelled means never received.
    let mut received: Vec<String> = service.received().into_iter().map(|(who, _)| who).collect();
    assert_eq!(i64::try_from(received.len()).expect("small"), delivered, "{counts}");
    received.sort();
    received.dedup();
    assert_eq!(
        i64::try_from(received.len()).expect("small"),
        delivered,
        "nobody got it twice"
    );
    // Nothing is left for a worker, and nothing changes later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(service.received_count(), received.len());
    assert_eq!(state.store.queue_depth().await.expect("depth"), 0);
}

#[tokio::test]
async fn hostile_deliver_values_are_refused_naming_the_field_and_enqueue_nothing() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    subscribe_device(&state, &service, "a", "t", None, None).await;
    let far = rfc3339(now_ms() + 400 * 86_400_000);
    let cases: Vec<(Value, &str)> = vec![
        (json!("tomorrow"), "deliver: expected an object"),
        (json!(17), "deliver: expected an object"),
        (json!({}), "deliver: expected at least one of at, local_time, window"),
        (json!({ "at": "24/12/2026 18:00" }), "deliver.at: expected RFC 3339"),
        (json!({ "at": "2026-12-24T18:00:00" }), "deliver.at: expected RFC 3339"),
        (json!({ "at": 1_798_135_200_000_i64 }), "deliver.at: expected RFC 3339"),
        (json!({ "at": far }), "deliver.at: at most 365 days ahead"),
        (
            json!({ "at": "9000-01-01T00:00:00Z" }),
            "deliver.at: at most 365 days ahead",
        ),
        (json!({ "local_time": "9am" }), "deliver.local_time: expected \"HH:MM\""),
        (
            json!({ "local_time": "25:00" }),
            "deliver.local_time: expected \"HH:MM\"",
        ),
        (
            json!({ "local_time": "09:00:00" }),
            "deliver.local_time: expected \"HH:MM\"",
        ),
        (json!({ "local_time": true }), "deliver.local_time: expected \"HH:MM\""),
        (
            json!({ "local_time": "+9:00" }),
            "deliver.local_time: expected \"HH:MM\"",
        ),
        (json!({ "window": ["09:00", "+9:30"] }), "deliver.window: expected"),
        (
            json!({ "local_time": "٠٩:٠٠" }),
            "deliver.local_time: expected \"HH:MM\"",
        ),
        (
            json!({ "window": ["09:00"] }),
            "deliver.window: expected [\"HH:MM\", \"HH:MM\"]",
        ),
        (json!({ "window": "09:00-21:00" }), "deliver.window: expected"),
        (json!({ "window": [9, 21] }), "deliver.window: expected"),
        (
            json!({ "window": ["21:00", "21:00"] }),
            "deliver.window: start and end are the same time",
        ),
        (
            json!({ "local_time": "09:00", "window": ["09:00", "21:00"] }),
            "deliver: local_time and window are mutually exclusive",
        ),
        (json!({ "at_local": "09:00" }), "deliver.\"at_local\": unknown field"),
        (json!({ "x".repeat(5000): 1 }), "deliver.\"xxx"),
    ];
    for (deliver, expected) in cases {
        let body = json!({ "to": { "all": true }, "notification": { "title": "x" }, "deliver": deliver });
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&body.to_string()), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{deliver}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_schedule", "{deliver}: {reply}");
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(message.starts_with(expected), "{deliver}: {message}");
        assert!(message.len() < 300, "{message}");
    }
    assert_eq!(state.store.queue_depth().await.expect("depth"), 0, "nothing enqueued");
    // `deliver: null` is no schedule.
    let reply = notify_accepted(
        &state,
        json!({ "to": { "all": true }, "notification": { "title": "x" }, "deliver": null }),
    )
    .await;
    assert_eq!((&reply["recipients"], &reply["scheduled"]), (&json!(1), &json!(0)));

    // DELETE of ids no notification has: a JSON 404, never a 5xx.
    let long = "a".repeat(5000);
    for id in ["nope", "%00", "a%0Ab", "%FF%FE", long.as_str(), "%20"] {
        let (status, reply) = call(&state, "DELETE", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
        assert_eq!(
            (status, &reply["error"]["code"]),
            (StatusCode::NOT_FOUND, &json!("not_found")),
            "{id}"
        );
        let (status, _) = call(&state, "GET", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {id}");
    }
}

#[test]
fn an_unknown_default_time_zone_is_a_startup_error_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env("ASKWELL_DEFAULT_TIME_ZONE", "Mars/Olympus_Mons")
        .env("RUST_LOG", "error")
        .output()
        .expect("run askwell-server");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ASKWELL_DEFAULT_TIME_ZONE: \"Mars/Olympus_Mons\" is not an IANA time zone"),
        "{stderr}"
    );
    assert!(!data.exists(), "refused before the data dir was created");
}

#[tokio::test]
async fn a_known_default_time_zone_in_any_case_starts_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, url) = start_server_process(dir.path(), &[("ASKWELL_DEFAULT_TIME_ZONE", "america/new_york")]);
    let health = reqwest::get(format!("{url}/healthz")).await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_delivery_held_by_a_crashed_worker_when_cancelled_is_cancelled_when_claimed_again() {
    let state = state(true).await;
    let service = push_service_for(&state).await;
    for id in ["a", "b"] {
        subscribe_device(&state, &service, id, "crash", None, None).await;
    }
    let reply = notify_accepted(
        &state,
        json!({ "to": { "topic": "crash" }, "notification": { "title": "Held" } }),
    )
    .await;
    let id = reply["id"].as_str().expect("id");
    // A worker claims both for 300 ms and dies: the cancel leaves them to it.
    let held = state.store.deliveries_claim(10, 300).await.expect("claim");
    assert_eq!(held.len(), 2);
    let (status, reply) = call(&state, "DELETE", &format!("/v1/notifications/{id}"), None, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // Once the lease runs out, the next claim takes them and cancels them.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let claimed = deliverer(&state, FAST).round().await.expect("round");
    assert_eq!((claimed, service.received_count()), (0, 0));
    let counts = notification_counts(&state, id).await;
    assert_eq!(
        (count(&counts, "cancelled"), count(&counts, "queued")),
        (2, 0),
        "{counts}"
    );
}

#[tokio::test]
async fn a_stop_raised_while_the_background_loops_are_busy_is_not_missed() {
    // On SIGTERM the server raises its stop and waits for every loop; one
    // that was busy (a delivery round, a journey tick) when it was raised
    // must still see it, or shutdown waits forever for a loop that has gone
    // back to sleep, until the orchestrator kills the process.
    let state = state(true).await;
    for raised_after in [Duration::ZERO, Duration::from_millis(300)] {
        stop_loops(&state, raised_after).await;
    }
}

/// Starts the loops, raises their stop after `raised_after` (zero: before
/// any has run, as if each were still busy in its first round; later: while
/// each sleeps) and waits for every one to return.
async fn stop_loops(state: &AppState, raised_after: Duration) {
    let stop = Stop::new();
    let every = Duration::from_secs(3600);
    let loops = [
        tokio::spawn(deliverer(state, FAST).run(state.wake.clone(), stop.clone())),
        tokio::spawn(
            askwell_server::journeys::Runner::new(state.store.clone(), jiff::tz::TimeZone::UTC).run(
                every,
                state.wake.clone(),
                stop.clone(),
            ),
        ),
        tokio::spawn(askwell_server::rollout::run(state.clone(), every, stop.clone())),
    ];
    // This runtime has one thread: nothing spawned runs before this sleeps.
    if !raised_after.is_zero() {
        tokio::time::sleep(raised_after).await;
    }
    stop.raise();
    for task in loops {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the loop saw the stop and returned")
            .expect("no panic");
    }
}
