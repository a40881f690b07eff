//! Statistics against published and independently computed values.
//! References: Newcombe (1998) Stat Med 17:873–890, examples (b) and (e);
//! the z-test values were cross-checked with statsmodels 0.14
//! `proportions_ztest` and `confint_proportions_2indep(method="newcomb")`.

use super::*;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected}, got {actual}"
    );
}

fn p(successes: u64, trials: u64) -> Proportion {
    Proportion::new(successes, trials)
}

const LABELS: Labels<'static> = Labels {
    baseline: "a",
    variant: "b",
    metric: "opt-in",
    trials: "impressions",
};

#[test]
fn wilson_interval_matches_newcombe_1998_example() {
    // Newcombe 1998a, 81/263: 0.2553 to 0.3662.
    let (low, high) = p(81, 263).wilson().expect("trials");
    close(low, 0.255_288_5, 1e-6);
    close(high, 0.366_209_6, 1e-6);
}

#[test]
fn wilson_interval_stays_inside_zero_and_one_at_the_extremes() {
    let (low, high) = p(0, 10).wilson().expect("trials");
    assert_eq!(low, 0.0);
    close(high, 0.277_532_8, 1e-6);
    let (low, high) = p(10, 10).wilson().expect("trials");
    close(low, 0.722_467_2, 1e-6);
    assert_eq!(high, 1.0);
}

#[test]
fn difference_interval_matches_newcombe_1998_example() {
    // 56/70 vs 48/80: difference 0.2000, 95% CI 0.0524 to 0.3339 (method 10).
    let c = compare(p(48, 80), p(56, 70)).expect("trials");
    close(c.difference, 0.2, 1e-12);
    close(c.low, 0.052_431_5, 1e-6);
    close(c.high, 0.333_872_7, 1e-6);
    // Pearson chi-square 7.023 without continuity correction = z².
    close(c.z, 2.650_171_95, 1e-6);
    close(c.p_value, 0.008_045_08, 1e-6);
}

#[test]
fn z_test_matches_an_independent_implementation() {
    for (baseline, variant, z, p_value, low, high) in [
        (
            p(30, 1000),
            p(45, 1000),
            1.765_469_66,
            0.077_484_87,
            -0.001_786_49,
            0.032_172_86,
        ),
        (
            p(12, 400),
            p(25, 400),
            2.188_392_49,
            0.028_641_03,
            0.003_118_09,
            0.063_391_24,
        ),
        (
            p(0, 10),
            p(3, 10),
            1.878_672_87,
            0.060_289_17,
            -0.037_592_43,
            0.603_221_85,
        ),
        (
            p(10, 10),
            p(9, 10),
            -1.025_978_35,
            0.304_901_79,
            -0.404_150_03,
            0.189_428_35,
        ),
    ] {
        let c = compare(baseline, variant).expect("trials");
        close(c.z, z, 1e-6);
        close(c.p_value, p_value, 1e-6);
        close(c.low, low, 1e-6);
        close(c.high, high, 1e-6);
    }
}

#[test]
fn symmetric_inputs_give_mirrored_results() {
    let ab = compare(p(30, 1000), p(45, 1000)).expect("trials");
    let ba = compare(p(45, 1000), p(30, 1000)).expect("trials");
    close(ab.z, -ba.z, 1e-12);
    close(ab.p_value, ba.p_value, 1e-12);
    close(ab.low, -ba.high, 1e-12);
}

#[test]
fn zero_impressions_have_no_rate_and_no_comparison() {
    assert_eq!(p(0, 0).rate(), None);
    assert_eq!(p(0, 0).summary(), Rate::default());
    assert_eq!(compare(p(0, 0), p(1, 10)), None);
    let v = verdict(p(0, 0), p(5, 100), LABELS);
    assert_eq!(v.outcome, Outcome::NeedMoreData);
    assert_eq!(v.text, "not enough data yet: no impressions for a");
}

#[test]
fn equal_extreme_rates_show_no_evidence() {
    let c = compare(p(0, 50), p(0, 80)).expect("trials");
    assert_eq!((c.z, c.p_value), (0.0, 1.0));
    let c = compare(p(50, 50), p(80, 80)).expect("trials");
    assert_eq!((c.z, c.p_value), (0.0, 1.0));
}

#[test]
fn more_successes_than_trials_are_capped() {
    assert_eq!(p(7, 5).rate(), Some(1.0));
}

#[test]
fn a_clear_winner_is_named_with_its_p_value() {
    let v = verdict(p(40, 1000), p(80, 1000), LABELS);
    assert_eq!(v.outcome, Outcome::Better);
    assert_eq!(v.text, "b beats a on opt-in, p < 0.001");
    let v = verdict(p(56, 70), p(48, 80), LABELS);
    assert_eq!(v.outcome, Outcome::Worse);
    assert_eq!(v.text, "a beats b on opt-in, p = 0.008");
}

#[test]
fn tiny_samples_never_declare_a_winner() {
    // 3/3 vs 0/3 has p ≈ 0.014, but 3 impressions per arm prove nothing.
    let v = verdict(p(0, 3), p(3, 3), LABELS);
    assert_eq!(v.outcome, Outcome::NeedMoreData);
    assert!(v.text.starts_with("not enough data yet"), "{}", v.text);
}

#[test]
fn an_underpowered_test_says_how_many_more_impressions() {
    let v = verdict(p(30, 1000), p(45, 1000), LABELS);
    assert_eq!(v.outcome, Outcome::NeedMoreData);
    // 3.0% → 4.5% needs 2,518 per arm (Fleiss, no continuity correction).
    assert_eq!(trials_per_arm(0.03, 0.045), Some(2518));
    assert_eq!(v.more_trials_needed, Some(2 * (2518 - 1000)));
    assert_eq!(v.text, "not enough data yet: need ~3100 more impressions");
}

#[test]
fn enough_data_without_a_difference_says_so() {
    // 10% vs 10.1% is no evidence, but 1,000 impressions per arm could not
    // have shown a 20% lift either (that needs ~3,800 per arm).
    let v = verdict(p(100, 1000), p(101, 1000), LABELS);
    assert_eq!(v.outcome, Outcome::NeedMoreData);
    assert_eq!(v.more_trials_needed.map(|n| n > 5000), Some(true));
    let v = verdict(p(5000, 20_000), p(5010, 20_000), LABELS);
    assert_eq!(v.outcome, Outcome::NoDifference);
    assert_eq!(v.text, "no clear difference between b and a on opt-in (p = 0.908)");
}

#[test]
fn sample_size_follows_fleiss_formula() {
    // 65% vs 85%, α = 0.05 two-sided, 80% power: 73 per arm without
    // continuity correction.
    assert_eq!(trials_per_arm(0.65, 0.85), Some(73));
    assert_eq!(trials_per_arm(0.1, 0.1), None);
}

#[test]
fn p_values_are_formatted_for_people() {
    assert_eq!(format_p(0.0032), "p = 0.003");
    assert_eq!(format_p(0.000_2), "p < 0.001");
    assert_eq!(round_2_significant(3026), 3100);
    assert_eq!(round_2_significant(87), 87);
}
