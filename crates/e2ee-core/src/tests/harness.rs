//! Two (or more) in-memory devices, built from a seeded RNG so failures reproduce.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::{
    DeviceAddress, IdentityStore, InMemoryStore, KemPreKey, KemPreKeyKind, OneTimePreKey,
    PreKeyBundle, SessionCipher, SessionConfig, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding},
    identity::IdentityKeyPair,
};

/// A store for device `address` of a fresh account (drawn from `rng`), with its binding.
pub(crate) fn store_for(
    rng: &mut ChaCha20Rng,
    identity: &IdentityKeyPair,
    address: &DeviceAddress,
) -> InMemoryStore {
    let account = AccountIdentityKeyPair::generate(rng);
    let binding = DeviceBinding::sign(identity, address.clone(), account.public());
    InMemoryStore::new(identity.clone(), binding)
}

pub(crate) struct Device {
    pub(crate) address: DeviceAddress,
    pub(crate) store: InMemoryStore,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) cipher: SessionCipher,
    pub(crate) next_prekey_id: u32,
}

impl Device {
    pub(crate) fn new(name: &str, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let address = DeviceAddress::new(name, 1).unwrap();
        let mut store = store_for(&mut rng, &identity, &address);
        store.add_signed_prekey(SignedPreKey::generate(
            &mut rng,
            &identity,
            1,
            1_700_000_000,
        ));
        store.add_kem_prekey(KemPreKey::generate(
            &mut rng,
            &identity,
            1000,
            KemPreKeyKind::LastResort,
            1_700_000_000,
        ));
        Self {
            address,
            store,
            rng,
            cipher: SessionCipher::new(SessionConfig::default()),
            next_prekey_id: 1,
        }
    }

    /// A bundle as a key server would serve it: fresh one-time keys of both kinds.
    pub(crate) fn bundle(&mut self) -> PreKeyBundle {
        let identity = self.store.identity_key_pair().unwrap();
        let id = self.next_prekey_id;
        self.next_prekey_id += 1;
        let otk = OneTimePreKey::generate_batch(&mut self.rng, id, 1).remove(0);
        let kem = KemPreKey::generate(
            &mut self.rng,
            &identity,
            id,
            KemPreKeyKind::OneTime,
            1_700_000_000,
        );
        let bundle = PreKeyBundle {
            identity: *identity.public(),
            binding: self.store.local_binding().unwrap(),
            signed_prekey: self.store.signed_prekey_public(1),
            one_time_prekey: Some(otk.public()),
            kem_prekey: Some(kem.public().clone()),
        };
        self.store.add_one_time_prekeys([otk]);
        self.store.add_kem_prekey(kem);
        bundle
    }

    /// A bundle with only the signed prekey and the last-resort KEM key.
    pub(crate) fn last_resort_bundle(&mut self) -> PreKeyBundle {
        use crate::PreKeyStore;
        let identity = self.store.identity_key_pair().unwrap();
        PreKeyBundle {
            identity: *identity.public(),
            binding: self.store.local_binding().unwrap(),
            signed_prekey: self.store.signed_prekey_public(1),
            one_time_prekey: None,
            kem_prekey: Some(
                self.store
                    .kem_prekey(1000)
                    .unwrap()
                    .unwrap()
                    .public()
                    .clone(),
            ),
        }
    }

    pub(crate) fn start_session(&mut self, peer: &mut Device) {
        let bundle = peer.bundle();
        let address = peer.address.clone();
        self.cipher
            .process_bundle(&mut self.store, &mut self.rng, &address, &bundle)
            .unwrap();
    }

    pub(crate) fn encrypt(&mut self, to: &DeviceAddress, plaintext: &[u8]) -> Vec<u8> {
        self.cipher
            .encrypt(&mut self.store, &mut self.rng, to, plaintext)
            .unwrap()
    }

    pub(crate) fn decrypt(
        &mut self,
        from: &DeviceAddress,
        bytes: &[u8],
    ) -> Result<Vec<u8>, crate::Error> {
        self.cipher.decrypt(&mut self.store, from, bytes)
    }
}

impl InMemoryStore {
    pub(crate) fn signed_prekey_public(&self, id: u32) -> crate::SignedPreKeyPublic {
        use crate::PreKeyStore;
        self.signed_prekey(id).unwrap().unwrap().public().clone()
    }
}

/// Alice and Bob with an established session (Bob has answered once).
pub(crate) fn established(seed: u64) -> (Device, Device) {
    let mut alice = Device::new("alice", seed);
    let mut bob = Device::new("bob", seed + 1);
    alice.start_session(&mut bob);
    let first = alice.encrypt(&bob.address.clone(), b"hi bob");
    assert_eq!(
        bob.decrypt(&alice.address.clone(), &first).unwrap(),
        b"hi bob"
    );
    let reply = bob.encrypt(&alice.address.clone(), b"hi alice");
    assert_eq!(
        alice.decrypt(&bob.address.clone(), &reply).unwrap(),
        b"hi alice"
    );
    (alice, bob)
}
