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
    /// Opening the SQLite connection of the bundle fetch path failed.
    #[error("database (fetch path): {0}")]
    SqliteFetchPath(String),
    /// The load benchmark's database floor run (`measure_fetch_floor`) failed.
    #[error("fetch floor: {0}")]
    Floor(String),
    /// Running the migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The relay cluster's Redis (`--keyserver-redis-url`) could not be reached.
    #[error("redis: {0}")]
    Redis(String),
}

/// Declares [`ErrorCode`] from one table, so every code has exactly one status and
/// [`ErrorCode::ALL`] cannot miss one.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident => $status:ident,)*) => {
        /// The stable, machine-readable code of an API error. It decides the HTTP status, and
        /// it serialises to the snake_case code clients see (`openapi.json` lists every one;
        /// a test keeps the two equal).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table (and of `openapi.json`).
            #[cfg(test)]
            pub(crate) const ALL: &[ErrorCode] = &[$(Self::$code,)*];

            /// The HTTP status this code is answered with.
            pub(crate) fn status(self) -> StatusCode {
                match self {
                    $(Self::$code => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not the JSON the endpoint expects.
    InvalidJson => BAD_REQUEST,
    /// The body is not `application/json`.
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE,
    /// The body is over the size limit.
    BodyTooLarge => PAYLOAD_TOO_LARGE,
    /// A binary field is not standard base64.
    InvalidBase64 => BAD_REQUEST,
    /// A key, certificate or list does not decode.
    InvalidKey => BAD_REQUEST,
    /// A signature does not verify.
    InvalidSignature => BAD_REQUEST,
    /// A user id breaks the user-id rule.
    InvalidUserId => BAD_REQUEST,
    /// A path parameter is malformed.
    InvalidPath => BAD_REQUEST,
    /// A device certificate names another user.
    CertificateMismatch => BAD_REQUEST,
    /// An upload carries too many keys.
    BatchTooLarge => BAD_REQUEST,
    /// An upload carries one key id twice.
    DuplicateKeyId => BAD_REQUEST,
    /// A device list is unusable (its version, for one).
    InvalidDeviceList => BAD_REQUEST,
    /// An account consent does not decode.
    InvalidConsent => BAD_REQUEST,
    /// No valid credential or app token.
    Unauthorized => UNAUTHORIZED,
    /// Authenticated, but not allowed to do this.
    Forbidden => FORBIDDEN,
    /// Only the account key's consent allows this (removing the device that holds it).
    ConsentRequired => FORBIDDEN,
    /// The account consent is too old, dated in the future, or older than the device's
    /// removal or enrolment.
    StaleConsent => FORBIDDEN,
    /// No such user.
    UnknownUser => NOT_FOUND,
    /// No such device (or no signed prekey yet).
    UnknownDevice => NOT_FOUND,
    /// The user has not published a device list.
    NoDeviceList => NOT_FOUND,
    /// No such endpoint.
    NotFound => NOT_FOUND,
    /// The endpoint does not take this method.
    MethodNotAllowed => METHOD_NOT_ALLOWED,
    /// The user id is registered already.
    UserExists => CONFLICT,
    /// The device id is registered already.
    DeviceExists => CONFLICT,
    /// The device identity key is registered already.
    IdentityKeyInUse => CONFLICT,
    /// The device list's version is not newer than the stored one.
    StaleDeviceList => CONFLICT,
    /// The device stores as many one-time prekeys as allowed.
    TooManyPrekeys => CONFLICT,
    /// Too many bundle fetches; see `Retry-After`.
    RateLimited => TOO_MANY_REQUESTS,
    /// The request took longer than the server's request timeout.
    RequestTimeout => REQUEST_TIMEOUT,
    /// The server or its database failed (details are logged only).
    Internal => INTERNAL_SERVER_ERROR,
    /// A row with this key exists already.
    Conflict => CONFLICT,
    /// This provisioning slot holds a message already (each is written once).
    SlotTaken => CONFLICT,
    /// The provisioning channel holds as many messages as it may; retry later.
    ProvisioningFull => SERVICE_UNAVAILABLE,
}

/// An error answered to a client.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                ErrorCode::RateLimited,
                "too many bundle requests for this user; retry later",
            )
        }
    }

    pub(crate) fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal server error")
    }

    /// A key or certificate that does not decode: `what` names the field.
    pub(crate) fn bad_key(what: &str, e: DecodeError) -> Self {
        Self::new(ErrorCode::InvalidKey, format!("{what}: {e}"))
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
                Self::new(ErrorCode::InvalidSignature, format!("{what}: {e}"))
            }
            _ => Self::new(ErrorCode::InvalidKey, format!("{what}: {e}")),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::new(ErrorCode::Conflict, "already exists"),
            e @ StoreError::PrekeyLimit { .. } => {
                Self::new(ErrorCode::TooManyPrekeys, e.to_string())
            }
            StoreError::IdentityInUse => Self::new(
                ErrorCode::IdentityKeyInUse,
                "this device identity key is already registered",
            ),
            e @ StoreError::RemovedAfterConsent => {
                Self::new(ErrorCode::StaleConsent, e.to_string())
            }
            StoreError::Full => Self::new(
                ErrorCode::ProvisioningFull,
                "too many devices are being linked right now; retry in a few minutes",
            ),
            e @ (StoreError::Db(_) | StoreError::Sqlite(_) | StoreError::HotPath(_)) => {
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
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the accept loop (`e2ee-http-serve`) answers before the router, with its status:
    /// clients see these codes too, so the document lists them after the key server's own.
    const ACCEPT_LOOP_CODES: &[(&str, &str)] = &[
        (e2ee_http_serve::codes::URI_TOO_LONG, "414"),
        (e2ee_http_serve::codes::HEADERS_TOO_LARGE, "431"),
        (e2ee_http_serve::codes::TOO_MANY_CONNECTIONS, "503"),
        (
            e2ee_http_serve::codes::TOO_MANY_CONNECTIONS_FROM_PEER,
            "429",
        ),
    ];

    fn text(code: ErrorCode) -> String {
        serde_json::to_value(code)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_codes_the_server_produces() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::DOCUMENT).unwrap();
        let documented: Vec<String> =
            doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
        let mut produced: Vec<String> = ErrorCode::ALL.iter().copied().map(text).collect();
        produced.extend(ACCEPT_LOOP_CODES.iter().map(|(code, _)| (*code).to_owned()));
        assert_eq!(documented, produced);
    }

    /// Every `x-error-codes` list in the document sits under the status its codes are
    /// answered with, and every code the server produces is listed by some operation (or is a
    /// router fallback), so a client reading the document knows every refusal it can meet.
    #[test]
    fn every_documented_status_lists_codes_answered_with_that_status() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::DOCUMENT).unwrap();
        let mut by_text: std::collections::HashMap<String, String> = ErrorCode::ALL
            .iter()
            .map(|c| (text(*c), c.status().as_str().to_owned()))
            .collect();
        for (code, status) in ACCEPT_LOOP_CODES {
            by_text.insert((*code).to_owned(), (*status).to_owned());
        }
        let mut listed = std::collections::HashSet::new();
        let mut check = |status: &str, codes: &serde_json::Value, at: &str| {
            for code in codes.as_array().unwrap() {
                let code = code.as_str().unwrap();
                let known = by_text
                    .get(code)
                    .unwrap_or_else(|| panic!("{at}: unknown code {code}"));
                assert_eq!(known, status, "{at}: {code}");
                listed.insert(code.to_owned());
            }
        };
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("500"), "{method} {path}: no 500");
                for (status, response) in responses {
                    let codes = &response["x-error-codes"];
                    if status.starts_with('2') {
                        assert!(codes.is_null(), "{method} {path} {status}");
                        continue;
                    }
                    check(status, codes, &format!("{method} {path} {status}"));
                }
            }
        }
        for table in ["x-fallback-error-codes", "x-accept-loop-error-codes"] {
            for (status, codes) in doc[table].as_object().unwrap() {
                check(status, codes, table);
            }
        }
        let produced: std::collections::HashSet<String> = by_text.into_keys().collect();
        assert_eq!(listed, produced);
    }

    #[test]
    fn codes_are_snake_case_with_their_status() {
        assert_eq!(text(ErrorCode::IdentityKeyInUse), "identity_key_in_use");
        assert_eq!(ErrorCode::IdentityKeyInUse.status(), StatusCode::CONFLICT);
        assert_eq!(
            ErrorCode::RateLimited.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            ErrorCode::Internal.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let response = ApiError::new(ErrorCode::Forbidden, "no").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
