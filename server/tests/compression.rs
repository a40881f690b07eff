//! Response compression through `app().oneshot(...)`: static files (the
//! package's wasm and JS) and JSON answers are gzip- or brotli-encoded when
//! the client asks, decode (with independent decoders) to exactly the bytes
//! sent without compression, and keep their content type; tiny bodies,
//! images and ranges stay as they are; errors stay JSON; and the listener's
//! body limit and timeouts still answer in front of it.

mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use askwell_server::serve::{with_time_limits, Limits};
use askwell_server::{app, AppState, StaticFiles};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::*;
use tower::ServiceExt;

/// A reply: status, headers and the body exactly as sent (still encoded).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body decoded per `Content-Encoding`, by decoders of our own choosing.
    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.header(header::CONTENT_ENCODING) {
            None => out.extend_from_slice(&self.body),
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .expect("valid gzip");
            }
            Some("br") => {
                brotli::Decompressor::new(&self.body[..], 4096)
                    .read_to_end(&mut out)
                    .expect("valid brotli");
            }
            Some(other) => panic!("unexpected Content-Encoding {other}"),
        }
        out
    }

    fn vary_accept_encoding(&self) -> bool {
        self.headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    }
}

async fn send(router: axum::Router, request: Request<Body>) -> Reply {
    let response = router.oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn get(uri: &str, accept: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    request.body(Body::empty()).expect("request")
}

/// A site folder like an app's: a wasm module (~200 kB, as the page's), its
/// JS glue, a PNG (already compressed), and a file too small to bother.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("site dir");
    let text = include_str!("../openapi.yaml");
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    while wasm.len() < 200_000 {
        // Repetitive, like code: compressible, but not trivially.
        wasm.extend(text.bytes().rev().take(50_000));
        wasm.extend((0..4_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    }
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).expect("write");
    write("app_bg.wasm", &wasm);
    write("app.js", text.as_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(text.bytes().take(8_000));
    write("photo.png", &png);
    write("tiny.txt", b"ok\n");
    dir
}

async fn state_with_site(site: &Path) -> AppState {
    let mut state = state(false).await;
    state.files = StaticFiles {
        site: Some(site.to_path_buf()),
        pkg: None,
    };
    state
}

/// Each encoding a browser sends, and what the server should pick.
const ENCODINGS: [(&str, &str); 3] = [
    ("gzip", "gzip"),
    ("br", "br"),
    // What Chromium and Firefox send: br preferred.
    ("gzip, deflate, br, zstd", "br"),
];

#[tokio::test]
async fn the_wasm_and_js_are_compressed_when_asked_and_decode_to_the_same_bytes() {
    let site = site();
    let state = state_with_site(site.path()).await;
    for (file, content_type) in [("app_bg.wasm", "application/wasm"), ("app.js", "text/javascript")] {
        let uri = format!("/{file}");
        let plain = send(app(state.clone()), get(&uri, None)).await;
        assert_eq!(plain.status, StatusCode::OK, "{file}");
        assert_eq!(
            plain.header(header::CONTENT_ENCODING),
            None,
            "{file}: identity without Accept-Encoding"
        );
        assert_eq!(plain.header(header::CONTENT_TYPE), Some(content_type), "{file}");
        assert!(
            plain.vary_accept_encoding(),
            "{file}: caches must key on Accept-Encoding"
        );
        assert!(plain.body.len() > 10_000, "{file}");
        for (accept, chosen) in ENCODINGS {
            let packed = send(app(state.clone()), get(&uri, Some(accept))).await;
            assert_eq!(packed.status, StatusCode::OK, "{file} {accept}");
            assert_eq!(packed.header(header::CONTENT_ENCODING), Some(chosen), "{file} {accept}");
            assert_eq!(
                packed.header(header::CONTENT_TYPE),
                Some(content_type),
                "{file} {accept}"
            );
            assert!(packed.vary_accept_encoding(), "{file} {accept}");
            assert!(
                packed.body.len() < plain.body.len() / 2,
                "{file} {accept}: {} bytes",
                packed.body.len()
            );
            assert!(packed.decoded() == plain.body, "{file} {accept}: decodes to the file");
        }
    }
}

/// A batch of events, half of them refused with a reason: a JSON answer of
/// a few kB. The same text each time (ids and times fixed), so once stored,
/// every answer to it is the same (`stored: 0`).
fn events_batch() -> String {
    let at = askwell_server::store::now_ms() - 1_000;
    let events: Vec<Value> = (0..60)
        .map(|i| match i % 2 {
            0 => json!({ "id": format!("e{i}"), "type": "prompt_shown", "prompt": "reply", "anon": "d1", "at": at }),
            _ => json!({ "id": format!("e{i}"), "type": "prompt_shown", "prompt": "x".repeat(201), "at": at }),
        })
        .collect();
    json!({ "events": events }).to_string()
}

fn post_events(batch: &str, accept: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/v1/events").header(header::CONTENT_TYPE, "application/json");
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    request.body(Body::from(batch.to_owned())).expect("request")
}

#[tokio::test]
async fn json_answers_are_compressed_when_asked_and_decode_to_the_same_json() {
    let state = state(false).await;
    let batch = events_batch();
    let stored = send(app(state.clone()), post_events(&batch, None)).await;
    assert_eq!(stored.status, StatusCode::ACCEPTED, "{:?}", stored.body);
    let plain = send(app(state.clone()), post_events(&batch, None)).await;
    assert_eq!(plain.header(header::CONTENT_ENCODING), None);
    assert!(plain.body.len() > 2_000, "{} bytes", plain.body.len());
    let expected: Value = serde_json::from_slice(&plain.body).expect("JSON");
    assert_eq!(
        (expected["accepted"].as_u64(), expected["stored"].as_u64()),
        (Some(30), Some(0))
    );
    for (accept, chosen) in ENCODINGS {
        let packed = send(app(state.clone()), post_events(&batch, Some(accept))).await;
        assert_eq!(packed.status, StatusCode::ACCEPTED, "{accept}");
        assert_eq!(packed.header(header::CONTENT_ENCODING), Some(chosen), "{accept}");
        assert_eq!(
            packed.header(header::CONTENT_TYPE),
            Some("application/json"),
            "{accept}"
        );
        assert!(packed.vary_accept_encoding(), "{accept}");
        assert!(
            packed.body.len() < plain.body.len() / 4,
            "{accept}: {} bytes",
            packed.body.len()
        );
        let decoded: Value = serde_json::from_slice(&packed.decoded()).expect("JSON");
        assert_eq!(decoded, expected, "{accept}");
    }
}

#[tokio::test]
async fn tiny_bodies_images_refusals_and_ranges_are_sent_as_they_are() {
    let site = site();
    let state = state_with_site(site.path()).await;
    for (uri, accept) in [
        ("/tiny.txt", "gzip, br"),
        ("/photo.png", "gzip, br"),
        ("/healthz", "gzip, br"),
        ("/v1/vapid-public-key", "gzip, br"),
        ("/app.js", "identity"),
        ("/app.js", "gzip;q=0, br;q=0"),
    ] {
        let reply = send(app(state.clone()), get(uri, Some(accept))).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.header(header::CONTENT_ENCODING), None, "{uri} {accept}");
    }
    let png = std::fs::read(site.path().join("photo.png")).expect("png");
    let reply = send(app(state.clone()), get("/photo.png", Some("br"))).await;
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("image/png"));
    assert!(reply.body == png);
    // A range is of the file's bytes: encoding it would break the offsets.
    let range = Request::get("/app_bg.wasm")
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .header(header::RANGE, "bytes=0-7")
        .body(Body::empty())
        .expect("request");
    let reply = send(app(state), range).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.header(header::CONTENT_ENCODING), None);
    assert_eq!(&reply.body[..], b"\0asm\x01\0\0\0");
}

