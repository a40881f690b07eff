//! Service-worker handlers, exported by the `./sw` entry of the npm package.
//!
//! The hand-written shim (`js/sw.js`) registers the listeners synchronously on
//! first evaluation and forwards each event here once wasm has loaded.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{NotificationOptions, PushEvent, ServiceWorkerGlobalScope};

use super::convert::parse_json;
use crate::model::PushPayload;
use crate::value::Value;

/// Title shown when a push for Askwell cannot be read: with `userVisibleOnly`
/// every push must show something, and browsers penalise silent pushes.
const FALLBACK_TITLE: &str = "You have a new notification";

/// What to do with one push.
#[derive(Debug, PartialEq, Eq)]
pub enum PushAction {
    /// Show this notification.
    Show(PushPayload),
    /// Not an Askwell push: leave it to the app's own handler.
    Ignore,
}

/// Reads the push's data: Askwell's payloads are shown, malformed ones fall
/// back to a generic notification, foreign ones are ignored.
pub fn read_push(event: &PushEvent) -> PushAction {
    let Some(data) = event.data() else {
        return PushAction::Ignore;
    };
    let Some(value) = parse_json(&data.text()) else {
        return PushAction::Ignore;
    };
    if value.get("askwell").and_then(Value::as_f64) != Some(1.0) {
        return PushAction::Ignore;
    }
    match PushPayload::read(&value) {
        Ok(payload) => PushAction::Show(payload),
        _ => PushAction::Show(PushPayload {
            askwell: 1,
            title: FALLBACK_TITLE.into(),
            ..PushPayload::default()
        }),
    }
}

/// Handles a `push` event; the returned promise is what the shim passes to
/// `event.waitUntil`. Resolves to `false` for pushes that are not Askwell's.
#[wasm_bindgen(js_name = onPush)]
pub fn on_push(event: PushEvent) -> Promise {
    match read_push(&event) {
        PushAction::Ignore => Promise::resolve(&JsValue::FALSE),
        PushAction::Show(payload) => show(&payload).unwrap_or_else(|err| Promise::reject(&err)),
    }
}

fn show(payload: &PushPayload) -> Result<Promise, JsValue> {
    let scope: ServiceWorkerGlobalScope = js_sys::global().dyn_into()?;
    let options = NotificationOptions::new();
    options.set_body(&payload.body);
    if let Some(icon) = &payload.icon {
        options.set_icon(icon);
    }
    if let Some(tag) = &payload.tag {
        options.set_tag(tag);
    }
    scope
        .registration()
        .show_notification_with_options(&payload.title, &options)
}
