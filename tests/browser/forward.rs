//! Forwarded actions (config `forward`): what reaches the server about a
//! signed-in user. Only listed actions, only with a user identified with a
//! proof, only what consent allows, and of each only its name, time and
//! entity id (the fake server of `hostile.rs` records every request).

use super::hostile::{patch, restore, FAKE_SERVER};
use super::support::*;
use askwell::web::page::Askwell;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

/// The shop: a prompt on `message_sent`, `added_to_cart` and
/// `checkout_started` forwarded.
const SHOP: &str = r#"{ server: "https://askwell.test",
    prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
    rules: [{ prompt: "reply", on: "message_sent" }],
    forward: ["added_to_cart", "checkout_started"] }"#;

const AT: &str = "1700000000000";

fn with(config: &str, extra: &str) -> String {
    config.replacen('{', &format!("{{ {extra},"), 1)
}

async fn visit(config: &str) -> Askwell {
    let clock = js(&format!("{{ now: () => {AT} }}"));
    Askwell::start(js(config), clock)
        .await
        .map_err(JsValue::from)
        .expect("valid config")
}

/// Each event posted to `/v1/events`, as JSON text (members in sent order).
fn posted_events() -> Vec<String> {
    let list = js_sys::eval(
        "window.__sent.filter((r) => r.startsWith('POST ') && r.includes('/v1/events {')) \
           .flatMap((r) => JSON.parse(r.slice(r.indexOf(' {') + 1)).events).map((e) => JSON.stringify(e))",
    )
    .expect("events");
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}

