//! The account's signed, versioned list of the user's devices.
//!
//! ```text
//! DeviceList = 0x01 || UserId || account key (32) || version u64 || timestamp u64
//!              || count u8 (0..=64) || count * (device_id u32 || IdentityKey (128) || binding sig (64))
//!              || account sig (64)
//!   device ids strictly ascending (one encoding per list)
//!   binding sig = each device's DeviceBinding signature for ((user, device_id), account key)
//!   account sig = Ed25519(account, "E2EE-v1 device list" || every byte before it)
//! ```
//!
//! Decoding checks every signature in it; [`DeviceList::verify`] then says whether the
//! account that signed it is the one the caller trusts. A newer list has a strictly greater
//! version, so a server cannot roll a client back to an older one.

use crate::{
    Codec, DeviceAddress, Reader, UserId,
    device::{
        AccountIdentityKey, AccountIdentityKeyPair, DeviceBinding, DeviceError,
        binding::verify_parts,
    },
    error::{DecodeError, KeyError},
    identity::{IDENTITY_KEY_LEN, IdentityDecodeError, IdentityKey},
};

/// Version byte of the list layout.
pub const DEVICE_LIST_VERSION: u8 = 0x01;
/// Most devices one device list may name (libsignal allows a few; WhatsApp 5 companions).
pub const MAX_DEVICES_PER_LIST: usize = 64;
/// Encoded length of one list entry.
pub const DEVICE_ENTRY_LEN: usize = 4 + IDENTITY_KEY_LEN + 64;
/// Longest encoded [`DeviceList`].
pub const MAX_DEVICE_LIST_LEN: usize =
    1 + UserId::MAX_LEN + 32 + 8 + 8 + 1 + MAX_DEVICES_PER_LIST * DEVICE_ENTRY_LEN + 64;

const DEVICE_LIST_CONTEXT: &[u8] = b"E2EE-v1 device list";

/// One device of a [`DeviceList`]: its id, identity key, and its own binding signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeviceEntry {
    device_id: u32,
    identity: IdentityKey,
    binding_signature: [u8; 64],
}

impl DeviceEntry {
    /// The entry for the device that made `binding` with `identity`.
    pub fn new(identity: IdentityKey, binding: &DeviceBinding) -> Self {
        Self {
            device_id: binding.address().device_id(),
            identity,
            binding_signature: *binding.signature(),
        }
    }

    /// The device id.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// Its identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }
}

/// The account's signed statement of which devices it has.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceList {
    user_id: UserId,
    account: AccountIdentityKey,
    version: u64,
    timestamp: u64,
    devices: Vec<DeviceEntry>,
    signature: [u8; 64],
}

impl DeviceList {
    /// Signs a device list. Entries are sorted by device id; duplicates, more than
    /// [`MAX_DEVICES_PER_LIST`] entries, or an entry whose binding is not for this user and
    /// account are refused.
    pub fn sign(
        account: &AccountIdentityKeyPair,
        user_id: &UserId,
        version: u64,
        timestamp: u64,
        mut devices: Vec<DeviceEntry>,
    ) -> Result<Self, DeviceError> {
        if devices.len() > MAX_DEVICES_PER_LIST {
            return Err(DeviceError::TooManyDevices);
        }
        devices.sort_by_key(|d| d.device_id);
        if let Some(pair) = devices
            .windows(2)
            .find(|w| w[0].device_id == w[1].device_id)
        {
            return Err(DeviceError::DuplicateDevice(pair[0].device_id));
        }
        let public = account.public();
        for entry in &devices {
            verify_entry(user_id, &public, entry)?;
        }
        let mut list = Self {
            user_id: user_id.clone(),
            account: public,
            version,
            timestamp,
            devices,
            signature: [0; 64],
        };
        list.signature = account.sign(&list.signed_message());
        Ok(list)
    }

