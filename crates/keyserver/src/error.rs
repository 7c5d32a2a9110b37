//! Errors: start-up failures ([`KeyserverError`]) and API errors ([`ApiError`]), which become
//! responses here and nowhere else.
//!
//! Every API error is `{"code": "...", "message": "..."}` with a stable, machine-readable
//! code. Bad input is always a 4xx; a 500 means the server or its database failed, and its
//! details are logged, never returned.

use std::borrow::Cow;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use e2ee_core::{DecodeError, IdentityDecodeError, KeyError};
use serde::Serialize;

use crate::storage::StoreError;

/// Why the key server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyserverError {
    /// A configuration value is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Reading or writing the data directory failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting to the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Running the migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An error answered to a client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many bundle requests for this user; retry later",
            )
        }
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// A key or certificate that does not decode: `what` names the field.
    pub(crate) fn bad_key(what: &str, e: DecodeError) -> Self {
        Self::bad_request("invalid_key", format!("{what}: {e}"))
    }

    /// A decode failure that may be a bad encoding or a bad embedded signature.
    pub(crate) fn bad_identity(what: &str, e: IdentityDecodeError) -> Self {
        match e {
            IdentityDecodeError::Decode(d) => Self::bad_key(what, d),
            IdentityDecodeError::Key(k) => Self::bad_signature(what, k),
        }
    }

    pub(crate) fn bad_signature(what: &str, e: KeyError) -> Self {
        match e {
            KeyError::InvalidSignature(_) => {
                Self::bad_request("invalid_signature", format!("{what}: {e}"))
            }
            _ => Self::bad_request("invalid_key", format!("{what}: {e}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::conflict("conflict", "already exists"),
            StoreError::IdentityInUse => Self::conflict(
                "identity_key_in_use",
                "this device identity key is already registered",
            ),
            StoreError::Db(e) => {
                tracing::error!(error = %e, "database error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
