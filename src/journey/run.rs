//! The step function: instance + what happened + now → where the instance
//! is next and what to send. No clock and no I/O: the server passes `now`,
//! the recipient's traits and time zone, and stores what comes back.

use jiff::tz::TimeZone;

use super::{Condition, Deliver, Fields, Goto, Journey, Message, Repeat, Step, Trigger};
use crate::experiment::{assign, Arm, Assignment};

/// An event as journeys see it (tracked by the app's backend or forwarded by
/// the page).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Event name (`"added_to_cart"`).
    pub name: &'a str,
    /// Its key (`"cart-9"`), `""` when it has none.
    pub key: &'a str,
    /// When it happened (epoch ms).
    pub at_ms: u64,
    /// Its properties, as text.
    pub properties: &'a Fields,
}

/// What the server knows of the recipient when a step runs.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The user's traits.
    pub traits: &'a Fields,
    /// The user's time zone (or the configured default).
    pub zone: &'a TimeZone,
    /// Now (epoch ms).
    pub now_ms: u64,
}

/// An earlier instance of the same journey for the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    /// Its key.
    pub key: String,
    /// When it entered.
    pub entered_ms: u64,
    /// Whether it is still running.
    pub active: bool,
}

/// Where an instance is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// At `step`, which resumes at `at_ms` (a wait's end, a wait-for's
    /// timeout, a send's delivery time).
    At {
        /// Step index.
        step: usize,
        /// When it resumes (epoch ms).
        at_ms: u64,
    },
    /// Over.
    Ended(Ending),
}

/// Why an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ran past its last step.
    Completed,
    /// An exit step (or a `goto: "exit"`) ended it.
    ExitStep,
    /// An exit event ended it (for an inactivity journey: any event).
    Exited(String),
}

impl Ending {
    /// Stable name for storage and stats (`"completed"`, `"exit-step"`,
    /// `"event"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::ExitStep => "exit-step",
            Ending::Exited(_) => "event",
        }
    }
}

/// One user's way through one journey (per key, when keyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique id (chosen by the server); the idempotency keys derive from it.
    pub id: String,
    /// The journey's id.
    pub journey: String,
    /// The journey version it runs (an edit does not move running instances).
    pub version: u32,
    /// The user.
    pub user: String,
    /// The key (`""` when the journey is not keyed).
    pub key: String,
    /// When the entry event happened (earlier exit events do not count).
    pub entered_ms: u64,
    /// In the holdout: runs every step, sends nothing.
    pub holdout: bool,
    /// The entry event's properties, for `{event.*}`.
    pub event: Fields,
    /// Where it is.
    pub position: Position,
}

/// A notification to enqueue for the instance's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// The step that sends it.
    pub step: usize,
    /// Rendered title.
    pub title: String,
    /// Rendered body.
    pub body: String,
    /// Rendered click URL.
    pub url: Option<String>,
    /// Rendered image URL.
    pub image: Option<String>,
    /// `journey:{instance}:{step}`: enqueuing it twice sends once.
    pub idempotency: String,
    /// The step's category (delivery policy, preferences).
    pub category: Option<String>,
}

/// What the server must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enqueue this notification.
    Send(Send),
    /// A holdout instance reached a send step: count it, send nothing.
    Withheld {
        /// The step.
        step: usize,
    },
    /// The instance ended.
    Ended(Ending),
}

/// A new instance and what it did at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    /// The instance, at its first waiting position (or ended).
    pub instance: Instance,
    /// Sends (and the end) of the steps that ran at entry.
    pub actions: Vec<Action>,
}

/// What may start an instance.
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    /// An event, the `occurrences`-th of its name for this user (itself
    /// included).
    Event {
        /// The event.
        event: Event<'a>,
        /// How many of its name the user has had, this one included.
        occurrences: u64,
    },
    /// The user has had no event since `last_seen_ms`.
    Inactive {
        /// Their last event (epoch ms).
        last_seen_ms: u64,
    },
}

