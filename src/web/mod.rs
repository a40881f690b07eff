//! Browser glue (wasm32 only): the only place web-sys, js-sys and gloo appear.
//!
//! Two wasm binaries are built from this crate: with feature `page` it exports
//! the [`page::Askwell`] engine for web pages; with feature `sw` it exports the
//! service-worker handlers in [`sw`]. Each ships only what its host uses.

#[cfg(feature = "page")]
mod listener;
#[cfg(feature = "page")]
pub mod page;
#[cfg(feature = "page")]
mod prompt;
#[cfg(feature = "page")]
mod store;
#[cfg(feature = "sw")]
pub mod sw;

#[cfg(feature = "page")]
/// Milliseconds since the epoch from the JS clock (`SystemTime` panics on wasm32).
pub(crate) fn now_ms() -> u64 {
    // Date.now() is a non-negative integer-valued f64; the cast cannot wrap before year 285,616.
    js_sys::Date::now() as u64
}

#[cfg(feature = "page")]
/// Converts a JS error value into a `JsError` for exported functions.
pub(crate) fn js_error(value: wasm_bindgen::JsValue) -> wasm_bindgen::JsError {
    let message = value
        .as_string()
        .or_else(|| js_sys::Error::from(value).message().as_string())
        .unwrap_or_else(|| "unknown JavaScript error".into());
    wasm_bindgen::JsError::new(&message)
}
