//! The database: an embedded SQLite file by default.
//!
//! Migrations are embedded SQL files applied in order and recorded in
//! `askwell_schema`, so an existing database upgrades on start.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Embedded migrations, in order; a version is applied once.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_subscriptions.sql"))];

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
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
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
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM askwell_schema WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO askwell_schema (version) VALUES (?)")
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

    /// Number of stored push subscriptions.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn subscription_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions")
            .fetch_one(&self.pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_database_file_and_migrates_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_in_dir(dir.path()).await.expect("open");
        assert_eq!(store.schema_version().await.expect("version"), 1);
        drop(store);
        let reopened = Store::open_in_dir(dir.path()).await.expect("reopen");
        assert_eq!(reopened.schema_version().await.expect("version"), 1);
        assert_eq!(reopened.subscription_count().await.expect("count"), 0);
        assert!(dir.path().join("askwell.db").exists());
    }
}
