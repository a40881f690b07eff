//! Push A/B tests with a rollout (`POST /v1/notify` `rollout`): the
//! variants go to a test share of the devices first; the others wait
//! (`awaiting_winner`, nothing rendered or sent) until `decide_after` has
//! passed. Then the decision sends them the winner — only when a variant
//! beat the baseline significantly, with the significance level divided by
//! the number of variants (Bonferroni), so testing more copies does not
//! make noise more likely to win. Otherwise they get the baseline, and the
//! notification's report says so and why. Noise is never called a winner.
//!
//! The decision renders the rest from the plan stored with the
//! notification (each arm's copy, a batch's data) and the users' traits as
//! they are then; the rest's deliveries keep no variant, so the test's
//! report stays the test share's alone, and the rollout's own deliveries
//! and clicks are reported beside it.
//!
//! The clock is a parameter ([`decide_due`] takes `now_ms`): tests step it.
//! Several servers may run the decider: the decision is claimed in the
//! transaction that writes it, so it happens once.

use std::collections::HashMap;

use askwell::journey::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ErrorCode;
use crate::personal::Personal;
use crate::push::DeliveryStatus;
use crate::stats::{compare, verdict, Labels, Outcome, Proportion, ALPHA};
use crate::store::{DueRollout, Rendered, VariantCounts};
use crate::variants::Arm;
use crate::{AppError, AppState};

/// Smallest and largest test share.
const MIN_SHARE: f64 = 0.01;
const MAX_SHARE: f64 = 0.9;
/// Shortest and longest wait before the decision.
const MIN_WAIT_MS: i64 = 60 * 1000;
const MAX_WAIT_MS: i64 = 30 * 24 * 3600 * 1000;
/// Rollouts decided per round.
const DUE_BATCH: i64 = 20;

/// What a test is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Clicked of delivered.
    ClickThrough,
    /// Converted of those who could (the notification's `conversion`).
    Conversion,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::ClickThrough => "click-through",
            Metric::Conversion => "conversion",
        }
    }

    fn trials(self) -> &'static str {
        match self {
            Metric::ClickThrough => "deliveries",
            Metric::Conversion => "recipients",
        }
    }

    /// A variant's successes of trials on this metric.
    fn of(self, counts: Option<&VariantCounts>) -> Proportion {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        counts.map_or(Proportion::new(0, 0), |c| match self {
            Metric::ClickThrough => Proportion::new(count(c.clicked), count(c.delivered)),
            Metric::Conversion => Proportion::new(count(c.converted), count(c.reachable)),
        })
    }
}

/// A checked `rollout`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollout {
    /// The share of devices the variants are tested on.
    pub test_share: f64,
    /// How long after the send the test is decided.
    pub decide_after_ms: i64,
    /// What it is decided on.
    pub metric: Metric,
}

/// `rollout`: `{ test_share, decide_after, metric? }`, only with
/// `notification.variants` (`metric: "conversion"` only with `conversion`).
///
/// # Errors
/// `invalid_notification` naming the member.
pub fn parse(value: Option<Value>, variants: usize, conversion: bool) -> Result<Option<Rollout>, AppError> {
    let bad = |message: String| AppError::invalid(ErrorCode::InvalidNotification, message);
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if variants == 0 {
        return Err(bad(
            "rollout: only with notification.variants (the copies it picks a winner from)".into(),
        ));
    }
    let Value::Object(mut members) = value else {
        return Err(bad("rollout: expected { test_share, decide_after, metric? }".into()));
    };
    let test_share = match members.remove("test_share").as_ref().and_then(Value::as_f64) {
        Some(share) if (MIN_SHARE..=MAX_SHARE).contains(&share) => share,
        _ => {
            return Err(bad(format!(
                "rollout.test_share: the share of devices to test on, from {MIN_SHARE} to {MAX_SHARE}"
            )))
        }
    };
    let decide_after_ms = match members.remove("decide_after").filter(|v| !v.is_null()) {
        None => {
            return Err(bad(
                "rollout.decide_after: required, a duration such as { \"hours\": 4 }".into(),
            ))
        }
        Some(duration) => {
            let ms = askwell::journey::parse_duration(&crate::journeys::core_value(&duration), "rollout.decide_after")
                .map_err(|problems| bad(problems.to_string()))?;
            i64::try_from(ms).unwrap_or(i64::MAX)
        }
    };
    if !(MIN_WAIT_MS..=MAX_WAIT_MS).contains(&decide_after_ms) {
        return Err(bad("rollout.decide_after: from 1 minute to 30 days".into()));
    }
    let metric = match members.remove("metric") {
        None | Some(Value::Null) => Metric::ClickThrough,
        Some(Value::String(name)) if name == "click_through" => Metric::ClickThrough,
        Some(Value::String(name)) if name == "conversion" && conversion => Metric::Conversion,
        Some(Value::String(name)) if name == "conversion" => {
            return Err(bad(
                "rollout.metric: conversion needs the request's conversion { event, within }".into(),
            ))
        }
        Some(_) => return Err(bad("rollout.metric: click_through or conversion".into())),
    };
    if let Some(other) = members.keys().next() {
        return Err(bad(format!(
            "rollout.{}: unknown field (expected test_share, decide_after, metric)",
            crate::users::shown(other)
        )));
    }
    Ok(Some(Rollout {
        test_share,
        decide_after_ms,
        metric,
    }))
}

