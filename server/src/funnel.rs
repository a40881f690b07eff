//! Turns the grouped rows of [`crate::store::Store::stats_counts`] and friends
//! into the `GET /v1/stats` report: the funnel per prompt × variant, rates
//! with intervals, variant comparisons with verdicts, retention, time series.
//! Pure, so it is tested without a database; [`load`] runs the queries
//! behind it.

mod load;
mod metric;

use std::collections::BTreeMap;

use askwell::model::EventKind;
use serde::Serialize;

pub use load::{load, Query};
pub use metric::Metric;

use crate::push::DeliveryStatus;
use crate::stats::{self, Labels, Proportion, Rate, Verdict};
use crate::store::{CountRow, DayRow, DeliveryRow, ReceptionRow, StatsRange, SubscriberRow, DAY_MS};

/// The variant id of a prompt's holdout group.
pub use askwell::model::HOLDOUT;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Inclusive start (epoch ms).
    pub from: i64,
    /// Exclusive end (epoch ms).
    pub to: i64,
    /// `"real"` or `"synthetic"` (simulated; never mixed with real data).
    pub dataset: &'static str,
    /// One entry per prompt, sorted by id.
    pub prompts: Vec<PromptReport>,
    /// The native permission prompt across all prompts.
    pub native: NativeReport,
    /// Deliveries per day and status (real data only).
    pub deliveries: Vec<DeliveryDay>,
    /// How each category's and topic's pushes were received, flagged when
    /// they tire people (the delivery policy's fatigue guard).
    pub fatigue: Vec<FatigueReport>,
    /// The categories the fatigue guard pauses now (`fatigue.pause`,
    /// judged over its trailing window, whatever the report's range).
    pub paused_categories: Vec<String>,
}

/// One category's or topic's reception (see [`askwell::delivery::FatigueGuard`]).
#[derive(Debug, Clone, Serialize)]
pub struct FatigueReport {
    /// `"category"` or `"topic"`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Delivered in the range.
    pub delivered: u64,
    /// Of them, clicked.
    pub clicked: u64,
    /// Of them, dismissed without a click.
    pub dismissed: u64,
    /// Of them, to a device unsubscribed since.
    pub unsubscribed: u64,
    /// `"dismissed"` or `"unsubscribed"` when the guard flags it, else null.
    pub flagged: Option<&'static str>,
    /// A category the fatigue guard pauses now: its pushes end `paused`.
    pub paused: bool,
}

/// One prompt's experiment.
#[derive(Debug, Clone, Serialize)]
pub struct PromptReport {
    /// Prompt id.
    pub prompt: String,
    /// The variant others are compared with.
    pub baseline: Option<String>,
    /// Its variants (the holdout last).
    pub variants: Vec<VariantReport>,
    /// Each variant against the baseline (and against the holdout on conversion).
    pub comparisons: Vec<ComparisonReport>,
    /// Shown and subscribed per day and variant.
    pub daily: Vec<DayPoint>,
}

/// The funnel of one variant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VariantReport {
    /// Variant id.
    pub variant: String,
    /// Whether this is the holdout (its `shown` counts devices held out).
    pub holdout: bool,
    /// Counts per event type.
    pub counts: BTreeMap<String, i64>,
    /// Distinct devices that saw the prompt (or were held out).
    pub devices: i64,
    /// Distinct devices that converted.
    pub converted_devices: i64,
    /// subscribed / shown.
    pub opt_in: Rate,
    /// native_granted / (native_granted + native_denied).
    pub native_accept: Rate,
    /// Clicked / delivered notifications.
    pub click_through: Rate,
    /// Converted devices / exposed devices.
    pub conversion: Rate,
    /// Subscribers still subscribed and active 7 days later.
    pub retention_7d: Retention,
    /// … and 30 days later.
    pub retention_30d: Retention,
}

/// Retention after some days.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Retention {
    /// Subscribers who subscribed long enough ago to be judged.
    pub eligible: u64,
    /// Of them, still subscribed and active after the period.
    pub retained: u64,
    /// retained / eligible with its interval.
    pub rate: Rate,
}

/// A variant against another on one metric.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    /// What is compared.
    pub metric: Metric,
    /// The reference arm.
    pub baseline: String,
    /// The compared arm.
    pub variant: String,
    /// `variant − baseline` with its 95% interval, p-value and z.
    pub difference: Option<stats::Comparison>,
    /// The plain-language result.
    pub verdict: Verdict,
}

/// One day of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct DayPoint {
    /// Start of the day (UTC, epoch ms).
    pub day: i64,
    /// Variant id.
    pub variant: String,
    /// Prompts shown.
    pub shown: i64,
    /// Subscriptions.
    pub subscribed: i64,
}

