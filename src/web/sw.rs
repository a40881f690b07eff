//! Service-worker decisions, exported to the listeners of the npm package's
//! `./sw` entry (`js/sw-listen.js`).
//!
//! Each export is synchronous and answers one question — what to show for a
//! push, what a click does, where it goes, what to tell the server — as a
//! plain object; the listeners await the browser's promises in between
//! (`showNotification`, `clients.matchAll`, `fetch`). Awaiting in wasm cost
//! the worker a polling state machine and a JS import per browser call, two
//! thirds of its download (28.7 kB gz, against a 10 kB budget). What is read
//! and decided stays here, on the core's wire contract ([`PushPayload`],
//! [`route_click`], [`one_tap`]); `config` is `self.askwellConfig`
//! (`{ server, fallbackTitle }`). A worker has no localStorage: everything
//! needed later travels in the notification's `data`.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::api;
use super::convert::{from_js, parse_json, to_js};
use crate::model::{classify_push, route_click, ClickRoute, EventKind, Incoming, PushAction, PushPayload};
use crate::one_tap;
use crate::value::Value;

/// Title shown when an Askwell push cannot be read: with `userVisibleOnly`
/// every push must show something, and browsers penalise silent pushes.
const FALLBACK_TITLE: &str = "You have a new notification";

/// Decides on a push whose data is `text` (see [`classify_push`]).
pub fn read_push(text: Option<&str>, fallback_title: &str) -> Incoming {
    classify_push(text.and_then(parse_json), fallback_title)
}

fn config_text(config: &JsValue, key: &str) -> Option<String> {
    Reflect::get(config, &key.into()).ok()?.as_string()
}

fn server(config: &JsValue) -> String {
    config_text(config, "server").unwrap_or_default()
}

/// `push`: `{ title, options, shown }` to show (`shown`: the report to send
/// once it shows), or `undefined` for a push that is not Askwell's (the
/// app's own handler shows those). `max_actions` is
/// `Notification.maxActions` (buttons are listed most important first).
#[wasm_bindgen(js_name = pushToShow)]
pub fn push_to_show(text: Option<String>, config: JsValue, max_actions: Option<u32>, now: f64) -> JsValue {
    let fallback = config_text(&config, "fallbackTitle").unwrap_or_else(|| FALLBACK_TITLE.into());
    match read_push(text.as_deref(), &fallback) {
        Incoming::Ignore => JsValue::UNDEFINED,
        Incoming::Show(payload, raw) => {
            let limit = max_actions.map_or(usize::MAX, |n| n as usize);
            // From the raw payload: the fallback for a malformed one keeps
            // its delivery id there only, and is reported like any other.
            let delivery = raw.get("delivery").and_then(Value::as_str);
            let shown = report(&config, EventKind::NotificationShown, delivery, "", now);
            to_js(&Value::object([
                ("title", payload.title.as_str().into()),
                ("options", options(&payload, raw, limit)),
                ("shown", shown),
            ]))
        }
    }
}

/// The `showNotification` options; `raw` becomes its `data`. Absent
/// options are left out.
fn options(payload: &PushPayload, raw: Value, max_actions: usize) -> Value {
    let mut members = vec![
        ("body".to_owned(), Value::from(payload.body.as_str())),
        ("data".to_owned(), raw),
        // renotify without a tag throws in Chrome: only with one.
        (
            "renotify".to_owned(),
            Value::Bool(payload.renotify && payload.tag.is_some()),
        ),
        (
            "requireInteraction".to_owned(),
            Value::Bool(payload.require_interaction),
        ),
        ("silent".to_owned(), Value::Bool(payload.silent)),
    ];
    for (key, value) in [
        ("icon", &payload.icon),
        ("image", &payload.image),
        ("badge", &payload.badge),
        ("tag", &payload.tag),
    ] {
        if let Some(value) = value {
            members.push((key.to_owned(), value.as_str().into()));
        }
    }
    let actions: Vec<Value> = payload.actions.iter().take(max_actions).map(button).collect();
    if !actions.is_empty() {
        members.push(("actions".to_owned(), Value::Array(actions)));
    }
    Value::Object(members)
}

fn button(action: &PushAction) -> Value {
    let mut members = vec![
        ("action".to_owned(), Value::from(action.action.as_str())),
        ("title".to_owned(), Value::from(action.title.as_str())),
    ];
    if let Some(icon) = &action.icon {
        members.push(("icon".to_owned(), icon.as_str().into()));
    }
    Value::Object(members)
}

/// `notificationclick` on a notification with `data`: `{ report, tap }`
/// for one of Askwell's own buttons (`tap`: `{ change, confirmation,
/// failed, tag }`, told to the server with the device's possession, then
/// confirmed quietly), else `{ report, url }` (the page to show, relative
/// to the worker's scope; the scope itself without one); `undefined` when
/// the data is not Askwell's.
#[wasm_bindgen(js_name = clickToHandle)]
pub fn click_to_handle(data: JsValue, action: Option<String>, config: JsValue, now: f64) -> JsValue {
    let raw = from_js(&data);
    if !PushPayload::is_askwell(&raw) {
        return JsValue::UNDEFINED;
    }
    // The fallback shown for a malformed payload reads as one without
    // buttons or a page: reported, and opening the scope.
    let payload = PushPayload::read(&raw).unwrap_or_default();
    let action = action.unwrap_or_default();
    let delivery = raw.get("delivery").and_then(Value::as_str);
    let report = report(&config, EventKind::NotificationClicked, delivery, &action, now);
    let next = match payload.tap(&action) {
        Some(tap) => (
            "tap",
            Value::object([
                ("url", Value::String(api::url(&server(&config), api::PREFERENCES))),
                ("change", tap.change),
                ("confirmation", Value::String(tap.confirmation)),
                ("failed", one_tap::FAILED.into()),
                ("tag", one_tap::CONFIRMATION_TAG.into()),
            ]),
        ),
        // "./": the worker's scope (the app's start), not the origin's root.
        None => ("url", payload.click_url(&action).unwrap_or("./").into()),
    };
    to_js(&Value::object([("report", report), next]))
}

