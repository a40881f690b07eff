//! Checks on untrusted subscription input: endpoint URL and RFC 8291 keys.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::AppError;

/// Longest accepted endpoint URL.
const MAX_ENDPOINT_LEN: usize = 2048;
/// Longest topic name.
const MAX_TOPIC_LEN: usize = 200;
/// Most topics on one subscription.
pub const MAX_TOPICS: usize = 100;

/// Whether `http://` and loopback/private endpoints are allowed (local test
/// push services only; off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointPolicy {
    /// The dev-only `--allow-insecure-endpoints` flag.
    pub allow_insecure: bool,
}

/// Validates an endpoint's form (scheme, host, length). Addresses are checked
/// again after DNS resolution when sending ([`crate::ssrf`]).
///
/// # Errors
/// `invalid_endpoint` naming the problem.
pub fn endpoint(raw: &str, policy: EndpointPolicy) -> Result<reqwest::Url, AppError> {
    let bad = |why: &str| AppError::invalid("invalid_endpoint", format!("subscription.endpoint: {why}"));
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
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    if !policy.allow_insecure {
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(name) if is_local_name(name) => return Err(bad("must be a public host")),
            url::Host::Domain(_) => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) {
            return Err(bad("must be a public host"));
        }
    }
    Ok(url)
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || !name.contains('.')
}

/// Whether an address is publicly routable: not loopback, private, link-local
/// (incl. the 169.254.169.254 metadata service), CGNAT, unspecified, multicast
/// or documentation ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Decodes and checks the subscriber's P-256 public key: 65 bytes,
/// uncompressed, and a point on the curve (RFC 8291 §3.1).
///
/// # Errors
/// `invalid_keys` naming the field.
pub fn p256dh(encoded: &str) -> Result<Vec<u8>, AppError> {
    let bad = |why: &str| AppError::invalid("invalid_keys", format!("subscription.keys.p256dh: {why}"));
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
    let bytes =
        decode(encoded).ok_or_else(|| AppError::invalid("invalid_keys", "subscription.keys.auth: not base64url"))?;
    if bytes.len() != 16 {
        return Err(AppError::invalid(
            "invalid_keys",
            "subscription.keys.auth: expected 16 bytes",
        ));
    }
    Ok(bytes)
}

/// Browsers send unpadded base64url; tolerate padding and standard base64.
fn decode(encoded: &str) -> Option<Vec<u8>> {
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

/// Validates topic names: 1–200 printable characters, at most 100.
///
/// # Errors
/// `invalid_topic` naming the index.
pub fn topics(field: &str, topics: &[String]) -> Result<(), AppError> {
    if topics.len() > MAX_TOPICS {
        return Err(AppError::invalid(
            "invalid_topic",
            format!("{field}: at most {MAX_TOPICS} topics"),
        ));
    }
    for (i, topic) in topics.iter().enumerate() {
        if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || topic.chars().any(char::is_control) {
            return Err(AppError::invalid(
                "invalid_topic",
                format!("{field}[{i}]: expected 1 to {MAX_TOPIC_LEN} printable characters"),
            ));
        }
    }
    Ok(())
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
