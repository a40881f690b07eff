//! What "a public host" means for a push endpoint: the one definition used on
//! subscribe ([`super::endpoint`]), on send for IP literals
//! ([`crate::ssrf::is_sendable`]) and after DNS resolution
//! ([`crate::ssrf::GuardedResolver`]).
//!
//! Source: the IANA special-purpose address registries,
//! <https://www.iana.org/assignments/iana-ipv4-special-registry> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry> (RFC 6890,
//! RFC 8190), as published in October 2025 (IPv6 registry updated 2025-10-09).
//! Every entry whose "Globally Reachable" is False is refused, and so is every
//! block that is deprecated, reserved, or not forwardable. A few entries are
//! globally reachable but are infrastructure anycast (AS112 DNS sinks, AMT
//! relays, PCP/TURN anycast inside 192.0.0.0/24 and 2001::/23) that no push
//! service lives on; they are refused too, so a block is never half-open.
//! IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, compatible)
//! are judged by that IPv4 address.
//! Multicast (RFC 5771, RFC 4291 §2.7) lives in separate registries and is
//! added here, as is the deprecated IPv6 site-local block (RFC 3879).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks that are never a push service: (network, prefix length).
pub const V4_REFUSED: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network", RFC 791 §3.2
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private use, RFC 1918
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // shared address space (CGNAT), RFC 6598
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback, RFC 1122 §3.2.1.3
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link local (cloud metadata 169.254.169.254), RFC 3927
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private use, RFC 1918
    (Ipv4Addr::new(192, 0, 0, 0), 24),       // IETF protocol assignments, RFC 6890 §2.1
    (Ipv4Addr::new(192, 0, 2, 0), 24),       // documentation TEST-NET-1, RFC 5737
    (Ipv4Addr::new(192, 31, 196, 0), 24),    // AS112-v4 (reachable, a DNS sink), RFC 7535
    (Ipv4Addr::new(192, 52, 193, 0), 24),    // AMT relays (reachable, not push), RFC 7450
    (Ipv4Addr::new(192, 88, 99, 0), 24),     // deprecated 6to4 relay anycast, RFC 7526
    (Ipv4Addr::new(192, 168, 0, 0), 16),     // private use, RFC 1918
    (Ipv4Addr::new(192, 175, 48, 0), 24),    // direct delegation AS112 (reachable, a DNS sink), RFC 7534
    (Ipv4Addr::new(198, 18, 0, 0), 15),      // benchmarking, RFC 2544
    (Ipv4Addr::new(198, 51, 100, 0), 24),    // documentation TEST-NET-2, RFC 5737
    (Ipv4Addr::new(203, 0, 113, 0), 24),     // documentation TEST-NET-3, RFC 5737
    (Ipv4Addr::new(224, 0, 0, 0), 4),        // multicast, RFC 5771
    (Ipv4Addr::new(240, 0, 0, 0), 4),        // reserved, RFC 1112 §4
    (Ipv4Addr::new(255, 255, 255, 255), 32), // limited broadcast, RFC 919 §7
];

/// IPv6 blocks that are never a push service: (network, prefix length).
pub const V6_REFUSED: &[(Ipv6Addr, u8)] = &[
    // loopback, RFC 4291 §2.5.3
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128),
    // unspecified, RFC 4291 §2.5.2
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128),
    // local-use IPv4/IPv6 translation, RFC 8215
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    // discard-only, RFC 6666
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    // dummy prefix, RFC 9780
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64),
    // IETF protocol assignments (Teredo, ORCHID, …), RFC 2928
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    // documentation, RFC 3849
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    // direct delegation AS112 (reachable, a DNS sink), RFC 7534
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48),
    // documentation, RFC 9637
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
    // segment routing (SRv6) SIDs, RFC 9602
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),
    // unique local, RFC 4193
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    // link-local unicast, RFC 4291 §2.5.6
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    // deprecated site-local, RFC 3879
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
    // multicast, RFC 4291 §2.7
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// IPv6 blocks that carry an IPv4 address, which is where the packet really
/// goes: (network, prefix length, index of the IPv4 address's first octet).
/// Such an address is exactly as public as the IPv4 address inside it.
pub const V6_EMBEDDING_V4: &[(Ipv6Addr, u8, usize)] = &[
    // IPv4-mapped, RFC 4291 §2.5.5.2
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 12),
    // NAT64 well-known prefix, RFC 6052 §2.1
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, 12),
    // 6to4, RFC 3056 §2
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 2),
    // deprecated IPv4-compatible, RFC 4291 §2.5.5.1
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, 12),
];

