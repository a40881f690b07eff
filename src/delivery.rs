//! The delivery policy: what keeps "never nag" true after a Yes. Caps per
//! person on a rolling day and week, quiet hours in the recipient's local
//! time, what happens to a push over a cap or inside quiet hours (`hold` it
//! until allowed, or `drop` it), categories that are exempt (`transactional`,
//! `security`) and categories with rules of their own (`marketing`: one a
//! day) — and the digest: pushes held with the same topic go out as one.
//!
//! Pure, like the prompt policy for the page: askwell-server reads the
//! policy at start ([`DeliveryPolicy::read`], every bad field named by
//! path), and when a worker claims a delivery it asks [`DeliveryPolicy::decide`]
//! with the person's recent sends (the outbox is the ledger) and acts on the
//! [`Verdict`]. Rules, in the order they apply:
//! - An exempt category always goes, now, and is not counted.
//! - A cap counts the person's sends in the trailing 24 hours / 7 days: the
//!   site's caps count every non-exempt send, a category's own caps count
//!   that category's sends only. At the cap, `hold` waits until enough of
//!   those sends are older than the window; `drop` ends the push as
//!   `capped`.
//! - Quiet hours are a local window (`["21:00", "08:00"]` spans midnight).
//!   Inside it, `hold` waits for its end (the DST rule of
//!   [`crate::journey::Deliver`]: an end inside a spring-forward gap is
//!   moved past it); `drop` ends the push.
//! - A held push goes out at the first instant both allow: never inside
//!   quiet hours, never over a cap (the property tests check it).
//! - Held pushes released together go oldest first; those sharing a topic
//!   collapse into the newest ([`collapse`]), which carries their count.

mod read;
pub use read::{is_category, MAX_CATEGORIES, MAX_LABEL_CHARS};
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::tz::TimeZone;

use crate::journey::{Deliver, LocalTime};

/// A rolling day, in ms.
pub const DAY_MS: u64 = 86_400_000;
/// A rolling week, in ms.
pub const WEEK_MS: u64 = 7 * DAY_MS;

/// What happens to a push the policy does not let through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Wait until it is allowed.
    Hold,
    /// End it (status `capped`): visible in the counts, never sent.
    Drop,
}

/// Most sends per person per rolling window (`None`: no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Per trailing 24 hours.
    pub day: Option<u32>,
    /// Per trailing 7 days.
    pub week: Option<u32>,
}

/// Local hours in which nothing non-exempt is sent: `from` up to `to`; a
/// `to` before `from` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    /// Start of the quiet hours.
    pub from: LocalTime,
    /// End of the quiet hours (the first minute allowed again).
    pub to: LocalTime,
}

/// The rules that apply to one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Caps per person.
    pub caps: Caps,
    /// Whether `caps` are the category's own (count its sends only) or the
    /// site's (count every non-exempt send).
    pub own_caps: bool,
    /// Quiet hours, if any.
    pub quiet: Option<Quiet>,
    /// Over a cap.
    pub over_cap: Overflow,
    /// Inside quiet hours.
    pub in_quiet: Overflow,
    /// Bypasses caps and quiet hours, and is not counted.
    pub exempt: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            caps: Caps::default(),
            own_caps: false,
            quiet: None,
            over_cap: Overflow::Hold,
            in_quiet: Overflow::Hold,
            exempt: false,
        }
    }
}

/// A category people can read and opt out of (`replies`, `marketing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// What people see ("Replies to your messages").
    pub label: String,
    /// The site's rules with this category's overrides.
    pub rules: Rules,
}

/// A site's delivery policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryPolicy {
    /// For pushes without a category, and the base of every category's.
    pub site: Rules,
    /// Categories by name.
    pub categories: BTreeMap<String, Category>,
    /// When a category's or topic's pushes are tiring people.
    pub fatigue: FatigueGuard,
}

