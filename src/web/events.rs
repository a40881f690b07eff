//! Outcomes as DOM `CustomEvent`s (`askwell:shown`, …) and `on()` callbacks.
//! Both are dispatched only after the engine's borrow ends, so a listener may
//! call back into Askwell.

use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit};

use super::controller::Shared;
use super::convert::to_js;
use super::report;
use crate::engine::{Proposal, Skip};
use crate::value::Value;

/// What happened to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Shown,
    Accepted,
    Dismissed,
    Permission,
    Subscribed,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Shown => "shown",
            Outcome::Accepted => "accepted",
            Outcome::Dismissed => "dismissed",
            Outcome::Permission => "permission",
            Outcome::Subscribed => "subscribed",
        }
    }
}

/// Publishes `outcome` for `proposal` (with an optional extra `(key,
/// value)`) in two steps: its funnel event, if it has one, is recorded for
/// the server; then the page is told (DOM event and `on()` callbacks).
pub(crate) fn publish(inner: &Shared, outcome: Outcome, proposal: &Proposal, extra: Option<(&str, &str)>) {
    if let Some(kind) = report::event_type(outcome.name(), extra.map(|(_, v)| v)) {
        report::outcome(inner, kind, proposal);
    }
    announce(inner, outcome, proposal, extra);
}

/// Tells the page about `outcome`: `askwell:<name>` on `document` and the
/// callbacks registered with `on(name)`. Records nothing.
fn announce(inner: &Shared, outcome: Outcome, proposal: &Proposal, extra: Option<(&str, &str)>) {
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
    if let Some((key, value)) = extra {
        members.push((key.to_owned(), value.into()));
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
    let callbacks: Vec<Function> = inner
        .borrow()
        .callbacks
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, f)| f.clone())
        .collect();
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
