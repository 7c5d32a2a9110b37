//! Groups through the [`Client`]: the members' device lists learned and their bundles fetched
//! as a send needs them, the outbox entries handed to the connection. The rules (signed
//! membership, who may do what) are `Device`'s.

use super::{Client, ClientError, Command};
use crate::{GroupEdit, GroupInfo, MessagePage};

impl Client {
    /// Learns every member user of group `id` whose device list is missing or a minute old.
    async fn refresh_members(&self, id: &[u8]) -> Result<(), ClientError> {
        let members: Vec<String> = self
            .shared
            .device()
            .group(id)?
            .members
            .into_iter()
            .map(|m| m.user)
            .collect();
        for user in members {
            self.shared.refresh_if_stale(&user).await;
        }
        Ok(())
    }

    fn queue(&self, entries: Vec<crate::OutboxEntry>) {
        for entry in entries {
            let _ = self.commands.send(Command::Send(entry));
        }
    }

    /// Creates a group named `name` with us as its admin and `members` as members, and sends
    /// each member device the group. Returns the group id.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> Result<Vec<u8>, ClientError> {
        for user in members {
            self.shared.refresh_if_stale(user).await;
        }
        let own = self.shared.device().address().user.to_string();
        self.shared.refresh_if_stale(&own).await;
        let (id, entries) = self
            .shared
            .with_sessions(|device| device.create_group(name, members))
            .await?;
        self.queue(entries);
        Ok(id)
    }

    /// Signs one change of group `id` and sends it to every member device before and after
    /// it. A change our role does not allow is [`crate::Error::GroupChangeRefused`].
    pub async fn change_group(&self, id: &[u8], edit: GroupEdit) -> Result<GroupInfo, ClientError> {
        if let GroupEdit::Add { user, .. } = &edit {
            self.shared.refresh_if_stale(user).await;
        }
        self.refresh_members(id).await?;
        let entries = self
            .shared
            .with_sessions(|device| device.change_group(id, edit.clone()))
            .await?;
        self.queue(entries);
        Ok(self.shared.device().group(id)?)
    }

    /// Sends a chat message to group `id`; returns its id. Its status follows every member
    /// device's receipts.
    pub async fn send_group(&self, id: &[u8], body: &[u8]) -> Result<u64, ClientError> {
        self.refresh_members(id).await?;
        let sent = self
            .shared
            .with_sessions(|device| device.send_group_message(id, body))
            .await?;
        self.queue(sent.entries);
        Ok(sent.id)
    }

    /// Marks messages of group `id` (author user, id) read and sends the read receipts.
    pub async fn mark_group_read(
        &self,
        id: &[u8],
        messages: &[(String, u64)],
    ) -> Result<(), ClientError> {
        self.shared.device().mark_group_read(id, messages)?;
        let entries = self.shared.send_due_receipts().await?;
        self.queue(entries);
        Ok(())
    }

    /// One group as it stands here.
    pub fn group(&self, id: &[u8]) -> Result<GroupInfo, ClientError> {
        Ok(self.shared.device().group(id)?)
    }

    /// Every group we are in (or were, until we left or were removed).
    pub fn groups(&self) -> Result<Vec<GroupInfo>, ClientError> {
        Ok(self.shared.device().groups()?)
    }

    /// A page of group `id`'s messages (see [`crate::Device::group_messages`]).
    pub fn group_messages(
        &self,
        id: &[u8],
        before: Option<u64>,
        limit: usize,
    ) -> Result<MessagePage, ClientError> {
        Ok(self.shared.device().group_messages(id, before, limit)?)
    }
}
