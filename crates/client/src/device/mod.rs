//! [`Device`]: the crypto side of the SDK without networking, for apps that bring their own
//! transport. Bytes in, bytes out: what to register, what prekeys to upload, which bundles
//! to fetch, what ciphertexts to send, and the plaintexts of what arrived. Every state change
//! is in the device's encrypted store before a call returns.

mod chat;
mod conversation;
mod error;
mod group_wire;
mod groups;
mod lease;
mod link;
#[cfg(test)]
mod link_vectors;
mod log;
mod messaging;
mod outbox;
mod welcome_parts;

use std::path::Path;

use e2ee_core::{
    Codec, DeviceAddress, IdentityKeyPair, KemPreKey, KemPreKeyKind, OneTimePreKey, PreKeyBundle,
    SessionCipher, SignedPreKey, UserId,
    device::{
        AccountIdentityKey, AccountIdentityKeyPair, DeviceBinding, DeviceCertificate,
        DeviceDirectory, DeviceEntry, DeviceList, FanoutPlan,
    },
};
use rand_core::OsRng;

pub use chat::{ChatMessage, MAX_MESSAGE_BODY_LEN, MAX_READ_SYNC_IDS, ReadSync};
pub use conversation::ConversationId;
pub(crate) use conversation::ConversationKey;
pub use error::Error;
pub(crate) use group_wire::{GroupChat, GroupEnvelope};
pub use groups::{
    GroupEdit, GroupInfo, GroupMemberInfo, GroupReceived, MAX_SYNC_ANSWER, SentGroupMessage,
};
pub use lease::{LEASE_TTL, Lease};
pub(crate) use link::LinkSecret;
pub use link::{
    LinkAcceptance, LinkContact, LinkOffer, LinkWelcome, MAX_LINK_CONTACTS, MAX_LINK_FIELD_LEN,
};
pub use log::{
    Conversation, LOG_PAGE_LEN, LoggedMessage, MAX_PAGE_MESSAGES, MessagePage, MessageStatus,
    RecipientState,
};
pub use messaging::{MAX_DUE_RECEIPTS, Received, SentMessage};
pub use outbox::{MAX_OUTBOX_CIPHERTEXT, MAX_OUTBOX_RECIPIENTS, OutboxEntry};
pub(crate) use welcome_parts::WelcomePart;
pub use welcome_parts::{MAX_WELCOME_PARTS, WELCOME_PART_LEN};

use crate::store::{DeviceStore, Space, StoreError, StoreKey};

/// Lookups of the device's own state in [`Space::IDENTITY`] and [`Space::DIRECTORY`].
const ACCOUNT: &[u8] = b"account";
const ADDRESS: &[u8] = b"address";
const DIRECTORY: &[u8] = b"directory";
/// This device's certificate from its account (it signs our group changes).
const CERTIFICATE: &[u8] = b"certificate";
/// Most one-time prekeys of each kind one [`Device::generate_prekeys`] call makes: the key
/// server takes at most 100 keys of a kind per upload, and the KEM keys come with the new
/// last-resort key.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 99;

/// What the key server's `POST /v1/accounts` needs to register this device's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The user id.
    pub user_id: String,
    /// The account identity key (32 bytes).
    pub account_key: Vec<u8>,
    /// The certificate of this device (`DeviceCertificate`).
    pub device_certificate: Vec<u8>,
    /// The first device list, naming this device (for `PUT /v1/device-list`).
    pub device_list: Vec<u8>,
}

impl Registration {
    /// The registration as kept in the store until the key server has it.
    pub(crate) fn to_stored(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [
            self.user_id.as_bytes(),
            &self.account_key,
            &self.device_certificate,
            &self.device_list,
        ] {
            (field.len() as u32).write(&mut out);
            out.extend_from_slice(field);
        }
        out
    }

    pub(crate) fn from_stored(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |_| StoreError::Corrupt("registration");
        let mut reader = e2ee_encoding::Reader::new(bytes);
        let mut fields = Vec::new();
        for _ in 0..4 {
            let len = reader.u32().map_err(corrupt)? as usize;
            fields.push(reader.take(len).map_err(corrupt)?.to_vec());
        }
        reader.finish().map_err(corrupt)?;
        let device_list = fields.pop().unwrap_or_default();
        let device_certificate = fields.pop().unwrap_or_default();
        let account_key = fields.pop().unwrap_or_default();
        let user_id = String::from_utf8(fields.pop().unwrap_or_default())
            .map_err(|_| StoreError::Corrupt("registration"))?;
        Ok(Self {
            user_id,
            account_key,
            device_certificate,
            device_list,
        })
    }
}

