//! Storage traits the session API works through. They take and return owned plain values
//! (no lifetimes, no generics), so a SQLite store or a foreign-language store behind uniffi
//! can implement them. All are object safe: the API takes `&mut dyn ProtocolStore`.

use crate::{
    address::Address,
    dh::DhPublicKey,
    error::StoreError,
    identity::{IdentityKey, IdentityKeyPair},
    prekeys::{KemPreKey, OneTimePreKey, SignedPreKey},
    session::SessionRecord,
};

/// Our identity and the peers' trusted identities (trust on first use).
pub trait IdentityStore {
    /// This device's identity.
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError>;
    /// The identity trusted for `address`, if any.
    fn trusted_identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError>;
    /// Trusts `identity` for `address` (first use, or after the user accepted a change).
    fn trust_identity(
        &mut self,
        address: &Address,
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
    /// Deletes a used one-time KEM prekey.
    fn remove_kem_prekey(&mut self, id: u32) -> Result<(), StoreError>;
    /// Records that last-resort KEM prekey `id` was used with `base_key`. Returns `false`
    /// if that pair was recorded before (a replayed first message).
    fn record_last_resort_use(
        &mut self,
        id: u32,
        base_key: &DhPublicKey,
    ) -> Result<bool, StoreError>;
}

/// Session records per peer device.
pub trait SessionStore {
    /// The record for `address`, if any.
    fn load_session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the record for `address`.
    fn store_session(
        &mut self,
        address: &Address,
        record: &SessionRecord,
    ) -> Result<(), StoreError>;
}

/// Everything the session API needs.
pub trait ProtocolStore: IdentityStore + PreKeyStore + SessionStore {}

impl<T: IdentityStore + PreKeyStore + SessionStore> ProtocolStore for T {}
