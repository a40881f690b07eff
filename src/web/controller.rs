//! The page's state in one place: the engine and everything Askwell owns in
//! the page (the prompt on screen, the status line after "Yes", listeners,
//! callbacks, consent, the start-up repair). Shared as [`Shared`] between
//! the exported facade (`page.rs`) and the modules that act on it (`optin`,
//! `events`), none of which import the facade. The funnel sender is not in
//! here: it is a [`Reporter`] of its own (`report`, which does not import
//! this module), held beside the controller by [`Shared`] and handed out
//! with the decisions it needs as values ([`Shared::queue`]).
//!
//! Borrow discipline, by structure. A borrow held while page code runs (a
//! DOM event, an app callback, a promise, the test clock `options.now`)
//! aborts the module when that code calls back into Askwell (`panic =
//! "abort"`). So:
//! - the `RefCell` is private to this module: the others reach the
//!   controller only through [`Shared::read`] / [`Shared::update`], whose
//!   closure gets `&Controller` / `&mut Controller` and returns an owned
//!   value; no `Ref`/`RefMut` can outlive it;
//! - `Controller`'s fields are private and its methods (intent-named, with
//!   `engine()` / `engine_mut()` for the core's `Engine`) never run page
//!   code: they never render, change or drop a [`PromptView`] (dropping one
//!   gives focus back, which fires the page's focus events) but hand it out
//!   (`close_prompt`, `take_status`, [`Removed`], marked `#[must_use]`), and
//!   they never read the clock (the time is read with [`Shared::now_ms`],
//!   which needs no borrow, and passed in);
//! - decisions are functions of `&mut Controller` that return what to do
//!   (`page::Handled`); what runs page code (`events::publish` and friends,
//!   rendering) takes that owned data and `&Shared`, never a borrow.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use web_sys::Document;

use super::clock::Clock;
use super::observe::Observer;
use super::preferences::PreferencesView;
use super::prompt::PromptView;
use super::push::Identity;
use super::report::{self, Queue, Reporter};
use crate::engine::{Engine, Proposal};
use crate::model::EventKind;
use crate::privacy::Consent;
use crate::rules::Permission;
use crate::state::State;

/// The controller as the page's listeners, timers and futures hold it.
#[derive(Clone)]
pub(crate) struct Shared(Rc<Cell>);

/// What a listener or timer holds: it must not keep the page alive.
pub(crate) struct WeakShared(Weak<Cell>);

struct Cell {
    /// Outside the `RefCell`: the funnel sender keeps its own state behind
    /// its own borrow, in `report`, and the page's clock (which never
    /// changes, and runs page code when called).
    reporter: Reporter,
    controller: RefCell<Controller>,
}

impl Shared {
    /// Shares `controller`, whose time comes from `clock`, with a funnel
    /// sender to its configured server.
    pub(crate) fn new(controller: Controller, clock: Clock) -> Self {
        let server = controller.engine.config().server.clone();
        let reporter = Reporter::new(clock, server, controller.active());
        report::signed_in(&reporter, controller.identity.as_ref().and_then(Identity::signed_in));
        Self(Rc::new(Cell {
            reporter,
            controller: RefCell::new(controller),
        }))
    }

    /// Epoch ms from the page's clock, read without a borrow.
    pub(crate) fn now_ms(&self) -> u64 {
        self.0.reporter.now_ms()
    }

    /// The funnel sender (no borrow of the controller).
    pub(crate) fn reporter(&self) -> &Reporter {
        &self.0.reporter
    }

    /// Where a funnel event of type `kind` goes and whether it may be queued
    /// (see [`Controller::sends`]), decided in a short borrow.
    pub(crate) fn queue(&self, kind: EventKind) -> Queue<'_> {
        let (allowed, anon) = self.read(|c| (c.sends(kind), c.engine.anon_id().to_owned()));
        Queue {
            reporter: &self.0.reporter,
            allowed,
            anon,
        }
    }

    /// Reads the controller; the borrow ends when `f` returns.
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Controller) -> R) -> R {
        match self.0.controller.try_borrow() {
            Ok(controller) => f(&controller),
            Err(_) => super::reentered(),
        }
    }

    /// Changes the controller; the borrow ends when `f` returns, before the
    /// caller acts on what `f` decided.
    #[inline(always)]
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Controller) -> R) -> R {
        match self.0.controller.try_borrow_mut() {
            Ok(mut controller) => f(&mut controller),
            Err(_) => super::reentered(),
        }
    }

    pub(crate) fn downgrade(&self) -> WeakShared {
        WeakShared(Rc::downgrade(&self.0))
    }
}

