//! Error types, one enum per fault domain.
//!
//! * [`DecodeError`]: the bytes are not a well-formed encoding.
//! * [`KeyError`]: a key or signature is unusable (bad signature, low-order point).
//! * [`HandshakeError`]: setting up a session failed.
//! * [`EncryptError`]: a message could not be encrypted; the session is unchanged.
//! * [`DecryptError`]: a message could not be decrypted; the session is unchanged.
//! * [`StoreError`]: the caller's store failed.
//! * [`Error`]: what the session API returns; wraps the above and adds trust failures.

use e2ee_encoding::AddressError;
pub(crate) use e2ee_encoding::DecodeError;

use crate::DeviceAddress;

/// A key or signature failed a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A signature does not verify (Ed25519 `verify_strict`).
    #[error("invalid signature on {0}")]
    InvalidSignature(&'static str),
    /// A Diffie-Hellman output was all zeros: the peer sent a low-order point.
    #[error("non-contributory Diffie-Hellman (low-order point)")]
    NonContributory,
    /// A public key does not decode.
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
}

/// Setting up a session (PQXDH) failed. Nothing was consumed or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A key or signature in the bundle or first message is bad.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The bundle carries no KEM prekey and the caller did not opt into plain X3DH.
    #[error("bundle has no KEM prekey and plain X3DH was not allowed")]
    MissingKemPreKey,
    /// The first message names a signed prekey we do not hold.
    #[error("unknown signed prekey {0}")]
    UnknownSignedPreKey(u32),
    /// The first message names a one-time prekey we do not hold (never had, or already used:
    /// a replayed first message ends here).
    #[error("unknown or already used one-time prekey {0}")]
    UnknownOneTimePreKey(u32),
    /// The first message names a KEM prekey we do not hold (or a used one-time one).
    #[error("unknown or already used KEM prekey {0}")]
    UnknownKemPreKey(u32),
    /// This (last-resort KEM prekey, base key) pair was already accepted once.
    #[error("last-resort KEM prekey {0} already used with this base key")]
    LastResortReplay(u32),
    /// The first message has no KEM ciphertext and plain X3DH is not allowed.
    #[error("first message without KEM ciphertext and plain X3DH was not allowed")]
    PlainX3dhRefused,
    /// The device's own signed binding (in a bundle or first message) names another address
    /// than the one the session is for: someone else's device key presented as this one.
    #[error("the device binds itself to {bound}, not to this address")]
    AddressMismatch {
        /// The address the device's binding names.
        bound: DeviceAddress,
    },
    /// The first message was made for another device than ours.
    #[error("first message was meant for {intended}")]
    WrongRecipient {
        /// The device the initiator meant to reach.
        intended: DeviceAddress,
    },
}

/// A message could not be decrypted. The session state is exactly as before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The message is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Authentication failed: tampered, wrong session, or keys not held. Deliberately opaque.
    #[error("message authentication failed")]
    AuthenticationFailed,
    /// The message was already decrypted, or its key was discarded under the skipped-key limit.
    #[error("duplicate or expired message (counter {counter})")]
    Duplicate {
        /// The message counter.
        counter: u32,
    },
    /// The message is further ahead than [`crate::limits::MAX_FORWARD_JUMP`].
    #[error("message counter jumps {jump} ahead, over the limit")]
    TooFarAhead {
        /// How many messages would have to be skipped.
        jump: u32,
    },
    /// The peer's ratchet key is unusable (a low-order point).
    #[error(transparent)]
    Key(KeyError),
}

/// A message could not be encrypted. The session state is exactly as before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The plaintext is longer than [`crate::limits::MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {len} bytes is over the limit")]
    PlaintextTooLarge {
        /// The plaintext's length.
        len: usize,
    },
    /// The record holds no current session state to encrypt with.
    #[error("no current session state")]
    NoCurrentState,
    /// The state has no sending chain and no peer ratchet key to derive one from.
    #[error("session cannot send: it has no sending chain")]
    NoSendingChain,
    /// The sending DH step failed: the peer's ratchet key is of low order.
    #[error(transparent)]
    Key(KeyError),
}

/// A store operation failed. The caller's storage layer provides the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(pub String);

/// Errors of the session API ([`crate::SessionCipher`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed input bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Session set-up failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// Encryption failed; the session is unchanged.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// Decryption failed; the session is unchanged.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The caller's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer's identity key differs from the one trusted for this address. Call
    /// [`crate::IdentityStore::trust_identity`] after the user verified the safety number.
    #[error("identity key of {address} changed")]
    IdentityChanged {
        /// Whose identity changed.
        address: DeviceAddress,
    },
    /// There is no session with this address: fetch a bundle first.
    #[error("no session with {address}")]
    NoSession {
        /// The peer.
        address: DeviceAddress,
    },
    /// A caller mistake: an argument outside its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A user id or address breaks the rule of [`crate::UserId`].
    #[error(transparent)]
    Address(#[from] AddressError),
}

impl From<crate::identity::IdentityDecodeError> for Error {
    fn from(e: crate::identity::IdentityDecodeError) -> Self {
        match e {
            crate::identity::IdentityDecodeError::Decode(d) => Error::Decode(d),
            crate::identity::IdentityDecodeError::Key(k) => Error::from(k),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Handshake(HandshakeError::Key(e))
    }
}