/// Public prekeys to upload (`POST /v1/keys`); their secrets are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyUpload {
    /// A new signed prekey (`SignedPreKeyPublic`).
    pub signed_prekey: Vec<u8>,
    /// One-time X25519 prekeys (`OneTimePreKeyPublic` each).
    pub one_time_prekeys: Vec<Vec<u8>>,
    /// One-time KEM prekeys and one last-resort KEM prekey (`KemPreKeyPublic` each).
    pub kem_prekeys: Vec<Vec<u8>>,
}

/// The safety number of two users: compare `displayable` aloud, or scan `scannable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    /// 60 digits (12 groups of 5): the same on both users' devices.
    pub displayable: String,
    /// The bytes of this device's QR code (our account first; the other side's differs in
    /// order, as in Signal).
    pub scannable: Vec<u8>,
}

/// Ciphertexts of one message for the transport, and what is missing to reach every device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outgoing {
    /// One pairwise ciphertext per device that has a session: (device, ciphertext).
    pub envelopes: Vec<(DeviceAddress, Vec<u8>)>,
    /// Listed devices without a usable session: fetch their bundles, pass them to
    /// [`Device::add_bundle`] and encrypt again for them.
    pub needs_bundle: Vec<DeviceAddress>,
}

/// One device of a user: its identity, sessions, prekeys and verified directory of the users
/// it talks to, in its encrypted store.
pub struct Device {
    store: DeviceStore,
    address: DeviceAddress,
    directory: DeviceDirectory,
    cipher: SessionCipher,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// This device's clock, Unix seconds (the timestamps it signs).
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This device's clock, Unix milliseconds (message times, consents, the writer lease).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn load_directory(items: &impl crate::store::Items) -> Result<DeviceDirectory, StoreError> {
    let bytes = items
        .get(Space::DIRECTORY, DIRECTORY)?
        .ok_or(StoreError::Corrupt("device directory missing"))?;
    DeviceDirectory::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("device directory"))
}

fn user_id(user: &str) -> Result<UserId, Error> {
    UserId::new(user).map_err(|_| Error::InvalidUserId)
}

impl Device {
    /// Creates the first device of a new account at `path`: a new account key (held by this
    /// device), a device identity, its certificate and the first device list.
    pub fn create_primary(
        path: &Path,
        key: &StoreKey,
        user: &str,
        device_id: u32,
    ) -> Result<(Self, Registration), Error> {
        let address = DeviceAddress {
            user: user_id(user)?,
            device: device_id,
        };
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let binding = DeviceBinding::sign(&identity, address.clone(), account.public());
        let now = now_secs();
        let certificate = DeviceCertificate::sign(&account, identity.public(), &binding, now)
            .map_err(|_| Error::InvalidSignature { what: "binding" })?;
        let list = DeviceList::sign(
            &account,
            &address.user,
            1,
            now,
            vec![DeviceEntry::new(*identity.public(), &binding)],
        )?;
        let mut directory = DeviceDirectory::new();
        directory.trust_account(&address.user, account.public())?;
        directory.update_device_list(&list)?;

        let mut store = DeviceStore::create(path, key, &identity, &binding)?;
        store.vault().transaction(|tx| -> Result<(), StoreError> {
            tx.put(Space::IDENTITY, ACCOUNT, account.secret_bytes().as_slice())?;
            tx.put(Space::IDENTITY, ADDRESS, &address.to_bytes())?;
            tx.put(Space::IDENTITY, CERTIFICATE, &certificate.to_bytes())?;
            tx.put(Space::DIRECTORY, DIRECTORY, &directory.to_bytes())
        })?;
        let registration = Registration {
            user_id: address.user.to_string(),
            account_key: account.public().to_bytes(),
            device_certificate: certificate.to_bytes(),
            device_list: list.to_bytes(),
        };
        Ok((
            Self {
                store,
                address,
                directory,
                cipher: SessionCipher::default(),
            },
            registration,
        ))
    }

