//! Page-module tests in real headless browsers (Chromium and Firefox), run by
//! `cargo xtask test` through wasm-bindgen-test-runner. Each test clears
//! storage and removes what it added first.
#![cfg(all(target_arch = "wasm32", feature = "page"))]

#[path = "browser/forward.rs"]
mod forward;
#[path = "browser/hostile.rs"]
mod hostile;
#[path = "browser/placement.rs"]
mod placement;
#[path = "browser/privacy.rs"]
mod privacy;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/xss.rs"]
mod xss;
#[path = "browser/yes.rs"]
mod yes;

use askwell::web::page::Askwell;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn shows_the_entity_in_context_and_cools_off_after_not_now() {
    reset_page();
    let askwell = start(CHAT).await;
    assert!(askwell.track(
        "message_sent",
        js(r#"{ entity: { id: "bill", name: "Bill", avatar: "/bill.png" } }"#)
    ));
    assert_eq!(part_text("message").as_deref(), Some("Want to know when Bill replies?"));
    assert_eq!(
        part("message")
            .and_then(|m| m.query_selector("bdi").ok().flatten())
            .and_then(|bdi| bdi.text_content())
            .as_deref(),
        Some("Bill"),
        "the name is isolated"
    );
    assert_eq!(
        part("avatar").and_then(|img| img.get_attribute("src")).as_deref(),
        Some("/bill.png")
    );
    click_part("decline");
    assert!(prompt_host().is_none(), "prompt closed");
    let stored = local_storage()
        .get_item("askwell:v1:state")
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(stored.contains("\"dismissals\":1"), "cool-off persisted: {stored}");
    askwell.destroy();
    let again = start(CHAT).await;
    assert!(
        !again.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)),
        "cool-off holds after reload"
    );
    again.destroy();
}

#[wasm_bindgen_test]
async fn rejects_an_invalid_config_naming_every_field() {
    let config = js(
        r#"{ prompts: [{ id: "a", message: "Hi" }], rules: [{ prompt: "b", on: "x" }, { prompt: "a", when: { action: "x", count: 0, withinMinutes: 5 } }] }"#,
    );
    let error = Askwell::start(config, JsValue::UNDEFINED)
        .await
        .map(|_| ())
        .map_err(JsValue::from)
        .expect_err("invalid");
    let message = js_sys::Error::from(error).message().as_string().unwrap_or_default();
    assert!(message.contains("rules[0].prompt: no prompt has this id"), "{message}");
    assert!(
        message.contains("rules[1].when.count: expected a positive integer"),
        "{message}"
    );
}

