//! The client's view of other users' devices: the account identities it trusts (first use),
//! the newest device list each signed, and the two directions of a pairwise message through
//! them.
//!
//! * Sending: [`DeviceDirectory::plan`] lists the devices one message goes to (every listed
//!   device of the recipients plus our own other devices), [`DeviceDirectory::process_bundle`]
//!   starts sessions only with listed devices, [`DeviceDirectory::encrypt`] encrypts once per
//!   ready device.
//! * Receiving: [`DeviceDirectory::decrypt`] accepts a message only from a listed device:
//!   a first message must carry the listed identity (bound to the trusted account), a ratchet
//!   message must come from a session with the listed identity. It returns the sender as a
//!   [`VerifiedDevice`], which is what group sessions take sender keys from.
//!
//! The lower layer, [`SessionCipher`], is trust-on-first-use per address and consults no
//! directory: a relay or key server can deliver a first message "from" any address to it.
//! Applications with accounts use this directory in both directions.
//!
//! ```text
//! DeviceDirectory = 0x01 || count u32 (0..=MAX_DIRECTORY_USERS)
//!                   || count * (UserId || account key (32) || has_list u8 || [DeviceList])
//!   user ids strictly ascending; a stored list names the entry's user and account
//! ```

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use super::{AccountIdentityKey, DeviceCertificate, DeviceError, DeviceList};
use crate::{
    Codec, DeviceAddress, Reader, UserId,
    error::DecodeError,
    fingerprint::SafetyNumber,
    identity::IdentityKey,
    message::{MessageKind, PreKeyMessage, RatchetMessage},
    prekeys::PreKeyBundle,
    session_cipher::SessionCipher,
    store::ProtocolStore,
};

/// Version byte of the serialised directory.
pub const DEVICE_DIRECTORY_VERSION: u8 = 0x01;
/// Most users one directory trusts an account for (contacts, group members, ourselves).
pub const MAX_DIRECTORY_USERS: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
struct UserEntry {
    account: AccountIdentityKey,
    list: Option<DeviceList>,
}

impl UserEntry {
    /// A newly trusted account whose device list is still to be fetched and verified.
    fn trusted(account: AccountIdentityKey) -> Self {
        Self {
            account,
            list: None,
        }
    }
}

/// The account identities this device trusts and their newest verified device lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDirectory {
    users: BTreeMap<UserId, UserEntry>,
}

/// A device as the directory vouches for it: listed under the trusted account of its user
/// with exactly this identity. Only the directory makes these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDevice {
    address: DeviceAddress,
    identity: IdentityKey,
}

impl VerifiedDevice {
    /// A device vouched for without a directory: for this workspace's tests only (feature
    /// `test-support`), which build groups of hundreds of devices without signing their
    /// device lists.
    #[cfg(any(test, feature = "test-support"))]
    pub fn assume_verified(address: DeviceAddress, identity: IdentityKey) -> Self {
        Self { address, identity }
    }

    /// The device.
    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    /// Its listed identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }
}

/// A pairwise message received from a listed device.
#[derive(Clone, PartialEq, Eq)]
pub struct Received {
    /// Who sent it (the listed device whose session decrypted it).
    pub sender: VerifiedDevice,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("sender", &self.sender)
            .field("len", &self.plaintext.len())
            .finish()
    }
}

/// The devices one message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanoutPlan {
    /// Listed devices without a session: fetch their bundles, pass them to
    /// [`DeviceDirectory::process_bundle`], then plan again.
    pub needs_session: Vec<DeviceAddress>,
    /// Listed devices with a session whose identity matches the list.
    pub ready: Vec<DeviceAddress>,
    /// Listed devices whose session has another identity than the list names (the device was
    /// replaced, or the session was set up with an impostor). They are skipped: fetch their
    /// bundles and [`DeviceDirectory::process_bundle`] to replace the session.
    pub mismatched: Vec<DeviceAddress>,
}

/// One pairwise ciphertext for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The device it is for.
    pub to: DeviceAddress,
    /// A 1:1 message (first or ratchet message).
    pub ciphertext: Vec<u8>,
}