/// The fatigue guard, like the prompts' accept-rate guard: a category or
/// topic whose pushes are mostly dismissed without a click, or whose
/// recipients unsubscribe after them, is flagged in the stats. Point
/// shares over the report's range, judged only from `minimum` deliveries
/// on (a handful of dismissals say nothing).
///
/// The categories named in `pause` (marketing, not what people asked for)
/// are also paused while flagged: judged over the trailing `window_ms`,
/// their pushes end `paused` at claim time instead of being sent. Nothing
/// is stored: with nothing sent, the window's deliveries fall below
/// `minimum` and the category resumes by itself, at the latest one window
/// after the pause began, and is judged afresh on what it sends then.
#[derive(Debug, Clone, PartialEq)]
pub struct FatigueGuard {
    /// Share of delivered pushes dismissed without a click at which it is
    /// flagged (default 0.8).
    pub dismissed: f64,
    /// Share of delivered pushes whose device has unsubscribed since at
    /// which it is flagged (default 0.05).
    pub unsubscribed: f64,
    /// Fewest deliveries judged (default 50).
    pub minimum: u64,
    /// The trailing window a pause is judged over (default 7 days).
    pub window_ms: u64,
    /// How long a judgement of what to pause is kept before the outbox is
    /// read again (default a minute: a claim must not aggregate a window
    /// of deliveries each time).
    pub recheck_ms: u64,
    /// Categories paused while flagged (none by default; never an exempt
    /// one).
    pub pause: std::collections::BTreeSet<String>,
}

impl Default for FatigueGuard {
    fn default() -> Self {
        Self {
            dismissed: 0.8,
            unsubscribed: 0.05,
            minimum: 50,
            window_ms: WEEK_MS,
            recheck_ms: 60_000,
            pause: std::collections::BTreeSet::new(),
        }
    }
}

/// How a category's or topic's delivered pushes were received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reception {
    /// Delivered.
    pub delivered: u64,
    /// Of them, clicked.
    pub clicked: u64,
    /// Of them, dismissed without a click.
    pub dismissed: u64,
    /// Of them, to a device that has unsubscribed since.
    pub unsubscribed: u64,
}

/// Why pushes are flagged as tiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tired {
    /// Mostly dismissed without a click.
    Dismissed,
    /// Followed by unsubscribes.
    Unsubscribed,
}

impl Tired {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tired::Dismissed => "dismissed",
            Tired::Unsubscribed => "unsubscribed",
        }
    }
}

impl FatigueGuard {
    /// The categories to pause now, given how each category's pushes of
    /// the trailing window were received: those in `pause` the guard
    /// flags, in name order.
    pub fn paused<'a>(&self, window: impl IntoIterator<Item = (&'a str, Reception)>) -> Vec<String> {
        let mut out: Vec<String> = window
            .into_iter()
            .filter(|(name, reception)| self.pause.contains(*name) && self.judge(*reception).is_some())
            .map(|(name, _)| name.to_owned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `reception` is tiring people: `None` below `minimum`
    /// deliveries or under both floors; unsubscribes weigh more than
    /// dismissals, so they are named first.
    pub fn judge(&self, reception: Reception) -> Option<Tired> {
        if reception.delivered == 0 || reception.delivered < self.minimum {
            return None;
        }
        let share = |n: u64| n as f64 / reception.delivered as f64;
        if share(reception.unsubscribed) >= self.unsubscribed {
            Some(Tired::Unsubscribed)
        } else if share(reception.dismissed) >= self.dismissed {
            Some(Tired::Dismissed)
        } else {
            None
        }
    }
}

/// Why a push was held or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A cap was reached.
    Cap,
    /// It is quiet hours for the recipient.
    Quiet,
}

/// What to do with a push now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it now.
    Send,
    /// Hold it until `until_ms` (status `held`), then ask again.
    Hold {
        /// The first instant the policy allows it.
        until_ms: u64,
        /// What holds it now.
        why: Why,
    },
    /// End it unsent (status `capped`).
    Drop(Why),
}

/// One earlier send to the person: when it was sent and its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent<'a> {
    /// Epoch ms.
    pub at_ms: u64,
    /// Its category, if any.
    pub category: Option<&'a str>,
}

impl DeliveryPolicy {
    /// The rules for a push of `category` (`None`, or a name the policy does
    /// not know: the site's).
    pub fn rules_for(&self, category: Option<&str>) -> &Rules {
        category
            .and_then(|name| self.categories.get(name))
            .map_or(&self.site, |c| &c.rules)
    }

    /// Whether a policy changes anything (none configured: every push goes).
    pub fn is_open(&self) -> bool {
        let open = |r: &Rules| r.exempt || (r.caps == Caps::default() && r.quiet.is_none());
        open(&self.site) && self.categories.values().all(|c| open(&c.rules))
    }