#[wasm_bindgen_test]
async fn keyboard_escape_declines_and_focus_returns() {
    reset_page();
    let input = append_html("input", "");
    focus(&input);
    let askwell = start(CHAT).await;
    assert!(askwell.track("message_sent", JsValue::UNDEFINED));
    assert!(is_active(&input), "a banner does not take focus");
    press_key(&input, "N", "KeyN", true, true);
    assert_eq!(
        active_part().as_deref(),
        Some("prompt"),
        "the documented key moves focus in"
    );
    press_key_in_prompt("Escape", false);
    assert!(prompt_host().is_none(), "Escape means Not now");
    assert!(is_active(&input), "focus restored");
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn a_modal_keeps_tab_inside() {
    reset_page();
    let askwell = start(&CHAT.replace("message:", "placement: \"modal\", message:")).await;
    assert!(askwell.track("message_sent", JsValue::UNDEFINED));
    let panel = part("prompt").expect("panel");
    assert_eq!(panel.get_attribute("role").as_deref(), Some("dialog"));
    assert_eq!(panel.get_attribute("aria-modal").as_deref(), Some("true"));
    press_key_in_prompt("Tab", false);
    assert_eq!(
        active_part().as_deref(),
        Some("decline"),
        "Tab from the last button wraps to the first"
    );
    press_key_in_prompt("Tab", true);
    assert_eq!(active_part().as_deref(), Some("accept"), "Shift+Tab wraps back");
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn declarative_actions_on_elements_added_later() {
    reset_page();
    let askwell = start(CHAT).await;
    let button = append_html("button", "Send");
    for (name, value) in [
        ("data-askwell-action", "message_sent"),
        ("data-askwell-entity-id", "ann"),
        ("data-askwell-entity-name", "Ann"),
    ] {
        button.set_attribute(name, value).expect("attribute");
    }
    click(&button);
    assert_eq!(part_text("message").as_deref(), Some("Want to know when Ann replies?"));
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn corrupt_storage_is_discarded() {
    reset_page();
    local_storage().set_item("askwell:v1:state", "{not json").expect("set");
    let askwell = start(CHAT).await;
    assert!(askwell.track("message_sent", JsValue::UNDEFINED));
    askwell.destroy();
    local_storage()
        .set_item(
            "askwell:v1:state",
            r#"{"prompts":{"reply":{"dismissals":"x"}},"shown":[1,"a"]}"#,
        )
        .expect("set");
    let askwell = start(CHAT).await;
    assert!(!askwell.anonymous_id().is_empty());
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn full_or_disabled_storage_never_throws_and_never_storms() {
    reset_page();
    let restore = js_sys::Function::new_no_args(
        "const original = Storage.prototype.setItem; \
         Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError'); }; \
         return () => { Storage.prototype.setItem = original; };",
    )
    .call0(&JsValue::NULL)
    .expect("patch setItem");
    let askwell = start(CHAT).await;
    let shown = askwell.track("message_sent", JsValue::UNDEFINED);
    askwell.destroy();
    js_sys::Function::from(restore).call0(&JsValue::NULL).expect("restore");
    assert!(!shown, "a prompt whose showing cannot be remembered is not shown");

    js_sys::eval(
        "window.__own = Object.getOwnPropertyDescriptor(window, 'localStorage'); \
         Object.defineProperty(window, 'localStorage', { configurable: true, get() { throw new DOMException('denied', 'SecurityError'); } })",
    )
    .expect("disable");
    let result = Askwell::start(js(CHAT), JsValue::UNDEFINED)
        .await
        .map_err(JsValue::from);
    let shown = result
        .as_ref()
        .map(|askwell| askwell.track("message_sent", JsValue::UNDEFINED));
    js_sys::eval(
        "window.__own ? Object.defineProperty(window, 'localStorage', window.__own) : delete window.localStorage",
    )
    .expect("re-enable");
    assert_eq!(
        shown.ok(),
        Some(false),
        "starts without storage, shows nothing it cannot remember"
    );
    if let Ok(askwell) = result {
        askwell.destroy();
    }
}

#[wasm_bindgen_test]
async fn an_answer_in_another_tab_closes_the_prompt_here() {
    reset_page();
    let askwell = start(CHAT).await;
    assert!(askwell.track("message_sent", JsValue::UNDEFINED));
    let other_tab_state = r#"{"anonId":"x","prompts":{"reply":{"dismissals":1,"lastDismissed":1}},"shown":[1]}"#;
    dispatch_storage_event("askwell:v1:state", other_tab_state);
    assert!(prompt_host().is_none(), "dismissed in another tab");
    assert!(!askwell.track("message_sent", JsValue::UNDEFINED), "and respected here");
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn destroy_leaves_nothing_behind() {
    reset_page();
    let askwell = start(CHAT).await;
    assert!(askwell.track("message_sent", JsValue::UNDEFINED));
    askwell.destroy();
    assert!(prompt_host().is_none());
    reset_page();
    let button = append_html("button", "Send");
    button
        .set_attribute("data-askwell-action", "message_sent")
        .expect("attribute");
    click(&button);
    assert!(prompt_host().is_none(), "no listener survives destroy()");
}

#[wasm_bindgen_test]
async fn outcomes_reach_callbacks_and_dom_events() {
    reset_page();
    let askwell = start(CHAT).await;
    let seen: js_sys::Array = js("window.__seen = []").into();
    askwell.on(
        "shown",
        js("(d) => window.__seen.push('callback:' + d.prompt + ':' + d.variant + ':' + d.trigger)").into(),
    );
    let listener: js_sys::Function = js("(e) => window.__seen.push('event:' + e.detail.entity.name)").into();
    document()
        .add_event_listener_with_callback("askwell:dismissed", &listener)
        .expect("listen");
    askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#));
    click_part("decline");
    document()
        .remove_event_listener_with_callback("askwell:dismissed", &listener)
        .expect("unlisten");
    let seen: Vec<String> = seen.iter().filter_map(|v| v.as_string()).collect();
    assert_eq!(
        seen,
        vec![
            "callback:reply:default:message_sent".to_owned(),
            "event:Bill".to_owned()
        ]
    );
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn funnel_events_wait_in_storage_while_the_server_is_down() {
    reset_page();
    // Nothing listens on port 9: every send fails, nothing may be lost.
    let askwell = start(
        r#"{ server: "http://127.0.0.1:9",
             prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
             rules: [{ prompt: "reply", on: "message_sent" }] }"#,
    )
    .await;
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)));
    click_part("decline");
    askwell.convert("replied");
    let outbox = stored("askwell:v1:outbox");
    for expected in [
        r#""type":"prompt_shown","prompt":"reply","variant":"default","trigger":"message_sent""#,
        r#""type":"prompt_dismissed""#,
        r#""type":"conversion","prompt":"reply","variant":"default","trigger":"message_sent","name":"replied""#,
    ] {
        assert!(outbox.contains(expected), "{expected} in {outbox}");
    }
    sleep(3_000).await;
    let after = stored("askwell:v1:outbox");
    assert!(
        after.contains(r#""failures":1"#),
        "one failed send, backing off: {after}"
    );
    assert_eq!(after.matches(r#""type":"#).count(), 3, "all three kept: {after}");
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn a_held_out_device_is_counted_once_and_never_asked() {
    use askwell::experiment::{assign, Arm, Assignment};
    reset_page();
    let arms = [Arm {
        id: "default",
        weight: 1.0,
    }];
    let anon = (0..)
        .map(|i: u64| format!("{i:032x}"))
        .find(|id| matches!(assign(id, "reply", 0.5, &arms), Assignment::Holdout))
        .expect("some id is held out");
    local_storage()
        .set_item("askwell:v1:state", &format!(r#"{{"anonId":"{anon}"}}"#))
        .expect("seed state");
    let askwell = start(
        r#"{ server: "http://127.0.0.1:9",
             prompts: [{ id: "reply", holdout: 0.5, message: "Want to know when {entity.name} replies?" }],
             rules: [{ prompt: "reply", on: "message_sent" }] }"#,
    )
    .await;
    assert_eq!(askwell.anonymous_id(), anon);
    assert!(!askwell.track("message_sent", js("{}")), "the holdout is never asked");
    assert!(!askwell.track("message_sent", js("{}")));
    let outbox = stored("askwell:v1:outbox");
    let exposure = r#""type":"prompt_shown","prompt":"reply","variant":"holdout","trigger":"message_sent""#;
    assert_eq!(
        outbox.matches(exposure).count(),
        1,
        "one exposure however often it triggers: {outbox}"
    );
    askwell.destroy();
}
