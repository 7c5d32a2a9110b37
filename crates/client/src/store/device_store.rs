//! The `e2ee-core` store traits over the encrypted [`Vault`]: what the session and group
//! APIs read and write, persisted, with every multi-step change in one transaction.
//!
//! Values (their lookup keys are blinded, the values sealed, as every item):
//!
//! ```text
//! IDENTITY  "identity"                 IdentityKeyPair secret (64)
//! IDENTITY  "binding"                  DeviceBinding
//! DIRECTORY 0x01 || DeviceAddress      trusted IdentityKey of that device
//! PREKEYS   0x01 || id u32             signed prekey: X25519 secret (32) || SignedPreKeyPublic
//! PREKEYS   0x02 || id u32             one-time prekey: X25519 secret (32)
//! PREKEYS   0x03 || id u32             KEM prekey: ML-KEM secret || KemPreKeyPublic
//! PREKEYS   0x04 || id u32             handshake ids (32 each) a last-resort KEM key accepted
//! PREKEYS   "next prekey id"           u32: the id the next generated prekey gets
//! SESSIONS  DeviceAddress              SessionRecord
//! GROUPS    GroupId                    GroupSession
//! ```

use std::path::Path;

use e2ee_core::{
    AcceptedFirstMessage, Codec, DeviceAddress, Error as CoreError, GroupStore, IdentityKey,
    IdentityKeyPair, IdentityStore, KEM_SECRET_KEY_LEN, KemPreKey, KemPreKeyKind, KemPreKeyPublic,
    OneTimePreKey, PreKeyStore, ProtocolStore, SessionRecord, SessionStore, SignedPreKey,
    SignedPreKeyPublic, StoreError as CoreStoreError,
    device::DeviceBinding,
    group::{GroupError, GroupId, GroupSession},
    message::HandshakeId,
};
use zeroize::Zeroizing;

use super::{Items, Space, StoreError, StoreKey, Transaction, Vault};

const IDENTITY: &[u8] = b"identity";
const BINDING: &[u8] = b"binding";
const TRUSTED: u8 = 0x01;
const SIGNED_PREKEY: u8 = 0x01;
const ONE_TIME_PREKEY: u8 = 0x02;
const KEM_PREKEY: u8 = 0x03;
const LAST_RESORT_USES: u8 = 0x04;
const HANDSHAKE_ID_LEN: usize = 32;
/// Not a `kind || id` lookup: 14 bytes, so it cannot collide with the 5-byte prekey lookups.
const NEXT_PREKEY_ID: &[u8] = b"next prekey id";

/// A device's protocol state in an encrypted store file: over a [`Vault`] (each operation
/// its own transaction), or over a [`Transaction`] (operations commit with it; see
/// [`DeviceStore::over`]).
#[derive(Debug)]
pub struct DeviceStore<I = Vault> {
    items: I,
}

impl From<StoreError> for CoreStoreError {
    fn from(e: StoreError) -> Self {
        CoreStoreError(e.to_string())
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        CoreError::Store(e.into())
    }
}

impl From<StoreError> for GroupError {
    fn from(e: StoreError) -> Self {
        CoreStoreError::from(e).into()
    }
}

fn prekey_lookup(kind: u8, id: u32) -> [u8; 5] {
    let mut lookup = [kind, 0, 0, 0, 0];
    lookup[1..].copy_from_slice(&id.to_be_bytes());
    lookup
}

fn trusted_lookup(address: &DeviceAddress) -> Vec<u8> {
    let mut lookup = vec![TRUSTED];
    address.write(&mut lookup);
    lookup
}

fn corrupt(what: &'static str) -> impl FnOnce(e2ee_core::DecodeError) -> StoreError {
    move |_| StoreError::Corrupt(what)
}

fn decode_signed_prekey(bytes: &[u8]) -> Result<SignedPreKey, StoreError> {
    let (secret, public) = bytes
        .split_first_chunk::<32>()
        .ok_or(StoreError::Corrupt("signed prekey"))?;
    let public = SignedPreKeyPublic::from_bytes(public).map_err(corrupt("signed prekey"))?;
    SignedPreKey::from_parts(*secret, public).map_err(corrupt("signed prekey"))
}

fn decode_kem_prekey(bytes: &[u8]) -> Result<KemPreKey, StoreError> {
    if bytes.len() < KEM_SECRET_KEY_LEN {
        return Err(StoreError::Corrupt("KEM prekey"));
    }
    let (secret, public) = bytes.split_at(KEM_SECRET_KEY_LEN);
    let public = KemPreKeyPublic::from_bytes(public).map_err(corrupt("KEM prekey"))?;
    KemPreKey::from_parts(secret, public).map_err(corrupt("KEM prekey"))
}

