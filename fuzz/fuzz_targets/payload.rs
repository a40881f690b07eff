//! The push payload reader: the bytes of a push → `JSON.parse` (modelled) →
//! `PushPayload::read`, as the worker's `on_push` does, then the click routing
//! a notification click runs. Never a panic; an accepted payload has a title
//! and at most two buttons, each with an action and a title.
#![no_main]

use askwell::model::{route_click, ClickRoute, PushPayload};
use askwell::Error;
use askwell_fuzz::{parse, Dialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(value) = parse(data, Dialect::Json) else {
        return;
    };
    let marked = PushPayload::is_askwell(&value);
    let payload = match PushPayload::read(&value) {
        Ok(payload) => payload,
        Err(Error::InvalidPayload(_)) => return,
        Err(other) => panic!("the payload reader answered {other:?}"),
    };
    assert!(marked && !payload.title.trim().is_empty());
    assert!(payload.actions.len() <= 2);
    // Clicks: the notification itself, each button, an unknown button.
    let mut targets = vec![payload.click_url(""), payload.click_url("no-such-action")];
    targets.extend(payload.actions.iter().map(|a| payload.click_url(&a.action)));
    let windows: Vec<&str> = [payload.url.as_deref(), payload.icon.as_deref(), payload.tag.as_deref()]
        .into_iter()
        .flatten()
        .chain(["https://app.test/", "https://app.test/inbox#top"])
        .collect();
    for target in targets.into_iter().flatten() {
        match route_click(target, &windows) {
            ClickRoute::Focus(i) | ClickRoute::Navigate(i) => assert!(i < windows.len()),
            ClickRoute::Open => {}
        }
        let _ = route_click(target, &[]);
    }
});
