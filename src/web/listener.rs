//! An event listener that is removed when dropped (after gloo-events' design),
//! so nothing Askwell adds outlives the object that added it.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

/// Owns one `addEventListener` registration; `Drop` removes it.
pub(crate) struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Adds `handler` for `kind` events on `target`; returns `None` if the
    /// browser refuses (nothing was registered then).
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