impl DeviceDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `account` for `user_id` on first use. The same key again is fine; a different
    /// one fails with [`DeviceError::AccountIdentityChanged`] until
    /// [`Self::accept_account_change`].
    pub fn trust_account(
        &mut self,
        user_id: &UserId,
        account: AccountIdentityKey,
    ) -> Result<(), DeviceError> {
        match self.users.get(user_id) {
            Some(entry) if entry.account == account => Ok(()),
            Some(_) => Err(DeviceError::AccountIdentityChanged {
                user_id: user_id.clone(),
            }),
            None if self.users.len() >= MAX_DIRECTORY_USERS => Err(DeviceError::DirectoryFull),
            None => {
                self.users
                    .insert(user_id.clone(), UserEntry::trusted(account));
                Ok(())
            }
        }
    }

    /// Replaces the trusted account identity (after the user verified the new safety number).
    /// The old device list is dropped: fetch and verify the new one.
    pub fn accept_account_change(
        &mut self,
        user_id: &UserId,
        account: AccountIdentityKey,
    ) -> Result<(), DeviceError> {
        if !self.users.contains_key(user_id) && self.users.len() >= MAX_DIRECTORY_USERS {
            return Err(DeviceError::DirectoryFull);
        }
        self.users
            .insert(user_id.clone(), UserEntry::trusted(account));
        Ok(())
    }

    /// The trusted account identity of `user_id`.
    pub fn account(&self, user_id: &str) -> Option<&AccountIdentityKey> {
        self.users.get(user_id).map(|e| &e.account)
    }

    /// Verifies `list` under the trusted account identity of its user and keeps it if it is
    /// newer than the one held. The identical list again is accepted (a re-fetch).
    pub fn update_device_list(&mut self, list: &DeviceList) -> Result<(), DeviceError> {
        let entry =
            self.users
                .get_mut(list.user_id())
                .ok_or_else(|| DeviceError::UntrustedAccount {
                    user_id: list.user_id().clone(),
                })?;
        list.verify(&entry.account)?;
        if let Some(have) = &entry.list {
            if have == list {
                return Ok(());
            }
            if list.version() <= have.version() {
                return Err(DeviceError::StaleDeviceList {
                    have: have.version(),
                    got: list.version(),
                });
            }
        }
        entry.list = Some(list.clone());
        Ok(())
    }

    /// The safety number between our account and `their_user_id`'s trusted account identity:
    /// one number per pair of users, whatever their device counts, changing only when an
    /// account identity changes (`docs/protocol.md`, safety numbers, with the account key).
    pub fn safety_number(
        &self,
        our_user_id: &UserId,
        our_account: &AccountIdentityKey,
        their_user_id: &UserId,
    ) -> Result<SafetyNumber, DeviceError> {
        let theirs =
            self.account(their_user_id.as_str())
                .ok_or_else(|| DeviceError::UntrustedAccount {
                    user_id: their_user_id.clone(),
                })?;
        Ok(SafetyNumber::new(
            our_user_id.as_str().as_bytes(),
            &our_account.to_array(),
            their_user_id.as_str().as_bytes(),
            &theirs.to_array(),
        ))
    }

    /// The newest verified device list of `user_id`.
    pub fn device_list(&self, user_id: &str) -> Option<&DeviceList> {
        self.users.get(user_id).and_then(|e| e.list.as_ref())
    }

    fn list_of(&self, user_id: &UserId) -> Result<&DeviceList, DeviceError> {
        let entry = self
            .users
            .get(user_id)
            .ok_or_else(|| DeviceError::UntrustedAccount {
                user_id: user_id.clone(),
            })?;
        entry
            .list
            .as_ref()
            .ok_or_else(|| DeviceError::NoDeviceList {
                user_id: user_id.clone(),
            })
    }

    /// The listed devices of `user_id`.
    pub fn devices(&self, user_id: &UserId) -> Result<Vec<DeviceAddress>, DeviceError> {
        Ok(self
            .list_of(user_id)?
            .devices()
            .iter()
            .map(|d| DeviceAddress {
                user: user_id.clone(),
                device: d.device_id(),
            })
            .collect())
    }

    /// Every listed device of `users`, with its listed identity (for example to set a group's
    /// members).
    pub fn listed_devices(&self, users: &[&UserId]) -> Result<Vec<VerifiedDevice>, DeviceError> {
        let mut out = Vec::new();
        for user in users {
            for entry in self.list_of(user)?.devices() {
                out.push(VerifiedDevice {
                    address: DeviceAddress {
                        user: (*user).clone(),
                        device: entry.device_id(),
                    },
                    identity: *entry.identity(),
                });
            }
        }
        Ok(out)
    }

    /// The listed identity of `device`.
    pub fn device_identity(&self, device: &DeviceAddress) -> Option<IdentityKey> {
        self.device_list(device.user_id())?
            .identity_of(device.device_id())
            .copied()
    }

    /// `device` as the directory vouches for it, if it is listed.
    pub fn listed_device(&self, device: &DeviceAddress) -> Result<VerifiedDevice, DeviceError> {
        let identity = *self
            .list_of(&device.user)?
            .identity_of(device.device_id())
            .ok_or_else(|| DeviceError::DeviceNotInList(device.clone()))?;
        Ok(VerifiedDevice {
            address: device.clone(),
            identity,
        })
    }

    /// Fails unless `device` is listed with exactly `identity`.
    pub fn check_device(
        &self,
        device: &DeviceAddress,
        identity: &IdentityKey,
    ) -> Result<VerifiedDevice, DeviceError> {
        let listed = self.listed_device(device)?;
        if listed.identity != *identity {
            return Err(DeviceError::DeviceNotInList(device.clone()));
        }
        Ok(listed)
    }

    /// Checks a device certificate: signed by the trusted account, and the device in the
    /// newest list with the certified identity.
    pub fn verify_certificate(
        &self,
        cert: &DeviceCertificate,
    ) -> Result<VerifiedDevice, DeviceError> {
        let account =
            self.account(cert.user_id())
                .ok_or_else(|| DeviceError::UntrustedAccount {
                    user_id: cert.address().user.clone(),
                })?;
        cert.verify(account)?;
        self.check_device(cert.address(), cert.identity())
    }

    /// `device` with the identity the list names, if the presented `identity` and the
    /// account its binding names are the listed ones.
    fn check_presented(
        &self,
        device: &DeviceAddress,
        identity: &IdentityKey,
        bound_account: &AccountIdentityKey,
    ) -> Result<VerifiedDevice, DeviceError> {
        let listed = self.check_device(device, identity)?;
        if self.account(device.user_id()) != Some(bound_account) {
            return Err(DeviceError::DeviceNotInList(device.clone()));
        }
        Ok(listed)
    }

    /// Starts a session with `device` from `bundle` only if the bundle's identity is the one
    /// the verified list names and its binding names the trusted account. The list is
    /// authoritative for a listed device's identity, so a replaced device's new key is not an
    /// "identity change" here: the session and the store's trust follow the list.
    pub fn process_bundle(
        &self,
        cipher: &SessionCipher,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        device: &DeviceAddress,
        bundle: &PreKeyBundle,
    ) -> Result<(), DeviceError> {
        self.check_presented(device, &bundle.identity, bundle.binding.account())?;
        cipher.start_session(store, rng, device, bundle)?;
        Ok(())
    }

    /// Decrypts a pairwise message from `from`, accepting it only from the listed device: a
    /// first message must present the listed identity and a binding to the trusted account;
    /// a ratchet message must come from a session with the listed identity. Refused messages
    /// change nothing. A first message from a replaced device (a new identity the list names)
    /// is accepted like one from a new device.
    pub fn decrypt(
        &self,
        cipher: &SessionCipher,
        store: &mut dyn ProtocolStore,
        from: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<Received, DeviceError> {
        let listed = self.listed_device(from)?;
        let plaintext = match MessageKind::of(bytes)? {
            MessageKind::PreKey => {
                let message = PreKeyMessage::from_bytes(bytes)?;
                self.check_presented(
                    from,
                    &message.parts.identity,
                    message.parts.binding.account(),
                )?;
                cipher.accept_prekey_message(store, from, &message)?
            }
            MessageKind::Ratchet => {
                let message = RatchetMessage::from_bytes(bytes)?;
                if store.trusted_identity(from)? != Some(listed.identity) {
                    return Err(DeviceError::DeviceNotInList(from.clone()));
                }
                cipher.decrypt_ratchet_message(store, from, &message)?
            }
        };
        Ok(Received {
            sender: listed,
            plaintext,
        })
    }

    /// The devices a message from `own` to `recipients` (user ids) goes to: every listed
    /// device of each recipient and every other listed device of our own user. A device
    /// whose session has another identity than the list names is skipped and reported in
    /// [`FanoutPlan::mismatched`].
    pub fn plan(
        &self,
        store: &dyn ProtocolStore,
        own: &DeviceAddress,
        recipients: &[&UserId],
    ) -> Result<FanoutPlan, DeviceError> {
        let mut devices = BTreeMap::new();
        for user in recipients.iter().copied().chain([&own.user]) {
            for device in self.listed_devices(&[user])? {
                devices.insert(device.address, device.identity);
            }
        }
        devices.remove(own);
        let mut plan = FanoutPlan::default();
        for (address, identity) in devices {
            match store.load_session(&address)? {
                Some(record) if record.has_current_session() => {
                    if record.remote_identity() == Some(identity) {
                        plan.ready.push(address);
                    } else {
                        plan.mismatched.push(address);
                    }
                }
                _ => plan.needs_session.push(address),
            }
        }
        Ok(plan)
    }

    /// Encrypts `plaintext` once per ready device of `plan` (a pairwise message each).
    /// Devices still needing a session are refused: set them up and plan again.
    pub fn encrypt(
        &self,
        cipher: &SessionCipher,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        plan: &FanoutPlan,
        plaintext: &[u8],
    ) -> Result<Vec<Envelope>, DeviceError> {
        if let Some(device) = plan.needs_session.first() {
            return Err(DeviceError::Session(crate::error::Error::NoSession {
                address: device.clone(),
            }));
        }
        plan.ready
            .iter()
            .map(|device| {
                Ok(Envelope {
                    to: device.clone(),
                    ciphertext: cipher.encrypt(store, rng, device, plaintext)?,
                })
            })
            .collect()
    }
}