impl WeakShared {
    /// The page's controller, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<Shared> {
        self.0.upgrade().map(Shared)
    }
}

/// How long recorded activity may wait before it is written. Decisions
/// (shown, answered) are written at once; counts and visits are batched so
/// `track()` stays cheap, and flushed on `pagehide` and when the tab hides.
const FLUSH_DELAY_MS: u64 = 1000;

/// Views taken off the controller, to drop after its borrow ends: dropping
/// one removes it and may give focus back, which runs page code.
#[must_use = "drop it after the borrow ends"]
pub(crate) struct Removed {
    _prompt: Option<(Proposal, PromptView)>,
    _status: Option<PromptView>,
    _observer: Option<Observer>,
    _preferences: Vec<PreferencesView>,
}

/// Engine plus everything it owns in the page.
pub(crate) struct Controller {
    engine: Engine,
    document: Document,
    view: Option<(Proposal, PromptView)>,
    observer: Option<Observer>,
    callbacks: Vec<(String, Function)>,
    guard_reported: bool,
    /// `Notification.permission`, cached: reading it costs ~160 µs in Chromium
    /// (a synchronous IPC). Refreshed when the tab becomes visible and after
    /// our own permission request.
    permission: Permission,
    /// Activity recorded but not yet written (writes are batched: see `flush`).
    dirty: bool,
    /// The start-up subscription repair while it runs: subscribing,
    /// unsubscribing and topic changes wait for it, so a repair that finishes
    /// late cannot undo them (re-register a subscription just deleted).
    repairing: Option<Promise>,
    /// Who is signed in (`config.user` or `identify()`), sent with the
    /// subscription so the server can bind the device to the user.
    identity: Option<Identity>,
    /// The prompt after "Yes", showing the subscription's progress or failure.
    status: Option<PromptView>,
    /// The person's consent answer (`consent()`, stored).
    consent: Consent,
    /// `navigator.globalPrivacyControl`, read once at start.
    gpc: bool,
    /// The preference centres on the page (`<askwell-preferences>`).
    preferences: Vec<PreferencesView>,
}

