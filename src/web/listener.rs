//! An event listener that is removed when dropped (after gloo-events' design),
//! so nothing Askwell adds outlives the object that added it.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

/// Owns one `addEventListener` registration; `Drop` removes it.
#[must_use = "dropping a Listener removes the event listener at once: keep it for as long as it should listen"]
pub(crate) struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Adds `handler` for `kind` events on `target`; returns `None` if the
    /// browser refuses (nothing was registered then).
    // On the constructor too: `#[must_use]` on a type does not reach an `Option` of it.
    #[must_use = "dropping the Listener removes the event listener at once: keep it for as long as it should listen"]
    pub(crate) fn new(target: &EventTarget, kind: &'static str, handler: impl FnMut(Event) + 'static) -> Option<Self> {
        let callback = Closure::<dyn FnMut(Event)>::new(handler);
        target
            .add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref())
            .ok()?;
        Some(Self {
            target: target.clone(),
            kind,
            callback,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Removing a listener that is not registered is a no-op in the DOM spec.
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.callback.as_ref().unchecked_ref());
    }
}

/// A `setTimeout` that is cleared when dropped.
#[must_use = "dropping a Timer clears the timeout at once: keep it until it fires or should be cancelled"]
pub(crate) struct Timer {
    id: i32,
    _callback: wasm_bindgen::closure::Closure<dyn FnMut()>,
}

impl Timer {
    /// Runs `callback` once after `delay_ms`; `None` if the browser refuses.
    #[must_use = "dropping the Timer clears the timeout at once: keep it until it fires or should be cancelled"]
    pub(crate) fn once(delay_ms: u64, callback: impl FnMut() + 'static) -> Option<Self> {
        let callback = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(callback);
        let delay = i32::try_from(delay_ms).unwrap_or(i32::MAX);
        let id = web_sys::window()?
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), delay)
            .ok()?;
        Some(Self {
            id,
            _callback: callback,
        })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            window.clear_timeout_with_handle(self.id);
        }
    }
}
