//! JSON text → `Value`, and the core's two storage readers that turn such a
//! value back into data: `State` (`askwell:v1:state`) and the funnel
//! `Outbox` (`askwell:v1:outbox`), read from localStorage, which another
//! script, an old version or a full disk may have left in any shape.
//!
//! The core has no JSON parser of its own (the glue uses `JSON.parse`), so
//! the text goes through the harness's model of `JSON.parse` + `from_js`;
//! where serde_json also parses it, both must give the same tree, which keeps
//! that model honest for the other targets. Then: the readers never panic,
//! and what they read survives their own encoding (`to_value`) unchanged.
#![no_main]

use askwell::funnel::{FunnelEvent, Outbox, SignedIn, MAX_EVENTS};
use askwell::state::State;
use askwell_fuzz::{from_serde, parse, same, sorted, Dialect};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data, Dialect::Json);
    if let Ok(reference) = serde_json::from_slice::<serde_json::Value>(data) {
        let model = parsed.as_ref().expect("JSON that serde_json accepts parses");
        let reference = from_serde(&reference, 0);
        assert!(same(&sorted(model), &sorted(&reference)), "{model:?} != {reference:?}");
    }
    let Some(value) = parsed else {
        return;
    };
    let state = State::from_value(&value, NOW);
    assert_eq!(State::from_value(&state.to_value(), NOW), state);

    let outbox = Outbox::from_value(&value, NOW);
    let mut expected = outbox.clone();
    // An event with an empty id is written without it (absent and empty mean
    // the same to the server) and so is dropped on the next read.
    expected.events.retain(|e| !e.id.is_empty());
    // Counters read back are clamped to 9e15, and the events a full outbox
    // drops are added after that: such a count (planted) reads back clamped.
    expected.dropped = expected.dropped.min(9_000_000_000_000_000);
    assert_eq!(Outbox::from_value(&outbox.to_value(), NOW), expected);
    assert!(outbox.events.len() <= MAX_EVENTS && outbox.next_try_ms <= NOW + 600_000);
    let all: Vec<&FunnelEvent> = outbox.events.iter().collect();
    let _ = Outbox::request_body(&all, SignedIn::new("u1", "ab12"));
    // What the page does next with what it read: queue, send, fail, settle.
    let mut outbox = outbox;
    outbox.push("dev", shown(NOW));
    outbox.push("dev", outbox.conversion(&"x".repeat(300), NOW));
    outbox.failed(NOW);
    outbox.push("dev", FunnelEvent::action("added_to_cart", Some("cart-9"), "u1", NOW));
    let sent: Vec<String> = outbox
        .due(u64::MAX, SignedIn::new("u1", "ab12"))
        .unwrap_or_default()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    outbox.settled(&sent);
    outbox.forget_history();
    assert!(outbox.events.len() <= MAX_EVENTS);
});

fn shown(at_ms: u64) -> FunnelEvent {
    FunnelEvent {
        kind: askwell::model::EventKind::PromptShown,
        prompt: "reply".into(),
        variant: "a".into(),
        trigger: "message_sent".into(),
        at_ms,
        ..FunnelEvent::default()
    }
}
