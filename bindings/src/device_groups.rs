//! Group operations of the networkless [`Device`]: bytes in, bytes out, as its 1:1 calls.
//! Every call commits its change and returns the outbox entries the app's transport must
//! deliver (and acknowledge with `Device::acknowledged`); what arrives goes through
//! `Device::receive`, which returns `Received::GroupChanged` for a change or welcome.

use crate::group::group_infos;
use crate::{Device, E2eeError, GroupEdit, GroupInfo, Message, MessagePage, MessageRef};
use crate::{OutboxEntry, messages};

/// A group made by [`Device::create_group`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CreatedGroup {
    /// The group id (32 random bytes).
    pub id: Vec<u8>,
    /// The welcomes to every member device.
    pub entries: Vec<OutboxEntry>,
}

/// A group message committed to the log and the outbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SentGroupMessage {
    /// Its id (receipts name it).
    pub id: u64,
    /// What to hand the transport: our sender key first where a device lacks it, then the
    /// message itself.
    pub entries: Vec<OutboxEntry>,
}

fn entries(entries: Vec<e2ee_client::OutboxEntry>) -> Vec<OutboxEntry> {
    entries.into_iter().map(OutboxEntry::from).collect()
}

#[uniffi::export]
impl Device {
    /// Creates a group named `name` with us as its admin and `members` (users whose device
    /// lists we learned) as members. Nothing is committed on an error.
    pub fn create_group(
        &self,
        name: String,
        members: Vec<String>,
    ) -> Result<CreatedGroup, E2eeError> {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let (id, created) = self.device()?.create_group(&name, &members)?;
        Ok(CreatedGroup {
            id,
            entries: entries(created),
        })
    }

    /// Signs and applies one change (we must be allowed to make it); returns the entries
    /// to every device of every member before and after it.
    pub fn change_group(
        &self,
        id: Vec<u8>,
        edit: GroupEdit,
    ) -> Result<Vec<OutboxEntry>, E2eeError> {
        Ok(entries(self.device()?.change_group(&id, edit.into())?))
    }

    /// Encrypts `body` once for every member device (and our other devices). Fails with
    /// `NeedsBundles` while a member device has no session yet.
    pub fn send_group_message(
        &self,
        id: Vec<u8>,
        body: Vec<u8>,
    ) -> Result<SentGroupMessage, E2eeError> {
        let sent = self.device()?.send_group_message(&id, &body)?;
        Ok(SentGroupMessage {
            id: sent.id,
            entries: entries(sent.entries),
        })
    }

    /// Member users whose device lists we do not hold: learn them before sending.
    pub fn group_users_unknown(&self, id: Vec<u8>) -> Result<Vec<String>, E2eeError> {
        Ok(self.device()?.group_users_unknown(&id)?)
    }

    /// Marks group messages read here; returns them as logged now. The read receipts
    /// follow from `receipts_due` and `send_receipts`.
    pub fn mark_group_read(
        &self,
        id: Vec<u8>,
        read: Vec<MessageRef>,
    ) -> Result<Vec<Message>, E2eeError> {
        let read: Vec<(String, u64)> = read.into_iter().map(|m| (m.author, m.id)).collect();
        Ok(messages(self.device()?.mark_group_read(&id, &read)?))
    }

    /// A group's state as it stands here.
    pub fn group(&self, id: Vec<u8>) -> Result<GroupInfo, E2eeError> {
        Ok(self.device()?.group(&id)?.into())
    }

    /// Every group we hold.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, E2eeError> {
        Ok(group_infos(self.device()?.groups()?))
    }

    /// A page of a group's conversation, oldest first.
    pub fn group_messages(
        &self,
        id: Vec<u8>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<MessagePage, E2eeError> {
        Ok(self
            .device()?
            .group_messages(&id, before, limit as usize)?
            .into())
    }
}
