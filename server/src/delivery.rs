//! Delivery workers: claim due deliveries from the outbox, encrypt (RFC 8291)
//! and sign (RFC 8292) each with the web-push crate, POST it to the push
//! service, and record the outcome. At-least-once towards the push service,
//! exactly one final record per delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use web_push::{ContentEncoding, WebPushMessage, WebPushPayload};

use crate::metrics::{Counted, Metrics, Phase};
use crate::outcome::{classify, parse_retry_after, Backoff, Outcome};
use crate::push::{DeliveryStatus, Urgency};
use crate::respect::{FatigueWatch, Respect, LEDGER_MS};
use crate::ssrf::{is_sendable, GuardedResolver};
use crate::store::{device_subject, now_ms, Admission, Claimed, Recorded, Store};
use crate::vapid::VapidSigner;

/// Most outcomes written in one transaction (a round's recorder writes at
/// most its batch, 512 by default; a larger `batch` is written in parts).
const OUTCOMES_PER_WRITE: usize = 1024;

/// Longest idle pause of a worker between polls of the outbox (ms).
const IDLE_POLL_MS: i64 = 1000;

/// Tuning for the workers.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    /// Deliveries claimed per round.
    pub batch: i64,
    /// In-flight requests per push-service origin.
    pub per_origin: usize,
    /// How long a claim is held before another worker may take it over.
    pub lease: Duration,
    /// Timeout of one push request.
    pub timeout: Duration,
    /// Retry policy.
    pub backoff: Backoff,
    /// Allow `http://` and private addresses (local test push services only).
    pub allow_insecure: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            batch: 512,
            per_origin: 64,
            lease: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            allow_insecure: false,
        }
    }
}

/// Sends what the outbox holds.
pub struct Deliverer {
    store: Store,
    signer: Arc<VapidSigner>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    config: DeliveryConfig,
    origins: Mutex<HashMap<String, Arc<Semaphore>>>,
    respect: Respect,
    fatigue: FatigueWatch,
}

