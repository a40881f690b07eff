//! The preference centre in the DOM: `<askwell-preferences>` (any element the
//! app places; Askwell fills its open shadow root). It lists what this device
//! gets (the server's categories and the device's topics) as native
//! checkboxes, a pause menu and a button that turns notifications off, all
//! plain text (`textContent`), themeable through `--askwell-*` properties and
//! `::part()`. It talks to the server with the proof of possession the
//! browser's subscription holds (endpoint + auth secret): no login.
//!
//! What it shows and asks is decided by the core
//! ([`crate::preference_centre`]); every failure (no subscription, no
//! server, a refused change) is a sentence in its status line, a live region,
//! never an exception in the host page.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element, HtmlInputElement, HtmlSelectElement, ShadowRootInit, ShadowRootMode};

use super::controller::{Shared, WeakShared};
use super::convert::to_js;
use super::listener::Listener;
use super::{api, optin, push};
use crate::preference_centre::{category_change, pause_change, text, topic_change, Centre, Pause, PauseChoice, Switch};
use crate::value::Value;

/// Default look; hosts override `--askwell-*` properties or style `::part(...)`.
const STYLE: &str = ":host{display:block;font:15px/1.4 system-ui,sans-serif;color:var(--askwell-fg,#1b1b1f)}\
[part=preferences]{box-sizing:border-box;max-width:32rem;padding:1rem;border-radius:var(--askwell-radius,.75rem);background:var(--askwell-bg,#fff);border:1px solid #0002}\
h2{font-size:1.1em;margin:0 0 .5rem}\
fieldset{border:0;margin:0 0 .75rem;padding:0}\
legend{font-weight:600;padding:0;margin-bottom:.25rem}\
label{display:flex;gap:.5rem;align-items:center;padding:.2rem 0;overflow-wrap:anywhere}\
input,select{accent-color:var(--askwell-accent,#0a66c2);font:inherit}\
.note{opacity:.8}\
p{margin:.25rem 0}\
button{font:inherit;border-radius:.5rem;padding:.4rem .8rem;cursor:pointer;border:1px solid currentColor;background:none;color:inherit;margin-top:.5rem}\
input:focus-visible,select:focus-visible,button:focus-visible{outline:3px solid var(--askwell-focus,#b35c00);outline-offset:2px}\
@media (prefers-color-scheme:dark){:host{color:var(--askwell-fg,#f1f1f3)}[part=preferences]{background:var(--askwell-bg,#1f1f24);border-color:#fff3}input,select{accent-color:var(--askwell-accent,#70b5f9)}}\
@media (prefers-reduced-motion:no-preference){[part=status]{transition:opacity .2s}}";

/// A mounted preference centre. Dropping it empties the shadow root and
/// removes its listeners (the host element is the app's and stays).
pub(crate) struct PreferencesView {
    host: Element,
    /// Its `<style>` and `<section>`: removed on drop (not the whole root,
    /// which a newer view of the same host may fill by then).
    nodes: [Element; 2],
    panel: Rc<Panel>,
}

struct Panel {
    document: Document,
    controls: Element,
    status: Element,
    page: WeakShared,
    state: RefCell<Loaded>,
}

/// What the panel knows once loaded.
#[derive(Default)]
struct Loaded {
    possession: Option<(String, String)>,
    centre: Option<Centre>,
    listeners: Vec<Listener>,
}

impl PreferencesView {
    /// Fills `host`'s shadow root (attaching an open one if it has none)
    /// and starts loading the device's preferences.
    pub(crate) fn mount(page: &Shared, host: &Element) -> Result<Self, JsValue> {
        let document = page.read(|c| c.document());
        let root = match host.shadow_root() {
            Some(root) => root,
            None => host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))?,
        };
        root.set_text_content(None);
        let style = document.create_element("style")?;
        style.set_text_content(Some(STYLE));
        let section = part(&document, "section", "preferences")?;
        section.set_attribute("aria-labelledby", "askwell-preferences-title")?;
        let title = part(&document, "h2", "title")?;
        title.set_id("askwell-preferences-title");
        title.set_text_content(Some(text::TITLE));
        let status = part(&document, "p", "status")?;
        status.set_attribute("role", "status")?;
        status.set_text_content(Some(text::LOADING));
        let controls = part(&document, "div", "controls")?;
        section.append_child(&title)?;
        section.append_child(&status)?;
        section.append_child(&controls)?;
        root.append_child(&style)?;
        root.append_child(&section)?;
        let panel = Rc::new(Panel {
            document,
            controls,
            status,
            page: page.downgrade(),
            state: RefCell::default(),
        });
        wasm_bindgen_futures::spawn_local(load(Rc::downgrade(&panel)));
        Ok(Self {
            host: host.clone(),
            nodes: [style, section],
            panel,
        })
    }

    /// The element it fills.
    pub(crate) fn host(&self) -> &Element {
        &self.host
    }
}

