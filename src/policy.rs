//! Never nag: when a prompt may be shown again after "Not now" or "Yes".
//!
//! Pure functions of the stored state and `now_ms` (supplied by the glue,
//! because `SystemTime::now()` panics on wasm32).

use serde::{Deserialize, Serialize};

use crate::error::FieldProblems;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Policy settings; defaults follow DESIGN §4.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    /// Days to wait after the 1st, 2nd, … "Not now"; after the last, never again.
    pub cool_off_days: Vec<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            cool_off_days: vec![3, 7, 30],
        }
    }
}

impl Policy {
    pub(crate) fn validate(&self, path: &str, problems: &mut FieldProblems) {
        for (i, days) in self.cool_off_days.iter().enumerate() {
            if *days == 0 {
                problems.push(format!("{path}.coolOffDays[{i}]"), "expected a positive number of days");
            }
        }
    }
}

/// What the user did with a shown prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// "Yes" (or the accept action ran).
    Accepted,
    /// "Not now", Escape or closed.
    Dismissed,
}

/// Remembered history of one prompt, kept in storage by the glue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptState {
    /// How many times the user said "Not now".
    pub dismissals: u32,
    /// When the last "Not now" happened.
    pub last_dismissed_ms: Option<u64>,
    /// The user said "Yes"; this prompt is done.
    pub accepted: bool,
}

/// Whether the prompt may be shown at `now_ms`.
pub fn may_show(policy: &Policy, state: &PromptState, now_ms: u64) -> bool {
    if state.accepted {
        return false;
    }
    let Some(last) = state.last_dismissed_ms else {
        return state.dismissals == 0;
    };
    let step = state.dismissals.saturating_sub(1) as usize;
    match policy.cool_off_days.get(step) {
        Some(days) => now_ms >= last.saturating_add(u64::from(*days) * DAY_MS),
        None => false,
    }
}

/// Updates the state with what the user did at `now_ms`.
pub fn record(state: &mut PromptState, outcome: Outcome, now_ms: u64) {
    match outcome {
        Outcome::Accepted => state.accepted = true,
        Outcome::Dismissed => {
            state.dismissals = state.dismissals.saturating_add(1);
            state.last_dismissed_ms = Some(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after_dismissals(count: u32, at: u64) -> PromptState {
        let mut state = PromptState::default();
        for _ in 0..count {
            record(&mut state, Outcome::Dismissed, at);
        }
        state
    }

    #[test]
    fn cools_off_three_then_seven_then_thirty_days_then_stops() {
        let policy = Policy::default();
        for (dismissals, days) in [(1, 3), (2, 7), (3, 30)] {
            let state = after_dismissals(dismissals, 0);
            assert!(!may_show(&policy, &state, days * DAY_MS - 1), "{dismissals} dismissals");
            assert!(may_show(&policy, &state, days * DAY_MS), "{dismissals} dismissals");
        }
        assert!(!may_show(&policy, &after_dismissals(4, 0), 10_000 * DAY_MS));
    }

    #[test]
    fn never_shows_again_after_acceptance() {
        let mut state = PromptState::default();
        record(&mut state, Outcome::Accepted, 5);
        assert!(!may_show(&Policy::default(), &state, u64::MAX));
    }

    #[test]
    fn shows_a_fresh_prompt() {
        assert!(may_show(&Policy::default(), &PromptState::default(), 0));
    }
}
