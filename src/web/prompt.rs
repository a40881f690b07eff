//! The soft prompt in the DOM: `<askwell-prompt>` with an open shadow root, so
//! host CSS cannot break it; themeable through CSS custom properties and
//! `::part()`. Every text is set with `textContent`, never as HTML, and each
//! value inserted into the copy is in its own `<bdi>`, so a right-to-left or
//! override character in a user-chosen name cannot reorder the sentence.
//!
//! Accessibility: the modal is a `dialog` with `aria-modal` that takes focus,
//! keeps Tab inside and gives focus back when it closes. The banner and inline
//! placements are labelled `region`s that never take focus from where the
//! person is typing (a space typed into a chat box must not press "Yes"):
//! they are announced through a live region and reached with the normal Tab
//! order (inline: right after its anchor) or the documented key
//! [`FOCUS_KEY`]. Escape inside the prompt means "Not now".
//!
//! After "Yes" the same panel reports the subscription's progress and, if it
//! fails, says so with a close button ([`PromptView::status`]), instead of
//! vanishing with nothing on screen.

use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, Event, HtmlElement, KeyboardEvent, ShadowRootInit, ShadowRootMode};

use super::listener::{Listener, Timer};
use crate::config::Placement;
use crate::template::is_safe_url;

/// Default look; hosts override `--askwell-*` properties or style `::part(...)`.
const STYLE: &str = ":host{all:initial;position:fixed;z-index:2147483000;inset:1rem 1rem auto;display:flex;justify-content:center;pointer-events:none;font:15px/1.4 system-ui,sans-serif}\
:host([data-placement=modal]){inset:0;align-items:center;background:var(--askwell-backdrop,#0006);pointer-events:auto}\
:host([data-placement=inline]){position:static;display:block;margin:.5rem 0}\
[part=prompt]{pointer-events:auto;box-sizing:border-box;display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;max-width:min(32rem,100%);padding:.75rem 1rem;border-radius:var(--askwell-radius,.75rem);background:var(--askwell-bg,#fff);color:var(--askwell-fg,#1b1b1f);box-shadow:0 6px 24px #0003}\
img{width:40px;height:40px;border-radius:50%;object-fit:cover}\
p{margin:0;flex:1 1 12rem;min-width:0;overflow-wrap:anywhere}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-left:auto}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
button{font:inherit;border-radius:.5rem;padding:.4rem .8rem;cursor:pointer;border:1px solid currentColor;background:none;color:inherit}\
button[part~=accept]{background:var(--askwell-accent,#0a66c2);border-color:transparent;color:var(--askwell-accent-fg,#fff)}\
button:focus-visible,[part=prompt]:focus-visible{outline:3px solid var(--askwell-focus,#b35c00);outline-offset:2px}\
@media (prefers-color-scheme:dark){[part=prompt]{background:var(--askwell-bg,#1f1f24);color:var(--askwell-fg,#f1f1f3)}button[part~=accept]{background:var(--askwell-accent,#70b5f9);color:var(--askwell-accent-fg,#000)}}\
@media (prefers-reduced-motion:no-preference){[part=prompt]{animation:askwell-in .2s ease-out}}\
@keyframes askwell-in{from{transform:translateY(-.5rem);opacity:0}}";

/// The key that moves focus into an open banner or inline prompt
/// (`aria-keyshortcuts` syntax; documented in the README).
pub(crate) const FOCUS_KEY: &str = "Alt+Shift+N";

/// How long after the prompt appears its question is announced: a live
/// region announces changes, so it must exist (empty) before its text does.
const ANNOUNCE_DELAY_MS: u64 = 100;

/// What the prompt shows; all plain text.
pub(crate) struct PromptCopy<'a> {
    pub message: &'a str,
    pub accept: &'a str,
    pub decline: &'a str,
    pub avatar: Option<&'a str>,
    pub placement: &'a Placement,
}

/// Which button the user chose (a status's close button counts as `Decline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Accept,
    Decline,
}

type OnChoice = Rc<dyn Fn(Choice)>;

/// A rendered prompt. Dropping it removes its element and listeners and,
/// when focus was inside it, returns focus to where it was.
pub(crate) struct PromptView {
    host: Element,
    panel: Element,
    message: Element,
    actions: Element,
    announcement: Element,
    previous_focus: Option<HtmlElement>,
    on_choice: OnChoice,
    listeners: Vec<Listener>,
    _announce: Option<Timer>,
}

impl PromptView {
    /// Renders the prompt; `on_choice` runs inside the click (user activation),
    /// so it may call `Notification.requestPermission()`.
    pub(crate) fn show(
        document: &Document,
        copy: &PromptCopy<'_>,
        on_choice: impl Fn(Choice) + 'static,
    ) -> Result<Self, JsValue> {
        let on_choice: OnChoice = Rc::new(on_choice);
        let modal = *copy.placement == Placement::Modal;
        let previous_focus = document.active_element().and_then(|e| e.dyn_into::<HtmlElement>().ok());
        let host = document.create_element("askwell-prompt")?;
        let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))?;
        let style = document.create_element("style")?;
        style.set_text_content(Some(STYLE));
        let (panel, message) = panel(document, copy, modal)?;
        let decline = button(document, "decline", copy.decline)?;
        let accept = button(document, "accept", copy.accept)?;
        let actions = document.create_element("div")?;
        actions.set_class_name("actions");
        actions.append_child(&decline)?;
        actions.append_child(&accept)?;
        panel.append_child(&actions)?;
        let announcement = element(document, "div", "announcement")?;
        announcement.set_class_name("sr");
        announcement.set_attribute("role", "status")?;
        root.append_child(&style)?;
        root.append_child(&panel)?;
        root.append_child(&announcement)?;
        let mut listeners = listen(&accept, &decline, &panel, modal, &on_choice)?;
        place(document, &host, copy.placement)?;
        let announce = if modal {
            focus(&accept);
            None
        } else {
            listeners.extend(Listener::new(document, "keydown", focus_key(panel.clone())));
            let (live, text) = (announcement.clone(), message.text_content());
            Timer::once(ANNOUNCE_DELAY_MS, move || live.set_text_content(text.as_deref()))
        };
        Ok(Self {
            host,
            panel,
            message,
            actions,
            announcement,
            previous_focus,
            on_choice,
            listeners,
            _announce: announce,
        })
    }

    /// Turns the prompt into a status line after "Yes": `text` replaces the
    /// question and the buttons (and is announced); with `close`, a button
    /// of that label closes it (reported as [`Choice::Decline`]).
    /// Focus that was inside the prompt stays inside (on the panel, then on
    /// the close button): removing the button it was on would drop it to
    /// `<body>`, out of a modal dialog.
    pub(crate) fn status(&mut self, text: &str, close: Option<&str>) {
        let had_focus = self.has_focus();
        self._announce = None;
        self.message.set_text_content(Some(text));
        self.announcement.set_text_content(Some(text));
        self.actions.set_text_content(None);
        if had_focus {
            focus(&self.panel);
        }
        let Some(label) = close else { return };
        let Some(document) = self.host.owner_document() else {
            return;
        };
        let Ok(button) = button(&document, "close", label) else {
            return;
        };
        let on_choice = self.on_choice.clone();
        self.listeners
            .extend(Listener::new(&button, "click", move |_| on_choice(Choice::Decline)));
        if self.actions.append_child(&button).is_ok() && had_focus {
            focus(&button);
        }
    }

    /// Whether focus is inside the prompt (its host is the document's active element).
    fn has_focus(&self) -> bool {
        let active = self.host.owner_document().and_then(|d| d.active_element());
        active.as_ref() == Some(&self.host)
    }
}

impl Drop for PromptView {
    fn drop(&mut self) {
        let had_focus = self.has_focus();
        self.host.remove();
        // Only focus we took is given back: a prompt closed by another tab or
        // by `destroy()` must not pull the caret out of what the user types in.
        if let (true, Some(previous)) = (had_focus, &self.previous_focus) {
            let _ = previous.focus();
        }
    }
}

fn panel(document: &Document, copy: &PromptCopy<'_>, modal: bool) -> Result<(Element, Element), JsValue> {
    let panel = element(document, "div", "prompt")?;
    panel.set_attribute("role", if modal { "dialog" } else { "region" })?;
    // Focusable by script (the key, a status line), not by Tab: the
    // buttons are the Tab stops.
    panel.set_attribute("tabindex", "-1")?;
    if modal {
        panel.set_attribute("aria-modal", "true")?;
    } else {
        panel.set_attribute("aria-keyshortcuts", FOCUS_KEY)?;
    }
    panel.set_attribute("aria-labelledby", "message")?;
    if let Some(src) = copy.avatar.filter(|src| is_safe_url(src)) {
        let img = element(document, "img", "avatar")?;
        img.set_attribute("src", src)?;
        img.set_attribute("alt", "")?;
        img.set_attribute("referrerpolicy", "no-referrer")?;
        panel.append_child(&img)?;
    }
    let message = element(document, "p", "message")?;
    message.set_id("message");
    append_isolated(document, &message, copy.message)?;
    panel.append_child(&message)?;
    Ok((panel, message))
}

/// Appends `text` to `parent`, each U+2068 … U+2069 span (a value the core
/// inserted into the copy) as a `<bdi>` element: the isolation then lives in
/// the DOM, and the accessible name has no invisible characters in it.
fn append_isolated(document: &Document, parent: &Element, text: &str) -> Result<(), JsValue> {
    for (i, piece) in text.split(['\u{2068}', '\u{2069}']).enumerate() {
        if piece.is_empty() {
            continue;
        }
        if i % 2 == 1 {
            let bdi = document.create_element("bdi")?;
            bdi.set_text_content(Some(piece));
            parent.append_child(&bdi)?;
        } else {
            parent.append_with_str_1(piece)?;
        }
    }
    Ok(())
}

/// Appends the host where the placement wants it: inline in the page's flow
/// right after its anchor (so it pushes the content below it down instead of
/// covering it, and follows the anchor through layout changes); the banner
/// and modal at the end of `<body>`. Inline falls back to the banner when its
/// anchor is missing.
fn place(document: &Document, host: &Element, placement: &Placement) -> Result<(), JsValue> {
    let anchor = match placement {
        Placement::Inline(selector) => document.query_selector(selector).ok().flatten(),
        _ => None,
    };
    let kind = match (placement, &anchor) {
        (Placement::Modal, _) => "modal",
        (Placement::Inline(_), Some(_)) => "inline",
        _ => "banner",
    };
    host.set_attribute("data-placement", kind)?;
    if let Some(anchor) = anchor {
        return anchor.after_with_node_1(host);
    }
    let body = document
        .body()
        .ok_or_else(|| JsValue::from_str("the page has no <body>"))?;
    body.append_child(host)?;
    Ok(())
}

/// The document-level handler of [`FOCUS_KEY`]: focuses the panel itself,
/// not a button, so the key that follows cannot answer by accident.
fn focus_key(panel: Element) -> impl FnMut(Event) {
    move |event: Event| {
        let Some(key) = event.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        if key.alt_key() && key.shift_key() && key.code() == "KeyN" {
            key.prevent_default();
            focus(&panel);
        }
    }
}

fn listen(
    accept: &Element,
    decline: &Element,
    panel: &Element,
    modal: bool,
    on_choice: &OnChoice,
) -> Result<Vec<Listener>, JsValue> {
    let refused = || JsValue::from_str("addEventListener refused");
    let (on_accept, on_decline, on_key) = (on_choice.clone(), on_choice.clone(), on_choice.clone());
    let (first, last) = (decline.clone(), accept.clone());
    let keys = move |event: Event| {
        let Some(key) = event.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        match key.key().as_str() {
            "Escape" => on_key(Choice::Decline),
            "Tab" if modal => trap_tab(key, &first, &last),
            _ => {}
        }
    };
    Ok(vec![
        Listener::new(accept, "click", move |_| on_accept(Choice::Accept)).ok_or_else(refused)?,
        Listener::new(decline, "click", move |_| on_decline(Choice::Decline)).ok_or_else(refused)?,
        Listener::new(panel, "keydown", keys).ok_or_else(refused)?,
    ])
}

/// Keeps Tab inside the modal: from the last button to the first and back.
fn trap_tab(key: &KeyboardEvent, first: &Element, last: &Element) {
    let Some(root) = last.get_root_node().dyn_into::<web_sys::ShadowRoot>().ok() else {
        return;
    };
    let active = root.active_element();
    let wrap_to = match (key.shift_key(), active) {
        (false, Some(a)) if &a == last => first,
        (true, Some(a)) if &a == first => last,
        _ => return,
    };
    key.prevent_default();
    focus(wrap_to);
}

fn focus(element: &Element) {
    if let Some(html) = element.dyn_ref::<HtmlElement>() {
        let _ = html.focus();
    }
}

fn element(document: &Document, tag: &str, part: &str) -> Result<Element, JsValue> {
    let element = document.create_element(tag)?;
    element.set_attribute("part", part)?;
    Ok(element)
}

fn button(document: &Document, part: &str, label: &str) -> Result<Element, JsValue> {
    let button = element(document, "button", part)?;
    button.set_attribute("type", "button")?;
    button.set_text_content(Some(label));
    Ok(button)
}
