//! Service-worker module tests inside a real service worker global scope.
#![cfg(all(target_arch = "wasm32", feature = "sw"))]

use askwell::model::Incoming;
use askwell::model::{route_click, ClickRoute};
use askwell::web::sw::read_push;
use wasm_bindgen_test::*;
use web_sys::{PushEvent, PushEventInit};

wasm_bindgen_test_configure!(run_in_service_worker);

fn push_with(data: &str) -> PushEvent {
    let init = PushEventInit::new();
    init.set_data(&data.into());
    PushEvent::new_with_event_init_dict("push", &init).expect("PushEvent is constructible in a service worker")
}

/// What the listener hands the wasm: the push's data as text, if any.
fn text_of(event: &PushEvent) -> Option<String> {
    event.data().map(|data| data.text())
}

#[wasm_bindgen_test]
fn shows_an_askwell_payload_with_its_actions() {
    let push = push_with(
        r#"{"askwell":1,"title":"Bill replied","body":"See you at 6","url":"/chat","actions":[{"action":"reply","title":"Reply","url":"/chat#reply"}],"delivery":"n:1"}"#,
    );
    let action = read_push(text_of(&push).as_deref(), "fallback");
    let Incoming::Show(payload, raw) = action else {
        panic!("expected Show, got {action:?}")
    };
    assert_eq!(
        (payload.title.as_str(), payload.body.as_str()),
        ("Bill replied", "See you at 6")
    );
    assert_eq!(payload.click_url("reply"), Some("/chat#reply"));
    assert_eq!(
        raw.get("delivery").and_then(|d| d.as_str()),
        Some("n:1"),
        "the raw payload travels as notification data"
    );
}

#[wasm_bindgen_test]
fn falls_back_to_a_generic_notification_for_a_malformed_askwell_payload() {
    let push = push_with(r#"{"askwell":1,"title":42,"delivery":"n:2"}"#);
    let Incoming::Show(payload, raw) = read_push(text_of(&push).as_deref(), "New activity") else {
        panic!("a malformed Askwell push must still show something")
    };
    assert_eq!(payload.title, "New activity");
    assert_eq!(
        raw.get("delivery").and_then(|d| d.as_str()),
        Some("n:2"),
        "still reportable"
    );
}

#[wasm_bindgen_test]
fn ignores_pushes_that_are_not_askwells() {
    assert_eq!(
        read_push(text_of(&push_with(r#"{"title":"app's own"}"#)).as_deref(), "x"),
        Incoming::Ignore
    );
    assert_eq!(
        read_push(text_of(&push_with("not json")).as_deref(), "x"),
        Incoming::Ignore
    );
    let empty = PushEvent::new("push").expect("PushEvent");
    assert_eq!(read_push(text_of(&empty).as_deref(), "x"), Incoming::Ignore);
}

#[wasm_bindgen_test]
fn routes_clicks_against_this_workers_origin() {
    let scope: web_sys::ServiceWorkerGlobalScope = wasm_bindgen::JsCast::unchecked_into(js_sys::global());
    let origin = scope.location().origin();
    let thread = format!("{origin}/thread/1");
    let inbox = format!("{origin}/inbox");
    assert_eq!(
        route_click(&thread, &[inbox.as_str(), thread.as_str()]),
        ClickRoute::Focus(1)
    );
    assert_eq!(route_click(&thread, &[inbox.as_str()]), ClickRoute::Navigate(0));
    assert_eq!(route_click(&thread, &[]), ClickRoute::Open);
}

#[wasm_bindgen_test]
fn a_malformed_askwell_push_is_still_reported_when_shown_and_clicked() {
    use askwell::web::sw::{click_to_handle, push_to_show};
    use js_sys::Reflect;
    let get = |object: &wasm_bindgen::JsValue, key: &str| Reflect::get(object, &key.into()).expect("an object");
    let config: wasm_bindgen::JsValue = js_sys::Object::new().into();
    let push = Some(r#"{"askwell":1,"title":42,"delivery":"n:2"}"#.to_owned());
    let shown = push_to_show(push, config.clone(), None, 1.0);
    assert!(
        get(&shown, "shown").is_object(),
        "its notification_shown report is sent"
    );
    let data = get(&get(&shown, "options"), "data");
    let click = click_to_handle(data, None, config, 2.0);
    assert!(
        get(&click, "report").is_object(),
        "its notification_clicked report is sent"
    );
    assert_eq!(
        get(&click, "url").as_string().as_deref(),
        Some("./"),
        "a click opens the worker's scope"
    );
}