impl Drop for PreferencesView {
    fn drop(&mut self) {
        if let Ok(mut state) = self.panel.state.try_borrow_mut() {
            state.listeners.clear();
        }
        for node in &self.nodes {
            node.remove();
        }
    }
}

/// Shows `host`'s preference centre (again: loaded afresh), keeping it in
/// the page's controller; the one it replaces is dropped outside the borrow.
pub(crate) fn fill(page: &Shared, host: &Element) -> Result<(), JsValue> {
    let view = PreferencesView::mount(page, host)?;
    let replaced = page.update(|c| c.preferences_shown(view));
    drop(replaced);
    Ok(())
}

/// Fills every `<askwell-preferences>` in `document` (at start; one that
/// cannot be filled is skipped: the page is the app's).
pub(crate) fn fill_all(page: &Shared, document: &Document) {
    if let Ok(found) = document.query_selector_all("askwell-preferences") {
        for host in elements::<Element>(&found) {
            let _ = fill(page, &host);
        }
    }
}

/// Reloads every preference centre: the subscription or its topics changed.
pub(crate) fn reload_all(page: &Shared) {
    for host in page.read(|c| c.preference_hosts()) {
        let _ = fill(page, &host);
    }
}

/// Asks the server what this device turned off, and shows it.
async fn load(panel: std::rc::Weak<Panel>) {
    let Some(page) = panel.upgrade().and_then(|p| p.page.upgrade()) else {
        return;
    };
    optin::after_repair(&page).await;
    let server = optin::server_of(&page).ok();
    drop(page);
    if push::unsupported().is_some() {
        return say(&panel, text::UNSUPPORTED);
    }
    let possession = push::current().await.as_ref().and_then(push::possession);
    let Some((endpoint, auth)) = possession else {
        return say(&panel, text::OFF);
    };
    let Some(server) = server else {
        return say(&panel, text::UNAVAILABLE);
    };
    let body = api::possession_body(&endpoint, &auth);
    let answer = push::call(&server, "POST", api::LOOKUP_PREFERENCES, Some(&body)).await;
    let Some(panel) = panel.upgrade() else { return };
    match answer {
        Ok((200, json)) => match Centre::read(&json) {
            Some(centre) => {
                panel.state.borrow_mut().possession = Some((endpoint, auth));
                show(&panel, centre, None);
            }
            None => panel.say(text::UNAVAILABLE),
        },
        // The server does not know this subscription: it gets nothing.
        Ok((404, _)) => panel.say(text::OFF),
        _ => panel.say(text::UNAVAILABLE),
    }
}

fn say(panel: &std::rc::Weak<Panel>, line: &str) {
    if let Some(panel) = panel.upgrade() {
        panel.say(line);
    }
}

impl Panel {
    /// Replaces the status line (announced: it is a live region).
    fn say(&self, line: &str) {
        self.status.set_text_content(Some(line));
    }

    /// Removes every control (nothing left to change).
    fn clear(&self) {
        self.state.borrow_mut().listeners.clear();
        self.controls.set_text_content(None);
    }
}

/// Renders `centre`; `focus` names the control to give focus back to (a
/// re-render after a change must not drop a keyboard user's place).
fn show(panel: &Rc<Panel>, centre: Centre, focus: Option<&str>) {
    panel.clear();
    let mut listeners = Vec::new();
    let built = build(panel, &centre, &mut listeners);
    if built.is_err() {
        panel.clear();
        return panel.say(text::UNAVAILABLE);
    }
    if panel.status.text_content().as_deref() == Some(text::LOADING) {
        panel.say("");
    }
    if let Some(key) = focus {
        focus_control(&panel.controls, key);
    }
    let mut state = panel.state.borrow_mut();
    state.centre = Some(centre);
    state.listeners = listeners;
}

