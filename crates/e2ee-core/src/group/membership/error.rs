//! Why a group change, state or welcome was refused. Every refusal leaves the history as it
//! was.

use crate::{
    UserId,
    error::{DecodeError, KeyError},
    identity::IdentityDecodeError,
};

/// A membership operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Malformed bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature (the change's, or its signer certificate's) does not verify.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The change names another group.
    #[error("change belongs to another group")]
    WrongGroup,
    /// The change does not follow the state it names (version `got` after `expected - 1`).
    #[error("change has version {got}, the state it builds on expects {expected}")]
    WrongVersion {
        /// The version the next change must have.
        expected: u64,
        /// The version in the change.
        got: u64,
    },
    /// The change's hash of the previous state matches no state we hold at that version.
    #[error("change builds on a state we do not hold")]
    WrongPreviousHash,
    /// The signer's user is not a member of the state the change builds on.
    #[error("{0} is not a member and cannot change the group")]
    SignerNotAMember(UserId),
    /// The signer's certificate is not from the account the group pinned for its user.
    #[error("the certificate of {0}'s device is not from the account the group pinned")]
    SignerAccountMismatch(UserId),
    /// The signer lacked the role the operation needs at the version it builds on.
    #[error("{operation} needs an admin")]
    NotAuthorised {
        /// The refused operation.
        operation: &'static str,
    },
    /// An add names a user who is already a member.
    #[error("{0} is already a member")]
    AlreadyMember(UserId),
    /// A remove, promote or demote names a user who is not a member.
    #[error("{0} is not a member")]
    NotAMember(UserId),
    /// A promote of an admin or a demote of a member.
    #[error("{0} already has that role")]
    RoleUnchanged(UserId),
    /// The group would exceed [`super::MAX_GROUP_USERS`].
    #[error("too many members in the group")]
    TooManyMembers,
    /// A creation (version 1) must start by adding its signer as an admin.
    #[error("a group's first change must add its signer as an admin")]
    InvalidCreation,
    /// The change branches off a state that is already final (more than
    /// [`super::MAX_FORK_DEPTH`] versions behind the head).
    #[error(
        "change at version {version} competes with a final state (final up to {final_version})"
    )]
    ForkTooOld {
        /// The change's version.
        version: u64,
        /// The newest final version.
        final_version: u64,
    },
    /// A caller mistake: an argument outside its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl From<IdentityDecodeError> for MembershipError {
    fn from(e: IdentityDecodeError) -> Self {
        match e {
            IdentityDecodeError::Decode(d) => Self::Decode(d),
            IdentityDecodeError::Key(k) => Self::Key(k),
        }
    }
}
