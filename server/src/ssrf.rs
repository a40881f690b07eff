//! The SSRF guard at send time: a DNS resolver for the push client that
//! refuses non-public addresses, so an endpoint whose name later resolves to
//! 127.0.0.1 or the metadata service is never contacted, and [`is_sendable`]
//! for what the resolver never sees (IP literals, the port). "Public" is
//! [`crate::validate::is_public`]: the IANA special-purpose registries.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::validate::is_public;

/// Resolves with the system resolver and drops non-public addresses (unless
/// insecure endpoints are allowed for local test push services).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Allow loopback and private addresses (dev only).
    pub allow_insecure: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_insecure = self.allow_insecure;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow_insecure || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "push endpoint resolves to a non-public address",
                );
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Whether a stored endpoint may be contacted at all; checked before every
/// send. reqwest never calls the resolver for an IP-literal host, and a row
/// may predate today's subscribe checks, so this is where literals and the
/// port are enforced: https on port 443, and a literal must be public
/// ([`is_public`]). Names are left to [`GuardedResolver`].
///
/// # Errors
/// Why the endpoint is refused.
pub fn is_sendable(endpoint: &str, allow_insecure: bool) -> Result<(), &'static str> {
    let url = url::Url::parse(endpoint).map_err(|_| "not a URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        _ => return Err("not https"),
    }
    if allow_insecure {
        return Ok(());
    }
    if url.port().is_some() {
        return Err("not on port 443");
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err("no host"),
    };
    match literal {
        Some(ip) if !is_public(ip) => Err("a non-public IP address"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[tokio::test]
    async fn the_resolver_drops_every_special_purpose_address() {
        // An IP string "resolves" to itself without DNS, so this drives the
        // resolver's filter with exact addresses.
        let strict = GuardedResolver { allow_insecure: false };
        for refused in [
            "127.0.0.1",
            "192.0.0.8",
            "192.88.99.1",
            "198.18.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "3fff::1",
            "::ffff:10.0.0.1",
        ] {
            let name = Name::from_str(refused).expect("name");
            assert!(strict.resolve(name).await.is_err(), "{refused}");
        }
        for allowed in ["8.8.8.8", "2001:4860:4860::8888"] {
            let name = Name::from_str(allowed).expect("name");
            let addrs: Vec<SocketAddr> = strict.resolve(name).await.expect(allowed).collect();
            assert_eq!(addrs.len(), 1, "{allowed}");
        }
        let dev = GuardedResolver { allow_insecure: true };
        assert!(dev.resolve(Name::from_str("127.0.0.1").expect("name")).await.is_ok());
    }

    #[test]
    fn sends_only_to_https_on_port_443_of_public_hosts_unless_insecure() {
        let table = [
            ("https://fcm.googleapis.com/fcm/send/abc", true, true),
            ("https://push.example.com:443/x", true, true),
            ("https://8.8.8.8/x", true, true),
            ("https://[2001:4860:4860::8888]/x", true, true),
            // Names are checked after resolution by the resolver, not here.
            ("https://localhost/x", true, true),
            ("https://push.example.com:22/x", false, true),
            ("https://push.example.com:6379/x", false, true),
            ("https://8.8.8.8:8443/x", false, true),
            ("https://127.0.0.1/x", false, true),
            ("https://10.0.0.8/x", false, true),
            ("https://169.254.169.254/latest/meta-data", false, true),
            ("https://192.0.0.8/x", false, true),
            ("https://[::1]/x", false, true),
            ("https://[::ffff:127.0.0.1]/x", false, true),
            ("https://[64:ff9b::7f00:1]/x", false, true),
            ("https://[fe80::1]/x", false, true),
            ("http://push.example.com/x", false, true),
            ("http://127.0.0.1:9000/push/1", false, true),
            ("ftp://push.example.com/x", false, false),
            ("not a url", false, false),
        ];
        for (endpoint, strict, dev) in table {
            assert_eq!(is_sendable(endpoint, false).is_ok(), strict, "{endpoint} strict");
            assert_eq!(is_sendable(endpoint, true).is_ok(), dev, "{endpoint} dev");
        }
    }
}
