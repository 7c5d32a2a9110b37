//! The HTTP API: router, layers, shared state and the extractors that turn every bad input
//! into a JSON 4xx (see [`crate::error`]). One file per resource.

mod accounts;
mod keys;
mod provisioning;
mod tickets;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use e2ee_encoding::{DeviceAddress, UserId};
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;
use tower_http::{
    catch_panic::CatchPanicLayer, sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::TimeoutLayer, trace::TraceLayer,
};

use crate::{
    auth,
    error::{ApiError, ErrorCode},
    jwt::JwtVerifier,
    ratelimit::RateLimiter,
    storage::Store,
};

/// Shared, immutable server state (the store and limiter do their own locking).
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<Inner>);

impl AppState {
    pub(crate) fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

/// Handlers read the state's fields directly (`state.store`).
impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) ticket_key: SigningKey,
    pub(crate) ticket_lifetime_secs: u64,
    pub(crate) limiter: RateLimiter,
    pub(crate) one_time_limiter: RateLimiter,
    pub(crate) jwt: Option<JwtVerifier>,
    pub(crate) max_stored_prekeys: i64,
    /// Told about every removed device (the all-in-one server disconnects it from its relay).
    pub(crate) device_removed: std::sync::OnceLock<DeviceRemovedHook>,
    /// The relay cluster's Redis, told about every removal (`--keyserver-redis-url`).
    pub(crate) removal_feed: Option<crate::removal_feed::RemovalFeed>,
}

/// Called with the removal.
type DeviceRemovedFn = dyn Fn(&crate::DeviceRemoval) + Send + Sync;

/// A callback run after a device was removed.
pub(crate) struct DeviceRemovedHook(pub(crate) Box<DeviceRemovedFn>);

impl std::fmt::Debug for DeviceRemovedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceRemovedHook")
    }
}

/// Builds the router with its layers.
pub(crate) fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .merge(accounts::router())
        .merge(keys::router())
        .merge(tickets::router())
        .merge(provisioning::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(timeout_as_json))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}

/// How long one request may take, from its headers to its response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeout layer answers an empty 408; clients get the same JSON error shape as for
/// every other refusal. No handler answers 408 itself.
async fn timeout_as_json(response: Response) -> Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        return ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took longer than the server's request timeout",
        )
        .into_response();
    }
    response
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this endpoint",
    )
}

/// A user id from a request, under the one user-id rule of `e2ee-encoding` (1..=128 bytes of
/// UTF-8 without NUL, which PostgreSQL text cannot hold), or `invalid_user_id` saying which
/// part of the rule it breaks.
pub(crate) fn parse_user_id(user_id: impl Into<String>) -> Result<UserId, ApiError> {
    UserId::new(user_id).map_err(|e| ApiError::new(ErrorCode::InvalidUserId, e.to_string()))
}

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(ErrorCode::BodyTooLarge, "request body over the size limit")
                }
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "expected Content-Type: application/json",
                ),
                _ => ApiError::new(ErrorCode::InvalidJson, rejection.body_text()),
            }),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))
    }
}

/// The device a request is authenticated as (its credential checked).
#[derive(Debug, Clone)]
pub(crate) struct AuthDevice(pub(crate) DeviceAddress);

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization: Bearer <device credential>")
        })?;
        let presented =
            auth::parse(token).ok_or_else(|| ApiError::unauthorized("invalid credential"))?;
        let stored = state.store.credential(&presented.device).await?;
        match stored {
            Some((salt, hash)) if presented.matches(&salt, &hash) => Ok(Self(presented.device)),
            _ => Err(ApiError::unauthorized("invalid credential")),
        }
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Decodes standard base64 (with padding) or answers `invalid_base64` naming the field.
pub(crate) fn b64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD
        .decode(text)
        .map_err(|_| ApiError::new(ErrorCode::InvalidBase64, format!("{field}: not base64")))
}

/// Standard base64 with padding.
pub(crate) fn enc(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
