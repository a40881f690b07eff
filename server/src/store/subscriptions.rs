//! Subscriptions and their topics.

use askwell::model::EventKind;
use sqlx::Row;

use super::{now_ms, Backend, Store};
use crate::push::DeliveryStatus;

/// A validated subscription to store.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Push service URL.
    pub endpoint: String,
    /// Subscriber public key (base64url, as the browser sent it).
    pub p256dh: String,
    /// Auth secret (base64url).
    pub auth: String,
    /// App user id, if signed in.
    pub user: Option<String>,
    /// When the browser says it expires.
    pub expiration_ms: Option<i64>,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// The device's IANA time zone, when the page sent one the bundled tz
    /// database knows (else `None`: a re-post without one keeps the stored one).
    pub time_zone: Option<String>,
}

/// Who subscribed after which prompt: the funnel's link between a device's
/// prompt events and the notifications its subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Anonymous device id (the page's `anonymousId`).
    pub anon: Option<String>,
    /// Prompt id.
    pub prompt: Option<String>,
    /// Variant id.
    pub variant: Option<String>,
}

/// What [`Store::subscription_upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new subscription with this row id.
    Created(i64),
    /// The stored one with this id, proven by its auth secret, was updated.
    Updated(i64),
    /// The endpoint is stored with another auth secret: nothing changed.
    HeldByAnother,
}

/// A stored subscription as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Row id.
    pub id: i64,
    /// App user id.
    pub user: Option<String>,
    /// Subscribed topics, sorted.
    pub topics: Vec<String>,
}