/// IANA allocates global unicast only from 2000::/3 (IPv6 Address Space
/// registry); the rest is reserved by the IETF, so it is refused even where
/// the special-purpose registry has no entry (yet).
const V6_GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Whether an address may be contacted as a push service: not in any
/// special-purpose block above (for IPv6 forms carrying an IPv4 address, the
/// IPv4 address decides).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !V4_REFUSED.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if V6_REFUSED.iter().any(|&(net, prefix)| in_v6(ip, net, prefix)) {
        return false;
    }
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    in_v6(ip, V6_GLOBAL_UNICAST.0, V6_GLOBAL_UNICAST.1)
}

/// The IPv4 address an IPv6 address carries, if it is in an embedding block.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let octets = ip.octets();
    V6_EMBEDDING_V4
        .iter()
        .find(|&&(net, prefix, _)| in_v6(ip, net, prefix))
        .and_then(|&(_, _, at)| octets.get(at..at + 4))
        .and_then(|v4| <[u8; 4]>::try_from(v4).ok())
        .map(Ipv4Addr::from)
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_v4(net: Ipv4Addr, prefix: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(net) | (u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)))
    }

    fn last_v6(net: Ipv6Addr, prefix: u8) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(net) | (u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)))
    }

    #[test]
    fn refuses_every_special_purpose_block_from_its_first_to_its_last_address() {
        for &(net, prefix) in V4_REFUSED {
            for ip in [net, last_v4(net, prefix)] {
                assert!(!is_public(IpAddr::V4(ip)), "{ip} in {net}/{prefix}");
                let mapped = ip.to_ipv6_mapped();
                assert!(!is_public(IpAddr::V6(mapped)), "{mapped} maps {net}/{prefix}");
            }
        }
        for &(net, prefix) in V6_REFUSED {
            for ip in [net, last_v6(net, prefix)] {
                assert!(!is_public(IpAddr::V6(ip)), "{ip} in {net}/{prefix}");
            }
        }
    }

    #[test]
    fn addresses_just_outside_the_blocks_and_ordinary_hosts_are_public() {
        let table: &[(&str, bool)] = &[
            ("1.0.0.0", true),
            ("9.255.255.255", true),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("191.255.255.255", true),
            ("192.0.1.0", true),
            ("192.0.3.0", true),
            ("192.31.195.255", true),
            ("192.31.197.0", true),
            ("192.52.192.255", true),
            ("192.52.194.0", true),
            ("192.88.98.255", true),
            ("192.88.100.0", true),
            ("192.167.255.255", true),
            ("192.169.0.0", true),
            ("192.175.47.255", true),
            ("192.175.49.0", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("198.51.99.255", true),
            ("198.51.101.0", true),
            ("203.0.112.255", true),
            ("203.0.114.0", true),
            ("223.255.255.255", true),
            ("8.8.8.8", true),
            ("142.250.74.78", true),
            // Inside 192.0.0.0/24 but globally reachable (PCP, TURN): still refused.
            ("192.0.0.9", false),
            ("192.0.0.10", false),
            ("2001:200::", true),
            ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db9::", true),
            ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2003::", true),
            ("2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", true),
            ("2620:4f:8001::", true),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("3fff:1000::", true),
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001:80b::200a", true),
            ("2001:1::1", false),
            ("2001:3::1", false),
            // Outside 2000::/3 nothing is allocated for unicast.
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("4000::", false),
            ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("5f01::", false),
            ("64:ff9b:2::808:808", false),
            ("100:0:0:2::", false),
            // Embedded IPv4: the IPv4 address decides.
            ("::ffff:8.8.8.8", true),
            ("::ffff:127.0.0.1", false),
            ("::ffff:192.88.99.1", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::169.254.169.254", false),
            ("2002:808:808::1", true),
            ("2002:7f00:1::1", false),
            ("2002:a9fe:a9fe::", false),
            ("::8.8.8.8", true),
            ("::127.0.0.1", false),
            ("::169.254.169.254", false),
            ("::2", false),
        ];
        for &(text, public) in table {
            let ip: IpAddr = text.parse().expect("test address");
            assert_eq!(is_public(ip), public, "{text}");
        }
    }
}
