//! Multi-device through the public API: signed device lists, certificates, the fan-out plan,
//! and the ghost-device attack (a server adding a device nobody signed).

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

use e2ee_core::{
    DeviceAddress, IdentityKeyPair, InMemoryStore, KemPreKey, KemPreKeyKind, PreKeyBundle,
    SessionCipher, SignedPreKey,
    account::{AccountIdentityKeyPair, DeviceCertificate, DeviceEntry, DeviceList},
    group::{DeviceDirectory, GroupError, GroupId, GroupSession},
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Device {
    address: DeviceAddress,
    identity: IdentityKeyPair,
    store: InMemoryStore,
    rng: ChaCha20Rng,
}

impl Device {
    fn new(user: &str, device_id: u32, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let store = InMemoryStore::new(identity.clone());
        Self {
            address: DeviceAddress::new(user, device_id).unwrap(),
            identity,
            store,
            rng,
        }
    }

    fn entry(&self) -> DeviceEntry {
        DeviceEntry {
            device_id: self.address.device_id(),
            identity: *self.identity.public(),
        }
    }

    fn bundle(&mut self) -> PreKeyBundle {
        let signed = SignedPreKey::generate(&mut self.rng, &self.identity, 1, 1_700_000_000);
        let kem = KemPreKey::generate(
            &mut self.rng,
            &self.identity,
            1,
            KemPreKeyKind::LastResort,
            1_700_000_000,
        );
        let bundle = PreKeyBundle {
            identity: *self.identity.public(),
            signed_prekey: signed.public().clone(),
            one_time_prekey: None,
            kem_prekey: Some(kem.public().clone()),
        };
        self.store.add_signed_prekey(signed);
        self.store.add_kem_prekey(kem);
        bundle
    }
}

struct User {
    account: AccountIdentityKeyPair,
    devices: Vec<Device>,
}

fn user(name: &str, count: u32, seed: u64) -> User {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    User {
        account: AccountIdentityKeyPair::generate(&mut rng),
        devices: (1..=count)
            .map(|i| Device::new(name, i, seed * 100 + u64::from(i)))
            .collect(),
    }
}

fn list(user: &User, name: &str, version: u64) -> DeviceList {
    DeviceList::sign(
        &user.account,
        name,
        version,
        1_700_000_000 + version,
        user.devices.iter().map(Device::entry).collect(),
    )
    .unwrap()
}

fn directory(users: &[(&str, &User)]) -> DeviceDirectory {
    let mut dir = DeviceDirectory::new();
    for (name, u) in users {
        dir.trust_account(name, u.account.public()).unwrap();
        dir.update_device_list(&list(u, name, 1)).unwrap();
    }
    dir
}

#[test]
fn fan_out_covers_the_recipients_devices_and_our_other_devices() {
    let mut alice = user("alice", 2, 1);
    let mut bob = user("bob", 2, 2);
    let dir = directory(&[("alice", &alice), ("bob", &bob)]);
    let cipher = SessionCipher::default();
    let (me, rest) = alice.devices.split_first_mut().unwrap();

    let plan = dir.plan(&me.store, &me.address, &["bob"]).unwrap();
    let expected: Vec<DeviceAddress> = rest
        .iter()
        .chain(&bob.devices)
        .map(|d| d.address.clone())
        .collect();
    assert_eq!(plan.needs_session, expected);
    assert!(plan.ready.is_empty());
    assert!(
        dir.encrypt(&cipher, &mut me.store, &mut me.rng, &plan, b"hi")
            .is_err()
    );

    for peer in rest.iter_mut().chain(bob.devices.iter_mut()) {
        let bundle = peer.bundle();
        dir.process_bundle(&cipher, &mut me.store, &mut me.rng, &peer.address, &bundle)
            .unwrap();
    }
    let plan = dir.plan(&me.store, &me.address, &["bob"]).unwrap();
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
        let plaintext = cipher
            .decrypt(&mut peer.store, &me.address, &envelope.ciphertext)
            .unwrap();
        assert_eq!(plaintext, b"hi bob");
    }
}

