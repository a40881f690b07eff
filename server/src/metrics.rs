//! Prometheus metrics: deliveries by outcome, push-service latency, queue
//! depth, scheduled and cancelled deliveries, journey entries and sends.

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
    scheduled: AtomicU64,
    cancelled: AtomicU64,
    journey_entries: AtomicU64,
    journey_sends: AtomicU64,
    held: AtomicU64,
    capped: AtomicU64,
    collapsed: AtomicU64,
    muted: AtomicU64,
    paused: AtomicU64,
    /// Time spent in each [`Phase`] of delivery, in microseconds summed
    /// over the concurrent tasks.
    phase_micros: [AtomicU64; Phase::ALL.len()],
    /// The categories the fatigue guard pauses now, as last judged.
    paused_categories: std::sync::Mutex<Vec<String>>,
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
    /// Held by the delivery policy (over a cap, quiet hours).
    Held,
    /// Dropped by the delivery policy.
    Capped,
    /// Merged into a digest.
    Collapsed,
    /// Turned off by the person.
    Muted,
    /// Its category paused by the fatigue guard.
    Paused,
}

/// A step of delivering one batch, for the time breakdown
/// (`askwell_delivery_phase_seconds_total`, and the delivery benchmark's).
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Claiming a batch from the outbox (the claim and reading the rows).
    Claim,
    /// Checking the batch against preferences and the delivery policy.
    Admit,
    /// Encrypting and signing each push (RFC 8291, RFC 8292).
    Build,
    /// Waiting for one of the push service's slots (`per_origin` in flight).
    Wait,
    /// Waiting for the push service's answer.
    Request,
    /// Writing each outcome to the outbox.
    Record,
}

impl Phase {
    /// Every phase, in order, with its label.
    pub const ALL: [(Phase, &'static str); 6] = [
        (Phase::Claim, "claim"),
        (Phase::Admit, "admit"),
        (Phase::Wait, "wait"),
        (Phase::Build, "build"),
        (Phase::Request, "request"),
        (Phase::Record, "record"),
    ];
}

impl Metrics {
    /// Adds `elapsed` to the time spent in `phase`.
    pub fn add_phase(&self, phase: Phase, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.phase_micros[phase as usize].fetch_add(micros, Ordering::Relaxed);
    }

