//! Journeys: behaviour-triggered follow-up pushes (the abandoned-cart
//! reminder, re-engagement after a week away, an onboarding sequence, a
//! milestone, "continue watching"), each timed to the recipient's day and
//! ended the moment the person does the thing.
//!
//! This module is the pure part, as the prompt engine is for the page: a
//! journey definition read from JSON ([`Journey::read`], every bad field named
//! by path), and a step function — instance + what happened + now → the
//! instance's next position and what to send ([`enter`], [`on_event`],
//! [`on_due`]). askwell-server stores instances, claims the due ones with its
//! delivery leases and acts on the [`Action`]s; it never decides anything
//! itself, so every rule below is tested natively (`journey/tests.rs`).
//!
//! Guarantees the structure gives (and the property tests check):
//! - **No step runs twice.** Steps only move forward (`goto` may only name a
//!   later step), so an instance passes each step at most once; each send
//!   carries an idempotency key (`instance id` + step) for the outbox.
//! - **Nothing is sent after an exit.** Exit rules are checked on every event
//!   before anything else, and an ended instance never acts again.
//! - **Local times are the recipient's.** A send may wait for a local time of
//!   day or a local window, computed in the recipient's IANA time zone with
//!   the bundled tz database (see [`local`] for the DST rule).

mod local;
mod read;
mod run;

pub(crate) use crate::value::read_duration;
pub use local::{zone, Deliver, LocalTime};

/// A duration as journeys write it (`{ "hours": 24 }`; see the README's
/// *Journeys*), in milliseconds, or the problems named under `path` (the
/// server reads `POST /v1/notify`'s `conversion.within` with it).
///
/// # Errors
/// The problems found.
pub fn parse_duration(value: &crate::value::Value, path: &str) -> Result<u64, crate::error::FieldProblems> {
    let mut problems = crate::error::FieldProblems::default();
    match read_duration(value, path.to_owned(), &mut problems) {
        Some(ms) if problems.0.is_empty() => Ok(ms),
        _ => Err(problems),
    }
}
pub use read::{is_name, MAX_BODY_CHARS, MAX_NAME, MAX_TITLE_CHARS};
pub use run::{
    enter, in_holdout, on_due, on_event, Action, Cause, Ending, Entered, Event, Facts, Instance, Position, Prior, Send,
};

use crate::template::Template;

/// Most steps in one journey (an onboarding sequence has a handful).
pub const MAX_STEPS: usize = 50;
/// Longest wait or timeout: a year.
pub const MAX_WAIT_MS: u64 = crate::value::MAX_DURATION_MS;

/// One journey definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Stable id (`"abandoned-cart"`).
    pub id: String,
    /// Who enters, and when.
    pub entry: Entry,
    /// Events that end an instance at once, whatever step it is in.
    pub exit_on: Vec<ExitRule>,
    /// The steps, run in order (forward jumps only).
    pub steps: Vec<Step>,
    /// Share of entrants never sent anything (0..0.99): the control group
    /// that tells whether the journey lifts conversion.
    pub holdout: f64,
    /// The event that counts as converting (defaults to the first exit
    /// event): reported per journey, for instances sent to and held out.
    pub goal: Option<String>,
}

/// How people enter a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What starts it.
    pub trigger: Trigger,
    /// Only when this holds (user traits, the event's properties).
    pub when: Option<Condition>,
    /// Whether someone may enter again.
    pub repeat: Repeat,
}

/// What starts a journey.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// An event with this name; `keyed`: one instance per event key (a cart
    /// id, an episode id) instead of one per user.
    Event {
        /// Event name.
        name: String,
        /// Whether instances are per key.
        keyed: bool,
        /// Only on the nth occurrence of the event for this user (a milestone).
        nth: Option<u64>,
    },
    /// No event at all from the user for this long (found by a sweep). Any
    /// later event of the user ends the instance: they are back.
    Inactive {
        /// How long without an event.
        after_ms: u64,
    },
}