    /// What to do now with a push of `category` to a person whose earlier
    /// sends (any order; older than a week is ignored) are `history`, whose
    /// clock is in `zone`.
    pub fn decide(&self, category: Option<&str>, history: &[Sent<'_>], zone: &TimeZone, now_ms: u64) -> Verdict {
        let rules = self.rules_for(category);
        if rules.exempt {
            return Verdict::Send;
        }
        let counted: Vec<u64> = history
            .iter()
            .filter(|sent| self.counts(rules, category, sent.category))
            .map(|sent| sent.at_ms)
            .collect();
        let cap_until = cap_clears_at(&counted, rules.caps, now_ms);
        let quiet_now = rules.quiet.is_some_and(|q| q.contains(now_ms, zone));
        match (cap_until, quiet_now) {
            (None, false) => Verdict::Send,
            (Some(_), _) if rules.over_cap == Overflow::Drop => Verdict::Drop(Why::Cap),
            (_, true) if rules.in_quiet == Overflow::Drop => Verdict::Drop(Why::Quiet),
            (cap, _) => {
                let after_caps = cap.unwrap_or(now_ms);
                let until_ms = rules.quiet.map_or(after_caps, |q| q.next_allowed(after_caps, zone));
                let why = if quiet_now { Why::Quiet } else { Why::Cap };
                Verdict::Hold { until_ms, why }
            }
        }
    }

    /// Whether an earlier send of `earlier` counts against a push of
    /// `category` under `rules`: a category's own caps count its sends, the
    /// site's count every non-exempt one.
    fn counts(&self, rules: &Rules, category: Option<&str>, earlier: Option<&str>) -> bool {
        if rules.own_caps {
            return earlier == category;
        }
        !self.rules_for(earlier).exempt
    }
}

impl Quiet {
    /// Whether `at_ms` falls inside the quiet hours on `zone`'s clock.
    pub fn contains(self, at_ms: u64, zone: &TimeZone) -> bool {
        self.next_allowed(at_ms, zone) != at_ms
    }

    /// The first instant at or after `at_ms` outside the quiet hours.
    pub fn next_allowed(self, at_ms: u64, zone: &TimeZone) -> u64 {
        // Allowed hours are the window from the end of quiet to its start.
        Deliver::Within(self.to, self.from).next(at_ms, zone)
    }
}

/// When the sends at `counted` (epoch ms) stop holding a push back under
/// `caps`: `None` if they do not now. A send counts for a window while it is
/// younger than the window (one stamped after `now_ms`, by another worker's
/// clock, is as young as can be).
fn cap_clears_at(counted: &[u64], caps: Caps, now_ms: u64) -> Option<u64> {
    let mut until = None;
    for (cap, window) in [(caps.day, DAY_MS), (caps.week, WEEK_MS)] {
        let Some(cap) = cap else { continue };
        let mut inside: Vec<u64> = counted
            .iter()
            .copied()
            // A send recorded a moment after `now_ms` (another worker's
            // clock) counts as sent now: ignoring it would let two workers
            // both send at the cap.
            .filter(|&at| now_ms.saturating_sub(at) < window)
            .collect();
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if inside.len() < cap {
            continue;
        }
        inside.sort_unstable();
        // Below the cap once the oldest (len - cap + 1) have aged out.
        let clears = inside[inside.len() - cap] + window;
        until = Some(until.map_or(clears, |u: u64| u.max(clears)));
    }
    until
}

/// One held push of a person's device, for [`collapse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held<'a> {
    /// The delivery's id.
    pub id: i64,
    /// Its RFC 8030 topic or tag: pushes sharing one collapse.
    pub topic: Option<&'a str>,
}

/// What to send of the pushes released together to one device: each push
/// without a topic as it is, and of each topic only the newest (the highest
/// id), carrying how many it stands for. Oldest first (by id).
pub fn collapse(released: &[Held<'_>]) -> Vec<Digest> {
    let mut by_topic: BTreeMap<&str, Digest> = BTreeMap::new();
    let mut out = Vec::new();
    for held in released {
        let Some(topic) = held.topic else {
            out.push(Digest {
                send: held.id,
                merged: Vec::new(),
            });
            continue;
        };
        let digest = by_topic.entry(topic).or_insert(Digest {
            send: held.id,
            merged: Vec::new(),
        });
        if held.id > digest.send {
            digest.merged.push(digest.send);
            digest.send = held.id;
        } else if held.id < digest.send {
            digest.merged.push(held.id);
        }
    }
    out.extend(by_topic.into_values());
    out.sort_by_key(|d| d.send);
    for digest in &mut out {
        digest.merged.sort_unstable();
    }
    out
}

/// One push to send after [`collapse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The delivery to send.
    pub send: i64,
    /// The deliveries it replaces (status `collapsed`).
    pub merged: Vec<i64>,
}

impl Digest {
    /// How many pushes it stands for (1 without a digest).
    pub fn count(&self) -> usize {
        1 + self.merged.len()
    }
}
