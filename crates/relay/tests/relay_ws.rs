//! Real-socket tests of the relay on SQLite: delivery, acks, dedup, fan-out, presence.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use e2ee_relay::wire::{ClientFrame, FLAG_ONLINE_ONLY, SendStatus, ServerFrame};
use e2ee_tools::RelayClient;
use ed25519_dalek::SigningKey;

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(Duration::from_secs(60), $body)
            .await
            .expect("test timed out")
    };
}

#[tokio::test]
async fn live_delivery_after_durable_commit_then_ack_deletes() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 7).await;

        let res = send_ok(&mut alice, vec![env(42, &[("bob", 7)], b"ciphertext")]).await;
        assert_eq!(res, vec![(42, SendStatus::Stored)]);
        let d = recv_delivery(&mut bob).await;
        assert_eq!(d.sender, addr("alice", 1));
        assert_eq!(d.msg_id, 42);
        assert_eq!(&d.payload[..], b"ciphertext");
        assert!(d.seq > 0);
        let bob_addr = addr("bob", 7);
        assert_eq!(r.relay.mailbox_len(&bob_addr).await.unwrap(), 1);

        bob.send(&ClientFrame::Ack(vec![d.seq])).await.unwrap();
        // Acks are not answered; poll until the row is gone.
        for _ in 0..100 {
            if r.relay.mailbox_len(&bob_addr).await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(r.relay.mailbox_len(&bob_addr).await.unwrap(), 0);
        r.stop().await;
    });
}

/// Issue 10, item 7: one sender's envelopes reach each recipient in the order they were
/// sent (frames pipelined without waiting for their SEND_RESULT, several envelopes per
/// frame), live and from the mailbox. An ACK gets no reply.
#[tokio::test]
async fn one_senders_envelopes_arrive_in_send_order_and_acks_get_no_reply() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 1).await;
        const FRAMES: u64 = 40;
        const PER_FRAME: u64 = 3;
        for frame in 0..FRAMES {
            let envs = (0..PER_FRAME)
                .map(|i| {
                    let id = frame * PER_FRAME + i + 1;
                    env(id, &[("bob", 1), ("carol", 1)], &id.to_be_bytes())
                })
                .collect();
            alice.send(&ClientFrame::Send(envs)).await.unwrap();
        }
        let mut live = Vec::new();
        let mut seqs = Vec::new();
        while live.len() < (FRAMES * PER_FRAME) as usize {
            let d = recv_delivery(&mut bob).await;
            live.push(d.msg_id);
            seqs.push(d.seq);
        }
        let sent: Vec<u64> = (1..=FRAMES * PER_FRAME).collect();
        assert_eq!(live, sent, "live order");
        for _ in 0..FRAMES {
            match alice.recv().await.unwrap() {
                ServerFrame::SendResult(_) => {}
                other => panic!("{other:?}"),
            }
        }
        bob.send(&ClientFrame::Ack(seqs)).await.unwrap();
        assert_silent(&mut bob, 300).await;

        let mut carol = r.connect("carol", 1).await;
        let mut stored = Vec::new();
        loop {
            match carol.recv().await.unwrap() {
                ServerFrame::Deliver(d) => stored.push(d.msg_id),
                ServerFrame::QueueDrained { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(stored, sent, "mailbox order");
        r.stop().await;
    });
}

