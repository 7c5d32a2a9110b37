//! [`E2eeError`]: every failure of the binding API, one case per thing an app handles
//! differently. Kotlin gets a sealed `E2eeException` with one subclass per case, Swift an
//! `E2eeError` enum, Python an `E2eeError` exception class with one subclass per case; a
//! Rust panic surfaces as uniffi's internal error instead (never an abort).
//!
//! Device calls raise the store and device cases only; the client cases come from the
//! network, the servers and the client's own state.

use e2ee_client::{ClientError, Error, store::StoreError};

/// A call failed; local state is as it was before the call unless the case says otherwise.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum E2eeError {
    // The store.
    /// The store key does not open this store.
    #[error("the key does not open this store")]
    WrongKey,
    /// The store key is not 32 bytes.
    #[error("a store key is 32 bytes, not {len}")]
    InvalidStoreKey {
        /// The length given.
        len: u32,
    },
    /// No store at this path (open creates nothing: register or link first).
    #[error("no store at {path}")]
    StoreMissing {
        /// The path.
        path: String,
    },
    /// A store (or another file) is there already: open it instead.
    #[error("a file exists at {path}")]
    StoreExists {
        /// The path.
        path: String,
    },
    /// The file is not a store of this SDK; it is never recreated.
    #[error("not an e2ee client store")]
    NotAStore,
    /// A store format this version does not read.
    #[error("store format {version} is not supported")]
    UnsupportedStoreFormat {
        /// The format version found.
        version: u8,
    },
    /// A value or the store's metadata does not authenticate: the file is damaged.
    #[error("store corrupt: {detail}")]
    StoreCorrupt {
        /// What is damaged.
        detail: String,
    },
    /// The disk or SQLite failed (full disk, I/O error, locking).
    #[error("storage failed: {detail}")]
    StorageFailed {
        /// SQLite's or the system's words.
        detail: String,
    },

    // The device.
    /// Bytes handed in (a bundle, a device list, a ciphertext) do not decode.
    #[error("{what} does not decode")]
    InvalidInput {
        /// What was handed in.
        what: String,
    },
    /// A user id breaks the rule (1..=128 bytes of UTF-8, no NUL).
    #[error("invalid user id")]
    InvalidUserId,
    /// A signature does not verify (a forged list, bundle or certificate).
    #[error("invalid signature on {what}")]
    InvalidSignature {
        /// What was signed.
        what: String,
    },
    /// `user`'s account key is not the one trusted for them (a reinstall, or an attack):
    /// show the new safety number, then `acceptAccountChange` once the user verified it.
    #[error("the account key of {user} changed")]
    UntrustedIdentity {
        /// Whose key changed.
        user: String,
    },
    /// Nothing is known about this user yet (a device learns them first).
    #[error("{user} is not known to this device yet")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// A device list not newer than the one held: a rollback or replay by the server.
    #[error("device list version {got} is not newer than {have}")]
    StaleDeviceList {
        /// The version held.
        have: u64,
        /// The version offered.
        got: u64,
    },
    /// A device its user's verified list does not name (or names with another identity).
    #[error("{device} is not in its user's verified device list")]
    NotListed {
        /// The device, as `user.device`.
        device: String,
    },
    /// Received before (a replay or a redelivery): drop it.
    #[error("message already received")]
    Duplicate,
    /// No session with this device, and the message cannot start one.
    #[error("no session with {device}")]
    NoSession {
        /// The device, as `user.device`.
        device: String,
    },
    /// These devices need a bundle first (fetch, `addBundle`, send again); nothing was
    /// committed.
    #[error("{} devices need a bundle first", devices.len())]
    NeedsBundles {
        /// The devices, as `user.device`.
        devices: Vec<String>,
    },
    /// The encrypted message is over the relay's limit per envelope; nothing was committed.
    #[error("message over the limit of {max} bytes per envelope")]
    MessageTooLarge {
        /// The limit, in ciphertext bytes.
        max: u64,
    },
    /// The message would reach no device.
    #[error("no device to send to")]
    NoRecipients,
    /// The message does not decrypt (tampered, or for another session).
    #[error("message does not decrypt")]
    Undecryptable,
    /// The protocol refused (a limit, a replayed first message); nothing changed.
    #[error("refused by the protocol: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// No group with this id here.
    #[error("no such group")]
    UnknownGroup,
    /// The group's signed state does not allow it (not a member, not an admin, only admins
    /// send).
    #[error("not permitted in this group: {what}")]
    NotPermitted {
        /// What was refused.
        what: String,
    },
    /// A group change did not apply to the state it names; nothing changed.
    #[error("group change refused: {reason}")]
    GroupChangeRefused {
        /// Why.
        reason: String,
    },

    // The client.
    /// A URL or certificate in the configuration is unusable.
    #[error("invalid configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// The server could not be reached or the connection broke: retry later.
    #[error("network: {detail}")]
    Network {
        /// What failed.
        detail: String,
    },
    /// The TLS handshake failed (an untrusted certificate, for one).
    #[error("TLS: {detail}")]
    Tls {
        /// What failed.
        detail: String,
    },
    /// The key server answered with an error; `code` is its stable error code
    /// (docs/keyserver.md, Errors).
    #[error("key server answered {status} {code}: {detail}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// Its explanation.
        detail: String,
    },
    /// A server sent what the protocol does not allow.
    #[error("protocol: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// This store has no key server credential: register first.
    #[error("this device is not registered")]
    NotRegistered,
    /// This store belongs to a registered device already: open it.
    #[error("this device is registered already")]
    AlreadyRegistered,
    /// The other device did not answer the link in time.
    #[error("linking timed out")]
    LinkTimedOut,
    /// Another process on this store holds the writer lease (the app, for a notification
    /// extension): it receives itself.
    #[error("another process holds this store's writer lease")]
    LeaseHeld,
    /// The client was shut down (or the link request completed): make a new one.
    #[error("this client was shut down")]
    Closed,
    /// A failure this version of the bindings has no case for yet (the SDK is newer).
    #[error("{detail}")]
    Other {
        /// The SDK's words.
        detail: String,
    },
}

