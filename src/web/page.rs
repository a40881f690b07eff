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

use js_sys::Function;
use wasm_bindgen::prelude::*;
use web_sys::Document;

use super::clock::Clock;
use super::controller::{Controller, Shared, WeakShared};
use super::convert::from_js;
use super::events::{self, Outcome};
use super::observe::{Observed, Observer};
use super::prompt::{Choice, PromptCopy, PromptView};
use super::{optin, preferences, push, report, store};
use crate::config::{Config, Placement};
use crate::engine::{Engine, Env, Proposal, Skip};
use crate::error::FieldProblems;
use crate::funnel::read_traits;
use crate::model::EventKind;
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
        let clock = Clock::new(
            js_sys::Reflect::get(&options, &"now".into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok()),
        );
        let consent = store::load_consent();
        let mut state = store::load_state(clock.now_ms());
        // Empty also when the stored id was not one we make (planted, corrupt).
        if state.anon_id.is_empty() {
            state.anon_id = store::new_anon_id();
        }
        let identity = config.user_id.clone().map(|id| push::Identity {
            id,
            proof: config.user_proof.clone(),
            traits: config.user_traits.clone(),
        });
        let engine = Engine::new(config, state, store::load_session());
        let controller = Controller::new(
            engine,
            document.clone(),
            identity,
            consent,
            push::permission(),
            global_privacy_control(),
        );
        let inner = Shared::new(controller, clock);
        let weak = inner.downgrade();
        let observer = Observer::start(&document, move |observed| dispatch(&weak, observed));
        inner.update(|c| c.observed_by(observer));
        handle(&inner, &Signal::PageView);
        schedule_tick(&inner);
        activate(&inner);
        preferences::fill_all(&inner, &document);
        Ok(Askwell { inner })
    }

    /// Shows the preference centre in `element` (an `<askwell-preferences>`
    /// added after `start`, which fills those already on the page): what
    /// this device gets, by label and category, to turn off or on; a pause;
    /// and a button that turns notifications off. Calling it again for the
    /// same element reloads it; `destroy()` empties it.
    ///
    /// # Errors
    /// When `element` cannot have a shadow root (use `<askwell-preferences>`).
    #[wasm_bindgen(js_name = showPreferences)]
    pub fn show_preferences(&self, element: &web_sys::Element) -> Result<(), JsError> {
        preferences::fill(&self.inner, element).map_err(super::js_error)
    }

    /// The person's answer to the app's consent question. With
    /// `consent: "required"`, Askwell stores nothing but this answer, sends
    /// nothing and shows no prompt until `consent(true)`. `consent(false)`
    /// (whatever the config) stops all three and deletes what Askwell stored
    /// and queued on this device; a push subscription is kept (the person
    /// asked for it: `unsubscribe()` ends it).
    pub fn consent(&self, given: bool) {
        let answer = if given { Consent::Given } else { Consent::Refused };
        let was_active = self.inner.update(|c| c.consent_answered(answer));
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
        self.inner.update(|c| c.on(name, callback));
    }

    /// Removes every element, listener and timer Askwell added to the page.
    pub fn destroy(&self) {
        flush(&self.inner);
        let removed = self.inner.update(Controller::destroyed);
        // Waiting events stay in storage; the next start sends them. Before
        // the views go: giving focus back runs page code, which may record.
        self.inner.reporter().stop();
        drop(removed);
    }

    /// Forgets all stored prompt history on this device (cool-offs, acceptances).
    ///
    /// # Errors
    /// When the browser refuses to change storage.
    pub fn reset(&self) -> Result<(), JsError> {
        store::clear().map_err(super::js_error)?;
        report::forget_history(self.inner.reporter());
        let anon_id = store::new_anon_id();
        self.inner.update(|c| c.engine_mut().forget(anon_id));
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

    /// Binds this device to a signed-in user: `identify(userId, { proof,
    /// traits })`, where `proof` is made by the app's backend (hex
    /// HMAC-SHA256 of the id with the server's `ASKWELL_IDENTITY_SECRET`; see
    /// the README); `traits` go to the server once per change. Resolves
    /// to `true` when the current subscription was bound, `false` when there
    /// is none yet (the next one carries the user); rejects with an `Error`
    /// naming each bad trait, `identity-unproven` (the server refused the
    /// proof) or `server-unreachable`.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn identify(
        &self,
        user_id: String,
        #[wasm_bindgen(unchecked_optional_param_type = "AskwellIdentifyOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let proof = property(&options, "proof").as_string();
        let traits = property(&options, "traits");
        let mut problems = FieldProblems::default();
        let traits = if traits.is_undefined() {
            Vec::new()
        } else {
            read_traits(&from_js(&traits), "traits", &mut problems)
        };
        // A bad trait: nothing changes, and the promise rejects naming it.
        let bad = !problems.0.is_empty();
        let inner = self.inner.clone();
        let identity = (!bad && !user_id.is_empty() && user_id.len() <= 200).then_some(push::Identity {
            id: user_id,
            proof,
            traits,
        });
        // At once, not when the promise first runs: an action tracked right
        // after `identify()` is the user's.
        if let Some(identity) = &identity {
            optin::sign_in(&inner, identity);
            send_traits(&inner);
        }
        wasm_bindgen_futures::future_to_promise(async move {
            if bad {
                return Err(JsError::new(&problems.to_string()).into());
            }
            let Some(identity) = identity else {
                return Err(JsValue::from_str("invalid-user"));
            };
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
            report::conversion(&self.inner.queue(EventKind::Conversion), name);
        }
    }

    /// The anonymous id used for experiment assignment (stable per device).
    #[wasm_bindgen(getter, js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.inner.read(|c| c.engine().anon_id().to_owned())
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
    if !inner.read(Controller::active) {
        return;
    }
    optin::repair(inner);
    send_traits(inner);
    report::resume(inner.reporter(), 2_000);
}

