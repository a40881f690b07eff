//! The report from hand-made rows.

use super::*;

fn row(prompt: &str, variant: &str, kind: &str, events: i64, devices: i64) -> CountRow {
    CountRow {
        prompt: prompt.into(),
        variant: variant.into(),
        kind: EventKind::parse(kind).expect("an event kind"),
        events,
        devices,
    }
}

fn subscriber(variant: &str, at: i64, gone: Option<i64>, active: Option<i64>) -> SubscriberRow {
    SubscriberRow {
        prompt: "reply".into(),
        variant: variant.into(),
        subscribed_ms: at,
        unsubscribed_ms: gone,
        active_ms: active,
    }
}

const RANGE: StatsRange = StatsRange {
    from_ms: 0,
    to_ms: 100 * DAY_MS,
    synthetic: false,
};

fn inputs<'a>(counts: &'a [CountRow], subscribers: &'a [SubscriberRow]) -> Inputs<'a> {
    Inputs {
        range: RANGE,
        counts,
        days: &[],
        subscribers,
        deliveries: &[],
        now_ms: 60 * DAY_MS,
        baseline: None,
        floor: 0.2,
        reception: &[],
        fatigue: &GUARD,
        paused: &[],
    }
}

static GUARD: std::sync::LazyLock<askwell::delivery::FatigueGuard> = std::sync::LazyLock::new(Default::default);

#[test]
fn builds_the_funnel_and_compares_variants_with_the_baseline() {
    let counts = [
        row("reply", "a", "prompt_shown", 1000, 900),
        row("reply", "a", "subscribed", 40, 40),
        row("reply", "b", "prompt_shown", 1000, 950),
        row("reply", "b", "subscribed", 80, 80),
        row("reply", "b", "native_granted", 80, 80),
        row("reply", "b", "native_denied", 20, 20),
        row("reply", "holdout", "prompt_shown", 200, 200),
        row("reply", "holdout", "conversion", 30, 10),
    ];
    let report = report(&inputs(&counts, &[]));
    let prompt = &report.prompts[0];
    assert_eq!(prompt.baseline.as_deref(), Some("a"));
    let ids: Vec<&str> = prompt.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(ids, ["a", "b", "holdout"]);
    assert_eq!(prompt.variants[1].opt_in.rate, Some(0.08));
    assert_eq!(prompt.variants[2].conversion.rate, Some(0.05));
    let opt_in = prompt
        .comparisons
        .iter()
        .find(|c| c.metric == Metric::OptIn)
        .expect("opt-in");
    assert_eq!(opt_in.verdict.text, "b beats a on opt-in, p < 0.001");
    assert_eq!(report.native.granted, 80);
    assert_eq!(report.native.accept_rate.rate, Some(0.8));
    // Each arm against the holdout on conversion, too.
    let cohorts = prompt.comparisons.iter().filter(|c| c.baseline == "holdout").count();
    assert_eq!(cohorts, 2);
}

#[test]
fn an_empty_range_is_an_empty_report_not_an_error() {
    let report = report(&inputs(&[], &[]));
    assert!(report.prompts.is_empty());
    assert_eq!(report.native.accept_rate.rate, None);
}

#[test]
fn retention_counts_only_subscribers_old_enough_and_still_active() {
    let now = 60 * DAY_MS;
    let subscribers = [
        // Subscribed 50 days ago, active 40 days later: retained at 7 and 30.
        subscriber("a", now - 50 * DAY_MS, None, Some(now - 10 * DAY_MS)),
        // Unsubscribed after 3 days.
        subscriber("a", now - 50 * DAY_MS, Some(now - 47 * DAY_MS), Some(now - 10 * DAY_MS)),
        // Never active again.
        subscriber("a", now - 50 * DAY_MS, None, None),
        // Too recent for either window.
        subscriber("a", now - 2 * DAY_MS, None, Some(now)),
        // Active after 10 days only: retained at 7, not at 30.
        subscriber("a", now - 40 * DAY_MS, None, Some(now - 30 * DAY_MS)),
    ];
    let counts = [row("reply", "a", "prompt_shown", 10, 10)];
    let report = report(&inputs(&counts, &subscribers));
    let a = &report.prompts[0].variants[0];
    assert_eq!((a.retention_7d.eligible, a.retention_7d.retained), (4, 2));
    assert_eq!((a.retention_30d.eligible, a.retention_30d.retained), (4, 1));
}

#[test]
fn the_callers_baseline_wins_when_it_exists() {
    let counts = [
        row("reply", "x", "prompt_shown", 10, 10),
        row("reply", "y", "prompt_shown", 10, 10),
    ];
    let mut i = inputs(&counts, &[]);
    i.baseline = Some("y");
    assert_eq!(report(&i).prompts[0].baseline.as_deref(), Some("y"));
    i.baseline = Some("nope");
    assert_eq!(report(&i).prompts[0].baseline.as_deref(), Some("x"));
}
