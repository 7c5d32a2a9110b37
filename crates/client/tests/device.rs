//! `Device`, bytes in and bytes out, as an app with its own transport uses it: register,
//! upload prekeys, learn a user, fetch a bundle, send and receive chat messages and receipts,
//! page the history, restart; and the typed refusals (replay, unknown user, unlisted device, a changed account key).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

mod common;

use common::{Dir, address, body, bundle, key, paired_devices};
use e2ee_client::{
    Device, Error, LOG_PAGE_LEN, MAX_MESSAGE_BODY_LEN, MAX_OUTBOX_CIPHERTEXT, MAX_PAGE_MESSAGES,
    MessageStatus, Received, Registration,
};
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

/// Alice and Bob paired in `dir` (Alice has a session with Bob).
fn paired(dir: &Dir) -> (Device, Device) {
    paired_devices(dir.path())
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
    assert!(matches!(
        alice.send_message("bob", b"hello bob"),
        Err(Error::NeedsBundles { devices }) if devices == vec![address("bob", 1)]
    ));
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    let sent = alice.send_message("bob", b"hello bob").unwrap();
    let [(to, ciphertext)] = &sent.entry.envelopes[..] else {
        panic!("{sent:?}")
    };
    assert_eq!(*to, address("bob", 1));

    learn(&mut bob, &alice_reg);
    let Some(Received::Message(got)) = bob.receive(&address("alice", 1), 1, ciphertext).unwrap()
    else {
        panic!("not a message")
    };
    assert_eq!(got.author, address("alice", 1));
    assert_eq!((got.id, got.body.as_slice()), (sent.id, &b"hello bob"[..]));
    assert_eq!(got.conversation, "alice");
    assert_eq!(got.status, MessageStatus::Received);
    // Delivered again under the same envelope id (the relay redelivers until acked): already
    // processed; under another id (a replay): a typed duplicate.
    assert_eq!(
        bob.receive(&address("alice", 1), 1, ciphertext).unwrap(),
        None
    );
    assert!(matches!(
        bob.receive(&address("alice", 1), 2, ciphertext),
        Err(Error::Duplicate)
    ));

    // Both restart; the conversation goes on in both directions.
    drop((alice, bob));
    let mut alice = reopen(&dir, "alice", 1);
    let mut bob = reopen(&dir, "bob", 2);
    let mut relay_id = 10;
    for round in 0..3u8 {
        relay_id += 1;
        let reply = bob.send_message("alice", &[round]).unwrap();
        let (_, ct) = &reply.entry.envelopes[0];
        assert_eq!(
            body(alice.receive(&address("bob", 1), relay_id, ct).unwrap()),
            [round]
        );
        let next = alice.send_message("bob", &[round, 1]).unwrap();
        let (_, ct) = &next.entry.envelopes[0];
        // Claimed to come from Bob's own device: refused, and nothing changed.
        assert!(bob.receive(&address("bob", 1), relay_id, ct).is_err());
        assert_eq!(
            body(bob.receive(&address("alice", 1), relay_id, ct).unwrap()),
            [round, 1]
        );
    }
    // The log holds the conversation in order, each message once, on both sides.
    let history = bob.messages("alice", None, 50).unwrap();
    let bodies: Vec<(bool, Vec<u8>)> = history
        .messages
        .iter()
        .map(|m| (m.outgoing, m.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            (false, b"hello bob".to_vec()),
            (true, vec![0]),
            (false, vec![0, 1]),
            (true, vec![1]),
            (false, vec![1, 1]),
            (true, vec![2]),
            (false, vec![2, 1]),
        ]
    );
    assert_eq!(history.older, None);
    assert_eq!(alice.messages("bob", None, 50).unwrap().messages.len(), 7);
    let conversations = bob.conversations().unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        (
            conversations[0].id.user().unwrap(),
            conversations[0].messages
        ),
        ("alice", 7)
    );
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
    let sent = alice.send_message("bob", b"who am I").unwrap();
    let (_, ciphertext) = &sent.entry.envelopes[0];

    // Bob has not learned Alice yet.
    assert!(matches!(
        bob.receive(&address("alice", 1), 1, ciphertext),
        Err(Error::UnknownUser { user }) if user == "alice"
    ));
    learn(&mut bob, &alice_reg);
    // The relay claims it comes from a device Alice's list does not name.
    assert!(matches!(
        bob.receive(&address("alice", 2), 1, ciphertext),
        Err(Error::NotListed { device }) if device.starts_with("alice")
    ));
    // Garbage.
    assert!(
        bob.receive(&address("alice", 1), 1, b"\x11garbage")
            .is_err()
    );
    // The refusals changed nothing: the genuine message still decrypts.
    assert_eq!(
        body(bob.receive(&address("alice", 1), 1, ciphertext).unwrap()),
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
        alice.send_message("bob", b"too early"),
        Err(Error::NeedsBundles { devices }) if devices == vec![address("bob", 1)]
    ));
    assert!(matches!(
        alice.send_message("alice", b"to ourselves"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(alice.outbox().unwrap().is_empty());
    alice
        .add_bundle(&address("bob", 1), &bundle(&bob_reg, &bob_keys, 0))
        .unwrap();
    let first = alice.send_message("bob", b"first").unwrap();
    let second = alice.send_message("bob", b"second").unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(
        (first.entry.msg_id, second.entry.msg_id),
        (first.id, second.id)
    );
    // Over the body limit: refused, nothing queued; at the limit it fits the relay's
    // envelope once encrypted.
    assert!(matches!(
        alice.send_message("bob", &vec![0u8; MAX_MESSAGE_BODY_LEN + 1]),
        Err(Error::MessageTooLarge { .. })
    ));
    let largest = alice
        .send_message("bob", &vec![0u8; MAX_MESSAGE_BODY_LEN])
        .unwrap();
    assert!(largest.entry.envelopes[0].1.len() <= MAX_OUTBOX_CIPHERTEXT);
    assert_eq!(
        alice.message("alice", first.id).unwrap().map(|m| m.status),
        Some(MessageStatus::Pending)
    );

    // A restart before anything was sent: all three are still there, oldest first.
    drop(alice);
    let mut alice = reopen(&dir, "alice", 1);
    let pending = alice.outbox().unwrap();
    assert_eq!(
        pending,
        vec![
            first.entry.clone(),
            second.entry.clone(),
            largest.entry.clone()
        ]
    );
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
        bob.message("alice", second.id).unwrap().map(|m| m.body),
        Some(b"second".to_vec())
    );
    assert_eq!(
        alice.acknowledged(first.id).unwrap().map(|m| m.status),
        Some(MessageStatus::Sent)
    );
    assert_eq!(alice.acknowledged(first.id).unwrap(), None);
    assert_eq!(
        alice.outbox().unwrap(),
        vec![second.entry.clone(), largest.entry.clone()]
    );
    alice.acknowledged(second.id).unwrap();
    alice.acknowledged(largest.id).unwrap();
    assert!(alice.outbox().unwrap().is_empty());
}

#[test]
fn receipts_are_owed_with_the_message_and_move_the_status_forward() {
    let dir = Dir::new("receipts");
    let (mut alice, _) = paired(&dir);
    let mut bob = reopen(&dir, "bob", 2);
    let sent = alice.send_message("bob", b"did you get it").unwrap();
    alice.acknowledged(sent.id).unwrap();
    assert!(bob.receipts_due().unwrap().is_empty());
    bob.receive(&address("alice", 1), 1, &sent.entry.envelopes[0].1)
        .unwrap();
    // The delivery receipt was owed in the same commit as the message.
    assert_eq!(bob.receipts_due().unwrap(), vec!["alice".to_owned()]);
    let receipts = bob.send_receipts("alice").unwrap();
    assert_eq!(receipts.len(), 1);
    assert!(bob.receipts_due().unwrap().is_empty());
    let Some(Received::Receipts {
        from,
        read,
        updated,
    }) = alice
        .receive(&address("bob", 1), 1, &receipts[0].envelopes[0].1)
        .unwrap()
    else {
        panic!("not a receipt")
    };
    assert_eq!((from, read), (address("bob", 1), false));
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].status, MessageStatus::Delivered);

    let read = bob.mark_read("alice", &[sent.id]).unwrap();
    assert_eq!(read[0].status, MessageStatus::ReadHere);
    assert!(
        bob.mark_read("alice", &[sent.id]).unwrap().is_empty(),
        "read once"
    );
    let receipts = bob.send_receipts("alice").unwrap();
    let Some(Received::Receipts { read, updated, .. }) = alice
        .receive(&address("bob", 1), 2, &receipts[0].envelopes[0].1)
        .unwrap()
    else {
        panic!("not a receipt")
    };
    assert!(read);
    assert_eq!(updated[0].status, MessageStatus::Read);
    assert_eq!(
        alice.message("alice", sent.id).unwrap().map(|m| m.status),
        Some(MessageStatus::Read)
    );
}

