//! One code path, two dialects: every public `Store` method runs against a
//! fresh SQLite store and — when `ASKWELL_TEST_POSTGRES_URL` is set (the test
//! command starts a local cluster) — a fresh PostgreSQL database, each
//! asserted to return `Ok` with the value a small scenario implies; and the
//! two migration sets define the same tables and columns.
//!
//! A SQLite-only construct (two-argument `MAX(a, b)`, `IFNULL`, `strftime`,
//! …) fails the PostgreSQL half with the method and the database's message.
//! A new public `Store` method fails both halves until the scenario calls it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use askwell::journey::{Deliver, LocalTime};
use askwell::model::EventKind;
use askwell_server::push::{DeliveryStatus, Urgency};
use askwell_server::store::{
    device_subject, now_ms, user_subject, Admission, Attribution, Backend, Claimed, Created, DueRollout, Event,
    Experiment, NewNotification, NewSubscription, NewUserEvent, Preferences, PutUser, Recipients, Recorded, Rendered,
    RenderedRow, RolloutPlan, Schedule, StatsRange, StatusCounts, Swap, TopicsChange, Traits, Upsert, UserChanges,
    ZoneChange, DAY_MS, PAUSED_INDEFINITELY, ROLLOUT_REST,
};
use askwell_server::Store;
use sqlx::{AnyConnection, Connection, Row};

/// Public `Store` functions the PostgreSQL half cannot call (SQLite files only).
const SQLITE_ONLY: &[&str] = &["open_in_dir", "in_memory"];

/// A note on the real stderr: the test harness captures `eprintln!`, and a
/// skipped half must show in a passing run, not pass silently.
fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "store_parity: {message}");
}

// ---------------------------------------------------------------------------
// Every Store method on both backends
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_store_method_works_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut run = Run::new("sqlite");
    let store = run.ok("open_in_dir", Store::open_in_dir(dir.path()).await);
    // A second connection to the same file migrates nothing twice.
    let url = format!("sqlite://{}", dir.path().join("askwell.db").display());
    let again = run.ok("connect", Store::connect(&url).await);
    assert_eq!(
        run.ok("schema_version", again.schema_version().await),
        migration_count()
    );
    let memory = run.ok("in_memory", Store::in_memory().await);
    assert_eq!(memory.backend(), Backend::Sqlite);
    assert_eq!(
        run.ok("schema_version", memory.schema_version().await),
        migration_count()
    );
    scenario(&mut run, &store, Backend::Sqlite).await;
    run.assert_covered(&[]);
}

#[tokio::test]
async fn every_store_method_works_on_postgres() {
    let Some(admin_url) = support::postgres_url() else {
        note("every_store_method_works_on_postgres SKIPPED: set ASKWELL_TEST_POSTGRES_URL (cargo xtask test starts a local PostgreSQL)");
        return;
    };
    let url = support::fresh_postgres_database(&admin_url).await;
    let mut run = Run::new("postgres");
    let store = run.ok("connect", Store::connect(&url).await);
    // A second process starting on the same database migrates nothing twice.
    let again = run.ok("connect", Store::connect(&url).await);
    assert_eq!(
        run.ok("schema_version", again.schema_version().await),
        migration_count()
    );
    scenario(&mut run, &store, Backend::Postgres).await;
    run.assert_covered(SQLITE_ONLY);

    // Again in a database whose text order is a language's (as most
    // production clusters' is: `en_US.UTF-8`), not the bytes' (SQLite's, and
    // the test cluster's `C`): sorted topics must not depend on it.
    match english_postgres_database(&admin_url).await {
        Ok(url) => {
            let mut run = Run::new("postgres (en-US collation)");
            let store = run.ok("connect", Store::connect(&url).await);
            scenario(&mut run, &store, Backend::Postgres).await;
        }
        Err(err) => note(&format!(
            "every_store_method_works_on_postgres: the en-US collation run SKIPPED (no ICU database: {err})"
        )),
    }
}

/// A new database collating by ICU's `en-US` (PostgreSQL 15+ built with ICU).
async fn english_postgres_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = format!("askwell_test_{}", askwell_server::secret::random_id());
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    ))
    .execute(&mut admin)
    .await?;
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    Ok(format!("{base}/{name}"))
}

/// The calls made on one backend, by method name.
struct Run {
    backend: &'static str,
    called: BTreeSet<&'static str>,
}

impl Run {
    fn new(backend: &'static str) -> Self {
        Self {
            backend,
            called: BTreeSet::new(),
        }
    }

    /// The value of `result`, recording that `method` was called; a failure
    /// names the backend and the method.
    fn ok<T, E: Display + std::fmt::Debug>(&mut self, method: &'static str, result: Result<T, E>) -> T {
        self.called.insert(method);
        result.unwrap_or_else(|err| panic!("{}: Store::{method} failed: {err}\n({err:?})", self.backend))
    }

    /// For infallible functions.
    fn call<T>(&mut self, method: &'static str, value: T) -> T {
        self.called.insert(method);
        value
    }

