//! Prompt state in localStorage under `askwell:v1:prompts`, with a memory fallback.
//!
//! Unknown or corrupt data is discarded; a disabled or full storage keeps state
//! in memory. We use `web_sys::Storage` directly rather than gloo-storage:
//! gloo's `LocalStorage::raw()` calls `expect_throw` when storage is disabled
//! (sandboxed iframes, privacy modes), which would throw into the host page, and
//! its typed get/set go through serde_json (+~12 kB gz). Encoding goes through
//! the browser's own `JSON` instead.

use std::collections::BTreeMap;

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::policy::PromptState;

/// Storage key; the `v1` changes when the stored shape changes incompatibly.
pub(crate) const PROMPTS_KEY: &str = "askwell:v1:prompts";

/// State of every prompt, persisted when the browser lets us.
#[derive(Debug, Default)]
pub(crate) struct PromptStore {
    prompts: BTreeMap<String, PromptState>,
}

impl PromptStore {
    /// Loads stored state; anything unreadable starts fresh instead of throwing.
    pub(crate) fn load() -> Self {
        let prompts = read_raw().and_then(|text| decode(&text)).unwrap_or_default();
        Self { prompts }
    }

    /// The state of one prompt (fresh if never seen).
    pub(crate) fn get(&self, prompt: &str) -> PromptState {
        self.prompts.get(prompt).cloned().unwrap_or_default()
    }

    /// Replaces one prompt's state and persists all; returns false if only in memory.
    pub(crate) fn put(&mut self, prompt: &str, state: PromptState) -> bool {
        self.prompts.insert(prompt.to_owned(), state);
        let Some(storage) = local_storage() else { return false };
        encode(&self.prompts).is_some_and(|text| storage.set_item(PROMPTS_KEY, &text).is_ok())
    }
}

/// `localStorage`, or `None` where the browser denies it (it may even throw).
fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn read_raw() -> Option<String> {
    local_storage()?.get_item(PROMPTS_KEY).ok().flatten()
}

fn decode(text: &str) -> Option<BTreeMap<String, PromptState>> {
    let value = js_sys::JSON::parse(text).ok()?;
    serde_wasm_bindgen::from_value(value).ok()
}

fn encode(prompts: &BTreeMap<String, PromptState>) -> Option<String> {
    let value = prompts
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .ok()?;
    js_sys::JSON::stringify(&value).ok()?.as_string()
}

/// Clears Askwell's stored prompt state (used by tests and `Askwell.reset()`).
pub(crate) fn clear() -> Result<(), JsValue> {
    match local_storage() {
        Some(storage) => storage.remove_item(PROMPTS_KEY),
        None => Ok(()),
    }
}
