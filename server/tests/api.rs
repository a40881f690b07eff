//! The HTTP surface through `app().oneshot(...)`, without sockets.

use std::sync::Arc;

use askwell_server::{app, AppState, StaticFiles, Store, VapidKeys};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn state(files: StaticFiles) -> AppState {
    let store = Store::in_memory().await.expect("in-memory store");
    AppState {
        store,
        vapid: Arc::new(VapidKeys::generate()),
        files,
    }
}

async fn get(state: AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = app(state).oneshot(request).await.expect("response");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, body)
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[tokio::test]
async fn health_reports_the_schema_version() {
    let (status, body) = get(state(StaticFiles::default()).await, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["schema"], 1);
}

#[tokio::test]
async fn serves_the_vapid_public_key_as_an_uncompressed_point() {
    let state = state(StaticFiles::default()).await;
    let expected = state.vapid.public_key_base64();
    let (status, body) = get(state, "/v1/vapid-public-key").await;
    assert_eq!(status, StatusCode::OK);
    let key = json(&body)["publicKey"].as_str().expect("string").to_owned();
    assert_eq!(key, expected);
    assert_eq!(key.len(), 87, "65 bytes in unpadded base64url");
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let (status, body) = get(state(StaticFiles::default()).await, "/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"]["code"], "not_found");
}

#[tokio::test]
async fn serves_the_site_and_the_package() {
    let site = tempfile::tempdir().expect("site dir");
    let pkg = tempfile::tempdir().expect("pkg dir");
    std::fs::write(site.path().join("index.html"), "<h1>demo</h1>").expect("write");
    std::fs::write(pkg.path().join("askwell_bg.wasm"), b"\0asm").expect("write");
    let files = StaticFiles {
        site: Some(site.path().into()),
        pkg: Some(pkg.path().into()),
    };
    let (status, body) = get(state(files.clone()).await, "/").await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, b"<h1>demo</h1>".as_slice()));
    let request = Request::get("/pkg/askwell_bg.wasm")
        .body(Body::empty())
        .expect("request");
    let response = app(state(files.clone()).await)
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.headers()["content-type"], "application/wasm");
    let (status, body) = get(state(files).await, "/missing.html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"]["code"], "not_found");
}
