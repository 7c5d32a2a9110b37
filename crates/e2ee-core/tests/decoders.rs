//! Every decoder over random bytes, mutated valid encodings and the fuzz seed corpora, on
//! stable Rust (the fuzz targets in fuzz/ need nightly). Each decoder must return a value or
//! a typed error, never panic, and re-encode any value it accepts to exactly its input.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use e2ee_core::{
    Codec, DeviceAddress, IdentityKey, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind,
    KemPreKeyPublic, OneTimePreKey, OneTimePreKeyPublic, PreKeyBundle, SessionCipher,
    SessionRecord, SessionStore, SignedPreKey, SignedPreKeyPublic, UserId,
    device::{
        AccountConsent, AccountIdentityKey, AccountIdentityKeyPair, ConsentAction, DeviceBinding,
        DeviceCertificate, DeviceDirectory, DeviceEntry, DeviceList,
    },
    message::{PreKeyMessage, RatchetMessage},
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Runs one input through the decoder named `target`, checking the canonical round trip.
fn decode(target: &str, data: &[u8]) {
    match target {
        "ratchet_message" => {
            if let Ok(m) = RatchetMessage::from_bytes(data) {
                assert_eq!(m.as_bytes(), data);
            }
        }
        "prekey_message" => {
            let _ = PreKeyMessage::from_bytes(data);
        }
        "session_record" => {
            if let Ok(r) = SessionRecord::from_bytes(data) {
                assert_eq!(&r.to_bytes()[..], data);
            }
        }
        "prekey_bundle" => {
            if let Ok(b) = PreKeyBundle::from_bytes(data) {
                assert_eq!(b.to_bytes(), data);
                let _ = b.verify();
            }
        }
        "identity_key" => {
            if let Ok(k) = IdentityKey::from_bytes(data) {
                assert_eq!(&k.to_bytes()[..], data);
            }
        }
        "prekey_public" => {
            let Some((&which, rest)) = data.split_first() else {
                return;
            };
            match which % 3 {
                0 => {
                    if let Ok(k) = SignedPreKeyPublic::from_bytes(rest) {
                        assert_eq!(k.to_bytes(), rest);
                    }
                }
                1 => {
                    if let Ok(k) = OneTimePreKeyPublic::from_bytes(rest) {
                        assert_eq!(&k.to_bytes()[..], rest);
                    }
                }
                _ => {
                    if let Ok(k) = KemPreKeyPublic::from_bytes(rest) {
                        assert_eq!(k.to_bytes(), rest);
                    }
                }
            }
        }
        "device" => {
            let Some((&which, rest)) = data.split_first() else {
                return;
            };
            match which % 4 {
                0 => {
                    if let Ok(k) = AccountIdentityKey::from_bytes(rest) {
                        assert_eq!(k.to_bytes(), rest);
                    }
                }
                1 => {
                    if let Ok(b) = DeviceBinding::from_bytes(rest) {
                        assert_eq!(b.to_bytes(), rest);
                    }
                }
                2 => {
                    if let Ok(c) = DeviceCertificate::from_bytes(rest) {
                        assert_eq!(c.to_bytes(), rest);
                    }
                }
                _ => {
                    if let Ok(l) = DeviceList::from_bytes(rest) {
                        assert_eq!(l.to_bytes(), rest);
                    }
                }
            }
        }
        "account_consent" => {
            if let Ok(c) = AccountConsent::from_bytes(data) {
                assert_eq!(c.to_bytes(), data);
            }
        }
        "device_directory" => {
            if let Ok(d) = DeviceDirectory::from_bytes(data) {
                assert_eq!(d.to_bytes(), data);
            }
        }
        other => panic!("unknown target {other}"),
    }
}

const TARGETS: [&str; 9] = [
    "ratchet_message",
    "prekey_message",
    "session_record",
    "prekey_bundle",
    "identity_key",
    "prekey_public",
    "device",
    "device_directory",
    "account_consent",
];

