//! The group state every member holds and agrees on: version, name, description, avatar,
//! settings and the member users with their pinned account keys and roles.
//!
//! ```text
//! GroupState = 0x01 || GroupId || version u64 || last_change [32]
//!              || name (len u16 || UTF-8) || description (len u16 || UTF-8)
//!              || avatar (len u16 || bytes) || settings u8
//!              || count u16 || Member* (user ids strictly ascending)
//! Member     = UserId || account key [32] || role u8 (0 member, 1 admin) || joined u64
//! state hash = SHA-256("E2EE-v1 group state" || GroupState)
//! ```
//!
//! `last_change` is the hash of the change that produced the state (zeros for version 0), so
//! a state hash commits to the whole history before it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{
    MAX_GROUP_AVATAR_LEN, MAX_GROUP_DESCRIPTION_LEN, MAX_GROUP_NAME_LEN, MAX_GROUP_STATE_LEN,
    MAX_GROUP_USERS,
};
use crate::{
    Codec, Reader, UserId, device::AccountIdentityKey, error::DecodeError, group::GroupId,
};

/// Version byte of [`GroupState`].
pub const GROUP_STATE_VERSION: u8 = 0x01;
const STATE_HASH_CONTEXT: &[u8] = b"E2EE-v1 group state";
const SETTING_ONLY_ADMINS_SEND: u8 = 0x01;
const SETTING_ONLY_ADMINS_EDIT_INFO: u8 = 0x02;

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sends and reads; edits the info unless only admins may.
    Member,
    /// Also adds, removes, promotes, demotes and changes the settings.
    Admin,
}

impl Role {
    fn to_byte(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Admin => 1,
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.u8()? {
            0 => Ok(Role::Member),
            1 => Ok(Role::Admin),
            _ => Err(DecodeError::InvalidField("role")),
        }
    }

    pub(crate) fn write(self, out: &mut Vec<u8>) {
        out.push(self.to_byte());
    }
}

/// The group's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct GroupSettings {
    /// Only admins may send messages to the group.
    pub only_admins_send: bool,
    /// Only admins may change the name, description and avatar.
    pub only_admins_edit_info: bool,
}

impl GroupSettings {
    pub(crate) fn to_byte(self) -> u8 {
        let mut flags = 0;
        if self.only_admins_send {
            flags |= SETTING_ONLY_ADMINS_SEND;
        }
        if self.only_admins_edit_info {
            flags |= SETTING_ONLY_ADMINS_EDIT_INFO;
        }
        flags
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = reader.u8()?;
        if flags & !(SETTING_ONLY_ADMINS_SEND | SETTING_ONLY_ADMINS_EDIT_INFO) != 0 {
            return Err(DecodeError::InvalidField("unknown group setting"));
        }
        Ok(Self {
            only_admins_send: flags & SETTING_ONLY_ADMINS_SEND != 0,
            only_admins_edit_info: flags & SETTING_ONLY_ADMINS_EDIT_INFO != 0,
        })
    }
}

/// One member user: pinned to an account key, with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The account key the member was added with: only devices certified by it count as the
    /// member's devices, and only they may sign the member's changes.
    pub account: AccountIdentityKey,
    /// Admin or member.
    pub role: Role,
    /// The version whose change added the member (the last-admin rule promotes the member
    /// who joined first).
    pub joined: u64,
}

/// The state of one group at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub(crate) group_id: GroupId,
    pub(crate) version: u64,
    pub(crate) last_change: [u8; 32],
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) avatar: Vec<u8>,
    pub(crate) settings: GroupSettings,
    pub(crate) members: BTreeMap<UserId, GroupMember>,
}