impl From<StoreError> for E2eeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongKey => E2eeError::WrongKey,
            StoreError::Missing(path) => E2eeError::StoreMissing {
                path: path.display().to_string(),
            },
            StoreError::AlreadyExists(path) => E2eeError::StoreExists {
                path: path.display().to_string(),
            },
            StoreError::NotAStore => E2eeError::NotAStore,
            StoreError::UnsupportedFormat(version) => E2eeError::UnsupportedStoreFormat { version },
            StoreError::Corrupt(detail) => E2eeError::StoreCorrupt {
                detail: detail.to_owned(),
            },
            other => E2eeError::StorageFailed {
                detail: other.to_string(),
            },
        }
    }
}

impl From<Error> for E2eeError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e.into(),
            Error::InvalidInput { what } => E2eeError::InvalidInput { what: what.into() },
            Error::InvalidUserId => E2eeError::InvalidUserId,
            Error::InvalidSignature { what } => E2eeError::InvalidSignature { what: what.into() },
            Error::AccountKeyChanged { user } => E2eeError::UntrustedIdentity { user },
            Error::UnknownUser { user } => E2eeError::UnknownUser { user },
            Error::StaleDeviceList { have, got } => E2eeError::StaleDeviceList { have, got },
            Error::NotListed { device } => E2eeError::NotListed { device },
            Error::Duplicate => E2eeError::Duplicate,
            Error::NoSession { device } => E2eeError::NoSession { device },
            Error::NeedsBundles { devices } => E2eeError::NeedsBundles {
                devices: devices.iter().map(ToString::to_string).collect(),
            },
            Error::MessageTooLarge { max } => E2eeError::MessageTooLarge { max: max as u64 },
            Error::NoRecipients => E2eeError::NoRecipients,
            Error::Undecryptable => E2eeError::Undecryptable,
            Error::Refused(reason) => E2eeError::Refused { reason },
            Error::UnknownGroup => E2eeError::UnknownGroup,
            Error::NotPermitted { what } => E2eeError::NotPermitted { what: what.into() },
            Error::GroupChangeRefused { reason } => E2eeError::GroupChangeRefused { reason },
            other => E2eeError::Other {
                detail: other.to_string(),
            },
        }
    }
}

impl From<ClientError> for E2eeError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Device(e) => e.into(),
            ClientError::InvalidConfig(detail) => E2eeError::InvalidConfig { detail },
            ClientError::Network(detail) => E2eeError::Network { detail },
            ClientError::Tls(detail) => E2eeError::Tls { detail },
            ClientError::Server {
                status,
                code,
                message,
            } => E2eeError::Server {
                status,
                code,
                detail: message,
            },
            ClientError::Protocol(detail) => E2eeError::Protocol { detail },
            ClientError::NotRegistered => E2eeError::NotRegistered,
            ClientError::AlreadyRegistered => E2eeError::AlreadyRegistered,
            ClientError::LinkTimedOut => E2eeError::LinkTimedOut,
            ClientError::LeaseHeld => E2eeError::LeaseHeld,
            other => E2eeError::Other {
                detail: other.to_string(),
            },
        }
    }
}
