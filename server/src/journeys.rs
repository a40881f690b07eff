//! The journey runner: feeds tracked events and due times to the core's
//! journey engine (`askwell::journey`) and does what it answers — stores the
//! instance, enqueues the notification through the outbox.
//!
//! Durable and exactly as sure as delivery:
//! - Events are read from `user_events` by seq behind a cursor one server
//!   holds at a time (a lease); the cursor moves only after the events'
//!   effects are stored, so a crash replays them.
//! - A replay does nothing twice: an instance's id is derived from its cause
//!   (journey, user, key, event seq), so it is entered once; each send's
//!   idempotency key (`journey:{instance}:{step}`) makes the outbox enqueue
//!   it once; an ended instance never moves again.
//! - Due instances are claimed with the deliveries' lease machinery, so
//!   several servers on one PostgreSQL share the work without double sends.
//! - The clock is a parameter ([`Runner::tick`] takes `now_ms`): tests step
//!   it instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askwell::journey::{self, Action, Cause, Ending, Fields, Instance, Journey, Position, Prior, Trigger};
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::hash_map::Entry;

use crate::error::ErrorCode;
use crate::metrics::Metrics;
use crate::notification::{NotificationRequest, NotifyRequest, Target};
use crate::store::{InstanceRow, JourneyWrites, NewNotification, SendRow, StoredEvent, StoredJourney, UserFacts};
use crate::{AppError, Store};

/// Events read per batch.
const EVENT_BATCH: i64 = 500;
/// Instances claimed per batch.
const DUE_BATCH: i64 = 500;
/// How long a claim (of the cursor, of an instance) lasts.
const LEASE_MS: i64 = 60_000;
/// How long one tick reads events before it gives the cursor back: half
/// the lease, so the lease never runs out while it reads.
const READ_BUDGET: std::time::Duration = std::time::Duration::from_millis(LEASE_MS as u64 / 2);
/// How often the inactivity sweep runs at most.
const SWEEP_EVERY_MS: i64 = 60_000;
/// Most inactive users entered per sweep and journey.
const SWEEP_BATCH: i64 = 10_000;

/// What one [`Runner::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Events read.
    pub events: usize,
    /// Instances entered.
    pub entered: usize,
    /// Due instances run.
    pub due: usize,
    /// Notifications enqueued.
    pub sent: usize,
}

/// Parsed journey definitions by (id, version).
type Parsed = HashMap<(String, i64), Arc<Journey>>;

/// Runs journeys against one store.
#[derive(Debug, Clone)]
pub struct Runner {
    store: Store,
    default_zone: TimeZone,
    /// Parsed definitions by (id, version): versions never change.
    parsed: Arc<Mutex<Parsed>>,
    last_sweep_ms: Arc<Mutex<i64>>,
    /// Where entries and sends are counted (`/metrics`).
    metrics: Arc<Metrics>,
}

/// Reads a journey definition as the core does, from serde JSON.
///
/// # Errors
/// `invalid_journey` naming every bad field.
pub fn read_definition(definition: &Value) -> Result<Journey, AppError> {
    Journey::read(&core_value(definition)).map_err(|err| AppError::invalid(ErrorCode::InvalidJourney, err.to_string()))
}