fn decode_session(bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    SessionRecord::from_bytes(bytes).map_err(corrupt("session record"))
}

fn handshake_ids(bytes: &[u8]) -> Result<impl Iterator<Item = &[u8]>, StoreError> {
    if !bytes.len().is_multiple_of(HANDSHAKE_ID_LEN) {
        return Err(StoreError::Corrupt("last-resort uses"));
    }
    Ok(bytes.chunks_exact(HANDSHAKE_ID_LEN))
}

impl DeviceStore<Vault> {
    /// Creates the store file of a new device with its identity and binding.
    pub fn create(
        path: &Path,
        key: &StoreKey,
        identity: &IdentityKeyPair,
        binding: &DeviceBinding,
    ) -> Result<Self, StoreError> {
        let mut vault = Vault::create(path, key)?;
        vault.transaction(|tx| -> Result<(), StoreError> {
            tx.put(
                Space::IDENTITY,
                IDENTITY,
                identity.secret_bytes().as_slice(),
            )?;
            tx.put(Space::IDENTITY, BINDING, &binding.to_bytes())
        })?;
        Ok(Self { items: vault })
    }

    /// Opens the store file of an existing device (see [`Vault::open`] for the errors).
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        Ok(Self {
            items: Vault::open(path, key)?,
        })
    }

    /// The underlying vault, for the client's own spaces (outbox, messages), and to run
    /// store operations inside one of its transactions ([`DeviceStore::over`]).
    pub fn vault(&mut self) -> &mut Vault {
        &mut self.items
    }
}

impl<I: Items> DeviceStore<I> {
    /// The device's protocol state as seen by `items`: inside a transaction,
    /// `DeviceStore::over(&mut tx)` makes every store operation part of it.
    pub fn over(items: I) -> Self {
        Self { items }
    }

    /// Stores a signed prekey (replacing one with its id).
    pub fn add_signed_prekey(&mut self, key: &SignedPreKey) -> Result<(), StoreError> {
        self.add_prekeys(Some(key), &[], &[], None)
    }

    /// Stores one-time prekeys, all in one transaction.
    pub fn add_one_time_prekeys(&mut self, keys: &[OneTimePreKey]) -> Result<(), StoreError> {
        self.add_prekeys(None, keys, &[], None)
    }

    /// Stores a KEM prekey (one-time or last-resort).
    pub fn add_kem_prekey(&mut self, key: &KemPreKey) -> Result<(), StoreError> {
        self.add_prekeys(None, &[], std::slice::from_ref(key), None)
    }

    /// The id the next generated prekey gets (1 for a new device).
    pub fn next_prekey_id(&self) -> Result<u32, StoreError> {
        match self.items.get(Space::PREKEYS, NEXT_PREKEY_ID)? {
            None => Ok(1),
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("next prekey id")),
        }
    }

    /// Stores prekeys of every kind and, if given, the next prekey id, in one transaction:
    /// a crash leaves all of them or none.
    pub fn add_prekeys(
        &mut self,
        signed: Option<&SignedPreKey>,
        one_time: &[OneTimePreKey],
        kem: &[KemPreKey],
        next_prekey_id: Option<u32>,
    ) -> Result<(), StoreError> {
        self.items.atomically(|tx| -> Result<(), StoreError> {
            if let Some(key) = signed {
                let mut value = Zeroizing::new(key.key_pair().secret_bytes().to_vec());
                value.extend_from_slice(&key.public().to_bytes());
                tx.put(
                    Space::PREKEYS,
                    &prekey_lookup(SIGNED_PREKEY, key.id()),
                    &value,
                )?;
            }
            for key in one_time {
                tx.put(
                    Space::PREKEYS,
                    &prekey_lookup(ONE_TIME_PREKEY, key.id()),
                    key.key_pair().secret_bytes().as_slice(),
                )?;
            }
            for key in kem {
                let mut value = Zeroizing::new(key.key_pair().secret_bytes().to_vec());
                value.extend_from_slice(&key.public().to_bytes());
                tx.put(Space::PREKEYS, &prekey_lookup(KEM_PREKEY, key.id()), &value)?;
            }
            if let Some(next) = next_prekey_id {
                tx.put(Space::PREKEYS, NEXT_PREKEY_ID, &next.to_be_bytes())?;
            }
            Ok(())
        })
    }

    fn get_decoded<T>(
        &self,
        space: Space,
        lookup: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, CoreStoreError> {
        match self.items.get(space, lookup)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }
}

/// A failure inside a transaction body: the store's, or the update's own.
enum Failure<E> {
    Store(StoreError),
    Update(E),
}

