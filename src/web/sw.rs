//! Service-worker handlers, exported by the `./sw` entry of the npm package.
//!
//! The hand-written shim (`js/sw.js`) registers the listeners synchronously on
//! first evaluation and forwards each event here once wasm has loaded, passing
//! `config` (`{ server, fallbackTitle }`). A worker has no localStorage:
//! everything needed later travels in the notification's `data`.

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{NotificationEvent, NotificationOptions, PushEvent, ServiceWorkerGlobalScope, WindowClient};

use super::api;
use super::convert::{from_js, parse_json, to_js};
use crate::model::{classify_push, route_click, ClickRoute, EventKind, Incoming, PushPayload};
use crate::one_tap::{self, Tap};
use crate::value::Value;

/// Title shown when an Askwell push cannot be read: with `userVisibleOnly`
/// every push must show something, and browsers penalise silent pushes.
const FALLBACK_TITLE: &str = "You have a new notification";

/// Reads the push's data and decides (see [`classify_push`]).
pub fn read_push(event: &PushEvent, fallback_title: &str) -> Incoming {
    classify_push(event.data().and_then(|data| parse_json(&data.text())), fallback_title)
}

fn config_text(config: &JsValue, key: &str) -> Option<String> {
    Reflect::get(config, &key.into()).ok()?.as_string()
}

fn scope() -> Result<ServiceWorkerGlobalScope, JsValue> {
    js_sys::global()
        .dyn_into::<ServiceWorkerGlobalScope>()
        .map_err(JsValue::from)
}

/// Handles `push`; the promise goes to `event.waitUntil`. Resolves to `false`
/// for pushes that are not Askwell's (the app's own handler shows those).
#[wasm_bindgen(js_name = onPush)]
pub fn on_push(event: PushEvent, config: JsValue) -> Promise {
    let fallback = config_text(&config, "fallbackTitle").unwrap_or_else(|| FALLBACK_TITLE.into());
    match read_push(&event, &fallback) {
        Incoming::Ignore => Promise::resolve(&JsValue::FALSE),
        Incoming::Show(payload, raw) => match show(&payload, &raw) {
            // Reported after showing, so a slow server never delays the notification.
            Ok(shown) => spawn(Job::Shown {
                shown,
                config,
                delivery: payload.delivery,
            }),
            Err(err) => Promise::reject(&err),
        },
    }
}

/// Everything the worker does asynchronously, as one future type: each
/// `future_to_promise` instantiation adds kilobytes of polling glue to the
/// bundle, so there is exactly one.
enum Job {
    /// Wait until the notification shows, then report `notification_shown`.
    Shown {
        shown: Promise,
        config: JsValue,
        delivery: Option<String>,
    },
    /// Focus, navigate or open `target`, then send the click report.
    Click { target: String, report: Option<Promise> },
    /// One of Askwell's own buttons: tell the server, confirm, open nothing.
    Tap {
        tap: Tap,
        server: String,
        report: Option<Promise>,
    },
    /// Wait for one report; resolves either way.
    Report(Promise),
    /// `pushsubscriptionchange`.
    Change { event: JsValue, server: String },
}

fn spawn(job: Job) -> Promise {
    future_to_promise(run(job))
}

async fn run(job: Job) -> Result<JsValue, JsValue> {
    match job {
        Job::Shown {
            shown,
            config,
            delivery,
        } => {
            JsFuture::from(shown).await?;
            if let Some(sent) = report(&config, EventKind::NotificationShown, delivery.as_deref(), "") {
                let _ = JsFuture::from(sent).await;
            }
            Ok(JsValue::TRUE)
        }
        Job::Click { target, report } => {
            let shown = show_page(&target).await;
            if let Some(sent) = report {
                let _ = JsFuture::from(sent).await;
            }
            shown.map(|()| JsValue::TRUE)
        }
        Job::Tap { tap, server, report } => {
            let confirmed = confirm_tap(tap, &server).await;
            if let Some(sent) = report {
                let _ = JsFuture::from(sent).await;
            }
            confirmed
        }
        Job::Report(sent) => Ok(JsValue::from_bool(JsFuture::from(sent).await.is_ok())),
        Job::Change { event, server } => subscription_change(event, server).await,
    }
}

