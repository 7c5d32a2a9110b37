//! Users with accounts and devices, as the multi-device and group tests need them: every
//! device has an identity, a binding to its account, a store and prekeys.

// Each test file uses a different subset.
#![allow(dead_code, clippy::unwrap_used)]

use e2ee_core::{
    DeviceAddress, IdentityKeyPair, IdentityStore, InMemoryStore, KemPreKey, KemPreKeyKind,
    PreKeyBundle, SessionCipher, SignedPreKey, UserId,
    device::{
        AccountIdentityKeyPair, DeviceBinding, DeviceDirectory, DeviceEntry, DeviceList,
        VerifiedDevice,
    },
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub(crate) const CREATED_AT: u64 = 1_700_000_000;

/// One device of a user.
pub(crate) struct Device {
    pub(crate) address: DeviceAddress,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) store: InMemoryStore,
    pub(crate) rng: ChaCha20Rng,
    next_prekey_id: u32,
}

impl Device {
    /// Device `device_id` of the account `account` belongs to.
    pub(crate) fn new(
        account: &AccountIdentityKeyPair,
        user: &str,
        device_id: u32,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let address = DeviceAddress::new(user, device_id).unwrap();
        let binding = DeviceBinding::sign(&identity, address.clone(), account.public());
        let mut store = InMemoryStore::new(identity.clone(), binding);
        store.add_signed_prekey(SignedPreKey::generate(&mut rng, &identity, 1, CREATED_AT));
        Self {
            address,
            identity,
            store,
            rng,
            next_prekey_id: 10,
        }
    }

    /// Its own binding.
    pub(crate) fn binding(&self) -> DeviceBinding {
        self.store.local_binding().unwrap()
    }

    /// Its entry in its user's device list.
    pub(crate) fn entry(&self) -> DeviceEntry {
        DeviceEntry::new(*self.identity.public(), &self.binding())
    }

    /// A bundle as a key server would serve it: a fresh one-time KEM prekey, no one-time
    /// X25519 prekey.
    pub(crate) fn bundle(&mut self) -> PreKeyBundle {
        let id = self.next_prekey_id;
        self.next_prekey_id += 1;
        let kem = KemPreKey::generate(
            &mut self.rng,
            &self.identity,
            id,
            KemPreKeyKind::OneTime,
            CREATED_AT,
        );
        let public = kem.public().clone();
        self.store.add_kem_prekey(kem);
        let signed = SignedPreKey::generate(&mut self.rng, &self.identity, id, CREATED_AT);
        let signed_public = signed.public().clone();
        self.store.add_signed_prekey(signed);
        PreKeyBundle {
            identity: *self.identity.public(),
            binding: self.binding(),
            signed_prekey: signed_public,
            one_time_prekey: None,
            kem_prekey: Some(public),
        }
    }
}

/// A user: an account and its devices.
pub(crate) struct User {
    pub(crate) id: UserId,
    pub(crate) account: AccountIdentityKeyPair,
    pub(crate) devices: Vec<Device>,
    seed: u64,
}

impl User {
    /// `name` with devices 1..=count.
    pub(crate) fn new(name: &str, count: u32, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let account = AccountIdentityKeyPair::generate(&mut rng);
        let devices = (1..=count)
            .map(|i| Device::new(&account, name, i, seed * 100 + u64::from(i)))
            .collect();
        Self {
            id: UserId::new(name).unwrap(),
            account,
            devices,
            seed,
        }
    }

    /// Adds device `device_id` (a new identity, also at an address used before).
    pub(crate) fn add_device(&mut self, device_id: u32, seed: u64) -> &mut Device {
        let device = Device::new(&self.account, self.id.as_str(), device_id, seed);
        self.devices.retain(|d| d.address.device_id() != device_id);
        self.devices.push(device);
        self.devices.last_mut().unwrap()
    }

    /// The device with this id.
    pub(crate) fn device(&mut self, device_id: u32) -> &mut Device {
        self.devices
            .iter_mut()
            .find(|d| d.address.device_id() == device_id)
            .unwrap()
    }

    /// The account's signed list of the current devices.
    pub(crate) fn list(&self, version: u64) -> DeviceList {
        DeviceList::sign(
            &self.account,
            &self.id,
            version,
            CREATED_AT + version,
            self.devices.iter().map(Device::entry).collect(),
        )
        .unwrap()
    }
}

/// A directory trusting each user's account and holding its version-1 list.
pub(crate) fn directory(users: &[&User]) -> DeviceDirectory {
    let mut dir = DeviceDirectory::new();
    for user in users {
        dir.trust_account(&user.id, user.account.public()).unwrap();
        dir.update_device_list(&user.list(1)).unwrap();
    }
    dir
}

/// Every listed device of `users`, as group members.
pub(crate) fn members(dir: &DeviceDirectory, users: &[&User]) -> Vec<VerifiedDevice> {
    let ids: Vec<&UserId> = users.iter().map(|u| &u.id).collect();
    dir.listed_devices(&ids).unwrap()
}

/// `from` starts a session with `to` through `dir` and sends `plaintext`; returns the wire
/// bytes of the first message.
pub(crate) fn first_message(
    dir: &DeviceDirectory,
    from: &mut Device,
    to: &mut Device,
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = SessionCipher::default();
    let bundle = to.bundle();
    dir.process_bundle(
        &cipher,
        &mut from.store,
        &mut from.rng,
        &to.address,
        &bundle,
    )
    .unwrap();
    cipher
        .encrypt(&mut from.store, &mut from.rng, &to.address, plaintext)
        .unwrap()
}
