//! Every refusal, including the ones axum answers before a handler runs
//! (wrong method, oversized body) and hostile query values, is a JSON
//! `{ error: { code, message } }` with a documented status, never a panic.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use support::*;
use tower::ServiceExt;

/// Status, headers and JSON body (Null if none or not JSON) of one request.
async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let state = state(false).await;
    let response = askwell_server::app(state).oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn assert_json_error(headers: &axum::http::HeaderMap, body: &Value, code: &str) {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"), "{body}");
    assert_eq!(body["error"]["code"].as_str(), Some(code), "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn a_wrong_method_answers_405_json_with_the_allowed_methods() {
    for (method, uri, allowed) in [
        ("PUT", "/v1/subscriptions", &["POST", "DELETE"][..]),
        ("GET", "/v1/events", &["POST"][..]),
        ("DELETE", "/v1/stats", &["GET", "HEAD"][..]),
        ("POST", "/healthz", &["GET", "HEAD"][..]),
        ("PATCH", "/v1/notifications/abc", &["GET", "HEAD"][..]),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_json_error(&headers, &body, "method_not_allowed");
        let allow = headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for wanted in allowed {
            assert!(allow.contains(wanted), "{method} {uri}: Allow: {allow:?}");
        }
    }
}

#[tokio::test]
async fn an_oversized_events_body_answers_413_json() {
    let huge = format!(
        "{{\"events\":[{{\"type\":\"prompt_shown\",\"name\":\"{}\"}}]}}",
        "x".repeat(askwell_server::MAX_BODY_BYTES)
    );
    for content_type in ["application/json", "text/plain"] {
        let request = Request::post("/v1/events")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(huge.clone()))
            .expect("request");
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{content_type}");
        assert_json_error(&headers, &body, "body_too_large");
    }
}

#[tokio::test]
async fn extreme_stats_ranges_answer_400_naming_the_parameter() {
    let state = state(false).await;
    let (min, max) = (i64::MIN, i64::MAX);
    for (query, field) in [
        (format!("from={min}&to={max}"), "from:"),
        (format!("from={min}"), "from:"),
        (format!("to={min}"), "to:"),
        (format!("to={max}"), "to:"),
        ("from=-1&to=5".to_owned(), "from:"),
        ("from=0&to=9000000000000000".to_owned(), "to:"),
        (format!("from={max}"), "from:"),
        (format!("from={}&to={max}", max - 1), "from:"),
        (format!("from={min}&to={}", min + 1), "from:"),
    ] {
        for path in ["/v1/stats", "/v1/stats.csv"] {
            let uri = format!("{path}?{query}");
            let (status, body) = call(&state, "GET", &uri, None, Some(TOKEN)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert_eq!(body["error"]["code"].as_str(), Some("invalid_query"), "{uri}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with(field), "{uri}: {message}");
        }
    }
}

/// `askwell-server serve` with `ASKWELL_ALLOWED_ORIGINS=value`: whether it
/// exited within 10 s (a server that started is killed: `false`), with its
/// output.
fn serve_with_origins(value: &str) -> (bool, String) {
    use std::io::Read;
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_askwell-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env("ASKWELL_ALLOWED_ORIGINS", value)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run askwell-server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let exited = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break !status.success(),
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    (exited, text)
}

#[test]
fn a_bad_allowed_origin_is_a_clear_start_up_error_not_a_panic() {
    for (value, why) in [
        ("*", "list each origin"),
        ("https://app.example.com/", "no path"),
        ("app.example.com", "scheme"),
        ("https://app.example.com/path", "no path"),
    ] {
        let (refused, text) = serve_with_origins(value);
        assert!(refused, "{value}: the server must refuse to start: {text}");
        assert!(
            text.contains("ASKWELL_ALLOWED_ORIGINS") && text.contains(why) && !text.contains("panicked"),
            "{value}: {text}"
        );
    }
}
