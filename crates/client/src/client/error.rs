//! What a [`crate::Client`] operation can fail with.

use crate::{Error, store::StoreError};

/// A client operation failed. Local state is as it was before the call, except what the
/// variant says.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The device refused (see [`Error`]: the store, a changed account key, a limit).
    #[error(transparent)]
    Device(#[from] Error),
    /// A URL or certificate in the configuration is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The server could not be reached, or the connection broke (retry later).
    #[error("network: {0}")]
    Network(String),
    /// The TLS handshake failed (an untrusted certificate, for one).
    #[error("TLS: {0}")]
    Tls(String),
    /// The key server answered with an error (`code` is its stable error code).
    #[error("key server answered {status} {code}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The error code (docs/keyserver.md, Errors).
        code: String,
        /// Its explanation.
        message: String,
    },
    /// A server sent something that is not what the protocol says.
    #[error("protocol: {0}")]
    Protocol(String),
    /// This store has no key server credential: register first.
    #[error("this device is not registered")]
    NotRegistered,
    /// The other device did not answer on the provisioning channel in time.
    #[error("linking timed out")]
    LinkTimedOut,
    /// Another process on this store (the app, for a notification extension) holds the
    /// writer lease: it is connected to the relay and receives itself.
    #[error("another process holds this store's writer lease")]
    LeaseHeld,
    /// The store belongs to a registered device already (open it instead).
    #[error("this device is registered already")]
    AlreadyRegistered,
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        ClientError::Device(Error::Store(e))
    }
}
