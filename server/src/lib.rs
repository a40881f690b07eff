//! askwell-server: subscriptions and topics, VAPID-signed Web Push delivery,
//! and the prompt funnel. [`app`] builds the whole HTTP surface as a `Router`,
//! so tests drive it with `oneshot` and no sockets.
#![deny(missing_docs)]

pub mod client;
pub mod compression;
pub mod delivery;
pub mod encrypt;
pub mod error;
pub mod export;
pub mod extract;
pub mod funnel;
pub mod journeys;
pub mod limit;
pub mod metrics;
pub mod notification;
pub mod origin;
pub mod outcome;
pub mod personal;
pub mod push;
pub mod respect;
pub mod rollout;
pub mod routes;
pub mod secret;
pub mod serve;
pub mod simulate;
pub mod ssrf;
pub mod stats;
pub mod stop;
pub mod store;
pub mod users;
pub mod validate;
pub mod vapid;
pub mod variants;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderValue, Method};
use axum::Router;
use tokio::sync::Notify;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

pub use error::{AppError, ErrorCode};
pub use stop::Stop;
pub use store::Store;
pub use vapid::VapidKeys;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The server's VAPID key pair.
    pub vapid: Arc<VapidKeys>,
    /// Static folders to serve, if any (the demo serves `www/` and `pkg/`).
    pub files: StaticFiles,
    /// Security and limits.
    pub settings: Arc<Settings>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Wakes the delivery workers when new work is enqueued.
    pub wake: Arc<Notify>,
    /// Limits public event ingestion per client.
    pub limiter: Arc<limit::RateLimiter>,
}

impl AppState {
    /// State over `store` and `vapid` with default settings (for tests and embedding).
    pub fn new(store: Store, vapid: VapidKeys, settings: Settings) -> Self {
        Self {
            store,
            vapid: Arc::new(vapid),
            files: StaticFiles::default(),
            settings: Arc::new(settings),
            metrics: Arc::default(),
            wake: Arc::default(),
            limiter: Arc::default(),
        }
    }
}

/// A server ready to run: the state its routes share and the deliverer its
/// workers run, counting into one metrics registry (what `/metrics` shows
/// is what the workers did).
pub struct Server {
    /// What the HTTP handlers share ([`app`]).
    pub state: AppState,
    /// Sends what the outbox holds.
    pub deliverer: Arc<delivery::Deliverer>,
}

/// What [`Server::build`] needs: an open store and key pair, and how to run.
pub struct ServerConfig {
    /// The database.
    pub store: Store,
    /// The VAPID key pair.
    pub vapid: VapidKeys,
    /// The VAPID `sub` claim (`mailto:` or `https:`), checked by [`vapid::check_subject`].
    pub vapid_subject: String,
    /// Security and limits.
    pub settings: Settings,
    /// Static folders to serve.
    pub files: StaticFiles,
    /// Delivery tuning.
    pub delivery: delivery::DeliveryConfig,
}

impl Server {
    /// The state and a deliverer over the same store, wake-up signal and metrics.
    ///
    /// # Errors
    /// A message when the subject is not a real contact, the key cannot
    /// sign, or the push HTTP client cannot be built.
    pub fn build(config: ServerConfig) -> Result<Server, String> {
        vapid::check_subject(&config.vapid_subject)?;
        let mut state = AppState::new(config.store, config.vapid, config.settings);
        state.files = config.files;
        let signer = vapid::VapidSigner::new(&state.vapid, &config.vapid_subject).map_err(|e| e.to_string())?;
        let deliverer = delivery::Deliverer::new(
            state.store.clone(),
            Arc::new(signer),
            state.metrics.clone(),
            config.delivery,
        )?
        .with_policy(state.settings.delivery_policy.clone(), state.settings.default_zone());
        Ok(Server {
            state,
            deliverer: Arc::new(deliverer),
        })
    }
}

/// Security-relevant settings.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Token for the admin API; `None` disables it.
    pub admin_token: Option<String>,
    /// Which push endpoints are accepted.
    pub endpoints: validate::EndpointPolicy,
    /// Origins allowed to call the API from browsers (CORS); empty = same origin only.
    pub allowed_origins: Vec<String>,
    /// The secret the app's backend signs user ids with
    /// (`ASKWELL_IDENTITY_SECRET`); `None`: devices cannot be bound to users.
    pub identity_secret: Option<Vec<u8>>,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`ASKWELL_TRUSTED_PROXIES`); empty: the peer address is the client.
    pub trusted_proxies: Vec<client::Network>,
    /// The zone a scheduled notification's local time is read in for a
    /// recipient with none (`ASKWELL_DEFAULT_TIME_ZONE`); `None`: UTC.
    pub default_time_zone: Option<jiff::tz::TimeZone>,
    /// Caps, quiet hours and categories (`ASKWELL_DELIVERY_POLICY`, a JSON
    /// file); the default lets every push through.
    pub delivery_policy: askwell::delivery::DeliveryPolicy,
}

impl Settings {
    /// [`Settings::default_time_zone`], UTC when unset.
    pub fn default_zone(&self) -> jiff::tz::TimeZone {
        self.default_time_zone.clone().unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// Folders served as static files beside the API.
#[derive(Clone, Debug, Default)]
pub struct StaticFiles {
    /// Served at `/` (the app: `www/`).
    pub site: Option<PathBuf>,
    /// Served at `/pkg/` (the npm package: `pkg/`).
    pub pkg: Option<PathBuf>,
}

/// The whole HTTP surface: API routes, then static files, then a JSON 404;
/// answers compressed when the client asks (see [`compression`]).
pub fn app(state: AppState) -> Router {
    let files = state.files.clone();
    let cors = cors(&state.settings.allowed_origins);
    // ServeDir alone answers a missing file or a POST with an empty body;
    // its fallback makes those JSON errors like the API's.
    let static_files = |folder: PathBuf| {
        ServeDir::new(folder)
            .call_fallback_on_method_not_allowed(true)
            .fallback(routes::static_fallback.into_service())
    };
    let mut router = routes::api()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .with_state(state);
    if let Some(pkg) = files.pkg {
        router = router.nest_service("/pkg", static_files(pkg));
    }
    let router = match files.site {
        Some(site) => router.fallback_service(static_files(site)),
        None => router.fallback(routes::not_found),
    };
    // Last, so that it wraps the routes, the static folders and the fallback.
    router.layer(compression::layer())
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::header::AUTHORIZATION])
}