impl Deliverer {
    /// A deliverer with a pooled HTTP/2-capable client whose resolver refuses
    /// non-public addresses and which never uses a proxy.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS backend missing).
    pub fn new(
        store: Store,
        signer: Arc<VapidSigner>,
        metrics: Arc<Metrics>,
        config: DeliveryConfig,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            // Through an HTTPS_PROXY/ALL_PROXY the proxy resolves the name, so
            // the guarded resolver below is never consulted and a name pointing
            // at 127.0.0.1 reaches whatever the proxy can reach. Push services
            // are public hosts; they never need one (README, *Security model*:
            // outbound, no proxies).
            .no_proxy()
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.per_origin)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                allow_insecure: config.allow_insecure,
            }))
            .build()
            .map_err(|err| format!("cannot build the push HTTP client: {err}"))?;
        Ok(Self {
            store,
            signer,
            metrics,
            client,
            config,
            origins: Mutex::default(),
            fatigue: FatigueWatch::default(),
            respect: Respect::new(askwell::delivery::DeliveryPolicy::default(), jiff::tz::TimeZone::UTC),
        })
    }

    /// Checks every claimed delivery against `policy` (caps, quiet hours,
    /// digests; see [`crate::respect`]), timing recipients without a known
    /// zone in `default_zone`. What people turned off (muted categories,
    /// pauses) is enforced with or without a policy.
    #[must_use]
    pub fn with_policy(mut self, policy: askwell::delivery::DeliveryPolicy, default_zone: jiff::tz::TimeZone) -> Self {
        self.respect = Respect::new(policy, default_zone);
        self
    }

    /// Runs until `stop` is raised (finishing the round under way): claims due work, sends it, sleeps until
    /// woken (`wake`) or until the next retry is due.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, stop: crate::Stop) {
        loop {
            // Checked between rounds too: with work waiting there is no
            // sleep to interrupt, and a shutdown must not wait for the
            // whole backlog.
            if stop.is_raised() {
                return;
            }
            let sent = match self.round().await {
                Ok(sent) => sent,
                Err(err) => {
                    tracing::error!(error = %err, "delivery round failed; retrying shortly");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            let pause = self.idle_pause().await;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                () = stop.raised() => return,
            }
        }
    }

    /// One round: claim a batch and send it all. Returns how many were claimed.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn round(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let started = Instant::now();
        let batch = self.store.deliveries_claim(self.config.batch, lease_ms).await?;
        self.metrics.add_phase(Phase::Claim, started.elapsed());
        let claimed = batch.len();
        let started = Instant::now();
        let batch = self.admit(batch).await?;
        self.metrics.add_phase(Phase::Admit, started.elapsed());
        let renewal = self.keep_leased(batch.iter().map(|d| d.id).collect(), lease_ms);
        let (outcomes, recorder) = self.recorder();
        let mut tasks = JoinSet::new();
        for delivery in batch {
            let this = self.clone();
            let outcomes = outcomes.clone();
            tasks.spawn(async move {
                // The recorder ends only after every task has sent; if it
                // died (a panic), the delivery is sent again after its lease.
                if let Err(unrecorded) = outcomes.send(this.deliver(delivery).await) {
                    tracing::error!(outcome = ?unrecorded.0, "the delivery recorder is gone; outcome not recorded");
                }
            });
        }
        drop(outcomes);
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                tracing::error!(error = %err, "delivery task panicked");
            }
        }
        if let Err(err) = recorder.await {
            tracing::error!(error = %err, "delivery recorder panicked");
        }
        renewal.abort();
        Ok(claimed)
    }

    /// A task writing the outcomes it is sent, each write all that came in
    /// while the one before ran (group commit: under load a few hundred
    /// rows per transaction, when idle one). Ends when every sender is gone
    /// and all is written.
    fn recorder(&self) -> (mpsc::UnboundedSender<Recorded>, tokio::task::JoinHandle<()>) {
        let (sender, mut received) = mpsc::unbounded_channel();
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let recorder = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while received.recv_many(&mut outcomes, OUTCOMES_PER_WRITE).await > 0 {
                let started = Instant::now();
                if let Err(err) = store.deliveries_record(&outcomes).await {
                    tracing::error!(error = %err, outcomes = outcomes.len(), "recording delivery outcomes failed; those deliveries are sent again when their lease runs out");
                }
                metrics.add_phase(Phase::Record, started.elapsed());
                outcomes.clear();
            }
        });
        (sender, recorder)
    }

    /// The claimed deliveries the delivery policy lets through now, each
    /// with the count of the pushes it stands for; the rest are recorded
    /// as held, capped or collapsed.
    async fn admit(&self, batch: Vec<Claimed>) -> Result<Vec<Claimed>, sqlx::Error> {
        if batch.is_empty() {
            return Ok(batch);
        }
        let respect = &self.respect;
        let subjects: Vec<String> = batch
            .iter()
            .flat_map(|d| [device_subject(d.subscription_id), d.person.clone()])
            .collect();
        let preferences = self.store.preferences_of(&subjects).await?;
        let (paused, fresh) = self
            .fatigue
            .paused(&self.store, &respect.policy().fatigue, now_ms())
            .await?;
        if fresh {
            self.metrics.set_paused_categories(&paused);
        }
        let left_audience = batch.iter().any(|d| d.left_audience);
        if preferences.is_empty() && paused.is_empty() && !left_audience && respect.policy().is_open() {
            // Nothing to hold, drop, merge or silence: no ledger to read and
            // no admission to record (a policy-less server's fan-out pays
            // one preferences query per batch, nothing more).
            return Ok(batch);
        }
        let mut counts = HashMap::new();
        let admissions = self
            .store
            .deliveries_admit(&batch, LEDGER_MS, |history, now| {
                respect.decide(&batch, history, &preferences, &paused, now, &mut counts)
            })
            .await?;
        let mut send = std::collections::HashSet::new();
        for admission in &admissions {
            match admission {
                Admission::Send(id) => {
                    send.insert(*id);
                }
                Admission::Hold(..) => self.metrics.count(Counted::Held),
                Admission::Cap(_) => self.metrics.count(Counted::Capped),
                Admission::Collapse(_) => self.metrics.count(Counted::Collapsed),
                Admission::Mute(_) => self.metrics.count(Counted::Muted),
                Admission::Pause(_) => self.metrics.count(Counted::Paused),
            }
        }
        Ok(batch
            .into_iter()
            .filter(|d| send.contains(&d.id))
            .map(|mut d| {
                d.count = counts.get(&d.id).copied().unwrap_or(1);
                d
            })
            .collect())
    }

    /// Renews the batch's leases every third of the lease until aborted.
    fn keep_leased(&self, ids: Vec<i64>, lease_ms: i64) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let every = self.config.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(err) = store.deliveries_renew(&ids, lease_ms).await {
                    tracing::warn!(error = %err, "renewing delivery leases failed");
                }
            }
        })
    }

    async fn idle_pause(&self) -> Duration {
        // At most a second (new work also wakes the workers: `wake`), so
        // only what is due within it matters: a delivery scheduled for next
        // week neither shortens the pause (no spinning) nor lengthens it
        // past work enqueued meanwhile, and the bounded query reads only the
        // rows due within the second.
        // A failing query is logged, not taken for an empty outbox: it would
        // hide a broken store behind a fixed one-second poll.
        let next = match self.store.next_due_before(now_ms() + IDLE_POLL_MS).await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(error = %err, "reading when the next delivery is due failed; polling again in 1 s");
                None
            }
        };
        let wait_ms = next.map_or(IDLE_POLL_MS, |due| (due - now_ms()).clamp(10, IDLE_POLL_MS));
        Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1000))
    }

    /// Sends one delivery; what came of it, to record.
    async fn deliver(&self, delivery: Claimed) -> Recorded {
        // Failed, not pruned: the push service never said the subscription is
        // gone; only this server refuses to contact it (ssrf::is_sendable).
        if let Err(reason) = is_sendable(&delivery.endpoint, self.config.allow_insecure) {
            tracing::warn!(delivery = delivery.id, %reason, "push endpoint refused by the SSRF guard; not contacted");
            return self.give_up(delivery.id);
        }
        let waited = Instant::now();
        let permit = self.origin_gate(&delivery.endpoint).acquire_owned().await;
        self.metrics.add_phase(Phase::Wait, waited.elapsed());
        let answer = self.send(&delivery).await;
        drop(permit);
        match answer {
            Ok((status, retry_after)) => self.outcome(delivery, status, retry_after),
            Err(Unsendable(reason)) => {
                tracing::warn!(delivery = delivery.id, %reason, "cannot build the push request; giving up");
                self.give_up(delivery.id)
            }
        }
    }

    /// What the push service's answer means for `delivery`, counted.
    fn outcome(&self, delivery: Claimed, status: Option<u16>, retry_after: Option<Duration>) -> Recorded {
        let jitter = rand::random::<f64>();
        match classify(status, retry_after, delivery.attempt, &self.config.backoff, jitter) {
            Outcome::Delivered => {
                self.metrics.count(Counted::Delivered);
                Recorded::Finish {
                    id: delivery.id,
                    status: DeliveryStatus::Delivered,
                    code: status,
                }
            }
            Outcome::Prune => {
                self.metrics.count(Counted::Pruned);
                Recorded::Prune {
                    code: status.unwrap_or(410),
                    delivery: Box::new(delivery),
                }
            }
            Outcome::Retry(delay) => {
                self.metrics.count(Counted::Retried);
                Recorded::Retry {
                    id: delivery.id,
                    next_ms: now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                    code: status,
                }
            }
            Outcome::Failed => {
                self.metrics.count(Counted::Failed);
                Recorded::Finish {
                    id: delivery.id,
                    status: DeliveryStatus::Failed,
                    code: status,
                }
            }
        }
    }

    /// A delivery that was never sent and never will be.
    fn give_up(&self, id: i64) -> Recorded {
        self.metrics.count(Counted::Failed);
        Recorded::Finish {
            id,
            status: DeliveryStatus::Failed,
            code: None,
        }
    }

    /// Bounds concurrent requests per push-service origin.
    fn origin_gate(&self, endpoint: &str) -> Arc<Semaphore> {
        let origin = url::Url::parse(endpoint)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let mut origins = self.origins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        origins
            .entry(origin)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_origin)))
            .clone()
    }

    /// Encrypts, signs and POSTs one delivery. `Ok((None, _))` is a transport
    /// error or timeout (retryable); `Err` means the request cannot be built.
    async fn send(&self, delivery: &Claimed) -> Result<(Option<u16>, Option<Duration>), Unsendable> {
        let started = Instant::now();
        let request = build_request(&self.signer, delivery).map_err(Unsendable)?;
        self.metrics.add_phase(Phase::Build, started.elapsed());
        let started = Instant::now();
        let answer = self.client.execute(request).await;
        self.metrics.add_phase(Phase::Request, started.elapsed());
        match answer {
            Ok(response) => {
                self.metrics.observe_latency(started.elapsed());
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                Ok((Some(response.status().as_u16()), retry_after))
            }
            Err(err) => {
                tracing::debug!(delivery = delivery.id, error = %err, "push request failed");
                Ok((None, None))
            }
        }
    }
}

