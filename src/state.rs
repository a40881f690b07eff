//! What the page remembers between visits, and its storage encoding.
//!
//! The glue stores [`State`] as JSON in localStorage (`askwell:v1:state`). The
//! reader is lenient: an unreadable part is dropped and starts fresh, so a
//! corrupt or foreign value never throws into the host page — and because a
//! fresh state counts nothing as shown, the glue additionally keeps a
//! conservative session budget when storage is unavailable.
//!
//! What is read back is also bounded, because anything in localStorage may
//! have been planted (by the app, an extension, a script on the origin) or
//! written under a wrong clock: an anonymous id that is not 32 lowercase hex
//! digits is dropped (the glue makes a new one: a 2 MB id would ride on every
//! funnel event and push each request past the 64 KiB `keepalive`/beacon
//! limit), no time is later than now (a far-future "Not now" would hold its
//! cool-off for ever), and lists are no longer than the code ever writes.

use crate::sorted::{SortedMap, SortedSet};

use crate::policy::{Ledger, PromptState, NATIVE_LIMIT};
use crate::rules::{Activity, RECENT_LIMIT};
use crate::value::Value;

/// Everything persisted for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Stable anonymous id for experiment assignment and events.
    pub anon_id: String,
    /// Past actions and visits.
    pub activity: Activity,
    /// Per-prompt history.
    pub prompts: SortedMap<PromptState>,
    /// Prompts shown and native outcomes.
    pub ledger: Ledger,
    /// Topics of the current push subscription, as last confirmed.
    pub topics: SortedSet,
    /// Whether a push subscription exists, as last confirmed.
    pub subscribed: bool,
    /// Topics the person said "Yes" to whose subscription is not finished yet
    /// (the push service or our server did not answer); `""` for a prompt
    /// without a topic. The start-up repair finishes them while permission
    /// is granted, backing off by [`Retry`]. (A set of strings like `topics`:
    /// each map type of its own adds its code to the page's wasm.)
    pub pending: SortedSet,
    /// The prompt and variant of the latest pending "Yes", credited with
    /// the subscription when it is finished.
    pub credit: Option<Attribution>,
    /// Failed attempts at finishing `pending`, and when the next may start.
    pub retry: Retry,
}

/// The prompt and variant a subscription is credited to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Prompt id.
    pub prompt: String,
    /// Variant id.
    pub variant: String,
}

/// Backoff across visits for finishing a pending "Yes".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retry {
    /// Consecutive failures.
    pub failures: u32,
    /// Not before this time (epoch ms).
    pub next_ms: u64,
}

/// Waits after the 1st, 2nd, … failure: a minute, ten, an hour, six, then daily.
const BACKOFF_MS: [u64; 5] = [60_000, 600_000, 3_600_000, 21_600_000, MAX_RETRY_MS];
/// The longest wait between attempts (and the furthest a stored retry time
/// may lie ahead: a planted far-future time would stop retries for ever).
pub const MAX_RETRY_MS: u64 = 86_400_000;
/// Most pending topics kept (a person says "Yes" to a handful).
pub const PENDING_LIMIT: usize = 32;
/// Most strings kept in a stored set (topics, a prompt's accepted keys) and
/// most prompts a config may hold: far more than a person answers, few
/// enough that a planted value cannot bloat every write.
pub const SET_LIMIT: usize = 64;
/// Most distinct action names counted, and most prompt histories kept
/// (histories outlive config edits, so there may be more than one config's).
pub const ACTION_LIMIT: usize = 256;

/// Whether a name, topic or key is one the state keeps: the server takes at
/// most [`crate::funnel::MAX_TEXT`] bytes of each. The engine admits only
/// what fits (see [`State::can_keep`]) and reading drops anything longer, so
/// a state read back equals the state written.
pub fn fits(text: &str) -> bool {
    text.len() <= crate::funnel::MAX_TEXT
}

impl Retry {
    /// One more failure at `now_ms`.
    pub fn failed(&mut self, now_ms: u64) {
        let step = (self.failures as usize).min(BACKOFF_MS.len() - 1);
        self.failures = self.failures.saturating_add(1);
        self.next_ms = now_ms.saturating_add(BACKOFF_MS[step]);
    }
}

