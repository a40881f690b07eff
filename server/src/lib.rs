//! askwell-server: subscriptions and topics, VAPID-signed Web Push delivery,
//! and the prompt funnel. [`app`] builds the whole HTTP surface as a `Router`,
//! so tests drive it with `oneshot` and no sockets.
#![deny(missing_docs)]

pub mod error;
pub mod routes;
pub mod store;
pub mod vapid;

use std::path::PathBuf;
use std::sync::Arc;

use axum::handler::HandlerWithoutStateExt;
use axum::Router;
use tower_http::services::ServeDir;

pub use error::AppError;
pub use store::Store;
pub use vapid::VapidKeys;

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The server's VAPID key pair.
    pub vapid: Arc<VapidKeys>,
    /// Static folders to serve, if any (the demo serves `www/` and `pkg/`).
    pub files: StaticFiles,
}

/// Folders served as static files beside the API.
#[derive(Clone, Debug, Default)]
pub struct StaticFiles {
    /// Served at `/` (the app: `www/`).
    pub site: Option<PathBuf>,
    /// Served at `/pkg/` (the npm package: `pkg/`).
    pub pkg: Option<PathBuf>,
}

/// The whole HTTP surface: API routes, then static files, then a JSON 404.
pub fn app(state: AppState) -> Router {
    let files = state.files.clone();
    let mut router = routes::api().with_state(state);
    if let Some(pkg) = files.pkg {
        router = router.nest_service("/pkg", ServeDir::new(pkg));
    }
    match files.site {
        Some(site) => router.fallback_service(ServeDir::new(site).fallback(routes::not_found.into_service())),
        None => router.fallback(routes::not_found),
    }
}
