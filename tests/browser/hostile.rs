//! Hostile environments: storage that writes but cannot read back, a frame
//! where every browser API Askwell touches throws, and planted storage values
//! (a 2 MB anonymous id, a retry time in the far future).

use super::support::*;
use askwell::web::page::Askwell;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

/// Runs `body` (JS that patches the page and returns a function undoing it)
/// and returns that restore function.
pub fn patch(body: &str) -> js_sys::Function {
    js_sys::Function::new_no_args(body)
        .call0(&JsValue::NULL)
        .expect("patch")
        .unchecked_into()
}

pub fn restore(undo: &js_sys::Function) {
    undo.call0(&JsValue::NULL).expect("restore");
}

/// Replaces `fetch` with a fake askwell-server that answers 202 and, like
/// browsers, refuses `keepalive` bodies over 64 KiB. Requests it answered are
/// in `window.__sent` as "METHOD url body".
pub const FAKE_SERVER: &str = "window.__sent = []; const original = window.fetch; \
     window.fetch = function (url, init) { \
       const body = (init && init.body) || ''; \
       if (init && init.keepalive && body.length > 65536) { return Promise.reject(new TypeError('keepalive body too large')); } \
       window.__sent.push(((init && init.method) || 'GET') + ' ' + url + ' ' + body); \
       return Promise.resolve(new Response('{\"accepted\":1}', { status: 202, headers: { 'content-type': 'application/json' } })); \
     }; \
     return () => { window.fetch = original; };";

pub fn sent() -> Vec<String> {
    let list = js_sys::Reflect::get(&js_sys::global(), &"__sent".into()).unwrap_or(JsValue::UNDEFINED);
    js_sys::Array::from(&list)
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}

pub const FUNNEL_CHAT: &str = r#"{ server: "https://askwell.test",
    prompts: [{ id: "reply", message: "Want to know when {entity.name} replies?" }],
    rules: [{ prompt: "reply", on: "message_sent" }] }"#;

/// Storage that takes writes but throws on every read.
const UNREADABLE_STORAGE: &str = "const original = Storage.prototype.getItem; \
     Storage.prototype.getItem = function () { throw new DOMException('denied', 'SecurityError'); }; \
     return () => { Storage.prototype.getItem = original; };";

#[wasm_bindgen_test]
async fn a_prompt_whose_history_cannot_be_read_back_is_not_shown() {
    reset_page();
    // The cool-off and budgets would never be seen again.
    let undo = patch(UNREADABLE_STORAGE);
    let mut shown = Vec::new();
    for _page_load in 0..2 {
        let askwell = Askwell::start(js(CHAT), JsValue::UNDEFINED)
            .await
            .map_err(JsValue::from);
        shown.push(
            askwell
                .as_ref()
                .map(|a| a.track("message_sent", JsValue::UNDEFINED))
                .ok(),
        );
        if let Ok(askwell) = askwell {
            askwell.destroy();
        }
    }
    restore(&undo);
    assert_eq!(shown, [Some(false), Some(false)], "no prompt on any page load");
}