impl State {
    /// Whether answering `prompt` about `key` (subscribing to `topic`, for
    /// push) can be remembered within the stored bounds. When it cannot, the
    /// engine does not ask: an answer it would forget is a prompt it would
    /// repeat.
    pub fn can_keep(&self, prompt: &str, key: &str, topic: Option<&str>) -> bool {
        let history = match self.prompts.get(prompt) {
            Some(history) => history.accepted.contains(key) || history.accepted.len() < SET_LIMIT,
            None => self.prompts.len() < ACTION_LIMIT,
        };
        let topic_fits = topic.is_none_or(|topic| {
            self.topics.contains(topic)
                || self.pending.contains(topic)
                || (self.topics.len() < SET_LIMIT && self.pending.len() < PENDING_LIMIT)
        });
        fits(prompt) && fits(key) && topic.is_none_or(fits) && history && topic_fits
    }

    /// Encodes for storage.
    pub fn to_value(&self) -> Value {
        Value::object([
            ("anonId", self.anon_id.as_str().into()),
            ("activity", activity_to_value(&self.activity)),
            (
                "prompts",
                Value::Object(
                    self.prompts
                        .iter()
                        .map(|(k, p)| (k.clone(), prompt_to_value(p)))
                        .collect(),
                ),
            ),
            ("shown", numbers(&self.ledger.shown_ms)),
            (
                "native",
                Value::Array(self.ledger.native.iter().map(|g| Value::Bool(*g)).collect()),
            ),
            ("topics", strings(&self.topics)),
            ("subscribed", Value::Bool(self.subscribed)),
            ("pending", strings(&self.pending)),
            (
                "credit",
                self.credit
                    .as_ref()
                    .map_or(Value::Null, |a| strings([&a.prompt, &a.variant])),
            ),
            ("retry", numbers(&[u64::from(self.retry.failures), self.retry.next_ms])),
        ])
    }

    /// Decodes leniently: whatever cannot be read starts fresh; what is read
    /// is bounded (see the module docs), times at most `now_ms`.
    pub fn from_value(value: &Value, now_ms: u64) -> State {
        let mut native: Vec<bool> = items(value.get("native"))
            .filter_map(|v| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            })
            .collect();
        keep_last(&mut native, NATIVE_LIMIT);
        let mut shown_ms = read_times(value.get("shown"), now_ms);
        keep_last(&mut shown_ms, SHOWN_LIMIT);
        State {
            anon_id: value
                .get("anonId")
                .and_then(Value::as_str)
                .filter(|id| is_anon_id(id))
                .unwrap_or_default()
                .to_owned(),
            activity: value
                .get("activity")
                .map(|a| activity_from_value(a, now_ms))
                .unwrap_or_default(),
            prompts: map_from(
                named_members(value.get("prompts"), ACTION_LIMIT)
                    .map(|(k, v)| (k.clone(), prompt_from_value(v, now_ms))),
            ),
            ledger: Ledger { shown_ms, native },
            topics: read_strings(value.get("topics")),
            subscribed: matches!(value.get("subscribed"), Some(Value::Bool(true))),
            pending: read_pending(value.get("pending")),
            credit: read_credit(value.get("credit")),
            retry: read_retry(value.get("retry"), now_ms),
        }
    }
}

/// Whether `id` has the shape the glue makes anonymous ids in: 128 random
/// bits as 32 lowercase hex digits.
pub fn is_anon_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Most prompt times kept (only the last 7 days count, and the weekly budget
/// is a handful).
const SHOWN_LIMIT: usize = 64;

/// Drops all but the last (newest) `limit` items.
fn keep_last<T>(items: &mut Vec<T>, limit: usize) {
    let excess = items.len().saturating_sub(limit);
    items.drain(..excess);
}

fn activity_to_value(activity: &Activity) -> Value {
    Value::object([
        (
            "recent",
            Value::Object(activity.recent.iter().map(|(k, v)| (k.clone(), numbers(v))).collect()),
        ),
        (
            "totals",
            Value::Object(activity.totals.iter().map(|(k, v)| (k.clone(), (*v).into())).collect()),
        ),
        ("pageViews", activity.page_views.into()),
        ("lastSeen", activity.last_seen_ms.map_or(Value::Null, Value::from)),
    ])
}

fn activity_from_value(value: &Value, now_ms: u64) -> Activity {
    Activity {
        recent: map_from(named_members(value.get("recent"), ACTION_LIMIT).map(|(k, v)| {
            let mut times = read_times(Some(v), now_ms);
            keep_last(&mut times, RECENT_LIMIT);
            (k.clone(), times)
        })),
        totals: map_from(
            named_members(value.get("totals"), ACTION_LIMIT).filter_map(|(k, v)| Some((k.clone(), whole(v)?))),
        ),
        page_views: value.get("pageViews").and_then(whole).unwrap_or(0),
        last_seen_ms: value.get("lastSeen").and_then(whole).map(|t| t.min(now_ms)),
    }
}

fn prompt_to_value(prompt: &PromptState) -> Value {
    Value::object([
        ("dismissals", u64::from(prompt.dismissals).into()),
        (
            "lastDismissed",
            prompt.last_dismissed_ms.map_or(Value::Null, Value::from),
        ),
        ("accepted", strings(&prompt.accepted)),
    ])
}

fn prompt_from_value(value: &Value, now_ms: u64) -> PromptState {
    PromptState {
        dismissals: value
            .get("dismissals")
            .and_then(whole)
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
        last_dismissed_ms: value.get("lastDismissed").and_then(whole).map(|t| t.min(now_ms)),
        accepted: read_strings(value.get("accepted")),
    }
}

fn numbers(values: &[u64]) -> Value {
    Value::Array(values.iter().map(|n| (*n).into()).collect())
}

fn strings<'a>(values: impl IntoIterator<Item = &'a String>) -> Value {
    Value::Array(values.into_iter().map(|s| s.as_str().into()).collect())
}