/// Whether `cause` enters `user` into `journey`, given the user's earlier
/// instances of it; if so the new instance `id`, run until its first wait.
pub fn enter(
    journey: &Journey,
    version: u32,
    id: &str,
    user: &str,
    cause: Cause<'_>,
    prior: &[Prior],
    facts: Facts<'_>,
) -> Option<Entered> {
    let empty = Fields::new();
    let (key, since_ms, properties) = match (&journey.entry.trigger, cause) {
        (Trigger::Event { name, keyed, nth }, Cause::Event { event, occurrences }) => {
            let key = if *keyed { event.key } else { "" };
            let wrong = event.name != name || (*keyed && key.is_empty()) || nth.is_some_and(|n| n != occurrences);
            if wrong {
                return None;
            }
            (key.to_owned(), event.at_ms, event.properties)
        }
        (Trigger::Inactive { after_ms }, Cause::Inactive { last_seen_ms }) => {
            if facts.now_ms < last_seen_ms.saturating_add(*after_ms) {
                return None;
            }
            // One instance per absence: a user who comes back and leaves
            // again enters again.
            (last_seen_ms.to_string(), last_seen_ms, &empty)
        }
        _ => return None,
    };
    if let Some(when) = &journey.entry.when {
        if !when.holds(facts.traits, properties) {
            return None;
        }
    }
    if !may_enter(journey.entry.repeat, &key, prior, facts.now_ms) {
        return None;
    }
    let mut instance = Instance {
        id: id.to_owned(),
        journey: journey.id.clone(),
        version,
        user: user.to_owned(),
        key,
        entered_ms: since_ms,
        holdout: in_holdout(journey, user),
        event: properties.clone(),
        position: Position::At {
            step: 0,
            at_ms: facts.now_ms,
        },
    };
    let actions = run(journey, &mut instance, Goto::Step(0), 0, facts);
    Some(Entered { instance, actions })
}

/// Whether someone with `prior` instances may enter again with `key`.
fn may_enter(repeat: Repeat, key: &str, prior: &[Prior], now_ms: u64) -> bool {
    let same_key = || prior.iter().filter(|p| p.key == key);
    if same_key().any(|p| p.active) {
        return false;
    }
    match repeat {
        Repeat::OncePerUser => prior.is_empty(),
        Repeat::OncePerKey => same_key().next().is_none(),
        Repeat::After(gap_ms) => same_key().all(|p| p.entered_ms.saturating_add(gap_ms) <= now_ms),
    }
}

/// Whether `user` is in `journey`'s holdout: a sticky draw per user and
/// journey, independent of prompt experiments.
pub fn in_holdout(journey: &Journey, user: &str) -> bool {
    let experiment = format!("journey:{}", journey.id);
    let arms = [Arm {
        id: "send",
        weight: 1.0,
    }];
    matches!(assign(user, &experiment, journey.holdout, &arms), Assignment::Holdout)
}

/// `event` happened to the instance's user.
pub fn on_event(journey: &Journey, instance: &mut Instance, event: Event<'_>, facts: Facts<'_>) -> Vec<Action> {
    let Position::At { step, .. } = instance.position else {
        return Vec::new();
    };
    if event.at_ms < instance.entered_ms {
        return Vec::new();
    }
    let same_key = |wanted: bool| !wanted || event.key == instance.key;
    let back = matches!(journey.entry.trigger, Trigger::Inactive { .. });
    let exits = journey
        .exit_on
        .iter()
        .any(|rule| rule.event == event.name && same_key(rule.same_key));
    if exits || back {
        return end(instance, Ending::Exited(event.name.to_owned()));
    }
    match journey.steps.get(step) {
        Some(Step::WaitFor {
            event: name,
            same_key: keyed,
            on_event,
            ..
        }) if name == event.name && same_key(*keyed) => run(journey, instance, *on_event, step, facts),
        _ => Vec::new(),
    }
}