fn build(panel: &Rc<Panel>, centre: &Centre, listeners: &mut Vec<Listener>) -> Result<(), JsValue> {
    let doc = &panel.document;
    let groups = [
        (text::CATEGORIES, &centre.categories, "category"),
        (text::TOPICS, &centre.topics, "topic"),
    ];
    for (legend, switches, kind) in groups {
        if switches.is_empty() {
            continue;
        }
        let fieldset = part(doc, "fieldset", kind)?;
        let caption = doc.create_element("legend")?;
        caption.set_text_content(Some(legend));
        fieldset.append_child(&caption)?;
        for item in switches {
            let (row, input) = switch_row(doc, item, kind)?;
            fieldset.append_child(&row)?;
            if !item.fixed {
                listeners.extend(on_toggle(panel, &input, kind, &item.name));
            }
        }
        panel.controls.append_child(&fieldset)?;
    }
    let (pause, select) = pause_menu(doc, centre)?;
    panel.controls.append_child(&pause)?;
    listeners.extend(on_pause(panel, &select));
    let off = part(doc, "button", "turn-off")?;
    off.set_attribute("type", "button")?;
    off.set_attribute("data-key", "turn-off")?;
    off.set_text_content(Some(text::TURN_OFF));
    panel.controls.append_child(&off)?;
    listeners.extend(on_turn_off(panel, &off));
    Ok(())
}

/// Focuses the control whose `data-key` is `key` (compared, not put in a
/// selector: a topic name may hold any character).
fn focus_control(controls: &Element, key: &str) {
    let Ok(found) = controls.query_selector_all("[data-key]") else {
        return;
    };
    let wanted = elements::<web_sys::HtmlElement>(&found).find(|c| c.get_attribute("data-key").as_deref() == Some(key));
    if let Some(control) = wanted {
        let _ = control.focus();
    }
}

/// The nodes of `list` that are `T`s.
fn elements<T: JsCast>(list: &web_sys::NodeList) -> impl Iterator<Item = T> + '_ {
    (0..list.length()).filter_map(|i| list.item(i).and_then(|node| node.dyn_into::<T>().ok()))
}

/// `<label part="switch"><input type=checkbox> Label</label>`.
fn switch_row(doc: &Document, item: &Switch, kind: &str) -> Result<(Element, HtmlInputElement), JsValue> {
    let row = part(doc, "label", "switch")?;
    let input: HtmlInputElement = doc.create_element("input")?.unchecked_into();
    input.set_type("checkbox");
    input.set_checked(item.on);
    input.set_attribute("data-key", &key(kind, &item.name))?;
    input.set_attribute("data-name", &item.name)?;
    let label = doc.create_element("span")?;
    label.set_text_content(Some(&item.label));
    row.append_child(&input)?;
    row.append_child(&label)?;
    if item.fixed {
        input.set_disabled(true);
        let note = doc.create_element("span")?;
        note.set_class_name("note");
        note.set_text_content(Some(text::ALWAYS_SENT));
        row.append_child(&note)?;
    }
    Ok((row, input))
}

/// `<label>Pause <select>…</select></label>` and, when paused until a
/// time, that time in the person's own words (`toLocaleString`).
fn pause_menu(doc: &Document, centre: &Centre) -> Result<(Element, HtmlSelectElement), JsValue> {
    let wrap = part(doc, "div", "pause")?;
    let row = doc.create_element("label")?;
    let caption = doc.create_element("span")?;
    caption.set_text_content(Some(text::PAUSE));
    let select: HtmlSelectElement = doc.create_element("select")?.unchecked_into();
    select.set_attribute("data-key", "pause")?;
    let now = js_sys::Date::now() as i64;
    let chosen = centre.pause_choice(now);
    for choice in PauseChoice::ALL {
        let option = doc.create_element("option")?;
        option.set_attribute("value", choice.as_str())?;
        option.set_text_content(Some(choice.label()));
        if choice == chosen {
            option.set_attribute("selected", "")?;
        }
        select.append_child(&option)?;
    }
    row.append_child(&caption)?;
    row.append_child(&select)?;
    wrap.append_child(&row)?;
    if let Pause::Until(until) = centre.pause {
        if until > now {
            let date = js_sys::Date::new(&JsValue::from_f64(until as f64));
            let when = date.to_locale_string("default", &JsValue::UNDEFINED);
            let note = part(doc, "p", "paused-until")?;
            let mut line = String::from("Paused until ");
            line.push_str(&String::from(when));
            note.set_text_content(Some(&line));
            wrap.append_child(&note)?;
        }
    }
    Ok((wrap, select))
}