    /// Opens the device whose store is at `path`.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, Error> {
        let mut store = DeviceStore::open(path, key)?;
        let vault = store.vault();
        let address = vault
            .get(Space::IDENTITY, ADDRESS)?
            .ok_or(StoreError::Corrupt("device address missing"))?;
        let address = DeviceAddress::from_bytes(&address)
            .map_err(|_| StoreError::Corrupt("device address"))?;
        let directory = load_directory(vault)?;
        Ok(Self {
            store,
            address,
            directory,
            cipher: SessionCipher::default(),
        })
    }

    /// This device's address.
    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    fn identity(&self) -> Result<IdentityKeyPair, Error> {
        Ok(e2ee_core::IdentityStore::identity_key_pair(&self.store)
            .map_err(|e| StoreError::Backend(e.0))?)
    }

    /// Makes a new signed prekey, `count` one-time X25519 prekeys, `count` one-time KEM
    /// prekeys (at most [`MAX_PREKEYS_PER_UPLOAD`] each) and a new last-resort KEM prekey;
    /// stores their secrets in one transaction and returns the public parts to upload.
    pub fn generate_prekeys(&mut self, count: usize) -> Result<PreKeyUpload, Error> {
        let count = count.min(MAX_PREKEYS_PER_UPLOAD);
        let identity = self.identity()?;
        let now = now_secs();
        let first = self.store.next_prekey_id()?;
        // Ids: one signed prekey, `count` one-time, `count` KEM, one last-resort KEM.
        let span = u32::try_from(2 * count + 2).unwrap_or(u32::MAX);
        let signed = SignedPreKey::generate(&mut OsRng, &identity, first, now);
        let one_time = OneTimePreKey::generate_batch(&mut OsRng, first.wrapping_add(1), count);
        let kem_first = first.wrapping_add(1).wrapping_add(count as u32);
        let kems: Vec<KemPreKey> = (0..count as u32)
            .map(|i| {
                KemPreKey::generate(
                    &mut OsRng,
                    &identity,
                    kem_first.wrapping_add(i),
                    KemPreKeyKind::OneTime,
                    now,
                )
            })
            .chain([KemPreKey::generate(
                &mut OsRng,
                &identity,
                kem_first.wrapping_add(count as u32),
                KemPreKeyKind::LastResort,
                now,
            )])
            .collect();
        self.store.add_prekeys(
            Some(&signed),
            &one_time,
            &kems,
            Some(first.wrapping_add(span)),
        )?;
        Ok(PreKeyUpload {
            signed_prekey: signed.public().to_bytes(),
            one_time_prekeys: one_time.iter().map(|k| k.public().to_bytes()).collect(),
            kem_prekeys: kems.iter().map(|k| k.public().to_bytes()).collect(),
        })
    }

    /// Trusts `account_key` for `user` on first use and verifies their device list under it;
    /// the newest verified list decides which of their devices this device talks to.
    /// Returns the devices the list added and removed against the one held before. Another
    /// key for a known user is [`Error::AccountKeyChanged`]: show the new
    /// [`Device::safety_number`] and call [`Device::accept_account_change`] once verified.
    pub fn learn_user(
        &mut self,
        user: &str,
        account_key: &[u8],
        device_list: &[u8],
    ) -> Result<(Vec<DeviceAddress>, Vec<DeviceAddress>), Error> {
        self.update_user(user, account_key, device_list, false)
    }

    /// Replaces the trusted account key of `user` (after the user compared the new safety
    /// number) and verifies their device list under it. Sessions with devices whose identity
    /// the new list does not name are no longer used: [`Device::send_message`] asks for their
    /// bundles.
    pub fn accept_account_change(
        &mut self,
        user: &str,
        account_key: &[u8],
        device_list: &[u8],
    ) -> Result<(Vec<DeviceAddress>, Vec<DeviceAddress>), Error> {
        self.update_user(user, account_key, device_list, true)
    }

    fn update_user(
        &mut self,
        user: &str,
        account_key: &[u8],
        device_list: &[u8],
        replace_account: bool,
    ) -> Result<(Vec<DeviceAddress>, Vec<DeviceAddress>), Error> {
        let user = user_id(user)?;
        let account =
            AccountIdentityKey::from_bytes(account_key).map_err(|_| Error::InvalidInput {
                what: "account key",
            })?;
        let list = DeviceList::from_bytes(device_list).map_err(|_| Error::InvalidInput {
            what: "device list",
        })?;
        if *list.user_id() != user {
            return Err(Error::InvalidInput {
                what: "device list of another user",
            });
        }
        // Read, changed and written in one transaction: another process on this store (a
        // notification extension) may have changed the directory since this one loaded it.
        let (before, after, directory) = self.store.vault().transaction(|tx| {
            let mut directory = load_directory(tx)?;
            let before = directory.devices(&user).unwrap_or_default();
            if replace_account {
                directory.accept_account_change(&user, account)?;
            } else {
                directory.trust_account(&user, account)?;
            }
            directory.update_device_list(&list)?;
            tx.put(Space::DIRECTORY, DIRECTORY, &directory.to_bytes())?;
            let after = directory.devices(&user)?;
            Ok::<_, Error>((before, after, directory))
        })?;
        self.directory = directory;
        let added = after
            .iter()
            .filter(|d| !before.contains(d))
            .cloned()
            .collect();
        let removed = before
            .iter()
            .filter(|d| !after.contains(d))
            .cloned()
            .collect();
        Ok((added, removed))
    }

    /// The device ids of `user`'s verified device list (ours too).
    pub fn devices(&self, user: &str) -> Result<Vec<u32>, Error> {
        let user = user_id(user)?;
        Ok(self
            .directory
            .devices(&user)?
            .iter()
            .map(|d| d.device)
            .collect())
    }

    /// The safety number between our user and `user` (one per pair of users, whatever
    /// their devices; it changes only when an account key does).
    pub fn safety_number(&self, user: &str) -> Result<SafetyNumber, Error> {
        let theirs = user_id(user)?;
        let ours =
            self.directory
                .account(self.address.user.as_str())
                .ok_or(StoreError::Corrupt(
                    "own account missing from the directory",
                ))?;
        let number = self
            .directory
            .safety_number(&self.address.user, ours, &theirs)?;
        Ok(SafetyNumber {
            displayable: number.displayable().to_owned(),
            scannable: number.scannable().to_vec(),
        })
    }

    /// Starts a session with `device` from its bundle (as the key server serves it), if the
    /// bundle's identity is the one `device`'s verified list names.
    pub fn add_bundle(&mut self, device: &DeviceAddress, bundle: &[u8]) -> Result<(), Error> {
        let bundle =
            PreKeyBundle::from_bytes(bundle).map_err(|_| Error::InvalidInput { what: "bundle" })?;
        self.directory.process_bundle(
            &self.cipher,
            &mut self.store,
            &mut OsRng,
            device,
            &bundle,
        )?;
        Ok(())
    }

    /// The devices a message to `users` goes to: theirs and our own other devices.
    fn plan(&self, users: &[&str]) -> Result<FanoutPlan, Error> {
        let users: Vec<UserId> = users.iter().map(|u| user_id(u)).collect::<Result<_, _>>()?;
        let refs: Vec<&UserId> = users.iter().collect();
        Ok(self.directory.plan(&self.store, &self.address, &refs)?)
    }

    /// Encrypts an encoded `Content` for every listed device of `users` and every other
    /// listed device of our own user, without the outbox (online-only content). Devices
    /// without a usable session are in [`Outgoing::needs_bundle`].
    fn encrypt(&mut self, users: &[&str], plaintext: &[u8]) -> Result<Outgoing, Error> {
        let mut plan = self.plan(users)?;
        let mut needs_bundle = std::mem::take(&mut plan.needs_session);
        needs_bundle.append(&mut plan.mismatched);
        let envelopes = self
            .directory
            .encrypt(&self.cipher, &mut self.store, &mut OsRng, &plan, plaintext)?
            .into_iter()
            .map(|e| (e.to, e.ciphertext))
            .collect();
        Ok(Outgoing {
            envelopes,
            needs_bundle,
        })
    }

    /// Reads the directory again from the store (another process may have changed it).
    pub fn reload(&mut self) -> Result<(), Error> {
        self.directory = load_directory(self.store.vault())?;
        Ok(())
    }

    /// The device's store, for the client's own items.
    pub(crate) fn vault(&mut self) -> &mut crate::store::Vault {
        self.store.vault()
    }

    /// Whether this device holds its account's key (it registered the account).
    pub fn holds_account_key(&mut self) -> Result<bool, Error> {
        Ok(self.store.vault().get(Space::IDENTITY, ACCOUNT)?.is_some())
    }
}
