//! Session behaviour: handshake checks, ordering, limits, replay, trust, persistence.

use super::harness::{Device, established};
use crate::{
    Codec, DecodeError, DecryptError, EncryptError, Error, HandshakeError, IdentityStore, KeyError,
    PreKeyStore, SessionRecord, SessionStore,
    dh::DhPublicKey,
    limits::{MAX_FORWARD_JUMP, MAX_PREVIOUS_STATES, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS},
    message::{MessageKind, PreKeyMessage, RatchetMessage},
};

#[test]
fn first_messages_until_answered_then_ratchet_messages() {
    let mut alice = Device::new("alice", 1);
    let mut bob = Device::new("bob", 2);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    let m1 = alice.encrypt(&b, b"one");
    let m2 = alice.encrypt(&b, b"two");
    assert_eq!(MessageKind::of(&m1).unwrap(), MessageKind::PreKey);
    assert_eq!(MessageKind::of(&m2).unwrap(), MessageKind::PreKey);
    // Delivered in reverse: the second first-message creates the session, the first
    // decrypts through the session found by its base key.
    assert_eq!(bob.decrypt(&a, &m2).unwrap(), b"two");
    assert_eq!(bob.decrypt(&a, &m1).unwrap(), b"one");
    let r = bob.encrypt(&a, b"three");
    assert_eq!(MessageKind::of(&r).unwrap(), MessageKind::Ratchet);
    assert_eq!(alice.decrypt(&b, &r).unwrap(), b"three");
    let m4 = alice.encrypt(&b, b"four");
    assert_eq!(MessageKind::of(&m4).unwrap(), MessageKind::Ratchet);
    assert_eq!(bob.decrypt(&a, &m4).unwrap(), b"four");
}

#[test]
fn one_time_prekeys_are_consumed_exactly_once_and_replays_fail() {
    let mut alice = Device::new("alice", 3);
    let mut bob = Device::new("bob", 4);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    assert_eq!(bob.store.one_time_prekey_count(), 1);
    let first = alice.encrypt(&b, b"hello");
    bob.decrypt(&a, &first).unwrap();
    assert_eq!(bob.store.one_time_prekey_count(), 0);
    // The same first message again: the session exists, the counter is spent.
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Decrypt(DecryptError::Duplicate { counter: 0 }))
    );
    // After the session is gone, the replay cannot re-create it: the prekey is used.
    bob.store.store_session(&a, &SessionRecord::new()).unwrap();
    let parsed = PreKeyMessage::from_bytes(&first).unwrap();
    let id = parsed.parts.one_time_prekey_id.unwrap();
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Handshake(HandshakeError::UnknownOneTimePreKey(id)))
    );
}

#[test]
fn last_resort_kem_key_and_base_key_pair_is_accepted_once() {
    let mut alice = Device::new("alice", 5);
    let mut bob = Device::new("bob", 6);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let bundle = bob.last_resort_bundle();
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    let first = alice.encrypt(&b, b"fallback");
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"fallback");
    assert!(
        bob.store.kem_prekey(1000).unwrap().is_some(),
        "last-resort key must survive"
    );
    bob.store.store_session(&a, &SessionRecord::new()).unwrap();
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Handshake(HandshakeError::LastResortReplay(1000)))
    );
}

/// The 16 encodings of one base key (8 torsion variants of the point, each with bit 255 clear
/// or set) all agree to the same secrets; the one given first.
fn equivalent_base_keys(base_key: [u8; 32]) -> Vec<[u8; 32]> {
    use curve25519_dalek::{constants::EIGHT_TORSION, montgomery::MontgomeryPoint};
    let point = MontgomeryPoint(base_key).to_edwards(0).unwrap();
    let mut out = Vec::new();
    for torsion in EIGHT_TORSION {
        let u = (point + torsion).to_montgomery().to_bytes();
        let mut high = u;
        high[31] |= 0x80;
        if !out.contains(&u) {
            out.push(u);
            out.push(high);
        }
    }
    out
}

fn replace_all(bytes: &[u8], from: &[u8; 32], to: &[u8; 32]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(i) = out[at..].windows(32).position(|w| w == from) {
        out[at + i..at + i + 32].copy_from_slice(to);
        at += i + 32;
    }
    out
}

