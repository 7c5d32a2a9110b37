//! Groups through `Device`, bytes in and bytes out: creation and welcome, one ciphertext per
//! message for every member device, receipts that wait for every member, removal (the
//! removed member reads nothing after it), permissions, catching up on missed changes, and a
//! hostile server that injects a forged change and a ghost member's envelopes.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{Dir, address, bundle, key};
use e2ee_client::{
    ConversationId, Device, Error, GroupEdit, GroupReceived, MAX_SYNC_ANSWER, MessageStatus,
    OutboxEntry, Received, Registration,
};
use e2ee_core::DeviceAddress;

/// Users with one device each, every one knowing every other and holding a session to them.
struct World {
    devices: BTreeMap<String, Device>,
    next_relay_id: u64,
}

impl World {
    fn new(dir: &Dir, users: &[&str]) -> Self {
        let mut made: Vec<(String, Device, Registration)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (device, reg) =
                    Device::create_primary(&dir.file(&format!("{u}.db")), &key(i as u8 + 1), u, 1)
                        .unwrap();
                (u.to_string(), device, reg)
            })
            .collect();
        let uploads: Vec<_> = made
            .iter_mut()
            .map(|(_, d, _)| d.generate_prekeys(users.len()).unwrap())
            .collect();
        for i in 0..made.len() {
            for j in 0..made.len() {
                if i == j {
                    continue;
                }
                let (user, reg) = (made[j].0.clone(), made[j].2.clone());
                let upload = &uploads[j];
                let device = &mut made[i].1;
                device
                    .learn_user(&user, &reg.account_key, &reg.device_list)
                    .unwrap();
                device
                    .add_bundle(&address(&user, 1), &bundle(&reg, upload, i))
                    .unwrap();
            }
        }
        Self {
            devices: made.into_iter().map(|(u, d, _)| (u, d)).collect(),
            next_relay_id: 1,
        }
    }

    fn device(&mut self, user: &str) -> &mut Device {
        self.devices.get_mut(user).unwrap()
    }

    /// What the relay does with `from`'s entry: each envelope to its device (unless `skip`
    /// names the user), then the entry leaves the outbox. Returns each delivery's result.
    fn deliver_except(
        &mut self,
        from: &str,
        entry: &OutboxEntry,
        skip: &[&str],
    ) -> Vec<(String, Result<Option<Received>, Error>)> {
        let sender = address(from, 1);
        let mut results = Vec::new();
        for (to, ciphertext) in &entry.envelopes {
            if skip.contains(&to.user.as_str()) {
                continue;
            }
            let relay_id = self.next_relay_id;
            self.next_relay_id += 1;
            let result = self
                .device(to.user.as_str())
                .receive(&sender, relay_id, ciphertext);
            results.push((to.user.to_string(), result));
        }
        self.device(from).acknowledged(entry.msg_id).unwrap();
        results
    }

    /// Delivers entries and then, until no device has more, everything they queued in
    /// answer (sync requests and answers), in order.
    fn deliver_all(&mut self, from: &str, entries: &[OutboxEntry]) {
        for entry in entries {
            for (to, result) in self.deliver_except(from, entry, &[]) {
                result.unwrap_or_else(|e| panic!("{to} refused {from}'s envelope: {e}"));
            }
        }
        self.flush();
    }

    /// Sends every device's outbox until all are empty.
    fn flush(&mut self) {
        for _ in 0..10 {
            let mut any = false;
            let users: Vec<String> = self.devices.keys().cloned().collect();
            for user in users {
                let entries = self.device(&user).outbox().unwrap();
                for entry in &entries {
                    any = true;
                    for (to, result) in self.deliver_except(&user, entry, &[]) {
                        result.unwrap_or_else(|e| panic!("{to} refused {user}'s envelope: {e}"));
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("outboxes did not drain");
    }

    /// `from` sends `body` to group `id` and everything is delivered.
    fn send_and_deliver(&mut self, from: &str, id: &[u8], body: &[u8]) {
        self.device(from).send_group_message(id, body).unwrap();
        let entries = self.device(from).outbox().unwrap();
        self.deliver_all(from, &entries);
    }

    fn recipients(entry: &OutboxEntry) -> Vec<DeviceAddress> {
        entry.envelopes.iter().map(|(to, _)| to.clone()).collect()
    }
}

fn group_body_of(result: &Result<Option<Received>, Error>) -> Vec<u8> {
    match result {
        Ok(Some(Received::Message(m))) => m.body.clone(),
        other => panic!("not a message: {other:?}"),
    }
}

fn members(device: &mut Device, id: &[u8]) -> Vec<(String, bool)> {
    device
        .group(id)
        .unwrap()
        .members
        .into_iter()
        .map(|m| (m.user, m.admin))
        .collect()
}

/// alice creates a group with bob and carol, everything delivered.
fn group_of_three(dir: &Dir) -> (World, Vec<u8>) {
    let mut world = World::new(dir, &["alice", "bob", "carol", "mallory", "ghost"]);
    let (id, entries) = world
        .device("alice")
        .create_group("climbing", &["bob", "carol"])
        .unwrap();
    world.deliver_all("alice", &entries);
    (world, id)
}

#[test]
fn members_share_one_signed_state_and_one_ciphertext_reaches_every_member_device() {
    let dir = Dir::new("groups-chat");
    let (mut world, id) = group_of_three(&dir);
    let expected = vec![
        ("alice".to_owned(), true),
        ("bob".to_owned(), false),
        ("carol".to_owned(), false),
    ];
    for user in ["alice", "bob", "carol"] {
        let info = world.device(user).group(&id).unwrap();
        assert_eq!(info.name, "climbing", "{user}");
        assert_eq!(info.version, 1);
        assert_eq!(members(world.device(user), &id), expected, "{user}");
    }
    assert!(matches!(
        world.device("mallory").group(&id),
        Err(Error::UnknownGroup)
    ));

    // alice's first message: her sender key to bob and carol, then one ciphertext for both.
    let sent = world
        .device("alice")
        .send_group_message(&id, b"hello all")
        .unwrap();
    let outbox = world.device("alice").outbox().unwrap();
    assert_eq!(outbox.len(), 2, "the sender key entry, then the message");
    assert_eq!(outbox[1].msg_id, sent.id);
    let ciphertexts: Vec<&Vec<u8>> = sent.message().envelopes.iter().map(|(_, c)| c).collect();
    assert!(ciphertexts.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        World::recipients(sent.message()),
        vec![address("bob", 1), address("carol", 1)]
    );
    for (to, result) in world.deliver_except("alice", &outbox[0], &[]) {
        assert!(
            matches!(result, Ok(Some(Received::Group(GroupReceived::Quiet)))),
            "{to}: {result:?}"
        );
    }
    for (to, result) in world.deliver_except("alice", &outbox[1], &[]) {
        assert_eq!(group_body_of(&result), b"hello all", "{to}");
        let Ok(Some(Received::Message(m))) = result else {
            unreachable!()
        };
        assert_eq!(m.conversation, ConversationId::Group(id.clone()));
    }
    // Delivered only when every member device says so.
    let status = |world: &mut World| {
        world
            .device("alice")
            .group_messages(&id, None, 10)
            .unwrap()
            .messages[0]
            .status
    };
    assert_eq!(status(&mut world), MessageStatus::Sent);
    let receipts = world.device("bob").send_receipts("alice").unwrap();
    world.deliver_all("bob", &receipts);
    assert_eq!(status(&mut world), MessageStatus::Sent);
    let receipts = world.device("carol").send_receipts("alice").unwrap();
    world.deliver_all("carol", &receipts);
    assert_eq!(status(&mut world), MessageStatus::Delivered);
    // Read by all once both read it.
    let hello = world
        .device("alice")
        .group_messages(&id, None, 10)
        .unwrap()
        .messages[0]
        .id;
    for (n, user) in ["bob", "carol"].into_iter().enumerate() {
        let read = world
            .device(user)
            .mark_group_read(&id, &[("alice".into(), hello)])
            .unwrap();
        assert_eq!(read.len(), 1);
        let receipts = world.device(user).send_receipts("alice").unwrap();
        world.deliver_all(user, &receipts);
        let expected = if n == 0 {
            MessageStatus::Delivered
        } else {
            MessageStatus::Read
        };
        assert_eq!(status(&mut world), expected, "after {user}");
    }
    // Marking a 1:1 id of the same author through the group changes nothing.
    assert!(
        world
            .device("bob")
            .mark_group_read(&id, &[("alice".into(), 12345)])
            .unwrap()
            .is_empty()
    );

    // bob answers; his key goes first, the message reaches alice and carol.
    world
        .device("bob")
        .send_group_message(&id, b"hi alice")
        .unwrap();
    let entries = world.device("bob").outbox().unwrap();
    let results = world.deliver_except("bob", &entries[0], &[]);
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    for (to, result) in world.deliver_except("bob", &entries[1], &[]) {
        assert_eq!(group_body_of(&result), b"hi alice", "{to}");
    }
    let page = world.device("carol").group_messages(&id, None, 10).unwrap();
    let bodies: Vec<&[u8]> = page.messages.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, vec![&b"hello all"[..], &b"hi alice"[..]]);

    // The state and the keys survive a restart.
    drop(world.devices.remove("carol"));
    let carol = Device::open(&dir.file("carol.db"), &key(3)).unwrap();
    world.devices.insert("carol".into(), carol);
    assert_eq!(members(world.device("carol"), &id), expected);
    world
        .device("alice")
        .send_group_message(&id, b"again")
        .unwrap();
    let entries = world.device("alice").outbox().unwrap();
    for (to, result) in world.deliver_except("alice", &entries[0], &[]) {
        assert_eq!(group_body_of(&result), b"again", "{to}");
    }
}

#[test]
fn a_removed_member_learns_it_and_reads_nothing_sent_after() {
    let dir = Dir::new("groups-remove");
    let (mut world, id) = group_of_three(&dir);
    world.send_and_deliver("alice", &id, b"before");

    let entries = world
        .device("alice")
        .change_group(&id, GroupEdit::Remove("carol".into()))
        .unwrap();
    // The change goes to bob and to carol (who learns she is out).
    let told: Vec<DeviceAddress> = World::recipients(&entries[0]);
    assert_eq!(told, vec![address("bob", 1), address("carol", 1)]);
    world.deliver_all("alice", &entries);
    for user in ["alice", "bob", "carol"] {
        assert_eq!(
            members(world.device(user), &id),
            vec![("alice".to_owned(), true), ("bob".to_owned(), false)],
            "{user}"
        );
    }
    assert!(matches!(
        world
            .device("carol")
            .send_group_message(&id, b"still here?"),
        Err(Error::NotPermitted { .. })
    ));

    // alice's next message goes to bob alone under a fresh key; a server handing carol a
    // copy gets her nothing.
    let sent = world
        .device("alice")
        .send_group_message(&id, b"after")
        .unwrap();
    assert_eq!(World::recipients(sent.message()), vec![address("bob", 1)]);
    let entries = world.device("alice").outbox().unwrap();
    for (to, result) in world.deliver_except("alice", &entries[0], &[]) {
        assert_eq!(to, "bob", "the new key goes to bob only");
        result.unwrap();
    }
    let copy = sent.message().envelopes[0].1.clone();
    let result = world
        .device("carol")
        .receive(&address("alice", 1), 9_999, &copy);
    assert!(
        matches!(
            result,
            Err(Error::Undecryptable | Error::NotPermitted { .. })
        ),
        "{result:?}"
    );
    let results = world.deliver_except("alice", &entries[1], &[]);
    assert_eq!(group_body_of(&results[0].1), b"after");
}

#[test]
fn only_what_the_state_permits_is_done() {
    let dir = Dir::new("groups-permissions");
    let (mut world, id) = group_of_three(&dir);
    // A member may not add, remove or change the settings; nothing is committed.
    for edit in [
        GroupEdit::Add {
            user: "mallory".into(),
            admin: false,
        },
        GroupEdit::Remove("alice".into()),
        GroupEdit::Settings {
            only_admins_send: true,
            only_admins_edit_info: true,
        },
    ] {
        assert!(matches!(
            world.device("bob").change_group(&id, edit),
            Err(Error::GroupChangeRefused { .. })
        ));
    }
    assert!(world.device("bob").outbox().unwrap().is_empty());
    assert_eq!(world.device("bob").group(&id).unwrap().version, 1);
    // A member may rename while info is open to all.
    let entries = world
        .device("bob")
        .change_group(&id, GroupEdit::Rename("crag".into()))
        .unwrap();
    world.deliver_all("bob", &entries);
    assert_eq!(world.device("carol").group(&id).unwrap().name, "crag");
    // Only admins send, after alice says so.
    let entries = world
        .device("alice")
        .change_group(
            &id,
            GroupEdit::Settings {
                only_admins_send: true,
                only_admins_edit_info: false,
            },
        )
        .unwrap();
    world.deliver_all("alice", &entries);
    assert!(matches!(
        world.device("bob").send_group_message(&id, b"may I?"),
        Err(Error::NotPermitted {
            what: "only admins may send"
        })
    ));
    // Adding a user welcomes them with the whole group.
    let entries = world
        .device("alice")
        .change_group(
            &id,
            GroupEdit::Add {
                user: "mallory".into(),
                admin: false,
            },
        )
        .unwrap();
    world.deliver_all("alice", &entries);
    let info = world.device("mallory").group(&id).unwrap();
    assert_eq!((info.version, info.name.as_str()), (4, "crag"));
    assert!(info.only_admins_send);
    // The last admin leaving hands the group to the member who joined first.
    let entries = world
        .device("alice")
        .change_group(&id, GroupEdit::Leave)
        .unwrap();
    world.deliver_all("alice", &entries);
    for user in ["bob", "carol", "mallory"] {
        assert_eq!(
            members(world.device(user), &id),
            vec![
                ("bob".to_owned(), true),
                ("carol".to_owned(), false),
                ("mallory".to_owned(), false)
            ],
            "{user}"
        );
    }
}

#[test]
fn a_member_who_missed_a_change_catches_up_from_the_next_message() {
    let dir = Dir::new("groups-sync");
    let (mut world, id) = group_of_three(&dir);
    let entries = world
        .device("alice")
        .change_group(&id, GroupEdit::Rename("renamed".into()))
        .unwrap();
    // carol never gets the change.
    for (_, result) in world.deliver_except("alice", &entries[0], &["carol"]) {
        result.unwrap();
    }
    assert_eq!(world.device("carol").group(&id).unwrap().version, 1);
    world
        .device("alice")
        .send_group_message(&id, b"new name!")
        .unwrap();
    let entries = world.device("alice").outbox().unwrap();
    world.deliver_all("alice", &entries);
    // carol read the message, saw alice's newer state, asked, and got the change.
    let info = world.device("carol").group(&id).unwrap();
    assert_eq!((info.version, info.name.as_str()), (2, "renamed"));
}

#[test]
fn a_hostile_server_can_neither_add_a_ghost_nor_forge_a_change() {
    let dir = Dir::new("groups-hostile");
    let (mut world, id) = group_of_three(&dir);
    world.send_and_deliver("alice", &id, b"first");
    let three = vec![
        ("alice".to_owned(), true),
        ("bob".to_owned(), false),
        ("carol".to_owned(), false),
    ];

    // A ghost in the fan-out: mallory, in no group of alice's, makes her own group and
    // re-addresses one of its messages to alice's group id (the relay payload names it).
    let (ghost_group, entries) = world
        .device("mallory")
        .create_group("ghost", &["bob"])
        .unwrap();
    assert_ne!(ghost_group, id);
    world.deliver_all("mallory", &entries);
    world
        .device("mallory")
        .send_group_message(&ghost_group, b"boo")
        .unwrap();
    let outbox = world.device("mallory").outbox().unwrap();
    world.deliver_all("mallory", &outbox[..1]);
    let mut forged = outbox[1].envelopes[0].1.clone();
    forged[2..2 + id.len()].copy_from_slice(&id);
    let result = world
        .device("bob")
        .receive(&address("mallory", 1), 50_000, &forged);
    assert!(
        matches!(result, Err(Error::NotPermitted { .. })),
        "{result:?}"
    );
    assert_eq!(members(world.device("bob"), &id), three);

    // A forged change: mallory, an admin once, is removed; the server keeps the removal
    // from her and delivers the change she then signs on her stale state (adding "ghost").
    let entries = world
        .device("alice")
        .change_group(
            &id,
            GroupEdit::Add {
                user: "mallory".into(),
                admin: true,
            },
        )
        .unwrap();
    world.deliver_all("alice", &entries);
    let entries = world
        .device("alice")
        .change_group(&id, GroupEdit::Remove("mallory".into()))
        .unwrap();
    for (to, result) in world.deliver_except("alice", &entries[0], &["mallory"]) {
        result.unwrap_or_else(|e| panic!("{to}: {e}"));
    }
    let entries = world
        .device("mallory")
        .change_group(
            &id,
            GroupEdit::Add {
                user: "ghost".into(),
                admin: true,
            },
        )
        .unwrap();
    for entry in &entries {
        for (to, result) in world.deliver_except("mallory", entry, &["ghost"]) {
            // Checked and held, but it competes with her removal and loses: no change.
            assert!(
                matches!(result, Ok(Some(Received::Group(GroupReceived::Quiet)))),
                "{to}: {result:?}"
            );
        }
    }
    for user in ["alice", "bob", "carol"] {
        assert_eq!(members(world.device(user), &id), three, "{user}");
    }
    // When bob sends, the fan-out comes from the signed state: neither mallory nor ghost,
    // and no sender key goes to them.
    world
        .device("bob")
        .send_group_message(&id, b"who is here?")
        .unwrap();
    for entry in world.device("bob").outbox().unwrap() {
        let to = World::recipients(&entry);
        assert!(
            to.iter()
                .all(|d| d.user.as_str() != "mallory" && d.user.as_str() != "ghost"),
            "{to:?}"
        );
    }

    // A server that swaps alice's account (a device list for "alice" under another account)
    // is refused by bob's directory, and the group keeps the key it pinned.
    let (_, impostor) =
        Device::create_primary(&dir.file("impostor.db"), &key(99), "alice", 1).unwrap();
    let swap =
        world
            .device("bob")
            .learn_user("alice", &impostor.account_key, &impostor.device_list);
    assert!(
        matches!(swap, Err(Error::AccountKeyChanged { .. })),
        "{swap:?}"
    );
    assert_eq!(members(world.device("bob"), &id), three);
}

#[test]
fn a_member_far_behind_catches_up_in_bounded_answers_from_final_and_open_changes() {
    let dir = Dir::new("groups-far-behind");
    let (mut world, id) = group_of_three(&dir);
    let missed = MAX_SYNC_ANSWER + 10;
    for i in 0..missed {
        let entries = world
            .device("alice")
            .change_group(&id, GroupEdit::Rename(format!("name {i}")))
            .unwrap();
        for (_, result) in world.deliver_except("alice", &entries[0], &["carol"]) {
            result.unwrap();
        }
    }
    let version = |world: &mut World| world.device("carol").group(&id).unwrap().version;
    assert_eq!(version(&mut world), 1);
    // The next message makes carol ask; alice answers with at most MAX_SYNC_ANSWER changes,
    // most of them final already at alice (over MAX_FORK_DEPTH behind her head).
    world.send_and_deliver("alice", &id, b"one");
    assert_eq!(version(&mut world), 1 + MAX_SYNC_ANSWER as u64);
    world.send_and_deliver("alice", &id, b"two");
    assert_eq!(version(&mut world), 1 + missed as u64);
    assert_eq!(
        world.device("carol").group(&id).unwrap(),
        world.device("alice").group(&id).unwrap()
    );
}

#[test]
fn a_member_who_lost_a_sender_key_asks_for_it_and_reads_the_next_message() {
    let dir = Dir::new("groups-key-request");
    let (mut world, id) = group_of_three(&dir);
    world
        .device("alice")
        .send_group_message(&id, b"lost on bob")
        .unwrap();
    let entries = world.device("alice").outbox().unwrap();
    // bob never gets alice's key; carol does.
    for (_, result) in world.deliver_except("alice", &entries[0], &["bob"]) {
        result.unwrap();
    }
    let results = world.deliver_except("alice", &entries[1], &[]);
    for (to, result) in results {
        match to.as_str() {
            "bob" => assert!(
                matches!(
                    result,
                    Ok(Some(Received::Group(
                        GroupReceived::AskedForSenderKey { .. }
                    )))
                ),
                "{result:?}"
            ),
            _ => assert_eq!(group_body_of(&result), b"lost on bob"),
        }
    }
    // bob's request goes out, alice answers with her current key, bob reads what follows.
    world.flush();
    world
        .device("alice")
        .send_group_message(&id, b"readable again")
        .unwrap();
    let entries = world.device("alice").outbox().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "bob and carol hold the key: no distribution"
    );
    for (to, result) in world.deliver_except("alice", &entries[0], &[]) {
        assert_eq!(group_body_of(&result), b"readable again", "{to}");
    }
    // The message bob could not read is not in his log; the next one is.
    let page = world.device("bob").group_messages(&id, None, 10).unwrap();
    let bodies: Vec<&[u8]> = page.messages.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, vec![&b"readable again"[..]]);
}
