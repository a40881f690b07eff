//! The database: an embedded SQLite file by default.
//!
//! Migrations are embedded SQL files applied in order and recorded in
//! `askwell_schema`, so an existing database upgrades on start. Queries use
//! `$N` placeholders (numbered in order of first use) so they read the same
//! for a Postgres backend.

mod deliveries;
mod subscriptions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use deliveries::{Claimed, NewNotification, Recipients, StatusCounts};
pub use subscriptions::{NewSubscription, StoredSubscription};

/// Embedded migrations, in order; a version is applied once.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_subscriptions.sql")),
    (2, include_str!("../migrations/0002_outbox.sql")),
];

/// Handle to the database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
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

    /// Connects to a `sqlite:` URL and applies pending migrations.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be opened or migrated.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes (kill -9); only an
            // OS crash may lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    /// Opens a private in-memory database, for tests.
    ///
    /// # Errors
    /// When SQLite cannot be initialised.
    pub async fn in_memory() -> Result<Self, sqlx::Error> {
        // One connection: every pooled connection to `:memory:` is a new database.
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        sqlx::query("CREATE TABLE IF NOT EXISTS askwell_schema (version INTEGER PRIMARY KEY)")
            .execute(&self.pool)
            .await?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
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
            tx.commit().await?;
        }
        Ok(())
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
        assert_eq!(store.schema_version().await.expect("version"), 2);
        drop(store);
        let reopened = Store::open_in_dir(dir.path()).await.expect("reopen");
        assert_eq!(reopened.schema_version().await.expect("version"), 2);
        assert_eq!(reopened.subscription_count().await.expect("count"), 0);
        assert!(dir.path().join("askwell.db").exists());
    }
}