/// F1: X25519 ignores bit 255 and the torsion component, so a last-resort first message (no
/// one-time prekey) could be re-encoded 15 ways, each accepted once: the plaintext delivered
/// again and a duplicate session replacing the live one.
#[test]
fn re_encoded_base_keys_never_replay_a_last_resort_first_message() {
    let mut alice = Device::new("alice", 9);
    let mut bob = Device::new("bob", 10);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let bundle = bob.last_resort_bundle();
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    let first = alice.encrypt(&b, b"pay carol 100");
    let parts = PreKeyMessage::from_bytes(&first).unwrap().parts;
    let base = parts.base_key.to_bytes();
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"pay carol 100");
    let variants = equivalent_base_keys(base);
    assert_eq!(variants.len(), 16);
    let snapshot = record_bytes(&bob, &a);
    for variant in &variants[1..] {
        let replay = replace_all(&first, &base, variant);
        assert_ne!(replay, first);
        assert!(
            bob.decrypt(&a, &replay).is_err(),
            "a re-encoded replay was accepted"
        );
        assert_eq!(
            record_bytes(&bob, &a),
            snapshot,
            "a replay changed the record"
        );
    }
    // With the session gone, the last-resort replay record still refuses every encoding.
    bob.store.store_session(&a, &SessionRecord::new()).unwrap();
    for variant in &variants {
        let replay = replace_all(&first, &base, variant);
        assert!(bob.decrypt(&a, &replay).is_err(), "a replay was accepted");
    }
}

/// F1 for plain X3DH: with no KEM ciphertext the base key names the handshake, so a torsion
/// variant would have created a duplicate session while the original was held.
#[test]
fn torsion_variants_of_a_plain_x3dh_base_key_are_refused() {
    let x3dh = crate::SessionCipher::new(crate::SessionConfig {
        allow_plain_x3dh: true,
    });
    let mut alice = Device::new("alice", 13);
    let mut bob = Device::new("bob", 14);
    (alice.cipher, bob.cipher) = (x3dh, x3dh);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let mut bundle = bob.last_resort_bundle();
    bundle.kem_prekey = None;
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    let first = alice.encrypt(&b, b"once");
    let base = PreKeyMessage::from_bytes(&first)
        .unwrap()
        .parts
        .base_key
        .to_bytes();
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"once");
    let snapshot = record_bytes(&bob, &a);
    for variant in &equivalent_base_keys(base)[1..] {
        let replay = replace_all(&first, &base, variant);
        assert!(
            bob.decrypt(&a, &replay).is_err(),
            "a torsion variant was accepted"
        );
        assert_eq!(record_bytes(&bob, &a), snapshot);
    }
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Decrypt(DecryptError::Duplicate { counter: 0 }))
    );
}

fn record_bytes(device: &Device, peer: &crate::DeviceAddress) -> Option<Vec<u8>> {
    device
        .store
        .load_session(peer)
        .unwrap()
        .map(|r| r.to_bytes().to_vec())
}

#[test]
fn forged_first_message_burns_no_prekeys() {
    let mut alice = Device::new("alice", 7);
    let mut bob = Device::new("bob", 8);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    let mut first = alice.encrypt(&b, b"hello");
    let last = first.len() - 1;
    first[last] ^= 1;
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Decrypt(DecryptError::AuthenticationFailed))
    );
    assert_eq!(bob.store.one_time_prekey_count(), 1);
    assert!(bob.store.load_session(&a).unwrap().is_none());
    first[last] ^= 1;
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"hello");
}

#[test]
fn bundle_signature_and_kem_checks() {
    let mut alice = Device::new("alice", 9);
    let mut bob = Device::new("bob", 10);
    let b = bob.address.clone();
    let mut bundle = bob.bundle();
    bundle.signed_prekey.signature[0] ^= 1;
    assert_eq!(
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle),
        Err(Error::Handshake(HandshakeError::Key(
            KeyError::InvalidSignature("signed prekey")
        )))
    );
    let mut bundle = bob.bundle();
    bundle.kem_prekey.as_mut().unwrap().signature[5] ^= 1;
    assert_eq!(
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle),
        Err(Error::Handshake(HandshakeError::Key(
            KeyError::InvalidSignature("KEM prekey")
        )))
    );
    let mut bundle = bob.bundle();
    bundle.kem_prekey = None;
    assert_eq!(
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle),
        Err(Error::Handshake(HandshakeError::MissingKemPreKey))
    );
    assert!(alice.store.load_session(&b).unwrap().is_none());
}

#[test]
fn plain_x3dh_only_when_both_opt_in() {
    let mut alice = Device::new("alice", 11);
    let mut bob = Device::new("bob", 12);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let mut bundle = bob.bundle();
    bundle.kem_prekey = None;
    alice.cipher = crate::SessionCipher::new(crate::SessionConfig {
        allow_plain_x3dh: true,
    });
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    let first = alice.encrypt(&b, b"legacy");
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::Handshake(HandshakeError::PlainX3dhRefused))
    );
    bob.cipher = crate::SessionCipher::new(crate::SessionConfig {
        allow_plain_x3dh: true,
    });
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"legacy");
}

