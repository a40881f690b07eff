//! The page engine exported to JavaScript as `Askwell`.
//!
//! ```js
//! import init, { Askwell } from "askwell";
//! await init();
//! const askwell = await Askwell.start({
//!   prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
//!   rules: [{ prompt: "reply", on: "message_sent" }],
//! });
//! askwell.track("message_sent", { entity: { id: "u1", name: "Bill" } });
//! ```

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::controller::{clock_now, Controller, Shared};
use super::convert::from_js;
use super::events::{self, Outcome};
use super::observe::{Observed, Observer};
use super::prompt::{Choice, PromptCopy, PromptView};
use super::{optin, push, report, store};
use crate::config::Config;
use crate::engine::{Engine, Env, Proposal, Skip};
use crate::policy::{Kind, Offer, Suppressed};
use crate::privacy::Consent;
use crate::rules::{Entity, Signal};

/// The contextual prompt engine of one page.
#[wasm_bindgen]
pub struct Askwell {
    inner: Shared,
}

#[wasm_bindgen]
impl Askwell {
    /// Validates `config` and starts observing the page. `options.now` may
    /// supply the clock (a function returning epoch milliseconds) for tests.
    ///
    /// # Errors
    /// One error naming every bad config field, or when there is no document.
    pub async fn start(
        #[wasm_bindgen(unchecked_param_type = "AskwellConfig")] config: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "AskwellStartOptions")] options: JsValue,
    ) -> Result<Askwell, JsError> {
        let config = Config::read(&from_js(&config))?;
        for warning in &config.warnings.0 {
            web_sys::console::warn_2(&"Askwell config:".into(), &JsValue::from_str(&warning.path));
        }
        let document = web_sys::window()
            .and_then(|window| window.document())
            .ok_or_else(|| JsError::new("Askwell.start needs a page with a document"))?;
        let clock = js_sys::Reflect::get(&options, &"now".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        let consent = store::load_consent();
        let mut state = store::load_state(clock_now(clock.as_ref()));
        // Empty also when the stored id was not one we make (planted, corrupt).
        if state.anon_id.is_empty() {
            state.anon_id = store::new_anon_id();
        }
        let identity = config.user_id.clone().map(|id| push::Identity {
            id,
            proof: config.user_proof.clone(),
        });
        let engine = Engine::new(config, state, store::load_session());
        let controller = Controller::new(
            engine,
            document.clone(),
            clock,
            identity,
            consent,
            push::permission(),
            global_privacy_control(),
        );
        let inner = Rc::new(RefCell::new(controller));
        let weak = Rc::downgrade(&inner);
        let observer = Observer::start(&document, move |observed| dispatch(&weak, observed));
        inner.borrow_mut().observer = Some(observer);
        handle(&inner, &Signal::PageView);
        schedule_tick(&inner);
        activate(&inner);
        Ok(Askwell { inner })
    }

    /// The person's answer to the app's consent question. With
    /// `consent: "required"`, Askwell stores nothing but this answer, sends
    /// nothing and shows no prompt until `consent(true)`. `consent(false)`
    /// (whatever the config) stops all three and deletes what Askwell stored
    /// and queued on this device; a push subscription is kept (the person
    /// asked for it: `unsubscribe()` ends it).
    pub fn consent(&self, given: bool) {
        let answer = if given { Consent::Given } else { Consent::Refused };
        let was_active = self.inner.borrow().active();
        self.inner.borrow_mut().consent = answer;
        store::save_consent(answer);
        if given && !was_active {
            activate(&self.inner);
        } else if !given {
            withdraw(&self.inner);
        }
    }

    /// Reports a user action: `track("message_sent", { entity: { id, name, avatar }, topic })`.
    /// Returns whether a prompt was shown for it.
    pub fn track(
        &self,
        action: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "AskwellTrackProps")] props: JsValue,
    ) -> bool {
        // Direct property reads: cheaper than converting the whole props object.
        let entity = entity_from(&property(&props, "entity"));
        let topic = property(&props, "topic").as_string();
        handle(
            &self.inner,
            &Signal::Action {
                name: action.to_owned(),
                entity,
                topic,
            },
        )
    }

    /// Calls `callback(detail)` on each outcome named `name` (`"shown"`,
    /// `"accepted"`, `"dismissed"`, `"permission"`, `"subscribed"`, `"error"`),
    /// in addition to the `askwell:<name>` DOM event. Its TypeScript
    /// declaration, with the detail type of each outcome, is in `typings.rs`.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: &str, callback: Function) {
        self.inner.borrow_mut().callbacks.push((name.to_owned(), callback));
    }

    /// Removes every element, listener and timer Askwell added to the page.
    pub fn destroy(&self) {
        flush(&self.inner);
        let (view, status, observer) = {
            let mut this = self.inner.borrow_mut();
            this.engine.closed();
            this.callbacks.clear();
            // Waiting events stay in storage; the next start sends them.
            this.reporter.stop();
            (this.view.take(), this.status.take(), this.observer.take())
        };
        drop((view, status));
        drop(observer);
    }

    /// Forgets all stored prompt history on this device (cool-offs, acceptances).
    ///
    /// # Errors
    /// When the browser refuses to change storage.
    pub fn reset(&self) -> Result<(), JsError> {
        store::clear().map_err(super::js_error)?;
        report::forget_history(&self.inner);
        self.inner.borrow_mut().engine.forget(store::new_anon_id());
        Ok(())
    }

    /// Unsubscribes from push in the browser and on the server. Resolves to
    /// whether a subscription existed; rejects with `server-unreachable`.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn unsubscribe(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            optin::unsubscribe(&inner)
                .await
                .map(JsValue::from_bool)
                .map_err(|f| JsValue::from_str(f.code()))
        })
    }

    /// Stops notifications about one topic, keeping the subscription.
    /// Resolves to `true`; rejects with `subscribe-failed` (no subscription)
    /// or `server-unreachable`.
    #[wasm_bindgen(js_name = removeTopic, unchecked_return_type = "Promise<true>")]
    pub fn remove_topic(&self, topic: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            optin::remove_topic(&inner, &topic)
                .await
                .map(|()| JsValue::TRUE)
                .map_err(|f| JsValue::from_str(f.code()))
        })
    }

    /// Binds this device to a signed-in user: `identify(userId, { proof })`,
    /// where `proof` is made by the app's backend (hex HMAC-SHA256 of the id
    /// with the server's `ASKWELL_IDENTITY_SECRET`; see the README). Resolves
    /// to `true` when the current subscription was bound, `false` when there
    /// is none yet (the next one carries the user); rejects with
    /// `identity-unproven` (the server refused the proof) or
    /// `server-unreachable`.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn identify(
        &self,
        user_id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "AskwellIdentifyOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let proof = js_sys::Reflect::get(&options, &"proof".into())
            .ok()
            .and_then(|p| p.as_string());
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if user_id.is_empty() || user_id.len() > 200 {
                return Err(JsValue::from_str("invalid-user"));
            }
            let identity = push::Identity { id: user_id, proof };
            optin::identify(&inner, identity)
                .await
                .map(JsValue::from_bool)
                .map_err(|f| JsValue::from_str(f.code()))
        })
    }

    /// Reports an app-defined conversion (`"replied"`, `"purchased"`) to the
    /// funnel, credited to the prompt this device saw last, so experiments
    /// compare what prompts lead to, not only opt-ins.
    pub fn convert(&self, name: &str) {
        if !name.is_empty() {
            report::conversion(&self.inner, name);
        }
    }

    /// The anonymous id used for experiment assignment (stable per device).
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.inner.borrow().engine.anon_id().to_owned()
    }
}

