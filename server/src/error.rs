//! One error type for every route: a stable `code()`, one `status()` match,
//! and a JSON body `{ "error": { "code", "message" } }` that never leaks internals.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Errors a request can end in.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is malformed or invalid; `code` names the kind, the message the field.
    #[error("{message}")]
    Invalid {
        /// Stable code (`invalid_json`, `invalid_endpoint`, …).
        code: &'static str,
        /// Human message naming the field.
        message: Cow<'static, str>,
    },
    /// The push payload is larger than every browser accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Missing or wrong admin token.
    #[error("missing or wrong admin token (Authorization: Bearer …)")]
    Unauthorized,
    /// The endpoint/auth pair does not match a stored subscription.
    #[error("no subscription with this endpoint and auth secret")]
    UnknownSubscription,
    /// The endpoint is registered under another auth secret (proof of
    /// possession failed); a browser whose keys changed uses the swap route.
    #[error("this push endpoint is registered with another auth secret; a browser whose subscription changed posts to /v1/subscriptions/swap with the old endpoint and auth")]
    SubscriptionHeld,
    /// A user id without a valid proof from the app's backend.
    #[error("{0}")]
    IdentityUnproven(&'static str),
    /// The requested resource does not exist.
    #[error("not found")]
    NotFound,
    /// Too many requests from this client.
    #[error("too many events from this client; retry after {retry_after_secs} s")]
    RateLimited {
        /// Sent as `Retry-After`.
        retry_after_secs: u64,
    },
    /// The request body is larger than this route accepts.
    #[error("request body too large")]
    BodyTooLarge,
    /// The path exists but not with this method (the `Allow` header lists those it has).
    #[error("method not allowed on this path (the Allow header lists the allowed ones)")]
    MethodNotAllowed,
    /// The client took too long to send its request (or the request took
    /// too long to serve).
    #[error("request timed out: send the request faster")]
    RequestTimeout,
    /// The database failed; details are logged, not returned.
    #[error("internal error")]
    Database(#[from] sqlx::Error),
}

impl AppError {
    /// An [`AppError::Invalid`] with a message naming the field.
    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnknownSubscription | Self::NotFound => StatusCode::NOT_FOUND,
            Self::SubscriptionHeld => StatusCode::CONFLICT,
            Self::IdentityUnproven(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. } => code,
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::UnknownSubscription => "unknown_subscription",
            Self::NotFound => "not_found",
            Self::SubscriptionHeld => "subscription_exists",
            Self::IdentityUnproven(_) => "identity_unproven",
            Self::RateLimited { .. } => "rate_limited",
            Self::BodyTooLarge => "body_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Database(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Database(err) = &self {
            tracing::error!(error = %err, "database error");
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}
