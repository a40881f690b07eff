//! Never nag: whether a prompt may be shown now, and what happened after.
//!
//! Pure functions of stored state and `now_ms` (supplied by the glue, because
//! `SystemTime::now()` panics on wasm32). Defaults are the README's *Never nagging*
//! list (cool-offs 3 → 7 → 30 days, 30 s apart, 1 per session, 3 per week).

use crate::sorted::SortedSet;

use crate::rules::{days, Permission};

/// Policy settings (global; cool-offs may be overridden per prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Days to wait after the 1st, 2nd, … "Not now"; after the last, never again.
    pub cool_off_days: Vec<u64>,
    /// Minimum time between two prompts of any kind.
    pub min_gap_ms: u64,
    /// Prompts per tab session.
    pub per_session: u32,
    /// Prompts per rolling 7 days.
    pub per_week: u32,
    /// Stop auto-offering push prompts when the native accept rate is below this.
    pub accept_rate_floor: f64,
    /// Over how many recent native prompts the accept rate is measured.
    pub accept_rate_window: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            cool_off_days: vec![3, 7, 30],
            min_gap_ms: 30_000,
            per_session: 1,
            per_week: 3,
            accept_rate_floor: DEFAULT_ACCEPT_RATE_FLOOR,
            accept_rate_window: 10,
        }
    }
}

/// What a prompt does when accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Web Push opt-in: native permission, then subscribe to the topic.
    Push,
    /// Any other ask (email opt-in, upsell): opens a URL or calls back.
    Action,
    /// "How to turn notifications back on", offered instead of push when denied.
    Help,
}

/// What showing a push prompt will lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Accepting asks the browser for permission (the one native prompt).
    Permission,
    /// Already subscribed: accepting only adds a topic, no native prompt.
    AddTopic,
    /// Not a push prompt.
    Plain,
}

/// The default native accept-rate floor (`policy.acceptRateFloor`): below
/// it push prompts pause. The server's stats use it as their default line.
pub const DEFAULT_ACCEPT_RATE_FLOOR: f64 = 0.2;

/// Why a prompt is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Accepted before for this topic/entity.
    AlreadyAccepted,
    /// Inside the cool-off after "Not now", until this time.
    CoolingOff(u64),
    /// Declined as many times as there are cool-off steps: never again.
    Exhausted,
    /// Another prompt was shown less than the minimum gap ago.
    TooSoon,
    /// The per-session budget is spent.
    SessionBudget,
    /// The rolling 7-day budget is spent.
    WeeklyBudget,
    /// Notifications are blocked; the native prompt can never be shown again.
    PermissionDenied,
    /// Push is not available in this browser.
    Unsupported,
    /// Already subscribed to this topic.
    AlreadySubscribed,
    /// The native accept rate is below the floor (Chrome's quiet UI threat).
    AcceptRateGuard,
    /// The answer could not be remembered: the topic or key is longer than
    /// the server takes, or the device already keeps as many topics or
    /// answers as it stores (see [`crate::state::State::can_keep`]).
    Unstorable,
}

impl Suppressed {
    /// Stable name for events and debugging.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyAccepted => "already-accepted",
            Self::CoolingOff(_) => "cooling-off",
            Self::Exhausted => "exhausted",
            Self::TooSoon => "too-soon",
            Self::SessionBudget => "session-budget",
            Self::WeeklyBudget => "weekly-budget",
            Self::PermissionDenied => "permission-denied",
            Self::Unsupported => "unsupported",
            Self::AlreadySubscribed => "already-subscribed",
            Self::AcceptRateGuard => "accept-rate-guard",
            Self::Unstorable => "unstorable",
        }
    }
}

/// Remembered history of one prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptState {
    /// How many times the user said "Not now".
    pub dismissals: u32,
    /// When the last "Not now" happened.
    pub last_dismissed_ms: Option<u64>,
    /// Keys (topic or entity id, `""` for none) the user said "Yes" to.
    pub accepted: SortedSet,
}

/// Device-wide history across prompts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// When prompts were shown (last 7 days, bounded).
    pub shown_ms: Vec<u64>,
    /// Recent native prompt outcomes: `true` = granted.
    pub native: Vec<bool>,
}

/// The push side of the device: permission and current subscription topics.
#[derive(Debug, Clone, Copy)]
pub struct PushStatus<'a> {
    /// Notification permission.
    pub permission: Permission,
    /// Whether a push subscription exists.
    pub subscribed: bool,
    /// Topics of that subscription.
    pub topics: &'a SortedSet,
}

/// One candidate prompt, as the engine asks about it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Prompt kind.
    pub kind: Kind,
    /// Topic or entity key this ask is about (`""` if none).
    pub key: &'a str,
    /// This prompt's cool-off steps (its own or the global ones).
    pub cool_off_days: &'a [u64],
    /// Prompts already shown in this tab session.
    pub session_shown: u32,
}

