//! Turns what happens on the page into [`Signal`]s: declarative
//! `data-askwell-action` elements (click or form submit, including elements
//! added later, by delegation), returns to a long-hidden tab, a time-on-page
//! timer, and other tabs' state changes. Everything is removed on drop.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use web_sys::{Document, Element, Event, StorageEvent};

use super::listener::{Listener, Timer};
use super::store::STATE_KEY;
use crate::rules::{Entity, Signal};

/// A tab hidden this long and shown again counts as a new page view.
const RETURN_AFTER_HIDDEN_MS: f64 = 30.0 * 60.0 * 1000.0;

/// What the observer reports to the engine.
pub(crate) enum Observed {
    /// A user or page signal.
    Signal(Signal),
    /// Another tab saved new state (its JSON).
    OtherTab(String),
    /// Time to write pending state to storage (the batching timer ran).
    Flush,
    /// The page is hiding (`pagehide`, or the tab went to the background):
    /// write everything now and hand waiting funnel events to a beacon.
    Hidden,
    /// The tab is visible again: settings (permission) may have changed meanwhile.
    Visible,
    /// Askwell's worker asks this page to show a notification's URL.
    Navigate(String),
}

/// Owns every listener and timer Askwell adds to the page.
pub(crate) struct Observer {
    _listeners: Vec<Listener>,
    /// Where every observation goes (the listeners and timers share it).
    report: Rc<dyn Fn(Observed)>,
    tick: Option<Timer>,
    flush: Option<Timer>,
}

impl Observer {
    /// Starts observing; `report` receives signals (it must not be re-entered
    /// while it runs, which the DOM guarantees for separate events).
    pub(crate) fn start(document: &Document, report: impl Fn(Observed) + 'static) -> Self {
        let report = Rc::new(report);
        let mut listeners = Vec::new();
        let on_click = report.clone();
        listeners.extend(Listener::new(document, "click", move |event| {
            if let Some(signal) = declared_action(&event, false) {
                on_click(Observed::Signal(signal));
            }
        }));
        let on_submit = report.clone();
        listeners.extend(Listener::new(document, "submit", move |event| {
            if let Some(signal) = declared_action(&event, true) {
                on_submit(Observed::Signal(signal));
            }
        }));
        listeners.extend(visibility_listener(document, report.clone()));
        listeners.extend(worker_messages(report.clone()));
        if let Some(window) = web_sys::window() {
            let on_hide = report.clone();
            listeners.extend(Listener::new(&window, "pagehide", move |_| on_hide(Observed::Hidden)));
            let on_storage = report.clone();
            listeners.extend(Listener::new(&window, "storage", move |event| {
                let Some(event) = event.dyn_ref::<StorageEvent>() else {
                    return;
                };
                if event.key().as_deref() == Some(STATE_KEY) {
                    on_storage(Observed::OtherTab(event.new_value().unwrap_or_default()));
                }
            }));
        }
        Self {
            _listeners: listeners,
            report: report as Rc<dyn Fn(Observed)>,
            tick: None,
            flush: None,
        }
    }

    /// Sends a [`Signal::Tick`] after `delay_ms` (replacing any pending tick).
    pub(crate) fn tick_after(&mut self, delay_ms: u64) {
        let report = self.report.clone();
        self.tick = Timer::once(delay_ms, move || report(Observed::Signal(Signal::Tick)));
    }

    /// Sends [`Observed::Flush`] after `delay_ms` unless one is already pending.
    pub(crate) fn flush_after(&mut self, delay_ms: u64) {
        if self.flush.is_none() {
            let report = self.report.clone();
            self.flush = Timer::once(delay_ms, move || report(Observed::Flush));
        }
    }

    /// The pending flush ran (or was done early).
    pub(crate) fn flushed(&mut self) {
        self.flush = None;
    }
}

/// `{ askwell: "navigate", url }` messages from Askwell's service worker
/// (a notification click for this origin while this tab is not controlled).
fn worker_messages(report: Rc<impl Fn(Observed) + 'static>) -> Option<Listener> {
    // Missing, or throwing in sandboxed frames: then no messages either.
    let container = super::push::service_worker()?;
    let listener = Listener::new(&container, "message", move |event| {
        let Some(event) = event.dyn_ref::<web_sys::MessageEvent>() else {
            return;
        };
        let data = event.data();
        let get = |key: &str| {
            js_sys::Reflect::get(&data, &key.into())
                .ok()
                .and_then(|v| v.as_string())
        };
        if get("askwell").as_deref() == Some("navigate") {
            if let Some(url) = get("url") {
                report(Observed::Navigate(url));
            }
        }
    });
    // Messages are queued until the page starts them (or sets onmessage).
    // (startMessages is not in web-sys yet: call it directly.)
    if let Ok(start) =
        js_sys::Reflect::get(&container, &"startMessages".into()).and_then(|f| f.dyn_into::<js_sys::Function>())
    {
        let _ = start.call0(&container);
    }
    listener
}

/// A page view when a tab hidden for a long time becomes visible again.
fn visibility_listener(document: &Document, report: Rc<impl Fn(Observed) + 'static>) -> Option<Listener> {
    let document_for_handler = document.clone();
    let hidden_since = std::cell::Cell::new(None::<f64>);
    Listener::new(document, "visibilitychange", move |_| {
        let now = js_sys::Date::now();
        if document_for_handler.hidden() {
            hidden_since.set(Some(now));
            // Mobile browsers may kill a hidden tab without pagehide.
            report(Observed::Hidden);
        } else {
            report(Observed::Visible);
            if hidden_since
                .take()
                .is_some_and(|since| now - since >= RETURN_AFTER_HIDDEN_MS)
            {
                report(Observed::Signal(Signal::PageView));
            }
        }
    })
}

/// The action declared on the event's target (or an ancestor) with
/// `data-askwell-action`, its entity from `data-askwell-entity-{id,name,avatar}`
/// and topic from `data-askwell-topic`. Forms report on submit, other
/// elements on click.
fn declared_action(event: &Event, submit: bool) -> Option<Signal> {
    let target = event.target()?.dyn_into::<Element>().ok()?;
    let element = target.closest("[data-askwell-action]").ok()??;
    if (element.tag_name() == "FORM") != submit {
        return None;
    }
    let attr = |name: &str| element.get_attribute(name).filter(|v| !v.trim().is_empty());
    let name = attr("data-askwell-action")?;
    let entity = attr("data-askwell-entity-id").map(|id| Entity {
        id,
        name: attr("data-askwell-entity-name").unwrap_or_default(),
        avatar: attr("data-askwell-entity-avatar"),
    });
    Some(Signal::Action {
        name,
        entity,
        topic: attr("data-askwell-topic"),
    })
}