#[test]
fn low_order_one_time_prekey_is_rejected() {
    let mut alice = Device::new("alice", 13);
    let mut bob = Device::new("bob", 14);
    let b = bob.address.clone();
    let mut bundle = bob.bundle();
    bundle.one_time_prekey.as_mut().unwrap().key = DhPublicKey::from_bytes([0; 32]).unwrap();
    assert_eq!(
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle),
        Err(Error::Handshake(HandshakeError::Key(
            KeyError::NonContributory
        )))
    );
}

#[test]
fn low_order_ratchet_key_is_rejected_without_state_change() {
    let (mut alice, mut bob) = established(15);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let mut msg = bob.encrypt(&a, b"x");
    msg[1..33].copy_from_slice(&[0; 32]);
    assert_eq!(
        alice.decrypt(&b, &msg),
        Err(Error::Decrypt(DecryptError::Key(KeyError::NonContributory)))
    );
    let ok = bob.encrypt(&a, b"still fine");
    assert_eq!(alice.decrypt(&b, &ok).unwrap(), b"still fine");
}

#[test]
fn out_of_order_and_duplicates_across_ratchet_steps() {
    let (mut alice, mut bob) = established(16);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let early: Vec<_> = (0..5)
        .map(|i| alice.encrypt(&b, format!("a{i}").as_bytes()))
        .collect();
    assert_eq!(bob.decrypt(&a, &early[4]).unwrap(), b"a4");
    let reply = bob.encrypt(&a, b"b0");
    assert_eq!(alice.decrypt(&b, &reply).unwrap(), b"b0");
    let late: Vec<_> = (0..3)
        .map(|i| alice.encrypt(&b, format!("c{i}").as_bytes()))
        .collect();
    assert_eq!(bob.decrypt(&a, &late[2]).unwrap(), b"c2");
    for i in [1, 3, 0, 2] {
        assert_eq!(
            bob.decrypt(&a, &early[i]).unwrap(),
            format!("a{i}").as_bytes()
        );
    }
    assert_eq!(bob.decrypt(&a, &late[0]).unwrap(), b"c0");
    assert_eq!(bob.decrypt(&a, &late[1]).unwrap(), b"c1");
    for m in early.iter().chain(&late) {
        assert!(matches!(
            bob.decrypt(&a, m),
            Err(Error::Decrypt(DecryptError::Duplicate { .. }))
        ));
    }
}

#[test]
fn every_flipped_bit_fails_and_leaves_the_session_usable() {
    let (mut alice, mut bob) = established(17);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let msg = alice.encrypt(&b, b"hello");
    assert_eq!(msg.len(), 56, "5-byte plaintext must fit in 56 bytes");
    let before = bob.store.load_session(&a).unwrap().unwrap().to_bytes();
    for bit in 0..msg.len() * 8 {
        let mut bad = msg.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(bob.decrypt(&a, &bad).is_err(), "bit {bit} accepted");
        assert_eq!(
            *bob.store.load_session(&a).unwrap().unwrap().to_bytes(),
            *before,
            "bit {bit} changed state"
        );
    }
    assert_eq!(bob.decrypt(&a, &msg).unwrap(), b"hello");
}

#[test]
fn forward_jump_limit_is_enforced() {
    let (mut alice, mut bob) = established(18);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let m = alice.encrypt(&b, b"new chain");
    bob.decrypt(&a, &m).unwrap();
    // Jump exactly to the limit on the current chain: accepted.
    let mut record = alice.store.load_session(&b).unwrap().unwrap();
    let state = record.current.as_mut().unwrap();
    let chain = state.sending_chain.as_mut().unwrap();
    *chain = crate::ratchet::ChainKey::new(*chain.as_bytes(), chain.index());
    let start = chain.index();
    let mut far = chain.clone();
    for _ in 0..MAX_FORWARD_JUMP {
        far.step();
    }
    *state.sending_chain.as_mut().unwrap() = far;
    alice.store.store_session(&b, &record).unwrap();
    let msg = alice.encrypt(&b, b"far");
    assert_eq!(
        RatchetMessage::from_bytes(&msg).unwrap().counter(),
        start + MAX_FORWARD_JUMP
    );
    assert_eq!(bob.decrypt(&a, &msg).unwrap(), b"far");
    let skipped = bob
        .store
        .load_session(&a)
        .unwrap()
        .unwrap()
        .current
        .unwrap()
        .skipped
        .len();
    assert_eq!(skipped, MAX_SKIPPED_KEYS, "skipped keys are capped");
    // One more than the limit: refused, state unchanged.
    let mut record = alice.store.load_session(&b).unwrap().unwrap();
    let chain = record
        .current
        .as_mut()
        .unwrap()
        .sending_chain
        .as_mut()
        .unwrap();
    for _ in 0..=MAX_FORWARD_JUMP {
        chain.step();
    }
    alice.store.store_session(&b, &record).unwrap();
    let msg = alice.encrypt(&b, b"too far");
    assert_eq!(
        bob.decrypt(&a, &msg),
        Err(Error::Decrypt(DecryptError::TooFarAhead {
            jump: MAX_FORWARD_JUMP + 1
        }))
    );
}

