//! Errors of the multi-device layer.

use crate::{
    DeviceAddress, UserId,
    error::{DecodeError, Error, KeyError, StoreError},
    identity::IdentityDecodeError,
};

/// A multi-device operation failed. Every operation that returns an error leaves the
/// directory and the store as they were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Malformed input bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature (certificate, device list, device binding) does not verify.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The account identity of this user differs from the one trusted for them. Call
    /// `DeviceDirectory::accept_account_change` after the user verified the safety number.
    #[error("account identity of {user_id} changed")]
    AccountIdentityChanged {
        /// Whose account identity changed.
        user_id: UserId,
    },
    /// No account identity is trusted for this user yet.
    #[error("no trusted account identity for {user_id}")]
    UntrustedAccount {
        /// The user.
        user_id: UserId,
    },
    /// We hold no verified device list for this user yet: fetch one.
    #[error("no verified device list for {user_id}")]
    NoDeviceList {
        /// The user.
        user_id: UserId,
    },
    /// A device list is not newer than the one already verified (a rollback or a replay).
    #[error("device list version {got} is not newer than {have}")]
    StaleDeviceList {
        /// The version we hold.
        have: u64,
        /// The version offered.
        got: u64,
    },
    /// The device (or the identity it presents) is not in the newest verified device list
    /// of its user under the trusted account.
    #[error("{0} is not in its user's verified device list")]
    DeviceNotInList(DeviceAddress),
    /// A device list would name more than `MAX_DEVICES_PER_LIST` devices.
    #[error("too many devices in one list")]
    TooManyDevices,
    /// A device list would name this device id twice.
    #[error("device id {0} appears twice in the list")]
    DuplicateDevice(u32),
    /// The directory already trusts `MAX_DIRECTORY_USERS` accounts.
    #[error("the device directory is full")]
    DirectoryFull,
    /// The pairwise session layer failed.
    #[error(transparent)]
    Session(#[from] Error),
}

impl From<IdentityDecodeError> for DeviceError {
    fn from(e: IdentityDecodeError) -> Self {
        match e {
            IdentityDecodeError::Decode(d) => DeviceError::Decode(d),
            IdentityDecodeError::Key(k) => DeviceError::Key(k),
        }
    }
}

impl From<StoreError> for DeviceError {
    fn from(e: StoreError) -> Self {
        DeviceError::Session(Error::Store(e))
    }
}
