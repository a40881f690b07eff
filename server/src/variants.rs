//! Push A/B tests: `notification.variants` and `notification.holdout`
//! (checked here, each variant an [`Arm`] that `crate::personal` renders
//! per recipient, assigned by the core's `experiment::assign` of (device,
//! notification)), the `conversion` that measures them, and the report of
//! `GET /v1/notifications/{id}` (`experiment`): click-through and
//! conversion per variant with Wilson intervals, each variant against the
//! baseline and the holdout with the prompts' Newcombe difference and
//! verdict, optionally per value of a user trait (`?by=trait:plan`).

use askwell::personalise::Copy;
use serde_json::{json, Map, Value};

use crate::error::ErrorCode;
use crate::notification::VariantRequest;
use crate::stats::{compare, verdict, Labels, Proportion};
use crate::store::{Experiment, VariantCounts};
use crate::{AppError, AppState};

/// One copy of a notification: a variant's, or the only one.
#[derive(Debug)]
pub struct Arm {
    /// The variant's id (`None` without variants).
    pub(crate) id: Option<String>,
    /// Relative weight.
    pub(crate) weight: f64,
    /// The payload with this copy's sources in place.
    pub(crate) base: Map<String, Value>,
    /// Its templates, when it has placeholders.
    pub(crate) copy: Option<Copy>,
}

impl Arm {
    /// An arm as a rollout's plan stored it: its templates parsed again
    /// from the sources in `base` (checked when it was sent).
    ///
    /// # Errors
    /// When they no longer parse (a plan written by another version).
    pub fn from_stored(id: Option<String>, weight: f64, base: Map<String, Value>) -> Result<Self, String> {
        let text = |key: &str| base.get(key).and_then(Value::as_str);
        let action_titles: Vec<&str> = base
            .get("actions")
            .and_then(Value::as_array)
            .map(|actions| actions.iter().filter_map(|a| a["title"].as_str()).collect())
            .unwrap_or_default();
        let source = askwell::personalise::CopySource {
            prefix: "notification",
            title: text("title").unwrap_or_default(),
            body: text("body"),
            url: text("url"),
            image: text("image"),
            action_titles,
        };
        let copy = Copy::parse(&source, true).map_err(|problems| format!("its copy: {problems}"))?;
        let copy = copy.is_personal().then_some(copy);
        Ok(Self { id, weight, base, copy })
    }
}

/// The label of a holdout test's one copy (no variants).
pub const SENT: &str = "sent";

/// Default and longest `conversion.within`.
const DEFAULT_CONVERSION_MS: i64 = 24 * 3600 * 1000;
const MAX_CONVERSION_MS: i64 = 30 * 24 * 3600 * 1000;

/// `conversion`: `{ event, within? }` (an event name as `POST /v1/track`
/// takes them; `within` a duration, default a day, at most 30 days), only
/// with an A/B test or a holdout to measure it by. Returns `(event, ms)`.
///
/// # Errors
/// `invalid_notification` naming the member.
pub fn conversion(value: Option<Value>, experiment: bool) -> Result<Option<(String, i64)>, AppError> {
    let bad = |message: String| AppError::invalid(ErrorCode::InvalidNotification, message);
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if !experiment {
        return Err(bad(
            "conversion: only with notification.variants or notification.holdout (what it is measured by)".into(),
        ));
    }
    let Value::Object(mut members) = value else {
        return Err(bad("conversion: expected { event, within? }".into()));
    };
    let event = match members.remove("event") {
        Some(Value::String(name)) if crate::users::valid_event_name(&name) => name,
        _ => {
            return Err(bad(
                "conversion.event: expected an event name (1 to 64 of A-Z a-z 0-9 _ . : -)".into(),
            ))
        }
    };
    let within = match members.remove("within").filter(|v| !v.is_null()) {
        None => DEFAULT_CONVERSION_MS,
        Some(duration) => {
            let ms = askwell::journey::parse_duration(&crate::journeys::core_value(&duration), "conversion.within")
                .map_err(|problems| bad(problems.to_string()))?;
            i64::try_from(ms).unwrap_or(i64::MAX)
        }
    };
    if within > MAX_CONVERSION_MS {
        return Err(bad("conversion.within: at most 30 days".into()));
    }
    if let Some(other) = members.keys().next() {
        return Err(bad(format!(
            "conversion.{}: unknown field (expected event, within)",
            crate::users::shown(other)
        )));
    }
    Ok(Some((event, within)))
}

/// Most variants of one notification.
pub const MAX_VARIANTS: usize = 8;
/// Largest holdout share.
pub const MAX_HOLDOUT: f64 = 0.5;