/// Where a click on `target` (absolute) goes among the open `windows`'
/// URLs, per [`route_click`]: `{ focus: i }`, `{ navigate: i }` (then
/// focus) or `{}` (open a new window).
#[wasm_bindgen(js_name = routeClick)]
pub fn route_click_to(target: &str, windows: Array) -> JsValue {
    let urls: Vec<String> = windows.iter().filter_map(|url| url.as_string()).collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let route = match route_click(target, &refs) {
        ClickRoute::Focus(i) => Some(("focus", i)),
        ClickRoute::Navigate(i) => Some(("navigate", i)),
        ClickRoute::Open => None,
    };
    let members = route.map(|(how, i)| (how.to_owned(), Value::from(i as u64)));
    to_js(&Value::Object(members.into_iter().collect()))
}

/// `notificationclose`: the `notification_dismissed` report for a
/// notification with `data`, or `undefined`.
#[wasm_bindgen(js_name = closeReport)]
pub fn close_report(data: JsValue, config: JsValue, now: f64) -> JsValue {
    let raw = from_js(&data);
    if !PushPayload::is_askwell(&raw) {
        return JsValue::UNDEFINED;
    }
    let delivery = raw.get("delivery").and_then(Value::as_str);
    to_js(&report(&config, EventKind::NotificationDismissed, delivery, "", now))
}

/// `{ url, body }` of `POST {server}/v1/events` for one event of `kind`
/// (sent with `keepalive`; its failure is ignored: a report never stops a
/// notification from showing or a click from opening). `null` without a
/// delivery id.
fn report(config: &JsValue, kind: EventKind, delivery: Option<&str>, action: &str, now: f64) -> Value {
    let Some(delivery) = delivery else {
        return Value::Null;
    };
    let kind = kind.as_str();
    // One event per delivery and kind: a repeated report is stored once.
    let mut id = String::from(kind);
    id.push(':');
    id.push_str(delivery);
    let event = Value::object([
        ("id", Value::String(id)),
        ("type", kind.into()),
        ("delivery", delivery.into()),
        ("action", action.into()),
        ("at", (now as u64).into()),
    ]);
    let body = Value::object([("events", Value::Array(vec![event]))]);
    request(config, api::EVENTS, body)
}

fn request(config: &JsValue, path: &str, body: Value) -> Value {
    Value::object([("url", Value::String(api::url(&server(config), path))), ("body", body)])
}

/// `change` (a tap's) with the proof of possession of `subscription`
/// (`endpoint`, `auth`): the body of `POST /v1/preferences`; `undefined`
/// without a subscription (nothing reaches this device anyway).
#[wasm_bindgen(js_name = withPossession)]
pub fn with_possession(change: JsValue, subscription: JsValue) -> JsValue {
    let Some((endpoint, auth)) = api::possession(&subscription) else {
        return JsValue::UNDEFINED;
    };
    let mut body = from_js(&change);
    if let Value::Object(members) = &mut body {
        members.push(("endpoint".into(), Value::String(endpoint)));
        members.push(("auth".into(), Value::String(auth)));
    }
    to_js(&body)
}

/// `pushsubscriptionchange` with the event's `oldSubscription`: `{ store }`
/// always — where to store the current subscription as new, so pushes
/// resume (the page's start-time repair restores its topics, and a dead
/// endpoint is pruned on its next 410). With an old one (some browsers give
/// none) also `{ url, old, subscribe, timeoutMs }`: first swap the old
/// endpoint (`old`: its possession) for the new one, keeping its topics and
/// user, subscribing again with `subscribe` (the same key) within
/// `timeoutMs` if the browser did not; `store` is for a swap the server
/// refuses (it pruned the old endpoint already).
#[wasm_bindgen(js_name = subscriptionChange)]
pub fn subscription_change(old: JsValue, config: JsValue) -> Result<JsValue, JsValue> {
    let server = server(&config);
    let plan = Object::new();
    let set = |key: &str, value: &JsValue| Reflect::set(&plan, &key.into(), value).map(|_| ());
    set("store", &api::url(&server, api::SUBSCRIPTIONS).into())?;
    if let Some((endpoint, auth)) = api::possession(&old) {
        set("url", &api::url(&server, api::SWAP).into())?;
        set("old", &api::possession_body(&endpoint, &auth))?;
        // The key stays a BufferSource: not through the core's Value.
        // Read leniently: it is needed only if the browser gave no new
        // subscription (without one, that subscribe() fails instead).
        let key = Reflect::get(&old, &"options".into())
            .and_then(|options| Reflect::get(&options, &"applicationServerKey".into()))
            .unwrap_or(JsValue::UNDEFINED);
        set("subscribe", &api::subscribe_options(&key))?;
        set("timeoutMs", &api::SUBSCRIBE_TIMEOUT_MS.into())?;
    }
    Ok(plan.unchecked_into())
}

/// The worker's allocator, in the worker's binary only: a free list (a few
/// hundred bytes of code) instead of dlmalloc (4.5 kB, a fifth of the
/// worker's wasm). A worker handles a few events per wake, each with a
/// handful of small allocations that are all freed before it returns, and
/// the browser ends the instance when idle: dlmalloc's speed and
/// fragmentation handling buy nothing here. The page keeps dlmalloc.
#[cfg(not(feature = "page"))]
#[global_allocator]
// SAFETY: a service worker's wasm runs on one thread (no threads or shared
// memory are enabled in this build).
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