/// Stores the journeys of a JSON file (an array of definitions, each with
/// its `id`) at start. Every definition is checked before any is stored,
/// and a bad one is an error naming the file and the field
/// (`journeys.json: [2] steps[0].wait: …`).
///
/// # Errors
/// The file cannot be read, is not a JSON array of definitions with ids,
/// or a definition is invalid; or the database fails.
pub async fn load_file(store: &Store, path: &std::path::Path) -> Result<usize, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|err| format!("{name}: {err}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|err| format!("{name}: not JSON: {err}"))?;
    let Value::Array(definitions) = value else {
        return Err(format!("{name}: expected an array of journey definitions"));
    };
    let mut problems = Vec::new();
    let mut valid = Vec::new();
    for (i, definition) in definitions.iter().enumerate() {
        let id = definition.get("id").and_then(Value::as_str);
        match (id, read_definition(definition)) {
            (None, _) => problems.push(format!("[{i}] id: required (the journey's id)")),
            (Some(_), Err(err)) => problems.push(format!("[{i}] {err}")),
            (Some(id), Ok(_)) => valid.push((id.to_owned(), definition.clone())),
        }
    }
    if !problems.is_empty() {
        return Err(format!("{name}: {}", problems.join("; ")));
    }
    for (id, definition) in &valid {
        store
            .journey_put(id, definition, crate::store::now_ms())
            .await
            .map_err(|err| format!("{name}: storing {id}: {err}"))?;
    }
    Ok(valid.len())
}

/// serde JSON → the core's value tree.
pub fn core_value(value: &Value) -> askwell::value::Value {
    use askwell::value::Value as Core;
    match value {
        Value::Null => Core::Null,
        Value::Bool(b) => Core::Bool(*b),
        Value::Number(n) => Core::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Core::String(s.clone()),
        Value::Array(items) => Core::Array(items.iter().map(core_value).collect()),
        Value::Object(members) => Core::Object(members.iter().map(|(k, v)| (k.clone(), core_value(v))).collect()),
    }
}