/// Encrypts (RFC 8291) and signs (RFC 8292, cached per origin) one delivery
/// into an HTTP request for its push service.
///
/// # Errors
/// A reason when stored keys or the endpoint are unusable.
pub fn build_request(signer: &VapidSigner, delivery: &Claimed) -> Result<reqwest::Request, String> {
    let endpoint = url::Url::parse(&delivery.endpoint).map_err(|e| e.to_string())?;
    let payload = personalised(delivery);
    let keys = |encoded: &str, name: &str| {
        crate::validate::decode(encoded).ok_or_else(|| format!("stored {name} is not base64url"))
    };
    let content = crate::encrypt::encrypt(
        &keys(&delivery.p256dh, "p256dh")?,
        &keys(&delivery.auth, "auth")?,
        payload.as_bytes(),
    )?;
    let signature = signer.signature_for(&endpoint)?;
    let message = WebPushMessage {
        endpoint: delivery
            .endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?,
        ttl: delivery.ttl,
        urgency: delivery.urgency.map(header_urgency),
        topic: delivery.topic.clone().map(checked_topic).transpose()?,
        payload: Some(WebPushPayload {
            content,
            crypto_headers: vec![(
                "Authorization",
                format!(
                    "vapid t={}, k={}",
                    signature.auth_t,
                    URL_SAFE_NO_PAD.encode(&signature.auth_k)
                ),
            )],
            content_encoding: ContentEncoding::Aes128Gcm,
        }),
    };
    let built: http::Request<Vec<u8>> = web_push::request_builder::build_request(message);
    let (parts, body) = built.into_parts();
    let mut request = reqwest::Request::new(reqwest::Method::POST, endpoint);
    for (name, value) in &parts.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).map_err(|e| e.to_string())?;
        let value = reqwest::header::HeaderValue::from_bytes(value.as_bytes()).map_err(|e| e.to_string())?;
        request.headers_mut().insert(name, value);
    }
    *request.body_mut() = Some(body.into());
    Ok(request)
}

