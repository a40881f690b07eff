//! A synthetic population for the demo dashboard: devices that meet the demo
//! app's prompts, answer them, receive notifications, click, convert and
//! sometimes unsubscribe, with different true rates per variant. The events
//! go through the real `POST /v1/events` API flagged `synthetic` (admin
//! only), so they are stored apart and `GET /v1/stats?dataset=synthetic`
//! shows them; real stats never include them.
//!
//! Ids are derived from the seed, so running it again adds nothing new.

use crate::store::DAY_MS;
use askwell::model::{EventKind, HOLDOUT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One prompt arm and how people really respond to it.
#[derive(Debug, Clone, Copy)]
pub struct Arm {
    /// Prompt id (as in the demo config).
    pub prompt: &'static str,
    /// Variant id (`holdout`: never asked).
    pub variant: &'static str,
    /// Share of devices that meet this arm.
    pub share: f64,
    /// Chance to say "Yes" to the soft prompt.
    pub accept: f64,
    /// Chance to click a delivered notification.
    pub click: f64,
}

/// The demo's experiments: the contextual reply prompt (a) against a generic
/// one (b) with a 10% holdout, two episode-reminder copies, one restock prompt.
pub const DEMO_ARMS: &[Arm] = &[
    arm("reply-alerts", "a", 0.27, 0.11, 0.32),
    arm("reply-alerts", "b", 0.27, 0.06, 0.30),
    arm("reply-alerts", HOLDOUT, 0.06, 0.0, 0.0),
    arm("new-episodes", "a", 0.15, 0.08, 0.22),
    arm("new-episodes", "b", 0.15, 0.09, 0.25),
    arm("restock-alerts", "default", 0.10, 0.14, 0.40),
];

const fn arm(prompt: &'static str, variant: &'static str, share: f64, accept: f64, click: f64) -> Arm {
    Arm {
        prompt,
        variant,
        share,
        accept,
        click,
    }
}

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    /// Devices.
    pub devices: u32,
    /// Spread over this many days before `now_ms` (at most 29: the API
    /// refuses events older than 30 days).
    pub days: u32,
    /// Random seed (same seed, same people).
    pub seed: u64,
    /// The end of the simulated period.
    pub now_ms: i64,
}

/// Generates every device's events, oldest device first.
pub fn events(population: Population, arms: &[Arm]) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(population.seed);
    let span = i64::from(population.days.clamp(1, 29)) * DAY_MS;
    let start = population.now_ms - span;
    let total: f64 = arms.iter().map(|a| a.share).sum();
    let mut out = Vec::new();
    for device in 0..population.devices {
        let Some(arm) = pick(&mut rng, arms, total) else { break };
        let mut life = Life {
            events: &mut out,
            id: format!("sim{}-{device}", population.seed),
            arm,
            seq: 0,
            now_ms: population.now_ms,
        };
        let first = start + rng.gen_range(0..span);
        life.run(&mut rng, first);
    }
    out
}

fn pick<'a>(rng: &mut StdRng, arms: &'a [Arm], total: f64) -> Option<&'a Arm> {
    let mut point = rng.gen_range(0.0..total.max(f64::MIN_POSITIVE));
    arms.iter().find(|a| {
        point -= a.share;
        point < 0.0
    })
}

/// One device's story.
struct Life<'a> {
    events: &'a mut Vec<Value>,
    id: String,
    arm: &'a Arm,
    seq: u32,
    now_ms: i64,
}

