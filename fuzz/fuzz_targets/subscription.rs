//! Subscription validation (server/src/validate.rs) on arbitrary strings: a
//! `POST /v1/subscriptions` body's endpoint, keys and topics when the input
//! is one, else the input's lines (endpoint, p256dh, auth, then topics).
//! Never a panic; what is accepted meets the documented bounds; and an
//! endpoint accepted when subscribing is also one the sender will contact
//! (`ssrf::is_sendable`), else a stored subscription could never be served.
#![no_main]

use askwell_server::ssrf::is_sendable;
use askwell_server::validate::{auth, endpoint, is_public, p256dh, topics, EndpointPolicy, MAX_TOPICS};
use libfuzzer_sys::fuzz_target;

const STRICT: EndpointPolicy = EndpointPolicy { allow_insecure: false };
const DEV: EndpointPolicy = EndpointPolicy { allow_insecure: true };

fuzz_target!(|data: &[u8]| {
    let (raw_endpoint, raw_p256dh, raw_auth, rest) = fields(data);
    let (raw_endpoint, raw_p256dh, raw_auth) = (raw_endpoint.as_str(), raw_p256dh.as_str(), raw_auth.as_str());

    if let Ok(url) = endpoint(raw_endpoint, STRICT) {
        assert!(raw_endpoint.len() <= 2048);
        assert_eq!(url.scheme(), "https");
        assert!(url.port().is_none() && url.username().is_empty() && url.password().is_none());
        match url.host() {
            Some(url::Host::Ipv4(ip)) => assert!(is_public(ip.into())),
            Some(url::Host::Ipv6(ip)) => assert!(is_public(ip.into())),
            Some(url::Host::Domain(name)) => assert!(name.trim_end_matches('.').len() <= 253),
            None => panic!("accepted without a host: {raw_endpoint:?}"),
        }
        assert!(endpoint(raw_endpoint, DEV).is_ok(), "strict accepts what dev refuses");
        assert_eq!(is_sendable(raw_endpoint, false), Ok(()), "{raw_endpoint:?}");
    }
    if endpoint(raw_endpoint, DEV).is_ok() {
        assert_eq!(is_sendable(raw_endpoint, true), Ok(()), "{raw_endpoint:?}");
    }
    if let Ok(key) = p256dh(raw_p256dh) {
        assert!(key.len() == 65 && key[0] == 4);
    }
    if let Ok(secret) = auth(raw_auth) {
        assert_eq!(secret.len(), 16);
    }
    if topics("topics", &rest).is_ok() {
        assert!(rest.len() <= MAX_TOPICS);
        assert!(rest
            .iter()
            .all(|t| (1..=200).contains(&t.len()) && !t.chars().any(char::is_control)));
    }
});

/// Endpoint, p256dh, auth and topics of a subscription request, or of lines.
fn fields(data: &[u8]) -> (String, String, String, Vec<String>) {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        let text = |pointer: &str| {
            body.pointer(pointer)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let topics = body
            .get("topics")
            .and_then(|t| t.as_array())
            .map_or_else(Vec::new, |items| {
                items.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()
            });
        return (
            text("/subscription/endpoint"),
            text("/subscription/keys/p256dh"),
            text("/subscription/keys/auth"),
            topics,
        );
    }
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(str::to_owned);
    let mut next = || lines.next().unwrap_or_default();
    let (endpoint, p256dh, auth) = (next(), next(), next());
    (endpoint, p256dh, auth, lines.collect())
}
