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

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{CustomEvent, CustomEventInit, Document};

use super::prompt::{Choice, PromptCopy, PromptView};
use super::store::{self, PromptStore};
use super::{js_error, now_ms};
use crate::config::Config;
use crate::policy::{self, Outcome};
use crate::rules::{self, Decision, Entity, Signal};
use crate::template::Template;

/// Extra data passed with `track(action, props)`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TrackProps {
    entity: Option<Entity>,
}

/// The contextual prompt engine of one page.
#[wasm_bindgen]
pub struct Askwell {
    engine: Rc<RefCell<Engine>>,
}

struct Engine {
    config: Config,
    document: Document,
    store: PromptStore,
    open: Option<(Decision, PromptView)>,
}

#[wasm_bindgen]
impl Askwell {
    /// Validates `config` and starts the engine.
    ///
    /// # Errors
    /// One error naming every bad config field, or when there is no document.
    pub async fn start(config: JsValue) -> Result<Askwell, JsError> {
        let config: Config = serde_wasm_bindgen::from_value(config)
            .map_err(|err| JsError::new(&format!("invalid Askwell config: {err}")))?;
        config.validate()?;
        let document = web_sys::window()
            .and_then(|window| window.document())
            .ok_or_else(|| JsError::new("Askwell.start needs a page with a document"))?;
        let engine = Engine {
            config,
            document,
            store: PromptStore::load(),
            open: None,
        };
        Ok(Askwell {
            engine: Rc::new(RefCell::new(engine)),
        })
    }

    /// Reports a user action; returns whether a prompt was shown for it.
    ///
    /// # Errors
    /// When `props` is not an object of the expected shape or rendering fails.
    pub fn track(&self, action: &str, props: JsValue) -> Result<bool, JsError> {
        let props: TrackProps = if props.is_undefined() || props.is_null() {
            TrackProps::default()
        } else {
            serde_wasm_bindgen::from_value(props).map_err(|err| JsError::new(&format!("track props: {err}")))?
        };
        let signal = Signal {
            action: action.to_owned(),
            entity: props.entity,
        };
        Engine::offer(&self.engine, &signal).map_err(js_error)
    }

    /// Removes every element and listener Askwell added to the page.
    pub fn destroy(&self) {
        self.engine.borrow_mut().open = None;
    }

    /// Forgets all stored prompt history (cool-offs, acceptances) on this device.
    ///
    /// # Errors
    /// When the browser refuses to change storage.
    pub fn reset(&self) -> Result<(), JsError> {
        store::clear().map_err(js_error)?;
        self.engine.borrow_mut().store = PromptStore::load();
        Ok(())
    }
}

impl Engine {
    /// Evaluates rules and policy for `signal` and shows the prompt if allowed.
    fn offer(engine: &Rc<RefCell<Engine>>, signal: &Signal) -> Result<bool, JsValue> {
        let (document, decision) = {
            let mut this = engine.borrow_mut();
            let Some(decision) = this.decide(signal) else {
                return Ok(false);
            };
            let view = this.render(&decision, Rc::downgrade(engine))?;
            this.open = Some((decision.clone(), view));
            (this.document.clone(), decision)
        };
        // Dispatched after the borrow ends: a listener may call back into Askwell.
        emit(&document, "askwell:shown", &decision)?;
        Ok(true)
    }

    /// The prompt to show for `signal` now, if rules and policy allow one.
    fn decide(&self, signal: &Signal) -> Option<Decision> {
        if self.open.is_some() {
            return None;
        }
        let decision = rules::evaluate(&self.config.rules, signal)?;
        let state = self.store.get(&decision.prompt);
        policy::may_show(&self.config.policy, &state, now_ms()).then_some(decision)
    }

    fn render(&self, decision: &Decision, engine: Weak<RefCell<Engine>>) -> Result<PromptView, JsValue> {
        let prompt = self
            .config
            .prompt(&decision.prompt)
            .ok_or_else(|| JsValue::from_str("unreachable: validated rules name known prompts"))?;
        let entity = decision.entity.clone().unwrap_or_default();
        let message = Template::parse(&prompt.message).render(|field| entity.field(field));
        let copy = PromptCopy {
            message: &message,
            accept: &prompt.accept,
            decline: &prompt.decline,
            avatar: entity.avatar.as_deref(),
        };
        PromptView::show(&self.document, &copy, move |choice| {
            if let Some(engine) = engine.upgrade() {
                Engine::choose(&engine, choice);
            }
        })
    }

    /// Runs inside the click handler: records the outcome and closes the prompt.
    fn choose(engine: &Rc<RefCell<Engine>>, choice: Choice) {
        let (outcome, event) = match choice {
            Choice::Accept => (Outcome::Accepted, "askwell:accepted"),
            Choice::Decline => (Outcome::Dismissed, "askwell:dismissed"),
        };
        let (document, decision) = {
            let mut this = engine.borrow_mut();
            let Some((decision, _view)) = this.open.take() else {
                return;
            };
            let mut state = this.store.get(&decision.prompt);
            policy::record(&mut state, outcome, now_ms());
            this.store.put(&decision.prompt, state);
            (this.document.clone(), decision)
        };
        // A listener throwing on our event must not break the prompt flow.
        let _ = emit(&document, event, &decision);
    }
}

/// Dispatches `kind` on the document with `{ prompt, trigger, entity }`.
fn emit(document: &Document, kind: &str, decision: &Decision) -> Result<(), JsValue> {
    let detail = js_sys::Object::new();
    js_sys::Reflect::set(&detail, &"prompt".into(), &decision.prompt.as_str().into())?;
    js_sys::Reflect::set(&detail, &"trigger".into(), &decision.trigger.as_str().into())?;
    let entity = decision
        .entity
        .as_ref()
        .map(|e| JsValue::from_str(&e.id))
        .unwrap_or(JsValue::NULL);
    js_sys::Reflect::set(&detail, &"entity".into(), &entity)?;
    let init = CustomEventInit::new();
    init.set_detail(&detail);
    let event = CustomEvent::new_with_event_init_dict(kind, &init)?;
    document.dispatch_event(&event)?;
    Ok(())
}
