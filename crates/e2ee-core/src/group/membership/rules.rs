//! The validation rules: whether a change applies to the state it builds on, and the state it
//! produces. Pure functions of (state n, change): every member computes the same result.
//!
//! 1. The change names this group, version n+1 and the hash of state n.
//! 2. Version 1 (creation): the first operation adds the signer's user, pinned to the
//!    certificate's account, as an admin; the signer holds the admin role for the rest.
//!    Later versions: the signer's user is a member of state n and the certificate is from
//!    the account state n pinned for it; the signer holds that member's role.
//! 3. Every operation needs its role ([`Operation::required_role`]) under state n's settings,
//!    held by the signer *at state n* (a change cannot grant itself a role and use it).
//! 4. Operations apply in order: adding a member twice, removing, promoting or demoting a
//!    non-member, a promote of an admin or a demote of a member, or more than
//!    [`MAX_GROUP_USERS`] users refuse the whole change.
//! 5. If members remain and none is an admin, the member who joined first (lowest join
//!    version, then lowest user id) becomes one.

use super::{
    GroupChange, MAX_GROUP_USERS, MembershipError, Operation,
    state::{GroupMember, GroupState, Role},
};
use crate::UserId;

/// State n+1: `change` applied to `state` (state n), or why not.
pub fn apply(state: &GroupState, change: &GroupChange) -> Result<GroupState, MembershipError> {
    apply_with_hash(state, &state.hash(), change)
}

/// [`apply`] with the hash of `state` already known (the history caches it).
pub(crate) fn apply_with_hash(
    state: &GroupState,
    state_hash: &[u8; 32],
    change: &GroupChange,
) -> Result<GroupState, MembershipError> {
    if change.group_id() != state.group_id() {
        return Err(MembershipError::WrongGroup);
    }
    let expected = state.version() + 1;
    if change.version() != expected {
        return Err(MembershipError::WrongVersion {
            expected,
            got: change.version(),
        });
    }
    if change.previous_hash() != state_hash {
        return Err(MembershipError::WrongPreviousHash);
    }
    let certificate = change.signer();
    let signer = &certificate.address().user;
    let authority = if state.version() == 0 {
        match change.operations().first() {
            Some(Operation::Add {
                user,
                account,
                role: Role::Admin,
            }) if user == signer && account == certificate.account() => Role::Admin,
            _ => return Err(MembershipError::InvalidCreation),
        }
    } else {
        let member = state
            .member(signer.as_str())
            .ok_or_else(|| MembershipError::SignerNotAMember(signer.clone()))?;
        certificate
            .verify(&member.account)
            .map_err(|_| MembershipError::SignerAccountMismatch(signer.clone()))?;
        member.role
    };

    let mut next = state.clone();
    next.version = expected;
    next.last_change = *change.hash();
    for operation in change.operations() {
        if authority < operation.required_role(state.settings()) {
            return Err(MembershipError::NotAuthorised {
                operation: operation.name(),
            });
        }
        apply_operation(&mut next, signer, operation)?;
    }
    promote_if_no_admin(&mut next);
    Ok(next)
}

fn apply_operation(
    next: &mut GroupState,
    signer: &UserId,
    operation: &Operation,
) -> Result<(), MembershipError> {
    let version = next.version;
    match operation {
        Operation::Add {
            user,
            account,
            role,
        } => {
            if next.members.contains_key(user) {
                return Err(MembershipError::AlreadyMember(user.clone()));
            }
            if next.members.len() >= MAX_GROUP_USERS {
                return Err(MembershipError::TooManyMembers);
            }
            next.members.insert(
                user.clone(),
                GroupMember {
                    account: *account,
                    role: *role,
                    joined: version,
                },
            );
        }
        Operation::Remove { user } => {
            next.members
                .remove(user)
                .ok_or_else(|| MembershipError::NotAMember(user.clone()))?;
        }
        Operation::Leave => {
            next.members
                .remove(signer)
                .ok_or_else(|| MembershipError::NotAMember(signer.clone()))?;
        }
        Operation::Promote { user } => set_role(next, user, Role::Admin)?,
        Operation::Demote { user } => set_role(next, user, Role::Member)?,
        Operation::SetName(name) => next.name.clone_from(name),
        Operation::SetDescription(text) => next.description.clone_from(text),
        Operation::SetAvatar(avatar) => next.avatar.clone_from(avatar),
        Operation::SetSettings(settings) => next.settings = *settings,
    }
    Ok(())
}

fn set_role(next: &mut GroupState, user: &UserId, role: Role) -> Result<(), MembershipError> {
    let member = next
        .members
        .get_mut(user)
        .ok_or_else(|| MembershipError::NotAMember(user.clone()))?;
    if member.role == role {
        return Err(MembershipError::RoleUnchanged(user.clone()));
    }
    member.role = role;
    Ok(())
}

/// Rule 5: a group with members always has an admin.
fn promote_if_no_admin(next: &mut GroupState) {
    if next.members.values().any(|m| m.role == Role::Admin) {
        return;
    }
    // BTreeMap order breaks ties between equal join versions by user id.
    if let Some(first) = next.members.values_mut().min_by_key(|m| m.joined) {
        first.role = Role::Admin;
    }
}
