//! Browser glue (wasm32 only): the only place web-sys and js-sys appear.
//!
//! Two wasm binaries are built from this crate: with feature `page` it exports
//! the [`page::Askwell`] engine for web pages; with feature `sw` it exports the
//! service-worker handlers in [`sw`]. Each ships only what its host uses.

// Each binary uses its part of the one client (the worker never fetches the
// VAPID key, the page never swaps endpoints): unused items are expected when
// only one feature is built.
#[cfg(any(feature = "page", feature = "sw"))]
#[cfg_attr(not(all(feature = "page", feature = "sw")), allow(dead_code))]
mod api;
#[cfg(feature = "page")]
mod clock;
#[cfg(feature = "page")]
mod controller;
#[cfg(any(feature = "page", feature = "sw"))]
mod convert;
#[cfg(feature = "page")]
mod events;
#[cfg(feature = "page")]
mod listener;
#[cfg(feature = "page")]
mod observe;
#[cfg(feature = "page")]
mod optin;
#[cfg(feature = "page")]
pub mod page;
#[cfg(feature = "page")]
mod preferences;
#[cfg(feature = "page")]
mod prompt;
#[cfg(feature = "page")]
mod push;
#[cfg(feature = "page")]
mod report;
#[cfg(feature = "page")]
mod store;
#[cfg(feature = "sw")]
pub mod sw;
#[cfg(feature = "page")]
mod typings;

/// A `RefCell` of the page (the controller, the funnel sender) borrowed
/// while borrowed: the borrow discipline (see `controller`) was broken.
/// Aborts, as `RefCell`'s own check would under `panic = "abort"`, with one
/// call here instead of a panic message and location at every borrow.
#[cfg(feature = "page")]
#[cold]
#[inline(never)]
pub(crate) fn reentered() -> ! {
    std::process::abort()
}

/// Converts a JS error value into a `JsError` for exported functions.
#[cfg(feature = "page")]
pub(crate) fn js_error(value: wasm_bindgen::JsValue) -> wasm_bindgen::JsError {
    let message = value
        .as_string()
        .or_else(|| js_sys::Error::from(value).message().as_string())
        .unwrap_or_else(|| "unknown JavaScript error".into());
    wasm_bindgen::JsError::new(&message)
}
