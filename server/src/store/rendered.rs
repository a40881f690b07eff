//! Notifications whose deliveries each carry their own payload (rendered
//! per recipient, see `crate::personal`): who the recipients are, and the
//! notification with its rendered deliveries in one transaction.

use jiff::tz::TimeZone;
use sqlx::Row;

use super::deliveries::{existing, insert_notification, local_due_times};
use super::segment_sql::Param;
use super::users::traits_of;
use super::{now_ms, Backend, Store};
use crate::push::DeliveryStatus;
use crate::store::{Created, NewNotification, Recipients, Schedule, Traits};

/// A recipient's device, with what its copy is rendered from.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// Subscription row id.
    pub subscription_id: i64,
    /// The app user it is bound to, if any.
    pub user_id: Option<String>,
    /// Push service URL (for a dry run's breakdown).
    pub endpoint: String,
    /// The user's zone, else the device's (as stored; maybe unknown).
    pub time_zone: Option<String>,
    /// The user's traits (none for a device bound to no user).
    pub traits: Traits,
}

/// The columns [`recipient_of`] reads, from `subscriptions s` and `users u`.
pub(super) const RECIPIENT_COLUMNS: &str =
    "s.id, s.user_id, s.endpoint, COALESCE(u.time_zone, s.time_zone) AS time_zone, u.traits";

/// A [`Recipient`] from a row of [`RECIPIENT_COLUMNS`].
pub(super) fn recipient_of(row: &sqlx::any::AnyRow) -> Result<Recipient, sqlx::Error> {
    let traits = match row.try_get::<Option<String>, _>("traits")? {
        Some(_) => traits_of(row, "traits")?,
        None => Traits::new(),
    };
    Ok(Recipient {
        subscription_id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        endpoint: row.try_get("endpoint")?,
        time_zone: row.try_get("time_zone")?,
        traits,
    })
}

/// What one recipient gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// This payload (JSON, fits a push).
    Payload(String),
    /// Nothing: its payload was too large (`too_large`).
    TooLarge,
    /// Nothing: it is in the holdout (`withheld`).
    Withheld,
    /// Nothing yet: outside a rollout's test share (`awaiting_winner`).
    AwaitingWinner,
}

/// One recipient's delivery of a rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRow {
    /// Subscription row id.
    pub subscription_id: i64,
    /// The A/B variant it got (`holdout` for the holdout), if any.
    pub variant: Option<String>,
    /// What it gets.
    pub payload: Rendered,
}

/// What a notification's A/B test is: its variants in order (the first
/// the baseline; empty: no test) and what counts as a conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Experiment {
    /// Variant ids.
    pub variants: Vec<String>,
    /// `(event name, within ms)`.
    pub conversion: Option<(String, i64)>,
    /// With a rollout: its plan and when it is decided.
    pub rollout: Option<RolloutPlan>,
}

/// A rollout as stored with its notification (see `crate::rollout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPlan {
    /// The plan (JSON): what the rest is rendered from.
    pub plan: String,
    /// When it is decided (epoch ms).
    pub decide_ms: i64,
    /// What was decided (JSON), once it was.
    pub decision: Option<String>,
}

/// One variant's deliveries in an A/B test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantCounts {
    /// The variant's id (`holdout` for the holdout).
    pub variant: String,
    /// With a breakdown by a trait: the users' value of it, as text
    /// (`None`: no such trait, or no user).
    pub group: Option<String>,
    /// Its deliveries, whatever their status.
    pub deliveries: i64,
    /// Of those, accepted by the push service.
    pub delivered: i64,
    /// Of those, clicked.
    pub clicked: i64,
    /// Of those, dismissed.
    pub dismissed: i64,
    /// The users it was delivered (or, for the holdout, withheld) to: who
    /// can convert (conversions are user events), each once.
    pub reachable: i64,
    /// Of those users, who had the conversion event within its window of
    /// the push (of the notification, for the holdout).
    pub converted: i64,
    /// The users who clicked it and converted within the window of the
    /// click.
    pub converted_after_click: i64,
}

