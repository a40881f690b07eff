//! Page-module tests in real headless browsers (Chromium and Firefox), run by
//! `cargo xtask test` through wasm-bindgen-test-runner.
#![cfg(all(target_arch = "wasm32", feature = "page"))]

use askwell::web::page::Askwell;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use web_sys::{Document, Element, HtmlElement};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

fn clear_storage() {
    let storage = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .expect("localStorage");
    storage.clear().expect("clear");
}

fn js(source: &str) -> JsValue {
    js_sys::eval(&format!("({source})")).expect("valid JS literal")
}

async fn chat_engine() -> Askwell {
    let config = js(r#"{
        prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
        rules: [{ prompt: "reply", on: "message_sent" }]
    }"#);
    Askwell::start(config)
        .await
        .map_err(JsValue::from)
        .expect("valid config")
}

fn prompt_part(part: &str) -> Option<Element> {
    let host = document().query_selector("askwell-prompt").ok()??;
    host.shadow_root()?.query_selector(&format!("[part~={part}]")).ok()?
}

#[wasm_bindgen_test]
async fn shows_the_entity_name_as_text_and_cools_off_after_not_now() {
    clear_storage();
    let askwell = chat_engine().await;
    let entity = js(r#"{ entity: { id: "u1", name: "<img src=x onerror=window.pwned=1>" } }"#);
    assert!(askwell
        .track("message_sent", entity.clone())
        .map_err(JsValue::from)
        .expect("track"));
    let message = prompt_part("message").expect("message rendered");
    assert_eq!(
        message.text_content().as_deref(),
        Some("Want to know when <img src=x onerror=window.pwned=1> replies?")
    );
    assert!(
        message.first_element_child().is_none(),
        "no element was created from the name"
    );

    let decline: HtmlElement = prompt_part("decline")
        .expect("decline button")
        .dyn_into()
        .expect("html");
    decline.click();
    assert!(
        document().query_selector("askwell-prompt").expect("query").is_none(),
        "prompt closed"
    );
    assert!(
        !askwell
            .track("message_sent", entity)
            .map_err(JsValue::from)
            .expect("track"),
        "cool-off holds"
    );
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn rejects_an_invalid_config_naming_the_field() {
    let config = js(r#"{ prompts: [{ id: "a", message: "Hi" }], rules: [{ prompt: "b", on: "x" }] }"#);
    let error = Askwell::start(config)
        .await
        .map(|_| ())
        .map_err(JsValue::from)
        .expect_err("invalid");
    let message = js_sys::Error::from(error).message().as_string().unwrap_or_default();
    assert!(message.contains("rules[0].prompt"), "{message}");
}

#[wasm_bindgen_test]
async fn destroy_removes_the_prompt() {
    clear_storage();
    let askwell = chat_engine().await;
    assert!(askwell
        .track("message_sent", JsValue::UNDEFINED)
        .map_err(JsValue::from)
        .expect("track"));
    askwell.destroy();
    assert!(document().query_selector("askwell-prompt").expect("query").is_none());
}
