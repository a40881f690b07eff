//! The command line's `send` checks a notification as `POST /v1/notify`
//! does (the same module builds both), and refuses with the same words.

mod support;

use std::process::Output;

use serde_json::json;
use support::*;

/// Runs `askwell-server send` over an empty data dir.
fn send(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .arg("send")
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env_remove("ASKWELL_DATABASE_URL")
        .env_remove("ASKWELL_VAPID_PRIVATE_KEY")
        .env("RUST_LOG", "error")
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