#[test]
fn history_pages_back_by_position() {
    let dir = Dir::new("paging");
    let (mut alice, _) = paired(&dir);
    let total = 2 * LOG_PAGE_LEN as usize + 17;
    for i in 0..total {
        let sent = alice
            .send_message("bob", format!("{i}").as_bytes())
            .unwrap();
        alice.acknowledged(sent.id).unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = alice.messages("bob", before, 100).unwrap();
        assert!(page.messages.len() <= 100);
        let mut bodies: Vec<String> = page
            .messages
            .iter()
            .map(|m| String::from_utf8(m.body.clone()).unwrap())
            .collect();
        bodies.extend(seen);
        seen = bodies;
        match page.older {
            Some(position) => before = Some(position),
            None => break,
        }
    }
    assert_eq!(seen, (0..total).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(
        alice
            .messages("bob", None, MAX_PAGE_MESSAGES + 100)
            .unwrap()
            .messages
            .len()
            == MAX_PAGE_MESSAGES.min(total)
    );
    assert!(
        alice
            .messages("carol", None, 10)
            .unwrap()
            .messages
            .is_empty()
    );
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
    assert_eq!(
        alice
            .send_message("bob", b"x")
            .unwrap()
            .entry
            .envelopes
            .len(),
        1
    );

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
    assert!(matches!(
        alice.send_message("bob", b"y"),
        Err(Error::NeedsBundles { devices }) if devices == vec![address("bob", 1)]
    ));
}

#[test]
fn a_batch_commits_every_good_envelope_and_refuses_the_bad_ones_alone() {
    let dir = Dir::new("batch");
    let (mut alice, _) = paired(&dir);
    let mut bob = reopen(&dir, "bob", 2);
    let sent: Vec<_> = (0..4u8)
        .map(|i| alice.send_message("bob", &[i]).unwrap())
        .collect();
    let alice1 = address("alice", 1);
    let ct = |i: usize| sent[i].entry.envelopes[0].1.as_slice();
    let results = bob
        .receive_batch(&[
            (&alice1, 1, ct(0)),
            (&alice1, 2, b"\x11garbage"),
            (&alice1, 3, ct(1)),
            (&alice1, 3, ct(1)), // redelivered within the batch: already processed
            (&alice1, 4, ct(1)), // a replay under another envelope id
            (&address("alice", 2), 5, ct(2)), // a device Alice's list does not name
            (&alice1, 6, ct(2)),
        ])
        .unwrap();
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| match r {
            Ok(Some(Received::Message(_))) => "message",
            Ok(None) => "again",
            Err(Error::Duplicate) => "duplicate",
            Err(Error::NotListed { .. }) => "not listed",
            Err(_) => "refused",
            Ok(Some(_)) => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "refused",
            "message",
            "again",
            "duplicate",
            "not listed",
            "message"
        ]
    );
    // Every good one committed, in order; the failed steps left nothing behind.
    drop(bob);
    let mut bob = reopen(&dir, "bob", 2);
    let bodies: Vec<Vec<u8>> = bob
        .messages("alice", None, 10)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec![vec![0], vec![1], vec![2]]);
    assert_eq!(
        body(bob.receive(&alice1, 7, ct(3)).unwrap()),
        vec![3],
        "the session went on"
    );
}