/// The worst forged ratchet message (fresh ratchet key, PN and N at the jump limit, garbage
/// tag) against a full record of 41 states, each with a receiving chain: before the budget
/// every state derived up to 2 x 25,000 chain keys (2.05 million in all).
#[test]
fn a_forged_message_costs_at_most_the_per_message_step_budget() {
    use crate::{limits::MAX_CHAIN_STEPS_PER_MESSAGE, put_varint, ratchet::DERIVATIONS};
    let mut alice = Device::new("alice", 60);
    let mut bob = Device::new("bob", 61);
    for i in 0..=MAX_PREVIOUS_STATES {
        alice.start_session(&mut bob);
        let first = alice.encrypt(&bob.address.clone(), format!("hello {i}").as_bytes());
        bob.decrypt(&alice.address.clone(), &first).unwrap();
    }
    let record = bob
        .cipher
        .session(&bob.store, &alice.address)
        .unwrap()
        .unwrap();
    assert_eq!(record.previous_state_count(), MAX_PREVIOUS_STATES);

    let mut forged = vec![0x11];
    let ratchet = crate::DhKeyPair::generate(&mut bob.rng);
    forged.extend_from_slice(&ratchet.public().to_bytes());
    put_varint(&mut forged, MAX_FORWARD_JUMP);
    put_varint(&mut forged, MAX_FORWARD_JUMP);
    forged.extend_from_slice(&[0u8; 16]);
    let before = DERIVATIONS.with(|c| c.get());
    assert!(bob.decrypt(&alice.address.clone(), &forged).is_err());
    let spent = DERIVATIONS.with(|c| c.get()) - before;
    assert!(
        spent <= u64::from(MAX_CHAIN_STEPS_PER_MESSAGE),
        "a forged message made {spent} chain derivations"
    );
    // N over the limit is refused before the finished chains are advanced to PN.
    let mut over = forged[..33].to_vec();
    put_varint(&mut over, MAX_FORWARD_JUMP);
    put_varint(&mut over, MAX_FORWARD_JUMP + 1);
    over.extend_from_slice(&[0u8; 16]);
    let before = DERIVATIONS.with(|c| c.get());
    assert_eq!(
        bob.decrypt(&alice.address.clone(), &over),
        Err(Error::Decrypt(DecryptError::TooFarAhead {
            jump: MAX_FORWARD_JUMP + 1
        }))
    );
    assert_eq!(DERIVATIONS.with(|c| c.get()), before);
    // Nothing changed: the real session still works both ways.
    let reply = bob.encrypt(&alice.address.clone(), b"still here");
    assert_eq!(
        alice.decrypt(&bob.address.clone(), &reply).unwrap(),
        b"still here"
    );
}

#[test]
fn receiver_chains_are_bounded() {
    let (mut alice, mut bob) = established(19);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let mut undelivered = Vec::new();
    for round in 0..MAX_RECEIVER_CHAINS + 2 {
        let msg = alice.encrypt(&b, b"x");
        let held = alice.encrypt(&b, format!("held {round}").as_bytes());
        undelivered.push(held);
        bob.decrypt(&a, &msg).unwrap();
        let reply = bob.encrypt(&a, b"y");
        alice.decrypt(&b, &reply).unwrap();
    }
    let record = bob.store.load_session(&a).unwrap().unwrap();
    assert_eq!(
        record.current.as_ref().unwrap().receiver_chains.len(),
        MAX_RECEIVER_CHAINS
    );
    // Each held message was covered by the PN of the sender's next ratchet step, so its key
    // was kept as a skipped key and it decrypts even after its chain was dropped.
    for (round, held) in undelivered.iter().enumerate() {
        assert_eq!(
            bob.decrypt(&a, held).unwrap(),
            format!("held {round}").as_bytes()
        );
    }
}

