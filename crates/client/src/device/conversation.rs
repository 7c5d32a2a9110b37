//! Which conversation a logged message belongs to: a 1:1 conversation with another user, or
//! a group.
//!
//! ```text
//! ConversationKey = UserId                      (a 1:1 conversation: len u8 1..=128 || bytes)
//!                 | 0x00 || GroupId             (a group: len u8 1..=64 || id)
//! ```
//!
//! A user id never starts with a zero length byte, so the two cannot be confused, and the
//! log records written before groups existed decode unchanged.

use std::fmt;

use e2ee_core::{Codec, DecodeError, UserId, group::GroupId};
use e2ee_encoding::Reader;

const GROUP_TAG: u8 = 0x00;

/// A conversation, as an app names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversationId {
    /// The 1:1 conversation with this user.
    User(String),
    /// The group with this id.
    Group(Vec<u8>),
}

impl ConversationId {
    /// The other user of a 1:1 conversation.
    pub fn user(&self) -> Option<&str> {
        match self {
            ConversationId::User(user) => Some(user),
            ConversationId::Group(_) => None,
        }
    }

    /// The group id of a group conversation.
    pub fn group(&self) -> Option<&[u8]> {
        match self {
            ConversationId::User(_) => None,
            ConversationId::Group(id) => Some(id),
        }
    }
}

impl PartialEq<&str> for ConversationId {
    fn eq(&self, other: &&str) -> bool {
        self.user() == Some(*other)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationId::User(user) => f.write_str(user),
            ConversationId::Group(id) => {
                f.write_str("group:")?;
                id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// The checked form the log stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConversationKey {
    User(UserId),
    Group(GroupId),
}

impl ConversationKey {
    pub(crate) fn public(&self) -> ConversationId {
        match self {
            ConversationKey::User(user) => ConversationId::User(user.to_string()),
            ConversationKey::Group(id) => ConversationId::Group(id.as_bytes().to_vec()),
        }
    }
}

impl Codec for ConversationKey {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ConversationKey::User(user) => user.write(out),
            ConversationKey::Group(id) => {
                out.push(GROUP_TAG);
                id.write(out);
            }
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if reader.peek() == Some(GROUP_TAG) {
            reader.u8()?;
            return Ok(ConversationKey::Group(GroupId::read(reader)?));
        }
        Ok(ConversationKey::User(UserId::read(reader)?))
    }
}