const WEEK_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Whether `ask` may be shown at `now_ms`, and what accepting it will do.
///
/// # Errors
/// The first [`Suppressed`] reason that applies.
pub(crate) fn may_show(
    policy: &Policy,
    prompt: &PromptState,
    ledger: &Ledger,
    push: PushStatus<'_>,
    ask: Ask<'_>,
    now_ms: u64,
) -> Result<Offer, Suppressed> {
    if prompt.accepted.contains(ask.key) {
        return Err(Suppressed::AlreadyAccepted);
    }
    cool_off(prompt, ask.cool_off_days, now_ms)?;
    let offer = push_offer(policy, ledger, push, ask)?;
    budget(policy, ledger, ask.session_shown, now_ms)?;
    Ok(offer)
}

fn cool_off(prompt: &PromptState, steps: &[u64], now_ms: u64) -> Result<(), Suppressed> {
    let Some(last) = prompt.last_dismissed_ms else {
        return Ok(());
    };
    let step = prompt.dismissals.saturating_sub(1) as usize;
    let days_to_wait = steps.get(step).ok_or(Suppressed::Exhausted)?;
    let until = last.saturating_add(days(*days_to_wait));
    if now_ms < until {
        Err(Suppressed::CoolingOff(until))
    } else {
        Ok(())
    }
}

fn push_offer(policy: &Policy, ledger: &Ledger, push: PushStatus<'_>, ask: Ask<'_>) -> Result<Offer, Suppressed> {
    match (ask.kind, push.permission) {
        (Kind::Action, _) => Ok(Offer::Plain),
        (Kind::Help, Permission::Denied) => Ok(Offer::Plain),
        (Kind::Help, _) => Err(Suppressed::AlreadySubscribed),
        (Kind::Push, Permission::Denied) => Err(Suppressed::PermissionDenied),
        (Kind::Push, Permission::Unsupported) => Err(Suppressed::Unsupported),
        (Kind::Push, Permission::Granted) if push.subscribed => {
            if ask.key.is_empty() || push.topics.contains(ask.key) {
                Err(Suppressed::AlreadySubscribed)
            } else {
                Ok(Offer::AddTopic)
            }
        }
        (Kind::Push, _) if !accept_rate_ok(policy, ledger) => Err(Suppressed::AcceptRateGuard),
        (Kind::Push, _) => Ok(Offer::Permission),
    }
}

/// The accept rate over the last `window` native prompts, once there are that many.
pub fn accept_rate(policy: &Policy, ledger: &Ledger) -> Option<f64> {
    let window = policy.accept_rate_window.max(1);
    if ledger.native.len() < window {
        return None;
    }
    let recent = &ledger.native[ledger.native.len() - window..];
    Some(recent.iter().filter(|granted| **granted).count() as f64 / window as f64)
}

fn accept_rate_ok(policy: &Policy, ledger: &Ledger) -> bool {
    accept_rate(policy, ledger).is_none_or(|rate| rate >= policy.accept_rate_floor)
}

fn budget(policy: &Policy, ledger: &Ledger, session_shown: u32, now_ms: u64) -> Result<(), Suppressed> {
    if ledger
        .shown_ms
        .last()
        .is_some_and(|last| now_ms < last.saturating_add(policy.min_gap_ms))
    {
        return Err(Suppressed::TooSoon);
    }
    if session_shown >= policy.per_session {
        return Err(Suppressed::SessionBudget);
    }
    let this_week = ledger.shown_ms.iter().filter(|t| within_week(**t, now_ms)).count();
    if this_week >= policy.per_week as usize {
        return Err(Suppressed::WeeklyBudget);
    }
    Ok(())
}

fn within_week(shown_ms: u64, now_ms: u64) -> bool {
    shown_ms.saturating_add(WEEK_MS) > now_ms
}

/// Records that a prompt was shown at `now_ms`; keeps only the last week.
pub(crate) fn record_shown(ledger: &mut Ledger, now_ms: u64) {
    ledger.shown_ms.retain(|t| within_week(*t, now_ms));
    ledger.shown_ms.push(now_ms);
}

/// Records "Yes" for `key`.
pub(crate) fn record_accepted(prompt: &mut PromptState, key: &str) {
    prompt.accepted.insert(key.to_owned());
}

/// Records "Not now" at `now_ms`: starts the next cool-off step.
pub(crate) fn record_dismissed(prompt: &mut PromptState, now_ms: u64) {
    prompt.dismissals = prompt.dismissals.saturating_add(1);
    prompt.last_dismissed_ms = Some(now_ms);
}

/// Most native outcomes kept.
pub const NATIVE_LIMIT: usize = 50;

/// Records the answer to a native permission prompt.
pub(crate) fn record_native(ledger: &mut Ledger, granted: bool) {
    ledger.native.push(granted);
    if ledger.native.len() > NATIVE_LIMIT {
        ledger.native.remove(0);
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