fn show(payload: &PushPayload, raw: &Value) -> Result<Promise, JsValue> {
    let options = NotificationOptions::new();
    options.set_body(&payload.body);
    options.set_data(&to_js(raw));
    let set = |key: &str, value: &JsValue| Reflect::set(&options, &key.into(), value).map(|_| ());
    for (key, value) in [
        ("icon", &payload.icon),
        ("image", &payload.image),
        ("badge", &payload.badge),
        ("tag", &payload.tag),
    ] {
        if let Some(value) = value {
            set(key, &JsValue::from_str(value))?;
        }
    }
    // renotify without a tag throws in Chrome: only with one.
    set(
        "renotify",
        &JsValue::from_bool(payload.renotify && payload.tag.is_some()),
    )?;
    set("requireInteraction", &JsValue::from_bool(payload.require_interaction))?;
    set("silent", &JsValue::from_bool(payload.silent))?;
    let actions: Array = payload
        .actions
        .iter()
        .take(max_actions())
        .map(|a| {
            to_js(&Value::object([
                ("action", a.action.as_str().into()),
                ("title", a.title.as_str().into()),
                ("icon", a.icon.as_deref().map_or(Value::Null, Value::from)),
            ]))
        })
        .collect();
    if actions.length() > 0 {
        set("actions", &actions)?;
    }
    scope()?
        .registration()
        .show_notification_with_options(&payload.title, &options)
}

/// `Notification.maxActions`: how many buttons this browser shows (the
/// payload lists them most important first). Unknown: all of them.
fn max_actions() -> usize {
    Reflect::get(&js_sys::global(), &"Notification".into())
        .and_then(|n| Reflect::get(&n, &"maxActions".into()))
        .ok()
        .and_then(|n| n.as_f64())
        .map_or(usize::MAX, |n| n as usize)
}

/// Handles `notificationclick`: closes the notification, focuses a window
/// that shows its URL (or navigates one of the same origin, or opens one),
/// and reports `notification_clicked` with the action.
#[wasm_bindgen(js_name = onNotificationClick)]
pub fn on_notification_click(event: NotificationEvent, config: JsValue) -> Promise {
    let notification = event.notification();
    notification.close();
    let raw = from_js(&notification.data());
    let Ok(payload) = PushPayload::read(&raw) else {
        return Promise::resolve(&JsValue::FALSE);
    };
    // `NotificationEvent.action` is not in web-sys' stable API: read it directly.
    let action = Reflect::get(&event, &"action".into())
        .ok()
        .and_then(|a| a.as_string())
        .unwrap_or_default();
    let report = report(
        &config,
        EventKind::NotificationClicked,
        payload.delivery.as_deref(),
        &action,
    );
    if let Some(tap) = payload.tap(&action) {
        let server = config_text(&config, "server").unwrap_or_default();
        return spawn(Job::Tap { tap, server, report });
    }
    let target = payload.click_url(&action).unwrap_or("/").to_owned();
    spawn(Job::Click { target, report })
}

/// Tells the server what the tap turned off, then shows a quiet
/// confirmation (replacing an earlier one) that says what happened — or
/// that it could not be done, so a tap is never silently lost.
async fn confirm_tap(tap: Tap, server: &str) -> Result<JsValue, JsValue> {
    let told = tell_server(&tap, server).await;
    let title = if told {
        tap.confirmation
    } else {
        one_tap::FAILED.to_owned()
    };
    let options = NotificationOptions::new();
    options.set_tag(one_tap::CONFIRMATION_TAG);
    Reflect::set(&options, &"silent".into(), &JsValue::TRUE)?;
    JsFuture::from(
        scope()?
            .registration()
            .show_notification_with_options(&title, &options)?,
    )
    .await?;
    Ok(JsValue::from_bool(told))
}

/// `POST /v1/preferences` with the change and this device's proof of
/// possession; whether the server took it (a 2xx).
async fn tell_server(tap: &Tap, server: &str) -> bool {
    let Ok(subscription) = current_subscription().await else {
        return false;
    };
    let Some((endpoint, auth)) = api::possession(&subscription) else {
        return false; // no subscription: nothing reaches this device anyway
    };
    let body = to_js(&tap.change);
    for (key, value) in [("endpoint", endpoint), ("auth", auth)] {
        if Reflect::set(&body, &key.into(), &value.into()).is_err() {
            return false;
        }
    }
    let Ok(sent) = api::request(server, "POST", api::PREFERENCES, Some(&body)) else {
        return false;
    };
    match JsFuture::from(sent).await {
        Ok(response) => Reflect::get(&response, &"ok".into()).is_ok_and(|ok| ok.is_truthy()),
        Err(_) => false,
    }
}

/// Handles `notificationclose`: reports `notification_dismissed`.
#[wasm_bindgen(js_name = onNotificationClose)]
pub fn on_notification_close(event: NotificationEvent, config: JsValue) -> Promise {
    let raw = from_js(&event.notification().data());
    let delivery = raw.get("delivery").and_then(Value::as_str).map(str::to_owned);
    if !PushPayload::is_askwell(&raw) {
        return Promise::resolve(&JsValue::FALSE);
    }
    match report(&config, EventKind::NotificationDismissed, delivery.as_deref(), "") {
        Some(sent) => spawn(Job::Report(sent)),
        None => Promise::resolve(&JsValue::FALSE),
    }
}

