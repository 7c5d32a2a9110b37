//! An in-memory [`ProtocolStore`], for tests, demos and as the reference for real stores.

use std::collections::{BTreeSet, HashMap};

use crate::{
    DeviceAddress,
    device::DeviceBinding,
    error::{Error, StoreError},
    group::{GroupError, GroupId, GroupSession},
    identity::{IdentityKey, IdentityKeyPair},
    message::HandshakeId,
    prekeys::{KemPreKey, OneTimePreKey, SignedPreKey},
    session::SessionRecord,
    store::{GroupStore, IdentityStore, PreKeyStore, ProtocolStore, SessionStore},
};

/// Keeps everything in hash maps.
pub struct InMemoryStore {
    identity: IdentityKeyPair,
    binding: DeviceBinding,
    trusted: HashMap<DeviceAddress, IdentityKey>,
    signed_prekeys: HashMap<u32, SignedPreKey>,
    one_time_prekeys: HashMap<u32, OneTimePreKey>,
    kem_prekeys: HashMap<u32, KemPreKey>,
    /// Per last-resort KEM prekey id, the handshakes it accepted.
    last_resort_uses: HashMap<u32, BTreeSet<HandshakeId>>,
    sessions: HashMap<DeviceAddress, SessionRecord>,
    groups: HashMap<GroupId, GroupSession>,
}

impl InMemoryStore {
    /// A store for the device with this identity and binding (see [`DeviceBinding::sign`]).
    pub fn new(identity: IdentityKeyPair, binding: DeviceBinding) -> Self {
        Self {
            identity,
            binding,
            trusted: HashMap::new(),
            signed_prekeys: HashMap::new(),
            one_time_prekeys: HashMap::new(),
            kem_prekeys: HashMap::new(),
            last_resort_uses: HashMap::new(),
            sessions: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// Adds a signed prekey.
    pub fn add_signed_prekey(&mut self, key: SignedPreKey) {
        self.signed_prekeys.insert(key.id(), key);
    }

    /// Adds one-time prekeys.
    pub fn add_one_time_prekeys(&mut self, keys: impl IntoIterator<Item = OneTimePreKey>) {
        for key in keys {
            self.one_time_prekeys.insert(key.id(), key);
        }
    }

    /// Adds a KEM prekey.
    pub fn add_kem_prekey(&mut self, key: KemPreKey) {
        self.kem_prekeys.insert(key.id(), key);
    }

    /// How many handshakes last-resort KEM prekey `id` has accepted (what its replay record
    /// holds).
    pub fn last_resort_use_count(&self, id: u32) -> usize {
        self.last_resort_uses.get(&id).map_or(0, BTreeSet::len)
    }

    /// How many one-time X25519 prekeys are left.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
    }
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryStore")
            .field("identity", self.identity.public())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl IdentityStore for InMemoryStore {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        Ok(self.identity.clone())
    }

    fn local_binding(&self) -> Result<DeviceBinding, StoreError> {
        Ok(self.binding.clone())
    }

    fn trusted_identity(&self, address: &DeviceAddress) -> Result<Option<IdentityKey>, StoreError> {
        Ok(self.trusted.get(address).copied())
    }

    fn trust_identity(
        &mut self,
        address: &DeviceAddress,
        identity: &IdentityKey,
    ) -> Result<(), StoreError> {
        self.trusted.insert(address.clone(), *identity);
        Ok(())
    }
}

impl PreKeyStore for InMemoryStore {
    fn signed_prekey(&self, id: u32) -> Result<Option<SignedPreKey>, StoreError> {
        Ok(self.signed_prekeys.get(&id).cloned())
    }

    fn one_time_prekey(&self, id: u32) -> Result<Option<OneTimePreKey>, StoreError> {
        Ok(self.one_time_prekeys.get(&id).cloned())
    }

    fn remove_one_time_prekey(&mut self, id: u32) -> Result<(), StoreError> {
        self.one_time_prekeys.remove(&id);
        Ok(())
    }

    fn kem_prekey(&self, id: u32) -> Result<Option<KemPreKey>, StoreError> {
        Ok(self.kem_prekeys.get(&id).cloned())
    }

    fn remove_kem_prekey(&mut self, id: u32) -> Result<(), StoreError> {
        self.kem_prekeys.remove(&id);
        self.last_resort_uses.remove(&id);
        Ok(())
    }

    fn last_resort_used(&self, id: u32, handshake: &HandshakeId) -> Result<bool, StoreError> {
        Ok(self
            .last_resort_uses
            .get(&id)
            .is_some_and(|uses| uses.contains(handshake)))
    }

    fn record_last_resort_use(
        &mut self,
        id: u32,
        handshake: &HandshakeId,
    ) -> Result<(), StoreError> {
        self.last_resort_uses
            .entry(id)
            .or_default()
            .insert(*handshake);
        Ok(())
    }
}

impl SessionStore for InMemoryStore {
    fn update_session(
        &mut self,
        address: &DeviceAddress,
        update: &mut dyn FnMut(&mut SessionRecord) -> Result<(), Error>,
    ) -> Result<bool, Error> {
        match self.sessions.get_mut(address) {
            Some(record) => update(record).map(|()| true),
            None => Ok(false),
        }
    }

    fn load_session(&self, address: &DeviceAddress) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.sessions.get(address).cloned())
    }

    fn store_session(
        &mut self,
        address: &DeviceAddress,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        self.sessions.insert(address.clone(), record.clone());
        Ok(())
    }
}

impl GroupStore for InMemoryStore {
    fn load_group(&self, group_id: &GroupId) -> Result<Option<GroupSession>, StoreError> {
        Ok(self.groups.get(group_id).cloned())
    }

    fn store_group(&mut self, session: &GroupSession) -> Result<(), StoreError> {
        self.groups
            .insert(session.group_id().clone(), session.clone());
        Ok(())
    }

    /// In place: every group operation changes the state only when it succeeds.
    fn update_group(
        &mut self,
        group_id: &GroupId,
        update: &mut dyn FnMut(&mut GroupSession) -> Result<(), GroupError>,
    ) -> Result<bool, GroupError> {
        match self.groups.get_mut(group_id) {
            Some(session) => update(session).map(|()| true),
            None => Ok(false),
        }
    }
}

/// Memory cannot fail half-way, so the default one-call-at-a-time commit is atomic here.
impl ProtocolStore for InMemoryStore {}