fn whole(value: &Value) -> Option<u64> {
    value
        .as_f64()
        .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n < 9.0e15)
        .map(|n| n as u64)
}

fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let slice: &[Value] = match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    };
    slice.iter()
}

fn members(value: Option<&Value>) -> impl Iterator<Item = &(String, Value)> {
    let slice: &[(String, Value)] = match value {
        Some(Value::Object(members)) => members,
        _ => &[],
    };
    slice.iter()
}

/// Times, none later than `now_ms`: what happened cannot be in the future.
fn read_times(value: Option<&Value>, now_ms: u64) -> Vec<u64> {
    items(value).filter_map(whole).map(|t| t.min(now_ms)).collect()
}

fn read_strings(value: Option<&Value>) -> SortedSet {
    let mut set = SortedSet::new();
    for text in items(value).filter_map(Value::as_str).filter(|t| fits(t)) {
        if set.len() == SET_LIMIT {
            break;
        }
        set.insert(text.to_owned());
    }
    set
}

/// The members of a stored map with a name that fits, at most `limit`.
fn named_members(value: Option<&Value>, limit: usize) -> impl Iterator<Item = &(String, Value)> {
    members(value).filter(|(name, _)| fits(name)).take(limit)
}

fn read_pending(value: Option<&Value>) -> SortedSet {
    let mut pending = read_strings(value);
    while pending.len() > PENDING_LIMIT {
        pending.pop_last();
    }
    pending
}

fn read_credit(value: Option<&Value>) -> Option<Attribution> {
    let mut ids = items(value).filter_map(Value::as_str);
    Some(Attribution {
        prompt: ids.next()?.to_owned(),
        variant: ids.next()?.to_owned(),
    })
}

fn read_retry(value: Option<&Value>, now_ms: u64) -> Retry {
    let mut numbers = items(value).filter_map(whole);
    let failures = numbers.next().unwrap_or(0).min(u64::from(u32::MAX)) as u32;
    let next_ms = numbers.next().unwrap_or(0).min(now_ms.saturating_add(MAX_RETRY_MS));
    Retry { failures, next_ms }
}

