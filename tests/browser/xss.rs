//! A corpus of XSS payloads placed in entity names, avatars and copy: none may
//! execute, and each must show literally as text.

use super::support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

/// 32 payloads from common XSS cheat sheets, each setting `window.pwned`.
const PAYLOADS: [&str; 32] = [
    "<script>window.pwned=1</script>",
    "<img src=x onerror=window.pwned=1>",
    "<svg onload=window.pwned=1>",
    "<svg><script>window.pwned=1</script></svg>",
    "<iframe src=javascript:window.parent.pwned=1>",
    "<body onload=window.pwned=1>",
    "<details open ontoggle=window.pwned=1>",
    "<input autofocus onfocus=window.pwned=1>",
    "<video><source onerror=window.pwned=1></video>",
    "<audio src=x onerror=window.pwned=1>",
    "<marquee onstart=window.pwned=1>",
    "<a href=javascript:window.pwned=1>x</a>",
    "\"><script>window.pwned=1</script>",
    "'><img src=x onerror=window.pwned=1>",
    "</p><img src=x onerror=window.pwned=1>",
    "<math><mi xlink:href=javascript:window.pwned=1>x</mi></math>",
    "<object data=javascript:window.pwned=1>",
    "<embed src=javascript:window.pwned=1>",
    "<style>@import 'javascript:window.pwned=1';</style>",
    "<link rel=import href=data:text/html,<script>window.pwned=1</script>>",
    "<template><img src=x onerror=window.pwned=1></template>",
    "<form><button formaction=javascript:window.pwned=1>x</button></form>",
    "<isindex action=javascript:window.pwned=1 type=image>",
    "<div style=\"background:url(javascript:window.pwned=1)\">",
    "<img src=\"x\" onerror=\"window.pwned=1\">",
    "<IMG SRC=x OnErRoR=window.pwned=1>",
    "<img src=x onerror=&#119;indow.pwned=1>",
    "<scr<script>ipt>window.pwned=1</scr</script>ipt>",
    "{entity.name}<img src=x onerror=window.pwned=1>",
    "javascript:window.pwned=1",
    "data:text/html,<script>window.pwned=1</script>",
    "\u{202e}<img src=x onerror=window.pwned=1>",
];

fn pwned() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"pwned".into())
        .map(|v| v.is_truthy())
        .unwrap_or(false)
}

/// Waits for event loop turns, so an `onerror`/`onload` would have fired.
async fn settle() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let window = web_sys::window().expect("window");
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 50);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[wasm_bindgen_test]
async fn no_payload_in_names_avatars_or_copy_executes_and_each_shows_literally() {
    for payload in PAYLOADS {
        reset_page();
        let quoted = js_sys::JSON::stringify(&JsValue::from_str(payload))
            .expect("stringify")
            .as_string()
            .expect("string");
        let config = format!(
            r#"{{ prompts: [{{ id: "p", message: "About {{entity.name}}: " + {quoted}.slice(0, 60), accept: {quoted}.slice(0, 15), decline: "Not now" }}],
                  rules: [{{ prompt: "p", on: "x" }}], policy: {{ copyChecks: "warn" }} }}"#
        );
        let askwell = start(&config).await;
        let props = js_sys::Object::new();
        let entity = js_sys::Object::new();
        js_sys::Reflect::set(&entity, &"id".into(), &"e".into()).expect("set");
        js_sys::Reflect::set(&entity, &"name".into(), &payload.into()).expect("set");
        js_sys::Reflect::set(&entity, &"avatar".into(), &payload.into()).expect("set");
        js_sys::Reflect::set(&props, &"entity".into(), &entity).expect("set");
        assert!(askwell.track("x", props.into()), "prompt shown for {payload}");
        settle().await;
        assert!(!pwned(), "executed: {payload}");
        let message = part_text("message").unwrap_or_default();
        let expected_copy: String = payload.chars().take(60).collect();
        assert!(
            message.contains(payload.trim()) || message.contains(expected_copy.trim()),
            "{payload} not literal in {message:?}"
        );
        let accept: String = payload.chars().take(15).collect();
        assert_eq!(
            part_text("accept").as_deref().map(str::trim),
            Some(accept.trim()),
            "button label literal"
        );
        let shadow = prompt_host().and_then(|h| h.shadow_root()).expect("shadow root");
        let elements = shadow.query_selector_all("*").expect("query").length();
        // style, panel, avatar, message, one <bdi> per inserted name, actions,
        // two buttons and the live region: nothing a payload could add.
        assert!(elements <= 10, "{payload} created elements ({elements})");
        let avatar = part("avatar").and_then(|img| img.get_attribute("src"));
        assert!(
            avatar.is_none_or(
                |src| !src.trim_start().to_lowercase().starts_with("javascript:") && !src.starts_with("data:")
            ),
            "unsafe avatar src for {payload}"
        );
        askwell.destroy();
    }
}