/// Flat JSON scalars as text (strings as they are, others as JSON).
pub(crate) fn fields(map: &Map<String, Value>) -> Fields {
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// A stable id for an instance from its cause: replaying the cause yields
/// the same id, so it enters once. `order` (the event's seq, the inactive
/// user's last visit) comes first, so a batch's new instances, their sends
/// and their idempotency keys land side by side in the indexes (a hash
/// alone scattered every row of a 100,000-user sweep on its own page).
fn instance_id(order: i64, journey: &str, user: &str, key: &str, cause: &str) -> String {
    let mut hash = Sha256::new();
    for part in [journey, user, key, cause] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut id = format!("{:016x}", u64::try_from(order).unwrap_or(0));
    for b in &digest[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

impl Runner {
    /// A runner over `store`; recipients without a known zone are timed in
    /// `default_zone`.
    pub fn new(store: Store, default_zone: TimeZone) -> Self {
        Self {
            store,
            default_zone,
            parsed: Arc::default(),
            last_sweep_ms: Arc::new(Mutex::new(i64::MIN)),
            metrics: Arc::default(),
        }
    }

    /// The runner counting into `metrics` (the server's, so `/metrics`
    /// shows what it did); by default it counts into its own.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Ticks every `every` until `stop`, waking the delivery workers when a
    /// tick enqueued something. A failed tick is logged and retried.
    pub async fn run(self, every: std::time::Duration, wake: Arc<tokio::sync::Notify>, stop: crate::Stop) {
        while !stop.is_raised() {
            match self.tick(crate::store::now_ms()).await {
                Ok(tick) if tick.sent > 0 => wake.notify_waiters(),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "journey tick failed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.raised() => return,
            }
        }
    }

    /// Reads new events, runs due instances and (at most once a minute)
    /// the inactivity sweep, all as of `now_ms`.
    ///
    /// # Errors
    /// When the database fails; what was stored stays stored and the rest
    /// is retried by the next tick.
    pub async fn tick(&self, now_ms: i64) -> Result<Tick, sqlx::Error> {
        let current = self.current().await?;
        let mut tick = Tick::default();
        self.read_events(&current, now_ms, &mut tick).await?;
        self.run_due(now_ms, &mut tick).await?;
        self.sweep_inactive(&current, now_ms, &mut tick).await?;
        Ok(tick)
    }

    async fn current(&self) -> Result<Vec<(StoredJourney, Arc<Journey>)>, sqlx::Error> {
        let mut out = Vec::new();
        for stored in self.store.journeys_current().await? {
            if let Some(journey) = self.parse(&stored) {
                out.push((stored, journey));
            }
        }
        Ok(out)
    }

    fn parse(&self, stored: &StoredJourney) -> Option<Arc<Journey>> {
        let key = (stored.id.clone(), stored.version);
        let mut parsed = self.parsed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(journey) = parsed.get(&key) {
            return Some(journey.clone());
        }
        match read_definition(&stored.definition) {
            Ok(journey) => {
                let journey = Arc::new(journey);
                parsed.insert(key, journey.clone());
                Some(journey)
            }
            Err(err) => {
                // Checked when it was PUT: only a hand edit gets here.
                tracing::error!(journey = %stored.id, version = stored.version, error = %err, "stored journey does not read");
                None
            }
        }
    }

    async fn version(&self, id: &str, version: i64) -> Result<Option<Arc<Journey>>, sqlx::Error> {
        if let Some(journey) = self
            .parsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(id.to_owned(), version))
        {
            return Ok(Some(journey.clone()));
        }
        Ok(self
            .store
            .journey_version(id, version)
            .await?
            .and_then(|stored| self.parse(&stored)))
    }

    /// A user's traits as text and the zone to time their steps in (their
    /// own or their device's, else the default), from the batch's facts.
    fn known(&self, batch: &mut Batch, user: &str) -> Known {
        let facts = batch.facts.entry(user.to_owned()).or_default();
        Known {
            traits: fields(&facts.traits),
            zone: facts
                .time_zone
                .as_deref()
                .and_then(journey::zone)
                .unwrap_or_else(|| self.default_zone.clone()),
        }
    }

    async fn read_events(
        &self,
        current: &[(StoredJourney, Arc<Journey>)],
        now_ms: i64,
        tick: &mut Tick,
    ) -> Result<(), sqlx::Error> {
        let Some(mut seq) = self.store.journey_cursor_take(now_ms, LEASE_MS).await? else {
            return Ok(()); // Another server reads them.
        };
        // Given back well before the lease ends (by the wall clock: the
        // tick's own may be a test's), so no other server takes the cursor
        // while this one still reads behind it; the next tick goes on.
        let started = std::time::Instant::now();
        loop {
            let events = self.store.user_events_after(seq, EVENT_BATCH).await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return self.store.journey_cursor_advance(seq, true).await;
            };
            let mut batch = Batch::for_events(&self.store, events.iter().map(|e| e.user.clone())).await?;
            for event in &events {
                self.on_event(current, event, &mut batch, now_ms, tick).await?;
            }
            tick.events += events.len();
            batch.commit(self, now_ms, tick).await?;
            seq = last;
            let more = events.len() as i64 == EVENT_BATCH;
            let give_back = !more || started.elapsed() >= READ_BUDGET;
            self.store.journey_cursor_advance(seq, give_back).await?;
            if give_back {
                return Ok(());
            }
        }
    }

    async fn on_event(
        &self,
        current: &[(StoredJourney, Arc<Journey>)],
        stored: &StoredEvent,
        batch: &mut Batch,
        now_ms: i64,
        tick: &mut Tick,
    ) -> Result<(), sqlx::Error> {
        let user = stored.user.as_str();
        let properties = fields(&stored.properties);
        let event = journey::Event {
            name: &stored.name,
            key: stored.key.as_deref().unwrap_or(""),
            at_ms: u64::try_from(stored.at_ms).unwrap_or(0),
            properties: &properties,
        };
        let known = self.known(batch, user);
        let facts = known.at(now_ms);
        let running = batch.facts.get(user).map(|f| f.running.clone()).unwrap_or_default();
        for row in &running {
            let Some(definition) = self.version(&row.journey, row.version).await? else {
                continue;
            };
            let listens = definition.listens_to().any(|name| name == stored.name)
                || matches!(definition.entry.trigger, Trigger::Inactive { .. });
            if !listens {
                continue;
            }
            let mut instance = to_instance(row);
            let actions = journey::on_event(&definition, &mut instance, event, facts);
            batch.record(instance, actions, false);
        }
        for (stored_journey, definition) in current {
            if definition.goal() == Some(stored.name.as_str()) {
                batch
                    .writes
                    .conversions
                    .push((definition.id.clone(), user.to_owned(), stored.at_ms));
            }
            let Trigger::Event { name, nth, keyed } = &definition.entry.trigger else {
                continue;
            };
            if name != &stored.name {
                continue;
            }
            let occurrences = match nth {
                Some(_) => self
                    .store
                    .user_events_since(user, name, 0)
                    .await?
                    .iter()
                    .filter(|e| e.seq <= stored.seq)
                    .count() as u64,
                None => 1,
            };
            let prior = batch.priors(&definition.id, user);
            let key = if *keyed { event.key } else { "" };
            let id = instance_id(stored.seq, &definition.id, user, key, &format!("seq:{}", stored.seq));
            let cause = Cause::Event { event, occurrences };
            let version = u32::try_from(stored_journey.version).unwrap_or(u32::MAX);
            if let Some(entered) = journey::enter(definition, version, &id, user, cause, &prior, facts) {
                tick.entered += 1;
                batch.record(entered.instance, entered.actions, true);
            }
        }
        Ok(())
    }

    async fn run_due(&self, now_ms: i64, tick: &mut Tick) -> Result<(), sqlx::Error> {
        loop {
            let claimed = self.store.journey_claim_due(now_ms, DUE_BATCH, LEASE_MS).await?;
            let count = claimed.len();
            let mut batch = Batch::for_profiles(&self.store, claimed.iter().map(|r| r.user.clone())).await?;
            for row in claimed {
                let Some(definition) = self.version(&row.journey, row.version).await? else {
                    continue;
                };
                let known = self.known(&mut batch, &row.user);
                let mut instance = to_instance(&row);
                let actions = journey::on_due(&definition, &mut instance, known.at(now_ms));
                tick.due += 1;
                batch.record(instance, actions, false);
            }
            batch.commit(self, now_ms, tick).await?;
            if (count as i64) < DUE_BATCH {
                return Ok(());
            }
        }
    }

    async fn sweep_inactive(
        &self,
        current: &[(StoredJourney, Arc<Journey>)],
        now_ms: i64,
        tick: &mut Tick,
    ) -> Result<(), sqlx::Error> {
        {
            let mut last = self
                .last_sweep_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if now_ms.saturating_sub(*last) < SWEEP_EVERY_MS {
                return Ok(());
            }
            *last = now_ms;
        }
        for (stored, definition) in current {
            let Trigger::Inactive { after_ms } = definition.entry.trigger else {
                continue;
            };
            let before = now_ms.saturating_sub(i64::try_from(after_ms).unwrap_or(i64::MAX));
            let inactive = self.store.users_inactive_since(before, SWEEP_BATCH).await?;
            let mut batch = Batch::for_events(&self.store, inactive.iter().map(|(u, _)| u.clone())).await?;
            for (user, last_seen) in inactive {
                let prior = batch.priors(&definition.id, &user);
                let known = self.known(&mut batch, &user);
                let id = instance_id(last_seen, &definition.id, &user, "", &format!("inactive:{last_seen}"));
                let cause = Cause::Inactive {
                    last_seen_ms: u64::try_from(last_seen).unwrap_or(0),
                };
                let version = u32::try_from(stored.version).unwrap_or(u32::MAX);
                if let Some(entered) = journey::enter(definition, version, &id, &user, cause, &prior, known.at(now_ms))
                {
                    tick.entered += 1;
                    batch.record(entered.instance, entered.actions, true);
                }
            }
            batch.commit(self, now_ms, tick).await?;
        }
        Ok(())
    }
}

/// One journey send for `user`'s devices, through the same checks as
/// `POST /v1/notify` (a send too large once rendered is refused, and
/// recorded as such).
fn notification(user: &str, send: journey::Send) -> Result<NewNotification, AppError> {
    NotifyRequest {
        to: Target {
            user: Some(user.to_owned()),
            ..Target::default()
        },
        notification: NotificationRequest {
            title: send.title,
            body: Some(send.body),
            url: send.url,
            image: send.image,
            ..NotificationRequest::default()
        },
        idempotency_key: Some(send.idempotency),
        category: send.category,
        ..NotifyRequest::default()
    }
    .prepare()
}

fn to_instance(row: &InstanceRow) -> Instance {
    let position = match row.due_ms {
        Some(at) => Position::At {
            step: usize::try_from(row.step).unwrap_or(usize::MAX),
            at_ms: u64::try_from(at).unwrap_or(0),
        },
        None => Position::Ended(Ending::Completed),
    };
    Instance {
        id: row.id.clone(),
        journey: row.journey.clone(),
        version: u32::try_from(row.version).unwrap_or(u32::MAX),
        user: row.user.clone(),
        key: row.key.clone(),
        entered_ms: u64::try_from(row.entered_ms).unwrap_or(0),
        holdout: row.holdout,
        event: row
            .event
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
        position,
    }
}

fn to_row(instance: &Instance) -> InstanceRow {
    let (step, due_ms, ending, ended_by) = match &instance.position {
        Position::At { step, at_ms } => (*step, i64::try_from(*at_ms).ok(), None, None),
        Position::Ended(ending) => {
            let by = match ending {
                Ending::Exited(event) => Some(event.clone()),
                _ => None,
            };
            (0, None, Some(ending.as_str().to_owned()), by)
        }
    };
    InstanceRow {
        id: instance.id.clone(),
        journey: instance.journey.clone(),
        version: i64::from(instance.version),
        user: instance.user.clone(),
        key: instance.key.clone(),
        entered_ms: i64::try_from(instance.entered_ms).unwrap_or(i64::MAX),
        holdout: instance.holdout,
        event: instance
            .event
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        step: i64::try_from(step).unwrap_or(i64::MAX),
        due_ms,
        ending,
        ended_by,
    }
}

/// What a step knows of its user, owned so the batch stays free to change.
struct Known {
    traits: Fields,
    zone: TimeZone,
}

impl Known {
    fn at(&self, now_ms: i64) -> journey::Facts<'_> {
        journey::Facts {
            traits: &self.traits,
            zone: &self.zone,
            now_ms: u64::try_from(now_ms).unwrap_or(0),
        }
    }
}

