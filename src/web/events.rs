//! Outcomes as DOM `CustomEvent`s (`askwell:shown`, …) and `on()` callbacks:
//! the one place app code is called. These functions take owned data (or
//! borrows of it) and `&Shared`, never a borrowed controller: callers decide
//! inside `Shared::update` and publish after it returns, and [`send`] borrows
//! only to copy the callbacks, so a listener may call back into Askwell.

use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use super::controller::Shared;
use super::convert::to_js;
use super::push::Failure;
use super::report;
use crate::engine::{Proposal, Skip};
use crate::model::{EventKind, NativeAnswer};
use crate::value::Value;

/// What happened to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Shown,
    Accepted,
    Dismissed,
    /// The browser's prompt was answered.
    Permission(NativeAnswer),
    /// Push cannot work here (`failure` is `Unsupported` or `NeedsHomeScreen`).
    Unavailable(Failure),
    Subscribed,
}

impl Outcome {
    /// The `askwell:<name>` event.
    fn name(self) -> &'static str {
        match self {
            Outcome::Shown => "shown",
            Outcome::Accepted => "accepted",
            Outcome::Dismissed => "dismissed",
            Outcome::Permission(_) | Outcome::Unavailable(_) => "permission",
            Outcome::Subscribed => "subscribed",
        }
    }

    /// The detail's `state`, for `permission`.
    fn state(self) -> Option<&'static str> {
        match self {
            Outcome::Permission(answer) => Some(answer.as_str()),
            Outcome::Unavailable(failure) => Some(failure.code()),
            _ => None,
        }
    }

    /// Its funnel event (`None`: not part of the funnel; `subscribed` is
    /// recorded by the server from the subscription itself, as a client's
    /// claim could be forged).
    fn event(self) -> Option<EventKind> {
        match self {
            Outcome::Shown => Some(EventKind::PromptShown),
            Outcome::Accepted => Some(EventKind::PromptAccepted),
            Outcome::Dismissed => Some(EventKind::PromptDismissed),
            Outcome::Permission(answer) => Some(answer.event()),
            Outcome::Unavailable(_) | Outcome::Subscribed => None,
        }
    }
}

/// Publishes `outcome` for `proposal` in two steps: its funnel event, if it
/// has one, is recorded for the server; then the page is told (DOM event and
/// `on()` callbacks).
pub(crate) fn publish(inner: &Shared, outcome: Outcome, proposal: &Proposal) {
    if let Some(kind) = outcome.event() {
        report::outcome(&inner.queue(kind), kind, proposal);
    }
    announce(inner, outcome, proposal);
}

/// Tells the page about `outcome`: `askwell:<name>` on `document` and the
/// callbacks registered with `on(name)`. Records nothing.
fn announce(inner: &Shared, outcome: Outcome, proposal: &Proposal) {
    let entity = proposal.entity.as_ref().map_or(Value::Null, |e| {
        Value::object([("id", e.id.as_str().into()), ("name", e.name.as_str().into())])
    });
    let mut members = vec![
        ("prompt".to_owned(), proposal.prompt.as_str().into()),
        ("variant".to_owned(), proposal.variant.as_str().into()),
        ("trigger".to_owned(), proposal.trigger.as_str().into()),
        ("entity".to_owned(), entity),
        (
            "topic".to_owned(),
            proposal.topic.as_deref().map_or(Value::Null, Value::from),
        ),
    ];
    if let Some(state) = outcome.state() {
        members.push(("state".to_owned(), state.into()));
    }
    send(inner, outcome.name(), &Value::Object(members));
}

/// Debug mode (`debug: true`): why a prompt was held back, as
/// `console.info` and `askwell:skipped` `{ prompt, trigger, reason }`.
pub(crate) fn skipped(inner: &Shared, skip: &Skip, trigger: &str) {
    let (prompt, reason) = match skip {
        Skip::Suppressed(prompt, why) => (prompt.as_str(), why.as_str()),
        Skip::Holdout(prompt) => (prompt.as_str(), "holdout"),
        Skip::PromptOpen => ("", "prompt-open"),
        Skip::NoRule => return,
    };
    let detail = Value::object([
        ("prompt", prompt.into()),
        ("trigger", trigger.into()),
        ("reason", reason.into()),
    ]);
    web_sys::console::info_2(&"askwell: held back".into(), &to_js(&detail));
    send(inner, "skipped", &detail);
}

/// Emits `askwell:error` with a stable `code` and a human `message`.
pub(crate) fn error(inner: &Shared, code: &str, message: &str) {
    send(
        inner,
        "error",
        &Value::object([("code", code.into()), ("message", message.into())]),
    );
}

fn send(inner: &Shared, name: &str, detail: &Value) {
    let detail = to_js(detail);
    let callbacks: Vec<Function> = inner.read(|c| c.callbacks(name));
    for callback in callbacks {
        // A throwing app callback must not break the flow for the others.
        let _ = callback.call1(&JsValue::NULL, &detail);
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let init = CustomEventInit::new();
    init.set_detail(&detail);
    let mut kind = String::from("askwell:");
    kind.push_str(name);
    if let Ok(event) = CustomEvent::new_with_event_init_dict(&kind, &init) {
        let _ = document.dispatch_event(&event);
    }
}
