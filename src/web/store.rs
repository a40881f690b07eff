//! Persisting [`State`] in localStorage and the tab [`Session`] in
//! sessionStorage, never throwing into the host page.
//!
//! We use `web_sys::Storage` directly rather than gloo-storage: gloo's
//! `LocalStorage::raw()` calls `expect_throw` when storage is disabled
//! (sandboxed iframes, some privacy modes), which would throw into the host
//! page, and its typed get/set go through serde_json (+~12 kB gz).

use wasm_bindgen::JsValue;
use web_sys::Storage;

use super::convert::{parse_json, stringify};
use crate::privacy::Consent;
use crate::rules::Session;
use crate::state::State;
use crate::value::Value;

/// localStorage key of the device state; `v1` changes with incompatible shapes.
pub(crate) const STATE_KEY: &str = "askwell:v1:state";
/// sessionStorage key of the tab session.
const SESSION_KEY: &str = "askwell:v1:session";
/// localStorage key of the consent answer: with `consent: "required"`, the
/// only thing Askwell stores before `consent(true)`.
const CONSENT_KEY: &str = "askwell:v1:consent";

/// `localStorage`, or `None` where the browser denies it (it may even throw).
pub(crate) fn local() -> Option<Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn session_storage() -> Option<Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// Loads the device state; unreadable or missing data starts fresh, and what
/// is read is bounded (a planted anonymous id is dropped, times clamped to
/// `now_ms`: see [`State::from_value`]).
pub(crate) fn load_state(now_ms: u64) -> State {
    local()
        .and_then(|s| s.get_item(STATE_KEY).ok().flatten())
        .and_then(|text| decode_state(&text, now_ms))
        .unwrap_or_default()
}

/// Decodes a state written by another tab (a `storage` event's new value).
pub(crate) fn decode_state(text: &str, now_ms: u64) -> Option<State> {
    parse_json(text).map(|value| State::from_value(&value, now_ms))
}

/// Saves the device state; true only when it was written *and reads back*
/// the same: storage that takes writes but throws on reads (some privacy
/// modes, a patched `getItem`) would otherwise forget every cool-off, and a
/// prompt whose showing is not remembered must not be shown.
pub(crate) fn save_state(state: &State) -> bool {
    stringify(&state.to_value()).is_some_and(|text| write(STATE_KEY, &text))
}

/// Writes `text` under `key` in localStorage; true only when it reads back.
pub(crate) fn write(key: &str, text: &str) -> bool {
    local().is_some_and(|storage| {
        storage.set_item(key, text).is_ok() && storage.get_item(key).ok().flatten().as_deref() == Some(text)
    })
}

/// Loads this tab's session counters (they survive reloads in the same tab).
pub(crate) fn load_session() -> Session {
    let value = session_storage()
        .and_then(|s| s.get_item(SESSION_KEY).ok().flatten())
        .and_then(|t| parse_json(&t));
    let shown = value
        .as_ref()
        .and_then(|v| v.get("shown"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    Session {
        prompts_shown: shown.clamp(0.0, 1000.0) as u32,
        ..Session::default()
    }
}

/// Saves this tab's session counters (best effort).
pub(crate) fn save_session(session: &Session) {
    let value = Value::object([("shown", u64::from(session.prompts_shown).into())]);
    if let (Some(storage), Some(text)) = (session_storage(), stringify(&value)) {
        let _ = storage.set_item(SESSION_KEY, &text);
    }
}

/// Removes everything Askwell stored on this device.
pub(crate) fn clear() -> Result<(), JsValue> {
    if let Some(storage) = local() {
        storage.remove_item(STATE_KEY)?;
    }
    if let Some(storage) = session_storage() {
        storage.remove_item(SESSION_KEY)?;
    }
    Ok(())
}

/// The stored consent answer (`Unknown` when missing or unreadable).
pub(crate) fn load_consent() -> Consent {
    let text = local().and_then(|s| s.get_item(CONSENT_KEY).ok().flatten());
    Consent::parse(text.as_deref().unwrap_or_default())
}

/// Stores the consent answer; false when storage refused (the answer then
/// holds for this page only).
pub(crate) fn save_consent(consent: Consent) -> bool {
    write(CONSENT_KEY, consent.as_str())
}

/// A fresh anonymous id: 128 random bits from `crypto.getRandomValues`, hex.
pub(crate) fn new_anon_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        // No Web Crypto: fall back to Math.random (assignment only needs spread, not secrecy).
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char])
        .collect()
}
