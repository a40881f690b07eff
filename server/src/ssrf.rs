//! The SSRF guard at send time: a DNS resolver for the push client that
//! refuses non-public addresses, so an endpoint whose name later resolves to
//! 127.0.0.1 or the metadata service is never contacted.

use std::net::SocketAddr;

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