#[test]
fn a_ghost_device_inserted_by_the_server_gets_nothing() {
    let mut alice = user("alice", 1, 3);
    let mut bob = user("bob", 1, 4);
    let mut dir = directory(&[("alice", &alice), ("bob", &bob)]);
    let me = &mut alice.devices[0];
    let cipher = SessionCipher::default();
    let mut ghost = Device::new("bob", 66, 99);

    // 1. A list with the ghost, signed by a key the server made up.
    let server_key = AccountIdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(5));
    let mut entries: Vec<DeviceEntry> = bob.devices.iter().map(Device::entry).collect();
    entries.push(ghost.entry());
    let forged = DeviceList::sign(&server_key, "bob", 2, 1_700_000_100, entries).unwrap();
    assert!(matches!(
        dir.update_device_list(&forged),
        Err(GroupError::Key(_))
    ));
    // 2. The genuine list re-served (a rollback to it later is refused as well).
    assert!(dir.update_device_list(&list(&bob, "bob", 1)).is_ok());

    // The plan never names the ghost, and a session with it cannot be started...
    let plan = dir.plan(&me.store, &me.address, &["bob"]).unwrap();
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
        Err(GroupError::DeviceNotInList(ghost.address.clone()))
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
        Err(GroupError::DeviceNotInList(bob.devices[0].address.clone()))
    );
    // A certificate the server made for it does not verify either.
    let cert = DeviceCertificate::sign(
        &server_key,
        "bob",
        66,
        ghost.identity.public(),
        1_700_000_000,
    )
    .unwrap();
    assert!(matches!(
        dir.verify_certificate(&cert),
        Err(GroupError::Key(_))
    ));
    // The genuine device's certificate does.
    let genuine = DeviceCertificate::sign(
        &bob.account,
        "bob",
        1,
        bob.devices[0].identity.public(),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(
        dir.verify_certificate(&genuine).unwrap(),
        bob.devices[0].address
    );
    // A correctly certified device that the list does not name is still refused.
    let unlisted = DeviceCertificate::sign(
        &bob.account,
        "bob",
        66,
        ghost.identity.public(),
        1_700_000_000,
    )
    .unwrap();
    assert_eq!(
        dir.verify_certificate(&unlisted),
        Err(GroupError::DeviceNotInList(ghost.address.clone()))
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

#[test]
fn device_lists_only_move_forward() {
    let mut bob = user("bob", 2, 7);
    let mut dir = DeviceDirectory::new();
    assert_eq!(
        dir.update_device_list(&list(&bob, "bob", 1)),
        Err(GroupError::UntrustedAccount {
            user_id: "bob".into()
        })
    );
    dir.trust_account("bob", bob.account.public()).unwrap();
    dir.update_device_list(&list(&bob, "bob", 5)).unwrap();
    // The same list again is a re-fetch; an older or equal-but-different one is refused.
    dir.update_device_list(&list(&bob, "bob", 5)).unwrap();
    assert_eq!(
        dir.update_device_list(&list(&bob, "bob", 4)),
        Err(GroupError::StaleDeviceList { have: 5, got: 4 })
    );
    let removed = bob.devices.pop().unwrap();
    assert_eq!(
        dir.update_device_list(&list(&bob, "bob", 5)),
        Err(GroupError::StaleDeviceList { have: 5, got: 5 })
    );
    // Removing a device: a newer list without it.
    dir.update_device_list(&list(&bob, "bob", 6)).unwrap();
    assert_eq!(
        dir.devices("bob").unwrap(),
        [bob.devices[0].address.clone()]
    );
    assert!(dir.device_identity(&removed.address).is_none());
    assert_eq!(
        dir.devices("carol"),
        Err(GroupError::NoDeviceList {
            user_id: "carol".into()
        })
    );
}

#[test]
fn a_changed_account_identity_is_an_explicit_event() {
    let bob = user("bob", 1, 8);
    let new_bob = user("bob", 1, 9);
    let mut dir = directory(&[("bob", &bob)]);
    assert_eq!(
        dir.trust_account("bob", new_bob.account.public()),
        Err(GroupError::AccountIdentityChanged {
            user_id: "bob".into()
        })
    );
    // A list signed by the new key is not accepted under the old trust.
    assert!(matches!(
        dir.update_device_list(&list(&new_bob, "bob", 2)),
        Err(GroupError::Key(_))
    ));
    let alice = user("alice", 1, 20);
    let before = dir
        .safety_number("alice", &alice.account.public(), "bob")
        .unwrap();
    dir.accept_account_change("bob", new_bob.account.public());
    let after = dir
        .safety_number("alice", &alice.account.public(), "bob")
        .unwrap();
    assert_ne!(before.displayable(), after.displayable());
    assert!(dir.device_list("bob").is_none());
    dir.update_device_list(&list(&new_bob, "bob", 1)).unwrap();
    assert_eq!(dir.devices("bob").unwrap().len(), 1);
}

#[test]
fn safety_numbers_are_per_user_pair_over_account_keys() {
    let mut alice = user("alice", 1, 21);
    let mut bob = user("bob", 2, 22);
    let mut alice_dir = directory(&[("bob", &bob)]);
    let bob_dir = directory(&[("alice", &alice)]);
    let ours = alice_dir
        .safety_number("alice", &alice.account.public(), "bob")
        .unwrap();
    let theirs = bob_dir
        .safety_number("bob", &bob.account.public(), "alice")
        .unwrap();
    assert_eq!(ours.displayable(), theirs.displayable());
    // A new device on either side changes nothing.
    bob.devices.push(Device::new("bob", 3, 23));
    alice.devices.push(Device::new("alice", 2, 24));
    alice_dir.update_device_list(&list(&bob, "bob", 2)).unwrap();
    let again = alice_dir
        .safety_number("alice", &alice.account.public(), "bob")
        .unwrap();
    assert_eq!(again, ours);
    assert!(matches!(
        alice_dir.safety_number("alice", &alice.account.public(), "carol"),
        Err(GroupError::UntrustedAccount { .. })
    ));
}

#[test]
fn group_membership_follows_verified_device_lists() {
    let mut bob = user("bob", 1, 10);
    let alice = user("alice", 1, 11);
    let mut dir = directory(&[("alice", &alice), ("bob", &bob)]);
    let me = alice.devices[0].address.clone();
    let mut group = GroupSession::new(GroupId::new(b"g").unwrap(), me.clone());
    let members = |dir: &DeviceDirectory| {
        let mut all = dir.devices("alice").unwrap();
        all.extend(dir.devices("bob").unwrap());
        all
    };
    group.set_members(members(&dir)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let first = group.encrypt(&mut rng, b"1").unwrap();
    assert_eq!(*first.recipients, [bob.devices[0].address.clone()]);

    // Bob signs in a second device: it gets the current key, no rotation.
    bob.devices.push(Device::new("bob", 2, 13));
    dir.update_device_list(&list(&bob, "bob", 2)).unwrap();
    group.set_members(members(&dir)).unwrap();
    let second = group.encrypt(&mut rng, b"2").unwrap();
    assert_eq!(second.distribute_to, [bob.devices[1].address.clone()]);
    assert_eq!(
        group.sender_key_id(),
        Some((first.message_id.0 >> 32) as u32)
    );

    // Bob removes it again: the next message rotates and goes to device 1 only.
    bob.devices.pop();
    dir.update_device_list(&list(&bob, "bob", 3)).unwrap();
    group.set_members(members(&dir)).unwrap();
    let third = group.encrypt(&mut rng, b"3").unwrap();
    assert_ne!(
        (third.message_id.0 >> 32) as u32,
        (first.message_id.0 >> 32) as u32
    );
    assert_eq!(third.distribute_to, [bob.devices[0].address.clone()]);
}