#[tokio::test]
async fn mailbox_delivered_in_order_on_connect_and_unacked_redelivered() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        for i in 0..5u64 {
            let res = send_ok(&mut alice, vec![env(i, &[("bob", 1)], &[i as u8])]).await;
            assert_eq!(res, vec![(i, SendStatus::Stored)]);
        }
        let mut bob = r.connect("bob", 1).await;
        let mut seqs = Vec::new();
        for i in 0..5u64 {
            let d = recv_delivery(&mut bob).await;
            assert_eq!(d.msg_id, i, "mailbox order");
            seqs.push(d.seq);
        }
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 5 }
        );
        bob.send(&ClientFrame::Ack(seqs[..2].to_vec()))
            .await
            .unwrap();
        // A live message after the drain still arrives.
        send_ok(&mut alice, vec![env(99, &[("bob", 1)], b"live")]).await;
        assert_eq!(recv_delivery(&mut bob).await.msg_id, 99);
        bob.close().await;

        let mut bob = r.connect("bob", 1).await;
        let mut ids = Vec::new();
        loop {
            match bob.recv().await.unwrap() {
                ServerFrame::Deliver(d) => ids.push(d.msg_id),
                ServerFrame::QueueDrained { count } => {
                    assert_eq!(count, 4);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ids, vec![2, 3, 4, 99]);
        r.stop().await;
    });
}

#[tokio::test]
async fn acks_only_delete_the_acking_devices_own_rows() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        check_acks_only_delete_own_rows(config(&key, &dir), key).await;
    });
}

#[tokio::test]
async fn retry_after_the_dedup_window_is_stored_again() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        check_dedup_window(config(&key, &dir), key).await;
    });
}

#[tokio::test]
async fn retry_with_same_message_id_is_stored_once() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let first = send_ok(&mut alice, vec![env(5, &[("bob", 1)], b"x")]).await;
        assert_eq!(first, vec![(5, SendStatus::Stored)]);
        let again = send_ok(&mut alice, vec![env(5, &[("bob", 1)], b"x")]).await;
        assert_eq!(again, vec![(5, SendStatus::Duplicate)]);
        // Same id twice in one batch, and a retry after reconnecting.
        let both = send_ok(
            &mut alice,
            vec![env(6, &[("bob", 1)], b"y"), env(6, &[("bob", 1)], b"y")],
        )
        .await;
        assert_eq!(
            both,
            vec![(6, SendStatus::Stored), (6, SendStatus::Duplicate)]
        );
        alice.close().await;
        let mut alice = r.connect_empty("alice", 1).await;
        let later = send_ok(&mut alice, vec![env(5, &[("bob", 1)], b"x")]).await;
        assert_eq!(later, vec![(5, SendStatus::Duplicate)]);
        // Another device of the same user has its own id space.
        let mut alice2 = r.connect_empty("alice", 2).await;
        let other = send_ok(&mut alice2, vec![env(5, &[("bob", 1)], b"x")]).await;
        assert_eq!(other, vec![(5, SendStatus::Stored)]);
        assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 3);
        r.stop().await;
    });
}

#[tokio::test]
async fn group_envelope_fans_out_one_payload_to_every_recipient() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut bob = r.connect_empty("bob", 1).await;
        let to = [("bob", 1), ("carol", 1), ("carol", 2), ("bob", 1)];
        let res = send_ok(&mut alice, vec![env(1, &to, b"group ct")]).await;
        assert_eq!(res, vec![(1, SendStatus::Stored)]);
        let d = recv_delivery(&mut bob).await;
        assert_eq!(&d.payload[..], b"group ct");
        // The duplicate recipient got one copy.
        assert_silent(&mut bob, 200).await;
        bob.send(&ClientFrame::Ack(vec![d.seq])).await.unwrap();
        for dev in [1, 2] {
            let mut carol = r.connect("carol", dev).await;
            let d = recv_delivery(&mut carol).await;
            assert_eq!(&d.payload[..], b"group ct");
            assert_eq!(
                carol.recv().await.unwrap(),
                ServerFrame::QueueDrained { count: 1 }
            );
            carol.send(&ClientFrame::Ack(vec![d.seq])).await.unwrap();
            carol.close().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for a in [addr("bob", 1), addr("carol", 1), addr("carol", 2)] {
            assert_eq!(r.relay.mailbox_len(&a).await.unwrap(), 0);
        }
        r.stop().await;
    });
}