/// `notification.variants` (none, or 2 to [`MAX_VARIANTS`], ids unique,
/// weights positive) and `notification.holdout` (0 to [`MAX_HOLDOUT`]).
///
/// # Errors
/// `invalid_notification` naming the field.
pub fn check_variants(variants: &[VariantRequest], holdout: Option<f64>) -> Result<(), AppError> {
    let bad = |message: String| AppError::invalid(ErrorCode::InvalidNotification, message);
    if let Some(share) = holdout {
        if !(0.0..=MAX_HOLDOUT).contains(&share) {
            return Err(bad(format!("notification.holdout: a share from 0 to {MAX_HOLDOUT}")));
        }
    }
    if variants.len() == 1 || variants.len() > MAX_VARIANTS {
        return Err(bad(format!(
            "notification.variants: 2 to {MAX_VARIANTS} variants (the first is the baseline), or none"
        )));
    }
    for (i, variant) in variants.iter().enumerate() {
        let valid = !variant.id.is_empty()
            && variant.id.len() <= 32
            && variant
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && variant.id != askwell::model::HOLDOUT;
        if !valid {
            return Err(bad(format!(
                "notification.variants[{i}].id: 1 to 32 of A-Z a-z 0-9 _ - (not {:?})",
                askwell::model::HOLDOUT
            )));
        }
        if let Some(earlier) = variants[..i].iter().position(|v| v.id == variant.id) {
            return Err(bad(format!(
                "notification.variants[{i}].id: already variants[{earlier}]'s"
            )));
        }
        if variant.weight.is_some_and(|w| !(w > 0.0 && w <= 1000.0)) {
            return Err(bad(format!(
                "notification.variants[{i}].weight: a number above 0, at most 1000"
            )));
        }
        if variant.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(bad(format!(
                "notification.variants[{i}].title: not blank (leave it out to keep the notification's)"
            )));
        }
    }
    Ok(())
}

/// The arms of a send: the payload `base` with each variant's fields in
/// place (or `base` alone), with the templates [`copies`] found.
pub fn arms(base: &Map<String, Value>, variants: &[VariantRequest], copies: Vec<Option<Copy>>) -> Vec<Arm> {
    if variants.is_empty() {
        let copy = copies.into_iter().next().flatten();
        return vec![Arm {
            id: None,
            weight: 1.0,
            base: base.clone(),
            copy,
        }];
    }
    variants
        .iter()
        .zip(copies)
        .map(|(variant, copy)| {
            let mut own = base.clone();
            for (key, text) in [
                ("title", &variant.title),
                ("body", &variant.body),
                ("url", &variant.url),
                ("image", &variant.image),
            ] {
                if let Some(text) = text {
                    own.insert(key.into(), Value::String(text.clone()));
                }
            }
            match variant.actions.as_deref() {
                // As the worker's payload writes it: no buttons, no field.
                Some([]) => {
                    own.remove("actions");
                }
                Some(actions) => {
                    let buttons = crate::notification::push_actions(actions);
                    own.insert("actions".into(), json!(buttons));
                }
                None => {}
            }
            Arm {
                id: Some(variant.id.clone()),
                weight: variant.weight.unwrap_or(1.0),
                base: own,
                copy,
            }
        })
        .collect()
}

/// An A/B test's report: per variant (and the holdout) its deliveries,
/// clicks and dismissals, click-through (clicked of delivered) with its 95%
/// interval, and each variant against the baseline (the first) with the
/// verdicts prompts get ("b beats a on click-through, p = 0.003", or how many
/// more deliveries it needs). With a `conversion` event, also conversion
/// (converted of those who could: delivered to, or withheld from, a user's
/// device), each variant against the baseline and against the holdout.
/// `None` for a notification without a test.
pub async fn experiment(state: &AppState, id: &str, by: Option<&str>) -> Result<Option<Value>, AppError> {
    let Some((experiment, rows)) = state.store.notification_variants(id, by).await? else {
        return Ok(None);
    };
    let mut answer = report(&experiment, &sum_groups(&rows));
    if let (Some(name), Some(report_json)) = (by, answer.as_mut()) {
        let mut values: Vec<Option<String>> = rows.iter().map(|r| r.group.clone()).collect();
        values.sort();
        values.dedup();
        let groups: Vec<Value> = values
            .into_iter()
            .map(|value| {
                let rows: Vec<_> = rows.iter().filter(|r| r.group == value).cloned().collect();
                json!({ "value": value, "report": report(&experiment, &rows) })
            })
            .collect();
        report_json["by"] = json!({ "trait": name, "groups": groups });
    }
    Ok(answer)
}

