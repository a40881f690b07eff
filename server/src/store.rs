//! The database: an embedded SQLite file by default, PostgreSQL when
//! `ASKWELL_DATABASE_URL` is a `postgres://` URL (several server processes
//! can then share one database and its outbox).
//!
//! One code path serves both through sqlx's `Any` driver: queries use `$N`
//! placeholders (numbered in order of first use, which SQLite also accepts)
//! and portable SQL; only the migrations and the claim query differ.
//! `tests/store_parity.rs` calls every public method on both (and compares
//! the two migration sets), so a SQLite-only function fails it on PostgreSQL.

mod deliveries;
mod events;
mod journeys;
mod preferences;
mod privacy;
mod rendered;
mod rollouts;
mod segment_sql;
mod segments;
mod stats;
mod subscriptions;
mod users;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use deliveries::{
    Admission, Audience, Claimed, Created, NewNotification, NotificationSummary, Recipients, Recorded, Schedule,
    SendHistory, StatusCounts,
};
pub use events::Event;
pub use journeys::{InstanceRow, JourneyCounts, JourneyWrites, SendRow, StoredJourney, UserFacts};
pub use preferences::{device_subject, user_subject, Preferences, PAUSED_INDEFINITELY};
pub use privacy::{
    ExportedAttribution, ExportedDelivery, ExportedEvent, ExportedJourney, ExportedNotification, ExportedSubscription,
    ExportedTrackedEvent, Removed, UserExport,
};
pub use rendered::{
    DueRollout, Experiment, Recipient, Rendered, RenderedRow, RolloutPlan, VariantCounts, ROLLOUT_REST,
};
pub use segments::StoredSegment;
pub use stats::{CountRow, DayRow, DeliveryRow, ReceptionRow, StatsRange, SubscriberRow};
pub use subscriptions::{Attribution, NewSubscription, StoredSubscription, Swap, TopicsChange, Upsert};
pub use users::{NewUserEvent, PutUser, StoredEvent, StoredUser, Traits, UserChanges, ZoneChange};

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Embedded migrations per backend, in order; a version is applied once.
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_subscriptions.sql")),
    (2, include_str!("../migrations/sqlite/0002_outbox.sql")),
    (3, include_str!("../migrations/sqlite/0003_events.sql")),
    (4, include_str!("../migrations/sqlite/0004_funnel.sql")),
    (5, include_str!("../migrations/sqlite/0005_users.sql")),
    (6, include_str!("../migrations/sqlite/0006_scheduling.sql")),
    (7, include_str!("../migrations/sqlite/0007_journeys.sql")),
    (8, include_str!("../migrations/sqlite/0008_delivery_policy.sql")),
    (9, include_str!("../migrations/sqlite/0009_preferences.sql")),
    (10, include_str!("../migrations/sqlite/0010_muted_topics.sql")),
    (11, include_str!("../migrations/sqlite/0011_topic_labels.sql")),
    (12, include_str!("../migrations/sqlite/0012_personal.sql")),
    (13, include_str!("../migrations/sqlite/0013_segments.sql")),
    (14, include_str!("../migrations/sqlite/0014_rollout.sql")),
    (15, include_str!("../migrations/sqlite/0015_notifications_view.sql")),
    (16, include_str!("../migrations/sqlite/0016_audience_where.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_subscriptions.sql")),
    (2, include_str!("../migrations/postgres/0002_outbox.sql")),
    (3, include_str!("../migrations/postgres/0003_events.sql")),
    (4, include_str!("../migrations/postgres/0004_funnel.sql")),
    (5, include_str!("../migrations/postgres/0005_users.sql")),
    (6, include_str!("../migrations/postgres/0006_scheduling.sql")),
    (7, include_str!("../migrations/postgres/0007_journeys.sql")),
    (8, include_str!("../migrations/postgres/0008_delivery_policy.sql")),
    (9, include_str!("../migrations/postgres/0009_preferences.sql")),
    (10, include_str!("../migrations/postgres/0010_muted_topics.sql")),
    (11, include_str!("../migrations/postgres/0011_topic_labels.sql")),
    (12, include_str!("../migrations/postgres/0012_personal.sql")),
    (13, include_str!("../migrations/postgres/0013_segments.sql")),
    (14, include_str!("../migrations/postgres/0014_rollout.sql")),
    (15, include_str!("../migrations/postgres/0015_notifications_view.sql")),
    (16, include_str!("../migrations/postgres/0016_audience_where.sql")),
];

