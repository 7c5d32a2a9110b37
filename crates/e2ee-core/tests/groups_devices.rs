//! Multi-device through the public API: signed device lists, certificates, the fan-out plan,
//! the receive path through the directory, and the attacks on them: a ghost device added by
//! the server, a relay impersonating a listed device at first contact, and an account passing
//! another user's devices off as its own.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use e2ee_core::{
    Codec, DeviceAddress, Error, HandshakeError, IdentityStore, SessionCipher, UserId,
    device::{AccountIdentityKeyPair, DeviceCertificate, DeviceDirectory, DeviceError, DeviceList},
    group::{GroupId, GroupSession},
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::{CREATED_AT, Device, User, directory, first_message, members};

fn uid(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

#[test]
fn fan_out_covers_the_recipients_devices_and_our_other_devices() {
    let mut alice = User::new("alice", 2, 1);
    let mut bob = User::new("bob", 2, 2);
    let dir = directory(&[&alice, &bob]);
    let cipher = SessionCipher::default();
    let (me, rest) = alice.devices.split_first_mut().unwrap();

    let plan = dir.plan(&me.store, &me.address, &[&bob.id]).unwrap();
    let expected: Vec<DeviceAddress> = rest
        .iter()
        .chain(&bob.devices)
        .map(|d| d.address.clone())
        .collect();
    assert_eq!(plan.needs_session, expected);
    assert!(plan.ready.is_empty() && plan.mismatched.is_empty());
    assert!(
        dir.encrypt(&cipher, &mut me.store, &mut me.rng, &plan, b"hi")
            .is_err()
    );

    for peer in rest.iter_mut().chain(bob.devices.iter_mut()) {
        let bundle = peer.bundle();
        dir.process_bundle(&cipher, &mut me.store, &mut me.rng, &peer.address, &bundle)
            .unwrap();
    }
    let plan = dir.plan(&me.store, &me.address, &[&bob.id]).unwrap();
    assert!(plan.needs_session.is_empty());
    assert_eq!(plan.ready, expected);
    let envelopes = dir
        .encrypt(&cipher, &mut me.store, &mut me.rng, &plan, b"hi bob")
        .unwrap();
    assert_eq!(envelopes.len(), 3);
    for (envelope, peer) in envelopes
        .iter()
        .zip(rest.iter_mut().chain(bob.devices.iter_mut()))
    {
        assert_eq!(envelope.to, peer.address);
        let received = dir
            .decrypt(&cipher, &mut peer.store, &me.address, &envelope.ciphertext)
            .unwrap();
        assert_eq!(received.plaintext, b"hi bob");
        assert_eq!(received.sender.address(), &me.address);
        assert_eq!(received.sender.identity(), me.identity.public());
    }
}

#[test]
fn a_ghost_device_inserted_by_the_server_gets_nothing() {
    let mut alice = User::new("alice", 1, 3);
    let mut bob = User::new("bob", 1, 4);
    let mut dir = directory(&[&alice, &bob]);
    let me = &mut alice.devices[0];
    let cipher = SessionCipher::default();
    let server_key = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(5));
    let mut ghost = Device::new(&server_key, "bob", 66, 99);

    // 1. A list with the ghost, signed by a key the server made up.
    let mut entries: Vec<_> = bob.devices.iter().map(Device::entry).collect();
    entries.push(ghost.entry());
    // Bob's devices bound themselves to Bob's account, not the server's: even the server
    // cannot sign a list naming them under its own key.
    assert!(DeviceList::sign(&server_key, &bob.id, 2, CREATED_AT, entries).is_err());
    let forged =
        DeviceList::sign(&server_key, &bob.id, 2, CREATED_AT, vec![ghost.entry()]).unwrap();
    assert!(matches!(
        dir.update_device_list(&forged),
        Err(DeviceError::Key(_))
    ));
    // 2. The genuine list re-served.
    assert!(dir.update_device_list(&bob.list(1)).is_ok());

    // The plan never names the ghost, and a session with it cannot be started...
    let plan = dir.plan(&me.store, &me.address, &[&bob.id]).unwrap();
    assert_eq!(plan.needs_session, [bob.devices[0].address.clone()]);
    let ghost_bundle = ghost.bundle();
    assert_eq!(
        dir.process_bundle(
            &cipher,
            &mut me.store,
            &mut me.rng,
            &ghost.address,
            &ghost_bundle
        ),
        Err(DeviceError::DeviceNotInList(ghost.address.clone()))
    );
    // ...nor can the ghost's keys be passed off as a listed device's bundle.
    assert_eq!(
        dir.process_bundle(
            &cipher,
            &mut me.store,
            &mut me.rng,
            &bob.devices[0].address,
            &ghost_bundle
        ),
        Err(DeviceError::DeviceNotInList(bob.devices[0].address.clone()))
    );
    // A certificate the server made for it is not one Bob's account made.
    let cert = DeviceCertificate::sign(
        &server_key,
        ghost.identity.public(),
        &ghost.binding(),
        CREATED_AT,
    )
    .unwrap();
    assert!(matches!(
        dir.verify_certificate(&cert),
        Err(DeviceError::Key(_))
    ));
    // The genuine device's certificate verifies.
    let genuine = DeviceCertificate::sign(
        &bob.account,
        bob.devices[0].identity.public(),
        &bob.devices[0].binding(),
        CREATED_AT,
    )
    .unwrap();
    assert_eq!(
        dir.verify_certificate(&genuine).unwrap().address(),
        &bob.devices[0].address
    );
    // A correctly certified device that the list does not name is still refused.
    let unlisted_device = Device::new(&bob.account, "bob", 66, 98);
    let unlisted = DeviceCertificate::sign(
        &bob.account,
        unlisted_device.identity.public(),
        &unlisted_device.binding(),
        CREATED_AT,
    )
    .unwrap();
    assert_eq!(
        dir.verify_certificate(&unlisted),
        Err(DeviceError::DeviceNotInList(
            unlisted_device.address.clone()
        ))
    );
    let bundle = bob.devices[0].bundle();
    dir.process_bundle(
        &cipher,
        &mut me.store,
        &mut me.rng,
        &bob.devices[0].address,
        &bundle,
    )
    .unwrap();
}