/// Focus, navigate or open, per [`route_click`].
async fn show_page(target: &str) -> Result<(), JsValue> {
    let scope = scope()?;
    let absolute = web_sys::Url::new_with_base(target, &scope.registration().scope())?.href();
    let options = web_sys::ClientQueryOptions::new();
    options.set_type(web_sys::ClientType::Window);
    options.set_include_uncontrolled(true);
    let clients = scope.clients();
    let list: Array = JsFuture::from(clients.match_all_with_options(&options))
        .await?
        .unchecked_into();
    let windows: Vec<WindowClient> = list.iter().filter_map(|c| c.dyn_into().ok()).collect();
    let urls: Vec<String> = windows.iter().map(|w| w.url()).collect();
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let window = |i: usize| {
        windows
            .get(i)
            .ok_or_else(|| JsValue::from_str("unreachable: routes name listed windows"))
    };
    match route_click(&absolute, &url_refs) {
        ClickRoute::Focus(i) => JsFuture::from(window(i)?.focus()?).await.map(|_| ()),
        ClickRoute::Navigate(i) => {
            let client = window(i)?;
            // navigate() only works on windows this worker controls; an
            // uncontrolled one (first visit) is focused and asked to navigate
            // itself by the page module, rather than opening a second tab.
            let navigated = match client.navigate(&absolute) {
                Ok(promise) => JsFuture::from(promise).await.is_ok(),
                Err(_) => false,
            };
            if !navigated {
                let message = to_js(&Value::object([
                    ("askwell", "navigate".into()),
                    ("url", absolute.as_str().into()),
                ]));
                client.post_message(&message)?;
            }
            JsFuture::from(client.focus()?).await.map(|_| ())
        }
        ClickRoute::Open => JsFuture::from(clients.open_window(&absolute)).await.map(|_| ()),
    }
}

/// Starts `POST {server}/v1/events` with `keepalive` (`None` without a
/// delivery id). Callers ignore its failure: a report must never stop a
/// notification from showing or a click from opening.
fn report(config: &JsValue, kind: EventKind, delivery: Option<&str>, action: &str) -> Option<Promise> {
    let delivery = delivery?;
    let server = config_text(config, "server").unwrap_or_default();
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
        ("at", (js_sys::Date::now() as u64).into()),
    ]);
    let body = Value::object([("events", Value::Array(vec![event]))]);
    api::request(&server, "POST", api::EVENTS, Some(&to_js(&body))).ok()
}

/// Handles `pushsubscriptionchange`: subscribes again with the same key (if
/// the browser did not already) and asks the server to swap the old endpoint
/// for the new one, keeping its topics and user.
#[wasm_bindgen(js_name = onSubscriptionChange)]
pub fn on_subscription_change(event: JsValue, config: JsValue) -> Promise {
    let server = config_text(&config, "server").unwrap_or_default();
    spawn(Job::Change { event, server })
}

async fn subscription_change(event: JsValue, server: String) -> Result<JsValue, JsValue> {
    {
        let old = Reflect::get(&event, &"oldSubscription".into())?;
        let given = Reflect::get(&event, &"newSubscription".into())?;
        let body = Object::new();
        let path = match api::possession(&old) {
            Some((old_endpoint, old_auth)) => {
                let new = if given.is_object() {
                    given
                } else {
                    resubscribe(&old).await?
                };
                let old_json = Object::new();
                Reflect::set(&old_json, &"endpoint".into(), &old_endpoint.into())?;
                Reflect::set(&old_json, &"auth".into(), &old_auth.into())?;
                Reflect::set(&body, &"old".into(), &old_json)?;
                Reflect::set(&body, &"subscription".into(), &new)?;
                api::SWAP
            }
            // Some browsers give no old subscription: store the new one (if the
            // browser made one) so pushes resume; the page's start-time repair
            // restores its topics, and the dead endpoint is pruned on its next 410.
            None => {
                let current = if given.is_object() {
                    given
                } else {
                    current_subscription().await?
                };
                if !current.is_object() {
                    return Ok(JsValue::FALSE);
                }
                Reflect::set(&body, &"subscription".into(), &current)?;
                api::SUBSCRIPTIONS
            }
        };
        JsFuture::from(api::request(&server, "POST", path, Some(&body.into()))?).await
    }
}

async fn current_subscription() -> Result<JsValue, JsValue> {
    JsFuture::from(scope()?.registration().push_manager()?.get_subscription()?).await
}

async fn resubscribe(old: &JsValue) -> Result<JsValue, JsValue> {
    let old_options = Reflect::get(old, &"options".into())?;
    let key = Reflect::get(&old_options, &"applicationServerKey".into())?;
    let manager = scope()?.registration().push_manager()?;
    let promise = manager.subscribe_with_options(&api::subscribe_options(&key))?;
    JsFuture::from(api::within(promise, api::SUBSCRIBE_TIMEOUT_MS)).await
}