/// `?by=trait:<name>`: the trait to split an A/B test's report by.
pub fn breakdown(query: Option<&str>) -> Result<Option<String>, AppError> {
    let bad = || {
        AppError::invalid(
            ErrorCode::InvalidQuery,
            "by: expected trait:<name> (1 to 64 of A-Z a-z 0-9 _ . : -), the only parameter",
        )
    };
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let name = query
        .strip_prefix("by=trait:")
        .or_else(|| query.strip_prefix("by=trait%3A"))
        .ok_or_else(bad)?;
    if !askwell::segment::is_trait_name(name) {
        return Err(bad());
    }
    Ok(Some(name.to_owned()))
}

/// Each variant's counts over all groups.
fn sum_groups(rows: &[VariantCounts]) -> Vec<VariantCounts> {
    let mut summed: Vec<VariantCounts> = Vec::new();
    for row in rows {
        match summed.iter_mut().find(|s| s.variant == row.variant) {
            Some(sum) => {
                sum.deliveries += row.deliveries;
                sum.delivered += row.delivered;
                sum.clicked += row.clicked;
                sum.dismissed += row.dismissed;
                sum.reachable += row.reachable;
                sum.converted += row.converted;
                sum.converted_after_click += row.converted_after_click;
            }
            None => summed.push(VariantCounts {
                group: None,
                ..row.clone()
            }),
        }
    }
    summed
}

/// The report of one set of counts (all devices, or one group).
fn report(experiment: &Experiment, rows: &[VariantCounts]) -> Option<Value> {
    let order = &experiment.variants;
    let baseline = order.first()?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let of = |variant: &str| rows.iter().find(|r| r.variant == variant);
    let ctr = |variant: &str| {
        of(variant).map_or(Proportion::new(0, 0), |r| {
            Proportion::new(count(r.clicked), count(r.delivered))
        })
    };
    let cvr = |variant: &str| {
        of(variant).map_or(Proportion::new(0, 0), |r| {
            Proportion::new(count(r.converted), count(r.reachable))
        })
    };
    let converts = experiment.conversion.is_some();
    let variants: Vec<Value> = order
        .iter()
        .map(|variant| {
            let row = of(variant);
            let mut shown = json!({
                "id": variant,
                "deliveries": row.map_or(0, |r| r.deliveries),
                "delivered": row.map_or(0, |r| r.delivered),
                "clicked": row.map_or(0, |r| r.clicked),
                "dismissed": row.map_or(0, |r| r.dismissed),
                "click_through": ctr(variant).summary(),
            });
            if converts {
                shown["reachable"] = json!(row.map_or(0, |r| r.reachable));
                shown["converted"] = json!(row.map_or(0, |r| r.converted));
                shown["converted_after_click"] = json!(row.map_or(0, |r| r.converted_after_click));
                shown["conversion"] = json!(cvr(variant).summary());
            }
            shown
        })
        .collect();
    let judged = |baseline: &str, variant: &str, metric: &str, b: Proportion, v: Proportion| {
        let labels = Labels {
            baseline,
            variant,
            metric,
            trials: if metric == "conversion" {
                "recipients"
            } else {
                "deliveries"
            },
        };
        json!({ "difference": compare(b, v), "verdict": verdict(b, v, labels) })
    };
    let comparisons: Vec<Value> = order[1..]
        .iter()
        .map(|variant| {
            let mut shown = judged(baseline, variant, "click-through", ctr(baseline), ctr(variant));
            shown["variant"] = json!(variant);
            if converts {
                shown["conversion"] = judged(baseline, variant, "conversion", cvr(baseline), cvr(variant));
            }
            shown
        })
        .collect();
    let holdout_row = of(askwell::model::HOLDOUT);
    let mut answer = json!({
        "baseline": baseline,
        "variants": variants,
        "holdout": holdout_row.map_or(0, |r| r.deliveries),
        "comparisons": comparisons,
    });
    if let Some(plan) = &experiment.rollout {
        answer["rollout"] = crate::rollout::report(plan, of(crate::store::ROLLOUT_REST));
    }
    if let Some((event, within_ms)) = &experiment.conversion {
        let held = askwell::model::HOLDOUT;
        let lift: Vec<Value> = order
            .iter()
            .map(|variant| {
                let mut shown = judged(held, variant, "conversion", cvr(held), cvr(variant));
                shown["variant"] = json!(variant);
                shown
            })
            .collect();
        answer["conversion"] = json!({
            "event": event,
            "within_ms": within_ms,
            "holdout": {
                "reachable": holdout_row.map_or(0, |r| r.reachable),
                "converted": holdout_row.map_or(0, |r| r.converted),
                "conversion": cvr(held).summary(),
            },
            "lift": lift,
        });
    }
    Some(answer)
}
