//! The core's session API over the encrypted store: a conversation survives closing and
//! reopening both devices' stores, first messages consume their prekeys in one transaction,
//! and a last-resort key's accepted handshakes are remembered across restarts.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

mod common;

use common::Dir;
use e2ee_client::store::{DeviceStore, StoreKey};
use e2ee_core::{
    DecryptError, DeviceAddress, Error, IdentityKeyPair, IdentityStore, KemPreKey, KemPreKeyKind,
    OneTimePreKey, PreKeyBundle, PreKeyStore, SessionCipher, SessionStore, SignedPreKey,
    device::{AccountIdentityKeyPair, DeviceBinding},
};
use rand_core::OsRng;

struct Party {
    address: DeviceAddress,
    path: PathBuf,
    key: StoreKey,
    store: DeviceStore,
}

impl Party {
    fn create(dir: &Dir, user: &str, key_byte: u8) -> (Self, IdentityKeyPair) {
        let address = DeviceAddress::new(user, 1).unwrap();
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let account = AccountIdentityKeyPair::generate(&mut OsRng);
        let binding = DeviceBinding::sign(&identity, address.clone(), account.public());
        let path = dir.file(&format!("{user}.db"));
        let key = StoreKey::from_bytes([key_byte; 32]);
        let store = DeviceStore::create(&path, &key, &identity, &binding).unwrap();
        (
            Self {
                address,
                path,
                key,
                store,
            },
            identity,
        )
    }

    /// Opens the store again and drops the old handle, as after a restart: every value is
    /// read back from the file.
    fn restart(&mut self) {
        self.store = DeviceStore::open(&self.path, &self.key).unwrap();
    }
}

/// Bob's bundle; his store gets the secrets. `one_time` adds a one-time X25519 prekey and
/// makes the KEM prekey one-time; without it the KEM prekey is last-resort.
fn bundle(bob: &mut Party, identity: &IdentityKeyPair, one_time: bool) -> PreKeyBundle {
    let spk = SignedPreKey::generate(&mut OsRng, identity, 1, 1_700_000_000);
    bob.store.add_signed_prekey(&spk).unwrap();
    let kind = if one_time {
        KemPreKeyKind::OneTime
    } else {
        KemPreKeyKind::LastResort
    };
    let kem = KemPreKey::generate(&mut OsRng, identity, 9, kind, 1_700_000_000);
    bob.store.add_kem_prekey(&kem).unwrap();
    let otk = one_time.then(|| {
        let otk = OneTimePreKey::generate_batch(&mut OsRng, 7, 1).remove(0);
        bob.store
            .add_one_time_prekeys(std::slice::from_ref(&otk))
            .unwrap();
        otk.public()
    });
    PreKeyBundle {
        identity: *identity.public(),
        binding: bob.store.local_binding().unwrap(),
        signed_prekey: spk.public().clone(),
        one_time_prekey: otk,
        kem_prekey: Some(kem.public().clone()),
    }
}

#[test]
fn a_conversation_survives_restarting_both_devices() {
    let dir = Dir::new("conversation");
    let (mut alice, _) = Party::create(&dir, "alice", 1);
    let (mut bob, bob_identity) = Party::create(&dir, "bob", 2);
    let bundle = bundle(&mut bob, &bob_identity, true);
    let cipher = SessionCipher::default();
    cipher
        .process_bundle(&mut alice.store, &mut OsRng, &bob.address, &bundle)
        .unwrap();
    let first = cipher
        .encrypt(&mut alice.store, &mut OsRng, &bob.address, b"hello bob")
        .unwrap();
    alice.restart();
    bob.restart();
    assert_eq!(
        cipher
            .decrypt(&mut bob.store, &alice.address, &first)
            .unwrap(),
        b"hello bob"
    );
    // The first message's one-time prekeys went in the same transaction as the session.
    assert!(bob.store.one_time_prekey(7).unwrap().is_none());
    assert!(bob.store.kem_prekey(9).unwrap().is_none());
    assert!(
        bob.store
            .trusted_identity(&alice.address)
            .unwrap()
            .is_some()
    );

    for round in 0..5u8 {
        bob.restart();
        let reply = cipher
            .encrypt(&mut bob.store, &mut OsRng, &alice.address, &[round])
            .unwrap();
        alice.restart();
        assert_eq!(
            cipher
                .decrypt(&mut alice.store, &bob.address, &reply)
                .unwrap(),
            [round]
        );
        let next = cipher
            .encrypt(&mut alice.store, &mut OsRng, &bob.address, &[round, round])
            .unwrap();
        bob.restart();
        assert_eq!(
            cipher
                .decrypt(&mut bob.store, &alice.address, &next)
                .unwrap(),
            [round, round]
        );
        // Delivered again after a restart: refused, the session unchanged.
        bob.restart();
        assert!(matches!(
            cipher.decrypt(&mut bob.store, &alice.address, &next),
            Err(Error::Decrypt(DecryptError::Duplicate { .. }))
        ));
    }
    assert!(alice.store.load_session(&bob.address).unwrap().is_some());
}

#[test]
fn a_last_resort_keys_accepted_handshakes_outlive_a_restart() {
    let dir = Dir::new("last-resort");
    let (mut alice, _) = Party::create(&dir, "alice", 1);
    let (mut bob, bob_identity) = Party::create(&dir, "bob", 2);
    let bundle = bundle(&mut bob, &bob_identity, false);
    let cipher = SessionCipher::default();
    cipher
        .process_bundle(&mut alice.store, &mut OsRng, &bob.address, &bundle)
        .unwrap();
    let first = cipher
        .encrypt(
            &mut alice.store,
            &mut OsRng,
            &bob.address,
            b"via last resort",
        )
        .unwrap();
    assert_eq!(
        cipher
            .decrypt(&mut bob.store, &alice.address, &first)
            .unwrap(),
        b"via last resort"
    );
    // The last-resort key stays; the handshake is recorded with it.
    bob.restart();
    assert!(bob.store.kem_prekey(9).unwrap().is_some());
    // Once the session is gone, the same first message is a replay, even after a restart.
    bob.store
        .store_session(&alice.address, &e2ee_core::SessionRecord::default())
        .unwrap();
    bob.restart();
    assert!(
        cipher
            .decrypt(&mut bob.store, &alice.address, &first)
            .is_err()
    );
    // Retiring the key deletes its record with it.
    bob.store.remove_kem_prekey(9).unwrap();
    assert!(bob.store.kem_prekey(9).unwrap().is_none());
}
