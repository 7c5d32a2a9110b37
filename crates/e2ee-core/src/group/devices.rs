//! Multi-device: trusted account identities, their newest signed device lists, and the
//! fan-out plan of a pairwise message.
//!
//! A client encrypts only to devices in the newest device list it verified under the account
//! identity it trusts for that user. A list signed by another key, an older (or equal but
//! different) version, a device missing from the list, or a bundle whose identity differs
//! from the listed one is refused with a typed error, so a server that inserts a device
//! cannot make a client encrypt to it.
//!
//! Sending to a user = one pairwise ciphertext per listed device of the recipient plus one
//! per other listed device of the sender (so the sender's devices stay in sync).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::{CryptoRng, RngCore};

use super::GroupError;
use crate::{
    DeviceAddress,
    account::{AccountIdentityKey, DeviceCertificate, DeviceList},
    fingerprint::SafetyNumber,
    identity::IdentityKey,
    prekeys::PreKeyBundle,
    session_cipher::SessionCipher,
    store::ProtocolStore,
};

#[derive(Debug, Clone)]
struct UserEntry {
    account: AccountIdentityKey,
    list: Option<DeviceList>,
}

/// The account identities this device trusts (first use) and their newest verified device
/// lists.
#[derive(Debug, Clone, Default)]
pub struct DeviceDirectory {
    users: BTreeMap<String, UserEntry>,
}

