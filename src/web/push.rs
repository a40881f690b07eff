//! Notification permission in the page (subscription management grows here).

use js_sys::{Promise, Reflect};
use wasm_bindgen::JsValue;

use crate::rules::Permission;

/// The current permission, or `Unsupported` where Web Push is missing
/// (no `Notification`, `PushManager` or `navigator.serviceWorker`).
pub(crate) fn permission() -> Permission {
    let Some(window) = web_sys::window() else {
        return Permission::Unsupported;
    };
    let has = |target: &JsValue, name: &str| Reflect::has(target, &JsValue::from_str(name)).unwrap_or(false);
    if !has(&window, "Notification") || !has(&window, "PushManager") || !has(&window.navigator(), "serviceWorker") {
        return Permission::Unsupported;
    }
    match web_sys::Notification::permission() {
        web_sys::NotificationPermission::Granted => Permission::Granted,
        web_sys::NotificationPermission::Denied => Permission::Denied,
        _ => Permission::Default,
    }
}

/// Starts the browser's native permission prompt. Must be called inside a
/// user gesture (our prompt's click): Safari and Firefox require it.
pub(crate) fn request_permission() -> Result<Promise, JsValue> {
    web_sys::Notification::request_permission()
}