    fn body(&self, out: &mut Vec<u8>) {
        out.push(DEVICE_LIST_VERSION);
        self.user_id.write(out);
        self.account.write(out);
        self.version.write(out);
        self.timestamp.write(out);
        // At most MAX_DEVICES_PER_LIST (64), enforced by both constructors.
        out.push(self.devices.len() as u8);
        for entry in &self.devices {
            entry.device_id.write(out);
            out.extend_from_slice(&entry.identity.to_bytes());
            out.extend_from_slice(&entry.binding_signature);
        }
    }

    fn signed_message(&self) -> Vec<u8> {
        let mut msg = DEVICE_LIST_CONTEXT.to_vec();
        self.body(&mut msg);
        msg
    }

    /// Whether `account` (the account key the caller trusts for this user) signed it.
    pub fn verify(&self, account: &AccountIdentityKey) -> Result<(), KeyError> {
        if self.account != *account {
            return Err(KeyError::InvalidSignature("device list"));
        }
        Ok(())
    }

    /// The user whose devices these are.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The account that signed it.
    pub fn account(&self) -> &AccountIdentityKey {
        &self.account
    }

    /// Monotonic version: a newer list has a strictly greater one.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Unix seconds at which the account signed it.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The devices, sorted by device id.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.devices
    }

    /// The listed identity of device `device_id`.
    pub fn identity_of(&self, device_id: u32) -> Option<&IdentityKey> {
        self.devices
            .binary_search_by_key(&device_id, |d| d.device_id)
            .ok()
            .map(|i| &self.devices[i].identity)
    }

    /// The binding of device `device_id` as the list carries it.
    pub fn binding_of(&self, device_id: u32) -> Option<DeviceBinding> {
        let entry = self
            .devices
            .binary_search_by_key(&device_id, |d| d.device_id)
            .ok()
            .map(|i| &self.devices[i])?;
        Some(DeviceBinding::from_parts(
            DeviceAddress {
                user: self.user_id.clone(),
                device: device_id,
            },
            self.account,
            entry.binding_signature,
        ))
    }
}

fn verify_entry(
    user_id: &UserId,
    account: &AccountIdentityKey,
    entry: &DeviceEntry,
) -> Result<(), KeyError> {
    let address = DeviceAddress {
        user: user_id.clone(),
        device: entry.device_id,
    };
    verify_parts(&entry.identity, &address, account, &entry.binding_signature)
}

impl Codec for DeviceList {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = MAX_DEVICE_LIST_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        self.body(out);
        out.extend_from_slice(&self.signature);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        let version_byte = reader.u8()?;
        if version_byte != DEVICE_LIST_VERSION {
            return Err(DecodeError::UnknownVersion(version_byte).into());
        }
        let user_id = UserId::read(reader)?;
        let account = AccountIdentityKey::read(reader)?;
        let version = reader.u64()?;
        let timestamp = reader.u64()?;
        let count = usize::from(reader.u8()?);
        if count > MAX_DEVICES_PER_LIST {
            return Err(DecodeError::TooLarge.into());
        }
        let mut devices: Vec<DeviceEntry> = Vec::new();
        for _ in 0..count {
            let device_id = reader.u32()?;
            if devices
                .last()
                .is_some_and(|last| last.device_id >= device_id)
            {
                return Err(DecodeError::NonCanonical.into());
            }
            let entry = DeviceEntry {
                device_id,
                identity: IdentityKey::read(reader)?,
                binding_signature: reader.array()?,
            };
            verify_entry(&user_id, &account, &entry)?;
            devices.push(entry);
        }
        let list = Self {
            user_id,
            account,
            version,
            timestamp,
            devices,
            signature: reader.array()?,
        };
        account.verify(&list.signed_message(), &list.signature, "device list")?;
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;
    use rand_core::OsRng;

    use super::*;
    use crate::identity::IdentityKeyPair;

    struct Account {
        pair: AccountIdentityKeyPair,
        user: UserId,
    }

    impl Account {
        fn new(user: &str) -> Self {
            Self {
                pair: AccountIdentityKeyPair::generate(&mut OsRng),
                user: UserId::new(user).unwrap(),
            }
        }

