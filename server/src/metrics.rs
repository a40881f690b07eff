//! Prometheus metrics: deliveries by outcome, push-service latency, queue depth.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Process-wide counters, shared by the workers and `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    pruned: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    events: AtomicU64,
}

/// An attempt's result, for counting.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    /// Accepted by the push service.
    Delivered,
    /// Scheduled for another attempt.
    Retried,
    /// Given up.
    Failed,
    /// Subscription deleted (404/410).
    Pruned,
}

impl Metrics {
    /// Counts one attempt's result.
    pub fn count(&self, what: Counted) {
        let counter = match what {
            Counted::Delivered => &self.delivered,
            Counted::Retried => &self.retried,
            Counted::Failed => &self.failed,
            Counted::Pruned => &self.pruned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts newly stored funnel events.
    pub fn count_events(&self, stored: u64) {
        self.events.fetch_add(stored, Ordering::Relaxed);
    }

    /// Records how long a push service took to answer.
    pub fn observe_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, queue_depth: i64) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str(
            "# HELP askwell_deliveries_total Push attempts by outcome.\n# TYPE askwell_deliveries_total counter\n",
        );
        for (status, counter) in [
            ("delivered", &self.delivered),
            ("retried", &self.retried),
            ("failed", &self.failed),
            ("pruned", &self.pruned),
        ] {
            let _ = writeln!(out, "askwell_deliveries_total{{status=\"{status}\"}} {}", load(counter));
        }
        let _ = writeln!(
            out,
            "# HELP askwell_events_total Funnel events stored.\n# TYPE askwell_events_total counter\naskwell_events_total {}",
            load(&self.events)
        );
        out.push_str("# HELP askwell_push_service_seconds Push service response time.\n# TYPE askwell_push_service_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "askwell_push_service_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "askwell_push_service_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "askwell_push_service_seconds_sum {}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "askwell_push_service_seconds_count {count}");
        out.push_str("# HELP askwell_queue_depth Deliveries waiting to be sent.\n# TYPE askwell_queue_depth gauge\n");
        let _ = writeln!(out, "askwell_queue_depth {queue_depth}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauge() {
        let metrics = Metrics::default();
        metrics.count(Counted::Delivered);
        metrics.count(Counted::Delivered);
        metrics.observe_latency(Duration::from_millis(30));
        let text = metrics.render(7);
        assert!(text.contains("askwell_deliveries_total{status=\"delivered\"} 2"));
        assert!(text.contains("askwell_push_service_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("askwell_push_service_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("askwell_queue_depth 7"));
    }
}