impl Controller {
    /// A controller for `engine` in `document`, with nothing on screen yet.
    pub(crate) fn new(
        engine: Engine,
        document: Document,
        identity: Option<Identity>,
        consent: Consent,
        permission: Permission,
        gpc: bool,
    ) -> Self {
        Self {
            engine,
            document,
            view: None,
            observer: None,
            callbacks: Vec::new(),
            guard_reported: false,
            permission,
            dirty: false,
            repairing: None,
            identity,
            status: None,
            consent,
            gpc,
            preferences: Vec::new(),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The document the prompt is rendered in.
    pub(crate) fn document(&self) -> Document {
        self.document.clone()
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

    /// The person answered the consent question; returns whether Askwell
    /// was active before.
    pub(crate) fn consent_answered(&mut self, answer: Consent) -> bool {
        let was_active = self.active();
        self.consent = answer;
        was_active
    }

    /// Consent refused: the history is forgotten (the device gets the new
    /// id `anon_id`), nothing waits to be written, the prompts close.
    pub(crate) fn withdrawn(&mut self, anon_id: String) -> Removed {
        self.dirty = false;
        self.engine.forget(anon_id);
        Removed {
            _prompt: self.view.take(),
            _status: self.status.take(),
            _observer: None,
            // The person's own control over the pushes they asked for stays.
            _preferences: Vec::new(),
        }
    }

    /// `destroy()`: the prompt is closed, no callback is called again; the
    /// views and listeners are handed out.
    pub(crate) fn destroyed(&mut self) -> Removed {
        self.engine.closed();
        self.callbacks.clear();
        Removed {
            _prompt: self.view.take(),
            _status: self.status.take(),
            _observer: self.observer.take(),
            _preferences: std::mem::take(&mut self.preferences),
        }
    }

    /// The page is observed by `observer` (started after the controller
    /// was shared, as its listeners hold it).
    pub(crate) fn observed_by(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// A preference centre now fills its host (replacing one that did).
    pub(crate) fn preferences_shown(&mut self, view: PreferencesView) -> Option<PreferencesView> {
        let replaced = self.preferences.iter().position(|v| v.host() == view.host());
        let old = replaced.map(|i| self.preferences.swap_remove(i));
        self.preferences.push(view);
        old
    }

    /// The elements preference centres fill.
    pub(crate) fn preference_hosts(&self) -> Vec<web_sys::Element> {
        self.preferences.iter().map(|v| v.host().clone()).collect()
    }

    /// `on(name, callback)`.
    pub(crate) fn on(&mut self, name: &str, callback: Function) {
        self.callbacks.push((name.to_owned(), callback));
    }

    /// The callbacks registered for `name`, to call after the borrow ends.
    pub(crate) fn callbacks(&self, name: &str) -> Vec<Function> {
        self.callbacks
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// The cached `Notification.permission`.
    pub(crate) fn permission(&self) -> Permission {
        self.permission
    }

    /// `Notification.permission` was read again (it may have changed).
    pub(crate) fn permission_changed(&mut self, permission: Permission) {
        self.permission = permission;
    }

    /// Activity was recorded: it is written within [`FLUSH_DELAY_MS`].
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
        if let Some(observer) = self.observer.as_mut() {
            observer.flush_after(FLUSH_DELAY_MS);
        }
    }

    /// Whether activity waits to be written (it no longer does after this);
    /// the batching timer is done.
    pub(crate) fn take_dirty(&mut self) -> bool {
        if let Some(observer) = self.observer.as_mut() {
            observer.flushed();
        }
        std::mem::take(&mut self.dirty)
    }

    /// Asks for a tick when the engine wants one (time-on-page rules).
    pub(crate) fn schedule_tick(&mut self) {
        let Some(after_ms) = self.engine.next_tick_ms() else {
            return;
        };
        if let Some(observer) = self.observer.as_mut() {
            observer.tick_after(after_ms);
        }
    }

    /// Whether this is the first time this page met the accept-rate guard
    /// (reported once as `askwell:error`).
    pub(crate) fn guard_met(&mut self) -> bool {
        !std::mem::replace(&mut self.guard_reported, true)
    }

    /// A prompt is on screen as `view`; returns a prompt it replaces, if any.
    #[must_use = "drop it after the borrow ends"]
    pub(crate) fn prompt_shown(&mut self, proposal: Proposal, view: PromptView) -> Option<(Proposal, PromptView)> {
        self.view.replace((proposal, view))
    }

    /// The prompt was answered or closed: it leaves the controller (to be
    /// dropped, or turned into the status line, after the borrow ends).
    #[must_use = "drop it after the borrow ends"]
    pub(crate) fn close_prompt(&mut self) -> Option<(Proposal, PromptView)> {
        self.view.take()
    }

    /// Another tab saved `state`: the engine adopts it; the prompt leaves
    /// the controller when it was answered there.
    #[must_use = "drop it after the borrow ends"]
    pub(crate) fn other_tab_saved(&mut self, state: State) -> Option<(Proposal, PromptView)> {
        let open = self.view.as_ref().map(|(proposal, _)| proposal.prompt.as_str());
        let answered = self.engine.adopt(state, open);
        answered.then(|| self.view.take()).flatten()
    }

    /// The status line after "Yes" is `view` from now on; returns one it
    /// replaces, if any.
    #[must_use = "drop it after the borrow ends"]
    pub(crate) fn show_status(&mut self, view: PromptView) -> Option<PromptView> {
        self.status.replace(view)
    }

    /// The status line leaves the controller (closed, or to be changed
    /// after the borrow ends and shown again).
    #[must_use = "drop it after the borrow ends"]
    pub(crate) fn take_status(&mut self) -> Option<PromptView> {
        self.status.take()
    }

    /// The signed-in user, if any.
    pub(crate) fn identity(&self) -> Option<Identity> {
        self.identity.clone()
    }

    /// The user whose event the action `name` becomes, if it is forwarded:
    /// listed in the config's `forward`, and a user identified with a proof.
    pub(crate) fn forwarded(&self, name: &str) -> Option<String> {
        let identity = self.identity.as_ref().filter(|i| i.proof.is_some())?;
        let listed = self.engine.config().forward.iter().any(|n| n == name);
        listed.then(|| identity.id.clone())
    }

    /// The signed-in user and their traits, when there are traits to send
    /// and a proof to send them with.
    pub(crate) fn traits(&self) -> Option<(String, Vec<(String, crate::value::Value)>)> {
        let identity = self
            .identity
            .as_ref()
            .filter(|i| i.proof.is_some() && !i.traits.is_empty())?;
        Some((identity.id.clone(), identity.traits.clone()))
    }

    /// `identify()`: later subscriptions carry `identity`.
    pub(crate) fn identified(&mut self, identity: Identity) {
        self.identity = Some(identity);
    }

    /// The start-up repair runs until `done` settles.
    pub(crate) fn begin_repair(&mut self, done: Promise) {
        self.repairing = Some(done);
    }

    /// The start-up repair is over.
    pub(crate) fn repair_finished(&mut self) {
        self.repairing = None;
    }

    /// The running start-up repair, to wait for (after the borrow ends).
    pub(crate) fn repair_running(&self) -> Option<Promise> {
        self.repairing.clone()
    }
}