impl Store {
    /// Inserts a subscription, or updates the one stored with the same
    /// endpoint when `sub.auth` proves possession of it (the browser posting
    /// its subscription again); adds its topics either way. An endpoint held
    /// under another auth secret is left untouched: replacing its keys would
    /// lock the real browser out and encrypt its pushes to someone else's key.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_upsert(&self, sub: &NewSubscription) -> Result<Upsert, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.write().await?;
        // Insert first: two browsers racing on one endpoint cannot both
        // insert (PostgreSQL makes the second wait, then do nothing). A
        // stored row is then locked (PostgreSQL; SQLite holds its write lock
        // already), so a concurrent delete or erasure cannot remove it between
        // this read and the writes below; one that removed it after the
        // insert saw it (each PostgreSQL statement reads its own snapshot)
        // makes the insert worth another try. `NO KEY UPDATE` is the lock the
        // UPDATE takes anyway: a fan-out's foreign-key checks do not wait on it.
        let lock = if self.backend == Backend::Postgres {
            " FOR NO KEY UPDATE"
        } else {
            ""
        };
        let mut tries = 0;
        let upsert = loop {
            tries += 1;
            let inserted: Option<i64> = sqlx::query_scalar("INSERT INTO subscriptions (endpoint, p256dh, auth, user_id, expiration_ms, created_ms, updated_ms, time_zone) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (endpoint) DO NOTHING RETURNING id")
                .bind(&sub.endpoint).bind(&sub.p256dh).bind(&sub.auth).bind(&sub.user).bind(sub.expiration_ms).bind(now).bind(&sub.time_zone)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(id) = inserted {
                break Upsert::Created(id);
            }
            let row = sqlx::query(&format!("SELECT id, auth FROM subscriptions WHERE endpoint = $1{lock}"))
                .bind(&sub.endpoint)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                if tries < 3 {
                    continue;
                }
                return Err(sqlx::Error::RowNotFound);
            };
            let stored_auth: String = row.try_get("auth")?;
            if !same_secret(&stored_auth, &sub.auth) {
                return Ok(Upsert::HeldByAnother);
            }
            let id: i64 = row.try_get("id")?;
            sqlx::query("UPDATE subscriptions SET p256dh = $1, user_id = COALESCE($2, user_id), expiration_ms = $3, updated_ms = $4, time_zone = COALESCE($5, time_zone) WHERE id = $6")
                .bind(&sub.p256dh).bind(&sub.user).bind(sub.expiration_ms).bind(now).bind(&sub.time_zone).bind(id)
                .execute(&mut *tx)
                .await?;
            break Upsert::Updated(id);
        };
        let (Upsert::Created(id) | Upsert::Updated(id)) = upsert else {
            return Ok(upsert);
        };
        add_topics(&mut tx, id, &sub.topics).await?;
        tx.commit().await?;
        Ok(upsert)
    }

    /// Stores many subscriptions in one transaction (bulk import, benchmarks).
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn subscriptions_import(&self, subs: &[NewSubscription]) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.write().await?;
        for sub in subs {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO subscriptions (endpoint, p256dh, auth, user_id, expiration_ms, created_ms, updated_ms, time_zone) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
                 ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth, updated_ms = excluded.updated_ms, \
                 time_zone = COALESCE(excluded.time_zone, subscriptions.time_zone) RETURNING id",
            )
            .bind(&sub.endpoint).bind(&sub.p256dh).bind(&sub.auth).bind(&sub.user).bind(sub.expiration_ms).bind(now).bind(&sub.time_zone)
            .fetch_one(&mut *tx)
            .await?;
            add_topics(&mut tx, id, &sub.topics).await?;
        }
        tx.commit().await
    }

    /// The subscription with this endpoint, if `auth` matches (proof of possession).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_find(
        &self,
        endpoint: &str,
        auth: &str,
    ) -> Result<Option<StoredSubscription>, sqlx::Error> {
        let row = sqlx::query("SELECT id, auth, user_id FROM subscriptions WHERE endpoint = $1")
            .bind(endpoint)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored_auth: String = row.try_get("auth")?;
        if !same_secret(&stored_auth, auth) {
            return Ok(None);
        }
        let id: i64 = row.try_get("id")?;
        let topics = topics_of(&self.pool, id).await?;
        Ok(Some(StoredSubscription {
            id,
            user: row.try_get("user_id")?,
            topics,
        }))
    }

    /// Adds and removes topics of subscription `id`, holding at most
    /// `limit`: the resulting topics, or why nothing changed. The row is
    /// locked first and the limit counted inside the transaction, so a
    /// concurrent unsubscribe makes this [`TopicsChange::Gone`] (not a
    /// foreign-key failure) and two concurrent adds cannot pass the limit
    /// together.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_topics_change(
        &self,
        id: i64,
        add: &[String],
        remove: &[String],
        limit: usize,
    ) -> Result<TopicsChange, sqlx::Error> {
        let mut tx = self.write().await?;
        let lock = if self.backend == Backend::Postgres {
            " FOR NO KEY UPDATE"
        } else {
            ""
        };
        let held: Option<i64> = sqlx::query_scalar(&format!("SELECT id FROM subscriptions WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if held.is_none() {
            return Ok(TopicsChange::Gone);
        }
        add_topics(&mut tx, id, add).await?;
        for topic in remove {
            sqlx::query("DELETE FROM subscription_topics WHERE subscription_id = $1 AND topic = $2")
                .bind(id)
                .bind(topic)
                .execute(&mut *tx)
                .await?;
        }
        let topics = topics_of(&mut *tx, id).await?;
        if topics.len() > limit {
            // Dropping the transaction rolls the change back.
            return Ok(TopicsChange::OverLimit);
        }
        tx.commit().await?;
        Ok(TopicsChange::Changed(topics))
    }

    /// Sets the labels of topics subscription `id` holds (`(topic, label)`;
    /// a topic it does not hold is skipped).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_topic_labels_set(&self, id: i64, labels: &[(String, String)]) -> Result<(), sqlx::Error> {
        if labels.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for (topic, label) in labels {
            sqlx::query("UPDATE subscription_topics SET label = $1 WHERE subscription_id = $2 AND topic = $3")
                .bind(label)
                .bind(id)
                .bind(topic)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// The labelled topics of subscription `id`, `(topic, label)` sorted by topic.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_topic_labels(&self, id: i64) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT topic, label FROM subscription_topics WHERE subscription_id = $1 AND label IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut labels = rows
            .iter()
            .map(|row| Ok((row.try_get("topic")?, row.try_get("label")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
        labels.sort_unstable();
        Ok(labels)
    }

    /// Deletes a subscription (its topics go with it; pending deliveries are
    /// pruned); the funnel records `unsubscribed` (action `deleted`).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_delete(&self, id: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        super::events::record_subscription_event(&mut tx, id, EventKind::Unsubscribed, Some("deleted")).await?;
        delete(&mut tx, id).await?;
        tx.commit().await
    }

    /// Replaces the endpoint and keys of subscription `old_id` (pushsubscriptionchange),
    /// keeping its id, topics and user. If the new endpoint is already stored
    /// (the page registered it first), the two are merged into the old one —
    /// but only when `new.auth` matches it: otherwise anyone holding one
    /// subscription could swap onto someone else's endpoint. Returns `None`
    /// (and changes nothing) then.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_swap(&self, old_id: i64, new: &NewSubscription) -> Result<Swap, sqlx::Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.swap_once(old_id, new).await {
                // PostgreSQL: the page stored the new endpoint after this
                // looked for it (no row to lock then), so the UPDATE hit
                // the UNIQUE endpoint. Again: now it is found and merged.
                Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("23505") && tries < 3 => {}
                result => return result,
            }
        }
    }

    async fn swap_once(&self, old_id: i64, new: &NewSubscription) -> Result<Swap, sqlx::Error> {
        let mut tx = self.write().await?;
        // Both rows (the old one, and the new endpoint's if the page stored
        // it first), locked in id order as fan-outs and erasures lock
        // theirs, so none of them waits on another in a circle.
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT id, auth FROM subscriptions WHERE id = $1 OR endpoint = $2 ORDER BY id{lock}"
        ))
        .bind(old_id)
        .bind(&new.endpoint)
        .fetch_all(&mut *tx)
        .await?;
        let mut old_found = false;
        let mut clash = None;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            if id == old_id {
                old_found = true;
            } else {
                clash = Some((id, row.try_get::<String, _>("auth")?));
            }
        }
        if !old_found {
            return Ok(Swap::Gone);
        }
        if let Some((clash, auth)) = clash {
            if !same_secret(&auth, &new.auth) {
                return Ok(Swap::Held);
            }
            sqlx::query("INSERT INTO subscription_topics (subscription_id, topic) SELECT $1, topic FROM subscription_topics WHERE subscription_id = $2 ON CONFLICT DO NOTHING")
                .bind(old_id).bind(clash).execute(&mut *tx).await?;
            delete(&mut tx, clash).await?;
        }
        sqlx::query("UPDATE subscriptions SET endpoint = $1, p256dh = $2, auth = $3, expiration_ms = $4, updated_ms = $5 WHERE id = $6")
            .bind(&new.endpoint).bind(&new.p256dh).bind(&new.auth).bind(new.expiration_ms).bind(now_ms()).bind(old_id)
            .execute(&mut *tx)
            .await?;
        add_topics(&mut tx, old_id, &new.topics).await?;
        tx.commit().await?;
        Ok(Swap::Done(old_id))
    }

    /// Records which device and prompt (variant) won this subscription, so
    /// its deliveries, clicks and retention count for that prompt. The first
    /// attribution stays: a later topic prompt does not take the credit.
    /// The funnel's `subscribed` event is written here, by the server, from
    /// the stored row — never taken from a client's say-so (one forged batch
    /// could otherwise decide an experiment); its id is derived from the row,
    /// so posting the subscription again records it once.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn subscription_attribute(&self, id: i64, attribution: &Attribution) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE subscriptions SET anon_id = COALESCE(anon_id, $1), prompt = COALESCE(prompt, $2), variant = COALESCE(variant, $3) WHERE id = $4",
        )
        .bind(&attribution.anon)
        .bind(&attribution.prompt)
        .bind(&attribution.variant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        super::events::record_subscription_event(&mut tx, id, EventKind::Subscribed, None).await?;
        tx.commit().await
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

/// What [`Store::subscription_topics_change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicsChange {
    /// Changed: the topics it holds now.
    Changed(Vec<String>),
    /// Nothing: the subscription is gone (unsubscribed meanwhile).
    Gone,
    /// Nothing: it would hold more topics than the limit.
    OverLimit,
}