/// Queues the signed-in user's traits when they changed since last queued
/// (consent and telemetry settings apply: [`Controller::sends`]).
fn send_traits(inner: &Shared) {
    let Some((user, traits)) = inner.read(Controller::traits) else {
        return;
    };
    report::traits(&inner.queue(EventKind::Traits), &user, &traits);
}

/// Consent refused: closes the prompt and deletes stored history and queued events.
fn withdraw(inner: &Shared) {
    let anon_id = store::new_anon_id();
    drop(inner.update(|c| c.withdrawn(anon_id)));
    let _ = store::clear();
    report::discard(inner.reporter());
}

fn dispatch(weak: &WeakShared, observed: Observed) {
    let Some(inner) = weak.upgrade() else { return };
    match observed {
        Observed::Signal(signal) => {
            handle(&inner, &signal);
        }
        Observed::OtherTab(json) => other_tab(&inner, &json),
        Observed::Flush => flush(&inner),
        Observed::Hidden => {
            flush(&inner);
            report::beacon(inner.reporter());
        }
        Observed::Visible => {
            let permission = push::permission();
            inner.update(|c| c.permission_changed(permission));
        }
        Observed::Navigate(url) => navigate_same_origin(&url),
    }
}

/// Writes the recorded activity now (batched: see [`Controller::mark_dirty`]).
fn flush(inner: &Shared) {
    inner.update(|c| {
        if c.take_dirty() && c.active() {
            store::save_state(c.engine().state());
        }
    });
}

/// What became of one signal, decided while the controller is borrowed and
/// acted on after the borrow ends (rendering moves focus and publishing
/// runs app code).
enum Handled {
    /// The engine proposed a prompt and remembered it as shown: render it.
    Show(Render),
    /// The engine held it back (`skip`); `report` says what to tell whom.
    Held { skip: Skip, report: HeldReport },
    /// The engine proposed one, but it could not be remembered.
    NotShown(JsValue),
}

/// A prompt to render, and the status line it replaces (dropped first).
struct Render {
    proposal: Proposal,
    placement: Placement,
    document: Document,
    replaced: Option<PromptView>,
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
    if let Signal::Action { name, entity, .. } = signal {
        forward(inner, name, entity.as_ref());
    }
    let now_ms = inner.now_ms();
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    let Some(handled) = inner.update(|c| c.active().then(|| decide(c, signal, &path, now_ms))) else {
        return false;
    };
    let trigger = signal.trigger();
    let not_shown = match handled {
        Handled::Show(render) => match show(inner, render) {
            Ok(proposal) => {
                events::publish(inner, Outcome::Shown, &proposal);
                return true;
            }
            Err(why) => why,
        },
        Handled::NotShown(why) => why,
        Handled::Held { skip, report } => {
            if let (true, Skip::Holdout(prompt)) = (report.holdout, &skip) {
                report::holdout(&inner.queue(EventKind::PromptShown), prompt, trigger);
            }
            if report.debug {
                events::skipped(inner, &skip, trigger);
            }
            if report.guard {
                let message = "native accept rate is below the floor: push prompts paused";
                events::error(inner, Suppressed::AcceptRateGuard.as_str(), message);
            }
            return false;
        }
    };
    if inner.read(|c| c.engine().config().debug) {
        web_sys::console::info_2(&"askwell: a prompt could not be shown:".into(), &not_shown);
    }
    false
}

