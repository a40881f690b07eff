//! A "Yes" is never lost: when the push service does not answer, the prompt
//! says so in its own UI, and a later visit finishes the subscription (with
//! backoff) while permission is granted.
//!
//! The push service is someone else's (FCM, Mozilla's autopush): here it is
//! a stand-in behind `pushManager` that fails or succeeds on demand, with
//! notifications granted; askwell-server is the fake `fetch` of `hostile.rs`
//! extended with the subscription routes. The real push path is covered end
//! to end in `tests/e2e/push-firefox.test.mjs`.

use super::hostile::{patch, restore, sent};
use super::support::*;
use askwell::web::page::Askwell;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

/// Notifications granted; `pushManager.subscribe()` rejects while
/// `window.__pushFails` is true (an unreachable push service) and otherwise
/// returns a subscription; `fetch` is a fake askwell-server recording
/// requests in `window.__sent`. Returns the undo function.
const GRANTED_PUSH: &str = "window.__sent = []; window.__pushFails = true; \
  const permission = Object.getOwnPropertyDescriptor(Notification, 'permission'); \
  const request = Notification.requestPermission; \
  const fetch = window.fetch; \
  Object.defineProperty(Notification, 'permission', { configurable: true, get: () => 'granted' }); \
  Notification.requestPermission = () => Promise.resolve('granted'); \
  let current = null; \
  const made = () => { const s = Object.create(PushSubscription.prototype); \
    s.toJSON = () => ({ endpoint: 'https://push.example.net/send/1', expirationTime: null, \
      keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' } }); \
    s.unsubscribe = () => { current = null; return Promise.resolve(true); }; return s; }; \
  const manager = { getSubscription: () => Promise.resolve(current), \
    subscribe: () => window.__pushFails ? Promise.reject(new DOMException('push service not available', 'AbortError')) : Promise.resolve(current = made()) }; \
  const container = Object.create(ServiceWorkerContainer.prototype); \
  Object.defineProperty(container, 'ready', { value: Promise.resolve({ pushManager: manager }) }); \
  Object.defineProperty(navigator, 'serviceWorker', { configurable: true, get: () => container }); \
  window.fetch = function (url, init) { \
    const method = (init && init.method) || 'GET'; \
    window.__sent.push(method + ' ' + url + ' ' + ((init && init.body) || '')); \
    const answer = (status, body) => Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })); \
    if (url.endsWith('/v1/vapid-public-key')) return answer(200, { publicKey: 'BDd3_hVL9fZi9Ybo2UUzA284WG5FZR30_95YeZJsiApwXKpNcF1rRPF3foIiBHXRdJI2Qhumhf6_LFTeZaNndIo' }); \
    if (url.endsWith('/v1/subscriptions/lookup')) return answer(404, { error: { code: 'not_found', message: 'unknown' } }); \
    if (url.endsWith('/v1/subscriptions')) return answer(201, {}); \
    return answer(202, { accepted: 1 }); }; \
  return () => { Object.defineProperty(Notification, 'permission', permission); \
    Notification.requestPermission = request; delete navigator.serviceWorker; window.fetch = fetch; };";

const TOPIC_CHAT: &str = r#"{ server: "https://askwell.test",
    prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?", topic: "thread:{entity.id}" }],
    rules: [{ prompt: "reply", on: "message_sent" }] }"#;

async fn visit(options: &JsValue) -> Askwell {
    Askwell::start(js(TOPIC_CHAT), options.clone())
        .await
        .map_err(JsValue::from)
        .expect("valid config")
}

/// Runs JS statements.
fn run(source: &str) {
    js_sys::eval(source).expect("valid JS");
}

/// The `POST /v1/subscriptions` requests the fake server received.
fn registrations() -> Vec<String> {
    sent()
        .into_iter()
        .filter(|r| r.starts_with("POST https://askwell.test/v1/subscriptions {"))
        .collect()
}