/// An impostor "bob.1" (its own identity, bound under an account of its own, from the two
/// seeds) and the first message it sends `target` from `target`'s genuine bundle.
fn impostor_first_message(
    account_seed: u64,
    device_seed: u64,
    target: &mut Device,
    plaintext: &[u8],
) -> (Device, Vec<u8>) {
    let cipher = SessionCipher::default();
    let forger = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(account_seed));
    let mut impostor = Device::new(&forger, "bob", 1, device_seed);
    let bundle = target.bundle();
    cipher
        .process_bundle(
            &mut impostor.store,
            &mut impostor.rng,
            &target.address,
            &bundle,
        )
        .unwrap();
    let first = cipher
        .encrypt(
            &mut impostor.store,
            &mut impostor.rng,
            &target.address,
            plaintext,
        )
        .unwrap();
    (impostor, first)
}

/// F2: at first contact (Alice holds Bob's verified list but no session with bob.1), a relay
/// or key server delivers a first message "from bob.1" made with its own identity. Through
/// the directory it is refused and changes nothing; Bob's genuine first message then works.
#[test]
fn a_relay_cannot_impersonate_a_listed_device_at_first_contact() {
    let mut alice = User::new("alice", 1, 30);
    let mut bob = User::new("bob", 1, 31);
    let dir = directory(&[&alice, &bob]);
    let cipher = SessionCipher::default();
    let bob1 = bob.devices[0].address.clone();

    // The impostor holds its own identity and binds it to bob.1 under an account of its own.
    let target = &mut alice.devices[0];
    let (_, forged) = impostor_first_message(32, 33, target, b"wire me money");
    assert_eq!(
        dir.decrypt(&cipher, &mut target.store, &bob1, &forged),
        Err(DeviceError::DeviceNotInList(bob1.clone()))
    );
    assert_eq!(target.store.trusted_identity(&bob1).unwrap(), None);
    assert!(cipher.session(&target.store, &bob1).unwrap().is_none());

    // Bob's genuine first message is accepted and names him.
    let genuine = first_message(&dir, &mut bob.devices[0], target, b"it's me");
    let received = dir
        .decrypt(&cipher, &mut target.store, &bob1, &genuine)
        .unwrap();
    assert_eq!(received.plaintext, b"it's me");
    assert_eq!(received.sender.identity(), bob.devices[0].identity.public());
}