    /// Every public function of the store module (read from its sources) was
    /// called, but those in `exempt`.
    fn assert_covered(&self, exempt: &[&str]) {
        let public = public_store_functions();
        let missing: Vec<&String> = public
            .iter()
            .filter(|name| !self.called.contains(name.as_str()) && !exempt.contains(&name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: public store functions the scenario never called (add them to tests/store_parity.rs): {missing:?}",
            self.backend
        );
        let unknown: Vec<&&str> = self.called.iter().filter(|name| !public.contains(**name)).collect();
        assert!(
            unknown.is_empty(),
            "recorded names that are no public store function: {unknown:?}"
        );
    }
}

impl Drop for Run {
    /// Names the backend of a failed assertion (their messages do not).
    fn drop(&mut self) {
        if std::thread::panicking() {
            note(&format!("the failure is on {}", self.backend));
        }
    }
}

/// `pub fn` / `pub async fn` names in `src/store.rs` and `src/store/**.rs`
/// (not `pub(crate)` or `pub(super)`).
fn public_store_functions() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("store.rs")];
    rust_files(&src.join("store"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        for line in text.lines() {
            let line = line.trim_start();
            let Some(rest) = line
                .strip_prefix("pub async fn ")
                .or_else(|| line.strip_prefix("pub fn "))
            else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            names.insert(name);
        }
    }
    assert!(names.len() > 20, "found too few store functions: {names:?}");
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn subscription(endpoint: &str, auth: &str, user: Option<&str>, topics: &[&str]) -> NewSubscription {
    NewSubscription {
        endpoint: endpoint.to_owned(),
        p256dh: format!("p256dh-of-{endpoint}"),
        auth: auth.to_owned(),
        user: user.map(str::to_owned),
        expiration_ms: None,
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        time_zone: None,
    }
}

fn attribution(anon: &str, prompt: &str, variant: &str) -> Attribution {
    Attribution {
        anon: Some(anon.to_owned()),
        prompt: Some(prompt.to_owned()),
        variant: Some(variant.to_owned()),
    }
}

fn notification(id: &str, key: Option<&str>, to: Recipients) -> NewNotification {
    NewNotification {
        id: id.to_owned(),
        idempotency_key: key.map(str::to_owned),
        payload: format!(r#"{{"title":"{id}"}}"#),
        ttl: 60,
        urgency: Some(Urgency::Normal),
        topic: None,
        category: None,
        to,
    }
}

fn event(id: &str, kind: &str, anon: Option<&str>, at_ms: i64) -> Event {
    Event {
        id: id.to_owned(),
        kind: EventKind::parse(kind).expect("an event kind"),
        prompt: anon.map(|_| "reply-alerts".to_owned()),
        variant: anon.map(|_| "b".to_owned()),
        trigger: anon.map(|_| "message_sent".to_owned()),
        anon_id: anon.map(str::to_owned),
        at_ms,
        ..Event::default()
    }
}

fn traits(value: serde_json::Value) -> Traits {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn user_event(user: &str, name: &str, key: Option<&str>, at_ms: i64, dedup: Option<&str>) -> NewUserEvent {
    NewUserEvent {
        user: user.to_owned(),
        name: name.to_owned(),
        key: key.map(str::to_owned),
        at_ms,
        properties: traits(serde_json::json!({ "total": 42.5, "currency": "EUR" })),
        dedup_id: dedup.map(str::to_owned),
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// Subscribe, topics, attribution, events, a fan-out to three audiences,
/// claims and every outcome, due times, stats, swap, export, erasure,
/// delete and sweep — with the values each step implies.
#[allow(clippy::too_many_lines)]
async fn scenario(run: &mut Run, store: &Store, backend: Backend) {
    assert_eq!(run.call("backend", store.backend()), backend);
    let start = run.call("now_ms", now_ms());
    assert_eq!(
        run.ok("schema_version", store.schema_version().await),
        migration_count()
    );
    assert_eq!(run.ok("subscription_count", store.subscription_count().await), 0);
    assert_eq!(run.ok("queue_depth", store.queue_depth().await), 0);
    assert_eq!(run.ok("next_due_ms", store.next_due_ms().await), None, "empty outbox");

    // Subscriptions: A (alice) by upsert; B (bob) and C (no user) by import.
    let a = subscription(
        "https://push.example/a",
        "auth-a",
        Some("alice"),
        &["news", "thread:bill"],
    );
    let Upsert::Created(id_a) = run.ok("subscription_upsert", store.subscription_upsert(&a).await) else {
        panic!("{backend:?}: a new endpoint is created");
    };
    assert_eq!(
        run.ok("subscription_upsert", store.subscription_upsert(&a).await),
        Upsert::Updated(id_a)
    );
    let thief = subscription("https://push.example/a", "auth-x", Some("mallory"), &["x"]);
    assert_eq!(
        run.ok("subscription_upsert", store.subscription_upsert(&thief).await),
        Upsert::HeldByAnother
    );
    let b = subscription("https://push.example/b", "auth-b", Some("bob"), &["news"]);
    let c = subscription("https://push.example/c", "auth-c", None, &["news"]);
    run.ok("subscriptions_import", store.subscriptions_import(&[b, c]).await);
    assert_eq!(run.ok("subscription_count", store.subscription_count().await), 3);

    let found = run.ok(
        "subscription_find",
        store.subscription_find("https://push.example/a", "auth-a").await,
    );
    let found = found.expect("A is found with its auth");
    assert_eq!((found.id, found.user.as_deref()), (id_a, Some("alice")));
    assert_eq!(found.topics, strings(&["news", "thread:bill"]));
    assert_eq!(
        run.ok(
            "subscription_find",
            store.subscription_find("https://push.example/a", "auth-x").await
        ),
        None,
        "a wrong auth finds nothing"
    );
    let id_b = run
        .ok(
            "subscription_find",
            store.subscription_find("https://push.example/b", "auth-b").await,
        )
        .expect("B imported")
        .id;
    let id_c = run
        .ok(
            "subscription_find",
            store.subscription_find("https://push.example/c", "auth-c").await,
        )
        .expect("C imported")
        .id;

    // Sorted by their bytes on every backend ("Sale" < "news"), whatever
    // the database's collation.
    let (add, remove) = (strings(&["Sale"]), strings(&["thread:bill"]));
    assert_eq!(
        run.ok(
            "subscription_topics_change",
            store.subscription_topics_change(id_a, &add, &remove, 100).await
        ),
        TopicsChange::Changed(strings(&["Sale", "news"]))
    );
    assert_eq!(
        run.ok(
            "subscription_topics_change",
            store
                .subscription_topics_change(id_a, &strings(&["x", "y"]), &[], 3)
                .await
        ),
        TopicsChange::OverLimit,
        "four topics, over a limit of three: nothing changed"
    );
    assert_eq!(
        run.ok(
            "subscription_topics_change",
            store.subscription_topics_change(i64::MAX, &add, &[], 100).await
        ),
        TopicsChange::Gone
    );
    // A label for a topic it holds is kept; one for a topic it does not, skipped.
    let labels = [
        ("news".to_owned(), "News from Ann".to_owned()),
        ("gone".to_owned(), "Skipped".to_owned()),
    ];
    run.ok(
        "subscription_topic_labels_set",
        store.subscription_topic_labels_set(id_a, &labels).await,
    );
    assert_eq!(
        run.ok("subscription_topic_labels", store.subscription_topic_labels(id_a).await),
        [("news".to_owned(), "News from Ann".to_owned())]
    );

    // Attribution (before the fan-out: deliveries copy it) writes `subscribed`.
    for (id, anon, variant) in [(id_a, "anon-a", "b"), (id_b, "anon-b", "a"), (id_c, "anon-c", "a")] {
        let who = attribution(anon, "reply-alerts", variant);
        run.ok("subscription_attribute", store.subscription_attribute(id, &who).await);
    }

    let funnel = [
        event("ev-shown", "prompt_shown", Some("anon-a"), start),
        event("ev-accepted", "prompt_accepted", Some("anon-a"), start),
    ];
    assert_eq!(run.ok("events_insert", store.events_insert(&funnel).await), 2);
    assert_eq!(
        run.ok("events_insert", store.events_insert(&funnel).await),
        0,
        "repeated ids are skipped"
    );

    // Fan-out: a topic (A, B, C), a user (A), everyone (A, B, C).
    let before = now_ms();
    let news = notification("n-news", Some("key-1"), Recipients::Topic("news".into()));
    assert_eq!(
        run.ok("notification_create", store.notification_create(&news).await),
        ("n-news".to_owned(), 3)
    );
    let repeat = notification("n-repeat", Some("key-1"), Recipients::Topic("news".into()));
    assert_eq!(
        run.ok("notification_create", store.notification_create(&repeat).await),
        ("n-news".to_owned(), 3),
        "a repeated idempotency key enqueues nothing"
    );
    let alice = notification("n-alice", None, Recipients::User("alice".into()));
    assert_eq!(
        run.ok("notification_create", store.notification_create(&alice).await),
        ("n-alice".to_owned(), 1)
    );
    let all = notification("n-all", None, Recipients::All);
    assert_eq!(
        run.ok("notification_create", store.notification_create(&all).await),
        ("n-all".to_owned(), 3)
    );
    let after = now_ms();
    assert_eq!(run.ok("queue_depth", store.queue_depth().await), 7);
    let due = run
        .ok("next_due_ms", store.next_due_ms().await)
        .expect("deliveries are due");
    assert!((before..=after).contains(&due), "due now: {before} <= {due} <= {after}");
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-news").await),
        Some(StatusCounts {
            queued: 3,
            ..StatusCounts::default()
        })
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-unknown").await),
        None
    );

    // Claims: leased rows are due when their lease ends, not before.
    let before = now_ms();
    let claimed = run.ok("deliveries_claim", store.deliveries_claim(100, 60_000).await);
    let after = now_ms();
    assert_eq!(claimed.len(), 7, "every delivery is claimed once");
    assert!(claimed.iter().all(|d| d.attempt == 1 && d.ttl == 60));
    assert_eq!(
        run.ok("deliveries_claim", store.deliveries_claim(100, 60_000).await)
            .len(),
        0,
        "claimed rows are not claimed again"
    );
    let due = run
        .ok("next_due_ms", store.next_due_ms().await)
        .expect("leased, still waiting");
    assert!(
        (before + 60_000..=after + 60_000).contains(&due),
        "due when the lease ends: {due} vs {before}+60000"
    );
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let before = now_ms();
    run.ok("deliveries_renew", store.deliveries_renew(&ids, 120_000).await);
    let after = now_ms();
    let due = run.ok("next_due_ms", store.next_due_ms().await).expect("renewed");
    assert!(
        (before + 120_000..=after + 120_000).contains(&due),
        "due when the renewed lease ends: {due}"
    );

    // Outcomes.
    let pick = |notification: &str, subscription: i64| -> Claimed {
        claimed
            .iter()
            .find(|d| d.notification_id == notification && d.subscription_id == subscription)
            .unwrap_or_else(|| panic!("no claim for {notification} → {subscription}"))
            .clone()
    };
    let news_a = pick("n-news", id_a);
    run.ok(
        "delivery_finish",
        store
            .delivery_finish(news_a.id, DeliveryStatus::Delivered, Some(201))
            .await,
    );
    let retry_at = now_ms() + 5_000;
    let news_b = pick("n-news", id_b);
    run.ok(
        "delivery_retry",
        store.delivery_retry(news_b.id, retry_at, Some(503)).await,
    );
    // C is gone (410): deleted, with its other pending delivery (n-all) pruned.
    run.ok("delivery_prune", store.delivery_prune(&pick("n-news", id_c), 410).await);
    let alice_a = pick("n-alice", id_a);
    run.ok(
        "delivery_finish",
        store
            .delivery_finish(alice_a.id, DeliveryStatus::Failed, Some(400))
            .await,
    );
    // Both n-all deliveries in one group-committed write (one statement).
    let together: Vec<Recorded> = [id_a, id_b]
        .into_iter()
        .map(|sub| Recorded::Finish {
            id: pick("n-all", sub).id,
            status: DeliveryStatus::Delivered,
            code: Some(201),
        })
        .collect();
    run.ok("deliveries_record", store.deliveries_record(&together).await);
    assert_eq!(run.ok("subscription_count", store.subscription_count().await), 2);
    assert_eq!(run.ok("queue_depth", store.queue_depth().await), 1);
    assert_eq!(
        run.ok("next_due_ms", store.next_due_ms().await),
        Some(retry_at),
        "only the retry waits"
    );

    // A click marks its delivery and is attributed from it.
    let click = Event {
        delivery: Some(format!("n-news:{}", news_a.id)),
        ..event("ev-click", "notification_clicked", None, now_ms())
    };
    assert_eq!(run.ok("events_insert", store.events_insert(&[click]).await), 1);
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-news").await),
        Some(StatusCounts {
            delivered: 1,
            retrying: 1,
            pruned: 1,
            clicked: 1,
            ..StatusCounts::default()
        })
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-all").await),
        Some(StatusCounts {
            delivered: 2,
            pruned: 1,
            ..StatusCounts::default()
        })
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-alice").await),
        Some(StatusCounts {
            failed: 1,
            ..StatusCounts::default()
        })
    );

    // Stats, real and synthetic.
    let range = StatsRange {
        from_ms: start - DAY_MS,
        to_ms: now_ms() + DAY_MS,
        synthetic: false,
    };
    let synthetic = StatsRange {
        synthetic: true,
        ..range
    };
    let counts = run.ok("stats_counts", store.stats_counts(range).await);
    let total = |kind: &str| -> i64 {
        counts
            .iter()
            .filter(|r| r.kind.as_str() == kind)
            .map(|r| r.events)
            .sum()
    };
    assert_eq!(
        (
            total("prompt_shown"),
            total("subscribed"),
            total("unsubscribed"),
            total("notification_clicked")
        ),
        (1, 3, 1, 1),
        "{counts:?}"
    );
    let clicked = counts
        .iter()
        .find(|r| r.kind.as_str() == "notification_clicked")
        .expect("click");
    assert_eq!(
        (clicked.prompt.as_str(), clicked.variant.as_str()),
        ("reply-alerts", "b")
    );
    assert!(run.ok("stats_counts", store.stats_counts(synthetic).await).is_empty());
    let delivered = run.ok("stats_delivered", store.stats_delivered(range).await);
    assert_eq!(delivered.iter().map(|r| r.events).sum::<i64>(), 3, "{delivered:?}");
    assert!(delivered.iter().all(|r| r.kind.as_str() == "notification_delivered"));
    assert!(run
        .ok("stats_delivered", store.stats_delivered(synthetic).await)
        .is_empty());
    let days = run.ok("stats_days", store.stats_days(range).await);
    assert!(!days.is_empty(), "{days:?}");
    assert!(days
        .iter()
        .all(|r| r.day == start / DAY_MS || r.day == now_ms() / DAY_MS));
    let subscribers = run.ok("stats_subscribers", store.stats_subscribers(range).await);
    assert_eq!(subscribers.len(), 3, "{subscribers:?}");
    let deliveries = run.ok("stats_deliveries", store.stats_deliveries(range).await);
    let by_status = |status: &str| -> i64 {
        deliveries
            .iter()
            .filter(|r| r.status.as_str() == status)
            .map(|r| r.count)
            .sum()
    };
    assert_eq!(
        (
            by_status("delivered"),
            by_status("retrying"),
            by_status("pruned"),
            by_status("failed")
        ),
        (3, 1, 2, 1),
        "{deliveries:?}"
    );
    assert!(run
        .ok("stats_deliveries", store.stats_deliveries(synthetic).await)
        .is_empty());

    // Swap: onto a fresh endpoint, refused onto another's, merged with proof.
    let moved = subscription("https://push.example/b2", "auth-b2", None, &[]);
    assert_eq!(
        run.ok("subscription_swap", store.subscription_swap(id_b, &moved).await),
        Swap::Done(id_b)
    );
    assert_eq!(
        run.ok("subscription_swap", store.subscription_swap(i64::MAX, &moved).await),
        Swap::Gone
    );
    let d = subscription("https://push.example/d", "auth-d", None, &["D-Topic"]);
    let Upsert::Created(_) = run.ok("subscription_upsert", store.subscription_upsert(&d).await) else {
        panic!("{backend:?}: D is new");
    };
    let forged = subscription("https://push.example/d", "auth-wrong", None, &[]);
    assert_eq!(
        run.ok("subscription_swap", store.subscription_swap(id_b, &forged).await),
        Swap::Held
    );
    assert_eq!(
        run.ok("subscription_swap", store.subscription_swap(id_b, &d).await),
        Swap::Done(id_b)
    );
    let merged = run
        .ok(
            "subscription_find",
            store.subscription_find("https://push.example/d", "auth-d").await,
        )
        .expect("B now holds D's endpoint");
    assert_eq!((merged.id, merged.user.as_deref()), (id_b, Some("bob")));
    assert_eq!(merged.topics, strings(&["D-Topic", "news"]));
    assert_eq!(run.ok("subscription_count", store.subscription_count().await), 2);

    users(run, store, id_a, start).await;
    journeys(run, store, start).await;

    // Export, then erasure.
    let export = run.ok("user_export", store.user_export("alice").await);
    assert_eq!(export.traits, traits(serde_json::json!({ "plan": "team", "seats": 3 })));
    assert_eq!(export.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(export.subscriptions[0].time_zone.as_deref(), Some("Asia/Tokyo"));
    let tracked: Vec<(&str, Option<&str>)> = export
        .tracked_events
        .iter()
        .map(|e| (e.name.as_str(), e.id.as_deref()))
        .collect();
    assert_eq!(tracked, [("added_to_cart", Some("d1")), ("added_to_cart", Some("d2"))]);
    assert_eq!(export.user, "alice");
    assert_eq!(export.subscriptions.len(), 1);
    assert_eq!(export.subscriptions[0].topics, strings(&["Sale", "news"]));
    assert_eq!(export.subscriptions[0].attribution.anon.as_deref(), Some("anon-a"));
    assert_eq!(export.deliveries.len(), 3, "{:?}", export.deliveries);
    assert_eq!(
        export
            .deliveries
            .iter()
            .find(|x| x.id == news_a.id)
            .map(|x| x.notification.payload.clone()),
        Some(serde_json::json!({ "title": "n-news" }))
    );
    let kinds: Vec<&str> = export.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    for kind in ["prompt_shown", "prompt_accepted", "subscribed", "notification_clicked"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(run
        .ok("user_export", store.user_export("nobody").await)
        .subscriptions
        .is_empty());

    let removed = run.ok("user_erase", store.user_erase("alice").await);
    assert_eq!(
        (
            removed.subscriptions,
            removed.topics,
            removed.deliveries,
            removed.events,
            removed.notifications,
            removed.users,
            removed.user_events
        ),
        (1, 2, 3, 4, 1, 1, 2),
        "{removed:?}"
    );
    assert_eq!(run.ok("user", store.user("alice").await), None, "alice is forgotten");
    assert_eq!(run.ok("user_time_zone", store.user_time_zone("alice").await), None);
    assert_eq!(
        run.ok("user_erase", store.user_erase("alice").await),
        askwell_server::store::Removed::default(),
        "erasure is idempotent"
    );
    let removed = run.ok("device_erase", store.device_erase("anon-b").await);
    assert_eq!(
        (
            removed.subscriptions,
            removed.topics,
            removed.deliveries,
            removed.events,
            removed.notifications,
            removed.users,
            removed.user_events
        ),
        (1, 2, 2, 1, 0, 0, 0),
        "{removed:?}"
    );
    assert_eq!(
        run.ok("user", store.user("bob").await),
        None,
        "bob's only device is gone, and his backend told nothing"
    );
    let carol = run
        .ok("user", store.user("carol").await)
        .expect("an erasure of others keeps carol");
    assert_eq!((carol.devices, carol.traits.len()), (0, 0));
    assert_eq!(run.ok("queue_depth", store.queue_depth().await), 0);
    assert_eq!(run.ok("next_due_ms", store.next_due_ms().await), None);

    // Delete (records `unsubscribed`), then sweep what is left.
    let e = subscription("https://push.example/e", "auth-e", None, &["news"]);
    let Upsert::Created(id_e) = run.ok("subscription_upsert", store.subscription_upsert(&e).await) else {
        panic!("{backend:?}: E is new");
    };
    let who = attribution("anon-e", "reply-alerts", "a");
    run.ok("subscription_attribute", store.subscription_attribute(id_e, &who).await);
    run.ok("subscription_delete", store.subscription_delete(id_e).await);
    assert_eq!(run.ok("subscription_count", store.subscription_count().await), 0);
    // C's subscribed and pruned-unsubscribed, E's subscribed and unsubscribed.
    assert_eq!(run.ok("events_sweep", store.events_sweep(start - DAY_MS).await), 0);
    assert_eq!(run.ok("events_sweep", store.events_sweep(now_ms() + DAY_MS).await), 4);
    assert_eq!(run.ok("events_sweep", store.events_sweep(now_ms() + DAY_MS).await), 0);
    let counts = run.ok("stats_counts", store.stats_counts(range).await);
    assert!(counts.is_empty(), "{counts:?}");

    scheduling(run, store).await;
    admission(run, store).await;
    rendered(run, store).await;
}

/// Personalised notifications: the recipients with their users' traits
/// and zones, then deliveries that each carry their own payload, one too
/// large to send (`too_large`, never due), all scheduled an hour ahead.
async fn rendered(run: &mut Run, store: &Store) {
    let mut ids = Vec::new();
    for (endpoint, user) in [
        ("ren-ada", Some("ren-ada")),
        ("ren-ada-2", Some("ren-ada")),
        ("ren-anon", None),
    ] {
        let sub = subscription(&format!("https://push.example/{endpoint}"), "auth-ren", user, &["ren"]);
        let Upsert::Created(id) = run.ok("subscription_upsert", store.subscription_upsert(&sub).await) else {
            panic!("{endpoint}: new");
        };
        ids.push(id);
    }
    let mut traits = Traits::new();
    traits.insert("first_name".into(), "Ada".into());
    let ada = UserChanges {
        traits,
        time_zone: ZoneChange::Set("Europe/Paris".into()),
    };
    run.ok("put_user", store.put_user("ren-ada", &ada).await);
    let found = run.ok("recipients", store.recipients(&Recipients::Topic("ren".into())).await);
    let seen: Vec<_> = found
        .iter()
        .map(|r| {
            (
                r.subscription_id,
                r.user_id.as_deref(),
                r.time_zone.as_deref(),
                r.traits.get("first_name"),
            )
        })
        .collect();
    let name = serde_json::Value::from("Ada");
    assert_eq!(
        seen,
        vec![
            (ids[0], Some("ren-ada"), Some("Europe/Paris"), Some(&name)),
            (ids[1], Some("ren-ada"), Some("Europe/Paris"), Some(&name)),
            (ids[2], None, None, None)
        ]
    );
    let by_user = run.ok(
        "recipients",
        store
            .recipients(&Recipients::Users(vec!["ren-ada".into(), "nobody".into()]))
            .await,
    );
    assert_eq!(by_user.iter().map(|r| r.subscription_id).collect::<Vec<_>>(), ids[..2]);

    let n = notification("n-ren", Some("key-ren"), Recipients::Topic("ren".into()));
    let row = |id: i64, variant: Option<&str>, payload: Rendered| RenderedRow {
        subscription_id: id,
        variant: variant.map(str::to_owned),
        payload,
    };
    let rows = [
        row(ids[0], Some("a"), Rendered::Payload(r#"{"title":"Hi Ada"}"#.to_owned())),
        row(ids[1], Some("b"), Rendered::TooLarge),
        row(ids[2], Some("holdout"), Rendered::Withheld),
        row(
            i64::MAX,
            Some("a"),
            Rendered::Payload(r#"{"title":"a device deleted since"}"#.to_owned()),
        ),
    ];
    let variants = ["a".to_owned(), "b".to_owned()];
    let experiment = Experiment {
        variants: variants.to_vec(),
        conversion: Some(("purchased".to_owned(), 3_600_000)),
        rollout: None,
    };
    let later = Schedule {
        at_ms: Some(now_ms() + 3_600_000),
        local: None,
    };
    let expected = Created {
        id: "n-ren".into(),
        recipients: 3,
        scheduled: 1,
        defaulted_time_zone: 0,
        too_large: 1,
        holdout: 1,
    };
    let utc = jiff::tz::TimeZone::UTC;
    let created = run.ok(
        "notification_create_rendered",
        store
            .notification_create_rendered(&n, &rows, &experiment, &later, &utc)
            .await,
    );
    assert_eq!(created, expected);
    let again = notification("n-ren-again", Some("key-ren"), Recipients::Topic("ren".into()));
    assert_eq!(
        run.ok(
            "notification_create_rendered",
            store
                .notification_create_rendered(&again, &rows, &experiment, &later, &utc)
                .await
        ),
        expected,
        "a repeated key answers the first"
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-ren").await),
        Some(StatusCounts {
            scheduled: 1,
            too_large: 1,
            withheld: 1,
            ..StatusCounts::default()
        })
    );
    let (stored, per_variant) = run
        .ok(
            "notification_variants",
            store.notification_variants("n-ren", None).await,
        )
        .expect("an A/B test");
    assert_eq!(stored, experiment);
    let seen: Vec<(&str, i64, i64, i64)> = per_variant
        .iter()
        .map(|v| (v.variant.as_str(), v.deliveries, v.delivered, v.reachable))
        .collect();
    assert_eq!(
        seen,
        [("a", 1, 0, 0), ("b", 1, 0, 0), ("holdout", 1, 0, 0)],
        "nothing delivered yet, nobody reachable"
    );
    let (_, by_name) = run
        .ok(
            "notification_variants",
            store.notification_variants("n-ren", Some("first_name")).await,
        )
        .expect("an A/B test");
    let groups: Vec<(&str, Option<&str>)> = by_name
        .iter()
        .map(|v| (v.variant.as_str(), v.group.as_deref()))
        .collect();
    assert_eq!(
        groups,
        [("a", Some("Ada")), ("b", Some("Ada")), ("holdout", None)],
        "by the users' first names"
    );
    assert_eq!(
        run.ok(
            "notification_variants",
            store.notification_variants("n-tz", Some("plan")).await
        ),
        None,
        "no variants"
    );
    let due: Vec<i64> = run
        .ok("notification_due_times", store.notification_due_times("n-ren").await)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(due, [ids[0]], "the too-large and withheld ones are never due");

    // A rollout: two devices wait for its decision, one is tested.
    let n = notification("n-roll", None, Recipients::Topic("ren".into()));
    let plan = RolloutPlan {
        plan: r#"{"test_share":0.3}"#.to_owned(),
        decide_ms: 1_000,
        decision: None,
    };
    let experiment = Experiment {
        variants: variants.to_vec(),
        conversion: None,
        rollout: Some(plan.clone()),
    };
    let rows = [
        row(ids[0], Some("b"), Rendered::Payload(r#"{"title":"tested"}"#.to_owned())),
        row(ids[1], None, Rendered::AwaitingWinner),
        row(ids[2], None, Rendered::AwaitingWinner),
    ];
    let now = Schedule::default();
    run.ok(
        "notification_create_rendered",
        store
            .notification_create_rendered(&n, &rows, &experiment, &now, &utc)
            .await,
    );
    assert_eq!(run.ok("rollouts_due", store.rollouts_due(999, 10).await), vec![]);
    let due = run.ok("rollouts_due", store.rollouts_due(1_000, 10).await);
    assert_eq!(
        due,
        vec![DueRollout {
            id: "n-roll".into(),
            plan: plan.plan.clone(),
            cancelled: false
        }]
    );
    let rest = run.ok("rollout_rest", store.rollout_rest("n-roll").await);
    let devices: Vec<i64> = rest.iter().map(|(_, r)| r.subscription_id).collect();
    assert_eq!(devices, ids[1..3]);
    let (_, per_variant) = run
        .ok(
            "notification_variants",
            store.notification_variants("n-roll", None).await,
        )
        .expect("an A/B test");
    let seen: Vec<(&str, i64)> = per_variant.iter().map(|v| (v.variant.as_str(), v.deliveries)).collect();
    assert_eq!(seen, [(ROLLOUT_REST, 2), ("b", 1)], "the rest is counted apart");
    // One of the rest is rendered; the other has no row (as if deleted).
    let decided = [(rest[0].0, Rendered::Payload(r#"{"title":"winner"}"#.to_owned()))];
    let kept = r#"{"test_share":0.3,"data":{}}"#;
    assert!(run.ok(
        "rollout_finish",
        store
            .rollout_finish(
                "n-roll",
                r#"{"variant":"b"}"#,
                kept,
                &decided,
                DeliveryStatus::Pruned,
                2_000
            )
            .await
    ));
    assert!(
        !run.ok(
            "rollout_finish",
            store
                .rollout_finish(
                    "n-roll",
                    r#"{"variant":"a"}"#,
                    kept,
                    &decided,
                    DeliveryStatus::Pruned,
                    3_000
                )
                .await
        ),
        "decided once"
    );
    assert_eq!(run.ok("rollouts_due", store.rollouts_due(i64::MAX, 10).await), vec![]);
    let counts = run
        .ok("notification_counts", store.notification_counts("n-roll").await)
        .expect("counts");
    assert_eq!(
        (counts.queued, counts.pruned, counts.awaiting_winner),
        (2, 1, 0),
        "{counts:?}"
    );
    let (stored, _) = run
        .ok(
            "notification_variants",
            store.notification_variants("n-roll", None).await,
        )
        .expect("an A/B test");
    // The dashboard's list: the newest first, with their counts.
    let listed = run.ok("notifications_recent", store.notifications_recent(200).await);
    assert!(
        listed.windows(2).all(|w| w[0].created_ms >= w[1].created_ms),
        "newest first"
    );
    let rolled = listed.iter().find(|n| n.id == "n-roll").expect("listed");
    assert_eq!(
        (rolled.experiment, rolled.counts.queued, rolled.counts.pruned),
        (true, 2, 1)
    );
    assert_eq!(
        run.ok("notifications_recent", store.notifications_recent(1).await)
            .len(),
        1
    );
    let stored = stored.rollout.expect("a rollout");
    assert_eq!(
        (stored.decision.as_deref(), stored.plan.as_str()),
        (Some(r#"{"variant":"b"}"#), kept),
        "the decision, and the plan as the decider kept it"
    );

    // Named segments, and counting a segment's devices.
    let condition = serde_json::json!({ "trait": "first_name", "equals": "Ada" });
    assert!(
        run.ok("segment_put", store.segment_put("adas", &condition, 5).await),
        "new"
    );
    assert!(
        !run.ok("segment_put", store.segment_put("adas", &condition, 6).await),
        "replaced"
    );
    let stored = run.ok("segment_get", store.segment_get("adas").await).expect("stored");
    assert_eq!((stored.condition.clone(), stored.updated_ms), (condition.clone(), 6));
    assert_eq!(run.ok("segments_list", store.segments_list().await), vec![stored]);
    let audience = run
        .call("read", askwell_server::store::Audience::read(&condition, "where"))
        .expect("valid");
    assert_eq!(
        run.ok(
            "recipient_count",
            store.recipient_count(&Recipients::Where(audience)).await
        ),
        2
    );
    assert_eq!(
        run.ok(
            "recipient_count",
            store.recipient_count(&Recipients::Topic("ren".into())).await
        ),
        3
    );
    assert!(run.ok("segment_delete", store.segment_delete("adas").await));
    assert!(!run.ok("segment_delete", store.segment_delete("adas").await));
    assert_eq!(run.ok("segment_get", store.segment_get("adas").await), None);
}

/// The delivery policy's ledger and answers: a send enters the ledger at
/// once (the next admission reads it; the batch's own rows are left out), a
/// hold is due again later, a cap and a collapse end the delivery.
async fn admission(run: &mut Run, store: &Store) {
    for i in 1..=4 {
        let device = subscription(
            &format!("https://push.example/p{i}"),
            &format!("auth-p{i}"),
            Some("pia"),
            &["policy"],
        );
        run.ok("subscription_upsert", store.subscription_upsert(&device).await);
    }
    let first = NewNotification {
        category: Some("replies".into()),
        topic: Some("thread".into()),
        ..notification("n-policy", None, Recipients::Topic("policy".into()))
    };
    run.ok("notification_create", store.notification_create(&first).await);
    let claimed = run.ok("deliveries_claim", store.deliveries_claim(10, 60_000).await);
    assert_eq!(claimed.len(), 4);
    assert!(
        claimed
            .iter()
            .all(|d| d.person == "user:pia" && d.count == 1 && !d.held),
        "{claimed:?}"
    );
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let later = now_ms() + DAY_MS;
    let answers = vec![
        Admission::Send(ids[0]),
        Admission::Hold(ids[1], later),
        Admission::Cap(ids[2]),
        Admission::Collapse(ids[3]),
    ];
    let recorded = run.ok(
        "deliveries_admit",
        store
            .deliveries_admit(&claimed, DAY_MS, |history, _now| {
                assert!(history.is_empty(), "{history:?}");
                answers.clone()
            })
            .await,
    );
    assert_eq!(recorded, answers);
    let counts = run.ok("notification_counts", store.notification_counts("n-policy").await);
    assert_eq!(
        counts,
        Some(StatusCounts {
            queued: 1,
            held: 1,
            capped: 1,
            collapsed: 1,
            ..StatusCounts::default()
        })
    );
    // How it was received, per category and topic, once delivered.
    run.ok(
        "delivery_finish",
        store
            .delivery_finish(ids[0], DeliveryStatus::Delivered, Some(201))
            .await,
    );
    let range = StatsRange {
        from_ms: 0,
        to_ms: now_ms() + DAY_MS,
        synthetic: false,
    };
    let reception = run.ok("stats_reception", store.stats_reception(range).await);
    let one = askwell::delivery::Reception {
        delivered: 1,
        ..Default::default()
    };
    assert_eq!(
        reception
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.reception))
            .collect::<Vec<_>>(),
        [("category", "replies", one), ("topic", "thread", one)]
    );
    let second = notification("n-policy-2", None, Recipients::Topic("policy".into()));
    run.ok("notification_create", store.notification_create(&second).await);
    let claimed = run.ok("deliveries_claim", store.deliveries_claim(10, 60_000).await);
    assert_eq!(claimed.len(), 4, "the held one is not due, the sent one is leased");
    run.ok(
        "deliveries_admit",
        store
            .deliveries_admit(&claimed, DAY_MS, |history, _now| {
                let sends = &history["user:pia"];
                assert_eq!(sends.len(), 1, "{history:?}");
                assert_eq!(sends[0].2, "n-policy");
                Vec::new()
            })
            .await,
    );

    // What pia turned off, as the user and on one device; erasing her
    // removes both.
    let user = run.call("user_subject", user_subject("pia"));
    let device = run.call("device_subject", device_subject(claimed[0].subscription_id));
    assert_eq!(
        run.ok("preferences_get", store.preferences_get(&user).await),
        Preferences::default()
    );
    let off = Preferences {
        muted: vec!["marketing".into()],
        muted_topics: vec!["thread:42".into()],
        paused_until_ms: Some(PAUSED_INDEFINITELY),
    };
    assert!(run.call(
        "silences",
        off.silences(Some("marketing"), None, 0) && off.silences(None, None, 0)
    ));
    run.ok("preferences_set", store.preferences_set(&user, &off).await);
    run.ok("preferences_set", store.preferences_set(&device, &off).await);
    let stored = run.ok(
        "preferences_of",
        store
            .preferences_of(&[user.clone(), device.clone(), "device:0".into()])
            .await,
    );
    assert_eq!((stored.len(), &stored[&user]), (2, &off));
    run.ok(
        "preferences_set",
        store.preferences_set(&device, &Preferences::default()).await,
    );
    assert_eq!(
        run.ok("preferences_get", store.preferences_get(&device).await),
        Preferences::default()
    );
    let updated = run.ok(
        "preferences_update",
        store
            .preferences_update(&device, |mut p| {
                p.muted.push("replies".into());
                Ok::<_, ()>(p)
            })
            .await,
    );
    assert_eq!(
        updated.map(|p| p.muted),
        Ok(vec!["replies".to_owned()]),
        "merged into what was stored: nothing"
    );
    let refused = run.ok(
        "preferences_update",
        store.preferences_update(&device, |_| Err("no")).await,
    );
    assert_eq!(refused, Err("no"));
    assert_eq!(
        run.ok("preferences_get", store.preferences_get(&device).await).muted,
        ["replies"],
        "a refusal changes nothing"
    );
    run.ok("user_erase", store.user_erase("pia").await);
    assert!(
        run.ok("preferences_of", store.preferences_of(&[user, device]).await)
            .is_empty(),
        "erased with her"
    );
}

/// Scheduled deliveries: each due in its recipient's zone (the user's before
/// the device's, else the default), a repeated key answering the same
/// counts, the workers' bounded due query, and cancellation — of free rows
/// at once, of a held one when its worker lets go.
async fn scheduling(run: &mut Run, store: &Store) {
    let zoned = |endpoint: &str, user: Option<&str>, zone: Option<&str>| NewSubscription {
        time_zone: zone.map(str::to_owned),
        ..subscription(endpoint, &format!("auth-{endpoint}"), user, &["tz"])
    };
    let kim = zoned("https://push.example/kim", Some("kim"), Some("Asia/Tokyo"));
    let ny = zoned("https://push.example/ny", None, Some("America/New_York"));
    let anywhere = zoned("https://push.example/anywhere", None, None);
    let mut ids = Vec::new();
    for sub in [&kim, &ny, &anywhere] {
        let Upsert::Created(id) = run.ok("subscription_upsert", store.subscription_upsert(sub).await) else {
            panic!("{}: new", sub.endpoint);
        };
        ids.push(id);
    }
    let kiritimati = UserChanges {
        traits: Traits::new(),
        time_zone: ZoneChange::Set("Pacific/Kiritimati".into()),
    };
    run.ok("put_user", store.put_user("kim", &kiritimati).await);

    let nine = Deliver::At(LocalTime::parse("09:00").expect("HH:MM"));
    let at = now_ms() + 3_600_000;
    let schedule = Schedule {
        at_ms: Some(at),
        local: Some(nine),
    };
    let paris = askwell::journey::zone("Europe/Paris").expect("a zone");
    let tz = notification("n-tz", Some("key-tz"), Recipients::Topic("tz".into()));
    let created = run.ok(
        "notification_create_scheduled",
        store.notification_create_scheduled(&tz, &schedule, &paris).await,
    );
    let expected = Created {
        id: "n-tz".into(),
        recipients: 3,
        scheduled: 3,
        defaulted_time_zone: 1,
        too_large: 0,
        holdout: 0,
    };
    assert_eq!(created, expected);
    let again = notification("n-tz-again", Some("key-tz"), Recipients::Topic("tz".into()));
    assert_eq!(
        run.ok(
            "notification_create_scheduled",
            store
                .notification_create_scheduled(&again, &Schedule::default(), &paris)
                .await
        ),
        expected,
        "a repeated key answers the first notification's counts"
    );
    let due = |zone: &str| -> i64 {
        let zone = askwell::journey::zone(zone).expect("a zone");
        i64::try_from(nine.next(u64::try_from(at).expect("positive"), &zone)).expect("in range")
    };
    let times = run.ok("notification_due_times", store.notification_due_times("n-tz").await);
    assert_eq!(
        times,
        vec![
            (ids[0], due("Pacific/Kiritimati")),
            (ids[1], due("America/New_York")),
            (ids[2], due("Europe/Paris"))
        ],
        "the user's zone, the device's, the default"
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-tz").await),
        Some(StatusCounts {
            scheduled: 3,
            ..StatusCounts::default()
        })
    );
    let first = times.iter().map(|(_, due)| *due).min();
    assert_eq!(run.ok("next_due_ms", store.next_due_ms().await), first);
    assert_eq!(
        run.ok("next_due_before", store.next_due_before(now_ms() + 1000).await),
        None,
        "nothing is due within the idle poll's second"
    );
    assert!(run
        .ok("deliveries_claim", store.deliveries_claim(10, 60_000).await)
        .is_empty());

    // Due now: one claimed by a worker, then the notification is cancelled.
    let now = notification("n-now", None, Recipients::Topic("tz".into()));
    assert_eq!(
        run.ok("notification_create", store.notification_create(&now).await),
        ("n-now".to_owned(), 3)
    );
    assert!(run
        .ok("next_due_before", store.next_due_before(now_ms() + 1000).await)
        .is_some());
    let held = run.ok("deliveries_claim", store.deliveries_claim(1, 60_000).await);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].notification_id, "n-now");
    assert_eq!(
        run.ok("notification_cancel", store.notification_cancel("n-now").await),
        Some(2),
        "the held delivery is the worker's"
    );
    assert_eq!(
        run.ok("notification_cancel", store.notification_cancel("n-tz").await),
        Some(3)
    );
    assert_eq!(
        run.ok("notification_cancel", store.notification_cancel("n-tz").await),
        Some(0)
    );
    assert_eq!(
        run.ok("notification_cancel", store.notification_cancel("n-unknown").await),
        None
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-now").await),
        Some(StatusCounts {
            queued: 1,
            cancelled: 2,
            ..StatusCounts::default()
        })
    );
    // The worker's push failed and would be tried again: cancelled instead,
    // and a late final record does not overwrite it.
    run.ok(
        "delivery_retry",
        store.delivery_retry(held[0].id, now_ms(), Some(503)).await,
    );
    run.ok(
        "delivery_finish",
        store
            .delivery_finish(held[0].id, DeliveryStatus::Delivered, Some(201))
            .await,
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-now").await),
        Some(StatusCounts {
            cancelled: 3,
            ..StatusCounts::default()
        })
    );
    assert_eq!(
        run.ok("notification_counts", store.notification_counts("n-tz").await),
        Some(StatusCounts {
            cancelled: 3,
            ..StatusCounts::default()
        })
    );
    assert_eq!(run.ok("queue_depth", store.queue_depth().await), 0);
    assert!(run
        .ok("notification_due_times", store.notification_due_times("n-tz").await)
        .is_empty());
}

/// Users: a device's zone, traits merged (a null deletes, 64 at most), the
/// user's own zone before the device's, events deduplicated across and
/// within batches, and the read helpers.
async fn users(run: &mut Run, store: &Store, id_a: i64, start: i64) {
    assert_eq!(run.ok("user", store.user("nobody").await), None);
    let alice = run.ok("user", store.user("alice").await).expect("alice has a device");
    assert_eq!((alice.devices, alice.traits.len(), alice.time_zone), (1, 0, None));
    assert_eq!(run.ok("user_time_zone", store.user_time_zone("alice").await), None);
    let mut tokyo = subscription("https://push.example/a", "auth-a", None, &[]);
    tokyo.time_zone = Some("Asia/Tokyo".into());
    assert_eq!(
        run.ok("subscription_upsert", store.subscription_upsert(&tokyo).await),
        Upsert::Updated(id_a)
    );
    assert_eq!(
        run.ok("user_time_zone", store.user_time_zone("alice").await).as_deref(),
        Some("Asia/Tokyo"),
        "no zone of her own: her device's"
    );

    let set = UserChanges {
        traits: traits(serde_json::json!({ "plan": "pro", "seats": 3, "beta": true })),
        time_zone: ZoneChange::Set("Europe/Berlin".into()),
    };
    let PutUser::Stored(stored) = run.ok("put_user", store.put_user("alice", &set).await) else {
        panic!("stored");
    };
    assert_eq!(
        (stored.traits.len(), stored.time_zone.as_deref(), stored.devices),
        (3, Some("Europe/Berlin"), 1)
    );
    assert_eq!(
        run.ok("user_time_zone", store.user_time_zone("alice").await).as_deref(),
        Some("Europe/Berlin"),
        "her own zone first"
    );
    let merge = UserChanges {
        traits: traits(serde_json::json!({ "plan": "team", "beta": null, "never": null })),
        time_zone: ZoneChange::Keep,
    };
    let PutUser::Stored(merged) = run.ok("put_user", store.put_user("alice", &merge).await) else {
        panic!("merged");
    };
    assert_eq!(merged.traits, traits(serde_json::json!({ "plan": "team", "seats": 3 })));
    assert_eq!(merged.time_zone.as_deref(), Some("Europe/Berlin"));
    let crowd = UserChanges {
        traits: (0..63).map(|i| (format!("t{i}"), serde_json::json!(i))).collect(),
        time_zone: ZoneChange::Clear,
    };
    assert_eq!(
        run.ok("put_user", store.put_user("alice", &crowd).await),
        PutUser::TooManyTraits { count: 65 }
    );
    let read = run.ok("user", store.user("alice").await).expect("alice");
    assert_eq!(
        (read.traits, read.time_zone.as_deref()),
        (merged.traits.clone(), Some("Europe/Berlin")),
        "a refused merge changes nothing, the zone neither"
    );
    let clear = UserChanges {
        time_zone: ZoneChange::Clear,
        ..UserChanges::default()
    };
    run.ok("put_user", store.put_user("alice", &clear).await);
    assert_eq!(
        run.ok("user_time_zone", store.user_time_zone("alice").await).as_deref(),
        Some("Asia/Tokyo")
    );
    run.ok(
        "put_user",
        store.put_user("alice", &set_zone_only("Europe/Berlin")).await,
    );

    // Events: d1 twice in one batch, then d1 again beside d2.
    let received = now_ms();
    let batch = [
        user_event("alice", "added_to_cart", Some("cart-9"), start - 1_000, Some("d1")),
        user_event("alice", "added_to_cart", Some("cart-9"), start, Some("d1")),
        user_event("carol", "viewed", None, start, None),
    ];
    let stored = run.ok("record_user_events", store.record_user_events(&batch, received).await);
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(
        (stored[0].dedup_id.as_deref(), stored[0].at_ms, stored[1].user.as_str()),
        (Some("d1"), start - 1_000, "carol")
    );
    assert!(stored[0].seq < stored[1].seq, "{stored:?}");
    assert_eq!(
        stored[0].properties,
        traits(serde_json::json!({ "total": 42.5, "currency": "EUR" }))
    );
    assert_eq!(stored[0].received_ms, received);
    let again = [
        user_event("alice", "added_to_cart", None, start, Some("d1")),
        user_event("alice", "added_to_cart", None, start + 1_000, Some("d2")),
    ];
    let stored_again = run.ok("record_user_events", store.record_user_events(&again, received).await);
    assert_eq!(
        stored_again.iter().map(|e| e.dedup_id.as_deref()).collect::<Vec<_>>(),
        [Some("d2")]
    );
    assert!(stored_again[0].seq > stored[1].seq);
    let carol = run.ok("user", store.user("carol").await).expect("created by her event");
    assert_eq!((carol.traits.len(), carol.time_zone, carol.devices), (0, None, 0));

    let since = run.ok(
        "user_events_since",
        store.user_events_since("alice", "added_to_cart", start - 1_000).await,
    );
    assert_eq!(
        since.iter().map(|e| (e.at_ms, e.key.as_deref())).collect::<Vec<_>>(),
        [(start - 1_000, Some("cart-9")), (start + 1_000, None)]
    );
    let later = run.ok(
        "user_events_since",
        store.user_events_since("alice", "added_to_cart", start).await,
    );
    assert_eq!(later.len(), 1);
    assert!(run
        .ok("user_events_since", store.user_events_since("alice", "viewed", 0).await)
        .is_empty());
    let all = run.ok("user_events_after", store.user_events_after(0, 100).await);
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{all:?}");
    let next = run.ok("user_events_after", store.user_events_after(all[0].seq, 1).await);
    assert_eq!(next, all[1..2].to_vec());
}

/// Journeys: versions, an instance saved, claimed, converted and counted,
/// the event cursor, the inactivity query, retirement. The user is "jules",
/// so the erasure counts of the main scenario stay alice's.
async fn journeys(run: &mut Run, store: &Store, start: i64) {
    use askwell_server::store::{InstanceRow, SendRow};
    let v1 = serde_json::json!({ "id": "j", "entry": { "event": "e" }, "steps": [{ "exit": true }] });
    assert_eq!(
        run.ok("journey_put", store.journey_put("j", &v1, start).await),
        (1, true)
    );
    assert_eq!(
        run.ok("journey_put", store.journey_put("j", &v1, start).await),
        (1, false)
    );
    let v2 = serde_json::json!({ "id": "j", "entry": { "event": "e" }, "steps": [{ "wait": { "hours": 1 } }] });
    assert_eq!(
        run.ok("journey_put", store.journey_put("j", &v2, start).await),
        (2, true)
    );
    let current = run.ok("journeys_current", store.journeys_current().await);
    assert_eq!(
        current.iter().map(|j| (j.id.as_str(), j.version)).collect::<Vec<_>>(),
        [("j", 2)]
    );
    let old = run
        .ok("journey_version", store.journey_version("j", 1).await)
        .expect("v1 kept");
    assert_eq!(old.definition, v1);

    let instance = InstanceRow {
        id: "inst-1".into(),
        journey: "j".into(),
        version: 2,
        user: "jules".into(),
        key: "k".into(),
        entered_ms: start,
        holdout: false,
        event: serde_json::Map::new(),
        step: 0,
        due_ms: Some(start + 1_000),
        ending: None,
        ended_by: None,
    };
    assert!(run.ok("journey_save", store.journey_save(&instance, &[], start).await));
    assert!(
        !run.ok("journey_save", store.journey_save(&instance, &[], start).await),
        "exists"
    );
    assert_eq!(
        run.ok("journey_priors", store.journey_priors("j", "jules").await),
        [("k".to_owned(), start, true)]
    );
    assert_eq!(
        run.ok("journey_running", store.journey_running("jules").await),
        std::slice::from_ref(&instance)
    );
    assert!(
        run.ok("journey_claim_due", store.journey_claim_due(start, 10, 60_000).await)
            .is_empty(),
        "not yet due"
    );
    let claimed = run.ok(
        "journey_claim_due",
        store.journey_claim_due(start + 1_000, 10, 60_000).await,
    );
    assert_eq!(claimed, std::slice::from_ref(&instance));
    assert!(
        run.ok(
            "journey_claim_due",
            store.journey_claim_due(start + 2_000, 10, 60_000).await
        )
        .is_empty(),
        "leased"
    );
    let ended = InstanceRow {
        due_ms: None,
        ending: Some("completed".into()),
        ..instance.clone()
    };
    let send = SendRow {
        instance: "inst-1".into(),
        step: 0,
        journey: "j".into(),
        notification: None,
        withheld: true,
        error: None,
    };
    assert!(!run.ok("journey_save", store.journey_save(&ended, &[send], start + 2_000).await));
    assert!(run
        .ok("journey_running", store.journey_running("jules").await)
        .is_empty());
    assert_eq!(
        run.ok(
            "journey_convert",
            store.journey_convert("j", "jules", start + 3_000).await
        ),
        1
    );
    let counts = run.ok("journey_counts", store.journey_counts("j").await);
    assert_eq!(counts.instances, [(false, "completed".to_owned(), 1)]);
    assert_eq!(counts.converted, [(false, 1)]);
    assert_eq!(counts.steps, [(0, 0, 1, 0)]);

    // Many notifications in one transaction (a journey sweep): jules has no
    // device, so none reaches anyone; a repeated key answers the first.
    let to_jules = || Recipients::User("jules".into());
    let batch = [
        notification("many-1", Some("journey:x:1"), to_jules()),
        notification("many-2", Some("journey:x:1"), to_jules()),
    ];
    assert_eq!(
        run.ok(
            "notifications_create_many",
            store.notifications_create_many(&batch).await
        ),
        [("many-1".to_owned(), 0), ("many-1".to_owned(), 0)]
    );

    // The batch forms: one user's facts (traits, zone, instances) read at
    // once, and a batch of writes in one transaction.
    let facts = run.ok(
        "journey_facts",
        store.journey_facts(&strings(&["jules", "alice", "nobody"])).await,
    );
    assert_eq!(facts.len(), 3);
    assert_eq!(facts["jules"].priors, [("j".to_owned(), "k".to_owned(), start, false)]);
    assert!(facts["jules"].running.is_empty());
    assert_eq!(facts["alice"].time_zone.as_deref(), Some("Europe/Berlin"));
    assert!(facts["nobody"].traits.is_empty());
    let second = InstanceRow {
        id: "inst-2".into(),
        due_ms: Some(start),
        ..instance.clone()
    };
    let writes = askwell_server::store::JourneyWrites {
        instances: vec![(second.clone(), true)],
        sends: Vec::new(),
        conversions: vec![("j".into(), "jules".into(), start + 4_000)],
    };
    run.ok("journey_save_many", store.journey_save_many(&writes, start).await);
    let facts = run.ok("journey_facts", store.journey_facts(&strings(&["jules"])).await);
    assert_eq!(facts["jules"].running, std::slice::from_ref(&second));
    let profiles = run.ok(
        "journey_profiles",
        store.journey_profiles(&strings(&["jules", "alice"])).await,
    );
    assert_eq!(profiles["alice"].time_zone.as_deref(), Some("Europe/Berlin"));
    assert!(
        profiles["jules"].running.is_empty() && profiles["jules"].priors.is_empty(),
        "a due step's batch reads no instances"
    );

    // A batch's sends and its steps in one transaction: inst-2 sends (to
    // jules, who has no device) and moves on; replaying the batch enqueues
    // nothing new and leaves one send row.
    let moved_second = InstanceRow {
        step: 2,
        due_ms: Some(start + 5_000),
        ..second.clone()
    };
    let commit = |id: &str| {
        (
            [notification(id, Some("journey:inst-2:1"), to_jules())],
            vec![SendRow {
                instance: "inst-2".into(),
                step: 1,
                journey: "j".into(),
                notification: None,
                withheld: false,
                error: None,
            }],
            askwell_server::store::JourneyWrites {
                instances: vec![(moved_second.clone(), false)],
                ..Default::default()
            },
        )
    };
    for id in ["commit-1", "commit-2"] {
        let (sends, waiting, writes) = commit(id);
        assert_eq!(
            run.ok(
                "journey_commit",
                store.journey_commit(&sends, waiting, writes, start).await
            ),
            1
        );
    }
    let counts = run.ok("journey_counts", store.journey_counts("j").await);
    assert_eq!(counts.steps, [(0, 0, 1, 0), (1, 1, 0, 0)], "one send row, to commit-1");
    assert!(run
        .ok("notification_counts", store.notification_counts("commit-1").await)
        .is_some());
    assert!(
        run.ok("notification_counts", store.notification_counts("commit-2").await)
            .is_none(),
        "the replay's key answered commit-1"
    );
    assert_eq!(
        run.ok("journey_running", store.journey_running("jules").await),
        [moved_second]
    );

    let seq = run.ok("journey_cursor_take", store.journey_cursor_take(start, 60_000).await);
    assert_eq!(seq, Some(0));
    assert_eq!(
        run.ok("journey_cursor_take", store.journey_cursor_take(start, 60_000).await),
        None,
        "held"
    );
    run.ok("journey_cursor_advance", store.journey_cursor_advance(5, true).await);
    assert_eq!(
        run.ok("journey_cursor_take", store.journey_cursor_take(start, 60_000).await),
        Some(5)
    );
    // A server whose lease lapsed, finishing an older batch, never moves
    // the cursor back (the events after it would be read again).
    run.ok("journey_cursor_advance", store.journey_cursor_advance(3, true).await);
    assert_eq!(
        run.ok("journey_cursor_take", store.journey_cursor_take(start, 60_000).await),
        Some(5),
        "the cursor only moves forward"
    );
    run.ok("journey_cursor_advance", store.journey_cursor_advance(5, true).await);

    let inactive = run.ok(
        "users_inactive_since",
        store.users_inactive_since(start + DAY_MS, 100).await,
    );
    assert!(inactive.iter().any(|(user, _)| user == "alice"), "{inactive:?}");
    assert!(run
        .ok("users_inactive_since", store.users_inactive_since(0, 100).await)
        .is_empty());

    assert_eq!(
        run.ok("journey_delete", store.journey_delete("j", start).await),
        Some(1),
        "inst-2 ends"
    );
    assert_eq!(run.ok("journey_delete", store.journey_delete("j", start).await), None);
    assert!(run.ok("journeys_current", store.journeys_current().await).is_empty());
}

fn set_zone_only(zone: &str) -> UserChanges {
    UserChanges {
        time_zone: ZoneChange::Set(zone.to_owned()),
        ..UserChanges::default()
    }
}

// ---------------------------------------------------------------------------
// Migration parity
// ---------------------------------------------------------------------------

/// A column as both dialects can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// `int64`, `int32`, `text`, … (SQLite's INTEGER is 64 bits).
    kind: String,
    /// NOT NULL (or part of the primary key).
    not_null: bool,
}

impl Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.kind, if self.not_null { " NOT NULL" } else { " NULL" })
    }
}

type Schema = BTreeMap<String, BTreeMap<String, Column>>;

fn migrations_dir(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect)
}

/// The `.sql` files of one dialect, in the order applied.
fn migration_files(dialect: &str) -> Vec<PathBuf> {
    let dir = migrations_dir(dialect);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

fn migration_count() -> i64 {
    i64::try_from(migration_files("sqlite").len()).expect("count")
}

#[tokio::test]
async fn both_migration_sets_define_the_same_tables_and_columns() {
    let names = |dialect: &str| -> Vec<String> {
        migration_files(dialect)
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        names("sqlite"),
        names("postgres"),
        "the two dialects have the same migration files"
    );

    // SQLite: the schema the store really builds (and it applies every file).
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_dir(dir.path()).await.expect("sqlite store");
    assert_eq!(
        store.schema_version().await.expect("version"),
        migration_count(),
        "the store applies every file in migrations/sqlite"
    );
    drop(store);
    let sqlite = live_schema(&format!("sqlite://{}", dir.path().join("askwell.db").display()), false).await;

    let postgres = if let Some(admin_url) = support::postgres_url() {
        let url = support::fresh_postgres_database(&admin_url).await;
        let store = Store::connect(&url).await.expect("postgres store");
        assert_eq!(
            store.schema_version().await.expect("version"),
            migration_count(),
            "the store applies every file in migrations/postgres"
        );
        drop(store);
        note("migration parity: compared the live SQLite schema with the live PostgreSQL schema");
        live_schema(&url, true).await
    } else {
        // No server: read the PostgreSQL files. The reader is trusted only
        // if it reproduces the live SQLite schema from the SQLite files.
        let parsed_sqlite = parse_migrations("sqlite", false);
        let unread = diff(("live sqlite", &sqlite), ("parsed sqlite files", &parsed_sqlite));
        assert!(
            unread.is_empty(),
            "the migration reader of tests/store_parity.rs misreads the SQLite files (teach it, or run with \
             ASKWELL_TEST_POSTGRES_URL):\n  {}",
            unread.join("\n  ")
        );
        note("migration parity: no ASKWELL_TEST_POSTGRES_URL, compared the live SQLite schema with the PostgreSQL migration files as parsed (statically)");
        parse_migrations("postgres", true)
    };
    let differences = diff(("sqlite", &sqlite), ("postgres", &postgres));
    assert!(
        differences.is_empty(),
        "the SQLite and PostgreSQL migrations differ:\n  {}",
        differences.join("\n  ")
    );
    for table in [
        "subscriptions",
        "subscription_topics",
        "notifications",
        "deliveries",
        "events",
    ] {
        assert!(sqlite.contains_key(table), "{table} in {sqlite:?}");
    }
}

/// Tables and columns of a migrated database.
async fn live_schema(url: &str, postgres: bool) -> Schema {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.expect("raw connection");
    let sql = if postgres {
        "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c, CAST(data_type AS TEXT) AS ty, \
         CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS nn, CAST(0 AS BIGINT) AS pk \
         FROM information_schema.columns WHERE table_schema = current_schema()"
    } else {
        "SELECT m.name AS t, p.name AS c, p.type AS ty, p.\"notnull\" AS nn, p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
    };
    let mut schema = Schema::new();
    for row in sqlx::query(sql).fetch_all(&mut conn).await.expect("columns") {
        let (nn, pk): (i64, i64) = (row.get("nn"), row.get("pk"));
        let column = Column {
            kind: kind(&row.get::<String, _>("ty"), postgres),
            not_null: nn != 0 || pk != 0,
        };
        schema.entry(row.get("t")).or_default().insert(row.get("c"), column);
    }
    conn.close().await.expect("close");
    schema
}

/// A declared type as its storage: SQLite's INTEGER affinity is 64 bits,
/// PostgreSQL's `integer` is 32.
fn kind(declared: &str, postgres: bool) -> String {
    let declared = declared.trim().to_lowercase();
    let first = declared.split_whitespace().next().unwrap_or("");
    let first = first.split('(').next().unwrap_or("");
    match first {
        "bigint" | "int8" | "bigserial" => "int64",
        "integer" | "int" | "int4" | "serial" if postgres => "int32",
        "integer" | "int" => "int64",
        "smallint" | "int2" => "int16",
        "text" | "character varying" | "varchar" => "text",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Differences between two schemas, each naming the table and column.
fn diff((left, a): (&str, &Schema), (right, b): (&str, &Schema)) -> Vec<String> {
    let mut out = Vec::new();
    let tables: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for table in tables {
        match (a.get(table), b.get(table)) {
            (Some(_), None) => out.push(format!("table {table}: only in {left}")),
            (None, Some(_)) => out.push(format!("table {table}: only in {right}")),
            (Some(x), Some(y)) => {
                let columns: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for column in columns {
                    match (x.get(column), y.get(column)) {
                        (Some(_), None) => out.push(format!("column {table}.{column}: only in {left}")),
                        (None, Some(_)) => out.push(format!("column {table}.{column}: only in {right}")),
                        (Some(p), Some(q)) if p != q => {
                            out.push(format!("column {table}.{column}: {left} {p}, {right} {q}"));
                        }
                        _ => {}
                    }
                }
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

/// The schema the migration files of `dialect` declare, read statically:
/// CREATE TABLE, ALTER TABLE … ADD / DROP COLUMN, DROP TABLE (what the
/// migrations use; anything else that changes columns fails the reader's
/// check against the live SQLite schema). The store's own `askwell_schema`
/// table is added as the store creates it.
fn parse_migrations(dialect: &str, postgres: bool) -> Schema {
    let mut schema = Schema::new();
    schema.entry("askwell_schema".into()).or_default().insert(
        "version".into(),
        Column {
            kind: "int64".into(),
            not_null: true,
        },
    );
    for file in migration_files(dialect) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        let text: String = text
            .lines()
            .map(|line| line.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in text.split(';') {
            apply(&mut schema, statement, postgres, &file);
        }
    }
    schema
}

fn apply(schema: &mut Schema, statement: &str, postgres: bool, file: &Path) {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    let starts = |prefix: &[&str]| upper.len() >= prefix.len() && upper.iter().zip(prefix).all(|(w, p)| w == p);
    // Skips IF [NOT] EXISTS after position `at`.
    let skip_if = |mut at: usize| {
        if upper.get(at).map(String::as_str) == Some("IF") {
            at += if upper.get(at + 1).map(String::as_str) == Some("NOT") {
                3
            } else {
                2
            };
        }
        at
    };
    let name = |at: usize| -> String {
        let word = words
            .get(at)
            .unwrap_or_else(|| panic!("{}: cut short: {statement}", file.display()));
        word.split('(').next().unwrap_or("").trim_matches('"').to_lowercase()
    };
    if starts(&["CREATE", "TABLE"]) {
        let table = name(skip_if(2));
        let open = statement.find('(').expect("column list");
        let close = statement.rfind(')').expect("column list end");
        let mut columns = BTreeMap::new();
        let mut primary_key = Vec::new();
        for item in split_top_level(&statement[open + 1..close]) {
            let item_upper = item.to_uppercase();
            let first = item_upper.split_whitespace().next().unwrap_or("");
            match first {
                "PRIMARY" => {
                    let list = &item[item.find('(').expect("key list") + 1..item.rfind(')').expect("key end")];
                    primary_key.extend(list.split(',').map(|c| c.trim().to_lowercase()));
                }
                "UNIQUE" | "FOREIGN" | "CONSTRAINT" | "CHECK" | "" => {}
                _ => {
                    let (column, rest) = item.trim().split_once(char::is_whitespace).expect("column type");
                    columns.insert(column.trim_matches('"').to_lowercase(), column_def(rest, postgres));
                }
            }
        }
        for column in primary_key {
            if let Some(c) = columns.get_mut(&column) {
                c.not_null = true;
            }
        }
        schema.entry(table).or_insert(columns);
    } else if starts(&["ALTER", "TABLE"]) {
        let table = name(skip_if(2));
        let at = skip_if(2) + 1;
        let entry = schema.entry(table.clone()).or_default();
        match upper.get(at).map(String::as_str) {
            Some("ADD") => {
                let mut at = at + 1;
                if upper.get(at).map(String::as_str) == Some("COLUMN") {
                    at += 1;
                }
                let at = skip_if(at);
                let column = name(at);
                let rest = words[at + 1..].join(" ");
                entry.entry(column).or_insert_with(|| column_def(&rest, postgres));
            }
            Some("DROP") => {
                let mut at = at + 1;
                if upper.get(at).map(String::as_str) == Some("COLUMN") {
                    at += 1;
                }
                entry.remove(&name(skip_if(at)));
            }
            other => panic!(
                "{}: the migration reader does not know ALTER TABLE {table} {other:?}",
                file.display()
            ),
        }
    } else if starts(&["DROP", "TABLE"]) {
        schema.remove(&name(skip_if(2)));
    }
}

fn column_def(rest: &str, postgres: bool) -> Column {
    let upper = rest.to_uppercase();
    Column {
        kind: kind(rest, postgres),
        not_null: upper.contains("NOT NULL") || upper.contains("PRIMARY KEY"),
    }
}

/// Splits a column list at commas outside parentheses.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut out, mut depth, mut from) = (Vec::new(), 0, 0);
    for (i, ch) in list.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&list[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[from..]);
    out
}

#[test]
fn the_schema_comparison_names_each_difference() {
    let read = |sql: &str, postgres: bool| {
        let mut schema = Schema::new();
        for statement in sql.split(';') {
            apply(&mut schema, statement, postgres, Path::new("inline.sql"));
        }
        schema
    };
    let sqlite = read(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, gone TEXT, \
         PRIMARY KEY (id)); ALTER TABLE t ADD COLUMN added INTEGER; CREATE INDEX i ON t(name)",
        false,
    );
    let postgres = read(
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT, \
         count INTEGER NOT NULL); ALTER TABLE t ADD COLUMN IF NOT EXISTS added BIGINT; CREATE TABLE u (x TEXT)",
        true,
    );
    assert_eq!(
        diff(("sqlite", &sqlite), ("postgres", &postgres)),
        [
            "column t.count: only in postgres",
            "column t.gone: only in sqlite",
            "column t.name: sqlite text NOT NULL, postgres text NULL",
            "table u: only in postgres",
        ]
    );
    let int32 = read("CREATE TABLE t (id INTEGER PRIMARY KEY)", true);
    let int64 = read("CREATE TABLE t (id INTEGER PRIMARY KEY)", false);
    assert_eq!(
        diff(("sqlite", &int64), ("postgres", &int32)),
        ["column t.id: sqlite int64 NOT NULL, postgres int32 NOT NULL"],
        "PostgreSQL's INTEGER is 32 bits, SQLite's 64"
    );
}
