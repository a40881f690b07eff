//! Request extractors that turn every bad input into an [`AppError`] with a
//! JSON body: malformed JSON, wrong shapes, missing admin token.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

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
        JsonRejection::JsonDataError(err) => AppError::invalid("invalid_request", err.body_text()),
        JsonRejection::JsonSyntaxError(err) => AppError::invalid("invalid_json", err.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            AppError::invalid("invalid_content_type", "expected Content-Type: application/json")
        }
        JsonRejection::BytesRejection(_) => AppError::BodyTooLarge,
        other => AppError::invalid("invalid_request", other.body_text()),
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

/// The client's IP address when the server knows it (it serves with
/// connect info; `oneshot` tests have none).
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, AppError> {
        let info = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(info.map(|info| info.0.ip())))
    }
}
