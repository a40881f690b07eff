//! Funnel benchmarks (printed by `cargo xtask test`, not asserted):
//!
//! 1. event ingestion through the whole `POST /v1/events` handler (JSON
//!    parsing, validation, deduplicating insert) into an SQLite file, in
//!    batches of 100 as pages send them;
//! 2. `GET /v1/stats` over a database of N events (default 1,000,000): a
//!    synthetic population's events, bulk-loaded, queried cold and warm.
//!
//! `cargo run --release -p askwell-server --example funnel_bench -- [events]`

use std::time::Instant;

use askwell_server::simulate::{events, Population, DEMO_ARMS};
use askwell_server::store::{now_ms, Event};
use askwell_server::{app, AppState, Settings, Store, VapidKeys};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use tower::ServiceExt;

const INGEST_EVENTS: usize = 50_000;
const TOKEN: &str = "bench-token";

#[tokio::main]
async fn main() -> Result<(), String> {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // ASKWELL_BENCH_DIR keeps the database for inspection.
    let path = std::env::var_os("ASKWELL_BENCH_DIR").map_or_else(|| dir.path().to_owned(), Into::into);
    let store = Store::open_in_dir(&path).await.map_err(|e| e.to_string())?;
    let settings = Settings {
        admin_token: Some(TOKEN.into()),
        ..Settings::default()
    };
    let mut state = AppState::new(store.clone(), VapidKeys::generate(), settings);
    // Real traffic comes from many pages, each with its own per-IP budget;
    // here one client sends everything, so its budget is lifted.
    state.limiter = std::sync::Arc::new(askwell_server::limit::RateLimiter::new(askwell_server::limit::Budget {
        per_second: 1e9,
        burst: 1e9,
        per_day: u64::MAX,
    }));

    let population = |devices, seed| Population {
        devices,
        days: 28,
        seed,
        now_ms: now_ms(),
    };
    let sample: Vec<Value> = events(population(20_000, 1), DEMO_ARMS)
        .into_iter()
        .take(INGEST_EVENTS)
        .collect();
    let bodies: Vec<String> = sample
        .chunks(100)
        .map(|chunk| json!({ "events": chunk }).to_string())
        .collect();
    let started = Instant::now();
    for body in bodies {
        let request = Request::post("/v1/events")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .map_err(|e| e.to_string())?;
        let response = app(state.clone()).oneshot(request).await.map_err(|e| e.to_string())?;
        if response.status() != 202 {
            return Err(format!("ingestion answered {}", response.status()));
        }
    }
    let rate = sample.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "bench: event ingestion, POST /v1/events in batches of 100 into SQLite: {rate:.0} events/s ({} events)",
        sample.len()
    );

    let loaded = bulk_load(&store, total.saturating_sub(sample.len())).await? + sample.len();
    for run in ["cold", "warm"] {
        let started = Instant::now();
        let request = Request::get("/v1/stats")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let response = app(state.clone()).oneshot(request).await.map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("stats answered {}", response.status()));
        }
        println!(
            "bench: GET /v1/stats over {loaded} events (SQLite, {run}): {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// Inserts about `n` more events of fresh simulated devices, 500 per statement.
async fn bulk_load(store: &Store, n: usize) -> Result<usize, String> {
    let (mut loaded, mut seed) = (0, 100);
    while loaded < n {
        let generated = events(
            Population {
                devices: 20_000,
                days: 28,
                seed,
                now_ms: now_ms(),
            },
            DEMO_ARMS,
        );
        seed += 1;
        let batch: Vec<Event> = generated.iter().take(n - loaded).filter_map(to_event).collect();
        for chunk in batch.chunks(500) {
            store.events_insert(chunk).await.map_err(|e| e.to_string())?;
        }
        loaded += batch.len();
    }
    Ok(loaded)
}

fn to_event(v: &Value) -> Option<Event> {
    let text = |key: &str| v[key].as_str().map(str::to_owned);
    Some(Event {
        id: text("id")?,
        kind: askwell::model::EventKind::parse(v["type"].as_str()?)?,
        prompt: text("prompt"),
        variant: text("variant"),
        trigger: text("trigger"),
        anon_id: text("anon"),
        delivery: text("delivery"),
        action: None,
        name: text("name"),
        synthetic: false,
        at_ms: v["at"].as_i64()?,
    })
}
