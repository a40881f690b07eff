//! Service-worker module tests inside a real service worker global scope.
#![cfg(all(target_arch = "wasm32", feature = "sw"))]

use askwell::web::sw::{read_push, PushAction};
use wasm_bindgen_test::*;
use web_sys::{PushEvent, PushEventInit};

wasm_bindgen_test_configure!(run_in_service_worker);

fn push_with(data: &str) -> PushEvent {
    let init = PushEventInit::new();
    init.set_data(&data.into());
    PushEvent::new_with_event_init_dict("push", &init).expect("PushEvent is constructible in a service worker")
}

#[wasm_bindgen_test]
fn shows_an_askwell_payload() {
    let action = read_push(&push_with(
        r#"{"askwell":1,"title":"Bill replied","body":"See you at 6"}"#,
    ));
    let PushAction::Show(payload) = action else {
        panic!("expected Show, got {action:?}")
    };
    assert_eq!(
        (payload.title.as_str(), payload.body.as_str()),
        ("Bill replied", "See you at 6")
    );
}

#[wasm_bindgen_test]
fn falls_back_to_a_generic_notification_for_a_malformed_askwell_payload() {
    let PushAction::Show(payload) = read_push(&push_with(r#"{"askwell":1,"title":42}"#)) else {
        panic!("a malformed Askwell push must still show something")
    };
    assert!(!payload.title.is_empty());
}

#[wasm_bindgen_test]
fn ignores_pushes_that_are_not_askwells() {
    assert_eq!(read_push(&push_with(r#"{"title":"app's own"}"#)), PushAction::Ignore);
    assert_eq!(read_push(&push_with("not json")), PushAction::Ignore);
}
