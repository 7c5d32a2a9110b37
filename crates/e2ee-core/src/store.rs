//! Storage traits the session API works through. They take and return owned plain values
//! (no lifetimes, no generics), so a SQLite store or a foreign-language store behind uniffi
//! can implement them. All are object safe: the API takes `&mut dyn ProtocolStore`.

use crate::{
    DeviceAddress,
    device::DeviceBinding,
    error::{Error, StoreError},
    group::{GroupError, GroupId, GroupSession},
    identity::{IdentityKey, IdentityKeyPair},
    message::HandshakeId,
    prekeys::{KemPreKey, KemPreKeyKind, OneTimePreKey, SignedPreKey},
    session::SessionRecord,
};

/// Our identity and the peers' trusted identities (trust on first use).
pub trait IdentityStore {
    /// This device's identity.
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError>;
    /// This device's own binding: its address and account, signed by its identity. It goes
    /// into every bundle and first message and into the handshake's key derivation.
    fn local_binding(&self) -> Result<DeviceBinding, StoreError>;
    /// The identity trusted for `address`, if any.
    fn trusted_identity(&self, address: &DeviceAddress) -> Result<Option<IdentityKey>, StoreError>;
    /// Trusts `identity` for `address` (first use, or after the user accepted a change).
    fn trust_identity(
        &mut self,
        address: &DeviceAddress,
        identity: &IdentityKey,
    ) -> Result<(), StoreError>;
}

/// Our prekeys' secrets.
pub trait PreKeyStore {
    /// A signed prekey by id.
    fn signed_prekey(&self, id: u32) -> Result<Option<SignedPreKey>, StoreError>;
    /// A one-time prekey by id.
    fn one_time_prekey(&self, id: u32) -> Result<Option<OneTimePreKey>, StoreError>;
    /// Deletes a used one-time prekey.
    fn remove_one_time_prekey(&mut self, id: u32) -> Result<(), StoreError>;
    /// A KEM prekey (one-time or last-resort) by id.
    fn kem_prekey(&self, id: u32) -> Result<Option<KemPreKey>, StoreError>;
    /// Deletes a KEM prekey (a used one-time key, or a retired last-resort key) together with
    /// every last-resort use recorded for it, so the replay set never outlives its key.
    fn remove_kem_prekey(&mut self, id: u32) -> Result<(), StoreError>;
    /// Whether last-resort KEM prekey `id` already accepted the handshake `handshake`.
    fn last_resort_used(&self, id: u32, handshake: &HandshakeId) -> Result<bool, StoreError>;
    /// Records that last-resort KEM prekey `id` accepted the handshake `handshake`. Kept until
    /// [`Self::remove_kem_prekey`] deletes the key.
    fn record_last_resort_use(
        &mut self,
        id: u32,
        handshake: &HandshakeId,
    ) -> Result<(), StoreError>;
}

/// Session records per peer device.
pub trait SessionStore {
    /// The record for `address`, if any.
    fn load_session(&self, address: &DeviceAddress) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the record for `address`.
    fn store_session(
        &mut self,
        address: &DeviceAddress,
        record: &SessionRecord,
    ) -> Result<(), StoreError>;

    /// Runs `update` on the record for `address` and keeps the result if `update` succeeds.
    /// Returns `Ok(false)` without calling `update` if there is no record.
    ///
    /// `update` changes the record only when it succeeds (every session operation is
    /// failure-atomic), so a store may hand it the stored record itself. The default loads,
    /// updates and stores a copy; the in-memory store overrides it to update in place, which
    /// keeps the per-message path free of record copies.
    ///
    /// Implementations MUST serialise updates per address (one writer at a time, e.g. one
    /// transaction holding the row): two store objects over one database racing through
    /// load/modify/store would both encrypt with the same chain key, reusing a key and nonce.
    /// The in-memory store is serialised by `&mut self`; the default below is only correct
    /// for a store with one writer.
    fn update_session(
        &mut self,
        address: &DeviceAddress,
        update: &mut dyn FnMut(&mut SessionRecord) -> Result<(), Error>,
    ) -> Result<bool, Error> {
        let Some(mut record) = self.load_session(address)? else {
            return Ok(false);
        };
        update(&mut record)?;
        self.store_session(address, &record)?;
        Ok(true)
    }
}

