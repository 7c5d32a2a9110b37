//! The group API through a store, as [`crate::SessionCipher`] is for 1:1 sessions.
//!
//! Key and nonce of a group message are functions of (chain key, iteration). A sender that
//! hands out a message before its advanced state is stored, and then crashes, would encrypt
//! the next message under the same key and nonce (the relay would learn `p1 XOR p2`). So
//! every call here loads the group's state, changes it, and has the store keep the change
//! before any output is returned (docs/protocol-groups.md section 7). A state restored from
//! a backup is loaded with [`GroupSession::from_backup_bytes`], which rotates the sender key.

use rand_core::{CryptoRng, RngCore};

use super::{GroupError, GroupId, GroupPlaintext, GroupSend, SenderKeyDistribution};
use crate::{DeviceAddress, device::VerifiedDevice, store::GroupStore};

/// Encrypts, decrypts and takes sender keys for groups through a [`GroupStore`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupCipher;

impl GroupCipher {
    /// Encrypts one message for group `group_id`; the advanced state is stored before the
    /// message is returned. On error nothing is returned and nothing was sent.
    pub fn encrypt(
        &self,
        store: &mut dyn GroupStore,
        rng: &mut (impl RngCore + CryptoRng),
        group_id: &GroupId,
        plaintext: &[u8],
    ) -> Result<GroupSend, GroupError> {
        let mut sent = None;
        self.update(store, group_id, &mut |session| {
            sent = Some(session.encrypt(rng, plaintext)?);
            Ok(())
        })?;
        sent.ok_or(GroupError::UnknownGroup)
    }

    /// Decrypts a group message from `sender`; the advanced state is stored before the
    /// plaintext is returned (so a replay after a crash is still refused).
    pub fn decrypt(
        &self,
        store: &mut dyn GroupStore,
        group_id: &GroupId,
        sender: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<GroupPlaintext, GroupError> {
        let mut received = None;
        self.update(store, group_id, &mut |session| {
            received = Some(session.decrypt(sender, bytes)?);
            Ok(())
        })?;
        received.ok_or(GroupError::UnknownGroup)
    }

    /// Stores a sender key `sender` sent over its pairwise session (see
    /// [`super::GroupSession::process_distribution`]).
    pub fn process_distribution(
        &self,
        store: &mut dyn GroupStore,
        sender: &VerifiedDevice,
        distribution: &SenderKeyDistribution,
    ) -> Result<(), GroupError> {
        self.update(store, distribution.group_id(), &mut |session| {
            session.process_distribution(sender, distribution)
        })
    }

    fn update(
        &self,
        store: &mut dyn GroupStore,
        group_id: &GroupId,
        update: &mut dyn FnMut(&mut super::GroupSession) -> Result<(), GroupError>,
    ) -> Result<(), GroupError> {
        if store.update_group(group_id, update)? {
            Ok(())
        } else {
            Err(GroupError::UnknownGroup)
        }
    }
}