fn on_toggle(panel: &Rc<Panel>, input: &HtmlInputElement, kind: &'static str, name: &str) -> Option<Listener> {
    let (weak, input_ref, name) = (Rc::downgrade(panel), input.clone(), name.to_owned());
    Listener::new(input, "change", move |_| {
        let on = input_ref.checked();
        let change = if kind == "topic" {
            topic_change(&name, on)
        } else {
            category_change(&name, on)
        };
        send(weak.clone(), change, key(kind, &name));
    })
}

fn on_pause(panel: &Rc<Panel>, select: &HtmlSelectElement) -> Option<Listener> {
    let (weak, select_ref) = (Rc::downgrade(panel), select.clone());
    Listener::new(select, "change", move |_| {
        if let Some(choice) = PauseChoice::parse(&select_ref.value()) {
            send(weak.clone(), pause_change(choice), "pause".into());
        }
    })
}

fn on_turn_off(panel: &Rc<Panel>, button: &Element) -> Option<Listener> {
    let weak = Rc::downgrade(panel);
    Listener::new(button, "click", move |_| {
        let weak = weak.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(page) = weak.upgrade().and_then(|p| p.page.upgrade()) else {
                return;
            };
            let result = optin::unsubscribe(&page).await;
            drop(page);
            // Done: `unsubscribe` reloaded every centre (this one is gone).
            if let (Err(_), Some(panel)) = (result, weak.upgrade()) {
                panel.say(text::NOT_SAVED);
            }
        });
    })
}

/// Sends `change` with the device's proof; shows the server's answer, or
/// the previous state (the control goes back) and says it was not saved.
fn send(panel: std::rc::Weak<Panel>, change: Value, focus: String) {
    if let Some(panel) = panel.upgrade() {
        panel.say(text::SAVING);
    }
    wasm_bindgen_futures::spawn_local(async move {
        let Some(strong) = panel.upgrade() else { return };
        let Some(page) = strong.page.upgrade() else { return };
        let server = optin::server_of(&page).ok();
        drop(page);
        let possession = strong.state.borrow().possession.clone();
        drop(strong);
        let answer = match (server, possession) {
            (Some(server), Some((endpoint, auth))) => {
                let body = api::possession_body(&endpoint, &auth);
                if let Value::Object(members) = &change {
                    for (name, value) in members {
                        let _ = Reflect::set(&body, &JsValue::from_str(name), &to_js(value));
                    }
                }
                push::call(&server, "POST", api::PREFERENCES, Some(&body)).await.ok()
            }
            _ => None,
        };
        let Some(panel) = panel.upgrade() else { return };
        let saved = match answer {
            Some((200, json)) => Centre::read(&json),
            _ => None,
        };
        let (centre, line) = match saved {
            Some(centre) => (Some(centre), text::SAVED),
            None => (panel.state.borrow_mut().centre.take(), text::NOT_SAVED),
        };
        match centre {
            Some(centre) => show(&panel, centre, Some(&focus)),
            None => panel.clear(),
        }
        panel.say(line);
    });
}

/// The `data-key` of a control: unique in the panel.
fn key(kind: &str, name: &str) -> String {
    let mut key = String::from(kind);
    key.push(':');
    key.push_str(name);
    key
}

fn part(doc: &Document, tag: &str, part: &str) -> Result<Element, JsValue> {
    let element = doc.create_element(tag)?;
    element.set_attribute("part", part)?;
    Ok(element)
}
