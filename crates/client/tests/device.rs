//! `Device`, bytes in and bytes out, as an app with its own transport uses it: register,
//! upload prekeys, learn a user, fetch a bundle, encrypt, decrypt, restart; and the typed
//! refusals (replay, unknown user, unlisted device, a changed account key).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

mod common;

use common::{Dir, address, bundle, key};
use e2ee_client::{Device, Error, Registration};
use e2ee_core::DeviceAddress;

fn learn(device: &mut Device, registration: &Registration) -> Vec<DeviceAddress> {
    device
        .learn_user(
            &registration.user_id,
            &registration.account_key,
            &registration.device_list,
        )
        .unwrap()
        .0
}

fn primary(dir: &Dir, user: &str, byte: u8) -> (Device, Registration) {
    Device::create_primary(&dir.file(&format!("{user}.db")), &key(byte), user, 1).unwrap()
}

fn reopen(dir: &Dir, user: &str, byte: u8) -> Device {
    Device::open(&dir.file(&format!("{user}.db")), &key(byte)).unwrap()
}

#[test]
fn two_devices_talk_through_bytes_alone_and_across_restarts() {
    let dir = Dir::new("talk");
    let (mut alice, alice_reg) = primary(&dir, "alice", 1);
    let (mut bob, bob_reg) = primary(&dir, "bob", 2);
    assert!(alice.holds_account_key().unwrap());
    let bob_keys = bob.generate_prekeys(5).unwrap();
    assert_eq!(bob_keys.one_time_prekeys.len(), 5);
    assert_eq!(
        bob_keys.kem_prekeys.len(),
        6,
        "5 one-time and the last-resort key"
    );

    assert_eq!(learn(&mut alice, &bob_reg), vec![address("bob", 1)]);
    let first = alice.encrypt(&["bob"], b"hello bob").unwrap();
    assert!(first.envelopes.is_empty());
    assert_eq!(first.needs_bundle, vec![address("bob", 1)]);
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    let sent = alice.encrypt(&["bob"], b"hello bob").unwrap();
    assert!(sent.needs_bundle.is_empty());
    let [(to, ciphertext)] = &sent.envelopes[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, address("bob", 1));

    learn(&mut bob, &alice_reg);
    let got = bob.decrypt(&address("alice", 1), ciphertext).unwrap();
    assert_eq!(got.sender, address("alice", 1));
    assert_eq!(got.plaintext, b"hello bob");
    // Delivered again (the relay redelivers until acked): a typed duplicate.
    assert!(matches!(
        bob.decrypt(&address("alice", 1), ciphertext),
        Err(Error::Duplicate)
    ));

    // Both restart; the conversation goes on in both directions.
    drop((alice, bob));
    let mut alice = reopen(&dir, "alice", 1);
    let mut bob = reopen(&dir, "bob", 2);
    for round in 0..3u8 {
        let reply = bob.encrypt(&["alice"], &[round]).unwrap();
        assert!(reply.needs_bundle.is_empty(), "{reply:?}");
        let (_, ct) = &reply.envelopes[0];
        assert_eq!(
            alice.decrypt(&address("bob", 1), ct).unwrap().plaintext,
            [round]
        );
        let next = alice.encrypt(&["bob"], &[round, 1]).unwrap();
        let (_, ct) = &next.envelopes[0];
        // Claimed to come from Bob's own device: refused, and nothing changed.
        assert!(bob.decrypt(&address("bob", 1), ct).is_err());
        assert_eq!(
            bob.decrypt(&address("alice", 1), ct).unwrap().plaintext,
            [round, 1]
        );
    }
}

#[test]
fn messages_from_unknown_users_and_unlisted_devices_are_refused() {
    let dir = Dir::new("refuse");
    let (mut alice, alice_reg) = primary(&dir, "alice", 1);
    let (mut bob, bob_reg) = primary(&dir, "bob", 2);
    let bob_keys = bob.generate_prekeys(3).unwrap();
    learn(&mut alice, &bob_reg);
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    let sent = alice.encrypt(&["bob"], b"who am I").unwrap();
    let (_, ciphertext) = &sent.envelopes[0];

    // Bob has not learned Alice yet.
    assert!(matches!(
        bob.decrypt(&address("alice", 1), ciphertext),
        Err(Error::UnknownUser { user }) if user == "alice"
    ));
    learn(&mut bob, &alice_reg);
    // The relay claims it comes from a device Alice's list does not name.
    assert!(matches!(
        bob.decrypt(&address("alice", 2), ciphertext),
        Err(Error::NotListed { device }) if device.starts_with("alice")
    ));
    // Garbage.
    assert!(bob.decrypt(&address("alice", 1), b"\x11garbage").is_err());
    // The refusals changed nothing: the genuine message still decrypts.
    assert_eq!(
        bob.decrypt(&address("alice", 1), ciphertext)
            .unwrap()
            .plaintext,
        b"who am I"
    );
}