impl<E> From<StoreError> for Failure<E> {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl<E: From<StoreError>> Failure<E> {
    fn into_error(self) -> E {
        match self {
            Failure::Store(e) => e.into(),
            Failure::Update(e) => e,
        }
    }
}

impl<I: Items> IdentityStore for DeviceStore<I> {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, CoreStoreError> {
        self.get_decoded(Space::IDENTITY, IDENTITY, |b| {
            IdentityKeyPair::from_secret_bytes(b).map_err(corrupt("identity"))
        })?
        .ok_or_else(|| StoreError::Corrupt("identity missing").into())
    }

    fn local_binding(&self) -> Result<DeviceBinding, CoreStoreError> {
        self.get_decoded(Space::IDENTITY, BINDING, |b| {
            DeviceBinding::from_bytes(b).map_err(|_| StoreError::Corrupt("binding"))
        })?
        .ok_or_else(|| StoreError::Corrupt("binding missing").into())
    }

    fn trusted_identity(
        &self,
        address: &DeviceAddress,
    ) -> Result<Option<IdentityKey>, CoreStoreError> {
        // Verified before it was stored, and the store authenticates what it returns: the
        // signature check (a third of a receive's cost) is not repeated on every message.
        self.get_decoded(Space::DIRECTORY, &trusted_lookup(address), |b| {
            IdentityKey::from_stored_bytes(b).map_err(|_| StoreError::Corrupt("trusted identity"))
        })
    }

    fn trust_identity(
        &mut self,
        address: &DeviceAddress,
        identity: &IdentityKey,
    ) -> Result<(), CoreStoreError> {
        Ok(self.items.put(
            Space::DIRECTORY,
            &trusted_lookup(address),
            &identity.to_bytes(),
        )?)
    }
}

impl<I: Items> PreKeyStore for DeviceStore<I> {
    fn signed_prekey(&self, id: u32) -> Result<Option<SignedPreKey>, CoreStoreError> {
        self.get_decoded(
            Space::PREKEYS,
            &prekey_lookup(SIGNED_PREKEY, id),
            decode_signed_prekey,
        )
    }

    fn one_time_prekey(&self, id: u32) -> Result<Option<OneTimePreKey>, CoreStoreError> {
        self.get_decoded(Space::PREKEYS, &prekey_lookup(ONE_TIME_PREKEY, id), |b| {
            let secret: [u8; 32] = b
                .try_into()
                .map_err(|_| StoreError::Corrupt("one-time prekey"))?;
            Ok(OneTimePreKey::from_parts(id, secret))
        })
    }

    fn remove_one_time_prekey(&mut self, id: u32) -> Result<(), CoreStoreError> {
        self.items
            .delete(Space::PREKEYS, &prekey_lookup(ONE_TIME_PREKEY, id))?;
        Ok(())
    }

    fn kem_prekey(&self, id: u32) -> Result<Option<KemPreKey>, CoreStoreError> {
        self.get_decoded(
            Space::PREKEYS,
            &prekey_lookup(KEM_PREKEY, id),
            decode_kem_prekey,
        )
    }

    fn remove_kem_prekey(&mut self, id: u32) -> Result<(), CoreStoreError> {
        self.items.atomically(|tx| -> Result<(), StoreError> {
            tx.delete(Space::PREKEYS, &prekey_lookup(KEM_PREKEY, id))?;
            tx.delete(Space::PREKEYS, &prekey_lookup(LAST_RESORT_USES, id))?;
            Ok(())
        })?;
        Ok(())
    }

    fn last_resort_used(&self, id: u32, handshake: &HandshakeId) -> Result<bool, CoreStoreError> {
        let Some(uses) = self
            .items
            .get(Space::PREKEYS, &prekey_lookup(LAST_RESORT_USES, id))?
        else {
            return Ok(false);
        };
        Ok(handshake_ids(&uses)?.any(|used| used == handshake.as_bytes()))
    }

    fn record_last_resort_use(
        &mut self,
        id: u32,
        handshake: &HandshakeId,
    ) -> Result<(), CoreStoreError> {
        self.items
            .atomically(|tx| record_last_resort_use(tx, id, handshake))?;
        Ok(())
    }
}

fn record_last_resort_use(
    tx: &mut Transaction<'_>,
    id: u32,
    handshake: &HandshakeId,
) -> Result<(), StoreError> {
    let lookup = prekey_lookup(LAST_RESORT_USES, id);
    let mut uses = tx
        .get(Space::PREKEYS, &lookup)?
        .map(|u| u.to_vec())
        .unwrap_or_default();
    if handshake_ids(&uses)?.any(|used| used == handshake.as_bytes()) {
        return Ok(());
    }
    uses.extend_from_slice(handshake.as_bytes());
    tx.put(Space::PREKEYS, &lookup, &uses)
}

impl<I: Items> SessionStore for DeviceStore<I> {
    fn load_session(
        &self,
        address: &DeviceAddress,
    ) -> Result<Option<SessionRecord>, CoreStoreError> {
        self.get_decoded(Space::SESSIONS, &address.to_bytes(), decode_session)
    }