/// Whether a user may enter a journey again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Once per user, ever.
    OncePerUser,
    /// Once per event key (each cart gets one reminder).
    OncePerKey,
    /// Again once this long has passed since the last entry (same key).
    After(u64),
}

/// An event that ends an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitRule {
    /// Event name.
    pub event: String,
    /// Only an event with the instance's key (this cart was bought).
    pub same_key: bool,
}

/// One step of a journey.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Wait this long (milliseconds).
    Wait(u64),
    /// Wait for an event, at most `timeout_ms`.
    WaitFor {
        /// Event name.
        event: String,
        /// Only an event with the instance's key.
        same_key: bool,
        /// How long to wait.
        timeout_ms: u64,
        /// Where to go when it happens.
        on_event: Goto,
        /// Where to go when it does not.
        on_timeout: Goto,
    },
    /// Go one way or the other on a condition (traits, entry properties).
    Branch {
        /// The condition.
        when: Condition,
        /// Where to go when it holds.
        then: Goto,
        /// Where to go when it does not.
        otherwise: Goto,
    },
    /// Send a notification.
    Send(Message),
    /// End the instance here.
    Exit,
}

/// Where a step continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goto {
    /// The next step.
    Next,
    /// A later step, by index (validated to be later).
    Step(usize),
    /// End the instance.
    Exit,
}

/// A notification a journey sends: templates over `{user.*}` (traits) and
/// `{event.*}` (the entry event: `event.key`, `event.<property>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Title template.
    pub title: Template,
    /// Body template.
    pub body: Template,
    /// Where a click goes (template).
    pub url: Option<Template>,
    /// Image URL (template).
    pub image: Option<Template>,
    /// When, in the recipient's local time (absent: at once).
    pub deliver: Option<Deliver>,
    /// Its category for the delivery policy and people's preferences
    /// (`"marketing"`); absent: the site's rules.
    pub category: Option<String>,
}

/// A condition over user traits and event properties, in the page rules'
/// language: `{ "trait": "plan", "equals": "pro" }`,
/// `{ "property": "total", "in": ["50", "100"] }`, `all` / `any` / `not`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The user trait `name` is one of `values`.
    Trait {
        /// Trait name.
        name: String,
        /// Accepted values (as text).
        values: Vec<String>,
    },
    /// The event property `name` is one of `values`.
    Property {
        /// Property name.
        name: String,
        /// Accepted values (as text).
        values: Vec<String>,
    },
    /// All hold.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// Does not hold.
    Not(Box<Condition>),
}

/// Text values by name: a user's traits or an event's properties (numbers
/// and booleans as their JSON text).
pub type Fields = std::collections::BTreeMap<String, String>;

impl Condition {
    /// Whether the condition holds for these traits and properties.
    pub fn holds(&self, traits: &Fields, properties: &Fields) -> bool {
        match self {
            Condition::Trait { name, values } => traits.get(name).is_some_and(|v| values.contains(v)),
            Condition::Property { name, values } => properties.get(name).is_some_and(|v| values.contains(v)),
            Condition::All(all) => all.iter().all(|c| c.holds(traits, properties)),
            Condition::Any(any) => any.iter().any(|c| c.holds(traits, properties)),
            Condition::Not(inner) => !inner.holds(traits, properties),
        }
    }
}

impl Journey {
    /// The event names this journey reacts to once someone is in it (exit
    /// rules, waits for an event, the goal): what the server must route to
    /// instances.
    pub fn listens_to(&self) -> impl Iterator<Item = &str> {
        let exits = self.exit_on.iter().map(|e| e.event.as_str());
        let waits = self.steps.iter().filter_map(|s| match s {
            Step::WaitFor { event, .. } => Some(event.as_str()),
            _ => None,
        });
        exits.chain(waits).chain(self.goal.as_deref())
    }

    /// The event that counts as converting: the goal, else the first exit.
    pub fn goal(&self) -> Option<&str> {
        self.goal
            .as_deref()
            .or_else(|| self.exit_on.first().map(|e| e.event.as_str()))
    }
}

#[cfg(test)]
pub(crate) mod tests;