#[wasm_bindgen_test]
async fn a_yes_whose_subscription_fails_says_so_and_a_later_visit_finishes_it() {
    reset_page();
    let undo = patch(GRANTED_PUSH);
    run("window.__now = 1e12");
    let options = js("{ now: () => window.__now }");
    let errors = collect_events("error", "__errorsSeen");
    let askwell = visit(&options).await;
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)));
    click_part("accept");
    assert_eq!(
        part_text("message").as_deref(),
        Some("Turning on notifications…"),
        "the prompt says what it is doing"
    );
    assert!(
        part("accept").is_none() && part("decline").is_none(),
        "no second answer"
    );
    sleep(300).await;
    assert_eq!(
        part_text("message").as_deref(),
        Some("Notifications could not be turned on. We will try again on your next visit."),
        "and that it could not, instead of vanishing"
    );
    assert_eq!(
        part_text("announcement").as_deref(),
        part_text("message").as_deref(),
        "announced"
    );
    assert!(
        collected("__errorsSeen").iter().any(|e| e.contains("subscribe-failed")),
        "the app is told too: {:?}",
        collected("__errorsSeen")
    );
    click_part("close");
    assert!(prompt_host().is_none(), "dismissible");
    let state = stored("askwell:v1:state");
    assert!(
        state.contains(r#""pending":["thread:bill"],"credit":["reply","default"]"#),
        "{state}"
    );
    askwell.destroy();

    // 30 s later: inside the first backoff step, even with the push service back.
    run("window.__pushFails = false; window.__now += 30000; window.__sent.length = 0");
    let soon = visit(&options).await;
    sleep(300).await;
    assert!(registrations().is_empty(), "backs off: {:?}", sent());
    soon.destroy();

    // Two minutes after the failure: the Yes is finished, silently.
    run("window.__now += 90000");
    let later = visit(&options).await;
    sleep(300).await;
    let posted = registrations();
    assert_eq!(posted.len(), 1, "{:?}", sent());
    assert!(
        posted[0].contains(r#""topics":["thread:bill"]"#) && posted[0].contains(r#""prompt":"reply""#),
        "the topic is registered and credited to the prompt: {}",
        posted[0]
    );
    assert!(prompt_host().is_none(), "no prompt, no new question");
    let state = stored("askwell:v1:state");
    assert!(
        state.contains(r#""pending":[]"#) && state.contains(r#""topics":["thread:bill"]"#),
        "{state}"
    );
    assert!(state.contains(r#""subscribed":true"#), "{state}");
    later.destroy();
    forget_events("error", &errors);
    restore(&undo);
}

#[wasm_bindgen_test]
async fn a_yes_that_subscribes_closes_its_status_line() {
    reset_page();
    let undo = patch(GRANTED_PUSH);
    run("window.__pushFails = false");
    let askwell = visit(&JsValue::UNDEFINED).await;
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "ann", name: "Ann" } }"#)));
    click_part("accept");
    sleep(300).await;
    assert!(prompt_host().is_none(), "done: nothing left on screen");
    assert_eq!(registrations().len(), 1, "{:?}", sent());
    assert!(stored("askwell:v1:state").contains(r#""pending":[]"#));
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn in_a_modal_the_status_keeps_focus_inside_and_gives_it_back_after() {
    reset_page();
    let undo = patch(GRANTED_PUSH);
    let before = append_html("button", "Send");
    focus(&before);
    let config = TOPIC_CHAT.replace("message:", "placement: \"modal\", message:");
    let askwell = Askwell::start(js(&config), JsValue::UNDEFINED)
        .await
        .map_err(JsValue::from)
        .expect("valid config");
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)));
    assert_eq!(active_part().as_deref(), Some("accept"), "the modal takes focus");
    click_part("accept");
    assert_eq!(
        active_part().as_deref(),
        Some("prompt"),
        "focus stays in the dialog while it works"
    );
    sleep(300).await;
    assert_eq!(
        active_part().as_deref(),
        Some("close"),
        "and lands on the close button when it failed"
    );
    click_part("close");
    assert!(prompt_host().is_none());
    assert!(is_active(&before), "focus returns where it was");
    askwell.destroy();
    restore(&undo);
}

#[wasm_bindgen_test]
async fn the_subscription_carries_the_devices_time_zone_and_none_when_intl_throws() {
    reset_page();
    let undo = patch(GRANTED_PUSH);
    run("window.__pushFails = false");
    let zone = js("Intl.DateTimeFormat().resolvedOptions().timeZone")
        .as_string()
        .expect("the browser's zone");
    let askwell = visit(&JsValue::UNDEFINED).await;
    assert!(askwell.track("message_sent", js(r#"{ entity: { id: "ann", name: "Ann" } }"#)));
    click_part("accept");
    sleep(300).await;
    let posted = registrations();
    assert_eq!(posted.len(), 1, "{:?}", sent());
    assert!(
        posted[0].contains(&format!(r#""time_zone":"{zone}""#)),
        "{zone}: {}",
        posted[0]
    );
    askwell.destroy();

    // Where Intl.DateTimeFormat throws, the start-up repair registers again
    // without a zone, and nothing throws into the page.
    let intl = patch(
        "const original = Intl.DateTimeFormat; \
         Intl.DateTimeFormat = function () { throw new RangeError('no zones here'); }; \
         return () => { Intl.DateTimeFormat = original; };",
    );
    run("window.__sent.length = 0");
    let again = visit(&JsValue::UNDEFINED).await;
    sleep(300).await;
    restore(&intl);
    let posted = registrations();
    assert_eq!(posted.len(), 1, "the repair registers the subscription: {:?}", sent());
    assert!(!posted[0].contains("time_zone"), "{}", posted[0]);
    again.destroy();
    restore(&undo);
}