#[test]
fn simultaneous_initiation_converges() {
    let mut alice = Device::new("alice", 20);
    let mut bob = Device::new("bob", 21);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    bob.start_session(&mut alice);
    let from_alice = alice.encrypt(&b, b"hi from alice");
    let from_bob = bob.encrypt(&a, b"hi from bob");
    assert_eq!(bob.decrypt(&a, &from_alice).unwrap(), b"hi from alice");
    assert_eq!(alice.decrypt(&b, &from_bob).unwrap(), b"hi from bob");
    for round in 0..4 {
        let m = alice.encrypt(&b, format!("a{round}").as_bytes());
        assert_eq!(bob.decrypt(&a, &m).unwrap(), format!("a{round}").as_bytes());
        let m = bob.encrypt(&a, format!("b{round}").as_bytes());
        assert_eq!(
            alice.decrypt(&b, &m).unwrap(),
            format!("b{round}").as_bytes()
        );
    }
    let ra = alice.store.load_session(&b).unwrap().unwrap();
    let rb = bob.store.load_session(&a).unwrap().unwrap();
    assert_eq!(
        ra.current.as_ref().unwrap().handshake_id,
        rb.current.as_ref().unwrap().handshake_id,
        "same session"
    );
}

#[test]
fn previous_states_are_bounded() {
    let mut alice = Device::new("alice", 22);
    let mut bob = Device::new("bob", 23);
    let b = bob.address.clone();
    for _ in 0..MAX_PREVIOUS_STATES + 3 {
        alice.start_session(&mut bob);
    }
    let record = alice.store.load_session(&b).unwrap().unwrap();
    assert_eq!(record.previous_state_count(), MAX_PREVIOUS_STATES);
    let again = SessionRecord::from_bytes(&record.to_bytes()).unwrap();
    assert_eq!(again.previous_state_count(), MAX_PREVIOUS_STATES);
}

#[test]
fn identity_change_is_an_explicit_error() {
    let (mut alice, _bob) = established(24);
    let mut impostor = Device::new("bob", 99);
    let b = impostor.address.clone();
    let bundle = impostor.bundle();
    assert_eq!(
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle),
        Err(Error::IdentityChanged { address: b.clone() })
    );
    alice.store.trust_identity(&b, &bundle.identity).unwrap();
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    // And from the responder's side: a first message from a new identity.
    let (_, mut bob) = established(25);
    let a = alice.address.clone();
    let mut other_alice = Device::new("alice", 77);
    other_alice.start_session(&mut bob);
    let first = other_alice.encrypt(&bob.address.clone(), b"it's me");
    assert_eq!(
        bob.decrypt(&a, &first),
        Err(Error::IdentityChanged { address: a.clone() })
    );
}

#[test]
fn records_survive_serialisation_mid_conversation() {
    let (mut alice, mut bob) = established(26);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let held = alice.encrypt(&b, b"held");
    let sent = alice.encrypt(&b, b"sent");
    bob.decrypt(&a, &sent).unwrap();
    for device in [&mut alice, &mut bob] {
        let peer = if device.address == a {
            b.clone()
        } else {
            a.clone()
        };
        let record = device.store.load_session(&peer).unwrap().unwrap();
        let bytes = record.to_bytes();
        let restored = SessionRecord::from_bytes(&bytes).unwrap();
        assert_eq!(*restored.to_bytes(), *bytes);
        device.store.store_session(&peer, &restored).unwrap();
    }
    assert_eq!(bob.decrypt(&a, &held).unwrap(), b"held");
    let m = bob.encrypt(&a, b"after restore");
    assert_eq!(alice.decrypt(&b, &m).unwrap(), b"after restore");
}

