//! Per-client limits for public writes (`/v1/events`): a token bucket of
//! events per client address (how fast) and a daily quota of stored events
//! (how much), kept in memory and swept so they cannot grow without bound.
//!
//! A client is its address ([`crate::client::address`]); IPv6 clients count
//! per /64, the block one household or phone gets, so rotating through its
//! own addresses buys an attacker nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much one client may send and store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Sustained events per second.
    pub per_second: f64,
    /// Events in a burst (a page flushing its outbox sends up to 200).
    pub burst: f64,
    /// Events stored per client per day.
    pub per_day: u64,
}

impl Default for Budget {
    /// 20 events/s, bursts of 400, 20,000 a day per client: far above what a
    /// page sends (a few per visit, at most 200 queued), far below what would
    /// fill a disk (issue: ~20,000 events in 5 s from one client before).
    fn default() -> Self {
        Self {
            per_second: 20.0,
            burst: 400.0,
            per_day: 20_000,
        }
    }
}

/// Why a client must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When to try again (`Retry-After`, whole seconds, at least 1).
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    day_started: Instant,
    stored_today: u64,
}

/// Token buckets and quotas by client.
#[derive(Debug)]
pub struct RateLimiter {
    budget: Budget,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

/// Clients tracked before idle ones are swept.
const MAX_CLIENTS: usize = 100_000;
const DAY: Duration = Duration::from_secs(24 * 3600);

impl RateLimiter {
    /// Limits to `budget` per client.
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            buckets: Mutex::default(),
        }
    }

    /// Takes `events` tokens for `client` (`None` when the address is
    /// unknown) and counts them against its daily quota.
    ///
    /// # Errors
    /// [`Refused`] with the wait when the client must slow down or has used
    /// its quota; nothing is taken then.
    pub fn take(&self, client: Option<IpAddr>, events: usize) -> Result<(), Refused> {
        self.take_at(client, events, Instant::now())
    }

    fn take_at(&self, client: Option<IpAddr>, events: usize, now: Instant) -> Result<(), Refused> {
        let budget = self.budget;
        let cost = events as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS {
            buckets.retain(|_, b| !b.is_idle(budget, now));
        }
        let bucket = buckets.entry(client.map(per_household)).or_insert(Bucket {
            tokens: budget.burst,
            at: now,
            day_started: now,
            stored_today: 0,
        });
        bucket.refill(budget, now);
        if bucket.stored_today + events as u64 > budget.per_day {
            let left = DAY.saturating_sub(now.duration_since(bucket.day_started));
            return Err(Refused {
                retry_after_secs: left.as_secs().max(1),
            });
        }
        if bucket.tokens < cost {
            // A batch larger than the burst could never pass: ask for one burst's wait.
            let missing = (cost.min(budget.burst) - bucket.tokens).max(0.0);
            let wait = (missing / budget.per_second.max(f64::MIN_POSITIVE)).ceil();
            return Err(Refused {
                retry_after_secs: (wait as u64).max(1),
            });
        }
        bucket.tokens -= cost;
        bucket.stored_today += events as u64;
        Ok(())
    }
}

impl Bucket {
    fn refill(&mut self, budget: Budget, now: Instant) {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * budget.per_second).min(budget.burst);
        self.at = now;
        if now.duration_since(self.day_started) >= DAY {
            self.day_started = now;
            self.stored_today = 0;
        }
    }

    /// Full again and past its day: forgetting it changes nothing.
    fn is_idle(&self, budget: Budget, now: Instant) -> bool {
        let tokens = self.tokens + now.duration_since(self.at).as_secs_f64() * budget.per_second;
        tokens >= budget.burst && (self.stored_today == 0 || now.duration_since(self.day_started) >= DAY)
    }
}

/// IPv6 addresses by their /64; IPv4 as they are.
fn per_household(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(Budget::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Budget = Budget {
        per_second: 2.0,
        burst: 3.0,
        per_day: 1000,
    };

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn allows_a_burst_then_the_sustained_rate_per_client() {
        let limiter = RateLimiter::new(SMALL);
        let start = Instant::now();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert!((0..3).all(|_| limiter.take_at(a, 1, start).is_ok()));
        assert_eq!(
            limiter.take_at(a, 1, start),
            Err(Refused { retry_after_secs: 1 }),
            "burst spent"
        );
        assert!(
            limiter.take_at(b, 1, start).is_ok(),
            "another client has its own bucket"
        );
        assert!(
            limiter.take_at(a, 1, start + Duration::from_millis(500)).is_ok(),
            "one token back after 0.5 s at 2/s"
        );
        assert!(limiter.take_at(a, 1, start + Duration::from_millis(600)).is_err());
    }

    #[test]
    fn a_batch_costs_one_token_per_event_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(Budget {
            per_second: 10.0,
            burst: 100.0,
            per_day: 1000,
        });
        let start = Instant::now();
        assert!(limiter.take_at(ip("192.0.2.1"), 100, start).is_ok());
        assert_eq!(
            limiter.take_at(ip("192.0.2.1"), 50, start),
            Err(Refused { retry_after_secs: 5 }),
            "50 events at 10/s"
        );
    }

    #[test]
    fn the_daily_quota_bounds_what_one_client_stores() {
        let limiter = RateLimiter::new(Budget {
            per_second: 1000.0,
            burst: 1000.0,
            per_day: 250,
        });
        let start = Instant::now();
        let a = ip("192.0.2.1");
        for i in 0..5 {
            assert!(limiter.take_at(a, 50, start + Duration::from_secs(i)).is_ok());
        }
        let refused = limiter.take_at(a, 1, start + Duration::from_secs(10));
        assert!(refused.is_err_and(|r| r.retry_after_secs > 80_000), "{refused:?}");
        assert!(
            limiter.take_at(a, 1, start + DAY + Duration::from_secs(1)).is_ok(),
            "a new day"
        );
    }

    #[test]
    fn ipv6_clients_count_per_64_block() {
        let limiter = RateLimiter::new(SMALL);
        let start = Instant::now();
        assert!(limiter.take_at(ip("2001:db8:1:2::1"), 3, start).is_ok());
        assert!(
            limiter.take_at(ip("2001:db8:1:2:ffff::9"), 1, start).is_err(),
            "same /64, same bucket"
        );
        assert!(limiter.take_at(ip("2001:db8:1:3::1"), 1, start).is_ok());
    }
}
