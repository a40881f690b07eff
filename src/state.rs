//! What the page remembers between visits, and its storage encoding.
//!
//! The glue stores [`State`] as JSON in localStorage (`askwell:v1:state`). The
//! reader is lenient: an unreadable part is dropped and starts fresh, so a
//! corrupt or foreign value never throws into the host page — and because a
//! fresh state counts nothing as shown, the glue additionally keeps a
//! conservative session budget when storage is unavailable.

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::{Ledger, PromptState};
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
    pub prompts: BTreeMap<String, PromptState>,
    /// Prompts shown and native outcomes.
    pub ledger: Ledger,
    /// Topics of the current push subscription, as last confirmed.
    pub topics: BTreeSet<String>,
    /// Whether a push subscription exists, as last confirmed.
    pub subscribed: bool,
}

impl State {
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
        ])
    }

    /// Decodes leniently: whatever cannot be read starts fresh.
    pub fn from_value(value: &Value) -> State {
        State {
            anon_id: value
                .get("anonId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            activity: value.get("activity").map(activity_from_value).unwrap_or_default(),
            prompts: map_from(members(value.get("prompts")).map(|(k, v)| (k.clone(), prompt_from_value(v)))),
            ledger: Ledger {
                shown_ms: read_numbers(value.get("shown")),
                native: items(value.get("native"))
                    .filter_map(|v| match v {
                        Value::Bool(b) => Some(*b),
                        _ => None,
                    })
                    .collect(),
            },
            topics: read_strings(value.get("topics")),
            subscribed: matches!(value.get("subscribed"), Some(Value::Bool(true))),
        }
    }
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

fn activity_from_value(value: &Value) -> Activity {
    Activity {
        recent: map_from(members(value.get("recent")).map(|(k, v)| {
            let mut times = read_numbers(Some(v));
            times.truncate(RECENT_LIMIT);
            (k.clone(), times)
        })),
        totals: map_from(members(value.get("totals")).filter_map(|(k, v)| Some((k.clone(), whole(v)?)))),
        page_views: value.get("pageViews").and_then(whole).unwrap_or(0),
        last_seen_ms: value.get("lastSeen").and_then(whole),
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

fn prompt_from_value(value: &Value) -> PromptState {
    PromptState {
        dismissals: value
            .get("dismissals")
            .and_then(whole)
            .map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
        last_dismissed_ms: value.get("lastDismissed").and_then(whole),
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

fn read_numbers(value: Option<&Value>) -> Vec<u64> {
    items(value).filter_map(whole).collect()
}

fn read_strings(value: Option<&Value>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for text in items(value).filter_map(Value::as_str) {
        set.insert(text.to_owned());
    }
    set
}

/// Inserts one by one: `collect()` into a B-tree sorts its input first, and
/// each sort instantiation costs ~2 kB of wasm per key/value type.
fn map_from<V>(pairs: impl Iterator<Item = (String, V)>) -> BTreeMap<String, V> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        map.insert(key, value);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    #[test]
    fn round_trips_through_the_storage_encoding() {
        let mut state = State {
            anon_id: "anon-1".into(),
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
        assert_eq!(State::from_value(&state.to_value()), state);
    }

    #[test]
    fn corrupt_parts_start_fresh_instead_of_failing() {
        let state = State::from_value(&from_json(
            r#"{"anonId": 5, "prompts": {"reply": {"dismissals": "many", "accepted": [1, "t"]}}, "shown": "x", "native": [true, 3]}"#,
        ));
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
        assert_eq!(State::from_value(&from_json("[1, 2]")), State::default());
    }
}