/// F2, after the fact: an application that accepted an impostor's first message through the
/// TOFU-only `SessionCipher::decrypt` still cannot receive through the directory from that
/// session, and its fan-out skips and reports the device instead of failing for everyone.
#[test]
fn an_impostor_session_is_refused_and_skipped_by_the_plan() {
    let mut alice = User::new("alice", 1, 34);
    let mut bob = User::new("bob", 2, 35);
    let dir = directory(&[&alice, &bob]);
    let cipher = SessionCipher::default();
    let bob1 = bob.devices[0].address.clone();
    let target = &mut alice.devices[0];
    let (mut impostor, first) = impostor_first_message(36, 37, target, b"hello");
    // The TOFU layer alone accepts it (documented: it consults no device list).
    assert_eq!(
        cipher.decrypt(&mut target.store, &bob1, &first).unwrap(),
        b"hello"
    );
    let reply = cipher
        .encrypt(&mut target.store, &mut target.rng, &bob1, b"who are you")
        .unwrap();
    cipher
        .decrypt(&mut impostor.store, &target.address, &reply)
        .unwrap();
    let next = cipher
        .encrypt(
            &mut impostor.store,
            &mut impostor.rng,
            &target.address,
            b"send money",
        )
        .unwrap();
    assert_eq!(
        dir.decrypt(&cipher, &mut target.store, &bob1, &next),
        Err(DeviceError::DeviceNotInList(bob1.clone()))
    );
    // The plan: bob.2 still gets messages; bob.1 is reported, not fatal.
    let bob2 = bob.devices[1].address.clone();
    let bob2_bundle = bob.devices[1].bundle();
    dir.process_bundle(
        &cipher,
        &mut target.store,
        &mut target.rng,
        &bob2,
        &bob2_bundle,
    )
    .unwrap();
    let plan = dir
        .plan(&target.store, &target.address, &[&bob.id])
        .unwrap();
    assert_eq!(plan.ready, [bob2]);
    assert_eq!(plan.mismatched, std::slice::from_ref(&bob1));
    assert!(plan.needs_session.is_empty());
    let envelopes = dir
        .encrypt(&cipher, &mut target.store, &mut target.rng, &plan, b"hi")
        .unwrap();
    assert_eq!(envelopes.len(), 1);
    // Setting up a session from bob.1's genuine bundle replaces the impostor's.
    let genuine = bob.devices[0].bundle();
    dir.process_bundle(&cipher, &mut target.store, &mut target.rng, &bob1, &genuine)
        .unwrap();
    let plan = dir
        .plan(&target.store, &target.address, &[&bob.id])
        .unwrap();
    assert!(plan.mismatched.is_empty());
    assert_eq!(plan.ready.len(), 2);
}

/// F3: Mallory, an ordinary user, tries to list Alice's and Bob's device keys under her own
/// account and to relay between them, so that each believes the other's words are hers.
#[test]
fn an_account_cannot_pass_another_users_devices_off_as_its_own() {
    let mut alice = User::new("alice", 1, 40);
    let mut bob = User::new("bob", 1, 41);
    let mallory = User::new("mallory", 0, 42);
    let cipher = SessionCipher::default();

    // 1. Her account cannot sign a list naming their devices: they bound themselves to
    //    their own addresses and accounts.
    for stolen in [alice.devices[0].entry(), bob.devices[0].entry()] {
        assert_eq!(
            DeviceList::sign(&mallory.account, &mallory.id, 1, CREATED_AT, vec![stolen]),
            Err(DeviceError::Key(e2ee_core::KeyError::InvalidSignature(
                "device binding"
            )))
        );
    }
    // 2. Alice's genuine bundle republished as "mallory.1": the bundle's own binding names
    //    alice.1, so even the TOFU layer refuses it.
    let mallory1 = DeviceAddress::new("mallory", 1).unwrap();
    let alice_bundle = alice.devices[0].bundle();
    let bob_device = &mut bob.devices[0];
    assert_eq!(
        cipher.process_bundle(
            &mut bob_device.store,
            &mut bob_device.rng,
            &mallory1,
            &alice_bundle
        ),
        Err(Error::Handshake(HandshakeError::AddressMismatch {
            bound: alice.devices[0].address.clone()
        }))
    );
    assert!(
        cipher
            .session(&bob_device.store, &mallory1)
            .unwrap()
            .is_none()
    );
    // 3. A first message Bob meant for alice.1, relayed to Alice as coming from
    //    "mallory.2": its binding names bob.1.
    let alice1 = alice.devices[0].address.clone();
    let bundle = alice.devices[0].bundle();
    cipher
        .process_bundle(&mut bob_device.store, &mut bob_device.rng, &alice1, &bundle)
        .unwrap();
    let first = cipher
        .encrypt(
            &mut bob_device.store,
            &mut bob_device.rng,
            &alice1,
            b"for alice only",
        )
        .unwrap();
    let mallory2 = DeviceAddress::new("mallory", 2).unwrap();
    let alice_device = &mut alice.devices[0];
    assert_eq!(
        cipher.decrypt(&mut alice_device.store, &mallory2, &first),
        Err(Error::Handshake(HandshakeError::AddressMismatch {
            bound: bob_device.address.clone()
        }))
    );
    // 4. The same message delivered to another of Alice's... or another user's device: the
    //    initiator named its responder, and the receiver checks it is itself.
    let mut carol = User::new("carol", 1, 43);
    let carol_device = &mut carol.devices[0];
    assert_eq!(
        cipher.decrypt(&mut carol_device.store, &bob_device.address, &first),
        Err(Error::Handshake(HandshakeError::WrongRecipient {
            intended: alice1.clone()
        }))
    );
    // Delivered as sent, it works.
    assert_eq!(
        cipher
            .decrypt(&mut alice_device.store, &bob_device.address, &first)
            .unwrap(),
        b"for alice only"
    );
}

