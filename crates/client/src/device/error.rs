//! What a [`crate::Device`] operation can fail with: one enum, each case a thing the app
//! handles differently. No `e2ee-core` type appears in it.

use crate::store::StoreError;

/// A device operation failed; the device's state is as it was before the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The encrypted store failed (see [`StoreError`]: wrong key, damaged file, disk).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bytes handed in (a bundle, a device list, a ciphertext, an account key) do not decode.
    #[error("{what} does not decode")]
    InvalidInput {
        /// What was handed in.
        what: &'static str,
    },
    /// A user id or device address breaks the user-id rule (1..=128 bytes of UTF-8, no NUL).
    #[error("invalid user id")]
    InvalidUserId,
    /// A signature does not verify (a forged list, bundle or certificate).
    #[error("invalid signature on {what}")]
    InvalidSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The user's account key is not the one trusted for them: show the new safety number
    /// and, once the user verified it, accept the change.
    #[error("the account key of {user} changed")]
    AccountKeyChanged {
        /// Whose key changed.
        user: String,
    },
    /// Nothing is known about this user yet: learn their account key and device list first.
    #[error("{user} is not known to this device yet")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// A device list older than (or as old as, but different from) the one already verified:
    /// a rollback or a replay by the server.
    #[error("device list version {got} is not newer than {have}")]
    StaleDeviceList {
        /// The version held.
        have: u64,
        /// The version offered.
        got: u64,
    },
    /// The message or bundle comes from (or names) a device its user's verified list does
    /// not contain, or with another identity than the list names.
    #[error("{device} is not in its user's verified device list")]
    NotListed {
        /// The device, as `user.device`.
        device: String,
    },
    /// The message was decrypted before (a replay or a redelivery): drop it.
    #[error("message already received")]
    Duplicate,
    /// No session with this device, and the message cannot start one.
    #[error("no session with {device}")]
    NoSession {
        /// The device, as `user.device`.
        device: String,
    },
    /// Some devices the message must reach have no usable session: fetch their bundles, pass
    /// them to `Device::add_bundle`, and send again. Nothing was committed.
    #[error("{} devices need a bundle first", devices.len())]
    NeedsBundles {
        /// The devices.
        devices: Vec<e2ee_core::DeviceAddress>,
    },
    /// The encrypted message is larger than the relay carries; nothing was committed.
    #[error("message over the relay's limit of {max} bytes per envelope")]
    MessageTooLarge {
        /// The limit, in ciphertext bytes.
        max: usize,
    },
    /// The message would reach no device (the recipients list no devices, and we have no
    /// other device).
    #[error("no device to send to")]
    NoRecipients,
    /// The message does not decrypt (tampered, or for another session).
    #[error("message does not decrypt")]
    Undecryptable,
    /// The protocol refused the operation for a reason listed in the message (a limit, a
    /// replayed first message); the state is unchanged.
    #[error("refused by the protocol: {0}")]
    Refused(String),
    /// We hold no group with this id (never added to it, or the id is wrong).
    #[error("no such group")]
    UnknownGroup,
    /// The group's signed state does not allow it: we (or the sender) are not a member, or
    /// the operation needs an admin, or only admins may send.
    #[error("not permitted in this group: {what}")]
    NotPermitted {
        /// What was refused.
        what: &'static str,
    },
    /// A group change did not apply to the state it names (signed by someone without the
    /// role, built on a state nobody holds, a replayed version...): nothing changed.
    #[error("group change refused: {reason}")]
    GroupChangeRefused {
        /// Why, in words.
        reason: String,
    },
}

impl From<e2ee_core::StoreError> for Error {
    fn from(e: e2ee_core::StoreError) -> Self {
        Error::Store(StoreError::Backend(e.0))
    }
}

impl From<e2ee_core::group::membership::MembershipError> for Error {
    fn from(e: e2ee_core::group::membership::MembershipError) -> Self {
        Error::GroupChangeRefused {
            reason: e.to_string(),
        }
    }
}

impl From<e2ee_core::group::GroupError> for Error {
    fn from(e: e2ee_core::group::GroupError) -> Self {
        use e2ee_core::group::GroupError as G;
        match e {
            G::NotAMember(_) => Error::NotPermitted {
                what: "the sender is not a member device",
            },
            G::Duplicate { .. } => Error::Duplicate,
            G::AuthenticationFailed | G::Key(_) | G::UnknownSenderKey { .. } => {
                Error::Undecryptable
            }
            G::Decode(_) => Error::InvalidInput {
                what: "group message",
            },
            other => Error::Refused(other.to_string()),
        }
    }
}

impl From<e2ee_core::device::DeviceError> for Error {
    fn from(e: e2ee_core::device::DeviceError) -> Self {
        use e2ee_core::{DecryptError, EncryptError, Error as Core, device::DeviceError as D};
        match e {
            D::Decode(_) => Error::InvalidInput { what: "message" },
            D::Key(_) => Error::InvalidSignature {
                what: "device data",
            },
            D::AccountIdentityChanged { user_id } => Error::AccountKeyChanged {
                user: user_id.to_string(),
            },
            D::UntrustedAccount { user_id } | D::NoDeviceList { user_id } => Error::UnknownUser {
                user: user_id.to_string(),
            },
            D::StaleDeviceList { have, got } => Error::StaleDeviceList { have, got },
            D::DeviceNotInList(device) => Error::NotListed {
                device: device.to_string(),
            },
            D::Session(Core::Decrypt(DecryptError::Duplicate { .. })) => Error::Duplicate,
            D::Session(Core::Decrypt(_)) => Error::Undecryptable,
            D::Session(Core::Encrypt(EncryptError::PlaintextTooLarge { .. })) => {
                Error::MessageTooLarge {
                    max: super::MAX_OUTBOX_CIPHERTEXT,
                }
            }
            D::Session(Core::NoSession { address }) => Error::NoSession {
                device: address.to_string(),
            },
            D::Session(Core::Decode(_)) => Error::InvalidInput { what: "message" },
            D::Session(Core::Store(e)) => e.into(),
            other => Error::Refused(other.to_string()),
        }
    }
}
