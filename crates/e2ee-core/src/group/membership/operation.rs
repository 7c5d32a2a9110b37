//! The operations a change is made of, and the role each needs.
//!
//! ```text
//! Operation = 0x01 Add      || UserId || account key [32] || role u8
//!           | 0x02 Remove   || UserId
//!           | 0x03 Leave                      (the signer's own user)
//!           | 0x04 Promote  || UserId
//!           | 0x05 Demote   || UserId
//!           | 0x06 SetName        || len u16 || UTF-8  (<= 256 bytes)
//!           | 0x07 SetDescription || len u16 || UTF-8  (<= 2,048 bytes)
//!           | 0x08 SetAvatar      || len u16 || bytes  (<= 1,024 bytes)
//!           | 0x09 SetSettings    || settings u8
//! ```

use super::{
    MAX_GROUP_AVATAR_LEN, MAX_GROUP_DESCRIPTION_LEN, MAX_GROUP_NAME_LEN,
    state::{GroupSettings, Role, read_bytes, read_text, write_text},
};
use crate::{Codec, Reader, UserId, device::AccountIdentityKey, error::DecodeError};

/// One step of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Adds a user, pinned to `account`, with `role`. Admins only.
    Add {
        /// The new member.
        user: UserId,
        /// The account key their devices must be certified by.
        account: AccountIdentityKey,
        /// Their role.
        role: Role,
    },
    /// Removes a member. Admins only.
    Remove {
        /// The member to remove.
        user: UserId,
    },
    /// The signer's own user leaves. Any member.
    Leave,
    /// Makes a member an admin. Admins only.
    Promote {
        /// The member to promote.
        user: UserId,
    },
    /// Makes an admin a plain member (an admin may demote itself). Admins only.
    Demote {
        /// The admin to demote.
        user: UserId,
    },
    /// Renames the group. Any member, or admins only under
    /// [`GroupSettings::only_admins_edit_info`].
    SetName(String),
    /// Sets the description; the same rule as the name.
    SetDescription(String),
    /// Sets the avatar reference; the same rule as the name.
    SetAvatar(Vec<u8>),
    /// Changes the permissions. Admins only.
    SetSettings(GroupSettings),
}

const OP_ADD: u8 = 0x01;
const OP_REMOVE: u8 = 0x02;
const OP_LEAVE: u8 = 0x03;
const OP_PROMOTE: u8 = 0x04;
const OP_DEMOTE: u8 = 0x05;
const OP_SET_NAME: u8 = 0x06;
const OP_SET_DESCRIPTION: u8 = 0x07;
const OP_SET_AVATAR: u8 = 0x08;
const OP_SET_SETTINGS: u8 = 0x09;

impl Operation {
    /// The operation's name in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Add { .. } => "add",
            Operation::Remove { .. } => "remove",
            Operation::Leave => "leave",
            Operation::Promote { .. } => "promote",
            Operation::Demote { .. } => "demote",
            Operation::SetName(_) => "set name",
            Operation::SetDescription(_) => "set description",
            Operation::SetAvatar(_) => "set avatar",
            Operation::SetSettings(_) => "set settings",
        }
    }

    /// The role the signer must hold, under the settings of the state the change builds on.
    pub fn required_role(&self, settings: GroupSettings) -> Role {
        match self {
            Operation::Leave => Role::Member,
            Operation::SetName(_) | Operation::SetDescription(_) | Operation::SetAvatar(_)
                if !settings.only_admins_edit_info =>
            {
                Role::Member
            }
            _ => Role::Admin,
        }
    }

    /// The user whose role or membership the operation takes away (the conflict rule weighs
    /// these).
    pub(crate) fn revoked_user(&self) -> Option<&UserId> {
        match self {
            Operation::Remove { user } | Operation::Demote { user } => Some(user),
            _ => None,
        }
    }

    /// Checks the lengths a caller building a change could get wrong.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match self {
            Operation::SetName(name) if name.len() > MAX_GROUP_NAME_LEN => {
                Err("group name over 256 bytes")
            }
            Operation::SetDescription(text) if text.len() > MAX_GROUP_DESCRIPTION_LEN => {
                Err("group description over 2,048 bytes")
            }
            Operation::SetAvatar(avatar) if avatar.len() > MAX_GROUP_AVATAR_LEN => {
                Err("avatar reference over 1,024 bytes")
            }
            _ => Ok(()),
        }
    }
}

impl Codec for Operation {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Operation::Add {
                user,
                account,
                role,
            } => {
                out.push(OP_ADD);
                user.write(out);
                account.write(out);
                role.write(out);
            }
            Operation::Remove { user } => {
                out.push(OP_REMOVE);
                user.write(out);
            }
            Operation::Leave => out.push(OP_LEAVE),
            Operation::Promote { user } => {
                out.push(OP_PROMOTE);
                user.write(out);
            }
            Operation::Demote { user } => {
                out.push(OP_DEMOTE);
                user.write(out);
            }
            Operation::SetName(name) => {
                out.push(OP_SET_NAME);
                write_text(name.as_bytes(), out);
            }
            Operation::SetDescription(text) => {
                out.push(OP_SET_DESCRIPTION);
                write_text(text.as_bytes(), out);
            }
            Operation::SetAvatar(avatar) => {
                out.push(OP_SET_AVATAR);
                write_text(avatar, out);
            }
            Operation::SetSettings(settings) => {
                out.push(OP_SET_SETTINGS);
                out.push(settings.to_byte());
            }
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.u8()? {
            OP_ADD => Operation::Add {
                user: UserId::read(reader)?,
                account: AccountIdentityKey::read(reader)?,
                role: Role::read(reader)?,
            },
            OP_REMOVE => Operation::Remove {
                user: UserId::read(reader)?,
            },
            OP_LEAVE => Operation::Leave,
            OP_PROMOTE => Operation::Promote {
                user: UserId::read(reader)?,
            },
            OP_DEMOTE => Operation::Demote {
                user: UserId::read(reader)?,
            },
            OP_SET_NAME => Operation::SetName(read_text(
                reader,
                MAX_GROUP_NAME_LEN,
                "group name not UTF-8",
            )?),
            OP_SET_DESCRIPTION => Operation::SetDescription(read_text(
                reader,
                MAX_GROUP_DESCRIPTION_LEN,
                "group description not UTF-8",
            )?),
            OP_SET_AVATAR => Operation::SetAvatar(read_bytes(reader, MAX_GROUP_AVATAR_LEN)?),
            OP_SET_SETTINGS => Operation::SetSettings(GroupSettings::read(reader)?),
            other => return Err(DecodeError::UnknownVersion(other)),
        })
    }
}