impl GroupState {
    /// Version 0 of a group: no members, nothing set. Its only possible successor is a
    /// creation.
    pub fn empty(group_id: GroupId) -> Self {
        Self {
            group_id,
            version: 0,
            last_change: [0; 32],
            name: String::new(),
            description: String::new(),
            avatar: Vec::new(),
            settings: GroupSettings::default(),
            members: BTreeMap::new(),
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// How many changes led here.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The avatar reference (empty when unset).
    pub fn avatar(&self) -> &[u8] {
        &self.avatar
    }

    /// The permissions.
    pub fn settings(&self) -> GroupSettings {
        self.settings
    }

    /// Every member user, in user id order.
    pub fn members(&self) -> impl Iterator<Item = (&UserId, &GroupMember)> {
        self.members.iter()
    }

    /// A member user's entry.
    pub fn member(&self, user: &str) -> Option<&GroupMember> {
        self.members.get(user)
    }

    /// Whether `user` is a member with the admin role.
    pub fn is_admin(&self, user: &str) -> bool {
        self.member(user).is_some_and(|m| m.role == Role::Admin)
    }

    /// Whether `user` may send group messages under the current settings.
    pub fn may_send(&self, user: &str) -> bool {
        match self.member(user) {
            Some(m) => !self.settings.only_admins_send || m.role == Role::Admin,
            None => false,
        }
    }

    /// SHA-256 over the encoding: what the next change names as its previous state.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(STATE_HASH_CONTEXT);
        hasher.update(self.to_bytes());
        hasher.finalize().into()
    }
}

pub(crate) fn write_text(bytes: &[u8], out: &mut Vec<u8>) {
    // Every text is bounded far below u16::MAX by its constructor or decoder.
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) fn read_bytes(reader: &mut Reader<'_>, max: usize) -> Result<Vec<u8>, DecodeError> {
    let len = usize::from(reader.u16()?);
    if len > max {
        return Err(DecodeError::TooLarge);
    }
    Ok(reader.take(len)?.to_vec())
}

pub(crate) fn read_text(
    reader: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<String, DecodeError> {
    String::from_utf8(read_bytes(reader, max)?).map_err(|_| DecodeError::InvalidField(what))
}

impl Codec for GroupState {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_GROUP_STATE_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(GROUP_STATE_VERSION);
        self.group_id.write(out);
        self.version.write(out);
        out.extend_from_slice(&self.last_change);
        write_text(self.name.as_bytes(), out);
        write_text(self.description.as_bytes(), out);
        write_text(&self.avatar, out);
        out.push(self.settings.to_byte());
        // At most MAX_GROUP_USERS, enforced by every way in.
        out.extend_from_slice(
            &u16::try_from(self.members.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for (user, member) in &self.members {
            user.write(out);
            member.account.write(out);
            member.role.write(out);
            member.joined.write(out);
        }
    }

    /// Canonical: members strictly ascending, known setting bits only, every length within
    /// its limit, no member who joined after the state's version.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != GROUP_STATE_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let mut state = Self::empty(GroupId::read(reader)?);
        state.version = reader.u64()?;
        state.last_change = reader.array()?;
        state.name = read_text(reader, MAX_GROUP_NAME_LEN, "group name not UTF-8")?;
        state.description = read_text(
            reader,
            MAX_GROUP_DESCRIPTION_LEN,
            "group description not UTF-8",
        )?;
        state.avatar = read_bytes(reader, MAX_GROUP_AVATAR_LEN)?;
        state.settings = GroupSettings::read(reader)?;
        let count = usize::from(reader.u16()?);
        if count > MAX_GROUP_USERS {
            return Err(DecodeError::TooLarge);
        }
        for _ in 0..count {
            let user = UserId::read(reader)?;
            if state
                .members
                .last_key_value()
                .is_some_and(|(last, _)| *last >= user)
            {
                return Err(DecodeError::NonCanonical);
            }
            let member = GroupMember {
                account: AccountIdentityKey::read(reader)?,
                role: Role::read(reader)?,
                joined: reader.u64()?,
            };
            if member.joined == 0 || member.joined > state.version {
                return Err(DecodeError::InvalidField("member joined after the state"));
            }
            state.members.insert(user, member);
        }
        if state.version == 0 && (state.last_change != [0; 32] || !state.members.is_empty()) {
            return Err(DecodeError::InvalidField("version 0 is the empty group"));
        }
        Ok(state)
    }
}
