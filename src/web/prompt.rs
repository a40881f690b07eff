//! The soft prompt in the DOM: `<askwell-prompt>` with an open shadow root, so
//! host CSS cannot break it; themeable through CSS custom properties and
//! `::part()`. Every text is set with `textContent`, never as HTML.
//!
//! Accessibility: the banner and inline placements are labelled `region`s, the
//! modal a `dialog` with `aria-modal` that keeps Tab inside; focus moves to
//! the prompt and returns where it was; Escape means "Not now".

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, Event, HtmlElement, KeyboardEvent, ShadowRootInit, ShadowRootMode};

use super::listener::Listener;
use crate::config::Placement;
use crate::template::is_safe_url;

/// Default look; hosts override `--askwell-*` properties or style `::part(...)`.
const STYLE: &str = ":host{all:initial;position:fixed;z-index:2147483000;inset:1rem 1rem auto;display:flex;justify-content:center;pointer-events:none;font:15px/1.4 system-ui,sans-serif}\
:host([data-placement=modal]){inset:0;align-items:center;background:var(--askwell-backdrop,#0006);pointer-events:auto}\
:host([data-placement=inline]){position:absolute;inset:auto;display:block}\
[part=prompt]{pointer-events:auto;display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;max-width:32rem;padding:.75rem 1rem;border-radius:var(--askwell-radius,.75rem);background:var(--askwell-bg,#fff);color:var(--askwell-fg,#1b1b1f);box-shadow:0 6px 24px #0003}\
img{width:40px;height:40px;border-radius:50%;object-fit:cover}\
p{margin:0;flex:1 1 12rem}\
.actions{display:flex;gap:.5rem;margin-left:auto}\
button{font:inherit;border-radius:.5rem;padding:.4rem .8rem;cursor:pointer;border:1px solid currentColor;background:none;color:inherit}\
button[part~=accept]{background:var(--askwell-accent,#0a66c2);border-color:transparent;color:var(--askwell-accent-fg,#fff)}\
button:focus-visible{outline:3px solid var(--askwell-focus,#b35c00);outline-offset:2px}\
@media (prefers-color-scheme:dark){[part=prompt]{background:var(--askwell-bg,#1f1f24);color:var(--askwell-fg,#f1f1f3)}button[part~=accept]{background:var(--askwell-accent,#70b5f9);color:var(--askwell-accent-fg,#000)}}\
@media (prefers-reduced-motion:no-preference){[part=prompt]{animation:askwell-in .2s ease-out}}\
@keyframes askwell-in{from{transform:translateY(-.5rem);opacity:0}}";

/// What the prompt shows; all plain text.
pub(crate) struct PromptCopy<'a> {
    pub message: &'a str,
    pub accept: &'a str,
    pub decline: &'a str,
    pub avatar: Option<&'a str>,
    pub placement: &'a Placement,
}

/// Which button the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Accept,
    Decline,
}

/// A rendered prompt. Dropping it removes its element and listeners and
/// returns focus to where it was.
pub(crate) struct PromptView {
    host: Element,
    previous_focus: Option<HtmlElement>,
    _listeners: Vec<Listener>,
}

impl PromptView {
    /// Renders the prompt; `on_choice` runs inside the click (user activation),
    /// so it may call `Notification.requestPermission()`.
    pub(crate) fn show(
        document: &Document,
        copy: &PromptCopy<'_>,
        on_choice: impl Fn(Choice) + Clone + 'static,
    ) -> Result<Self, JsValue> {
        let previous_focus = document.active_element().and_then(|e| e.dyn_into::<HtmlElement>().ok());
        let host = document.create_element("askwell-prompt")?;
        let root = host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))?;
        let style = document.create_element("style")?;
        style.set_text_content(Some(STYLE));
        let panel = panel(document, copy)?;
        let decline = button(document, "decline", copy.decline)?;
        let accept = button(document, "accept", copy.accept)?;
        let actions = document.create_element("div")?;
        actions.set_class_name("actions");
        actions.append_child(&decline)?;
        actions.append_child(&accept)?;
        panel.append_child(&actions)?;
        root.append_child(&style)?;
        root.append_child(&panel)?;
        let modal = *copy.placement == Placement::Modal;
        let listeners = listen(&accept, &decline, &panel, modal, on_choice)?;
        place(document, &host, copy.placement)?;
        focus(&accept);
        Ok(Self {
            host,
            previous_focus,
            _listeners: listeners,
        })
    }
}

impl Drop for PromptView {
    fn drop(&mut self) {
        self.host.remove();
        if let Some(previous) = &self.previous_focus {
            let _ = previous.focus();
        }
    }
}

fn panel(document: &Document, copy: &PromptCopy<'_>) -> Result<Element, JsValue> {
    let panel = element(document, "div", "prompt")?;
    let modal = *copy.placement == Placement::Modal;
    panel.set_attribute("role", if modal { "dialog" } else { "region" })?;
    if modal {
        panel.set_attribute("aria-modal", "true")?;
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
    message.set_text_content(Some(copy.message));
    panel.append_child(&message)?;
    Ok(panel)
}

/// Appends the host where the placement wants it; inline falls back to the
/// banner when its anchor is missing.
fn place(document: &Document, host: &Element, placement: &Placement) -> Result<(), JsValue> {
    let body = document
        .body()
        .ok_or_else(|| JsValue::from_str("the page has no <body>"))?;
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
    if let (Some(anchor), Some(window), Some(host)) = (anchor, web_sys::window(), host.dyn_ref::<HtmlElement>()) {
        let rect = anchor.get_bounding_client_rect();
        let style = host.style();
        style.set_property("top", &px(rect.bottom() + window.scroll_y().unwrap_or(0.0) + 8.0))?;
        style.set_property("left", &px(rect.left() + window.scroll_x().unwrap_or(0.0)))?;
    }
    body.append_child(host)?;
    Ok(())
}

/// CSS pixels as text, via JS number formatting (keeps Rust's float
/// formatting machinery out of the bundle).
fn px(value: f64) -> String {
    let mut text = String::from(
        js_sys::Number::from(value.round())
            .to_string_with_radix(10)
            .unwrap_or_else(|_| "0".into()),
    );
    text.push_str("px");
    text
}

fn listen(
    accept: &Element,
    decline: &Element,
    panel: &Element,
    modal: bool,
    on_choice: impl Fn(Choice) + Clone + 'static,
) -> Result<Vec<Listener>, JsValue> {
    let refused = || JsValue::from_str("addEventListener refused");
    let on_accept = on_choice.clone();
    let on_decline = on_choice.clone();
    let (first, last) = (decline.clone(), accept.clone());
    let keys = move |event: Event| {
        let Some(key) = event.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        match key.key().as_str() {
            "Escape" => on_choice(Choice::Decline),
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