impl Codec for DeviceDirectory {
    type Error = DeviceError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(DEVICE_DIRECTORY_VERSION);
        // At most MAX_DIRECTORY_USERS, enforced by every way in.
        (self.users.len() as u32).write(out);
        for (user, entry) in &self.users {
            user.write(out);
            entry.account.write(out);
            match &entry.list {
                Some(list) => {
                    out.push(1);
                    list.write(out);
                }
                None => out.push(0),
            }
        }
    }

    /// Checks every list's signatures again, and that each list belongs to its entry.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DeviceError> {
        let version = reader.u8()?;
        if version != DEVICE_DIRECTORY_VERSION {
            return Err(DecodeError::UnknownVersion(version).into());
        }
        let count = reader.u32()? as usize;
        if count > MAX_DIRECTORY_USERS {
            return Err(DecodeError::TooLarge.into());
        }
        let mut users = BTreeMap::new();
        let mut last: Option<UserId> = None;
        for _ in 0..count {
            let user = UserId::read(reader)?;
            if last.as_ref().is_some_and(|l| *l >= user) {
                return Err(DecodeError::NonCanonical.into());
            }
            let account = AccountIdentityKey::read(reader)?;
            let list = if reader.flag()? {
                let list = DeviceList::read(reader)?;
                if *list.user_id() != user || *list.account() != account {
                    return Err(DecodeError::InvalidField("device list of another entry").into());
                }
                Some(list)
            } else {
                None
            };
            last = Some(user.clone());
            users.insert(user, UserEntry { account, list });
        }
        Ok(Self { users })
    }
}
