//! The delivery policy at claim time (caps, quiet hours, digests): the
//! decisions are the core's ([`askwell::delivery`]); this module hands them
//! the outbox's ledger and turns the verdicts into [`Admission`]s the store
//! records.
//!
//! - A person is a user (all their devices) or, for a device bound to no
//!   user, the device. A notification counts once per person, however many
//!   devices it reaches: its copy on a second device is let through with
//!   the first.
//! - Held pushes released together to one device that share a topic (RFC
//!   8030 topic, else the notification's tag) go as one, the newest, which
//!   carries the count; the others end `collapsed`. Held again or dropped,
//!   they stay together.
//! - A category the fatigue guard pauses (`fatigue.pause`, flagged over the
//!   trailing window) ends `paused`: judged from the outbox by every
//!   instance alike, so nothing is stored and several instances agree.

use std::collections::{BTreeMap, HashMap};

use askwell::delivery::{collapse, DeliveryPolicy, FatigueGuard, Held, Sent, Verdict, WEEK_MS};
use jiff::tz::TimeZone;

use crate::store::{device_subject, Admission, Claimed, Preferences, SendHistory};

/// The policy and the zone of recipients without one.
#[derive(Debug, Clone)]
pub struct Respect {
    policy: DeliveryPolicy,
    default_zone: TimeZone,
}

/// Reads the delivery policy of a JSON file at start (`--delivery-policy`):
/// an error names the file and every bad field
/// (`policy.json: categories.marketing.caps.day: expected a positive integer`).
///
/// # Errors
/// The file cannot be read, is not JSON, or the policy is invalid.
pub fn load_file(path: &std::path::Path) -> Result<DeliveryPolicy, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|err| format!("{name}: {err}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| format!("{name}: not JSON: {err}"))?;
    DeliveryPolicy::read(&crate::journeys::core_value(&value)).map_err(|err| format!("{name}: {err}"))
}