/// What accepting a session-creating first message changes in the store.
#[derive(Debug)]
pub struct AcceptedFirstMessage<'a> {
    /// The initiator.
    pub address: &'a DeviceAddress,
    /// The initiator's identity, to trust (first use) or already trusted.
    pub identity: &'a IdentityKey,
    /// The session record with the new session current.
    pub record: &'a SessionRecord,
    /// The one-time X25519 prekey the message used, to delete.
    pub one_time_prekey_id: Option<u32>,
    /// The KEM prekey the message used: a one-time one to delete, or a last-resort one whose
    /// (id, handshake) pair to record.
    pub kem_prekey: Option<(u32, KemPreKeyKind)>,
    /// The handshake the message belongs to.
    pub handshake_id: &'a HandshakeId,
}

/// Everything the session API needs.
pub trait ProtocolStore: IdentityStore + PreKeyStore + SessionStore {
    /// Applies everything accepting a first message changes. Returns `false`, changing
    /// nothing, if `kem_prekey` is a last-resort key that already accepted this handshake.
    ///
    /// A persistent store MUST override it to apply the changes in one transaction. The
    /// default applies them one call at a time, ordered so that a failure part-way never
    /// blocks a retry of the same first message: it checks the last-resort record without
    /// writing, trusts the identity (idempotent), stores the session, and only then records
    /// the last-resort use and deletes the one-time keys. A failure before the session is
    /// stored changes nothing a retry cares about; a failure after it leaves a session that a
    /// replay meets as a repeated first message (docs/protocol.md section 6.2, step 4).
    fn accept_first_message(
        &mut self,
        accepted: &AcceptedFirstMessage<'_>,
    ) -> Result<bool, StoreError> {
        let last_resort = match accepted.kem_prekey {
            Some((id, KemPreKeyKind::LastResort)) => Some(id),
            _ => None,
        };
        if let Some(id) = last_resort
            && self.last_resort_used(id, accepted.handshake_id)?
        {
            return Ok(false);
        }
        self.trust_identity(accepted.address, accepted.identity)?;
        self.store_session(accepted.address, accepted.record)?;
        if let Some(id) = last_resort {
            self.record_last_resort_use(id, accepted.handshake_id)?;
        }
        if let Some((id, KemPreKeyKind::OneTime)) = accepted.kem_prekey {
            self.remove_kem_prekey(id)?;
        }
        if let Some(id) = accepted.one_time_prekey_id {
            self.remove_one_time_prekey(id)?;
        }
        Ok(true)
    }
}

/// Group states, one per group this device is in.
///
/// Implementations MUST serialise [`Self::update_group`] per group (one writer at a time),
/// as [`SessionStore::update_session`] per address: two writers racing through a
/// load/modify/store would encrypt two messages under one key and nonce.
pub trait GroupStore {
    /// The state of `group_id`, if any.
    fn load_group(&self, group_id: &GroupId) -> Result<Option<GroupSession>, StoreError>;
    /// Replaces (or creates) the state of `session`'s group.
    fn store_group(&mut self, session: &GroupSession) -> Result<(), StoreError>;

    /// Runs `update` on the state of `group_id` and keeps the result if `update` succeeds;
    /// `Ok(false)` without calling it if there is no state. The change MUST be durable when
    /// this returns: the group API returns ciphertext only after it. The default loads,
    /// updates and stores a copy.
    fn update_group(
        &mut self,
        group_id: &GroupId,
        update: &mut dyn FnMut(&mut GroupSession) -> Result<(), GroupError>,
    ) -> Result<bool, GroupError> {
        let Some(mut session) = self.load_group(group_id)? else {
            return Ok(false);
        };
        update(&mut session)?;
        self.store_group(&session)?;
        Ok(true)
    }
}
