//! Checks on untrusted subscription input: endpoint URL and RFC 8291 keys.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ErrorCode;
use crate::AppError;

mod special;

pub use special::is_public;

/// Longest accepted endpoint URL.
const MAX_ENDPOINT_LEN: usize = 2048;
/// Longest host name as text: 255 octets on the wire (RFC 1035 §2.3.4)
/// minus the first length octet and the root label.
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 200;
/// Most topics on one subscription.
pub const MAX_TOPICS: usize = 100;

/// Whether `http://` and loopback/private endpoints are allowed (local test
/// push services only; off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointPolicy {
    /// The dev-only `--allow-insecure-endpoints` flag.
    pub allow_insecure: bool,
}

/// Validates an endpoint's form (scheme, host, port, length). Addresses are
/// checked again when sending ([`crate::ssrf`]): IP literals before the
/// request, names after DNS resolution.
///
/// # Errors
/// `invalid_endpoint` naming the problem.
pub fn endpoint(raw: &str, policy: EndpointPolicy) -> Result<reqwest::Url, AppError> {
    let bad = |why: &str| AppError::invalid(ErrorCode::InvalidEndpoint, format!("subscription.endpoint: {why}"));
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err(bad("too long"));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| bad("not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_insecure => {}
        _ => return Err(bad("must be https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    // Never sent on the wire, so `…#1`, `…#2` would be many rows for one
    // device (browsers never give one).
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    if let url::Host::Domain(name) = host {
        check_name(name).map_err(bad)?;
    }
    if !policy.allow_insecure {
        // Push services speak https on its port (RFC 8030 requires HTTP over
        // TLS); any other port would let a subscriber aim the server at SSH,
        // SMTP or Redis on a public host. `port()` is `None` for `:443`.
        if url.port().is_some() {
            return Err(bad("must use port 443 (the default https port)"));
        }
        if !is_public_host(host) {
            return Err(bad("must be a public host"));
        }
    }
    Ok(canonical(url))
}

/// The one spelling kept of an endpoint, beyond the URL parser's (lowercase
/// scheme and host, no default port): no root dot after the host and no
/// empty query, which name the same push service and path.
fn canonical(mut url: reqwest::Url) -> reqwest::Url {
    let rooted = url
        .host_str()
        .and_then(|host| host.strip_suffix('.'))
        .map(str::to_owned);
    if let Some(host) = rooted {
        // Fails only for URLs that cannot have a host; an https one has one.
        let _ = url.set_host(Some(&host));
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

/// `raw` as [`endpoint`] stores it (see [`canonical`]), for looking a device up by the
/// endpoint it proves possession of; one that is no URL stays as it is (and
/// matches nothing stored).
#[must_use]
pub fn canonical_endpoint(raw: &str) -> String {
    reqwest::Url::parse(raw).map_or_else(|_| raw.to_owned(), |url| String::from(canonical(url)))
}

/// Refuses names no DNS server can hold, so they are not stored. `url` has
/// already IDNA-encoded the name, so lengths are those on the wire
/// (RFC 5890 §2.3.2.1); one trailing dot (the root) is allowed.
fn check_name(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() > MAX_NAME_LEN {
        return Err("host name longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("host name has an empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("host name has a label longer than 63 characters");
        }
    }
    Ok(())
}

/// An IP literal must be public; a name must not be a local one (whatever it
/// resolves to is checked at send time).
fn is_public_host(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => is_public(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_public(IpAddr::V6(ip)),
        url::Host::Domain(name) => !is_local_name(name),
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || !name.contains('.')
}

/// Decodes and checks the subscriber's P-256 public key: 65 bytes,
/// uncompressed, and a point on the curve (RFC 8291 §3.1).
///
/// # Errors
/// `invalid_keys` naming the field.
pub fn p256dh(encoded: &str) -> Result<Vec<u8>, AppError> {
    let bad = |why: &str| AppError::invalid(ErrorCode::InvalidKeys, format!("subscription.keys.p256dh: {why}"));
    let bytes = decode(encoded).ok_or_else(|| bad("not base64url"))?;
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(bad("expected a 65-byte uncompressed P-256 point"));
    }
    p256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| bad("not a point on the P-256 curve"))?;
    Ok(bytes)
}

/// Decodes and checks the 16-byte auth secret (RFC 8291 §3.2).
///
/// # Errors
/// `invalid_keys` naming the field.
pub fn auth(encoded: &str) -> Result<Vec<u8>, AppError> {
    let bytes = decode(encoded)
        .ok_or_else(|| AppError::invalid(ErrorCode::InvalidKeys, "subscription.keys.auth: not base64url"))?;
    if bytes.len() != 16 {
        return Err(AppError::invalid(
            ErrorCode::InvalidKeys,
            "subscription.keys.auth: expected 16 bytes",
        ));
    }
    Ok(bytes)
}

/// A key or secret in the one form the store keeps and the push code reads:
/// unpadded base64url (browsers send that; others may send padded or
/// standard base64, which would otherwise be stored as sent and break every
/// push to it). The text as given when it does not decode.
pub fn canonical_base64(encoded: &str) -> String {
    decode(encoded).map_or_else(|| encoded.to_owned(), |bytes| URL_SAFE_NO_PAD.encode(bytes))
}

/// Browsers send unpadded base64url; tolerate padding and standard base64.
pub(crate) fn decode(encoded: &str) -> Option<Vec<u8>> {
    let cleaned: String = encoded
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(cleaned).ok()
}

/// Whether `topic` is a topic name: 1–200 printable characters.
pub fn is_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_TOPIC_LEN && !topic.chars().any(char::is_control)
}

/// Validates topic names: 1–200 printable characters, at most 100.
///
/// # Errors
/// `invalid_topic` naming the index.
pub fn topics(field: &str, topics: &[String]) -> Result<(), AppError> {
    if topics.len() > MAX_TOPICS {
        return Err(AppError::invalid(
            ErrorCode::InvalidTopic,
            format!("{field}: at most {MAX_TOPICS} topics"),
        ));
    }
    for (i, topic) in topics.iter().enumerate() {
        if !is_topic(topic) {
            return Err(AppError::invalid(
                ErrorCode::InvalidTopic,
                format!("{field}[{i}]: expected 1 to {MAX_TOPIC_LEN} printable characters"),
            ));
        }
    }
    Ok(())
}

/// Longest topic label ("Replies from Bill"), in characters: the page's
/// limit (it cuts longer renderings).
pub const MAX_TOPIC_LABEL_LEN: usize = askwell::engine::MAX_TOPIC_LABEL_CHARS;

/// Checks `labels` (topic → label) against the `topics` of the same request:
/// each names one of them, with 1 to [`MAX_TOPIC_LABEL_LEN`] printable
/// characters. Returns them as `(topic, label)` pairs.
///
/// # Errors
/// `invalid_topic` naming the first bad label (`labels.<topic>`).
pub fn topic_labels(
    labels: &std::collections::BTreeMap<String, String>,
    topics: &[String],
) -> Result<Vec<(String, String)>, AppError> {
    let mut checked = Vec::with_capacity(labels.len());
    for (topic, label) in labels {
        let problem = if !topics.contains(topic) {
            Some("not one of this request's topics".to_owned())
        } else if label.trim().is_empty()
            || label.chars().count() > MAX_TOPIC_LABEL_LEN
            || label.chars().any(char::is_control)
        {
            Some(format!("expected 1 to {MAX_TOPIC_LABEL_LEN} printable characters"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(AppError::invalid(
                ErrorCode::InvalidTopic,
                format!("labels.{topic}: {problem}"),
            ));
        }
        checked.push((topic.clone(), label.clone()));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: EndpointPolicy = EndpointPolicy { allow_insecure: false };
    const DEV: EndpointPolicy = EndpointPolicy { allow_insecure: true };

    #[test]
    fn endpoint_table() {
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://8.8.8.8/x",
        ] {
            assert!(endpoint(ok, STRICT).is_ok(), "{ok}");
        }
        for bad in [
            "http://push.example.com/x",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.0.0.8/x",
            "https://192.168.1.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://100.64.0.1/x",
            "https://metadata/x",
            "https://user:pw@push.example.com/x",
            "ftp://push.example.com/x",
            "not a url",
        ] {
            assert!(endpoint(bad, STRICT).is_err(), "{bad}");
        }
        assert!(endpoint("http://127.0.0.1:9000/push/1", DEV).is_ok());
    }

    #[test]
    fn refuses_ports_other_than_443_unless_insecure_endpoints_are_allowed() {
        let table = [
            ("https://push.example.com/x", true, true),
            ("https://push.example.com:443/x", true, true),
            ("https://push.example.com:22/x", false, true),
            ("https://push.example.com:25/x", false, true),
            ("https://push.example.com:6379/x", false, true),
            ("https://push.example.com:8443/x", false, true),
            ("https://push.example.com:80/x", false, true),
            ("https://8.8.8.8:6379/x", false, true),
            ("http://127.0.0.1:9000/push/1", false, true),
        ];
        for (raw, strict, dev) in table {
            let got = endpoint(raw, STRICT);
            assert_eq!(got.is_ok(), strict, "{raw} strict: {got:?}");
            assert_eq!(endpoint(raw, DEV).is_ok(), dev, "{raw} dev");
        }
        let refused = endpoint("https://push.example.com:6379/x", STRICT).expect_err("refused");
        assert!(refused.to_string().contains("port 443"), "{refused}");
    }

    #[test]
    fn refuses_host_names_that_cannot_exist_in_dns() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        // 4 × 63 + 3 dots = 255 characters; trimmed to 253 and 254.
        let long = [label63.as_str(); 4].join(".");
        let (name253, name254) = (&long[..253], &long[..254]);
        let ok = [
            format!("https://{label63}.example.com/x"),
            format!("https://{name253}/x"),
            format!("https://{name253}./x"),
            "https://push.example.com./x".to_owned(),
        ];
        for raw in &ok {
            assert!(endpoint(raw, STRICT).is_ok(), "{raw}");
        }
        let bad = [
            format!("https://{label64}.example.com/x"),
            format!("https://push.{label64}/x"),
            format!("https://{name254}/x"),
            "https://push..example.com/x".to_owned(),
            "https://.push.example.com/x".to_owned(),
            "https://push.example.com../x".to_owned(),
        ];
        for raw in &bad {
            for policy in [STRICT, DEV] {
                let refused = endpoint(raw, policy).expect_err(raw);
                let message = refused.to_string();
                assert_eq!(refused.code(), ErrorCode::InvalidEndpoint, "{raw}");
                assert!(
                    message.starts_with("subscription.endpoint: ") && message.contains("host name"),
                    "{raw}: {message}"
                );
            }
        }
    }

    #[test]
    fn checks_key_lengths_and_the_curve() {
        let on_curve = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert!(p256dh(on_curve).is_ok());
        let mut off_curve = decode(on_curve).expect("decodes");
        off_curve[64] ^= 1;
        assert!(p256dh(&URL_SAFE_NO_PAD.encode(&off_curve)).is_err(), "off-curve point");
        assert!(p256dh(&URL_SAFE_NO_PAD.encode([4u8; 33])).is_err(), "wrong length");
        assert!(auth("BTBZMqHH6r4Tts7J_aSIgg").is_ok());
        assert!(auth("BTBZMqHH6r4Tts7J_aSIgg==").is_ok(), "padding tolerated");
        assert!(auth("BTBZMqHH6r4Tts7J").is_err());
    }
}