#[tokio::test]
async fn online_only_envelopes_are_dropped_when_offline_and_never_stored() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut typing = env(1, &[("bob", 1)], b"typing");
        typing.flags = FLAG_ONLINE_ONLY;
        let res = send_ok(&mut alice, vec![typing.clone()]).await;
        assert_eq!(res, vec![(1, SendStatus::DroppedOffline)]);
        let mut bob = r.connect_empty("bob", 1).await;
        typing.msg_id = 2;
        let res = send_ok(&mut alice, vec![typing]).await;
        assert_eq!(res, vec![(2, SendStatus::Stored)]);
        let d = recv_delivery(&mut bob).await;
        assert_eq!((d.seq, d.flags, d.msg_id), (0, FLAG_ONLINE_ONLY, 2));
        assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 0);
        r.stop().await;
    });
}

fn ticket_issued_at(key: &SigningKey, user: &str, device: u32, issued_at: u64) -> String {
    e2ee_ticket::Ticket {
        device: addr(user, device),
        issued_at,
        expires_at: issued_at + 3600,
    }
    .sign_to_text(key)
}

fn now_ms() -> u64 {
    now_secs() * 1000
}

/// Issue 10, item 2: a removed device is disconnected at once (4005), and its tickets issued
/// until the removal no longer open the relay (401 `ticket_revoked`), though they are
/// signed and unexpired; a ticket issued after the removal (a re-enrolled device) does.
#[tokio::test]
async fn a_removed_device_is_disconnected_and_its_earlier_tickets_are_refused() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut kept = r.connect_empty("bob", 1).await;
        let early = r.ticket("bob", 2);
        let mut removed = r.connect_empty("bob", 2).await;
        let removed_at = now_ms() + 500;
        assert!(r.relay.revoke_device(&addr("bob", 2), removed_at));
        match removed.recv().await {
            Err(e2ee_tools::ClientError::Closed(Some(code))) => {
                assert_eq!(code, e2ee_relay::CLOSE_REVOKED)
            }
            other => panic!("expected close 4005, got {other:?}"),
        }
        // The same removal again is not news.
        assert!(!r.relay.revoke_device(&addr("bob", 2), removed_at));
        let err = RelayClient::connect(&r.addr, &early).await.unwrap_err();
        assert_eq!(err.status(), Some(401), "{err}");
        let same_second = ticket_issued_at(&r.key, "bob", 2, removed_at / 1000);
        let err = RelayClient::connect(&r.addr, &same_second)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(401), "{err}");
        let later = ticket_issued_at(&r.key, "bob", 2, removed_at / 1000 + 1);
        let mut back = RelayClient::connect(&r.addr, &later).await.unwrap();
        assert_eq!(
            back.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        // The other device is untouched.
        let mut alice = r.connect_empty("alice", 1).await;
        send_ok(&mut alice, vec![env(1, &[("bob", 1)], b"still here")]).await;
        assert_eq!(&recv_delivery(&mut kept).await.payload[..], b"still here");
        r.stop().await;
    });
}

#[tokio::test]
async fn newer_connection_replaces_older_one() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut old = r.connect_empty("bob", 1).await;
        let mut new = r.connect_empty("bob", 1).await;
        match old.recv().await {
            Err(e2ee_tools::ClientError::Closed(Some(code))) => {
                assert_eq!(code, e2ee_relay::CLOSE_REPLACED)
            }
            other => panic!("expected close 4001, got {other:?}"),
        }
        let mut alice = r.connect_empty("alice", 1).await;
        send_ok(&mut alice, vec![env(1, &[("bob", 1)], b"hi")]).await;
        assert_eq!(recv_delivery(&mut new).await.msg_id, 1);
        r.stop().await;
    });
}