fn actions() -> Vec<String> {
    posted_events()
        .into_iter()
        .filter(|e| e.contains(r#""type":"action""#))
        .collect()
}

fn traits_sent() -> Vec<String> {
    posted_events()
        .into_iter()
        .filter(|e| e.contains(r#""type":"traits""#))
        .collect()
}

#[wasm_bindgen_test]
async fn a_forwarded_action_reaches_the_server_with_only_its_name_time_key_and_the_proof() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(&with(
        SHOP,
        r#"user: { id: "u1", proof: "ab12", traits: { plan: "pro" } }"#,
    ))
    .await;
    let props = r#"{ entity: { id: "cart-9", name: "Private Name", avatar: "/me.png" }, topic: "cart:9" }"#;
    askwell.track("added_to_cart", js(props));
    let button = append_html("button", "Checkout");
    button
        .set_attribute("data-askwell-action", "checkout_started")
        .expect("attribute");
    click(&button);
    let outbox = stored("askwell:v1:outbox");
    assert!(
        outbox.contains(r#""type":"action""#) && !outbox.contains("ab12"),
        "queued in the outbox, without the proof: {outbox}"
    );
    sleep(2_500).await;
    let anon = askwell.anonymous_id();
    // The config's traits were queued first, at start (event 1).
    assert_eq!(traits_sent().len(), 1, "{:?}", posted_events());
    assert_eq!(
        actions(),
        [
            format!(
                r#"{{"id":"{anon}-{AT}-2","type":"action","name":"added_to_cart","key":"cart-9","user":"u1","at":{AT},"userProof":"ab12"}}"#
            ),
            format!(
                r#"{{"id":"{anon}-{AT}-3","type":"action","name":"checkout_started","user":"u1","at":{AT},"userProof":"ab12"}}"#
            ),
        ],
        "name, time, entity id, the user and proof; nothing else of the action: {:?}",
        posted_events()
    );
    assert!(!stored("askwell:v1:outbox").contains("action"), "settled by the 202");
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn an_action_not_listed_in_forward_is_never_sent() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(&with(SHOP, r#"user: { id: "u1", proof: "ab12" }"#)).await;
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)));
    askwell.track("viewed_item", js(r#"{ entity: { id: "sku-1" } }"#));
    sleep(2_500).await;
    let events = posted_events();
    assert!(
        events.iter().any(|e| e.contains(r#""type":"prompt_shown""#)),
        "the funnel still goes: {events:?}"
    );
    assert!(
        actions().is_empty() && !events.iter().any(|e| e.contains("sku-1") || e.contains("u1")),
        "{events:?}"
    );
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn without_a_proven_identity_or_consent_nothing_is_forwarded() {
    for config in [
        SHOP.to_owned(),
        with(SHOP, r#"user: { id: "u1" }"#),
        with(SHOP, r#"user: { id: "u1", proof: "ab12" }, telemetry: false"#),
        with(
            SHOP,
            r#"user: { id: "u1", proof: "ab12" }, telemetry: { send: "necessary", necessary: ["prompt_shown"] }"#,
        ),
    ] {
        reset_page();
        let undo = patch(FAKE_SERVER);
        let askwell = visit(&config).await;
        askwell.track("added_to_cart", js(r#"{ entity: { id: "cart-9" } }"#));
        sleep(2_300).await;
        assert!(actions().is_empty(), "{config}: {:?}", posted_events());
        assert!(
            !stored("askwell:v1:outbox").contains("action"),
            "{config}: nothing queued"
        );
        askwell.destroy();
        restore(&undo);
    }

    // Consent required: nothing until consent(true); an identify() with a
    // proof signs the user in for the actions after it.
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(&with(SHOP, r#"consent: "required""#)).await;
    askwell.consent(true);
    askwell.track("added_to_cart", js(r#"{ entity: { id: "before" } }"#));
    // Not awaited: the page has no service worker, so its subscription
    // lookup never settles; the user is signed in at once.
    let _ = askwell.identify("u2".into(), js(r#"{ proof: "cd34" }"#));
    askwell.track("added_to_cart", js(r#"{ entity: { id: "after" } }"#));
    sleep(2_500).await;
    let sent = actions();
    assert_eq!(sent.len(), 1, "{:?}", posted_events());
    assert!(
        sent[0].contains(r#""key":"after","user":"u2""#) && sent[0].contains(r#""userProof":"cd34""#),
        "{sent:?}"
    );
    askwell.consent(false);
    js("window.__sent.length = 0");
    askwell.track("added_to_cart", js(r#"{ entity: { id: "refused" } }"#));
    sleep(2_300).await;
    assert!(actions().is_empty(), "stopped by the refusal: {:?}", posted_events());
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn identify_sends_traits_once_with_the_proof_and_again_only_when_they_change() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(SHOP).await;
    // Not awaited: the page has no service worker, so its subscription
    // lookup never settles; the traits are queued at once.
    let _ = askwell.identify(
        "u1".into(),
        js(r#"{ proof: "ab12", traits: { plan: "pro", seats: 3, trial: null } }"#),
    );
    let outbox = stored("askwell:v1:outbox");
    assert!(
        outbox.contains(r#""type":"traits""#) && !outbox.contains("ab12"),
        "queued in the outbox, without the proof: {outbox}"
    );
    sleep(2_500).await;
    let anon = askwell.anonymous_id();
    assert_eq!(
        traits_sent(),
        [format!(
            r#"{{"id":"{anon}-{AT}-1","type":"traits","user":"u1","at":{AT},"traits":{{"plan":"pro","seats":3,"trial":null}},"userProof":"ab12"}}"#
        )],
        "{:?}",
        posted_events()
    );
    let _ = askwell.identify(
        "u1".into(),
        js(r#"{ proof: "ab12", traits: { seats: 3, trial: null, plan: "pro" } }"#),
    );
    askwell.destroy();

    // A later page load that identifies with the same traits sends nothing.
    let again = visit(&with(
        SHOP,
        r#"user: { id: "u1", proof: "ab12", traits: { plan: "pro", seats: 3, trial: null } }"#,
    ))
    .await;
    sleep(2_500).await;
    assert_eq!(traits_sent().len(), 1, "{:?}", posted_events());

    // Changed traits go again, with the proof.
    let _ = again.identify(
        "u1".into(),
        js(r#"{ proof: "ab12", traits: { plan: "team", seats: 3 } }"#),
    );
    sleep(2_500).await;
    let sent = traits_sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[1].contains(r#""traits":{"plan":"team","seats":3},"userProof":"ab12""#),
        "{sent:?}"
    );
    assert!(
        !stored("askwell:v1:outbox").contains(r#""type":"traits""#),
        "settled by the 202"
    );
    again.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn identify_with_a_bad_trait_rejects_naming_it_and_changes_nothing() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(SHOP).await;
    let long = "x".repeat(201);
    let promise = askwell.identify(
        "u1".into(),
        js(&format!(
            r#"{{ proof: "ab12", traits: {{ plan: "{long}", tags: ["a"], ok: 1 }} }}"#
        )),
    );
    let error = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect_err("identify rejects");
    let message = js_sys::Reflect::get(&error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_default();
    assert_eq!(
        message,
        "traits.plan: a string of at most 200 bytes; \
         traits.tags: expected a string, number, boolean or null (no objects or arrays)"
    );
    askwell.track("added_to_cart", js(r#"{ entity: { id: "cart-9" } }"#));
    sleep(2_300).await;
    assert!(
        traits_sent().is_empty() && actions().is_empty(),
        "nothing queued, no one signed in: {:?}",
        posted_events()
    );
    assert!(!stored("askwell:v1:outbox").contains(r#""type":"traits""#));
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn traits_wait_for_consent_and_follow_the_telemetry_settings() {
    const USER: &str = r#"user: { id: "u1", proof: "ab12", traits: { plan: "pro" } }"#;
    for config in [
        with(SHOP, r#"user: { id: "u1", traits: { plan: "pro" } }"#),
        with(SHOP, &format!("{USER}, telemetry: false")),
        with(
            SHOP,
            &format!(r#"{USER}, telemetry: {{ send: "necessary", necessary: ["action"] }}"#),
        ),
    ] {
        reset_page();
        let undo = patch(FAKE_SERVER);
        let askwell = visit(&config).await;
        sleep(2_300).await;
        assert!(traits_sent().is_empty(), "{config}: {:?}", posted_events());
        askwell.destroy();
        restore(&undo);
    }

    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = visit(&with(SHOP, &format!(r#"{USER}, consent: "required""#))).await;
    sleep(2_300).await;
    assert!(traits_sent().is_empty(), "before consent: {:?}", posted_events());
    assert!(!stored("askwell:v1:outbox").contains(r#""type":"traits""#));
    askwell.consent(true);
    sleep(2_500).await;
    let sent = traits_sent();
    assert_eq!(sent.len(), 1, "after consent(true): {:?}", posted_events());
    assert!(
        sent[0].contains(r#""traits":{"plan":"pro"},"userProof":"ab12""#),
        "{sent:?}"
    );
    askwell.destroy();
    restore(&undo);
}