/// Inserts one by one (a later duplicate key wins), with no sort: each
/// sort instantiation costs ~2 kB of wasm per value type.
fn map_from<V>(pairs: impl Iterator<Item = (String, V)>) -> SortedMap<V> {
    pairs.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    #[test]
    fn round_trips_through_the_storage_encoding() {
        let mut state = State {
            anon_id: "0123456789abcdef0123456789abcdef".into(),
            subscribed: true,
            ..State::default()
        };
        state.activity.recent.insert("sent".into(), vec![1, 2, 3]);
        state.activity.totals.insert("sent".into(), 7);
        state.activity.page_views = 4;
        state.activity.last_seen_ms = Some(99);
        state.prompts.insert(
            "reply".into(),
            PromptState {
                dismissals: 2,
                last_dismissed_ms: Some(5),
                accepted: ["thread:1".to_owned()].into(),
            },
        );
        state.ledger = Ledger {
            shown_ms: vec![10, 20],
            native: vec![true, false],
        };
        state.topics.insert("thread:1".into());
        state.pending.insert("thread:2".into());
        state.credit = Some(Attribution {
            prompt: "reply".into(),
            variant: "b".into(),
        });
        state.retry = Retry {
            failures: 2,
            next_ms: 50,
        };
        assert_eq!(State::from_value(&state.to_value(), 100), state);
    }

    #[test]
    fn planted_topics_keys_and_names_are_bounded_in_count_and_length() {
        let many = |n: usize| (0..n).map(|i| format!(r#""t{i}""#)).collect::<Vec<_>>().join(",");
        let huge = "x".repeat(10_000);
        let planted = format!(
            r#"{{ "topics": [{}, "{huge}"], "prompts": {{ {} }},
                 "activity": {{ "totals": {{ "{huge}": 1, "ok": 2 }} }} }}"#,
            many(1_000),
            (0..500)
                .map(|i| format!(r#""p{i}": {{ "accepted": [{}] }}"#, many(100)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let state = State::from_value(&from_json(&planted), 1_000);
        assert_eq!(state.topics.len(), SET_LIMIT);
        assert!(state.topics.iter().all(|t| fits(t)));
        assert_eq!(state.prompts.len(), ACTION_LIMIT);
        assert!(state.prompts.values().all(|p| p.accepted.len() == SET_LIMIT));
        assert_eq!(state.activity.totals.len(), 1, "the 10 kB action name is dropped");
    }

    #[test]
    fn a_planted_retry_time_and_pending_list_are_bounded() {
        let planted = format!(
            r#"{{ "retry": [3, 9e14], "pending": [{}] }}"#,
            (0..500).map(|i| format!(r#""t{i}""#)).collect::<Vec<_>>().join(",")
        );
        let state = State::from_value(&from_json(&planted), 1_000);
        assert!(
            state.retry.next_ms <= 1_000 + crate::state::MAX_RETRY_MS,
            "{:?}",
            state.retry
        );
        assert_eq!(state.pending.len(), crate::state::PENDING_LIMIT);
    }

    #[test]
    fn corrupt_parts_start_fresh_instead_of_failing() {
        let state = State::from_value(
            &from_json(
                r#"{"anonId": 5, "prompts": {"reply": {"dismissals": "many", "accepted": [1, "t"]}}, "shown": "x", "native": [true, 3]}"#,
            ),
            NOW,
        );
        assert_eq!(state.anon_id, "");
        assert_eq!(state.prompts["reply"].dismissals, 0);
        assert_eq!(state.prompts["reply"].accepted, ["t".to_owned()].into());
        assert_eq!(
            state.ledger,
            Ledger {
                shown_ms: vec![],
                native: vec![true]
            }
        );
        assert_eq!(State::from_value(&from_json("[1, 2]"), NOW), State::default());
    }

    const NOW: u64 = 1_700_000_000_000;

    fn read(json: &str) -> State {
        State::from_value(&from_json(json), NOW)
    }

    #[test]
    fn an_anonymous_id_of_any_other_shape_is_dropped() {
        let huge = "a".repeat(2 << 20);
        for (id, kept) in [
            ("0123456789abcdef0123456789abcdef", true),
            ("", false),
            ("0123456789abcdef0123456789abcde", false),
            ("0123456789abcdef0123456789abcdef0", false),
            ("0123456789ABCDEF0123456789abcdef", false),
            ("0123456789abcdef0123456789abcdeg", false),
            ("device-1", false),
            (huge.as_str(), false),
        ] {
            let mut json = String::from(r#"{"anonId":""#);
            json.push_str(id);
            json.push_str(r#""}"#);
            let expected = if kept { id } else { "" };
            assert_eq!(read(&json).anon_id, expected, "{}", &id[..id.len().min(40)]);
        }
    }

    #[test]
    fn times_read_back_are_never_later_than_now() {
        let state = read(
            r#"{"activity": {"recent": {"sent": [5, 4e15]}, "lastSeen": 4e15},
                "prompts": {"reply": {"dismissals": 1, "lastDismissed": 4e15}},
                "shown": [7, 4e15]}"#,
        );
        assert_eq!(state.activity.recent["sent"], [5, NOW]);
        assert_eq!(state.activity.last_seen_ms, Some(NOW));
        assert_eq!(state.prompts["reply"].last_dismissed_ms, Some(NOW));
        assert_eq!(state.ledger.shown_ms, [7, NOW]);
    }

    #[test]
    fn lists_read_back_keep_only_their_newest_entries() {
        let times: Vec<String> = (0..500).map(|t| t.to_string()).collect();
        let natives = vec!["true"; 499].join(",") + ",false";
        let json = format!(
            r#"{{"activity": {{"recent": {{"sent": [{0}]}}}}, "shown": [{0}], "native": [{natives}]}}"#,
            times.join(",")
        );
        let state = read(&json);
        let recent = &state.activity.recent["sent"];
        assert_eq!((recent.len(), recent.last()), (RECENT_LIMIT, Some(&499)));
        assert_eq!(state.ledger.shown_ms.len(), SHOWN_LIMIT);
        assert_eq!(state.ledger.shown_ms.last(), Some(&499));
        assert_eq!(state.ledger.native.len(), NATIVE_LIMIT);
        assert_eq!(state.ledger.native.last(), Some(&false));
    }
}
