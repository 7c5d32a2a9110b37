//! Bounds of authenticated membership (`docs/protocol-groups.md`, "Authenticated membership").
//!
//! A change travels inside one pairwise message (at most
//! [`crate::limits::MAX_PLAINTEXT_LEN`], 64 KiB), so [`MAX_GROUP_CHANGE_LEN`] stays below it
//! with room for the content header: creating a 1,024-member group takes several changes.

use crate::{Codec, UserId, device::MAX_DEVICE_CERTIFICATE_LEN, group::MAX_GROUP_MEMBERS};

/// Member users per group. Every user has at least one device, so this is the device bound
/// [`MAX_GROUP_MEMBERS`] as well; the device count is checked again where the fan-out is
/// computed.
pub const MAX_GROUP_USERS: usize = MAX_GROUP_MEMBERS;
/// Longest group name in bytes of UTF-8.
pub const MAX_GROUP_NAME_LEN: usize = 256;
/// Longest group description in bytes of UTF-8.
pub const MAX_GROUP_DESCRIPTION_LEN: usize = 2_048;
/// Longest avatar reference (an opaque pointer to encrypted media, chosen by the app).
pub const MAX_GROUP_AVATAR_LEN: usize = 1_024;
/// Operations in one change.
pub const MAX_CHANGE_OPERATIONS: usize = 256;
/// Longest encoded change.
pub const MAX_GROUP_CHANGE_LEN: usize = 48 * 1_024;
/// How far behind the head (in versions) a competing change may branch off and still be
/// weighed by the conflict rule; states further back are final.
pub const MAX_FORK_DEPTH: u64 = 32;
/// Changes held while the change they build on has not arrived; the oldest goes beyond this.
pub const MAX_PENDING_CHANGES: usize = 64;

/// Longest encoding of one member entry.
pub(crate) const MAX_MEMBER_LEN: usize = UserId::MAX_LEN + 32 + 1 + 8;
/// Longest encoded group state.
pub const MAX_GROUP_STATE_LEN: usize = 1
    + 1
    + crate::group::MAX_GROUP_ID_LEN
    + 8
    + 32
    + 2
    + MAX_GROUP_NAME_LEN
    + 2
    + MAX_GROUP_DESCRIPTION_LEN
    + 2
    + MAX_GROUP_AVATAR_LEN
    + 1
    + 2
    + MAX_GROUP_USERS * MAX_MEMBER_LEN;
/// Longest encoded welcome: a state and the changes after it that are not final yet.
pub const MAX_GROUP_WELCOME_LEN: usize =
    MAX_GROUP_STATE_LEN + 2 + (MAX_FORK_DEPTH as usize + 1) * (4 + MAX_GROUP_CHANGE_LEN);

// A change always holds one certificate: it must leave room for the operations.
const _: () = assert!(4 * MAX_DEVICE_CERTIFICATE_LEN < MAX_GROUP_CHANGE_LEN);
