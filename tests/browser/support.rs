//! Helpers shared by the browser tests.
#![allow(dead_code)]

use askwell::web::page::Askwell;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Document, Element, HtmlElement, KeyboardEvent, KeyboardEventInit, Storage, StorageEvent, StorageEventInit,
};

/// The chat prompt of the demo.
pub const CHAT: &str = r#"{
    prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
    rules: [{ prompt: "reply", on: "message_sent" }]
}"#;

pub fn document() -> Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

pub fn local_storage() -> Storage {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .expect("localStorage")
}

/// Clears storage and removes test elements and leftover prompts.
pub fn reset_page() {
    local_storage().clear().expect("clear localStorage");
    if let Some(session) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
        session.clear().expect("clear sessionStorage");
    }
    let leftovers = document()
        .query_selector_all("askwell-prompt, [data-test]")
        .expect("query");
    for i in 0..leftovers.length() {
        if let Some(node) = leftovers.get(i).and_then(|n| n.dyn_into::<Element>().ok()) {
            node.remove();
        }
    }
}

/// Evaluates a JS expression (object literals for configs and props).
pub fn js(source: &str) -> JsValue {
    js_sys::eval(&format!("({source})")).expect("valid JS literal")
}

pub async fn start(config: &str) -> Askwell {
    Askwell::start(js(config), JsValue::UNDEFINED)
        .await
        .map_err(JsValue::from)
        .expect("valid config")
}

pub fn prompt_host() -> Option<Element> {
    document().query_selector("askwell-prompt").ok()?
}

pub fn part(name: &str) -> Option<Element> {
    prompt_host()?
        .shadow_root()?
        .query_selector(&format!("[part~={name}]"))
        .ok()?
}

pub fn part_text(name: &str) -> Option<String> {
    part(name)?.text_content()
}

/// The `part` of the element focused inside the prompt.
pub fn active_part() -> Option<String> {
    prompt_host()?.shadow_root()?.active_element()?.get_attribute("part")
}

pub fn click(element: &Element) {
    element.dyn_ref::<HtmlElement>().expect("an HTML element").click();
}

pub fn click_part(name: &str) {
    click(&part(name).unwrap_or_else(|| panic!("no {name} part")));
}

pub fn focus(element: &Element) {
    element
        .dyn_ref::<HtmlElement>()
        .expect("an HTML element")
        .focus()
        .expect("focus");
}

pub fn is_active(element: &Element) -> bool {
    document().active_element().as_ref() == Some(element)
}

/// Appends `<tag data-test>text</tag>` to the body.
pub fn append_html(tag: &str, text: &str) -> Element {
    let element = document().create_element(tag).expect("create");
    element.set_attribute("data-test", "").expect("attribute");
    element.set_text_content(Some(text));
    document().body().expect("body").append_child(&element).expect("append");
    element
}

/// Dispatches a keydown on the focused element inside the prompt.
pub fn press_key_in_prompt(key: &str, shift: bool) {
    let target = prompt_host()
        .and_then(|h| h.shadow_root())
        .and_then(|r| r.active_element())
        .expect("focus inside the prompt");
    press_key(&target, key, "", false, shift);
}

/// What another tab's write to localStorage looks like to this one.
pub fn dispatch_storage_event(key: &str, new_value: &str) {
    let init = StorageEventInit::new();
    init.set_key(Some(key));
    init.set_new_value(Some(new_value));
    let event = StorageEvent::new_with_event_init_dict("storage", &init).expect("event");
    web_sys::window()
        .expect("window")
        .dispatch_event(&event)
        .expect("dispatch");
}

/// Waits `ms` milliseconds (lets timers and fetches run).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The text stored under `key` in localStorage ("" when absent).
pub fn stored(key: &str) -> String {
    local_storage().get_item(key).ok().flatten().unwrap_or_default()
}

/// Dispatches a keydown on `target` (bubbling, like a real key press).
pub fn press_key(target: &Element, key: &str, code: &str, alt: bool, shift: bool) {
    let init = KeyboardEventInit::new();
    init.set_key(key);
    init.set_code(code);
    init.set_alt_key(alt);
    init.set_shift_key(shift);
    init.set_bubbles(true);
    init.set_composed(true);
    init.set_cancelable(true);
    let event = KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).expect("event");
    target.dispatch_event(&event).expect("dispatch");
}

/// Collects `event.detail` of each `askwell:<name>` DOM event into
/// `window[store]` (as JSON); returns the listener for `forget_events`.
pub fn collect_events(name: &str, store: &str) -> js_sys::Function {
    js_sys::eval(&format!("window.{store} = []")).expect("array");
    let listener: js_sys::Function = js_sys::eval(&format!("(e) => window.{store}.push(JSON.stringify(e.detail))"))
        .expect("listener")
        .into();
    document()
        .add_event_listener_with_callback(&format!("askwell:{name}"), &listener)
        .expect("listen");
    listener
}

pub fn forget_events(name: &str, listener: &js_sys::Function) {
    document()
        .remove_event_listener_with_callback(&format!("askwell:{name}"), listener)
        .expect("unlisten");
}

/// The JSON strings `collect_events` gathered in `window[store]`.
pub fn collected(store: &str) -> Vec<String> {
    let list = js_sys::Reflect::get(&js_sys::global(), &store.into()).unwrap_or(JsValue::UNDEFINED);
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}