#[test]
fn garbage_session_records_fail_cleanly() {
    let (alice, bob) = established(27);
    let bytes = alice
        .store
        .load_session(&bob.address)
        .unwrap()
        .unwrap()
        .to_bytes();
    for cut in 0..bytes.len() {
        assert!(
            SessionRecord::from_bytes(&bytes[..cut]).is_err(),
            "prefix {cut} accepted"
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        SessionRecord::from_bytes(&long).err(),
        Some(DecodeError::TrailingBytes)
    );
    let mut wrong = bytes.to_vec();
    wrong[0] = 9;
    assert_eq!(
        SessionRecord::from_bytes(&wrong).err(),
        Some(DecodeError::UnknownVersion(9))
    );
}

#[test]
fn messages_without_a_session_are_typed_errors() {
    let (mut alice, bob) = established(28);
    let stranger = crate::DeviceAddress::new("carol", 1).unwrap();
    let msg = alice.encrypt(&bob.address.clone(), b"x");
    let mut carol = Device::new("carol", 29);
    assert_eq!(
        carol.decrypt(&alice.address.clone(), &msg),
        Err(Error::NoSession {
            address: alice.address.clone()
        })
    );
    assert_eq!(
        alice
            .cipher
            .encrypt(&mut alice.store, &mut alice.rng, &stranger, b"x"),
        Err(Error::NoSession {
            address: stranger.clone()
        })
    );
    assert_eq!(
        carol.decrypt(&stranger, &[]),
        Err(Error::Decode(DecodeError::Truncated))
    );
    assert_eq!(
        carol.decrypt(&stranger, &[0x31, 0]),
        Err(Error::Decode(DecodeError::UnknownVersion(0x31)))
    );
}

#[test]
fn oversized_plaintext_is_refused() {
    let (mut alice, bob) = established(30);
    let big = vec![0u8; crate::limits::MAX_PLAINTEXT_LEN + 1];
    assert_eq!(
        alice
            .cipher
            .encrypt(&mut alice.store, &mut alice.rng, &bob.address.clone(), &big),
        Err(Error::Encrypt(EncryptError::PlaintextTooLarge {
            len: crate::limits::MAX_PLAINTEXT_LEN + 1
        }))
    );
}

#[test]
fn debug_output_never_contains_secrets() {
    let (mut alice, bob) = established(31);
    alice.encrypt(&bob.address.clone(), b"start a sending chain");
    let record = alice.store.load_session(&bob.address).unwrap().unwrap();
    let state = record.current.as_ref().unwrap();
    let secrets = [
        hex::encode(state.root_key.as_bytes()),
        hex::encode(state.our_ratchet.secret_bytes().as_ref()),
        hex::encode(state.sending_chain.as_ref().unwrap().as_bytes()),
    ];
    let identity = alice.store.identity_key_pair().unwrap();
    let text = format!(
        "{record:?} {:?} {identity:?} {:?}",
        alice.store, state.our_ratchet
    );
    let decimal = format!("{:?}", state.root_key.as_bytes());
    for secret in &secrets {
        assert!(!text.contains(&secret[..8]), "secret prefix leaked: {text}");
    }
    assert!(
        !text.contains(&decimal[1..20]),
        "secret bytes leaked: {text}"
    );
    assert!(!text.contains(&hex::encode(identity.secret_bytes().as_ref())[..8]));
}

/// Review finding: a session archived under an identity the user replaced must never decrypt
/// or be encrypted to again.
#[test]
fn sessions_of_a_replaced_identity_cannot_come_back() {
    let (mut alice, mut old_bob) = established(40);
    let (a, b) = (alice.address.clone(), old_bob.address.clone());
    // Bob reinstalls: new identity. Alice accepts it and starts a new session.
    let mut new_bob = Device::new("bob", 4_041);
    let bundle = new_bob.bundle();
    alice.store.trust_identity(&b, &bundle.identity).unwrap();
    // Before a new session exists, the old one must not be used for sending.
    assert_eq!(
        alice
            .cipher
            .encrypt(&mut alice.store, &mut alice.rng, &b, b"x"),
        Err(Error::IdentityChanged { address: b.clone() })
    );
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    // Whoever holds the old session sends a perfectly valid ratchet message.
    let from_old = old_bob.encrypt(&a, b"remember me?");
    assert!(
        alice.decrypt(&b, &from_old).is_err(),
        "old identity's session decrypted"
    );
    // Alice still talks to the new identity only.
    let to_new = alice.encrypt(&b, b"hello new bob");
    assert_eq!(new_bob.decrypt(&a, &to_new).unwrap(), b"hello new bob");
    assert!(old_bob.decrypt(&a, &to_new).is_err());
}

/// Review finding: repeated first messages are matched by base key, so their handshake
/// fields must be exactly the ones the session was created from.
#[test]
fn repeated_first_messages_cannot_be_altered() {
    let mut alice = Device::new("alice", 42);
    let mut bob = Device::new("bob", 43);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    let m1 = alice.encrypt(&b, b"one");
    let m2 = alice.encrypt(&b, b"two");
    assert_eq!(bob.decrypt(&a, &m1).unwrap(), b"one");
    let inner_len =
        RatchetMessage::from_bytes(PreKeyMessage::from_bytes(&m2).unwrap().message.as_bytes())
            .unwrap()
            .as_bytes()
            .len();
    let header_len = m2.len() - inner_len;
    let before = bob.store.load_session(&a).unwrap().unwrap().to_bytes();
    // One flipped bit in every header byte (the bit position rotates).
    for i in 0..header_len {
        let mut bad = m2.clone();
        bad[i] ^= 1 << (i % 8);
        assert!(
            bob.decrypt(&a, &bad).is_err(),
            "flip in header byte {i} accepted"
        );
    }
    assert_eq!(
        *bob.store.load_session(&a).unwrap().unwrap().to_bytes(),
        *before
    );
    assert_eq!(bob.decrypt(&a, &m2).unwrap(), b"two");
}

/// A store that fails the next session write, to check what a failed commit leaves behind.
struct FlakyStore {
    inner: crate::InMemoryStore,
    fail_next_session_write: bool,
}

impl IdentityStore for FlakyStore {
    fn identity_key_pair(&self) -> Result<crate::IdentityKeyPair, crate::StoreError> {
        self.inner.identity_key_pair()
    }
    fn local_binding(&self) -> Result<crate::device::DeviceBinding, crate::StoreError> {
        self.inner.local_binding()
    }
    fn trusted_identity(
        &self,
        address: &crate::DeviceAddress,
    ) -> Result<Option<crate::IdentityKey>, crate::StoreError> {
        self.inner.trusted_identity(address)
    }
    fn trust_identity(
        &mut self,
        address: &crate::DeviceAddress,
        identity: &crate::IdentityKey,
    ) -> Result<(), crate::StoreError> {
        self.inner.trust_identity(address, identity)
    }
}

impl PreKeyStore for FlakyStore {
    fn signed_prekey(&self, id: u32) -> Result<Option<crate::SignedPreKey>, crate::StoreError> {
        self.inner.signed_prekey(id)
    }
    fn one_time_prekey(&self, id: u32) -> Result<Option<crate::OneTimePreKey>, crate::StoreError> {
        self.inner.one_time_prekey(id)
    }
    fn remove_one_time_prekey(&mut self, id: u32) -> Result<(), crate::StoreError> {
        self.inner.remove_one_time_prekey(id)
    }
    fn kem_prekey(&self, id: u32) -> Result<Option<crate::KemPreKey>, crate::StoreError> {
        self.inner.kem_prekey(id)
    }
    fn remove_kem_prekey(&mut self, id: u32) -> Result<(), crate::StoreError> {
        self.inner.remove_kem_prekey(id)
    }
    fn last_resort_used(
        &self,
        id: u32,
        handshake: &crate::message::HandshakeId,
    ) -> Result<bool, crate::StoreError> {
        self.inner.last_resort_used(id, handshake)
    }
    fn record_last_resort_use(
        &mut self,
        id: u32,
        handshake: &crate::message::HandshakeId,
    ) -> Result<(), crate::StoreError> {
        self.inner.record_last_resort_use(id, handshake)
    }
}

impl SessionStore for FlakyStore {
    fn load_session(
        &self,
        address: &crate::DeviceAddress,
    ) -> Result<Option<SessionRecord>, crate::StoreError> {
        self.inner.load_session(address)
    }
    fn store_session(
        &mut self,
        address: &crate::DeviceAddress,
        record: &SessionRecord,
    ) -> Result<(), crate::StoreError> {
        if std::mem::take(&mut self.fail_next_session_write) {
            return Err(crate::StoreError("disk full".into()));
        }
        self.inner.store_session(address, record)
    }
}

impl crate::ProtocolStore for FlakyStore {}

#[test]
fn a_failed_session_write_consumes_no_prekeys_and_the_message_can_be_retried() {
    let mut alice = Device::new("alice", 44);
    let mut bob = Device::new("bob", 45);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    alice.start_session(&mut bob);
    let first = alice.encrypt(&b, b"important");
    let id = PreKeyMessage::from_bytes(&first)
        .unwrap()
        .parts
        .one_time_prekey_id
        .unwrap();
    let identity = bob.store.identity_key_pair().unwrap();
    let binding = bob.store.local_binding().unwrap();
    let mut flaky = FlakyStore {
        inner: std::mem::replace(&mut bob.store, crate::InMemoryStore::new(identity, binding)),
        fail_next_session_write: true,
    };
    assert_eq!(
        bob.cipher.decrypt(&mut flaky, &a, &first),
        Err(Error::Store(crate::StoreError("disk full".into())))
    );
    assert!(
        flaky.one_time_prekey(id).unwrap().is_some(),
        "prekey consumed by a failed commit"
    );
    assert_eq!(
        bob.cipher.decrypt(&mut flaky, &a, &first).unwrap(),
        b"important"
    );
    assert!(flaky.one_time_prekey(id).unwrap().is_none());
}

/// F7: the default `accept_first_message` recorded the last-resort use before it stored the
/// session, so after a failed session write the retry was refused as a replay and the first
/// message was lost for good.
#[test]
fn a_failed_session_write_never_loses_a_last_resort_first_message() {
    let mut alice = Device::new("alice", 46);
    let mut bob = Device::new("bob", 47);
    let (a, b) = (alice.address.clone(), bob.address.clone());
    let bundle = bob.last_resort_bundle();
    alice
        .cipher
        .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
        .unwrap();
    let first = alice.encrypt(&b, b"only copy");
    let identity = bob.store.identity_key_pair().unwrap();
    let binding = bob.store.local_binding().unwrap();
    let mut flaky = FlakyStore {
        inner: std::mem::replace(&mut bob.store, crate::InMemoryStore::new(identity, binding)),
        fail_next_session_write: true,
    };
    assert!(matches!(
        bob.cipher.decrypt(&mut flaky, &a, &first),
        Err(Error::Store(_))
    ));
    assert_eq!(flaky.inner.last_resort_use_count(1000), 0);
    assert_eq!(
        bob.cipher.decrypt(&mut flaky, &a, &first).unwrap(),
        b"only copy"
    );
    assert_eq!(flaky.inner.last_resort_use_count(1000), 1);
    // A replay once the session is gone is still refused.
    flaky
        .inner
        .store_session(&a, &SessionRecord::new())
        .unwrap();
    assert_eq!(
        bob.cipher.decrypt(&mut flaky, &a, &first),
        Err(Error::Handshake(HandshakeError::LastResortReplay(1000)))
    );
}

/// R2: the last-resort replay set is kept per key and goes with the key.
#[test]
fn the_last_resort_replay_record_is_deleted_with_its_key() {
    let mut bob = Device::new("bob", 49);
    let b = bob.address.clone();
    let bundle = bob.last_resort_bundle();
    for seed in 0..3 {
        let mut alice = Device::new(&format!("alice{seed}"), 50 + seed);
        alice
            .cipher
            .process_bundle(&mut alice.store, &mut alice.rng, &b, &bundle)
            .unwrap();
        let first = alice.encrypt(&b, b"hi");
        bob.decrypt(&alice.address.clone(), &first).unwrap();
    }
    assert_eq!(bob.store.last_resort_use_count(1000), 3);
    bob.store.remove_kem_prekey(1000).unwrap();
    assert_eq!(bob.store.last_resort_use_count(1000), 0);
    assert!(bob.store.kem_prekey(1000).unwrap().is_none());
}

/// F5 for 1:1: a session record restored from a backup never encrypts with a restored chain
/// (whose keys may have been used since the backup: before, the same header and key
/// encrypted a second plaintext). It sends first through a new session, or replies after the
/// peer spoke, each with a fresh DH step.
#[test]
fn a_restored_session_record_never_reuses_a_key_and_nonce() {
    let (mut alice, mut bob) = established(70);
    let b = bob.address.clone();
    let a = alice.address.clone();
    // A backup taken while Alice's sending chain is live (she has sent on it).
    let zero = alice.encrypt(&b, b"zero");
    assert_eq!(bob.decrypt(&a, &zero).unwrap(), b"zero");
    let backup = alice.store.load_session(&b).unwrap().unwrap().to_bytes();
    let one = alice.encrypt(&b, b"pay carol 100");
    assert_eq!(bob.decrypt(&a, &one).unwrap(), b"pay carol 100");
    let used = RatchetMessage::from_bytes(&one).unwrap();

    // The plain decoder keeps the chain and would reuse the key: what the backup load avoids.
    let mut plain = SessionRecord::from_bytes(&backup).unwrap();
    let again = plain.encrypt(&mut alice.rng, b"pay dave 9999").unwrap();
    let again = RatchetMessage::from_bytes(&again).unwrap();
    assert_eq!(
        (again.ratchet_key(), again.counter()),
        (used.ratchet_key(), used.counter())
    );

    let restored = SessionRecord::from_backup_bytes(&backup).unwrap();
    assert!(!restored.has_current_session());
    alice.store.store_session(&b, &restored).unwrap();
    assert_eq!(
        alice
            .cipher
            .encrypt(&mut alice.store, &mut alice.rng, &b, b"pay dave 9999"),
        Err(Error::NoSession { address: b.clone() })
    );
    // Replying after the peer spoke: a fresh step on the peer's newest key.
    let from_bob = bob.encrypt(&a, b"hello again");
    assert_eq!(alice.decrypt(&b, &from_bob).unwrap(), b"hello again");
    let reply = alice.encrypt(&b, b"pay dave 9999");
    let reply_message = RatchetMessage::from_bytes(&reply).unwrap();
    assert_ne!(reply_message.ratchet_key(), used.ratchet_key());
    assert_eq!(bob.decrypt(&a, &reply).unwrap(), b"pay dave 9999");
    // Sending first after a restore: a new session.
    alice
        .store
        .store_session(&b, &SessionRecord::from_backup_bytes(&backup).unwrap())
        .unwrap();
    alice.start_session(&mut bob);
    let first = alice.encrypt(&b, b"new session");
    assert_eq!(bob.decrypt(&a, &first).unwrap(), b"new session");
}
