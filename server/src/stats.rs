//! The statistics behind `GET /v1/stats`: rates with Wilson intervals, the
//! difference between two variants with Newcombe's hybrid score interval, the
//! pooled two-proportion z-test, the sample size still needed, and a plain
//! verdict. Pure functions, so every number is tested against published values.
//!
//! Why these methods: Wald intervals collapse at 0% and 100% (common for
//! fresh prompts), Wilson and Newcombe do not (Newcombe 1998, "Interval
//! estimation for the difference between independent proportions").

use serde::Serialize;

/// z for a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;
/// z for 80% power.
const Z_POWER_80: f64 = 0.841_621_233_572_914_3;
/// Significance level of verdicts.
pub const ALPHA: f64 = 0.05;
/// Smallest lift worth detecting when the observed one is smaller: 20% relative.
const MIN_RELATIVE_LIFT: f64 = 0.2;

/// `successes` out of `trials` (e.g. subscribed out of shown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Proportion {
    /// Events that count as success.
    pub successes: u64,
    /// Opportunities.
    pub trials: u64,
}

/// A rate with its 95% Wilson interval; all `None` without trials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rate {
    /// `successes / trials`.
    pub rate: Option<f64>,
    /// Lower bound of the 95% interval.
    pub low: Option<f64>,
    /// Upper bound of the 95% interval.
    pub high: Option<f64>,
}

impl Proportion {
    /// `successes` of `trials`; successes above trials are capped (events
    /// can arrive out of order, a rate above 100% would be meaningless).
    pub fn new(successes: u64, trials: u64) -> Self {
        Self {
            successes: successes.min(trials),
            trials,
        }
    }

    /// The observed rate, `None` without trials.
    pub fn rate(self) -> Option<f64> {
        (self.trials > 0).then(|| self.successes as f64 / self.trials as f64)
    }

    /// The 95% Wilson score interval.
    pub fn wilson(self) -> Option<(f64, f64)> {
        let p = self.rate()?;
        let n = self.trials as f64;
        let z2 = Z_95 * Z_95;
        let centre = p + z2 / (2.0 * n);
        let spread = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        let denominator = 1.0 + z2 / n;
        // At 0% and 100% the bound is exactly 0 or 1 (rounding would miss it).
        let low = if self.successes == 0 {
            0.0
        } else {
            ((centre - spread) / denominator).max(0.0)
        };
        let high = if self.successes == self.trials {
            1.0
        } else {
            ((centre + spread) / denominator).min(1.0)
        };
        Some((low, high))
    }

    /// Rate and interval together, for the API.
    pub fn summary(self) -> Rate {
        let interval = self.wilson();
        Rate {
            rate: self.rate(),
            low: interval.map(|i| i.0),
            high: interval.map(|i| i.1),
        }
    }
}

/// A variant compared with the baseline on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// `variant rate − baseline rate`.
    pub difference: f64,
    /// Lower bound of the 95% interval of the difference (Newcombe).
    pub low: f64,
    /// Upper bound of the 95% interval of the difference (Newcombe).
    pub high: f64,
    /// Pooled two-proportion z statistic.
    pub z: f64,
    /// Two-sided p-value of the z-test.
    pub p_value: f64,
}

/// Compares `variant` with `baseline`; `None` when either has no trials.
pub fn compare(baseline: Proportion, variant: Proportion) -> Option<Comparison> {
    let (p0, p1) = (baseline.rate()?, variant.rate()?);
    let (l0, u0) = baseline.wilson()?;
    let (l1, u1) = variant.wilson()?;
    let difference = p1 - p0;
    let low = difference - ((p1 - l1).powi(2) + (u0 - p0).powi(2)).sqrt();
    let high = difference + ((u1 - p1).powi(2) + (p0 - l0).powi(2)).sqrt();
    let (n0, n1) = (baseline.trials as f64, variant.trials as f64);
    let pooled = (baseline.successes + variant.successes) as f64 / (n0 + n1);
    let se = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1)).sqrt();
    // Both at 0% or both at 100%: no evidence of any difference.
    let z = if se > 0.0 { difference / se } else { 0.0 };
    Some(Comparison {
        difference,
        low,
        high,
        z,
        p_value: two_sided_p(z),
    })
}

/// Two-sided p-value of a standard normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Complementary error function (Numerical Recipes' `erfcc`, Chebyshev
/// fit with fractional error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ]
    .iter()
    .rev()
    .fold(0.0, |acc, c| c + t * acc);
    let answer = t * (-x * x + poly).exp();
    if x >= 0.0 {
        answer
    } else {
        2.0 - answer
    }
}

/// Trials per arm needed to detect `p0` → `p1` with a two-sided 5% test at
/// 80% power (Fleiss' formula without continuity correction).
pub fn trials_per_arm(p0: f64, p1: f64) -> Option<u64> {
    let delta = (p1 - p0).abs();
    if delta <= 0.0 || !delta.is_finite() {
        return None;
    }
    let mean = (p0 + p1) / 2.0;
    let root = Z_95 * (2.0 * mean * (1.0 - mean)).sqrt() + Z_POWER_80 * (p0 * (1.0 - p0) + p1 * (1.0 - p1)).sqrt();
    let n = (root / delta).powi(2).ceil();
    (n.is_finite() && n >= 0.0).then_some(n as u64)
}

