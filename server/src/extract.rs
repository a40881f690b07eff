//! Request extractors that turn every bad input into an [`AppError`] with a
//! JSON body: malformed JSON, wrong shapes, missing admin token.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::ErrorCode;
use crate::{AppError, AppState};

/// `axum::Json`, but rejections become `400 { error: { code, message } }`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(err) => AppError::invalid(ErrorCode::InvalidRequest, err.body_text()),
        JsonRejection::JsonSyntaxError(err) => AppError::invalid(ErrorCode::InvalidJson, err.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            AppError::invalid(ErrorCode::InvalidContentType, "expected Content-Type: application/json")
        }
        JsonRejection::BytesRejection(err) => bytes_error(err),
        other => AppError::invalid(ErrorCode::InvalidRequest, other.body_text()),
    }
}

/// The raw body, for routes that parse it themselves; rejections become JSON
/// errors (axum's own are plain text).
pub struct ApiBytes(pub Bytes);

impl FromRequest<AppState> for ApiBytes {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        Bytes::from_request(req, state).await.map(Self).map_err(bytes_error)
    }
}

/// Over the body limit (`DefaultBodyLimit`) is a 413; a body that breaks off
/// while being read is a 400.
fn bytes_error(rejection: BytesRejection) -> AppError {
    match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => AppError::BodyTooLarge,
        other => AppError::invalid(ErrorCode::InvalidBody, other.body_text()),
    }
}

/// Proof that the request carries the admin token (`Authorization: Bearer …`),
/// compared in constant time.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if is_admin(&parts.headers, state) {
            Ok(Admin)
        } else {
            Err(AppError::Unauthorized)
        }
    }
}

/// Whether `headers` carry the admin token, for routes where it is optional.
pub fn is_admin(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(expected) = state.settings.admin_token.as_deref() else {
        return false;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    crate::secret::equal(given.trim().as_bytes(), expected.as_bytes())
}

/// The client's IP address when the server knows it: the peer, or behind a
/// trusted proxy the forwarded address (see [`crate::client::address`]);
/// `oneshot` tests have no peer.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(crate::client::address(
            peer,
            &parts.headers,
            &state.settings.trusted_proxies,
        )))
    }
}