/// The browser's own prompt, across prompts.
#[derive(Debug, Clone, Serialize)]
pub struct NativeReport {
    /// "Allow" answers.
    pub granted: i64,
    /// "Block" answers.
    pub denied: i64,
    /// Closed without an answer.
    pub dismissed: i64,
    /// granted / (granted + denied).
    pub accept_rate: Rate,
    /// The page's guard floor: below it, push prompts pause.
    pub floor: f64,
}

/// Deliveries of one day by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryDay {
    /// Start of the day (UTC, epoch ms).
    pub day: i64,
    /// Count per status.
    pub statuses: BTreeMap<String, i64>,
}

/// Everything the report is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// Range and dataset.
    pub range: StatsRange,
    /// Grouped counts.
    pub counts: &'a [CountRow],
    /// Daily counts.
    pub days: &'a [DayRow],
    /// Subscribers for retention.
    pub subscribers: &'a [SubscriberRow],
    /// Deliveries per day.
    pub deliveries: &'a [DeliveryRow],
    /// Now (retention needs to know which subscribers are old enough).
    pub now_ms: i64,
    /// Baseline variant chosen by the caller.
    pub baseline: Option<&'a str>,
    /// Accept-rate floor to draw.
    pub floor: f64,
    /// Per category and topic, how their pushes were received.
    pub reception: &'a [ReceptionRow],
    /// What counts as tiring.
    pub fatigue: &'a askwell::delivery::FatigueGuard,
    /// The categories it pauses now.
    pub paused: &'a [String],
}

/// Builds the report.
pub fn report(inputs: &Inputs<'_>) -> Report {
    let mut prompts: BTreeMap<&str, BTreeMap<&str, VariantReport>> = BTreeMap::new();
    for row in inputs.counts {
        let variant = prompts
            .entry(&row.prompt)
            .or_default()
            .entry(&row.variant)
            .or_insert_with(|| new_variant(&row.variant));
        variant.counts.insert(row.kind.as_str().to_owned(), row.events);
        match row.kind {
            EventKind::PromptShown => variant.devices = row.devices,
            EventKind::Conversion => variant.converted_devices = row.devices,
            _ => {}
        }
    }
    let prompts = prompts
        .into_iter()
        .map(|(prompt, variants)| prompt_report(prompt, variants, inputs))
        .collect();
    Report {
        from: inputs.range.from_ms,
        to: inputs.range.to_ms,
        dataset: if inputs.range.synthetic { "synthetic" } else { "real" },
        native: native(inputs.counts, inputs.floor),
        prompts,
        deliveries: deliveries(inputs.deliveries),
        fatigue: inputs
            .reception
            .iter()
            .map(|row| FatigueReport {
                kind: row.kind,
                name: row.name.clone(),
                delivered: row.reception.delivered,
                clicked: row.reception.clicked,
                dismissed: row.reception.dismissed,
                unsubscribed: row.reception.unsubscribed,
                flagged: inputs
                    .fatigue
                    .judge(row.reception)
                    .map(askwell::delivery::Tired::as_str),
                paused: row.kind == "category" && inputs.paused.contains(&row.name),
            })
            .collect(),
        paused_categories: inputs.paused.to_vec(),
    }
}

fn new_variant(id: &str) -> VariantReport {
    VariantReport {
        variant: id.to_owned(),
        holdout: id == HOLDOUT,
        ..VariantReport::default()
    }
}