/// A `Topic` header as RFC 8030 §5.4 allows it: at most 32 base64url
/// characters (what the web-push crate's builder checked).
fn checked_topic(topic: String) -> Result<String, String> {
    let valid = topic.len() <= 32
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(topic)
    } else {
        Err(format!("topic header {topic:?}: at most 32 of A-Z a-z 0-9 - _"))
    }
}

/// Why a request could not be built (bad stored keys, unsignable endpoint).
struct Unsendable(String);

/// The web-push crate's spelling of the same four values.
fn header_urgency(urgency: Urgency) -> web_push::Urgency {
    match urgency {
        Urgency::VeryLow => web_push::Urgency::VeryLow,
        Urgency::Low => web_push::Urgency::Low,
        Urgency::Normal => web_push::Urgency::Normal,
        Urgency::High => web_push::Urgency::High,
    }
}

/// The payload this delivery pushes, parsed and written once per push:
/// `"delivery": "<notification>:<delivery>"` added, so the worker can report
/// clicks and dismissals for this very delivery, and, for a digest of
/// several held pushes, its `digest` texts as title and body with `{count}`
/// filled in, and `count` set. The `digest` texts themselves never leave the
/// server. A payload that is not a JSON object goes as it is.
pub fn personalised(delivery: &Claimed) -> String {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str::<serde_json::Value>(&delivery.payload) else {
        return delivery.payload.clone();
    };
    let id = format!("{}:{}", delivery.notification_id, delivery.id);
    object.insert("delivery".into(), serde_json::Value::String(id));
    let digest = object.remove("digest");
    if delivery.count > 1 {
        let count = delivery.count.to_string();
        for key in ["title", "body"] {
            if let Some(text) = digest
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(serde_json::Value::as_str)
            {
                object.insert(key.into(), serde_json::Value::String(text.replace("{count}", &count)));
            }
        }
        object.insert("count".into(), serde_json::Value::from(delivery.count));
    }
    serde_json::Value::Object(object).to_string()
}
