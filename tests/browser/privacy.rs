//! Consent, Global Privacy Control, telemetry off and server-less pages:
//! what Askwell stores and sends in each case (the fake server of
//! `hostile.rs` records every request).

use super::hostile::{patch, restore, sent, FAKE_SERVER, FUNNEL_CHAT};
use super::support::*;
use askwell::web::page::Askwell;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

const BILL: &str = r#"{ entity: { id: "bill", name: "Bill" } }"#;

/// The keys Askwell left in local and session storage.
fn storage_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let window = web_sys::window().expect("window");
    let stores = [window.local_storage(), window.session_storage()];
    for storage in stores.into_iter().filter_map(|s| s.ok().flatten()) {
        for i in 0..storage.length().unwrap_or(0) {
            keys.extend(storage.key(i).ok().flatten());
        }
    }
    keys
}

fn with(config: &str, extra: &str) -> String {
    config.replacen('{', &format!("{{ {extra},"), 1)
}

#[wasm_bindgen_test]
async fn with_consent_required_nothing_is_stored_sent_or_shown_until_consent() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let askwell = start(&with(FUNNEL_CHAT, r#"consent: "required""#)).await;
    assert!(!askwell.track("message_sent", js(BILL)), "no prompt before consent");
    askwell.convert("replied");
    sleep(2_500).await;
    askwell.destroy();
    assert!(storage_keys().is_empty(), "nothing stored: {:?}", storage_keys());
    assert!(sent().is_empty(), "nothing sent: {:?}", sent());

    let askwell = start(&with(FUNNEL_CHAT, r#"consent: "required""#)).await;
    askwell.consent(true);
    assert_eq!(stored("askwell:v1:consent"), "given");
    assert!(askwell.track("message_sent", js(BILL)), "prompts after consent");
    sleep(2_500).await;
    assert!(
        sent().iter().any(|r| r.contains(r#""type":"prompt_shown""#)),
        "the funnel after consent: {:?}",
        sent()
    );

    askwell.convert("replied");
    askwell.consent(false);
    assert!(prompt_host().is_none(), "the prompt closes");
    assert_eq!(storage_keys(), ["askwell:v1:consent"], "only the answer is kept");
    js("window.__sent.length = 0");
    assert!(!askwell.track("message_sent", js(r#"{ entity: { id: "ann", name: "Ann" } }"#)));
    sleep(2_500).await;
    assert!(
        sent().is_empty(),
        "the queued conversion was deleted, not sent: {:?}",
        sent()
    );
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn global_privacy_control_limits_the_funnel_to_what_the_app_declares_necessary() {
    reset_page();
    let undo = patch(
        "Object.defineProperty(navigator, 'globalPrivacyControl', { configurable: true, get: () => true }); \
         return () => { delete navigator.globalPrivacyControl; };",
    );
    let config = with(FUNNEL_CHAT, r#"telemetry: { necessary: ["prompt_dismissed"] }"#);
    let askwell = start(&config).await;
    assert!(askwell.track("message_sent", js(BILL)));
    click_part("decline");
    askwell.convert("replied");
    let outbox = stored("askwell:v1:outbox");
    assert!(outbox.contains(r#""type":"prompt_dismissed""#), "{outbox}");
    assert!(
        !outbox.contains("prompt_shown") && !outbox.contains("conversion"),
        "{outbox}"
    );
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn without_a_server_or_with_telemetry_off_no_request_is_made() {
    for config in [
        // No server in the config.
        r#"{ prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
             rules: [{ prompt: "reply", on: "message_sent" }] }"#
            .to_owned(),
        with(FUNNEL_CHAT, "telemetry: false"),
    ] {
        reset_page();
        let undo = patch(FAKE_SERVER);
        let askwell = start(&config).await;
        assert!(askwell.track("message_sent", js(BILL)), "prompts still work");
        click_part("decline");
        askwell.convert("replied");
        sleep(2_500).await;
        askwell.destroy();
        assert!(sent().is_empty(), "{config}: {:?}", sent());
        assert_eq!(stored("askwell:v1:outbox"), "", "nothing queued");
        restore(&undo);
    }
}

#[wasm_bindgen_test]
async fn an_empty_server_means_this_origin() {
    reset_page();
    let undo = patch(FAKE_SERVER);
    let config = FUNNEL_CHAT.replace(r#"server: "https://askwell.test","#, r#"server: "","#);
    let askwell = Askwell::start(js(&config), JsValue::UNDEFINED)
        .await
        .map_err(JsValue::from)
        .expect("\"\" is accepted");
    assert!(askwell.track("message_sent", js(BILL)));
    sleep(2_500).await;
    assert!(
        sent().iter().any(|r| r.starts_with("POST /v1/events ")),
        "events go to this origin: {:?}",
        sent()
    );
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn debug_mode_says_why_a_prompt_is_held_back() {
    reset_page();
    let skipped = collect_events("skipped", "__skipped");
    let askwell = start(&with(CHAT, "debug: true")).await;
    assert!(askwell.track("message_sent", js(BILL)));
    click_part("decline");
    assert!(!askwell.track("message_sent", js(BILL)));
    let seen = collected("__skipped");
    assert_eq!(
        seen.last().map(String::as_str),
        Some(r#"{"prompt":"reply","trigger":"message_sent","reason":"cooling-off"}"#),
        "{seen:?}"
    );
    askwell.destroy();
    forget_events("skipped", &skipped);
}

/// `FAKE_SERVER`, answering each request only after 300 ms.
const SLOW_SERVER: &str = "window.__sent = []; const original = window.fetch; \
     window.fetch = function (url, init) { \
       window.__sent.push(((init && init.method) || 'GET') + ' ' + url + ' ' + ((init && init.body) || '')); \
       return new Promise((resolve) => setTimeout(() => resolve(new Response('{\"accepted\":1}', \
         { status: 202, headers: { 'content-type': 'application/json' } })), 300)); \
     }; \
     return () => { window.fetch = original; };";

#[wasm_bindgen_test]
async fn consent_withdrawn_while_a_batch_is_in_flight_leaves_only_the_answer() {
    reset_page();
    let undo = patch(SLOW_SERVER);
    let askwell = start(FUNNEL_CHAT).await;
    assert!(askwell.track("message_sent", js(BILL)));
    click_part("decline");
    sleep(2_100).await;
    assert!(!sent().is_empty(), "the batch is on its way");
    askwell.consent(false);
    sleep(500).await;
    assert_eq!(
        storage_keys(),
        ["askwell:v1:consent"],
        "the answer to the batch stores nothing after the withdrawal"
    );
    askwell.destroy();
    restore(&undo);
}
