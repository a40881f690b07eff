//! A small per-client rate limiter for public endpoints (`/v1/events`): a
//! token bucket per client IP, kept in memory and swept so it cannot grow
//! without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

/// Clients tracked before idle ones are swept.
const MAX_CLIENTS: usize = 100_000;

impl RateLimiter {
    /// `per_second` sustained requests with bursts of `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `client` (`None` when the address is unknown);
    /// false when the client must slow down.
    pub fn allow(&self, client: Option<IpAddr>) -> bool {
        self.allow_at(client, Instant::now())
    }

    fn allow_at(&self, client: Option<IpAddr>, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for RateLimiter {
    /// 20 batches per second per client, bursts of 100.
    fn default() -> Self {
        Self::new(20.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_sustained_rate_per_client() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let start = Instant::now();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        assert!((0..3).all(|_| limiter.allow_at(a, start)));
        assert!(!limiter.allow_at(a, start), "burst spent");
        assert!(limiter.allow_at(b, start), "another client has its own bucket");
        assert!(
            limiter.allow_at(a, start + Duration::from_millis(500)),
            "one token back after 0.5 s at 2/s"
        );
        assert!(!limiter.allow_at(a, start + Duration::from_millis(600)));
    }
}