/// The instance's time has come (`facts.now_ms` ≥ its `at_ms`).
pub fn on_due(journey: &Journey, instance: &mut Instance, facts: Facts<'_>) -> Vec<Action> {
    let Position::At { step, at_ms } = instance.position else {
        return Vec::new();
    };
    if facts.now_ms < at_ms {
        return Vec::new();
    }
    match journey.steps.get(step) {
        Some(Step::Wait(_)) => run(journey, instance, Goto::Next, step, facts),
        Some(Step::WaitFor { on_timeout, .. }) => run(journey, instance, *on_timeout, step, facts),
        Some(Step::Send(message)) => {
            // Late (the server was down): a window is still honoured, a
            // time of day is sent now rather than a day later.
            if let Some(deliver @ Deliver::Within(..)) = message.deliver {
                let next = deliver.next(facts.now_ms, facts.zone);
                if next > facts.now_ms {
                    instance.position = Position::At { step, at_ms: next };
                    return Vec::new();
                }
            }
            let mut actions = vec![send(instance, step, message, facts.traits)];
            actions.extend(run(journey, instance, Goto::Next, step, facts));
            actions
        }
        _ => run(journey, instance, Goto::Step(step), step, facts),
    }
}

/// Runs from `goto` (relative to step `from`) until a step waits or the
/// instance ends. Gotos only move forward, so this visits each step once.
fn run(journey: &Journey, instance: &mut Instance, goto: Goto, from: usize, facts: Facts<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut next = goto;
    let mut current = from;
    loop {
        let step = match next {
            Goto::Exit => {
                actions.extend(end(instance, Ending::ExitStep));
                return actions;
            }
            Goto::Next => current + 1,
            Goto::Step(step) => step,
        };
        let Some(definition) = journey.steps.get(step) else {
            actions.extend(end(instance, Ending::Completed));
            return actions;
        };
        current = step;
        let wait = |ms: u64| Position::At {
            step,
            at_ms: facts.now_ms.saturating_add(ms),
        };
        next = match definition {
            Step::Wait(ms) => {
                instance.position = wait(*ms);
                return actions;
            }
            Step::WaitFor { timeout_ms, .. } => {
                instance.position = wait(*timeout_ms);
                return actions;
            }
            Step::Branch { when, then, otherwise } => {
                if holds(when, facts.traits, instance) {
                    *then
                } else {
                    *otherwise
                }
            }
            Step::Send(message) => {
                let at_ms = message
                    .deliver
                    .map_or(facts.now_ms, |deliver| deliver.next(facts.now_ms, facts.zone));
                if at_ms > facts.now_ms {
                    instance.position = Position::At { step, at_ms };
                    return actions;
                }
                actions.push(send(instance, step, message, facts.traits));
                Goto::Next
            }
            Step::Exit => Goto::Exit,
        };
    }
}

fn holds(when: &Condition, traits: &Fields, instance: &Instance) -> bool {
    when.holds(traits, &instance.event)
}

fn end(instance: &mut Instance, ending: Ending) -> Vec<Action> {
    instance.position = Position::Ended(ending.clone());
    vec![Action::Ended(ending)]
}

/// The send of `step` (withheld for holdout instances). `{user.*}` reads the
/// traits as they are at send time, `{event.*}` the entry event.
fn send(instance: &Instance, step: usize, message: &Message, traits: &Fields) -> Action {
    if instance.holdout {
        return Action::Withheld { step };
    }
    Action::Send(render(instance, step, message, traits))
}

fn render(instance: &Instance, step: usize, message: &Message, traits: &Fields) -> Send {
    let lookup = |field: &str| -> Option<&str> {
        if let Some(name) = field.strip_prefix("user.") {
            return traits.get(name).map(String::as_str);
        }
        match field.strip_prefix("event.")? {
            "key" => Some(instance.key.as_str()),
            name => instance.event.get(name).map(String::as_str),
        }
    };
    let optional =
        |t: &Option<crate::template::Template>| t.as_ref().map(|t| t.render(lookup)).filter(|text| !text.is_empty());
    Send {
        step,
        title: message.title.render(lookup),
        body: message.body.render(lookup),
        url: optional(&message.url),
        image: optional(&message.image),
        idempotency: format!("journey:{}:{}", instance.id, step),
        category: message.category.clone(),
    }
}