#[test]
fn another_account_key_for_a_known_user_is_refused() {
    let dir = Dir::new("account");
    let (mut alice, _) = primary(&dir, "alice", 1);
    let (_, bob_reg) = primary(&dir, "bob", 2);
    learn(&mut alice, &bob_reg);
    // A second "bob" (the server swapped the account).
    let other = Dir::new("account-other");
    let (_, impostor) = Device::create_primary(&other.file("bob.db"), &key(3), "bob", 1).unwrap();
    assert!(matches!(
        alice.learn_user("bob", &impostor.account_key, &impostor.device_list),
        Err(Error::AccountKeyChanged { user }) if user == "bob"
    ));
    // A list of another user under Bob's name is refused before anything is trusted.
    assert!(matches!(
        alice.learn_user("carol", &bob_reg.account_key, &bob_reg.device_list),
        Err(Error::InvalidInput { .. })
    ));
    // The same list again is fine (a re-fetch) and adds nothing.
    assert!(learn(&mut alice, &bob_reg).is_empty());
    drop(alice);
    let path: &Path = &dir.file("alice.db");
    assert!(matches!(
        Device::open(path, &key(9)),
        Err(Error::Store(e2ee_client::store::StoreError::WrongKey))
    ));
}

#[test]
fn sent_messages_wait_in_the_outbox_until_acknowledged() {
    let dir = Dir::new("outbox");
    let (mut alice, alice_reg) = primary(&dir, "alice", 1);
    let (mut bob, bob_reg) = primary(&dir, "bob", 2);
    let bob_keys = bob.generate_prekeys(2).unwrap();
    learn(&mut alice, &bob_reg);
    learn(&mut bob, &alice_reg);
    assert!(matches!(
        alice.send(&["bob"], b"too early"),
        Err(Error::NeedsBundles { devices }) if devices == vec![address("bob", 1)]
    ));
    assert!(matches!(
        alice.send(&[], b"to nobody"),
        Err(Error::NoRecipients)
    ));
    assert!(alice.outbox().unwrap().is_empty());
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    let first = alice.send(&["bob"], b"first").unwrap();
    let second = alice.send(&["bob"], b"second").unwrap();
    assert_ne!(first.msg_id, second.msg_id);
    // Over the core's plaintext limit, and under it but over the relay's envelope limit
    // once encrypted: refused, nothing queued.
    for len in [70 * 1024, 64 * 1024] {
        let result = alice.send(&["bob"], &vec![0u8; len]);
        let lens: Vec<usize> = result
            .iter()
            .flat_map(|e| e.envelopes.iter().map(|(_, c)| c.len()))
            .collect();
        assert!(
            matches!(result, Err(Error::MessageTooLarge { .. })),
            "{len}: ciphertexts {lens:?}"
        );
    }

    // A restart before anything was sent: both are still there, oldest first.
    drop(alice);
    let mut alice = reopen(&dir, "alice", 1);
    let pending = alice.outbox().unwrap();
    assert_eq!(pending, vec![first.clone(), second.clone()]);
    for entry in &pending {
        let (to, ciphertext) = &entry.envelopes[0];
        assert_eq!(*to, address("bob", 1));
        let got = bob
            .receive(&address("alice", 1), entry.msg_id, ciphertext)
            .unwrap();
        assert!(got.is_some());
        // Sent again (no ack reached us): the receiver has it already.
        assert_eq!(
            bob.receive(&address("alice", 1), entry.msg_id, ciphertext)
                .unwrap(),
            None
        );
    }
    assert_eq!(
        bob.received_message(&address("alice", 1), second.msg_id)
            .unwrap(),
        Some(b"second".to_vec())
    );
    assert!(alice.acknowledged(first.msg_id).unwrap());
    assert!(!alice.acknowledged(first.msg_id).unwrap());
    assert_eq!(alice.outbox().unwrap(), vec![second.clone()]);
    assert!(alice.acknowledged(second.msg_id).unwrap());
    assert!(alice.outbox().unwrap().is_empty());
}

#[test]
fn an_account_key_change_is_taken_only_when_accepted_and_changes_the_safety_number() {
    let dir = Dir::new("change");
    let (mut alice, alice_reg) = primary(&dir, "alice", 1);
    let (mut bob, bob_reg) = primary(&dir, "bob", 2);
    let bob_keys = bob.generate_prekeys(1).unwrap();
    learn(&mut alice, &bob_reg);
    learn(&mut bob, &alice_reg);
    let before = alice.safety_number("bob").unwrap();
    // One number per pair: both see the same digits (the scannable form puts the scanner's
    // own key first, as Signal's does).
    assert_eq!(
        before.displayable,
        bob.safety_number("alice").unwrap().displayable
    );
    assert_eq!(before.displayable.len(), 60);
    assert!(matches!(
        alice.safety_number("carol"),
        Err(Error::UnknownUser { .. })
    ));
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    assert_eq!(alice.encrypt(&["bob"], b"x").unwrap().envelopes.len(), 1);

    // Bob reinstalls: a new account key and a new device 1.
    let other = Dir::new("change-new");
    let (_, new_bob) = Device::create_primary(&other.file("bob.db"), &key(4), "bob", 1).unwrap();
    assert!(matches!(
        alice.learn_user("bob", &new_bob.account_key, &new_bob.device_list),
        Err(Error::AccountKeyChanged { .. })
    ));
    assert_eq!(
        alice.safety_number("bob").unwrap(),
        before,
        "nothing changed"
    );
    alice
        .accept_account_change("bob", &new_bob.account_key, &new_bob.device_list)
        .unwrap();
    assert_ne!(
        alice.safety_number("bob").unwrap().displayable,
        before.displayable
    );
    // The old session's identity is not the one the new list names: it is not used.
    let out = alice.encrypt(&["bob"], b"y").unwrap();
    assert!(out.envelopes.is_empty(), "{:?}", out.needs_bundle);
    assert_eq!(out.needs_bundle, vec![address("bob", 1)]);
}
