//! Scale-out: PostgreSQL mailboxes and two relay nodes routing through the real Redis.
//! These tests need PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 and fail
//! without them.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use e2ee_relay::{
    CLOSE_REPLACED,
    wire::{ClientFrame, FLAG_ONLINE_ONLY, SendStatus, ServerFrame},
};
use e2ee_tools::ClientError;

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(Duration::from_secs(90), $body)
            .await
            .expect("test timed out")
    };
}

#[tokio::test]
async fn postgres_mailboxes_store_dedup_fan_out_and_ack() {
    bounded!(async {
        let so = ScaleOut::new();
        let dir = TempDir::new();
        let key = signing_key();
        let mut cfg = so.config(&key, &dir, false, "a");
        cfg.max_mailbox = 3;
        let r = start(cfg, key).await;
        let mut alice = r.connect_empty("alice", 1).await;
        let res = send_ok(
            &mut alice,
            vec![
                env(1, &[("bob", 1)], b"one"),
                env(2, &[("bob", 1), ("carol", 1)], b"group"),
                env(1, &[("bob", 1)], b"one"),
            ],
        )
        .await;
        assert_eq!(
            res,
            vec![
                (1, SendStatus::Stored),
                (2, SendStatus::Stored),
                (1, SendStatus::Duplicate)
            ]
        );
        let res = send_ok(&mut alice, vec![env(3, &[("bob", 1)], b"three")]).await;
        assert_eq!(res, vec![(3, SendStatus::Stored)]);
        let res = send_ok(&mut alice, vec![env(4, &[("bob", 1)], b"four")]).await;
        assert_eq!(res, vec![(4, SendStatus::MailboxFull)]);

        let mut bob = r.connect("bob", 1).await;
        let mut seqs = Vec::new();
        for (id, body) in [(1u64, &b"one"[..]), (2, b"group"), (3, b"three")] {
            let d = recv_delivery(&mut bob).await;
            assert_eq!((d.msg_id, &d.payload[..]), (id, body));
            seqs.push(d.seq);
        }
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 3 }
        );
        bob.send(&ClientFrame::Ack(seqs)).await.unwrap();
        let mut carol = r.connect("carol", 1).await;
        let d = recv_delivery(&mut carol).await;
        assert_eq!(&d.payload[..], b"group");
        carol.send(&ClientFrame::Ack(vec![d.seq])).await.unwrap();
        // Presence allow lists live in PostgreSQL too.
        bob.send(&ClientFrame::PresenceAllow(vec![user("carol")]))
            .await
            .unwrap();
        assert_eq!(
            bob.recv().await.unwrap(),
            ServerFrame::PresenceAllowed { count: 1 }
        );
        bob.send(&ClientFrame::PresenceQuery(user("bob")))
            .await
            .unwrap();
        assert!(matches!(
            bob.recv().await.unwrap(),
            ServerFrame::Presence { .. }
        ));
        carol
            .send(&ClientFrame::PresenceQuery(user("bob")))
            .await
            .unwrap();
        loop {
            match carol.recv().await.unwrap() {
                ServerFrame::Presence { devices, .. } => {
                    assert_eq!(devices.len(), 1);
                    break;
                }
                ServerFrame::QueueDrained { .. } => continue,
                other => panic!("{other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 0);
        assert_eq!(r.relay.mailbox_len(&addr("carol", 1)).await.unwrap(), 0);
        r.stop().await;
        so.cleanup().await;
    });
}

#[tokio::test]
async fn postgres_dedup_window_lets_late_retries_through() {
    bounded!(async {
        let so = ScaleOut::new();
        let dir = TempDir::new();
        let key = signing_key();
        check_dedup_window(so.config(&key, &dir, false, "a"), key).await;
        so.cleanup().await;
    });
}

#[tokio::test]
async fn postgres_acks_only_delete_the_acking_devices_own_rows() {
    bounded!(async {
        let so = ScaleOut::new();
        let dir = TempDir::new();
        let key = signing_key();
        check_acks_only_delete_own_rows(so.config(&key, &dir, false, "a"), key).await;
        so.cleanup().await;
    });
}

#[tokio::test]
async fn two_nodes_route_live_through_redis_and_keep_one_connection_per_device() {
    bounded!(async {
        let so = ScaleOut::new();
        let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
        let key = signing_key();
        let a = start(so.config(&key, &dir_a, true, "node-a"), key.clone()).await;
        let b = start(so.config(&key, &dir_b, true, "node-b"), key).await;
        assert_ne!(a.addr, b.addr);

        let mut alice = a.connect_empty("alice", 1).await;
        let mut bob = b.connect_empty("bob", 1).await;
        // Live, cross-node: alice on A, bob on B.
        let mut worst = Duration::ZERO;
        for i in 0..20u64 {
            let t = Instant::now();
            send_ok(&mut alice, vec![env(i, &[("bob", 1)], b"x")]).await;
            let d = recv_delivery(&mut bob).await;
            worst = worst.max(t.elapsed());
            assert_eq!(d.msg_id, i);
            bob.send(&ClientFrame::Ack(vec![d.seq])).await.unwrap();
        }
        assert!(
            worst < Duration::from_secs(1), // milliseconds normally; room for a loaded CI box
            "cross-node latency {worst:?}"
        );

        // Online-only across nodes: delivered when bob is online on B.
        let mut typing = env(100, &[("bob", 1)], b"typing");
        typing.flags = FLAG_ONLINE_ONLY;
        assert_eq!(
            send_ok(&mut alice, vec![typing]).await,
            vec![(100, SendStatus::Stored)]
        );
        assert_eq!(recv_delivery(&mut bob).await.seq, 0);

        // Presence across nodes (own user's devices).
        let mut bob2 = a.connect_empty("bob", 2).await;
        bob2.send(&ClientFrame::PresenceQuery(user("bob")))
            .await
            .unwrap();
        match bob2.recv().await.unwrap() {
            ServerFrame::Presence { devices, .. } => {
                assert!(
                    devices.iter().any(|d| d.device_id == 1 && d.online),
                    "{devices:?}"
                );
            }
            other => panic!("{other:?}"),
        }

        // Bob's device 1 connects to A: his connection on B is closed with 4001.
        let mut bob_on_a = a.connect_empty("bob", 1).await;
        loop {
            match bob.recv().await {
                Ok(ServerFrame::Deliver(_)) => continue,
                Err(ClientError::Closed(Some(code))) => {
                    assert_eq!(code, CLOSE_REPLACED);
                    break;
                }
                other => panic!("expected close 4001, got {other:?}"),
            }
        }
        send_ok(&mut alice, vec![env(200, &[("bob", 1)], b"y")]).await;
        assert_eq!(recv_delivery(&mut bob_on_a).await.msg_id, 200);

        a.stop().await;
        b.stop().await;
        so.cleanup().await;
    });
}

#[tokio::test]
async fn device_of_a_stopped_node_reconnects_to_the_other_and_gets_everything() {
    bounded!(async {
        let so = ScaleOut::new();
        let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
        let key = signing_key();
        let a = start(so.config(&key, &dir_a, true, "node-a"), key.clone()).await;
        let b = start(so.config(&key, &dir_b, true, "node-b"), key.clone()).await;
        let mut alice = a.connect_empty("alice", 1).await;
        let bob = b.connect_empty("bob", 1).await;
        drop(bob);
        b.server.abort();
        // While bob is away, alice keeps sending through A.
        for i in 0..50u64 {
            send_ok(&mut alice, vec![env(i, &[("bob", 1)], &i.to_be_bytes())]).await;
        }
        let mut bob = a.connect("bob", 1).await;
        let mut got = Vec::new();
        loop {
            match bob.recv().await.unwrap() {
                ServerFrame::Deliver(d) => got.push(d.msg_id),
                ServerFrame::QueueDrained { count } => {
                    assert_eq!(count, 50);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        a.stop().await;
        so.cleanup().await;
    });
}

#[tokio::test]
async fn a_dropped_relay_stops_heartbeating_and_its_alive_key_goes() {
    bounded!(async {
        let so = ScaleOut::new();
        let dir = TempDir::new();
        let key = signing_key();
        // SQLite mailboxes, Redis routing: only the cluster link matters here.
        let mut cfg = config(&key, &dir);
        cfg.redis_url = Some(redis_url());
        cfg.redis_prefix = so.prefix.clone();
        cfg.node_id = Some("doomed".into());
        let alive = format!("{}:alive:doomed", so.prefix);
        let client = redis::Client::open(redis_url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let exists = |mut con: redis::aio::MultiplexedConnection, key: String| async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut con)
                .await
                .unwrap()
        };

        let relay = e2ee_relay::Relay::start(&cfg).await.unwrap();
        assert!(exists(con.clone(), alive.clone()).await);
        drop(relay);
        // Gone well before it could have expired on its own (10 s)...
        let deadline = Instant::now() + Duration::from_secs(5);
        while exists(con.clone(), alive.clone()).await {
            assert!(Instant::now() < deadline, "alive key still there");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ...and not written again by a heartbeat (every 3 s) left running in the process.
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert!(!exists(con.clone(), alive.clone()).await);
        let _: () = redis::cmd("PING").query_async(&mut con).await.unwrap();
        so.cleanup().await;
    });
}