fn distinct(users: impl Iterator<Item = String>) -> Vec<String> {
    let mut users: Vec<String> = users.collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// One batch of steps: the users' facts read up front, kept current as the
/// batch's own steps enter and move instances (a user's add-to-cart and
/// purchase in one batch), and everything to write at the end.
struct Batch {
    facts: HashMap<String, UserFacts>,
    writes: JourneyWrites,
    /// Where each instance is in `writes.instances`.
    at: HashMap<String, usize>,
    /// Sends to enqueue: (instance id, journey, user, send).
    sends: Vec<(String, String, String, journey::Send)>,
}

impl Batch {
    /// A batch for events and entries, which need each user's instances
    /// (running ones to move, earlier ones for the entry rules).
    async fn for_events(store: &Store, users: impl Iterator<Item = String>) -> Result<Self, sqlx::Error> {
        Ok(Self::of(store.journey_facts(&distinct(users)).await?))
    }

    /// A batch for claimed due steps, which need only the users' traits and
    /// zones: a due step moves its own instance, and reads no other.
    async fn for_profiles(store: &Store, users: impl Iterator<Item = String>) -> Result<Self, sqlx::Error> {
        Ok(Self::of(store.journey_profiles(&distinct(users)).await?))
    }

    fn of(facts: HashMap<String, UserFacts>) -> Self {
        Self {
            facts,
            writes: JourneyWrites::default(),
            at: HashMap::new(),
            sends: Vec::new(),
        }
    }

    fn priors(&self, journey: &str, user: &str) -> Vec<Prior> {
        self.facts.get(user).map_or_else(Vec::new, |f| {
            f.priors
                .iter()
                .filter(|(j, ..)| j == journey)
                .map(|(_, key, entered_ms, active)| Prior {
                    key: key.clone(),
                    entered_ms: u64::try_from(*entered_ms).unwrap_or(0),
                    active: *active,
                })
                .collect()
        })
    }

    /// Takes in what a step did: the instance's new state (also in the
    /// user's facts, for the batch's later events) and its actions.
    fn record(&mut self, instance: Instance, actions: Vec<Action>, new: bool) {
        for action in actions {
            match action {
                Action::Send(send) => {
                    self.sends.push((
                        instance.id.clone(),
                        instance.journey.clone(),
                        instance.user.clone(),
                        send,
                    ));
                }
                Action::Withheld { step } => self.writes.sends.push(SendRow {
                    instance: instance.id.clone(),
                    step: i64::try_from(step).unwrap_or(i64::MAX),
                    journey: instance.journey.clone(),
                    notification: None,
                    withheld: true,
                    error: None,
                }),
                Action::Ended(_) => {}
            }
        }
        let row = to_row(&instance);
        let facts = self.facts.entry(instance.user.clone()).or_default();
        facts.running.retain(|r| r.id != row.id);
        if row.due_ms.is_some() {
            facts.running.push(row.clone());
        }
        if new {
            facts.priors.push((
                row.journey.clone(),
                row.key.clone(),
                row.entered_ms,
                row.due_ms.is_some(),
            ));
        } else if let Some(prior) = facts
            .priors
            .iter_mut()
            .find(|(j, k, e, _)| *j == row.journey && *k == row.key && *e == row.entered_ms)
        {
            prior.3 = row.due_ms.is_some();
        }
        match self.at.entry(row.id.clone()) {
            Entry::Occupied(at) => {
                let (slot, was_new) = &mut self.writes.instances[*at.get()];
                *slot = row;
                *was_new |= new;
            }
            Entry::Vacant(at) => {
                at.insert(self.writes.instances.len());
                self.writes.instances.push((row, new));
            }
        }
    }

    /// Enqueues the sends (each once, by its idempotency key) and stores
    /// the instances and what they sent, in one transaction. A crash
    /// before it commits replays the steps from the stored instances and
    /// the unmoved cursor; the derived ids enter no one twice.
    async fn commit(mut self, runner: &Runner, now_ms: i64, tick: &mut Tick) -> Result<(), sqlx::Error> {
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for (instance, journey, user, send) in std::mem::take(&mut self.sends) {
            let step = i64::try_from(send.step).unwrap_or(i64::MAX);
            let mut row = SendRow {
                instance,
                step,
                journey,
                notification: None,
                withheld: false,
                error: None,
            };
            match notification(&user, send) {
                Ok(notification) => {
                    ready.push(notification);
                    waiting.push(row);
                }
                Err(err) => {
                    tracing::warn!(journey = %row.journey, instance = %row.instance, step, error = %err, "journey send refused");
                    row.error = Some(err.to_string());
                    self.writes.sends.push(row);
                }
            }
        }
        // Counted once stored: a batch that fails is replayed, and its
        // derived ids enter no one twice.
        let entered = self.writes.instances.iter().filter(|(_, new)| *new).count();
        let sent = runner
            .store
            .journey_commit(&ready, waiting, self.writes, now_ms)
            .await?;
        tick.sent += sent;
        runner.metrics.count_journeys(entered as u64, sent as u64);
        Ok(())
    }
}