/// Queues action `name` as the signed-in user's event when the config
/// forwards it (consent and telemetry settings apply: [`Controller::sends`]);
/// only the entity id goes with it, as its key.
fn forward(inner: &Shared, name: &str, entity: Option<&Entity>) {
    let Some(user) = inner.read(|c| c.forwarded(name)) else {
        return;
    };
    let key = entity.map(|e| e.id.as_str());
    report::action(&inner.queue(EventKind::Action), name, key, &user);
}

/// The engine's answer to `signal` on page `path` at `now_ms`. A proposal is
/// remembered as shown first: a prompt whose showing cannot be remembered
/// (storage disabled, full, or not readable back) is not shown, so no prompt
/// storms on reload.
fn decide(this: &mut Controller, signal: &Signal, path: &str, now_ms: u64) -> Handled {
    let env = Env {
        path,
        permission: this.permission(),
        now_ms,
    };
    let engine = this.engine_mut();
    match engine.observe(signal, &env) {
        Ok(proposal) => {
            if !store::save_state(&engine.state_if_shown(now_ms)) {
                return Handled::NotShown(JsValue::from_str("storage unavailable"));
            }
            engine.shown(now_ms);
            store::save_session(engine.session());
            let Some(placement) = engine.config().prompt(&proposal.prompt).map(|p| p.placement.clone()) else {
                return Handled::NotShown(JsValue::from_str("unreachable: proposals name known prompts"));
            };
            // One prompt on screen: a new question replaces an old status line.
            let replaced = this.take_status();
            Handled::Show(Render {
                proposal,
                placement,
                document: this.document(),
                replaced,
            })
        }
        Err(skip) => {
            // The recorded activity (counts, visits) is written soon, batched.
            this.mark_dirty();
            let guard = matches!(skip, Skip::Suppressed(_, Suppressed::AcceptRateGuard)) && this.guard_met();
            let report = HeldReport {
                holdout: matches!(skip, Skip::Holdout(_)),
                guard,
                debug: this.engine().config().debug,
            };
            Handled::Held { skip, report }
        }
    }
}

/// Renders the prompt `decide` remembered as shown (after the borrow: a
/// modal takes focus, which fires the page's focus events) and hands it to
/// the controller; one that cannot be rendered is closed again.
fn show(inner: &Shared, render: Render) -> Result<Proposal, JsValue> {
    let Render {
        proposal,
        placement,
        document,
        replaced,
    } = render;
    drop(replaced);
    let copy = PromptCopy {
        message: &proposal.message,
        accept: &proposal.accept,
        decline: &proposal.decline,
        avatar: proposal.entity.as_ref().and_then(|e| e.avatar.as_deref()),
        placement: &placement,
    };
    let weak = inner.downgrade();
    let view = PromptView::show(&document, &copy, move |choice| {
        if let Some(inner) = weak.upgrade() {
            choose(&inner, choice);
        }
    });
    match view {
        Ok(view) => {
            drop(inner.update(|c| c.prompt_shown(proposal.clone(), view)));
            Ok(proposal)
        }
        Err(err) => {
            inner.update(|c| c.engine_mut().closed());
            Err(err)
        }
    }
}

/// Runs inside the click handler (user activation): records the answer,
/// closes the prompt and, for push, asks the browser at once — the prompt
/// then stays as a status line until the subscription is done.
fn choose(inner: &Shared, choice: Choice) {
    let now_ms = inner.now_ms();
    let answered = inner.update(|c| {
        let Some((proposal, view)) = c.close_prompt() else {
            // The status line's close button (or Escape in it).
            return Err(c.take_status());
        };
        let engine = c.engine_mut();
        match choice {
            Choice::Accept => engine.accepted(&proposal),
            Choice::Decline => engine.dismissed(&proposal, now_ms),
        }
        store::save_state(engine.state());
        Ok((proposal, view))
    });
    let (proposal, mut view) = match answered {
        Ok(answered) => answered,
        Err(status) => return drop(status),
    };
    match choice {
        Choice::Decline => {
            drop(view);
            events::publish(inner, Outcome::Dismissed, &proposal);
        }
        Choice::Accept => {
            if proposal.kind == Kind::Push {
                let working = inner.read(|c| c.engine().config().messages.subscribing.clone());
                view.status(&working, None);
                drop(inner.update(|c| c.show_status(view)));
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
            let url = inner.read(|c| c.engine().config().prompt(&proposal.prompt).and_then(|p| p.url.clone()));
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
    let Some(state) = store::decode_state(json, inner.now_ms()) else {
        return;
    };
    drop(inner.update(|c| c.other_tab_saved(state)));
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
    inner.update(Controller::schedule_tick);
}
