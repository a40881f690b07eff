//! Web Push in the page: support and permission, the subscription, and the
//! server's view of it. Every failure becomes a named outcome, never a throw.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{PushSubscription, Response, ServiceWorkerContainer, ServiceWorkerRegistration};

use super::api;
use super::convert::from_js;
use crate::rules::Permission;
use crate::value::Value;

/// The signed-in user and the app backend's proof of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) proof: Option<String>,
    /// The user's traits (checked: [`crate::funnel::read_traits`]), sent
    /// with the proof once per change.
    pub(crate) traits: Vec<(String, crate::value::Value)>,
}

impl Identity {
    /// `(id, proof)` when the backend vouched for the id.
    pub(crate) fn signed_in(&self) -> Option<(&str, &str)> {
        Some((self.id.as_str(), self.proof.as_deref()?))
    }
}

/// Why push could not be set up, as reported in `askwell:error` / `askwell:permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No Push API here (or iOS/iPadOS outside a home-screen web app).
    Unsupported,
    /// iOS/iPadOS Safari: push needs the site added to the Home Screen.
    NeedsHomeScreen,
    /// The browser refused to subscribe (no service worker, bad key, …).
    SubscribeFailed,
    /// Our server did not answer or refused the subscription.
    ServerUnreachable,
    /// The server refused to bind the device to the user: no valid proof.
    IdentityUnproven,
    /// No `server` in the config: Askwell makes no requests.
    NoServer,
}

impl Failure {
    /// Stable code.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Failure::Unsupported => "unsupported",
            Failure::NeedsHomeScreen => "unsupported-needs-home-screen",
            Failure::SubscribeFailed => "subscribe-failed",
            Failure::ServerUnreachable => "server-unreachable",
            Failure::IdentityUnproven => "identity-unproven",
            Failure::NoServer => "no-server",
        }
    }
}

fn has(target: &JsValue, name: &str) -> bool {
    Reflect::has(target, &JsValue::from_str(name)).unwrap_or(false)
}

/// iOS/iPadOS outside an installed web app: Safari there has no Push API.
fn ios_outside_home_screen(window: &web_sys::Window) -> bool {
    let navigator = window.navigator();
    let agent = navigator.user_agent().unwrap_or_default();
    let ios = agent.contains("iPhone")
        || agent.contains("iPad")
        || (agent.contains("Macintosh") && navigator.max_touch_points() > 1);
    let standalone = Reflect::get(&navigator, &"standalone".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    ios && !standalone
}

/// `navigator.serviceWorker`, or `None` where it is missing or its getter
/// throws (a `SecurityError` in sandboxed frames without `allow-same-origin`;
/// web-sys's `service_worker()` would let that exception through the wasm).
pub(crate) fn service_worker() -> Option<ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    Reflect::get(&navigator, &"serviceWorker".into()).ok()?.dyn_into().ok()
}

/// `Notification.permission` as text, `None` where it is missing or throws
/// (web-sys's getter is not `catch`).
fn notification_permission(window: &web_sys::Window) -> Option<String> {
    let notification = Reflect::get(window, &"Notification".into()).ok()?;
    Reflect::get(&notification, &"permission".into()).ok()?.as_string()
}

/// `Notification.permission` where Web Push is available, else why not.
fn probe() -> Result<String, Failure> {
    let window = web_sys::window().ok_or(Failure::Unsupported)?;
    match notification_permission(&window) {
        Some(state) if has(&window, "PushManager") && service_worker().is_some() => Ok(state),
        _ if ios_outside_home_screen(&window) => Err(Failure::NeedsHomeScreen),
        _ => Err(Failure::Unsupported),
    }
}

/// Why push is unavailable here, if it is.
pub(crate) fn unsupported() -> Option<Failure> {
    probe().err()
}

/// The current permission, or `Unsupported` where Web Push is missing (or
/// any part of it throws).
pub(crate) fn permission() -> Permission {
    match probe().as_deref() {
        Ok("granted") => Permission::Granted,
        Ok("denied") => Permission::Denied,
        Ok(_) => Permission::Default,
        Err(_) => Permission::Unsupported,
    }
}

/// Starts the browser's native permission prompt. Must be called inside a
/// user gesture (our prompt's click): Safari and Firefox require it.
pub(crate) fn request_permission() -> Result<Promise, JsValue> {
    web_sys::Notification::request_permission()
}

