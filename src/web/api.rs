//! One client for askwell-server, used by both binaries (the page and the
//! service worker): the API's paths, the JSON request (keepalive, headers,
//! base-URL joining), proof of possession from a subscription, and the
//! subscribe options with a time limit. Written once, so the two cannot
//! drift (the worker's resubscribe once had no time limit; the page's had).
//!
//! Only `js_sys` globals are used (`fetch`, `setTimeout` looked up on the
//! global object), so the same code runs in a window and in a worker.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{PushSubscriptionOptionsInit, RequestInit};

use super::convert::parse_json;

/// The server's VAPID public key (`GET`).
pub(crate) const VAPID_KEY: &str = "/v1/vapid-public-key";
/// Store a subscription (`POST`) or delete one (`DELETE`, with possession).
pub(crate) const SUBSCRIPTIONS: &str = "/v1/subscriptions";
/// What the server holds for a subscription (`POST`, with possession).
pub(crate) const LOOKUP: &str = "/v1/subscriptions/lookup";
/// Add or remove topics (`POST`, with possession).
pub(crate) const TOPICS: &str = "/v1/subscriptions/topics";
/// Replace an endpoint the browser changed (`POST`, with the old possession).
pub(crate) const SWAP: &str = "/v1/subscriptions/swap";
/// Funnel and notification events (`POST`).
pub(crate) const EVENTS: &str = "/v1/events";
/// What the device turned off (`POST`, with possession).
pub(crate) const LOOKUP_PREFERENCES: &str = "/v1/preferences/lookup";
/// Change what the device turned off (`POST`, with possession).
pub(crate) const PREFERENCES: &str = "/v1/preferences";

/// How long `pushManager.subscribe()` may take: without a reachable push
/// service (offline, or Chromium without FCM) its promise may never settle.
pub(crate) const SUBSCRIBE_TIMEOUT_MS: i32 = 15_000;

/// `server` (a base URL, `""` for this origin) joined with an API `path`.
pub(crate) fn url(server: &str, path: &str) -> String {
    let mut url = String::from(server.trim_end_matches('/'));
    url.push_str(path);
    url
}

/// Starts `method {server}{path}` with an optional JSON body, with
/// `keepalive`: a request started just before the page goes away (or the
/// worker goes idle) still arrives. Resolves to the `Response`.
pub(crate) fn request(server: &str, method: &str, path: &str, body: Option<&JsValue>) -> Result<Promise, JsValue> {
    let init = RequestInit::new();
    init.set_method(method);
    // Not yet a web-sys setter.
    Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE)?;
    if let Some(body) = body {
        init.set_body(&js_sys::JSON::stringify(body)?.into());
        let headers = Object::new();
        Reflect::set(&headers, &"content-type".into(), &"application/json".into())?;
        init.set_headers(&headers);
    }
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())?.dyn_into()?;
    Ok(fetch.call2(&global, &url(server, path).into(), &init)?.unchecked_into())
}

/// `(endpoint, keys.auth)` of a `PushSubscription`, through its JSON form:
/// what proves possession of it to the server.
pub(crate) fn possession(subscription: &JsValue) -> Option<(String, String)> {
    if !subscription.is_object() {
        return None;
    }
    let json = parse_json(&js_sys::JSON::stringify(subscription).ok()?.as_string()?)?;
    Some((
        json.get("endpoint")?.as_str()?.to_owned(),
        json.get("keys")?.get("auth")?.as_str()?.to_owned(),
    ))
}

/// `{ endpoint, auth }`: the body of the calls that need possession.
pub(crate) fn possession_body(endpoint: &str, auth: &str) -> Object {
    let body = Object::new();
    let _ = Reflect::set(&body, &"endpoint".into(), &JsValue::from_str(endpoint));
    let _ = Reflect::set(&body, &"auth".into(), &JsValue::from_str(auth));
    body
}

/// `pushManager.subscribe()` options: `userVisibleOnly` (Chrome requires
/// it) and the server's VAPID key (a string or the key a subscription has).
pub(crate) fn subscribe_options(key: &JsValue) -> PushSubscriptionOptionsInit {
    let options = PushSubscriptionOptionsInit::new();
    options.set_user_visible_only(true);
    options.set_application_server_key(key);
    options
}

/// `promise`, or a rejection after `ms`.
pub(crate) fn within(promise: Promise, ms: i32) -> Promise {
    let timeout = Promise::new(&mut |_, reject| {
        let global = js_sys::global();
        if let Ok(set_timeout) = Reflect::get(&global, &"setTimeout".into()).and_then(|f| f.dyn_into::<Function>()) {
            let _ = set_timeout.call2(&global, &reject, &JsValue::from(ms));
        }
    });
    Promise::race(&[promise, timeout].into_iter().collect::<js_sys::Array>())
}
