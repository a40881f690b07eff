//! Who the client is, for per-client limits: the connection's peer address,
//! or — only when that peer is a configured trusted reverse proxy — the
//! address the proxy saw, from `X-Forwarded-For`. Forwarded headers are
//! never trusted by default: any client can send them.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address range in CIDR form (`10.0.0.0/8`, `2001:db8::/32`, or a single
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `address` or `address/prefix`.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0 to {bits}"))?,
        };
        Ok(Self { address, prefix })
    }

    /// Whether `ip` is inside this range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    a & mask == b & mask
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
/// (entries further left were written by the client and prove nothing).
pub fn address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Network]) -> Option<IpAddr> {
    let peer = canonical(peer?);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(canonical(ip)) => continue,
            Ok(ip) => return Some(canonical(ip)),
            // A malformed hop: stop at the last address we can vouch for.
            Err(_) => break,
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().expect("header"));
        }
        map
    }

    #[test]
    fn networks_parse_and_match() {
        let net = Network::parse("10.0.0.0/8").expect("parses");
        assert!(net.contains("10.255.1.2".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.2.3".parse().expect("ip")));
        let single = Network::parse("2001:db8::1").expect("parses");
        assert!(single.contains("2001:db8::1".parse().expect("ip")));
        assert!(!single.contains("2001:db8::2".parse().expect("ip")));
        assert!(Network::parse("0.0.0.0/0")
            .expect("any")
            .contains("8.8.8.8".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", ""] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let client = "203.0.113.7".parse().ok();
        let proxy: IpAddr = "10.0.0.2".parse().expect("ip");
        let trusted = [Network::parse("10.0.0.0/8").expect("parses")];
        let spoofed = headers(&["198.51.100.1"]);
        assert_eq!(address(client, &spoofed, &[]), client, "untrusted peer: header ignored");
        assert_eq!(address(client, &spoofed, &trusted), client, "peer is not a proxy");
        let via_proxy = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(
            address(Some(proxy), &via_proxy, &trusted),
            client,
            "the right-most untrusted hop, not what the client wrote first"
        );
        let two_proxies = headers(&["203.0.113.7", "10.0.0.9"]);
        assert_eq!(address(Some(proxy), &two_proxies, &trusted), client);
        assert_eq!(address(Some(proxy), &headers(&[]), &trusted), Some(proxy));
        assert_eq!(address(Some(proxy), &headers(&["junk"]), &trusted), Some(proxy));
        assert_eq!(address(None, &spoofed, &trusted), None);
    }
}
