//! What members exchange to notice and fill a gap in a group's history.
//!
//! ```text
//! StateRef         = version u64 || state hash [32]       (carried by every group message)
//! GroupSyncRequest = 0x01 || GroupId || have_version u64
//! ```
//!
//! A member that reads a [`StateRef`] naming a state it does not hold asks the message's
//! sender, over their pairwise session, for the changes after its own head version; the
//! sender answers with those changes, one pairwise message each, from
//! [`super::GroupHistory::changes_after`] and the final changes it kept.

use crate::{Codec, Reader, error::DecodeError, group::GroupId};

/// Version byte of [`GroupSyncRequest`].
pub const GROUP_SYNC_VERSION: u8 = 0x01;
/// Encoded length of a [`StateRef`].
pub const STATE_REF_LEN: usize = 8 + 32;

/// A group state as group messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateRef {
    /// The state's version.
    pub version: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

impl Codec for StateRef {
    type Error = DecodeError;
    const MAX_LEN: usize = STATE_REF_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.version.write(out);
        out.extend_from_slice(&self.hash);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: reader.u64()?,
            hash: reader.array()?,
        })
    }
}

/// "Send me the changes of this group after version `have_version`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSyncRequest {
    /// The group.
    pub group_id: GroupId,
    /// The asker's head version.
    pub have_version: u64,
}

impl Codec for GroupSyncRequest {
    type Error = DecodeError;
    const MAX_LEN: usize = 1 + GroupId::MAX_LEN + 8;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(GROUP_SYNC_VERSION);
        self.group_id.write(out);
        self.have_version.write(out);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != GROUP_SYNC_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        Ok(Self {
            group_id: GroupId::read(reader)?,
            have_version: reader.u64()?,
        })
    }
}
