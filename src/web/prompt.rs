//! The soft prompt in the DOM: `<askwell-prompt>` with an open shadow root, so
//! host CSS cannot break it; themeable through CSS custom properties and
//! `::part()`. Every text is set with `textContent`, never as HTML.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, Event, HtmlElement, KeyboardEvent, ShadowRootInit, ShadowRootMode};

use super::listener::Listener;
use crate::template::is_safe_image_url;

/// Default look; hosts override `--askwell-*` properties or style `::part(...)`.
const STYLE: &str = ":host{all:initial;position:fixed;inset:1rem 1rem auto 1rem;z-index:2147483000;display:flex;justify-content:center;font:15px/1.4 system-ui,sans-serif}\
[part=prompt]{display:flex;gap:.75rem;align-items:center;max-width:32rem;padding:.75rem 1rem;border-radius:.75rem;background:var(--askwell-bg,#fff);color:var(--askwell-fg,#1b1b1f);box-shadow:0 6px 24px #0003}\
img{width:40px;height:40px;border-radius:50%;object-fit:cover}\
p{margin:0;flex:1}\
button{font:inherit;border-radius:.5rem;padding:.4rem .8rem;cursor:pointer;border:1px solid currentColor;background:none;color:inherit}\
button[part~=accept]{background:var(--askwell-accent,#0a66c2);border-color:transparent;color:#fff}\
button:focus-visible{outline:3px solid var(--askwell-focus,#f5a623);outline-offset:2px}\
@media (prefers-color-scheme:dark){[part=prompt]{background:var(--askwell-bg,#1f1f24);color:var(--askwell-fg,#f1f1f3)}}\
@media (prefers-reduced-motion:no-preference){[part=prompt]{animation:in .2s ease-out}@keyframes in{from{transform:translateY(-.5rem);opacity:0}}}";

/// What the prompt shows; all plain text.
pub(crate) struct PromptCopy<'a> {
    pub message: &'a str,
    pub accept: &'a str,
    pub decline: &'a str,
    pub avatar: Option<&'a str>,
}

/// Which button the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Accept,
    Decline,
}

/// A rendered prompt. Dropping it removes its element and its listeners.
pub(crate) struct PromptView {
    host: Element,
    _listeners: Vec<Listener>,
}

impl PromptView {
    /// Renders the prompt into `document.body`; `on_choice` runs inside the
    /// click (user activation), so it may call `Notification.requestPermission()`.
    pub(crate) fn show(
        document: &Document,
        copy: &PromptCopy<'_>,
        on_choice: impl Fn(Choice) + Clone + 'static,
    ) -> Result<Self, JsValue> {
        let host = document.create_element("askwell-prompt")?;
        let init = ShadowRootInit::new(ShadowRootMode::Open);
        let root = host.attach_shadow(&init)?;
        let style = document.create_element("style")?;
        style.set_text_content(Some(STYLE));
        let panel = element(document, "div", "prompt")?;
        panel.set_attribute("role", "dialog")?;
        panel.set_attribute("aria-labelledby", "askwell-message")?;
        if let Some(src) = copy.avatar.filter(|src| is_safe_image_url(src)) {
            let img = element(document, "img", "avatar")?;
            img.set_attribute("src", src)?;
            img.set_attribute("alt", "")?;
            panel.append_child(&img)?;
        }
        let message = element(document, "p", "message")?;
        message.set_id("askwell-message");
        message.set_text_content(Some(copy.message));
        let decline = button(document, "decline", copy.decline)?;
        let accept = button(document, "accept", copy.accept)?;
        for child in [&message, &decline, &accept] {
            panel.append_child(child)?;
        }
        root.append_child(&style)?;
        root.append_child(&panel)?;
        let listeners = listen(&accept, &decline, &panel, on_choice)?;
        body(document)?.append_child(&host)?;
        if let Some(accept) = accept.dyn_ref::<HtmlElement>() {
            accept.focus()?;
        }
        Ok(Self {
            host,
            _listeners: listeners,
        })
    }
}

impl Drop for PromptView {
    fn drop(&mut self) {
        self.host.remove();
    }
}

fn listen(
    accept: &Element,
    decline: &Element,
    panel: &Element,
    on_choice: impl Fn(Choice) + Clone + 'static,
) -> Result<Vec<Listener>, JsValue> {
    let refused = || JsValue::from_str("addEventListener refused");
    let on_accept = on_choice.clone();
    let on_decline = on_choice.clone();
    let accept_click = Listener::new(accept, "click", move |_| on_accept(Choice::Accept)).ok_or_else(refused)?;
    let decline_click = Listener::new(decline, "click", move |_| on_decline(Choice::Decline)).ok_or_else(refused)?;
    let escape = Listener::new(panel, "keydown", move |event: Event| {
        if event
            .dyn_ref::<KeyboardEvent>()
            .is_some_and(|key| key.key() == "Escape")
        {
            on_choice(Choice::Decline);
        }
    })
    .ok_or_else(refused)?;
    Ok(vec![accept_click, decline_click, escape])
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

fn body(document: &Document) -> Result<HtmlElement, JsValue> {
    document
        .body()
        .ok_or_else(|| JsValue::from_str("the page has no <body>"))
}
