//! The page's state in one place: the engine and everything Askwell owns in
//! the page (the prompt on screen, the status line after "Yes", listeners,
//! the funnel sender, consent). Shared as [`Shared`] between the exported
//! facade (`page.rs`) and the modules that act on it (`optin`, `report`,
//! `events`), none of which import the facade.
//!
//! Borrow discipline: every function that takes [`Shared`] borrows it for
//! as short as it can and never across a call that may run page code (a DOM
//! event, an app callback, a promise): a re-entrant `borrow_mut()` would
//! abort the module (`panic = "abort"`). `events::send` is the one place
//! that calls app code, and it borrows only to copy the callbacks.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::Document;

use super::observe::Observer;
use super::prompt::PromptView;
use super::push::Identity;
use super::report::Reporter;
use crate::engine::{Engine, Proposal};
use crate::model::EventKind;
use crate::privacy::Consent;
use crate::rules::Permission;

/// Epoch ms from the page's clock (`options.now`) or `Date.now()`.
pub(crate) fn clock_now(clock: Option<&Function>) -> u64 {
    let now = clock
        .and_then(|f| f.call0(&JsValue::NULL).ok())
        .and_then(|v| v.as_f64());
    now.unwrap_or_else(js_sys::Date::now).max(0.0) as u64
}

/// The controller as the page's listeners, timers and futures hold it.
pub(crate) type Shared = Rc<RefCell<Controller>>;

/// Engine plus everything it owns in the page.
pub(crate) struct Controller {
    pub(super) engine: Engine,
    pub(super) document: Document,
    pub(super) clock: Option<Function>,
    pub(super) view: Option<(Proposal, PromptView)>,
    pub(super) observer: Option<Observer>,
    pub(super) callbacks: Vec<(String, Function)>,
    pub(super) guard_reported: bool,
    /// `Notification.permission`, cached: reading it costs ~160 µs in Chromium
    /// (a synchronous IPC). Refreshed when the tab becomes visible and after
    /// our own permission request.
    pub(super) permission: Permission,
    /// Activity recorded but not yet written (writes are batched: see `flush`).
    pub(super) dirty: bool,
    /// Sends the funnel events.
    pub(super) reporter: Reporter,
    /// The start-up subscription repair while it runs: subscribing,
    /// unsubscribing and topic changes wait for it, so a repair that finishes
    /// late cannot undo them (re-register a subscription just deleted).
    pub(super) repairing: Option<js_sys::Promise>,
    /// Who is signed in (`config.user` or `identify()`), sent with the
    /// subscription so the server can bind the device to the user.
    pub(super) identity: Option<Identity>,
    /// The prompt after "Yes", showing the subscription's progress or failure.
    pub(super) status: Option<PromptView>,
    /// The person's consent answer (`consent()`, stored).
    pub(super) consent: Consent,
    /// `navigator.globalPrivacyControl`, read once at start.
    pub(super) gpc: bool,
}

impl Controller {
    /// A controller for `engine` in `document`, with nothing on screen yet.
    pub(crate) fn new(
        engine: Engine,
        document: Document,
        clock: Option<Function>,
        identity: Option<Identity>,
        consent: Consent,
        permission: Permission,
        gpc: bool,
    ) -> Self {
        Self {
            engine,
            document,
            clock,
            view: None,
            observer: None,
            callbacks: Vec::new(),
            guard_reported: false,
            permission,
            dirty: false,
            reporter: Reporter::default(),
            repairing: None,
            identity,
            status: None,
            consent,
            gpc,
        }
    }

    /// Epoch ms from the page's clock (`options.now`) or `Date.now()`.
    pub(crate) fn now_ms(&self) -> u64 {
        clock_now(self.clock.as_ref())
    }

    /// Whether Askwell may store, prompt and send (see [`crate::privacy`]).
    pub(crate) fn active(&self) -> bool {
        self.engine.config().privacy.active(self.consent)
    }

    /// Whether a funnel event of type `kind` may be queued and sent: consent,
    /// telemetry settings and Global Privacy Control allow it, and there is a
    /// server to send it to.
    pub(crate) fn sends(&self, kind: EventKind) -> bool {
        let config = self.engine.config();
        config.server.is_some() && config.privacy.sends(kind, self.consent, self.gpc)
    }
}

/// The subscription after "Yes" is over: the status line closes (subscribed,
/// or the browser's prompt refused) or, when it `failed`, says so with a
/// close button instead of vanishing.
pub(crate) fn end_status(inner: &Shared, failed: bool) {
    let mut this = inner.borrow_mut();
    if !failed {
        let status = this.status.take();
        drop(this);
        drop(status);
        return;
    }
    let messages = this.engine.config().messages.clone();
    if let Some(status) = this.status.as_mut() {
        status.status(&messages.failed, Some(&messages.close));
    }
}