/// What [`Store::subscription_swap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// Swapped: the subscription's id (the old one's).
    Done(i64),
    /// Nothing: the new endpoint is stored under another auth secret.
    Held,
    /// Nothing: the old subscription is gone (unsubscribed meanwhile).
    Gone,
}

/// Deletes subscription `id` inside `tx` (its topics go with it; its
/// pending deliveries are pruned).
pub(super) async fn delete(tx: &mut sqlx::AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    let prune = format!(
        "UPDATE deliveries SET status = $1, updated_ms = $2 WHERE subscription_id = $3 AND {}",
        *super::deliveries::WAITING
    );
    sqlx::query(&prune)
        .bind(DeliveryStatus::Pruned.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM subscriptions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM preferences WHERE subject = $1")
        .bind(super::device_subject(id))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Whether two auth secrets are the same, in constant time, whichever
/// base64 alphabet and padding each was written in.
fn same_secret(stored: &str, given: &str) -> bool {
    crate::secret::equal(
        crate::validate::canonical_base64(stored).as_bytes(),
        crate::validate::canonical_base64(given).as_bytes(),
    )
}

/// Subscription `id`'s topics, sorted by their bytes. Sorted here, not by
/// `ORDER BY`: PostgreSQL orders text by the database's collation (under
/// `en_US.UTF-8`, "news" before "Sale"), SQLite by bytes ("Sale" first).
async fn topics_of<'e, E>(executor: E, id: i64) -> Result<Vec<String>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut topics: Vec<String> =
        sqlx::query_scalar("SELECT topic FROM subscription_topics WHERE subscription_id = $1")
            .bind(id)
            .fetch_all(executor)
            .await?;
    topics.sort_unstable();
    Ok(topics)
}

async fn add_topics(tx: &mut sqlx::AnyConnection, id: i64, topics: &[String]) -> Result<(), sqlx::Error> {
    for topic in topics {
        sqlx::query("INSERT INTO subscription_topics (subscription_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(topic)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