/// How a variant did against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Significantly better.
    Better,
    /// Significantly worse.
    Worse,
    /// Enough data, no significant difference.
    NoDifference,
    /// Too little data to say.
    NeedMoreData,
}

/// A plain-language result, e.g. "b beats a on opt-in, p = 0.003".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The machine-readable outcome.
    pub outcome: Outcome,
    /// Extra trials (both arms together) still needed, when that is the verdict.
    pub more_trials_needed: Option<u64>,
    /// The sentence to show.
    pub text: String,
}

/// Names the two arms and the metric in a verdict.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The baseline's name.
    pub baseline: &'a str,
    /// The variant's name.
    pub variant: &'a str,
    /// The metric ("opt-in").
    pub metric: &'a str,
    /// What a trial is ("impressions").
    pub trials: &'a str,
}

/// Decides what `variant` vs `baseline` shows. A difference counts only when
/// p < 0.05 *and* the normal approximation holds (≥ 5 expected successes and
/// failures per arm); otherwise the verdict says how many more trials a
/// 20%-relative (or the observed, if larger) lift would need at 80% power.
pub fn verdict(baseline: Proportion, variant: Proportion, labels: Labels<'_>) -> Verdict {
    let Some(comparison) = compare(baseline, variant) else {
        return more_data(labels, None, baseline, variant);
    };
    if comparison.p_value < ALPHA && approximation_holds(baseline, variant) {
        let (winner, loser, outcome) = if comparison.difference > 0.0 {
            (labels.variant, labels.baseline, Outcome::Better)
        } else {
            (labels.baseline, labels.variant, Outcome::Worse)
        };
        let text = format!(
            "{winner} beats {loser} on {}, {}",
            labels.metric,
            format_p(comparison.p_value)
        );
        return Verdict {
            outcome,
            more_trials_needed: None,
            text,
        };
    }
    let needed = more_trials(baseline, variant);
    if needed.is_none_or(|n| n > 0) || !approximation_holds(baseline, variant) {
        return more_data(labels, needed, baseline, variant);
    }
    Verdict {
        outcome: Outcome::NoDifference,
        more_trials_needed: None,
        text: format!(
            "no clear difference between {} and {} on {} ({})",
            labels.variant,
            labels.baseline,
            labels.metric,
            format_p(comparison.p_value)
        ),
    }
}

fn more_data(labels: Labels<'_>, needed: Option<u64>, baseline: Proportion, variant: Proportion) -> Verdict {
    let text = match (needed, baseline.trials, variant.trials) {
        (_, 0, _) => format!("not enough data yet: no {} for {}", labels.trials, labels.baseline),
        (_, _, 0) => format!("not enough data yet: no {} for {}", labels.trials, labels.variant),
        (Some(n), _, _) if n > 0 => format!(
            "not enough data yet: need ~{} more {}",
            round_2_significant(n),
            labels.trials
        ),
        _ => format!("not enough data yet: too few {} to test", labels.trials),
    };
    Verdict {
        outcome: Outcome::NeedMoreData,
        more_trials_needed: needed.filter(|n| *n > 0),
        text,
    }
}

/// Extra trials (both arms) to detect the larger of the observed lift and a
/// 20% relative lift; `None` when the baseline has no data to plan from.
fn more_trials(baseline: Proportion, variant: Proportion) -> Option<u64> {
    let p0 = baseline.rate()?;
    let p1 = variant.rate().unwrap_or(p0);
    let target = if p0 > 0.0 { p0 * MIN_RELATIVE_LIFT } else { 0.01 };
    let lift = (p1 - p0).abs().max(target);
    let p1 = if p1 >= p0 {
        (p0 + lift).min(1.0)
    } else {
        (p0 - lift).max(0.0)
    };
    let per_arm = trials_per_arm(p0, p1)?;
    Some(per_arm.saturating_sub(baseline.trials) + per_arm.saturating_sub(variant.trials))
}

/// The z-test's normal approximation needs ≥ 5 expected successes and
/// failures in each arm (under the pooled rate).
fn approximation_holds(a: Proportion, b: Proportion) -> bool {
    let trials = a.trials + b.trials;
    if trials == 0 {
        return false;
    }
    let pooled = (a.successes + b.successes) as f64 / trials as f64;
    [a.trials, b.trials]
        .iter()
        .all(|&n| n as f64 * pooled >= 5.0 && n as f64 * (1.0 - pooled) >= 5.0)
}

/// "p = 0.003", or "p < 0.001" for tiny values.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {p:.3}")
    }
}

/// 12,345 → 12,000: a sample-size estimate is not precise to the unit.
fn round_2_significant(n: u64) -> u64 {
    if n < 100 {
        return n;
    }
    let magnitude = 10u64.pow(n.ilog10() - 1);
    n.div_ceil(magnitude) * magnitude
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
