//! Deterministic variant assignment: the same anonymous id always gets the
//! same variant of a prompt, on every page load and in every tab, without a
//! server round trip.

/// A copy variant and its relative weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm<'a> {
    /// Variant id (`"a"`, `"b"`).
    pub id: &'a str,
    /// Relative weight (> 0).
    pub weight: f64,
}

/// The outcome of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment<'a> {
    /// Show this variant.
    Variant(&'a str),
    /// In the holdout: never shown this prompt (the control group).
    Holdout,
}

impl Assignment<'_> {
    /// The variant id as reported in events (`"holdout"` for the holdout).
    pub fn label(&self) -> &str {
        match self {
            Assignment::Variant(id) => id,
            Assignment::Holdout => crate::model::HOLDOUT,
        }
    }
}

/// Assigns `subject` (the anonymous id) to a holdout share or a weighted arm of
/// `experiment` (the prompt id). Independent experiments get independent draws.
pub fn assign<'a>(subject: &str, experiment: &str, holdout: f64, arms: &[Arm<'a>]) -> Assignment<'a> {
    let draw = unit(subject, experiment);
    if draw < holdout {
        return Assignment::Holdout;
    }
    let total: f64 = arms.iter().map(|arm| arm.weight.max(0.0)).sum();
    if total <= 0.0 {
        return Assignment::Holdout;
    }
    // Rescale the non-holdout part of [0, 1) onto the arms' weights.
    let mut point = (draw - holdout) / (1.0 - holdout) * total;
    for arm in arms {
        let weight = arm.weight.max(0.0);
        if point < weight {
            return Assignment::Variant(arm.id);
        }
        point -= weight;
    }
    arms.iter()
        .rev()
        .find(|arm| arm.weight > 0.0)
        .map_or(Assignment::Holdout, |arm| Assignment::Variant(arm.id))
}

/// Whether `subject` is in the first `share` (0 to 1) of `experiment`'s
/// subjects: a push A/B test's test share in a rollout. Its draw is
/// independent of [`assign`]'s (a different stream of the same hash), so
/// the test share holds every arm in its weights.
pub fn in_share(subject: &str, experiment: &str, share: f64) -> bool {
    let mut stream = String::with_capacity(experiment.len() + 6);
    stream.push_str(experiment);
    stream.push_str("#share");
    unit(subject, &stream) < share
}

/// A uniform number in [0, 1) from a 64-bit FNV-1a hash of both strings,
/// finished with a SplitMix64 mix so similar ids spread evenly.
fn unit(subject: &str, experiment: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in subject.bytes().chain([0]).chain(experiment.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: [Arm<'static>; 2] = [Arm { id: "a", weight: 1.0 }, Arm { id: "b", weight: 3.0 }];

    #[test]
    fn is_deterministic() {
        for i in 0..100 {
            let id = format!("anon-{i}");
            assert_eq!(assign(&id, "reply", 0.1, &AB), assign(&id, "reply", 0.1, &AB));
        }
    }

    #[test]
    fn follows_weights_and_holdout_share() {
        let n = 20_000;
        let (mut a, mut b, mut holdout) = (0, 0, 0);
        for i in 0..n {
            match assign(&format!("anon-{i}"), "reply", 0.1, &AB) {
                Assignment::Variant("a") => a += 1,
                Assignment::Variant(_) => b += 1,
                Assignment::Holdout => holdout += 1,
            }
        }
        let share = |k: i32| f64::from(k) / f64::from(n);
        assert!((share(holdout) - 0.10).abs() < 0.01, "holdout {}", share(holdout));
        assert!((share(a) - 0.225).abs() < 0.015, "a {}", share(a));
        assert!((share(b) - 0.675).abs() < 0.015, "b {}", share(b));
    }

    #[test]
    fn experiments_are_independent() {
        let n = 10_000;
        let same = (0..n)
            .filter(|i| {
                let id = format!("anon-{i}");
                let arms = [Arm { id: "a", weight: 1.0 }, Arm { id: "b", weight: 1.0 }];
                assign(&id, "one", 0.0, &arms) == assign(&id, "two", 0.0, &arms)
            })
            .count();
        assert!((same as f64 / n as f64 - 0.5).abs() < 0.03, "{same}");
    }

    #[test]
    fn a_share_takes_its_fraction_independently_of_the_arms() {
        let n = 20_000;
        let arms = [Arm { id: "a", weight: 1.0 }, Arm { id: "b", weight: 1.0 }];
        let (mut inside, mut a_inside) = (0, 0);
        for i in 0..n {
            let id = format!("device-{i}");
            assert_eq!(in_share(&id, "push-1", 0.2), in_share(&id, "push-1", 0.2));
            assert!(!in_share(&id, "push-1", 0.0) && in_share(&id, "push-1", 1.0));
            if in_share(&id, "push-1", 0.2) {
                inside += 1;
                if assign(&id, "push-1", 0.0, &arms) == Assignment::Variant("a") {
                    a_inside += 1;
                }
            }
        }
        let share = f64::from(inside) / f64::from(n);
        assert!((share - 0.2).abs() < 0.01, "share {share}");
        // Half of the test share is in each arm, as in the whole.
        let a_share = f64::from(a_inside) / f64::from(inside);
        assert!((a_share - 0.5).abs() < 0.03, "a in the share {a_share}");
    }

    #[test]
    fn no_positive_weight_means_holdout() {
        assert_eq!(
            assign("x", "p", 0.0, &[Arm { id: "a", weight: 0.0 }]),
            Assignment::Holdout
        );
    }
}
