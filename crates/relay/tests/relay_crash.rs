//! Reliability with real processes: the relay binary is killed with SIGKILL under load and
//! restarted; every envelope acknowledged to a sender reaches the recipient application
//! exactly once after client-side deduplication.

#![allow(clippy::panic, clippy::unwrap_used)]

mod common;

use std::{
    collections::HashSet,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use common::*;
use e2ee_relay::wire::{ClientFrame, SendStatus, ServerFrame};
use e2ee_tools::RelayClient;
use ed25519_dalek::SigningKey;
use tokio::process::{Child, Command};

struct RelayProc {
    child: Child,
    addr: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn_relay(key: &SigningKey, dir: &TempDir, port: u16, extra: &[String]) -> RelayProc {
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_e2ee-relay"))
        .arg("--listen")
        .arg(&addr)
        .arg("--relay-data-dir")
        .arg(&dir.0)
        .arg("--relay-ticket-public-key")
        .arg(hex::encode(key.verifying_key().to_bytes()))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return RelayProc { child, addr };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("relay did not start on {addr}");
}

async fn kill9(p: &mut RelayProc) {
    // tokio's start_kill sends SIGKILL on Unix: no shutdown code runs.
    p.child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
}

async fn reconnect(addrs: &[String], ticket: &str) -> RelayClient {
    for attempt in 0.. {
        let addr = &addrs[attempt % addrs.len()];
        if let Ok(c) = RelayClient::connect(addr, ticket).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Sends ids 0..total to bob in batches, retrying each batch (same ids) until acknowledged.
async fn sender(addrs: Vec<String>, ticket: String, total: u64, acked: Arc<AtomicU64>) {
    let mut c = reconnect(&addrs, &ticket).await;
    let mut next = 0u64;
    while next < total {
        let ids: Vec<u64> = (next..(next + 20).min(total)).collect();
        let frame = ClientFrame::Send(
            ids.iter()
                .map(|i| env(*i, &[("bob", 1)], &i.to_be_bytes()))
                .collect(),
        );
        let ok = async {
            c.send(&frame).await.ok()?;
            loop {
                match c.recv().await.ok()? {
                    ServerFrame::SendResult(r) => return Some(r),
                    _ => continue,
                }
            }
        }
        .await;
        match ok {
            Some(r) => {
                assert!(
                    r.iter()
                        .all(|(_, s)| matches!(s, SendStatus::Stored | SendStatus::Duplicate))
                );
                next += ids.len() as u64;
                acked.store(next, Ordering::SeqCst);
            }
            None => c = reconnect(&addrs, &ticket).await,
        }
    }
}

/// Receives as the application would: dedup on msg id, ack everything, reconnect on failure.
async fn receiver(
    addrs: Vec<String>,
    ticket: String,
    total: u64,
    dups: Arc<AtomicU64>,
) -> HashSet<u64> {
    let mut got = HashSet::new();
    let mut c = reconnect(&addrs, &ticket).await;
    while (got.len() as u64) < total {
        match c.recv_timeout(Duration::from_secs(5)).await {
            Ok(ServerFrame::Deliver(d)) => {
                if !got.insert(d.msg_id) {
                    dups.fetch_add(1, Ordering::SeqCst);
                }
                let _ = c.send(&ClientFrame::Ack(vec![d.seq])).await;
            }
            Ok(_) => {}
            Err(_) => c = reconnect(&addrs, &ticket).await,
        }
    }
    got
}

#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_envelope() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new();
        let key = signing_key();
        let port = free_port();
        let mut relay = spawn_relay(&key, &dir, port, &[]).await;
        let addrs = vec![relay.addr.clone()];
        let total = 3_000u64;
        let acked = Arc::new(AtomicU64::new(0));
        let dups = Arc::new(AtomicU64::new(0));
        let s = tokio::spawn(sender(
            addrs.clone(),
            ticket(&key, "alice", 1),
            total,
            acked.clone(),
        ));
        let r = tokio::spawn(receiver(
            addrs.clone(),
            ticket(&key, "bob", 1),
            total,
            dups.clone(),
        ));
        for threshold in [total / 3, 2 * total / 3] {
            while acked.load(Ordering::SeqCst) < threshold {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            kill9(&mut relay).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            relay = spawn_relay(&key, &dir, port, &[]).await;
        }
        s.await.unwrap();
        let got = r.await.unwrap();
        assert_eq!(got, (0..total).collect::<HashSet<_>>());
        eprintln!(
            "redelivered duplicates removed by the client: {}",
            dups.load(Ordering::SeqCst)
        );
        kill9(&mut relay).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn kill_9_one_of_two_nodes_clients_move_to_the_other_and_get_everything() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let so = ScaleOut::new();
        let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
        let key = signing_key();
        let common = |node: &str| {
            vec![
                "--relay-database-url".to_string(),
                pg_url(),
                "--relay-database-schema".into(),
                so.schema.clone(),
                "--relay-redis-url".into(),
                redis_url(),
                "--relay-redis-prefix".into(),
                so.prefix.clone(),
                "--relay-node-id".into(),
                node.into(),
            ]
        };
        let mut a = spawn_relay(&key, &dir_a, free_port(), &common("a")).await;
        let mut b = spawn_relay(&key, &dir_b, free_port(), &common("b")).await;
        let total = 2_000u64;
        let acked = Arc::new(AtomicU64::new(0));
        let dups = Arc::new(AtomicU64::new(0));
        // Alice only knows node A; bob starts on B and fails over to A.
        let s = tokio::spawn(sender(
            vec![a.addr.clone()],
            ticket(&key, "alice", 1),
            total,
            acked.clone(),
        ));
        let r = tokio::spawn(receiver(
            vec![b.addr.clone(), a.addr.clone()],
            ticket(&key, "bob", 1),
            total,
            dups.clone(),
        ));
        while acked.load(Ordering::SeqCst) < total / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill9(&mut b).await;
        s.await.unwrap();
        let got = r.await.unwrap();
        assert_eq!(got, (0..total).collect::<HashSet<_>>());
        kill9(&mut a).await;
        so.cleanup().await;
    })
    .await
    .expect("test timed out");
}

#[test]
fn help_explains_every_option() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-relay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--relay-data-dir",
        "--relay-database-url",
        "--relay-database-schema",
        "--relay-sqlite-sync",
        "--relay-redis-url",
        "--relay-redis-prefix",
        "--relay-node-id",
        "--relay-ticket-public-key",
        "--relay-max-mailbox",
        "--relay-send-rate",
        "--relay-send-burst",
        "--relay-max-connections",
        "--relay-ttl-secs",
        "--relay-presence-public",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    // Without a ticket key the standalone relay refuses to start, saying why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-relay"))
        .args(["--listen", "127.0.0.1:0", "--relay-data-dir"])
        .arg(std::env::temp_dir().join(format!("relay-nokey-{}", random_suffix())))
        .env_remove("E2EE_RELAY_TICKET_PUBLIC_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("ticket"), "{text}");
}