fn count(variant: &VariantReport, kind: EventKind) -> u64 {
    variant
        .counts
        .get(kind.as_str())
        .copied()
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

fn positive(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn prompt_report(prompt: &str, variants: BTreeMap<&str, VariantReport>, inputs: &Inputs<'_>) -> PromptReport {
    let mut variants: Vec<VariantReport> = variants.into_values().collect();
    // The holdout last; the rest by id.
    variants.sort_by_key(|v| (v.holdout, v.variant.clone()));
    for variant in &mut variants {
        fill_rates(variant, prompt, inputs);
    }
    let baseline = choose_baseline(&variants, inputs.baseline);
    let comparisons = comparisons(&variants, baseline.as_deref());
    PromptReport {
        prompt: prompt.to_owned(),
        baseline,
        daily: daily(prompt, inputs.days),
        variants,
        comparisons,
    }
}

fn fill_rates(variant: &mut VariantReport, prompt: &str, inputs: &Inputs<'_>) {
    variant.opt_in = Metric::OptIn.of(variant).summary();
    variant.click_through = Metric::ClickThrough.of(variant).summary();
    variant.conversion = Metric::Conversion.of(variant).summary();
    let granted = count(variant, EventKind::NativeGranted);
    variant.native_accept = Proportion::new(granted, granted + count(variant, EventKind::NativeDenied)).summary();
    let subscribers: Vec<&SubscriberRow> = inputs
        .subscribers
        .iter()
        .filter(|s| s.prompt == prompt && s.variant == variant.variant)
        .collect();
    variant.retention_7d = retention(&subscribers, 7, inputs.now_ms);
    variant.retention_30d = retention(&subscribers, 30, inputs.now_ms);
}

/// Share of subscribers (old enough to judge) with no unsubscribe within
/// `days` and some activity at or after `days`.
fn retention(subscribers: &[&SubscriberRow], days: i64, now_ms: i64) -> Retention {
    let period = days * DAY_MS;
    let eligible: Vec<&&SubscriberRow> = subscribers
        .iter()
        .filter(|s| s.subscribed_ms + period <= now_ms)
        .collect();
    let retained = eligible
        .iter()
        .filter(|s| {
            let kept = s.unsubscribed_ms.is_none_or(|gone| gone > s.subscribed_ms + period);
            let active = s.active_ms.is_some_and(|at| at >= s.subscribed_ms + period);
            kept && active
        })
        .count() as u64;
    let eligible = eligible.len() as u64;
    Retention {
        eligible,
        retained,
        rate: Proportion::new(retained, eligible).summary(),
    }
}

/// The caller's choice if present, else `control`, else `a`, else the first
/// non-holdout variant.
fn choose_baseline(variants: &[VariantReport], wanted: Option<&str>) -> Option<String> {
    let arms: Vec<&str> = variants
        .iter()
        .filter(|v| !v.holdout)
        .map(|v| v.variant.as_str())
        .collect();
    [wanted, Some("control"), Some("a")]
        .into_iter()
        .flatten()
        .find(|id| arms.contains(id))
        .or(arms.first().copied())
        .map(str::to_owned)
}

fn comparisons(variants: &[VariantReport], baseline: Option<&str>) -> Vec<ComparisonReport> {
    let mut out = Vec::new();
    let Some(base) = baseline.and_then(|b| variants.iter().find(|v| v.variant == b)) else {
        return out;
    };
    for variant in variants.iter().filter(|v| !v.holdout && v.variant != base.variant) {
        for metric in Metric::ALL {
            out.push(compare(base, variant, metric));
        }
    }
    // Cohorts: does being asked at all change conversion?
    if let Some(holdout) = variants.iter().find(|v| v.holdout) {
        for variant in variants.iter().filter(|v| !v.holdout) {
            out.push(compare(holdout, variant, Metric::Conversion));
        }
    }
    out
}

fn compare(base: &VariantReport, variant: &VariantReport, metric: Metric) -> ComparisonReport {
    let (b, v) = (metric.of(base), metric.of(variant));
    let (label, trials) = metric.words();
    let labels = Labels {
        baseline: &base.variant,
        variant: &variant.variant,
        metric: label,
        trials,
    };
    ComparisonReport {
        metric,
        baseline: base.variant.clone(),
        variant: variant.variant.clone(),
        difference: stats::compare(b, v),
        verdict: stats::verdict(b, v, labels),
    }
}

fn daily(prompt: &str, days: &[DayRow]) -> Vec<DayPoint> {
    let mut points: BTreeMap<(i64, &str), DayPoint> = BTreeMap::new();
    for row in days.iter().filter(|d| d.prompt == prompt) {
        let point = points.entry((row.day, &row.variant)).or_insert_with(|| DayPoint {
            day: row.day * DAY_MS,
            variant: row.variant.clone(),
            shown: 0,
            subscribed: 0,
        });
        match row.kind {
            EventKind::PromptShown => point.shown += row.events,
            EventKind::Subscribed => point.subscribed += row.events,
            _ => {}
        }
    }
    points.into_values().collect()
}

fn native(counts: &[CountRow], floor: f64) -> NativeReport {
    let total = |kind: EventKind| counts.iter().filter(|c| c.kind == kind).map(|c| c.events).sum::<i64>();
    let (granted, denied) = (total(EventKind::NativeGranted), total(EventKind::NativeDenied));
    NativeReport {
        granted,
        denied,
        dismissed: total(EventKind::NativeDismissed),
        accept_rate: Proportion::new(positive(granted), positive(granted + denied)).summary(),
        floor,
    }
}

fn deliveries(rows: &[DeliveryRow]) -> Vec<DeliveryDay> {
    let mut days: BTreeMap<i64, DeliveryDay> = BTreeMap::new();
    for row in rows {
        let day = days.entry(row.day).or_insert_with(|| DeliveryDay {
            day: row.day * DAY_MS,
            statuses: BTreeMap::new(),
        });
        // A first attempt due later is `scheduled`, not `queued` (as in
        // GET /v1/notifications/{id}).
        let mut add = |status: &str, count: i64| {
            if count > 0 {
                *day.statuses.entry(status.to_owned()).or_default() += count;
            }
        };
        match row.status {
            DeliveryStatus::Queued => {
                add("scheduled", row.later);
                add(DeliveryStatus::Queued.as_str(), row.count - row.later);
            }
            status => add(status.as_str(), row.count),
        }
    }
    days.into_values().collect()
}

#[cfg(test)]
#[path = "funnel_tests.rs"]
mod tests;
