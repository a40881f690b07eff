//! Journeys in the database: versioned definitions, instances claimed with
//! leases like deliveries, the sends they made, and the event cursor.
//! What an instance does next is decided by the core (`askwell::journey`);
//! this module only stores it.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Backend, NewNotification, Store};

/// Users per `IN (…)` list.
const CHUNK: usize = 500;
/// Rows per multi-row write (one JSON parameter each, see
/// [`super::json_rows`]).
const WRITE_ROWS: usize = 500;

/// What a batch of users' steps need: traits, zone, running instances and
/// every earlier entry (read in a few queries for the whole batch).
#[derive(Debug, Clone, Default)]
pub struct UserFacts {
    /// Traits (a JSON object).
    pub traits: Map<String, Value>,
    /// The user's own zone, else their newest device's.
    pub time_zone: Option<String>,
    /// Running instances.
    pub running: Vec<InstanceRow>,
    /// Every instance ever: (journey, key, entered_ms, running).
    pub priors: Vec<(String, String, i64, bool)>,
}

/// What a batch of steps stores, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct JourneyWrites {
    /// Instances as they are now, new (`true`) or moved on.
    pub instances: Vec<(InstanceRow, bool)>,
    /// Send steps reached.
    pub sends: Vec<SendRow>,
    /// Goal events: (journey, user, at_ms).
    pub conversions: Vec<(String, String, i64)>,
}

fn list(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A stored definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJourney {
    /// Journey id.
    pub id: String,
    /// Version (1, 2, …).
    pub version: i64,
    /// The definition as it was PUT.
    pub definition: Value,
}

/// An instance row (see `migrations/*/0007_journeys.sql`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// Derived from the entry's cause.
    pub id: String,
    /// Journey id.
    pub journey: String,
    /// The version it runs.
    pub version: i64,
    /// The user.
    pub user: String,
    /// Its key (`""` if none).
    pub key: String,
    /// When the entry event happened.
    pub entered_ms: i64,
    /// In the holdout.
    pub holdout: bool,
    /// The entry event's properties (text values).
    pub event: Map<String, Value>,
    /// Current step.
    pub step: i64,
    /// When it resumes; `None` once ended.
    pub due_ms: Option<i64>,
    /// Why it ended (`completed`, `exit-step`, `event`, `deleted`).
    pub ending: Option<String>,
    /// The event that ended it.
    pub ended_by: Option<String>,
}

/// A send step an instance reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRow {
    /// Instance id.
    pub instance: String,
    /// Step index.
    pub step: i64,
    /// Journey id.
    pub journey: String,
    /// The notification enqueued (`None` for the holdout or on error).
    pub notification: Option<String>,
    /// Holdout: counted, not sent.
    pub withheld: bool,
    /// Why it could not be sent (a payload over the push size, …).
    pub error: Option<String>,
}

/// Counts behind a journey's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JourneyCounts {
    /// Instances by (holdout, ending or "waiting").
    pub instances: Vec<(bool, String, i64)>,
    /// Ended by an event: (event name, count).
    pub exited_by: Vec<(String, i64)>,
    /// Converted instances by holdout.
    pub converted: Vec<(bool, i64)>,
    /// Per step: (step, sent, withheld, failed).
    pub steps: Vec<(i64, i64, i64, i64)>,
    /// Deliveries of the journey's notifications by status.
    pub deliveries: Vec<(String, i64)>,
    /// Of them, clicked.
    pub clicked: i64,
}

const INSTANCE_COLUMNS: &str =
    "id, journey_id, version, user_id, instance_key, entered_ms, holdout, event, step, due_ms, ending, ended_by";

fn instance_row(row: &AnyRow) -> Result<InstanceRow, sqlx::Error> {
    // A column this server wrote as a JSON object: anything else is a
    // decode error, never silently an empty event.
    let event = super::users::traits_of(row, "event")?;
    Ok(InstanceRow {
        id: row.try_get("id")?,
        journey: row.try_get("journey_id")?,
        version: row.try_get("version")?,
        user: row.try_get("user_id")?,
        key: row.try_get("instance_key")?,
        entered_ms: row.try_get("entered_ms")?,
        holdout: row.try_get::<i64, _>("holdout")? != 0,
        event,
        step: row.try_get("step")?,
        due_ms: row.try_get("due_ms")?,
        ending: row.try_get("ending")?,
        ended_by: row.try_get("ended_by")?,
    })
}

