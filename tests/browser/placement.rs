//! Prompts that fit the page and the person: a banner that never takes focus
//! from where someone types, an inline prompt in the flow next to its anchor,
//! long names that wrap, and names isolated for bidirectional text.

use super::support::*;
use wasm_bindgen_test::*;

const BILL: &str = r#"{ entity: { id: "bill", name: "Bill" } }"#;

#[wasm_bindgen_test]
async fn a_banner_never_takes_focus_from_where_the_person_types() {
    reset_page();
    let message_box = append_html("textarea", "");
    focus(&message_box);
    let askwell = start(CHAT).await;
    // The person pressed Enter to send; the next key they type is a space.
    assert!(askwell.track("message_sent", js(BILL)));
    assert!(is_active(&message_box), "the caret stays in the message box");
    assert_eq!(active_part(), None, "no button of the prompt has focus");
    sleep(300).await;
    assert_eq!(
        part_text("announcement").as_deref(),
        Some("Want to know when Bill replies?"),
        "the question is announced through the live region"
    );
    assert_eq!(
        part("announcement").and_then(|a| a.get_attribute("role")).as_deref(),
        Some("status")
    );
    assert_eq!(
        part("prompt")
            .and_then(|p| p.get_attribute("aria-keyshortcuts"))
            .as_deref(),
        Some("Alt+Shift+N")
    );
    press_key(&message_box, "N", "KeyN", true, true);
    assert_eq!(
        active_part().as_deref(),
        Some("prompt"),
        "the key focuses the prompt itself, so the next key cannot answer by accident"
    );
    press_key_in_prompt("Escape", false);
    assert!(prompt_host().is_none(), "Escape means Not now");
    assert!(is_active(&message_box), "focus returns to the message box");
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn a_prompt_closed_from_elsewhere_leaves_focus_where_it_is() {
    reset_page();
    let message_box = append_html("textarea", "");
    focus(&message_box);
    let askwell = start(CHAT).await;
    assert!(askwell.track("message_sent", js(BILL)));
    let search = append_html("input", "");
    focus(&search);
    askwell.destroy();
    assert!(
        is_active(&search),
        "destroy() does not pull focus to where it was before"
    );
}

fn spacer(height_px: u32) -> web_sys::Element {
    let div = document().create_element("div").expect("div");
    div.set_attribute("data-test", "").expect("attribute");
    div.set_attribute("style", &format!("height:{height_px}px"))
        .expect("style");
    div
}

#[wasm_bindgen_test]
async fn an_inline_prompt_sits_in_the_flow_after_its_anchor_and_follows_it() {
    reset_page();
    let anchor = append_html("button", "Tell me when it's back");
    anchor.set_id("restock");
    let below = append_html("p", "Product details");
    let askwell = start(
        r##"{ prompts: [{ id: "restock", placement: "inline", anchor: "#restock",
                          message: "Get a notification when {entity.name} is back?" }],
              rules: [{ prompt: "restock", on: "restock_interest" }] }"##,
    )
    .await;
    assert!(askwell.track(
        "restock_interest",
        js(r#"{ entity: { id: "p", name: "Trail runner" } }"#)
    ));
    let host = prompt_host().expect("a prompt");
    assert_eq!(anchor.next_element_sibling(), Some(host), "right after its anchor");
    let panel = part("prompt").expect("panel").get_bounding_client_rect();
    assert!(
        below.get_bounding_client_rect().top() >= panel.bottom(),
        "the content below moved down instead of being covered"
    );
    // The layout changes above the anchor.
    let body = document().body().expect("body");
    body.insert_before(&spacer(120), Some(&anchor)).expect("insert");
    let moved = part("prompt").expect("panel").get_bounding_client_rect();
    assert!(
        (moved.top() - panel.top() - 120.0).abs() < 1.0,
        "the prompt moved with its anchor: {} → {}",
        panel.top(),
        moved.top()
    );
    askwell.destroy();
}

#[wasm_bindgen_test]
async fn long_names_wrap_inside_the_viewport_and_are_bidi_isolated() {
    reset_page();
    let askwell = start(CHAT).await;
    // A user-chosen name: an unterminated right-to-left override, then no spaces at all.
    let name = format!("\u{202e}{}", "W".repeat(300));
    let props = js(&format!(r#"{{ entity: {{ id: "x", name: "{name}" }} }}"#));
    assert!(askwell.track("message_sent", props));
    let window = web_sys::window().expect("window");
    let viewport = window.inner_width().ok().and_then(|w| w.as_f64()).expect("width");
    let panel = part("prompt").expect("panel").get_bounding_client_rect();
    assert!(
        panel.left() >= 0.0 && panel.right() <= viewport,
        "the prompt stays on screen: {}..{} of {viewport}",
        panel.left(),
        panel.right()
    );
    let message = part("message").expect("message");
    let bdi = message
        .query_selector("bdi")
        .ok()
        .flatten()
        .expect("the name in a <bdi>");
    assert_eq!(bdi.text_content().as_deref(), Some(name.as_str()));
    let style = window.get_computed_style(&bdi).ok().flatten().expect("style");
    assert_eq!(
        style.get_property_value("unicode-bidi").ok().as_deref(),
        Some("isolate"),
        "laid out on its own: the override ends with the name"
    );
    assert_eq!(
        message.text_content(),
        Some(format!("Want to know when {name} replies?")),
        "the fixed copy is outside the isolate, with no invisible characters added"
    );
    let bdi_count = message.query_selector_all("bdi").map(|l| l.length()).unwrap_or(0);
    assert_eq!(bdi_count, 1);
    askwell.destroy();
}