#[test]
fn the_writer_lease_has_one_holder_until_it_expires_or_is_released() {
    use e2ee_client::Lease;
    use std::time::Duration;
    let dir = Dir::new("lease");
    let (mut app, _) = primary(&dir, "bob", 2);
    let mut extension = reopen(&dir, "bob", 2);
    let (a, b) = (Lease::new(), Lease::new());
    let short = Duration::from_millis(300);
    assert!(app.acquire_lease(a, short).unwrap());
    assert!(
        !extension.acquire_lease(b, short).unwrap(),
        "held by the app"
    );
    assert!(app.acquire_lease(a, short).unwrap(), "the holder renews");
    // A holder that dies stops renewing: the lease expires and the other process takes it.
    std::thread::sleep(short + Duration::from_millis(100));
    assert!(extension.acquire_lease(b, short).unwrap());
    assert!(!app.acquire_lease(a, short).unwrap());
    // Releasing someone else's lease does nothing; releasing one's own frees it at once.
    app.release_lease(a).unwrap();
    assert!(!app.acquire_lease(a, short).unwrap());
    extension.release_lease(b).unwrap();
    assert!(app.acquire_lease(a, short).unwrap());
}

#[test]
fn owed_receipts_are_capped_and_sent_in_receipts_of_at_most_256_ids() {
    use e2ee_client::MAX_DUE_RECEIPTS;
    let dir = Dir::new("due");
    let (mut alice, _) = paired(&dir);
    let mut bob = reopen(&dir, "bob", 2);
    let total = MAX_DUE_RECEIPTS + 5;
    let mut ids = Vec::new();
    for i in 0..total {
        let sent = alice.send_message("bob", &[1]).unwrap();
        bob.receive(&address("alice", 1), i as u64, &sent.entry.envelopes[0].1)
            .unwrap();
        ids.push(sent.id);
    }
    // Only the newest MAX_DUE_RECEIPTS are owed (a receipt is a courtesy: the oldest go).
    let receipts = bob.send_receipts("alice").unwrap();
    assert_eq!(receipts.len(), MAX_DUE_RECEIPTS / 256);
    assert!(bob.receipts_due().unwrap().is_empty());
    let mut acknowledged = Vec::new();
    for (n, entry) in receipts.iter().enumerate() {
        let got = alice
            .receive(&address("bob", 1), n as u64, &entry.envelopes[0].1)
            .unwrap();
        let Some(Received::Receipts { updated, .. }) = got else {
            panic!("not a receipt")
        };
        assert!(updated.len() <= 256);
        acknowledged.extend(updated.into_iter().map(|m| m.id));
    }
    assert_eq!(acknowledged, ids[total - MAX_DUE_RECEIPTS..].to_vec());
}
