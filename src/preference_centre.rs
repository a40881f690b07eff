//! The preference centre's model: what `<askwell-preferences>` shows, read
//! from the server's answer to `POST /v1/preferences/lookup` (or `POST
//! /v1/preferences`), and what each control asks the server to change.
//! Pure: the page glue fetches, renders the [`Centre`] as text and native
//! controls, and sends the [`Value`]s built here with the device's proof
//! of possession.
//!
//! A malformed answer is refused whole ([`Centre::read`] is `None`): the
//! element then says it could not load, rather than show switches that do
//! not match what the server holds.

use crate::value::Value;

/// One switch: a category or a topic the person can turn off or on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The name the server knows it by (`replies`, `thread:42`).
    pub name: String,
    /// What the person reads ("Replies from Bill"); the name when the
    /// server has no label.
    pub label: String,
    /// Whether pushes of it arrive.
    pub on: bool,
    /// Exempt categories (security, transactional) are always sent: shown,
    /// but not a switch.
    pub fixed: bool,
}

/// The pause of everything but exempt categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Not paused.
    Off,
    /// Paused until this time (epoch milliseconds).
    Until(i64),
    /// Paused until the person turns notifications back on.
    Indefinite,
}

/// A pause the person can choose, in the order the element offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseChoice {
    /// Resume now.
    Resume,
    /// For 24 hours.
    Day,
    /// For 7 days.
    Week,
    /// Until turned back on.
    Indefinite,
}

impl PauseChoice {
    /// Every choice, in the order offered.
    pub const ALL: [PauseChoice; 4] = [Self::Resume, Self::Day, Self::Week, Self::Indefinite];

    /// The `<option>` value and the name tests use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resume => "off",
            Self::Day => "day",
            Self::Week => "week",
            Self::Indefinite => "indefinite",
        }
    }

    /// The choice an `<option>` value stands for.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == value)
    }

    /// What the person reads.
    pub fn label(self) -> &'static str {
        match self {
            Self::Resume => "Not paused",
            Self::Day => "Pause for a day",
            Self::Week => "Pause for a week",
            Self::Indefinite => "Pause until I turn them back on",
        }
    }

    /// The `pause` member of `POST /v1/preferences`.
    fn request(self) -> Value {
        match self {
            Self::Resume => Value::Null,
            Self::Day => Value::object([("days", Value::Number(1.0))]),
            Self::Week => Value::object([("days", Value::Number(7.0))]),
            Self::Indefinite => Value::object([("indefinite", Value::Bool(true))]),
        }
    }
}

/// The texts of the element (English; the README says how they read).
pub mod text {
    /// The element's accessible name and heading.
    pub const TITLE: &str = "Notifications";
    /// While the server is asked.
    pub const LOADING: &str = "Loading your notification settings…";
    /// No subscription on this device (never allowed, blocked, or turned off).
    pub const OFF: &str = "Notifications are off on this device.";
    /// Push is not available in this browser.
    pub const UNSUPPORTED: &str = "This browser cannot show notifications from this site.";
    /// The server could not be reached or answered something else.
    pub const UNAVAILABLE: &str = "Your notification settings could not be loaded. Try again later.";
    /// A change the server did not take (the switch goes back).
    pub const NOT_SAVED: &str = "That change could not be saved. Try again later.";
    /// While a change is sent.
    pub const SAVING: &str = "Saving…";
    /// A change the server took.
    pub const SAVED: &str = "Saved.";
    /// The legend over the categories.
    pub const CATEGORIES: &str = "What you get";
    /// The legend over the topics.
    pub const TOPICS: &str = "What you follow";
    /// The label of the pause menu.
    pub const PAUSE: &str = "Pause";
    /// After an exempt category's label.
    pub const ALWAYS_SENT: &str = "(always sent)";
    /// The button that unsubscribes this device.
    pub const TURN_OFF: &str = "Turn off notifications on this device";
}

/// What the element shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Centre {
    /// The policy's categories, then any other the person turned off.
    pub categories: Vec<Switch>,
    /// The device's topics, then any other it muted.
    pub topics: Vec<Switch>,
    /// The pause now.
    pub pause: Pause,
}

impl Centre {
    /// Reads the server's preferences answer: `{ categories: [{ name, label?,
    /// on, exempt? }], topics: [{ name, label?, on }], pause: null | {
    /// until_ms } | { indefinite: true } }`. `None` when any part is malformed.
    pub fn read(answer: &Value) -> Option<Centre> {
        Some(Centre {
            categories: switches(answer.get("categories")?)?,
            topics: switches(answer.get("topics")?)?,
            pause: pause(answer.get("pause").unwrap_or(&Value::Null))?,
        })
    }

    /// The pause choice that matches what the server holds (a timed pause
    /// shows as the day or week it was, as far as the menu can tell: the
    /// element also says until when).
    pub fn pause_choice(&self, now_ms: i64) -> PauseChoice {
        const DAY_MS: i64 = 24 * 3_600_000;
        match self.pause {
            Pause::Off => PauseChoice::Resume,
            Pause::Indefinite => PauseChoice::Indefinite,
            Pause::Until(until) if until <= now_ms => PauseChoice::Resume,
            Pause::Until(until) if until - now_ms <= DAY_MS => PauseChoice::Day,
            Pause::Until(_) => PauseChoice::Week,
        }
    }
}

/// The change that turns category `name` on or off: `{ categories: { name: on } }`.
pub fn category_change(name: &str, on: bool) -> Value {
    Value::object([("categories", Value::Object(vec![(name.to_owned(), Value::Bool(on))]))])
}

/// The change that turns topic `name` on or off: `{ topics: { name: on } }`.
pub fn topic_change(name: &str, on: bool) -> Value {
    Value::object([("topics", Value::Object(vec![(name.to_owned(), Value::Bool(on))]))])
}

/// The change a pause choice asks for: `{ pause: … }`.
pub fn pause_change(choice: PauseChoice) -> Value {
    Value::object([("pause", choice.request())])
}

fn switches(list: &Value) -> Option<Vec<Switch>> {
    let Value::Array(items) = list else {
        return None;
    };
    items.iter().map(switch).collect()
}

fn switch(item: &Value) -> Option<Switch> {
    let name = item.get("name")?.as_str()?;
    let Some(Value::Bool(on)) = item.get("on") else {
        return None;
    };
    let label = match item.get("label") {
        Some(Value::String(label)) if !label.trim().is_empty() => label.as_str(),
        None | Some(Value::Null | Value::String(_)) => name,
        Some(_) => return None,
    };
    let flag = |key: &str| match item.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        None => Some(false),
        Some(_) => None,
    };
    Some(Switch {
        name: name.to_owned(),
        label: label.to_owned(),
        on: *on,
        fixed: flag("exempt")?,
    })
}

fn pause(value: &Value) -> Option<Pause> {
    if *value == Value::Null {
        return Some(Pause::Off);
    }
    if value.get("indefinite") == Some(&Value::Bool(true)) {
        return Some(Pause::Indefinite);
    }
    let until = value.get("until_ms")?.as_f64()?;
    (until.is_finite() && until.fract() == 0.0).then_some(Pause::Until(until as i64))
}

#[cfg(test)]
#[path = "preference_centre_tests.rs"]
mod tests;
