//! Journey benchmark (printed by `cargo xtask test`, not asserted): N users
//! (one subscription each, bound to the user) add to their cart; the runner
//! reads the N events and enters N instances of an abandoned-cart journey,
//! then, an hour later on its stepped clock, sweeps the N due steps and
//! enqueues N reminders in the SQLite outbox. Time of each phase and peak RSS.
//! Goal (issue 14): ≤ 10 s for 100,000 users on a 2-core machine.
//!
//! `cargo run --release -p askwell-server --example journey_bench -- [users]`

use std::time::Instant;

use askwell_server::journeys::Runner;
use askwell_server::store::{now_ms, NewSubscription, NewUserEvent};
use askwell_server::Store;

const HOUR_MS: i64 = 3_600_000;

#[tokio::main]
async fn main() -> Result<(), String> {
    let users: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Store::open_in_dir(dir.path()).await.map_err(|e| e.to_string())?;
    setup(&store, users).await?;
    let definition = serde_json::json!({
        "id": "abandoned-cart",
        "entry": { "event": "added_to_cart", "keyed": true },
        "exitOn": [{ "event": "purchased", "sameKey": true }],
        "steps": [
            { "wait": { "hours": 1 } },
            { "send": { "title": "Still thinking about {event.item|your cart}?", "url": "/cart/{event.key}" } }
        ]
    });
    store
        .journey_put("abandoned-cart", &definition, now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let runner = Runner::new(store.clone(), jiff::tz::TimeZone::UTC);
    let now = now_ms();

    let started = Instant::now();
    let entered = runner.tick(now).await.map_err(|e| e.to_string())?;
    let enter_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let swept = runner.tick(now + HOUR_MS + 1_000).await.map_err(|e| e.to_string())?;
    let sweep_s = started.elapsed().as_secs_f64();
    let queued = store.queue_depth().await.map_err(|e| e.to_string())?;
    println!(
        "bench: journeys, {users} users on SQLite: {} events read and {} entered in {enter_s:.1} s ({:.0}/s); {} due steps swept and {} reminders enqueued in {sweep_s:.1} s ({:.0}/s); {queued} deliveries queued; total {:.1} s, peak RSS {} MiB",
        entered.events,
        entered.entered,
        users as f64 / enter_s,
        swept.due,
        swept.sent,
        users as f64 / sweep_s,
        enter_s + sweep_s,
        peak_rss_mib()
    );
    Ok(())
}

/// N subscriptions bound to users `u0…`, and each user's `added_to_cart`.
async fn setup(store: &Store, users: usize) -> Result<(), String> {
    // RFC 8291 Appendix A's user agent key: the deliveries are only queued.
    let p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    let subs: Vec<NewSubscription> = (0..users)
        .map(|i| NewSubscription {
            endpoint: format!("https://push.example.net/push/{i}"),
            p256dh: p256dh.into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
            user: Some(format!("u{i}")),
            expiration_ms: None,
            topics: Vec::new(),
            time_zone: None,
        })
        .collect();
    for chunk in subs.chunks(10_000) {
        store.subscriptions_import(chunk).await.map_err(|e| e.to_string())?;
    }
    let at = now_ms();
    let events: Vec<NewUserEvent> = (0..users)
        .map(|i| NewUserEvent {
            user: format!("u{i}"),
            name: "added_to_cart".into(),
            key: Some(format!("cart-{i}")),
            at_ms: at,
            properties: serde_json::Map::from_iter([("item".to_owned(), serde_json::json!("red shoes"))]),
            dedup_id: None,
        })
        .collect();
    for chunk in events.chunks(1_000) {
        store.record_user_events(chunk, at).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