/// The "variant" [`Store::notification_variants`] counts a rollout's rest
/// under (its deliveries have none: they were outside the test); outside
/// the variant ids' alphabet, so it never meets one.
pub const ROLLOUT_REST: &str = "(rest)";

/// A rollout due to be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRollout {
    /// The notification.
    pub id: String,
    /// Its plan (JSON).
    pub plan: String,
    /// Whether it was cancelled (nothing is left to send).
    pub cancelled: bool,
}

/// Rendered deliveries per `INSERT` (each row is up to ~3 kB of payload
/// in one JSON parameter: ~1.5 MB a statement).
const ROWS_PER_INSERT: usize = 500;

impl Store {
    /// The devices `to` reaches, by subscription id, each with its user's
    /// traits and zone.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn recipients(&self, to: &Recipients) -> Result<Vec<Recipient>, sqlx::Error> {
        let select = format!("SELECT {RECIPIENT_COLUMNS} FROM subscriptions s LEFT JOIN users u ON u.id = s.user_id");
        let (filter, params) = self.recipients_filter(to);
        let sql = format!("{select}{filter} ORDER BY s.id");
        let query = super::segment_sql::bind_all(sqlx::query(&sql), &params);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(recipient_of).collect()
    }

    /// The joins and `WHERE` after `FROM subscriptions s LEFT JOIN users u
    /// ON u.id = s.user_id` that select `to`'s devices, with their
    /// parameters from `$1`.
    pub(super) fn recipients_filter(&self, to: &Recipients) -> (String, Vec<Param>) {
        match to {
            Recipients::All => (String::new(), Vec::new()),
            Recipients::User(user) => (" WHERE s.user_id = $1".to_owned(), vec![Param::Text(user.clone())]),
            Recipients::Topic(topic) => (
                " JOIN subscription_topics t ON t.subscription_id = s.id WHERE t.topic = $1".to_owned(),
                vec![Param::Text(topic.clone())],
            ),
            Recipients::Users(users) => (
                format!(" WHERE s.user_id IN ({})", super::json_texts(self.backend, 1)),
                vec![Param::Text(serde_json::Value::from(users.clone()).to_string())],
            ),
            Recipients::Where(audience) => {
                let mut compiler = super::segment_sql::Compiler::new(self.backend, 1, now_ms());
                let condition = compiler.condition(&audience.segment);
                (format!(" WHERE {condition}"), compiler.params)
            }
        }
    }

    /// Writes notification `n` and a delivery per row in one transaction,
    /// each due as `schedule` says on its recipient's clock; a row too large
    /// to push is a `too_large` delivery and one in the holdout `withheld`,
    /// both never sent. `variants` are the A/B test's variant ids in order
    /// (the first the baseline). A device deleted since it was read is
    /// skipped. A repeated idempotency key answers the first notification
    /// and enqueues nothing.
    ///
    /// # Errors
    /// When the database fails; nothing is enqueued then.
    pub async fn notification_create_rendered(
        &self,
        n: &NewNotification,
        rows: &[RenderedRow],
        experiment: &Experiment,
        schedule: &Schedule,
        default_zone: &TimeZone,
    ) -> Result<Created, sqlx::Error> {
        let now = now_ms();
        let not_before = schedule.at_ms.map_or(now, |at| at.max(now));
        let mut tx = self.write().await?;
        if let Some(created) = existing(&mut tx, n.idempotency_key.as_deref()).await? {
            return Ok(created);
        }
        if let Some(first) = insert_notification(&mut tx, n, now).await? {
            return Ok(first);
        }
        let lock = if self.backend == Backend::Postgres {
            " ORDER BY s.id FOR KEY SHARE OF s"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO deliveries (notification_id, subscription_id, status, payload, push_variant, next_attempt_ms, updated_ms, anon_id, prompt, variant) \
             SELECT $1, s.id, r.value ->> 2, r.value ->> 1, r.value ->> 3, $2, $3, s.anon_id, s.prompt, s.variant \
             FROM {rows} JOIN subscriptions s ON s.id = CAST(r.value ->> 0 AS BIGINT){lock}",
            rows = super::json_rows(self.backend, 4),
        );
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let json: Vec<serde_json::Value> = chunk
                .iter()
                .map(|row| {
                    let (payload, status) = match &row.payload {
                        Rendered::Payload(payload) => (Some(payload.as_str()), DeliveryStatus::Queued),
                        Rendered::TooLarge => (None, DeliveryStatus::TooLarge),
                        Rendered::Withheld => (None, DeliveryStatus::Withheld),
                        Rendered::AwaitingWinner => (None, DeliveryStatus::AwaitingWinner),
                    };
                    serde_json::json!([row.subscription_id, payload, status.as_str(), row.variant])
                })
                .collect();
            sqlx::query(&sql)
                .bind(&n.id)
                .bind(not_before)
                .bind(now)
                .bind(serde_json::Value::Array(json).to_string())
                .execute(&mut *tx)
                .await?;
        }
        let counts = sqlx::query(&format!(
            "SELECT COUNT(*) AS recipients, COALESCE(SUM(CASE WHEN status = '{too_large}' THEN 1 ELSE 0 END), 0) AS too_large, \
             COALESCE(SUM(CASE WHEN status = '{withheld}' THEN 1 ELSE 0 END), 0) AS holdout \
             FROM deliveries WHERE notification_id = $1",
            too_large = DeliveryStatus::TooLarge.as_str(),
            withheld = DeliveryStatus::Withheld.as_str(),
        ))
        .bind(&n.id)
        .fetch_one(&mut *tx)
        .await?;
        let recipients: i64 = counts.try_get("recipients")?;
        let too_large: i64 = counts.try_get("too_large")?;
        let holdout: i64 = counts.try_get("holdout")?;
        let (scheduled, defaulted_time_zone) = match schedule.local {
            Some(rule) => local_due_times(&mut tx, &n.id, rule, not_before, now, default_zone).await?,
            None if not_before > now => (recipients - too_large - holdout, 0),
            None => (0, 0),
        };
        sqlx::query(
            "UPDATE notifications SET recipients = $1, scheduled = $2, defaulted_time_zone = $3, too_large = $4, holdout = $5, variants = $6, \
             conversion_event = $7, conversion_within_ms = $8, rollout = $9, rollout_decide_ms = $10 WHERE id = $11",
        )
        .bind(recipients)
        .bind(scheduled)
        .bind(defaulted_time_zone)
        .bind(too_large)
        .bind(holdout)
        .bind((!experiment.variants.is_empty()).then(|| serde_json::Value::from(experiment.variants.clone()).to_string()))
        .bind(experiment.conversion.as_ref().map(|(event, _)| event.clone()))
        .bind(experiment.conversion.as_ref().map(|(_, ms)| *ms))
        .bind(experiment.rollout.as_ref().map(|r| r.plan.clone()))
        .bind(experiment.rollout.as_ref().map(|r| r.decide_ms))
        .bind(&n.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Created {
            id: n.id.clone(),
            recipients,
            scheduled,
            defaulted_time_zone,
            too_large,
            holdout,
        })
    }

    /// Notification `id`'s A/B test and each variant's counts (the
    /// holdout's as `holdout`), conversions included when it has a
    /// conversion event, and split by the users' value of `by_trait` (a
    /// name [`askwell::segment::is_trait_name`] accepts) when given; `None`
    /// when it has no test (or no such notification).
    ///
    /// # Errors
    /// When the database fails or the stored order is not JSON.
    pub async fn notification_variants(
        &self,
        id: &str,
        by_trait: Option<&str>,
    ) -> Result<Option<(Experiment, Vec<VariantCounts>)>, sqlx::Error> {
        let row =
            sqlx::query("SELECT variants, conversion_event, conversion_within_ms, rollout, rollout_decide_ms, rollout_decision FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(order) = row.try_get::<Option<String>, _>("variants")? else {
            return Ok(None);
        };
        if by_trait.is_some_and(|name| !askwell::segment::is_trait_name(name)) {
            // Inlined into the SQL below: only a name of the safe alphabet.
            return Err(sqlx::Error::Protocol(
                "unreachable: the route checks trait names".into(),
            ));
        }
        let variants: Vec<String> = serde_json::from_str(&order).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
        let event: Option<String> = row.try_get("conversion_event")?;
        let within: Option<i64> = row.try_get("conversion_within_ms")?;
        let conversion = event.zip(within);
        let rollout = match (
            row.try_get::<Option<String>, _>("rollout")?,
            row.try_get::<Option<i64>, _>("rollout_decide_ms")?,
        ) {
            (Some(plan), Some(decide_ms)) => Some(RolloutPlan {
                plan,
                decide_ms,
                decision: row.try_get("rollout_decision")?,
            }),
            _ => None,
        };
        // The window starts at the send (the notification's creation for
        // the holdout, which had none) or at the click; one indexed EXISTS
        // per delivery (user_events_by_name). Conversions are the users':
        // each user counts once per variant, however many of their devices
        // it reached (a device without a user, a NULL, is not counted).
        let converted = |start: &str| {
            format!(
                "EXISTS (SELECT 1 FROM user_events e WHERE e.user_id = s.user_id AND e.name = $2 AND e.at_ms >= {start} AND e.at_ms < {start} + $3)"
            )
        };
        let counted = format!(
            "d.status IN ('{}', '{}')",
            DeliveryStatus::Delivered.as_str(),
            DeliveryStatus::Withheld.as_str()
        );
        // The trait's value as text, the same on both databases (`12`,
        // `3.5`, `true`, `pro`).
        let group = match (by_trait, self.backend) {
            (None, _) => "CAST(NULL AS TEXT)".to_owned(),
            (Some(name), Backend::Sqlite) => format!(
                "CASE json_type(u.traits, '$.\"{name}\"') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 ELSE CAST(json_extract(u.traits, '$.\"{name}\"') AS TEXT) END"
            ),
            (Some(name), Backend::Postgres) => format!("(CAST(u.traits AS jsonb) ->> '{name}')"),
        };
        let sql = format!(
            "SELECT COALESCE(d.push_variant, '{rest}') AS push_variant, {group} AS grouped, COUNT(*) AS n, \
             COALESCE(SUM(CASE WHEN d.status = '{delivered}' THEN 1 ELSE 0 END), 0) AS delivered, \
             COUNT(d.clicked_ms) AS clicked, COUNT(d.dismissed_ms) AS dismissed, \
             COUNT(DISTINCT CASE WHEN {counted} THEN s.user_id END) AS reachable, \
             COUNT(DISTINCT CASE WHEN {counted} AND {sent} THEN s.user_id END) AS converted, \
             COUNT(DISTINCT CASE WHEN d.clicked_ms IS NOT NULL AND {clicked} THEN s.user_id END) AS after_click \
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id LEFT JOIN subscriptions s ON s.id = d.subscription_id \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE d.notification_id = $1 GROUP BY COALESCE(d.push_variant, '{rest}'), {group} ORDER BY 1",
            rest = ROLLOUT_REST,
            delivered = DeliveryStatus::Delivered.as_str(),
            sent = converted("COALESCE(d.sent_ms, n.created_ms)"),
            clicked = converted("d.clicked_ms"),
        );
        let (name, window) = conversion.clone().unwrap_or_default();
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(name)
            .bind(window)
            .fetch_all(&self.pool)
            .await?;
        let counts = rows
            .iter()
            .map(|row| {
                Ok(VariantCounts {
                    variant: row.try_get("push_variant")?,
                    group: row.try_get("grouped")?,
                    deliveries: row.try_get("n")?,
                    delivered: row.try_get("delivered")?,
                    clicked: row.try_get("clicked")?,
                    dismissed: row.try_get("dismissed")?,
                    reachable: row.try_get("reachable")?,
                    converted: row.try_get("converted")?,
                    converted_after_click: row.try_get("after_click")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some((
            Experiment {
                variants,
                conversion,
                rollout,
            },
            counts,
        )))
    }
}