#[tokio::test]
async fn presence_is_visible_to_own_devices_only_by_default() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut bob1 = r.connect_empty("bob", 1).await;
        let bob2 = r.connect_empty("bob", 2).await;
        bob2.close().await;
        // The relay notices the close asynchronously: ask until it has.
        let mut last = None;
        for _ in 0..100 {
            bob1.send(&ClientFrame::PresenceQuery(user("bob")))
                .await
                .unwrap();
            match bob1.recv().await.unwrap() {
                ServerFrame::Presence { user: who, devices } => {
                    assert_eq!(who.as_str(), "bob");
                    if devices.len() == 2 && !devices[1].online {
                        last = Some(devices);
                        break;
                    }
                }
                other => panic!("{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let devices = last.expect("device 2 never went offline");
        assert!(devices[0].online && devices[0].device_id == 1);
        assert!(devices[1].device_id == 2 && devices[1].last_seen_ms > 0);
        let mut alice = r.connect_empty("alice", 1).await;
        alice
            .send(&ClientFrame::PresenceQuery(user("bob")))
            .await
            .unwrap();
        assert_eq!(
            alice.recv().await.unwrap(),
            ServerFrame::Presence {
                user: user("bob"),
                devices: vec![]
            }
        );
        r.stop().await;
    });
}

#[tokio::test]
async fn expired_envelopes_are_not_delivered() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = config(&key, &dir);
        cfg.ttl_secs = 1;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        send_ok(&mut alice, vec![env(1, &[("bob", 1)], b"old")]).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        send_ok(&mut alice, vec![env(2, &[("bob", 1)], b"new")]).await;
        let mut bob = r.connect("bob", 1).await;
        assert_eq!(recv_delivery(&mut bob).await.msg_id, 2);
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 1 }
        );
        r.stop().await;
    });
}

#[tokio::test]
async fn mailbox_survives_a_relay_restart() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key.clone()).await;
        let mut alice = r.connect_empty("alice", 1).await;
        send_ok(&mut alice, vec![env(1, &[("bob", 1)], b"kept")]).await;
        alice.close().await;
        r.stop().await;
        let r = start(config(&key, &dir), key).await;
        let mut bob = r.connect("bob", 1).await;
        let d = recv_delivery(&mut bob).await;
        assert_eq!(&d.payload[..], b"kept");
        // Sequence numbers keep increasing across restarts.
        let mut alice = r.connect_empty("alice", 1).await;
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 1 }
        );
        send_ok(&mut alice, vec![env(2, &[("bob", 1)], b"after")]).await;
        let d2 = recv_delivery(&mut bob).await;
        assert!(d2.seq > d.seq);
        r.stop().await;
    });
}

async fn presence_of(c: &mut e2ee_tools::RelayClient, user: &str) -> usize {
    c.send(&ClientFrame::PresenceQuery(common::user(user)))
        .await
        .unwrap();
    match c.recv().await.unwrap() {
        ServerFrame::Presence { devices, .. } => devices.len(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn presence_is_visible_to_the_users_the_owner_allows() {
    bounded!(async {
        let dir = TempDir::new();
        let key = signing_key();
        let r = start(config(&key, &dir), key).await;
        let mut bob = r.connect_empty("bob", 1).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let mut carol = r.connect_empty("carol", 1).await;
        assert_eq!(presence_of(&mut alice, "bob").await, 0);
        bob.send(&ClientFrame::PresenceAllow(vec![user("alice")]))
            .await
            .unwrap();
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::PresenceAllowed { count: 1 }
        );
        assert_eq!(presence_of(&mut bob, "bob").await, 1);
        assert_eq!(presence_of(&mut alice, "bob").await, 1);
        assert_eq!(presence_of(&mut carol, "bob").await, 0);
        // Replacing the list revokes.
        bob.send(&ClientFrame::PresenceAllow(vec![])).await.unwrap();
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::PresenceAllowed { count: 0 }
        );
        assert_eq!(presence_of(&mut bob, "bob").await, 1);
        assert_eq!(presence_of(&mut alice, "bob").await, 0);
        r.stop().await;
    });
}
