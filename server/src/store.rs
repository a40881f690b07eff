//! The database: an embedded SQLite file by default, PostgreSQL when
//! `ASKWELL_DATABASE_URL` is a `postgres://` URL (several server processes
//! can then share one database and its outbox).
//!
//! One code path serves both through sqlx's `Any` driver: queries use `$N`
//! placeholders (numbered in order of first use, which SQLite also accepts)
//! and portable SQL; only the migrations and the claim query differ.

mod deliveries;
mod events;
mod stats;
mod subscriptions;

use std::path::Path;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use deliveries::{Claimed, NewNotification, Recipients, StatusCounts};
pub use events::Event;
pub use stats::{CountRow, DayRow, DeliveryRow, StatsRange, SubscriberRow};
pub use subscriptions::{Attribution, NewSubscription, StoredSubscription};

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
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_subscriptions.sql")),
    (2, include_str!("../migrations/postgres/0002_outbox.sql")),
    (3, include_str!("../migrations/postgres/0003_events.sql")),
    (4, include_str!("../migrations/postgres/0004_funnel.sql")),
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
}

impl Store {
    /// Opens (creating if needed) `askwell.db` inside `data_dir` and migrates it.
    ///
    /// # Errors
    /// When the directory cannot be created or the database cannot be opened.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, sqlx::Error> {
        std::fs::create_dir_all(data_dir)?;
        let url = format!("sqlite://{}", data_dir.join("askwell.db").display());
        Self::connect(&url).await
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
        let store = Self { pool, backend };
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

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut tx = self.pool.begin().await?;
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

/// One day in milliseconds (stats group by UTC day).
pub const DAY_MS: i64 = 86_400_000;

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
        assert_eq!(store.schema_version().await.expect("version"), 4);
        drop(store);
        let reopened = Store::open_in_dir(dir.path()).await.expect("reopen");
        assert_eq!(reopened.schema_version().await.expect("version"), 4);
        assert_eq!(reopened.subscription_count().await.expect("count"), 0);
        assert!(dir.path().join("askwell.db").exists());
    }
}
