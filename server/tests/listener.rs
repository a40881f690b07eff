//! The real server process against clients that are slow, idle or greedy:
//! hundreds of half-sent requests under a 256-file limit cannot take it off
//! the air, slow bodies and idle connections are cut off, and one flooding
//! client is limited without starving another.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const HEADER_TIMEOUT_SECONDS: &str = "2";
const BODY_TIMEOUT_SECONDS: &str = "2";

/// Starts askwell-server under `ulimit -n files` with 2 s header and body timeouts.
fn start(files: u32) -> (support::ServerProcess, SocketAddr, tempfile::TempDir) {
    use std::io::BufRead;
    let data = tempfile::tempdir().expect("data dir");
    let mut child = Command::new("sh")
        .args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_askwell-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("ASKWELL_VAPID_SUBJECT", "mailto:ops@example.com")
        .env("ASKWELL_HEADER_TIMEOUT_SECONDS", HEADER_TIMEOUT_SECONDS)
        .env("ASKWELL_BODY_TIMEOUT_SECONDS", BODY_TIMEOUT_SECONDS)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start askwell-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let (_, url) = line.split_once("listening on http://")?;
            url.trim_end_matches('/').parse().ok()
        })
        .expect("listening line");
    std::thread::spawn(move || lines.for_each(drop));
    (support::ServerProcess(child), address, data)
}

fn stop(server: support::ServerProcess) {
    drop(server);
}

/// `GET /healthz` on a new connection; the status line, or why it failed.
fn health(address: SocketAddr, within: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&address, within).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(within)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: askwell\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// Reads until the server closes the connection; what it sent, or `None`
/// if it kept the connection open for `patience`.
fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Option<String> {
    stream.set_read_timeout(Some(patience)).expect("timeout");
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => Some(String::new()),
        Err(_) => None,
    }
}

#[test]
fn three_hundred_half_sent_requests_under_a_256_file_limit_cannot_silence_the_server() {
    let (server, address, _data) = start(256);
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..300 {
        // Connections past the cap wait in the backlog; a refused one is fine too.
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: ask");
            slow.push(stream);
        }
    }
    // Keep dripping one byte a second into every socket, as a slowloris does.
    let started = Instant::now();
    let answer = loop {
        for stream in &mut slow {
            let _ = stream.write_all(b"w");
        }
        match health(address, Duration::from_secs(1)) {
            Ok(line) if !line.is_empty() => break Ok(line),
            other if started.elapsed() > Duration::from_secs(20) => break other,
            _ => {}
        }
    };
    let waited = started.elapsed();
    let closed = slow
        .iter_mut()
        .take(20)
        .map(|s| read_until_closed(s, Duration::from_secs(5)).is_some())
        .filter(|closed| *closed)
        .count();
    stop(server);
    assert_eq!(answer.as_deref(), Ok("HTTP/1.1 200 OK"), "after {waited:?}");
    assert_eq!(closed, 20, "slow senders are cut off by the header timeout");
    println!("listener: /healthz answered {waited:?} into 300 slow sockets under ulimit -n 256");
}

#[test]
fn a_slow_body_gets_a_json_408_and_an_idle_connection_is_closed() {
    let (server, address, _data) = start(1024);
    let mut slow_body = TcpStream::connect(address).expect("connect");
    slow_body
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: askwell\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ev")
        .expect("write");
    let mut idle = TcpStream::connect(address).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: askwell\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 512];
    let read = idle.read(&mut first).expect("first answer");
    assert!(String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    let answer = read_until_closed(&mut slow_body, Duration::from_secs(10)).expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_default();
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10)).is_some(),
        "an idle kept-alive connection is closed after the header timeout"
    );
    stop(server);
}

#[tokio::test]
async fn one_flooding_client_is_limited_with_retry_after_and_others_still_get_in() {
    let data = tempfile::tempdir().expect("data dir");
    let (mut server, base) = support::start_server_process(data.path(), &[]);
    let client_from = |source: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(source))
            .build()
            .expect("client")
    };
    let (flooder, neighbour) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    let batch = |client: &str, n: usize| {
        let now = askwell_server::store::now_ms();
        let events: Vec<Value> = (0..100)
            .map(|i| json!({ "id": format!("{client}-{n}-{i}"), "type": "prompt_shown", "prompt": "p", "variant": "a", "anon": client, "at": now }))
            .collect();
        json!({ "events": events }).to_string()
    };
    let mut limited = None;
    for n in 0..20 {
        let response = flooder
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .body(batch("flooder", n))
            .send()
            .await
            .expect("send");
        if response.status() == 429 {
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.expect("json");
            limited = Some((n, retry_after, body));
            break;
        }
        assert_eq!(response.status(), 202);
    }
    let (n, retry_after, body) = limited.expect("the flood is limited");
    assert!(n >= 1, "a page's normal flush passes");
    assert_eq!(body["error"]["code"], "rate_limited");
    let seconds: u64 = retry_after
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&seconds), "{seconds}");
    for n in 0..3 {
        let response = neighbour
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .body(batch("neighbour", n))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 202, "another client has its own budget");
    }
    server.kill().expect("stop");
    server.wait().expect("reap");
}

/// Posts 100-event batches with `X-Forwarded-For: forwarded(n)` until one
/// is refused; returns how many passed (`None`: never refused in 20).
async fn batches_until_limited(base: &str, forwarded: impl Fn(usize) -> String) -> Option<usize> {
    let client = reqwest::Client::new();
    let now = askwell_server::store::now_ms();
    for n in 0..20 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({ "id": format!("x-{n}-{i}"), "type": "prompt_shown", "prompt": "p", "anon": "d", "at": now }))
            .collect();
        let response = client
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded(n))
            .body(json!({ "events": events }).to_string())
            .send()
            .await
            .expect("send");
        if response.status() == 429 {
            return Some(n);
        }
    }
    None
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let data = tempfile::tempdir().expect("data dir");
    // No trusted proxy: a client cannot escape its budget by inventing addresses.
    let (_server, base) = support::start_server_process(data.path(), &[]);
    let passed = batches_until_limited(&base, |n| format!("198.51.100.{n}")).await;
    assert!(passed.is_some(), "X-Forwarded-For is ignored by default");

    let data = tempfile::tempdir().expect("data dir");
    let (_server, base) = support::start_server_process(data.path(), &[("ASKWELL_TRUSTED_PROXIES", "127.0.0.1")]);
    let one_client = batches_until_limited(&base, |_| "203.0.113.9".into()).await;
    assert!(one_client.is_some(), "one forwarded client is limited");
    let many = batches_until_limited(&base, |n| format!("198.51.100.{n}")).await;
    assert_eq!(many, None, "behind the proxy each forwarded client has its own budget");
}
