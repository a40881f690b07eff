//! The page's clock: `options.now` (a test's function) or `Date.now()`.
//!
//! `options.now` is page code, so it is read before a controller or reporter
//! borrow and the time passed in, never called while one is held.

use js_sys::Function;
use wasm_bindgen::JsValue;

/// Epoch ms from the page's clock.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<Function>);

impl Clock {
    /// The clock `options.now` supplies, or `Date.now()` without one.
    pub(crate) fn new(now: Option<Function>) -> Self {
        Self(now)
    }

    /// Epoch ms now (negative clocks read as 0).
    pub(crate) fn now_ms(&self) -> u64 {
        let now = self
            .0
            .as_ref()
            .and_then(|f| f.call0(&JsValue::NULL).ok())
            .and_then(|v| v.as_f64());
        now.unwrap_or_else(js_sys::Date::now).max(0.0) as u64
    }
}