impl Store {
    /// Stores `definition` as journey `id`'s new current version, unless it
    /// equals the current one. Returns `(version, changed)`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_put(&self, id: &str, definition: &Value, now_ms: i64) -> Result<(i64, bool), sqlx::Error> {
        let text = definition.to_string();
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            // Two PUTs of one id must not both take version n + 1.
            sqlx::query("SELECT pg_advisory_xact_lock(7411031)")
                .execute(&mut *tx)
                .await?;
        }
        let latest = sqlx::query(
            "SELECT version, definition, current FROM journeys WHERE id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut next = 1;
        if let Some(row) = latest {
            let version: i64 = row.try_get("version")?;
            let current: i64 = row.try_get("current")?;
            let same = serde_json::from_str::<Value>(&row.try_get::<String, _>("definition")?).ok();
            if current != 0 && same.as_ref() == Some(definition) {
                return Ok((version, false));
            }
            next = version + 1;
        }
        sqlx::query("UPDATE journeys SET current = 0 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO journeys (id, version, definition, current, created_ms) VALUES ($1, $2, $3, 1, $4)")
            .bind(id)
            .bind(next)
            .bind(&text)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((next, true))
    }

    /// Retires journey `id`: no one enters any more and running instances
    /// end (`deleted`). Returns how many ended, `None` for an unknown id.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_delete(&self, id: &str, now_ms: i64) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.write().await?;
        let retired = sqlx::query("UPDATE journeys SET current = 0 WHERE id = $1 AND current = 1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if retired == 0 {
            return Ok(None);
        }
        let ended = sqlx::query(
            "UPDATE journey_instances SET due_ms = NULL, ending = 'deleted', ended_ms = $2, lease_until_ms = 0 \
             WHERE journey_id = $1 AND due_ms IS NOT NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(ended))
    }

    /// The current version of every journey not deleted, by id.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journeys_current(&self) -> Result<Vec<StoredJourney>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, version, definition FROM journeys WHERE current = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_journey).collect()
    }

    /// One version of journey `id` (running instances use theirs).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_version(&self, id: &str, version: i64) -> Result<Option<StoredJourney>, sqlx::Error> {
        let row = sqlx::query("SELECT id, version, definition FROM journeys WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_journey).transpose()
    }

    /// Every instance `user` ever had of journey `journey`: (key,
    /// entered_ms, running), for the re-entry rules.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_priors(&self, journey: &str, user: &str) -> Result<Vec<(String, i64, bool)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT instance_key, entered_ms, due_ms FROM journey_instances WHERE user_id = $1 AND journey_id = $2",
        )
        .bind(user)
        .bind(journey)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("instance_key")?,
                    row.try_get("entered_ms")?,
                    row.try_get::<Option<i64>, _>("due_ms")?.is_some(),
                ))
            })
            .collect()
    }

    /// `user`'s running instances (any journey).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_running(&self, user: &str) -> Result<Vec<InstanceRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM journey_instances WHERE user_id = $1 AND due_ms IS NOT NULL ORDER BY created_ms, id"
        );
        let rows = sqlx::query(&sql).bind(user).fetch_all(&self.pool).await?;
        rows.iter().map(instance_row).collect()
    }

    /// Writes an instance as it is now (new or moved on) with the sends it
    /// made, and releases its claim. A new instance whose id exists already
    /// (its cause replayed after a crash) is left as it is: returns `false`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_save(
        &self,
        instance: &InstanceRow,
        sends: &[SendRow],
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.write().await?;
        let inserted = save_instance(&mut tx, instance, true, now_ms).await?;
        for send in sends {
            save_send(&mut tx, send, now_ms).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// [`UserFacts`] for each of `users` (unknown users: empty facts).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_facts(&self, users: &[String]) -> Result<HashMap<String, UserFacts>, sqlx::Error> {
        let mut facts = self.journey_profiles(users).await?;
        for chunk in users.chunks(CHUNK) {
            let query = format!(
                "SELECT {INSTANCE_COLUMNS} FROM journey_instances WHERE user_id IN ({}) ORDER BY created_ms, id",
                list(chunk.len())
            );
            for row in bind_all(sqlx::query(&query), chunk).fetch_all(&self.pool).await? {
                let instance = instance_row(&row)?;
                if let Some(f) = facts.get_mut(&instance.user) {
                    let running = instance.due_ms.is_some();
                    f.priors.push((
                        instance.journey.clone(),
                        instance.key.clone(),
                        instance.entered_ms,
                        running,
                    ));
                    if running {
                        f.running.push(instance);
                    }
                }
            }
        }
        Ok(facts)
    }

    /// Each of `users`' traits and time zone only: what a due step needs
    /// ([`UserFacts`] without instances, which a sweep of 100,000 due steps
    /// would otherwise read twice).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_profiles(&self, users: &[String]) -> Result<HashMap<String, UserFacts>, sqlx::Error> {
        let mut facts: HashMap<String, UserFacts> = users.iter().map(|u| (u.clone(), UserFacts::default())).collect();
        for chunk in users.chunks(CHUNK) {
            let ids = list(chunk.len());
            let query = format!("SELECT id, traits, time_zone FROM users WHERE id IN ({ids})");
            for row in bind_all(sqlx::query(&query), chunk).fetch_all(&self.pool).await? {
                let id: String = row.try_get("id")?;
                if let Some(f) = facts.get_mut(&id) {
                    f.traits = super::users::traits_of(&row, "traits")?;
                    f.time_zone = row.try_get("time_zone")?;
                }
            }
            let query = format!(
                "SELECT user_id, time_zone FROM subscriptions WHERE user_id IN ({ids}) AND time_zone IS NOT NULL \
                 ORDER BY updated_ms DESC, id DESC"
            );
            for row in bind_all(sqlx::query(&query), chunk).fetch_all(&self.pool).await? {
                let id: String = row.try_get("user_id")?;
                if let Some(f) = facts.get_mut(&id) {
                    if f.time_zone.is_none() {
                        f.time_zone = row.try_get("time_zone")?;
                    }
                }
            }
        }
        Ok(facts)
    }

    /// Stores a batch of steps' outcome in one transaction (see
    /// [`Store::journey_save`] for the rules per instance).
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn journey_save_many(&self, writes: &JourneyWrites, now_ms: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        save_in(&mut tx, self.backend, writes, now_ms).await?;
        tx.commit().await
    }

    /// Enqueues a batch's sends (as [`Store::notifications_create_many`])
    /// and stores its steps' outcome (as [`Store::journey_save_many`]) in
    /// one transaction: a crash leaves both or neither. Each of `waiting`
    /// is the send row of the notification at its index, and records the
    /// id it got (an earlier one's, when its idempotency key was replayed).
    /// Returns how many notifications were enqueued or answered.
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn journey_commit(
        &self,
        notifications: &[NewNotification],
        mut waiting: Vec<SendRow>,
        mut writes: JourneyWrites,
        now_ms: i64,
    ) -> Result<usize, sqlx::Error> {
        let mut tx = self.write().await?;
        let created = super::deliveries::create_many_in(&mut tx, self.backend, notifications).await?;
        for (row, (id, _)) in waiting.iter_mut().zip(&created) {
            row.notification = Some(id.clone());
        }
        writes.sends.append(&mut waiting);
        save_in(&mut tx, self.backend, &writes, now_ms).await?;
        tx.commit().await?;
        Ok(created.len())
    }

    /// Claims up to `limit` running instances due by `now_ms` for
    /// `lease_ms` (as [`Store::deliveries_claim`] does: one UPDATE …
    /// RETURNING, `SKIP LOCKED` on PostgreSQL), so two servers never run the
    /// same step; a crashed server's claims run out. Oldest due first, ties
    /// in any order: `ORDER BY due_ms, id` sorted every tie on each claim
    /// (a sweep of 100,000 steps due at once went quadratic).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_claim_due(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<InstanceRow>, sqlx::Error> {
        let lock = if self.backend == Backend::Postgres {
            "FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let claim = format!(
            "UPDATE journey_instances SET lease_until_ms = $1 \
             WHERE id IN (SELECT id FROM journey_instances WHERE due_ms IS NOT NULL AND due_ms <= $2 AND lease_until_ms <= $2 ORDER BY due_ms LIMIT $3 {lock}) \
             RETURNING {INSTANCE_COLUMNS}"
        );
        let mut tx = self.write().await?;
        let rows = sqlx::query(&claim)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(instance_row).collect()
    }

    /// Releases every journey claim (instances, the event cursor): for the
    /// sole instance at start-up, whose predecessor died holding them.
    /// Returns how many.
    ///
    /// # Errors
    /// When the database fails.
    pub(super) async fn journey_release_claims(&self) -> Result<u64, sqlx::Error> {
        let mut tx = self.write().await?;
        let instances = sqlx::query(
            "UPDATE journey_instances SET lease_until_ms = 0 WHERE lease_until_ms > 0 AND due_ms IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let cursor = sqlx::query("UPDATE journey_cursor SET lease_until_ms = 0 WHERE lease_until_ms > 0")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(instances + cursor)
    }

    /// Takes the event cursor for `lease_ms` if no other server holds it;
    /// returns the last seq handled.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_cursor_take(&self, now_ms: i64, lease_ms: i64) -> Result<Option<i64>, sqlx::Error> {
        let mut tx = self.write().await?;
        let seq = sqlx::query_scalar(
            "UPDATE journey_cursor SET lease_until_ms = $1 WHERE name = 'events' AND lease_until_ms <= $2 RETURNING seq",
        )
        .bind(now_ms.saturating_add(lease_ms))
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Records that events up to `seq` are handled; `release` gives the
    /// cursor back (else the lease is kept for the next batch). The cursor
    /// only moves forward: a server whose lease lapsed while it finished an
    /// older batch (another took the cursor meanwhile) does not set it back.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_cursor_advance(&self, seq: i64, release: bool) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        let sql = if release {
            "UPDATE journey_cursor SET seq = CASE WHEN seq < $1 THEN $1 ELSE seq END, lease_until_ms = 0 WHERE name = 'events'"
        } else {
            "UPDATE journey_cursor SET seq = CASE WHEN seq < $1 THEN $1 ELSE seq END WHERE name = 'events'"
        };
        sqlx::query(sql).bind(seq).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Marks `user`'s instances of `journey` that entered by `at_ms` and
    /// have not converted as converted at `at_ms`. Returns how many.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_convert(&self, journey: &str, user: &str, at_ms: i64) -> Result<u64, sqlx::Error> {
        let mut tx = self.write().await?;
        let converted = convert(&mut tx, journey, user, at_ms).await?;
        tx.commit().await?;
        Ok(converted)
    }

    /// Users whose last event was at or before `before_ms`, with that
    /// time, oldest first, at most `limit` (the inactivity sweep).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn users_inactive_since(&self, before_ms: i64, limit: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT user_id, MAX(at_ms) AS last_ms FROM user_events GROUP BY user_id HAVING MAX(at_ms) <= $1 ORDER BY last_ms, user_id LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("user_id")?, row.try_get("last_ms")?)))
            .collect()
    }

    /// The counts behind journey `id`'s report.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn journey_counts(&self, id: &str) -> Result<JourneyCounts, sqlx::Error> {
        let instances = sqlx::query(
            "SELECT holdout, COALESCE(ending, 'waiting') AS state, COUNT(*) AS n FROM journey_instances WHERE journey_id = $1 GROUP BY holdout, COALESCE(ending, 'waiting')",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("holdout")? != 0, r.try_get("state")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let exited_by = sqlx::query(
            "SELECT ended_by, COUNT(*) AS n FROM journey_instances WHERE journey_id = $1 AND ended_by IS NOT NULL GROUP BY ended_by ORDER BY ended_by",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("ended_by")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let converted = sqlx::query(
            "SELECT holdout, COUNT(*) AS n FROM journey_instances WHERE journey_id = $1 AND converted_ms IS NOT NULL GROUP BY holdout",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("holdout")? != 0, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let steps = sqlx::query(
            "SELECT step, CAST(SUM(CASE WHEN notification_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS sent, \
             CAST(SUM(withheld) AS BIGINT) AS withheld, \
             CAST(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS failed FROM journey_sends WHERE journey_id = $1 GROUP BY step ORDER BY step",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("step")?, r.try_get("sent")?, r.try_get("withheld")?, r.try_get("failed")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let deliveries = sqlx::query(
            "SELECT d.status, COUNT(*) AS n FROM journey_sends s JOIN deliveries d ON d.notification_id = s.notification_id \
             WHERE s.journey_id = $1 GROUP BY d.status ORDER BY d.status",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let clicked = sqlx::query_scalar(
            "SELECT COUNT(*) FROM journey_sends s JOIN deliveries d ON d.notification_id = s.notification_id \
             WHERE s.journey_id = $1 AND d.clicked_ms IS NOT NULL",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(JourneyCounts {
            instances,
            exited_by,
            converted,
            steps,
            deliveries,
            clicked,
        })
    }
}

/// [`Store::journey_save_many`] inside the caller's transaction. Multi-row
/// statements: with SQLite every statement is a round trip to its worker
/// thread, and one per row was most of a 100,000-user sweep.
async fn save_in(
    conn: &mut AnyConnection,
    backend: Backend,
    writes: &JourneyWrites,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let (new, moved): (Vec<_>, Vec<_>) = writes.instances.iter().partition(|(_, new)| *new);
    for chunk in new.chunks(WRITE_ROWS) {
        insert_instances(&mut *conn, backend, chunk.iter().map(|(row, _)| row), now_ms).await?;
    }
    for chunk in moved.chunks(WRITE_ROWS) {
        move_instances(&mut *conn, backend, chunk.iter().map(|(row, _)| row), now_ms).await?;
    }
    for chunk in writes.sends.chunks(WRITE_ROWS) {
        insert_sends(&mut *conn, backend, chunk, now_ms).await?;
    }
    for (journey, user, at_ms) in &writes.conversions {
        convert(&mut *conn, journey, user, *at_ms).await?;
    }
    Ok(())
}

fn stored_journey(row: &AnyRow) -> Result<StoredJourney, sqlx::Error> {
    let text: String = row.try_get("definition")?;
    let definition = serde_json::from_str(&text)
        .map_err(|err| sqlx::Error::Decode(format!("journeys.definition is not JSON: {err}").into()))?;
    Ok(StoredJourney {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        definition,
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_all<'q>(mut query: AnyQuery<'q>, values: &'q [String]) -> AnyQuery<'q> {
    for value in values {
        query = query.bind(value);
    }
    query
}

/// Inserts a new instance (`new`; an existing id is left as it is: a replay)
/// or moves a running one on. Returns whether it inserted.
async fn save_instance(
    conn: &mut AnyConnection,
    instance: &InstanceRow,
    new: bool,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let ended_ms = instance.due_ms.is_none().then_some(now_ms);
    if new {
        let inserted = sqlx::query(
            "INSERT INTO journey_instances (id, journey_id, version, user_id, instance_key, entered_ms, holdout, event, step, due_ms, ending, ended_by, ended_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&instance.id)
        .bind(&instance.journey)
        .bind(instance.version)
        .bind(&instance.user)
        .bind(&instance.key)
        .bind(instance.entered_ms)
        .bind(i64::from(instance.holdout))
        .bind(Value::Object(instance.event.clone()).to_string())
        .bind(instance.step)
        .bind(instance.due_ms)
        .bind(&instance.ending)
        .bind(&instance.ended_by)
        .bind(ended_ms)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok(true);
        }
    }
    // Only a running instance moves: one ended meanwhile (a deleted journey,
    // an exit handled by another server) stays ended.
    sqlx::query(
        "UPDATE journey_instances SET step = $2, due_ms = $3, ending = $4, ended_by = $5, ended_ms = $6, lease_until_ms = 0 \
         WHERE id = $1 AND due_ms IS NOT NULL",
    )
    .bind(&instance.id)
    .bind(instance.step)
    .bind(instance.due_ms)
    .bind(&instance.ending)
    .bind(&instance.ended_by)
    .bind(ended_ms)
    .execute(&mut *conn)
    .await?;
    Ok(false)
}

async fn save_send(conn: &mut AnyConnection, send: &SendRow, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO journey_sends (instance_id, step, journey_id, notification_id, withheld, error, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (instance_id, step) DO NOTHING",
    )
    .bind(&send.instance)
    .bind(send.step)
    .bind(&send.journey)
    .bind(&send.notification)
    .bind(i64::from(send.withheld))
    .bind(&send.error)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn convert(conn: &mut AnyConnection, journey: &str, user: &str, at_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE journey_instances SET converted_ms = $3 \
         WHERE journey_id = $1 AND user_id = $2 AND converted_ms IS NULL AND entered_ms <= $3",
    )
    .bind(journey)
    .bind(user)
    .bind(at_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Inserts new instances as [`save_instance`] does with `new`: an id that
/// exists already (a replayed cause) moves on only if still running.
async fn insert_instances<'a>(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: impl Iterator<Item = &'a InstanceRow>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let values: Vec<Value> = rows
        .map(|instance| {
            serde_json::json!([
                instance.id,
                instance.journey,
                instance.version,
                instance.user,
                instance.key,
                instance.entered_ms,
                i64::from(instance.holdout),
                Value::Object(instance.event.clone()).to_string(),
                instance.step,
                instance.due_ms,
                instance.ending,
                instance.ended_by,
                instance.due_ms.is_none().then_some(now_ms),
            ])
        })
        .collect();
    // `WHERE true`: SQLite reads `ON CONFLICT` after a bare SELECT as a join.
    let sql = format!(
        "INSERT INTO journey_instances (id, journey_id, version, user_id, instance_key, entered_ms, holdout, event, step, due_ms, ending, ended_by, ended_ms, created_ms) \
         SELECT r.value ->> 0, r.value ->> 1, CAST(r.value ->> 2 AS BIGINT), r.value ->> 3, r.value ->> 4, CAST(r.value ->> 5 AS BIGINT), \
         CAST(r.value ->> 6 AS BIGINT), r.value ->> 7, CAST(r.value ->> 8 AS BIGINT), CAST(r.value ->> 9 AS BIGINT), r.value ->> 10, \
         r.value ->> 11, CAST(r.value ->> 12 AS BIGINT), $1 FROM {} WHERE true \
         ON CONFLICT (id) DO UPDATE SET step = excluded.step, due_ms = excluded.due_ms, ending = excluded.ending, \
         ended_by = excluded.ended_by, ended_ms = excluded.ended_ms, lease_until_ms = 0 WHERE journey_instances.due_ms IS NOT NULL",
        super::json_rows(backend, 2)
    );
    sqlx::query(&sql)
        .bind(now_ms)
        .bind(Value::Array(values).to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves running instances on, as [`save_instance`] does without `new`:
/// one ended meanwhile stays ended, and one erased meanwhile stays gone.
async fn move_instances<'a>(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: impl Iterator<Item = &'a InstanceRow>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let values: Vec<Value> = rows
        .map(|instance| {
            serde_json::json!([
                instance.id,
                instance.step,
                instance.due_ms,
                instance.ending,
                instance.ended_by,
                instance.due_ms.is_none().then_some(now_ms),
            ])
        })
        .collect();
    let sql = format!(
        "UPDATE journey_instances SET step = CAST(m.value ->> 1 AS BIGINT), due_ms = CAST(m.value ->> 2 AS BIGINT), \
         ending = m.value ->> 3, ended_by = m.value ->> 4, ended_ms = CAST(m.value ->> 5 AS BIGINT), lease_until_ms = 0 \
         FROM (SELECT r.value AS value FROM {}) AS m \
         WHERE journey_instances.id = m.value ->> 0 AND journey_instances.due_ms IS NOT NULL",
        super::json_rows(backend, 1)
    );
    sqlx::query(&sql)
        .bind(Value::Array(values).to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_sends(
    conn: &mut AnyConnection,
    backend: Backend,
    sends: &[SendRow],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let values: Vec<Value> = sends
        .iter()
        .map(|send| {
            serde_json::json!([
                send.instance,
                send.step,
                send.journey,
                send.notification,
                i64::from(send.withheld),
                send.error,
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO journey_sends (instance_id, step, journey_id, notification_id, withheld, error, at_ms) \
         SELECT r.value ->> 0, CAST(r.value ->> 1 AS BIGINT), r.value ->> 2, r.value ->> 3, CAST(r.value ->> 4 AS BIGINT), \
         r.value ->> 5, $1 FROM {} WHERE true ON CONFLICT (instance_id, step) DO NOTHING",
        super::json_rows(backend, 2)
    );
    sqlx::query(&sql)
        .bind(now_ms)
        .bind(Value::Array(values).to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