/// The devices one message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanoutPlan {
    /// Listed devices without a session: fetch their bundles, pass them to
    /// [`DeviceDirectory::process_bundle`], then plan again.
    pub needs_session: Vec<DeviceAddress>,
    /// Listed devices with a session whose identity matches the list.
    pub ready: Vec<DeviceAddress>,
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
    /// one fails with [`GroupError::AccountIdentityChanged`] until
    /// [`Self::accept_account_change`].
    pub fn trust_account(
        &mut self,
        user_id: &str,
        account: AccountIdentityKey,
    ) -> Result<(), GroupError> {
        match self.users.get(user_id) {
            Some(entry) if entry.account == account => Ok(()),
            Some(_) => Err(GroupError::AccountIdentityChanged {
                user_id: user_id.to_owned(),
            }),
            None => {
                self.users.insert(
                    user_id.to_owned(),
                    UserEntry {
                        account,
                        list: None,
                    },
                );
                Ok(())
            }
        }
    }

    /// Replaces the trusted account identity (after the user verified the new safety number).
    /// The old device list is dropped: fetch and verify the new one.
    pub fn accept_account_change(&mut self, user_id: &str, account: AccountIdentityKey) {
        self.users.insert(
            user_id.to_owned(),
            UserEntry {
                account,
                list: None,
            },
        );
    }

    /// The trusted account identity of `user_id`.
    pub fn account(&self, user_id: &str) -> Option<&AccountIdentityKey> {
        self.users.get(user_id).map(|e| &e.account)
    }

    /// Verifies `list` under the trusted account identity of its user and keeps it if it is
    /// newer than the one held. The identical list again is accepted (a re-fetch).
    pub fn update_device_list(&mut self, list: &DeviceList) -> Result<(), GroupError> {
        let entry =
            self.users
                .get_mut(list.user_id())
                .ok_or_else(|| GroupError::UntrustedAccount {
                    user_id: list.user_id().to_owned(),
                })?;
        list.verify(&entry.account)?;
        if let Some(have) = &entry.list {
            if have == list {
                return Ok(());
            }
            if list.version() <= have.version() {
                return Err(GroupError::StaleDeviceList {
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
        our_user_id: &str,
        our_account: &AccountIdentityKey,
        their_user_id: &str,
    ) -> Result<SafetyNumber, GroupError> {
        let theirs = self
            .account(their_user_id)
            .ok_or_else(|| GroupError::UntrustedAccount {
                user_id: their_user_id.to_owned(),
            })?;
        Ok(SafetyNumber::new(
            our_user_id.as_bytes(),
            &our_account.to_bytes(),
            their_user_id.as_bytes(),
            &theirs.to_bytes(),
        ))
    }

    /// The newest verified device list of `user_id`.
    pub fn device_list(&self, user_id: &str) -> Option<&DeviceList> {
        self.users.get(user_id).and_then(|e| e.list.as_ref())
    }

    /// The listed devices of `user_id`.
    pub fn devices(&self, user_id: &str) -> Result<Vec<DeviceAddress>, GroupError> {
        let list = self
            .device_list(user_id)
            .ok_or_else(|| GroupError::NoDeviceList {
                user_id: user_id.to_owned(),
            })?;
        list.devices()
            .iter()
            .map(|d| DeviceAddress::new(user_id, d.device_id).map_err(GroupError::from))
            .collect()
    }

    /// The listed identity of `device`.
    pub fn device_identity(&self, device: &DeviceAddress) -> Option<IdentityKey> {
        self.device_list(device.user_id())?
            .devices()
            .iter()
            .find(|d| d.device_id == device.device_id())
            .map(|d| d.identity)
    }

    /// Fails unless `device` is listed with exactly `identity`.
    pub fn check_device(
        &self,
        device: &DeviceAddress,
        identity: &IdentityKey,
    ) -> Result<(), GroupError> {
        match self.device_identity(device) {
            Some(listed) if listed == *identity => Ok(()),
            _ => Err(GroupError::DeviceNotInList(device.clone())),
        }
    }

    /// Verifies a device certificate under the trusted account identity and checks that the
    /// device is in the newest list with the certified identity. Returns its address.
    pub fn verify_certificate(
        &self,
        cert: &DeviceCertificate,
    ) -> Result<DeviceAddress, GroupError> {
        let account = self
            .account(cert.user_id())
            .ok_or_else(|| GroupError::UntrustedAccount {
                user_id: cert.user_id().to_owned(),
            })?;
        cert.verify(account)?;
        let address = DeviceAddress::new(cert.user_id(), cert.device_id())?;
        self.check_device(&address, cert.identity())?;
        Ok(address)
    }

    /// Starts a session with `device` from `bundle` only if the bundle's identity is the one
    /// its user's verified list names.
    pub fn process_bundle(
        &self,
        cipher: &SessionCipher,
        store: &mut dyn ProtocolStore,
        rng: &mut (impl RngCore + CryptoRng),
        device: &DeviceAddress,
        bundle: &PreKeyBundle,
    ) -> Result<(), GroupError> {
        self.check_device(device, &bundle.identity)?;
        cipher.process_bundle(store, rng, device, bundle)?;
        Ok(())
    }

    /// The devices a message from `own` to `recipients` (user ids) goes to: every listed
    /// device of each recipient and every other listed device of our own user. A device with a
    /// session whose identity differs from its listed one fails with
    /// [`GroupError::DeviceNotInList`] (the list is authoritative; the session is stale).
    pub fn plan(
        &self,
        store: &dyn ProtocolStore,
        own: &DeviceAddress,
        recipients: &[&str],
    ) -> Result<FanoutPlan, GroupError> {
        let mut devices = BTreeSet::new();
        for user in recipients.iter().copied().chain([own.user_id()]) {
            devices.extend(self.devices(user)?);
        }
        devices.remove(own);
        let mut plan = FanoutPlan::default();
        for device in devices {
            match store.load_session(&device)? {
                Some(record) if record.has_current_session() => {
                    let listed = self.device_identity(&device);
                    if listed.is_none() || record.remote_identity() != listed {
                        return Err(GroupError::DeviceNotInList(device));
                    }
                    plan.ready.push(device);
                }
                _ => plan.needs_session.push(device),
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
    ) -> Result<Vec<Envelope>, GroupError> {
        if let Some(device) = plan.needs_session.first() {
            return Err(GroupError::Session(crate::error::Error::NoSession {
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