/// A policy that names categories takes only those (a typo would silently
/// escape the category's caps and people's opt-outs); without categories,
/// any name is taken. `field` names it in the error (`category`,
/// `steps[2].send.category`).
///
/// # Errors
/// `code` naming the field and the known categories.
pub fn known_category(
    policy: &DeliveryPolicy,
    category: Option<&str>,
    field: &str,
    code: crate::error::ErrorCode,
) -> Result<(), crate::AppError> {
    match category {
        Some(name) if !policy.categories.is_empty() && !policy.categories.contains_key(name) => {
            let known: Vec<&str> = policy.categories.keys().map(String::as_str).collect();
            Err(crate::AppError::invalid(
                code,
                format!(
                    "{field}: {name:?} is not in the delivery policy (expected one of: {})",
                    known.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// How far back the ledger is read: the longest cap window.
pub const LEDGER_MS: i64 = WEEK_MS as i64;

impl Respect {
    /// The policy (the default lets every push through) and the zone of
    /// recipients without one.
    pub fn new(policy: DeliveryPolicy, default_zone: TimeZone) -> Self {
        Self { policy, default_zone }
    }

    /// The policy.
    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// What to do with each of a claimed `batch`, given the recipients'
    /// sends (`history`), what they turned off (`preferences`, by
    /// subject) and the categories the fatigue guard pauses (`paused`) as
    /// of `now_ms`; `counts` gets each digest's size.
    pub fn decide(
        &self,
        batch: &[Claimed],
        history: &SendHistory,
        preferences: &HashMap<String, Preferences>,
        paused: &[String],
        now_ms: i64,
        counts: &mut HashMap<i64, usize>,
    ) -> Vec<Admission> {
        let mut ledger = history.clone();
        let mut out = Vec::with_capacity(batch.len());
        // Whether a push is still wanted is its own, judged before any
        // digest: a digest's pushes may have been sent to different topics
        // (or to the user directly) and of different categories.
        let mut wanted = Vec::with_capacity(batch.len());
        for delivery in batch {
            // Left the topic: no longer its audience, whatever the category.
            if delivery.left_audience || self.silenced(delivery, preferences, now_ms) {
                out.push(Admission::Mute(delivery.id));
            } else if delivery.category.as_ref().is_some_and(|c| paused.contains(c)) {
                out.push(Admission::Pause(delivery.id));
            } else {
                wanted.push(delivery);
            }
        }
        for group in digests(&wanted) {
            let Some(lead) = group.last() else { continue };
            match self.verdict(lead, &mut ledger, now_ms) {
                Verdict::Send => {
                    out.push(Admission::Send(lead.id));
                    counts.insert(lead.id, group.len());
                    out.extend(group[..group.len() - 1].iter().map(|d| Admission::Collapse(d.id)));
                }
                Verdict::Hold { until_ms, .. } => {
                    let until = i64::try_from(until_ms).unwrap_or(i64::MAX);
                    out.extend(group.iter().map(|d| Admission::Hold(d.id, until)));
                }
                Verdict::Drop(_) => out.extend(group.iter().map(|d| Admission::Cap(d.id))),
            }
        }
        out
    }

    /// Whether the person turned this push off, on this device or as the
    /// user: its category or the topic it was sent to muted, or everything paused. Exempt categories
    /// (sign-ins, receipts) still go.
    fn silenced(&self, delivery: &Claimed, preferences: &HashMap<String, Preferences>, now_ms: i64) -> bool {
        let category = delivery.category.as_deref();
        if self.policy.rules_for(category).exempt {
            return false;
        }
        [device_subject(delivery.subscription_id), delivery.person.clone()]
            .iter()
            .filter_map(|subject| preferences.get(subject))
            .any(|p| p.silences(category, delivery.audience_topic.as_deref(), now_ms))
    }

    fn verdict(&self, delivery: &Claimed, ledger: &mut SendHistory, now_ms: i64) -> Verdict {
        let sends = ledger.entry(delivery.person.clone()).or_default();
        if sends.iter().any(|(_, _, n)| *n == delivery.notification_id) {
            return Verdict::Send; // The same push, on another of their devices.
        }
        let mut seen = std::collections::HashSet::new();
        let history: Vec<Sent<'_>> = sends
            .iter()
            .filter(|(_, _, n)| seen.insert(n.as_str()))
            .map(|(at, category, _)| Sent {
                at_ms: u64::try_from(*at).unwrap_or(0),
                category: category.as_deref(),
            })
            .collect();
        let zone = delivery
            .time_zone
            .as_deref()
            .and_then(askwell::journey::zone)
            .unwrap_or_else(|| self.default_zone.clone());
        let now = u64::try_from(now_ms).unwrap_or(0);
        let verdict = self.policy.decide(delivery.category.as_deref(), &history, &zone, now);
        if verdict == Verdict::Send {
            sends.push((now_ms, delivery.category.clone(), delivery.notification_id.clone()));
        }
        verdict
    }
}

/// The batch in groups decided as one: each delivery alone, except held
/// ones of one device sharing a topic (newest last). Oldest group first.
fn digests<'a>(batch: &[&'a Claimed]) -> Vec<Vec<&'a Claimed>> {
    let by_id: HashMap<i64, &Claimed> = batch.iter().map(|d| (d.id, *d)).collect();
    let mut groups: Vec<Vec<&Claimed>> = Vec::new();
    let mut held: BTreeMap<i64, Vec<(&Claimed, Option<String>)>> = BTreeMap::new();
    for &delivery in batch {
        if delivery.held {
            let topic = delivery.topic.clone().or_else(|| tag_of(&delivery.payload));
            held.entry(delivery.subscription_id)
                .or_default()
                .push((delivery, topic));
        } else {
            groups.push(vec![delivery]);
        }
    }
    for device in held.values() {
        let keys: Vec<Held<'_>> = device
            .iter()
            .map(|(d, topic)| Held {
                id: d.id,
                topic: topic.as_deref(),
            })
            .collect();
        for digest in collapse(&keys) {
            let group: Vec<&Claimed> = digest
                .merged
                .iter()
                .chain(std::iter::once(&digest.send))
                .filter_map(|id| by_id.get(id).copied())
                .collect();
            groups.push(group);
        }
    }
    groups.sort_by_key(|g| g.last().map_or(0, |d| d.id));
    groups
}

/// The notification's `tag`, which collapses like a topic.
fn tag_of(payload: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    value.get("tag")?.as_str().map(str::to_owned)
}

/// The categories the fatigue guard pauses, judged from the outbox at most
/// once per `fatigue.recheck` (a claim must not aggregate a week of
/// deliveries): those of `fatigue.pause` whose pushes of the trailing
/// window it flags.
#[derive(Debug, Default)]
pub struct FatigueWatch {
    judged: tokio::sync::Mutex<Option<(i64, Vec<String>)>>,
}

impl FatigueWatch {
    /// The categories paused as of `now_ms`, and whether they were judged
    /// afresh (the caller publishes them then).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn paused(
        &self,
        store: &crate::store::Store,
        guard: &FatigueGuard,
        now_ms: i64,
    ) -> Result<(Vec<String>, bool), sqlx::Error> {
        if guard.pause.is_empty() {
            return Ok((Vec::new(), false));
        }
        let mut judged = self.judged.lock().await;
        let recheck_ms = i64::try_from(guard.recheck_ms).unwrap_or(i64::MAX);
        if let Some((at, paused)) = judged.as_ref() {
            if now_ms.saturating_sub(*at) < recheck_ms {
                return Ok((paused.clone(), false));
            }
        }
        let paused = paused_categories(store, guard, now_ms).await?;
        *judged = Some((now_ms, paused.clone()));
        Ok((paused, true))
    }
}

/// The categories of `fatigue.pause` the guard flags over the window
/// ending at `now_ms` (in name order), straight from the outbox.
///
/// # Errors
/// When the database fails.
pub async fn paused_categories(
    store: &crate::store::Store,
    guard: &FatigueGuard,
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    if guard.pause.is_empty() {
        return Ok(Vec::new());
    }
    let window = i64::try_from(guard.window_ms).unwrap_or(i64::MAX);
    let range = crate::store::StatsRange {
        from_ms: now_ms.saturating_sub(window),
        to_ms: now_ms.saturating_add(1),
        synthetic: false,
    };
    let rows = store.stats_reception(range).await?;
    Ok(guard.paused(
        rows.iter()
            .filter(|row| row.kind == "category")
            .map(|row| (row.name.as_str(), row.reception)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(id: i64, audience_topic: Option<&str>, left_audience: bool) -> Claimed {
        Claimed {
            id,
            notification_id: format!("n{id}"),
            subscription_id: 1,
            payload: r#"{"title":"Bill","tag":"thread-bill"}"#.into(),
            audience_topic: audience_topic.map(str::to_owned),
            left_audience,
            held: true,
            person: "device:1".into(),
            count: 1,
            ..Claimed::default()
        }
    }

    /// Held pushes that share a tag are digested, but each is judged for
    /// whether it is still meant for the device on its own: a push to a
    /// topic the device left is muted, the others in its digest still go.
    #[test]
    fn a_left_audience_mutes_only_its_own_push_in_a_digest() {
        let respect = Respect::new(DeliveryPolicy::default(), TimeZone::UTC);
        let cases = [
            // The newest (the digest's lead) was sent to the topic left.
            (vec![held(1, None, false), held(2, Some("thread:7"), true)], 2, 1),
            // An older one was.
            (vec![held(1, Some("thread:7"), true), held(2, None, false)], 1, 2),
        ];
        for (batch, muted, sent) in cases {
            let mut counts = HashMap::new();
            let admissions = respect.decide(&batch, &SendHistory::new(), &HashMap::new(), &[], 0, &mut counts);
            assert!(admissions.contains(&Admission::Mute(muted)), "{admissions:?}");
            assert!(admissions.contains(&Admission::Send(sent)), "{admissions:?}");
            assert_eq!(counts.get(&sent), Some(&1), "the digest counts only what it stands for");
        }
    }

    /// The same for a person's mutes: a muted topic silences its own push,
    /// not a direct one that shares its tag.
    #[test]
    fn a_muted_topic_mutes_only_its_own_push_in_a_digest() {
        let respect = Respect::new(DeliveryPolicy::default(), TimeZone::UTC);
        let preferences = HashMap::from([(
            "device:1".to_owned(),
            Preferences {
                muted_topics: vec!["thread:7".into()],
                ..Preferences::default()
            },
        )]);
        let batch = vec![held(1, None, false), held(2, Some("thread:7"), false)];
        let mut counts = HashMap::new();
        let admissions = respect.decide(&batch, &SendHistory::new(), &preferences, &[], 0, &mut counts);
        assert!(admissions.contains(&Admission::Mute(2)), "{admissions:?}");
        assert!(admissions.contains(&Admission::Send(1)), "{admissions:?}");
    }
}