    /// Seconds spent in each phase so far (summed over concurrent tasks).
    pub fn phase_seconds(&self) -> [(&'static str, f64); Phase::ALL.len()] {
        Phase::ALL.map(|(phase, label)| {
            (
                label,
                self.phase_micros[phase as usize].load(Ordering::Relaxed) as f64 / 1e6,
            )
        })
    }

    /// Counts one attempt's result.
    pub fn count(&self, what: Counted) {
        let counter = match what {
            Counted::Delivered => &self.delivered,
            Counted::Retried => &self.retried,
            Counted::Failed => &self.failed,
            Counted::Pruned => &self.pruned,
            Counted::Held => &self.held,
            Counted::Capped => &self.capped,
            Counted::Collapsed => &self.collapsed,
            Counted::Muted => &self.muted,
            Counted::Paused => &self.paused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The categories the fatigue guard pauses now (`askwell_category_paused`).
    pub fn set_paused_categories(&self, categories: &[String]) {
        if let Ok(mut paused) = self.paused_categories.lock() {
            categories.clone_into(&mut paused);
        }
    }

    /// Counts newly stored funnel events.
    pub fn count_events(&self, stored: u64) {
        self.events.fetch_add(stored, Ordering::Relaxed);
    }

    /// Counts deliveries enqueued due later (`POST /v1/notify` `deliver`).
    pub fn count_scheduled(&self, deliveries: u64) {
        self.scheduled.fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Counts deliveries cancelled by `DELETE /v1/notifications/{id}`.
    pub fn count_cancelled(&self, deliveries: u64) {
        self.cancelled.fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Counts journey instances entered and notifications their send steps
    /// enqueued, as stored (see [`crate::journeys::Runner`]).
    pub fn count_journeys(&self, entered: u64, sent: u64) {
        self.journey_entries.fetch_add(entered, Ordering::Relaxed);
        self.journey_sends.fetch_add(sent, Ordering::Relaxed);
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
        out.push_str(
            "# HELP askwell_policy_total Claimed deliveries the delivery policy held (over a cap, quiet hours), dropped (capped), merged into a digest (collapsed), the person turned off or whose topic the device left (muted) or the fatigue guard paused (paused).\n# TYPE askwell_policy_total counter\n",
        );
        for (verdict, counter) in [
            ("held", &self.held),
            ("capped", &self.capped),
            ("collapsed", &self.collapsed),
            ("muted", &self.muted),
            ("paused", &self.paused),
        ] {
            let _ = writeln!(out, "askwell_policy_total{{verdict=\"{verdict}\"}} {}", load(counter));
        }
        out.push_str(
            "# HELP askwell_category_paused Categories the fatigue guard pauses now (fatigue.pause of the delivery policy): 1 while paused.\n# TYPE askwell_category_paused gauge\n",
        );
        if let Ok(paused) = self.paused_categories.lock() {
            for category in paused.iter() {
                let _ = writeln!(out, "askwell_category_paused{{category=\"{category}\"}} 1");
            }
        }
        let _ = writeln!(
            out,
            "# HELP askwell_events_total Funnel events stored.\n# TYPE askwell_events_total counter\naskwell_events_total {}",
            load(&self.events)
        );
        for (name, help, counter) in [
            (
                "askwell_scheduled_deliveries_total",
                "Deliveries enqueued due later (deliver).",
                &self.scheduled,
            ),
            (
                "askwell_cancelled_deliveries_total",
                "Deliveries cancelled before they were sent (DELETE /v1/notifications/{id}).",
                &self.cancelled,
            ),
            (
                "askwell_journey_entries_total",
                "Journey instances entered.",
                &self.journey_entries,
            ),
            (
                "askwell_journey_sends_total",
                "Notifications enqueued by journey send steps.",
                &self.journey_sends,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                load(counter)
            );
        }
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
        out.push_str("# HELP askwell_delivery_phase_seconds_total Time the delivery workers spent claiming, admitting, waiting for a slot of the push service, building (encrypting and signing), requesting and recording, summed over concurrent tasks.\n# TYPE askwell_delivery_phase_seconds_total counter\n");
        for (phase, seconds) in self.phase_seconds() {
            let _ = writeln!(
                out,
                "askwell_delivery_phase_seconds_total{{phase=\"{phase}\"}} {seconds}"
            );
        }
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

    #[test]
    fn renders_each_phase_under_its_own_label() {
        let metrics = Metrics::default();
        metrics.add_phase(Phase::Wait, Duration::from_millis(1500));
        metrics.add_phase(Phase::Record, Duration::from_millis(250));
        metrics.add_phase(Phase::Record, Duration::from_millis(250));
        let text = metrics.render(0);
        for line in [
            "askwell_delivery_phase_seconds_total{phase=\"wait\"} 1.5\n",
            "askwell_delivery_phase_seconds_total{phase=\"record\"} 0.5\n",
            "askwell_delivery_phase_seconds_total{phase=\"build\"} 0\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
    }

    #[test]
    fn renders_scheduled_cancelled_and_journey_counters() {
        let metrics = Metrics::default();
        metrics.count_scheduled(3);
        metrics.count_cancelled(2);
        metrics.count_journeys(5, 4);
        metrics.count_journeys(1, 0);
        let text = metrics.render(0);
        for line in [
            "# TYPE askwell_scheduled_deliveries_total counter\naskwell_scheduled_deliveries_total 3\n",
            "# TYPE askwell_cancelled_deliveries_total counter\naskwell_cancelled_deliveries_total 2\n",
            "# TYPE askwell_journey_entries_total counter\naskwell_journey_entries_total 6\n",
            "# TYPE askwell_journey_sends_total counter\naskwell_journey_sends_total 4\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
    }
}