/// What is stored with the notification to render the rest from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The share tested on.
    pub test_share: f64,
    /// What the test is decided on.
    pub metric: Metric,
    /// Each arm's id, weight and payload with its template sources.
    pub arms: Vec<StoredArm>,
    /// A batch's data, for the rest's users.
    pub data: HashMap<String, Fields>,
}

/// An [`Arm`] as stored: its templates are parsed again from `base`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredArm {
    /// The variant's id.
    pub id: Option<String>,
    /// Its weight.
    pub weight: f64,
    /// Its payload with the template sources in place.
    pub base: Map<String, Value>,
}

/// What a decision picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The variant the rest gets.
    pub variant: String,
    /// Whether it won (else it is the baseline, for want of a winner).
    pub winner: bool,
    /// Why, in words.
    pub text: String,
}

/// Decides a test from each arm's successes of trials on `metric`
/// (`arms[0]` the baseline): the best-performing variant that beats the
/// baseline at p below 0.05 divided by the number of variants compared,
/// else the baseline. A variant never wins on too little data: the
/// prompts' verdict must be "better" first.
pub fn choose(metric: Metric, arms: &[(String, Proportion)]) -> Decision {
    let Some((baseline, base)) = arms.first() else {
        return Decision {
            variant: String::new(),
            winner: false,
            text: "no variants".into(),
        };
    };
    let compared = arms.len().saturating_sub(1).max(1);
    let level = ALPHA / compared as f64;
    let mut reasons = Vec::new();
    let mut best: Option<(&str, f64, String)> = None;
    for (id, proportion) in &arms[1..] {
        let labels = Labels {
            baseline,
            variant: id,
            metric: metric.label(),
            trials: metric.trials(),
        };
        let judged = verdict(*base, *proportion, labels);
        let p_value = compare(*base, *proportion).map_or(1.0, |c| c.p_value);
        let significant = judged.outcome == Outcome::Better && p_value < level;
        if significant {
            let rate = proportion.rate().unwrap_or(0.0);
            if best.as_ref().is_none_or(|(_, top, _)| rate > *top) {
                best = Some((id, rate, judged.text.clone()));
            }
        } else if judged.outcome == Outcome::Better {
            reasons.push(format!(
                "{}, short of p < {level:.3} for {compared} variants",
                judged.text
            ));
        } else {
            reasons.push(judged.text);
        }
    }
    match best {
        Some((id, _, text)) => Decision {
            variant: id.to_owned(),
            winner: true,
            text: if compared > 1 {
                format!("{text} (p < {level:.3} for {compared} variants): the rest got {id}")
            } else {
                format!("{text}: the rest got {id}")
            },
        },
        None => Decision {
            variant: baseline.clone(),
            winner: false,
            text: format!(
                "no winner: {}; the rest got {baseline}, the baseline",
                reasons.join("; ")
            ),
        },
    }
}

/// Decides every rollout due at `now_ms` and queues its rest; returns how
/// many were decided.
///
/// # Errors
/// When the database fails or a stored plan cannot be read; what was
/// decided stays decided and the rest is tried again.
pub async fn decide_due(state: &AppState, now_ms: i64) -> Result<usize, AppError> {
    let mut decided = 0;
    let mut failed = None;
    for due in state.store.rollouts_due(now_ms, DUE_BATCH).await? {
        match decide(state, &due, now_ms).await {
            Ok(true) => decided += 1,
            Ok(false) => {}
            // A plan this server cannot read will never read: closed, said
            // so, and its rest failed — never left to block the others.
            Err(Failure::Unreadable(why)) => {
                tracing::error!(notification = %due.id, %why, "rollout plan unreadable; its rest fails");
                let decision = json!({ "variant": null, "winner": false, "decided_ms": now_ms, "rest": 0,
                    "text": format!("the rollout could not be decided ({why}): the rest got nothing") });
                state
                    .store
                    .rollout_finish(
                        &due.id,
                        &decision.to_string(),
                        &due.plan,
                        &[],
                        DeliveryStatus::Failed,
                        now_ms,
                    )
                    .await?;
                decided += 1;
            }
            // Tried again next round; the others go on meanwhile.
            Err(Failure::App(err)) => failed = Some(err),
        }
    }
    match failed {
        Some(err) if decided == 0 => Err(err),
        Some(err) => {
            tracing::error!(error = %err, "a rollout decision failed; retrying");
            Ok(decided)
        }
        None => Ok(decided),
    }
}

