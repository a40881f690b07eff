//! The command line's `send` checks a notification as `POST /v1/notify`
//! does (the same module builds both), and refuses with the same words.

mod support;

use std::process::Output;

use serde_json::json;
use support::*;

/// Runs `askwell-server send` over an empty data dir.
fn send(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    send_in(dir.path(), args, &[])
}

/// Runs `askwell-server send` over the data dir `data` with extra `envs`.
fn send_in(data: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .arg("send")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env_remove("ASKWELL_DATABASE_URL")
        .env_remove("ASKWELL_VAPID_PRIVATE_KEY")
        .env_remove("ASKWELL_DEFAULT_TIME_ZONE")
        .env("RUST_LOG", "error")
        .envs(envs.iter().copied())
        .output()
        .expect("run askwell-server send")
}

#[tokio::test]
async fn send_refuses_a_blank_title_and_an_oversized_payload_as_the_api_does() {
    let state = state(false).await;
    let long = "y".repeat(3100);
    for (title, body) in [(" ", "hi"), ("Big news", long.as_str())] {
        let request = json!({ "to": { "all": true }, "notification": { "title": title, "body": body } });
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&request.to_string()), Some(TOKEN)).await;
        assert!(status.is_client_error(), "{status} {reply}");
        let (code, message) = (
            reply["error"]["code"].as_str().expect("code"),
            reply["error"]["message"].as_str().expect("message"),
        );
        let out = send(&["--all", "--title", title, "--body", body]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{title:?}: sent anyway: {stderr}");
        assert!(
            stderr.contains(message) && stderr.contains(code),
            "{title:?}: expected {message:?} ({code}), got {stderr}"
        );
    }
}

#[test]
fn send_still_sends_a_valid_notification() {
    let out = send(&["--all", "--title", "Hello", "--url", "/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(reply["counts"]["queued"], 0, "no subscribers: {reply}");
}

/// The next `local_time` after `from_ms` on `zone_name`'s clock.
fn next_local(local_time: &str, from_ms: i64, zone_name: &str) -> i64 {
    use askwell::journey::{zone, Deliver, LocalTime};
    let rule = Deliver::At(LocalTime::parse(local_time).expect("HH:MM"));
    let zone = zone(zone_name).expect("a zone");
    i64::try_from(rule.next(u64::try_from(from_ms).expect("positive"), &zone)).expect("in range")
}

#[tokio::test]
async fn send_local_time_schedules_each_recipient_on_its_clock_and_says_how_many_were_defaulted() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = askwell_server::Store::open_in_dir(dir.path()).await.expect("store");
        for (i, zone) in [None, Some("America/New_York")].into_iter().enumerate() {
            let sub = askwell_server::store::NewSubscription {
                endpoint: format!("https://push.example.com/send/{i}"),
                p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
                    .into(),
                auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
                user: None,
                expiration_ms: None,
                topics: vec!["news".into()],
                time_zone: zone.map(str::to_owned),
            };
            store.subscription_upsert(&sub).await.expect("subscribe");
        }
    }
    let before = askwell_server::store::now_ms();
    let out = send_in(
        dir.path(),
        &["--topic", "news", "--title", "Good morning", "--local-time", "09:00"],
        &[("ASKWELL_DEFAULT_TIME_ZONE", "Asia/Kolkata")],
    );
    let after = askwell_server::store::now_ms();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 recipients, 2 scheduled, 1 in the default time zone (Asia/Kolkata)"),
        "{stderr}"
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        (
            &reply["recipients"],
            &reply["scheduled"],
            &reply["defaulted_time_zone"],
            &reply["counts"]["scheduled"],
            &reply["counts"]["delivered"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(2), &json!(0)),
        "{reply}"
    );
    let id = reply["id"].as_str().expect("id");
    let store = askwell_server::Store::open_in_dir(dir.path()).await.expect("store");
    let due = store.notification_due_times(id).await.expect("due times");
    let expected = |zone| [next_local("09:00", before, zone), next_local("09:00", after, zone)];
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(
        expected("Asia/Kolkata").contains(&due[0].1),
        "zone-less: the default zone's 09:00, {due:?}"
    );
    assert!(
        expected("America/New_York").contains(&due[1].1),
        "the device's 09:00, {due:?}"
    );
}

