//! What a push service's answer means for a delivery (RFC 8030 §5, RFC 8292),
//! and when to try again. Pure, so every branch is tested without a network.

use std::time::Duration;

/// The next state of a delivery after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 201 (or any 2xx): the push service accepted it.
    Delivered,
    /// 404/410: the subscription is gone; delete it at once.
    Prune,
    /// Try again after this long (429 with Retry-After, 5xx, timeouts).
    Retry(Duration),
    /// Never retry (413 payload too large, other 4xx, too many attempts).
    Failed,
}

/// Retry policy: exponential backoff with full jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Attempts before giving up (the first try counts).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(15 * 60),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempt + 1`; `jitter` in [0, 1) spreads retries
    /// so a recovering push service is not hit by a synchronized wave.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.max);
        // Full jitter, but never less than half the ceiling (keeps order of magnitude).
        ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// Classifies one attempt. `status` is `None` for a transport error or
/// timeout; `retry_after` is the parsed `Retry-After` header.
pub fn classify(
    status: Option<u16>,
    retry_after: Option<Duration>,
    attempt: u32,
    backoff: &Backoff,
    jitter: f64,
) -> Outcome {
    let retry = |delay| {
        if attempt >= backoff.max_attempts {
            Outcome::Failed
        } else {
            Outcome::Retry(delay)
        }
    };
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(404 | 410) => Outcome::Prune,
        Some(429) => retry(
            retry_after
                .unwrap_or_else(|| backoff.delay(attempt, jitter))
                .min(backoff.max),
        ),
        Some(500..=599) | None => retry(
            retry_after
                .unwrap_or_else(|| backoff.delay(attempt, jitter))
                .min(backoff.max),
        ),
        Some(_) => Outcome::Failed,
    }
}

/// Parses `Retry-After` as delay-seconds (HTTP-date forms fall back to backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(60),
        max_attempts: 4,
    };

    #[test]
    fn status_table() {
        let table = [
            (Some(201), None, 1, Outcome::Delivered),
            (Some(200), None, 1, Outcome::Delivered),
            (Some(404), None, 1, Outcome::Prune),
            (Some(410), None, 3, Outcome::Prune),
            (Some(413), None, 1, Outcome::Failed),
            (Some(400), None, 1, Outcome::Failed),
            (Some(403), None, 1, Outcome::Failed),
            (
                Some(429),
                Some(Duration::from_secs(7)),
                1,
                Outcome::Retry(Duration::from_secs(7)),
            ),
            (Some(429), Some(Duration::from_secs(7)), 4, Outcome::Failed),
            (Some(503), None, 1, Outcome::Retry(Duration::from_secs(2))),
            (None, None, 2, Outcome::Retry(Duration::from_secs(4))),
            (Some(500), None, 4, Outcome::Failed),
        ];
        for (status, retry_after, attempt, expected) in table {
            assert_eq!(
                classify(status, retry_after, attempt, &B, 1.0),
                expected,
                "{status:?} attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(B.delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(B.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(B.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(B.delay(30, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_is_capped_and_parsed() {
        assert_eq!(
            classify(Some(429), Some(Duration::from_secs(86_400)), 1, &B, 0.0),
            Outcome::Retry(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
