//! `POST /v1/events` validation: the body bytes → the handler's own parse and
//! per-event checks (`validate_events_json`, everything but the rate limit
//! and the database), with and without the admin token. Never a panic; a
//! refused batch is a 4xx with a known code; an accepted one splits into
//! stored events, proven actions and rejected events that account for the
//! whole batch, and every stored event satisfies the documented bounds (an
//! action only with a valid proof for its user).
#![no_main]

use askwell::model::EventKind;
use askwell_server::routes::{validate_events_json, JudgedEvents, MAX_EVENTS_BATCH};
use libfuzzer_sys::fuzz_target;

/// 2023-11-14T22:13:20Z; seeds put their `at` near it.
const NOW: i64 = 1_700_000_000_000;
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
const MAX_AGE_MS: i64 = 30 * 24 * 3600 * 1000;
/// The server's identity secret (seeds carry proofs made with it).
const SECRET: &[u8] = b"fuzz-identity-secret";

fuzz_target!(|data: &[u8]| {
    let public = judge(data, false);
    let admin = judge(data, true);
    if let Some((stored, rejected)) = public {
        // The admin token changes nothing for a batch that is not synthetic.
        assert_eq!(admin, Some((stored, rejected)));
    }
});

/// Stored (funnel events, actions and traits) and rejected counts, or `None` for a refused batch.
fn judge(body: &[u8], admin: bool) -> Option<(usize, usize)> {
    let JudgedEvents {
        events,
        actions,
        traits,
        rejected,
    } = match validate_events_json(body, NOW, admin, Some(SECRET)) {
        Ok(judged) => judged,
        Err(err) => {
            assert!(err.status().is_client_error(), "{err:?}");
            let known = ["invalid_json", "invalid_request", "invalid_batch", "unauthorized"];
            let code = err.code().as_str();
            assert!(known.contains(&code), "{err:?}");
            assert!(admin || code != "unauthorized" || body_says_synthetic(body));
            return None;
        }
    };
    let total = events.len() + actions.len() + traits.len() + rejected.len();
    assert!((1..=MAX_EVENTS_BATCH).contains(&total));
    assert!(rejected.windows(2).all(|w| w[0].index < w[1].index));
    for r in &rejected {
        assert!(
            r.index < total && r.message.starts_with(&format!("events[{}]", r.index)),
            "{r:?}"
        );
    }
    for e in &events {
        assert!(EventKind::ALL.contains(&e.kind) && e.kind.in_funnel(), "{e:?}");
        assert!(e.synthetic || !e.kind.recorded_by_server(), "{e:?}");
        assert!(admin || !e.synthetic, "{e:?}");
        assert!((NOW - MAX_AGE_MS..=NOW + MAX_FUTURE_MS).contains(&e.at_ms), "{e:?}");
        assert!(e.kind != EventKind::Conversion || e.name.as_deref().is_some_and(|n| !n.is_empty()));
        let texts = [
            &e.prompt,
            &e.variant,
            &e.trigger,
            &e.anon_id,
            &e.delivery,
            &e.action,
            &e.name,
        ];
        assert!(e.id.len() <= 200 && texts.iter().all(|t| t.as_deref().is_none_or(|t| t.len() <= 200)));
        assert!(e.action.as_deref() != Some(""), "an empty action is stored as none");
    }
    for a in &actions {
        assert!(askwell::model::is_event_name(&a.name), "{a:?}");
        assert!(!a.user.is_empty() && a.user.len() <= 200, "{a:?}");
        assert!((NOW - MAX_AGE_MS..=NOW + MAX_FUTURE_MS).contains(&a.at_ms), "{a:?}");
        assert!(
            a.properties.is_empty() && a.key.as_deref().is_none_or(|k| k.len() <= 200),
            "{a:?}"
        );
        assert!(a.dedup_id.as_deref().is_none_or(|d| d.starts_with("page:")), "{a:?}");
    }
    for t in &traits {
        assert!(t.index < total && !t.user.is_empty() && t.user.len() <= 200, "{t:?}");
        assert!((1..=64).contains(&t.traits.len()), "{t:?}");
        assert!(
            t.traits.iter().all(|(n, v)| !n.is_empty() && n.len() <= 64 && !v.is_array() && !v.is_object()),
            "{t:?}"
        );
    }
    // An action or traits are taken only with a proof of their user: without
    // the secret, none is.
    if let Ok(without) = validate_events_json(body, NOW, admin, None) {
        assert!(without.actions.is_empty() && without.traits.is_empty());
    }
    Some((events.len() + actions.len() + traits.len(), rejected.len()))
}

fn body_says_synthetic(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("synthetic") == Some(&serde_json::Value::Bool(true)))
}