#[wasm_bindgen_test]
async fn funnel_events_are_sent_when_storage_cannot_be_read_back() {
    reset_page();
    let undo = patch(UNREADABLE_STORAGE);
    let server = patch(FAKE_SERVER);
    let askwell = Askwell::start(js(FUNNEL_CHAT), JsValue::UNDEFINED)
        .await
        .map_err(JsValue::from);
    if let Ok(askwell) = &askwell {
        askwell.convert("replied");
        askwell.convert("purchased");
    }
    sleep(2_500).await;
    if let Ok(askwell) = &askwell {
        askwell.destroy();
    }
    restore(&server);
    restore(&undo);
    let sent = sent().join("\n");
    for name in ["replied", "purchased"] {
        assert!(sent.contains(&format!(r#""name":"{name}""#)), "{name} sent: {sent}");
    }
}

/// Makes each `[target, name]` property throw a `SecurityError` when read,
/// as a sandboxed frame (`sandbox="allow-scripts"`, an opaque origin) does
/// for storage and the service worker container; returns the undo function.
fn deny(properties: &str) -> js_sys::Function {
    patch(&format!(
        "const saved = []; \
         for (const [target, name] of [{properties}]) {{ \
           saved.push([target, name, Object.getOwnPropertyDescriptor(target, name)]); \
           Object.defineProperty(target, name, {{ configurable: true, get() {{ throw new DOMException('denied', 'SecurityError'); }} }}); \
         }} \
         return () => {{ for (const [target, name, own] of saved.reverse()) {{ \
           if (own) {{ Object.defineProperty(target, name, own); }} else {{ delete target[name]; }} }} }};"
    ))
}

/// A sandboxed frame as browsers make it (the container and both storages
/// throw), and with the permission throwing too.
const SANDBOXES: [&str; 2] = [
    "[window, 'localStorage'], [window, 'sessionStorage'], [navigator, 'serviceWorker']",
    "[window, 'localStorage'], [window, 'sessionStorage'], [navigator, 'serviceWorker'], [Notification, 'permission']",
];

#[wasm_bindgen_test]
async fn in_a_sandboxed_frame_start_settles_and_nothing_throws() {
    reset_page();
    let errors: js_sys::Array = js("window.__errors = []").into();
    let on_error: js_sys::Function = js("(e) => window.__errors.push(String(e.message || e.reason))").into();
    let window = web_sys::window().expect("window");
    for kind in ["error", "unhandledrejection"] {
        window
            .add_event_listener_with_callback(kind, &on_error)
            .expect("listen");
    }
    let mut answers = Vec::new();
    for sandbox in SANDBOXES {
        let undo = deny(sandbox);
        let started = Askwell::start(js(CHAT), JsValue::UNDEFINED)
            .await
            .map_err(JsValue::from);
        let tracked = started
            .as_ref()
            .map(|a| a.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#)));
        let unsubscribed = match &started {
            Ok(askwell) => wasm_bindgen_futures::JsFuture::from(askwell.unsubscribe())
                .await
                .ok()
                .and_then(|v| v.as_bool()),
            Err(_) => None,
        };
        sleep(50).await;
        if let Ok(askwell) = &started {
            askwell.destroy();
        }
        restore(&undo);
        answers.push((tracked.ok(), unsubscribed));
    }
    for kind in ["error", "unhandledrejection"] {
        window
            .remove_event_listener_with_callback(kind, &on_error)
            .expect("unlisten");
    }
    assert_eq!(
        answers,
        [(Some(false), Some(false)); 2],
        "start resolved; track (nothing it can remember) and unsubscribe (no subscription) answered"
    );
    let errors: Vec<String> = errors.iter().filter_map(|v| v.as_string()).collect();
    assert!(errors.is_empty(), "nothing thrown into the page: {errors:?}");
}

#[wasm_bindgen_test]
async fn without_push_apis_the_permission_is_unsupported() {
    let mut shown = Vec::new();
    // Only push APIs throw (storage works), so a prompt can show what the
    // `permission` condition saw.
    for push_api in ["[navigator, 'serviceWorker']", "[Notification, 'permission']"] {
        reset_page();
        let undo = deny(push_api);
        let started = Askwell::start(
            js(r#"{ prompts: [{ id: "email", kind: "action", url: "/email", message: "Get replies by email instead?" }],
                   rules: [{ prompt: "email", when: { all: [{ action: "message_sent" }, { permission: "unsupported" }] } }] }"#),
            JsValue::UNDEFINED,
        )
        .await
        .map_err(JsValue::from);
        shown.push(
            started
                .as_ref()
                .map(|a| a.track("message_sent", JsValue::UNDEFINED))
                .ok(),
        );
        if let Ok(askwell) = &started {
            askwell.destroy();
        }
        restore(&undo);
    }
    assert_eq!(shown, [Some(true); 2], "the permission condition saw `unsupported`");
}

#[wasm_bindgen_test]
async fn a_planted_huge_anonymous_id_is_replaced_and_events_are_sent_again() {
    reset_page();
    let huge = "a".repeat(2 * 1024 * 1024);
    let mut state = String::from(r#"{"anonId":""#);
    state.push_str(&huge);
    state.push_str(r#""}"#);
    local_storage().set_item("askwell:v1:state", &state).expect("plant");
    let undo = patch(FAKE_SERVER);
    let askwell = start(FUNNEL_CHAT).await;
    let id = askwell.anonymous_id();
    let shown = askwell.track("message_sent", js(r#"{ entity: { id: "bill", name: "Bill" } }"#));
    sleep(2_500).await;
    askwell.destroy();
    restore(&undo);
    let sent = sent();
    assert!(
        sent.iter()
            .any(|r| r.contains("/v1/events") && r.contains(r#""type":"prompt_shown""#)),
        "the funnel event was sent: {} requests",
        sent.len()
    );
    let outbox = stored("askwell:v1:outbox");
    assert!(
        !outbox.contains(r#""type":"#),
        "and settled: {}",
        &outbox[..outbox.len().min(300)]
    );
    assert!(shown);
    assert!(
        askwell::state::is_anon_id(&id),
        "a fresh id, not the planted one ({} chars)",
        id.len()
    );
}

#[wasm_bindgen_test]
async fn a_far_future_retry_time_waits_at_most_the_longest_backoff() {
    reset_page();
    let anon = "0123456789abcdef0123456789abcdef";
    let now = js_sys::Date::now();
    let outbox = format!(
        r#"{{"events":[{{"id":"{anon}-1-1","type":"prompt_shown","prompt":"reply","variant":"default","trigger":"message_sent","anon":"{anon}","at":{now}}}],"failures":3,"next":9e15,"seq":1}}"#
    );
    local_storage().set_item("askwell:v1:outbox", &outbox).expect("plant");
    js_sys::Reflect::set(&js_sys::global(), &"__now".into(), &now.into()).expect("clock");
    let options = js("{ now: () => window.__now }");
    let undo = patch(FAKE_SERVER);
    let first = Askwell::start(js(FUNNEL_CHAT), options.clone())
        .await
        .map_err(JsValue::from)
        .expect("start");
    sleep(2_500).await;
    first.destroy();
    // Eleven minutes later (longer than the longest backoff, 10 min), the page loads again.
    js_sys::Reflect::set(&js_sys::global(), &"__now".into(), &(now + 660_000.0).into()).expect("clock");
    let again = Askwell::start(js(FUNNEL_CHAT), options)
        .await
        .map_err(JsValue::from)
        .expect("start");
    sleep(2_500).await;
    again.destroy();
    restore(&undo);
    let sent = sent();
    assert!(
        sent.iter().any(|r| r.contains(&format!("{anon}-1-1"))),
        "the waiting event was sent: {sent:?}"
    );
}