/// Why a rollout was not decided.
enum Failure {
    /// Its plan or report cannot be read: it never will be.
    Unreadable(String),
    /// The database failed: next round.
    App(AppError),
}

impl From<AppError> for Failure {
    fn from(err: AppError) -> Self {
        Failure::App(err)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Failure::App(err.into())
    }
}

/// Runs [`decide_due`] every `every` until `stop`, waking the delivery
/// workers when a rest was queued.
pub async fn run(state: AppState, every: std::time::Duration, stop: crate::Stop) {
    while !stop.is_raised() {
        match decide_due(&state, crate::store::now_ms()).await {
            Ok(0) => {}
            Ok(_) => state.wake.notify_waiters(),
            Err(err) => tracing::error!(error = %err, "rollout decision failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.raised() => return,
        }
    }
}

async fn decide(state: &AppState, due: &DueRollout, now_ms: i64) -> Result<bool, Failure> {
    let unreadable = |what: String| Failure::Unreadable(what);
    let mut stored: Value = serde_json::from_str(&due.plan).map_err(|err| unreadable(format!("its plan: {err}")))?;
    // Once decided, a batch's data has no use left: not kept.
    stored["data"] = json!({});
    let kept = stored.to_string();
    if due.cancelled {
        let decision = json!({ "variant": null, "winner": false, "decided_ms": now_ms, "rest": 0,
            "text": "cancelled before the decision: the rest got nothing" });
        return Ok(state
            .store
            .rollout_finish(
                &due.id,
                &decision.to_string(),
                &kept,
                &[],
                DeliveryStatus::Cancelled,
                now_ms,
            )
            .await?);
    }
    let plan: Plan = serde_json::from_str(&due.plan).map_err(|err| unreadable(format!("its plan: {err}")))?;
    let (experiment, counts) = state
        .store
        .notification_variants(&due.id, None)
        .await?
        .ok_or_else(|| unreadable("no A/B test".into()))?;
    let arms: Vec<(String, Proportion)> = experiment
        .variants
        .iter()
        .map(|id| (id.clone(), plan.metric.of(counts.iter().find(|c| &c.variant == id))))
        .collect();
    let decision = choose(plan.metric, &arms);
    let index = experiment
        .variants
        .iter()
        .position(|id| *id == decision.variant)
        .ok_or_else(|| unreadable("the decision is not one of its variants".into()))?;
    let stored_arm = plan
        .arms
        .into_iter()
        .nth(index)
        .ok_or_else(|| unreadable("fewer arms than variants".into()))?;
    let arm = Arm::from_stored(stored_arm.id, stored_arm.weight, stored_arm.base).map_err(unreadable)?;
    let personal = Personal::new(vec![arm], 0.0, plan.data, due.id.clone());
    let (deliveries, recipients): (Vec<i64>, Vec<_>) = state.store.rollout_rest(&due.id).await?.into_iter().unzip();
    // As at the send: rendering many payloads is kept off the async workers.
    let rendered = tokio::task::spawn_blocking(move || personal.render_rest(recipients))
        .await
        .map_err(|err| unreadable(format!("rendering failed: {err}")))?;
    let rows: Vec<(i64, Rendered)> = deliveries.into_iter().zip(rendered).collect();
    let decision = json!({
        "variant": decision.variant,
        "winner": decision.winner,
        "text": decision.text,
        "decided_ms": now_ms,
        "rest": rows.len(),
    });
    Ok(state
        .store
        .rollout_finish(
            &due.id,
            &decision.to_string(),
            &kept,
            &rows,
            DeliveryStatus::Pruned,
            now_ms,
        )
        .await?)
}

/// The `rollout` part of an A/B test's report: the plan, when it is (or
/// was) decided, the decision, and the rest's own deliveries and clicks.
pub fn report(plan: &crate::store::RolloutPlan, rest: Option<&VariantCounts>) -> Value {
    let stored: Value = serde_json::from_str(&plan.plan).unwrap_or(Value::Null);
    let decision = plan
        .decision
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let clicks = Metric::ClickThrough.of(rest);
    json!({
        "test_share": stored["test_share"],
        "metric": stored["metric"],
        "decide_at_ms": plan.decide_ms,
        "decided": decision.is_some(),
        "decision": decision,
        "rest": {
            "deliveries": rest.map_or(0, |r| r.deliveries),
            "delivered": rest.map_or(0, |r| r.delivered),
            "clicked": rest.map_or(0, |r| r.clicked),
            "click_through": clicks.summary(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms(counts: &[(&str, u64, u64)]) -> Vec<(String, Proportion)> {
        counts
            .iter()
            .map(|(id, clicked, delivered)| ((*id).to_owned(), Proportion::new(*clicked, *delivered)))
            .collect()
    }

    #[test]
    fn a_clear_winner_is_sent_to_the_rest() {
        let decision = choose(Metric::ClickThrough, &arms(&[("a", 50, 1000), ("b", 100, 1000)]));
        assert!(decision.winner, "{decision:?}");
        assert_eq!(decision.variant, "b");
        assert!(
            decision.text.starts_with("b beats a on click-through, p < 0.001"),
            "{}",
            decision.text
        );
    }

    #[test]
    fn too_little_data_or_no_difference_sends_the_baseline_and_says_why() {
        let few = choose(Metric::ClickThrough, &arms(&[("a", 1, 10), ("b", 3, 10)]));
        assert!(!few.winner && few.variant == "a", "{few:?}");
        assert!(few.text.contains("not enough data yet"), "{}", few.text);
        assert!(few.text.ends_with("the rest got a, the baseline"), "{}", few.text);
        let same = choose(Metric::ClickThrough, &arms(&[("a", 100, 1000), ("b", 101, 1000)]));
        assert!(!same.winner && same.variant == "a", "{same:?}");
    }

    #[test]
    fn a_worse_variant_never_wins() {
        let worse = choose(Metric::ClickThrough, &arms(&[("a", 100, 1000), ("b", 40, 1000)]));
        assert!(!worse.winner && worse.variant == "a", "{worse:?}");
        assert!(worse.text.contains("a beats b"), "{}", worse.text);
    }

    #[test]
    fn more_variants_need_a_smaller_p_and_the_best_significant_one_wins() {
        // b against a: p ≈ 0.03 — a winner alone, not among three variants.
        let alone = choose(Metric::ClickThrough, &arms(&[("a", 100, 1000), ("b", 130, 1000)]));
        assert!(alone.winner, "{alone:?}");
        let three = choose(
            Metric::ClickThrough,
            &arms(&[("a", 100, 1000), ("b", 130, 1000), ("c", 95, 1000), ("d", 98, 1000)]),
        );
        assert!(!three.winner && three.variant == "a", "{three:?}");
        assert!(
            three.text.contains("short of p < 0.017 for 3 variants"),
            "{}",
            three.text
        );
        let best = choose(
            Metric::ClickThrough,
            &arms(&[("a", 50, 1000), ("b", 100, 1000), ("c", 150, 1000)]),
        );
        assert_eq!((best.variant.as_str(), best.winner), ("c", true), "{best:?}");
    }

    #[test]
    fn bad_rollouts_are_refused_naming_the_member() {
        let message = |value: Value, variants: usize, conversion: bool| match parse(Some(value), variants, conversion) {
            Err(AppError::Invalid { message, .. }) => message.into_owned(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let good = json!({ "test_share": 0.2, "decide_after": { "hours": 4 } });
        assert!(message(good.clone(), 0, false).starts_with("rollout: only with notification.variants"));
        assert!(message(json!({ "decide_after": { "hours": 4 } }), 2, false).starts_with("rollout.test_share"));
        assert!(
            message(json!({ "test_share": 1.0, "decide_after": { "hours": 4 } }), 2, false)
                .starts_with("rollout.test_share")
        );
        assert!(message(json!({ "test_share": 0.2 }), 2, false).starts_with("rollout.decide_after: required"));
        assert!(
            message(json!({ "test_share": 0.2, "decide_after": { "seconds": 5 } }), 2, false)
                .starts_with("rollout.decide_after: from 1 minute")
        );
        assert!(message(
            json!({ "test_share": 0.2, "decide_after": { "hours": 4 }, "metric": "conversion" }),
            2,
            false
        )
        .contains("needs the request's conversion"));
        assert!(message(
            json!({ "test_share": 0.2, "decide_after": { "hours": 4 }, "winner": "b" }),
            2,
            false
        )
        .starts_with("rollout.\"winner\": unknown field"));
        let parsed = parse(Some(good), 2, false).expect("valid").expect("a rollout");
        assert_eq!(
            parsed,
            Rollout {
                test_share: 0.2,
                decide_after_ms: 4 * 3600 * 1000,
                metric: Metric::ClickThrough
            }
        );
    }
}