/// `object[key]`, or `undefined` for non-objects and missing keys.
fn property(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn entity_from(value: &JsValue) -> Option<Entity> {
    let id = property(value, "id").as_string()?;
    let name = property(value, "name").as_string().unwrap_or_default();
    let avatar = property(value, "avatar").as_string();
    Some(Entity { id, name, avatar })
}

/// `navigator.globalPrivacyControl === true` (where the browser has it).
fn global_privacy_control() -> bool {
    let Some(window) = web_sys::window() else { return false };
    js_sys::Reflect::get(&window.navigator(), &"globalPrivacyControl".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Starts what needs consent: the subscription repair and the events an
/// earlier page could not deliver.
fn activate(inner: &Shared) {
    if !inner.borrow().active() {
        return;
    }
    optin::repair(inner);
    report::schedule(inner, 2_000);
}

/// Consent refused: closes the prompt and deletes stored history and queued events.
fn withdraw(inner: &Shared) {
    let views = {
        let mut this = inner.borrow_mut();
        this.dirty = false;
        this.engine.forget(store::new_anon_id());
        (this.view.take(), this.status.take())
    };
    drop(views);
    let _ = store::clear();
    report::discard(inner);
}

fn dispatch(weak: &Weak<RefCell<Controller>>, observed: Observed) {
    let Some(inner) = weak.upgrade() else { return };
    match observed {
        Observed::Signal(signal) => {
            handle(&inner, &signal);
        }
        Observed::OtherTab(json) => other_tab(&inner, &json),
        Observed::Flush => flush(&inner),
        Observed::Hidden => {
            flush(&inner);
            report::beacon(&inner);
        }
        Observed::Visible => inner.borrow_mut().permission = push::permission(),
        Observed::Navigate(url) => navigate_same_origin(&url),
    }
}

/// How long recorded activity may wait before it is written. Decisions
/// (shown, answered) are written at once; counts and visits are batched so
/// `track()` stays cheap, and flushed on `pagehide` and when the tab hides.
const FLUSH_DELAY_MS: u64 = 1000;

fn flush(inner: &Shared) {
    let mut this = inner.borrow_mut();
    if let Some(observer) = this.observer.as_mut() {
        observer.flushed();
    }
    if std::mem::take(&mut this.dirty) && this.active() {
        store::save_state(this.engine.state());
    }
}

fn mark_dirty(inner: &Shared, this: &mut Controller) {
    this.dirty = true;
    let weak = Rc::downgrade(inner);
    if let Some(observer) = this.observer.as_mut() {
        observer.flush_after(FLUSH_DELAY_MS, move |observed| dispatch(&weak, observed));
    }
}

/// What became of one signal, decided while the controller is borrowed and
/// acted on after the borrow ends (publishing runs app code).
enum Handled {
    /// A prompt is on screen.
    Shown(Proposal),
    /// The engine held it back (`skip`); `report` says what to tell whom.
    Held { skip: Skip, report: HeldReport },
    /// The engine proposed one, but it could not be remembered or rendered.
    NotShown(JsValue),
}

/// What a held-back signal is reported as.
#[derive(Default)]
struct HeldReport {
    /// A holdout exposure for the funnel.
    holdout: bool,
    /// The first time this page met the accept-rate guard: `askwell:error`.
    guard: bool,
    /// Debug mode: `askwell:skipped`.
    debug: bool,
}

/// Runs one signal through the engine; shows the prompt if it says so.
/// Without consent (when required) nothing is recorded or shown.
fn handle(inner: &Shared, signal: &Signal) -> bool {
    let handled = {
        let mut this = inner.borrow_mut();
        if !this.active() {
            return false;
        }
        decide(inner, &mut this, signal)
    };
    let trigger = signal.trigger();
    match handled {
        Handled::Shown(proposal) => {
            events::publish(inner, Outcome::Shown, &proposal);
            return true;
        }
        Handled::NotShown(why) => {
            if inner.borrow().engine.config().debug {
                web_sys::console::info_2(&"askwell: a prompt could not be shown:".into(), &why);
            }
        }
        Handled::Held { skip, report } => {
            if let (true, Skip::Holdout(prompt)) = (report.holdout, &skip) {
                report::holdout(inner, prompt, trigger);
            }
            if report.debug {
                events::skipped(inner, &skip, trigger);
            }
            if report.guard {
                let message = "native accept rate is below the floor: push prompts paused";
                events::error(inner, Suppressed::AcceptRateGuard.as_str(), message);
            }
        }
    }
    false
}

/// The engine's answer to `signal`, with the prompt shown if it proposes one.
fn decide(inner: &Shared, this: &mut Controller, signal: &Signal) -> Handled {
    let now_ms = this.now_ms();
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    let env = Env {
        path: &path,
        permission: this.permission,
        now_ms,
    };
    match this.engine.observe(signal, &env) {
        Ok(proposal) => match show(this, inner, proposal, now_ms) {
            Ok(proposal) => Handled::Shown(proposal),
            Err(why) => Handled::NotShown(why),
        },
        Err(skip) => {
            // The recorded activity (counts, visits) is written soon, batched.
            mark_dirty(inner, this);
            let guard = matches!(skip, Skip::Suppressed(_, Suppressed::AcceptRateGuard)) && !this.guard_reported;
            this.guard_reported |= guard;
            let report = HeldReport {
                holdout: matches!(skip, Skip::Holdout(_)),
                guard,
                debug: this.engine.config().debug,
            };
            Handled::Held { skip, report }
        }
    }
}

/// Persists "shown" first: a prompt whose showing cannot be remembered
/// (storage disabled, full, or not readable back) is not shown, so no
/// prompt storms on reload.
fn show(this: &mut Controller, inner: &Shared, proposal: Proposal, now_ms: u64) -> Result<Proposal, JsValue> {
    if !store::save_state(&this.engine.state_if_shown(now_ms)) {
        return Err(JsValue::from_str("storage unavailable"));
    }
    this.engine.shown(now_ms);
    store::save_session(this.engine.session());
    // One prompt on screen: a new question replaces an old status line.
    this.status = None;
    let entity = proposal.entity.clone().unwrap_or_default();
    let prompt = this
        .engine
        .config()
        .prompt(&proposal.prompt)
        .ok_or_else(|| JsValue::from_str("unreachable: proposals name known prompts"))?;
    let copy = PromptCopy {
        message: &proposal.message,
        accept: &proposal.accept,
        decline: &proposal.decline,
        avatar: entity.avatar.as_deref(),
        placement: &prompt.placement,
    };
    let weak = Rc::downgrade(inner);
    let view = PromptView::show(&this.document, &copy, move |choice| {
        if let Some(inner) = weak.upgrade() {
            choose(&inner, choice);
        }
    });
    let view = match view {
        Ok(view) => view,
        Err(err) => {
            this.engine.closed();
            return Err(err);
        }
    };
    this.view = Some((proposal.clone(), view));
    Ok(proposal)
}

/// Runs inside the click handler (user activation): records the answer,
/// closes the prompt and, for push, asks the browser at once — the prompt
/// then stays as a status line until the subscription is done.
fn choose(inner: &Shared, choice: Choice) {
    let (proposal, mut view) = {
        let mut this = inner.borrow_mut();
        let Some((proposal, view)) = this.view.take() else {
            // The status line's close button (or Escape in it).
            let status = this.status.take();
            drop(this);
            drop(status);
            return;
        };
        let now_ms = this.now_ms();
        match choice {
            Choice::Accept => this.engine.accepted(&proposal),
            Choice::Decline => this.engine.dismissed(&proposal, now_ms),
        }
        store::save_state(this.engine.state());
        (proposal, view)
    };
    match choice {
        Choice::Decline => {
            drop(view);
            events::publish(inner, Outcome::Dismissed, &proposal);
        }
        Choice::Accept => {
            if proposal.kind == Kind::Push {
                let working = inner.borrow().engine.config().messages.subscribing.clone();
                view.status(&working, None);
                inner.borrow_mut().status = Some(view);
            } else {
                drop(view);
            }
            events::publish(inner, Outcome::Accepted, &proposal);
            accept(inner, &proposal);
        }
    }
}

/// The accept action: native permission for push, a URL for action prompts.
fn accept(inner: &Shared, proposal: &Proposal) {
    match (proposal.kind, proposal.offer) {
        (Kind::Push, Offer::Permission) => optin::request_permission(inner, proposal),
        (Kind::Push, Offer::AddTopic) => optin::add_topic(inner, proposal),
        (Kind::Action, _) => {
            let url = inner
                .borrow()
                .engine
                .config()
                .prompt(&proposal.prompt)
                .and_then(|p| p.url.clone());
            if let (Some(url), Some(window)) = (url, web_sys::window()) {
                if crate::template::is_safe_url(&url) {
                    let _ = window.location().assign(&url);
                }
            }
        }
        _ => {}
    }
}

/// Another tab saved state: adopt it, and close our prompt if it was answered there.
fn other_tab(inner: &Shared, json: &str) {
    let now_ms = inner.borrow().now_ms();
    let Some(state) = store::decode_state(json, now_ms) else {
        return;
    };
    let view = {
        let mut this = inner.borrow_mut();
        let open = this.view.as_ref().map(|(p, _)| p.prompt.clone());
        if this.engine.adopt(state, open.as_deref()) {
            this.view.take()
        } else {
            None
        }
    };
    drop(view);
}

/// Shows a notification's URL in this tab, if it is of this page's origin.
fn navigate_same_origin(url: &str) {
    let Some(window) = web_sys::window() else { return };
    let location = window.location();
    let same_origin = location
        .origin()
        .is_ok_and(|origin| url.starts_with(&origin) && url[origin.len()..].starts_with(['/', '?', '#']));
    if same_origin {
        let _ = location.assign(url);
    }
}

fn schedule_tick(inner: &Shared) {
    let mut this = inner.borrow_mut();
    let Some(after_ms) = this.engine.next_tick_ms() else {
        return;
    };
    let weak = Rc::downgrade(inner);
    if let Some(observer) = this.observer.as_mut() {
        observer.tick_after(after_ms, move |observed| dispatch(&weak, observed));
    }
}