/// SQLite settings per connection: WAL + NORMAL is durable across process
/// crashes (kill -9); a busy timeout lets several workers (and processes)
/// write; a 16 MiB page cache (default 2 MiB) keeps the event indexes in
/// memory, and in-memory temp b-trees serve the stats' GROUP BYs.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
     PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;";

/// Handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: whose turn it is to write (see [`Store::write`]).
    writer: Option<Arc<Mutex<()>>>,
    /// The data dir's instance lock, when this process holds it.
    instance_lock: Option<Arc<std::fs::File>>,
}

/// A write transaction; dereferences to its connection (`&mut *tx`).
/// Dropping it without [`WriteTx::commit`] rolls back.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then gives the next writer its turn.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Opens (creating if needed) `askwell.db` inside `data_dir` and migrates it.
    ///
    /// # Errors
    /// When the directory cannot be created or the database cannot be opened.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, sqlx::Error> {
        private_dir(data_dir)?;
        let db = data_dir.join("askwell.db");
        private_file(&db)?;
        let url = format!("sqlite://{}", db.display());
        let mut store = Self::connect(&url).await?;
        store.claim_instance_lock(data_dir).await?;
        Ok(store)
    }

    /// Takes `askwell.lock` in the data dir if no other process holds it
    /// (held for the store's lifetime; the OS drops it when a process dies,
    /// even by kill -9). The holder knows no one else can hold delivery
    /// claims, so claims left in the database are a dead process's: they are
    /// released at once instead of after their lease (120 s by default).
    async fn claim_instance_lock(&mut self, data_dir: &Path) -> Result<(), sqlx::Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("askwell.lock"))?;
        if file.try_lock().is_ok() {
            self.instance_lock = Some(Arc::new(file));
            let released = self.deliveries_release_claims().await? + self.journey_release_claims().await?;
            if released > 0 {
                tracing::info!(released, "released the claims of a previous run that did not finish");
            }
        }
        Ok(())
    }

    /// Connects to a `sqlite:` or `postgres://` URL and applies pending migrations.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be opened or migrated.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                "ASKWELL_DATABASE_URL must start with sqlite: or postgres://".into(),
            ));
        };
        let (url, connections) = match backend {
            // mode=rwc creates the file on first start.
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                (format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' }), 8)
            }
            // Every connection to `:memory:` is a new database: keep one.
            Backend::Sqlite if url.contains(":memory:") => (url.to_owned(), 1),
            _ => (url.to_owned(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let writer = (backend == Backend::Sqlite).then(Arc::default);
        let store = Self {
            pool,
            backend,
            writer,
            instance_lock: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a private in-memory SQLite database, for tests.
    ///
    /// # Errors
    /// When SQLite cannot be initialised.
    pub async fn in_memory() -> Result<Self, sqlx::Error> {
        Self::connect("sqlite::memory:").await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. Every write goes through here, because
    /// SQLite under WAL refuses a deferred transaction's read→write upgrade at
    /// once (`SQLITE_BUSY`, "database is locked", no busy-timeout wait) when
    /// another connection committed after its first read: so SQLite writes
    /// take the write lock first (`BEGIN IMMEDIATE`, which does wait on the
    /// busy timeout — another process may hold it) and, inside this process,
    /// queue for their turn on a fair async mutex instead of spinning in
    /// SQLite's busy handler (its sleeps of up to 100 ms would be the p99).
    /// SQLite has one writer at a time anyway, so the queue costs no
    /// throughput. PostgreSQL writes concurrently: a plain `BEGIN`.
    ///
    /// The transaction starts in a task of its own, because a caller can be
    /// dropped at any await (a client that disconnects drops its request's
    /// future) and sqlx 0.8's SQLite `begin_with` is not cancel-safe: it
    /// awaits once more after `BEGIN IMMEDIATE` has run and before the
    /// `Transaction` that would roll it back exists. Dropped there, the
    /// pooled connection kept the write lock forever: every later write
    /// failed with "database is locked", and the connection itself with
    /// "begin_with at non-zero transaction depth". The task always finishes;
    /// if no one awaits it any more, its `Transaction` is dropped, which
    /// rolls back before the connection is pooled again.
    ///
    /// # Errors
    /// When no connection can be had or the transaction cannot start.
    pub(crate) async fn write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = match &self.writer {
            Some(writer) => Some(writer.clone().lock_owned().await),
            None => None,
        };
        let pool = self.pool.clone();
        let backend = self.backend;
        let begin = tokio::spawn(async move {
            let tx = match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
                Backend::Postgres => pool.begin().await?,
            };
            Ok(WriteTx { tx, _turn: turn })
        });
        begin
            .await
            .map_err(|err| sqlx::Error::Protocol(format!("starting a write transaction failed: {err}")))?
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            // Several processes may start at once: migrate one at a time.
            sqlx::query("SELECT pg_advisory_xact_lock(7411029)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS askwell_schema (version BIGINT PRIMARY KEY)")
            .execute(&mut *tx)
            .await?;
        for (version, sql) in migrations {
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM askwell_schema WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO askwell_schema (version) VALUES ($1)")
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }

    /// The newest applied schema version.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn schema_version(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM askwell_schema")
            .fetch_one(&self.pool)
            .await
    }
}

/// Creates `dir` readable by this user only (0700), and tightens an
/// existing one: the database holds every subscriber's auth secret.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Creates (or tightens) the database file as 0600 before SQLite opens it;
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .append(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// One day in milliseconds (stats group by UTC day).
pub const DAY_MS: i64 = 86_400_000;

/// The rows of a multi-row write as one JSON parameter (`$n`, an array of
/// arrays), read back as a table `r` whose `r.value ->> i` is column i
/// (text or number; `CAST` the numbers for PostgreSQL, whose `->>` gives
/// text). One parameter, not one per value: SQLite looks each parameter up
/// by name in a list (`sqlite3_bind_parameter_name`), so binding costs the
/// square of their number — 500 rows of 14 values bound slower than a
/// statement per row, and a statement per row was most of a 100,000-user
/// journey sweep.
pub(crate) fn json_rows(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("json_each(${n}) AS r"),
        Backend::Postgres => format!("jsonb_array_elements(CAST(${n} AS jsonb)) AS r(value)"),
    }
}

/// `SELECT` of the strings of the JSON array parameter `$n`: a list for
/// `IN (…)` as one parameter (see [`json_rows`]).
pub(crate) fn json_texts(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
        Backend::Postgres => format!("SELECT jsonb_array_elements_text(CAST(${n} AS jsonb))"),
    }
}

/// [`json_texts`] for integers (row ids).
pub(crate) fn json_ids(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
        Backend::Postgres => format!("SELECT CAST(jsonb_array_elements_text(CAST(${n} AS jsonb)) AS BIGINT)"),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_database_file_and_migrates_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_in_dir(dir.path()).await.expect("open");
        let newest = SQLITE_MIGRATIONS.last().map_or(0, |(version, _)| *version);
        assert_eq!(store.schema_version().await.expect("version"), newest);
        drop(store);
        let reopened = Store::open_in_dir(dir.path()).await.expect("reopen");
        assert_eq!(reopened.schema_version().await.expect("version"), newest);
        assert_eq!(reopened.subscription_count().await.expect("count"), 0);
        assert!(dir.path().join("askwell.db").exists());
    }

    /// A request whose client goes away is dropped mid-await, wherever it
    /// is: a write cancelled while its transaction starts must not leave a
    /// pooled connection inside `BEGIN IMMEDIATE` (holding SQLite's write
    /// lock, so every later write waits out the busy timeout and fails with
    /// "database is locked", and the poisoned connection refuses to begin).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_cancelled_while_it_begins_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_in_dir(dir.path()).await.expect("open");
        for attempt in 0..200u32 {
            let polls = drop_after_polls(store.write(), attempt % 20 + 1);
            let next = tokio::time::timeout(std::time::Duration::from_secs(3), async {
                let mut tx = store.write().await?;
                sqlx::query("DELETE FROM subscriptions WHERE id = -1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            })
            .await;
            assert!(
                matches!(next, Ok(Ok(()))),
                "attempt {attempt} (dropped after {polls} polls): the next write got {next:?}"
            );
        }
    }

    /// Polls `future` up to `polls` times, 100 µs apart (SQLite's worker
    /// thread moves on meanwhile), then drops it as a cancelled request's
    /// future is dropped. Returns how many polls it took.
    fn drop_after_polls<F: std::future::Future>(future: F, polls: u32) -> u32 {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for poll in 1..=polls {
            if future.as_mut().poll(&mut cx).is_ready() {
                return poll;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        polls
    }

    #[tokio::test]
    async fn the_data_dir_and_the_database_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("temp dir");
        let data = parent.path().join("askwell-data");
        let store = Store::open_in_dir(&data).await.expect("open");
        store.subscription_count().await.expect("a query opens the WAL");
        let mode = |name: &str| {
            std::fs::metadata(data.join(name))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_else(|err| panic!("{name}: {err}"))
        };
        assert_eq!(mode(""), 0o700, "data dir");
        for file in ["askwell.db", "askwell.db-wal", "askwell.db-shm"] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
}