/// A device replaced at the same address (a lost phone re-registered as device 1): the new
/// list names the new identity, and the directory follows it without an identity-change
/// error, while the old identity's session can no longer deliver.
#[test]
fn a_replaced_device_is_followed_through_the_list() {
    let mut alice = User::new("alice", 1, 50);
    let mut bob = User::new("bob", 1, 51);
    let mut dir = directory(&[&alice, &bob]);
    let cipher = SessionCipher::default();
    let me = &mut alice.devices[0];
    let bob1 = bob.devices[0].address.clone();
    let bundle = bob.devices[0].bundle();
    dir.process_bundle(&cipher, &mut me.store, &mut me.rng, &bob1, &bundle)
        .unwrap();
    let old_identity = *bob.devices[0].identity.public();

    bob.add_device(1, 52);
    dir.update_device_list(&bob.list(2)).unwrap();
    let plan = dir.plan(&me.store, &me.address, &[&bob.id]).unwrap();
    assert_eq!(plan.mismatched, std::slice::from_ref(&bob1));
    let bundle = bob.devices[0].bundle();
    dir.process_bundle(&cipher, &mut me.store, &mut me.rng, &bob1, &bundle)
        .unwrap();
    assert_ne!(
        me.store.trusted_identity(&bob1).unwrap(),
        Some(old_identity)
    );
    let plan = dir.plan(&me.store, &me.address, &[&bob.id]).unwrap();
    assert_eq!(plan.ready, std::slice::from_ref(&bob1));
}

#[test]
fn device_lists_only_move_forward() {
    let mut bob = User::new("bob", 2, 7);
    let mut dir = DeviceDirectory::new();
    assert_eq!(
        dir.update_device_list(&bob.list(1)),
        Err(DeviceError::UntrustedAccount {
            user_id: uid("bob")
        })
    );
    dir.trust_account(&bob.id, bob.account.public()).unwrap();
    dir.update_device_list(&bob.list(5)).unwrap();
    // The same list again is a re-fetch; an older or equal-but-different one is refused.
    dir.update_device_list(&bob.list(5)).unwrap();
    assert_eq!(
        dir.update_device_list(&bob.list(4)),
        Err(DeviceError::StaleDeviceList { have: 5, got: 4 })
    );
    let removed = bob.devices.pop().unwrap();
    assert_eq!(
        dir.update_device_list(&bob.list(5)),
        Err(DeviceError::StaleDeviceList { have: 5, got: 5 })
    );
    // Removing a device: a newer list without it.
    dir.update_device_list(&bob.list(6)).unwrap();
    assert_eq!(
        dir.devices(&bob.id).unwrap(),
        [bob.devices[0].address.clone()]
    );
    assert!(dir.device_identity(&removed.address).is_none());
    assert_eq!(
        dir.devices(&uid("carol")),
        Err(DeviceError::UntrustedAccount {
            user_id: uid("carol")
        })
    );
    let carol = User::new("carol", 1, 70);
    dir.trust_account(&carol.id, carol.account.public())
        .unwrap();
    assert_eq!(
        dir.devices(&carol.id),
        Err(DeviceError::NoDeviceList {
            user_id: uid("carol")
        })
    );
}

#[test]
fn a_changed_account_identity_is_an_explicit_event() {
    let bob = User::new("bob", 1, 8);
    let new_bob = User::new("bob", 1, 9);
    let mut dir = directory(&[&bob]);
    assert_eq!(
        dir.trust_account(&bob.id, new_bob.account.public()),
        Err(DeviceError::AccountIdentityChanged {
            user_id: uid("bob")
        })
    );
    // A list signed by the new key is not accepted under the old trust.
    assert!(matches!(
        dir.update_device_list(&new_bob.list(2)),
        Err(DeviceError::Key(_))
    ));
    let alice = User::new("alice", 1, 20);
    let before = dir
        .safety_number(&alice.id, &alice.account.public(), &bob.id)
        .unwrap();
    dir.accept_account_change(&bob.id, new_bob.account.public())
        .unwrap();
    let after = dir
        .safety_number(&alice.id, &alice.account.public(), &bob.id)
        .unwrap();
    assert_ne!(before.displayable(), after.displayable());
    assert!(dir.device_list("bob").is_none());
    dir.update_device_list(&new_bob.list(1)).unwrap();
    assert_eq!(dir.devices(&bob.id).unwrap().len(), 1);
}