    fn store_session(
        &mut self,
        address: &DeviceAddress,
        record: &SessionRecord,
    ) -> Result<(), CoreStoreError> {
        Ok(self
            .items
            .put(Space::SESSIONS, &address.to_bytes(), &record.to_bytes())?)
    }

    /// Load, update and store in one write transaction: the write lock is held from the read
    /// to the commit, so two store objects on one file (an app and its extension) serialise.
    fn update_session(
        &mut self,
        address: &DeviceAddress,
        update: &mut dyn FnMut(&mut SessionRecord) -> Result<(), CoreError>,
    ) -> Result<bool, CoreError> {
        let lookup = address.to_bytes();
        self.items
            .atomically(|tx| -> Result<bool, Failure<CoreError>> {
                let Some(bytes) = tx.get(Space::SESSIONS, &lookup)? else {
                    return Ok(false);
                };
                let mut record = decode_session(&bytes)?;
                update(&mut record).map_err(Failure::Update)?;
                tx.put(Space::SESSIONS, &lookup, &record.to_bytes())?;
                Ok(true)
            })
            .map_err(Failure::into_error)
    }
}

impl<I: Items> ProtocolStore for DeviceStore<I> {
    /// Everything a first message changes, in one transaction.
    fn accept_first_message(
        &mut self,
        accepted: &AcceptedFirstMessage<'_>,
    ) -> Result<bool, CoreStoreError> {
        Ok(self.items.atomically(|tx| -> Result<bool, StoreError> {
            if let Some((id, KemPreKeyKind::LastResort)) = accepted.kem_prekey {
                let uses = tx.get(Space::PREKEYS, &prekey_lookup(LAST_RESORT_USES, id))?;
                if let Some(uses) = uses
                    && handshake_ids(&uses)?.any(|u| u == accepted.handshake_id.as_bytes())
                {
                    return Ok(false);
                }
                record_last_resort_use(tx, id, accepted.handshake_id)?;
            }
            tx.put(
                Space::DIRECTORY,
                &trusted_lookup(accepted.address),
                &accepted.identity.to_bytes(),
            )?;
            tx.put(
                Space::SESSIONS,
                &accepted.address.to_bytes(),
                &accepted.record.to_bytes(),
            )?;
            if let Some((id, KemPreKeyKind::OneTime)) = accepted.kem_prekey {
                tx.delete(Space::PREKEYS, &prekey_lookup(KEM_PREKEY, id))?;
            }
            if let Some(id) = accepted.one_time_prekey_id {
                tx.delete(Space::PREKEYS, &prekey_lookup(ONE_TIME_PREKEY, id))?;
            }
            Ok(true)
        })?)
    }
}

impl<I: Items> GroupStore for DeviceStore<I> {
    fn load_group(&self, group_id: &GroupId) -> Result<Option<GroupSession>, CoreStoreError> {
        self.get_decoded(Space::GROUPS, &group_id.to_bytes(), |b| {
            GroupSession::from_bytes(b).map_err(corrupt("group session"))
        })
    }

    fn store_group(&mut self, session: &GroupSession) -> Result<(), CoreStoreError> {
        Ok(self.items.put(
            Space::GROUPS,
            &session.group_id().to_bytes(),
            &session.to_bytes(),
        )?)
    }

    /// Load, update and store in one write transaction (see
    /// [`DeviceStore::update_session`]); durable when it returns (`synchronous = FULL`).
    fn update_group(
        &mut self,
        group_id: &GroupId,
        update: &mut dyn FnMut(&mut GroupSession) -> Result<(), GroupError>,
    ) -> Result<bool, GroupError> {
        let lookup = group_id.to_bytes();
        self.items
            .atomically(|tx| -> Result<bool, Failure<GroupError>> {
                let Some(bytes) = tx.get(Space::GROUPS, &lookup)? else {
                    return Ok(false);
                };
                let mut session =
                    GroupSession::from_bytes(&bytes).map_err(corrupt("group session"))?;
                update(&mut session).map_err(Failure::Update)?;
                tx.put(Space::GROUPS, &lookup, &session.to_bytes())?;
                Ok(true)
            })
            .map_err(Failure::into_error)
    }
}