/// Valid encodings for each target, produced through the public API.
fn valid_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&mut rng, &bob_id, 1, 1_700_000_000);
    let otk = OneTimePreKey::generate_batch(&mut rng, 7, 1).remove(0);
    let kem = KemPreKey::generate(&mut rng, &bob_id, 9, KemPreKeyKind::OneTime, 1_700_000_000);
    let (a, b) = (
        DeviceAddress::new("alice", 1).unwrap(),
        DeviceAddress::new("bob", 1).unwrap(),
    );
    let account = AccountIdentityKeyPair::generate(&mut rng);
    let alice_account = AccountIdentityKeyPair::generate(&mut rng);
    let bob_binding = DeviceBinding::sign(&bob_id, b.clone(), account.public());
    let alice_binding = DeviceBinding::sign(&alice_id, a.clone(), alice_account.public());
    let bundle = PreKeyBundle {
        identity: *bob_id.public(),
        binding: bob_binding.clone(),
        signed_prekey: spk.public().clone(),
        one_time_prekey: Some(otk.public()),
        kem_prekey: Some(kem.public().clone()),
    };
    let mut alice = InMemoryStore::new(alice_id.clone(), alice_binding);
    let mut bob = InMemoryStore::new(bob_id.clone(), bob_binding.clone());
    bob.add_signed_prekey(spk.clone());
    bob.add_one_time_prekeys([otk.clone()]);
    bob.add_kem_prekey(kem.clone());
    let cipher = SessionCipher::default();
    cipher
        .process_bundle(&mut alice, &mut rng, &b, &bundle)
        .unwrap();
    let first = cipher.encrypt(&mut alice, &mut rng, &b, b"first").unwrap();
    cipher.decrypt(&mut bob, &a, &first).unwrap();
    let reply = cipher.encrypt(&mut bob, &mut rng, &a, b"reply").unwrap();
    cipher.decrypt(&mut alice, &b, &reply).unwrap();
    let record = alice.load_session(&b).unwrap().unwrap().to_bytes().to_vec();
    let certificate =
        DeviceCertificate::sign(&account, bob_id.public(), &bob_binding, 1_700_000_000).unwrap();
    let bob2 = IdentityKeyPair::generate(&mut rng);
    let bob2_binding = DeviceBinding::sign(
        &bob2,
        DeviceAddress::new("bob", 2).unwrap(),
        account.public(),
    );
    let entries = vec![
        DeviceEntry::new(*bob_id.public(), &bob_binding),
        DeviceEntry::new(*bob2.public(), &bob2_binding),
    ];
    let bob_user = UserId::new("bob").unwrap();
    let list = DeviceList::sign(&account, &bob_user, 3, 1_700_000_000, entries).unwrap();
    let mut directory = DeviceDirectory::new();
    directory
        .trust_account(&bob_user, account.public())
        .unwrap();
    directory.update_device_list(&list).unwrap();
    directory
        .trust_account(&UserId::new("alice").unwrap(), alice_account.public())
        .unwrap();
    let prefixed = |byte: u8, bytes: Vec<u8>| {
        let mut out = vec![byte];
        out.extend(bytes);
        out
    };
    vec![
        ("ratchet_message", reply),
        ("prekey_message", first),
        ("session_record", record),
        ("prekey_bundle", bundle.to_bytes()),
        ("identity_key", bob_id.public().to_bytes().to_vec()),
        ("prekey_public", prefixed(0, spk.public().to_bytes())),
        (
            "prekey_public",
            prefixed(1, otk.public().to_bytes().to_vec()),
        ),
        ("prekey_public", prefixed(2, kem.public().to_bytes())),
        ("device", prefixed(0, account.public().to_bytes())),
        ("device", prefixed(1, bob_binding.to_bytes())),
        ("device", prefixed(2, certificate.to_bytes())),
        ("device", prefixed(3, list.to_bytes())),
        ("device_directory", directory.to_bytes()),
        (
            "account_consent",
            AccountConsent::sign(
                &account,
                ConsentAction::Enrol,
                &certificate,
                1_700_000_000_000,
            )
            .to_bytes(),
        ),
        (
            "account_consent",
            AccountConsent::sign(&account, ConsentAction::Remove, &certificate, 1).to_bytes(),
        ),
    ]
}

#[test]
fn decoders_survive_random_bytes() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for target in TARGETS {
        for len in (0..300).chain([1_184, 1_261, 1_400, 1_700, 4_000]) {
            for _ in 0..8 {
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                // Half the time start with a plausible type/version byte to get past it.
                if len > 0 && rng.next_u32() % 2 == 0 {
                    data[0] = [0x11, 0x12, 0x01, 0x00, 0x02][rng.next_u32() as usize % 5];
                }
                decode(target, &data);
            }
        }
    }
}

#[test]
fn decoders_survive_mutations_of_valid_encodings() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    for (target, valid) in valid_inputs() {
        common::decode_mutations(&mut rng, &valid, 400, |data| decode(target, data));
    }
}

/// Replays the committed seed corpora (and any crash reproducers added to them).
/// `E2EE_WRITE_FUZZ_SEEDS=1` rewrites the seeds from the valid encodings.
#[test]
fn seed_corpora_replay() {
    let replayed = common::replay_corpora(&TARGETS, valid_inputs(), decode);
    assert!(
        replayed >= TARGETS.len(),
        "seed corpora missing under fuzz/corpus/ ({replayed} files)"
    );
}