fn assert_json_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{code}");
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"), "{code}");
    let body: Value = serde_json::from_slice(&reply.decoded()).expect("JSON error body");
    assert_eq!(body["error"]["code"].as_str(), Some(code), "{body}");
}

/// A request body that sends nothing and never ends (a stalled client).
struct Stalled;

impl axum::body::HttpBody for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn errors_stay_json_and_the_listener_limits_still_answer_when_compression_is_asked() {
    let site = site();
    let state = state_with_site(site.path()).await;
    let limits = Limits {
        body_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    // As `serve` composes it: the time limits around the whole app.
    let served = || with_time_limits(app(state.clone()), limits);
    let missing = send(served(), get("/no-such-file.js", Some("gzip, br"))).await;
    assert_json_error(&missing, StatusCode::NOT_FOUND, "not_found");
    let unknown = send(served(), get("/v1/nothing-here", Some("br"))).await;
    assert_json_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let huge = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .body(Body::from("x".repeat(askwell_server::MAX_BODY_BYTES + 1)))
        .expect("request");
    assert_json_error(
        &send(served(), huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    let stalled = Request::post("/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT_ENCODING, "gzip, br")
        .body(Body::new(Stalled))
        .expect("request");
    let started = Instant::now();
    let reply = send(served(), stalled).await;
    assert_json_error(&reply, StatusCode::REQUEST_TIMEOUT, "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    let events = send(served(), post_events(&events_batch(), Some("gzip"))).await;
    assert_eq!(
        events.header(header::CONTENT_ENCODING),
        Some("gzip"),
        "compressed inside the limits"
    );
}

/// Prints what compression saves on the built package (`cargo xtask build`),
/// and how long one compression takes; printed, not asserted (timings flake
/// on a 2-core machine). Skipped without pkg/.
#[tokio::test]
async fn prints_the_compressed_sizes_of_the_built_package() {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg");
    if !pkg.join("askwell_bg.wasm").exists() {
        eprintln!("pkg/ is not built (cargo xtask build): nothing to measure");
        return;
    }
    let state = state_with_site(&pkg).await;
    for file in ["askwell_bg.wasm", "askwell.js", "askwell_sw_bg.wasm", "askwell_sw.js"] {
        let uri = format!("/{file}");
        let raw = send(app(state.clone()), get(&uri, None)).await.body.len();
        let mut line = format!("{file}: {raw} B raw");
        for accept in ["gzip", "br"] {
            let started = Instant::now();
            let reply = send(app(state.clone()), get(&uri, Some(accept))).await;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            assert!(reply.decoded().len() == raw, "{file} {accept}");
            line.push_str(&format!(", {accept} {} B in {took:.1} ms", reply.body.len()));
        }
        println!("{line}");
    }
}
