//! One tap from the notification: the buttons Askwell's worker handles
//! itself, without opening a page. [`MUTE`] turns off what the push was sent
//! for (its topic, else its category); [`SNOOZE`] pauses everything but
//! exempt categories for the button's `hours`. Pure: this decides what the
//! server is asked (a `POST /v1/preferences` change, with the device's proof
//! of possession added by the worker) and what the confirmation says; the
//! worker does the I/O.
//!
//! Browsers show at most `Notification.maxActions` buttons (two in Chrome),
//! so the payload says which to offer: the app puts them in `actions` like
//! any other button, and the server checks them when the push is queued.

use crate::model::{PushAction, PushPayload};
use crate::value::Value;

/// The button id that mutes the push's topic (else its category).
pub const MUTE: &str = "askwell:mute-topic";
/// The button id that pauses everything for its `hours`.
pub const SNOOZE: &str = "askwell:snooze";
/// The pause of a [`SNOOZE`] without (valid) `hours`: a day.
pub const DEFAULT_SNOOZE_HOURS: u32 = 24;
/// The longest pause the server takes: a year.
pub const MAX_SNOOZE_HOURS: u32 = 366 * 24;
/// The prefix of the ids Askwell keeps for itself.
pub const RESERVED_PREFIX: &str = "askwell:";
/// The confirmation's tag: a second tap replaces the first confirmation.
pub const CONFIRMATION_TAG: &str = "askwell:confirmation";
/// Shown when the server could not be told (offline, the subscription gone).
pub const FAILED: &str = "Could not change your notifications. Try again in the site's settings.";

/// What a tap on one of Askwell's own buttons does.
#[derive(Debug, Clone, PartialEq)]
pub struct Tap {
    /// The body of `POST /v1/preferences` without `endpoint` and `auth`:
    /// `{ topics: { t: false } }`, `{ categories: { c: false } }` or
    /// `{ pause: { hours } }`.
    pub change: Value,
    /// The confirmation notification's title.
    pub confirmation: String,
}

/// Whether `action` is one of Askwell's ids (the server refuses unknown ones).
pub fn is_reserved(action: &str) -> bool {
    action.starts_with(RESERVED_PREFIX)
}

impl PushPayload {
    /// What a tap on `action` asks, if it is one of Askwell's own buttons
    /// and there is something to change (`None`: a normal click, which opens
    /// the page). A [`MUTE`] with neither a topic nor a category is a normal
    /// click: the server never queues one, but an old payload might be.
    pub fn tap(&self, action: &str) -> Option<Tap> {
        let button = self.actions.iter().find(|a| a.action == action)?;
        match action {
            MUTE => {
                let (member, name) = match (&self.topic, &self.category) {
                    (Some(topic), _) => ("topics", topic),
                    (None, Some(category)) => ("categories", category),
                    (None, None) => return None,
                };
                let off = Value::Object(vec![(name.clone(), Value::Bool(false))]);
                Some(Tap {
                    change: Value::object([(member, off)]),
                    confirmation: confirmation(button, || ["Muted: ", name].concat()),
                })
            }
            SNOOZE => {
                let hours = snooze_hours(button);
                Some(Tap {
                    change: Value::object([("pause", Value::object([("hours", u64::from(hours).into())]))]),
                    confirmation: confirmation(button, || ["Paused for ", &duration(hours)].concat()),
                })
            }
            _ => None,
        }
    }
}

/// The pause a [`SNOOZE`] button asks for, within what the server takes.
pub fn snooze_hours(button: &PushAction) -> u32 {
    button
        .hours
        .filter(|h| (1..=MAX_SNOOZE_HOURS).contains(h))
        .unwrap_or(DEFAULT_SNOOZE_HOURS)
}

fn confirmation(button: &PushAction, english: impl FnOnce() -> String) -> String {
    button
        .confirm
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map_or_else(english, str::to_owned)
}

