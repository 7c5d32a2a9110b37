//! Errors of the group and multi-device layer.

use crate::{
    DeviceAddress,
    error::{DecodeError, Error, KeyError},
};

/// A group operation failed. Every decrypting or verifying operation that
/// returns an error leaves all state exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Malformed input bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature (group message, device list, certificate) does not verify.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature verified but the AEAD did not: deliberately opaque.
    #[error("group message authentication failed")]
    AuthenticationFailed,
    /// We hold no sender key with this id from this sender (never distributed to us, or
    /// dropped under [`crate::group::MAX_SENDER_KEY_STATES`], or the sender was removed).
    #[error("no sender key {key_id:#010x} from {sender}")]
    UnknownSenderKey {
        /// The sender device.
        sender: DeviceAddress,
        /// The key id in the message.
        key_id: u32,
    },
    /// The message was already decrypted, or its key was evicted under the skipped-key limit.
    #[error("duplicate or expired group message (iteration {iteration})")]
    Duplicate {
        /// The message's chain iteration.
        iteration: u32,
    },
    /// The message is further ahead than [`crate::limits::MAX_FORWARD_JUMP`].
    #[error("group message jumps {jump} ahead, over the limit")]
    TooFarAhead {
        /// How many message keys would have to be skipped.
        jump: u32,
    },
    /// The sending chain reached iteration `u32::MAX`: rotate the sender key.
    #[error("sender key chain exhausted")]
    ChainExhausted,
    /// A distribution reuses a key id we hold with a different signing key or chain.
    #[error("conflicting sender key distribution for key id {key_id:#010x}")]
    ConflictingDistribution {
        /// The reused key id.
        key_id: u32,
    },
    /// The distribution or message names another group.
    #[error("sender key belongs to another group")]
    WrongGroup,
    /// The store holds no state for this group.
    #[error("no state for this group")]
    UnknownGroup,
    /// The device is not a member of the group.
    #[error("{0} is not a member of the group")]
    NotAMember(DeviceAddress),
    /// The group would exceed [`crate::group::MAX_GROUP_MEMBERS`].
    #[error("too many members in the group")]
    TooManyMembers,
    /// The distribution's signing key is already held for another sender of the group (a
    /// member passing another member's sender key off as its own).
    #[error("sender signing key already held for {holder}")]
    SigningKeyInUse {
        /// The member the key is held for.
        holder: DeviceAddress,
    },
    /// The multi-device layer failed.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The pairwise session layer failed.
    #[error(transparent)]
    Session(#[from] Error),
    /// A caller mistake: an argument outside its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl From<crate::error::StoreError> for GroupError {
    fn from(e: crate::error::StoreError) -> Self {
        GroupError::Session(Error::Store(e))
    }
}