        fn entry(&self, device_id: u32) -> DeviceEntry {
            let device = IdentityKeyPair::generate(&mut OsRng);
            let address = DeviceAddress {
                user: self.user.clone(),
                device: device_id,
            };
            DeviceEntry::new(
                *device.public(),
                &DeviceBinding::sign(&device, address, self.pair.public()),
            )
        }

        fn list(&self, entries: Vec<DeviceEntry>) -> Result<DeviceList, DeviceError> {
            DeviceList::sign(&self.pair, &self.user, 1, 9, entries)
        }
    }

    #[test]
    fn device_list_round_trips_sorted_and_verifies() {
        let alice = Account::new("alice");
        let list = alice
            .list(vec![alice.entry(7), alice.entry(2), alice.entry(5)])
            .unwrap();
        let ids: Vec<u32> = list.devices().iter().map(DeviceEntry::device_id).collect();
        assert_eq!(ids, [2, 5, 7]);
        list.verify(&alice.pair.public()).unwrap();
        check_codec(&list);
        check_codec(&alice.list(Vec::new()).unwrap());
        assert_eq!(list.identity_of(5), Some(list.devices()[1].identity()));
        assert_eq!(list.identity_of(6), None);
        let binding = list.binding_of(7).unwrap();
        binding.verify(list.devices()[2].identity()).unwrap();
    }

    #[test]
    fn every_flipped_bit_and_another_account_fail() {
        let alice = Account::new("alice");
        let list = alice.list(vec![alice.entry(1)]).unwrap();
        assert_eq!(
            list.verify(&Account::new("alice").pair.public()),
            Err(KeyError::InvalidSignature("device list"))
        );
        let bytes = list.to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                DeviceList::from_bytes(&bad).is_err(),
                "flip in byte {i} accepted"
            );
        }
    }

    /// F3: an account cannot list a device key that did not bind itself to that account
    /// and user (Mallory listing Alice's device as `mallory.1`).
    #[test]
    fn an_account_cannot_list_another_users_device() {
        let alice = Account::new("alice");
        let mallory = Account::new("mallory");
        let stolen = alice.entry(1);
        assert_eq!(
            mallory.list(vec![stolen]),
            Err(DeviceError::Key(KeyError::InvalidSignature(
                "device binding"
            )))
        );
    }

    #[test]
    fn bounds_and_canonical_order() {
        let alice = Account::new(&"x".repeat(crate::MAX_USER_ID_LEN));
        let full: Vec<DeviceEntry> = (0..MAX_DEVICES_PER_LIST as u32)
            .map(|i| alice.entry(i))
            .collect();
        let list = alice.list(full.clone()).unwrap();
        assert_eq!(list.to_bytes().len(), MAX_DEVICE_LIST_LEN);
        let mut over = full.clone();
        over.push(alice.entry(99));
        assert_eq!(alice.list(over), Err(DeviceError::TooManyDevices));
        let dup = vec![alice.entry(1), alice.entry(1)];
        assert_eq!(alice.list(dup), Err(DeviceError::DuplicateDevice(1)));

        let small = Account::new("x");
        let two = small.list(vec![small.entry(0), small.entry(1)]).unwrap();
        let count_at = 1 + 2 + 32 + 16;
        let mut bytes = two.to_bytes();
        bytes[count_at] = MAX_DEVICES_PER_LIST as u8 + 1;
        assert_eq!(
            DeviceList::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        );
        let mut bytes = two.to_bytes();
        let second = count_at + 1 + DEVICE_ENTRY_LEN;
        bytes[second..second + 4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            DeviceList::from_bytes(&bytes),
            Err(IdentityDecodeError::Decode(DecodeError::NonCanonical))
        );
        let mut oversized = list.to_bytes();
        oversized.push(0);
        assert_eq!(
            DeviceList::from_bytes(&oversized),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        );
    }
}