/// `hours` as people say it: "an hour", "8 hours", "a day", "3 days",
/// "a week", "2 weeks".
pub fn duration(hours: u32) -> String {
    let (n, unit) = if hours.is_multiple_of(24 * 7) {
        (hours / (24 * 7), "week")
    } else if hours.is_multiple_of(24) {
        (hours / 24, "day")
    } else {
        (hours, "hour")
    };
    match (n, unit) {
        (1, "hour") => "an hour".to_owned(),
        (1, unit) => ["a ", unit].concat(),
        (n, unit) => [&decimal(n), " ", unit, "s"].concat(),
    }
}

/// `n` in decimal digits. Not `format!`: the worker's wasm would carry
/// Rust's formatting machinery (2 kB) for these few numbers.
fn decimal(mut n: u32) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from(b'0' + (n % 10) as u8));
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    fn payload(json: &str) -> PushPayload {
        PushPayload::read(&from_json(json)).expect("a valid payload")
    }

    #[test]
    fn mute_turns_off_the_topic_it_was_sent_to_else_its_category() {
        let both = payload(
            r#"{"askwell":1,"title":"Bill replied","topic":"thread:42","category":"replies",
                "actions":[{"action":"askwell:mute-topic","title":"Mute this thread"}]}"#,
        );
        let tap = both.tap(MUTE).expect("a mute");
        assert_eq!(tap.change, from_json(r#"{"topics":{"thread:42":false}}"#));
        assert_eq!(tap.confirmation, "Muted: thread:42");
        let category_only = payload(
            r#"{"askwell":1,"title":"Sale","category":"marketing",
                "actions":[{"action":"askwell:mute-topic","title":"No more sales","confirm":"Plus de promotions"}]}"#,
        );
        let tap = category_only.tap(MUTE).expect("a mute");
        assert_eq!(tap.change, from_json(r#"{"categories":{"marketing":false}}"#));
        assert_eq!(tap.confirmation, "Plus de promotions", "the app's own words win");
        let nothing =
            payload(r#"{"askwell":1,"title":"Hi","actions":[{"action":"askwell:mute-topic","title":"Mute"}]}"#);
        assert_eq!(nothing.tap(MUTE), None, "nothing to mute: a normal click");
    }

    #[test]
    fn snooze_pauses_for_its_hours_within_a_year() {
        let week = payload(
            r#"{"askwell":1,"title":"t","actions":[{"action":"askwell:snooze","title":"Pause a week","hours":168}]}"#,
        );
        let tap = week.tap(SNOOZE).expect("a snooze");
        assert_eq!(tap.change, from_json(r#"{"pause":{"hours":168}}"#));
        assert_eq!(tap.confirmation, "Paused for a week");
        for (hours, expected) in [("0", 24), ("1.5", 24), ("9000", 24), ("\"8\"", 24), ("8", 8)] {
            let json = format!(
                r#"{{"askwell":1,"title":"t","actions":[{{"action":"askwell:snooze","title":"z","hours":{hours}}}]}}"#
            );
            let button = &payload(&json).actions[0];
            assert_eq!(snooze_hours(button), expected, "hours {hours}");
        }
    }

    #[test]
    fn only_askwells_buttons_on_this_push_are_taps() {
        let push = payload(
            r#"{"askwell":1,"title":"t","topic":"a","actions":[{"action":"reply","title":"Reply","url":"/r"}]}"#,
        );
        assert_eq!(push.tap("reply"), None, "the app's button opens its page");
        assert_eq!(push.tap(MUTE), None, "a mute this push does not offer");
        assert_eq!(push.tap(""), None, "the notification itself");
        assert!(is_reserved(MUTE) && is_reserved(SNOOZE) && !is_reserved("reply"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        for (hours, text) in [
            (1, "an hour"),
            (8, "8 hours"),
            (24, "a day"),
            (72, "3 days"),
            (168, "a week"),
            (336, "2 weeks"),
            (36, "36 hours"),
            (100, "100 hours"),
            (10 * 24, "10 days"),
            (70 * 24, "10 weeks"),
            (MAX_SNOOZE_HOURS + 1, "8785 hours"),
        ] {
            assert_eq!(duration(hours), text);
        }
    }
}