#[tokio::test]
async fn send_refuses_a_bad_schedule_naming_the_option_with_the_apis_words() {
    let state = state(false).await;
    let cases = [
        ("--local-time", "9:00", json!({ "local_time": "9:00" })),
        ("--local-time", "24:00", json!({ "local_time": "24:00" })),
        ("--window", "09:00-09:00", json!({ "window": ["09:00", "09:00"] })),
        ("--window", "09:00-9pm", json!({ "window": ["09:00", "9pm"] })),
        ("--at", "tomorrow", json!({ "at": "tomorrow" })),
        ("--at", "2999-01-01T00:00:00Z", json!({ "at": "2999-01-01T00:00:00Z" })),
    ];
    for (option, value, deliver) in cases {
        let request = json!({ "to": { "all": true }, "notification": { "title": "Hi" }, "deliver": deliver });
        let (status, reply) = call(&state, "POST", "/v1/notify", Some(&request.to_string()), Some(TOKEN)).await;
        assert_eq!(status.as_u16(), 400, "{reply}");
        let message = reply["error"]["message"].as_str().expect("message");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let out = send_in(&data, &["--all", "--title", "Hi", option, value], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{option} {value}: sent anyway: {stderr}");
        assert!(
            stderr.contains(&format!("{option} {value:?}: {message} (invalid_schedule)")),
            "{option} {value}: expected {message:?}, got {stderr}"
        );
        assert!(
            !data.exists(),
            "{option} {value}: refused before the data dir was created"
        );
    }
    let out = send(&["--all", "--title", "Hi", "--window", "0900"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains("--window \"0900\": expected START-END (24-hour clock), such as 09:00-21:00 (invalid_schedule)"),
        "{stderr}"
    );
    let out = send(&[
        "--all",
        "--title",
        "Hi",
        "--local-time",
        "09:00",
        "--window",
        "09:00-21:00",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains("--local-time") && stderr.contains("--window") && stderr.contains("cannot be used with"),
        "{stderr}"
    );
}

#[tokio::test]
async fn send_obeys_the_delivery_policy_and_ends_when_all_left_is_held() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = askwell_server::Store::open_in_dir(dir.path()).await.expect("store");
        let sub = askwell_server::store::NewSubscription {
            endpoint: "https://push.example.com/send/held".into(),
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
            user: None,
            expiration_ms: None,
            topics: vec!["news".into()],
            time_zone: None,
        };
        store.subscription_upsert(&sub).await.expect("subscribe");
    }
    // Quiet all day but the last minute of it: the push is held, and
    // `send` says so and returns instead of waiting for it.
    let policy = dir.path().join("policy.json");
    let quiet = if jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).time() >= jiff::civil::time(23, 58, 0, 0) {
        r#"{ "quietHours": ["23:58", "23:57"] }"#
    } else {
        r#"{ "quietHours": ["00:00", "23:59"] }"#
    };
    std::fs::write(&policy, quiet).expect("write policy");
    let policy = policy.display().to_string();
    let out = send_in(
        dir.path(),
        &["--topic", "news", "--title", "Good night"],
        &[("ASKWELL_DELIVERY_POLICY", policy.as_str())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 deliveries are due later (1 held by the delivery policy)"),
        "{stderr}"
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        (&reply["counts"]["held"], &reply["counts"]["delivered"]),
        (&json!(1), &json!(0)),
        "{reply}"
    );
}

/// A push the person turned off ends `muted`: `send` counts it as done and
/// returns (it waited forever for it).
#[tokio::test]
async fn send_returns_when_a_delivery_ends_muted() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = askwell_server::Store::open_in_dir(dir.path()).await.expect("store");
        let sub = askwell_server::store::NewSubscription {
            endpoint: "https://push.example.com/send/paused".into(),
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
            user: None,
            expiration_ms: None,
            topics: vec!["news".into()],
            time_zone: None,
        };
        let askwell_server::store::Upsert::Created(id) = store.subscription_upsert(&sub).await.expect("subscribe")
        else {
            panic!("a new subscription");
        };
        let paused = askwell_server::store::Preferences {
            paused_until_ms: Some(askwell_server::store::PAUSED_INDEFINITELY),
            ..Default::default()
        };
        store
            .preferences_set(&askwell_server::store::device_subject(id), &paused)
            .await
            .expect("pause");
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .arg("send")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--topic", "news", "--title", "Paused"])
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env_remove("ASKWELL_DATABASE_URL")
        .env_remove("ASKWELL_VAPID_PRIVATE_KEY")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run askwell-server send");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().expect("kill");
            panic!("send never returned for a muted delivery");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(reply["counts"]["muted"], json!(1), "{reply}");
}