impl Life<'_> {
    fn push(&mut self, kind: EventKind, at: i64, extra: Option<(&str, &str)>) {
        if at > self.now_ms {
            return;
        }
        self.seq += 1;
        let mut event = json!({
            "id": format!("{}-{}", self.id, self.seq),
            "type": kind.as_str(),
            "prompt": self.arm.prompt,
            "variant": self.arm.variant,
            "trigger": "simulated",
            "anon": self.id,
            "at": at,
        });
        if let Some((key, value)) = extra {
            event[key] = value.into();
        }
        self.events.push(event);
    }

    fn run(&mut self, rng: &mut StdRng, at: i64) {
        self.push(EventKind::PromptShown, at, None);
        let subscribed = self.arm.variant != HOLDOUT && self.answer(rng, at);
        let convert = if subscribed { 0.30 } else { 0.12 };
        if rng.gen_bool(convert) {
            let later = at + rng.gen_range(0..7 * DAY_MS);
            self.push(EventKind::Conversion, later, Some(("name", "replied")));
        }
        if subscribed {
            self.receive(rng, at);
        }
    }

    /// The soft prompt, then the browser's; true when subscribed.
    fn answer(&mut self, rng: &mut StdRng, at: i64) -> bool {
        let t = at + rng.gen_range(1_000..20_000);
        if !rng.gen_bool(self.arm.accept) {
            self.push(EventKind::PromptDismissed, t, None);
            return false;
        }
        self.push(EventKind::PromptAccepted, t, None);
        let native: f64 = rng.gen();
        let t = t + rng.gen_range(1_000..8_000);
        if native < 0.08 {
            self.push(EventKind::NativeDenied, t, None);
            return false;
        }
        if native < 0.12 {
            self.push(EventKind::NativeDismissed, t, None);
            return false;
        }
        self.push(EventKind::NativeGranted, t, None);
        self.push(EventKind::Subscribed, t + 800, None);
        true
    }

    /// Notifications every few days until the device unsubscribes.
    fn receive(&mut self, rng: &mut StdRng, subscribed_at: i64) {
        let leaves_after = rng
            .gen_bool(0.25)
            .then(|| subscribed_at + rng.gen_range(DAY_MS..25 * DAY_MS));
        let mut t = subscribed_at + rng.gen_range(DAY_MS / 4..3 * DAY_MS);
        while t <= self.now_ms && leaves_after.is_none_or(|gone| t < gone) {
            let delivery = format!("sim:{}-{t}", self.id);
            self.push(EventKind::NotificationDelivered, t, Some(("delivery", &delivery)));
            self.push(EventKind::NotificationShown, t + 2_000, Some(("delivery", &delivery)));
            let answer = if rng.gen_bool(self.arm.click) {
                EventKind::NotificationClicked
            } else {
                EventKind::NotificationDismissed
            };
            self.push(
                answer,
                t + rng.gen_range(10_000..3_600_000),
                Some(("delivery", &delivery)),
            );
            t += rng.gen_range(DAY_MS..4 * DAY_MS);
        }
        if let Some(gone) = leaves_after {
            self.push(EventKind::Unsubscribed, gone, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn population(devices: u32, seed: u64) -> Population {
        Population {
            devices,
            days: 28,
            seed,
            now_ms: NOW,
        }
    }

    fn count(events: &[Value], kind: EventKind, variant: &str) -> usize {
        events
            .iter()
            .filter(|e| e["type"] == kind.as_str() && e["variant"] == variant && e["prompt"] == "reply-alerts")
            .count()
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        assert_eq!(
            events(population(50, 3), DEMO_ARMS),
            events(population(50, 3), DEMO_ARMS)
        );
        assert_ne!(
            events(population(50, 3), DEMO_ARMS),
            events(population(50, 4), DEMO_ARMS)
        );
    }

    #[test]
    fn every_event_is_inside_the_window_the_api_accepts() {
        for event in events(population(500, 1), DEMO_ARMS) {
            let at = event["at"].as_i64().expect("at");
            assert!(at <= NOW && at > NOW - 30 * DAY_MS, "{event}");
        }
    }

    #[test]
    fn the_funnel_narrows_and_the_true_rates_show() {
        let all = events(population(6000, 9), DEMO_ARMS);
        for variant in ["a", "b"] {
            let shown = count(&all, EventKind::PromptShown, variant);
            let accepted = count(&all, EventKind::PromptAccepted, variant);
            let subscribed = count(&all, EventKind::Subscribed, variant);
            assert!(shown > accepted && accepted > subscribed && subscribed > 0, "{variant}");
        }
        let rate = |v| count(&all, EventKind::Subscribed, v) as f64 / count(&all, EventKind::PromptShown, v) as f64;
        assert!(rate("a") > rate("b"), "a's true opt-in (9.7%) beats b's (5.3%)");
        assert_eq!(
            count(&all, EventKind::PromptAccepted, HOLDOUT),
            0,
            "the holdout is never asked"
        );
    }
}