#[test]
fn safety_numbers_are_per_user_pair_over_account_keys() {
    let mut alice = User::new("alice", 1, 21);
    let mut bob = User::new("bob", 2, 22);
    let mut alice_dir = directory(&[&bob]);
    let bob_dir = directory(&[&alice]);
    let ours = alice_dir
        .safety_number(&alice.id, &alice.account.public(), &bob.id)
        .unwrap();
    let theirs = bob_dir
        .safety_number(&bob.id, &bob.account.public(), &alice.id)
        .unwrap();
    assert_eq!(ours.displayable(), theirs.displayable());
    // A new device on either side changes nothing.
    bob.add_device(3, 23);
    alice.add_device(2, 24);
    alice_dir.update_device_list(&bob.list(2)).unwrap();
    let again = alice_dir
        .safety_number(&alice.id, &alice.account.public(), &bob.id)
        .unwrap();
    assert_eq!(again, ours);
    assert!(matches!(
        alice_dir.safety_number(&alice.id, &alice.account.public(), &uid("carol")),
        Err(DeviceError::UntrustedAccount { .. })
    ));
}

#[test]
fn group_membership_follows_verified_device_lists() {
    let mut bob = User::new("bob", 1, 10);
    let alice = User::new("alice", 1, 11);
    let mut dir = directory(&[&alice, &bob]);
    let me = alice.devices[0].address.clone();
    let mut group = GroupSession::new(GroupId::new(b"g").unwrap(), me.clone());
    group.set_members(members(&dir, &[&alice, &bob])).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let first = group.encrypt(&mut rng, b"1").unwrap();
    assert_eq!(*first.recipients, [bob.devices[0].address.clone()]);

    // Bob signs in a second device: it gets the current key, no rotation.
    bob.add_device(2, 13);
    dir.update_device_list(&bob.list(2)).unwrap();
    group.set_members(members(&dir, &[&alice, &bob])).unwrap();
    let second = group.encrypt(&mut rng, b"2").unwrap();
    assert_eq!(second.distribute_to, [bob.devices[1].address.clone()]);
    assert_eq!(
        group.sender_key_id(),
        Some((first.message_id.0 >> 32) as u32)
    );

    // Bob removes it again: the next message rotates and goes to device 1 only.
    bob.devices.pop();
    dir.update_device_list(&bob.list(3)).unwrap();
    group.set_members(members(&dir, &[&alice, &bob])).unwrap();
    let third = group.encrypt(&mut rng, b"3").unwrap();
    assert_ne!(
        (third.message_id.0 >> 32) as u32,
        (first.message_id.0 >> 32) as u32
    );
    assert_eq!(third.distribute_to, [bob.devices[0].address.clone()]);
}

/// R3: account TOFU and device-list anti-rollback survive a restart.
#[test]
fn the_directory_survives_a_restart() {
    let bob = User::new("bob", 2, 60);
    let carol = User::new("carol", 1, 61);
    let mut dir = directory(&[&bob]);
    dir.update_device_list(&bob.list(3)).unwrap();
    dir.trust_account(&carol.id, carol.account.public())
        .unwrap();
    let bytes = dir.to_bytes();
    let mut restored = DeviceDirectory::from_bytes(&bytes).unwrap();
    assert_eq!(restored, dir);
    assert_eq!(restored.to_bytes(), bytes);
    // An older list is still refused, and a different account for Bob is still a change.
    assert_eq!(
        restored.update_device_list(&bob.list(2)),
        Err(DeviceError::StaleDeviceList { have: 3, got: 2 })
    );
    assert!(matches!(
        restored.trust_account(&bob.id, carol.account.public()),
        Err(DeviceError::AccountIdentityChanged { .. })
    ));
    // Garbage fails cleanly.
    assert!(DeviceDirectory::from_bytes(&[]).is_err());
    assert!(DeviceDirectory::from_bytes(&[2, 0, 0, 0, 0]).is_err());
    assert!(DeviceDirectory::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(DeviceDirectory::from_bytes(&flipped).is_err());
    e2ee_encoding::check_codec(&dir);
}
