//! Authenticated membership: a group's members, roles, name and settings are what its admins
//! signed, every member checks every change, and no server (nor anyone who only controls the
//! transport) can add a member.
//!
//! ```text
//! state n ──(GroupChange: version n+1, hash(state n), operations, signed by a member device
//!            certified by the account the group pinned)──▶ state n+1
//! ```
//!
//! * [`GroupState`]: version, info, settings, member users pinned to account keys, roles.
//! * [`GroupChange`]: one signed step; [`rules`] decides whether it applies.
//! * [`GroupHistory`]: one member's view: the final state, the branches a concurrent change
//!   opened, the conflict rule that picks the head, changes held until their base arrives.
//! * [`GroupWelcome`], [`GroupSyncRequest`], [`StateRef`]: joining and catching up.
//!
//! Each member's *devices* come from that user's verified device list, checked against the
//! account key pinned here; [`crate::group::GroupSession`] then holds the sender keys for
//! exactly those devices. `docs/protocol-groups.md`, "Authenticated membership", is the
//! normative description.

mod change;
mod error;
mod history;
mod limits;
mod operation;
pub mod rules;
mod state;
mod sync;

pub use change::{GROUP_CHANGE_VERSION, GroupChange, GroupSigner};
pub use error::MembershipError;
pub use history::{
    GROUP_HISTORY_VERSION, GroupHistory, GroupWelcome, MAX_OPEN_CHANGES, Received, Update,
};
pub use limits::{
    MAX_CHANGE_OPERATIONS, MAX_FORK_DEPTH, MAX_GROUP_AVATAR_LEN, MAX_GROUP_CHANGE_LEN,
    MAX_GROUP_DESCRIPTION_LEN, MAX_GROUP_NAME_LEN, MAX_GROUP_STATE_LEN, MAX_GROUP_USERS,
    MAX_GROUP_WELCOME_LEN, MAX_PENDING_CHANGES,
};
pub use operation::Operation;
pub use state::{GROUP_STATE_VERSION, GroupMember, GroupSettings, GroupState, Role};
pub use sync::{GROUP_SYNC_VERSION, GroupSyncRequest, STATE_REF_LEN, StateRef};

#[cfg(test)]
mod convergence;
#[cfg(test)]
pub(crate) mod tests;