async fn ready_registration() -> Result<ServiceWorkerRegistration, JsValue> {
    let container = service_worker().ok_or("no service worker container")?;
    let ready = container.ready()?;
    Ok(JsFuture::from(ready).await?.unchecked_into())
}

/// The browser's current subscription, if any.
pub(crate) async fn current() -> Option<PushSubscription> {
    let registration = ready_registration().await.ok()?;
    let promise = registration.push_manager().ok()?.get_subscription().ok()?;
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}

/// Subscribes with `userVisibleOnly` and the server's VAPID key.
pub(crate) async fn subscribe(vapid_key: &str) -> Result<PushSubscription, Failure> {
    let registration = ready_registration().await.map_err(|_| Failure::SubscribeFailed)?;
    let options = api::subscribe_options(&JsValue::from_str(vapid_key));
    let manager = registration.push_manager().map_err(|_| Failure::SubscribeFailed)?;
    let promise = manager
        .subscribe_with_options(&options)
        .map_err(|_| Failure::SubscribeFailed)?;
    // Give up with a named failure when the push service does not answer.
    let subscription = JsFuture::from(api::within(promise, api::SUBSCRIBE_TIMEOUT_MS))
        .await
        .map_err(|_| Failure::SubscribeFailed)?;
    subscription.dyn_into().map_err(|_| Failure::SubscribeFailed)
}

/// Unsubscribes in the browser (best effort).
pub(crate) async fn unsubscribe(subscription: &PushSubscription) {
    if let Ok(promise) = subscription.unsubscribe() {
        let _ = JsFuture::from(promise).await;
    }
}

/// The endpoint and auth secret that prove possession to the server.
pub(crate) fn possession(subscription: &PushSubscription) -> Option<(String, String)> {
    api::possession(subscription)
}

/// A JSON request to the server; `Ok((status, body))` when it answered.
/// Sent with `keepalive`, so a request started just before the user
/// navigates away (a subscription, a batch of funnel events) still arrives.
pub(crate) async fn call(
    server: &str,
    method: &str,
    path: &str,
    body: Option<&JsValue>,
) -> Result<(u16, Value), Failure> {
    let started = api::request(server, method, path, body).map_err(|_| Failure::ServerUnreachable)?;
    let response: Response = JsFuture::from(started)
        .await
        .map_err(|_| Failure::ServerUnreachable)?
        .unchecked_into();
    let status = response.status();
    let json = match response.json() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map(|v| from_js(&v))
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    Ok((status, json))
}

/// The device's IANA time zone, `Intl.DateTimeFormat().resolvedOptions().timeZone`
/// (the server times journeys in it): `None` where `Intl` is missing or any
/// step throws (the bindings are `catch`), or the zone is not a non-empty string.
fn time_zone() -> Option<JsValue> {
    let zone = date_time_format().ok()?.resolved_options().ok()?.time_zone().ok()?;
    zone.as_string().is_some_and(|z| !z.is_empty()).then_some(zone)
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// An `Intl.DateTimeFormat` (or whatever a page put there).
    type DateTimeFormat;
    /// Its `resolvedOptions()`.
    type ResolvedOptions;
    #[wasm_bindgen(js_namespace = Intl, js_name = DateTimeFormat, catch)]
    fn date_time_format() -> Result<DateTimeFormat, JsValue>;
    #[wasm_bindgen(method, js_name = resolvedOptions, catch)]
    fn resolved_options(this: &DateTimeFormat) -> Result<ResolvedOptions, JsValue>;
    #[wasm_bindgen(method, getter, js_name = timeZone, catch)]
    fn time_zone(this: &ResolvedOptions) -> Result<JsValue, JsValue>;
}

/// Builds `{ subscription, topics, time_zone, user }` for `POST /v1/subscriptions`.
pub(crate) fn registration_body(
    subscription: &PushSubscription,
    topics: &[String],
    user: Option<&Identity>,
) -> JsValue {
    let body = Object::new();
    let _ = Reflect::set(&body, &"subscription".into(), subscription);
    let list: js_sys::Array = topics.iter().map(|t| JsValue::from_str(t)).collect();
    let _ = Reflect::set(&body, &"topics".into(), &list);
    if let Some(zone) = time_zone() {
        let _ = Reflect::set(&body, &"time_zone".into(), &zone);
    }
    if let Some(user) = user {
        let _ = Reflect::set(&body, &"user".into(), &JsValue::from_str(&user.id));
        if let Some(proof) = &user.proof {
            let _ = Reflect::set(&body, &"userProof".into(), &JsValue::from_str(proof));
        }
    }
    body.into()
}
