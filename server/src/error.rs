//! One error type for every route: a stable `code()` ([`ErrorCode`]), one
//! `status()` match, and a JSON body `{ "error": { "code", "message" } }`
//! that never leaks internals.

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
        /// Which rule the input broke.
        code: ErrorCode,
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
    pub fn invalid(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
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
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { code, .. } => *code,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::UnknownSubscription => ErrorCode::UnknownSubscription,
            Self::NotFound => ErrorCode::NotFound,
            Self::SubscriptionHeld => ErrorCode::SubscriptionExists,
            Self::IdentityUnproven(_) => ErrorCode::IdentityUnproven,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::BodyTooLarge => ErrorCode::BodyTooLarge,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::RequestTimeout => ErrorCode::RequestTimeout,
            Self::Database(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Database(err) = &self {
            tracing::error!(error = %err, "database error");
        }
        let body = json!({ "error": { "code": self.code().as_str(), "message": self.to_string() } });
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

/// Every `code` an error body can carry: clients match on these, so they
/// are spelt once, here (and listed in `openapi.yaml`'s `Error` schema,
/// which a test compares with [`ErrorCode::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON.
    InvalidJson,
    /// JSON of the wrong shape (a missing, unknown or mistyped field).
    InvalidRequest,
    /// A JSON route called without `Content-Type: application/json`.
    InvalidContentType,
    /// The body broke off while being read.
    InvalidBody,
    /// A bad query string (`GET /v1/stats`).
    InvalidQuery,
    /// A push endpoint that is not a public `https://` URL.
    InvalidEndpoint,
    /// A subscription's `p256dh` or `auth` key.
    InvalidKeys,
    /// A topic name, or too many topics.
    InvalidTopic,
    /// A user id.
    InvalidUser,
    /// A device's anonymous id.
    InvalidAnonId,
    /// The prompt or variant a subscription is credited to.
    InvalidAttribution,
    /// An empty or oversized event batch.
    InvalidBatch,
    /// A batch whose every event was rejected.
    InvalidEvent,
    /// `to` of a notification names no one or several kinds of recipients.
    InvalidTarget,
    /// A notification's time to live.
    InvalidTtl,
    /// A notification's urgency.
    InvalidUrgency,
    /// A notification's idempotency key.
    InvalidIdempotencyKey,
    /// A notification's content (an empty title).
    InvalidNotification,
    /// A notification's `deliver`: a bad time, window or combination.
    InvalidSchedule,
    /// A user trait: its name, its value, or too many after the merge.
    InvalidTrait,
    /// A time zone the bundled IANA database does not know.
    InvalidTimeZone,
    /// A journey definition (the message names every bad field).
    InvalidJourney,
    /// A preference change: an unknown or exempt category, a bad pause.
    InvalidPreferences,
    /// A push payload larger than every browser accepts.
    PayloadTooLarge,
    /// Missing or wrong admin token.
    Unauthorized,
    /// No subscription with this endpoint and auth secret.
    UnknownSubscription,
    /// The endpoint is registered under another auth secret.
    SubscriptionExists,
    /// A user id without a valid proof.
    IdentityUnproven,
    /// Too many requests from this client.
    RateLimited,
    /// A request body over the route's limit.
    BodyTooLarge,
    /// An unknown path or resource.
    NotFound,
    /// A method the path does not have.
    MethodNotAllowed,
    /// The client took too long.
    RequestTimeout,
    /// The database failed.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 34] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidContentType,
        ErrorCode::InvalidBody,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidEndpoint,
        ErrorCode::InvalidKeys,
        ErrorCode::InvalidTopic,
        ErrorCode::InvalidUser,
        ErrorCode::InvalidAnonId,
        ErrorCode::InvalidAttribution,
        ErrorCode::InvalidBatch,
        ErrorCode::InvalidEvent,
        ErrorCode::InvalidTarget,
        ErrorCode::InvalidTtl,
        ErrorCode::InvalidUrgency,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::InvalidNotification,
        ErrorCode::InvalidSchedule,
        ErrorCode::InvalidTrait,
        ErrorCode::InvalidTimeZone,
        ErrorCode::InvalidJourney,
        ErrorCode::InvalidPreferences,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::UnknownSubscription,
        ErrorCode::SubscriptionExists,
        ErrorCode::IdentityUnproven,
        ErrorCode::RateLimited,
        ErrorCode::BodyTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::Internal,
    ];

    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidContentType => "invalid_content_type",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidEndpoint => "invalid_endpoint",
            ErrorCode::InvalidKeys => "invalid_keys",
            ErrorCode::InvalidTopic => "invalid_topic",
            ErrorCode::InvalidUser => "invalid_user",
            ErrorCode::InvalidAnonId => "invalid_anon_id",
            ErrorCode::InvalidAttribution => "invalid_attribution",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidTtl => "invalid_ttl",
            ErrorCode::InvalidUrgency => "invalid_urgency",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::InvalidNotification => "invalid_notification",
            ErrorCode::InvalidSchedule => "invalid_schedule",
            ErrorCode::InvalidTrait => "invalid_trait",
            ErrorCode::InvalidTimeZone => "invalid_time_zone",
            ErrorCode::InvalidJourney => "invalid_journey",
            ErrorCode::InvalidPreferences => "invalid_preferences",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownSubscription => "unknown_subscription",
            ErrorCode::SubscriptionExists => "subscription_exists",
            ErrorCode::IdentityUnproven => "identity_unproven",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// The OpenAPI file's `Error.code` enum, as written on one line.
    fn documented_codes() -> Vec<String> {
        let spec = include_str!("../openapi.yaml");
        let line = spec
            .lines()
            .find(|l| l.trim_start().starts_with("code: { type: string, enum: ["))
            .expect("openapi.yaml: Error.code lists its codes as an enum");
        let list = line.split_once("enum: [").and_then(|(_, rest)| rest.split_once(']'));
        list.map(|(codes, _)| codes.split(',').map(|c| c.trim().to_owned()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn openapi_lists_every_error_code_and_no_other() {
        let mut documented = documented_codes();
        let mut codes: Vec<String> = ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        documented.sort();
        codes.sort();
        assert_eq!(documented, codes);
    }

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{text}");
        }
    }
}
